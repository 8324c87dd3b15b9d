/* export: a small YAML writer for the fixed shape of a workflow. Writing it by hand
 * (rather than with libyaml's emitter) keeps prompts readable: literal blocks may
 * hold tabs and trailing spaces, which the emitter turns into one escaped line. */
#include "template/export.h"

#include "common/buffer.h"
#include "template/spec.h"
#include "template/yamltree.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char *data;
    size_t len, cap;
    bool failed;
} out_t;

/* The order keys are written in (names of the stored workflow; their YAML names are
 * the workflow specification's, template/spec.c). Input and phase lists come after
 * the workflow's own keys. */
typedef struct {
    const spec_object_t *spec;
    const char *const *keys; /* NULL-terminated */
} key_order_t;

static const char *const workflow_order[] = {
    "id",         "name",           "description",  "workflow_type", "classification",
    "repository", "requires_repos", "project_name", "max_concurrent", "max_budget_usd",
    "template_version", "deliverables", NULL};
static const key_order_t workflow_keys = {&spec_workflow, workflow_order};

static const char *const input_order[] = {"name", "description", "required", "default", NULL};
static const key_order_t input_keys = {&spec_input, input_order};

/* Settings first, the (long) prompt last, so a reader sees the shape at once. */
static const char *const phase_order[] = {"phase_id",
                                          "name",
                                          "order",
                                          "description",
                                          "model",
                                          "provider",
                                          "agent",
                                          "inputs",
                                          "outputs",
                                          "timeout_seconds",
                                          "max_attempts",
                                          "retries",
                                          "retry_backoff_seconds",
                                          "max_tokens",
                                          "argument_hint",
                                          "allowed_tools",
                                          "execution_type",
                                          "approval",
                                          "input_artifacts",
                                          "output_artifacts",
                                          "prompt_template",
                                          NULL};
static const key_order_t phase_keys = {&spec_phase, phase_order};

static void put(out_t *o, const char *text, size_t n)
{
    if (o->failed)
        return;
    if (!syn_buffer_reserve(&o->data, &o->cap, o->len + n + 1, 1024)) {
        o->failed = true;
        return;
    }
    memcpy(o->data + o->len, text, n);
    o->len += n;
    o->data[o->len] = '\0';
}

static void puts_(out_t *o, const char *text)
{
    put(o, text, strlen(text));
}

static void indent(out_t *o, int n)
{
    for (int i = 0; i < n; i++)
        put(o, " ", 1);
}

/* The code point of the UTF-8 sequence at s (valid: jansson checked it) and its
 * length. */
static unsigned decode(const unsigned char *s, size_t *n)
{
    if (s[0] < 0x80) {
        *n = 1;
        return s[0];
    }
    if (s[0] < 0xE0) {
        *n = 2;
        return (unsigned)(s[0] & 0x1F) << 6 | (s[1] & 0x3F);
    }
    if (s[0] < 0xF0) {
        *n = 3;
        return (unsigned)(s[0] & 0x0F) << 12 | (unsigned)(s[1] & 0x3F) << 6 | (s[2] & 0x3F);
    }
    *n = 4;
    return (unsigned)(s[0] & 0x07) << 18 | (unsigned)(s[1] & 0x3F) << 12 |
           (unsigned)(s[2] & 0x3F) << 6 | (s[3] & 0x3F);
}

/* Characters YAML allows unescaped (c-printable), line feeds aside; and those it
 * reads as line breaks (which a literal block would not keep). */
static bool yaml_printable(unsigned c)
{
    return c == '\t' || (c >= 0x20 && c <= 0x7E) || (c >= 0xA0 && c <= 0xD7FF && c != 0x2028 &&
                                                      c != 0x2029) ||
           (c >= 0xE000 && c <= 0xFFFD && c != 0xFEFF) || (c >= 0x10000 && c <= 0x10FFFF);
}

static void put_double_quoted(out_t *o, const char *text, size_t len)
{
    put(o, "\"", 1);
    const unsigned char *s = (const unsigned char *)text;
    for (size_t i = 0; i < len;) {
        size_t n;
        unsigned c = decode(s + i, &n);
        char esc[16];
        if (c == '"' || c == '\\') {
            snprintf(esc, sizeof esc, "\\%c", (char)c);
            puts_(o, esc);
        } else if (c == '\n') {
            puts_(o, "\\n");
        } else if (c == '\t') {
            puts_(o, "\\t");
        } else if (c == '\r') {
            puts_(o, "\\r");
        } else if (yaml_printable(c)) {
            put(o, text + i, n);
        } else if (c <= 0xFF) {
            snprintf(esc, sizeof esc, "\\x%02X", c);
            puts_(o, esc);
        } else if (c <= 0xFFFF) {
            snprintf(esc, sizeof esc, "\\u%04X", c);
            puts_(o, esc);
        } else {
            snprintf(esc, sizeof esc, "\\U%08X", c);
            puts_(o, esc);
        }
        i += n;
    }
    put(o, "\"", 1);
}

