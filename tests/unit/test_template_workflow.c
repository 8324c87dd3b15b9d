/* template/workflow: YAML → the POST /workflows JSON. Every validation error with
 * its exact message, line and field; front matter merge and precedence; prompt
 * paths that try to leave the workflow's directory; size and encoding limits. */
#include "template/workflow.h"

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#define FIXTURES SYN_SOURCE_DIR "/tests/fixtures/templates"

static void assert_json(const json_t *got, const char *want_text)
{
    json_error_t jerr;
    json_t *want = json_loads(want_text, 0, &jerr);
    if (!want)
        fail_msg("bad expected JSON in test: %s (%s)", want_text, jerr.text);
    if (!json_equal((json_t *)got, want)) {
        char *got_text = json_dumps(got, JSON_COMPACT | JSON_ENCODE_ANY);
        print_error("got:  %s\nwant: %s\n", got_text ? got_text : "(null)", want_text);
        free(got_text);
        json_decref(want);
        fail();
    }
    json_decref(want);
}

static void print_errors(const template_errors_t *errors)
{
    for (size_t i = 0; i < template_errors_count(errors); i++) {
        const template_error_t *e = template_errors_get(errors, i);
        print_error("  %s:%d:%d %s: %s\n", e->file ? e->file : "-", e->line, e->column,
                    e->field ? e->field : "-", e->message);
    }
}

static json_t *parse_ok_in(const char *yaml, const char *dir)
{
    template_errors_t *errors = template_errors_new();
    json_t *workflow = template_workflow_parse(yaml, strlen(yaml), "test.yaml", dir, errors);
    if (!workflow || template_errors_count(errors) != 0) {
        print_errors(errors);
        fail_msg("expected the document to parse");
    }
    template_errors_destroy(&errors);
    return workflow;
}

static json_t *parse_ok(const char *yaml)
{
    return parse_ok_in(yaml, NULL);
}

/* Parses text that must fail; the caller destroys the errors. */
static template_errors_t *parse_fail_in(const char *text, size_t len, const char *dir)
{
    template_errors_t *errors = template_errors_new();
    json_t *workflow = template_workflow_parse(text, len, "test.yaml", dir, errors);
    if (workflow) {
        char *dump = json_dumps(workflow, JSON_COMPACT);
        print_error("unexpected success: %s\n", dump);
        free(dump);
        json_decref(workflow);
        fail();
    }
    assert_true(template_errors_count(errors) > 0);
    return errors;
}

static template_errors_t *parse_fail(const char *yaml)
{
    return parse_fail_in(yaml, strlen(yaml), NULL);
}

/* The errors hold one with exactly this line, field and message. */
static void assert_has(const template_errors_t *errors, int line, const char *field,
                       const char *message)
{
    for (size_t i = 0; i < template_errors_count(errors); i++) {
        const template_error_t *e = template_errors_get(errors, i);
        bool same_field = (!field && !e->field) || (field && e->field && !strcmp(field, e->field));
        if (e->line == line && same_field && strcmp(e->message, message) == 0)
            return;
    }
    print_error("wanted line %d field %s: %s\namong:\n", line, field ? field : "-", message);
    print_errors(errors);
    fail();
}

/* The document fails with exactly one error: this one. */
static void expect_error(const char *yaml, int line, const char *field, const char *message)
{
    template_errors_t *errors = parse_fail(yaml);
    if (template_errors_count(errors) != 1) {
        print_errors(errors);
        fail_msg("wanted exactly one error");
    }
    assert_has(errors, line, field, message);
    template_errors_destroy(&errors);
}

#define PHASE "phases:\n  - {id: a, name: A, order: 1, prompt_template: hi}\n"

static void test_minimal(void **state)
{
    (void)state;
    json_t *w = parse_ok("name: Minimal\n" PHASE);
    assert_json(w, "{\"name\":\"Minimal\",\"phases\":[{\"phase_id\":\"a\",\"name\":\"A\","
                   "\"order\":1,\"prompt_template\":\"hi\"}]}");
    json_decref(w);
}

static void test_every_field(void **state)
{
    (void)state;
    json_t *w = parse_ok("id: full.v2\n"
                         "name: Full\n"
                         "description: All of it\n"
                         "type: deployment\n"
                         "classification: epic\n"
                         "inputs:\n"
                         "  - name: task\n"
                         "    description: What\n"
                         "    required: true\n"
                         "  - {name: env, required: false, default: staging}\n"
                         "  - {name: n, default: 5}\n"
                         "phases:\n"
                         "  - id: deploy\n"
                         "    name: Deploy\n"
                         "    order: 0\n"
                         "    description: Ship it\n"
                         "    model: sonnet\n"
                         "    provider: command\n"
                         "    prompt_template: |\n"
                         "      Deploy {{env}}\n"
                         "      now\n"
                         "    timeout_seconds: 86400\n"
                         "    max_attempts: 10\n"
                         "    retries: 0\n"
                         "    retry_backoff_seconds: 1.5\n"
                         "    max_tokens: 0x10\n"
                         "    argument_hint: \"[what]\"\n"
                         "    allowed_tools: [Read, \"Bash(git:*)\"]\n");
    assert_json(w, "{\"id\":\"full.v2\",\"name\":\"Full\",\"description\":\"All of it\","
                   "\"workflow_type\":\"deployment\",\"classification\":\"epic\","
                   "\"input_declarations\":[{\"name\":\"task\",\"description\":\"What\","
                   "\"required\":true},{\"name\":\"env\",\"required\":false,\"default\":"
                   "\"staging\"},{\"name\":\"n\",\"default\":\"5\"}],"
                   "\"phases\":[{\"phase_id\":\"deploy\",\"name\":\"Deploy\",\"order\":0,"
                   "\"description\":\"Ship it\",\"model\":\"sonnet\",\"provider\":\"command\","
                   "\"prompt_template\":\"Deploy {{env}}\\nnow\\n\",\"timeout_seconds\":86400,"
                   "\"max_attempts\":10,\"retries\":0,\"retry_backoff_seconds\":1.5,"
                   "\"max_tokens\":16,\"argument_hint\":\"[what]\","
                   "\"allowed_tools\":[\"Read\",\"Bash(git:*)\"]}]}");
    json_decref(w);
}

