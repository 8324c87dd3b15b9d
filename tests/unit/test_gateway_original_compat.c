/* The original's shapes (gateway/original_compat.h, gateway/original_reports.h), pure:
 * the /api/v1 prefix, the translation of its CreateWorkflowRequest, the display
 * strings, the session ids, the cost strings, the export manifest and the event data.
 * The same through real HTTP: tests/integration/test_original_clients.c. */
#include "gateway/original_compat.h"
#include "proto/ops.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static const char *no_query(void *cls, const char *name)
{
    const char **pairs = cls;
    size_t len = strlen(name);
    for (; pairs && *pairs; pairs++)
        if (strncmp(*pairs, name, len) == 0 && (*pairs)[len] == '=')
            return *pairs + len + 1;
    return NULL;
}

static gateway_route_t route_of(const char *method, const char *url, bool *original)
{
    gateway_route_t route;
    assert_int_equal(gateway_route_match(method, gateway_route_path(url, original), &route),
                     GATEWAY_MATCH_OK);
    return route;
}

static void test_prefix(void **state)
{
    (void)state;
    bool original;
    assert_string_equal(gateway_route_path("/api/v1/health", &original), "/health");
    assert_true(original);
    assert_string_equal(gateway_route_path("/api/v1", &original), "/");
    assert_true(original);
    assert_string_equal(gateway_route_path("/api/v10/health", &original), "/api/v10/health");
    assert_false(original);
    assert_string_equal(gateway_route_path("/health", &original), "/health");
    assert_false(original);
}

static int create(const char *body, json_t **args, json_t **error, json_t **keep)
{
    bool original;
    gateway_route_t route = route_of("POST", "/api/v1/workflows", &original);
    syn_op_t op;
    return gateway_compat_request(&route, original, "application/json", body, strlen(body),
                                  no_query, NULL, &op, args, error, keep);
}

static void test_create_translation(void **state)
{
    (void)state;
    json_t *args = NULL, *error = NULL, *keep = NULL;
    assert_int_equal(create("{\"name\":\"N\",\"project_name\":null,\"version\":\"1.2\","
                            "\"force\":true,\"phases\":[{\"id\":\"a\",\"phase_id\":\"a\","
                            "\"name\":\"A\",\"prompt_template\":\"x\",\"agent\":{\"provider\":"
                            "\"mock\"}}]}",
                            &args, &error, &keep),
                     0);
    json_t *phase = json_array_get(json_object_get(args, "phases"), 0);
    assert_string_equal(json_string_value(json_object_get(phase, "phase_id")), "a");
    assert_int_equal(json_integer_value(json_object_get(phase, "order")), 1);
    assert_string_equal(json_string_value(json_object_get(phase, "provider")), "mock");
    assert_null(json_object_get(phase, "id"));
    assert_non_null(json_object_get(phase, "agent")); /* kept: it round-trips */
    /* version and force are named in the warnings; a null project_name is not */
    assert_int_equal(json_array_size(json_object_get(keep, "warnings")), 2);
    json_decref(args);
    json_decref(keep);

    /* an agent syn runs differently: said in the warnings, phase by phase */
    args = keep = NULL;
    assert_int_equal(create("{\"name\":\"N\",\"phases\":[{\"id\":\"a\",\"name\":\"A\","
                            "\"prompt_template\":\"x\",\"agent\":{\"provider\":"
                            "\"claude-interactive\",\"agent_id\":\"codex\","
                            "\"allow_delegation\":true}}]}",
                            &args, &error, &keep),
                     0);
    phase = json_array_get(json_object_get(args, "phases"), 0);
    assert_string_equal(json_string_value(json_object_get(phase, "provider")), "codex");
    json_t *warnings = json_object_get(keep, "warnings");
    assert_int_equal(json_array_size(warnings), 2);
    assert_non_null(strstr(json_string_value(json_array_get(warnings, 0)),
                           "phase 'a': agent.provider 'claude-interactive' has no terminal"));
    assert_non_null(strstr(json_string_value(json_array_get(warnings, 1)),
                           "agent.allow_delegation is not honoured"));
    json_decref(args);
    json_decref(keep);

    /* id and phase_id that differ: id stays, and is refused as unknown */
    args = keep = NULL;
    assert_int_equal(create("{\"name\":\"N\",\"phases\":[{\"id\":\"a\",\"phase_id\":\"b\","
                            "\"name\":\"A\",\"order\":1,\"prompt_template\":\"x\"}]}",
                            &args, &error, &keep),
                     422);
    assert_null(keep);
    char *text = json_dumps(error, JSON_COMPACT);
    assert_non_null(strstr(text, "[\"body\",\"phases\",0,\"id\"]"));
    free(text);
    json_decref(error);

    /* an input declaration's misspelt key gets its suggestion too */
    error = NULL;
    assert_int_equal(create("{\"name\":\"N\",\"input_declarations\":[{\"name\":\"t\","
                            "\"requird\":true}]}",
                            &args, &error, &keep),
                     422);
    text = json_dumps(error, JSON_COMPACT);
    assert_non_null(strstr(text, "did you mean 'required'?"));
    free(text);
    json_decref(error);

    /* not JSON: syn's own error */
    error = NULL;
    assert_int_equal(create("{\"name\":", &args, &error, &keep), 422);
    json_decref(error);
}

