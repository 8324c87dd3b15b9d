/* The broker refuses exactly what proto/ops.h's argument schemas refuse, in their
 * words: for every op and every field it lists, a missing required field and a value
 * of the wrong type (or out of range) get 400 "bad request: <the table's reason>",
 * with the fields before it valid and the optional ones left out; the table is checked
 * before the op's own rules. An unknown op is named in the reply. In-process broker (tests/support/broker_fixture). */
#include "proto/ops.h"
#include "tests/support/broker_fixture.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

/* A value the field takes. */
static json_t *valid_value(const syn_op_arg_t *arg)
{
    switch (arg->type) {
    case SYN_ARG_STRING: return json_string("x");
    case SYN_ARG_INTEGER: return json_integer(arg->min);
    case SYN_ARG_BOOLEAN: return json_true();
    case SYN_ARG_OBJECT: return json_object();
    case SYN_ARG_STRINGS: return json_array();
    case SYN_ARG_STRING_MAP: return json_object();
    case SYN_ARG_NUMBER: return json_real((double)arg->max);
    }
    return json_null();
}

/* A value the field refuses. */
static json_t *wrong_value(const syn_op_arg_t *arg)
{
    switch (arg->type) {
    case SYN_ARG_STRING: return json_integer(5);
    case SYN_ARG_INTEGER:
        return arg->max < INT64_MAX ? json_integer(arg->max + 1) : json_integer(arg->min - 1);
    case SYN_ARG_BOOLEAN: return json_string("yes");
    case SYN_ARG_OBJECT: return json_integer(5);
    case SYN_ARG_STRINGS: return json_pack("[s, i]", "a", 5);
    case SYN_ARG_STRING_MAP: return json_pack("{s:i}", "k", 5);
    case SYN_ARG_NUMBER: return json_real((double)arg->min); /* min is excluded */
    }
    return json_null();
}

/* args with the required fields before index valid, then value (stolen) at index;
 * NULL value leaves that field out. */
static json_t *args_up_to(const syn_op_spec_t *spec, size_t index, json_t *value)
{
    json_t *args = json_object();
    for (size_t k = 0; k < index; k++)
        if (spec->args[k].required)
            json_object_set_new(args, spec->args[k].name, valid_value(&spec->args[k]));
    if (value)
        json_object_set_new(args, spec->args[index].name, value);
    return args;
}

/* The broker's answer to op with args (taken) is 400 with the table's own reason. */
static void expect_refused_as_the_table_says(fx_t *f, syn_op_t op, json_t *args)
{
    char why[256] = "";
    assert_int_equal(syn_op_check_args(op, args, why, sizeof why), -1);
    char detail[300];
    snprintf(detail, sizeof detail, "bad request: %s", why);
    fx_expect(f, syn_op_name(op), args, 400, detail);
}

static void test_broker_refuses_what_the_table_refuses(void **state)
{
    fx_t *f = *state;
    size_t checked = 0;
    for (int i = 0; i < SYN_OP_COUNT; i++) {
        const syn_op_spec_t *spec = syn_op_spec((syn_op_t)i);
        for (size_t k = 0; k < spec->arg_count; k++) {
            const syn_op_arg_t *arg = &spec->args[k];
            expect_refused_as_the_table_says(f, (syn_op_t)i,
                                             args_up_to(spec, k, wrong_value(arg)));
            checked++;
            if (arg->required && arg->type == SYN_ARG_STRING) {
                expect_refused_as_the_table_says(f, (syn_op_t)i, args_up_to(spec, k, NULL));
                checked++;
            }
        }
    }
    assert_true(checked > 40);
}

/* The table is checked before the op's own rules: a request breaking both is refused
 * for the table's fault. */
static void test_table_before_handler(void **state)
{
    fx_t *f = *state;
    fx_expect(f, syn_op_name(SYN_OP_EXECUTION_INJECT),
              json_pack("{s:s, s:s, s:i}", "execution_id", "x", "message", "", "role", 5), 400,
              "bad request: role must be a string");
    fx_expect(f, syn_op_name(SYN_OP_EXECUTION_INJECT),
              json_pack("{s:s, s:s}", "execution_id", "x", "message", ""), 400,
              "bad request: message must not be empty");
}

static void test_unknown_op(void **state)
{
    fx_t *f = *state;
    fx_expect(f, "execution.strat", json_object(), 400, "unknown operation execution.strat");
    fx_expect(f, syn_op_name(SYN_OP_HEALTH), json_array(), 400,
              "bad request: args must be an object");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        fx_unit_test(test_broker_refuses_what_the_table_refuses),
        fx_unit_test(test_table_before_handler),
        fx_unit_test(test_unknown_op),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
