/* The workers' adaptive prefetch with the defaults (issue 24, worker/prefetch.h),
 * through real processes and GET /workers: short phases are prefetched (a
 * worker holds a phase beyond its free slots), and once phases run long no
 * worker keeps a queued phase while another one sits idle. */
#include "tests/support/http.h"
#include "tests/support/teststack.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#define SHORT_EXECUTIONS 60

/* GET /workers' integer field of the connected worker name, or -1. */
static long worker_field(teststack_t *stack, const char *name, const char *field)
{
    http_response_t resp;
    long value = -1;
    if (http_get(&resp, "%s/workers", teststack_url(stack)) == 0 && resp.status == 200) {
        size_t i;
        json_t *w;
        json_array_foreach(json_object_get(resp.json, "workers"), i, w)
        {
            const char *n = json_string_value(json_object_get(w, "name"));
            if (n && strcmp(n, name) == 0 && json_is_true(json_object_get(w, "connected")))
                value = (long)json_integer_value(json_object_get(w, field));
        }
    }
    http_response_clear(&resp);
    return value;
}

static char *workflow(teststack_t *stack, const char *name, int phases, const char *prompt)
{
    char body[1024];
    int n = snprintf(body, sizeof body, "{\"name\":\"%s\",\"phases\":[", name);
    for (int i = 1; i <= phases; i++)
        n += snprintf(body + n, sizeof body - (size_t)n,
                      "%s{\"phase_id\":\"p%d\",\"name\":\"P%d\",\"order\":%d,"
                      "\"prompt_template\":\"%s\"}",
                      i > 1 ? "," : "", i, i, i, prompt);
    snprintf(body + n, sizeof body - (size_t)n, "]}");
    json_t *wf = teststack_create_workflow(stack, body);
    char *id = wf ? strdup(json_string_value(json_object_get(wf, "id"))) : NULL;
    json_decref(wf);
    return id;
}

static void test_short_prefetched_long_spread(void **state)
{
    (void)state;
    /* Two workers of one slot each, nothing but the defaults. */
    teststack_options_t opts = {.workers = 2, .slots = 1};
    teststack_t *stack = teststack_start(&opts);
    assert_non_null(stack);

    /* Short phases, more than the slots: after a few the workers hold one more
     * each, and one is handed a phase while its slot is busy. */
    char *short_wf = workflow(stack, "short", 3, "#mock sleep 20");
    assert_non_null(short_wf);
    for (int i = 0; i < SHORT_EXECUTIONS; i++) {
        char *id = teststack_execute(stack, short_wf, "{}");
        assert_non_null(id);
        free(id);
    }
    WAIT_FOR(worker_field(stack, "w0", "prefetch") == 1 && worker_field(stack, "w1", "prefetch") == 1,
             30000);
    assert_int_equal(worker_field(stack, "w0", "prefetch"), 1);
    assert_int_equal(worker_field(stack, "w1", "prefetch"), 1);
    WAIT_FOR(teststack_log_has(stack, "worker0", "waiting for a slot") ||
                 teststack_log_has(stack, "worker1", "waiting for a slot"),
             30000);
    assert_true(teststack_log_has(stack, "worker0", "waiting for a slot") ||
                teststack_log_has(stack, "worker1", "waiting for a slot"));
    const char *done = "SELECT 1 FROM executions WHERE status = 'completed'";
    WAIT_FOR(teststack_db_count(stack, done, NULL) == SHORT_EXECUTIONS, 60000);
    assert_int_equal(teststack_db_count(stack, done, NULL), SHORT_EXECUTIONS);

    /* Now long phases, one more than the slots: the third may be held first,
     * but as the phases run on the workers stop holding any and hand it back. */
    char *long_wf = workflow(stack, "long", 1, "#mock sleep 600000");
    assert_non_null(long_wf);
    char *ids[3];
    for (int i = 0; i < 3; i++)
        assert_non_null(ids[i] = teststack_execute(stack, long_wf, "{}"));
    WAIT_FOR(worker_field(stack, "w0", "prefetch") == 0 &&
                 worker_field(stack, "w1", "prefetch") == 0 &&
                 worker_field(stack, "w0", "prefetched") == 0 &&
                 worker_field(stack, "w1", "prefetched") == 0,
             30000);
    assert_int_equal(worker_field(stack, "w0", "prefetch"), 0);
    assert_int_equal(worker_field(stack, "w1", "prefetch"), 0);
    assert_int_equal(worker_field(stack, "w0", "prefetched"), 0);
    assert_int_equal(worker_field(stack, "w1", "prefetched"), 0);

    /* A worker that joins now gets the third at once: nobody kept it. */
    assert_int_equal(teststack_add_worker(stack, NULL), 2);
    WAIT_FOR(worker_field(stack, "w2", "running") == 1, 30000);
    assert_int_equal(worker_field(stack, "w2", "running"), 1);
    assert_int_equal(worker_field(stack, "w0", "running"), 1);
    assert_int_equal(worker_field(stack, "w1", "running"), 1);

    for (int i = 0; i < 3; i++)
        free(ids[i]);
    free(short_wf);
    free(long_wf);
    teststack_destroy(&stack);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_short_prefetched_long_spread),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
