/* workloads: the benchmark procedures of issue 7. Each run starts its own stack
 * (unless pointed at a gateway), warms up, measures, checks every result and
 * appends one JSON object per run to the results array. A wrong or missing
 * result makes the run fail: a fast wrong answer is not a result. */
#ifndef SYNLOAD_WORKLOADS_H
#define SYNLOAD_WORKLOADS_H

#include <jansson.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/types.h>

typedef struct {
    const char *gateway;       /* existing stack, or NULL to start one per run */
    const char *data;          /* its data dir, for output checks (optional) */
    const char *bin_dir;
    const char *log_level;     /* of the started programs */
    const char *broker_prefix;
    const char *broker_args;
    const char *gateway_prefix;
    const char *gateway_args;
    const char *worker_args;
    const char *profile_cmd;   /* shell command run during the measured batch (fleet: its
                                  idle window), "{pid}" = the broker's pid; stopped with
                                  SIGINT (e.g. perf -p) */
    const char *latency_dir;   /* per-run latency files, or NULL */
    bool keep;
    bool postgresql;           /* the broker's store on PostgreSQL (stack.h) */
    bool use_curl;             /* W3 with libcurl instead of synload's own client */
    bool quiet;                /* no progress on stderr */
    const char *track;         /* "active", "each" or "auto" (active on our own stack) */
    long executions;           /* 0 = the workload's default */
    long warmup;               /* -1 = the workload's default */
    long inflight;
    long workers;
    long slots;                /* per worker, W1 */
    long prefetch;             /* per worker; -1 = as many as its slots */
    long w2_workers;
    long lookups;
    long poll_ms;
    long phase_ms;             /* W2 phase length */
    long timeout_s;
    long wrk_seconds;
    long wrk_connections;
    long idle_ms;              /* pause before reading RSS */
    long fleet_slots;          /* fleet: slots of each simulated worker */
    long fleet_phase_ms;       /* fleet: phase length (phases come at 80 % of the slots) */
    long fleet_seconds;        /* fleet: the measured busy window */
    long fleet_idle_s;         /* fleet: the idle window (broker CPU) */
    bool fleet_restart;        /* fleet: measure a broker restart */
    volatile sig_atomic_t *stop;
} workload_config_t;

/* W1 (and, when with_w3, W3 on the same stack right after), run number `run`. */
int workload_w1(const workload_config_t *cfg, bool with_w1, bool with_w3, int run,
                json_t *results);
/* W2 at `slots` slots in total. */
int workload_w2(const workload_config_t *cfg, int slots, int run, json_t *results);
/* wrk with many connections on the status endpoint vs a bare libmicrohttpd
 * handler, plus one-connection floors with both HTTP clients. */
int workload_wrk(const workload_config_t *cfg, int run, json_t *results);
/* kill -9 of the worker running a phase → the phase running again elsewhere. */
int workload_deadworker(const workload_config_t *cfg, int run, json_t *results);
/* W1 with `workers` worker processes (a scaling curve point). */
int workload_scaling(const workload_config_t *cfg, int workers, int run, json_t *results);
/* Many executions (default 100,000), then the processes' memory. */
int workload_fill(const workload_config_t *cfg, int run, json_t *results);

/* A run of the fleet (fleet.c): `workers` simulated workers of cfg->slots slots
 * against one broker, dispatch latency with the fleet ~80 % busy, the broker's
 * CPU with it idle, memory per worker, a broker restart re-adopting their work. */
int workload_fleet(const workload_config_t *cfg, int workers, int run, json_t *results);

/* Shared by the workloads' files. POST /workflows of verify_workflow_json's chain
 * (409: already there); 0, or -1 with the reason in err. */
int workload_create_workflow(const char *url, const char *id, int phases, int sleep_ms,
                             int max_attempts, char *err, size_t errlen);
/* Starts cfg->profile_cmd with {pid} replaced by broker's pid (through /bin/sh,
 * in its own process group); -1 when there is none to start. Stopped (SIGINT to
 * its group, then reaped) by workload_profiler_stop. */
pid_t workload_profiler_start(const workload_config_t *cfg, pid_t broker);
void workload_profiler_stop(pid_t child);
/* "synload: <text>" on stderr unless cfg->quiet. */
void workload_progress(const workload_config_t *cfg, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* [1, 5, 15 minute load averages] from /proc/loadavg. */
json_t *workload_loadavg_json(void);
/* rss_/peak_rss_/pss_/uss_<name>_mib of one process into o. */
void workload_add_memory(json_t *o, const char *name, pid_t pid);

/* Serves the bare handler (for workload_wrk's child process). */
int workload_hello_main(const char *address, volatile sig_atomic_t *stop);

#endif
