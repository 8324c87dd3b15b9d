/* The HTTP contract of the core (issue 2): every error case with its exact status
 * and body, against a real stack (gateway, broker, workers as processes). */
#include "tests/support/expect.h"
#include "tests/support/http.h"
#include "tests/support/pg_cluster.h"
#include "tests/support/teststack.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

static teststack_t *stack;

#define URL(path) "%s" path, teststack_url(stack)

static const char *TWO_PHASES =
    "{\"id\":\"contract\",\"name\":\"Contract\","
    " \"input_declarations\":[{\"name\":\"topic\"},{\"name\":\"depth\",\"required\":true},"
    "   {\"name\":\"tone\",\"required\":false},{\"name\":\"lang\",\"default\":\"en\"}],"
    " \"phases\":[{\"phase_id\":\"a\",\"name\":\"A\",\"order\":1,\"prompt_template\":"
    "   \"#mock sleep 3000\\nabout {{topic}}\"},"
    "  {\"phase_id\":\"b\",\"name\":\"B\",\"order\":2,\"prompt_template\":\"{{a}}\"}]}";

static int setup(void **state)
{
    (void)state;
    teststack_options_t opts = {.workers = 2, .slots = 8};
    stack = teststack_start(&opts);
    if (!stack)
        return -1;
    json_t *wf = teststack_create_workflow(stack, TWO_PHASES);
    if (!wf)
        return -1;
    json_decref(wf);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    teststack_destroy(&stack);
    return 0;
}

static void test_health_reports_workers(void **state)
{
    (void)state;
    http_response_t r;
    http_get(&r, URL("/health"));
    /* On PostgreSQL the active broker (the lease's holder) is named too. */
    json_t *active = json_object_get(r.json, "active_broker");
    assert_true(pg_cluster_wanted() ? json_integer_value(json_object_get(active, "token")) == 1
                                    : active == NULL);
    json_object_del(r.json, "active_broker");
    expect_response(&r, 200, "{\"status\":\"healthy\",\"broker\":\"up\",\"workers\":2,"
                              "\"mode\":\"full\",\"degraded_reasons\":[]}");
    assert_string_equal(r.content_type, "application/json");
    http_response_clear(&r);
}

static void test_create_workflow_answers_201_and_fills_defaults(void **state)
{
    (void)state;
    http_response_t r;
    http_post(&r,
              "{\"name\":\"Generated\",\"phases\":[{\"phase_id\":\"only\",\"name\":\"Only\","
              "\"order\":1,\"prompt_template\":\"hi\"}]}",
              URL("/workflows"));
    assert_int_equal(r.status, 201);
    const char *id = json_str(r.json, "id");
    assert_int_equal(strlen(id), 15);
    assert_memory_equal(id, "wf-", 3);
    assert_string_equal(json_str(r.json, "status"), "created");
    assert_string_equal(json_str(r.json, "workflow_type"), "custom");
    assert_string_equal(json_str(r.json, "classification"), "standard");

    http_response_t got;
    http_get(&got, "%s/workflows/%s", teststack_url(stack), id);
    assert_int_equal(got.status, 200);
    assert_string_equal(json_str(got.json, "name"), "Generated");
    json_t *phases = json_object_get(got.json, "phases");
    assert_int_equal(json_array_size(phases), 1);
    assert_string_equal(json_str(json_array_get(phases, 0), "prompt_template"), "hi");
    http_response_clear(&got);
    http_response_clear(&r);
}

