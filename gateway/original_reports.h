/* original_reports: the original service's routes syn has no form of its own, built
 * from broker replies by the gateway (issue 17; docs/api.md "Coming from the
 * original"): /costs/summary, /costs/executions[/{id}], /costs/sessions[/{id}] and
 * GET /api/v1/metrics from costs.report (or execution.get for one execution or
 * session), and GET /workflows/{id}/export?format=package|plugin, a JSON file
 * manifest of the workflow.get reply. A session is one attempt of a phase (one
 * agent session), named "<execution_id>:<phase_id>:<attempt>".
 *
 * Split from gateway/original_compat.c, which routes to it, because these answers
 * are whole documents of the original's, not additions to syn's. Pure. */
#ifndef SYN_GATEWAY_ORIGINAL_REPORTS_H
#define SYN_GATEWAY_ORIGINAL_REPORTS_H

#include "gateway/api.h"
#include "gateway/router.h"
#include "proto/ops.h"

#include <jansson.h>
#include <stdbool.h>

/* As gateway_compat_request, for export, metrics and the cost routes; -1 when the
 * route is syn's own (export without ?format=, /metrics at the root). */
int gateway_reports_request(const gateway_route_t *route, bool original, gateway_query_fn query,
                            void *cls, syn_op_t *op, json_t **args, json_t **error,
                            json_t **keep);

/* As gateway_compat_answer, for those routes. */
json_t *gateway_reports_answer(const gateway_route_t *route, bool original, const json_t *keep,
                               unsigned *status, const json_t *body);

#endif
