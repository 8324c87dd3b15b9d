/* api: the operations gateways ask for (names and arguments: proto/ops.h; the spec:
 * docs/protocol.md), answered with an HTTP-like status and the exact JSON body the
 * gateway returns to its client.
 *
 *   health             200 {status:"ok", broker:"up", workers:N}; while storage is
 *                      full {status:"degraded", ..., storage:"full", reason}
 *   workflow.create    201 {id, name, workflow_type, classification, status:"created"}; 409; 422
 *   workflow.list      200 {workflows:[...], total, page, page_size}; filters
 *                      workflow_type and include_archived
 *   workflow.get       200 the template with defaults filled, created_at, version and
 *                      archived (archived workflows stay readable); 404
 *   workflow.install   201 {id, version, status:"created"}; 200 {..., status:"updated" |
 *                      "unchanged" | "archived" (left alone)}; the preload's operation
 *   workflow.archive   200 {id, status:"archived"}; 404; 409 already archived or with
 *                      pending/running/paused executions
 *   workflow.phase_update  200 {workflow_id, phase_id, version, status:"updated"}; 404
 *                      workflow or phase; 409 archived
 *   execution.start    200 {execution_id, workflow_id, status:"started", message}; 404;
 *                      409 archived; 422. With idempotency_key: the first answer again
 *                      (marked SYN_OP_REPLAYED: true) while the key is in its window,
 *                      409 when the key came with another request
 *   execution.status   200 status object; 404; 409 (ambiguous prefix)
 *   execution.active   200 [status objects], newest first
 *   execution.cancel   200 {success, execution_id, state, message:"Cancel signal queued",
 *                      error:null}; 400 "Cannot cancel execution in state <s>"
 *   execution.pause    200 (message "Execution paused"); 400 "Cannot pause execution in state <s>"
 *   execution.resume   200 (message "Execution resumed"); 400 "Cannot resume ..."
 *   execution.inject   200 (message "Message queued"); 400 "Cannot inject into terminal
 *                      execution", or too many messages waiting
 *   execution.state    200 {execution_id, state}
 *   execution.list     200 {executions:[summary], total, page, page_size}
 *   execution.get      200 the detail (store.h: broker_store_execution_detail)
 *   execution.output   200 {output}; 404 "Phase <p> not found in execution <id>"
 *   workflow.runs      200 {runs:[summary], total, workflow_id, workflow_name}; 404
 *   events.replay      200 {events, last_seq, more, terminal, execution_id}
 * Execution ids may be unique prefixes (404 none, 409 several).
 *
 * Arguments are checked again here even though the gateway checked their shape:
 * anything that breaks it gets 400 {"detail":"bad request: <reason>"}, an unknown
 * op 400 {"detail":"unknown operation <op>"}. Replies leave through the outbox,
 * so even a 200 for execute is only sent once the execution is committed. */
#ifndef SYN_BROKER_API_H
#define SYN_BROKER_API_H

#include "broker/counters.h"
#include "broker/engine.h"
#include "broker/lease.h"
#include "broker/storage_full.h"
#include "broker/store.h"
#include "broker/workers.h"
#include "proto/ops.h"

#include <jansson.h>

/* events.replay answers at most this many events, and stops adding events once
 * their data passed BROKER_REPLAY_BYTES_MAX (the reply must fit one message). */
#define BROKER_REPLAY_LIMIT_MAX SYN_OP_REPLAY_LIMIT_MAX
#define BROKER_REPLAY_BYTES_MAX (4u * 1024u * 1024u)

typedef struct broker_api_t broker_api_t;

/* How long a key answers the same execution, unless the broker is told otherwise. */
#define BROKER_IDEMPOTENCY_WINDOW_S (24 * 3600)

broker_api_t *broker_api_new(broker_store_t *store, broker_engine_t *engine,
                             broker_workers_t *workers);
/* The broker's metrics are counted there (borrowed; until set, metrics.get is a 500). */
void broker_api_count_into(broker_api_t *self, broker_counters_t *counters);
/* Every metric family (common/metrics.h's JSON), counted and read now; NULL: none. */
json_t *broker_api_metrics(broker_api_t *self);
void broker_api_destroy(broker_api_t **self_p);
/* How long an Idempotency-Key answers the same execution (seconds, > 0). */
void broker_api_set_idempotency_window(broker_api_t *self, int64_t seconds);
/* Where the api reads whether storage is full (borrowed; broker/storage_full.h):
 * then it serves reads only, refuses the rest with 503, and health and ready
 * say why. */
void broker_api_watch_storage(broker_api_t *self, const broker_storage_t *storage);
/* The lease this broker holds (borrowed): health and workers.list name the
 * active broker by it ("active_broker"); none on SQLite. */
void broker_api_watch_lease(broker_api_t *self, const broker_lease_t *lease);

/* Answers one operation: the status, and a new reference to the body in *body. */
int broker_api_handle(broker_api_t *self, const char *op, const json_t *args, json_t **body);

#endif