static json_t *answer(const char *method, const char *url, const json_t *keep, unsigned *status,
                      const char *body_text)
{
    bool original;
    gateway_route_t route = route_of(method, url, &original);
    json_t *body = json_loads(body_text, 0, NULL);
    assert_non_null(body);
    json_t *out = gateway_compat_answer(&route, original, keep, status, body);
    json_decref(body);
    return out;
}

static void test_execution_displays(void **state)
{
    (void)state;
    unsigned status = 200;
    json_t *out = answer("GET", "/executions/x", NULL, &status,
                         "{\"execution_id\":\"exec-1\",\"total_input_tokens\":1500,"
                         "\"total_output_tokens\":0,\"total_cache_creation_tokens\":0,"
                         "\"total_cache_read_tokens\":2500000,\"total_cost_usd\":0.004,"
                         "\"duration_seconds\":192.5,\"error\":null,"
                         "\"repos\":[\"https://github.com/acme/app.git\"],"
                         "\"phases\":[{\"phase_id\":\"p\",\"model\":null,\"error\":\"boom\","
                         "\"attempts\":[{\"attempt\":1},{\"attempt\":2}]}]}");
    assert_string_equal(json_string_value(json_object_get(out, "workflow_execution_id")),
                        "exec-1");
    assert_int_equal(json_integer_value(json_object_get(out, "total_tokens")), 2501500);
    assert_string_equal(json_string_value(json_object_get(out, "total_tokens_display")), "2.50M");
    assert_string_equal(json_string_value(json_object_get(out, "total_cost_display")), "$0.0040");
    assert_string_equal(json_string_value(json_object_get(out, "duration_display")), "3m 12s");
    assert_string_equal(json_string_value(json_object_get(out, "repos_display")), "app");
    json_t *phase = json_array_get(json_object_get(out, "phases"), 0);
    assert_string_equal(json_string_value(json_object_get(phase, "error_message")), "boom");
    assert_string_equal(json_string_value(json_object_get(phase, "model_display")), "unknown");
    assert_string_equal(json_string_value(json_object_get(phase, "session_id")), "exec-1:p:2");
    json_decref(out);

    /* an error answer is passed on as it is */
    status = 404;
    assert_null(answer("GET", "/executions/x", NULL, &status, "{\"detail\":\"nope\"}"));
}

