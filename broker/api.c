/* api: the dispatch of each operation (proto/ops.c's table, then its handler), the
 * argument checks the handlers share, and the execution, control, query and fleet
 * operations with their reply bodies; the workflow operations: broker/api_workflows.c. */
#include "broker/api.h"
#include "broker/api_internal.h"
#include "broker/budget_usd.h"
#include "broker/approval.h"
#include "broker/repository.h"

#include "common/clock.h"
#include "common/ids.h"
#include "common/log.h"
#include "common/utf8.h"
#include "template/spec.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define AMBIGUOUS_SHOWN 5

json_t *api_detail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *text = NULL;
    if (vasprintf(&text, fmt, ap) < 0)
        text = NULL;
    va_end(ap);
    json_t *body = json_pack("{s:s}", "detail", text ? text : "internal error");
    free(text);
    return body ? body : json_pack("{s:s}", "detail", "detail not valid UTF-8");
}

int api_bad_request(json_t **body, const reason_t *why)
{
    *body = api_detail("bad request: %s", why->text);
    return 400;
}

int api_internal_error(json_t **body, const char *what)
{
    *body = api_detail("internal error: %s", what);
    return 500;
}

/* --- argument checks ------------------------------------------------------- */

bool api_fail(reason_t *why, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why->text, sizeof why->text, fmt, ap);
    va_end(ap);
    /* a sequence cut short by the bounded snprintf is dropped: the reason must
     * stay valid JSON text */
    size_t len = strlen(why->text);
    why->text[len - syn_utf8_incomplete_tail(why->text, len)] = '\0';
    return false;
}

/* An optional string field: absent or null leaves *out as is. */
bool api_opt_string(const json_t *obj, const char *key, const char **out, const char *where,
                       reason_t *why)
{
    const json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v))
        return true;
    if (!json_is_string(v))
        return api_fail(why, "%s%s must be a string", where, key);
    *out = json_string_value(v);
    return true;
}

bool api_req_string(const json_t *obj, const char *key, const char **out, const char *where,
                       reason_t *why)
{
    *out = NULL;
    if (!api_opt_string(obj, key, out, where, why))
        return false;
    if (!*out)
        return api_fail(why, "%s%s is required", where, key);
    return true;
}

bool api_opt_int(const json_t *obj, const char *key, json_int_t min, json_int_t max,
                    json_int_t *out, const char *where, reason_t *why)
{
    const json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v))
        return true;
    if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max)
        return api_fail(why, "%s%s must be an integer from %lld to %lld", where, key,
                    (long long)min, (long long)max);
    *out = json_integer_value(v);
    return true;
}

static bool string_array(const json_t *v, const char *what, reason_t *why)
{
    if (!json_is_array(v))
        return api_fail(why, "%s must be an array of strings", what);
    size_t i;
    const json_t *item;
    json_array_foreach(v, i, item)
        if (!json_is_string(item))
            return api_fail(why, "%s[%zu] must be a string", what, i);
    return true;
}

/* --- execution.start ------------------------------------------------------- */

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* "Missing required inputs: a, b. Provide them via: --input a=<value>, ..." */
static json_t *missing_inputs_body(const char **names, size_t count)
{
    qsort(names, count, sizeof *names, name_cmp);
    size_t size = 96;
    for (size_t i = 0; i < count; i++)
        size += 2 * strlen(names[i]) + 24;
    char *text = malloc(size);
    if (!text)
        return NULL;
    size_t len = (size_t)snprintf(text, size, "Missing required inputs: ");
    for (size_t i = 0; i < count; i++)
        len += (size_t)snprintf(text + len, size - len, "%s%s", i ? ", " : "", names[i]);
    len += (size_t)snprintf(text + len, size - len, ". Provide them via: ");
    for (size_t i = 0; i < count; i++)
        len += (size_t)snprintf(text + len, size - len, "%s--input %s=<value>", i ? ", " : "",
                                names[i]);
    json_t *body = json_pack("{s:s}", "detail", text);
    free(text);
    return body;
}

/* declared defaults ← request inputs ← task (as input "task"). */
static json_t *merge_inputs(const json_t *decls, const json_t *inputs, const char *task)
{
    json_t *merged = json_object();
    size_t i;
    const json_t *d;
    json_array_foreach(decls, i, d)
    {
        const char *name = json_string_value(json_object_get(d, "name"));
        const json_t *fallback = json_object_get(d, "default");
        if (name && json_is_string(fallback))
            json_object_set_new(merged, name, json_deep_copy(fallback));
    }
    json_object_update(merged, (json_t *)inputs);
    if (task)
        json_object_set_new(merged, "task", json_string(task));
    return merged;
}

