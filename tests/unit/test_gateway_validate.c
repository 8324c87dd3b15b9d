/* The HTTP body validation matrix: every rule of gateway/validate.h with its exact
 * loc/msg/type, several errors at once, nested locs, and the args valid bodies give. */
#include "gateway/validate.h"
#include "template/spec.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define PATTERN_MSG "String should match pattern '^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$'"

/* Compares got with the JSON text want, printing both when they differ. */
static void assert_json(json_t *got, const char *want_text)
{
    json_error_t jerr;
    json_t *want = json_loads(want_text, 0, &jerr);
    if (!want)
        fail_msg("bad expected JSON in test: %s (%s)", want_text, jerr.text);
    if (!json_equal(got, want)) {
        char *got_text = json_dumps(got, JSON_COMPACT | JSON_ENCODE_ANY);
        print_error("got:  %s\nwant: %s\n", got_text ? got_text : "(null)", want_text);
        free(got_text);
        json_decref(want);
        fail();
    }
    json_decref(want);
}

/* Validates an execute body expected to fail with exactly the detail list given. */
static void expect_execute_errors(const char *body, const char *detail)
{
    json_t *args = (json_t *)1, *error = NULL;
    int status = gateway_validate_execute(body, strlen(body), "wf", &args, &error);
    assert_int_equal(status, 422);
    assert_null(args);
    assert_non_null(error);
    char want[4096];
    snprintf(want, sizeof want, "{\"detail\":%s}", detail);
    assert_json(error, want);
    json_decref(error);
}

static void expect_execute_args(const char *body, const char *want_args)
{
    json_t *args = NULL, *error = NULL;
    int status = gateway_validate_execute(body, strlen(body), "wf-1", &args, &error);
    if (status != 0) {
        char *text = json_dumps(error, JSON_COMPACT);
        print_error("unexpected error for %s: %s\n", body, text);
        free(text);
    }
    assert_int_equal(status, 0);
    assert_null(error);
    assert_json(args, want_args);
    json_decref(args);
}

static void expect_workflow_errors(const char *body, const char *detail)
{
    json_t *args = NULL, *error = NULL;
    int status = gateway_validate_workflow(body, strlen(body), &args, &error);
    assert_int_equal(status, 422);
    assert_null(args);
    char want[8192];
    snprintf(want, sizeof want, "{\"detail\":%s}", detail);
    assert_json(error, want);
    json_decref(error);
}

static void expect_workflow_args(const char *body, const char *want_args)
{
    json_t *args = NULL, *error = NULL;
    int status = gateway_validate_workflow(body, strlen(body), &args, &error);
    if (status != 0) {
        char *text = json_dumps(error, JSON_COMPACT);
        print_error("unexpected error for %s: %s\n", body, text);
        free(text);
    }
    assert_int_equal(status, 0);
    assert_json(args, want_args);
    json_decref(args);
}

/* A workflow body with one phase whose extra members are spliced in. */
static void phase_body(char *out, size_t outsize, const char *phase_extra)
{
    snprintf(out, outsize,
             "{\"name\":\"n\",\"phases\":[{\"phase_id\":\"p\",\"name\":\"P\",\"order\":1,"
             "\"prompt_template\":\"x\"%s%s}]}",
             phase_extra[0] ? "," : "", phase_extra);
}

static void expect_phase_error(const char *phase_extra, const char *field_loc, const char *msg,
                               const char *type)
{
    char body[1024], detail[1024];
    phase_body(body, sizeof body, phase_extra);
    snprintf(detail, sizeof detail,
             "[{\"loc\":[\"body\",\"phases\",0,%s],\"msg\":\"%s\",\"type\":\"%s\"}]", field_loc,
             msg, type);
    expect_workflow_errors(body, detail);
}

/* ---- the body as a whole ---- */

static void test_body_missing(void **state)
{
    (void)state;
    expect_execute_errors("", "[{\"loc\":[\"body\"],\"msg\":\"Field required\",\"type\":\"missing\"}]");
    expect_workflow_errors("", "[{\"loc\":[\"body\"],\"msg\":\"Field required\",\"type\":\"missing\"}]");
}

static void test_body_malformed(void **state)
{
    (void)state;
    expect_execute_errors("{\"a\":",
                          "[{\"loc\":[\"body\",5],\"msg\":\"JSON decode error\",\"type\":\"json_invalid\"}]");
    expect_execute_errors("{\"task\": \"x\",}",
                          "[{\"loc\":[\"body\",13],\"msg\":\"JSON decode error\",\"type\":\"json_invalid\"}]");
    expect_execute_errors("{} {}",
                          "[{\"loc\":[\"body\",3],\"msg\":\"JSON decode error\",\"type\":\"json_invalid\"}]");
    expect_workflow_errors("nope",
                           "[{\"loc\":[\"body\",0],\"msg\":\"JSON decode error\",\"type\":\"json_invalid\"}]");
    expect_execute_errors("{\"a\": tru}",
                          "[{\"loc\":[\"body\",6],\"msg\":\"JSON decode error\",\"type\":\"json_invalid\"}]");
    expect_execute_errors("  ",
                          "[{\"loc\":[\"body\",2],\"msg\":\"JSON decode error\",\"type\":\"json_invalid\"}]");
    /* An escaped NUL is refused by the decoder, so it never reaches a C string. */
    expect_execute_errors("{\"task\":\"a\\u0000b\"}",
                          "[{\"loc\":[\"body\",8],\"msg\":\"JSON decode error\",\"type\":\"json_invalid\"}]");
}

static void test_body_not_object(void **state)
{
    (void)state;
    const char *bodies[] = {"[]", "\"text\"", "5", "null", "true", "[{}]"};
    for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
        expect_execute_errors(bodies[i], "[{\"loc\":[\"body\"],\"msg\":\"Input should be a valid "
                                         "dictionary\",\"type\":\"dict_type\"}]");
        expect_workflow_errors(bodies[i], "[{\"loc\":[\"body\"],\"msg\":\"Input should be a valid "
                                          "dictionary\",\"type\":\"dict_type\"}]");
    }
}