static void test_sessions_and_costs(void **state)
{
    (void)state;
    bool original;
    gateway_route_t route = route_of("GET", "/costs/sessions/exec-1:plan:12", &original);
    syn_op_t op;
    json_t *args = NULL, *error = NULL, *keep = NULL;
    assert_int_equal(gateway_compat_request(&route, original, NULL, "", 0, no_query, NULL, &op,
                                            &args, &error, &keep),
                     0);
    assert_int_equal(op, SYN_OP_EXECUTION_GET);
    assert_string_equal(json_string_value(json_object_get(args, "execution_id")), "exec-1");
    assert_string_equal(json_string_value(json_object_get(keep, "phase_id")), "plan");
    assert_int_equal(json_integer_value(json_object_get(keep, "attempt")), 12);
    unsigned status = 200;
    json_t *out = answer("GET", "/costs/sessions/exec-1:plan:12", keep, &status,
                         "{\"execution_id\":\"exec-1\",\"workflow_id\":\"w\",\"phases\":[{"
                         "\"phase_id\":\"plan\",\"name\":\"Plan\",\"attempts\":[{\"attempt\":12,"
                         "\"status\":\"completed\",\"started_at\":\"t0\",\"completed_at\":\"t1\","
                         "\"usage\":{\"input_tokens\":3,\"output_tokens\":4,\"cost_usd\":0.25,"
                         "\"model\":\"m\",\"num_turns\":2,\"tool_call_count\":5,"
                         "\"duration_ms\":900}}]}]}");
    assert_int_equal(status, 200);
    assert_string_equal(json_string_value(json_object_get(out, "total_cost_usd")), "0.25");
    assert_string_equal(json_string_value(json_object_get(json_object_get(out, "cost_by_model"),
                                                          "m")),
                        "0.25");
    assert_int_equal(json_integer_value(json_object_get(out, "total_tokens")), 7);
    assert_int_equal(json_integer_value(json_object_get(out, "tool_calls")), 5);
    assert_true(json_is_true(json_object_get(out, "is_finalized")));
    json_decref(out);
    /* an attempt the execution does not have */
    json_object_set_new(keep, "attempt", json_integer(13));
    status = 200;
    out = answer("GET", "/costs/sessions/exec-1:plan:12", keep, &status,
                 "{\"execution_id\":\"exec-1\",\"phases\":[]}");
    assert_int_equal(status, 404);
    json_decref(out);
    json_decref(keep);
    json_decref(args);

    static const char *const bad[] = {"exec-1", "exec-1:plan", "exec-1:plan:0", "exec-1:plan:x",
                                      ":plan:1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char url[128];
        snprintf(url, sizeof url, "/costs/sessions/%s", bad[i]);
        route = route_of("GET", url, &original);
        error = keep = NULL;
        assert_int_equal(gateway_compat_request(&route, original, NULL, "", 0, no_query, NULL,
                                                &op, &args, &error, &keep),
                         404);
        json_decref(error);
    }

    /* limit as the original bounds it */
    const char *over[] = {"limit=201", NULL};
    route = route_of("GET", "/costs/executions", &original);
    error = NULL;
    assert_int_equal(gateway_compat_request(&route, original, NULL, "", 0, no_query, over, &op,
                                            &args, &error, &keep),
                     422);
    json_decref(error);
}

static void test_export_manifest(void **state)
{
    (void)state;
    bool original;
    const char *plugin[] = {"format=plugin", NULL};
    gateway_route_t route = route_of("GET", "/workflows/w/export", &original);
    syn_op_t op;
    json_t *args = NULL, *error = NULL, *keep = NULL;
    assert_int_equal(gateway_compat_request(&route, original, NULL, "", 0, no_query, plugin, &op,
                                            &args, &error, &keep),
                     0);
    assert_int_equal(op, SYN_OP_WORKFLOW_GET);
    unsigned status = 200;
    json_t *out = answer("GET", "/workflows/w/export", keep, &status,
                         "{\"id\":\"w\",\"name\":\"  --My Flow!.\",\"workflow_type\":\"custom\","
                         "\"classification\":\"standard\",\"phases\":[{\"phase_id\":\"p\","
                         "\"name\":\"P\",\"order\":1,\"prompt_template\":\"x\"}]}");
    json_t *files = json_object_get(out, "files");
    assert_non_null(json_object_get(files, "commands/syn-my-flow.md"));
    assert_non_null(json_object_get(files, "workflows/my-flow/workflow.yaml"));
    json_decref(out);
    json_decref(keep);
    json_decref(args);
    /* without format: syn's YAML, not this module's */
    route = route_of("GET", "/workflows/w/export", &original);
    assert_int_equal(gateway_compat_request(&route, original, NULL, "", 0, no_query, NULL, &op,
                                            &args, &error, &keep),
                     -1);
}

static void test_event_data(void **state)
{
    (void)state;
    json_t *data = json_pack("{s:s, s:s}", "phase_id", "p", "error", "boom");
    json_t *out = gateway_compat_event_data("PhaseFailed", "exec-1", data);
    assert_string_equal(json_string_value(json_object_get(out, "execution_id")), "exec-1");
    assert_string_equal(json_string_value(json_object_get(out, "phase_name")), "p");
    assert_string_equal(json_string_value(json_object_get(out, "error_message")), "boom");
    assert_null(json_object_get(data, "error_message")); /* the event itself is unchanged */
    json_decref(out);
    json_decref(data);
    assert_string_equal(gateway_compat_event_type("ExecutionStarted"),
                        "WorkflowExecutionStarted");
    assert_null(gateway_compat_event_type("PhaseQueued"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_prefix),
        cmocka_unit_test(test_create_translation),
        cmocka_unit_test(test_execution_displays),
        cmocka_unit_test(test_sessions_and_costs),
        cmocka_unit_test(test_export_manifest),
        cmocka_unit_test(test_event_data),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
