/* metrics: histograms and the text exposition format (common/metrics.h). */
#include "common/metrics.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const double syn_buckets_fast_seconds[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                           0.05,   0.1,   0.25,   0.5,   1,    5};
const size_t syn_buckets_fast_count = sizeof syn_buckets_fast_seconds / sizeof(double);
const double syn_buckets_slow_seconds[] = {0.1, 0.5, 1,   2.5, 5,    10,   30,
                                           60,  120, 300, 600, 1800, 3600};
const size_t syn_buckets_slow_count = sizeof syn_buckets_slow_seconds / sizeof(double);
const double syn_buckets_dispatch_seconds[] = {0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.003,
                                               0.005,  0.0075,  0.01,   0.025, 0.05,  0.1,
                                               0.25,   0.5,     1,      5};
const size_t syn_buckets_dispatch_count = sizeof syn_buckets_dispatch_seconds / sizeof(double);

void syn_histogram_init(syn_histogram_t *h, const double *bounds, size_t bound_count)
{
    memset(h, 0, sizeof *h);
    h->bounds = bounds;
    h->bound_count = bound_count < SYN_HISTOGRAM_BOUNDS_MAX ? bound_count
                                                             : SYN_HISTOGRAM_BOUNDS_MAX;
}

void syn_histogram_observe(syn_histogram_t *h, double value)
{
    size_t i = 0;
    while (i < h->bound_count && value > h->bounds[i])
        i++;
    h->counts[i]++;
    h->sum += value;
    h->count++;
}

json_t *syn_metrics_family(json_t *families, const char *name, const char *type,
                           const char *help)
{
    json_t *samples = json_array();
    json_t *family = json_pack("{s:s, s:s, s:s, s:o}", "name", name, "type", type, "help", help,
                               "samples", samples);
    if (!family || json_array_append_new(families, family) != 0)
        return NULL;
    return samples;
}

void syn_metrics_sample(json_t *samples, json_t *labels, double value)
{
    json_array_append_new(samples, json_pack("{s:o, s:f}", "labels",
                                             labels ? labels : json_object(), "value", value));
}

void syn_metrics_histogram_sample(json_t *samples, json_t *labels, const syn_histogram_t *h)
{
    json_t *bounds = json_array(), *counts = json_array();
    uint64_t cumulative = 0;
    for (size_t i = 0; i <= h->bound_count; i++) {
        if (i < h->bound_count)
            json_array_append_new(bounds, json_real(h->bounds[i]));
        cumulative += h->counts[i];
        json_array_append_new(counts, json_integer((json_int_t)cumulative));
    }
    json_array_append_new(
        samples, json_pack("{s:o, s:{s:o, s:o, s:f, s:I}}", "labels",
                           labels ? labels : json_object(), "histogram", "bounds", bounds,
                           "counts", counts, "sum", h->sum, "count", (json_int_t)h->count));
}

void syn_metrics_count(json_t *samples, json_t *labels, double delta)
{
    size_t i;
    json_t *sample;
    json_array_foreach(samples, i, sample)
    {
        if (json_equal(json_object_get(sample, "labels"), labels)) {
            json_t *value = json_object_get(sample, "value");
            json_real_set(value, json_number_value(value) + delta);
            json_decref(labels);
            return;
        }
    }
    syn_metrics_sample(samples, labels, delta);
}

void syn_metrics_add_value(json_t *families, const char *name, const char *type,
                           const char *help, double value)
{
    json_t *samples = syn_metrics_family(families, name, type, help);
    if (samples)
        syn_metrics_sample(samples, NULL, value);
}

void syn_metrics_add_samples(json_t *families, const char *name, const char *type,
                             const char *help, const json_t *samples)
{
    json_t *into = syn_metrics_family(families, name, type, help);
    json_t *copy = into ? json_deep_copy(samples) : NULL;
    if (copy)
        json_array_extend(into, copy);
    json_decref(copy);
}

void syn_metrics_add_histogram(json_t *families, const char *name, const char *help,
                               const syn_histogram_t *h)
{
    json_t *samples = syn_metrics_family(families, name, "histogram", help);
    if (samples && h)
        syn_metrics_histogram_sample(samples, NULL, h);
}

/* A label value with \, " and newline escaped, as the format wants. */
static void put_label_value(FILE *out, const char *value)
{
    for (const char *c = value; *c; c++) {
        if (*c == '\\' || *c == '"')
            fputc('\\', out), fputc(*c, out);
        else if (*c == '\n')
            fputs("\\n", out);
        else
            fputc(*c, out);
    }
}

static void put_number(FILE *out, double value)
{
    if (isinf(value))
        fputs(value > 0 ? "+Inf" : "-Inf", out);
    else if (isnan(value))
        fputs("NaN", out);
    else if (value == floor(value) && fabs(value) < 1e15)
        fprintf(out, "%.0f", value);
    else
        fprintf(out, "%.17g", value);
}

/* name{a="x",b="y"[,le="bound"]} value */
static void put_sample(FILE *out, const char *name, const char *suffix, const json_t *labels,
                       const char *le, double value)
{
    fprintf(out, "%s%s", name, suffix);
    if (json_object_size(labels) || le) {
        fputc('{', out);
        const char *key;
        json_t *v;
        int n = 0;
        json_object_foreach((json_t *)labels, key, v)
        {
            fprintf(out, "%s%s=\"", n++ ? "," : "", key);
            put_label_value(out, json_is_string(v) ? json_string_value(v) : "");
            fputc('"', out);
        }
        if (le)
            fprintf(out, "%sle=\"%s\"", n ? "," : "", le);
        fputc('}', out);
    }
    fputc(' ', out);
    put_number(out, value);
    fputc('\n', out);
}

static void put_histogram(FILE *out, const char *name, const json_t *labels, const json_t *h)
{
    const json_t *bounds = json_object_get(h, "bounds"), *counts = json_object_get(h, "counts");
    for (size_t i = 0; i < json_array_size(counts); i++) {
        char le[32] = "+Inf";
        if (i < json_array_size(bounds))
            snprintf(le, sizeof le, "%g", json_number_value(json_array_get(bounds, i)));
        put_sample(out, name, "_bucket", labels, le,
                   json_number_value(json_array_get(counts, i)));
    }
    put_sample(out, name, "_sum", labels, NULL, json_number_value(json_object_get(h, "sum")));
    put_sample(out, name, "_count", labels, NULL,
               json_number_value(json_object_get(h, "count")));
}

char *syn_metrics_render(const json_t *families)
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    if (!out)
        return NULL;
    size_t i, j;
    json_t *family, *sample;
    json_array_foreach((json_t *)families, i, family)
    {
        const char *name = json_string_value(json_object_get(family, "name"));
        const char *type = json_string_value(json_object_get(family, "type"));
        const char *help = json_string_value(json_object_get(family, "help"));
        if (!name || !type)
            continue;
        fprintf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help ? help : "", name, type);
        json_array_foreach(json_object_get(family, "samples"), j, sample)
        {
            const json_t *labels = json_object_get(sample, "labels");
            const json_t *h = json_object_get(sample, "histogram");
            if (h)
                put_histogram(out, name, labels, h);
            else
                put_sample(out, name, "", labels, NULL,
                           json_number_value(json_object_get(sample, "value")));
        }
    }
    if (fclose(out) != 0) {
        free(text);
        return NULL;
    }
    return text;
}
