/* fuzz_run: a worker run with no agent behind it, for the targets that fuzz what
 * a provider reads (claude's stream-json, the Messages API's events): the run
 * gathers output, usage and events exactly as in the worker, and the target
 * feeds it the bytes. Also the comparison of two runs fed the same bytes in
 * different chunks, which must end the same. Header only (static functions),
 * one per target program. */
#ifndef SYN_TESTS_FUZZ_RUN_H
#define SYN_TESTS_FUZZ_RUN_H

#include "common/utf8.h"
#include "tests/fuzz/fuzz_check.h"
#include "worker/provider.h"

static int fuzz_state; /* the runs' state: nothing, but not NULL */

static void *fuzz_start(void *config, worker_run_t *run, const worker_job_t *job, char *err,
                        size_t errlen)
{
    (void)config, (void)run, (void)job, (void)err, (void)errlen;
    return &fuzz_state;
}

static int fuzz_pollfds(void *state, struct pollfd *fds, int max)
{
    (void)state, (void)fds, (void)max;
    return 0;
}

static int64_t fuzz_deadline(void *state)
{
    (void)state;
    return -1;
}

static void fuzz_step(void *state, worker_run_t *run, const struct pollfd *fds, int nfds,
                      int64_t now)
{
    (void)state, (void)run, (void)fds, (void)nfds, (void)now;
}

static void fuzz_cancel(void *state, worker_run_t *run, int64_t now)
{
    (void)state, (void)now;
    worker_run_finish(run, WORKER_RUN_CANCELLED, "cancelled", false, 0);
}

static void fuzz_destroy(void *state)
{
    (void)state;
}

static const worker_provider_ops_t fuzz_ops = {
    .name = "fuzz",
    .start = fuzz_start,
    .pollfds = fuzz_pollfds,
    .deadline = fuzz_deadline,
    .step = fuzz_step,
    .cancel = fuzz_cancel,
    .destroy = fuzz_destroy,
};

/* A new run (its provider is made once and kept for the process). */
static worker_run_t *fuzz_run_new(void)
{
    static worker_provider_t *provider;
    if (!provider)
        provider = worker_provider_new(&fuzz_ops, NULL);
    FUZZ_CHECK(provider != NULL);
    worker_job_t job = {.execution_id = "ex-1", .workflow_id = "wf-1", .phase_id = "plan",
                        .attempt = 1, .prompt = "fuzz"};
    char err[256];
    worker_run_t *run = worker_run_start(provider, &job, err, sizeof err);
    FUZZ_CHECK(run != NULL);
    worker_run_usage(run)->reported = true;
    return run;
}

/* Output valid UTF-8 without NUL, usage counts not negative. */
static void fuzz_run_check(const worker_run_t *run)
{
    size_t len;
    const char *output = worker_run_output(run, &len);
    FUZZ_CHECK(strlen(output) == len);
    FUZZ_CHECK(syn_utf8_valid_prefix((const uint8_t *)output, len) == len);
    const worker_usage_t *usage = worker_run_usage((worker_run_t *)run);
    FUZZ_CHECK(usage->input_tokens >= 0 && usage->output_tokens >= 0);
    FUZZ_CHECK(usage->cache_creation_tokens >= 0 && usage->cache_read_tokens >= 0);
    FUZZ_CHECK(usage->num_turns >= 0 && usage->cost_usd >= 0);
}

/* Two runs that read the same bytes: the same output, usage and events. */
static void fuzz_run_same(worker_run_t *a, worker_run_t *b)
{
    size_t len_a, len_b;
    const char *out_a = worker_run_output(a, &len_a);
    const char *out_b = worker_run_output(b, &len_b);
    FUZZ_CHECK(len_a == len_b && memcmp(out_a, out_b, len_a) == 0);
    json_t *usage_a = worker_run_usage_json(a);
    json_t *usage_b = worker_run_usage_json(b);
    /* The wall time of each run, unless the agent reported its own. */
    FUZZ_CHECK(worker_run_usage(a)->duration_ms == worker_run_usage(b)->duration_ms);
    json_object_del(usage_a, "duration_ms");
    json_object_del(usage_b, "duration_ms");
    FUZZ_CHECK(json_equal(usage_a, usage_b));
    json_decref(usage_a);
    json_decref(usage_b);
    for (;;) {
        json_t *event_a = worker_run_take_event(a);
        json_t *event_b = worker_run_take_event(b);
        FUZZ_CHECK((event_a == NULL) == (event_b == NULL));
        if (!event_a)
            break;
        FUZZ_CHECK(json_equal(event_a, event_b));
        json_decref(event_a);
        json_decref(event_b);
    }
}

#endif