int broker_api_execution_start(broker_api_t *self, const json_t *args, json_t **body)
{
    reason_t why = {""};
    const char *workflow_id, *task = NULL;
    json_int_t priority = 0;
    if (!api_req_string(args, "workflow_id", &workflow_id, "", &why) ||
        !api_opt_string(args, "task", &task, "", &why) ||
        !api_opt_int(args, "priority", SYN_OP_PRIORITY_MIN, SYN_OP_PRIORITY_MAX, &priority, "",
                     &why))
        return api_bad_request(body, &why);
    const json_t *inputs = json_object_get(args, "inputs");
    const json_t *repos = json_object_get(args, "repos");
    if (inputs && !json_is_null(inputs)) {
        if (!json_is_object(inputs)) {
            api_fail(&why, "inputs must be an object of strings");
            return api_bad_request(body, &why);
        }
        const char *key;
        const json_t *v;
        json_object_foreach((json_t *)inputs, key, v)
            if (!json_is_string(v)) {
                api_fail(&why, "inputs.%s must be a string", key);
                return api_bad_request(body, &why);
            }
    }
    if (repos && !json_is_null(repos) && !string_array(repos, "repos", &why))
        return api_bad_request(body, &why);

    const json_t *tpl = NULL;
    broker_workflow_meta_t meta;
    int rc = broker_store_workflow_shared(self->store, workflow_id, &tpl, &meta);
    if (rc < 0)
        return api_internal_error(body, "cannot read the workflow");
    if (rc == 0) {
        *body = api_detail("Workflow %s not found", workflow_id);
        return 404;
    }
    if (meta.archived) {
        *body = api_detail("Workflow %s is archived", workflow_id);
        return 409;
    }
    int64_t version = meta.version;
    json_t *empty = json_object();
    json_t *merged = merge_inputs(json_object_get(tpl, "input_declarations"),
                                  json_is_object(inputs) ? inputs : empty, task);
    json_decref(empty);

    const json_t *decls = json_object_get(tpl, "input_declarations");
    size_t ndecls = json_array_size(decls), nmissing = 0;
    const char **missing = calloc(ndecls + 1, sizeof *missing);
    size_t i;
    const json_t *d;
    json_array_foreach(decls, i, d)
    {
        const char *name = json_string_value(json_object_get(d, "name"));
        if (name && !json_is_false(json_object_get(d, "required")) &&
            !json_object_get(merged, name))
            missing[nmissing++] = name;
    }
    int status;
    json_t *repos_copy = NULL;
    if (nmissing > 0) {
        *body = missing_inputs_body(missing, nmissing);
        status = *body ? 422 : api_internal_error(body, "out of memory");
    } else if ((status = broker_repository_choose(workflow_id, tpl, merged, repos, &repos_copy,
                                                  body)) == 0) {
        char id[BROKER_EXEC_ID_SIZE], err[256];
        if (broker_engine_start(self->engine, workflow_id, version, tpl, merged, task,
                                repos_copy, priority,
                                json_number_value(json_object_get(args, "max_budget_usd")), id,
                                err, sizeof err) < 0) {
            status = api_internal_error(body, err);
        } else {
            *body = json_pack("{s:s, s:s, s:s, s:s}", "execution_id", id, "workflow_id",
                              workflow_id, "status", "started", "message",
                              "Workflow execution started");
            status = 200;
        }
        json_decref(repos_copy);
    }
    free(missing);
    json_decref(merged);
    return status;
}

/* --- execution.status / execution.active ----------------------------------- */

