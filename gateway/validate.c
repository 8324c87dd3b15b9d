#include "gateway/validate.h"
#include "proto/ops.h"

#include "common/budget_usd.h"
#include "common/utf8.h"
#include "template/spec.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* The bodies are tables walked by template/spec.c (a workflow's are the workflow
 * specification itself), so a new body is a new table rather than new code, and the
 * order of the table is the order of the errors. */
static const spec_field_t validate_fields[] = {
    {.name = "content", .kind = SPEC_STRING, .required = true},
    {.name = NULL},
};
static const spec_object_t validate_schema = {validate_fields};

static const spec_field_t execute_fields[] = {
    {.name = "inputs", .kind = SPEC_STRING_MAP},
    {.name = "task", .kind = SPEC_STRING},
    {.name = "repos", .kind = SPEC_STRING_LIST},
    {.name = "provider", .kind = SPEC_STRING},
    {.name = "max_budget_usd", .kind = SPEC_NUMBER, .has_min = true, .min = 0,
     .min_exclusive = true, .has_max = true, .max = SYN_BUDGET_USD_MAX},
    {.name = "priority", .kind = SPEC_INT, .has_min = true, .min = SYN_OP_PRIORITY_MIN,
     .has_max = true, .max = SYN_OP_PRIORITY_MAX},
    {.name = NULL},
};
static const spec_object_t execute_schema = {execute_fields};

static const char *const role_choices[] = {"user", "system", NULL};

/* rerun (issue 19): {from_phase?, inputs?, task?, priority?}. */
static const spec_field_t rerun_fields[] = {
    {.name = "from_phase", .kind = SPEC_STRING, .min_len = 1},
    {.name = "inputs", .kind = SPEC_STRING_MAP},
    {.name = "task", .kind = SPEC_STRING},
    {.name = "priority", .kind = SPEC_INT, .has_min = true, .min = SYN_OP_PRIORITY_MIN,
     .has_max = true, .max = SYN_OP_PRIORITY_MAX},
    {.name = NULL},
};
static const spec_object_t rerun_schema = {rerun_fields};

/* cancel and pause: {reason?}; resume: {} (no keys); inject: {message, role?}. */
static const spec_field_t reason_fields[] = {
    {.name = "reason", .kind = SPEC_STRING},
    {.name = NULL},
};
static const spec_object_t reason_schema = {reason_fields};

static const spec_field_t approve_fields[] = {
    {.name = "comment", .kind = SPEC_STRING},
    {.name = NULL},
};
static const spec_object_t approve_schema = {approve_fields};

static const spec_field_t no_fields[] = {{.name = NULL}};
static const spec_object_t empty_schema = {no_fields};

static const spec_field_t inject_fields[] = {
    {.name = "message", .kind = SPEC_STRING, .required = true, .min_len = 1},
    {.name = "role", .kind = SPEC_LITERAL, .choices = role_choices},
    {.name = NULL},
};
static const spec_object_t inject_schema = {inject_fields};

static void add_error(json_t *errors, json_t *loc, const char *msg, const char *type)
{
    json_array_append_new(errors, json_pack("{s:O, s:s, s:s}", "loc", loc, "msg", msg,
                                            "type", type));
}

static json_t *loc_index(const json_t *loc, size_t index)
{
    json_t *child = json_copy((json_t *)loc);
    json_array_append_new(child, json_integer((json_int_t)index));
    return child;
}

bool gateway_validate_text(const char *text, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)text[i];
        if (c < 0x20 || c == 0x7f)
            return false; /* control characters never belong in an id or a query */
    }
    return syn_utf8_valid(text, len, NULL);
}

/* Every violation the walk finds becomes one pydantic item of the 422 list. */
static void add_violation(void *errors, const spec_violation_t *violation)
{
    json_array_append_new(errors, spec_pydantic_error(violation));
}

static json_t *check_object(const spec_object_t *schema, json_t *value, json_t *loc,
                            json_t *errors)
{
    return spec_check(schema, value, loc, add_violation, errors);
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
static int check_body_opt(const spec_object_t *schema, bool optional, const char *body, size_t len,
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

static int check_body(const spec_object_t *schema, const char *body, size_t len, json_t **checked,
                      json_t **error)
{
    return check_body_opt(schema, false, body, len, checked, error);
}

/* The duplicate check that follows a valid shape: 0, or 422 with *error. */
static int check_duplicates(json_t **args, json_t **error)
{
    json_t *duplicate = spec_duplicate_phase(json_object_get(*args, "phases"));
    if (!duplicate)
        return 0;
    json_decref(*args);
    *args = NULL;
    *error = duplicate;
    return 422;
}

int gateway_validate_workflow(const char *body, size_t len, json_t **args, json_t **error)
{
    int status = check_body(&spec_workflow, body, len, args, error);
    return status != 0 ? status : check_duplicates(args, error);
}

int gateway_validate_phase_update(const char *body, size_t len, const char *workflow_id,
                                  const char *phase_id, json_t **args, json_t **error)
{
    json_t *checked;
    int status = check_body(&spec_phase_update, body, len, &checked, error);
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
    json_t *priority = json_object_get(checked, "priority");
    if (*args && json_is_integer(priority) && json_integer_value(priority) != 0)
        json_object_set(*args, "priority", priority);
    json_t *budget = json_object_get(checked, "max_budget_usd");
    if (*args && json_is_number(budget))
        json_object_set(*args, "max_budget_usd", budget);
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
        spec_field_t bounds = {.name = name, .kind = SPEC_INT, .has_min = true, .min = min,
                               .has_max = true, .max = max};
        spec_violation_t violation = {.loc = loc, .problem = value < min ? SPEC_TOO_SMALL
                                                                         : SPEC_TOO_LARGE,
                                      .field = &bounds};
        add_violation(errors, &violation);
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
    const spec_object_t *schema = control == GATEWAY_CONTROL_INJECT    ? &inject_schema
                                  : control == GATEWAY_CONTROL_RESUME  ? &empty_schema
                                  : control == GATEWAY_CONTROL_RERUN   ? &rerun_schema
                                  : control == GATEWAY_CONTROL_APPROVE ? &approve_schema
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
    case GATEWAY_CONTROL_APPROVE: {
        json_t *comment = json_object_get(checked, "comment");
        *args = json_pack("{s:s, s:O}", "execution_id", execution_id, "comment",
                          comment ? comment : json_null());
        break;
    }
    case GATEWAY_CONTROL_CANCEL:
    case GATEWAY_CONTROL_PAUSE:
    case GATEWAY_CONTROL_REJECT:
        *args = json_pack("{s:s, s:O}", "execution_id", execution_id, "reason",
                          reason ? reason : json_null());
        break;
    case GATEWAY_CONTROL_RESUME:
        *args = json_pack("{s:s}", "execution_id", execution_id);
        break;
    case GATEWAY_CONTROL_RERUN:
        *args = json_deep_copy(checked);
        json_object_set_new(*args, "execution_id", json_string(execution_id));
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
    spec_field_t field = {.name = name, .kind = SPEC_ENUM, .choices = choices};
    json_t *loc = json_pack("[s, s]", "query", name);
    spec_violation_t violation = {.loc = loc, .problem = SPEC_NOT_CHOICE, .field = &field};
    add_violation(errors, &violation);
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
