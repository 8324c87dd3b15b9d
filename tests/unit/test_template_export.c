/* template/export: stored workflow JSON → YAML → the same workflow again, for the
 * shipped examples, for every string YAML could misread, and for thousands of
 * random strings. */
#include "template/export.h"
#include "template/workflow.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define WORKFLOWS SYN_SOURCE_DIR "/workflows"

static void print_errors(const template_errors_t *errors)
{
    for (size_t i = 0; i < template_errors_count(errors); i++) {
        const template_error_t *e = template_errors_get(errors, i);
        print_error("  %d:%d %s: %s\n", e->line, e->column, e->field ? e->field : "-",
                    e->message);
    }
}

static void assert_same(const json_t *got, const json_t *want, const char *yaml)
{
    if (json_equal((json_t *)got, (json_t *)want))
        return;
    char *a = json_dumps(got, JSON_COMPACT), *b = json_dumps(want, JSON_COMPACT);
    print_error("got:  %s\nwant: %s\nyaml:\n%s\n", a, b, yaml ? yaml : "");
    free(a);
    free(b);
    fail();
}

static json_t *parse_text(const char *yaml)
{
    template_errors_t *errors = template_errors_new();
    json_t *w = template_workflow_parse(yaml, strlen(yaml), NULL, NULL, errors);
    if (!w) {
        print_error("export did not parse back:\n%s\n", yaml);
        print_errors(errors);
        fail();
    }
    template_errors_destroy(&errors);
    return w;
}

static char *export_ok(const json_t *workflow)
{
    char why[256] = "";
    size_t len = 0;
    char *yaml = template_export_yaml(workflow, &len, why, sizeof why);
    if (!yaml)
        fail_msg("export failed: %s", why);
    assert_int_equal(len, strlen(yaml));
    return yaml;
}

/* What the broker stores for a POST /workflows body (broker/api.c build_template):
 * every optional key present, null or defaulted, plus created_at. */
static json_t *stored_form(const json_t *body)
{
    json_t *s = json_deep_copy(body);
    const char *defaults[][2] = {{"workflow_type", "custom"}, {"classification", "standard"}};
    for (size_t i = 0; i < 2; i++)
        if (!json_object_get(s, defaults[i][0]))
            json_object_set_new(s, defaults[i][0], json_string(defaults[i][1]));
    if (!json_object_get(s, "description"))
        json_object_set_new(s, "description", json_null());
    if (!json_object_get(s, "input_declarations"))
        json_object_set_new(s, "input_declarations", json_array());
    size_t i;
    json_t *item;
    json_array_foreach(json_object_get(s, "input_declarations"), i, item) {
        const char *nullable[] = {"description", "default"};
        for (size_t k = 0; k < 2; k++)
            if (!json_object_get(item, nullable[k]))
                json_object_set_new(item, nullable[k], json_null());
        if (!json_object_get(item, "required"))
            json_object_set_new(item, "required", json_true());
    }
    json_array_foreach(json_object_get(s, "phases"), i, item) {
        const char *nullable[] = {"model", "description", "argument_hint"};
        for (size_t k = 0; k < 3; k++)
            if (!json_object_get(item, nullable[k]))
                json_object_set_new(item, nullable[k], json_null());
        if (!json_object_get(item, "timeout_seconds"))
            json_object_set_new(item, "timeout_seconds", json_integer(300));
        if (!json_object_get(item, "max_attempts"))
            json_object_set_new(item, "max_attempts", json_integer(3));
        if (!json_object_get(item, "allowed_tools"))
            json_object_set_new(item, "allowed_tools", json_array());
    }
    json_object_set_new(s, "created_at", json_string("2026-11-28T14:56:19.123456Z"));
    return s;
}

/* The stored form without what export leaves out: nulls, empty lists, server keys. */
static json_t *pruned(const json_t *stored)
{
    json_t *p = json_deep_copy(stored);
    json_object_del(p, "created_at");
    json_t *objects = json_array();
    json_array_append(objects, p);
    size_t i;
    json_t *item;
    json_array_foreach(json_object_get(p, "input_declarations"), i, item)
        json_array_append(objects, item);
    json_array_foreach(json_object_get(p, "phases"), i, item)
        json_array_append(objects, item);
    json_array_foreach(objects, i, item) {
        const char *key;
        json_t *value;
        void *tmp;
        json_object_foreach_safe(item, tmp, key, value) {
            if (json_is_null(value) || (json_is_array(value) && json_array_size(value) == 0))
                json_object_del(item, key);
        }
    }
    json_decref(objects);
    return p;
}

/* stored → YAML → parse → the stored form again (after the broker's defaults), and
 * exporting that gives the same text. */
static void check_round_trip(const json_t *stored)
{
    char *yaml = export_ok(stored);
    json_t *back = parse_text(yaml);
    json_t *want = pruned(stored);
    assert_same(back, want, yaml);
    json_t *restored = stored_form(back);
    assert_same(restored, stored, yaml);
    char *again = export_ok(restored);
    assert_string_equal(again, yaml);
    free(again);
    json_decref(restored);
    json_decref(want);
    json_decref(back);
    free(yaml);
}

