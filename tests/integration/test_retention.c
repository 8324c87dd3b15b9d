/* Retention end to end (issue 18): syn-broker --retain-seconds 1 deletes finished
 * executions from the loop (GET /executions/{id} answers 404 once they are gone,
 * and so does GET /workflows/{wid}/executions/{id}, which the gateway answers from
 * its local view until the broker's ExecutionsDeleted) while one that is still
 * running stays. */
#include "tests/support/http.h"
#include "tests/support/teststack.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static long status_of(teststack_t *stack, const char *id)
{
    http_response_t resp;
    assert_int_equal(http_get(&resp, "%s/executions/%s", teststack_url(stack), id), 0);
    long status = resp.status;
    http_response_clear(&resp);
    return status;
}

/* The same through the workflow's route, which the gateway's view may answer. */
static long status_in_workflow(teststack_t *stack, const char *workflow_id, const char *id)
{
    http_response_t resp;
    assert_int_equal(http_get(&resp, "%s/workflows/%s/executions/%s", teststack_url(stack),
                              workflow_id, id),
                     0);
    long status = resp.status;
    http_response_clear(&resp);
    return status;
}

static void test_finished_executions_expire(void **state)
{
    (void)state;
    teststack_options_t opts = {.workers = 1, .slots = 2, .broker_args = "--retain-seconds 1"};
    teststack_t *stack = teststack_start(&opts);
    assert_non_null(stack);
    json_decref(teststack_create_workflow(
        stack, "{\"id\":\"quick\",\"name\":\"Quick\",\"phases\":[{\"phase_id\":\"one\","
               "\"name\":\"One\",\"order\":1,\"prompt_template\":\"ok\"}]}"));
    json_decref(teststack_create_workflow(
        stack, "{\"id\":\"slow\",\"name\":\"Slow\",\"phases\":[{\"phase_id\":\"one\","
               "\"name\":\"One\",\"order\":1,\"prompt_template\":\"#mock sleep 30000\"}]}"));
    char *slow = teststack_execute(stack, "slow", "{}");
    assert_non_null(slow);
    char *done[3];
    for (int i = 0; i < 3; i++) {
        done[i] = teststack_execute(stack, "quick", "{}");
        assert_non_null(done[i]);
        json_decref(teststack_wait_terminal(stack, "quick", done[i], 20000));
        assert_int_equal(status_of(stack, done[i]), 200);
        assert_int_equal(status_in_workflow(stack, "quick", done[i]), 200);
    }
    for (int i = 0; i < 3; i++) {
        WAIT_FOR(status_of(stack, done[i]) == 404, 15000);
        assert_int_equal(status_of(stack, done[i]), 404);
        /* The event comes over another socket than the reply: a moment later. */
        WAIT_FOR(status_in_workflow(stack, "quick", done[i]) == 404, 5000);
        assert_int_equal(status_in_workflow(stack, "quick", done[i]), 404);
    }
    assert_int_equal(status_of(stack, slow), 200);
    http_response_t resp;
    assert_int_equal(http_get(&resp, "%s/executions", teststack_url(stack)), 0);
    assert_int_equal(json_integer_value(json_object_get(resp.json, "total")), 1);
    http_response_clear(&resp);
    for (int i = 0; i < 3; i++)
        free(done[i]);
    free(slow);
    teststack_destroy(&stack);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_finished_executions_expire),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