static void test_null_is_absent(void **state)
{
    (void)state;
    json_t *w = parse_ok("name: N\ndescription: ~\ntype:\ninputs: null\n"
                         "phases:\n  - {id: a, name: A, order: 1, prompt_template: hi, "
                         "model: null, allowed_tools: ~}\n");
    assert_json(w, "{\"name\":\"N\",\"phases\":[{\"phase_id\":\"a\",\"name\":\"A\","
                   "\"order\":1,\"prompt_template\":\"hi\"}]}");
    json_decref(w);
}

/* Numbers where text is expected are taken as written; quoted text stays text. */
static void test_scalar_typing(void **state)
{
    (void)state;
    json_t *w = parse_ok("name: 2024\nid: '007'\n"
                         "phases:\n  - {id: 1, name: 1.50, order: !!int '3', "
                         "prompt_template: !!str 12}\n");
    assert_json(w, "{\"name\":\"2024\",\"id\":\"007\",\"phases\":[{\"phase_id\":\"1\","
                   "\"name\":\"1.50\",\"order\":3,\"prompt_template\":\"12\"}]}");
    json_decref(w);
}

static void test_unknown_keys(void **state)
{
    (void)state;
    expect_error("name: x\n" PHASE "descripton: typo\n", 4, "descripton",
                 "unknown key 'descripton' (known: id, name, description, type, classification, "
                 "repository, requires_repos, project_name, inputs, phases, version, deliverables, "
                 "max_concurrent, max_budget_usd); did you mean 'description'?");
    expect_error("name: x\nworkflow_type: research\n" PHASE, 2, "workflow_type",
                 "unknown key 'workflow_type' (known: id, name, description, type, "
                 "classification, repository, requires_repos, project_name, inputs, phases, "
                 "version, deliverables, max_concurrent, max_budget_usd); did you mean 'type'?");
    expect_error("name: x\nphases:\n  - id: a\n    name: A\n    order: 1\n    prompt_template: x\n"
                 "  - id: b\n    name: B\n    order: 2\n    promt_template: hi\n",
                 10, "phases[1].promt_template",
                 "unknown key 'promt_template' in phases[1] (known: id, name, order, "
                 "prompt_template, prompt_file, model, timeout_seconds, max_attempts, retries, "
                 "retry_backoff_seconds, max_tokens, provider, description, argument_hint, "
                 "allowed_tools, network, execution_type, approval, input_artifacts, "
                 "output_artifacts, agent, inputs, outputs); did you mean 'prompt_template'?");
    expect_error("name: x\nphases:\n  - id: a\n    name: A\n    order: 1\n    prompt_template: x\n"
                 "    modle: opus\n",
                 7, "phases[0].modle",
                 "unknown key 'modle' in phases[0] (known: id, name, order, prompt_template, "
                 "prompt_file, model, timeout_seconds, max_attempts, retries, "
                 "retry_backoff_seconds, max_tokens, provider, description, argument_hint, "
                 "allowed_tools, network, execution_type, approval, input_artifacts, "
                 "output_artifacts, agent, inputs, outputs); did you mean 'model'?");
    expect_error("name: x\ninputs:\n  - {name: a, value: 3}\n" PHASE, 3, "inputs[0].value",
                 "unknown key 'value' in inputs[0] (known: name, description, required, "
                 "default)");
    expect_error("name: x\nphases:\n  - {phase_id: a, id: a, name: A, order: 1, "
                 "prompt_template: x}\n",
                 3, "phases[0].phase_id",
                 "unknown key 'phase_id' in phases[0] (known: id, name, order, prompt_template, "
                 "prompt_file, model, timeout_seconds, max_attempts, retries, "
                 "retry_backoff_seconds, max_tokens, provider, description, argument_hint, "
                 "allowed_tools, network, execution_type, approval, input_artifacts, "
                 "output_artifacts, agent, inputs, outputs); did you mean 'id'?");
}

static void test_choices(void **state)
{
    (void)state;
    expect_error("name: x\ntype: reserch\n" PHASE, 2, "type",
                 "'reserch' is not one of: research, planning, implementation, review, "
                 "deployment, custom; did you mean 'research'?");
    expect_error("name: x\ntype: banana\n" PHASE, 2, "type",
                 "'banana' is not one of: research, planning, implementation, review, "
                 "deployment, custom");
    expect_error("name: x\nclassification: huge\n" PHASE, 2, "classification",
                 "'huge' is not one of: simple, standard, complex, epic");
    json_t *w = parse_ok("name: x\ntype: custom\nclassification: simple\n" PHASE);
    json_decref(w);
}

