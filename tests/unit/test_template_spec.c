/* The workflow specification (template/spec.h) walked field by field through the
 * three ways a workflow comes in — a JSON body (gateway/validate.c), a YAML document
 * (template/workflow.c) and the broker's own check (broker/api.c, workflow.create) —
 * expecting the same verdict from each. The boundaries come from the table itself
 * (just inside, just outside, wrong type, missing, null, unknown key), so a limit
 * written anywhere else shows up as a disagreement; docs/api.md's numbers are pinned
 * separately, so the table cannot drift from the documented contract either. */
#include "gateway/validate.h"
#include "template/errors.h"
#include "template/spec.h"
#include "template/workflow.h"
#include "tests/support/broker_fixture.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define MAX_CASES 400

typedef enum { AT_WORKFLOW, AT_INPUT, AT_PHASE } where_t;

typedef struct {
    where_t where;
    char key[32];
    char value[160]; /* JSON text; "" = the key left out */
    bool ok;         /* the verdict every entry must give */
} boundary_t;

typedef struct {
    boundary_t cases[MAX_CASES];
    size_t count;
} cases_t;

static const char *const where_names[] = {"workflow", "input_declarations[0]", "phases[0]"};

static void add(cases_t *c, where_t where, const char *key, bool ok, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static void add(cases_t *c, where_t where, const char *key, bool ok, const char *fmt, ...)
{
    assert_true(c->count < MAX_CASES);
    boundary_t *b = &c->cases[c->count++];
    b->where = where;
    b->ok = ok;
    snprintf(b->key, sizeof b->key, "%s", key);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(b->value, sizeof b->value, fmt, ap);
    va_end(ap);
}

/* Values wrong in both notations: a number where text is expected is text in YAML
 * by design (docs/templates.md, "Types"), so text gets a boolean instead. */
static void add_field(cases_t *c, where_t where, const spec_field_t *f)
{
    const char *k = f->name;
    if (f->kind == SPEC_FILE) {
        /* YAML's own way to give the prompt: never in an upload, never in JSON */
        add(c, where, k, false, "\"prompt.md\"");
        return;
    }
    if (f->required) {
        add(c, where, k, false, "%s", "");
        add(c, where, k, false, "null");
    } else {
        add(c, where, k, true, "%s", "");
        add(c, where, k, true, "null");
    }
    switch (f->kind) {
    case SPEC_STRING:
        add(c, where, k, true, "\"some text\"");
        add(c, where, k, f->min_len == 0, "\"\"");
        add(c, where, k, false, "true");
        add(c, where, k, false, "[\"a\"]");
        break;
    case SPEC_ID: {
        char longest[101];
        memset(longest, 'a', 100);
        longest[100] = '\0';
        add(c, where, k, true, "\"b\"");
        add(c, where, k, true, "\"%s\"", longest);
        add(c, where, k, false, "\"%sa\"", longest);
        add(c, where, k, false, "\"-a\"");
        add(c, where, k, false, "\"a b\"");
        add(c, where, k, false, "true");
        break;
    }
    case SPEC_INT:
        if (f->has_min) {
            add(c, where, k, true, "%lld", f->min);
            add(c, where, k, false, "%lld", f->min - 1);
        }
        if (f->has_max) {
            add(c, where, k, true, "%lld", f->max);
            add(c, where, k, false, "%lld", f->max + 1);
        }
        add(c, where, k, false, "1.5");
        add(c, where, k, false, "\"1\"");
        add(c, where, k, false, "true");
        break;
    case SPEC_NUMBER:
        add(c, where, k, !f->min_exclusive, "%lld", f->min);
        if (f->min_exclusive)
            add(c, where, k, true, "%lld.5", f->min);
        add(c, where, k, false, "%lld.5", f->min - 1);
        add(c, where, k, true, "%lld", f->max);
        add(c, where, k, false, "%lld.5", f->max);
        add(c, where, k, true, "1.5");
        add(c, where, k, false, "\"1\"");
        break;
    case SPEC_BOOL:
        add(c, where, k, true, "true");
        add(c, where, k, true, "false");
        add(c, where, k, false, "\"true\"");
        add(c, where, k, false, "1");
        break;
    case SPEC_REPOSITORY:
        add(c, where, k, true, "\"https://github.com/o/r\"");
        add(c, where, k, true, "\"o/r\"");
        add(c, where, k, false, "\"\"");
        add(c, where, k, true, "{\"url\": \"o/r\", \"ref\": \"main\"}");
        add(c, where, k, true, "{\"url\": \"o/r\"}");
        add(c, where, k, true, "{\"url\": \"o/r\", \"ref\": null}");
        add(c, where, k, false, "{\"ref\": \"main\"}");
        add(c, where, k, false, "{\"url\": \"\"}");
        add(c, where, k, false, "{\"url\": \"o/r\", \"branch\": \"main\"}");
        add(c, where, k, false, "{\"url\": true}");
        add(c, where, k, false, "true");
        add(c, where, k, false, "[\"a\"]");
        break;
    case SPEC_ENUM:
    case SPEC_LITERAL:
        for (const char *const *choice = f->choices; *choice; choice++)
            add(c, where, k, true, "\"%s\"", *choice);
        add(c, where, k, false, "\"nope\"");
        add(c, where, k, false, "true");
        break;
    case SPEC_STRING_LIST:
        add(c, where, k, true, "[]");
        add(c, where, k, true, "[\"Read\", \"Bash(git add:*)\"]");
        add(c, where, k, true, "[\"\"]");
        add(c, where, k, false, "\"Read\"");
        add(c, where, k, false, "[true]");
        add(c, where, k, false, "{}");
        break;
    case SPEC_OBJECT_LIST:
        add(c, where, k, f->min_len == 0, "[]");
        add(c, where, k, false, "\"x\"");
        add(c, where, k, false, "[5]");
        break;
    case SPEC_OBJECT: /* the original's agent: its own keys, strictly */
        add(c, where, k, true, "{}");
        add(c, where, k, true,
            "{\"provider\": \"codex\", \"model\": \"gpt\", \"agent_id\": \"codex\", "
            "\"allow_delegation\": true}");
        add(c, where, k, false, "\"codex\"");
        add(c, where, k, false, "[]");
        add(c, where, k, false, "{\"provider\": \"\"}");
        add(c, where, k, false, "{\"allow_delegation\": \"yes\"}");
        add(c, where, k, false, "{\"provider\": \"claude\", \"sandbox\": \"x\"}");
        break;
    case SPEC_STRING_MAP:
    case SPEC_FILE:
        break;
    }
}

static void add_object(cases_t *c, where_t where, const spec_object_t *object)
{
    for (const spec_field_t *f = object->fields; f->name; f++)
        add_field(c, where, f);
    add(c, where, "bogus", false, "1");
}

/* One input and one phase, each with only what is required. */
static json_t *base_workflow(void)
{
    return json_pack("{s:s, s:[{s:s}], s:[{s:s, s:s, s:i, s:s}]}", "name", "W",
                     "input_declarations", "name", "topic", "phases", "phase_id", "p", "name",
                     "P", "order", 0, "prompt_template", "x");
}

static json_t *workflow_of(const boundary_t *b)
{
    json_t *w = base_workflow();
    json_t *target = b->where == AT_WORKFLOW ? w
                     : b->where == AT_INPUT
                         ? json_array_get(json_object_get(w, "input_declarations"), 0)
                         : json_array_get(json_object_get(w, "phases"), 0);
    if (!b->value[0]) {
        json_object_del(target, b->key);
        return w;
    }
    json_error_t jerr;
    json_t *value = json_loads(b->value, JSON_DECODE_ANY, &jerr);
    if (!value)
        fail_msg("bad case value %s: %s", b->value, jerr.text);
    json_object_set_new(target, b->key, value);
    return w;
}

/* The same object with YAML's names (type, inputs, a phase's id): JSON text is YAML. */
static json_t *yaml_names(const spec_object_t *object, const json_t *value)
{
    json_t *out = json_object();
    const char *key;
    json_t *item;
    json_object_foreach((json_t *)value, key, item) {
        const spec_field_t *f = spec_field(object, key);
        json_t *copy = json_incref(item);
        if (f && f->kind == SPEC_OBJECT_LIST && json_is_array(item)) {
            json_decref(copy);
            copy = json_array();
            size_t i;
            json_t *element;
            json_array_foreach(item, i, element)
                json_array_append_new(copy, json_is_object(element)
                                                ? yaml_names(f->items, element)
                                                : json_incref(element));
        }
        json_object_set_new(out, f ? spec_yaml_key(f) : key, copy);
    }
    return out;
}

static bool json_verdict(const json_t *workflow)
{
    char *text = json_dumps(workflow, 0);
    json_t *args = NULL, *error = NULL;
    int status = gateway_validate_workflow(text, strlen(text), &args, &error);
    free(text);
    assert_true(status == 0 || status == 422);
    json_decref(args);
    json_decref(error);
    return status == 0;
}

static bool yaml_verdict(const json_t *workflow)
{
    json_t *renamed = yaml_names(&spec_workflow, workflow);
    char *text = json_dumps(renamed, 0); /* ", " and ": ": flow YAML as well */
    json_decref(renamed);
    template_errors_t *errors = template_errors_new();
    json_t *parsed = template_workflow_parse(text, strlen(text), NULL, NULL, errors);
    free(text);
    template_errors_destroy(&errors);
    json_decref(parsed);
    return parsed != NULL;
}

static bool broker_verdict(fx_t *f, const json_t *workflow)
{
    json_t *body = NULL;
    int status = fx_call(f, "workflow.create", json_deep_copy(workflow), &body);
    json_decref(body);
    assert_true(status == 201 || status == 400 || status == 422);
    return status == 201;
}

static void test_every_boundary_same_verdict(void **state)
{
    fx_t *f = *state;
    cases_t *c = calloc(1, sizeof *c);
    assert_non_null(c);
    add_object(c, AT_WORKFLOW, &spec_workflow);
    add_object(c, AT_INPUT, &spec_input);
    add_object(c, AT_PHASE, &spec_phase);
    int wrong = 0;
    for (size_t i = 0; i < c->count; i++) {
        const boundary_t *b = &c->cases[i];
        json_t *w = workflow_of(b);
        bool by_json = json_verdict(w), by_yaml = yaml_verdict(w), by_broker = broker_verdict(f, w);
        /* YAML alone reads the original's oldest format: a phase without id is named by
         * its name, one without order runs in its place (template/oldest_format.c) */
        bool yaml_ok = b->ok || (b->where == AT_PHASE && !b->value[0] &&
                                 (strcmp(b->key, "phase_id") == 0 || strcmp(b->key, "order") == 0));
        if (by_json != b->ok || by_yaml != yaml_ok || by_broker != b->ok) {
            print_error("%s.%s = %s: want %s, JSON %s, YAML %s, broker %s\n",
                        where_names[b->where], b->key, b->value[0] ? b->value : "(absent)",
                        b->ok ? "ok" : "refused", by_json ? "ok" : "refused",
                        by_yaml ? "ok" : "refused", by_broker ? "ok" : "refused");
            wrong++;
        }
        json_decref(w);
    }
    assert_true(c->count > 100);
    free(c);
    assert_int_equal(wrong, 0);
}

/* Repeated phase ids and orders: the content rule after the shape, in all three. */
static void test_duplicates_same_verdict(void **state)
{
    fx_t *f = *state;
    const char *second[][2] = {{"p", "1"}, {"q", "0"}, {"q", "1"}};
    for (size_t i = 0; i < 3; i++) {
        json_t *w = base_workflow();
        json_array_append_new(json_object_get(w, "phases"),
                              json_pack("{s:s, s:s, s:i, s:s}", "phase_id", second[i][0], "name",
                                        "Q", "order", atoi(second[i][1]), "prompt_template", "y"));
        bool ok = i == 2;
        assert_int_equal(json_verdict(w), ok);
        assert_int_equal(yaml_verdict(w), ok);
        assert_int_equal(broker_verdict(f, w), ok);
        json_decref(w);
    }
}

/* The limits docs/api.md documents, so the table cannot drift from the contract. */
static void test_documented_limits(void **state)
{
    (void)state;
    const spec_field_t *timeout = spec_field(&spec_phase, "timeout_seconds");
    assert_int_equal(timeout->min, 1);
    assert_int_equal(timeout->max, 86400);
    assert_int_equal(spec_field(&spec_phase, "max_attempts")->min, 1);
    assert_int_equal(spec_field(&spec_phase, "max_attempts")->max, 10);
    assert_int_equal(spec_field(&spec_phase, "retries")->max, 10);
    assert_int_equal(spec_field(&spec_phase, "retry_backoff_seconds")->max, 86400);
    assert_int_equal(spec_field(&spec_phase, "max_tokens")->max, 10000000);
    const spec_field_t *order = spec_field(&spec_phase, "order");
    assert_true(order->has_min && !order->has_max);
    assert_int_equal(order->min, 0);
    const spec_field_t *edit = spec_field(&spec_phase_update, "timeout_seconds");
    assert_int_equal(edit->max, timeout->max);
    /* the defaults a stored phase gets (docs/api.md, GET /workflows/{id}) */
    json_t *phase = json_pack("{s:s, s:s, s:i, s:s}", "phase_id", "p", "name", "P", "order", 0,
                              "prompt_template", "x");
    json_t *stored = spec_with_defaults(&spec_phase, phase);
    char *text = json_dumps(stored, JSON_COMPACT);
    assert_string_equal(text, "{\"phase_id\":\"p\",\"name\":\"P\",\"order\":0,\"prompt_template\":"
                              "\"x\",\"model\":null,\"timeout_seconds\":300,\"max_attempts\":3,"
                              "\"description\":null,\"argument_hint\":null,\"allowed_tools\":[],\"network\":\"proxy\","
                              "\"input_artifacts\":[],\"output_artifacts\":[]}");
    free(text);
    json_decref(stored);
    json_decref(phase);
}

static void first_sentence(void *ctx, const spec_violation_t *violation)
{
    char *first = ctx;
    if (!first[0])
        spec_sentence(violation, first, 512);
}

/* The broker's sentences, one per kind of problem (the first violation of each). */
static void test_sentences(void **state)
{
    (void)state;
    struct {
        const char *args;
        const char *want;
    } cases[] = {
        {"{\"phases\":[]}", "name is required"},
        {"{\"name\":\"n\",\"phases\":[]}", "phases must be a non-empty array"},
        {"{\"name\":\"n\",\"phases\":[{\"phase_id\":\"p\",\"name\":\"P\",\"order\":-1,"
         "\"prompt_template\":\"x\"}]}",
         "phases[0].order must be an integer of at least 0"},
        {"{\"name\":\"n\",\"phases\":[{\"phase_id\":\"p\",\"name\":\"P\",\"order\":0,"
         "\"prompt_template\":\"x\",\"max_attempts\":11}]}",
         "phases[0].max_attempts must be an integer from 1 to 10"},
        {"{\"name\":\"n\",\"workflow_type\":\"x\",\"phases\":[]}",
         "workflow_type must be one of research, planning, implementation, review, deployment, "
         "custom"},
        {"{\"name\":\"n\",\"phases\":[{\"phase_id\":\"p\",\"name\":\"P\",\"order\":0,"
         "\"prompt_template\":\"x\",\"allowed_tools\":[3]}]}",
         "phases[0].allowed_tools[0] must be a string"},
        {"{\"name\":\"n\",\"bogus\":1,\"phases\":[]}", "phases must be a non-empty array"},
        {"{\"id\":\"-x\",\"name\":\"n\",\"phases\":[]}",
         "id must match ^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *args = json_loads(cases[i].args, 0, NULL);
        assert_non_null(args);
        json_t *loc = json_array();
        char first[512] = "";
        assert_null(spec_check(&spec_workflow, args, loc, first_sentence, first));
        assert_string_equal(first, cases[i].want);
        json_decref(loc);
        json_decref(args);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        fx_unit_test(test_every_boundary_same_verdict),
        fx_unit_test(test_duplicates_same_verdict),
        cmocka_unit_test(test_documented_limits),
        cmocka_unit_test(test_sentences),
    };
    return cmocka_run_group_tests_name("template_spec", tests, NULL, NULL);
}
