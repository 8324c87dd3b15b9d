/* Prompt rendering: each rule, the order between them (which rule wins a name),
 * literal insertion of substituted text, verbatim unknown placeholders, the size
 * bound. */
#include "broker/render.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static char err[256];

static char *render_with(const char *tpl, const broker_render_var_t *inputs, size_t ninputs,
                         const broker_render_var_t *outputs, size_t noutputs, const char *task)
{
    broker_render_ctx_t ctx = {
        .execution_id = "exec-0123456789ab",
        .workflow_id = "wf-demo",
        .inputs = inputs,
        .input_count = ninputs,
        .outputs = outputs,
        .output_count = noutputs,
        .task = task,
    };
    err[0] = '\0';
    return broker_render(tpl, &ctx, NULL, err, sizeof err);
}

#define EXPECT(tpl, in, nin, out, nout, task, expected)                                        \
    do {                                                                                       \
        char *got_ = render_with(tpl, in, nin, out, nout, task);                               \
        assert_non_null(got_);                                                                 \
        assert_string_equal(got_, expected);                                                   \
        free(got_);                                                                            \
    } while (0)

static void test_builtins(void **state)
{
    (void)state;
    EXPECT("run {{execution_id}} of {{workflow_id}}", NULL, 0, NULL, 0, NULL,
           "run exec-0123456789ab of wf-demo");
    EXPECT("{{execution_id}}{{execution_id}}", NULL, 0, NULL, 0, NULL,
           "exec-0123456789abexec-0123456789ab");
}

static void test_inputs(void **state)
{
    (void)state;
    broker_render_var_t in[] = {{"topic", "cats"}, {"tone", "dry"}, {"empty", ""}};
    EXPECT("about {{topic}}, {{tone}} tone, [{{empty}}]", in, 3, NULL, 0, NULL,
           "about cats, dry tone, []");
}

static void test_outputs(void **state)
{
    (void)state;
    broker_render_var_t out[] = {{"plan", "step 1"}, {"draft", "text"}};
    EXPECT("Plan: {{plan}}\nDraft: {{draft}}", NULL, 0, out, 2, NULL,
           "Plan: step 1\nDraft: text");
}

static void test_arguments(void **state)
{
    (void)state;
    EXPECT("do: $ARGUMENTS!", NULL, 0, NULL, 0, "fix the bug", "do: fix the bug!");
    EXPECT("do: $ARGUMENTS!", NULL, 0, NULL, 0, NULL, "do: !");
    EXPECT("$ARGUMENTS$ARGUMENTS", NULL, 0, NULL, 0, "x", "xx");
    EXPECT("$ARGUMENT and $arguments stay", NULL, 0, NULL, 0, "x",
           "$ARGUMENT and $arguments stay");
    EXPECT("$ARGUMENTSX", NULL, 0, NULL, 0, "t", "tX");
}

static void test_unknown_stays_verbatim(void **state)
{
    (void)state;
    broker_render_var_t in[] = {{"known", "K"}};
    EXPECT("{{unknown}} {{known}} {{ known }} {{KNOWN}} {{known} {known}} {{}}", in, 1, NULL,
           0, NULL, "{{unknown}} K K {{KNOWN}} {{known} {known}} {{}}"); /* Jinja's spaces */
    EXPECT("{{", in, 1, NULL, 0, NULL, "{{");
    EXPECT("}}{{known", in, 1, NULL, 0, NULL, "}}{{known");
    EXPECT("", in, 1, NULL, 0, NULL, "");
}

/* Braces around a placeholder behave as plain text replacement would. */
static void test_extra_braces(void **state)
{
    (void)state;
    broker_render_var_t in[] = {{"x", "V"}};
    EXPECT("{{{x}}}", in, 1, NULL, 0, NULL, "{V}");
    EXPECT("{{{{x}}", in, 1, NULL, 0, NULL, "{{V");
    EXPECT("{{x}}}}", in, 1, NULL, 0, NULL, "V}}");
}

/* The order of the rules decides collisions: builtin over input over output. */
static void test_order_decides_collisions(void **state)
{
    (void)state;
    broker_render_var_t in[] = {{"execution_id", "spoofed"}, {"plan", "from input"}};
    broker_render_var_t out[] = {{"plan", "from phase"}, {"workflow_id", "spoofed too"}};
    EXPECT("{{execution_id}} {{workflow_id}} {{plan}}", in, 2, out, 2, NULL,
           "exec-0123456789ab wf-demo from input");
    /* Order of the arrays does not matter, only the rule. */
    broker_render_var_t in2[] = {{"b", "B"}, {"a", "A"}, {"plan", "input plan"}};
    EXPECT("{{a}}{{b}}{{plan}}", in2, 3, out, 2, NULL, "ABinput plan");
}