/* Resolves a full id or a unique prefix to a full id: 200, or 404/409 with body. */
static int resolve_execution(broker_api_t *self, const char *given, char id[BROKER_EXEC_ID_SIZE],
                             json_t **body)
{
    if (broker_engine_find(self->engine, given)) {
        snprintf(id, BROKER_EXEC_ID_SIZE, "%s", given);
        return 200;
    }
    char ids[AMBIGUOUS_SHOWN + 1][BROKER_EXEC_ID_SIZE];
    size_t count = 0;
    if (broker_store_execution_match(self->store, given, ids, AMBIGUOUS_SHOWN + 1, &count) < 0)
        return api_internal_error(body, "cannot look up executions");
    if (count == 0) {
        *body = api_detail("Execution not found: %s", given);
        return 404;
    }
    if (count == 1 || strcmp(ids[0], given) == 0) {
        snprintf(id, BROKER_EXEC_ID_SIZE, "%s", ids[0]);
        return 200;
    }
    char list[AMBIGUOUS_SHOWN * (BROKER_EXEC_ID_SIZE + 2) + 1] = "";
    size_t shown = count < AMBIGUOUS_SHOWN ? count : AMBIGUOUS_SHOWN;
    for (size_t i = 0; i < shown; i++) {
        if (i)
            strcat(list, ", ");
        strcat(list, ids[i]);
    }
    if (count > AMBIGUOUS_SHOWN)
        *body = api_detail("Ambiguous execution id %s: matches %s (more than %d matches)", given,
                       list, AMBIGUOUS_SHOWN);
    else
        *body = api_detail("Ambiguous execution id %s: matches %s (%zu matches)", given, list, count);
    return 409;
}

static int op_execution_status(broker_api_t *self, const json_t *args, json_t **body)
{
    reason_t why = {""};
    const char *workflow_id, *given;
    if (!api_req_string(args, "workflow_id", &workflow_id, "", &why) ||
        !api_req_string(args, "execution_id", &given, "", &why))
        return api_bad_request(body, &why);
    char id[BROKER_EXEC_ID_SIZE];
    int status = resolve_execution(self, given, id, body);
    if (status != 200)
        return status;
    json_t *view = NULL;
    broker_execution_t *exec = broker_engine_find(self->engine, id);
    if (exec) {
        broker_status_view_t v;
        broker_execution_status_view(exec, &v);
        v.queue_position = broker_engine_queue_position(self->engine, id);
        view = broker_status_json(&v);
    } else if (broker_store_execution_status(self->store, id, &view) <= 0) {
        return api_internal_error(body, "cannot read the execution");
    }
    if (!view)
        return api_internal_error(body, "cannot build the status");
    const char *owner = json_string_value(json_object_get(view, "workflow_id"));
    if (!owner || strcmp(owner, workflow_id) != 0) {
        json_decref(view);
        *body = api_detail("Execution %s not found for workflow %s", given, workflow_id);
        return 404;
    }
    *body = view;
    return 200;
}

static int op_execution_active(broker_api_t *self, const json_t *args, json_t **body)
{
    reason_t why = {""};
    json_int_t limit = 20;
    if (!api_opt_int(args, "limit", 1, 100, &limit, "", &why))
        return api_bad_request(body, &why);
    *body = broker_engine_active_json(self->engine, (size_t)limit);
    return *body ? 200 : api_internal_error(body, "out of memory");
}

/* --- control: cancel / pause / resume / inject / state --------------------- */

static int control_reply(json_t **body, const char *id, broker_exec_status_t status,
                         const char *message)
{
    *body = json_pack("{s:b, s:s, s:s, s:s, s:n}", "success", 1, "execution_id", id, "state",
                      broker_exec_status_name(status), "message", message, "error");
    return 200;
}

/* The status of a resolved execution: from memory while active, else SQLite. */
static int current_state(broker_api_t *self, const char *id, broker_exec_status_t *status)
{
    broker_execution_t *exec = broker_engine_find(self->engine, id);
    if (exec) {
        *status = exec->status;
        return 1;
    }
    return broker_store_execution_state(self->store, id, status);
}

/* Resolves args.execution_id: 200 with the id, or the error reply. */
int api_resolve_arg(broker_api_t *self, const json_t *args, char id[BROKER_EXEC_ID_SIZE],
                    json_t **body)
{
    reason_t why = {""};
    const char *given;
    if (!api_req_string(args, "execution_id", &given, "", &why))
        return api_bad_request(body, &why);
    return resolve_execution(self, given, id, body);
}

/* An engine control call's outcome: -2 means the execution is no longer active,
 * so the rule is checked against its stored (terminal) state. */
static int control_outcome(broker_api_t *self, const char *id, int rc,
                           broker_exec_status_t status, const char *verb, const char *message,
                           json_t **body)
{
    if (rc == -2) {
        if (broker_store_execution_state(self->store, id, &status) <= 0)
            return api_internal_error(body, "cannot read the execution");
        rc = -1;
    }
    if (rc == -1) {
        *body = api_detail("Cannot %s execution in state %s", verb, broker_exec_status_name(status));
        return 400;
    }
    return control_reply(body, id, status, message);
}

