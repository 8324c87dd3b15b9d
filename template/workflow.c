/* workflow: the walk over a parsed YAML document, one table per object. */
#include "template/workflow.h"

#include "template/files.h"
#include "template/frontmatter.h"
#include "template/oldest_format.h"
#include "template/schema.h"
#include "template/spec.h"
#include "common/utf8.h"
#include "template/yamltree.h"

#include <assert.h>
#include <libgen.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define PATH_TEXT 256 /* "phases[12].allowed_tools[3]" and the like */

/* The tables are the workflow specification's (template/spec.c): a phase has at
 * most this many fields, prompt_file included. */
#define MAX_FIELDS 32

static size_t field_count(const spec_object_t *object)
{
    size_t n = 0;
    while (object->fields[n].name)
        n++;
    return n;
}

typedef struct {
    const char *file;
    const char *dir;
    const char *shared_dir; /* a plugin's phase-library/ (prompt_file: shared://NAME), or NULL */
    template_origin_t origin;
    size_t prompt_bytes;
} parse_t;

/* The key and value nodes a mapping gives for each field of its table. */
typedef struct {
    const template_node_t *key[MAX_FIELDS];
    const template_node_t *value[MAX_FIELDS];
    bool misspelt[MAX_FIELDS]; /* an unknown key was reported as "did you mean" this */
} slots_t;