/* ---- execute ---- */

static void test_execute_valid(void **state)
{
    (void)state;
    expect_execute_args("{}", "{\"workflow_id\":\"wf-1\",\"inputs\":{},\"task\":null,\"repos\":[]}");
    expect_execute_args(" { } ", "{\"workflow_id\":\"wf-1\",\"inputs\":{},\"task\":null,\"repos\":[]}");
    expect_execute_args("{\"inputs\":{\"a\":\"1\",\"b\":\"\"},\"task\":\"do it\",\"repos\":[\"r1\",\"r2\"],"
                        "\"provider\":\"claude\",\"max_budget_usd\":2.5}",
                        "{\"workflow_id\":\"wf-1\",\"inputs\":{\"a\":\"1\",\"b\":\"\"},\"task\":\"do it\","
                        "\"repos\":[\"r1\",\"r2\"],\"max_budget_usd\":2.5}");
    expect_execute_args("{\"task\":null,\"provider\":null,\"max_budget_usd\":null,\"inputs\":null,"
                        "\"repos\":null}",
                        "{\"workflow_id\":\"wf-1\",\"inputs\":{},\"task\":null,\"repos\":[]}");
    expect_execute_args("{\"max_budget_usd\":3}",
                        "{\"workflow_id\":\"wf-1\",\"inputs\":{},\"task\":null,\"repos\":[],"
                        "\"max_budget_usd\":3}");
}

static void test_execute_extra_key(void **state)
{
    (void)state;
    expect_execute_errors("{\"foo\":1}", "[{\"loc\":[\"body\",\"foo\"],\"msg\":\"Extra inputs are not "
                                         "permitted\",\"type\":\"extra_forbidden\"}]");
    expect_execute_errors("{\"inputs\":{},\"Task\":\"x\"}",
                          "[{\"loc\":[\"body\",\"Task\"],\"msg\":\"Extra inputs are not "
                          "permitted\",\"type\":\"extra_forbidden\"}]");
}

static void test_execute_types(void **state)
{
    (void)state;
    expect_execute_errors("{\"inputs\":{\"k\":1}}",
                          "[{\"loc\":[\"body\",\"inputs\",\"k\"],\"msg\":\"Input should be a valid "
                          "string\",\"type\":\"string_type\"}]");
    expect_execute_errors("{\"inputs\":{\"k\":null}}",
                          "[{\"loc\":[\"body\",\"inputs\",\"k\"],\"msg\":\"Input should be a valid "
                          "string\",\"type\":\"string_type\"}]");
    expect_execute_errors("{\"inputs\":\"x\"}", "[{\"loc\":[\"body\",\"inputs\"],\"msg\":\"Input should "
                                                "be a valid dictionary\",\"type\":\"dict_type\"}]");
    expect_execute_errors("{\"inputs\":[]}", "[{\"loc\":[\"body\",\"inputs\"],\"msg\":\"Input should "
                                             "be a valid dictionary\",\"type\":\"dict_type\"}]");
    expect_execute_errors("{\"task\":5}", "[{\"loc\":[\"body\",\"task\"],\"msg\":\"Input should be a "
                                          "valid string\",\"type\":\"string_type\"}]");
    expect_execute_errors("{\"repos\":\"r\"}", "[{\"loc\":[\"body\",\"repos\"],\"msg\":\"Input should "
                                               "be a valid list\",\"type\":\"list_type\"}]");
    expect_execute_errors("{\"repos\":[\"a\",1,\"b\",{}]}",
                          "[{\"loc\":[\"body\",\"repos\",1],\"msg\":\"Input should be a valid "
                          "string\",\"type\":\"string_type\"},"
                          "{\"loc\":[\"body\",\"repos\",3],\"msg\":\"Input should be a valid "
                          "string\",\"type\":\"string_type\"}]");
    expect_execute_errors("{\"provider\":true}", "[{\"loc\":[\"body\",\"provider\"],\"msg\":\"Input "
                                                 "should be a valid string\",\"type\":\"string_type\"}]");
    expect_execute_errors("{\"max_budget_usd\":\"5\"}",
                          "[{\"loc\":[\"body\",\"max_budget_usd\"],\"msg\":\"Input should be a valid "
                          "number\",\"type\":\"float_type\"}]");
    expect_execute_errors("{\"max_budget_usd\":0}",
                          "[{\"loc\":[\"body\",\"max_budget_usd\"],\"msg\":\"Input should be greater "
                          "than 0\",\"type\":\"greater_than\"}]");
    expect_execute_errors("{\"max_budget_usd\":-1.5}",
                          "[{\"loc\":[\"body\",\"max_budget_usd\"],\"msg\":\"Input should be greater "
                          "than 0\",\"type\":\"greater_than\"}]");
    expect_execute_errors("{\"max_budget_usd\":false}",
                          "[{\"loc\":[\"body\",\"max_budget_usd\"],\"msg\":\"Input should be a valid "
                          "number\",\"type\":\"float_type\"}]");
}

/* Every error of the body, declared fields first (in declaration order), then the
 * unknown keys in the order they were given. */
