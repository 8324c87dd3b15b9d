/* gateway/yaml: the media types a YAML upload may carry, every status an upload can
 * get (415, 422 for ?id=/?name=, 413, 400 not UTF-8 / bad YAML / prompt_file, 422),
 * the validate answers, and export → upload giving the same workflow back. */
#include "gateway/validate.h"
#include "gateway/yaml.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define DOC                                                                                       \
    "id: triage\n"                                                                               \
    "name: Triage\n"                                                                             \
    "type: research\n"                                                                           \
    "inputs:\n"                                                                                  \
    "  - {name: severity, required: false, default: medium}\n"                                  \
    "phases:\n"                                                                                  \
    "  - id: look\n"                                                                             \
    "    name: Look\n"                                                                           \
    "    order: 1\n"                                                                             \
    "    max_tokens: 500\n"                                                                      \
    "    provider: mock\n"                                                                       \
    "    allowed_tools: [Read]\n"                                                                \
    "    prompt_template: |\n"                                                                   \
    "      Look ({{severity}}): $ARGUMENTS\n"

#define DOC_JSON                                                                                  \
    "{\"id\":\"triage\",\"name\":\"Triage\",\"workflow_type\":\"research\",\"input_declarations\":" \
    "[{\"name\":\"severity\",\"required\":false,\"default\":\"medium\"}],\"phases\":[{\"phase_id\":" \
    "\"look\",\"name\":\"Look\",\"order\":1,\"max_tokens\":500,\"provider\":\"mock\","            \
    "\"allowed_tools\":[\"Read\"],\"prompt_template\":\"Look ({{severity}}): $ARGUMENTS\\n\"}]}"

static void assert_json(const json_t *got, const char *want_text)
{
    json_error_t jerr;
    json_t *want = json_loads(want_text, 0, &jerr);
    if (!want)
        fail_msg("bad expected JSON in test: %s (%s)", want_text, jerr.text);
    if (!json_equal((json_t *)got, want)) {
        char *text = json_dumps(got, JSON_COMPACT | JSON_ENCODE_ANY);
        print_error("got:  %s\nwant: %s\n", text ? text : "(null)", want_text);
        free(text);
        json_decref(want);
        fail();
    }
    json_decref(want);
}

static const char *detail_of(const json_t *body)
{
    const char *text = json_string_value(json_object_get(body, "detail"));
    return text ? text : "";
}

/* Uploads text; returns the status, with *out the args (0) or the error body. */
static int upload(const char *content_type, const char *text, size_t len, const char *id,
                  const char *name, json_t **out)
{
    json_t *args = NULL, *error = NULL;
    int status = gateway_yaml_from_upload(content_type, text, len, id, name, &args, &error);
    if (status == 0) {
        assert_null(error);
        assert_non_null(args);
        *out = args;
    } else {
        assert_null(args);
        assert_non_null(error);
        *out = error;
    }
    return status;
}

