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

static const template_field_t front_matter_fields[] = {
    {.key = "model", .json = "model", .kind = TEMPLATE_VALUE_STRING},
    {.key = "allowed-tools", .json = "allowed_tools", .kind = TEMPLATE_VALUE_TOOLS,
     .comma_list = true},
    {.key = "max-tokens", .json = "max_tokens", .kind = TEMPLATE_VALUE_INT, .min = 1,
     .max = TEMPLATE_MAX_TOKENS_MAX},
    {.key = "timeout-seconds", .json = "timeout_seconds", .kind = TEMPLATE_VALUE_INT,
     .min = TEMPLATE_TIMEOUT_MIN, .max = TEMPLATE_TIMEOUT_MAX},
    {.key = "argument-hint", .json = "argument_hint", .kind = TEMPLATE_VALUE_HINT},
    {.key = "description", .json = "description", .kind = TEMPLATE_VALUE_STRING},
    {.key = NULL},
};

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
        const template_field_t *field = template_schema_find(front_matter_fields, key->text);
        if (!field) {
            (void)template_schema_unknown_key(front_matter_fields, key, "the front matter",
                                              field_path, &origin);
            rc = -1;
            continue;
        }
        json_t *converted;
        int got = template_schema_value(field, value, field_path, &origin, &converted);
        if (got < 0)
            rc = -1;
        else if (got > 0)
            json_object_set_new(settings, field->json, converted);
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