static void test_bad_ids(void **state)
{
    (void)state;
    expect_error("id: bad id\nname: x\n" PHASE, 1, "id",
                 "'bad id' is not a valid id: it must match ^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$");
    expect_error("id: -dash\nname: x\n" PHASE, 1, "id",
                 "'-dash' is not a valid id: it must match ^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$");
    char yaml[512];
    snprintf(yaml, sizeof yaml, "id: %0101d\nname: x\n" PHASE, 0);
    template_errors_t *errors = parse_fail(yaml);
    assert_int_equal(template_errors_get(errors, 0)->line, 1);
    assert_string_equal(template_errors_get(errors, 0)->field, "id");
    template_errors_destroy(&errors);
    expect_error("id: [a]\nname: x\n" PHASE, 1, "id", "expected a string, got a list");
    expect_error("name: x\nphases:\n  - {id: '', name: A, order: 1, prompt_template: x}\n", 3,
                 "phases[0].id", "must not be empty");
}

static void test_missing(void **state)
{
    (void)state;
    expect_error(PHASE, 1, "name", "missing required key 'name'");
    expect_error("name:\n" PHASE, 1, "name", "missing required key 'name'");
    /* an empty name is a name, as in POST /workflows (docs/api.md) */
    json_decref(parse_ok("name: ''\n" PHASE));
    expect_error("name: x\n", 1, "phases", "missing required key 'phases'");
    expect_error("name: x\nphases: []\n", 2, "phases",
                 "expected a list of at least one phase, got an empty list");
    expect_error("name: x\nphases: {a: 1}\n", 2, "phases",
                 "expected a list of at least one phase, got a mapping");
    expect_error("name: x\nphases:\n  - {name: '', order: 1, prompt_template: x}\n", 3,
                 "phases[0].id", "missing required key 'id'");
    expect_error("name: x\nphases:\n  - {id: a, order: 1, prompt_template: x}\n", 3,
                 "phases[0].name", "missing required key 'name'");
    /* the original's oldest format: the name is the id, the place the order */
    json_t *oldest = parse_ok("name: x\nphases:\n  - {name: A, prompt_template: x}\n"
                              "  - {id: b, name: B, prompt_template: y}\n");
    json_t *second = json_array_get(json_object_get(oldest, "phases"), 1);
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(json_object_get(oldest, "phases"), 0), "phase_id")),
                        "A");
    assert_int_equal(json_integer_value(json_object_get(second, "order")), 2);
    json_decref(oldest);
    expect_error("name: x\nphases:\n  - id: a\n    name: A\n    order: 1\n", 3,
                 "phases[0].prompt_template",
                 "missing prompt: give prompt_template (the text) or prompt_file (a Markdown "
                 "file next to the workflow)");
    /* an empty prompt is given, not missing, as in POST /workflows (docs/api.md) */
    json_decref(parse_ok("name: x\nphases:\n  - {id: a, name: A, order: 1, prompt_template: ''}\n"));
    expect_error("name: x\ninputs:\n  - {description: d}\n" PHASE, 3, "inputs[0].name",
                 "missing required key 'name'");
}

static void test_duplicates(void **state)
{
    (void)state;
    expect_error("name: x\nphases:\n"
                 "  - {id: a, name: A, order: 1, prompt_template: x}\n"
                 "  - {id: b, name: B, order: 2, prompt_template: x}\n"
                 "  - {id: a, name: C, order: 3, prompt_template: x}\n",
                 5, "phases[2].id", "duplicate phase id 'a' (also phases[0] at line 3)");
    expect_error("name: x\nphases:\n"
                 "  - id: a\n    name: A\n    order: 7\n    prompt_template: x\n"
                 "  - id: b\n    name: B\n    order: 7\n    prompt_template: x\n",
                 9, "phases[1].order", "duplicate order 7 (also phases[0] at line 5)");
    expect_error("name: x\ninputs:\n  - {name: a}\n  - {name: a}\n" PHASE, 4, "inputs[1].name",
                 "duplicate input name 'a' (also inputs[0] at line 3)");
    expect_error("name: x\nname: y\n" PHASE, 2, NULL,
                 "duplicate key 'name' (first at line 1)");
}