static void test_execute_collects_all_errors(void **state)
{
    (void)state;
    expect_execute_errors(
        "{\"zz\":0,\"repos\":5,\"inputs\":{\"a\":1,\"b\":\"ok\",\"c\":[]},\"task\":{},\"aa\":1}",
        "[{\"loc\":[\"body\",\"inputs\",\"a\"],\"msg\":\"Input should be a valid string\",\"type\":\"string_type\"},"
        "{\"loc\":[\"body\",\"inputs\",\"c\"],\"msg\":\"Input should be a valid string\",\"type\":\"string_type\"},"
        "{\"loc\":[\"body\",\"task\"],\"msg\":\"Input should be a valid string\",\"type\":\"string_type\"},"
        "{\"loc\":[\"body\",\"repos\"],\"msg\":\"Input should be a valid list\",\"type\":\"list_type\"},"
        "{\"loc\":[\"body\",\"zz\"],\"msg\":\"Extra inputs are not permitted\",\"type\":\"extra_forbidden\"},"
        "{\"loc\":[\"body\",\"aa\"],\"msg\":\"Extra inputs are not permitted\",\"type\":\"extra_forbidden\"}]");
}

/* ---- workflow ---- */

static void test_workflow_minimal_valid(void **state)
{
    (void)state;
    const char *body = "{\"name\":\"n\",\"phases\":[{\"phase_id\":\"p\",\"name\":\"P\",\"order\":0,"
                       "\"prompt_template\":\"x\"}]}";
    expect_workflow_args(body, body);
}

static void test_workflow_full_valid(void **state)
{
    (void)state;
    const char *body =
        "{\"id\":\"wf.A_1-b\",\"name\":\"Research\",\"description\":\"d\",\"workflow_type\":\"research\","
        "\"classification\":\"standard\",\"input_declarations\":[{\"name\":\"topic\",\"description\":"
        "\"t\",\"required\":false,\"default\":\"x\"},{\"name\":\"depth\",\"default\":null}],"
        "\"phases\":[{\"phase_id\":\"plan\",\"name\":\"Plan\",\"order\":1,\"prompt_template\":"
        "\"Plan {{topic}}\",\"model\":\"sonnet\",\"timeout_seconds\":86400,\"max_attempts\":10,"
        "\"retries\":0,\"retry_backoff_seconds\":0.5,\"description\":null,\"argument_hint\":\"[t]\","
        "\"allowed_tools\":[\"Read\",\"Bash\"]},{\"phase_id\":\"do\",\"name\":\"Do\",\"order\":2,"
        "\"prompt_template\":\"{{plan}}\",\"timeout_seconds\":1,\"max_attempts\":1,\"retries\":10,"
        "\"allowed_tools\":[]}]}";
    /* Null-valued optional keys are dropped; everything else passes through. */
    const char *want =
        "{\"id\":\"wf.A_1-b\",\"name\":\"Research\",\"description\":\"d\",\"workflow_type\":\"research\","
        "\"classification\":\"standard\",\"input_declarations\":[{\"name\":\"topic\",\"description\":"
        "\"t\",\"required\":false,\"default\":\"x\"},{\"name\":\"depth\"}],"
        "\"phases\":[{\"phase_id\":\"plan\",\"name\":\"Plan\",\"order\":1,\"prompt_template\":"
        "\"Plan {{topic}}\",\"model\":\"sonnet\",\"timeout_seconds\":86400,\"max_attempts\":10,"
        "\"retries\":0,\"retry_backoff_seconds\":0.5,\"argument_hint\":\"[t]\","
        "\"allowed_tools\":[\"Read\",\"Bash\"]},{\"phase_id\":\"do\",\"name\":\"Do\",\"order\":2,"
        "\"prompt_template\":\"{{plan}}\",\"timeout_seconds\":1,\"max_attempts\":1,\"retries\":10,"
        "\"allowed_tools\":[]}]}";
    expect_workflow_args(body, want);
}

/* Issue 6: the keys the broker and the YAML format accept are accepted here too, with
 * the same ranges, and the type and classification are closed lists, so a workflow
 * is refused (or not) the same way whichever way it comes in. */
static void test_workflow_template_rules(void **state)
{
    (void)state;
    char body[1024];
    phase_body(body, sizeof body,
               "\"provider\":\"command\",\"max_tokens\":32000,\"retry_backoff_seconds\":86400");
    expect_workflow_args(body, body);
    phase_body(body, sizeof body, "\"max_tokens\":1");
    expect_workflow_args(body, body);
    phase_body(body, sizeof body, "\"max_tokens\":10000000");
    expect_workflow_args(body, body);
    expect_phase_error("\"max_tokens\":0", "\"max_tokens\"",
                       "Input should be greater than or equal to 1", "greater_than_equal");
    expect_phase_error("\"max_tokens\":10000001", "\"max_tokens\"",
                       "Input should be less than or equal to 10000000", "less_than_equal");
    expect_phase_error("\"max_tokens\":\"8\"", "\"max_tokens\"",
                       "Input should be a valid integer", "int_type");
    expect_phase_error("\"provider\":\"\"", "\"provider\"",
                       "String should have at least 1 character", "string_too_short");
    expect_phase_error("\"provider\":3", "\"provider\"", "Input should be a valid string",
                       "string_type");
    expect_phase_error("\"retry_backoff_seconds\":86400.5", "\"retry_backoff_seconds\"",
                       "Input should be less than or equal to 86400", "less_than_equal");

    for (const char *const *t = spec_workflow_types; *t; t++) {
        snprintf(body, sizeof body,
                 "{\"name\":\"n\",\"workflow_type\":\"%s\",\"phases\":[{\"phase_id\":\"p\","
                 "\"name\":\"P\",\"order\":1,\"prompt_template\":\"x\"}]}",
                 *t);
        expect_workflow_args(body, body);
    }
    for (const char *const *c = spec_classifications; *c; c++) {
        snprintf(body, sizeof body,
                 "{\"name\":\"n\",\"classification\":\"%s\",\"phases\":[{\"phase_id\":\"p\","
                 "\"name\":\"P\",\"order\":1,\"prompt_template\":\"x\"}]}",
                 *c);
        expect_workflow_args(body, body);
    }
    expect_workflow_errors(
        "{\"name\":\"n\",\"workflow_type\":\"Research\",\"classification\":\"huge\","
        "\"phases\":[{\"phase_id\":\"p\",\"name\":\"P\",\"order\":1,\"prompt_template\":\"x\"}]}",
        "[{\"loc\":[\"body\",\"workflow_type\"],\"msg\":\"Input should be 'research', "
        "'planning', 'implementation', 'review', 'deployment' or 'custom'\",\"type\":\"enum\"},"
        "{\"loc\":[\"body\",\"classification\"],\"msg\":\"Input should be 'simple', "
        "'standard', 'complex' or 'epic'\",\"type\":\"enum\"}]");
    /* Null is absent, as for every optional key. */
    expect_workflow_args("{\"name\":\"n\",\"workflow_type\":null,\"phases\":[{\"phase_id\":"
                         "\"p\",\"name\":\"P\",\"order\":1,\"prompt_template\":\"x\"}]}",
                         "{\"name\":\"n\",\"phases\":[{\"phase_id\":\"p\",\"name\":\"P\","
                         "\"order\":1,\"prompt_template\":\"x\"}]}");
}

