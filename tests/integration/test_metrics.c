/* GET /metrics (issue 18): after a known run (3 executions completed, 2 failed) the
 * text is read by a real exposition parser (Python's prometheus_client, through
 * tests/support/parse_metrics.py) and its values checked. */
#include "tests/support/expect.h"
#include "tests/support/http.h"
#include "tests/support/teststack.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define COMPLETED 3
#define FAILED 2

/* /metrics as parsed by prometheus_client (Debian's python3-prometheus-client, for
 * the system python3): {"name{labels}": value}. */
static json_t *scrape(teststack_t *stack)
{
    http_response_t resp;
    assert_int_equal(http_get(&resp, "%s/metrics", teststack_url(stack)), 0);
    assert_int_equal(resp.status, 200);
    assert_non_null(strstr(resp.content_type, "text/plain; version=0.0.4"));
    char path[512];
    snprintf(path, sizeof path, "%s/metrics.txt", teststack_dir(stack));
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fwrite(resp.body, 1, resp.body_len, f);
    fclose(f);
    http_response_clear(&resp);
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s/tests/support/parse_metrics.py < %s", SYN_SOURCE_DIR,
             path);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    json_error_t error;
    json_t *values = json_loadf(p, 0, &error);
    assert_int_equal(pclose(p), 0);
    if (!values)
        fail_msg("parser output: %s", error.text);
    return values;
}

static double value(const json_t *values, const char *key)
{
    json_t *v = json_object_get(values, key);
    if (!v)
        fail_msg("no sample %s", key);
    return json_number_value(v);
}

static void test_metrics_after_a_known_run(void **state)
{
    (void)state;
    teststack_options_t opts = {.workers = 1, .slots = 4};
    teststack_t *stack = teststack_start(&opts);
    assert_non_null(stack);
    json_decref(teststack_create_workflow(
        stack, "{\"id\":\"good\",\"name\":\"Good\",\"phases\":[{\"phase_id\":\"one\","
               "\"name\":\"One\",\"order\":1,\"prompt_template\":\"ok\"}]}"));
    json_decref(teststack_create_workflow(
        stack, "{\"id\":\"bad\",\"name\":\"Bad\",\"phases\":[{\"phase_id\":\"one\","
               "\"name\":\"One\",\"order\":1,\"prompt_template\":\"#mock fail no\"}]}"));
    for (int i = 0; i < COMPLETED + FAILED; i++) {
        const char *workflow = i < COMPLETED ? "good" : "bad";
        char *id = teststack_execute(stack, workflow, "{}");
        assert_non_null(id);
        json_decref(teststack_wait_terminal(stack, workflow, id, 20000));
        free(id);
    }
    json_t *values = scrape(stack);
    assert_int_equal(value(values, "syn_executions_started_total{workflow=good}"), COMPLETED);
    assert_int_equal(value(values, "syn_executions_started_total{workflow=bad}"), FAILED);
    assert_int_equal(value(values, "syn_executions_finished_total{status=completed,workflow=good}"),
                     COMPLETED);
    assert_int_equal(value(values, "syn_executions_finished_total{status=failed,workflow=bad}"),
                     FAILED);
    assert_int_equal(value(values, "syn_phases_total{status=completed}"), COMPLETED);
    assert_int_equal(value(values, "syn_phase_queue_wait_seconds_count{}"), COMPLETED + FAILED);
    assert_int_equal(value(values, "syn_workers_connected{}"), 1);
    assert_int_equal(value(values, "syn_workers_healthy{}"), 1);
    assert_int_equal(value(values, "syn_worker_slots_free{}"), 4);
    assert_int_equal(value(values, "syn_ready_queue_depth{}"), 0);
    assert_true(value(values, "syn_broker_commits_total{}") > 0);
    assert_true(value(values, "syn_broker_commit_seconds_count{}") > 0);
    assert_true(value(values, "syn_broker_commit_seconds_bucket{le=+Inf}") ==
                value(values, "syn_broker_commit_seconds_count{}"));
    /* Its own requests: the five starts, by route pattern. */
    assert_int_equal(
        value(values, "syn_http_requests_total{code=200,method=POST,route=/workflows/{}/execute}"),
        COMPLETED + FAILED);
    assert_int_equal(value(values, "syn_sse_clients{}"), 0);
    json_decref(values);
    teststack_destroy(&stack);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_metrics_after_a_known_run),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
