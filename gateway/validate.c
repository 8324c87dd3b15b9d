#include "gateway/validate.h"

#include "common/ids.h"
#include "common/utf8.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* The schemas are tables, so a new body (issue 4's cancel/inject, …) is a new table
 * rather than new code, and the order of the table is the order of the errors. */
typedef enum {
    KIND_STRING,
    KIND_ID,          /* string matching SYN_ID_PATTERN */
    KIND_INT,
    KIND_NUMBER,
    KIND_BOOL,
    KIND_STRING_LIST,
    KIND_STRING_MAP,
    KIND_OBJECT_LIST,
    KIND_CHOICE,      /* one of the strings in choices (a pydantic Literal) */
    KIND_ENUM,        /* a string, one of choices (a pydantic str Enum: type "enum") */
} kind_t;

typedef struct schema_t schema_t;

typedef struct {
    const char *name;
    kind_t kind;
    bool required;
    bool has_min, has_max; /* value range for KIND_INT / KIND_NUMBER */
    long min, max;
    size_t min_len;        /* characters of a string, items of a list */
    const schema_t *items; /* element schema of KIND_OBJECT_LIST */
    const char *const *choices; /* KIND_CHOICE: allowed values, NULL-terminated */
} field_t;

struct schema_t {
    const field_t *fields; /* ends with a NULL name */
};

static const field_t input_declaration_fields[] = {
    {.name = "name", .kind = KIND_STRING, .required = true, .min_len = 1},
    {.name = "description", .kind = KIND_STRING},
    {.name = "required", .kind = KIND_BOOL},
    {.name = "default", .kind = KIND_STRING},
    {.name = NULL},
};
static const schema_t input_declaration_schema = {input_declaration_fields};

static const field_t phase_fields[] = {
    {.name = "phase_id", .kind = KIND_STRING, .required = true, .min_len = 1},
    {.name = "name", .kind = KIND_STRING, .required = true},
    {.name = "order", .kind = KIND_INT, .required = true, .has_min = true, .min = 0},
    {.name = "prompt_template", .kind = KIND_STRING, .required = true},
    {.name = "model", .kind = KIND_STRING},
    {.name = "timeout_seconds", .kind = KIND_INT, .has_min = true, .min = 1, .has_max = true,
     .max = 86400},
    {.name = "max_attempts", .kind = KIND_INT, .has_min = true, .min = 1, .has_max = true,
     .max = 10},
    {.name = "retries", .kind = KIND_INT, .has_min = true, .min = 0, .has_max = true, .max = 10},
    {.name = "retry_backoff_seconds", .kind = KIND_NUMBER, .has_min = true, .min = 0,
     .has_max = true, .max = 86400},
    {.name = "max_tokens", .kind = KIND_INT, .has_min = true, .min = 1, .has_max = true,
     .max = GATEWAY_MAX_TOKENS},
    {.name = "provider", .kind = KIND_STRING, .min_len = 1},
    {.name = "description", .kind = KIND_STRING},
    {.name = "argument_hint", .kind = KIND_STRING},
    {.name = "allowed_tools", .kind = KIND_STRING_LIST},
    {.name = NULL},
};
static const schema_t phase_schema = {phase_fields};

/* PUT /workflows/{id}/phases/{phase_id}: the settings an edit may change. */
static const field_t phase_update_fields[] = {
    {.name = "prompt_template", .kind = KIND_STRING, .required = true, .min_len = 1},
    {.name = "model", .kind = KIND_STRING},
    {.name = "timeout_seconds", .kind = KIND_INT, .has_min = true, .min = 1, .has_max = true,
     .max = 86400},
    {.name = "allowed_tools", .kind = KIND_STRING_LIST},
    {.name = NULL},
};
static const schema_t phase_update_schema = {phase_update_fields};

/* POST /workflows/validate: {content}. */
static const field_t validate_fields[] = {
    {.name = "content", .kind = KIND_STRING, .required = true},
    {.name = NULL},
};
static const schema_t validate_schema = {validate_fields};

const char *const gateway_workflow_types[] = {"research", "planning", "implementation",
                                              "review",   "deployment", "custom", NULL};
const char *const gateway_classifications[] = {"simple", "standard", "complex", "epic", NULL};