static void expect_phase_update(const char *body, int want_status, const char *want)
{
    json_t *args = NULL, *error = NULL;
    int status = gateway_validate_phase_update(body, strlen(body), "wf", "p", &args, &error);
    assert_int_equal(status, want_status);
    assert_json(status == 0 ? args : error, want);
    json_decref(args);
    json_decref(error);
}

static void test_phase_update(void **state)
{
    (void)state;
    expect_phase_update("{\"prompt_template\":\"new\"}", 0,
                        "{\"workflow_id\":\"wf\",\"phase_id\":\"p\",\"prompt_template\":\"new\"}");
    expect_phase_update("{\"prompt_template\":\"new\",\"model\":\"opus\",\"timeout_seconds\":"
                        "86400,\"allowed_tools\":[]}",
                        0,
                        "{\"workflow_id\":\"wf\",\"phase_id\":\"p\",\"prompt_template\":\"new\","
                        "\"model\":\"opus\",\"timeout_seconds\":86400,\"allowed_tools\":[]}");
    expect_phase_update("{\"model\":\"opus\"}", 422,
                        "{\"detail\":[{\"loc\":[\"body\",\"prompt_template\"],\"msg\":\"Field "
                        "required\",\"type\":\"missing\"}]}");
    expect_phase_update("{\"prompt_template\":null}", 422,
                        "{\"detail\":[{\"loc\":[\"body\",\"prompt_template\"],\"msg\":\"Input "
                        "should be a valid string\",\"type\":\"string_type\"}]}");
    expect_phase_update("{\"prompt_template\":\"x\",\"timeout_seconds\":86401,\"allowed_tools\":"
                        "[1],\"order\":2}",
                        422,
                        "{\"detail\":[{\"loc\":[\"body\",\"timeout_seconds\"],\"msg\":\"Input "
                        "should be less than or equal to 86400\",\"type\":\"less_than_equal\"},"
                        "{\"loc\":[\"body\",\"allowed_tools\",0],\"msg\":\"Input should be a "
                        "valid string\",\"type\":\"string_type\"},"
                        "{\"loc\":[\"body\",\"order\"],\"msg\":\"Extra inputs are not "
                        "permitted\",\"type\":\"extra_forbidden\"}]}");
    expect_phase_update("[]", 422,
                        "{\"detail\":[{\"loc\":[\"body\"],\"msg\":\"Input should be a valid "
                        "dictionary\",\"type\":\"dict_type\"}]}");
}

static void test_query_bool(void **state)
{
    (void)state;
    const char *truthy[] = {"true", "TRUE", "1", "yes", "on", "t", "Y"};
    const char *falsy[] = {"false", "False", "0", "no", "off", "f", "n"};
    json_t *errors = json_array();
    bool out;
    for (size_t i = 0; i < sizeof truthy / sizeof truthy[0]; i++) {
        out = false;
        assert_int_equal(gateway_validate_query_bool("b", truthy[i], false, &out, errors), 0);
        assert_true(out);
        out = true;
        assert_int_equal(gateway_validate_query_bool("b", falsy[i], true, &out, errors), 0);
        assert_false(out);
    }
    assert_int_equal(gateway_validate_query_bool("b", NULL, true, &out, errors), 0);
    assert_true(out);
    assert_int_equal(json_array_size(errors), 0);
    assert_int_equal(gateway_validate_query_bool("b", "", false, &out, errors), -1);
    assert_int_equal(gateway_validate_query_bool("b", "truee", false, &out, errors), -1);
    assert_json(errors, "[{\"loc\":[\"query\",\"b\"],\"msg\":\"Input should be a valid boolean, "
                        "unable to interpret input\",\"type\":\"bool_parsing\"},"
                        "{\"loc\":[\"query\",\"b\"],\"msg\":\"Input should be a valid boolean, "
                        "unable to interpret input\",\"type\":\"bool_parsing\"}]");
    json_decref(errors);
}

static void test_workflow_required_fields(void **state)
{
    (void)state;
    expect_workflow_errors("{}", "[{\"loc\":[\"body\",\"name\"],\"msg\":\"Field required\",\"type\":\"missing\"},"
                                 "{\"loc\":[\"body\",\"phases\"],\"msg\":\"Field required\",\"type\":\"missing\"}]");
    expect_workflow_errors("{\"name\":null,\"phases\":null}",
                           "[{\"loc\":[\"body\",\"name\"],\"msg\":\"Input should be a valid string\",\"type\":\"string_type\"},"
                           "{\"loc\":[\"body\",\"phases\"],\"msg\":\"Input should be a valid list\",\"type\":\"list_type\"}]");
    expect_workflow_errors("{\"name\":\"n\",\"phases\":[{}]}",
                           "[{\"loc\":[\"body\",\"phases\",0,\"phase_id\"],\"msg\":\"Field required\",\"type\":\"missing\"},"
                           "{\"loc\":[\"body\",\"phases\",0,\"name\"],\"msg\":\"Field required\",\"type\":\"missing\"},"
                           "{\"loc\":[\"body\",\"phases\",0,\"order\"],\"msg\":\"Field required\",\"type\":\"missing\"},"
                           "{\"loc\":[\"body\",\"phases\",0,\"prompt_template\"],\"msg\":\"Field required\",\"type\":\"missing\"}]");
}

