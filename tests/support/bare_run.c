/* bare_run: a provider whose runs do nothing on their own (see bare_run.h). */
#include "tests/support/bare_run.h"

static int bare_state; /* the runs' state: nothing, but not NULL */

static void *bare_start(void *config, worker_run_t *run, const worker_job_t *job, char *err,
                        size_t errlen)
{
    (void)config, (void)run, (void)job, (void)err, (void)errlen;
    return &bare_state;
}

static int bare_pollfds(void *state, struct pollfd *fds, int max)
{
    (void)state, (void)fds, (void)max;
    return 0;
}

static int64_t bare_deadline(void *state)
{
    (void)state;
    return -1;
}

static void bare_step(void *state, worker_run_t *run, const struct pollfd *fds, int nfds,
                      int64_t now)
{
    (void)state, (void)run, (void)fds, (void)nfds, (void)now;
}

static void bare_cancel(void *state, worker_run_t *run, int64_t now)
{
    (void)state, (void)now;
    worker_run_finish(run, WORKER_RUN_CANCELLED, "cancelled", false, 0);
}

static void bare_destroy(void *state)
{
    (void)state;
}

static const worker_provider_ops_t bare_ops = {
    .name = "bare",
    .start = bare_start,
    .pollfds = bare_pollfds,
    .deadline = bare_deadline,
    .step = bare_step,
    .cancel = bare_cancel,
    .destroy = bare_destroy,
};

worker_run_t *bare_run_new(void)
{
    static worker_provider_t *provider;
    if (!provider)
        provider = worker_provider_new(&bare_ops, NULL);
    if (!provider)
        return NULL;
    worker_job_t job = {.execution_id = "ex-1", .workflow_id = "wf-1", .phase_id = "plan",
                        .attempt = 1, .prompt = "bare"};
    char err[256];
    worker_run_t *run = worker_run_start(provider, &job, err, sizeof err);
    if (run)
        worker_run_usage(run)->reported = true;
    return run;
}
