/* deadlines: what the passing of time decides (broker_engine_tick, engine.h).
 *
 * - The backstop: a running attempt with no result within its phase's timeout,
 *   the worker's kill grace and one liveness window (for the result to travel)
 *   is cancelled at the worker and counted as an agent timeout (retry.h). It
 *   runs from dispatch, or, for an attempt that waited on the worker for a slot
 *   (prefetch), from when the worker reports it started.
 * - After a broker restart a running attempt waits one liveness window for its
 *   worker to say READY again; then it is lost.
 * - A phase waiting out a retry's back-off joins the front of the queue when
 *   the back-off ends.
 * - Output held back by the rate limit is sent (output.h).
 * - Workers silent for a liveness window are lost (lost.h). */
#ifndef SYN_BROKER_DEADLINES_H
#define SYN_BROKER_DEADLINES_H

#include "broker/engine.h"

#include <stdint.h>

/* A liveness window: heartbeat_ms × liveness. */
int64_t broker_deadlines_window_ms(const broker_engine_t *engine);
/* How long after its start the broker gives up on phase's attempt. */
int64_t broker_deadlines_backstop_ms(const broker_engine_t *engine, const broker_phase_t *phase);

#endif