static void test_media_types(void **state)
{
    (void)state;
    const char *good[] = {"application/yaml",
                          "application/x-yaml",
                          "text/yaml",
                          "text/x-yaml",
                          "Application/YAML",
                          "TEXT/X-YAML",
                          "application/yaml; charset=utf-8",
                          "text/yaml;charset=UTF-8",
                          "application/x-yaml ; Charset=\"utf-8\"",
                          " text/yaml ",
                          "application/yaml; charset=utf-8; version=1.2"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        if (!gateway_yaml_media_type(good[i]))
            fail_msg("refused '%s'", good[i]);
    const char *bad[] = {"",
                         "application/json",
                         "text/plain",
                         "application/yaml2",
                         "application/yam",
                         "yaml",
                         "application/yaml x",
                         "text/yaml,application/json",
                         "application/x-www-form-urlencoded",
                         "multipart/form-data; boundary=x"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (gateway_yaml_media_type(bad[i]))
            fail_msg("accepted '%s'", bad[i]);
    assert_false(gateway_yaml_media_type(NULL));
}

static void test_upload_ok(void **state)
{
    (void)state;
    json_t *out;
    assert_int_equal(upload("application/yaml; charset=utf-8", DOC, strlen(DOC), NULL, NULL, &out),
                     0);
    assert_json(out, DOC_JSON);
    json_decref(out);
    /* ?id= and ?name= replace the document's own. */
    assert_int_equal(upload("text/x-yaml", DOC, strlen(DOC), "triage-copy", "Copy of triage", &out),
                     0);
    assert_string_equal(json_string_value(json_object_get(out, "id")), "triage-copy");
    assert_string_equal(json_string_value(json_object_get(out, "name")), "Copy of triage");
    assert_int_equal(json_array_size(json_object_get(out, "phases")), 1);
    json_decref(out);
    /* No id in the document and none given: the broker makes one. */
    const char *no_id = "name: N\nphases: [{id: a, name: A, order: 0, prompt_template: x}]\n";
    assert_int_equal(upload("text/yaml", no_id, strlen(no_id), NULL, NULL, &out), 0);
    assert_null(json_object_get(out, "id"));
    json_decref(out);
}

static void test_upload_unsupported_media_type(void **state)
{
    (void)state;
    json_t *out;
    assert_int_equal(upload("application/json", DOC, strlen(DOC), NULL, NULL, &out), 415);
    assert_json(out, "{\"detail\":\"Unsupported Media Type: application/json (send the workflow "
                     "as application/yaml, application/x-yaml, text/yaml or text/x-yaml)\"}");
    json_decref(out);
    assert_int_equal(upload(NULL, DOC, strlen(DOC), NULL, NULL, &out), 415);
    assert_string_equal(detail_of(out), "Unsupported Media Type: none (send the workflow as "
                                        "application/yaml, application/x-yaml, text/yaml or "
                                        "text/x-yaml)");
    json_decref(out);
    /* A header that is not text is not repeated; a long one is cut. */
    assert_int_equal(upload("text/\xff", DOC, strlen(DOC), NULL, NULL, &out), 415);
    assert_non_null(strstr(detail_of(out), "(not readable text)"));
    json_decref(out);
    char long_type[400];
    memset(long_type, 'a', sizeof long_type - 1);
    long_type[sizeof long_type - 1] = '\0';
    assert_int_equal(upload(long_type, DOC, strlen(DOC), NULL, NULL, &out), 415);
    assert_true(strlen(detail_of(out)) < 300);
    json_decref(out);
    /* The media type is checked first, whatever else is wrong. */
    assert_int_equal(upload("text/plain", "\xff", 1, "bad id!", NULL, &out), 415);
    json_decref(out);
}

static void test_upload_bad_overrides(void **state)
{
    (void)state;
    json_t *out;
    assert_int_equal(upload("text/yaml", DOC, strlen(DOC), "bad id!", "", &out), 422);
    assert_json(out, "{\"detail\":[{\"loc\":[\"query\",\"id\"],\"msg\":\"String should match "
                     "pattern '^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$'\",\"type\":"
                     "\"string_pattern_mismatch\"},{\"loc\":[\"query\",\"name\"],\"msg\":\"String "
                     "should have at least 1 character\",\"type\":\"string_too_short\"}]}");
    json_decref(out);
    assert_int_equal(upload("text/yaml", DOC, strlen(DOC), NULL, "a\xff", &out), 422);
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(json_object_get(out, "detail"), 0), "type")),
                        "string_unicode");
    json_decref(out);
}

/* The error list an upload was refused with: the first error's line and column. */
static void expect_first_error_at(const json_t *body, int line, int column)
{
    const json_t *first = json_array_get(json_object_get(body, "errors"), 0);
    assert_non_null(first);
    assert_int_equal(json_integer_value(json_object_get(first, "line")), line);
    assert_int_equal(json_integer_value(json_object_get(first, "column")), column);
}

