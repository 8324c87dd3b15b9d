/* chaos: the fault-injection soak of issue 23. One broker, two gateways and four
 * workers (synload's stack, bench/synload/stack.h) under a steady submit rate,
 * while a fault thread kills, freezes, cuts off and starves the processes at
 * random moments; afterwards a checker reads every answered submit, the broker's
 * store and the agents' own records and says whether anything accepted was lost,
 * recorded twice, run more often than its attempts say, or left hanging.
 *
 * What is decided where:
 *   main.c    flags, the run's phases (start, soak, heal, settle, check), exit code
 *   client.c  the submitters (one thread per gateway) and the control actions
 *   faults.c  the fault thread: which fault, when, for how long; healing
 *   proxy.c   the loopback proxy between the second gateway and the broker
 *   check.c   the checker (store + agent records + what the clients were told)
 *   report.c  the summary table, the fault timeline and the chart
 *
 * Everything random comes from the seed: a submit's workflow, phase lengths and
 * action are a function of (seed, its number), the faults' kinds and order of
 * (seed, their number), so a run is reproducible in what it does and checks,
 * not in its timing. */
#ifndef CHAOS_H
#define CHAOS_H

#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "bench/synload/stack.h"

#define CHAOS_GATEWAYS 2
#define CHAOS_WORKERS 4
#define CHAOS_PORTS 7 /* broker ×3, gateway HTTP ×2, proxy ×2 */

typedef enum { FAULT_KILL, FAULT_STOP, FAULT_LINK, FAULT_DISK, FAULT_KINDS } chaos_fault_kind_t;

typedef enum { ACT_NONE, ACT_CANCEL, ACT_PAUSE, ACT_INJECT } chaos_action_t;

/* One submit: what was asked and what the client was told. */
typedef struct {
    char tag[40];          /* the task text, unique per submit: "chaos-<seed>-<n>" */
    char id[48];           /* execution id from the 200, "" otherwise */
    int workflow;          /* index into the soak's workflows */
    int gateway;
    double t_submit;       /* seconds since the soak started */
    double t_answer;       /* of the final answer */
    int status;            /* final HTTP status; -1: no answer (timeout, connection) */
    int tries;             /* POSTs made (a 503 is retried) */
    int got_503;           /* 503 answers among them */
    chaos_action_t action; /* the control planned for it */
    int action_status;     /* the last answer to it (0: not sent) */
    bool pause_sent;       /* a pause went out (it may have been committed unseen) */
    bool resumed;          /* a resume was answered 200, or 400 (not paused) */
} chaos_submit_t;

/* One fault in the timeline. */
typedef struct {
    double t, until;       /* seconds since the soak started */
    chaos_fault_kind_t kind;
    char target[24];       /* "broker", "gateway2", "worker3", "proxy", "disk" */
    char note[160];
} chaos_fault_t;

typedef struct {
    long minutes, seconds; /* the soak's length: seconds wins when > 0 */
    uint64_t seed;
    double rate;           /* submits per second, over both gateways */
    double fault_every;    /* mean seconds between faults */
    bool faults[FAULT_KINDS];
    long settle_s;
    long tmpfs_mib;
    const char *out_dir;
    const char *bin_dir;
    const char *log_level;
    bool keep;
} chaos_config_t;

typedef struct {
    chaos_config_t cfg;
    synstack_t *stack;
    char dir[256];         /* temp dir: records, proxy log, the data mount point */
    char data_dir[300];    /* the broker's --data (a tmpfs when mounted) */
    char records[300];     /* the command agents' records file */
    bool tmpfs;            /* data_dir is a tmpfs we mounted */
    char tmpfs_error[512]; /* why not, when the disk fault was wanted */
    int base_port;
    pid_t proxy;
    char command[600];     /* the command workers' --command */
    char via_broker[64], via_events[64]; /* the proxy's ends, for the second gateway */
    double t0;             /* monotonic seconds at the soak's start */
    int64_t t0_wall_us;    /* wall clock at the same moment (the store's clock) */

    pthread_mutex_t lock;  /* guards everything below */
    chaos_submit_t *subs;
    size_t nsubs, capsubs;
    chaos_fault_t *faults;
    size_t nfaults, capfaults;
    int unexpected_exits;
    char unexpected[1024]; /* which, when */
    long next_submit;      /* the next submit's number */
    int clients_done;      /* client threads with nothing left to do */
    long resumed_at_settle; /* paused executions the settle had to resume */
    double settle_s;       /* how long the settle took */

    volatile sig_atomic_t stop_submits; /* the soak is over: no new submits */
    volatile sig_atomic_t stop_faults;  /* heal and return */
    volatile sig_atomic_t stop_clients; /* the settle deadline: give up what is still due */
    volatile sig_atomic_t stop_watch;   /* the fault thread stops restarting what dies */
    int kills;             /* kill faults so far (the fault thread's) */
    volatile sig_atomic_t *interrupted; /* SIGINT */
} chaos_t;