/* Words other YAML readers (1.1: PyYAML, Ruby) take for booleans. */
static bool is_yaml11_word(const char *text)
{
    static const char *const words[] = {"y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No",
                                        "NO", "on", "On", "ON", "off", "Off", "OFF", NULL};
    for (const char *const *w = words; *w; w++)
        if (strcmp(*w, text) == 0)
            return true;
    return false;
}

/* Plain (unquoted) only when no YAML reader could take it for anything but this
 * string: conservative, since quoting is always correct. */
static bool plain_ok(const char *text, size_t len, bool in_flow)
{
    if (len == 0 || strlen(text) != len)
        return false;
    if (template_yaml_resolve(text, len) != TEMPLATE_SCALAR_STRING || is_yaml11_word(text))
        return false;
    unsigned char first = (unsigned char)text[0];
    if (!(first >= 0x80 || (first >= 'A' && first <= 'Z') || (first >= 'a' && first <= 'z') ||
          first == '_' || first == '/' || first == '$' || first == '('))
        return false;
    if (text[len - 1] == ' ')
        return false;
    const unsigned char *s = (const unsigned char *)text;
    for (size_t i = 0; i < len;) {
        size_t n;
        unsigned c = decode(s + i, &n);
        if (c == '\t' || !yaml_printable(c) || c == '"' || c == '\'' || c == '\\' || c == '`')
            return false;
        if (c == ':' && (i + 1 == len || strchr(" ,[]{}", text[i + 1])))
            return false;
        if (c == '#' && i > 0 && text[i - 1] == ' ')
            return false;
        if (in_flow && strchr(",[]{}", (int)c) && c < 0x80)
            return false;
        i += n;
    }
    return true;
}

/* A literal block keeps every character of text except carriage returns and the
 * other YAML line breaks; printable characters only. */
static bool literal_ok(const char *text, size_t len)
{
    if (strlen(text) != len)
        return false;
    const unsigned char *s = (const unsigned char *)text;
    for (size_t i = 0; i < len;) {
        size_t n;
        unsigned c = decode(s + i, &n);
        if (c != '\n' && !yaml_printable(c))
            return false;
        i += n;
    }
    return true;
}

/* "|", with an indentation indicator when the first line starts with a space, a
 * tab or is empty (YAML would guess the indentation from it), and the chomping
 * indicator that keeps exactly the trailing line breaks text has. Each line is
 * written at indentation `at`. */
static void put_literal(out_t *o, const char *text, size_t len, int at)
{
    put(o, "|", 1);
    if (text[0] == ' ' || text[0] == '\t' || text[0] == '\n')
        put(o, "2", 1);
    bool ends_with_break = len > 0 && text[len - 1] == '\n';
    bool only_one_break = ends_with_break && len >= 2 && text[len - 2] != '\n';
    if (!ends_with_break)
        put(o, "-", 1);
    else if (!only_one_break)
        put(o, "+", 1);
    put(o, "\n", 1);
    const char *p = text, *end = text + len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = (size_t)((nl ? nl : end) - p);
        if (n > 0) {
            indent(o, at);
            put(o, p, n);
        }
        put(o, "\n", 1);
        p += n + (nl ? 1 : 0);
    }
}

/* Writes a string value; the caller has written "key: " (or "- ", or "[" …). The
 * text ends where it ends: a literal block ends with its own line break, so
 * *ended_line tells the caller not to add one. */
static void put_string(out_t *o, const char *text, size_t len, int block_indent, bool in_flow,
                       bool *ended_line)
{
    *ended_line = false;
    if (!in_flow && memchr(text, '\n', len) && literal_ok(text, len)) {
        put_literal(o, text, len, block_indent);
        *ended_line = true;
    } else if (plain_ok(text, len, in_flow)) {
        put(o, text, len);
    } else {
        put_double_quoted(o, text, len);
    }
}

static void put_number(out_t *o, const json_t *value)
{
    char text[64];
    if (json_is_integer(value)) {
        snprintf(text, sizeof text, "%lld", (long long)json_integer_value(value));
    } else {
        double d = json_real_value(value);
        for (int precision = 15; precision <= 17; precision++) {
            snprintf(text, sizeof text, "%.*g", precision, d);
            if (strtod(text, NULL) == d)
                break;
        }
        if (!strpbrk(text, ".eE"))
            strcat(text, ".0"); /* stays a float when read back */
    }
    puts_(o, text);
}

