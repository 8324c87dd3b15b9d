/* provider: how a worker runs one phase attempt with an agent.
 *
 * A provider (mock, command, later claude, anthropic) is configured once at
 * start-up; each attempt is a worker_run_t started from it. The worker's single
 * event loop drives every run without threads: it asks each run which file
 * descriptors to watch and when its next deadline is, polls them together with
 * the broker socket, then calls worker_run_step. A run may own a child process
 * (pipes to watch, timers for SIGTERM/SIGKILL) or be purely in-process (a timer).
 *
 * Output is collected by the run, already made valid UTF-8 without NUL, and cut
 * at WORKER_OUTPUT_MAX bytes with WORKER_OUTPUT_MARKER appended; the loop streams
 * it from worker_run_output as it grows and sends the whole of it in the result. */
#ifndef SYN_WORKER_PROVIDER_H
#define SYN_WORKER_PROVIDER_H

#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WORKER_OUTPUT_MAX (1024u * 1024u)
#define WORKER_OUTPUT_MARKER "\n[output truncated: more than 1 MiB]"
#define WORKER_STDERR_TAIL 2048u
/* The most descriptors one run asks to be watched at a time. */
#define WORKER_RUN_MAX_FDS 4

/* What to run: one attempt of one phase. Strings are copied by whatever needs
 * them after worker_run_start returns. */
typedef struct {
    const char *execution_id;
    const char *workflow_id;
    const char *phase_id;
    uint64_t attempt;
    const char *prompt;
    const char *model;   /* NULL when the phase names none */
    int64_t timeout_ms;  /* 0 = no limit */
    const char *cwd;     /* workspace directory; NULL = the worker's own */
} worker_job_t;

typedef enum {
    WORKER_RUN_RUNNING,
    WORKER_RUN_COMPLETED,
    WORKER_RUN_FAILED,
    WORKER_RUN_CANCELLED,
} worker_run_status_t;

typedef struct worker_provider_t worker_provider_t;
typedef struct worker_run_t worker_run_t;

/* In-process agent, no fork: after delay_ms (or a prompt line "#mock sleep <ms>")
 * the output is "mock output for phase <phase_id>:\n<prompt>"; a prompt line
 * "#mock fail <reason>" makes the attempt fail with that reason instead. */
worker_provider_t *worker_provider_mock_new(int64_t delay_ms);

/* Runs command (split by worker_argv_split, no shell) in its own process group
 * for each attempt, prompt on stdin, SYN_* variables in its environment; stdout
 * is the output. A timeout or cancel sends SIGTERM to the group and SIGKILL
 * kill_grace_ms later. NULL with the reason in err when command does not split. */
worker_provider_t *worker_provider_command_new(const char *command, int64_t kill_grace_ms,
                                               char *err, size_t errlen);

void worker_provider_destroy(worker_provider_t **self_p);
/* "mock", "command": what READY announces and what ASSIGN may ask for. */
const char *worker_provider_name(const worker_provider_t *self);

/* Starts one attempt. NULL with the reason in err when it cannot start at all;
 * a command that fails to execute still gives a run, which fails with the reason. */
worker_run_t *worker_run_start(worker_provider_t *provider, const worker_job_t *job,
                               char *err, size_t errlen);
/* Stops whatever still runs at once (SIGKILL to a child's group, then reaps it)
 * and frees the run. Safe with NULL and twice. */
void worker_run_destroy(worker_run_t **self_p);

/* Fills fds (room for max, at least WORKER_RUN_MAX_FDS) with the descriptors to
 * watch and the events wanted; returns how many. */
int worker_run_pollfds(worker_run_t *self, struct pollfd *fds, int max);
/* The monotonic time (ms) by which worker_run_step must be called again even
 * if no descriptor is ready; -1 for none. */
int64_t worker_run_deadline(worker_run_t *self);
/* Does the run's work: fds/nfds are what worker_run_pollfds returned, with
 * revents filled in (zero when nothing happened). Call it every loop turn. */
void worker_run_step(worker_run_t *self, const struct pollfd *fds, int nfds, int64_t now_ms);
/* Asks the run to stop: an in-process run ends at once, a child gets SIGTERM to
 * its group and SIGKILL after the grace. It finishes as cancelled. */
void worker_run_cancel(worker_run_t *self, int64_t now_ms);

/* Blocks, stepping the run alone until it finishes or max_ms passes; 0 when it
 * finished. For tests and one-shot tools; the worker uses its own loop. */
int worker_run_drive(worker_run_t *self, int64_t max_ms);

worker_run_status_t worker_run_status(const worker_run_t *self);
bool worker_run_finished(const worker_run_t *self);
/* The output so far (NUL-terminated, valid UTF-8; grows while the run runs; the
 * pointer may change after a step). */
const char *worker_run_output(const worker_run_t *self, size_t *len);
/* The reason a run failed or was cancelled, or NULL. */
const char *worker_run_error(const worker_run_t *self);
/* True with *code set when the run ended with a process exit code. */
bool worker_run_exit_code(const worker_run_t *self, int *code);
/* "completed", "failed", "cancelled" (or "running"): the wire names. */
const char *worker_run_status_name(worker_run_status_t status);

/* For provider implementations ------------------------------------------------ */

typedef struct {
    const char *name;
    /* Starts job, returning the run's private state, or NULL with err set. */
    void *(*start)(void *config, worker_run_t *run, const worker_job_t *job, char *err,
                   size_t errlen);
    int (*pollfds)(void *state, struct pollfd *fds, int max);
    int64_t (*deadline)(void *state);
    void (*step)(void *state, worker_run_t *run, const struct pollfd *fds, int nfds,
                 int64_t now_ms);
    void (*cancel)(void *state, worker_run_t *run, int64_t now_ms);
    /* Stops anything left at once, reaps it and frees state. */
    void (*destroy)(void *state);
    void (*config_destroy)(void *config);
} worker_provider_ops_t;

/* Wraps an implementation; takes ownership of config (freed by config_destroy). */
worker_provider_t *worker_provider_new(const worker_provider_ops_t *ops, void *config);

/* Adds raw bytes to the run's output: sanitized, cut at WORKER_OUTPUT_MAX. */
void worker_run_append(worker_run_t *self, const char *data, size_t len);
/* Ends the run (only the first call counts). error may be NULL; it is sanitized. */
void worker_run_finish(worker_run_t *self, worker_run_status_t status, const char *error,
                       bool has_exit_code, int exit_code);

/* "timed out after 2 s" (or "after 1.5 s") for a timeout of ms milliseconds. */
void worker_format_timeout(int64_t ms, char *buf, size_t buflen);

#endif
