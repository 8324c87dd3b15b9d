/* approval: stopping at a gate, approving and rejecting it (approval.h). */
#include "broker/approval.h"

#include "broker/engine_internal.h"
#include "common/log.h"

#include <stdio.h>
#include <string.h>

const broker_phase_t *broker_approval_waiting(const broker_execution_t *exec)
{
    if (exec->status != BROKER_EXEC_PAUSED || exec->current >= exec->phase_count)
        return NULL;
    const broker_phase_t *phase = &exec->phases[exec->current];
    return phase->gate && phase->status == BROKER_PHASE_PENDING ? phase : NULL;
}

void broker_approval_announce(broker_engine_t *self, broker_execution_t *exec,
                              const broker_phase_t *phase)
{
    engine_emit(self, exec, "approval_required",
                json_pack("{s:s, s:s, s:s}", "phase_id", phase->phase_id, "phase_name",
                          phase->name, "waiting_for", "approval"));
    syn_info("broker", "waiting for approval execution=%s phase=%s", exec->id, phase->phase_id);
}

void broker_approval_stop(broker_engine_t *self, broker_execution_t *exec, broker_phase_t *phase)
{
    if (!engine_move_execution(exec, BROKER_EXEC_PAUSED))
        return;
    engine_dequeue(self, exec);
    engine_save_execution(self, exec);
    engine_emit(self, exec, "ExecutionPaused",
                json_pack("{s:s, s:n, s:s, s:s}", "reason", "approval", "phase_id",
                          "waiting_for", "approval", "gate", phase->phase_id));
    broker_approval_announce(self, exec, phase);
}

int broker_engine_approve(broker_engine_t *self, const char *id, const char *comment,
                          broker_exec_status_t *status, char *err, size_t errlen)
{
    broker_execution_t *exec = broker_engine_find(self, id);
    if (!exec)
        return -2;
    *status = exec->status;
    if (!broker_approval_waiting(exec))
        return -1;
    broker_phase_t *phase = &exec->phases[exec->current];
    if (comment && *comment) {
        /* the phase's prompt carries it under "Operator messages", like an inject */
        if (broker_engine_inject(self, id, "user", comment, status, err, errlen) < 0)
            return -3;
    }
    if (!engine_move_execution(exec, exec->started_at ? BROKER_EXEC_RUNNING
                                                      : BROKER_EXEC_PENDING))
        return -1;
    engine_emit(self, exec, "approval_granted",
                json_pack("{s:s, s:s?}", "phase_id", phase->phase_id, "comment",
                          comment && *comment ? comment : NULL));
    phase->approved = true;
    engine_queue_phase(self, exec, phase);
    engine_save_execution(self, exec);
    syn_info("broker", "approved execution=%s phase=%s", exec->id, phase->phase_id);
    *status = exec->status;
    return 0;
}

int broker_engine_reject(broker_engine_t *self, const char *id, const char *reason,
                         broker_exec_status_t *status)
{
    broker_execution_t *exec = broker_engine_find(self, id);
    if (!exec)
        return -2;
    *status = exec->status;
    const broker_phase_t *phase = broker_approval_waiting(exec);
    if (!phase)
        return -1;
    char fallback[256];
    snprintf(fallback, sizeof fallback, "Rejected at the approval of phase %s", phase->phase_id);
    const char *why = reason && *reason ? reason : fallback;
    engine_emit(self, exec, "approval_rejected",
                json_pack("{s:s, s:s}", "phase_id", phase->phase_id, "reason", why));
    return broker_engine_cancel(self, id, why, status);
}
