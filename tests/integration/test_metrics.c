/* GET /metrics (issue 18): after a known run (3 executions completed, 2 failed) the
 * text is read by a real exposition parser (Python's prometheus_client, through
 * tests/support/parse_metrics.py) and its values checked. */
#include "tests/support/expect.h"
#include "tests/support/http.h"
#include "tests/support/teststack.h"

#include <setjmp.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define COMPLETED 3
#define FAILED 2

/* The text of url parsed by prometheus_client: {"name{labels}": value}. */
static json_t *parse_url(teststack_t *stack, const char *url);

/* /metrics as parsed by prometheus_client (Debian's python3-prometheus-client, for
 * the system python3): {"name{labels}": value}. */
static json_t *scrape(teststack_t *stack)
{
    char url[256];
    snprintf(url, sizeof url, "%s/metrics", teststack_url(stack));
    return parse_url(stack, url);
}

static json_t *parse_url(teststack_t *stack, const char *url)
{
    http_response_t resp;
    assert_int_equal(http_get(&resp, "%s", url), 0);
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
    assert_int_equal(value(values, "syn_broker_storage_full{}"), 0);
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

/* The port syn-broker --metrics 127.0.0.1:0 logged, or 0 while it has not. */
static unsigned logged_port(teststack_t *stack)
{
    char path[512];
    snprintf(path, sizeof path, "%s/broker.log", teststack_dir(stack));
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    char line[1024];
    unsigned port = 0;
    while (fgets(line, sizeof line, f))
        if (strstr(line, "metrics on http") && strstr(line, "port="))
            port = (unsigned)atoi(strstr(line, "port=") + 5);
    fclose(f);
    return port;
}

/* The broker's own --metrics serves its families, without the gateway's. */
static void test_broker_metrics_endpoint(void **state)
{
    (void)state;
    teststack_options_t opts = {.workers = 1, .slots = 2,
                                .broker_args = "--metrics 127.0.0.1:0"};
    teststack_t *stack = teststack_start(&opts);
    assert_non_null(stack);
    unsigned port = 0;
    WAIT_FOR((port = logged_port(stack)) > 0, 5000);
    assert_true(port > 0);
    json_decref(teststack_create_workflow(
        stack, "{\"id\":\"good\",\"name\":\"Good\",\"phases\":[{\"phase_id\":\"one\","
               "\"name\":\"One\",\"order\":1,\"prompt_template\":\"ok\"}]}"));
    char *id = teststack_execute(stack, "good", "{}");
    assert_non_null(id);
    json_decref(teststack_wait_terminal(stack, "good", id, 20000));
    free(id);
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%u/metrics", port);
    json_t *values = parse_url(stack, url);
    assert_int_equal(value(values, "syn_executions_finished_total{status=completed,workflow=good}"),
                     1);
    assert_int_equal(value(values, "syn_workers_connected{}"), 1);
    assert_null(json_object_get(values, "syn_sse_clients{}"));
    json_decref(values);
    /* The same listener answers a container's health check, through syn health. */
    char cmd[PATH_MAX + 128];
    snprintf(cmd, sizeof cmd, "%s/syn health --live --url http://127.0.0.1:%u >/dev/null",
             SYN_BIN_DIR, port);
    assert_int_equal(system(cmd), 0);
    http_response_t resp;
    assert_int_equal(http_get(&resp, "http://127.0.0.1:%u/nothing", port), 0);
    assert_int_equal(resp.status, 404);
    http_response_clear(&resp);
    teststack_destroy(&stack);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_metrics_after_a_known_run),
        cmocka_unit_test(test_broker_metrics_endpoint),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
