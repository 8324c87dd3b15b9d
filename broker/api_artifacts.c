/* api_artifacts: the artifact operations — execution.artifacts (an execution's
 * list) and execution.artifact (one file's description and a range of its bytes,
 * base64). A range at a time because a file may be larger than any one reply: the
 * gateway streams a download by asking for the next range as its client reads
 * (gateway/download.c), so neither process holds a whole file. */
#include "broker/api_internal.h"
#include "broker/store.h"
#include "proto/ops.h"

#include <stdlib.h>
#include <string.h>

int broker_api_op_execution_artifacts(broker_api_t *self, const json_t *args, json_t **body)
{
    char id[BROKER_EXEC_ID_SIZE];
    int status = api_resolve_arg(self, args, id, body);
    if (status != 200)
        return status;
    json_t *list = broker_store_artifacts_list(self->store, id);
    if (!list)
        return api_internal_error(body, "cannot list the artifacts");
    *body = json_pack("{s:s, s:o}", "execution_id", id, "artifacts", list);
    return *body ? 200 : api_internal_error(body, "out of memory");
}

int broker_api_op_execution_artifact(broker_api_t *self, const json_t *args, json_t **body)
{
    reason_t why = {""};
    const char *phase_id, *path;
    json_int_t offset = 0, length = SYN_OP_ARTIFACT_READ_MAX;
    if (!api_req_string(args, "phase_id", &phase_id, "", &why) ||
        !api_req_string(args, "path", &path, "", &why) ||
        !api_opt_int(args, "offset", 0, INT64_MAX, &offset, "", &why) ||
        !api_opt_int(args, "length", 0, SYN_OP_ARTIFACT_READ_MAX, &length, "", &why))
        return api_bad_request(body, &why);
    char id[BROKER_EXEC_ID_SIZE];
    int status = api_resolve_arg(self, args, id, body);
    if (status != 200)
        return status;
    broker_artifact_row_t row;
    int found = broker_store_artifact_find(self->store, id, phase_id, path, &row);
    if (found < 0)
        return api_internal_error(body, "cannot read the artifact");
    if (found == 0) {
        *body = api_detail("Artifact %s of phase %s not found in execution %s", path, phase_id,
                           id);
        return 404;
    }
    char *text = broker_store_artifact_read_base64(self->store, &row, offset, (size_t)length,
                                                   NULL);
    if (!text)
        return api_internal_error(body, "cannot read the artifact");
    *body = json_pack("{s:s, s:s, s:I, s:s, s:I, s:s, s:s, s:I, s:s}", "execution_id", id,
                      "phase_id", phase_id, "attempt", (json_int_t)row.attempt, "path", path,
                      "size", (json_int_t)row.size, "sha256", row.sha256, "media_type",
                      row.media_type, "offset", (json_int_t)offset, "data", text);
    free(text);
    return *body ? 200 : api_internal_error(body, "out of memory");
}
