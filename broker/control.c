/* control: pause, resume, cancel and inject (control.h). They stand alone
 * because they are the operator's decisions, checked against the lifecycle
 * tables, not the workers': each takes effect at once and leaves the rest to
 * the engine's usual paths (a paused execution's running phase still reports). */
#include "broker/control.h"

#include "broker/approval.h"
#include "broker/engine_internal.h"
#include "common/clock.h"
#include "common/log.h"

#include <stdio.h>
#include <string.h>

void broker_control_cancel_holder(broker_engine_t *self, broker_execution_t *exec,
                                  broker_phase_t *phase)
{
    broker_worker_t *holder = broker_workers_lookup_key(self->workers, phase->worker_key);
    if (!holder)
        return;
    broker_held_t *held = broker_worker_find(holder, exec->id, phase->phase_id, phase->attempt);
    if (held)
        held->current = false;
    engine_send_ref(self, holder, SYN_MSG_CANCEL, exec->id, phase->phase_id, phase->attempt);
}

int broker_engine_cancel(broker_engine_t *self, const char *id, const char *reason,
                         broker_exec_status_t *status)
{
    broker_execution_t *exec = zhashx_lookup(self->active, id);
    if (!exec)
        return -2;
    *status = exec->status;
    if (!broker_exec_can_transition(exec->status, BROKER_EXEC_CANCELLED))
        return -1;
    const char *why = reason && *reason ? reason : "Cancelled by user";
    int64_t now_us = syn_now_us();
    broker_phase_t *phase = broker_execution_active_phase(exec);
    if (phase) {
        if (phase->status == BROKER_PHASE_RUNNING) {
            broker_control_cancel_holder(self, exec, phase);
            engine_finish_attempt(self, exec, phase, BROKER_ATTEMPT_CANCELLED, NULL, why);
        }
        if (engine_move_phase(exec, phase, BROKER_PHASE_CANCELLED)) {
            phase->completed_at = now_us;
            phase->not_before_ms = 0;
            broker_set_string(&phase->error, why);
            engine_clear_binding(phase);
            engine_save_phase(self, exec, phase);
        }
    }
    for (size_t i = exec->current; i < exec->phase_count; i++) {
        broker_phase_t *later = &exec->phases[i];
        if (later->status == BROKER_PHASE_PENDING &&
            engine_move_phase(exec, later, BROKER_PHASE_SKIPPED))
            engine_save_phase(self, exec, later);
    }
    broker_set_string(&exec->error, why);
    engine_move_execution(exec, BROKER_EXEC_CANCELLED);
    exec->completed_at = now_us;
    engine_save_execution(self, exec);
    engine_emit(self, exec, "ExecutionCancelled",
                json_pack("{s:s, s:o, s:I, s:I}", "error", why, "phase_id",
                          phase ? json_string(phase->phase_id) : json_null(), "completed_phases",
                          (json_int_t)exec->completed_phases, "total_phases",
                          (json_int_t)exec->phase_count));
    self->stats.cancelled++;
    syn_info("broker", "execution cancelled execution=%s phase=%s reason=\"%s\"", exec->id,
             phase ? phase->phase_id : "-", why);
    *status = exec->status;
    engine_retire(self, exec);
    engine_bury(self);
    return 0;
}

int broker_engine_pause(broker_engine_t *self, const char *id, const char *reason,
                        broker_exec_status_t *status)
{
    broker_execution_t *exec = zhashx_lookup(self->active, id);
    if (!exec)
        return -2;
    *status = exec->status;
    if (exec->status != BROKER_EXEC_RUNNING && exec->status != BROKER_EXEC_PENDING)
        return -1;
    if (!engine_move_execution(exec, BROKER_EXEC_PAUSED))
        return -1;
    engine_dequeue(self, exec);
    engine_save_execution(self, exec);
    broker_phase_t *phase = broker_execution_active_phase(exec);
    engine_emit(
        self, exec, "ExecutionPaused",
        json_pack("{s:o, s:o}", "reason", reason ? json_string(reason) : json_null(), "phase_id",
                  phase && phase->status == BROKER_PHASE_RUNNING ? json_string(phase->phase_id)
                                                                 : json_null()));
    syn_info("broker", "execution paused execution=%s", exec->id);
    *status = exec->status;
    return 0;
}

int broker_engine_resume(broker_engine_t *self, const char *id, int64_t now_ms,
                         broker_exec_status_t *status)
{
    (void)now_ms;
    broker_execution_t *exec = zhashx_lookup(self->active, id);
    if (!exec)
        return -2;
    *status = exec->status;
    if (exec->status != BROKER_EXEC_PAUSED)
        return -1;
    if (broker_approval_waiting(exec))
        return -3; /* a gate is passed by approval only */
    /* Back to where it was: pending when no phase has started yet. */
    if (!engine_move_execution(exec, exec->started_at ? BROKER_EXEC_RUNNING : BROKER_EXEC_PENDING))
        return -1;
    engine_save_execution(self, exec);
    engine_emit(self, exec, "ExecutionResumed",
                json_pack("{s:s}", "status", broker_exec_status_name(exec->status)));
    if (exec->current < exec->phase_count) {
        broker_phase_t *phase = &exec->phases[exec->current];
        if (phase->status == BROKER_PHASE_PENDING) {
            engine_queue_phase(self, exec, phase);
            engine_save_execution(self, exec);
        } else {
            engine_enqueue(self, exec, false);
        }
    }
    syn_info("broker", "execution resumed execution=%s", exec->id);
    *status = exec->status;
    return 0;
}

int broker_engine_inject(broker_engine_t *self, const char *id, const char *role,
                         const char *message, broker_exec_status_t *status, char *err,
                         size_t errlen)
{
    broker_execution_t *exec = zhashx_lookup(self->active, id);
    if (!exec)
        return -2;
    *status = exec->status;
    if (broker_execution_pending_messages(exec) >= BROKER_MESSAGES_WAITING_MAX) {
        snprintf(err, errlen, "Too many operator messages waiting for execution %s (limit %d)",
                 exec->id, BROKER_MESSAGES_WAITING_MAX);
        return -3;
    }
    int64_t msg_id = broker_store_message_insert(self->store, exec->id, role, message,
                                                 syn_now_us());
    json_t *entry = json_pack("{s:I, s:s, s:s, s:n}", "id", (json_int_t)msg_id, "role", role,
                              "message", message, "phase_id");
    if (msg_id < 0 || !entry) {
        json_decref(entry);
        snprintf(err, errlen, "cannot store the message");
        return -4;
    }
    json_array_append_new(exec->messages, entry);
    broker_phase_t *phase = broker_execution_active_phase(exec);
    bool live = false;
    if (phase && phase->status == BROKER_PHASE_RUNNING && phase->worker_key) {
        broker_worker_t *holder = broker_workers_lookup_key(self->workers, phase->worker_key);
        if (holder) {
            engine_send_to_worker(self, holder->identity, holder->identity_len, SYN_MSG_INJECT,
                                  json_pack("{s:s, s:s, s:I, s:s, s:s}", "execution_id", exec->id,
                                            "phase_id", phase->phase_id, "attempt",
                                            (json_int_t)phase->attempt, "role", role, "message",
                                            message));
            live = true;
        }
    }
    engine_emit(self, exec, "MessageInjected",
                json_pack("{s:s, s:s, s:o, s:b}", "role", role, "message", message, "phase_id",
                          live ? json_string(phase->phase_id) : json_null(), "live", live));
    syn_info("broker", "operator message queued execution=%s role=%s live=%s", exec->id, role,
             live ? "yes" : "no");
    return 0;
}
