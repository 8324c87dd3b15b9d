/* template/yamltree: the YAML 1.2 core schema typing of plain scalars, positions,
 * and the features refused (aliases, foreign tags, complex keys, several documents). */
#include "template/yamltree.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static template_node_t *parse(const char *text, template_errors_t *errors, bool *failed)
{
    return template_yaml_parse(text, strlen(text), "t.yaml", 0, errors, failed);
}

static void test_core_schema(void **state)
{
    (void)state;
    struct {
        const char *text;
        template_scalar_type_t type;
    } cases[] = {
        {"", TEMPLATE_SCALAR_NULL},       {"~", TEMPLATE_SCALAR_NULL},
        {"null", TEMPLATE_SCALAR_NULL},   {"NULL", TEMPLATE_SCALAR_NULL},
        {"nULL", TEMPLATE_SCALAR_STRING}, {"true", TEMPLATE_SCALAR_BOOL},
        {"False", TEMPLATE_SCALAR_BOOL},  {"yes", TEMPLATE_SCALAR_STRING},
        {"on", TEMPLATE_SCALAR_STRING},   {"0", TEMPLATE_SCALAR_INT},
        {"-12", TEMPLATE_SCALAR_INT},     {"+7", TEMPLATE_SCALAR_INT},
        {"0123", TEMPLATE_SCALAR_INT},    {"0x1F", TEMPLATE_SCALAR_INT},
        {"0o17", TEMPLATE_SCALAR_INT},    {"0o8", TEMPLATE_SCALAR_STRING},
        {"0xG", TEMPLATE_SCALAR_STRING},  {"1_000", TEMPLATE_SCALAR_STRING},
        {"1.5", TEMPLATE_SCALAR_FLOAT},   {"1.", TEMPLATE_SCALAR_FLOAT},
        {".5", TEMPLATE_SCALAR_FLOAT},    {"-1e3", TEMPLATE_SCALAR_FLOAT},
        {"1e+3", TEMPLATE_SCALAR_FLOAT},  {"1e", TEMPLATE_SCALAR_STRING},
        {".", TEMPLATE_SCALAR_STRING},    {"-", TEMPLATE_SCALAR_STRING},
        {".inf", TEMPLATE_SCALAR_FLOAT},  {"-.Inf", TEMPLATE_SCALAR_FLOAT},
        {".NaN", TEMPLATE_SCALAR_FLOAT},  {"inf", TEMPLATE_SCALAR_STRING},
        {"12:30", TEMPLATE_SCALAR_STRING}, {"sonnet", TEMPLATE_SCALAR_STRING},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        if (template_yaml_resolve(cases[i].text, strlen(cases[i].text)) != cases[i].type)
            fail_msg("'%s' resolved wrongly", cases[i].text);
    }
}

static void test_tree_and_positions(void **state)
{
    (void)state;
    template_errors_t *errors = template_errors_new();
    bool failed;
    template_node_t *root = parse("# c\nname: x\nlist:\n  - 'quoted 1'\n  - 2\nflow: {a: [b, c]}\n"
                                  "block: |\n  text\n",
                                  errors, &failed);
    assert_false(failed);
    assert_non_null(root);
    assert_int_equal(root->kind, TEMPLATE_NODE_MAPPING);
    assert_int_equal(root->count, 8);
    const template_node_t *name = template_node_get(root, "name");
    assert_string_equal(name->text, "x");
    assert_int_equal(name->line, 2);
    assert_int_equal(name->column, 7);
    const template_node_t *list = template_node_get(root, "list");
    assert_int_equal(list->kind, TEMPLATE_NODE_SEQUENCE);
    assert_false(list->flow);
    assert_int_equal(list->children[0]->type, TEMPLATE_SCALAR_STRING);
    assert_string_equal(list->children[0]->text, "quoted 1");
    assert_int_equal(list->children[0]->line, 4);
    assert_int_equal(list->children[1]->type, TEMPLATE_SCALAR_INT);
    const template_node_t *flow = template_node_get(root, "flow");
    assert_true(flow->flow);
    const template_node_t *inner = template_node_get(flow, "a");
    assert_true(inner->flow);
    /* a flow node's offsets cover its source text */
    assert_int_equal(inner->end - inner->start, strlen("[b, c]"));
    assert_string_equal(template_node_get(root, "block")->text, "text\n");
    assert_null(template_node_get(root, "missing"));
    assert_null(template_node_get(name, "x"));
    assert_string_equal(template_node_describe(list), "a list");
    assert_string_equal(template_node_describe(flow), "a mapping");
    assert_string_equal(template_node_describe(name), "a string");
    assert_string_equal(template_node_describe(NULL), "nothing");
    template_node_destroy(&root);
    template_node_destroy(&root);
    assert_int_equal(template_errors_count(errors), 0);

    /* an empty stream is no document and no error */
    root = parse("# nothing\n", errors, &failed);
    assert_false(failed);
    assert_null(root);
    /* the line offset moves every position (front matter starts on line 2) */
    root = template_yaml_parse("a: 1\nb: [\n", 10, "p.md", 1, errors, &failed);
    assert_true(failed);
    assert_int_equal(template_errors_get(errors, 0)->line, 4);
    template_errors_destroy(&errors);
}

