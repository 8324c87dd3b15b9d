/* fence: which reports about an attempt the broker takes.
 *
 * Each dispatch of a phase is a new attempt (execution, phase, number). Only the
 * current attempt of a running phase may report; anything else is acknowledged
 * (RESULT) or cancelled (PROGRESS, READY) and dropped, so an old worker that
 * wakes up cannot overwrite its replacement's work. Over CURVE, the current
 * attempt is further taken only from a worker with its holder's key. */
#ifndef SYN_BROKER_FENCE_H
#define SYN_BROKER_FENCE_H

#include "broker/engine.h"

#include <stdbool.h>
#include <stdint.h>

/* The phase (execution_id, phase_id) of an active execution when attempt is
 * its current, running one (its execution in *exec_out), else NULL. */
broker_phase_t *broker_fence_current(broker_engine_t *engine, const char *execution_id,
                                     const char *phase_id, int64_t attempt,
                                     broker_execution_t **exec_out);
/* Whether worker may take over or report phase's current attempt. */
bool broker_fence_may_take_over(broker_workers_t *workers, const broker_phase_t *phase,
                                const broker_worker_t *worker);
/* The fence every report of a worker passes (READY's list, PROGRESS, RESULT):
 * the phase whose current attempt it names and worker may act on (its
 * execution in *exec_out); NULL when that attempt is not current (stale or
 * unknown), or, with *refused set, when another key's worker holds it (counted
 * as stale and logged, rate-limited; what names the report in the line). */
broker_phase_t *broker_fence_admit(broker_engine_t *engine, const broker_worker_t *worker,
                                   const char *execution_id, const char *phase_id,
                                   int64_t attempt, const char *what,
                                   broker_execution_t **exec_out, bool *refused);
/* The worker that held phase's current attempt lets go of it (if any). */
void broker_fence_release_holder(broker_engine_t *engine, broker_execution_t *exec,
                                 broker_phase_t *phase);

#endif