static void test_upload_refused(void **state)
{
    (void)state;
    json_t *out;
    /* Not UTF-8: 400, pointing at the byte. */
    const char *latin1 = "name: caf\xe9\nphases: []\n";
    assert_int_equal(upload("text/yaml", latin1, strlen(latin1), NULL, NULL, &out), 400);
    assert_string_equal(detail_of(out), "line 1, column 10: not valid UTF-8 (byte 0xE9)");
    expect_first_error_at(out, 1, 10);
    json_decref(out);
    /* Not YAML: 400 with line and column. */
    const char *broken = "name: x\nphases: [a, b\nother: 1\n";
    assert_int_equal(upload("text/yaml", broken, strlen(broken), NULL, NULL, &out), 400);
    assert_non_null(strstr(detail_of(out), "invalid YAML"));
    const json_t *first = json_array_get(json_object_get(out, "errors"), 0);
    assert_true(json_integer_value(json_object_get(first, "line")) >= 2);
    assert_true(json_integer_value(json_object_get(first, "column")) >= 1);
    assert_true(json_is_null(json_object_get(first, "field")));
    json_decref(out);
    /* prompt_file needs the files: 400 saying to use the CLI or a package. */
    const char *with_file = "name: x\nphases:\n  - {id: a, name: A, order: 1, prompt_file: a.md}\n";
    assert_int_equal(upload("text/yaml", with_file, strlen(with_file), NULL, NULL, &out), 400);
    assert_non_null(strstr(detail_of(out), "phases[0].prompt_file: prompt_file cannot be used in "
                                           "an uploaded document"));
    assert_non_null(strstr(detail_of(out), "CLI"));
    expect_first_error_at(out, 3, 45);
    json_decref(out);
    /* Over 1 MiB: 413 (the gateway's body limit answers first over HTTP). */
    size_t big_len = 1024 * 1024 + 1;
    char *big = malloc(big_len);
    memset(big, '#', big_len);
    assert_int_equal(upload("text/yaml", big, big_len, NULL, NULL, &out), 413);
    assert_non_null(strstr(detail_of(out), "1 MiB"));
    json_decref(out);
    free(big);
    /* Valid YAML, wrong content: 422 with every error, line and field. */
    const char *invalid = "name: x\ntype: reserch\nphases:\n  - {id: a, name: A, order: 1, "
                          "promt_template: hi}\n";
    assert_int_equal(upload("text/yaml", invalid, strlen(invalid), NULL, NULL, &out), 422);
    const json_t *errors = json_object_get(out, "errors");
    assert_true(json_array_size(errors) >= 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(errors, 0), "field")),
                        "type");
    assert_int_equal(json_integer_value(json_object_get(json_array_get(errors, 0), "line")), 2);
    assert_non_null(strstr(detail_of(out), "line 2, column 7: type: 'reserch' is not one of"));
    assert_non_null(strstr(detail_of(out), "more error"));
    json_decref(out);
    /* Garbage and truncations never crash and always answer an error. */
    for (size_t cut = 0; cut < strlen(DOC); cut += 7) {
        int status = upload("text/yaml", DOC, cut, NULL, NULL, &out);
        assert_true(status == 0 || status == 400 || status == 422);
        json_decref(out);
    }
}

static void test_upload_checked_like_post_workflows(void **state)
{
    (void)state;
    /* A ?name= override goes through the same checks as a JSON body; a workflow the
     * library accepts but the API's JSON rules would refuse answers the same 422. */
    json_t *out;
    const char *doc = "name: x\nphases:\n  - {id: a, name: A, order: 1, prompt_template: x}\n";
    assert_int_equal(upload("text/yaml", doc, strlen(doc), NULL, "n", &out), 0);
    json_t *body_args = NULL, *body_error = NULL;
    const char *same = "{\"name\":\"n\",\"phases\":[{\"phase_id\":\"a\",\"name\":\"A\",\"order\":1,"
                       "\"prompt_template\":\"x\"}]}";
    assert_int_equal(gateway_validate_workflow(same, strlen(same), &body_args, &body_error), 0);
    assert_true(json_equal(out, body_args));
    json_decref(out);
    json_decref(body_args);
}