static void test_wrong_types(void **state)
{
    (void)state;
    expect_error("name: [x]\n" PHASE, 1, "name", "expected a string, got a list");
    expect_error("name: true\n" PHASE, 1, "name",
                 "expected a string, got a boolean (put it in quotes to mean the text)");
    expect_error("name: x\ninputs: {task: x}\n" PHASE, 2, "inputs",
                 "expected a list of inputs, got a mapping");
    expect_error("name: x\ninputs: [task]\n" PHASE, 2, "inputs[0]",
                 "expected a mapping (an input: {name, description, required, default}), got a "
                 "string");
    expect_error("name: x\ninputs:\n  - {name: a, required: yes}\n" PHASE, 3,
                 "inputs[0].required", "expected true or false, got a string");
    expect_error("name: x\ninputs:\n  - {name: a, default: [1]}\n" PHASE, 3, "inputs[0].default",
                 "expected a string, got a list");
    expect_error("name: x\nphases:\n  - just text\n", 3, "phases[0]",
                 "expected a mapping (a phase with id, name, order and a prompt), got a string");
    expect_error("name: x\nphases:\n  - {id: a, name: A, order: '1', prompt_template: x}\n", 3,
                 "phases[0].order", "expected an integer, got a string");
    expect_error("name: x\nphases:\n  - {id: a, name: A, order: 1.5, prompt_template: x}\n", 3,
                 "phases[0].order", "expected an integer, got a number");
    expect_error("name: x\nphases:\n  - {id: a, name: A, order: 1, prompt_template: x,\n"
                 "     allowed_tools: Read}\n",
                 4, "phases[0].allowed_tools",
                 "expected a list of tool names (e.g. [Read, Grep]), got a string");
    expect_error("name: x\nphases:\n  - {id: a, name: A, order: 1, prompt_template: x,\n"
                 "     allowed_tools: [Read, [x]]}\n",
                 4, "phases[0].allowed_tools[1]", "expected a tool name, got a list");
    expect_error("name: x\nphases:\n  - {id: a, name: A, order: 1, prompt_template: {a: b}}\n",
                 3, "phases[0].prompt_template", "expected a string, got a mapping");
    expect_error("name: x\nphases:\n  - {id: a, name: A, order: 1, prompt_template: x,\n"
                 "     retry_backoff_seconds: soon}\n",
                 4, "phases[0].retry_backoff_seconds", "expected a number, got a string");
    expect_error("- name: x\n", 1, NULL,
                 "a workflow is a mapping with at least name and phases, not a list");
    expect_error("just text\n", 1, NULL,
                 "a workflow is a mapping with at least name and phases, not a string");
}

