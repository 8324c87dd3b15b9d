/* Each HTTP route's broker operation and arguments (docs/protocol.md), and the query
 * parameter checks that answer 422 before the broker is asked. Every request the
 * gateway builds must pass the broker's own check of its arguments (proto/ops.h). */
#include "gateway/api.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

/* Query parameters as "name=value" strings, NULL-terminated. */
static const char *fake_query(void *cls, const char *name)
{
    const char **pairs = cls;
    size_t len = strlen(name);
    for (; pairs && *pairs; pairs++)
        if (strncmp(*pairs, name, len) == 0 && (*pairs)[len] == '=')
            return *pairs + len + 1;
    return NULL;
}

static void assert_json(json_t *got, const char *want_text)
{
    json_t *want = json_loads(want_text, 0, NULL);
    assert_non_null(want);
    if (!json_equal(got, want)) {
        char *text = json_dumps(got, JSON_COMPACT | JSON_ENCODE_ANY);
        print_error("got:  %s\nwant: %s\n", text ? text : "(null)", want_text);
        free(text);
        json_decref(want);
        fail();
    }
    json_decref(want);
}

/* content_type: the Content-Type header the request carries (NULL: none). */
static void expect_op_typed(const char *method, const char *path, const char **query,
                            const char *content_type, const char *body, const char *want_op,
                            const char *want_args)
{
    gateway_route_t route;
    assert_int_equal(gateway_route_match(method, path, &route), GATEWAY_MATCH_OK);
    syn_op_t op = SYN_OP_COUNT;
    json_t *args = NULL, *error = NULL;
    int status = gateway_api_request(&route, content_type, body, body ? strlen(body) : 0,
                                     fake_query, (void *)query, &op, &args, &error);
    if (status != 0) {
        char *text = json_dumps(error, JSON_COMPACT);
        print_error("%s %s answered %d %s\n", method, path, status, text ? text : "");
        free(text);
    }
    assert_int_equal(status, 0);
    assert_null(error);
    assert_true(op < SYN_OP_COUNT);
    assert_string_equal(syn_op_name(op), want_op);
    assert_json(args, want_args);
    char why[256] = "";
    if (syn_op_check_args(op, args, why, sizeof why) != 0)
        print_error("%s %s: the broker would refuse its args: %s\n", method, path, why);
    assert_int_equal(syn_op_check_args(op, args, why, sizeof why), 0);
    json_decref(args);
}

static void expect_op(const char *method, const char *path, const char **query, const char *body,
                      const char *want_op, const char *want_args)
{
    expect_op_typed(method, path, query, NULL, body, want_op, want_args);
}

static void expect_error_typed(const char *method, const char *path, const char **query,
                               const char *content_type, const char *body, int want_status,
                               const char *want_body)
{
    gateway_route_t route;
    assert_int_equal(gateway_route_match(method, path, &route), GATEWAY_MATCH_OK);
    syn_op_t op;
    json_t *args = NULL, *error = NULL;
    int status = gateway_api_request(&route, content_type, body, body ? strlen(body) : 0,
                                     fake_query, (void *)query, &op, &args, &error);
    assert_int_equal(status, want_status);
    assert_null(args);
    assert_json(error, want_body);
    json_decref(error);
}

static void expect_error(const char *method, const char *path, const char **query,
                         const char *body, int want_status, const char *want_body)
{
    expect_error_typed(method, path, query, NULL, body, want_status, want_body);
}