static const field_t workflow_fields[] = {
    {.name = "id", .kind = KIND_ID},
    {.name = "name", .kind = KIND_STRING, .required = true},
    {.name = "description", .kind = KIND_STRING},
    {.name = "workflow_type", .kind = KIND_ENUM, .choices = gateway_workflow_types},
    {.name = "classification", .kind = KIND_ENUM, .choices = gateway_classifications},
    {.name = "input_declarations", .kind = KIND_OBJECT_LIST, .items = &input_declaration_schema},
    {.name = "phases", .kind = KIND_OBJECT_LIST, .required = true, .min_len = 1,
     .items = &phase_schema},
    {.name = NULL},
};
static const schema_t workflow_schema = {workflow_fields};

static const field_t execute_fields[] = {
    {.name = "inputs", .kind = KIND_STRING_MAP},
    {.name = "task", .kind = KIND_STRING},
    {.name = "repos", .kind = KIND_STRING_LIST},
    {.name = "provider", .kind = KIND_STRING},
    {.name = "max_budget_usd", .kind = KIND_NUMBER},
    {.name = NULL},
};
static const schema_t execute_schema = {execute_fields};

static const char *const role_choices[] = {"user", "system", NULL};

/* cancel and pause: {reason?}; resume: {} (no keys); inject: {message, role?}. */
static const field_t reason_fields[] = {
    {.name = "reason", .kind = KIND_STRING},
    {.name = NULL},
};
static const schema_t reason_schema = {reason_fields};

static const field_t no_fields[] = {{.name = NULL}};
static const schema_t empty_schema = {no_fields};

static const field_t inject_fields[] = {
    {.name = "message", .kind = KIND_STRING, .required = true, .min_len = 1},
    {.name = "role", .kind = KIND_CHOICE, .choices = role_choices},
    {.name = NULL},
};
static const schema_t inject_schema = {inject_fields};

static void add_error(json_t *errors, json_t *loc, const char *msg, const char *type)
{
    json_array_append_new(errors, json_pack("{s:O, s:s, s:s}", "loc", loc, "msg", msg,
                                            "type", type));
}

static json_t *loc_key(const json_t *loc, const char *key)
{
    json_t *child = json_copy((json_t *)loc);
    json_array_append_new(child, json_string(key));
    return child;
}

static json_t *loc_index(const json_t *loc, size_t index)
{
    json_t *child = json_copy((json_t *)loc);
    json_array_append_new(child, json_integer((json_int_t)index));
    return child;
}

/* Adds the error at loc + key (the usual case: a field of an object). */
static void add_error_at(json_t *errors, const json_t *loc, const char *key, const char *msg,
                         const char *type)
{
    json_t *at = loc_key(loc, key);
    add_error(errors, at, msg, type);
    json_decref(at);
}

bool gateway_validate_text(const char *text, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)text[i];
        if (c < 0x20 || c == 0x7f)
            return false; /* control characters never belong in an id or a query */
    }
    return syn_utf8_valid_prefix((const uint8_t *)text, len) == len;
}

static void add_range_error(json_t *errors, json_t *loc, bool below, long bound)
{
    char msg[96];
    snprintf(msg, sizeof msg, "Input should be %s than or equal to %ld",
             below ? "greater" : "less", bound);
    add_error(errors, loc, msg, below ? "greater_than_equal" : "less_than_equal");
}

/* 0 when value lies within the field's bounds, else -1 with the error added. */
static int check_range(const field_t *field, double value, json_t *loc, json_t *errors)
{
    if (field->has_min && value < (double)field->min) {
        add_range_error(errors, loc, true, field->min);
        return -1;
    }
    if (field->has_max && value > (double)field->max) {
        add_range_error(errors, loc, false, field->max);
        return -1;
    }
    return 0;
}

static json_t *check_object(const schema_t *schema, json_t *value, json_t *loc, json_t *errors);

/* pydantic's wording: "Input should be 'a', 'b' or 'c'". */
static void choices_message(const char *const *choices, char *msg, size_t len)
{
    size_t count = 0;
    while (choices[count])
        count++;
    size_t used = (size_t)snprintf(msg, len, "Input should be ");
    for (size_t i = 0; i < count && used < len; i++) {
        const char *sep = i == 0 ? "" : i + 1 == count ? " or " : ", ";
        used += (size_t)snprintf(msg + used, len - used, "%s'%s'", sep, choices[i]);
    }
}

static bool is_choice(const char *const *choices, const char *text)
{
    for (; *choices; choices++)
        if (strcmp(*choices, text) == 0)
            return true;
    return false;
}

