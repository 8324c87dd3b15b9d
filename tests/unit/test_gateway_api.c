/* Each HTTP route's broker operation and arguments (docs/protocol.md), and the query
 * parameter checks that answer 422 before the broker is asked. */
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

static void expect_op(const char *method, const char *path, const char **query, const char *body,
                      const char *want_op, const char *want_args)
{
    gateway_route_t route;
    assert_int_equal(gateway_route_match(method, path, &route), GATEWAY_MATCH_OK);
    const char *op = NULL;
    json_t *args = NULL, *error = NULL;
    int status = gateway_api_request(&route, body, body ? strlen(body) : 0, fake_query,
                                     (void *)query, &op, &args, &error);
    assert_int_equal(status, 0);
    assert_null(error);
    assert_string_equal(op, want_op);
    assert_json(args, want_args);
    json_decref(args);
}

static void expect_error(const char *method, const char *path, const char **query,
                         const char *body, int want_status, const char *want_body)
{
    gateway_route_t route;
    assert_int_equal(gateway_route_match(method, path, &route), GATEWAY_MATCH_OK);
    const char *op = NULL;
    json_t *args = NULL, *error = NULL;
    int status = gateway_api_request(&route, body, body ? strlen(body) : 0, fake_query,
                                     (void *)query, &op, &args, &error);
    assert_int_equal(status, want_status);
    assert_null(args);
    assert_json(error, want_body);
    json_decref(error);
}

static void test_operations(void **state)
{
    (void)state;
    expect_op("GET", "/health", NULL, NULL, "health", "{}");
    expect_op("GET", "/workflows", NULL, NULL, "workflow.list", "{\"page\":1,\"page_size\":20}");
    const char *paging[] = {"page=3", "page_size=100", "other=x", NULL};
    expect_op("GET", "/workflows", paging, NULL, "workflow.list",
              "{\"page\":3,\"page_size\":100}");
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
    };
    return cmocka_run_group_tests_name("gateway_api", tests, NULL, NULL);
}