static void test_ranges(void **state)
{
    (void)state;
    const char *head = "name: x\nphases:\n  - {id: a, name: A, order: 1, prompt_template: x, ";
    struct {
        const char *setting, *field, *message;
    } cases[] = {
        {"timeout_seconds: 0", "phases[0].timeout_seconds", "must be between 1 and 86400 (got 0)"},
        {"timeout_seconds: 86401", "phases[0].timeout_seconds",
         "must be between 1 and 86400 (got 86401)"},
        {"max_attempts: 11", "phases[0].max_attempts", "must be between 1 and 10 (got 11)"},
        {"retries: -1", "phases[0].retries", "must be between 0 and 10 (got -1)"},
        {"max_tokens: 0", "phases[0].max_tokens", "must be between 1 and 10000000 (got 0)"},
        {"retry_backoff_seconds: -0.5", "phases[0].retry_backoff_seconds",
         "must be a number from 0 to 86400 (got -0.5)"},
        {"retry_backoff_seconds: .inf", "phases[0].retry_backoff_seconds",
         "must be a number from 0 to 86400 (got .inf)"},
        {"retry_backoff_seconds: 86400.5", "phases[0].retry_backoff_seconds",
         "must be a number from 0 to 86400 (got 86400.5)"},
        {"retry_backoff_seconds: 86401", "phases[0].retry_backoff_seconds",
         "must be between 0 and 86400 (got 86401)"},
        {"provider: ''", "phases[0].provider", "must not be empty"},
        {"timeout_seconds: 99999999999999999999", "phases[0].timeout_seconds",
         "must be between 1 and 86400 (got 99999999999999999999)"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char yaml[512];
        snprintf(yaml, sizeof yaml, "%s%s}\n", head, cases[i].setting);
        expect_error(yaml, 3, cases[i].field, cases[i].message);
    }
    expect_error("name: x\nphases:\n  - {id: a, name: A, order: -1, prompt_template: x}\n", 3,
                 "phases[0].order", "must be at least 0 (got -1)");
}

/* All problems at once, in line order, with a one-line summary. */
static void test_all_errors_and_summary(void **state)
{
    (void)state;
    const char *yaml = "id: no way\n"
                       "name: x\n"
                       "type: nope\n"
                       "phases:\n"
                       "  - id: a\n"
                       "    name: A\n"
                       "    order: 1\n"
                       "    promt_template: x\n"
                       "  - id: a\n"
                       "    name: B\n"
                       "    order: 2\n"
                       "    prompt_template: x\n";
    template_errors_t *errors = parse_fail(yaml);
    /* the misspelt prompt is not also reported missing; phase 0 is still checked
     * for a repeated id although it is invalid */
    assert_int_equal(template_errors_count(errors), 4);
    int lines[] = {1, 3, 8, 9};
    for (size_t i = 0; i < 4; i++)
        assert_int_equal(template_errors_get(errors, i)->line, lines[i]);
    assert_int_equal(template_errors_worst(errors), TEMPLATE_ERROR_INVALID);
    char *summary = template_errors_summary(errors);
    assert_string_equal(summary, "test.yaml:1:5: id: 'no way' is not a valid id: it must match "
                                 "^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$ (and 3 more errors)");
    free(summary);
    json_t *list = template_errors_json(errors);
    assert_int_equal(json_array_size(list), 4);
    assert_json(json_array_get(list, 3),
                "{\"line\":9,\"column\":9,\"field\":\"phases[1].id\",\"message\":"
                "\"duplicate phase id 'a' (also phases[0] at line 5)\"}");
    json_decref(list);
    template_errors_destroy(&errors);
}

static void test_syntax_errors(void **state)
{
    (void)state;
    template_errors_t *errors = parse_fail("name: x\nphases:\n  - id: a\n    name: [A\n");
    const template_error_t *e = template_errors_get(errors, 0);
    assert_int_equal(e->kind, TEMPLATE_ERROR_SYNTAX);
    assert_int_equal(e->line, 5);
    assert_int_equal(e->column, 1);
    assert_null(e->field);
    assert_string_equal(e->message, "invalid YAML: did not find expected ',' or ']' (while parsing "
                                    "a flow sequence at line 4, column 11)");
    template_errors_destroy(&errors);

    errors = parse_fail("name: x\n  bad: indent\n");
    e = template_errors_get(errors, 0);
    assert_int_equal(e->kind, TEMPLATE_ERROR_SYNTAX);
    assert_int_equal(e->line, 2);
    assert_int_equal(e->column, 6);
    assert_string_equal(e->message, "invalid YAML: mapping values are not allowed in this context");
    template_errors_destroy(&errors);

    errors = parse_fail("name: x\n---\nname: y\n");
    assert_int_equal(template_errors_get(errors, 0)->line, 2);
    assert_string_equal(template_errors_get(errors, 0)->message,
                        "more than one YAML document (a '---' line in the middle?)");
    template_errors_destroy(&errors);

    errors = parse_fail("name: \"tab\x01\"\n");
    e = template_errors_get(errors, 0);
    assert_int_equal(e->kind, TEMPLATE_ERROR_SYNTAX);
    assert_int_equal(e->line, 1);
    assert_int_equal(e->column, 11);
    template_errors_destroy(&errors);

    expect_error("", 0, NULL, "the document is empty: a workflow needs at least name and phases");
    expect_error("# only a comment\n", 0, NULL,
                 "the document is empty: a workflow needs at least name and phases");
}

static void test_encoding_and_size(void **state)
{
    (void)state;
    template_errors_t *errors = parse_fail("name: caf\xc3\n" PHASE);
    const template_error_t *e = template_errors_get(errors, 0);
    assert_int_equal(e->kind, TEMPLATE_ERROR_SYNTAX);
    assert_int_equal(e->line, 1);
    assert_int_equal(e->column, 10);
    assert_string_equal(e->message, "not valid UTF-8 (byte 0xC3)");
    template_errors_destroy(&errors);

    /* overlong '/', a UTF-16 surrogate, a NUL byte */
    const char *bad[] = {"name: \xc0\xaf\n", "name: \xed\xa0\x80\n"};
    for (size_t i = 0; i < 2; i++) {
        errors = parse_fail(bad[i]);
        assert_int_equal(template_errors_worst(errors), TEMPLATE_ERROR_SYNTAX);
        template_errors_destroy(&errors);
    }
    errors = parse_fail_in("name: a\0b\n", 10, NULL);
    assert_int_equal(template_errors_worst(errors), TEMPLATE_ERROR_SYNTAX);
    template_errors_destroy(&errors);
    expect_error("name: \"a\\0b\"\n" PHASE, 1, NULL, "NUL characters are not allowed");

    /* a leading byte order mark is skipped, and positions are those an editor shows */
    json_t *with_bom = parse_ok("\xEF\xBB\xBFname: BOM\n" PHASE);
    assert_string_equal(json_string_value(json_object_get(with_bom, "name")), "BOM");
    json_decref(with_bom);
    errors = parse_fail("\xEF\xBB\xBFname: caf\xc3\n" PHASE);
    assert_int_equal(template_errors_get(errors, 0)->line, 1);
    assert_int_equal(template_errors_get(errors, 0)->column, 10);
    template_errors_destroy(&errors);

    size_t len = TEMPLATE_MAX_DOCUMENT + 1;
    char *big = malloc(len);
    memset(big, '#', len);
    errors = parse_fail_in(big, len, NULL);
    e = template_errors_get(errors, 0);
    assert_int_equal(e->kind, TEMPLATE_ERROR_TOO_LARGE);
    assert_string_equal(e->message, "the document is 1048577 bytes; the limit is 1048576 (1 MiB)");
    template_errors_destroy(&errors);
    /* exactly the limit is fine: a comment line, then a workflow */
    const char *tail = "\nname: x\n" PHASE;
    memcpy(big + TEMPLATE_MAX_DOCUMENT - strlen(tail), tail, strlen(tail));
    big[0] = '#';
    errors = template_errors_new();
    json_t *w = template_workflow_parse(big, TEMPLATE_MAX_DOCUMENT, NULL, NULL, errors);
    assert_non_null(w);
    json_decref(w);
    template_errors_destroy(&errors);
    free(big);
}

static void test_yaml_features_refused(void **state)
{
    (void)state;
    expect_error("name: &n x\ndescription: *n\n" PHASE, 2, NULL,
                 "YAML aliases (*name) are not supported: write the value out");
    expect_error("name: !custom x\n" PHASE, 1, NULL,
                 "unsupported YAML tag (only the core tags !!str, !!int, !!float, !!bool, !!null "
                 "are allowed)");
    expect_error("name: !!int abc\n" PHASE, 1, NULL, "the value does not match its tag");
    expect_error("? [a]\n: b\nname: x\n" PHASE, 1, NULL,
                 "mapping keys must be plain text, not lists or mappings");
}

/* --- prompt files ------------------------------------------------------------ */

static char *make_dir(void)
{
    char *dir = strdup("/tmp/syn-template-test-XXXXXX");
    assert_non_null(mkdtemp(dir));
    return dir;
}

static void write_bytes(const char *dir, const char *name, const char *bytes, size_t len)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    char *slash = strrchr(path, '/');
    *slash = '\0';
    mkdir(path, 0755);
    *slash = '/';
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fwrite(bytes, 1, len, f), len);
    fclose(f);
}

