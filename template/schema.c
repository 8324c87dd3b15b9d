/* schema: node → JSON value conversions and the messages when they fail. */
#include "template/schema.h"

#include "common/ids.h"
#include "common/utf8.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SUGGEST_MAX_LEN 64

static void add_error(const template_origin_t *origin, const template_node_t *node,
                      const char *path, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void add_error(const template_origin_t *origin, const template_node_t *node,
                      const char *path, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *message = NULL;
    if (vasprintf(&message, fmt, ap) < 0)
        message = NULL;
    va_end(ap);
    template_errors_add(origin->errors, TEMPLATE_ERROR_INVALID, origin->file,
                        node ? node->line : 0, node ? node->column : 0, path, "%s",
                        message ? message : "invalid value");
    free(message);
}

/* Text of a scalar that may stand for a string: strings, and numbers as written. */
static bool is_texty(const template_node_t *node)
{
    return node->kind == TEMPLATE_NODE_SCALAR &&
           (node->type == TEMPLATE_SCALAR_STRING || node->type == TEMPLATE_SCALAR_INT ||
            node->type == TEMPLATE_SCALAR_FLOAT);
}

static int expected(const template_origin_t *origin, const template_node_t *node,
                    const char *path, const char *what)
{
    const char *hint = "";
    if (node->kind == TEMPLATE_NODE_SCALAR && node->type == TEMPLATE_SCALAR_BOOL &&
        strstr(what, "string"))
        hint = " (put it in quotes to mean the text)";
    add_error(origin, node, path, "expected %s, got %s%s", what, template_node_describe(node),
              hint);
    return -1;
}

static json_t *string_value(const template_node_t *node)
{
    return json_stringn(node->text, node->len);
}

static int convert_text(const spec_field_t *field, const template_node_t *node,
                        const char *path, const template_origin_t *origin, json_t **out)
{
    if (!is_texty(node))
        return expected(origin, node, path, "a string");
    if (field->min_len > 0 && node->len == 0) {
        add_error(origin, node, path, "must not be empty");
        return -1;
    }
    if (field->kind == SPEC_ID && !syn_id_is_valid(node->text)) {
        add_error(origin, node, path, "'%.120s' is not a valid id: it must match %s", node->text,
                  SYN_ID_PATTERN);
        return -1;
    }
    *out = string_value(node);
    return *out ? 1 : -1;
}

static long long min_of(const spec_field_t *field)
{
    return field->has_min ? field->min : LLONG_MIN;
}

static long long max_of(const spec_field_t *field)
{
    return field->has_max ? field->max : LLONG_MAX;
}

static int convert_int(const spec_field_t *field, const template_node_t *node,
                       const char *path, const template_origin_t *origin, json_t **out)
{
    if (node->kind != TEMPLATE_NODE_SCALAR || node->type != TEMPLATE_SCALAR_INT)
        return expected(origin, node, path, "an integer");
    const char *digits = node->text;
    int base = 10;
    if (strncmp(digits, "0x", 2) == 0 || strncmp(digits, "0o", 2) == 0) {
        base = digits[1] == 'x' ? 16 : 8;
        digits += 2;
    }
    errno = 0;
    char *end;
    long long value = strtoll(digits, &end, base);
    if (errno == ERANGE || *end || value < min_of(field) || value > max_of(field) ||
        (field->min_exclusive && value == field->min)) {
        if (field->min_exclusive)
            add_error(origin, node, path, "must be more than %lld, at most %lld (got %.40s)",
                      field->min, field->max, node->text);
        else if (!field->has_max)
            add_error(origin, node, path, "must be at least %lld (got %.40s)", field->min,
                      node->text);
        else
            add_error(origin, node, path, "must be between %lld and %lld (got %.40s)",
                      field->min, field->max, node->text);
        return -1;
    }
    *out = json_integer((json_int_t)value);
    return 1;
}

static int convert_number(const spec_field_t *field, const template_node_t *node,
                          const char *path, const template_origin_t *origin, json_t **out)
{
    if (node->kind == TEMPLATE_NODE_SCALAR && node->type == TEMPLATE_SCALAR_INT)
        return convert_int(field, node, path, origin, out);
    if (node->kind != TEMPLATE_NODE_SCALAR || node->type != TEMPLATE_SCALAR_FLOAT)
        return expected(origin, node, path, "a number");
    /* strtod does not know YAML's .inf and .nan (it reads "." as 0) */
    bool special = strchr(node->text, 'n') || strchr(node->text, 'N');
    double value = special ? INFINITY : strtod(node->text, NULL);
    if (special || !isfinite(value) || value < (double)min_of(field) ||
        value > (double)max_of(field) || (field->min_exclusive && value == (double)field->min)) {
        add_error(origin, node, path,
                  field->min_exclusive ? "must be a number more than %lld, at most %lld (got %.40s)"
                                       : "must be a number from %lld to %lld (got %.40s)",
                  field->min, field->max, node->text);
        return -1;
    }
    *out = json_real(value);
    return *out ? 1 : -1;
}

static bool same_letter(char a, char b)
{
    return tolower((unsigned char)a) == tolower((unsigned char)b);
}

/* Edits between a and b, ignoring case: a letter inserted, deleted or replaced, or two
 * neighbours swapped ("modle" is one edit from "model", the commonest slip of all). */
static int edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > SUGGEST_MAX_LEN || lb > SUGGEST_MAX_LEN)
        return SUGGEST_MAX_LEN;
    /* three rows of the table: i - 2, i - 1 and i (row i - 2 is read from i = 2 on) */
    int rows[3][SUGGEST_MAX_LEN + 1];
    for (size_t j = 0; j <= lb; j++)
        rows[0][j] = (int)j;
    for (size_t i = 1; i <= la; i++) {
        int *before = rows[(i + 1) % 3], *above = rows[(i + 2) % 3], *row = rows[i % 3];
        row[0] = (int)i;
        for (size_t j = 1; j <= lb; j++) {
            int best = above[j - 1] + (same_letter(a[i - 1], b[j - 1]) ? 0 : 1);
            if (above[j] + 1 < best)
                best = above[j] + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            if (i > 1 && j > 1 && same_letter(a[i - 1], b[j - 2]) &&
                same_letter(a[i - 2], b[j - 1]) && before[j - 2] + 1 < best)
                best = before[j - 2] + 1;
            row[j] = best;
        }
    }
    return rows[la % 3][lb];
}