/* The soak's workflows: registered at start, chosen per submit. */
extern const char *const chaos_workflow_ids[];
int chaos_register_workflows(chaos_t *self);

/* Seconds since the soak started. */
double chaos_now(const chaos_t *self);
/* A deterministic 64-bit value of (seed, stream, n): splitmix64. */
uint64_t chaos_rand(uint64_t seed, uint64_t stream, uint64_t n);
/* Uniform in [lo, hi) from such a value. */
double chaos_uniform(uint64_t r, double lo, double hi);

/* Submitter for gateway index (a pthread start routine taking chaos_client_arg_t). */
typedef struct {
    chaos_t *chaos;
    int gateway;
} chaos_client_arg_t;
void *chaos_client_main(void *arg);

/* The fault thread (a pthread start routine taking chaos_t). When stop_faults
 * is set it heals what its fault did, then only restarts what dies, until
 * stop_watch: every process of the stack must be (re)started by one thread that
 * lives to the end, since PR_SET_PDEATHSIG kills a child when the *thread* that
 * forked it exits. */
void *chaos_faults_main(void *arg);
/* The process that died without a fault asking for it (reaped), restarted. */
void chaos_faults_check_alive(chaos_t *self);
/* How many lines of the broker's log (all its runs) hold text. */
int chaos_broker_log_count(const chaos_t *self, const char *text);
/* Appends a fault to the timeline and prints it; returns its index. */
size_t chaos_log_fault(chaos_t *self, chaos_fault_kind_t kind, const char *target, double until,
                       const char *fmt, ...) __attribute__((format(printf, 5, 6)));
const char *chaos_fault_name(chaos_fault_kind_t kind);

/* The proxy: listens on listen_ports[i] and forwards to target_ports[i] on
 * 127.0.0.1. SIGUSR1 cuts every connection and stops listening; SIGUSR2 listens
 * again. Its pid, or -1. */
pid_t chaos_proxy_start(const int *listen_ports, const int *target_ports, int n,
                        const char *log_path);

/* What the checker found. */
typedef struct {
    long answered, accepted, answered_503, retried_503, accepted_after_503, gave_up_503;
    long no_answer, no_answer_in_store, untagged_in_store;
    long completed, failed, cancelled;
    long lost, stuck, duplicate_results, duplicate_terminals;
    long runs_over_attempts, attempts_run_twice, agent_runs, inconsistent;
    long committed_503;     /* a 503'd submit that the store holds all the same */
    long executions_in_store;
    char failed_why[2048];  /* "count  reason" lines */
    char problems[4096];    /* the first few violations, one per line */
    double *end_t;          /* when each execution ended, soak seconds (malloc'd) */
    size_t nend;
} chaos_findings_t;

/* Reads the store (after the stack stopped) and the agents' records; 0, or -1
 * when they cannot be read (err). */
int chaos_check(chaos_t *self, chaos_findings_t *out, char *err, size_t errlen);
/* Whether the findings break a promise. */
bool chaos_findings_fail(const chaos_findings_t *f, int unexpected_exits);

/* Writes <out>/chaos-<seed>.md (summary and timeline), the chart's data and
 * PNG (with gnuplot, when there is one), and prints the summary. */
int chaos_report(chaos_t *self, const chaos_findings_t *f);

#endif
