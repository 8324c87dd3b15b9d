/* original_compat: the original's request and answer shapes beside syn's
 * (gateway/original_compat.h). The cost, metrics and export answers are
 * gateway/original_reports.c's. */
#include "gateway/original_compat.h"
#include "gateway/original_install.h"
#include "gateway/original_reports.h"
#include "gateway/validate.h"
#include "gateway/yaml.h"
#include "template/schema.h"
#include "template/spec.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* --- POST /workflows: CreateWorkflowRequest → syn's workflow ------------------- */

/* The original's keys syn's workflow has no field of (yet): taken off the request,
 * answered back (repository_url, requires_repos) or named in `warnings`. */
static const char *const original_workflow_keys[] = {
    "repository_url", "repository_ref", "project_name", "requires_repos", "repos",
    "version",        "source_digest",  "force",        NULL};
static const char *const original_phase_keys[] = {"id", "agent", NULL};

static bool spec_knows(const spec_object_t *object, const char *name)
{
    for (const spec_field_t *f = object->fields; f->name; f++)
        if (strcmp(f->name, name) == 0)
            return true;
    return false;
}

static void warn(json_t *keep, const char *fmt, const char *key)
{
    char text[256];
    snprintf(text, sizeof text, fmt, key);
    json_array_append_new(json_object_get(keep, "warnings"), json_string(text));
}

/* Moves doc[key] to keep[key] when syn's workflow has no such field; true when the key
 * was the original's and is handled. */
static void hold_key(json_t *doc, json_t *keep, const char *key, const char *why)
{
    json_t *value = json_object_get(doc, key);
    if (!value || spec_knows(&spec_workflow, key))
        return;
    if (!json_is_null(value) && why)
        warn(keep, why, key);
    json_object_del(doc, key);
}

/* The original's phase: `id` for phase_id, `order` by position, the agent's provider
 * and model nested under `agent` (its packaged YAML's spelling, template/spec.c). */
static void phase_from_original(json_t *phase, size_t index)
{
    if (!json_is_object(phase))
        return;
    json_t *id = json_object_get(phase, "id");
    json_t *phase_id = json_object_get(phase, "phase_id");
    if (json_is_string(id) && (!phase_id || json_is_null(phase_id)))
        json_object_set(phase, "phase_id", id);
    if (json_is_string(id) && json_equal(id, json_object_get(phase, "phase_id")))
        json_object_del(phase, "id");
    json_t *order = json_object_get(phase, "order");
    if (!order || json_is_null(order))
        json_object_set_new(phase, "order", json_integer((json_int_t)index + 1));
    /* its agent is kept (syn knows the key); the provider and model it means are shown
     * on the phase too, where syn's own clients read them */
    json_t *agent = json_object_get(phase, "agent");
    if (json_is_object(agent)) {
        const char *provider = spec_phase_provider(phase), *model = spec_phase_model(phase);
        if (provider && !json_is_string(json_object_get(phase, "provider")))
            json_object_set_new(phase, "provider", json_string(provider));
        if (model && !json_is_string(json_object_get(phase, "model")))
            json_object_set_new(phase, "model", json_string(model));
    } else if (json_is_null(agent)) {
        json_object_del(phase, "agent");
    }
}

/* The original makes one phase when a request has none: "Initial Phase", order 1,
 * "Default initial phase". syn needs a prompt: the task ($ARGUMENTS). */
static json_t *initial_phase(void)
{
    return json_pack("[{s:s, s:s, s:i, s:s, s:s}]", "phase_id", "initial", "name",
                     "Initial Phase", "order", 1, "description", "Default initial phase",
                     "prompt_template", "$ARGUMENTS");
}

/* "; did you mean 'x'?" after an unknown key's message, from syn's names and the
 * original's at that place (a body, a phase, an input declaration). */
