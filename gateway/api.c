#include "gateway/api.h"
#include "gateway/validate.h"
#include "gateway/yaml.h"
#include "template/spec.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

static const char *const status_choices[] = {"pending",   "running", "paused",
                                             "completed", "failed",  "cancelled", NULL};

static int query_args(gateway_query_fn query, void *cls, const char **names, const long *mins,
                      const long *maxs, const long *defaults, size_t count, json_t **args,
                      json_t **error)
{
    json_t *errors = json_array();
    json_t *out = json_object();
    for (size_t i = 0; i < count; i++) {
        long value;
        if (gateway_validate_query_int(names[i], query(cls, names[i]), mins[i], maxs[i],
                                       defaults[i], &value, errors) == 0)
            json_object_set_new(out, names[i], json_integer(value));
    }
    if (json_array_size(errors) == 0) {
        json_decref(errors);
        *args = out;
        return 0;
    }
    json_decref(out);
    *error = gateway_validate_error_body(errors);
    return 422;
}

/* page and page_size as every listing takes them (page_size default 50, at most 100),
 * added to out; errors appended. */
static void paging_args(gateway_query_fn query, void *cls, json_t *out, json_t *errors)
{
    long page, page_size;
    if (gateway_validate_query_int("page", query(cls, "page"), 1, 1000000000, 1, &page,
                                   errors) == 0)
        json_object_set_new(out, "page", json_integer(page));
    if (gateway_validate_query_int("page_size", query(cls, "page_size"), 1, 100, 50, &page_size,
                                   errors) == 0)
        json_object_set_new(out, "page_size", json_integer(page_size));
}

/* Finishes a query-built args object: 0 with *args, or 422 with *error. */
static int finish_query(json_t *out, json_t *errors, json_t **args, json_t **error)
{
    if (json_array_size(errors) == 0) {
        json_decref(errors);
        *args = out;
        return 0;
    }
    json_decref(out);
    *error = gateway_validate_error_body(errors);
    return 422;
}

/* GET /executions?status=&workflow_id=&page=&page_size= (errors in that order). */
static int execution_list_args(gateway_query_fn query, void *cls, json_t **args, json_t **error)
{
    json_t *errors = json_array();
    json_t *out = json_object();
    const char *status = NULL;
    gateway_validate_query_choice("status", query(cls, "status"), status_choices, &status,
                                  errors);
    json_object_set_new(out, "status", status ? json_string(status) : json_null());
    const char *workflow_id = query(cls, "workflow_id");
    if (gateway_validate_query_text("workflow_id", workflow_id, errors) == 0)
        json_object_set_new(out, "workflow_id",
                            workflow_id ? json_string(workflow_id) : json_null());
    paging_args(query, cls, out, errors);
    return finish_query(out, errors, args, error);
}

/* GET /workflows?workflow_type=&include_archived=&page=&page_size= (errors in that
 * order). */
static int workflow_list_args(gateway_query_fn query, void *cls, json_t **args, json_t **error)
{
    json_t *errors = json_array();
    json_t *out = json_object();
    const char *type = NULL;
    gateway_validate_query_choice("workflow_type", query(cls, "workflow_type"),
                                  spec_workflow_types, &type, errors);
    json_object_set_new(out, "workflow_type", type ? json_string(type) : json_null());
    bool archived = false;
    if (gateway_validate_query_bool("include_archived", query(cls, "include_archived"), false,
                                    &archived, errors) == 0)
        json_object_set_new(out, "include_archived", json_boolean(archived));
    long page, page_size;
    if (gateway_validate_query_int("page", query(cls, "page"), 1, 1000000000, 1, &page,
                                   errors) == 0)
        json_object_set_new(out, "page", json_integer(page));
    if (gateway_validate_query_int("page_size", query(cls, "page_size"), 1, 100, 20, &page_size,
                                   errors) == 0)
        json_object_set_new(out, "page_size", json_integer(page_size));
    return finish_query(out, errors, args, error);
}

static int workflow_runs_args(const char *workflow_id, gateway_query_fn query, void *cls,
                              json_t **args, json_t **error)
{
    json_t *errors = json_array();
    json_t *out = json_pack("{s:s}", "workflow_id", workflow_id);
    paging_args(query, cls, out, errors);
    return finish_query(out, errors, args, error);
}

static json_t *execution_arg(const gateway_route_t *route)
{
    return json_pack("{s:s}", "execution_id", route->params[0]);
}

json_t *gateway_api_replay_args(const char *execution_id, uint64_t after_seq, unsigned limit)
{
    return json_pack("{s:s?, s:I, s:I}", "execution_id", execution_id, "after_seq",
                     (json_int_t)after_seq, "limit", (json_int_t)limit);
}

