/* fuzz_run: the checks of the targets that fuzz what a provider reads (claude's
 * stream-json, the Messages API's events) into a run without an agent
 * (tests/support/bare_run.h): what any run must hold, and the comparison of two
 * runs fed the same bytes in different chunks, which must end the same. Header
 * only (static functions), one per target program. */
#ifndef SYN_TESTS_FUZZ_RUN_H
#define SYN_TESTS_FUZZ_RUN_H

#include "common/utf8.h"
#include "tests/support/bare_run.h"
#include "tests/fuzz/fuzz_check.h"
#include "worker/provider.h"

/* A new run (tests/support/bare_run.h). */
static worker_run_t *fuzz_run_new(void)
{
    worker_run_t *run = bare_run_new();
    FUZZ_CHECK(run != NULL);
    return run;
}

/* Where the second reading cuts the bytes in two: the first byte says. */
static size_t fuzz_cut(const uint8_t *data, size_t size)
{
    return size > 0 ? data[0] % (size + 1) : 0;
}

/* Both absent, or the same text. */
static void fuzz_same_text(const char *a, const char *b)
{
    FUZZ_CHECK((a == NULL) == (b == NULL));
    FUZZ_CHECK(!a || strcmp(a, b) == 0);
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