static void test_operations(void **state)
{
    (void)state;
    expect_op("GET", "/health", NULL, NULL, "health", "{}");
    expect_op("GET", "/workflows", NULL, NULL, "workflow.list",
              "{\"workflow_type\":null,\"include_archived\":false,\"page\":1,"
              "\"page_size\":20}");
    const char *paging[] = {"page=3", "page_size=100", "other=x", NULL};
    expect_op("GET", "/workflows", paging, NULL, "workflow.list",
              "{\"workflow_type\":null,\"include_archived\":false,\"page\":3,"
              "\"page_size\":100}");
    expect_op("GET", "/workflows/wf-1", NULL, NULL, "workflow.get", "{\"id\":\"wf-1\"}");
    expect_op("GET", "/workflows/wf-1/executions/exec-12", NULL, NULL, "execution.status",
              "{\"workflow_id\":\"wf-1\",\"execution_id\":\"exec-12\"}");
    expect_op("GET", "/workflows/executions/active", NULL, NULL, "execution.active",
              "{\"limit\":20}");
    const char *limit[] = {"limit=5", NULL};
    expect_op("GET", "/workflows/executions/active", limit, NULL, "execution.active",
              "{\"limit\":5}");
    expect_op("POST", "/workflows/wf-1/execute", NULL, "{\"task\":\"t\"}", "execution.start",
              "{\"workflow_id\":\"wf-1\",\"inputs\":{},\"task\":\"t\",\"repos\":[]}");
    expect_op("POST", "/workflows", NULL,
              "{\"name\":\"n\",\"phases\":[{\"phase_id\":\"p\",\"name\":\"P\",\"order\":1,"
              "\"prompt_template\":\"x\"}]}",
              "workflow.create",
              "{\"name\":\"n\",\"phases\":[{\"phase_id\":\"p\",\"name\":\"P\",\"order\":1,"
              "\"prompt_template\":\"x\"}]}");
    /* Issue 4. */
    expect_op("GET", "/executions", NULL, NULL, "execution.list",
              "{\"status\":null,\"workflow_id\":null,\"page\":1,\"page_size\":50}");
    const char *filters[] = {"status=paused", "workflow_id=wf-1", "page=2", "page_size=100",
                             NULL};
    expect_op("GET", "/executions", filters, NULL, "execution.list",
              "{\"status\":\"paused\",\"workflow_id\":\"wf-1\",\"page\":2,"
              "\"page_size\":100}");
    expect_op("GET", "/executions/exec-1", NULL, NULL, "execution.get",
              "{\"execution_id\":\"exec-1\"}");
    expect_op("GET", "/executions/exec-1/state", NULL, NULL, "execution.state",
              "{\"execution_id\":\"exec-1\"}");
    expect_op("POST", "/executions/exec-1/cancel", NULL, NULL, "execution.cancel",
              "{\"execution_id\":\"exec-1\",\"reason\":null}");
    expect_op("POST", "/executions/exec-1/pause", NULL, "{\"reason\":\"r\"}", "execution.pause",
              "{\"execution_id\":\"exec-1\",\"reason\":\"r\"}");
    expect_op("POST", "/executions/exec-1/resume", NULL, "{}", "execution.resume",
              "{\"execution_id\":\"exec-1\"}");
    expect_op("POST", "/executions/exec-1/inject", NULL, "{\"message\":\"m\"}",
              "execution.inject",
              "{\"execution_id\":\"exec-1\",\"message\":\"m\",\"role\":\"user\"}");
    expect_op("GET", "/executions/exec-1/phases/plan/output", NULL, NULL, "execution.output",
              "{\"execution_id\":\"exec-1\",\"phase_id\":\"plan\"}");
    expect_op("GET", "/workflows/wf-1/runs", NULL, NULL, "workflow.runs",
              "{\"workflow_id\":\"wf-1\",\"page\":1,\"page_size\":50}");
    /* A body sent with a GET is ignored, as FastAPI does. */
    expect_op("GET", "/workflows/wf-1", NULL, "not json", "workflow.get", "{\"id\":\"wf-1\"}");
}

static void test_query_errors(void **state)
{
    (void)state;
    const char *bad_limit[] = {"limit=abc", NULL};
    expect_error("GET", "/workflows/executions/active", bad_limit, NULL, 422,
                 "{\"detail\":[{\"loc\":[\"query\",\"limit\"],\"msg\":\"Input should be a valid "
                 "integer, unable to parse string as an integer\",\"type\":\"int_parsing\"}]}");
    const char *zero[] = {"limit=0", NULL};
    expect_error("GET", "/workflows/executions/active", zero, NULL, 422,
                 "{\"detail\":[{\"loc\":[\"query\",\"limit\"],\"msg\":\"Input should be greater "
                 "than or equal to 1\",\"type\":\"greater_than_equal\"}]}");
    const char *big[] = {"limit=101", NULL};
    expect_error("GET", "/workflows/executions/active", big, NULL, 422,
                 "{\"detail\":[{\"loc\":[\"query\",\"limit\"],\"msg\":\"Input should be less "
                 "than or equal to 100\",\"type\":\"less_than_equal\"}]}");
    const char *both[] = {"page=0", "page_size=x", NULL};
    expect_error("GET", "/workflows", both, NULL, 422,
                 "{\"detail\":[{\"loc\":[\"query\",\"page\"],\"msg\":\"Input should be greater "
                 "than or equal to 1\",\"type\":\"greater_than_equal\"},"
                 "{\"loc\":[\"query\",\"page_size\"],\"msg\":\"Input should be a valid integer, "
                 "unable to parse string as an integer\",\"type\":\"int_parsing\"}]}");
    const char *size[] = {"page_size=101", NULL};
    expect_error("GET", "/workflows", size, NULL, 422,
                 "{\"detail\":[{\"loc\":[\"query\",\"page_size\"],\"msg\":\"Input should be less "
                 "than or equal to 100\",\"type\":\"less_than_equal\"}]}");
}