static void suggest_keys(json_t *detail)
{
    size_t i;
    json_t *item;
    json_array_foreach(detail, i, item) {
        const char *type = json_string_value(json_object_get(item, "type"));
        json_t *loc = json_object_get(item, "loc");
        size_t depth = json_array_size(loc);
        const char *key = json_string_value(json_array_get(loc, depth - 1));
        if (!type || strcmp(type, "extra_forbidden") != 0 || !key)
            continue;
        const char *where = depth >= 4 ? json_string_value(json_array_get(loc, 1)) : NULL;
        const spec_object_t *object = !where                         ? &spec_workflow
                                      : strcmp(where, "phases") == 0 ? &spec_phase
                                                                     : &spec_input;
        const char *names[64];
        size_t count = 0;
        for (const spec_field_t *f = object->fields; f->name && count < 48; f++)
            names[count++] = f->name;
        const char *const *extra = object == &spec_workflow ? original_workflow_keys
                                   : object == &spec_phase  ? original_phase_keys
                                                            : NULL;
        for (; extra && *extra && count < 64; extra++)
            names[count++] = *extra;
        const char *near = template_schema_closest(key, names, count);
        const char *msg = json_string_value(json_object_get(item, "msg"));
        if (!near || !msg)
            continue;
        char text[512];
        snprintf(text, sizeof text, "%s; did you mean '%s'?", msg, near);
        json_object_set_new(item, "msg", json_string(text));
    }
}

static int create_request(const char *body, size_t len, json_t **args, json_t **error,
                          json_t **keep)
{
    json_t *doc = json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL);
    if (!json_is_object(doc)) {
        json_decref(doc);
        return gateway_validate_workflow(body, len, args, error);
    }
    json_t *held = json_pack("{s:s, s:b, s:[]}", "repository_url", "", "requires_repos", 1,
                             "warnings");
    json_t *url = json_object_get(doc, "repository_url");
    json_t *ref = json_object_get(doc, "repository_ref");
    if (json_is_string(url))
        json_object_set(held, "repository_url", url);
    if (json_is_string(url) && json_string_length(url) > 0 &&
        spec_knows(&spec_workflow, "repository") && !json_object_get(doc, "repository"))
        json_object_set_new(doc, "repository",
                            json_pack("{s:O, s:s}", "url", url, "ref",
                                      json_is_string(ref) ? json_string_value(ref) : "main"));
    else if (json_is_string(url) && json_string_length(url) > 0)
        warn(held, "%s is kept in this answer only: give the repository when executing "
                   "(repos) until workflows carry one",
             "repository_url");
    if (json_is_string(url) || json_is_null(url))
        json_object_del(doc, "repository_url");
    if (json_is_string(ref) || json_is_null(ref))
        json_object_del(doc, "repository_ref");
    json_t *requires_repos = json_object_get(doc, "requires_repos");
    if (json_is_boolean(requires_repos)) {
        json_object_set(held, "requires_repos", requires_repos);
        hold_key(doc, held, "requires_repos", NULL);
    }
    if (json_is_string(json_object_get(doc, "project_name")) ||
        json_is_null(json_object_get(doc, "project_name")))
        hold_key(doc, held, "project_name", "%s is not stored by syn yet");
    json_t *repos = json_object_get(doc, "repos");
    if (json_is_array(repos) && json_array_size(repos) > 0)
        warn(held, "%s are not stored with the workflow: give them when executing", "repos");
    if (json_is_array(repos))
        json_object_del(doc, "repos");
    static const char *const provenance[] = {"version", "source_digest"};
    for (size_t i = 0; i < 2; i++)
        if (json_is_string(json_object_get(doc, provenance[i])) ||
            json_is_null(json_object_get(doc, provenance[i])))
            hold_key(doc, held, provenance[i],
                     "%s is not recorded: syn numbers a workflow's versions itself");
    json_t *force = json_object_get(doc, "force");
    if (json_is_true(force))
        warn(held, "%s is ignored: an id that exists is refused (409)", "force");
    if (json_is_boolean(force))
        json_object_del(doc, "force");
    json_t *phases = json_object_get(doc, "phases");
    if (!phases || json_is_null(phases)) {
        json_object_set_new(doc, "phases", initial_phase());
    } else if (json_is_array(phases)) {
        size_t i;
        json_t *phase;
        json_array_foreach(phases, i, phase) phase_from_original(phase, i);
    }
    char *text = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    if (!text) {
        json_decref(held);
        *error = json_pack("{s:s}", "detail", "gateway out of memory");
        return 500;
    }
    int status = gateway_validate_workflow(text, strlen(text), args, error);
    free(text);
    if (status == 422 && json_is_array(json_object_get(*error, "detail")))
        suggest_keys(json_object_get(*error, "detail"));
    if (status == 0) {
        /* what its phases' agents ask for that syn runs differently (template/spec.c) */
        json_t *agents = spec_workflow_warnings(*args);
        json_array_extend(json_object_get(held, "warnings"), agents);
        json_decref(agents);
        *keep = held;
    } else {
        json_decref(held);
    }
    return status;
}

