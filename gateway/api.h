/* api: turns a matched HTTP route (path parameters, query, body) into the broker
 * operation that answers it and that operation's arguments (docs/protocol.md).
 *
 * Pure: the HTTP server hands in what it received and sends whatever comes out,
 * so every route's mapping is testable without sockets. */
#ifndef SYN_GATEWAY_API_H
#define SYN_GATEWAY_API_H

#include "gateway/router.h"
#include "proto/ops.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* Returns the (decoded) value of query parameter name, or NULL when absent. */
typedef const char *(*gateway_query_fn)(void *cls, const char *name);

/* Returns 0 with *op and *args (new reference) set, or the HTTP
 * status to answer at once with *error (new reference) set to its body: an error
 * (415, 422, ...), or 200 for what the gateway answers alone (POST /workflows/validate).
 * content_type is the request's Content-Type header (NULL when absent); only
 * from-yaml looks at it. Bodies of GET routes are ignored. The SSE routes are no
 * single operation (the gateway streams them with events.replay pages and live
 * events): 404 here. GET /workflows/{id}/export asks workflow.get; the gateway turns
 * the reply into YAML (gateway/yaml.h). */
int gateway_api_request(const gateway_route_t *route, const char *content_type, const char *body,
                        size_t len, gateway_query_fn query, void *cls, syn_op_t *op,
                        json_t **args, json_t **error);

/* Arguments of events.replay: execution_id NULL for every execution. */
json_t *gateway_api_replay_args(const char *execution_id, uint64_t after_seq, unsigned limit);

/* Parses a Last-Event-ID header value (NULL: absent → 0): 0 with *seq set, or 422 with
 * *error set to the pydantic-style body (loc ["header","last-event-id"]). */
int gateway_api_last_event_id(const char *text, uint64_t *seq, json_t **error);

/* An Idempotency-Key header value (NULL: absent, nothing added) into execute's
 * args as idempotency_key: 0, or 422 with *error (loc ["header","idempotency-key"])
 * when it is not 1 to 255 printable ASCII characters. */
int gateway_api_idempotency_key(const char *text, json_t *args, json_t **error);

#endif
