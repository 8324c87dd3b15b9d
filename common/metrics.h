/* metrics: histograms and the Prometheus text exposition format (0.0.4), shared by
 * the broker (which counts) and the gateway (which adds its HTTP figures and answers
 * GET /metrics), so both write the same text from the same shapes.
 *
 * Between the two a set of metrics travels as JSON (the broker's metrics.get reply):
 * an array of families {name, type: counter|gauge|histogram, help, samples}, each
 * sample {labels: {name: value}, value} or, for histograms, {labels, histogram:
 * {bounds, counts (cumulative, one per bound then +Inf), sum, count}}. */
#ifndef SYN_COMMON_METRICS_H
#define SYN_COMMON_METRICS_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#define SYN_HISTOGRAM_BOUNDS_MAX 16

typedef struct {
    const double *bounds; /* upper bounds, increasing (a +Inf bucket is implied) */
    size_t bound_count;
    uint64_t counts[SYN_HISTOGRAM_BOUNDS_MAX + 1]; /* per bucket, not cumulative */
    double sum;
    uint64_t count;
} syn_histogram_t;

/* Bucket bounds in seconds: a commit or an HTTP request (0.5 ms .. 5 s), and a
 * phase's run or wait (100 ms .. 1 h). */
extern const double syn_buckets_fast_seconds[];
extern const size_t syn_buckets_fast_count;
extern const double syn_buckets_slow_seconds[];
extern const size_t syn_buckets_slow_count;
/* A phase's dispatch (100 µs .. 5 s), fine around the 5 ms goal of issue 24. */
extern const double syn_buckets_dispatch_seconds[];
extern const size_t syn_buckets_dispatch_count;

void syn_histogram_init(syn_histogram_t *h, const double *bounds, size_t bound_count);
void syn_histogram_observe(syn_histogram_t *h, double value);

/* Appends a family to families and returns its samples array (borrowed), or NULL. */
json_t *syn_metrics_family(json_t *families, const char *name, const char *type,
                           const char *help);
/* Appends a sample; labels is stolen (NULL: none). */
void syn_metrics_sample(json_t *samples, json_t *labels, double value);
void syn_metrics_histogram_sample(json_t *samples, json_t *labels, const syn_histogram_t *h);
/* A whole family at once: one unlabelled sample (counter or gauge), a copy of
 * samples (labelled counters kept with syn_metrics_count), or one unlabelled
 * histogram (h NULL: none). */
void syn_metrics_add_value(json_t *families, const char *name, const char *type,
                           const char *help, double value);
void syn_metrics_add_samples(json_t *families, const char *name, const char *type,
                             const char *help, const json_t *samples);
void syn_metrics_add_histogram(json_t *families, const char *name, const char *help,
                               const syn_histogram_t *h);
/* Adds delta to the sample whose labels equal labels (stolen), appending it at 0 first. */
void syn_metrics_count(json_t *samples, json_t *labels, double delta);

/* The exposition text of families (malloc'd, free() it), or NULL when out of memory. */
char *syn_metrics_render(const json_t *families);

#define SYN_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

#endif