static json_t *create_answer(const json_t *keep, unsigned *status, const json_t *body)
{
    /* workflow.install's outcome for an archived workflow: its id stays taken */
    const char *outcome = json_string_value(json_object_get(body, "status"));
    if (outcome && strcmp(outcome, "archived") == 0) {
        *status = 409;
        return json_pack("{s:s++}", "detail", "Workflow ",
                         json_string_value(json_object_get(body, "id")) ?: "", " is archived");
    }
    json_t *answer = json_deep_copy(body);
    /* the install's answer ({id, version, status}) with the create's fields */
    static const char *const carried[] = {"name", "workflow_type", "classification"};
    for (size_t i = 0; i < sizeof carried / sizeof *carried; i++)
        if (!json_object_get(answer, carried[i]) && json_object_get(keep, carried[i]))
            json_object_set(answer, carried[i], json_object_get(keep, carried[i]));
    json_object_set(answer, "repository_url", json_object_get(keep, "repository_url"));
    json_object_set(answer, "requires_repos", json_object_get(keep, "requires_repos"));
    json_object_set(answer, "warnings", json_object_get(keep, "warnings"));
    return answer;
}

/* --- POST /workflows/validate: {content, filename} ----------------------------- */

/* "phases[0].order: missing required key 'order' (line 4, column 5)". */
static json_t *error_strings(const json_t *errors)
{
    json_t *strings = json_array();
    size_t i;
    json_t *e;
    json_array_foreach(errors, i, e) {
        const char *field = json_string_value(json_object_get(e, "field"));
        const char *message = json_string_value(json_object_get(e, "message"));
        json_t *line = json_object_get(e, "line"), *column = json_object_get(e, "column");
        char where[64] = "";
        if (json_is_integer(line))
            snprintf(where, sizeof where, " (line %lld%s%.0lld)",
                     (long long)json_integer_value(line), json_is_integer(column) ? ", column " : "",
                     json_is_integer(column) ? (long long)json_integer_value(column) : 0LL);
        char text[1024];
        snprintf(text, sizeof text, "%s%s%s%s", field ? field : "", field ? ": " : "",
                 message ? message : "invalid", where);
        json_array_append_new(strings, json_string(text));
    }
    return strings;
}

static int validate_request(bool original, const char *content_type, const char *body,
                            size_t len, json_t **answer)
{
    if (gateway_yaml_media_type(content_type))
        return gateway_yaml_validate(content_type, body, len, answer);
    json_t *doc = json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL);
    json_t *filename = json_object_get(doc, "filename");
    bool theirs = original || json_is_string(filename);
    char *text = NULL;
    if (json_is_string(filename)) {
        json_object_del(doc, "filename");
        text = json_dumps(doc, JSON_COMPACT);
    }
    json_decref(doc);
    int status = text ? gateway_yaml_validate(content_type, text, strlen(text), answer)
                      : gateway_yaml_validate(content_type, body, len, answer);
    free(text);
    json_t *errors = json_object_get(*answer, "errors");
    if (status == 200 && theirs && json_is_array(errors)) {
        json_object_set(*answer, "error_details", errors);
        json_object_set_new(*answer, "errors", error_strings(errors));
    }
    return status;
}

/* --- executions: the original's names beside syn's ------------------------------ */

static json_int_t int_of(const json_t *object, const char *key)
{
    return json_integer_value(json_object_get(object, key));
}

/* "950", "12.3K", "4.56M": the original's compact token counts. */
static json_t *tokens_display(json_int_t n)
{
    char text[32];
    if (n < 1000)
        snprintf(text, sizeof text, "%lld", (long long)n);
    else if (n < 1000000)
        snprintf(text, sizeof text, "%.1fK", (double)n / 1e3);
    else
        snprintf(text, sizeof text, "%.2fM", (double)n / 1e6);
    return json_string(text);
}

static json_t *cost_display(const json_t *cost)
{
    char text[32];
    double usd = json_number_value(cost);
    if (!json_is_number(cost))
        return json_string("\xe2\x80\x94");
    snprintf(text, sizeof text, usd > 0 && usd < 0.01 ? "$%.4f" : "$%.2f", usd);
    return json_string(text);
}

/* "—", "4.2s", "3m 12s", "1h 05m". */
static json_t *duration_display(const json_t *seconds)
{
    char text[32];
    if (!json_is_number(seconds))
        return json_string("\xe2\x80\x94");
    double s = json_number_value(seconds);
    if (s < 60)
        snprintf(text, sizeof text, "%.1fs", s);
    else if (s < 3600)
        snprintf(text, sizeof text, "%dm %02ds", (int)(s / 60), (int)fmod(s, 60));
    else
        snprintf(text, sizeof text, "%dh %02dm", (int)(s / 3600), (int)fmod(s / 60, 60));
    return json_string(text);
}