/* The closest candidate within a third of the word's length (at least 1, at most 3
 * edits), or NULL. */
const char *template_schema_closest(const char *word, const char *const *candidates,
                                    size_t count)
{
    int limit = (int)strlen(word) / 3;
    if (limit < 1)
        limit = 1;
    if (limit > 3)
        limit = 3;
    const char *best = NULL;
    int best_distance = limit + 1;
    for (size_t i = 0; i < count; i++) {
        int d = edit_distance(word, candidates[i]);
        if (d < best_distance) {
            best = candidates[i];
            best_distance = d;
        }
    }
    return best;
}

static int convert_choice(const spec_field_t *field, const template_node_t *node,
                          const char *path, const template_origin_t *origin, json_t **out)
{
    if (!is_texty(node))
        return expected(origin, node, path, "a string");
    size_t count = 0;
    char list[256] = "";
    for (const char *const *c = field->choices; *c; c++, count++) {
        if (strcmp(*c, node->text) == 0) {
            *out = string_value(node);
            return *out ? 1 : -1;
        }
        size_t used = strlen(list);
        snprintf(list + used, sizeof list - used, "%s%s", used ? ", " : "", *c);
    }
    const char *near = template_schema_closest(node->text, field->choices, count);
    if (near)
        add_error(origin, node, path, "'%.60s' is not one of: %s; did you mean '%s'?",
                  node->text, list, near);
    else
        add_error(origin, node, path, "'%.60s' is not one of: %s", node->text, list);
    return -1;
}