static json_t *check_string(const field_t *field, json_t *value, json_t *loc, json_t *errors)
{
    if (!json_is_string(value)) {
        add_error(errors, loc, "Input should be a valid string", "string_type");
        return NULL;
    }
    const char *text = json_string_value(value);
    if (field->kind == KIND_ID && !syn_id_is_valid(text)) {
        add_error(errors, loc, "String should match pattern '" SYN_ID_PATTERN "'",
                  "string_pattern_mismatch");
        return NULL;
    }
    if (json_string_length(value) < field->min_len) {
        char msg[96];
        snprintf(msg, sizeof msg, "String should have at least %zu character%s", field->min_len,
                 field->min_len == 1 ? "" : "s");
        add_error(errors, loc, msg, "string_too_short");
        return NULL;
    }
    return json_incref(value);
}

static json_t *check_string_list(json_t *value, json_t *loc, json_t *errors)
{
    if (!json_is_array(value)) {
        add_error(errors, loc, "Input should be a valid list", "list_type");
        return NULL;
    }
    bool ok = true;
    size_t i;
    json_t *item;
    json_array_foreach(value, i, item) {
        if (!json_is_string(item)) {
            json_t *at = loc_index(loc, i);
            add_error(errors, at, "Input should be a valid string", "string_type");
            json_decref(at);
            ok = false;
        }
    }
    return ok ? json_incref(value) : NULL;
}

static json_t *check_string_map(json_t *value, json_t *loc, json_t *errors)
{
    if (!json_is_object(value)) {
        add_error(errors, loc, "Input should be a valid dictionary", "dict_type");
        return NULL;
    }
    bool ok = true;
    const char *key;
    json_t *item;
    json_object_foreach(value, key, item) {
        if (!json_is_string(item)) {
            add_error_at(errors, loc, key, "Input should be a valid string", "string_type");
            ok = false;
        }
    }
    return ok ? json_incref(value) : NULL;
}

static json_t *check_object_list(const field_t *field, json_t *value, json_t *loc,
                                 json_t *errors)
{
    if (!json_is_array(value)) {
        add_error(errors, loc, "Input should be a valid list", "list_type");
        return NULL;
    }
    size_t count = json_array_size(value);
    if (count < field->min_len) {
        char msg[128];
        snprintf(msg, sizeof msg, "List should have at least %zu item%s after validation, not %zu",
                 field->min_len, field->min_len == 1 ? "" : "s", count);
        add_error(errors, loc, msg, "too_short");
        return NULL;
    }
    json_t *out = json_array();
    bool ok = true;
    size_t i;
    json_t *item;
    json_array_foreach(value, i, item) {
        json_t *at = loc_index(loc, i);
        json_t *checked = check_object(field->items, item, at, errors);
        json_decref(at);
        if (checked)
            json_array_append_new(out, checked);
        else
            ok = false;
    }
    if (!ok)
        json_decref(out);
    return ok ? out : NULL;
}

/* The checked value (a new reference) or NULL with the errors added. */
static json_t *check_value(const field_t *field, json_t *value, json_t *loc, json_t *errors)
{
    switch (field->kind) {
    case KIND_STRING:
    case KIND_ID:
        return check_string(field, value, loc, errors);
    case KIND_INT:
        if (!json_is_integer(value)) {
            add_error(errors, loc, "Input should be a valid integer", "int_type");
            return NULL;
        }
        return check_range(field, (double)json_integer_value(value), loc, errors) == 0
                   ? json_incref(value)
                   : NULL;
    case KIND_NUMBER:
        if (!json_is_number(value)) {
            add_error(errors, loc, "Input should be a valid number", "float_type");
            return NULL;
        }
        return check_range(field, json_number_value(value), loc, errors) == 0 ? json_incref(value)
                                                                               : NULL;
    case KIND_BOOL:
        if (!json_is_boolean(value)) {
            add_error(errors, loc, "Input should be a valid boolean", "bool_type");
            return NULL;
        }
        return json_incref(value);
    case KIND_STRING_LIST:
        return check_string_list(value, loc, errors);
    case KIND_STRING_MAP:
        return check_string_map(value, loc, errors);
    case KIND_OBJECT_LIST:
        return check_object_list(field, value, loc, errors);
    case KIND_CHOICE:
        if (!json_is_string(value) || !is_choice(field->choices, json_string_value(value))) {
            char msg[256];
            choices_message(field->choices, msg, sizeof msg);
            add_error(errors, loc, msg, "literal_error");
            return NULL;
        }
        return json_incref(value);
    case KIND_ENUM:
        if (!json_is_string(value)) {
            add_error(errors, loc, "Input should be a valid string", "string_type");
            return NULL;
        }
        if (!is_choice(field->choices, json_string_value(value))) {
            char msg[256];
            choices_message(field->choices, msg, sizeof msg);
            add_error(errors, loc, msg, "enum");
            return NULL;
        }
        return json_incref(value);
    }
    return NULL;
}

