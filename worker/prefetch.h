/* prefetch: how many phases a worker holds beyond its slots when no --prefetch
 * is given (docs/operations.md, "Prefetch").
 *
 * A held phase saves a slot the broker round trip between two phases (result
 * in, commit, next assign out), which matters only when phases are short; it
 * costs the held phase the wait for a slot here, which matters when phases
 * are long (another worker may be idle meanwhile). So the worker learns both:
 * the median of its recent phases' durations and the median round trip (its
 * RESULT sent → the broker's RESULT_ACK, which leaves in the same turn as the
 * next ASSIGN). Phases are short when they take at most PREFETCH_TRIPS round
 * trips and at most PREFETCH_LONG_MS: then it holds as many as its slots
 * (a burst of results frees every slot at once); otherwise none. A phase
 * running well past that limit switches it off at once (the phases have
 * become long: what waits here is handed back), without waiting for the
 * phase to end. Turning it on again takes PREFETCH_MIN_SAMPLES new phases.
 *
 * It stands alone (no worker_t, no clock of its own) so the rule is a pure
 * function of what was measured, tested as such (tests/unit/test_worker_prefetch.c). */
#ifndef SYN_WORKER_PREFETCH_H
#define SYN_WORKER_PREFETCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PREFETCH_AUTO (-1)         /* no --prefetch: adapt */
#define PREFETCH_SAMPLES 16        /* durations and round trips kept (a ring each) */
#define PREFETCH_MIN_SAMPLES 4     /* phases measured before (again) holding any */
#define PREFETCH_TRIPS 1000        /* short: a phase takes at most this many round trips */
#define PREFETCH_LONG_MS 2000      /* ... and at most this long, whatever the round trip */
#define PREFETCH_DEFAULT_TRIP_US 1000 /* the round trip assumed before one is measured */

typedef struct {
    int64_t v[PREFETCH_SAMPLES];
    size_t n, next;
} prefetch_ring_t;

typedef struct {
    int fixed;                /* --prefetch N (0..1024), or PREFETCH_AUTO */
    prefetch_ring_t took_us;  /* phase durations: started → result */
    prefetch_ring_t trip_us;  /* RESULT sent → RESULT_ACK */
    size_t fresh;             /* durations recorded since the last change */
} worker_prefetch_t;

void worker_prefetch_init(worker_prefetch_t *self, int fixed);
/* A phase that ran (started → its result) took this long. */
void worker_prefetch_took(worker_prefetch_t *self, int64_t took_us);
/* A result was acknowledged this long after it was sent. */
void worker_prefetch_trip(worker_prefetch_t *self, int64_t trip_us);
/* The medians, or -1 while nothing is recorded. */
int64_t worker_prefetch_median_took(const worker_prefetch_t *self);
int64_t worker_prefetch_median_trip(const worker_prefetch_t *self);
/* Phases at most this long are short (µs): PREFETCH_TRIPS round trips, capped. */
int64_t worker_prefetch_limit_us(const worker_prefetch_t *self);
/* How many to hold beyond slots now: current is what it holds now, oldest_us
 * the age of its longest-running phase (-1: none runs). */
int worker_prefetch_want(const worker_prefetch_t *self, int slots, int current,
                         int64_t oldest_us);
/* The worker changed its prefetch: the next rise needs fresh phases. */
void worker_prefetch_changed(worker_prefetch_t *self);

#endif