typedef int (*reasoned_control_fn)(broker_engine_t *engine, const char *id, const char *reason,
                                   broker_exec_status_t *status);

/* cancel and pause: an optional reason, the execution resolved, then the engine's
 * call and its outcome. */
static int reasoned_control(broker_api_t *self, const json_t *args, reasoned_control_fn control,
                            const char *verb, const char *message, json_t **body)
{
    reason_t why = {""};
    const char *reason = NULL;
    if (!api_opt_string(args, "reason", &reason, "", &why))
        return api_bad_request(body, &why);
    char id[BROKER_EXEC_ID_SIZE];
    int status = api_resolve_arg(self, args, id, body);
    if (status != 200)
        return status;
    broker_exec_status_t state = BROKER_EXEC_PENDING;
    int rc = control(self->engine, id, reason, &state);
    return control_outcome(self, id, rc, state, verb, message, body);
}

static int op_execution_cancel(broker_api_t *self, const json_t *args, json_t **body)
{
    return reasoned_control(self, args, broker_engine_cancel, "cancel", "Cancel signal queued",
                            body);
}

static int op_execution_pause(broker_api_t *self, const json_t *args, json_t **body)
{
    return reasoned_control(self, args, broker_engine_pause, "pause", "Execution paused", body);
}

static int op_execution_resume(broker_api_t *self, const json_t *args, json_t **body)
{
    char id[BROKER_EXEC_ID_SIZE];
    int status = api_resolve_arg(self, args, id, body);
    if (status != 200)
        return status;
    broker_exec_status_t state = BROKER_EXEC_PENDING;
    int rc = broker_engine_resume(self->engine, id, syn_mono_ms(), &state);
    if (rc == -3) {
        const broker_execution_t *exec = broker_engine_find(self->engine, id);
        const broker_phase_t *gate = exec ? broker_approval_waiting(exec) : NULL;
        *body = api_detail("Execution %s is waiting for approval of phase %s: approve it "
                           "(POST /executions/%s/approve) or reject it; resume does not pass "
                           "a gate",
                           id, gate ? gate->phase_id : "?", id);
        return 409;
    }
    return control_outcome(self, id, rc, state, "resume", "Execution resumed", body);
}

/* An approval's refusal: 409 when the execution does not wait at a gate (the
 * other refusals as every control's). */
static int not_waiting(broker_api_t *self, const char *id, int rc, broker_exec_status_t state,
                       const char *verb, json_t **body)
{
    if (rc == -1) {
        *body = api_detail("Execution %s is not waiting for approval (it is %s)", id,
                           broker_exec_status_name(state));
        return 409;
    }
    return control_outcome(self, id, rc, state, verb, "", body);
}

static int op_execution_approve(broker_api_t *self, const json_t *args, json_t **body)
{
    reason_t why = {""};
    const char *comment = NULL;
    if (!api_opt_string(args, "comment", &comment, "", &why))
        return api_bad_request(body, &why);
    if (comment && strlen(comment) > BROKER_MESSAGE_MAX) {
        api_fail(&why, "comment is longer than %u bytes", BROKER_MESSAGE_MAX);
        return api_bad_request(body, &why);
    }
    char id[BROKER_EXEC_ID_SIZE];
    int status = api_resolve_arg(self, args, id, body);
    if (status != 200)
        return status;
    broker_exec_status_t state = BROKER_EXEC_PENDING;
    char err[256];
    int rc = broker_engine_approve(self->engine, id, comment, &state, err, sizeof err);
    if (rc == -3) {
        *body = api_detail("%s", err);
        return 400;
    }
    if (rc < 0)
        return not_waiting(self, id, rc, state, "approve", body);
    return control_reply(body, id, state, "Approved");
}

static int op_execution_reject(broker_api_t *self, const json_t *args, json_t **body)
{
    reason_t why = {""};
    const char *reason = NULL;
    if (!api_opt_string(args, "reason", &reason, "", &why))
        return api_bad_request(body, &why);
    char id[BROKER_EXEC_ID_SIZE];
    int status = api_resolve_arg(self, args, id, body);
    if (status != 200)
        return status;
    broker_exec_status_t state = BROKER_EXEC_PENDING;
    int rc = broker_engine_reject(self->engine, id, reason, &state);
    if (rc < 0)
        return not_waiting(self, id, rc, state, "reject", body);
    return control_reply(body, id, state, "Rejected");
}