static void write_file(const char *dir, const char *name, const char *text)
{
    write_bytes(dir, name, text, strlen(text));
}

static void remove_tree(const char *dir)
{
    char command[1100];
    snprintf(command, sizeof command, "rm -rf '%s'", dir);
    assert_int_equal(system(command), 0);
}

static void test_prompt_files_and_front_matter(void **state)
{
    (void)state;
    template_errors_t *errors = template_errors_new();
    json_t *w = template_workflow_parse_file(FIXTURES "/triage/workflow.yaml", errors);
    print_errors(errors);
    assert_non_null(w);
    assert_json(
        w,
        "{\"id\":\"triage-v1\",\"name\":\"Issue triage\",\"description\":\"Investigate an issue, "
        "then plan a fix\",\"workflow_type\":\"research\",\"classification\":\"standard\","
        "\"input_declarations\":[{\"name\":\"task\",\"description\":\"Issue text\","
        "\"required\":true},{\"name\":\"severity\",\"required\":false,\"default\":\"medium\"}],"
        "\"phases\":["
        "{\"phase_id\":\"investigate\",\"name\":\"Investigate\",\"order\":1,\"model\":\"sonnet\","
        "\"prompt_template\":\"Triage (severity {{severity}}): $ARGUMENTS\\n\","
        "\"timeout_seconds\":600,\"max_attempts\":2,\"retries\":1,\"argument_hint\":\"[issue "
        "text]\",\"allowed_tools\":[\"Read\",\"Grep\"]},"
        /* everything from the front matter; the comma list keeps Bash(…, …) whole and the
         * hint written as a YAML list keeps its text */
        "{\"phase_id\":\"plan\",\"name\":\"Plan\",\"order\":2,\"description\":\"Plan the fix\","
        "\"model\":\"sonnet\",\"prompt_template\":\"Plan a fix for: $ARGUMENTS\\n\\nFindings:\\n"
        "{{investigate}}\\n\",\"timeout_seconds\":900,\"max_tokens\":4000,"
        "\"argument_hint\":\"[issue text]\",\"allowed_tools\":[\"Read\",\"Grep\","
        "\"Bash(git log:*, git diff:*)\"]},"
        /* the YAML's model, timeout and tools win; the rest comes from the front matter */
        "{\"phase_id\":\"check\",\"name\":\"Check\",\"order\":3,\"description\":\"Check the "
        "plan\",\"model\":\"opus\",\"prompt_template\":\"Check this plan: {{plan}}\\n\","
        "\"timeout_seconds\":120,\"max_tokens\":2000,\"allowed_tools\":[\"Read\"]}]}");
    json_decref(w);
    template_errors_destroy(&errors);
}