static bool is_declared(const schema_t *schema, const char *key)
{
    for (const field_t *f = schema->fields; f->name; f++)
        if (strcmp(f->name, key) == 0)
            return true;
    return false;
}

/* Checks declared fields in declaration order, then unknown keys in input order (as
 * pydantic does). Returns the object without null-valued optional keys, or NULL when
 * any error was added. */
static json_t *check_object(const schema_t *schema, json_t *value, json_t *loc, json_t *errors)
{
    if (!json_is_object(value)) {
        add_error(errors, loc, "Input should be a valid dictionary", "dict_type");
        return NULL;
    }
    size_t errors_before = json_array_size(errors);
    json_t *out = json_object();
    for (const field_t *f = schema->fields; f->name; f++) {
        json_t *given = json_object_get(value, f->name);
        if (!given || (json_is_null(given) && !f->required)) {
            if (!given && f->required)
                add_error_at(errors, loc, f->name, "Field required", "missing");
            continue;
        }
        json_t *at = loc_key(loc, f->name);
        json_t *checked = check_value(f, given, at, errors);
        json_decref(at);
        if (checked)
            json_object_set_new(out, f->name, checked);
    }
    const char *key;
    json_t *given;
    json_object_foreach(value, key, given) {
        if (!is_declared(schema, key))
            add_error_at(errors, loc, key, "Extra inputs are not permitted", "extra_forbidden");
    }
    if (json_array_size(errors) == errors_before)
        return out;
    json_decref(out);
    return NULL;
}

json_t *gateway_validate_error_body(json_t *errors)
{
    return json_pack("{s:o}", "detail", errors);
}

/* jansson reports the offset just past the offending token and names the token in
 * its text ("... near 'tru'"); Python's json (and so FastAPI) reports where the token
 * starts, which is the more useful place to point at. */
static size_t error_offset(const json_error_t *jerr)
{
    size_t position = jerr->position > 0 ? (size_t)jerr->position : 0;
    const char *near = strstr(jerr->text, "near '");
    size_t text_len = strlen(jerr->text);
    if (!near || text_len < 1 || jerr->text[text_len - 1] != '\'')
        return position;
    size_t token_len = (size_t)(jerr->text + text_len - 1 - (near + 6));
    return token_len <= position ? position - token_len : position;
}

/* Parses the body as FastAPI does: empty is "missing", anything that is not one
 * JSON value is "json_invalid" at the byte where parsing stopped. */
static json_t *parse_body(const char *body, size_t len, json_t *errors)
{
    json_t *root = json_pack("[s]", "body");
    if (len == 0) {
        add_error(errors, root, "Field required", "missing");
        json_decref(root);
        return NULL;
    }
    json_error_t jerr;
    json_t *value = json_loadb(body, len, JSON_DECODE_ANY, &jerr);
    if (!value) {
        json_t *at = loc_index(root, error_offset(&jerr));
        add_error(errors, at, "JSON decode error", "json_invalid");
        json_decref(at);
    }
    json_decref(root);
    return value;
}

/* Runs parse + schema; 0 with *checked set, or 422 with *error set. An optional body
 * may be empty (or JSON null): it then checks as {}. */
static int check_body_opt(const schema_t *schema, bool optional, const char *body, size_t len,
                          json_t **checked, json_t **error)
{
    *checked = NULL;
    *error = NULL;
    json_t *errors = json_array();
    json_t *value = optional && len == 0 ? json_object() : parse_body(body, len, errors);
    if (optional && json_is_null(value)) {
        json_decref(value);
        value = json_object();
    }
    if (value) {
        json_t *root = json_pack("[s]", "body");
        *checked = check_object(schema, value, root, errors);
        json_decref(root);
        json_decref(value);
    }
    if (*checked) {
        json_decref(errors);
        return 0;
    }
    *error = gateway_validate_error_body(errors);
    return 422;
}

static int check_body(const schema_t *schema, const char *body, size_t len, json_t **checked,
                      json_t **error)
{
    return check_body_opt(schema, false, body, len, checked, error);
}

