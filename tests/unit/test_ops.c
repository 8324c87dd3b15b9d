/* The request operations' table (proto/ops.h): every name found again from its text,
 * a misspelt one not found, and the argument check's verdicts and wording. */
#include "proto/ops.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

static void test_names_round_trip(void **state)
{
    (void)state;
    for (int i = 0; i < SYN_OP_COUNT; i++) {
        const char *name = syn_op_name((syn_op_t)i);
        assert_non_null(name);
        syn_op_t found = SYN_OP_COUNT;
        assert_int_equal(syn_op_find(name, &found), 0);
        assert_int_equal(found, i);
        assert_ptr_equal(syn_op_spec((syn_op_t)i)->name, name);
        for (int j = 0; j < i; j++)
            assert_string_not_equal(syn_op_name((syn_op_t)j), name);
    }
    assert_string_equal(syn_op_name(SYN_OP_EXECUTION_START), "execution.start");
    assert_string_equal(syn_op_name(SYN_OP_EVENTS_REPLAY), "events.replay");
    syn_op_t op;
    assert_int_equal(syn_op_find("execution.strat", &op), -1);
    assert_int_equal(syn_op_find("execution.start ", &op), -1);
    assert_int_equal(syn_op_find("", &op), -1);
    assert_int_equal(syn_op_find(NULL, &op), -1);
}

/* The verdict on args (JSON text) and, when refused, the reason. */
static void expect_verdict(syn_op_t op, const char *args_text, const char *want_why)
{
    json_t *args = json_loads(args_text, JSON_DECODE_ANY, NULL);
    assert_non_null(args);
    char why[256] = "";
    int rc = syn_op_check_args(op, args, why, sizeof why);
    json_decref(args);
    if (!want_why) {
        if (rc != 0)
            print_error("%s %s refused: %s\n", syn_op_name(op), args_text, why);
        assert_int_equal(rc, 0);
        return;
    }
    assert_int_equal(rc, -1);
    assert_string_equal(why, want_why);
}

static void test_check_args(void **state)
{
    (void)state;
    expect_verdict(SYN_OP_HEALTH, "{}", NULL);
    expect_verdict(SYN_OP_HEALTH, "[]", "args must be an object");
    expect_verdict(SYN_OP_EXECUTION_GET, "{\"execution_id\":\"e\"}", NULL);
    expect_verdict(SYN_OP_EXECUTION_GET, "{}", "execution_id is required");
    expect_verdict(SYN_OP_EXECUTION_GET, "{\"execution_id\":null}", "execution_id is required");
    expect_verdict(SYN_OP_EXECUTION_GET, "{\"execution_id\":7}", "execution_id must be a string");
    /* Fields it does not list are the handler's or ignored. */
    expect_verdict(SYN_OP_EXECUTION_GET, "{\"execution_id\":\"e\",\"other\":1}", NULL);
    /* Checked in the table's order: the first fault is named. */
    expect_verdict(SYN_OP_EXECUTION_OUTPUT, "{\"execution_id\":7}", "phase_id is required");
    expect_verdict(SYN_OP_EXECUTION_ACTIVE, "{\"limit\":100}", NULL);
    expect_verdict(SYN_OP_EXECUTION_ACTIVE, "{\"limit\":null}", NULL);
    expect_verdict(SYN_OP_EXECUTION_ACTIVE, "{\"limit\":101}",
                 "limit must be an integer from 1 to 100");
    expect_verdict(SYN_OP_EXECUTION_ACTIVE, "{\"limit\":0}",
                 "limit must be an integer from 1 to 100");
    expect_verdict(SYN_OP_EXECUTION_ACTIVE, "{\"limit\":1.5}",
                 "limit must be an integer from 1 to 100");
    expect_verdict(SYN_OP_EVENTS_REPLAY, "{\"after_seq\":-1}",
                 "after_seq must be an integer from 0 to 9223372036854775807");
    expect_verdict(SYN_OP_WORKFLOW_LIST, "{\"include_archived\":1}",
                 "include_archived must be a boolean");
    expect_verdict(SYN_OP_WORKFLOW_INSTALL, "{\"source_hash\":\"h\",\"workflow\":[]}",
                 "workflow must be an object");
    expect_verdict(SYN_OP_EXECUTION_START, "{\"workflow_id\":\"w\",\"repos\":[\"a\",1]}",
                 "repos[1] must be a string");
    expect_verdict(SYN_OP_EXECUTION_START, "{\"workflow_id\":\"w\",\"repos\":\"a\"}",
                 "repos must be an array of strings");
    expect_verdict(SYN_OP_EXECUTION_START, "{\"workflow_id\":\"w\",\"inputs\":{\"k\":1}}",
                 "inputs.k must be a string");
    expect_verdict(SYN_OP_EXECUTION_START, "{\"workflow_id\":\"w\",\"inputs\":[]}",
                 "inputs must be an object of strings");
    expect_verdict(SYN_OP_EXECUTION_START,
                 "{\"workflow_id\":\"w\",\"inputs\":{\"k\":\"v\"},\"repos\":[],\"task\":null}",
                 NULL);
}

/* Each op's schema is well-formed: named fields, ranges the right way round. */
static void test_specs(void **state)
{
    (void)state;
    for (int i = 0; i < SYN_OP_COUNT; i++) {
        const syn_op_spec_t *spec = syn_op_spec((syn_op_t)i);
        assert_true(spec->arg_count <= SYN_OP_ARGS_MAX);
        for (size_t k = 0; k < spec->arg_count; k++) {
            assert_non_null(spec->args[k].name);
            if (spec->args[k].type == SYN_ARG_INTEGER)
                assert_true(spec->args[k].min <= spec->args[k].max);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names_round_trip),
        cmocka_unit_test(test_check_args),
        cmocka_unit_test(test_specs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