static void test_front_matter_edge_cases(void **state)
{
    (void)state;
    char *dir = make_dir();
    const char *yaml = "name: x\nphases:\n  - {id: a, name: A, order: 1, prompt_file: p.md}\n";
    /* no front matter: the whole file is the prompt; CRLF delimiters and a BOM work */
    write_file(dir, "p.md", "Just a prompt\n---\nwith a rule\n");
    json_t *w = parse_ok_in(yaml, dir);
    json_t *first = json_array_get(json_object_get(w, "phases"), 0);
    assert_string_equal(json_string_value(json_object_get(first, "prompt_template")),
                        "Just a prompt\n---\nwith a rule\n");
    json_decref(w);
    write_file(dir, "p.md", "\xEF\xBB\xBF---\r\nmodel: m\r\n---\r\nBody\r\n");
    w = parse_ok_in(yaml, dir);
    assert_json(json_array_get(json_object_get(w, "phases"), 0),
                "{\"phase_id\":\"a\",\"name\":\"A\",\"order\":1,\"model\":\"m\","
                "\"prompt_template\":\"Body\\r\\n\"}");
    json_decref(w);
    write_file(dir, "p.md", "---\n---\nEmpty front matter\n");
    w = parse_ok_in(yaml, dir);
    json_decref(w);
    /* a hint written as a YAML list keeps its text, non-ASCII included */
    write_file(dir, "p.md", "---\nargument-hint: [caf\xc3\xa9 \xe2\x9c\x93, \xf0\x9f\x98\x80]\n"
                            "allowed-tools: ''\n---\nB\n");
    w = parse_ok_in(yaml, dir);
    assert_json(json_array_get(json_object_get(w, "phases"), 0),
                "{\"phase_id\":\"a\",\"name\":\"A\",\"order\":1,\"prompt_template\":\"B\\n\","
                "\"argument_hint\":\"[caf\xc3\xa9 \xe2\x9c\x93, \xf0\x9f\x98\x80]\","
                "\"allowed_tools\":[]}");
    json_decref(w);

    char md_path[1024];
    snprintf(md_path, sizeof md_path, "%s/p.md", dir);
    struct {
        const char *text;
        int line;
        const char *field, *message;
    } cases[] = {
        {"---\nmodel: m\nmax_tokens: 5\n---\nx\n", 3, "phases[0].prompt_file.max_tokens",
         "unknown key 'max_tokens' in the front matter (known: model, allowed-tools, max-tokens, "
         "timeout-seconds, argument-hint, description); did you mean 'max-tokens'?"},
        {"---\ntimeout-seconds: soon\n---\nx\n", 2, "phases[0].prompt_file.timeout-seconds",
         "expected an integer, got a string"},
        {"---\nmax-tokens: 0\n---\nx\n", 2, "phases[0].prompt_file.max-tokens",
         "must be between 1 and 10000000 (got 0)"},
        {"---\nallowed-tools: {a: b}\n---\nx\n", 2, "phases[0].prompt_file.allowed-tools",
         "expected a list of tool names or \"A, B\", got a mapping"},
        {"---\nmodel: m\nno closing line\n", 1, "phases[0].prompt_file",
         "front matter that starts on line 1 is never closed by a '---' line"},
        {"---\n- a list\n---\nx\n", 2, "phases[0].prompt_file",
         "front matter must be a mapping of settings, not a list"},
        {"---\nmodel: m\n---\n", 0, "phases[0].prompt_file", "the prompt file has no prompt text"},
        {"", 0, "phases[0].prompt_file", "the prompt file has no prompt text"},
        {"---\nmodel: [m\n---\nx\n", 3, NULL,
         "invalid YAML: did not find expected ',' or ']' (while parsing a flow sequence at line "
         "2, column 8)"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        write_file(dir, "p.md", cases[i].text);
        template_errors_t *errors = parse_fail_in(yaml, strlen(yaml), dir);
        assert_has(errors, cases[i].line, cases[i].field, cases[i].message);
        /* errors in a prompt file name that file */
        assert_string_equal(template_errors_get(errors, 0)->file, md_path);
        template_errors_destroy(&errors);
    }
    write_file(dir, "p.md", "caf\xc3(\n");
    template_errors_t *errors = parse_fail_in(yaml, strlen(yaml), dir);
    assert_has(errors, 1, "phases[0].prompt_file", "prompt file is not valid UTF-8 (byte 0xC3)");
    template_errors_destroy(&errors);
    /* Valid UTF-8, but the prompt would end at the NUL once it is a C string. */
    write_bytes(dir, "p.md", "one\ntw\0o\n", 9);
    errors = parse_fail_in(yaml, strlen(yaml), dir);
    assert_has(errors, 2, "phases[0].prompt_file", "prompt file is not text: a NUL byte");
    template_errors_destroy(&errors);
    remove_tree(dir);
    free(dir);
}

static void expect_prompt_error(const char *dir, const char *prompt_file,
                                template_error_kind_t kind, const char *message)
{
    char yaml[1024];
    snprintf(yaml, sizeof yaml,
             "name: x\nphases:\n  - id: a\n    name: A\n    order: 1\n    prompt_file: %s\n",
             prompt_file);
    template_errors_t *errors = parse_fail_in(yaml, strlen(yaml), dir);
    if (template_errors_count(errors) != 1)
        print_errors(errors);
    assert_int_equal(template_errors_count(errors), 1);
    assert_int_equal(template_errors_get(errors, 0)->kind, kind);
    assert_has(errors, 6, "phases[0].prompt_file", message);
    template_errors_destroy(&errors);
}

static void test_prompt_paths(void **state)
{
    (void)state;
    char *outside = make_dir();
    write_file(outside, "secret.md", "secret\n");
    char *dir = make_dir();
    write_file(dir, "sub/ok.md", "fine\n");
    char link[1024], target[1024];
    snprintf(link, sizeof link, "%s/escape.md", dir);
    snprintf(target, sizeof target, "%s/secret.md", outside);
    assert_int_equal(symlink(target, link), 0);
    snprintf(link, sizeof link, "%s/escape-dir", dir);
    assert_int_equal(symlink(outside, link), 0);
    snprintf(link, sizeof link, "%s/inside.md", dir);
    assert_int_equal(symlink("sub/ok.md", link), 0);

    expect_prompt_error(dir, "../secret.md", TEMPLATE_ERROR_INVALID,
                        "'../secret.md': '..' is not allowed: prompt files must be inside the "
                        "workflow's directory");
    expect_prompt_error(dir, "sub/../../x.md", TEMPLATE_ERROR_INVALID,
                        "'sub/../../x.md': '..' is not allowed: prompt files must be inside the "
                        "workflow's directory");
    expect_prompt_error(dir, "/etc/passwd", TEMPLATE_ERROR_INVALID,
                        "'/etc/passwd': absolute paths are not allowed: give a path relative to "
                        "the workflow file");
    expect_prompt_error(dir, "escape.md", TEMPLATE_ERROR_INVALID,
                        "'escape.md': the path leads outside the workflow's directory (through a "
                        "symlink)");
    expect_prompt_error(dir, "escape-dir/secret.md", TEMPLATE_ERROR_INVALID,
                        "'escape-dir/secret.md': the path leads outside the workflow's directory "
                        "(through a symlink)");
    expect_prompt_error(dir, "missing.md", TEMPLATE_ERROR_IO,
                        "'missing.md': cannot open the file: No such file or directory");
    expect_prompt_error(dir, "sub", TEMPLATE_ERROR_IO, "'sub': not a regular file");
    expect_prompt_error(dir, "[a.md]", TEMPLATE_ERROR_INVALID,
                        "expected a path relative to the workflow file, got a list");

    /* a FIFO is refused at once rather than waited on */
    char fifo[1024];
    snprintf(fifo, sizeof fifo, "%s/pipe.md", dir);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    expect_prompt_error(dir, "pipe.md", TEMPLATE_ERROR_IO, "'pipe.md': not a regular file");

    /* one byte over the limit */
    char *big = malloc(TEMPLATE_MAX_PROMPT_FILE + 2);
    memset(big, 'x', TEMPLATE_MAX_PROMPT_FILE + 1);
    big[TEMPLATE_MAX_PROMPT_FILE + 1] = '\0';
    write_file(dir, "big.md", big);
    free(big);
    expect_prompt_error(dir, "big.md", TEMPLATE_ERROR_TOO_LARGE,
                        "'big.md': file larger than the limit of 1048576 bytes");

    /* symlinks that stay inside are fine */
    json_t *w = parse_ok_in("name: x\nphases:\n  - {id: a, name: A, order: 1, "
                            "prompt_file: inside.md}\n  - {id: b, name: B, order: 2, "
                            "prompt_file: ./sub//ok.md}\n",
                            dir);
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(json_object_get(w, "phases"), 1), "prompt_template")),
                        "fine\n");
    json_decref(w);
    remove_tree(dir);
    remove_tree(outside);
    free(dir);
    free(outside);
}

