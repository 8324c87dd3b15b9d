/* yamltree: libyaml events → node tree, with the limits that keep it total. */
#include "template/yamltree.h"

#include "common/utf8.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#define CORE_TAG "tag:yaml.org,2002:"

typedef struct {
    const char *text;
    size_t len;
    const char *file;
    int line_offset;
    template_errors_t *errors;
    template_node_t *stack[TEMPLATE_YAML_MAX_DEPTH];
    size_t depth;
    size_t nodes;
    size_t documents;
    template_node_t *root;
    bool failed;
} builder_t;

void template_node_destroy(template_node_t **node_p)
{
    if (!node_p || !*node_p)
        return;
    template_node_t *node = *node_p;
    for (size_t i = 0; i < node->count; i++)
        template_node_destroy(&node->children[i]);
    free(node->children);
    free(node->text);
    free(node);
    *node_p = NULL;
}

static int clamp_line(size_t zero_based, int offset)
{
    long long line = (long long)zero_based + 1 + offset;
    return line > INT_MAX ? INT_MAX : (int)line;
}

static int clamp_column(size_t zero_based)
{
    return zero_based >= INT_MAX ? INT_MAX : (int)zero_based + 1;
}

static void fail_at(builder_t *b, template_error_kind_t kind, yaml_mark_t mark,
                    const char *message)
{
    template_errors_add(b->errors, kind, b->file, clamp_line(mark.line, b->line_offset),
                        clamp_column(mark.column), NULL, "%s", message);
    b->failed = true;
}

/* An error at a node's own place (a collection ends far from where it starts). */
static void fail_node(builder_t *b, template_error_kind_t kind, const template_node_t *node,
                      const char *message)
{
    template_errors_add(b->errors, kind, b->file, node->line, node->column, NULL, "%s", message);
    b->failed = true;
}

static bool is_one_of(const char *text, size_t len, const char *const *words)
{
    for (; *words; words++)
        if (strlen(*words) == len && memcmp(*words, text, len) == 0)
            return true;
    return false;
}

static bool all_in(const char *text, size_t len, const char *set)
{
    if (len == 0)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!strchr(set, text[i]) || text[i] == '\0')
            return false;
    return true;
}

static bool is_float(const char *s, size_t len)
{
    static const char *const special[] = {".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF",
                                          "-.inf", "-.Inf", "-.INF", ".nan", ".NaN", ".NAN",
                                          NULL};
    if (is_one_of(s, len, special))
        return true;
    size_t i = 0, digits = 0;
    if (i < len && (s[i] == '+' || s[i] == '-'))
        i++;
    while (i < len && s[i] >= '0' && s[i] <= '9')
        i++, digits++;
    if (i < len && s[i] == '.') {
        i++;
        size_t fraction = 0;
        while (i < len && s[i] >= '0' && s[i] <= '9')
            i++, fraction++;
        /* "1." is a float, "." is not, ".5" needs its digits */
        if (digits == 0 && fraction == 0)
            return false;
        digits += fraction;
    }
    if (digits == 0)
        return false;
    if (i < len && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < len && (s[i] == '+' || s[i] == '-'))
            i++;
        size_t exponent = 0;
        while (i < len && s[i] >= '0' && s[i] <= '9')
            i++, exponent++;
        if (exponent == 0)
            return false;
    }
    return i == len;
}

template_scalar_type_t template_yaml_resolve(const char *s, size_t len)
{
    static const char *const nulls[] = {"", "~", "null", "Null", "NULL", NULL};
    static const char *const bools[] = {"true", "True", "TRUE", "false", "False", "FALSE", NULL};
    if (is_one_of(s, len, nulls))
        return TEMPLATE_SCALAR_NULL;
    if (is_one_of(s, len, bools))
        return TEMPLATE_SCALAR_BOOL;
    size_t sign = len > 0 && (s[0] == '+' || s[0] == '-') ? 1 : 0;
    if (all_in(s + sign, len - sign, "0123456789"))
        return TEMPLATE_SCALAR_INT;
    if (len > 2 && s[0] == '0' && s[1] == 'o' && all_in(s + 2, len - 2, "01234567"))
        return TEMPLATE_SCALAR_INT;
    if (len > 2 && s[0] == '0' && s[1] == 'x' &&
        all_in(s + 2, len - 2, "0123456789abcdefABCDEF"))
        return TEMPLATE_SCALAR_INT;
    if (is_float(s, len))
        return TEMPLATE_SCALAR_FLOAT;
    return TEMPLATE_SCALAR_STRING;
}

