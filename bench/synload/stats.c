#include "bench/synload/stats.h"

#include <stdlib.h>
#include <string.h>

static int compare_doubles(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

double stats_percentile(double *values, size_t n, double p)
{
    if (n == 0)
        return 0;
    qsort(values, n, sizeof *values, compare_doubles);
    double k = (double)(n - 1) * p / 100.0;
    size_t f = (size_t)k;
    size_t c = f + 1 < n ? f + 1 : n - 1;
    return values[f] + (values[c] - values[f]) * (k - (double)f);
}

stats_summary_t stats_summarize(const double *values, size_t n)
{
    stats_summary_t s = {0, 0, 0};
    if (n == 0)
        return s;
    double *copy = malloc(n * sizeof *copy);
    if (!copy)
        return s;
    memcpy(copy, values, n * sizeof *copy);
    s.median = stats_percentile(copy, n, 50);
    s.min = copy[0];
    s.max = copy[n - 1];
    free(copy);
    return s;
}
