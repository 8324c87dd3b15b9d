/* stack: a private syn stack for one benchmark run — broker, gateway and N
 * workers, the built programs next to synload, on random loopback ports with a
 * fresh temp data dir; started with the flags `syn up` passes. */
#ifndef SYNLOAD_STACK_H
#define SYNLOAD_STACK_H

#include <jansson.h>
#include <stdbool.h>
#include <sys/types.h>

#define STACK_MAX_WORKERS 64
#define STACK_MAX_GATEWAYS 4

typedef struct {
    const char *bin_dir;       /* where syn-broker, syn-gateway, syn-worker are */
    int workers;
    int slots;                 /* per worker */
    int prefetch;              /* --prefetch of every worker (0: not passed) */
    int mock_delay_ms;         /* --mock-delay-ms of every worker */
    const char *log_level;     /* of the three programs */
    const char *broker_prefix; /* e.g. "valgrind --tool=callgrind": words put before the broker */
    const char *broker_args;   /* extra broker flags, space separated */
    const char *gateway_prefix; /* the same for the gateway */
    const char *gateway_args;  /* extra gateway flags */
    const char *worker_args;   /* extra flags of every worker (e.g. its CURVE keys) */
    bool keep;                 /* keep the temp dir (logs, database) */
    bool postgresql;           /* the broker's store in a fresh database of synload's own
                                  durable PostgreSQL cluster (tests/support/pg_cluster.h) */
    /* For the chaos soak (bench/chaos); all optional, zero keeps synload's stack. */
    int gateways;              /* gateway processes (0 = 1), each on its own HTTP port */
    int command_workers;       /* the last N workers run `--provider command` */
    const char *command;       /* their --command */
    const char *data_dir;      /* the broker's --data (NULL: <temp dir>/var) */
    int base_port;             /* ports base.. in order: the broker's clients, workers, events,
                                  then each gateway's HTTP (0: free ports the system picks) */
    const char *last_gateway_broker; /* the last gateway's --broker and --events instead of */
    const char *last_gateway_events; /* the broker's own (a proxy in front of them) */
} synstack_options_t;

typedef struct synstack_t synstack_t;

/* Starts everything and waits (up to timeout_ms) until /health reports all
 * workers. NULL on failure, with the logs' tails printed to stderr. */
synstack_t *stack_start(const synstack_options_t *opts, int timeout_ms);
/* SIGTERM to all, SIGKILL after 5 s; removes the temp dir unless keep. */
void stack_destroy(synstack_t **self_p);
/* Stops the gateway alone and returns the counters it logs as it stops (its
 * "stopping name=N ..." line: event_gaps, view_entries, ...) as a JSON object;
 * empty when the line is not there (a log level above info). */
json_t *stack_stop_gateway(synstack_t *self);

const char *stack_url(const synstack_t *self);  /* http://127.0.0.1:PORT */
/* The broker's workers endpoint (tcp://127.0.0.1:PORT), for workers of one's own. */
const char *stack_workers_endpoint(const synstack_t *self);
const char *stack_dir(const synstack_t *self);
/* The SQLite file of the broker, or the postgresql:// URI of its database. */
const char *stack_db_path(const synstack_t *self);
pid_t stack_broker_pid(const synstack_t *self);
pid_t stack_gateway_pid(const synstack_t *self);
int stack_worker_count(const synstack_t *self);
pid_t stack_worker_pid(const synstack_t *self, int index);
/* The --name given to worker index. */
const char *stack_worker_name(const synstack_t *self, int index);
/* kill -9 of one worker, reaped. */
void stack_kill_worker(synstack_t *self, int index);

/* Waits until GET /health answers 200 with at least `workers` workers. */
int stack_wait_health(const char *url, int workers, int timeout_ms);

/* Whether stack_destroy keeps the temp dir (the chaos soak decides at the end). */
void stack_set_keep(synstack_t *self, bool keep);

/* The processes of a stack, for the chaos soak's faults. */
typedef enum { STACK_BROKER, STACK_GATEWAY, STACK_WORKER } stack_role_t;
/* The pid of a role's process `index` (0 for the broker), 0 when not running. */
pid_t stack_pid(const synstack_t *self, stack_role_t role, int index);
/* Sends sig to the process's group; 0, or -1 when it is not running. */
int stack_signal(synstack_t *self, stack_role_t role, int index, int sig);
/* kill -9 (when running), reaped, then started again with the same flags and
 * ports; 0, or -1 when it could not be started. */
int stack_restart(synstack_t *self, stack_role_t role, int index);
/* http://127.0.0.1:PORT of gateway index; its log's name. */
const char *stack_gateway_url(const synstack_t *self, int index);
int stack_gateway_count(const synstack_t *self);

/* Resident set of a process in KiB from /proc (-1 when it is gone), its peak
 * since it started, and its user+system CPU seconds. */
long proc_rss_kib(pid_t pid);
long proc_peak_rss_kib(pid_t pid);
/* Proportional set size and unique set size (USS: private clean + private dirty)
 * in KiB from /proc/PID/smaps_rollup: RSS counts every shared library page in
 * full; USS is what one more process of a fleet costs a host, PSS its share of
 * everything it maps. 0, or -1 when unreadable. */
int proc_pss_uss_kib(pid_t pid, long *pss, long *uss);
double proc_cpu_s(pid_t pid);

/* A free TCP port on 127.0.0.1 (bound then released). */
int stack_free_port(void);

/* Directory of the running program (for the sibling programs). */
int self_dir(char *out, size_t outsize);

#endif