static void test_workflow_phases_shape(void **state)
{
    (void)state;
    expect_workflow_errors("{\"name\":\"n\",\"phases\":[]}",
                           "[{\"loc\":[\"body\",\"phases\"],\"msg\":\"List should have at least 1 item after "
                           "validation, not 0\",\"type\":\"too_short\"}]");
    expect_workflow_errors("{\"name\":\"n\",\"phases\":{}}",
                           "[{\"loc\":[\"body\",\"phases\"],\"msg\":\"Input should be a valid list\",\"type\":\"list_type\"}]");
    expect_workflow_errors("{\"name\":\"n\",\"phases\":[5,\"x\"]}",
                           "[{\"loc\":[\"body\",\"phases\",0],\"msg\":\"Input should be a valid dictionary\",\"type\":\"dict_type\"},"
                           "{\"loc\":[\"body\",\"phases\",1],\"msg\":\"Input should be a valid dictionary\",\"type\":\"dict_type\"}]");
}

static void test_workflow_phase_types_and_ranges(void **state)
{
    (void)state;
    expect_phase_error("\"foo\":1", "\"foo\"", "Extra inputs are not permitted", "extra_forbidden");
    expect_phase_error("\"model\":1", "\"model\"", "Input should be a valid string", "string_type");
    expect_phase_error("\"timeout_seconds\":0", "\"timeout_seconds\"",
                       "Input should be greater than or equal to 1", "greater_than_equal");
    expect_phase_error("\"timeout_seconds\":86401", "\"timeout_seconds\"",
                       "Input should be less than or equal to 86400", "less_than_equal");
    expect_phase_error("\"timeout_seconds\":\"60\"", "\"timeout_seconds\"",
                       "Input should be a valid integer", "int_type");
    expect_phase_error("\"timeout_seconds\":1.5", "\"timeout_seconds\"",
                       "Input should be a valid integer", "int_type");
    expect_phase_error("\"max_attempts\":0", "\"max_attempts\"",
                       "Input should be greater than or equal to 1", "greater_than_equal");
    expect_phase_error("\"max_attempts\":11", "\"max_attempts\"",
                       "Input should be less than or equal to 10", "less_than_equal");
    expect_phase_error("\"max_attempts\":true", "\"max_attempts\"",
                       "Input should be a valid integer", "int_type");
    expect_phase_error("\"retries\":-1", "\"retries\"",
                       "Input should be greater than or equal to 0", "greater_than_equal");
    expect_phase_error("\"retries\":11", "\"retries\"",
                       "Input should be less than or equal to 10", "less_than_equal");
    expect_phase_error("\"retry_backoff_seconds\":-0.5", "\"retry_backoff_seconds\"",
                       "Input should be greater than or equal to 0", "greater_than_equal");
    expect_phase_error("\"retry_backoff_seconds\":\"1\"", "\"retry_backoff_seconds\"",
                       "Input should be a valid number", "float_type");
    expect_phase_error("\"allowed_tools\":\"Read\"", "\"allowed_tools\"",
                       "Input should be a valid list", "list_type");
    expect_phase_error("\"allowed_tools\":[\"Read\",7]", "\"allowed_tools\",1",
                       "Input should be a valid string", "string_type");
    expect_phase_error("\"argument_hint\":[]", "\"argument_hint\"",
                       "Input should be a valid string", "string_type");
    expect_phase_error("\"description\":{}", "\"description\"",
                       "Input should be a valid string", "string_type");

    expect_workflow_errors("{\"name\":\"n\",\"phases\":[{\"phase_id\":\"\",\"name\":1,\"order\":-1,"
                           "\"prompt_template\":null}]}",
                           "[{\"loc\":[\"body\",\"phases\",0,\"phase_id\"],\"msg\":\"String should have at least 1 character\",\"type\":\"string_too_short\"},"
                           "{\"loc\":[\"body\",\"phases\",0,\"name\"],\"msg\":\"Input should be a valid string\",\"type\":\"string_type\"},"
                           "{\"loc\":[\"body\",\"phases\",0,\"order\"],\"msg\":\"Input should be greater than or equal to 0\",\"type\":\"greater_than_equal\"},"
                           "{\"loc\":[\"body\",\"phases\",0,\"prompt_template\"],\"msg\":\"Input should be a valid string\",\"type\":\"string_type\"}]");
}

static void test_workflow_id_pattern(void **state)
{
    (void)state;
    const char *bad[] = {"bad id", "", "-start", ".start", "a/b", "é", "a\\u00e9"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char body[512], detail[512];
        snprintf(body, sizeof body,
                 "{\"id\":\"%s\",\"name\":\"n\",\"phases\":[{\"phase_id\":\"p\",\"name\":\"P\","
                 "\"order\":1,\"prompt_template\":\"x\"}]}",
                 bad[i]);
        snprintf(detail, sizeof detail,
                 "[{\"loc\":[\"body\",\"id\"],\"msg\":\"%s\",\"type\":\"string_pattern_mismatch\"}]",
                 PATTERN_MSG);
        expect_workflow_errors(body, detail);
    }
    expect_workflow_errors("{\"id\":7,\"name\":\"n\",\"phases\":[{\"phase_id\":\"p\",\"name\":\"P\","
                           "\"order\":1,\"prompt_template\":\"x\"}]}",
                           "[{\"loc\":[\"body\",\"id\"],\"msg\":\"Input should be a valid string\",\"type\":\"string_type\"}]");
}