int gateway_api_last_event_id(const char *text, uint64_t *seq, json_t **error)
{
    *seq = 0;
    *error = NULL;
    if (!text)
        return 0;
    const char *p = text;
    while (*p == ' ' || *p == '\t')
        p++;
    const char *digits = p;
    while (isdigit((unsigned char)*p))
        p++;
    const char *end = p;
    while (*p == ' ' || *p == '\t')
        p++;
    errno = 0;
    unsigned long long value = end > digits ? strtoull(digits, NULL, 10) : 0;
    if (end == digits || *p || errno == ERANGE || value > (unsigned long long)INT64_MAX) {
        json_t *errors = json_array();
        json_array_append_new(
            errors, json_pack("{s:[s, s], s:s, s:s}", "loc", "header", "last-event-id", "msg",
                              "Input should be a valid integer, unable to parse string as an "
                              "integer",
                              "type", "int_parsing"));
        *error = gateway_validate_error_body(errors);
        return 422;
    }
    *seq = (uint64_t)value;
    return 0;
}

int gateway_api_idempotency_key(const char *text, json_t *args, json_t **error)
{
    *error = NULL;
    if (!text)
        return 0;
    if (!syn_op_idempotency_key_ok(text)) {
        json_t *errors = json_array();
        json_array_append_new(
            errors, json_pack("{s:[s, s], s:s, s:s}", "loc", "header", "idempotency-key", "msg",
                              "Idempotency-Key must be 1 to 255 printable ASCII characters",
                              "type", "string_pattern_mismatch"));
        *error = gateway_validate_error_body(errors);
        return 422;
    }
    json_object_set_new(args, "idempotency_key", json_string(text));
    return 0;
}