static json_t *plain_detail(const char *fmt, const char *what, size_t first, size_t second)
{
    char text[512];
    snprintf(text, sizeof text, fmt, what, first, second);
    return json_pack("{s:s}", "detail", text);
}

/* The first repeated phase_id, then the first repeated order, as a business error:
 * it is about the content, not the shape, so it only runs on a well-shaped body. */
static json_t *find_duplicate_phase(json_t *phases)
{
    size_t count = json_array_size(phases);
    for (size_t j = 1; j < count; j++) {
        const char *id = json_string_value(json_object_get(json_array_get(phases, j), "phase_id"));
        for (size_t i = 0; i < j; i++) {
            json_t *other = json_object_get(json_array_get(phases, i), "phase_id");
            if (strcmp(json_string_value(other), id) == 0)
                return plain_detail("Duplicate phase_id '%s' in phases[%zu] and phases[%zu]", id,
                                    i, j);
        }
    }
    for (size_t j = 1; j < count; j++) {
        json_int_t order = json_integer_value(json_object_get(json_array_get(phases, j), "order"));
        for (size_t i = 0; i < j; i++) {
            json_t *other = json_object_get(json_array_get(phases, i), "order");
            if (json_integer_value(other) == order) {
                char text[160];
                snprintf(text, sizeof text, "Duplicate order %lld in phases[%zu] and phases[%zu]",
                         (long long)order, i, j);
                return json_pack("{s:s}", "detail", text);
            }
        }
    }
    return NULL;
}

/* The duplicate check that follows a valid shape: 0, or 422 with *error. */
static int check_duplicates(json_t **args, json_t **error)
{
    json_t *duplicate = find_duplicate_phase(json_object_get(*args, "phases"));
    if (duplicate) {
        json_decref(*args);
        *args = NULL;
        *error = duplicate;
        return 422;
    }
    return 0;
}

int gateway_validate_workflow(const char *body, size_t len, json_t **args, json_t **error)
{
    int status = check_body(&workflow_schema, body, len, args, error);
    return status != 0 ? status : check_duplicates(args, error);
}

int gateway_validate_workflow_value(json_t *value, json_t **args, json_t **error)
{
    json_t *errors = json_array();
    json_t *root = json_pack("[s]", "body");
    *args = check_object(&workflow_schema, value, root, errors);
    json_decref(root);
    *error = NULL;
    if (!*args) {
        *error = gateway_validate_error_body(errors);
        return 422;
    }
    json_decref(errors);
    return check_duplicates(args, error);
}

int gateway_validate_phase_update(const char *body, size_t len, const char *workflow_id,
                                  const char *phase_id, json_t **args, json_t **error)
{
    json_t *checked;
    int status = check_body(&phase_update_schema, body, len, &checked, error);
    *args = NULL;
    if (status != 0)
        return status;
    *args = json_pack("{s:s, s:s}", "workflow_id", workflow_id, "phase_id", phase_id);
    json_object_update(*args, checked);
    json_decref(checked);
    return 0;
}

int gateway_validate_content(const char *body, size_t len, json_t **content, json_t **error)
{
    json_t *checked;
    int status = check_body(&validate_schema, body, len, &checked, error);
    *content = NULL;
    if (status != 0)
        return status;
    *content = json_incref(json_object_get(checked, "content"));
    json_decref(checked);
    return 0;
}

int gateway_validate_execute(const char *body, size_t len, const char *workflow_id,
                             json_t **args, json_t **error)
{
    json_t *checked;
    int status = check_body(&execute_schema, body, len, &checked, error);
    *args = NULL;
    if (status != 0)
        return status;
    json_t *inputs = json_object_get(checked, "inputs");
    json_t *task = json_object_get(checked, "task");
    json_t *repos = json_object_get(checked, "repos");
    *args = json_pack("{s:s, s:o, s:o, s:o}", "workflow_id", workflow_id, "inputs",
                      inputs ? json_incref(inputs) : json_object(), "task",
                      task ? json_incref(task) : json_null(), "repos",
                      repos ? json_incref(repos) : json_array());
    json_decref(checked);
    return 0;
}

/* Parses an optionally signed decimal integer surrounded by optional whitespace;
 * a value too large for a long saturates (so it fails the range check, as in
 * pydantic, rather than the parse). */