static int op_execution_inject(broker_api_t *self, const json_t *args, json_t **body)
{
    reason_t why = {""};
    const char *message, *role = "user";
    if (!api_req_string(args, "message", &message, "", &why) ||
        !api_opt_string(args, "role", &role, "", &why))
        return api_bad_request(body, &why);
    if (!*message) {
        api_fail(&why, "message must not be empty");
        return api_bad_request(body, &why);
    }
    if (strlen(message) > BROKER_MESSAGE_MAX) {
        api_fail(&why, "message is longer than %u bytes", BROKER_MESSAGE_MAX);
        return api_bad_request(body, &why);
    }
    if (strcmp(role, "user") != 0 && strcmp(role, "system") != 0) {
        api_fail(&why, "role must be \"user\" or \"system\"");
        return api_bad_request(body, &why);
    }
    char id[BROKER_EXEC_ID_SIZE];
    int status = api_resolve_arg(self, args, id, body);
    if (status != 200)
        return status;
    broker_exec_status_t state = BROKER_EXEC_PENDING;
    char err[256];
    int rc = broker_engine_inject(self->engine, id, role, message, &state, err, sizeof err);
    if (rc == -2) {
        *body = api_detail("Cannot inject into terminal execution");
        return 400;
    }
    if (rc == -3) {
        *body = api_detail("%s", err);
        return 400;
    }
    if (rc < 0)
        return api_internal_error(body, err);
    return control_reply(body, id, state, "Message queued");
}

/* waiting_for: "approval" with the gate's phase (waiting_phase) while an execution
 * waits at an approval gate, else null: what a person is expected to do. */
static void put_waiting_for(broker_api_t *self, const char *id, json_t *body)
{
    const broker_execution_t *exec = broker_engine_find(self->engine, id);
    const broker_phase_t *gate = exec ? broker_approval_waiting(exec) : NULL;
    json_object_set_new(body, "waiting_for", gate ? json_string("approval") : json_null());
    json_object_set_new(body, "waiting_phase", gate ? json_string(gate->phase_id) : json_null());
}

/* queue_position: a pending execution's place among those waiting to start
 * (limits.h), else null; on a summary or a detail. */
static void put_queue_position(broker_api_t *self, json_t *item)
{
    const char *id = json_string_value(json_object_get(item, "execution_id"));
    int64_t at = id ? broker_engine_queue_position(self->engine, id) : 0;
    json_object_set_new(item, "queue_position", at > 0 ? json_integer(at) : json_null());
}

static void put_queue_positions(broker_api_t *self, json_t *items)
{
    size_t i;
    json_t *item;
    json_array_foreach(items, i, item)
        put_queue_position(self, item);
}

static int op_execution_state(broker_api_t *self, const json_t *args, json_t **body)
{
    char id[BROKER_EXEC_ID_SIZE];
    int status = api_resolve_arg(self, args, id, body);
    if (status != 200)
        return status;
    broker_exec_status_t state;
    if (current_state(self, id, &state) <= 0)
        return api_internal_error(body, "cannot read the execution");
    *body = json_pack("{s:s, s:s}", "execution_id", id, "state", broker_exec_status_name(state));
    put_waiting_for(self, id, *body);
    return 200;
}

/* --- queries: list / get / output / runs / replay --------------------------- */

static bool page_args(const json_t *args, json_int_t *page, json_int_t *page_size, reason_t *why)
{
    *page = 1;
    *page_size = 50;
    return api_opt_int(args, "page", 1, 1000000000, page, "", why) &&
           api_opt_int(args, "page_size", 1, 100, page_size, "", why);
}

static int op_execution_list(broker_api_t *self, const json_t *args, json_t **body)
{
    reason_t why = {""};
    const char *status_name = NULL, *workflow_id = NULL;
    json_int_t page, page_size;
    if (!api_opt_string(args, "status", &status_name, "", &why) ||
        !api_opt_string(args, "workflow_id", &workflow_id, "", &why) ||
        !page_args(args, &page, &page_size, &why))
        return api_bad_request(body, &why);
    broker_exec_status_t status = BROKER_EXEC_PENDING;
    if (status_name && broker_exec_status_parse(status_name, &status) < 0) {
        api_fail(&why, "status must be one of pending, running, paused, completed, failed, "
                   "cancelled");
        return api_bad_request(body, &why);
    }
    json_t *items;
    int64_t total;
    if (broker_store_execution_list(self->store, workflow_id, status_name ? (int)status : -1,
                                    page, page_size, &items, &total) < 0)
        return api_internal_error(body, "cannot list executions");
    put_queue_positions(self, items);
    *body = json_pack("{s:o, s:I, s:I, s:I}", "executions", items, "total", (json_int_t)total,
                      "page", page, "page_size", page_size);
    return 200;
}