static void test_listing_errors(void **state)
{
    (void)state;
    const char *bad[] = {"status=done", "workflow_id=a\xff", "page=0", "page_size=101", NULL};
    expect_error("GET", "/executions", bad, NULL, 422,
                 "{\"detail\":[{\"loc\":[\"query\",\"status\"],\"msg\":\"Input should be "
                 "'pending', 'running', 'paused', 'completed', 'failed' or 'cancelled'\","
                 "\"type\":\"enum\"},"
                 "{\"loc\":[\"query\",\"workflow_id\"],\"msg\":\"Input should be a valid "
                 "string, unable to parse raw data as a unicode string\",\"type\":"
                 "\"string_unicode\"},"
                 "{\"loc\":[\"query\",\"page\"],\"msg\":\"Input should be greater than or "
                 "equal to 1\",\"type\":\"greater_than_equal\"},"
                 "{\"loc\":[\"query\",\"page_size\"],\"msg\":\"Input should be less than "
                 "or equal to 100\",\"type\":\"less_than_equal\"}]}");
    const char *size[] = {"page_size=0", NULL};
    expect_error("GET", "/workflows/wf-1/runs", size, NULL, 422,
                 "{\"detail\":[{\"loc\":[\"query\",\"page_size\"],\"msg\":\"Input should "
                 "be greater than or equal to 1\",\"type\":\"greater_than_equal\"}]}");
    expect_error("POST", "/executions/exec-1/inject", NULL, "{\"message\":\"m\",\"x\":1}", 422,
                 "{\"detail\":[{\"loc\":[\"body\",\"x\"],\"msg\":\"Extra inputs are not "
                 "permitted\",\"type\":\"extra_forbidden\"}]}");
    /* The streams are not one broker operation. */
    expect_error("GET", "/sse/activity", NULL, NULL, 404, "{\"detail\":\"Not Found\"}");
}

#define YAML_DOC "name: Y\nphases:\n  - {id: p, name: P, order: 1, prompt_template: hi}\n"

/* Issue 6: YAML upload, validate, export, archive, phase edit, listing filters. */
static void test_template_routes(void **state)
{
    (void)state;
    const char *filters[] = {"workflow_type=review", "include_archived=true", NULL};
    expect_op("GET", "/workflows", filters, NULL, "workflow.list",
              "{\"workflow_type\":\"review\",\"include_archived\":true,\"page\":1,"
              "\"page_size\":20}");
    const char *yes[] = {"include_archived=YES", NULL};
    expect_op("GET", "/workflows", yes, NULL, "workflow.list",
              "{\"workflow_type\":null,\"include_archived\":true,\"page\":1,"
              "\"page_size\":20}");
    const char *off[] = {"include_archived=0", NULL};
    expect_op("GET", "/workflows", off, NULL, "workflow.list",
              "{\"workflow_type\":null,\"include_archived\":false,\"page\":1,"
              "\"page_size\":20}");
    const char *bad[] = {"workflow_type=reserch", "include_archived=maybe", "page=0", NULL};
    expect_error("GET", "/workflows", bad, NULL, 422,
                 "{\"detail\":[{\"loc\":[\"query\",\"workflow_type\"],\"msg\":\"Input "
                 "should be 'research', 'planning', 'implementation', 'review', 'deployment' "
                 "or 'custom'\",\"type\":\"enum\"},"
                 "{\"loc\":[\"query\",\"include_archived\"],\"msg\":\"Input should be a "
                 "valid boolean, unable to interpret input\",\"type\":\"bool_parsing\"},"
                 "{\"loc\":[\"query\",\"page\"],\"msg\":\"Input should be greater than or "
                 "equal to 1\",\"type\":\"greater_than_equal\"}]}");

    expect_op_typed("POST", "/workflows/from-yaml", NULL, "application/yaml", YAML_DOC,
                    "workflow.create",
                    "{\"name\":\"Y\",\"phases\":[{\"phase_id\":\"p\",\"name\":\"P\","
                    "\"order\":1,\"prompt_template\":\"hi\"}]}");
    const char *names[] = {"id=copy", "name=Copy", NULL};
    expect_op_typed("POST", "/workflows/from-yaml", names, "text/yaml; charset=utf-8", YAML_DOC,
                    "workflow.create",
                    "{\"id\":\"copy\",\"name\":\"Copy\",\"phases\":[{\"phase_id\":\"p\","
                    "\"name\":\"P\",\"order\":1,\"prompt_template\":\"hi\"}]}");
    expect_error_typed("POST", "/workflows/from-yaml", NULL, "application/json", YAML_DOC, 415,
                       "{\"detail\":\"Unsupported Media Type: application/json (send the "
                       "workflow as application/yaml, application/x-yaml, text/yaml or "
                       "text/x-yaml)\"}");
    /* Answered by the gateway itself: no operation. */
    expect_error("POST", "/workflows/validate", NULL, "{\"content\":\"" "name: Y\\nphases:\\n"
                 "  - {id: p, name: P, order: 1, prompt_template: hi}\\n\"}", 200,
                 "{\"valid\":true,\"errors\":[],\"name\":\"Y\",\"workflow_type\":\"custom\","
                 "\"phase_count\":1,\"warnings\":[]}");
    expect_error("POST", "/workflows/validate", NULL, "{}", 422,
                 "{\"detail\":[{\"loc\":[\"body\",\"content\"],\"msg\":\"Field "
                 "required\",\"type\":\"missing\"}]}");

    expect_op("GET", "/workflows/wf-1/export", NULL, NULL, "workflow.get", "{\"id\":\"wf-1\"}");
    expect_op("DELETE", "/workflows/wf-1", NULL, NULL, "workflow.archive",
              "{\"id\":\"wf-1\"}");
    expect_op("PUT", "/workflows/wf-1/phases/p1", NULL,
              "{\"prompt_template\":\"new\",\"model\":\"opus\",\"timeout_seconds\":60,"
              "\"allowed_tools\":[\"Read\"]}",
              "workflow.phase_update",
              "{\"workflow_id\":\"wf-1\",\"phase_id\":\"p1\",\"prompt_template\":\"new\","
              "\"model\":\"opus\",\"timeout_seconds\":60,\"allowed_tools\":[\"Read\"]}");
    expect_op("PUT", "/workflows/wf-1/phases/p1", NULL,
              "{\"prompt_template\":\"new\",\"model\":null}", "workflow.phase_update",
              "{\"workflow_id\":\"wf-1\",\"phase_id\":\"p1\",\"prompt_template\":\"new\"}");
    expect_error("PUT", "/workflows/wf-1/phases/p1", NULL,
                 "{\"prompt_template\":\"\",\"timeout_seconds\":0,\"name\":\"x\"}", 422,
                 "{\"detail\":[{\"loc\":[\"body\",\"prompt_template\"],\"msg\":\"String "
                 "should have at least 1 character\",\"type\":\"string_too_short\"},"
                 "{\"loc\":[\"body\",\"timeout_seconds\"],\"msg\":\"Input should be "
                 "greater than or equal to 1\",\"type\":\"greater_than_equal\"},"
                 "{\"loc\":[\"body\",\"name\"],\"msg\":\"Extra inputs are not "
                 "permitted\",\"type\":\"extra_forbidden\"}]}");
    expect_error("PUT", "/workflows/wf-1/phases/p1", NULL, "", 422,
                 "{\"detail\":[{\"loc\":[\"body\"],\"msg\":\"Field required\",\"type\":"
                 "\"missing\"}]}");
}