const char *template_node_describe(const template_node_t *node)
{
    if (!node)
        return "nothing";
    if (node->kind == TEMPLATE_NODE_SEQUENCE)
        return "a list";
    if (node->kind == TEMPLATE_NODE_MAPPING)
        return "a mapping";
    switch (node->type) {
    case TEMPLATE_SCALAR_NULL:
        return "null";
    case TEMPLATE_SCALAR_BOOL:
        return "a boolean";
    case TEMPLATE_SCALAR_INT:
        return "an integer";
    case TEMPLATE_SCALAR_FLOAT:
        return "a number";
    case TEMPLATE_SCALAR_STRING:
        break;
    }
    return "a string";
}

const template_node_t *template_node_get(const template_node_t *mapping, const char *key)
{
    if (!mapping || mapping->kind != TEMPLATE_NODE_MAPPING)
        return NULL;
    for (size_t i = 0; i + 1 < mapping->count; i += 2)
        if (strcmp(mapping->children[i]->text, key) == 0)
            return mapping->children[i + 1];
    return NULL;
}

static template_node_t *node_new(builder_t *b, template_node_kind_t kind, const yaml_event_t *ev)
{
    if (b->nodes == TEMPLATE_YAML_MAX_NODES) {
        char message[96];
        snprintf(message, sizeof message, "document too complex: more than %d YAML nodes",
                 TEMPLATE_YAML_MAX_NODES);
        fail_at(b, TEMPLATE_ERROR_TOO_LARGE, ev->start_mark, message);
        return NULL;
    }
    template_node_t *node = calloc(1, sizeof *node);
    if (!node) {
        fail_at(b, TEMPLATE_ERROR_TOO_LARGE, ev->start_mark, "out of memory");
        return NULL;
    }
    b->nodes++;
    node->kind = kind;
    node->line = clamp_line(ev->start_mark.line, b->line_offset);
    node->column = clamp_column(ev->start_mark.column);
    node->start = ev->start_mark.index;
    node->end = ev->end_mark.index;
    return node;
}

/* Checks a tag against the core schema; the scalar's resolved type, or -1. */
static int scalar_type(builder_t *b, const yaml_event_t *ev, const char *text, size_t len)
{
    const char *tag = (const char *)ev->data.scalar.tag;
    bool plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
    if (!tag)
        return plain ? (int)template_yaml_resolve(text, len) : TEMPLATE_SCALAR_STRING;
    if (strcmp(tag, "!") == 0 || strcmp(tag, CORE_TAG "str") == 0)
        return TEMPLATE_SCALAR_STRING;
    static const struct {
        const char *name;
        template_scalar_type_t type;
    } core[] = {{CORE_TAG "null", TEMPLATE_SCALAR_NULL},
                {CORE_TAG "bool", TEMPLATE_SCALAR_BOOL},
                {CORE_TAG "int", TEMPLATE_SCALAR_INT},
                {CORE_TAG "float", TEMPLATE_SCALAR_FLOAT}};
    for (size_t i = 0; i < sizeof core / sizeof core[0]; i++) {
        if (strcmp(tag, core[i].name) != 0)
            continue;
        template_scalar_type_t resolved = template_yaml_resolve(text, len);
        if (resolved == core[i].type ||
            (core[i].type == TEMPLATE_SCALAR_FLOAT && resolved == TEMPLATE_SCALAR_INT))
            return (int)core[i].type;
        fail_at(b, TEMPLATE_ERROR_INVALID, ev->start_mark,
                "the value does not match its tag");
        return -1;
    }
    fail_at(b, TEMPLATE_ERROR_INVALID, ev->start_mark,
            "unsupported YAML tag (only the core tags !!str, !!int, !!float, !!bool, !!null "
            "are allowed)");
    return -1;
}

static bool collection_tag_ok(builder_t *b, const yaml_event_t *ev, const char *tag,
                              const char *expected)
{
    if (!tag || strcmp(tag, "!") == 0 || strcmp(tag, expected) == 0)
        return true;
    fail_at(b, TEMPLATE_ERROR_INVALID, ev->start_mark,
            "unsupported YAML tag on a collection (only !!seq and !!map)");
    return false;
}