static void test_prompt_file_rules(void **state)
{
    (void)state;
    /* an upload has no directory: a clear 400-class error */
    template_errors_t *errors =
        parse_fail("name: x\nphases:\n  - {id: a, name: A, order: 1, prompt_file: p.md}\n");
    assert_int_equal(template_errors_worst(errors), TEMPLATE_ERROR_UNSUPPORTED);
    assert_has(errors, 3, "phases[0].prompt_file",
               "prompt_file cannot be used in an uploaded document (the server cannot read your "
               "files): install the workflow with the CLI or as a package directory (syn-broker "
               "--workflows DIR), or inline the prompt as prompt_template");
    template_errors_destroy(&errors);

    expect_error("name: x\nphases:\n  - id: a\n    name: A\n    order: 1\n"
                 "    prompt_template: hi\n    prompt_file: p.md\n",
                 7, "phases[0].prompt_file",
                 "give either prompt_template or prompt_file, not both (prompt_template is at "
                 "line 6)");

    /* a missing workflow file */
    errors = template_errors_new();
    assert_null(template_workflow_parse_file(FIXTURES "/no-such.yaml", errors));
    assert_int_equal(template_errors_worst(errors), TEMPLATE_ERROR_IO);
    assert_string_equal(template_errors_get(errors, 0)->message,
                        "cannot open file: No such file or directory");
    template_errors_destroy(&errors);
}

/* The total of all prompt files is bounded too. */
static void test_prompt_budget(void **state)
{
    (void)state;
    char *dir = make_dir();
    char *chunk = malloc(TEMPLATE_MAX_PROMPT_FILE + 1);
    memset(chunk, 'x', TEMPLATE_MAX_PROMPT_FILE);
    chunk[TEMPLATE_MAX_PROMPT_FILE] = '\0';
    write_file(dir, "p.md", chunk);
    free(chunk);
    char yaml[4096] = "name: x\nphases:\n";
    for (int i = 0; i < 9; i++) {
        char line[128];
        snprintf(line, sizeof line, "  - {id: p%d, name: P, order: %d, prompt_file: p.md}\n", i,
                 i);
        strcat(yaml, line);
    }
    template_errors_t *errors = parse_fail_in(yaml, strlen(yaml), dir);
    assert_int_equal(template_errors_worst(errors), TEMPLATE_ERROR_TOO_LARGE);
    assert_has(errors, 11, "phases[8].prompt_file",
               "the prompt files of this workflow add up to more than 8388608 bytes");
    template_errors_destroy(&errors);
    remove_tree(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_minimal),
        cmocka_unit_test(test_every_field),
        cmocka_unit_test(test_null_is_absent),
        cmocka_unit_test(test_scalar_typing),
        cmocka_unit_test(test_unknown_keys),
        cmocka_unit_test(test_choices),
        cmocka_unit_test(test_bad_ids),
        cmocka_unit_test(test_missing),
        cmocka_unit_test(test_duplicates),
        cmocka_unit_test(test_wrong_types),
        cmocka_unit_test(test_ranges),
        cmocka_unit_test(test_all_errors_and_summary),
        cmocka_unit_test(test_syntax_errors),
        cmocka_unit_test(test_encoding_and_size),
        cmocka_unit_test(test_yaml_features_refused),
        cmocka_unit_test(test_prompt_files_and_front_matter),
        cmocka_unit_test(test_front_matter_edge_cases),
        cmocka_unit_test(test_prompt_paths),
        cmocka_unit_test(test_prompt_file_rules),
        cmocka_unit_test(test_prompt_budget),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
