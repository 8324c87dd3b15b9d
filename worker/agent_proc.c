#include "worker/agent_proc.h"

#include <stdio.h>
#include <stdlib.h>

int worker_agent_proc_start(worker_agent_proc_t *self, const worker_job_t *job,
                            const worker_options_t *options, worker_proc_spec_t *spec,
                            worker_proc_stdout_fn *on_stdout, void *arg, char *err,
                            size_t errlen)
{
    spec->cwd = job->cwd;
    spec->max_stdout = options->max_output_bytes;
    spec->rlimit_as_mb = options->rlimit_as_mb;
    spec->nice = options->nice;
    char **wrapped = NULL;
    if (options->sandbox) {
        /* Inside bwrap a missing program is bwrap's own failed exit, which reads as the
         * agent failing; found out here it is what it is: no agent ran, the worker's
         * fault (the caller reports WORKER_RUN_FAULT), as without the sandbox. */
        if (worker_proc_check_program(spec->argv[0], err, errlen) != 0)
            return -1;
        worker_sandbox_policy_t policy = {
            .workspace = job->cwd,
            .ro_paths = options->sandbox_ro,
            .program = spec->argv[0],
            .network = job->network,
        };
        wrapped = worker_sandbox_argv(&policy, spec->argv, err, errlen);
        if (!wrapped)
            return -1;
        spec->argv = wrapped;
    }
    self->proc = worker_proc_start(spec, on_stdout, arg, err, errlen);
    free(wrapped);
    return self->proc ? 0 : -1;
}

const char *const *worker_agent_proc_secrets(const worker_options_t *options,
                                             const worker_job_t *job,
                                             const char *const *wanted)
{
    static const char *const none[] = {NULL};
    if (options->sandbox && job->network != WORKER_NETWORK_HOST)
        return none;
    return wanted;
}

void worker_agent_proc_init(worker_agent_proc_t *self, const worker_job_t *job,
                            const worker_options_t *options)
{
    self->proc = NULL;
    self->timed_out = self->cancelled = false;
    self->timeout_ms = job->timeout_ms;
    self->timeout_at = job->timeout_ms > 0 ? job->started_us / 1000 + job->timeout_ms : -1;
    self->max_output = options->max_output_bytes;
}

int64_t worker_agent_proc_deadline(const worker_agent_proc_t *self)
{
    if (!self->proc)
        return -1;
    int64_t best = worker_proc_deadline(self->proc);
    if (self->timeout_at >= 0 && (best < 0 || self->timeout_at < best))
        best = self->timeout_at;
    return best;
}

void worker_agent_proc_check_timeout(worker_agent_proc_t *self, int64_t now_ms)
{
    if (self->timeout_at >= 0 && now_ms >= self->timeout_at && !self->cancelled) {
        self->timed_out = true;
        self->timeout_at = -1;
        worker_proc_terminate(self->proc, now_ms);
    }
}

void worker_agent_proc_cancel(worker_agent_proc_t *self, int64_t now_ms)
{
    if (!self->proc || self->cancelled)
        return;
    self->cancelled = true;
    self->timeout_at = -1;
    worker_proc_terminate(self->proc, now_ms);
}

bool worker_agent_proc_finish_stopped(worker_agent_proc_t *self, worker_run_t *run)
{
    char reason[128];
    int code = 0;
    bool has_code = worker_proc_exit_code(self->proc, &code);
    if (self->cancelled) {
        worker_run_finish(run, WORKER_RUN_CANCELLED, "cancelled", false, 0);
    } else if (self->timed_out) {
        worker_format_timeout(self->timeout_ms, reason, sizeof reason);
        worker_run_finish(run, WORKER_RUN_FAILED, reason, false, 0);
    } else if (worker_proc_overflowed(self->proc)) {
        worker_format_output_limit(self->max_output, reason, sizeof reason);
        worker_run_finish(run, WORKER_RUN_FAILED, reason, has_code, code);
    } else {
        return false;
    }
    return true;
}