static void test_workflow_input_declarations(void **state)
{
    (void)state;
    const char *tail = "\"phases\":[{\"phase_id\":\"p\",\"name\":\"P\",\"order\":1,\"prompt_template\":\"x\"}]}";
    char body[1024];
    snprintf(body, sizeof body, "{\"name\":\"n\",\"input_declarations\":\"x\",%s", tail);
    expect_workflow_errors(body, "[{\"loc\":[\"body\",\"input_declarations\"],\"msg\":\"Input should be "
                                 "a valid list\",\"type\":\"list_type\"}]");
    snprintf(body, sizeof body,
             "{\"name\":\"n\",\"input_declarations\":[{\"name\":\"a\",\"required\":\"yes\",\"default\":5},"
             "{\"description\":\"d\",\"other\":1},3],%s",
             tail);
    expect_workflow_errors(
        body,
        "[{\"loc\":[\"body\",\"input_declarations\",0,\"required\"],\"msg\":\"Input should be a valid boolean\",\"type\":\"bool_type\"},"
        "{\"loc\":[\"body\",\"input_declarations\",0,\"default\"],\"msg\":\"Input should be a valid string\",\"type\":\"string_type\"},"
        "{\"loc\":[\"body\",\"input_declarations\",1,\"name\"],\"msg\":\"Field required\",\"type\":\"missing\"},"
        "{\"loc\":[\"body\",\"input_declarations\",1,\"other\"],\"msg\":\"Extra inputs are not permitted\",\"type\":\"extra_forbidden\"},"
        "{\"loc\":[\"body\",\"input_declarations\",2],\"msg\":\"Input should be a valid dictionary\",\"type\":\"dict_type\"}]");
    /* An empty list is fine: a workflow may take no inputs. */
    snprintf(body, sizeof body, "{\"name\":\"n\",\"input_declarations\":[],%s", tail);
    expect_workflow_args(body, body);
}

static void test_workflow_collects_errors_across_levels(void **state)
{
    (void)state;
    expect_workflow_errors(
        "{\"extra\":1,\"name\":2,\"workflow_type\":3,\"phases\":[{\"phase_id\":\"a\",\"name\":\"A\","
        "\"order\":1,\"prompt_template\":\"x\",\"max_attempts\":0},{\"phase_id\":\"b\",\"order\":\"2\","
        "\"prompt_template\":\"y\",\"x\":1}]}",
        "[{\"loc\":[\"body\",\"name\"],\"msg\":\"Input should be a valid string\",\"type\":\"string_type\"},"
        "{\"loc\":[\"body\",\"workflow_type\"],\"msg\":\"Input should be a valid string\",\"type\":\"string_type\"},"
        "{\"loc\":[\"body\",\"phases\",0,\"max_attempts\"],\"msg\":\"Input should be greater than or equal to 1\",\"type\":\"greater_than_equal\"},"
        "{\"loc\":[\"body\",\"phases\",1,\"name\"],\"msg\":\"Field required\",\"type\":\"missing\"},"
        "{\"loc\":[\"body\",\"phases\",1,\"order\"],\"msg\":\"Input should be a valid integer\",\"type\":\"int_type\"},"
        "{\"loc\":[\"body\",\"phases\",1,\"x\"],\"msg\":\"Extra inputs are not permitted\",\"type\":\"extra_forbidden\"},"
        "{\"loc\":[\"body\",\"extra\"],\"msg\":\"Extra inputs are not permitted\",\"type\":\"extra_forbidden\"}]");
}

static void expect_workflow_detail(const char *body, const char *detail_text)
{
    json_t *args = NULL, *error = NULL;
    assert_int_equal(gateway_validate_workflow(body, strlen(body), &args, &error), 422);
    assert_null(args);
    assert_string_equal(json_string_value(json_object_get(error, "detail")), detail_text);
    json_decref(error);
}

static void test_workflow_duplicates(void **state)
{
    (void)state;
    expect_workflow_detail(
        "{\"name\":\"n\",\"phases\":[{\"phase_id\":\"x\",\"name\":\"A\",\"order\":1,\"prompt_template\":\"\"},"
        "{\"phase_id\":\"y\",\"name\":\"B\",\"order\":2,\"prompt_template\":\"\"},"
        "{\"phase_id\":\"x\",\"name\":\"C\",\"order\":3,\"prompt_template\":\"\"}]}",
        "Duplicate phase_id 'x' in phases[0] and phases[2]");
    expect_workflow_detail(
        "{\"name\":\"n\",\"phases\":[{\"phase_id\":\"a\",\"name\":\"A\",\"order\":1,\"prompt_template\":\"\"},"
        "{\"phase_id\":\"b\",\"name\":\"B\",\"order\":2,\"prompt_template\":\"\"},"
        "{\"phase_id\":\"c\",\"name\":\"C\",\"order\":3,\"prompt_template\":\"\"},"
        "{\"phase_id\":\"d\",\"name\":\"D\",\"order\":2,\"prompt_template\":\"\"}]}",
        "Duplicate order 2 in phases[1] and phases[3]");
    /* Phase ids are reported before orders. */
    expect_workflow_detail(
        "{\"name\":\"n\",\"phases\":[{\"phase_id\":\"a\",\"name\":\"A\",\"order\":1,\"prompt_template\":\"\"},"
        "{\"phase_id\":\"b\",\"name\":\"B\",\"order\":1,\"prompt_template\":\"\"},"
        "{\"phase_id\":\"b\",\"name\":\"C\",\"order\":3,\"prompt_template\":\"\"}]}",
        "Duplicate phase_id 'b' in phases[1] and phases[2]");
    /* Only checked once the shape is valid: the shape error list wins. */
    expect_workflow_errors(
        "{\"name\":\"n\",\"phases\":[{\"phase_id\":\"a\",\"name\":\"A\",\"order\":1,\"prompt_template\":\"\"},"
        "{\"phase_id\":\"a\",\"name\":\"B\",\"order\":1}]}",
        "[{\"loc\":[\"body\",\"phases\",1,\"prompt_template\"],\"msg\":\"Field required\",\"type\":\"missing\"}]");
}