/* A value inside a flow collection: a scalar, [a, b] or {k: v}, nested as deep as the
 * value is (a phase's inputs, the deliverables); false for null. */
static bool put_flow(out_t *o, const json_t *value)
{
    bool ignored;
    if (json_is_string(value)) {
        put_string(o, json_string_value(value), json_string_length(value), 0, true, &ignored);
    } else if (json_is_number(value)) {
        put_number(o, value);
    } else if (json_is_boolean(value)) {
        puts_(o, json_is_true(value) ? "true" : "false");
    } else if (json_is_array(value)) {
        put(o, "[", 1);
        size_t i;
        const json_t *item;
        json_array_foreach(value, i, item) {
            if (i)
                put(o, ", ", 2);
            if (!put_flow(o, item))
                return false;
        }
        put(o, "]", 1);
    } else if (json_is_object(value)) {
        put(o, "{", 1);
        const char *key;
        const json_t *item;
        bool first = true;
        json_object_foreach((json_t *)value, key, item) {
            if (!first)
                put(o, ", ", 2);
            first = false;
            put_string(o, key, strlen(key), 0, true, &ignored);
            put(o, ": ", 2);
            if (!put_flow(o, item))
                return false;
        }
        put(o, "}", 1);
    } else {
        return false;
    }
    return true;
}

/* A scalar (a string as a block when it reads better), or a list or object in flow
 * style; false for other shapes. */
static bool put_value(out_t *o, const json_t *value, int block_indent, bool *ended_line)
{
    *ended_line = false;
    if (json_is_string(value)) {
        put_string(o, json_string_value(value), json_string_length(value), block_indent, false,
                   ended_line);
        return true;
    }
    return put_flow(o, value);
}

static bool is_skipped(const json_t *value)
{
    return !value || json_is_null(value) || (json_is_array(value) && json_array_size(value) == 0);
}

/* The keys of one object in table order; the first key follows "- " when
 * first_inline (a list item), the rest are at indentation at. */
static bool put_object(out_t *o, const json_t *object, const key_order_t *keys, int at,
                       bool first_inline, char *why, size_t why_size)
{
    bool first = true;
    for (const char *const *k = keys->keys; *k; k++) {
        const json_t *value = json_object_get(object, *k);
        if (is_skipped(value))
            continue;
        if (!(first && first_inline))
            indent(o, at);
        first = false;
        puts_(o, spec_yaml_key(spec_field(keys->spec, *k)));
        puts_(o, ": ");
        bool ended_line;
        if (!put_value(o, value, at + 2, &ended_line)) {
            snprintf(why, why_size, "%s holds a null inside a list or object", *k);
            return false;
        }
        if (!ended_line)
            put(o, "\n", 1);
    }
    if (first && first_inline)
        put(o, "{}\n", 3);
    return true;
}

static bool put_list(out_t *o, const json_t *list, const char *yaml_key,
                     const key_order_t *keys, char *why, size_t why_size)
{
    puts_(o, yaml_key);
    puts_(o, ":\n");
    size_t i;
    const json_t *item;
    json_array_foreach(list, i, item) {
        if (!json_is_object(item)) {
            snprintf(why, why_size, "%s[%zu] is not an object", yaml_key, i);
            return false;
        }
        puts_(o, "  - ");
        if (!put_object(o, item, keys, 4, true, why, why_size))
            return false;
    }
    return true;
}

char *template_export_yaml(const json_t *workflow, size_t *len, char *why, size_t why_size)
{
    if (!json_is_object(workflow)) {
        snprintf(why, why_size, "a workflow is a JSON object");
        return NULL;
    }
    const json_t *phases = json_object_get(workflow, "phases");
    if (!json_is_array(phases) || json_array_size(phases) == 0) {
        snprintf(why, why_size, "the workflow has no phases");
        return NULL;
    }
    const json_t *inputs = json_object_get(workflow, "input_declarations");
    out_t o = {0};
    bool ok = put_object(&o, workflow, &workflow_keys, 0, false, why, why_size);
    if (ok && json_is_array(inputs) && json_array_size(inputs) > 0)
        ok = put_list(&o, inputs, "inputs", &input_keys, why, why_size);
    else if (ok && inputs && !json_is_null(inputs) && !json_is_array(inputs)) {
        snprintf(why, why_size, "input_declarations is not a list");
        ok = false;
    }
    if (ok)
        ok = put_list(&o, phases, "phases", &phase_keys, why, why_size);
    if (ok && o.failed) {
        snprintf(why, why_size, "out of memory");
        ok = false;
    }
    if (!ok) {
        free(o.data);
        return NULL;
    }
    if (len)
        *len = o.len;
    return o.data;
}
