/* original_compat: what the original service's clients (its CLI, @syntropic137/cli,
 * and scripts written for its API) need from syn's gateway, in one place (issue 17,
 * docs/api.md "Coming from the original"):
 *
 *   - its request shapes translated into syn's: CreateWorkflowRequest (POST
 *     /workflows), ValidateYamlRequest {content, filename};
 *   - its answer shapes added beside syn's: workflow_execution_id, total_tokens,
 *     error_message and the *_display strings on executions; status/mode/
 *     degraded_reasons on /health; CreateWorkflowResponse's fields; ValidateYamlResponse;
 *   - its routes syn has no own form of: the cost routes and GET /api/v1/metrics (JSON), from
 *     the broker's costs.report, and GET /workflows/{id}/export?format=package|plugin
 *     (a JSON file manifest).
 *
 * It stands alone so syn's own modules keep syn's shapes and this file is the whole
 * of the translation: adding a field for the original touches nothing else. Pure (no
 * I/O, no state), like gateway/api.c, so each mapping is testable without sockets.
 * syn's API keeps every name it had: this only adds (never renames); where the two
 * cannot share one key (validate's `errors`), the original's shape is given to callers
 * that came through /api/v1 or spoke its request form. */
#ifndef SYN_GATEWAY_ORIGINAL_COMPAT_H
#define SYN_GATEWAY_ORIGINAL_COMPAT_H

#include "gateway/api.h"
#include "gateway/router.h"
#include "proto/ops.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* Maps a request the way gateway_api_request does, for the routes whose request this
 * module owns (original: it came through /api/v1). Returns -1 when the route is not
 * one of them (the caller goes on with gateway_api_request); otherwise 0 with *op and
 * *args, or the HTTP status to answer at once with *error its body. *keep (new
 * reference, or NULL) is what gateway_compat_answer needs of the request later. */
int gateway_compat_request(const gateway_route_t *route, bool original,
                           const char *content_type, const char *body, size_t len,
                           gateway_query_fn query, void *cls, syn_op_t *op, json_t **args,
                           json_t **error, json_t **keep);

/* The broker's reply (status, body) reshaped for the route: a new body (new
 * reference; *status may change), or NULL when the reply is answered as it is. */
json_t *gateway_compat_answer(const gateway_route_t *route, bool original, const json_t *keep,
                              unsigned *status, const json_t *body);

/* An SSE event's data with the original's additions: execution_id, phase_name (the
 * phase_id where the event names no name) and error_message (the error), beside syn's
 * keys; and the original's name of the event type (NULL when it has none of its own).
 * Returns a new reference. */
json_t *gateway_compat_event_data(const char *type, const char *execution_id,
                                  const json_t *data);
const char *gateway_compat_event_type(const char *type);

#endif
