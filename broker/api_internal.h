/* api_internal: what the broker's operation handlers share (broker/api.c: the
 * dispatch and the execution, control, query and fleet ops; broker/api_workflows.c:
 * the workflow ops); nobody outside broker/api*.c includes it. */
#ifndef SYN_BROKER_API_INTERNAL_H
#define SYN_BROKER_API_INTERNAL_H

#include "broker/api.h"
#include "broker/lease.h"
#include "broker/storage_full.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

struct broker_api_t {
    broker_store_t *store;
    broker_engine_t *engine;
    broker_workers_t *workers;
    broker_counters_t *counters; /* borrowed, may be NULL */
    const broker_storage_t *storage; /* borrowed, may be NULL: whether storage is full */
    const broker_lease_t *lease; /* borrowed, may be NULL: which broker is active */
    int64_t idempotency_window_s; /* how long an Idempotency-Key answers the same */
};

typedef struct {
    char text[512];
} reason_t;

/* A reply body {"detail": text}. */
json_t *api_detail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* 400 with "bad request: <why>"; 500 with "internal error: <what>". */
int api_bad_request(json_t **body, const reason_t *why);
int api_internal_error(json_t **body, const char *what);

/* Argument checks: each true when the argument is acceptable, else false with
 * why (api_fail writes it, never cutting a UTF-8 sequence). */
bool api_fail(reason_t *why, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* An optional string field: absent or null leaves *out as is. */
bool api_opt_string(const json_t *obj, const char *key, const char **out, const char *where,
                    reason_t *why);
bool api_req_string(const json_t *obj, const char *key, const char **out, const char *where,
                    reason_t *why);
bool api_opt_int(const json_t *obj, const char *key, json_int_t min, json_int_t max,
                 json_int_t *out, const char *where, reason_t *why);

/* api_artifacts.c: execution.artifacts, execution.artifact. */
int broker_api_op_execution_artifacts(broker_api_t *self, const json_t *args, json_t **body);
int broker_api_op_execution_artifact(broker_api_t *self, const json_t *args, json_t **body);

/* api_workflows.c: workflow.create, .list, .get, .install, .archive, .phase_update. */
int broker_api_op_workflow_create(broker_api_t *self, const json_t *args, json_t **body);
int broker_api_op_workflow_list(broker_api_t *self, const json_t *args, json_t **body);
int broker_api_op_workflow_get(broker_api_t *self, const json_t *args, json_t **body);
int broker_api_op_workflow_install(broker_api_t *self, const json_t *args, json_t **body);
int broker_api_op_workflow_archive(broker_api_t *self, const json_t *args, json_t **body);
int broker_api_op_workflow_phase_update(broker_api_t *self, const json_t *args, json_t **body);

/* api.c: execution.start itself; api_controls.c: the same with an idempotency key
 * (the op's handler), execution.rerun. */
int broker_api_execution_start(broker_api_t *self, const json_t *args, json_t **body);
int broker_api_op_execution_start_keyed(broker_api_t *self, const json_t *args, json_t **body);
int broker_api_op_execution_rerun(broker_api_t *self, const json_t *args, json_t **body);
/* api.c: args.execution_id (a full id or a unique prefix) to a full id: 200, or
 * the error reply (400, 404, 409) in *body. */
int api_resolve_arg(broker_api_t *self, const json_t *args, char id[BROKER_EXEC_ID_SIZE],
                    json_t **body);

#endif