/* ---- query parameters ---- */

static void expect_query_error(const char *text, long min, long max, const char *msg,
                               const char *type)
{
    json_t *errors = json_array();
    long value = -12345;
    assert_int_equal(gateway_validate_query_int("limit", text, min, max, 20, &value, errors), -1);
    assert_int_equal(value, -12345);
    char want[512];
    snprintf(want, sizeof want, "[{\"loc\":[\"query\",\"limit\"],\"msg\":\"%s\",\"type\":\"%s\"}]",
             msg, type);
    assert_json(errors, want);
    json_decref(errors);
}

static void expect_query_value(const char *text, long want)
{
    json_t *errors = json_array();
    long value = -1;
    assert_int_equal(gateway_validate_query_int("limit", text, 1, 100, 20, &value, errors), 0);
    assert_int_equal(value, want);
    assert_int_equal(json_array_size(errors), 0);
    json_decref(errors);
}

static void test_query_int(void **state)
{
    (void)state;
    const char *parse = "Input should be a valid integer, unable to parse string as an integer";
    expect_query_value(NULL, 20);
    expect_query_value("1", 1);
    expect_query_value("100", 100);
    expect_query_value(" 7 ", 7);
    expect_query_value("+5", 5);
    expect_query_value("007", 7);
    expect_query_error("abc", 1, 100, parse, "int_parsing");
    expect_query_error("", 1, 100, parse, "int_parsing");
    expect_query_error("1.5", 1, 100, parse, "int_parsing");
    expect_query_error("5x", 1, 100, parse, "int_parsing");
    expect_query_error("-", 1, 100, parse, "int_parsing");
    expect_query_error("0", 1, 100, "Input should be greater than or equal to 1",
                       "greater_than_equal");
    expect_query_error("-3", 1, 100, "Input should be greater than or equal to 1",
                       "greater_than_equal");
    expect_query_error("101", 1, 100, "Input should be less than or equal to 100",
                       "less_than_equal");
    expect_query_error("99999999999999999999999", 1, 100,
                       "Input should be less than or equal to 100", "less_than_equal");
    expect_query_error("-99999999999999999999999", 1, 100,
                       "Input should be greater than or equal to 1", "greater_than_equal");
}

static void test_error_body(void **state)
{
    (void)state;
    json_t *errors = json_array();
    json_t *body = gateway_validate_error_body(errors);
    assert_json(body, "{\"detail\":[]}");
    json_decref(body);
}


static void expect_control_args(gateway_control_t control, const char *body,
                                const char *want_args)
{
    json_t *args = NULL, *error = NULL;
    int status = gateway_validate_control(control, body, body ? strlen(body) : 0, "exec-1",
                                          &args, &error);
    if (status != 0) {
        char *text = json_dumps(error, JSON_COMPACT);
        print_error("unexpected error for %s: %s\n", body ? body : "(empty)", text);
        free(text);
    }
    assert_int_equal(status, 0);
    assert_null(error);
    assert_json(args, want_args);
    json_decref(args);
}

static void expect_control_errors(gateway_control_t control, const char *body,
                                  const char *detail)
{
    json_t *args = NULL, *error = NULL;
    int status = gateway_validate_control(control, body, body ? strlen(body) : 0, "exec-1",
                                          &args, &error);
    assert_int_equal(status, 422);
    assert_null(args);
    char want[4096];
    snprintf(want, sizeof want, "{\"detail\":%s}", detail);
    assert_json(error, want);
    json_decref(error);
}

/* cancel and pause: {reason?}; the body may be left out. */
static void test_control_reason(void **state)
{
    (void)state;
    gateway_control_t kinds[] = {GATEWAY_CONTROL_CANCEL, GATEWAY_CONTROL_PAUSE};
    for (int i = 0; i < 2; i++) {
        gateway_control_t kind = kinds[i];
        const char *none = "{\"execution_id\":\"exec-1\",\"reason\":null}";
        expect_control_args(kind, NULL, none);
        expect_control_args(kind, "{}", none);
        expect_control_args(kind, "null", none);
        expect_control_args(kind, "{\"reason\":null}", none);
        expect_control_args(kind, "{\"reason\":\"too slow\"}",
                            "{\"execution_id\":\"exec-1\",\"reason\":\"too slow\"}");
        expect_control_errors(kind, "{\"reason\":5,\"force\":true}",
                              "[{\"loc\":[\"body\",\"reason\"],\"msg\":\"Input should be a valid "
                              "string\",\"type\":\"string_type\"},"
                              "{\"loc\":[\"body\",\"force\"],\"msg\":\"Extra inputs are not "
                              "permitted\",\"type\":\"extra_forbidden\"}]");
        expect_control_errors(kind, "[]",
                              "[{\"loc\":[\"body\"],\"msg\":\"Input should be a valid "
                              "dictionary\",\"type\":\"dict_type\"}]");
        expect_control_errors(kind, "{\"reason\":",
                              "[{\"loc\":[\"body\",10],\"msg\":\"JSON decode error\","
                              "\"type\":\"json_invalid\"}]");
    }
}

