/* approval: the gates of a workflow, phases declared `execution_type: human_in_loop`
 * (the original's word) or `approval: required`.
 *
 * It stands alone because it is a person's decision, not the engine's: when an
 * execution reaches a gate, the engine stops (paused, waiting_for "approval", an
 * approval_required event naming the phase) instead of queueing the phase; only an
 * approval queues it (its comment becomes an operator message in the phase's prompt)
 * and a rejection cancels the execution with the reason. Resume does not pass a gate.
 *
 * Nothing about a gate is stored beyond what the execution already stores: an
 * execution is waiting for approval exactly when it is paused, its current phase is
 * still pending and that phase is a gate (the flag comes from the template, rebuilt
 * on every reload). So the gate survives a broker restart without a column of its
 * own, and an approval is durable once the phase is queued in the same turn. */
#ifndef SYN_BROKER_APPROVAL_H
#define SYN_BROKER_APPROVAL_H

#include "broker/engine.h"
#include "broker/execution.h"

#include <stdbool.h>

/* The gate the execution waits at (its current phase), or NULL. */
const broker_phase_t *broker_approval_waiting(const broker_execution_t *exec);

/* Stops exec before phase, a gate not yet approved: paused, ExecutionPaused with
 * reason "approval" and approval_required {phase_id, phase_name, description}. */
void broker_approval_stop(broker_engine_t *engine, broker_execution_t *exec,
                          broker_phase_t *phase);

/* Tells that a paused execution's next phase is a gate (it was paused by hand while
 * the phase before ran): approval_required, nothing else changes. */
void broker_approval_announce(broker_engine_t *engine, broker_execution_t *exec,
                              const broker_phase_t *phase);

/* Approves the gate exec (exact id) waits at: comment (NULL or "": none) is queued as
 * an operator message for the phase, the execution runs again and the phase is
 * queued. 0 with the new status; -1 when it is not waiting for approval (status in
 * *status); -2 when no active execution has that id; -3 with err when the comment
 * cannot be queued. */
int broker_engine_approve(broker_engine_t *engine, const char *id, const char *comment,
                          broker_exec_status_t *status, char *err, size_t errlen);

/* Rejects the gate: the execution is cancelled with reason (NULL or "": "Rejected at
 * the approval of phase <id>"). Returns as broker_engine_approve. */
int broker_engine_reject(broker_engine_t *engine, const char *id, const char *reason,
                         broker_exec_status_t *status);

#endif
