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

struct worker_cred_proxy_t;

typedef struct {
    worker_proc_t *proc;  /* NULL when the agent could not be started */
    /* A sandboxed `proxy` attempt's credential proxy (cred_proxy.h), or NULL;
     * made when the process's listening socket arrives on netns_fd (-1 = none
     * awaited), which the loop watches meanwhile. */
    struct worker_cred_proxy_t *proxy;
    int netns_fd;
    const worker_options_t *options; /* the provider's, for the proxy */
    bool timed_out, cancelled;
    int64_t timeout_ms;
    int64_t timeout_at;   /* -1 = none */
    uint64_t max_output;  /* the stdout limit, for the reason when it is passed */
} worker_agent_proc_t;

/* Sets the timeout and output limit from the job and options (proc stays NULL). */
void worker_agent_proc_init(worker_agent_proc_t *self, const worker_job_t *job,
                            const worker_options_t *options);
/* Starts spec (argv, env, pipes) as the attempt's agent in job->cwd: inside
 * the sandbox with the job's network when options->sandbox, else as is; a
 * `proxy` attempt gets its network namespace and its credential proxy. The
 * rlimits, niceness, grace and output limit come from options. 0, or -1 with
 * the reason in err (the caller finishes the run with it). */
int worker_agent_proc_start(worker_agent_proc_t *self, const worker_job_t *job,
                            const worker_options_t *options, worker_proc_spec_t *spec,
                            worker_proc_stdout_fn *on_stdout, void *arg, char *err,
                            size_t errlen);
/* The agent's environment (worker_env_build, with home = job->cwd): the
 * secrets it may hold are wanted without the sandbox or under `network: host`,
 * none otherwise; a `proxy` attempt is told where its proxy is
 * (ANTHROPIC_BASE_URL) and given the placeholder key instead. extra (NULL or
 * NULL-terminated "NAME=value" entries, at most 4) is added too. NULL when out of
 * memory; free with worker_env_free. */
char **worker_agent_proc_env(const worker_options_t *options, const worker_job_t *job,
                             const char *const *wanted, const char *const *extra);
/* What the loop watches: the process's descriptors and the proxy's. */
int worker_agent_proc_pollfds(worker_agent_proc_t *self, struct pollfd *fds, int max);
/* Steps the process and the proxy (fds as worker_agent_proc_pollfds filled them). */
void worker_agent_proc_step(worker_agent_proc_t *self, const struct pollfd *fds, int nfds,
                            int64_t now_ms);
/* Stops and frees the process and the proxy. */
void worker_agent_proc_destroy(worker_agent_proc_t *self);
/* The sooner of the process's own deadline and the timeout; -1 without a process. */
int64_t worker_agent_proc_deadline(const worker_agent_proc_t *self);
/* Stops the process (SIGTERM, then SIGKILL) once the timeout has passed. */
void worker_agent_proc_check_timeout(worker_agent_proc_t *self, int64_t now_ms);
/* Stops the process for a cancel; the run then finishes as cancelled. */
void worker_agent_proc_cancel(worker_agent_proc_t *self, int64_t now_ms);
/* Called once the process is done: puts what the proxy counted in the run's
 * usage (the proxy's count wins over the agent's own report: it is what was
 * forwarded, and an agent cannot understate it). Then finishes run when the
 * process ended because it was cancelled, timed out or wrote too much, and
 * returns true; false when its own outcome decides. */
bool worker_agent_proc_finish_stopped(worker_agent_proc_t *self, worker_run_t *run);

#endif