/* Hangs a finished node under the open collection (or makes it the root). */
static bool attach(builder_t *b, template_node_t *node, const yaml_event_t *ev)
{
    if (b->depth == 0) {
        b->root = node;
        return true;
    }
    template_node_t *parent = b->stack[b->depth - 1];
    if (parent->kind == TEMPLATE_NODE_MAPPING && parent->count % 2 == 0) {
        if (node->kind != TEMPLATE_NODE_SCALAR) {
            fail_node(b, TEMPLATE_ERROR_INVALID, node,
                      "mapping keys must be plain text, not lists or mappings");
            template_node_destroy(&node);
            return false;
        }
        if (parent->count / 2 == TEMPLATE_YAML_MAX_KEYS) {
            fail_node(b, TEMPLATE_ERROR_TOO_LARGE, node, "too many keys in one mapping");
            template_node_destroy(&node);
            return false;
        }
        for (size_t i = 0; i < parent->count; i += 2) {
            if (strcmp(parent->children[i]->text, node->text) != 0)
                continue;
            char *message = NULL;
            if (asprintf(&message, "duplicate key '%s' (first at line %d)", node->text,
                         parent->children[i]->line) < 0)
                message = NULL;
            fail_node(b, TEMPLATE_ERROR_INVALID, node, message ? message : "duplicate key");
            free(message);
            template_node_destroy(&node);
            return false;
        }
    }
    if (parent->count == parent->cap) {
        size_t cap = parent->cap ? parent->cap * 2 : 4;
        template_node_t **grown = realloc(parent->children, cap * sizeof *grown);
        if (!grown) {
            fail_at(b, TEMPLATE_ERROR_TOO_LARGE, ev->start_mark, "out of memory");
            template_node_destroy(&node);
            return false;
        }
        parent->children = grown;
        parent->cap = cap;
    }
    parent->children[parent->count++] = node;
    return true;
}

static bool on_scalar(builder_t *b, const yaml_event_t *ev)
{
    const char *value = (const char *)ev->data.scalar.value;
    size_t len = ev->data.scalar.length;
    if (memchr(value, '\0', len)) {
        fail_at(b, TEMPLATE_ERROR_INVALID, ev->start_mark, "NUL characters are not allowed");
        return false;
    }
    int type = scalar_type(b, ev, value, len);
    if (type < 0)
        return false;
    template_node_t *node = node_new(b, TEMPLATE_NODE_SCALAR, ev);
    if (!node)
        return false;
    node->text = malloc(len + 1);
    if (!node->text) {
        template_node_destroy(&node);
        fail_at(b, TEMPLATE_ERROR_TOO_LARGE, ev->start_mark, "out of memory");
        return false;
    }
    memcpy(node->text, value, len);
    node->text[len] = '\0';
    node->len = len;
    node->type = (template_scalar_type_t)type;
    return attach(b, node, ev);
}

static bool on_start(builder_t *b, const yaml_event_t *ev, template_node_kind_t kind)
{
    const char *tag = (const char *)(kind == TEMPLATE_NODE_SEQUENCE
                                         ? ev->data.sequence_start.tag
                                         : ev->data.mapping_start.tag);
    if (!collection_tag_ok(b, ev, tag,
                           kind == TEMPLATE_NODE_SEQUENCE ? CORE_TAG "seq" : CORE_TAG "map"))
        return false;
    if (b->depth == TEMPLATE_YAML_MAX_DEPTH) {
        char message[64];
        snprintf(message, sizeof message, "nesting deeper than %d levels",
                 TEMPLATE_YAML_MAX_DEPTH);
        fail_at(b, TEMPLATE_ERROR_INVALID, ev->start_mark, message);
        return false;
    }
    template_node_t *node = node_new(b, kind, ev);
    if (!node)
        return false;
    node->flow = kind == TEMPLATE_NODE_SEQUENCE
                     ? ev->data.sequence_start.style == YAML_FLOW_SEQUENCE_STYLE
                     : ev->data.mapping_start.style == YAML_FLOW_MAPPING_STYLE;
    b->stack[b->depth++] = node;
    return true;
}

