/* retry: whether a phase runs again after an attempt that brought no result, and
 * after how long; pure policy, no state and no I/O, beside lifecycle.h.
 *
 * An attempt ends without a result in one of three ways, each with its own
 * budget, so that one kind of trouble never uses up the allowance of another:
 *   not run       the worker refused it (draining, no free slot) or its ASSIGN
 *                 never left: the agent never ran, so it runs again at once and
 *                 counts against nothing;
 *   worker fault  the worker could not start the agent (its program missing,
 *                 its workspace not made): the agent never ran either, so the
 *                 same; the worker is the one marked (unhealthy), not the phase;
 *   lost          its worker was lost (silent, disconnected, gone across a broker
 *                 restart) or gave it back: it runs again at once while the
 *                 attempts that counted (all but the not-run and agent-failed
 *                 ones) stay below max_attempts;
 *   agent failed  the agent's error, its own time limit or the broker's
 *                 backstop: it runs again while failures ≤ retries, after
 *                 retry_backoff_seconds × 2^(n−1) for the n-th failure, capped at
 *                 BROKER_RETRY_BACKOFF_CAP_SECONDS.
 * The engine keeps the counts (broker_phase_t) and applies the verdict. */
#ifndef SYN_BROKER_RETRY_H
#define SYN_BROKER_RETRY_H

#include <stdbool.h>
#include <stdint.h>

#define BROKER_RETRY_BACKOFF_CAP_SECONDS 60.0

typedef enum {
    BROKER_RETRY_NOT_RUN,      /* refused by the worker, or never delivered */
    BROKER_RETRY_WORKER_LOST,  /* the worker was lost with it */
    BROKER_RETRY_GIVEN_BACK,   /* the worker cancelled it on its own */
    BROKER_RETRY_AGENT_FAILED, /* an error, the agent's timeout or the broker's backstop */
    BROKER_RETRY_WORKER_FAULT, /* the worker could not start the agent (program missing…) */
} broker_retry_cause_t;

/* A phase's counts, the attempt that just ended included. */
typedef struct {
    int64_t attempt;        /* number of the attempt that ended (from 1) */
    int64_t max_attempts;   /* the budget of lost attempts */
    int64_t undelivered;    /* attempts that never ran */
    int64_t failures;       /* attempts the agent failed */
    int64_t lost;           /* attempts whose worker was lost */
    int64_t retries;        /* the budget of agent failures */
    double backoff_seconds; /* delay before the first retry */
} broker_retry_counts_t;

typedef struct {
    bool again;       /* queue the phase for another attempt; false: the phase fails */
    int64_t delay_ms; /* how long the next attempt waits (0: at once) */
} broker_retry_t;

broker_retry_t broker_retry_decide(broker_retry_cause_t cause, const broker_retry_counts_t *counts);

/* The delay before re-running after the n-th agent failure (n from 1). */
int64_t broker_retry_delay_ms(double backoff_seconds, int64_t n);

/* The phase's error when broker_retry_decide said no: the last attempt's reason
 * with the budget that ran out (as it is, with no budget to name). A fresh
 * string, or NULL when out of memory. */
char *broker_retry_give_up_reason(broker_retry_cause_t cause,
                                  const broker_retry_counts_t *counts, const char *reason);

#endif