/* Appends the comma-separated names of text ("Read, Bash(git add:*)") to list;
 * commas inside parentheses belong to the name. */
static bool split_comma_list(const char *text, json_t *list)
{
    int depth = 0;
    const char *start = text;
    for (const char *p = text;; p++) {
        if (*p == '(')
            depth++;
        else if (*p == ')' && depth > 0)
            depth--;
        if (*p && (*p != ',' || depth > 0))
            continue;
        const char *a = start, *b = p;
        while (a < b && isspace((unsigned char)*a))
            a++;
        while (b > a && isspace((unsigned char)b[-1]))
            b--;
        if (b > a && json_array_append_new(list, json_stringn(a, (size_t)(b - a))) != 0)
            return false;
        if (!*p)
            return true;
        start = p + 1;
    }
}

static int convert_tools(bool comma_list, const template_node_t *node, const char *path,
                         const template_origin_t *origin, json_t **out)
{
    json_t *list = json_array();
    if (comma_list && is_texty(node)) {
        if (!split_comma_list(node->text, list)) {
            json_decref(list);
            return -1;
        }
        *out = list;
        return 1;
    }
    if (node->kind != TEMPLATE_NODE_SEQUENCE) {
        json_decref(list);
        return expected(origin, node, path,
                        comma_list ? "a list of tool names or \"A, B\""
                                          : "a list of tool names (e.g. [Read, Grep])");
    }
    int rc = 1;
    for (size_t i = 0; i < node->count; i++) {
        const template_node_t *item = node->children[i];
        char item_path[256];
        snprintf(item_path, sizeof item_path, "%s[%zu]", path, i);
        if (!is_texty(item)) {
            expected(origin, item, item_path, "a tool name");
            rc = -1;
        } else if (rc == 1) {
            json_array_append_new(list, string_value(item));
        }
    }
    if (rc == 1)
        *out = list;
    else
        json_decref(list);
    return rc;
}

/* A hint given as a flow list ("[message]", the Claude Code habit) keeps its text. */
static int convert_hint(const spec_field_t *field, const template_node_t *node,
                        const char *path, const template_origin_t *origin, json_t **out)
{
    if (node->kind == TEMPLATE_NODE_SEQUENCE && node->flow && origin->text) {
        size_t start = syn_utf8_byte_offset(origin->text, origin->len, node->start);
        size_t end = syn_utf8_byte_offset(origin->text, origin->len, node->end);
        if (end > start) {
            *out = json_stringn(origin->text + start, end - start);
            if (*out)
                return 1;
        }
    }
    return convert_text(field, node, path, origin, out);
}

/* A repository: a URL (or owner/repo) as text, or a mapping {url, ref}; the same
 * stored shape as spec.c's check gives a JSON body: {url, ref?}. */
static int convert_repository(const template_node_t *node, const char *path,
                              const template_origin_t *origin, json_t **out)
{
    if (is_texty(node)) {
        if (node->len == 0) {
            add_error(origin, node, path, "must not be empty");
            return -1;
        }
        *out = json_pack("{s:o}", "url", string_value(node));
        return *out ? 1 : -1;
    }
    if (node->kind != TEMPLATE_NODE_MAPPING)
        return expected(origin, node, path, "a repository URL or a mapping {url, ref}");
    json_t *repo = json_object();
    int rc = 1;
    for (size_t i = 0; i + 1 < node->count; i += 2) {
        const template_node_t *key = node->children[i], *value = node->children[i + 1];
        char at[256];
        snprintf(at, sizeof at, "%s.%s", path, key->text);
        bool is_url = strcmp(key->text, "url") == 0, is_ref = strcmp(key->text, "ref") == 0;
        if (!is_url && !is_ref) {
            add_error(origin, key, at, "unknown key '%.80s' in repository (known: url, ref)",
                      key->text);
            rc = -1;
        } else if (value->kind == TEMPLATE_NODE_SCALAR && value->type == TEMPLATE_SCALAR_NULL) {
            continue;
        } else if (!is_texty(value) || value->len == 0) {
            add_error(origin, value, at, "expected a non-empty string, got %s",
                      template_node_describe(value));
            rc = -1;
        } else {
            json_object_set_new(repo, key->text, string_value(value));
        }
    }
    if (rc == 1 && !json_object_get(repo, "url")) {
        char at[256];
        snprintf(at, sizeof at, "%s.url", path);
        add_error(origin, node, at, "missing required key 'url' in repository");
        rc = -1;
    }
    if (rc == 1)
        *out = repo;
    else
        json_decref(repo);
    return rc;
}