static void test_examples_round_trip(void **state)
{
    (void)state;
    const char *files[] = {WORKFLOWS "/research.yaml", WORKFLOWS "/pr-review.yaml",
                           WORKFLOWS "/implement-and-review/workflow.yaml",
                           SYN_SOURCE_DIR "/tests/fixtures/templates/triage/workflow.yaml"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        template_errors_t *errors = template_errors_new();
        json_t *parsed = template_workflow_parse_file(files[i], errors);
        if (!parsed) {
            print_errors(errors);
            fail_msg("%s does not load", files[i]);
        }
        template_errors_destroy(&errors);
        /* as parsed (no defaults) and as the broker stores it */
        char *yaml = export_ok(parsed);
        json_t *back = parse_text(yaml);
        assert_same(back, parsed, yaml);
        json_decref(back);
        free(yaml);
        json_t *stored = stored_form(parsed);
        check_round_trip(stored);
        json_decref(stored);
        json_decref(parsed);
    }
}

/* A workflow's budget (issue 19): YAML → JSON → YAML keeps it, 0 is refused. */
static void test_budget_round_trip(void **state)
{
    (void)state;
    json_t *w = parse_text("name: Spender\nmax_budget_usd: 2.5\nphases:\n  - id: a\n"
                           "    name: A\n    order: 1\n    prompt_template: x\n");
    assert_true(json_number_value(json_object_get(w, "max_budget_usd")) == 2.5);
    json_t *stored = stored_form(w);
    check_round_trip(stored);
    char *yaml = export_ok(stored);
    assert_non_null(strstr(yaml, "max_budget_usd: 2.5"));
    free(yaml);
    json_decref(stored);
    json_decref(w);
    const char *zero = "name: Free\nmax_budget_usd: 0\nphases:\n  - id: a\n    name: A\n"
                       "    order: 1\n    prompt_template: x\n";
    template_errors_t *errors = template_errors_new();
    assert_null(template_workflow_parse(zero, strlen(zero), NULL, NULL, errors));
    template_errors_destroy(&errors);
}

static void test_export_text(void **state)
{
    (void)state;
    json_t *w = json_pack(
        "{s:s, s:s, s:n, s:s, s:s, s:[{s:s, s:n, s:b, s:s}], s:[{s:s, s:s, s:i, s:s, s:n, "
        "s:i, s:i, s:f, s:[ss], s:s}], s:s}",
        "id", "wf-1", "name", "Demo", "description", "workflow_type", "research",
        "classification", "standard", "input_declarations", "name", "task", "description",
        "required", 0, "default", "yes", "phases", "phase_id", "p1", "name", "Phase: one",
        "order", 1, "prompt_template", "Line 1\n  Line 2\n", "model", "timeout_seconds", 300,
        "max_attempts", 3, "retry_backoff_seconds", 2.0, "allowed_tools", "Read",
        "Bash(git log:*)", "argument_hint", "[x]", "created_at", "2026-01-01T00:00:00Z");
    assert_non_null(w);
    char *yaml = export_ok(w);
    assert_string_equal(yaml, "id: wf-1\n"
                              "name: Demo\n"
                              "type: research\n"
                              "classification: standard\n"
                              "inputs:\n"
                              "  - name: task\n"
                              "    required: false\n"
                              "    default: \"yes\"\n"
                              "phases:\n"
                              "  - id: p1\n"
                              "    name: \"Phase: one\"\n"
                              "    order: 1\n"
                              "    timeout_seconds: 300\n"
                              "    max_attempts: 3\n"
                              "    retry_backoff_seconds: 2.0\n"
                              "    argument_hint: \"[x]\"\n"
                              "    allowed_tools: [Read, Bash(git log:*)]\n"
                              "    prompt_template: |\n"
                              "      Line 1\n"
                              "        Line 2\n");
    free(yaml);
    json_decref(w);
}

static void test_export_refuses_non_workflows(void **state)
{
    (void)state;
    char why[128];
    json_t *cases[] = {
        json_string("x"),
        json_pack("{s:s}", "name", "no phases"),
        json_pack("{s:s, s:[]}", "name", "empty", "phases"),
        json_pack("{s:s, s:[s]}", "name", "bad", "phases", "x"),
        json_pack("{s:s, s:[{s:[n]}]}", "name", "bad", "phases", "name"),
        json_pack("{s:s, s:{}, s:[{s:s}]}", "name", "bad", "input_declarations", "phases",
                  "name", "x"),
    };
    const char *reasons[] = {"a workflow is a JSON object",
                             "the workflow has no phases",
                             "the workflow has no phases",
                             "phases[0] is not an object",
                             "name holds a null inside a list or object",
                             "input_declarations is not a list"};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        assert_non_null(cases[i]);
        assert_null(template_export_yaml(cases[i], NULL, why, sizeof why));
        assert_string_equal(why, reasons[i]);
        json_decref(cases[i]);
    }
}

