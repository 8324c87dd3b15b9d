/* yaml: media types, uploads, validation answers and export for the YAML routes. */
#include "gateway/yaml.h"
#include "gateway/validate.h"

#include "common/ids.h"
#include "common/utf8.h"
#include "template/errors.h"
#include "template/export.h"
#include "template/spec.h"
#include "template/workflow.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MEDIA_TYPES "application/yaml, application/x-yaml, text/yaml or text/x-yaml"
/* How much of a refused Content-Type the 415 answer repeats. */
#define SHOWN_TYPE_MAX 100

static const char *const yaml_types[] = {"application/yaml", "application/x-yaml", "text/yaml",
                                         "text/x-yaml", NULL};

bool gateway_yaml_media_type(const char *content_type)
{
    if (!content_type)
        return false;
    const char *p = content_type;
    while (*p == ' ' || *p == '\t')
        p++;
    const char *start = p;
    while (*p && *p != ';' && *p != ' ' && *p != '\t')
        p++;
    size_t len = (size_t)(p - start);
    while (*p == ' ' || *p == '\t')
        p++;
    if (*p && *p != ';')
        return false;
    for (size_t i = 0; yaml_types[i]; i++)
        if (strlen(yaml_types[i]) == len && strncasecmp(start, yaml_types[i], len) == 0)
            return true;
    return false;
}

static json_t *unsupported_media_type(const char *content_type)
{
    char shown[SHOWN_TYPE_MAX + 8];
    if (!content_type) {
        snprintf(shown, sizeof shown, "none");
    } else if (!gateway_validate_text(content_type, strlen(content_type))) {
        snprintf(shown, sizeof shown, "(not readable text)");
    } else {
        size_t whole = strlen(content_type);
        size_t len = syn_utf8_cut(content_type, whole, SHOWN_TYPE_MAX);
        snprintf(shown, sizeof shown, "%.*s%s", (int)len, content_type, len < whole ? "..." : "");
    }
    char text[SHOWN_TYPE_MAX + 160];
    snprintf(text, sizeof text, "Unsupported Media Type: %s (send the workflow as " MEDIA_TYPES
             ")", shown);
    return json_pack("{s:s}", "detail", text);
}

static void add_query_error(json_t *errors, const char *name, const char *msg, const char *type)
{
    json_array_append_new(errors, json_pack("{s:[s, s], s:s, s:s}", "loc", "query", name, "msg",
                                            msg, "type", type));
}

/* ?id= and ?name=, checked as POST /workflows checks the same keys. */
static void check_overrides(const char *id, const char *name, json_t *errors)
{
    if (id && gateway_validate_query_text("id", id, errors) == 0 && !syn_id_is_valid(id))
        add_query_error(errors, "id", "String should match pattern '" SYN_ID_PATTERN "'",
                        "string_pattern_mismatch");
    if (name && gateway_validate_query_text("name", name, errors) == 0 && !*name)
        add_query_error(errors, "name", "String should have at least 1 character",
                        "string_too_short");
}

/* The HTTP status for what the template library found wrong. */
static int status_of(const template_errors_t *errors)
{
    switch (template_errors_worst(errors)) {
    case TEMPLATE_ERROR_TOO_LARGE:
        return 413;
    case TEMPLATE_ERROR_SYNTAX:
    case TEMPLATE_ERROR_UNSUPPORTED:
    case TEMPLATE_ERROR_IO:
        return 400;
    case TEMPLATE_ERROR_INVALID:
        break;
    }
    return 422;
}

static json_t *refused_body(const template_errors_t *errors)
{
    char *summary = template_errors_summary(errors);
    json_t *body = json_pack("{s:s, s:o}", "detail", summary ? summary : "invalid workflow",
                             "errors", template_errors_json(errors));
    free(summary);
    return body;
}

int gateway_yaml_from_upload(const char *content_type, const char *body, size_t len,
                             const char *id, const char *name, json_t **args, json_t **error)
{
    *args = NULL;
    *error = NULL;
    if (!gateway_yaml_media_type(content_type)) {
        *error = unsupported_media_type(content_type);
        return 415;
    }
    json_t *query_errors = json_array();
    check_overrides(id, name, query_errors);
    if (json_array_size(query_errors) > 0) {
        *error = gateway_validate_error_body(query_errors);
        return 422;
    }
    json_decref(query_errors);

    template_errors_t *errors = template_errors_new();
    if (!errors) {
        *error = json_pack("{s:s}", "detail", "gateway out of memory");
        return 500;
    }
    json_t *workflow = template_workflow_parse(body, len, NULL, NULL, errors);
    if (!workflow) {
        int status = status_of(errors);
        *error = refused_body(errors);
        template_errors_destroy(&errors);
        return status;
    }
    template_errors_destroy(&errors);
    /* the template library checked the document against the workflow specification
     * (template/spec.h), duplicates included, and the overrides were checked above:
     * nothing is left to check twice */
    if (id)
        json_object_set_new(workflow, "id", json_string(id));
    if (name)
        json_object_set_new(workflow, "name", json_string(name));
    *args = workflow;
    return 0;
}

/* The validate answer for one YAML text. */
static int validate_text(const char *text, size_t len, json_t **answer)
{
    template_errors_t *errors = template_errors_new();
    if (!errors) {
        *answer = json_pack("{s:s}", "detail", "gateway out of memory");
        return 500;
    }
    json_t *workflow = template_workflow_parse(text, len, NULL, NULL, errors);
    json_t *list = template_errors_json(errors);
    template_errors_destroy(&errors);
    /* name, workflow_type and phase_count as the original's ValidateYamlResponse has
     * them ("" and 0 for an invalid document) */
    const char *name = json_string_value(json_object_get(workflow, "name"));
    const char *type = json_string_value(json_object_get(workflow, "workflow_type"));
    /* warnings: what the workflow asks for that syn does differently (template/spec.c) */
    *answer = json_pack("{s:b, s:o, s:s, s:s, s:I, s:o}", "valid", json_array_size(list) == 0,
                        "errors", list, "name", workflow && name ? name : "", "workflow_type",
                        workflow ? (type ? type : "custom") : "", "phase_count",
                        (json_int_t)json_array_size(json_object_get(workflow, "phases")),
                        "warnings", spec_workflow_warnings(workflow));
    json_decref(workflow);
    return 200;
}

int gateway_yaml_validate(const char *content_type, const char *body, size_t len,
                          json_t **answer)
{
    /* The YAML itself, as from-yaml takes it, or wrapped in JSON as {"content": ...}. */
    if (gateway_yaml_media_type(content_type))
        return validate_text(body, len, answer);
    json_t *content = NULL, *error = NULL;
    int status = gateway_validate_content(body, len, &content, &error);
    if (status != 0) {
        *answer = error;
        return status;
    }
    status = validate_text(json_string_value(content), json_string_length(content), answer);
    json_decref(content);
    return status;
}

int gateway_yaml_export(const json_t *workflow, char **text, json_t **error)
{
    char why[256];
    *error = NULL;
    *text = template_export_yaml(workflow, NULL, why, sizeof why);
    if (*text)
        return 200;
    *error = json_pack("{s:s}", "detail", "invalid reply from broker: not a workflow");
    return 502;
}