int gateway_api_request(const gateway_route_t *route, const char *content_type, const char *body,
                        size_t len, gateway_query_fn query, void *cls, syn_op_t *op,
                        json_t **args, json_t **error)
{
    *args = NULL;
    *error = NULL;
    switch (route->id) {
    case GATEWAY_ROUTE_HEALTH:
        *op = SYN_OP_HEALTH;
        *args = json_object();
        return 0;
    case GATEWAY_ROUTE_METRICS:
        *op = SYN_OP_METRICS_GET;
        *args = json_object();
        return 0;
    case GATEWAY_ROUTE_WORKFLOW_CREATE:
        *op = SYN_OP_WORKFLOW_CREATE;
        return gateway_validate_workflow(body, len, args, error);
    case GATEWAY_ROUTE_WORKFLOW_LIST:
        *op = SYN_OP_WORKFLOW_LIST;
        return workflow_list_args(query, cls, args, error);
    case GATEWAY_ROUTE_WORKFLOW_FROM_YAML:
        *op = SYN_OP_WORKFLOW_CREATE;
        return gateway_yaml_from_upload(content_type, body, len, query(cls, "id"),
                                        query(cls, "name"), args, error);
    case GATEWAY_ROUTE_WORKFLOW_VALIDATE:
        return gateway_yaml_validate(content_type, body, len, error);
    case GATEWAY_ROUTE_WORKFLOW_EXPORT:
        *op = SYN_OP_WORKFLOW_GET;
        *args = json_pack("{s:s}", "id", route->params[0]);
        return 0;
    case GATEWAY_ROUTE_WORKFLOW_ARCHIVE:
        *op = SYN_OP_WORKFLOW_ARCHIVE;
        *args = json_pack("{s:s}", "id", route->params[0]);
        return 0;
    case GATEWAY_ROUTE_PHASE_UPDATE:
        *op = SYN_OP_WORKFLOW_PHASE_UPDATE;
        return gateway_validate_phase_update(body, len, route->params[0], route->params[1], args,
                                             error);
    case GATEWAY_ROUTE_WORKFLOW_GET:
        *op = SYN_OP_WORKFLOW_GET;
        *args = json_pack("{s:s}", "id", route->params[0]);
        return 0;
    case GATEWAY_ROUTE_EXECUTION_START:
        *op = SYN_OP_EXECUTION_START;
        return gateway_validate_execute(body, len, route->params[0], args, error);
    case GATEWAY_ROUTE_EXECUTION_STATUS:
        *op = SYN_OP_EXECUTION_STATUS;
        *args = json_pack("{s:s, s:s}", "workflow_id", route->params[0], "execution_id",
                          route->params[1]);
        return 0;
    case GATEWAY_ROUTE_EXECUTION_ACTIVE: {
        static const char *names[] = {"limit"};
        static const long mins[] = {1}, maxs[] = {100}, defaults[] = {20};
        *op = SYN_OP_EXECUTION_ACTIVE;
        return query_args(query, cls, names, mins, maxs, defaults, 1, args, error);
    }
    case GATEWAY_ROUTE_EXECUTION_LIST:
        *op = SYN_OP_EXECUTION_LIST;
        return execution_list_args(query, cls, args, error);
    case GATEWAY_ROUTE_EXECUTION_GET:
        *op = SYN_OP_EXECUTION_GET;
        *args = execution_arg(route);
        return 0;
    case GATEWAY_ROUTE_EXECUTION_STATE:
        *op = SYN_OP_EXECUTION_STATE;
        *args = execution_arg(route);
        return 0;
    case GATEWAY_ROUTE_EXECUTION_CANCEL:
        *op = SYN_OP_EXECUTION_CANCEL;
        return gateway_validate_control(GATEWAY_CONTROL_CANCEL, body, len, route->params[0],
                                        args, error);
    case GATEWAY_ROUTE_EXECUTION_PAUSE:
        *op = SYN_OP_EXECUTION_PAUSE;
        return gateway_validate_control(GATEWAY_CONTROL_PAUSE, body, len, route->params[0], args,
                                        error);
    case GATEWAY_ROUTE_EXECUTION_RESUME:
        *op = SYN_OP_EXECUTION_RESUME;
        return gateway_validate_control(GATEWAY_CONTROL_RESUME, body, len, route->params[0],
                                        args, error);
    case GATEWAY_ROUTE_EXECUTION_INJECT:
        *op = SYN_OP_EXECUTION_INJECT;
        return gateway_validate_control(GATEWAY_CONTROL_INJECT, body, len, route->params[0],
                                        args, error);
    case GATEWAY_ROUTE_EXECUTION_RERUN:
        *op = SYN_OP_EXECUTION_RERUN;
        return gateway_validate_control(GATEWAY_CONTROL_RERUN, body, len, route->params[0], args,
                                        error);
    case GATEWAY_ROUTE_EXECUTION_APPROVE:
        *op = SYN_OP_EXECUTION_APPROVE;
        return gateway_validate_control(GATEWAY_CONTROL_APPROVE, body, len, route->params[0],
                                        args, error);
    case GATEWAY_ROUTE_EXECUTION_REJECT:
        *op = SYN_OP_EXECUTION_REJECT;
        return gateway_validate_control(GATEWAY_CONTROL_REJECT, body, len, route->params[0],
                                        args, error);
    case GATEWAY_ROUTE_EXECUTION_TIMELINE:
        *op = SYN_OP_EXECUTION_GET;
        *args = json_pack("{s:s}", "execution_id", route->params[0]);
        return 0;
    case GATEWAY_ROUTE_PHASE_OUTPUT:
        *op = SYN_OP_EXECUTION_OUTPUT;
        *args = json_pack("{s:s, s:s}", "execution_id", route->params[0], "phase_id",
                          route->params[1]);
        return 0;
    case GATEWAY_ROUTE_WORKFLOW_RUNS:
        *op = SYN_OP_WORKFLOW_RUNS;
        return workflow_runs_args(route->params[0], query, cls, args, error);
    /* the fleet (issue 18) */
    case GATEWAY_ROUTE_WORKERS:
        *op = SYN_OP_WORKERS_LIST;
        *args = json_object();
        return 0;
    case GATEWAY_ROUTE_READY:
        *op = SYN_OP_READY;
        *args = json_object();
        return 0;
    /* artifacts (issue 17): a download starts with the list (a tar) or the file's
     * first range; gateway/download.c asks for the rest */
    case GATEWAY_ROUTE_ARTIFACT_LIST:
    case GATEWAY_ROUTE_ARTIFACT_TAR:
    case GATEWAY_ROUTE_ARTIFACT_ZIP:
        *op = SYN_OP_EXECUTION_ARTIFACTS;
        *args = execution_arg(route);
        return 0;
    case GATEWAY_ROUTE_ARTIFACT_GET:
        *op = SYN_OP_EXECUTION_ARTIFACT;
        *args = json_pack("{s:s, s:s, s:s, s:i, s:i}", "execution_id", route->params[0],
                          "phase_id", route->params[1], "path", route->rest, "offset", 0,
                          "length", SYN_OP_ARTIFACT_READ_MAX);
        return 0;
    case GATEWAY_ROUTE_SSE_EXECUTION:
    case GATEWAY_ROUTE_SSE_ACTIVITY:
        break; /* streams, not one operation: the gateway serves them itself */
    case GATEWAY_ROUTE_UI_REDIRECT:
    case GATEWAY_ROUTE_UI_FILE:
    case GATEWAY_ROUTE_WHOAMI:
        break; /* the dashboard: answered by the gateway alone (gateway/ui.h, access.h) */
    case GATEWAY_ROUTE_COSTS_SUMMARY:
    case GATEWAY_ROUTE_COSTS_EXECUTIONS:
    case GATEWAY_ROUTE_COSTS_EXECUTION:
    case GATEWAY_ROUTE_COSTS_SESSIONS:
    case GATEWAY_ROUTE_COSTS_SESSION:
        break; /* the original's routes: gateway/original_compat.h maps them */
    }
    *error = json_pack("{s:s}", "detail", "Not Found");
    return 404;
}