static json_t *repos_display(const json_t *repos)
{
    if (!json_is_array(repos) || json_array_size(repos) == 0)
        return json_null();
    if (json_array_size(repos) > 1) {
        char text[32];
        snprintf(text, sizeof text, "%zu repos", json_array_size(repos));
        return json_string(text);
    }
    const char *url = json_string_value(json_array_get(repos, 0));
    const char *slash = url ? strrchr(url, '/') : NULL;
    char name[256];
    snprintf(name, sizeof name, "%s", slash ? slash + 1 : url ? url : "");
    size_t n = strlen(name);
    if (n > 4 && strcmp(name + n - 4, ".git") == 0)
        name[n - 4] = '\0';
    return json_string(name);
}

/* A summary (list, runs, detail's head) gains workflow_execution_id, total_tokens
 * (all four kinds, as the original sums them), error_message and the displays. */
static void summary_add(json_t *e)
{
    if (!json_is_object(e))
        return;
    json_t *id = json_object_get(e, "execution_id");
    if (id)
        json_object_set(e, "workflow_execution_id", id);
    json_int_t total = int_of(e, "total_input_tokens") + int_of(e, "total_output_tokens") +
                       int_of(e, "total_cache_creation_tokens") +
                       int_of(e, "total_cache_read_tokens");
    json_object_set_new(e, "total_tokens", json_integer(total));
    json_object_set_new(e, "total_tokens_display", tokens_display(total));
    json_object_set_new(e, "total_cost_display", cost_display(json_object_get(e, "total_cost_usd")));
    json_object_set_new(e, "duration_display",
                        duration_display(json_object_get(e, "duration_seconds")));
    json_t *error = json_object_get(e, "error");
    json_object_set(e, "error_message", error ? error : json_null());
    if (!json_object_get(e, "repos_display"))
        json_object_set_new(e, "repos_display", repos_display(json_object_get(e, "repos")));
}

/* A detail's phase gains error_message, model_display and session_id (its last
 * attempt: GET /costs/sessions/{session_id}). */
static void phase_add(const char *execution_id, json_t *phase)
{
    json_t *error = json_object_get(phase, "error");
    json_object_set(phase, "error_message", error ? error : json_null());
    const char *model = json_string_value(json_object_get(phase, "model"));
    json_object_set_new(phase, "model_display", json_string(model ? model : "unknown"));
    json_t *attempts = json_object_get(phase, "attempts");
    json_t *last = json_array_get(attempts, json_array_size(attempts) - 1);
    char session[512];
    const char *phase_id = json_string_value(json_object_get(phase, "phase_id"));
    if (last && execution_id && phase_id) {
        snprintf(session, sizeof session, "%s:%s:%lld", execution_id, phase_id,
                 (long long)int_of(last, "attempt"));
        json_object_set_new(phase, "session_id", json_string(session));
    } else {
        json_object_set_new(phase, "session_id", json_null());
    }
}

static json_t *executions_answer(gateway_route_id_t id, const json_t *body)
{
    json_t *answer = json_deep_copy(body);
    const char *list = id == GATEWAY_ROUTE_EXECUTION_LIST ? "executions"
                       : id == GATEWAY_ROUTE_WORKFLOW_RUNS ? "runs"
                                                           : NULL;
    if (list) {
        size_t i;
        json_t *e;
        json_array_foreach(json_object_get(answer, list), i, e) summary_add(e);
        return answer;
    }
    summary_add(answer);
    json_object_set_new(answer, "cache_read_rate_display", json_null());
    json_object_set_new(answer, "cache_write_rate_display", json_null());
    const char *execution_id = json_string_value(json_object_get(answer, "execution_id"));
    size_t i;
    json_t *phase;
    json_array_foreach(json_object_get(answer, "phases"), i, phase)
        phase_add(execution_id, phase);
    return answer;
}

/* --- /health: status healthy, mode full or degraded ----------------------------- */

