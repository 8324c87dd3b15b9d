/* stats: percentiles and medians over arrays of doubles. */
#ifndef SYNLOAD_STATS_H
#define SYNLOAD_STATS_H

#include <stddef.h>

/* The p-th percentile (0..100) with linear interpolation between ranks (the
 * same definition as the peers' clients); sorts values in place. 0 for n == 0. */
double stats_percentile(double *values, size_t n, double p);

typedef struct {
    double median, min, max;
} stats_summary_t;

/* Median, min and max of n values (values is left unchanged). */
stats_summary_t stats_summarize(const double *values, size_t n);

#endif