static void error_at(parse_t *p, template_error_kind_t kind, const template_node_t *node,
                     const char *field, const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static void error_at(parse_t *p, template_error_kind_t kind, const template_node_t *node,
                     const char *field, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *message = NULL;
    if (vasprintf(&message, fmt, ap) < 0)
        message = NULL;
    va_end(ap);
    template_errors_add(p->origin.errors, kind, p->file, node ? node->line : 0,
                        node ? node->column : 0, field, "%s", message ? message : "error");
    free(message);
}

static void join_path(char *buf, const char *prefix, const char *key)
{
    int n = snprintf(buf, PATH_TEXT, "%s%s%s", prefix, prefix[0] ? "." : "", key);
    if (n >= PATH_TEXT)
        memcpy(buf + PATH_TEXT - 4, "...", 4); /* a key cut short says so */
}

/* Index of a field in its table (and in slots_t). */
static size_t slot_of(const spec_object_t *object, const char *name)
{
    const spec_field_t *field = spec_field(object, name);
    return field ? (size_t)(field - object->fields) : MAX_FIELDS - 1;
}

/* The field whose YAML key (or alias) is key, or NULL. */
static const spec_field_t *yaml_field(const spec_object_t *object, const char *key)
{
    for (const spec_field_t *f = object->fields; f->name; f++)
        if (strcmp(spec_yaml_key(f), key) == 0 || (f->alias && strcmp(f->alias, key) == 0))
            return f;
    return NULL;
}

/* Keys in the order POST /workflows documents them, whatever the source's order. */
static json_t *ordered(const spec_object_t *spec, json_t *object)
{
    json_t *out = json_object();
    for (const spec_field_t *f = spec->fields; f->name; f++) {
        json_t *value = f->kind != SPEC_FILE ? json_object_get(object, f->name) : NULL;
        if (value)
            json_object_set(out, f->name, value);
    }
    json_decref(object);
    return out;
}

static bool is_null(const template_node_t *node)
{
    return !node || (node->kind == TEMPLATE_NODE_SCALAR && node->type == TEMPLATE_SCALAR_NULL);
}

/* Reports key, which object does not know, and remembers the field it was probably
 * meant for (so that field is not also reported missing). */
static void unknown_key(parse_t *p, const spec_object_t *object, const template_node_t *key,
                        const char *where, const char *path, slots_t *slots)
{
    const char *keys[MAX_FIELDS], *names[MAX_FIELDS];
    size_t count = field_count(object);
    for (size_t i = 0; i < count; i++) {
        keys[i] = spec_yaml_key(&object->fields[i]);
        names[i] = object->fields[i].kind == SPEC_FILE ? NULL : object->fields[i].name;
    }
    int meant = template_schema_unknown_key(keys, names, count, key, where, path, &p->origin);
    if (meant >= 0)
        slots->misspelt[meant] = true;
}

static bool walk_object(parse_t *p, const spec_field_t *field, const template_node_t *value,
                        const char *path, json_t *out);
static bool walk_list(parse_t *p, const spec_field_t *field, const template_node_t *value,
                      const char *path, json_t *out);

/* Walks a mapping in source order (so errors come in line order): unknown keys are
 * errors, plain fields are converted into out, and every field's nodes are kept in
 * slots for the checks that need them. false if anything was wrong. */
static bool walk_mapping(parse_t *p, const template_node_t *map, const spec_object_t *object,
                         const char *where, const char *prefix, slots_t *slots, json_t *out)
{
    assert(field_count(object) <= MAX_FIELDS);
    memset(slots, 0, sizeof *slots);
    bool ok = true;
    for (size_t i = 0; i + 1 < map->count; i += 2) {
        const template_node_t *key = map->children[i], *value = map->children[i + 1];
        const spec_field_t *field = yaml_field(object, key->text);
        char path[PATH_TEXT];
        join_path(path, prefix, key->text);
        if (!field) {
            unknown_key(p, object, key, where, path, slots);
            ok = false;
            continue;
        }
        size_t index = (size_t)(field - object->fields);
        if (slots->key[index]) { /* a key and its alias: tools and allowed_tools */
            error_at(p, TEMPLATE_ERROR_INVALID, key, path,
                     "give either %s or %s, not both (the other is at line %d)",
                     spec_yaml_key(field), field->alias, slots->key[index]->line);
            ok = false;
            continue;
        }
        slots->key[index] = key;
        slots->value[index] = value;
        if (field->kind == SPEC_FILE ||
            (field->kind == SPEC_OBJECT_LIST && object == &spec_workflow &&
             strcmp(field->name, "deliverables") != 0))
            continue; /* the workflow's inputs and phases: their callers walk them */
        if (field->kind == SPEC_OBJECT_LIST) {
            ok = walk_list(p, field, value, path, out) && ok;
            continue;
        }
        if (field->kind == SPEC_OBJECT) {
            ok = walk_object(p, field, value, path, out) && ok;
            continue;
        }
        json_t *converted;
        int got =
            template_schema_value(field, TEMPLATE_FORM_PLAIN, value, path, &p->origin, &converted);
        if (got < 0)
            ok = false;
        else if (got > 0)
            json_object_set_new(out, field->name, converted);
    }
    return ok;
}

static void missing(parse_t *p, const template_node_t *map, const char *prefix, const char *key)
{
    char path[PATH_TEXT];
    join_path(path, prefix, key);
    error_at(p, TEMPLATE_ERROR_INVALID, map, path, "missing required key '%s'", key);
}

/* Every required value of object the mapping node left out (or null), reported where
 * its key is or else where the mapping starts; object lists and values YAML may give
 * another way (prompt_file) are checked by their callers. */
static bool check_required(parse_t *p, const spec_object_t *object, const template_node_t *node,
                           const char *prefix, const slots_t *slots)
{
    bool ok = true;
    for (size_t i = 0; object->fields[i].name; i++) {
        const spec_field_t *f = &object->fields[i];
        if (!f->required || f->kind == SPEC_OBJECT_LIST || f->yaml_or)
            continue;
        if (is_null(slots->value[i]) && !slots->misspelt[i]) {
            missing(p, slots->key[i] ? slots->key[i] : node, prefix, spec_yaml_key(f));
            ok = false;
        }
    }
    return ok;
}

/* A nested object (a phase's agent): its own table, walked like its parent. */
static bool walk_object(parse_t *p, const spec_field_t *field, const template_node_t *value,
                        const char *path, json_t *out)
{
    if (is_null(value))
        return true;
    if (value->kind != TEMPLATE_NODE_MAPPING) {
        error_at(p, TEMPLATE_ERROR_INVALID, value, path, "expected a mapping, got %s",
                 template_node_describe(value));
        return false;
    }
    slots_t slots;
    json_t *object = json_object();
    bool ok = walk_mapping(p, value, field->items, path, path, &slots, object);
    ok = check_required(p, field->items, value, path, &slots) && ok;
    if (ok)
        json_object_set_new(out, field->name, ordered(field->items, object));
    else
        json_decref(object);
    return ok;
}

/* A nested list of objects (a phase's inputs and outputs, the deliverables): each item
 * walked by the list's table. */
static bool walk_list(parse_t *p, const spec_field_t *field, const template_node_t *value,
                      const char *path, json_t *out)
{
    if (is_null(value))
        return true;
    if (value->kind != TEMPLATE_NODE_SEQUENCE) {
        error_at(p, TEMPLATE_ERROR_INVALID, value, path, "expected a list, got %s",
                 template_node_describe(value));
        return false;
    }
    json_t *list = json_array();
    bool ok = true;
    for (size_t i = 0; i < value->count; i++) {
        char at[PATH_TEXT + 24];
        snprintf(at, sizeof at, "%s[%zu]", path, i);
        const template_node_t *item = value->children[i];
        if (item->kind != TEMPLATE_NODE_MAPPING) {
            error_at(p, TEMPLATE_ERROR_INVALID, item, at, "expected a mapping, got %s",
                     template_node_describe(item));
            ok = false;
            continue;
        }
        slots_t slots;
        json_t *object = json_object();
        bool item_ok = walk_mapping(p, item, field->items, at, at, &slots, object);
        item_ok = check_required(p, field->items, item, at, &slots) && item_ok;
        if (item_ok)
            json_array_append_new(list, ordered(field->items, object));
        else
            json_decref(object);
        ok = ok && item_ok;
    }
    if (ok)
        json_object_set_new(out, field->name, list);
    else
        json_decref(list);
    return ok;
}

static json_t *parse_input(parse_t *p, const template_node_t *node, size_t index)
{
    char prefix[PATH_TEXT];
    snprintf(prefix, sizeof prefix, "inputs[%zu]", index);
    if (node->kind != TEMPLATE_NODE_MAPPING) {
        error_at(p, TEMPLATE_ERROR_INVALID, node, prefix,
                 "expected a mapping (an input: {name, description, required, default}), "
                 "got %s",
                 template_node_describe(node));
        return NULL;
    }
    slots_t slots;
    json_t *out = json_object();
    bool ok = walk_mapping(p, node, &spec_input, prefix, prefix, &slots, out);
    ok = check_required(p, &spec_input, node, prefix, &slots) && ok;
    if (!ok) {
        json_decref(out);
        return NULL;
    }
    return ordered(&spec_input, out);
}

static bool parse_inputs(parse_t *p, const template_node_t *node, json_t *workflow)
{
    if (is_null(node))
        return true;
    if (node->kind != TEMPLATE_NODE_SEQUENCE) {
        error_at(p, TEMPLATE_ERROR_INVALID, node, "inputs",
                 "expected a list of inputs, got %s", template_node_describe(node));
        return false;
    }
    json_t *list = json_array();
    json_t *seen = json_object(); /* name → index of its first input */
    bool ok = true;
    for (size_t i = 0; i < node->count; i++) {
        json_t *input = parse_input(p, node->children[i], i);
        if (!input) {
            ok = false;
            continue;
        }
        const template_node_t *name = template_node_get(node->children[i], "name");
        json_t *first = json_object_get(seen, name->text);
        if (first) {
            size_t j = (size_t)json_integer_value(first);
            char path[PATH_TEXT];
            snprintf(path, sizeof path, "inputs[%zu].name", i);
            error_at(p, TEMPLATE_ERROR_INVALID, name, path,
                     "duplicate input name '%s' (also inputs[%zu] at line %d)", name->text, j,
                     template_node_get(node->children[j], "name")->line);
            ok = false;
        } else {
            json_object_set_new(seen, name->text, json_integer((json_int_t)i));
        }
        json_array_append_new(list, input);
    }
    json_decref(seen);
    if (ok && json_array_size(list) > 0)
        json_object_set_new(workflow, "input_declarations", list);
    else
        json_decref(list);
    return ok;
}

/* The prompt file of a phase: read inside the workflow's directory, split off its
 * front matter, and fill what the YAML left out. */
static bool load_prompt_file(parse_t *p, const template_node_t *node, const char *prefix,
                             json_t *phase)
{
    char path[PATH_TEXT];
    join_path(path, prefix, "prompt_file");
    if (node->kind != TEMPLATE_NODE_SCALAR || node->type != TEMPLATE_SCALAR_STRING ||
        node->len == 0) {
        error_at(p, TEMPLATE_ERROR_INVALID, node, path,
                 "expected a path relative to the workflow file, got %s",
                 template_node_describe(node));
        return false;
    }
    if (!p->dir) {
        error_at(p, TEMPLATE_ERROR_UNSUPPORTED, node, path,
                 "prompt_file cannot be used in an uploaded document (the server cannot read "
                 "your files): install the workflow with the CLI or as a package directory "
                 "(syn-broker --workflows DIR), or inline the prompt as prompt_template");
        return false;
    }
    char why[512];
    template_error_kind_t kind;
    char *real = NULL;
    /* shared://NAME: the plugin's phase-library/NAME.md, copied in at install time as
     * the original does (a later change of the library changes new installs only) */
    const char *dir = p->dir, *relative = node->text;
    char *shared_name = NULL;
    if (strncmp(node->text, "shared://", 9) == 0) {
        if (!p->shared_dir) {
            error_at(p, TEMPLATE_ERROR_INVALID, node, path,
                     "'%.200s': a shared phase needs a plugin folder with phase-library/ "
                     "(this workflow is not at PLUGIN/workflows/NAME/workflow.yaml)",
                     node->text);
            return false;
        }
        if (asprintf(&shared_name, "%s.md", node->text + 9) < 0)
            return false;
        dir = p->shared_dir;
        relative = shared_name;
    }
    int inside = template_path_inside(dir, relative, &real, why, sizeof why, &kind);
    free(shared_name);
    if (inside < 0) {
        error_at(p, kind, node, path, "'%.200s': %s", node->text, why);
        return false;
    }
    char *text = NULL;
    size_t len = 0;
    int rc = template_file_read(real, TEMPLATE_MAX_PROMPT_FILE, &text, &len, why, sizeof why,
                                &kind);
    free(real);
    if (rc < 0) {
        error_at(p, kind, node, path, "'%.200s': %s", node->text, why);
        return false;
    }
    p->prompt_bytes += len;
    if (p->prompt_bytes > TEMPLATE_MAX_PROMPT_FILES) {
        free(text);
        error_at(p, TEMPLATE_ERROR_TOO_LARGE, node, path,
                 "the prompt files of this workflow add up to more than %d bytes",
                 TEMPLATE_MAX_PROMPT_FILES);
        return false;
    }
    char *shown = NULL;
    if (asprintf(&shown, "%s/%s", p->dir, node->text) < 0) {
        free(text);
        return false;
    }
    size_t bad;
    if (!syn_utf8_valid(text, len, &bad)) {
        int line, column;
        syn_utf8_position(text, len, bad, &line, &column);
        char problem[32];
        template_errors_add(p->origin.errors, TEMPLATE_ERROR_SYNTAX, shown, line, column, path,
                            "prompt file is %s", syn_utf8_problem(text, bad, problem));
        free(shown);
        free(text);
        return false;
    }
    json_t *settings = NULL, *body = NULL;
    rc = template_frontmatter_parse(text, len, shown, path, p->origin.errors, &settings, &body);
    free(text);
    if (rc == 0 && json_string_length(body) == 0) {
        template_errors_add(p->origin.errors, TEMPLATE_ERROR_INVALID, shown, 0, 0, path,
                            "the prompt file has no prompt text");
        rc = -1;
    }
    free(shown);
    if (rc < 0) {
        json_decref(settings);
        json_decref(body);
        return false;
    }
    /* the YAML wins over the front matter */
    json_object_update_missing(phase, settings);
    json_decref(settings);
    json_object_set_new(phase, "prompt_template", body);
    return true;
}

/* Parses one phase into *phase, which holds whatever was valid even when the phase
 * is not (so repeated ids and orders are still found). false if anything was wrong. */
static bool parse_phase(parse_t *p, const template_node_t *node, size_t index, json_t **phase)
{
    char prefix[PATH_TEXT];
    snprintf(prefix, sizeof prefix, "phases[%zu]", index);
    json_t *out = json_object();
    *phase = out;
    if (node->kind != TEMPLATE_NODE_MAPPING) {
        error_at(p, TEMPLATE_ERROR_INVALID, node, prefix,
                 "expected a mapping (a phase with id, name, order and a prompt), got %s",
                 template_node_describe(node));
        return false;
    }
    slots_t slots;
    bool ok = walk_mapping(p, node, &spec_phase, prefix, prefix, &slots, out);
    /* the original's oldest format: a phase without id is named by its name, one
     * without order runs in its place (template/oldest_format.c) */
    size_t id_at = slot_of(&spec_phase, "phase_id"), order_at = slot_of(&spec_phase, "order");
    const char *named = template_oldest_phase_id(out);
    if (is_null(slots.value[id_at]) && !slots.key[id_at] && named) {
        json_object_set_new(out, "phase_id", json_string(named));
        slots.misspelt[id_at] = true; /* given another way: not missing */
    }
    if (is_null(slots.value[order_at]) && !slots.key[order_at] && !slots.misspelt[order_at]) {
        json_object_set_new(out, "order", json_integer((json_int_t)index + 1));
        slots.misspelt[order_at] = true;
    }
    ok = check_required(p, &spec_phase, node, prefix, &slots) && ok;
    size_t template_at = slot_of(&spec_phase, "prompt_template");
    size_t file_at = slot_of(&spec_phase, "prompt_file");
    const template_node_t *inline_prompt = slots.value[template_at];
    const template_node_t *file = slots.value[file_at];
    if (!is_null(file) && !is_null(inline_prompt)) {
        char path[PATH_TEXT];
        join_path(path, prefix, "prompt_file");
        error_at(p, TEMPLATE_ERROR_INVALID, slots.key[file_at], path,
                 "give either prompt_template or prompt_file, not both (prompt_template is at "
                 "line %d)",
                 slots.key[template_at]->line);
        ok = false;
    } else if (!is_null(file)) {
        ok = load_prompt_file(p, file, prefix, out) && ok;
    } else if (is_null(inline_prompt) && !slots.misspelt[template_at] &&
               !slots.misspelt[file_at]) {
        char path[PATH_TEXT];
        join_path(path, prefix, "prompt_template");
        error_at(p, TEMPLATE_ERROR_INVALID, slots.key[template_at] ? slots.key[template_at] : node,
                 path, "missing prompt: give prompt_template (the text) or prompt_file (a "
                       "Markdown file next to the workflow)");
        ok = false;
    }
    *phase = ordered(&spec_phase, out);
    return ok;
}

/* Where a phase gives key, or (an id or order the oldest format left out and the
 * loader derived) where it gives its name, or where the phase starts. */
static const template_node_t *given_at(const template_node_t *phase, const char *key)
{
    const template_node_t *node = template_node_get(phase, key);
    if (!node)
        node = template_node_get(phase, "name");
    return node ? node : phase;
}

/* Repeated phase ids and orders, each reported where it repeats; phases[i] is the
 * (possibly partial) phase of list->children[i]. Indexes by value, so a document
 * with thousands of phases stays linear. */
static bool check_duplicates(parse_t *p, const template_node_t *list, json_t *phases)
{
    bool ok = true;
    json_t *ids = json_object(), *orders = json_object();
    size_t j;
    json_t *phase;
    json_array_foreach(phases, j, phase) {
        json_t *id = json_object_get(phase, "phase_id"), *order = json_object_get(phase, "order");
        char path[PATH_TEXT];
        if (id) {
            json_t *first = json_object_get(ids, json_string_value(id));
            if (first) {
                size_t i = (size_t)json_integer_value(first);
                snprintf(path, sizeof path, "phases[%zu].id", j);
                error_at(p, TEMPLATE_ERROR_INVALID, given_at(list->children[j], "id"), path,
                         "duplicate phase id '%s' (also phases[%zu] at line %d)",
                         json_string_value(id), i, given_at(list->children[i], "id")->line);
                ok = false;
            } else {
                json_object_set_new(ids, json_string_value(id), json_integer((json_int_t)j));
            }
        }
        if (order) {
            char key[32];
            snprintf(key, sizeof key, "%lld", (long long)json_integer_value(order));
            json_t *first = json_object_get(orders, key);
            if (first) {
                size_t i = (size_t)json_integer_value(first);
                snprintf(path, sizeof path, "phases[%zu].order", j);
                error_at(p, TEMPLATE_ERROR_INVALID, given_at(list->children[j], "order"), path,
                         "duplicate order %s (also phases[%zu] at line %d)", key, i,
                         given_at(list->children[i], "order")->line);
                ok = false;
            } else {
                json_object_set_new(orders, key, json_integer((json_int_t)j));
            }
        }
    }
    json_decref(ids);
    json_decref(orders);
    return ok;
}

static bool parse_phases(parse_t *p, const template_node_t *map, const template_node_t *node,
                         bool misspelt, json_t *workflow)
{
    if (is_null(node)) {
        if (!misspelt)
            missing(p, node ? node : map, "", "phases");
        return false;
    }
    if (node->kind != TEMPLATE_NODE_SEQUENCE || node->count == 0) {
        error_at(p, TEMPLATE_ERROR_INVALID, node, "phases",
                 "expected a list of at least one phase, got %s",
                 node->kind == TEMPLATE_NODE_SEQUENCE ? "an empty list"
                                                      : template_node_describe(node));
        return false;
    }
    json_t *list = json_array();
    bool ok = true;
    for (size_t i = 0; i < node->count; i++) {
        json_t *phase;
        ok = parse_phase(p, node->children[i], i, &phase) && ok;
        json_array_append_new(list, phase);
    }
    ok = check_duplicates(p, node, list) && ok;
    if (ok)
        json_object_set_new(workflow, "phases", list);
    else
        json_decref(list);
    return ok;
}

static json_t *parse_root(parse_t *p, const template_node_t *root)
{
    if (!root || is_null(root)) {
        template_errors_add(p->origin.errors, TEMPLATE_ERROR_INVALID, p->file,
                            root ? root->line : 0, 0, NULL,
                            "the document is empty: a workflow needs at least name and phases");
        return NULL;
    }
    if (root->kind != TEMPLATE_NODE_MAPPING) {
        error_at(p, TEMPLATE_ERROR_INVALID, root, NULL,
                 "a workflow is a mapping with at least name and phases, not %s",
                 template_node_describe(root));
        return NULL;
    }
    slots_t slots;
    json_t *out = json_object();
    bool ok = walk_mapping(p, root, &spec_workflow, NULL, "", &slots, out);
    ok = check_required(p, &spec_workflow, root, "", &slots) && ok;
    size_t inputs = slot_of(&spec_workflow, "input_declarations");
    size_t phases = slot_of(&spec_workflow, "phases");
    ok = parse_inputs(p, slots.value[inputs], out) && ok;
    ok = parse_phases(p, slots.key[phases] ? slots.key[phases] : root, slots.value[phases],
                      slots.misspelt[phases], out) &&
         ok;
    if (!ok) {
        json_decref(out);
        return NULL;
    }
    template_oldest_format(out);
    return ordered(&spec_workflow, out);
}

static json_t *parse_in(const char *text, size_t len, const char *file, const char *dir,
                        const char *shared_dir, template_errors_t *errors)
{
    if (len > TEMPLATE_MAX_DOCUMENT) {
        template_errors_add(errors, TEMPLATE_ERROR_TOO_LARGE, file, 0, 0, NULL,
                            "the document is %zu bytes; the limit is %d (1 MiB)", len,
                            TEMPLATE_MAX_DOCUMENT);
        return NULL;
    }
    size_t bom = syn_utf8_bom_length(text, len);
    text += bom;
    len -= bom;
    bool failed;
    template_node_t *root = template_yaml_parse(text, len, file, 0, errors, &failed);
    if (failed)
        return NULL;
    parse_t p = {.file = file,
                 .dir = dir,
                 .shared_dir = shared_dir,
                 .origin = {.file = file, .text = text, .len = len, .errors = errors}};
    size_t before = template_errors_total(errors);
    json_t *workflow = parse_root(&p, root);
    template_node_destroy(&root);
    if (workflow && template_errors_total(errors) != before) {
        json_decref(workflow);
        workflow = NULL;
    }
    if (!workflow && template_errors_total(errors) == before)
        template_errors_add(errors, TEMPLATE_ERROR_INVALID, file, 0, 0, NULL,
                            "the workflow could not be built (out of memory?)");
    return workflow;
}

json_t *template_workflow_parse(const char *text, size_t len, const char *file, const char *dir,
                                template_errors_t *errors)
{
    return parse_in(text, len, file, dir, NULL, errors);
}

/* The phase library of the plugin a package directory may belong to
 * (PLUGIN/workflows/NAME/ → PLUGIN/phase-library), or NULL (malloc'd). */
static char *plugin_library(const char *dir)
{
    char *library = NULL;
    struct stat st;
    if (asprintf(&library, "%s/../../phase-library", dir) < 0)
        return NULL;
    char *real = realpath(library, NULL);
    free(library);
    if (real && (stat(real, &st) != 0 || !S_ISDIR(st.st_mode))) {
        free(real);
        real = NULL;
    }
    return real;
}

json_t *template_workflow_parse_file(const char *path, template_errors_t *errors)
{
    char *text = NULL;
    size_t len = 0;
    char why[512];
    template_error_kind_t kind;
    if (template_file_read(path, TEMPLATE_MAX_DOCUMENT, &text, &len, why, sizeof why, &kind) <
        0) {
        template_errors_add(errors, kind, path, 0, 0, NULL, "%s", why);
        return NULL;
    }
    char *copy = strdup(path);
    json_t *workflow = NULL;
    if (copy) {
        const char *dir = dirname(copy);
        char *shared = plugin_library(dir);
        workflow = parse_in(text, len, path, dir, shared, errors);
        free(shared);
    } else
        template_errors_add(errors, TEMPLATE_ERROR_IO, path, 0, 0, NULL, "out of memory");
    free(copy);
    free(text);
    return workflow;
}