static json_t *health_answer(const json_t *body)
{
    json_t *answer = json_deep_copy(body);
    bool workers = int_of(body, "workers") > 0;
    /* The broker's own reason to be degraded (its storage is full) comes first. */
    const char *reason = json_string_value(json_object_get(body, "reason"));
    json_t *reasons = json_array();
    if (reason)
        json_array_append_new(reasons, json_string(reason));
    if (!workers)
        json_array_append_new(reasons, json_string("no worker connected"));
    json_object_set_new(answer, "status", json_string(reason ? "degraded" : "healthy"));
    json_object_set_new(answer, "mode", json_string(json_array_size(reasons) ? "degraded"
                                                                              : "full"));
    json_object_set_new(answer, "degraded_reasons", reasons);
    return answer;
}

/* --- the two ends ------------------------------------------------------------- */

int gateway_compat_request(const gateway_route_t *route, bool original,
                           const char *content_type, const char *body, size_t len,
                           gateway_query_fn query, void *cls, syn_op_t *op, json_t **args,
                           json_t **error, json_t **keep)
{
    *keep = NULL;
    switch (route->id) {
    case GATEWAY_ROUTE_WORKFLOW_CREATE:
        *op = SYN_OP_WORKFLOW_CREATE;
        return create_request(body, len, args, error, keep);
    case GATEWAY_ROUTE_WORKFLOW_VALIDATE:
        return validate_request(original, content_type, body, len, error);
    case GATEWAY_ROUTE_WORKFLOW_FROM_YAML:
        return gateway_install_request(original, content_type, body, len, query, cls, op, args,
                                       error, keep);
    case GATEWAY_ROUTE_WORKFLOW_EXPORT:
    case GATEWAY_ROUTE_METRICS:
    case GATEWAY_ROUTE_COSTS_SUMMARY:
    case GATEWAY_ROUTE_COSTS_EXECUTIONS:
    case GATEWAY_ROUTE_COSTS_EXECUTION:
    case GATEWAY_ROUTE_COSTS_SESSIONS:
    case GATEWAY_ROUTE_COSTS_SESSION:
        return gateway_reports_request(route, original, query, cls, op, args, error, keep);
    default:
        return -1;
    }
}

json_t *gateway_compat_answer(const gateway_route_t *route, bool original, const json_t *keep,
                              unsigned *status, const json_t *body)
{
    if (*status < 200 || *status > 299 || !json_is_object(body))
        return NULL;
    switch (route->id) {
    case GATEWAY_ROUTE_HEALTH:
        return health_answer(body);
    case GATEWAY_ROUTE_EXECUTION_LIST:
    case GATEWAY_ROUTE_EXECUTION_GET:
    case GATEWAY_ROUTE_WORKFLOW_RUNS:
        return executions_answer(route->id, body);
    case GATEWAY_ROUTE_WORKFLOW_CREATE:
    case GATEWAY_ROUTE_WORKFLOW_FROM_YAML:
        return keep ? create_answer(keep, status, body) : NULL;
    default:
        return gateway_reports_answer(route, original, keep, status, body);
    }
}

/* --- event streams ------------------------------------------------------------ */

/* The original's names of syn's event types (its CLI colours these). */
static const char *const event_names[][2] = {
    {"ExecutionStarted", "WorkflowExecutionStarted"},
    {"ExecutionCompleted", "WorkflowCompleted"},
    {"ExecutionFailed", "WorkflowFailed"},
    {"PhaseStarted", "PhaseStarted"},
    {"PhaseCompleted", "PhaseCompleted"},
    {"PhaseFailed", "PhaseFailed"},
    {"ExecutionPaused", "ExecutionPaused"},
    {"ExecutionResumed", "ExecutionResumed"},
    {"ExecutionCancelled", "ExecutionCancelled"},
};

const char *gateway_compat_event_type(const char *type)
{
    for (size_t i = 0; type && i < sizeof event_names / sizeof event_names[0]; i++)
        if (strcmp(type, event_names[i][0]) == 0)
            return event_names[i][1];
    return NULL;
}

json_t *gateway_compat_event_data(const char *type, const char *execution_id,
                                  const json_t *data)
{
    (void)type;
    json_t *out = json_is_object(data) ? json_copy((json_t *)data) : json_object();
    if (!out)
        return NULL;
    if (execution_id && !json_object_get(out, "execution_id"))
        json_object_set_new(out, "execution_id", json_string(execution_id));
    json_t *phase = json_object_get(out, "phase_id");
    if (json_is_string(phase) && !json_object_get(out, "phase_name"))
        json_object_set(out, "phase_name", phase);
    json_t *error = json_object_get(out, "error");
    if (json_is_string(error) && !json_object_get(out, "error_message"))
        json_object_set(out, "error_message", error);
    return out;
}