static int parse_query_int(const char *text, long *out)
{
    while (isspace((unsigned char)*text))
        text++;
    const char *p = text;
    if (*p == '+' || *p == '-')
        p++;
    if (!isdigit((unsigned char)*p))
        return -1;
    while (isdigit((unsigned char)*p))
        p++;
    const char *end = p;
    while (isspace((unsigned char)*p))
        p++;
    if (*p)
        return -1;
    errno = 0;
    char *stop;
    long value = strtol(text, &stop, 10);
    if (stop != end)
        return -1;
    *out = value; /* on ERANGE strtol already saturated to LONG_MIN/LONG_MAX */
    return 0;
}

int gateway_validate_query_int(const char *name, const char *text, long min, long max,
                               long def, long *out, json_t *errors)
{
    if (!text) {
        *out = def;
        return 0;
    }
    json_t *loc = json_pack("[s, s]", "query", name);
    long value;
    int rc = 0;
    if (parse_query_int(text, &value) != 0) {
        add_error(errors, loc,
                  "Input should be a valid integer, unable to parse string as an integer",
                  "int_parsing");
        rc = -1;
    } else if (value < min || value > max) {
        add_range_error(errors, loc, value < min, value < min ? min : max);
        rc = -1;
    } else {
        *out = value;
    }
    json_decref(loc);
    return rc;
}

int gateway_validate_control(gateway_control_t control, const char *body, size_t len,
                             const char *execution_id, json_t **args, json_t **error)
{
    const schema_t *schema = control == GATEWAY_CONTROL_INJECT   ? &inject_schema
                             : control == GATEWAY_CONTROL_RESUME ? &empty_schema
                                                                 : &reason_schema;
    json_t *checked;
    int status = check_body_opt(schema, control != GATEWAY_CONTROL_INJECT, body, len, &checked,
                                error);
    *args = NULL;
    if (status != 0)
        return status;
    json_t *reason = json_object_get(checked, "reason");
    json_t *role = json_object_get(checked, "role");
    switch (control) {
    case GATEWAY_CONTROL_CANCEL:
    case GATEWAY_CONTROL_PAUSE:
        *args = json_pack("{s:s, s:O}", "execution_id", execution_id, "reason",
                          reason ? reason : json_null());
        break;
    case GATEWAY_CONTROL_RESUME:
        *args = json_pack("{s:s}", "execution_id", execution_id);
        break;
    case GATEWAY_CONTROL_INJECT:
        *args = json_pack("{s:s, s:O, s:s}", "execution_id", execution_id, "message",
                          json_object_get(checked, "message"), "role",
                          role ? json_string_value(role) : "user");
        break;
    }
    json_decref(checked);
    return 0;
}

int gateway_validate_query_choice(const char *name, const char *text,
                                  const char *const *choices, const char **out, json_t *errors)
{
    *out = NULL;
    if (!text)
        return 0;
    for (const char *const *c = choices; *c; c++) {
        if (strcmp(*c, text) == 0) {
            *out = *c;
            return 0;
        }
    }
    char msg[256];
    choices_message(choices, msg, sizeof msg);
    json_t *loc = json_pack("[s, s]", "query", name);
    add_error(errors, loc, msg, "enum");
    json_decref(loc);
    return -1;
}

int gateway_validate_query_text(const char *name, const char *text, json_t *errors)
{
    if (!text || gateway_validate_text(text, strlen(text)))
        return 0;
    json_t *loc = json_pack("[s, s]", "query", name);
    add_error(errors, loc,
              "Input should be a valid string, unable to parse raw data as a unicode string",
              "string_unicode");
    json_decref(loc);
    return -1;
}

/* pydantic's lax booleans, as it reads them from a query string. */
int gateway_validate_query_bool(const char *name, const char *text, bool def, bool *out,
                                json_t *errors)
{
    static const char *const yes[] = {"1", "on", "t", "true", "y", "yes", NULL};
    static const char *const no[] = {"0", "off", "f", "false", "n", "no", NULL};
    *out = def;
    if (!text)
        return 0;
    for (size_t i = 0; yes[i]; i++) {
        if (strcasecmp(text, yes[i]) == 0) {
            *out = true;
            return 0;
        }
        if (strcasecmp(text, no[i]) == 0) {
            *out = false;
            return 0;
        }
    }
    json_t *loc = json_pack("[s, s]", "query", name);
    add_error(errors, loc, "Input should be a valid boolean, unable to interpret input",
              "bool_parsing");
    json_decref(loc);
    return -1;
}