static void test_create_workflow_errors(void **state)
{
    (void)state;
    http_response_t r;
    http_post(&r, TWO_PHASES, URL("/workflows"));
    expect_response(&r, 409, "{\"detail\":\"Workflow contract already exists\"}");
    http_response_clear(&r);

    http_post(&r,
              "{\"name\":\"x\",\"colour\":\"red\",\"phases\":[{\"phase_id\":\"p\",\"name\":\"P\","
              "\"order\":1,\"prompt_template\":\"t\"}]}",
              URL("/workflows"));
    expect_response(&r, 422,
                    "{\"detail\":[{\"loc\":[\"body\",\"colour\"],\"msg\":\"Extra inputs are not "
                    "permitted\",\"type\":\"extra_forbidden\"}]}");
    http_response_clear(&r);

    http_post(&r, "{\"name\":\"x\",\"phases\":[]}", URL("/workflows"));
    assert_int_equal(r.status, 422);
    json_t *item = json_array_get(json_object_get(r.json, "detail"), 0);
    assert_string_equal(json_str(item, "type"), "too_short");
    http_response_clear(&r);

    http_post(&r,
              "{\"id\":\"-bad id\",\"name\":\"x\",\"phases\":[{\"phase_id\":\"p\",\"name\":\"P\","
              "\"order\":1,\"prompt_template\":\"t\"}]}",
              URL("/workflows"));
    assert_int_equal(r.status, 422);
    item = json_array_get(json_object_get(r.json, "detail"), 0);
    assert_string_equal(json_str(item, "type"), "string_pattern_mismatch");
    http_response_clear(&r);

    http_post(&r,
              "{\"name\":\"x\",\"phases\":[{\"phase_id\":\"p\",\"name\":\"P\",\"order\":1,"
              "\"prompt_template\":\"t\"},{\"phase_id\":\"p\",\"name\":\"Q\",\"order\":2,"
              "\"prompt_template\":\"t\"}]}",
              URL("/workflows"));
    assert_int_equal(r.status, 422);
    assert_non_null(strstr(r.body, "Duplicate phase_id 'p'"));
    http_response_clear(&r);

    http_post(&r,
              "{\"name\":\"x\",\"phases\":[{\"phase_id\":\"p\",\"name\":\"P\",\"order\":1,"
              "\"prompt_template\":\"t\"},{\"phase_id\":\"q\",\"name\":\"Q\",\"order\":1,"
              "\"prompt_template\":\"t\"}]}",
              URL("/workflows"));
    assert_int_equal(r.status, 422);
    assert_non_null(strstr(r.body, "Duplicate order 1"));
    http_response_clear(&r);

    http_get(&r, URL("/workflows/nope"));
    expect_response(&r, 404, "{\"detail\":\"Workflow nope not found\"}");
    http_response_clear(&r);
}

static void test_execute_body_errors(void **state)
{
    (void)state;
    http_response_t r;
    char url[256];
    snprintf(url, sizeof url, "%s/workflows/contract/execute", teststack_url(stack));
    http_request("POST", url, NULL, NULL, &r);
    expect_response(&r, 422,
                    "{\"detail\":[{\"loc\":[\"body\"],\"msg\":\"Field required\","
                    "\"type\":\"missing\"}]}");
    http_response_clear(&r);

    http_request("POST", url, "{\"inputs\": {", NULL, &r);
    assert_int_equal(r.status, 422);
    json_t *item = json_array_get(json_object_get(r.json, "detail"), 0);
    assert_string_equal(json_str(item, "type"), "json_invalid");
    http_response_clear(&r);

    http_request("POST", url, "{\"colour\":\"red\"}", NULL, &r);
    expect_response(&r, 422,
                    "{\"detail\":[{\"loc\":[\"body\",\"colour\"],\"msg\":\"Extra inputs are not "
                    "permitted\",\"type\":\"extra_forbidden\"}]}");
    http_response_clear(&r);

    http_request("POST", url, "{\"inputs\":{\"k\":5},\"task\":7}", NULL, &r);
    assert_int_equal(r.status, 422);
    json_t *detail = json_object_get(r.json, "detail");
    assert_int_equal(json_array_size(detail), 2);
    json_t *expected_k = json_loads("{\"loc\":[\"body\",\"inputs\",\"k\"],\"msg\":\"Input "
                                    "should be a valid string\",\"type\":\"string_type\"}",
                                    0, NULL);
    assert_true(json_equal(json_array_get(detail, 0), expected_k) ||
                json_equal(json_array_get(detail, 1), expected_k));
    json_decref(expected_k);
    http_response_clear(&r);

    /* Body validation comes before the workflow lookup. */
    http_post(&r, "{\"bogus\":1}", URL("/workflows/no-such-workflow/execute"));
    assert_int_equal(r.status, 422);
    http_response_clear(&r);

    http_post(&r, "{}", URL("/workflows/no-such-workflow/execute"));
    expect_response(&r, 404, "{\"detail\":\"Workflow no-such-workflow not found\"}");
    http_response_clear(&r);

    /* Deprecated keys are accepted and ignored. */
    http_post(&r,
              "{\"inputs\":{\"topic\":\"t\",\"depth\":\"1\"},\"provider\":\"claude\","
              "\"max_budget_usd\":2.5,\"repos\":[]}",
              URL("/workflows/contract/execute"));
    assert_int_equal(r.status, 200);
    http_response_clear(&r);
}