/* Duplicate names inside one rule: the first one given wins. */
static void test_duplicate_names_in_one_rule(void **state)
{
    (void)state;
    broker_render_var_t in[] = {{"k", "first"}, {"j", "J"}, {"k", "second"}, {"k", "third"}};
    EXPECT("{{k}}{{j}}", in, 4, NULL, 0, NULL, "firstJ");
}

/* Substituted text is inserted literally: placeholders or $ARGUMENTS inside an
 * input value, an output or the task are not expanded (no template injection). */
static void test_substituted_text_not_rescanned(void **state)
{
    (void)state;
    broker_render_var_t in[] = {{"a", "{{b}} and $ARGUMENTS and {{execution_id}}"},
                                {"b", "B"}};
    broker_render_var_t out[] = {{"plan", "see {{a}} and $ARGUMENTS"}};
    EXPECT("[{{a}}] [{{plan}}] [$ARGUMENTS]", in, 2, out, 1, "task {{b}}",
           "[{{b}} and $ARGUMENTS and {{execution_id}}] [see {{a}} and $ARGUMENTS] "
           "[task {{b}}]");
    /* A value that completes a placeholder with the text after it stays literal. */
    broker_render_var_t in2[] = {{"open", "{{"}, {"b", "B"}};
    EXPECT("{{open}}b}}", in2, 2, NULL, 0, NULL, "{{b}}");
}

static void test_size_bound(void **state)
{
    (void)state;
    broker_render_var_t in[] = {{"big", "0123456789"}};
    broker_render_ctx_t ctx = {
        .execution_id = "e", .workflow_id = "w", .inputs = in, .input_count = 1,
        .max_size = 25,
    };
    size_t len = 0;
    char *got = broker_render("{{big}}{{big}}", &ctx, &len, err, sizeof err);
    assert_non_null(got);
    assert_int_equal(len, 20);
    free(got);
    got = broker_render("{{big}}{{big}}{{big}}", &ctx, &len, err, sizeof err);
    assert_null(got);
    assert_non_null(strstr(err, "exceeds 25 bytes"));
    /* Literal text counts as well. */
    got = broker_render("this template alone is longer than 25", &ctx, &len, err, sizeof err);
    assert_null(got);
}

/* The default bound is 8 MiB: one 1 MiB output used 9 times fails cleanly. */
static void test_default_bound(void **state)
{
    (void)state;
    size_t mib = 1024 * 1024;
    char *value = malloc(mib + 1);
    assert_non_null(value);
    memset(value, 'o', mib);
    value[mib] = '\0';
    broker_render_var_t out[] = {{"p", value}};
    char *got = render_with("{{p}}{{p}}{{p}}{{p}}{{p}}{{p}}{{p}}", NULL, 0, out, 1, NULL);
    assert_non_null(got);
    assert_int_equal(strlen(got), 7 * mib);
    free(got);
    got = render_with("{{p}}{{p}}{{p}}{{p}}{{p}}{{p}}{{p}}{{p}}{{p}}", NULL, 0, out, 1, NULL);
    assert_null(got);
    assert_non_null(strstr(err, "8388608"));
    free(value);
}

/* Pathological templates stay linear: a long run of "{{" with no closing. */
static void test_many_open_braces(void **state)
{
    (void)state;
    size_t n = 2 * 1024 * 1024;
    char *tpl = malloc(n + 8);
    assert_non_null(tpl);
    memset(tpl, '{', n);
    strcpy(tpl + n, "x}}");
    broker_render_var_t in[] = {{"x", "X"}};
    char *got = render_with(tpl, in, 1, NULL, 0, NULL);
    assert_non_null(got);
    assert_int_equal(strlen(got), n - 2 + 1);
    assert_int_equal(got[n - 2], 'X');
    free(got);
    free(tpl);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_builtins),
        cmocka_unit_test(test_inputs),
        cmocka_unit_test(test_outputs),
        cmocka_unit_test(test_arguments),
        cmocka_unit_test(test_unknown_stays_verbatim),
        cmocka_unit_test(test_extra_braces),
        cmocka_unit_test(test_order_decides_collisions),
        cmocka_unit_test(test_duplicate_names_in_one_rule),
        cmocka_unit_test(test_substituted_text_not_rescanned),
        cmocka_unit_test(test_size_bound),
        cmocka_unit_test(test_default_bound),
        cmocka_unit_test(test_many_open_braces),
    };
    return cmocka_run_group_tests_name("render", tests, NULL, NULL);
}
