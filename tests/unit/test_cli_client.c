/* cli/client, cli/cli and cli/args: the pure rules every command shares — which
 * exit code an answer means, the one-line error, URL escaping, id prefixes, and
 * the options parser. */
#include "cli/args.h"
#include "cli/cli.h"
#include "cli/client.h"

#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

static void test_exit_codes(void **state)
{
    (void)state;
    assert_int_equal(client_exit_code(200, NULL), 0);
    assert_int_equal(client_exit_code(201, NULL), 0);
    assert_int_equal(client_exit_code(0, NULL), 5);   /* no answer */
    assert_int_equal(client_exit_code(401, NULL), 5);
    assert_int_equal(client_exit_code(403, NULL), 5);
    assert_int_equal(client_exit_code(503, "broker unavailable"), 5);
    assert_int_equal(client_exit_code(404, "Execution not found: exec-zz"), 4);
    assert_int_equal(client_exit_code(409, "Ambiguous execution id exec-0: matches a, b (2 matches)"), 2);
    assert_int_equal(client_exit_code(409, "Workflow research already exists"), 1);
    assert_int_equal(client_exit_code(400, "Cannot pause execution in state completed"), 1);
    assert_int_equal(client_exit_code(422, NULL), 1);
}

static void test_error_text(void **state)
{
    (void)state;
    char out[256];
    json_t *body = json_loads("{\"detail\":\"Workflow nope not found\"}", 0, NULL);
    assert_string_equal(client_error_text(404, body, out, sizeof out), "Workflow nope not found");
    json_decref(body);
    body = json_loads("{\"detail\":[{\"loc\":[\"body\",\"inputs\",\"k\"],\"msg\":\"Input should be a "
                      "valid string\",\"type\":\"string_type\"},{\"loc\":[\"body\",5],\"msg\":\"JSON "
                      "decode error\"}]}",
                      0, NULL);
    assert_string_equal(client_error_text(422, body, out, sizeof out),
                        "body.inputs.k: Input should be a valid string; body[5]: JSON decode error");
    json_decref(body);
    assert_string_equal(client_error_text(502, NULL, out, sizeof out), "HTTP 502");
    /* a small buffer cuts, never overflows */
    char tiny[8];
    body = json_loads("{\"detail\":\"a very long reason\"}", 0, NULL);
    assert_string_equal(client_error_text(400, body, tiny, sizeof tiny), "a very ");
    json_decref(body);
}

static void test_escape(void **state)
{
    (void)state;
    char out[64];
    assert_int_equal(client_escape("exec-3f9a", out, sizeof out), 0);
    assert_string_equal(out, "exec-3f9a");
    assert_int_equal(client_escape("a b/c?d", out, sizeof out), 0);
    assert_string_equal(out, "a%20b%2Fc%3Fd");
    char small[4];
    assert_int_equal(client_escape("a b", small, sizeof small), -1);
    assert_int_equal(cli_path(out, sizeof out, "/workflows/%s/export", "w 1"), 0);
    assert_string_equal(out, "/workflows/w%201/export");
}

static void test_prefixes(void **state)
{
    (void)state;
    const char *ids[] = {"research", "research-2", "pr-review", "implement"};
    size_t index = 99;
    assert_int_equal(cli_match_prefix("research", ids, 4, &index), 0); /* exact wins */
    assert_int_equal(index, 0);
    assert_int_equal(cli_match_prefix("pr", ids, 4, &index), 0);
    assert_int_equal(index, 2);
    assert_int_equal(cli_match_prefix("research-", ids, 4, &index), 0);
    assert_int_equal(index, 1);
    assert_int_equal(cli_match_prefix("re", ids, 4, &index), -2); /* ambiguous */
    assert_int_equal(cli_match_prefix("zz", ids, 4, &index), -1);
    assert_int_equal(cli_match_prefix("", ids, 4, &index), -1);
    assert_int_equal(cli_match_prefix("x", ids, 0, &index), -1);
}

static void test_options(void **state)
{
    (void)state;
    const char *task = NULL, *url = NULL;
    bool watch = false, json = false;
    args_list_t inputs = {0};
    const args_option_t options[] = {
        {'t', "task", ARGS_VALUE, "TASK", "task", &task},
        {'i', "input", ARGS_LIST, "K=V", "input", &inputs},
        {0, "watch", ARGS_FLAG, NULL, "watch", &watch},
        {0, NULL, 0, NULL, NULL, NULL},
    };
    const args_option_t global[] = {
        {0, "url", ARGS_VALUE, "URL", "url", &url},
        {0, "json", ARGS_FLAG, NULL, "json", &json},
        {0, NULL, 0, NULL, NULL, NULL},
    };
    const args_command_t command = {"syn run WORKFLOW", "Runs.", options, 1, 1};
    char *argv[] = {"run", "-i", "a=1", "research", "--input=b=2", "-tdo it", "--watch",
                    "--url", "http://x", "--json", NULL};
    const char *pos[ARGS_MAX_POSITIONAL];
    int npos = -1;
    assert_int_equal(args_parse(&command, global, 10, argv, pos, &npos), ARGS_OK);
    assert_int_equal(npos, 1);
    assert_string_equal(pos[0], "research");
    assert_string_equal(task, "do it");
    assert_int_equal(inputs.count, 2);
    assert_string_equal(inputs.items[0], "a=1");
    assert_string_equal(inputs.items[1], "b=2");
    assert_true(watch);
    assert_true(json);
    assert_string_equal(url, "http://x");

    char *unknown[] = {"run", "research", "--bogus", NULL};
    assert_int_equal(args_parse(&command, global, 3, unknown, pos, &npos), ARGS_ERROR);
    char *missing[] = {"run", "research", "-t", NULL};
    assert_int_equal(args_parse(&command, global, 3, missing, pos, &npos), ARGS_ERROR);
    char *extra[] = {"run", "a", "b", NULL};
    assert_int_equal(args_parse(&command, global, 3, extra, pos, &npos), ARGS_ERROR);
    char *none[] = {"run", NULL};
    assert_int_equal(args_parse(&command, global, 1, none, pos, &npos), ARGS_ERROR);
    char *flag_value[] = {"run", "x", "--watch=yes", NULL};
    assert_int_equal(args_parse(&command, global, 3, flag_value, pos, &npos), ARGS_ERROR);
    char *dashdash[] = {"run", "--", "-weird-id", NULL};
    assert_int_equal(args_parse(&command, global, 3, dashdash, pos, &npos), ARGS_OK);
    assert_string_equal(pos[0], "-weird-id");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exit_codes), cmocka_unit_test(test_error_text),
        cmocka_unit_test(test_escape),     cmocka_unit_test(test_prefixes),
        cmocka_unit_test(test_options),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