static int op_execution_get(broker_api_t *self, const json_t *args, json_t **body)
{
    char id[BROKER_EXEC_ID_SIZE];
    int status = api_resolve_arg(self, args, id, body);
    if (status != 200)
        return status;
    if (broker_store_execution_detail(self->store, id, body) <= 0)
        return api_internal_error(body, "cannot read the execution");
    put_waiting_for(self, id, *body);
    const broker_execution_t *active = broker_engine_find(self->engine, id);
    if (active) /* what its running attempt reported so far counts too */
        broker_budget_detail(active, *body);
    put_queue_position(self, *body);
    return 200;
}

static int op_execution_output(broker_api_t *self, const json_t *args, json_t **body)
{
    reason_t why = {""};
    const char *phase_id;
    if (!api_req_string(args, "phase_id", &phase_id, "", &why))
        return api_bad_request(body, &why);
    char id[BROKER_EXEC_ID_SIZE];
    int status = api_resolve_arg(self, args, id, body);
    if (status != 200)
        return status;
    char *output = NULL;
    int rc = broker_store_phase_output(self->store, id, phase_id, &output);
    if (rc < 0)
        return api_internal_error(body, "cannot read the output");
    if (rc == 0) {
        *body = api_detail("Phase %s not found in execution %s", phase_id, id);
        return 404;
    }
    *body = json_pack("{s:s}", "output", output);
    free(output);
    return 200;
}

static int op_workflow_runs(broker_api_t *self, const json_t *args, json_t **body)
{
    reason_t why = {""};
    const char *workflow_id;
    json_int_t page, page_size;
    if (!api_req_string(args, "workflow_id", &workflow_id, "", &why) ||
        !page_args(args, &page, &page_size, &why))
        return api_bad_request(body, &why);
    char *name = NULL;
    int rc = broker_store_workflow_name(self->store, workflow_id, &name);
    if (rc < 0)
        return api_internal_error(body, "cannot read the workflow");
    if (rc == 0) {
        *body = api_detail("Workflow %s not found", workflow_id);
        return 404;
    }
    json_t *items;
    int64_t total;
    if (broker_store_execution_list(self->store, workflow_id, -1, page, page_size, &items,
                                    &total) < 0) {
        free(name);
        return api_internal_error(body, "cannot list executions");
    }
    put_queue_positions(self, items);
    *body = json_pack("{s:o, s:I, s:s, s:s}", "runs", items, "total", (json_int_t)total,
                      "workflow_id", workflow_id, "workflow_name", name);
    free(name);
    return 200;
}

static int op_events_replay(broker_api_t *self, const json_t *args, json_t **body)
{
    reason_t why = {""};
    const char *given = NULL;
    json_int_t after_seq = 0, limit = BROKER_REPLAY_LIMIT_MAX;
    if (!api_opt_string(args, "execution_id", &given, "", &why) ||
        !api_opt_int(args, "after_seq", 0, INT64_MAX, &after_seq, "", &why) ||
        !api_opt_int(args, "limit", 1, BROKER_REPLAY_LIMIT_MAX, &limit, "", &why))
        return api_bad_request(body, &why);
    char id[BROKER_EXEC_ID_SIZE];
    bool terminal = false;
    if (given) {
        int status = resolve_execution(self, given, id, body);
        if (status != 200)
            return status;
        broker_exec_status_t state;
        if (current_state(self, id, &state) <= 0)
            return api_internal_error(body, "cannot read the execution");
        terminal = broker_exec_is_terminal(state);
    }
    json_t *events;
    bool more;
    if (broker_store_events_after(self->store, given ? id : NULL, after_seq, limit,
                                  BROKER_REPLAY_BYTES_MAX, &events, &more) < 0)
        return api_internal_error(body, "cannot read the event log");
    size_t count = json_array_size(events);
    json_int_t last_seq =
        count ? json_integer_value(json_object_get(json_array_get(events, count - 1), "seq"))
              : after_seq;
    *body = json_pack("{s:o, s:I, s:b, s:b, s:o}", "events", events, "last_seq", last_seq,
                      "more", more, "terminal", terminal, "execution_id",
                      given ? json_string(id) : json_null());
    return 200;
}