static bool on_end(builder_t *b, const yaml_event_t *ev)
{
    template_node_t *node = b->stack[--b->depth];
    node->end = ev->end_mark.index;
    return attach(b, node, ev);
}

/* One event into the tree; false stops the parse (an error was added). */
static bool on_event(builder_t *b, const yaml_event_t *ev)
{
    switch (ev->type) {
    case YAML_DOCUMENT_START_EVENT:
        if (++b->documents > 1) {
            fail_at(b, TEMPLATE_ERROR_SYNTAX, ev->start_mark,
                    "more than one YAML document (a '---' line in the middle?)");
            return false;
        }
        return true;
    case YAML_ALIAS_EVENT:
        fail_at(b, TEMPLATE_ERROR_INVALID, ev->start_mark,
                "YAML aliases (*name) are not supported: write the value out");
        return false;
    case YAML_SCALAR_EVENT:
        return on_scalar(b, ev);
    case YAML_SEQUENCE_START_EVENT:
        return on_start(b, ev, TEMPLATE_NODE_SEQUENCE);
    case YAML_MAPPING_START_EVENT:
        return on_start(b, ev, TEMPLATE_NODE_MAPPING);
    case YAML_SEQUENCE_END_EVENT:
    case YAML_MAPPING_END_EVENT:
        return on_end(b, ev);
    default:
        return true;
    }
}

/* libyaml's complaint with both places it knows: where it stopped and what it was
 * reading ("while parsing a block mapping" at the mapping's start). */
static void syntax_error(builder_t *b, const yaml_parser_t *parser)
{
    if (parser->error == YAML_MEMORY_ERROR) {
        template_errors_add(b->errors, TEMPLATE_ERROR_TOO_LARGE, b->file, 0, 0, NULL,
                            "out of memory while parsing YAML");
        b->failed = true;
        return;
    }
    int line, column;
    if (parser->error == YAML_READER_ERROR) {
        syn_utf8_position(b->text, b->len, parser->problem_offset, &line, &column);
        line += b->line_offset;
    } else {
        line = clamp_line(parser->problem_mark.line, b->line_offset);
        column = clamp_column(parser->problem_mark.column);
    }
    const char *problem = parser->problem ? parser->problem : "unknown error";
    if (parser->context && parser->error != YAML_READER_ERROR)
        template_errors_add(b->errors, TEMPLATE_ERROR_SYNTAX, b->file, line, column, NULL,
                            "invalid YAML: %s (%s at line %d, column %d)", problem,
                            parser->context,
                            clamp_line(parser->context_mark.line, b->line_offset),
                            clamp_column(parser->context_mark.column));
    else
        template_errors_add(b->errors, TEMPLATE_ERROR_SYNTAX, b->file, line, column, NULL,
                            "invalid YAML: %s", problem);
    b->failed = true;
}

template_node_t *template_yaml_parse(const char *text, size_t len, const char *file,
                                     int line_offset, template_errors_t *errors, bool *failed)
{
    builder_t b = {.text = text, .len = len, .file = file, .line_offset = line_offset,
                   .errors = errors};
    *failed = true;
    size_t bad;
    if (!syn_utf8_valid(text, len, &bad)) {
        int line, column;
        syn_utf8_position(text, len, bad, &line, &column);
        char problem[32];
        template_errors_add(errors, TEMPLATE_ERROR_SYNTAX, file, line + line_offset, column, NULL,
                            "%s", syn_utf8_problem(text, bad, problem));
        return NULL;
    }
    yaml_parser_t parser;
    if (!yaml_parser_initialize(&parser)) {
        template_errors_add(errors, TEMPLATE_ERROR_TOO_LARGE, file, 0, 0, NULL, "out of memory");
        return NULL;
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    yaml_parser_set_encoding(&parser, YAML_UTF8_ENCODING);
    bool done = false;
    while (!done && !b.failed) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&parser, &ev)) {
            syntax_error(&b, &parser);
            break;
        }
        done = ev.type == YAML_STREAM_END_EVENT;
        on_event(&b, &ev);
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&parser);
    while (b.depth > 0)
        template_node_destroy(&b.stack[--b.depth]);
    if (b.failed) {
        template_node_destroy(&b.root);
        return NULL;
    }
    *failed = false;
    return b.root;
}