/* A workflow whose every text field holds text. */
static json_t *workflow_with(const char *text, double backoff, long long order)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:[{s:s, s:s, s:b, s:s}], "
                     "s:[{s:s, s:s, s:I, s:s, s:s, s:s, s:f, s:[s, s], s:s, s:s}]}",
                     "id", "x", "name", text, "description", text, "workflow_type", "custom",
                     "classification", "simple", "input_declarations", "name", text,
                     "description", text, "required", 1, "default", text, "phases", "phase_id",
                     text, "name", text, "order", order, "prompt_template", text, "model", text,
                     "description", text, "retry_backoff_seconds", backoff, "allowed_tools",
                     text, "Read", "argument_hint", text, "provider", text);
}

static void check_text(const char *text, double backoff, long long order)
{
    json_t *w = workflow_with(text, backoff, order);
    if (!w)
        fail_msg("test text is not UTF-8");
    char *yaml = export_ok(w);
    json_t *back = parse_text(yaml);
    assert_same(back, w, yaml);
    json_decref(back);
    json_decref(w);
    free(yaml);
}

static void test_tricky_strings(void **state)
{
    (void)state;
    const char *texts[] = {
        "true", "True", "FALSE", "yes", "No", "on", "OFF", "y", "n", "null", "Null", "~",
        "0123", "12", "-7", "+3", "0x1F", "0o17", "1e3", "1.", ".5", "-.inf", ".NaN", "1_000",
        "12:30", "-", "- x", "-x", "?", "? x", ":", ": x", "a: b", "a:b", "a:", "#x", "a #b",
        "a#b", " lead", "trail ", "  ", "tab\there", "\ttab first", "multi\nline",
        "multi\nline\n", "\n", "\n\n", "\nx", "\n\nx\n", "x\n\n\n", "  indented\nblock",
        "\tTab first\n", "trailing spaces  \nnext  \n", "crlf\r\nline", "cr\ronly",
        "uni café ✓ 😀", "line\xe2\x80\xa8sep", "nel\xc2\x85here", "bom\xef\xbb\xbfin",
        "quote'\"", "'single'", "\"double\"", "back\\slash", "{{x}} $ARGUMENTS", "[a]", "{a}",
        "a, b", "!tag", "&anchor", "*alias", "|", ">", "|\nblock", "%", "@", "`", "...", "---",
        "--- x", "...\n---\n", "del\x7f", "ctl\x01x", "esc\x1b[0m", "a\n  - b\n  c: d\n",
        "<<", "=", "!!str x", "\xc2\xa0nbsp", "end\xc2\xa0",
    };
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++)
        check_text(texts[i], 0.25, (long long)i);
    double numbers[] = {0.0,     2.0,     0.1, 1e-300, 12345.125, 5e-324, 86400.0,
                        0.30000000000000004, 1e-7};
    for (size_t i = 0; i < sizeof numbers / sizeof numbers[0]; i++)
        check_text("n", numbers[i], 9007199254740993LL);
}

static uint64_t next_random(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* Thousands of random strings built from the pieces YAML is picky about. */
static void test_random_strings(void **state)
{
    (void)state;
    static const char *pieces[] = {
        " ", "  ", "\n", "\n\n", "\t", ":", ": ", "#", " #", "-", "- ", "'", "\"", "\\", "a",
        "Z", "0", "1", ".", "é", "😀", "\r", "\r\n", "---", "...", "|", ">", "{", "}", "[", "]",
        ",", "?", "!", "&", "*", "%", "@", "`", "~", "\x01", "\x7f", "\xe2\x80\xa8", "\xc2\x85",
        "\xef\xbb\xbf", "true", "null", "12", "0x", "e5", "{{x}}", "$ARGUMENTS", "\xc2\xa0",
    };
    size_t count = sizeof pieces / sizeof pieces[0];
    uint64_t seed = 0x5eed1234abcdULL;
    char text[256];
    for (int round = 0; round < 3000; round++) {
        size_t len = 0;
        size_t n = 1 + next_random(&seed) % 12;
        for (size_t i = 0; i < n; i++) {
            const char *piece = pieces[next_random(&seed) % count];
            size_t m = strlen(piece);
            if (len + m >= sizeof text)
                break;
            memcpy(text + len, piece, m);
            len += m;
        }
        text[len] = '\0';
        double backoff = (double)(next_random(&seed) % 100000) / 1000.0;
        check_text(text, backoff, (long long)(next_random(&seed) % 1000000));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_examples_round_trip),
        cmocka_unit_test(test_export_text),
        cmocka_unit_test(test_budget_round_trip),
        cmocka_unit_test(test_export_refuses_non_workflows),
        cmocka_unit_test(test_tricky_strings),
        cmocka_unit_test(test_random_strings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