static void expect_refused(const char *text, int line, int column, const char *message)
{
    template_errors_t *errors = template_errors_new();
    bool failed;
    template_node_t *root = parse(text, errors, &failed);
    assert_true(failed);
    assert_null(root);
    assert_int_equal(template_errors_count(errors), 1);
    const template_error_t *e = template_errors_get(errors, 0);
    assert_string_equal(e->file, "t.yaml");
    assert_int_equal(e->line, line);
    assert_int_equal(e->column, column);
    if (strcmp(e->message, message) != 0)
        fail_msg("got '%s'", e->message);
    template_errors_destroy(&errors);
}

static void test_refused(void **state)
{
    (void)state;
    expect_refused("a: &x 1\nb: *x\n", 2, 4,
                   "YAML aliases (*name) are not supported: write the value out");
    expect_refused("a: !!python/object x\n", 1, 4,
                   "unsupported YAML tag (only the core tags !!str, !!int, !!float, !!bool, "
                   "!!null are allowed)");
    expect_refused("a: !!set {x}\n", 1, 4,
                   "unsupported YAML tag on a collection (only !!seq and !!map)");
    expect_refused("a: !!bool maybe\n", 1, 4, "the value does not match its tag");
    expect_refused("{a: 1}: x\n", 1, 1, "mapping keys must be plain text, not lists or mappings");
    expect_refused("a: 1\nb: 2\na: 3\n", 3, 1, "duplicate key 'a' (first at line 1)");
    expect_refused("a: 1\n---\nb: 2\n", 2, 1,
                   "more than one YAML document (a '---' line in the middle?)");
    expect_refused("a: \"x\\0y\"\n", 1, 4, "NUL characters are not allowed");
    expect_refused("a: \xf5\x80\x80\x80\n", 1, 4,
                   "not valid UTF-8 (byte 0xF5)");
    expect_refused("a: b: c\n", 1, 5,
                   "invalid YAML: mapping values are not allowed in this context");
    expect_refused("a: 'open\n", 2, 1,
                   "invalid YAML: found unexpected end of stream (while scanning a quoted "
                   "scalar at line 1, column 4)");
    /* explicit core tags are honoured */
    template_errors_t *errors = template_errors_new();
    bool failed;
    template_node_t *root = parse("a: !!str 12\nb: !!float 3\nc: !!null ''\n", errors, &failed);
    assert_false(failed);
    assert_int_equal(template_node_get(root, "a")->type, TEMPLATE_SCALAR_STRING);
    assert_int_equal(template_node_get(root, "b")->type, TEMPLATE_SCALAR_FLOAT);
    assert_int_equal(template_node_get(root, "c")->type, TEMPLATE_SCALAR_NULL);
    template_node_destroy(&root);
    template_errors_destroy(&errors);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_core_schema),
        cmocka_unit_test(test_tree_and_positions),
        cmocka_unit_test(test_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
