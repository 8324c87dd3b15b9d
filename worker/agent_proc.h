/* agent_proc: what the providers that run an agent as a child process
 * (command, claude) share: the process, the attempt's timeout and cancel, and
 * the reasons an attempt ends before the agent's own verdict counts.
 *
 * A plain struct embedded in each run's state, so both keep using the process
 * (stdin, exit code) directly. */
#ifndef SYN_WORKER_AGENT_PROC_H
#define SYN_WORKER_AGENT_PROC_H

#include <stdbool.h>
#include <stdint.h>

#include "worker/proc.h"
#include "worker/provider.h"

typedef struct {
    worker_proc_t *proc;  /* NULL when the agent could not be started */
    bool timed_out, cancelled;
    int64_t timeout_ms;
    int64_t timeout_at;   /* -1 = none */
    uint64_t max_output;  /* the stdout limit, for the reason when it is passed */
} worker_agent_proc_t;

/* Sets the timeout and output limit from the job and options (proc stays NULL). */
void worker_agent_proc_init(worker_agent_proc_t *self, const worker_job_t *job,
                            const worker_options_t *options);
/* Starts spec (argv, env, pipes) as the attempt's agent in job->cwd: inside
 * the sandbox with the job's network when options->sandbox, else as is. The
 * rlimits, niceness, grace and output limit come from options. 0, or -1 with
 * the reason in err (the caller finishes the run with it). */
int worker_agent_proc_start(worker_agent_proc_t *self, const worker_job_t *job,
                            const worker_options_t *options, worker_proc_spec_t *spec,
                            worker_proc_stdout_fn *on_stdout, void *arg, char *err,
                            size_t errlen);
/* The secrets an agent may hold in its environment: under the sandbox none
 * but for a phase with the host's network (the credential proxy holds them
 * otherwise); without it, the names the provider asked for. */
const char *const *worker_agent_proc_secrets(const worker_options_t *options,
                                             const worker_job_t *job,
                                             const char *const *wanted);
/* The sooner of the process's own deadline and the timeout; -1 without a process. */
int64_t worker_agent_proc_deadline(const worker_agent_proc_t *self);
/* Stops the process (SIGTERM, then SIGKILL) once the timeout has passed. */
void worker_agent_proc_check_timeout(worker_agent_proc_t *self, int64_t now_ms);
/* Stops the process for a cancel; the run then finishes as cancelled. */
void worker_agent_proc_cancel(worker_agent_proc_t *self, int64_t now_ms);
/* Finishes run when the process ended because it was cancelled, timed out or
 * wrote too much, and returns true; false when its own outcome decides. */
bool worker_agent_proc_finish_stopped(worker_agent_proc_t *self, worker_run_t *run);

#endif