static void test_replay_args_and_last_event_id(void **state)
{
    (void)state;
    json_t *args = gateway_api_replay_args(NULL, 7, 1000);
    assert_json(args, "{\"execution_id\":null,\"after_seq\":7,\"limit\":1000}");
    json_decref(args);
    args = gateway_api_replay_args("exec-1", 0, 10);
    assert_json(args, "{\"execution_id\":\"exec-1\",\"after_seq\":0,\"limit\":10}");
    json_decref(args);
    uint64_t seq = 99;
    json_t *error = NULL;
    assert_int_equal(gateway_api_last_event_id(NULL, &seq, &error), 0);
    assert_int_equal(seq, 0);
    assert_int_equal(gateway_api_last_event_id(" 42 ", &seq, &error), 0);
    assert_int_equal(seq, 42);
    assert_null(error);
    const char *bad[] = {"", "x", "-1", "4x", "99999999999999999999", "1.5"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(gateway_api_last_event_id(bad[i], &seq, &error), 422);
        assert_json(error, "{\"detail\":[{\"loc\":[\"header\",\"last-event-id\"],\"msg\":"
                           "\"Input should be a valid integer, unable to parse string as an "
                           "integer\",\"type\":\"int_parsing\"}]}");
        json_decref(error);
    }
}

static void test_body_errors(void **state)
{
    (void)state;
    expect_error("POST", "/workflows/wf-1/execute", NULL, NULL, 422,
                 "{\"detail\":[{\"loc\":[\"body\"],\"msg\":\"Field required\",\"type\":\"missing\"}]}");
    expect_error("POST", "/workflows", NULL, "[]", 422,
                 "{\"detail\":[{\"loc\":[\"body\"],\"msg\":\"Input should be a valid "
                 "dictionary\",\"type\":\"dict_type\"}]}");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_operations),
        cmocka_unit_test(test_query_errors),
        cmocka_unit_test(test_body_errors),
        cmocka_unit_test(test_listing_errors),
        cmocka_unit_test(test_template_routes),
        cmocka_unit_test(test_replay_args_and_last_event_id),
    };
    return cmocka_run_group_tests_name("gateway_api", tests, NULL, NULL);
}