static void test_execute_missing_required_inputs(void **state)
{
    (void)state;
    http_response_t r;
    http_post(&r, "{}", URL("/workflows/contract/execute"));
    expect_response(&r, 422,
                    "{\"detail\":\"Missing required inputs: depth, topic. Provide them via: "
                    "--input depth=<value>, --input topic=<value>\"}");
    http_response_clear(&r);

    /* task counts as the input named task; a default satisfies a requirement. */
    http_post(&r, "{\"inputs\":{\"topic\":\"x\"}}", URL("/workflows/contract/execute"));
    expect_response(&r, 422,
                    "{\"detail\":\"Missing required inputs: depth. Provide them via: "
                    "--input depth=<value>\"}");
    http_response_clear(&r);
}

static void test_execute_then_status_has_every_key(void **state)
{
    (void)state;
    http_response_t r;
    http_post(&r, "{\"inputs\":{\"topic\":\"x\",\"depth\":\"2\"}}",
              URL("/workflows/contract/execute"));
    assert_int_equal(r.status, 200);
    const char *id = json_str(r.json, "execution_id");
    assert_int_equal(strlen(id), 17);
    assert_memory_equal(id, "exec-", 5);
    for (int i = 5; i < 17; i++)
        assert_non_null(strchr("0123456789abcdef", id[i]));
    assert_string_equal(json_str(r.json, "workflow_id"), "contract");
    assert_string_equal(json_str(r.json, "status"), "started");
    assert_string_equal(json_str(r.json, "message"), "Workflow execution started");

    /* A GET right after the 200 finds it. */
    http_response_t s;
    http_get(&s, "%s/workflows/contract/executions/%s", teststack_url(stack), id);
    assert_int_equal(s.status, 200);
    const char *keys[] = {"execution_id", "workflow_id",  "status",       "current_phase",
                          "completed_phases", "total_phases", "started_at", "completed_at",
                          "error"};
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++)
        assert_non_null(json_object_get(s.json, keys[i]));
    /* and queue_position, only while it waits to start */
    json_t *waiting = json_object_get(s.json, "queue_position");
    assert_int_equal(json_object_size(s.json), 9 + (waiting != NULL));
    if (waiting)
        assert_string_equal(json_str(s.json, "status"), "pending");
    assert_string_equal(json_str(s.json, "execution_id"), id);
    assert_int_equal(json_integer_value(json_object_get(s.json, "total_phases")), 2);
    assert_int_equal(json_integer_value(json_object_get(s.json, "completed_phases")), 0);
    assert_true(json_is_null(json_object_get(s.json, "completed_at")));
    assert_true(json_is_null(json_object_get(s.json, "error")));
    const char *status = json_str(s.json, "status");
    assert_true(!strcmp(status, "pending") || !strcmp(status, "running"));
    /* started_at is when the first phase was dispatched: null while pending. */
    if (!strcmp(status, "pending"))
        assert_true(json_is_null(json_object_get(s.json, "started_at")));
    else
        expect_timestamp(s.json, "started_at");
    http_response_clear(&s);

    /* While phase a sleeps, the execution is running with a as its current phase. */
    int seen_running = 0;
    for (wait_t w = wait_begin(5000); !seen_running && wait_next(&w);) {
        http_get(&s, "%s/workflows/contract/executions/%s", teststack_url(stack), id);
        seen_running = !strcmp(json_str(s.json, "status"), "running") &&
                       !strcmp(json_str(s.json, "current_phase"), "a");
        http_response_clear(&s);
    }
    assert_true(seen_running);

    /* A unique prefix finds it; the wrong workflow does not. */
    char prefix[16];
    snprintf(prefix, sizeof prefix, "%.12s", id);
    http_get(&s, "%s/workflows/contract/executions/%s", teststack_url(stack), prefix);
    assert_int_equal(s.status, 200);
    assert_string_equal(json_str(s.json, "execution_id"), id);
    http_response_clear(&s);

    json_t *other = teststack_create_workflow(
        stack, "{\"id\":\"other\",\"name\":\"Other\",\"phases\":[{\"phase_id\":\"p\","
               "\"name\":\"P\",\"order\":1,\"prompt_template\":\"t\"}]}");
    json_decref(other);
    http_get(&s, "%s/workflows/other/executions/%s", teststack_url(stack), id);
    char expected[256];
    snprintf(expected, sizeof expected,
             "{\"detail\":\"Execution %s not found for workflow other\"}", id);
    expect_response(&s, 404, expected);
    http_response_clear(&s);
    http_response_clear(&r);
}

