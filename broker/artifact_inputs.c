/* artifact_inputs: earlier phases' artifacts for a later phase (artifact_inputs.h). */
#include "broker/artifact_inputs.h"

#include "broker/artifacts.h"
#include "broker/engine_internal.h"
#include "broker/fence.h"
#include "common/log.h"

#include <stdlib.h>
#include <string.h>

/* Whether phase_id names a phase of exec before phase that completed. */
static bool earlier_completed(const broker_execution_t *exec, const broker_phase_t *phase,
                              const char *phase_id)
{
    for (const broker_phase_t *p = exec->phases; p < phase; p++)
        if (p->status == BROKER_PHASE_COMPLETED && strcmp(p->phase_id, phase_id) == 0)
            return true;
    return false;
}

json_t *broker_artifact_inputs_list(broker_engine_t *self, broker_execution_t *exec,
                                    broker_phase_t *phase)
{
    if (phase == exec->phases || exec->no_artifacts)
        return NULL; /* no earlier phase, or none left artifacts: no query */
    json_t *rows = broker_store_artifacts_list(self->store, exec->id);
    if (!rows) {
        syn_error("broker", "cannot list the artifacts for execution=%s phase=%s", exec->id,
                  phase->phase_id);
        return NULL;
    }
    json_t *list = json_array();
    size_t left_out = 0;
    size_t i;
    json_t *row;
    json_array_foreach(rows, i, row) {
        const char *from = json_string_value(json_object_get(row, "phase_id"));
        if (!list || !from || !earlier_completed(exec, phase, from))
            continue;
        if (json_array_size(list) >= BROKER_ASSIGN_ARTIFACTS_MAX) {
            left_out++;
            continue;
        }
        json_array_append_new(list, json_pack("{s:O, s:O, s:O, s:O}", "phase_id",
                                              json_object_get(row, "phase_id"), "path",
                                              json_object_get(row, "path"), "size",
                                              json_object_get(row, "size"), "sha256",
                                              json_object_get(row, "sha256")));
    }
    json_decref(rows);
    if (left_out > 0) {
        json_t *data = engine_phase_event(phase);
        char *text = engine_strdupf("%zu artifacts of earlier phases are not in the workspace: "
                                    "more than %d files",
                                    left_out, BROKER_ASSIGN_ARTIFACTS_MAX);
        json_object_set_new(data, "message", json_string(text ? text : "artifacts left out"));
        free(text);
        engine_emit(self, exec, "PhaseWarning", data);
    }
    if (json_array_size(list) == 0) {
        json_decref(list);
        return NULL;
    }
    return list;
}

/* The ARTIFACT_DATA answering fields: the chunk (text, base64), or error. */
static json_t *data_reply(const json_t *fields, const broker_artifact_row_t *row,
                          const char *text, const char *error)
{
    json_t *reply = json_pack(
        "{s:O, s:O, s:O, s:O, s:O, s:O, s:I, s:s, s:s}", "execution_id",
        json_object_get(fields, "execution_id"), "phase_id", json_object_get(fields, "phase_id"),
        "attempt", json_object_get(fields, "attempt"), "from_phase",
        json_object_get(fields, "from_phase"), "path", json_object_get(fields, "path"), "offset",
        json_object_get(fields, "offset"), "size", (json_int_t)(row ? row->size : 0), "sha256",
        row ? row->sha256 : "", "data", text ? text : "");
    if (reply && error)
        json_object_set_new(reply, "error", json_string(error));
    return reply;
}

void broker_artifact_inputs_get(broker_engine_t *self, broker_worker_t *worker,
                                const json_t *fields, int64_t now_ms)
{
    (void)now_ms;
    engine_ref_t ref;
    if (!engine_read_ref(fields, &ref))
        return;
    const char *from = json_string_value(json_object_get(fields, "from_phase"));
    const char *path = json_string_value(json_object_get(fields, "path"));
    int64_t offset = (int64_t)json_integer_value(json_object_get(fields, "offset"));
    broker_execution_t *exec = NULL;
    bool refused;
    broker_phase_t *phase = broker_fence_admit(self, worker, ref.execution_id, ref.phase_id,
                                               ref.attempt, "artifact_get", &exec, &refused);
    json_t *reply = NULL;
    if (!phase) {
        reply = data_reply(fields, NULL, NULL,
                           refused ? "another worker holds this attempt"
                                   : "not the current attempt");
    } else {
        broker_artifact_row_t row;
        int found = broker_store_artifact_find(self->store, exec->id, from, path, &row);
        char *text = NULL;
        size_t len = 0;
        if (found == 1 && offset <= row.size)
            text = broker_store_artifact_read_base64(self->store, &row, offset,
                                                     BROKER_ARTIFACT_CHUNK_MAX, &len);
        char *error =
            found < 0 || (found == 1 && offset <= row.size && !text)
                ? strdup("the artifact cannot be read")
            : found == 0 ? engine_strdupf("Artifact %s of phase %s not found in execution %s",
                                          path, from, exec->id)
            : offset > row.size ? engine_strdupf("offset %lld is past the end of %s (%lld bytes)",
                                                 (long long)offset, path, (long long)row.size)
                                : NULL;
        if (error)
            syn_warn("broker", "artifact_get execution=%s phase=%s from=%s path=%s: %s",
                     exec->id, phase->phase_id, from, path, error);
        reply = data_reply(fields, found == 1 ? &row : NULL, error ? NULL : text, error);
        broker_artifacts_turn_add(self->artifacts, len);
        free(text);
        free(error);
    }
    engine_send_to_worker(self, worker->identity, worker->identity_len, SYN_MSG_ARTIFACT_DATA,
                          reply);
}
