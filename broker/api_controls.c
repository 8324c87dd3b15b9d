/* api_controls: the operations of the team controls (issue 19) — an execute
 * with an Idempotency-Key answered once and replayed after, and the rerun of a
 * finished execution from a phase. They stand apart from api.c because each
 * wraps or copies an execution start with rules of its own (what counts as the
 * same request, which phases are reused), not a new kind of read or control. */
#include "broker/api_internal.h"

#include "common/clock.h"
#include "common/log.h"

#include <stdlib.h>
#include <string.h>

#define US_PER_SECOND 1000000

/* What makes two executes with one key the same request: every argument but
 * the key itself, as canonical JSON (keys sorted). The gateway has already
 * filled the defaults ({} inputs, [] repos, null task), so two bodies that
 * say the same thing in different words are the same request. NULL: no memory. */
static char *request_fingerprint(const json_t *args)
{
    json_t *copy = json_copy((json_t *)args);
    if (!copy)
        return NULL;
    json_object_del(copy, "idempotency_key");
    char *text = json_dumps(copy, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
    json_decref(copy);
    return text;
}

/* The first answer again, marked for the gateway (which turns the mark into the
 * Idempotent-Replayed header and takes it out of the body). */
static int replay(const char *answer, json_t **body)
{
    json_t *first = json_loads(answer, 0, NULL);
    if (!json_is_object(first)) {
        json_decref(first);
        return api_internal_error(body, "unreadable stored answer of an idempotency key");
    }
    json_object_set_new(first, SYN_OP_REPLAYED, json_true());
    *body = first;
    return 200;
}

int broker_api_op_execution_start_keyed(broker_api_t *self, const json_t *args, json_t **body)
{
    reason_t why = {""};
    const char *key = NULL;
    if (!api_opt_string(args, "idempotency_key", &key, "", &why))
        return api_bad_request(body, &why);
    if (!key)
        return broker_api_execution_start(self, args, body);
    if (!syn_op_idempotency_key_ok(key)) {
        api_fail(&why, "idempotency_key must be 1 to %d printable ASCII characters",
                 SYN_OP_IDEMPOTENCY_KEY_MAX);
        return api_bad_request(body, &why);
    }
    char *fingerprint = request_fingerprint(args);
    if (!fingerprint)
        return api_internal_error(body, "out of memory");
    int64_t now = syn_now_us();
    int64_t since = now - self->idempotency_window_s * US_PER_SECOND;
    char *stored = NULL, *answer = NULL;
    int status;
    int found = broker_store_idempotency_find(self->store, key, since, &stored, &answer);
    if (found < 0) {
        status = api_internal_error(body, "cannot read the idempotency keys");
    } else if (found == 1 && strcmp(stored, fingerprint) != 0) {
        *body = api_detail("Idempotency-Key %s was already used with a different request: "
                           "send the same body to get its execution, or use a new key",
                           key);
        status = 409;
    } else if (found == 1) {
        status = replay(answer, body);
    } else {
        status = broker_api_execution_start(self, args, body);
        char *text = status == 200 ? json_dumps(*body, JSON_COMPACT) : NULL;
        const char *id = json_string_value(json_object_get(*body, "execution_id"));
        if (status == 200 &&
            (!text || !id ||
             broker_store_idempotency_put(self->store, key, fingerprint, id, text, now,
                                          since) < 0))
            syn_error("broker", "cannot store idempotency key=%s", key);
        free(text);
    }
    free(stored);
    free(answer);
    free(fingerprint);
    return status;
}

/* --- execution.rerun --------------------------------------------------------- */

/* "Phase x not found in execution e: its phases are a, b, c" (422). */
static int unknown_phase(const broker_execution_t *old, const char *phase_id, json_t **body)
{
    size_t size = 1;
    for (size_t i = 0; i < old->phase_count; i++)
        size += strlen(old->phases[i].phase_id) + 2;
    char *list = calloc(1, size);
    if (!list)
        return api_internal_error(body, "out of memory");
    for (size_t i = 0; i < old->phase_count; i++) {
        if (i)
            strcat(list, ", ");
        strcat(list, old->phases[i].phase_id);
    }
    *body = api_detail("Phase %s not found in execution %s: its phases are %s", phase_id,
                       old->id, list);
    free(list);
    return 422;
}

/* The phase a rerun starts at: the one named, else the first that did not
 * complete (the first of all when every one did). -1 when none has that id. */
static long rerun_from(const broker_execution_t *old, const char *from_phase)
{
    for (size_t i = 0; i < old->phase_count; i++)
        if (from_phase ? strcmp(old->phases[i].phase_id, from_phase) == 0
                       : old->phases[i].status != BROKER_PHASE_COMPLETED)
            return (long)i;
    return from_phase ? -1 : 0;
}

int broker_api_op_execution_rerun(broker_api_t *self, const json_t *args, json_t **body)
{
    reason_t why = {""};
    const char *from_phase = NULL, *task = NULL;
    json_int_t priority = 0;
    if (!api_opt_string(args, "from_phase", &from_phase, "", &why) ||
        !api_opt_string(args, "task", &task, "", &why) ||
        !api_opt_int(args, "priority", SYN_OP_PRIORITY_MIN, SYN_OP_PRIORITY_MAX, &priority, "",
                     &why))
        return api_bad_request(body, &why);
    const json_t *overrides = json_object_get(args, "inputs");
    char id[BROKER_EXEC_ID_SIZE];
    int status = api_resolve_arg(self, args, id, body);
    if (status != 200)
        return status;
    broker_execution_t *active = broker_engine_find(self->engine, id);
    if (active) {
        *body = api_detail("Cannot rerun execution in state %s: only a finished execution "
                           "(completed, failed or cancelled) can be rerun",
                           broker_exec_status_name(active->status));
        return 409;
    }
    char err[256];
    broker_execution_t *old = NULL;
    if (broker_store_execution_load(self->store, id, &old, err, sizeof err) <= 0)
        return api_internal_error(body, err);
    json_t *tpl = NULL, *inputs = NULL;
    long from = rerun_from(old, from_phase);
    if (!broker_exec_is_terminal(old->status)) {
        *body = api_detail("Cannot rerun execution in state %s: only a finished execution "
                           "(completed, failed or cancelled) can be rerun",
                           broker_exec_status_name(old->status));
        status = 409;
    } else if (from < 0) {
        status = unknown_phase(old, from_phase, body);
    } else if (broker_store_workflow_template(self->store, old->workflow_id,
                                              old->workflow_version, &tpl) <= 0) {
        status = api_internal_error(body, "cannot read the workflow version it ran");
    } else {
        /* its merged inputs ← the overrides ← the new task (as input "task") */
        inputs = json_deep_copy(old->inputs);
        if (json_is_object(overrides))
            json_object_update(inputs, (json_t *)overrides);
        if (task)
            json_object_set_new(inputs, "task", json_string(task));
        char new_id[BROKER_EXEC_ID_SIZE];
        /* the old execution's priority, unless the request gives one */
        if (!json_object_get(args, "priority"))
            priority = old->priority;
        if (broker_engine_rerun(self->engine, old, tpl, (size_t)from, inputs,
                                task ? task : old->task, priority, new_id, err,
                                sizeof err) < 0) {
            status = api_internal_error(body, err);
        } else {
            *body = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "execution_id", new_id,
                              "workflow_id", old->workflow_id, "status", "started", "message",
                              "Workflow execution started", "rerun_of", old->id, "from_phase",
                              old->phases[from].phase_id);
            status = 200;
        }
    }
    json_decref(inputs);
    json_decref(tpl);
    broker_execution_destroy(&old);
    return status;
}
