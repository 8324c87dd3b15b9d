/* Route matching: every route, precedence of literal routes, 404/405 with Allow,
 * and the path parameters that must never reach the broker. */
#include "gateway/router.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

static void expect_route(const char *method, const char *path, gateway_route_id_t id,
                         const char *param0, const char *param1)
{
    gateway_route_t route;
    assert_int_equal(gateway_route_match(method, path, &route), GATEWAY_MATCH_OK);
    assert_int_equal(route.id, id);
    assert_int_equal(route.param_count, (param0 != NULL) + (param1 != NULL));
    if (param0)
        assert_string_equal(route.params[0], param0);
    if (param1)
        assert_string_equal(route.params[1], param1);
}

static void expect_not_found(const char *method, const char *path)
{
    gateway_route_t route;
    assert_int_equal(gateway_route_match(method, path, &route), GATEWAY_MATCH_NOT_FOUND);
}

static void expect_not_allowed(const char *method, const char *path, const char *allow)
{
    gateway_route_t route;
    assert_int_equal(gateway_route_match(method, path, &route),
                     GATEWAY_MATCH_METHOD_NOT_ALLOWED);
    assert_string_equal(route.allow, allow);
}

static void test_every_route(void **state)
{
    (void)state;
    expect_route("GET", "/health", GATEWAY_ROUTE_HEALTH, NULL, NULL);
    expect_route("GET", "/workflows", GATEWAY_ROUTE_WORKFLOW_LIST, NULL, NULL);
    expect_route("POST", "/workflows", GATEWAY_ROUTE_WORKFLOW_CREATE, NULL, NULL);
    expect_route("GET", "/workflows/wf-1", GATEWAY_ROUTE_WORKFLOW_GET, "wf-1", NULL);
    expect_route("POST", "/workflows/wf-1/execute", GATEWAY_ROUTE_EXECUTION_START, "wf-1", NULL);
    expect_route("GET", "/workflows/wf-1/executions/exec-abc", GATEWAY_ROUTE_EXECUTION_STATUS,
                 "wf-1", "exec-abc");
    expect_route("GET", "/workflows/executions/active", GATEWAY_ROUTE_EXECUTION_ACTIVE, NULL,
                 NULL);
    /* Issue 4: control, queries, events. */
    expect_route("GET", "/workflows/wf-1/runs", GATEWAY_ROUTE_WORKFLOW_RUNS, "wf-1", NULL);
    expect_route("GET", "/executions", GATEWAY_ROUTE_EXECUTION_LIST, NULL, NULL);
    expect_route("GET", "/executions/exec-1", GATEWAY_ROUTE_EXECUTION_GET, "exec-1", NULL);
    expect_route("GET", "/executions/exec-1/state", GATEWAY_ROUTE_EXECUTION_STATE, "exec-1",
                 NULL);
    expect_route("POST", "/executions/exec-1/cancel", GATEWAY_ROUTE_EXECUTION_CANCEL, "exec-1",
                 NULL);
    expect_route("POST", "/executions/exec-1/pause", GATEWAY_ROUTE_EXECUTION_PAUSE, "exec-1",
                 NULL);
    expect_route("POST", "/executions/exec-1/resume", GATEWAY_ROUTE_EXECUTION_RESUME, "exec-1",
                 NULL);
    expect_route("POST", "/executions/exec-1/inject", GATEWAY_ROUTE_EXECUTION_INJECT, "exec-1",
                 NULL);
    expect_route("GET", "/executions/exec-1/phases/plan/output", GATEWAY_ROUTE_PHASE_OUTPUT,
                 "exec-1", "plan");
    expect_route("GET", "/sse/executions/exec-1", GATEWAY_ROUTE_SSE_EXECUTION, "exec-1", NULL);
    expect_route("GET", "/sse/activity", GATEWAY_ROUTE_SSE_ACTIVITY, NULL, NULL);
    /* Issue 6: templates. */
    expect_route("POST", "/workflows/from-yaml", GATEWAY_ROUTE_WORKFLOW_FROM_YAML, NULL, NULL);
    expect_route("POST", "/workflows/validate", GATEWAY_ROUTE_WORKFLOW_VALIDATE, NULL, NULL);
    expect_route("GET", "/workflows/wf-1/export", GATEWAY_ROUTE_WORKFLOW_EXPORT, "wf-1", NULL);
    expect_route("DELETE", "/workflows/wf-1", GATEWAY_ROUTE_WORKFLOW_ARCHIVE, "wf-1", NULL);
    expect_route("PUT", "/workflows/wf-1/phases/plan", GATEWAY_ROUTE_PHASE_UPDATE, "wf-1",
                 "plan");
    /* Issue 16: the dashboard. */
    expect_route("GET", "/", GATEWAY_ROUTE_UI_REDIRECT, NULL, NULL);
    expect_route("GET", "/ui", GATEWAY_ROUTE_UI_REDIRECT, NULL, NULL);
    expect_route("GET", "/ui/", GATEWAY_ROUTE_UI_FILE, NULL, NULL);
    expect_route("GET", "/ui/app.js", GATEWAY_ROUTE_UI_FILE, "app.js", NULL);
    expect_route("GET", "/whoami", GATEWAY_ROUTE_WHOAMI, NULL, NULL);
}

