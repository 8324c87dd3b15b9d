/* deadlines: what the passing of time decides (broker_engine_tick, engine.h).
 *
 * - The backstop: a running attempt with no result within its phase's timeout,
 *   the worker's kill grace and one liveness window (for the result to travel)
 *   is cancelled at the worker and counted as an agent timeout (retry.h). It
 *   runs from dispatch, or, for an attempt that waited on the worker for a slot
 *   (prefetch), from when the worker reports it started.
 * - After a broker restart a running attempt waits for its worker to say READY
 *   again (the adoption window, two liveness windows from when the sockets are
 *   bound, longer while READYs keep adopting attempts); then it is lost.
 *   A worker whose connection is found gone (or silent) while that window is
 *   open leaves its attempts waiting in it too (lost.h): it is most likely on
 *   its way back on a fresh socket, whose READY lists them.
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
/* How long a restarted broker waits for the workers of the attempts it found
 * running: one liveness window for a worker to notice the old broker's silence
 * (a link that broke without a word), and one more for its fresh socket's READY
 * to be heard, with a thousand others, by a broker that just started. Shorter,
 * and the attempts of workers still on their way are lost and run again. */
int64_t broker_deadlines_adoption_ms(const broker_engine_t *engine);
/* A READY adopted attempts at now_ms while the window is open: it stays open at
 * least one more liveness window (READYs are still coming: on a slow or loaded
 * host a thousand take longer than the window), up to 3 adoption windows after
 * it opened. */
void broker_deadlines_adoption_progress(broker_engine_t *engine, int64_t now_ms);
/* How long after its start the broker gives up on phase's attempt. */
int64_t broker_deadlines_backstop_ms(const broker_engine_t *engine, const broker_phase_t *phase);

#endif
