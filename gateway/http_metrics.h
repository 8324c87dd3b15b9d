/* http_metrics: what the gateway adds to the broker's metrics on GET /metrics — its
 * HTTP requests by method, route pattern and status, their latency, and its SSE
 * clients — and the text of the whole (common/metrics.h renders it). */
#ifndef SYN_GATEWAY_HTTP_METRICS_H
#define SYN_GATEWAY_HTTP_METRICS_H

#include <jansson.h>
#include <stddef.h>

typedef struct gateway_http_metrics_t gateway_http_metrics_t;

gateway_http_metrics_t *gateway_http_metrics_new(void);
void gateway_http_metrics_destroy(gateway_http_metrics_t **self_p);

/* One answered request; route is its pattern, or "unmatched". */
void gateway_http_metrics_observe(gateway_http_metrics_t *self, const char *method,
                                  const char *route, unsigned status, double seconds);

/* The exposition text (malloc'd) of the broker's families (borrowed; NULL: none)
 * followed by the gateway's own; NULL when out of memory. */
char *gateway_http_metrics_render(const gateway_http_metrics_t *self,
                                  const json_t *broker_families, size_t sse_clients);

#endif
