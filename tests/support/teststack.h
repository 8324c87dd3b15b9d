/* teststack: starts a real syn stack (broker, gateway, workers as separate processes
 * of the built programs) on random loopback ports in a fresh temp dir, for
 * integration tests; every process logs to a file in that dir.
 *
 * Secure stacks: with SYN_TEST_SECURE=1 in the environment (or opts.secure) the
 * whole stack runs as it would across hosts. Key pairs are made with the built
 * `syn keygen` in dir/keys (broker; gateway and one per worker index, w0, w1, …,
 * with their roles),
 * the broker takes --curve-secret and --authorized-keys dir/keys/authorized (the
 * gateway's and workers' public certificates), the gateway and workers
 * --curve-secret and --broker-key, and the gateway --api-tokens dir/api-tokens
 * holding one admin token made with `syn token new`. The token is made once per
 * test program and given to http_set_bearer(), so every helper (http.h, sse.h,
 * the API helpers below) sends it; the stacks of one program share it. Tests
 * written for a plain stack thus prove the same promises over CURVE and tokens
 * (scripts/test.sh runs the integration tests both ways). */
#ifndef SYN_TESTSTACK_H
#define SYN_TESTSTACK_H

#include "tests/support/wait.h"

#include <jansson.h>
#include <stdbool.h>
#include <sys/types.h>

#define TESTSTACK_MAX_WORKERS 16

typedef struct {
    int workers;              /* default 2 */
    int slots;                /* per worker, default 4 */
    const char *provider;     /* default "mock" */
    const char *command;      /* for provider "command" */
    int mock_delay_ms;        /* 0 = the worker's default */
    const char *worker_args;  /* extra flags for every worker, space separated */
    const char *broker_args;  /* extra flags for the broker */
    const char *gateway_args; /* extra flags for the gateway */
    bool secure;              /* CURVE and API tokens; also on with SYN_TEST_SECURE=1 */
    /* Two broker sites (issue 21): site 0 and site 1 each have their own clients,
     * workers and events endpoints, the gateway and workers are given both (site 0
     * first) and follow the broker that answers; a broker binds at one site
     * (teststack_start_broker_at), over the same data dir or database. */
    bool two_sites;
} teststack_options_t;

typedef struct teststack_t teststack_t;

/* Starts everything and waits until /health reports all workers (NULL on failure,
 * with the logs printed). opts may be NULL for the defaults. */
teststack_t *teststack_start(const teststack_options_t *opts);
/* Stops every process (SIGTERM, then SIGKILL), prints the logs when keep_logs is
 * set in the environment (SYN_TEST_LOGS=1), removes the temp dir. */
void teststack_destroy(teststack_t **self_p);

const char *teststack_url(teststack_t *self);     /* "http://127.0.0.1:PORT" */
const char *teststack_dir(teststack_t *self);     /* the temp dir (data in dir/var) */
/* Whether dir/<log>.log ("broker", "gateway", "worker0", a spawned broker's
 * name) holds a line with text in it: what tests wait on a process's word with. */
bool teststack_log_has(teststack_t *self, const char *log, const char *text);
/* Whether the stack runs over CURVE and API tokens; its keys are in dir/keys. */
bool teststack_secure(teststack_t *self);
/* SYN_TEST_SECURE=1 is set: every stack is a secure one. */
bool teststack_secure_env(void);
pid_t teststack_worker_pid(teststack_t *self, int index);
pid_t teststack_broker_pid(teststack_t *self);
pid_t teststack_gateway_pid(teststack_t *self);

/* The broker's next start runs on the PostgreSQL database uri (--store): a
 * store migrated from the stack's SQLite one (test_store_migrate). */
void teststack_use_store(teststack_t *self, const char *uri);
/* The broker's PostgreSQL URI, or "" when it runs on SQLite. */
const char *teststack_store(teststack_t *self);

/* Process control for failure tests. kill sends sig and reaps when it is fatal. */
void teststack_kill_broker(teststack_t *self, int sig);
int teststack_start_broker(teststack_t *self);
/* Starts a broker bound at site (0, or 1 with opts.two_sites): the one the calls
 * without a site (kill, stop, pid) act on from then on. A broker may run at each
 * site at once (an active one and a standby). */