int template_schema_value(const spec_field_t *field, template_form_t form,
                          const template_node_t *node, const char *path,
                          const template_origin_t *origin, json_t **out)
{
    *out = NULL;
    if (node->kind == TEMPLATE_NODE_SCALAR && node->type == TEMPLATE_SCALAR_NULL)
        return 0;
    if (form == TEMPLATE_FORM_HINT)
        return convert_hint(field, node, path, origin, out);
    switch (field->kind) {
    case SPEC_STRING:
    case SPEC_ID:
        return convert_text(field, node, path, origin, out);
    case SPEC_INT:
        return convert_int(field, node, path, origin, out);
    case SPEC_NUMBER:
        return convert_number(field, node, path, origin, out);
    case SPEC_BOOL:
        if (node->kind != TEMPLATE_NODE_SCALAR || node->type != TEMPLATE_SCALAR_BOOL)
            return expected(origin, node, path, "true or false");
        *out = json_boolean(node->text[0] == 't' || node->text[0] == 'T');
        return 1;
    case SPEC_LITERAL:
    case SPEC_ENUM:
        return convert_choice(field, node, path, origin, out);
    case SPEC_STRING_LIST:
        return convert_tools(form == TEMPLATE_FORM_COMMA_LIST, node, path, origin, out);
    case SPEC_REPOSITORY:
        return convert_repository(node, path, origin, out);
    case SPEC_STRING_MAP:
    case SPEC_OBJECT_LIST:
    case SPEC_OBJECT:
    case SPEC_FILE:
        break;
    }
    add_error(origin, node, path, "internal error: no conversion for this field");
    return -1;
}

int template_schema_unknown_key(const char *const *keys, const char *const *api_names,
                                size_t count, const template_node_t *key, const char *where,
                                const char *path, const template_origin_t *origin)
{
    char known[512] = "";
    size_t used = 0;
    for (size_t i = 0; i < count && used < sizeof known; i++) {
        int n = snprintf(known + used, sizeof known - used, "%s%s", used ? ", " : "", keys[i]);
        if (n < 0)
            break;
        used += (size_t)n;
    }
    /* the HTTP API's name of a field first (workflow_type → type), then typos */
    int meant = -1;
    for (size_t i = 0; i < count && meant < 0; i++)
        if (api_names[i] && strcmp(api_names[i], key->text) == 0 &&
            strcmp(api_names[i], keys[i]) != 0)
            meant = (int)i;
    if (meant < 0) {
        const char *near = template_schema_closest(key->text, keys, count);
        for (size_t i = 0; near && i < count; i++)
            if (keys[i] == near)
                meant = (int)i;
    }
    char in[96] = "";
    if (where)
        snprintf(in, sizeof in, " in %s", where);
    if (meant < 0) {
        add_error(origin, key, path, "unknown key '%.80s'%s (known: %s)", key->text, in, known);
        return -1;
    }
    add_error(origin, key, path, "unknown key '%.80s'%s (known: %s); did you mean '%s'?",
              key->text, in, known, keys[meant]);
    return meant;
}
