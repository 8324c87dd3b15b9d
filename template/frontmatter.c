/* frontmatter: split, then the front matter through the same YAML and schema code
 * as workflow files, with lines counted from the top of the Markdown file. */
#include "template/frontmatter.h"

#include "template/schema.h"
#include "common/utf8.h"
#include "template/yamltree.h"

#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

/* The phase settings a prompt file may give, in Claude Code's spelling; their types
 * and limits are the phase's own (template/spec.c). */
typedef struct {
    const char *key;  /* as written in the front matter */
    const char *name; /* the phase field (template/spec.h) */
    template_form_t form;
} front_matter_key_t;

static const front_matter_key_t front_matter_keys[] = {
    {"model", "model", TEMPLATE_FORM_PLAIN},
    {"allowed-tools", "allowed_tools", TEMPLATE_FORM_COMMA_LIST},
    {"max-tokens", "max_tokens", TEMPLATE_FORM_PLAIN},
    {"timeout-seconds", "timeout_seconds", TEMPLATE_FORM_PLAIN},
    {"argument-hint", "argument_hint", TEMPLATE_FORM_HINT},
    {"description", "description", TEMPLATE_FORM_PLAIN},
};
#define FRONT_MATTER_KEYS (sizeof front_matter_keys / sizeof front_matter_keys[0])

static const front_matter_key_t *front_matter_key(const char *key)
{
    for (size_t i = 0; i < FRONT_MATTER_KEYS; i++)
        if (strcmp(front_matter_keys[i].key, key) == 0)
            return &front_matter_keys[i];
    return NULL;
}

static void unknown_key(const template_node_t *key, const char *path,
                        const template_origin_t *origin)
{
    const char *keys[FRONT_MATTER_KEYS], *names[FRONT_MATTER_KEYS];
    for (size_t i = 0; i < FRONT_MATTER_KEYS; i++) {
        keys[i] = front_matter_keys[i].key;
        names[i] = front_matter_keys[i].name;
    }
    (void)template_schema_unknown_key(keys, names, FRONT_MATTER_KEYS, key, "the front matter",
                                      path, origin);
}

/* Length of the line at p (up to end) without its break, and where the next starts. */
static size_t line_at(const char *p, const char *end, const char **next)
{
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    *next = nl ? nl + 1 : end;
    size_t n = (size_t)((nl ? nl : end) - p);
    if (n > 0 && p[n - 1] == '\r')
        n--;
    return n;
}

/* A delimiter line: the marker, then only spaces or tabs. */
static bool is_marker(const char *line, size_t n, const char *marker)
{
    size_t m = strlen(marker);
    if (n < m || memcmp(line, marker, m) != 0)
        return false;
    for (size_t i = m; i < n; i++)
        if (line[i] != ' ' && line[i] != '\t')
            return false;
    return true;
}

static int parse_settings(const char *text, size_t len, int line_offset, const char *file,
                          const char *path, template_errors_t *errors, json_t *settings)
{
    bool failed;
    template_node_t *root = template_yaml_parse(text, len, file, line_offset, errors, &failed);
    if (failed)
        return -1;
    if (!root)
        return 0;
    template_origin_t origin = {.file = file, .text = text, .len = len, .errors = errors};
    int rc = 0;
    if (root->kind == TEMPLATE_NODE_SCALAR && root->type == TEMPLATE_SCALAR_NULL) {
        template_node_destroy(&root);
        return 0;
    }
    if (root->kind != TEMPLATE_NODE_MAPPING) {
        template_errors_add(errors, TEMPLATE_ERROR_INVALID, file, root->line, root->column, path,
                            "front matter must be a mapping of settings, not %s",
                            template_node_describe(root));
        template_node_destroy(&root);
        return -1;
    }
    for (size_t i = 0; i + 1 < root->count; i += 2) {
        const template_node_t *key = root->children[i], *value = root->children[i + 1];
        char field_path[256];
        snprintf(field_path, sizeof field_path, "%s.%s", path, key->text);
        const front_matter_key_t *known = front_matter_key(key->text);
        if (!known) {
            unknown_key(key, field_path, &origin);
            rc = -1;
            continue;
        }
        const spec_field_t *field = spec_field(&spec_phase, known->name);
        json_t *converted;
        int got =
            template_schema_value(field, known->form, value, field_path, &origin, &converted);
        if (got < 0)
            rc = -1;
        else if (got > 0)
            json_object_set_new(settings, field->name, converted);
    }
    template_node_destroy(&root);
    return rc;
}

int template_frontmatter_parse(const char *text, size_t len, const char *file, const char *path,
                               template_errors_t *errors, json_t **settings, json_t **body)
{
    *settings = NULL;
    *body = NULL;
    const char *p = text + syn_utf8_bom_length(text, len), *end = text + len;
    const char *next;
    size_t n = line_at(p, end, &next);
    const char *body_start = p;
    json_t *found = json_object();
    if (!found)
        return -1;
    if (is_marker(p, n, "---")) {
        const char *content = next;
        const char *close = NULL;
        for (const char *q = content; q < end; q = next) {
            n = line_at(q, end, &next);
            if (is_marker(q, n, "---") || is_marker(q, n, "...")) {
                close = q;
                break;
            }
        }
        if (!close) {
            template_errors_add(errors, TEMPLATE_ERROR_INVALID, file, 1, 1, path,
                                "front matter that starts on line 1 is never closed by a '---' "
                                "line");
            json_decref(found);
            return -1;
        }
        if (parse_settings(content, (size_t)(close - content), 1, file, path, errors, found) <
            0) {
            json_decref(found);
            return -1;
        }
        body_start = next;
    }
    *body = json_stringn(body_start, (size_t)(end - body_start));
    if (!*body) {
        json_decref(found);
        return -1;
    }
    *settings = found;
    return 0;
}