static void test_literal_before_parameter(void **state)
{
    (void)state;
    /* "executions" is also a valid workflow id: the literal route wins only where
     * its whole pattern matches. */
    expect_route("GET", "/workflows/executions", GATEWAY_ROUTE_WORKFLOW_GET, "executions", NULL);
    expect_route("GET", "/workflows/executions/executions/active",
                 GATEWAY_ROUTE_EXECUTION_STATUS, "executions", "active");
    expect_not_allowed("POST", "/workflows/executions/active", "GET");
    /* A workflow may be called "validate" or "from-yaml": reading it still works. */
    expect_route("GET", "/workflows/validate", GATEWAY_ROUTE_WORKFLOW_GET, "validate", NULL);
    expect_route("GET", "/workflows/from-yaml/export", GATEWAY_ROUTE_WORKFLOW_EXPORT,
                 "from-yaml", NULL);
}

static void test_not_found(void **state)
{
    (void)state;
    /* "/" is the dashboard's redirect (issue 16). */
    expect_not_found("GET", "");
    expect_not_found("GET", "health");
    expect_not_found("GET", "/nope");
    expect_not_found("GET", "/health/");
    expect_not_found("GET", "/workflows/");
    expect_not_found("GET", "/workflows//execute");
    expect_not_found("GET", "/workflows/a/executions/");
    expect_not_found("GET", "/workflows/a/executions/b/c");
    expect_not_found("GET", "/a/b/c/d/e/f/g/h/i/j/k");
    expect_not_found("POST", "/Workflows");
    expect_not_found("GET", "/executions/");
    expect_not_found("GET", "/executions/a/phases/b");
    expect_not_found("GET", "/executions/a/phases//output");
    expect_not_found("GET", "/sse/executions");
    expect_not_found("GET", "/sse/activity/x");
    expect_not_found("POST", "/executions/a/stop");
}

static void test_method_not_allowed(void **state)
{
    (void)state;
    expect_not_allowed("POST", "/health", "GET");
    expect_not_allowed("DELETE", "/workflows", "GET, POST");
    expect_not_allowed("PUT", "/workflows/x", "GET, DELETE");
    expect_not_allowed("GET", "/workflows/x/phases/p", "PUT");
    expect_not_allowed("POST", "/workflows/x/export", "GET");
    expect_not_allowed("GET", "/workflows/x/execute", "POST");
    expect_not_allowed("HEAD", "/workflows/x/executions/y", "GET");
    expect_not_allowed("GET", "/executions/x/cancel", "POST");
    expect_not_allowed("GET", "/executions/x/inject", "POST");
    expect_not_allowed("POST", "/executions", "GET");
    expect_not_allowed("DELETE", "/executions/x", "GET");
    expect_not_allowed("POST", "/executions/x/state", "GET");
    expect_not_allowed("POST", "/sse/activity", "GET");
    expect_not_allowed("POST", "/workflows/x/runs", "GET");
}

static void test_bad_parameters(void **state)
{
    (void)state;
    char path[512];
    char id[GATEWAY_PARAM_MAX + 2];
    memset(id, 'a', sizeof id - 1);
    id[GATEWAY_PARAM_MAX] = '\0'; /* longest accepted */
    snprintf(path, sizeof path, "/workflows/%s", id);
    expect_route("GET", path, GATEWAY_ROUTE_WORKFLOW_GET, id, NULL);
    id[GATEWAY_PARAM_MAX] = 'a';
    id[GATEWAY_PARAM_MAX + 1] = '\0';
    snprintf(path, sizeof path, "/workflows/%s", id);
    expect_not_found("GET", path);
    snprintf(path, sizeof path, "/workflows/x/executions/%s", id);
    expect_not_found("GET", path);
    /* Decoded %FF (not UTF-8) and control characters never become ids. */
    expect_not_found("GET", "/workflows/a\xff");
    expect_not_found("GET", "/workflows/a\xc3");
    expect_not_found("GET", "/workflows/\xed\xa0\x80"); /* UTF-16 surrogate */
    expect_not_found("GET", "/workflows/\xc0\xaf");     /* overlong '/' */
    expect_not_found("GET", "/workflows/a\tb");
    expect_not_found("GET", "/workflows/a\x7f");
    expect_not_found("GET", "/workflows/\xf4\x90\x80\x80"); /* above U+10FFFF */
    /* Valid UTF-8 and spaces are passed on: the broker says it does not exist. */
    expect_route("GET", "/workflows/caf\xc3\xa9", GATEWAY_ROUTE_WORKFLOW_GET, "caf\xc3\xa9", NULL);
    expect_route("GET", "/workflows/a b", GATEWAY_ROUTE_WORKFLOW_GET, "a b", NULL);
    expect_route("GET", "/workflows/\xf0\x9f\x99\x82", GATEWAY_ROUTE_WORKFLOW_GET,
                 "\xf0\x9f\x99\x82", NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_route),
        cmocka_unit_test(test_literal_before_parameter),
        cmocka_unit_test(test_not_found),
        cmocka_unit_test(test_method_not_allowed),
        cmocka_unit_test(test_bad_parameters),
    };
    return cmocka_run_group_tests_name("gateway_router", tests, NULL, NULL);
}
