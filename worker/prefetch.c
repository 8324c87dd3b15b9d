/* prefetch: the adaptive prefetch rule (prefetch.h). It stands alone because
 * it is the one decision of how much work a worker takes ahead of its slots,
 * a pure function of what the worker measured. */
#include "worker/prefetch.h"

#include <stdlib.h>
#include <string.h>

static void ring_add(prefetch_ring_t *r, int64_t v)
{
    r->v[r->next] = v < 0 ? 0 : v;
    r->next = (r->next + 1) % PREFETCH_SAMPLES;
    if (r->n < PREFETCH_SAMPLES)
        r->n++;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* A median, not a mean: one phase stuck behind a slow commit (or one agent
 * that ran for minutes among quick ones) does not decide alone. */
static int64_t ring_median(const prefetch_ring_t *r)
{
    if (r->n == 0)
        return -1;
    int64_t v[PREFETCH_SAMPLES];
    memcpy(v, r->v, r->n * sizeof v[0]);
    qsort(v, r->n, sizeof v[0], cmp_i64);
    return r->n % 2 ? v[r->n / 2] : (v[r->n / 2 - 1] + v[r->n / 2]) / 2;
}

void worker_prefetch_init(worker_prefetch_t *self, int fixed)
{
    memset(self, 0, sizeof *self);
    self->fixed = fixed < 0 ? PREFETCH_AUTO : fixed;
}

void worker_prefetch_took(worker_prefetch_t *self, int64_t took_us)
{
    ring_add(&self->took_us, took_us);
    self->fresh++;
}

void worker_prefetch_trip(worker_prefetch_t *self, int64_t trip_us)
{
    ring_add(&self->trip_us, trip_us);
}

int64_t worker_prefetch_median_took(const worker_prefetch_t *self)
{
    return ring_median(&self->took_us);
}

int64_t worker_prefetch_median_trip(const worker_prefetch_t *self)
{
    return ring_median(&self->trip_us);
}

int64_t worker_prefetch_limit_us(const worker_prefetch_t *self)
{
    int64_t trip = worker_prefetch_median_trip(self);
    if (trip <= 0)
        trip = PREFETCH_DEFAULT_TRIP_US;
    int64_t cap = (int64_t)PREFETCH_LONG_MS * 1000;
    return trip > cap / PREFETCH_TRIPS ? cap : trip * PREFETCH_TRIPS;
}

int worker_prefetch_want(const worker_prefetch_t *self, int slots, int current,
                         int64_t oldest_us)
{
    if (self->fixed != PREFETCH_AUTO)
        return self->fixed;
    int64_t took = worker_prefetch_median_took(self);
    int64_t limit = worker_prefetch_limit_us(self);
    if (current > 0) {
        /* Held: let go when the phases are clearly long now, or one runs well
         * past what short ones take (no need to wait for it to end). Twice the
         * limit, so a median wavering at the limit does not flap. */
        if (took > 2 * limit)
            return 0;
        if (oldest_us > 2 * limit && oldest_us > 4 * took)
            return 0;
        return current;
    }
    if (self->took_us.n < PREFETCH_MIN_SAMPLES || self->fresh < PREFETCH_MIN_SAMPLES)
        return 0;
    /* While a phase runs longer than the limit, these are not short phases. */
    if (took > limit || oldest_us > limit)
        return 0;
    return slots;
}

void worker_prefetch_changed(worker_prefetch_t *self)
{
    self->fresh = 0;
}