/* While storage is full, why (else NULL). */
static const char *storage_full(const broker_api_t *self)
{
    return self->storage && self->storage->full ? self->storage->reason : NULL;
}

/* With a lease (PostgreSQL), which broker answers: the active one. */
static void add_active_broker(const broker_api_t *self, json_t *body)
{
    json_t *active = self->lease && body ? broker_lease_json(self->lease) : NULL;
    if (active)
        json_object_set_new(body, "active_broker", active);
}

static int op_health(broker_api_t *self, const json_t *args, json_t **body)
{
    (void)args;
    const char *full = storage_full(self);
    *body = json_pack("{s:s, s:s, s:I}", "status", full ? "degraded" : "ok", "broker", "up",
                      "workers", (json_int_t)broker_workers_count(self->workers));
    if (*body && full) {
        json_object_set_new(*body, "storage", json_string("full"));
        json_object_set_new(*body, "reason", json_string(full));
    }
    add_active_broker(self, *body);
    return 200;
}

static int op_metrics_get(broker_api_t *self, const json_t *args, json_t **body)
{
    (void)args;
    json_t *families = broker_api_metrics(self);
    if (!families)
        return api_internal_error(body, "no metrics");
    *body = json_pack("{s:o}", "families", families);
    return 200;
}

/* --- the fleet (issue 18) -------------------------------------------------- */

/* The original's /costs and /api/v1/metrics (gateway/original_compat.c shapes it). */
static int op_costs_report(broker_api_t *self, const json_t *args, json_t **body)
{
    reason_t why = {""};
    const char *execution_id = NULL;
    json_int_t limit = 50;
    if (!api_opt_string(args, "execution_id", &execution_id, "", &why) ||
        !api_opt_int(args, "limit", 1, 200, &limit, "", &why))
        return api_bad_request(body, &why);
    if (broker_store_costs(self->store, execution_id, limit, body) < 0)
        return api_internal_error(body, "cannot read costs");
    return 200;
}

static int op_workers_list(broker_api_t *self, const json_t *args, json_t **body)
{
    (void)args;
    json_t *workers = broker_workers_list(self->workers, syn_now_us());
    *body = workers ? json_pack("{s:o}", "workers", workers) : NULL;
    add_active_broker(self, *body);
    return 200;
}

/* Ready to take work: at least one connected worker that is healthy and not
 * draining (the broker answering is the rest of it). */
static int op_ready(broker_api_t *self, const json_t *args, json_t **body)
{
    (void)args;
    size_t connected = broker_workers_count(self->workers), ready = 0;
    for (size_t i = 0; i < connected; i++) {
        const broker_worker_t *w = broker_workers_at(self->workers, i);
        if (!w->unhealthy && !w->draining)
            ready++;
    }
    const char *reason = storage_full(self) ? storage_full(self)
                         : connected == 0      ? "no worker connected"
                         : ready == 0 ? "no healthy worker (all unhealthy or draining)"
                                      : NULL;
    *body = json_pack("{s:s, s:s, s:I, s:I, s:o}", "status", reason ? "not ready" : "ready",
                      "broker", "up", "workers", (json_int_t)connected, "workers_ready",
                      (json_int_t)ready, "reason", reason ? json_string(reason) : json_null());
    return reason ? 503 : 200;
}

/* --- dispatch -------------------------------------------------------------- */

typedef int (*op_fn)(broker_api_t *self, const json_t *args, json_t **body);