static void test_validate(void **state)
{
    (void)state;
    json_t *answer;
    json_t *body = json_pack("{s:s}", "content", DOC);
    char *text = json_dumps(body, 0);
    json_decref(body);
    assert_int_equal(gateway_yaml_validate(NULL, text, strlen(text), &answer), 200);
    assert_json(answer, "{\"valid\":true,\"errors\":[],\"name\":\"Triage\",\"workflow_type\":\"research\",\"phase_count\":1,\"warnings\":[]}");
    json_decref(answer);
    free(text);

    const char *invalid = "{\"content\":\"name: x\\ntype: reserch\\nphases:\\n  - {id: a, name: A, "
                          "order: 1, prompt_template: hi, colour: red}\\n\"}";
    assert_int_equal(gateway_yaml_validate(NULL, invalid, strlen(invalid), &answer), 200);
    assert_true(json_is_false(json_object_get(answer, "valid")));
    assert_string_equal(json_string_value(json_object_get(answer, "name")), "");
    assert_int_equal(json_integer_value(json_object_get(answer, "phase_count")), 0);
    const json_t *errors = json_object_get(answer, "errors");
    assert_int_equal(json_array_size(errors), 2);
    const json_t *first = json_array_get(errors, 0), *second = json_array_get(errors, 1);
    assert_int_equal(json_integer_value(json_object_get(first, "line")), 2);
    assert_int_equal(json_integer_value(json_object_get(first, "column")), 7);
    assert_string_equal(json_string_value(json_object_get(first, "field")), "type");
    assert_non_null(strstr(json_string_value(json_object_get(first, "message")),
                           "did you mean 'research'?"));
    assert_int_equal(json_integer_value(json_object_get(second, "line")), 4);
    assert_string_equal(json_string_value(json_object_get(second, "field")), "phases[0].colour");
    json_decref(answer);

    const char *syntax = "{\"content\":\"name: [x\"}";
    assert_int_equal(gateway_yaml_validate(NULL, syntax, strlen(syntax), &answer), 200);
    assert_true(json_is_false(json_object_get(answer, "valid")));
    first = json_array_get(json_object_get(answer, "errors"), 0);
    assert_true(json_is_integer(json_object_get(first, "line")));
    assert_true(json_is_integer(json_object_get(first, "column")));
    assert_true(json_is_null(json_object_get(first, "field")));
    json_decref(answer);

    const char *with_file = "{\"content\":\"name: x\\nphases: [{id: a, name: A, order: 1, "
                            "prompt_file: p.md}]\"}";
    assert_int_equal(gateway_yaml_validate(NULL, with_file, strlen(with_file), &answer), 200);
    assert_true(json_is_false(json_object_get(answer, "valid")));
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(json_object_get(answer, "errors"), 0), "field")),
                        "phases[0].prompt_file");
    json_decref(answer);

    /* Sent as YAML, the body is the text itself: the same answers. */
    assert_int_equal(gateway_yaml_validate("application/yaml", DOC, strlen(DOC), &answer), 200);
    assert_json(answer, "{\"valid\":true,\"errors\":[],\"name\":\"Triage\",\"workflow_type\":\"research\",\"phase_count\":1,\"warnings\":[]}");
    json_decref(answer);
    const char *raw = "name: x\ntype: reserch\nphases:\n  - {id: a, name: A, order: 1, "
                      "prompt_template: hi, colour: red}\n";
    assert_int_equal(
        gateway_yaml_validate("text/yaml; charset=utf-8", raw, strlen(raw), &answer), 200);
    assert_true(json_is_false(json_object_get(answer, "valid")));
    errors = json_object_get(answer, "errors");
    assert_int_equal(json_array_size(errors), 2);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(errors, 0), "line")), 2);
    assert_string_equal(
        json_string_value(json_object_get(json_array_get(errors, 1), "field")),
        "phases[0].colour");
    json_decref(answer);

    /* The body itself is checked as every JSON body is. */
    assert_int_equal(gateway_yaml_validate(NULL, "", 0, &answer), 422);
    assert_json(answer, "{\"detail\":[{\"loc\":[\"body\"],\"msg\":\"Field required\",\"type\":"
                        "\"missing\"}]}");
    json_decref(answer);
    const char *wrong = "{\"content\":5,\"x\":1}";
    assert_int_equal(gateway_yaml_validate(NULL, wrong, strlen(wrong), &answer), 422);
    assert_json(answer, "{\"detail\":[{\"loc\":[\"body\",\"content\"],\"msg\":\"Input should be a "
                        "valid string\",\"type\":\"string_type\"},{\"loc\":[\"body\",\"x\"],\"msg\":"
                        "\"Extra inputs are not permitted\",\"type\":\"extra_forbidden\"}]}");
    json_decref(answer);
}