int teststack_start_broker_at(teststack_t *self, int site);
void teststack_kill_broker_at(teststack_t *self, int site, int sig);
pid_t teststack_broker_pid_at(teststack_t *self, int site);
void teststack_kill_gateway(teststack_t *self, int sig);
int teststack_start_gateway(teststack_t *self);
void teststack_kill_worker(teststack_t *self, int index, int sig);
/* Another broker over the stack's store (issue 21: on PostgreSQL, a standby
 * until the first's lease lapses), logging to dir/<log>.log; NULL endpoints are
 * the stack's own (bound only once the first broker is gone). Its pid, or -1;
 * the caller stops it (or hands it to teststack_adopt_broker). */
pid_t teststack_spawn_broker(teststack_t *self, const char *log, const char *clients,
                             const char *workers, const char *events, const char *extra_args);
/* The stack's broker is now pid (a standby that took over): stopped with the stack. */
void teststack_adopt_broker(teststack_t *self, pid_t pid);
/* Sends sig to a worker (or the broker) and waits up to timeout_ms for it to exit:
 * returns its exit code, 128 + the signal that ended it, or -1 when it was still
 * running at the deadline (it is then killed with SIGKILL). */
int teststack_stop_worker(teststack_t *self, int index, int sig, int timeout_ms);
int teststack_stop_broker(teststack_t *self, int sig, int timeout_ms);
/* Adds one more worker; returns its index or -1. */
int teststack_add_worker(teststack_t *self, const char *extra_args);

/* Waits until GET /health answers 200 with at least `workers` workers. */
int teststack_wait_health(teststack_t *self, int workers, int timeout_ms);
/* Whether process pid was started with the argument arg followed by value
 * (/proc/PID/cmdline): what a test checks a supervisor or the switch gave it. */
bool teststack_cmdline_has(pid_t pid, const char *arg, const char *value);

/* Prints every process's log to stderr (for a failing test). */
void teststack_dump_logs(teststack_t *self);

/* API helpers (return new references, NULL on failure). */
json_t *teststack_create_workflow(teststack_t *self, const char *json_body);
/* Starts an execution; returns its execution id (malloc'd) or NULL. */
char *teststack_execute(teststack_t *self, const char *workflow_id, const char *json_body);
/* Polls the status until it is terminal; returns the last status object or NULL on timeout. */
json_t *teststack_wait_terminal(teststack_t *self, const char *workflow_id,
                                const char *execution_id, int timeout_ms);

/* Reads the broker's database directly — its SQLite file read-only, or its
 * PostgreSQL database (SYN_TEST_STORE=postgresql), where ?N is $N and
 * group_concat string_agg, instr strpos, json_extract ->> — binding the NULL-ended
 * string arguments to ?1, ?2, …: the first column of the first row as a malloc'd
 * string (NULL when there is no row), or the number of rows. */
char *teststack_db_text(teststack_t *self, const char *sql, ...);
/* The same first column as an integer (a count), or -1 without a row. */
long long teststack_db_int(teststack_t *self, const char *sql, ...);
long teststack_db_count(teststack_t *self, const char *sql, ...);

/* A stack whose workers run a real agent script through the command provider:
 * `workers` workers of 2 slots with a 500 ms kill grace. scratch is a mkdtemp
 * template, filled in here and exported as SYN_TEST_DIR, which the workers and
 * their agents inherit, for the files the scripts leave (pids, logs). script must
 * outlive the stack. NULL on failure, with the scratch dir removed. */
teststack_t *teststack_start_command(char *scratch, int workers, const char *script);
/* Removes dir and everything in it: 0, or -1. */
int teststack_remove_dir(const char *dir);

/* Milliseconds since some fixed point (monotonic): for measuring how long something
 * took. Every timeout given to teststack is scaled by SYN_TEST_TIMEOUT_MULTIPLIER;
 * to wait for something, see wait.h. */
long long teststack_now_ms(void);

#endif
