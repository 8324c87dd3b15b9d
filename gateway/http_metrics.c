/* http_metrics: the gateway's own metrics (gateway/http_metrics.h). */
#include "gateway/http_metrics.h"
#include "common/metrics.h"

#include <stdio.h>
#include <stdlib.h>

struct gateway_http_metrics_t {
    json_t *requests; /* samples {method, route, code} */
    syn_histogram_t seconds;
};

gateway_http_metrics_t *gateway_http_metrics_new(void)
{
    gateway_http_metrics_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->requests = json_array();
    if (!self->requests) {
        free(self);
        return NULL;
    }
    syn_histogram_init(&self->seconds, syn_buckets_fast_seconds, syn_buckets_fast_count);
    return self;
}

void gateway_http_metrics_destroy(gateway_http_metrics_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    json_decref((*self_p)->requests);
    free(*self_p);
    *self_p = NULL;
}

void gateway_http_metrics_observe(gateway_http_metrics_t *self, const char *method,
                                  const char *route, unsigned status, double seconds)
{
    char code[8];
    snprintf(code, sizeof code, "%u", status);
    syn_metrics_count(self->requests,
                      json_pack("{s:s, s:s, s:s}", "method", method, "route", route, "code",
                                code),
                      1);
    syn_histogram_observe(&self->seconds, seconds);
}

char *gateway_http_metrics_render(const gateway_http_metrics_t *self,
                                  const json_t *broker_families, size_t sse_clients)
{
    json_t *families = json_is_array(broker_families) ? json_deep_copy(broker_families)
                                                      : json_array();
    if (!families)
        return NULL;
    syn_metrics_add_samples(families, "syn_http_requests_total", "counter",
                            "HTTP requests answered, by method, route and code.",
                            self->requests);
    syn_metrics_add_histogram(families, "syn_http_request_duration_seconds",
                              "Time from an HTTP request's headers to its answer.",
                              &self->seconds);
    syn_metrics_add_value(families, "syn_sse_clients", "gauge",
                          "Server-Sent Events streams open.", (double)sse_clients);
    char *text = syn_metrics_render(families);
    json_decref(families);
    return text;
}