/* A workflow as workflow.get answers it: defaults filled, server fields added. */
static const char *const STORED =
    "{\"id\":\"triage\",\"name\":\"Triage\",\"description\":null,\"workflow_type\":\"research\","
    "\"classification\":\"standard\",\"input_declarations\":[{\"name\":\"severity\","
    "\"description\":null,\"required\":false,\"default\":\"medium\"}],\"phases\":[{\"phase_id\":"
    "\"look\",\"name\":\"Look\",\"order\":1,\"prompt_template\":\"Look: $ARGUMENTS\\n  indented\\n"
    "\",\"model\":null,\"timeout_seconds\":300,\"max_attempts\":3,\"description\":null,"
    "\"argument_hint\":\"[issue]\",\"allowed_tools\":[],\"max_tokens\":500,\"provider\":\"mock\"},"
    "{\"phase_id\":\"plan\",\"name\":\"yes\",\"order\":2,\"prompt_template\":\"0123\","
    "\"model\":\"opus\",\"timeout_seconds\":60,\"max_attempts\":1,\"description\":\"d\","
    "\"argument_hint\":null,\"allowed_tools\":[\"Read\",\"Bash(git log:*)\"],\"retries\":2,"
    "\"retry_backoff_seconds\":1.5}],\"created_at\":\"2026-11-28T14:56:19.123456Z\","
    "\"version\":3,\"archived\":false}";

static void test_export_round_trip(void **state)
{
    (void)state;
    json_t *stored = json_loads(STORED, 0, NULL);
    assert_non_null(stored);
    char *yaml = NULL;
    json_t *error = NULL;
    assert_int_equal(gateway_yaml_export(stored, &yaml, &error), 200);
    assert_null(error);
    assert_null(strstr(yaml, "created_at"));
    assert_null(strstr(yaml, "version"));
    assert_null(strstr(yaml, "archived"));
    json_t *args;
    assert_int_equal(upload("application/yaml", yaml, strlen(yaml), NULL, NULL, &args), 0);
    /* Every key the stored workflow has that is not null, an empty list or a server
     * field comes back with the same value. */
    const char *key;
    json_t *value;
    json_object_foreach(stored, key, value)
    {
        if (!strcmp(key, "created_at") || !strcmp(key, "version") || !strcmp(key, "archived") ||
            json_is_null(value) || !strcmp(key, "phases") || !strcmp(key, "input_declarations"))
            continue;
        if (!json_equal(value, json_object_get(args, key)))
            fail_msg("key %s changed", key);
    }
    for (size_t i = 0; i < 2; i++) {
        json_t *want = json_array_get(json_object_get(stored, "phases"), i);
        json_t *got = json_array_get(json_object_get(args, "phases"), i);
        json_object_foreach(want, key, value)
        {
            if (json_is_null(value) || (json_is_array(value) && json_array_size(value) == 0))
                continue;
            if (!json_equal(value, json_object_get(got, key)))
                fail_msg("phases[%zu].%s changed", i, key);
        }
    }
    /* The export of what came back is the same text. */
    char *again = NULL;
    assert_int_equal(gateway_yaml_export(args, &again, &error), 200);
    assert_string_equal(again, yaml);
    free(again);
    free(yaml);
    json_decref(args);
    json_decref(stored);

    json_t *not_workflow = json_pack("{s:s}", "detail", "x");
    assert_int_equal(gateway_yaml_export(not_workflow, &yaml, &error), 502);
    assert_null(yaml);
    assert_json(error, "{\"detail\":\"invalid reply from broker: not a workflow\"}");
    json_decref(error);
    json_decref(not_workflow);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_media_types),
        cmocka_unit_test(test_upload_ok),
        cmocka_unit_test(test_upload_unsupported_media_type),
        cmocka_unit_test(test_upload_bad_overrides),
        cmocka_unit_test(test_upload_refused),
        cmocka_unit_test(test_upload_checked_like_post_workflows),
        cmocka_unit_test(test_validate),
        cmocka_unit_test(test_export_round_trip),
    };
    return cmocka_run_group_tests_name("gateway_yaml", tests, NULL, NULL);
}