static void test_control_resume(void **state)
{
    (void)state;
    expect_control_args(GATEWAY_CONTROL_RESUME, NULL, "{\"execution_id\":\"exec-1\"}");
    expect_control_args(GATEWAY_CONTROL_RESUME, "{}", "{\"execution_id\":\"exec-1\"}");
    expect_control_errors(GATEWAY_CONTROL_RESUME, "{\"reason\":\"x\"}",
                          "[{\"loc\":[\"body\",\"reason\"],\"msg\":\"Extra inputs are not "
                          "permitted\",\"type\":\"extra_forbidden\"}]");
}

static void test_control_inject(void **state)
{
    (void)state;
    expect_control_args(GATEWAY_CONTROL_INJECT, "{\"message\":\"focus on tests\"}",
                        "{\"execution_id\":\"exec-1\",\"message\":\"focus on tests\","
                        "\"role\":\"user\"}");
    expect_control_args(GATEWAY_CONTROL_INJECT, "{\"message\":\"m\",\"role\":null}",
                        "{\"execution_id\":\"exec-1\",\"message\":\"m\",\"role\":\"user\"}");
    expect_control_args(GATEWAY_CONTROL_INJECT, "{\"role\":\"system\",\"message\":\"m\"}",
                        "{\"execution_id\":\"exec-1\",\"message\":\"m\",\"role\":\"system\"}");
    expect_control_errors(GATEWAY_CONTROL_INJECT, NULL,
                          "[{\"loc\":[\"body\"],\"msg\":\"Field required\",\"type\":\"missing\"}]");
    expect_control_errors(GATEWAY_CONTROL_INJECT, "{}",
                          "[{\"loc\":[\"body\",\"message\"],\"msg\":\"Field required\","
                          "\"type\":\"missing\"}]");
    expect_control_errors(GATEWAY_CONTROL_INJECT, "{\"message\":\"\"}",
                          "[{\"loc\":[\"body\",\"message\"],\"msg\":\"String should have at "
                          "least 1 character\",\"type\":\"string_too_short\"}]");
    expect_control_errors(GATEWAY_CONTROL_INJECT, "{\"message\":\"m\",\"role\":\"admin\"}",
                          "[{\"loc\":[\"body\",\"role\"],\"msg\":\"Input should be 'user' or "
                          "'system'\",\"type\":\"literal_error\"}]");
    expect_control_errors(GATEWAY_CONTROL_INJECT,
                          "{\"message\":5,\"role\":1,\"priority\":\"high\"}",
                          "[{\"loc\":[\"body\",\"message\"],\"msg\":\"Input should be a valid "
                          "string\",\"type\":\"string_type\"},"
                          "{\"loc\":[\"body\",\"role\"],\"msg\":\"Input should be 'user' or "
                          "'system'\",\"type\":\"literal_error\"},"
                          "{\"loc\":[\"body\",\"priority\"],\"msg\":\"Extra inputs are not "
                          "permitted\",\"type\":\"extra_forbidden\"}]");
}

static void test_query_choice_and_text(void **state)
{
    (void)state;
    static const char *const choices[] = {"pending", "running", "paused", "completed",
                                          "failed", "cancelled", NULL};
    json_t *errors = json_array();
    const char *out = "x";
    assert_int_equal(gateway_validate_query_choice("status", NULL, choices, &out, errors), 0);
    assert_null(out);
    assert_int_equal(gateway_validate_query_choice("status", "paused", choices, &out, errors),
                     0);
    assert_string_equal(out, "paused");
    assert_int_equal(gateway_validate_query_choice("status", "done", choices, &out, errors), -1);
    assert_int_equal(gateway_validate_query_choice("status", "", choices, &out, errors), -1);
    assert_int_equal(gateway_validate_query_text("workflow_id", NULL, errors), 0);
    assert_int_equal(gateway_validate_query_text("workflow_id", "caf\xc3\xa9", errors), 0);
    assert_int_equal(gateway_validate_query_text("workflow_id", "a\xff", errors), -1);
    assert_json(errors,
                "[{\"loc\":[\"query\",\"status\"],\"msg\":\"Input should be 'pending', "
                "'running', 'paused', 'completed', 'failed' or 'cancelled'\",\"type\":\"enum\"},"
                "{\"loc\":[\"query\",\"status\"],\"msg\":\"Input should be 'pending', "
                "'running', 'paused', 'completed', 'failed' or 'cancelled'\",\"type\":\"enum\"},"
                "{\"loc\":[\"query\",\"workflow_id\"],\"msg\":\"Input should be a valid string, "
                "unable to parse raw data as a unicode string\",\"type\":\"string_unicode\"}]");
    json_decref(errors);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_body_missing),
        cmocka_unit_test(test_body_malformed),
        cmocka_unit_test(test_body_not_object),
        cmocka_unit_test(test_execute_valid),
        cmocka_unit_test(test_execute_extra_key),
        cmocka_unit_test(test_execute_types),
        cmocka_unit_test(test_execute_collects_all_errors),
        cmocka_unit_test(test_workflow_minimal_valid),
        cmocka_unit_test(test_workflow_full_valid),
        cmocka_unit_test(test_workflow_template_rules),
        cmocka_unit_test(test_phase_update),
        cmocka_unit_test(test_query_bool),
        cmocka_unit_test(test_workflow_required_fields),
        cmocka_unit_test(test_workflow_phases_shape),
        cmocka_unit_test(test_workflow_phase_types_and_ranges),
        cmocka_unit_test(test_workflow_id_pattern),
        cmocka_unit_test(test_workflow_input_declarations),
        cmocka_unit_test(test_workflow_collects_errors_across_levels),
        cmocka_unit_test(test_workflow_duplicates),
        cmocka_unit_test(test_query_int),
        cmocka_unit_test(test_error_body),
        cmocka_unit_test(test_control_reason),
        cmocka_unit_test(test_control_resume),
        cmocka_unit_test(test_control_inject),
        cmocka_unit_test(test_query_choice_and_text),
    };
    return cmocka_run_group_tests_name("gateway_validate", tests, NULL, NULL);
}
