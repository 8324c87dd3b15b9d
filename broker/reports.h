/* reports: what a worker's PROGRESS and RESULT do to the attempt they name.
 *
 * Both are fenced first (fence.h). PROGRESS of the current attempt: "started"
 * starts its backstop (deadlines.h), "output" and "tool" feed its output stream
 * (output.h); PROGRESS of any other attempt is answered CANCEL. RESULT is always
 * acknowledged (after commit) and its usage recorded once, whether or not the
 * attempt still counts; for the current attempt, "completed" completes the
 * phase, "refused" and "cancelled" hand it back, anything else is an agent
 * failure (a timeout when the worker says "timed out …"), and retry.h decides
 * what follows. */
#ifndef SYN_BROKER_REPORTS_H
#define SYN_BROKER_REPORTS_H

#include "broker/engine.h"

#include <jansson.h>
#include <stdint.h>

void broker_reports_progress(broker_engine_t *engine, broker_worker_t *worker,
                             const json_t *fields, int64_t now_ms);
void broker_reports_result(broker_engine_t *engine, broker_worker_t *worker,
                           const json_t *fields, int64_t now_ms);
/* An ARTIFACT chunk: stored when its attempt is current (artifacts.h), answered
 * with an ARTIFACT_ACK either way. */
void broker_reports_artifact(broker_engine_t *engine, broker_worker_t *worker,
                             const json_t *fields, int64_t now_ms);

#endif