static void test_status_lookup_errors(void **state)
{
    (void)state;
    http_response_t r;
    http_get(&r, URL("/workflows/contract/executions/exec-zzzz"));
    expect_response(&r, 404, "{\"detail\":\"Execution not found: exec-zzzz\"}");
    http_response_clear(&r);

    /* Two executions exist by now, so the bare prefix is ambiguous. */
    for (int i = 0; i < 2; i++) {
        http_post(&r, "{\"inputs\":{\"topic\":\"x\",\"depth\":\"2\"}}",
                  URL("/workflows/contract/execute"));
        http_response_clear(&r);
    }
    http_get(&r, URL("/workflows/contract/executions/exec-"));
    assert_int_equal(r.status, 409);
    assert_true(json_is_string(json_object_get(r.json, "detail")));
    assert_non_null(strstr(json_str(r.json, "detail"), "exec-"));
    http_response_clear(&r);
}

static void test_active_listing(void **state)
{
    (void)state;
    char *ids[3];
    for (int i = 0; i < 3; i++) {
        ids[i] = teststack_execute(stack, "contract",
                                   "{\"inputs\":{\"topic\":\"x\",\"depth\":\"2\"}}");
        assert_non_null(ids[i]);
        /* Distinct creation times, which the listing orders by: not a wait. */
        wait_exactly_ms(2);
    }
    http_response_t r;
    http_get(&r, URL("/workflows/executions/active?limit=2"));
    assert_int_equal(r.status, 200);
    assert_true(json_is_array(r.json));
    assert_int_equal(json_array_size(r.json), 2);
    /* Newest first: the last one started comes first. */
    assert_string_equal(json_str(json_array_get(r.json, 0), "execution_id"), ids[2]);
    assert_string_equal(json_str(json_array_get(r.json, 1), "execution_id"), ids[1]);
    http_response_clear(&r);

    http_get(&r, URL("/workflows/executions/active"));
    assert_int_equal(r.status, 200);
    size_t n = json_array_size(r.json);
    assert_true(n >= 3 && n <= 20);
    for (size_t i = 0; i < n; i++) {
        const char *st = json_str(json_array_get(r.json, i), "status");
        assert_true(!strcmp(st, "pending") || !strcmp(st, "running") || !strcmp(st, "paused"));
    }
    http_response_clear(&r);

    const char *bad[] = {"0", "101", "abc", "-1", "1.5"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        http_get(&r, "%s/workflows/executions/active?limit=%s", teststack_url(stack), bad[i]);
        assert_int_equal(r.status, 422);
        json_t *loc = json_object_get(json_array_get(json_object_get(r.json, "detail"), 0), "loc");
        json_t *want = json_loads("[\"query\",\"limit\"]", 0, NULL);
        assert_true(json_equal(loc, want));
        json_decref(want);
        http_response_clear(&r);
    }
    for (int i = 0; i < 3; i++)
        free(ids[i]);
}

static void test_unknown_route_and_wrong_method(void **state)
{
    (void)state;
    http_response_t r;
    http_get(&r, URL("/no/such/route"));
    assert_int_equal(r.status, 404);
    assert_true(json_is_string(json_object_get(r.json, "detail")));
    http_response_clear(&r);

    char url[256];
    snprintf(url, sizeof url, "%s/health", teststack_url(stack));
    http_request("POST", url, "{}", NULL, &r);
    assert_int_equal(r.status, 405);
    http_response_clear(&r);
    snprintf(url, sizeof url, "%s/workflows/contract/execute", teststack_url(stack));
    http_request("GET", url, NULL, NULL, &r);
    assert_int_equal(r.status, 405);
    http_response_clear(&r);
}

static void test_workflow_listing_pages(void **state)
{
    (void)state;
    http_response_t r;
    http_get(&r, URL("/workflows?page=1&page_size=1"));
    assert_int_equal(r.status, 200);
    assert_int_equal(json_array_size(json_object_get(r.json, "workflows")), 1);
    assert_true(json_integer_value(json_object_get(r.json, "total")) >= 2);
    http_response_clear(&r);
    http_get(&r, URL("/workflows?page_size=500"));
    assert_int_equal(r.status, 422);
    http_response_clear(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_health_reports_workers),
        cmocka_unit_test(test_create_workflow_answers_201_and_fills_defaults),
        cmocka_unit_test(test_create_workflow_errors),
        cmocka_unit_test(test_execute_body_errors),
        cmocka_unit_test(test_execute_missing_required_inputs),
        cmocka_unit_test(test_execute_then_status_has_every_key),
        cmocka_unit_test(test_status_lookup_errors),
        cmocka_unit_test(test_active_listing),
        cmocka_unit_test(test_unknown_route_and_wrong_method),
        cmocka_unit_test(test_workflow_listing_pages),
    };
    return cmocka_run_group_tests_name("api_contract", tests, setup, teardown);
}
