/* api: the operations gateways ask for (docs/protocol.md), answered with an
 * HTTP-like status and the exact JSON body the gateway returns to its client.
 *
 *   health             200 {status:"ok", broker:"up", workers:N}
 *   workflow.create    201 {id, name, workflow_type, classification, status:"created"}; 409; 422
 *   workflow.list      200 {workflows:[...], total, page, page_size}
 *   workflow.get       200 the template with defaults filled and created_at; 404
 *   execution.start    200 {execution_id, workflow_id, status:"started", message}; 404; 422
 *   execution.status   200 status object; 404; 409 (ambiguous prefix)
 *   execution.active   200 [status objects], newest first
 *
 * Arguments are checked again here even though the gateway checked their shape:
 * anything that breaks it gets 400 {"detail":"bad request: <reason>"}, an unknown
 * op 400 {"detail":"unknown operation <op>"}. Replies leave through the outbox,
 * so even a 200 for execute is only sent once the execution is committed. */
#ifndef SYN_BROKER_API_H
#define SYN_BROKER_API_H

#include "broker/engine.h"
#include "broker/store.h"
#include "broker/workers.h"

#include <jansson.h>

typedef struct broker_api_t broker_api_t;

broker_api_t *broker_api_new(broker_store_t *store, broker_engine_t *engine,
                             broker_workers_t *workers);
void broker_api_destroy(broker_api_t **self_p);

/* Answers one operation: the status, and a new reference to the body in *body. */
int broker_api_handle(broker_api_t *self, const char *op, const json_t *args, json_t **body);

#endif