/* The handler of each op in proto/ops.h's table. */
static const op_fn handlers[SYN_OP_COUNT] = {
    [SYN_OP_HEALTH] = op_health,
    [SYN_OP_WORKFLOW_CREATE] = broker_api_op_workflow_create,
    [SYN_OP_WORKFLOW_LIST] = broker_api_op_workflow_list,
    [SYN_OP_WORKFLOW_GET] = broker_api_op_workflow_get,
    [SYN_OP_WORKFLOW_INSTALL] = broker_api_op_workflow_install,
    [SYN_OP_WORKFLOW_ARCHIVE] = broker_api_op_workflow_archive,
    [SYN_OP_WORKFLOW_PHASE_UPDATE] = broker_api_op_workflow_phase_update,
    [SYN_OP_EXECUTION_START] = broker_api_op_execution_start_keyed,
    [SYN_OP_EXECUTION_STATUS] = op_execution_status,
    [SYN_OP_EXECUTION_ACTIVE] = op_execution_active,
    [SYN_OP_EXECUTION_CANCEL] = op_execution_cancel,
    [SYN_OP_EXECUTION_PAUSE] = op_execution_pause,
    [SYN_OP_EXECUTION_RESUME] = op_execution_resume,
    [SYN_OP_EXECUTION_INJECT] = op_execution_inject,
    [SYN_OP_EXECUTION_STATE] = op_execution_state,
    [SYN_OP_EXECUTION_LIST] = op_execution_list,
    [SYN_OP_EXECUTION_GET] = op_execution_get,
    [SYN_OP_EXECUTION_OUTPUT] = op_execution_output,
    [SYN_OP_WORKFLOW_RUNS] = op_workflow_runs,
    [SYN_OP_EVENTS_REPLAY] = op_events_replay,
    [SYN_OP_METRICS_GET] = op_metrics_get,
    [SYN_OP_WORKERS_LIST] = op_workers_list,
    [SYN_OP_READY] = op_ready,
    [SYN_OP_EXECUTION_RERUN] = broker_api_op_execution_rerun,
    [SYN_OP_COSTS_REPORT] = op_costs_report,
    [SYN_OP_EXECUTION_APPROVE] = op_execution_approve,
    [SYN_OP_EXECUTION_REJECT] = op_execution_reject,
    [SYN_OP_EXECUTION_ARTIFACTS] = broker_api_op_execution_artifacts,
    [SYN_OP_EXECUTION_ARTIFACT] = broker_api_op_execution_artifact,
};

broker_api_t *broker_api_new(broker_store_t *store, broker_engine_t *engine,
                             broker_workers_t *workers)
{
    broker_api_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->store = store;
    self->engine = engine;
    self->workers = workers;
    self->idempotency_window_s = BROKER_IDEMPOTENCY_WINDOW_S;
    return self;
}

void broker_api_set_idempotency_window(broker_api_t *self, int64_t seconds)
{
    if (seconds > 0)
        self->idempotency_window_s = seconds;
}

void broker_api_watch_storage(broker_api_t *self, const broker_storage_t *storage)
{
    self->storage = storage;
}

void broker_api_watch_lease(broker_api_t *self, const broker_lease_t *lease)
{
    self->lease = lease;
}

void broker_api_count_into(broker_api_t *self, broker_counters_t *counters)
{
    self->counters = counters;
}

json_t *broker_api_metrics(broker_api_t *self)
{
    if (!self->counters)
        return NULL;
    broker_engine_stats_t stats = broker_engine_stats(self->engine);
    broker_gauges_t gauges = {
        .ready_depth = broker_engine_ready_depth(self->engine),
        .workers_connected = broker_workers_count(self->workers),
        .workers_healthy = broker_workers_count_healthy(self->workers),
        .attempts_lost = stats.lost,
        .attempts_retried = stats.retried,
        .attempts_timed_out = stats.timed_out,
        .commits = broker_store_commit_count(self->store),
        .storage_full = storage_full(self) != NULL,
        .commit_seconds = broker_store_commit_latency(self->store),
        .dispatch_seconds = broker_engine_dispatch_latency(self->engine),
    };
    broker_workers_slots(self->workers, &gauges.slots_busy, &gauges.slots_free);
    return broker_counters_families(self->counters, &gauges);
}

void broker_api_destroy(broker_api_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    free(*self_p);
    *self_p = NULL;
}

int broker_api_handle(broker_api_t *self, const char *op, const json_t *args, json_t **body)
{
    *body = NULL;
    if (!json_is_object(args)) {
        reason_t why = {"args must be an object"};
        return api_bad_request(body, &why);
    }
    syn_op_t found;
    if (syn_op_find(op, &found) != 0) {
        *body = api_detail("unknown operation %s", op ? op : "(none)");
        return 400;
    }
    if (storage_full(self) && !broker_storage_allows(found)) {
        *body = broker_storage_refusal(self->storage);
        return 503;
    }
    /* The table's schema first (proto/ops.h): what it refuses never reaches a handler,
     * so gateway and broker hold the same shapes by construction. */
    char reason[sizeof(reason_t)];
    if (syn_op_check_args(found, args, reason, sizeof reason) != 0) {
        reason_t why;
        api_fail(&why, "%s", reason);
        return api_bad_request(body, &why);
    }
    int status = handlers[found](self, args, body);
    if (!*body)
        status = api_internal_error(body, "out of memory");
    return status;
}
