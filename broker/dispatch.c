/* dispatch: queued phases to workers (dispatch.h). It stands alone because the
 * order of the queue and what an attempt starts with decide how a batch
 * advances and what an agent sees, apart from how attempts end. */
#include "broker/dispatch.h"

#include "broker/artifact_inputs.h"
#include "broker/budget_usd.h"
#include "broker/deadlines.h"
#include "broker/engine_internal.h"
#include "broker/limits.h"
#include "broker/output.h"
#include "broker/prompt.h"
#include "common/clock.h"
#include "common/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Messages waiting for "the next phase" now belong to this one: every attempt
 * of it carries them, and no later phase does. */
static void bind_messages(broker_engine_t *self, broker_execution_t *exec, broker_phase_t *phase)
{
    if (broker_execution_pending_messages(exec) == 0)
        return;
    size_t i;
    json_t *m;
    json_array_foreach(exec->messages, i, m)
        if (json_is_null(json_object_get(m, "phase_id")))
            json_object_set_new(m, "phase_id", json_string(phase->phase_id));
    if (broker_store_messages_bind(self->store, exec->id, phase->phase_id) < 0)
        syn_error("broker", "cannot bind operator messages execution=%s", exec->id);
}

json_t *broker_dispatch_earlier_outputs(broker_execution_t *exec, broker_phase_t *phase,
                                        size_t budget)
{
    json_t *inputs = json_object();
    size_t used = 0;
    for (broker_phase_t *p = phase; inputs && p > exec->phases;) {
        p--;
        if (p->status != BROKER_PHASE_COMPLETED || !p->output)
            continue;
        size_t len = strlen(p->output) + strlen(p->phase_id);
        if (used + len > budget) {
            syn_warn("broker", "not sending output of phase=%s with execution=%s phase=%s: "
                     "over the assignment budget", p->phase_id, exec->id, phase->phase_id);
            continue;
        }
        used += len;
        json_object_set_new(inputs, p->phase_id, json_string(p->output));
    }
    return inputs;
}

/* Remembers when the phase just assigned became ready, until its ASSIGN is sent. */
static void note_assigned(broker_engine_t *self, int64_t ready_us)
{
    if (ready_us <= 0)
        return;
    if (self->assigned_count == self->assigned_cap) {
        size_t cap = self->assigned_cap ? self->assigned_cap * 2 : 64;
        int64_t *grown = realloc(self->assigned_ready_us, cap * sizeof *grown);
        if (!grown)
            return; /* one figure fewer, nothing else */
        self->assigned_ready_us = grown;
        self->assigned_cap = cap;
    }
    self->assigned_ready_us[self->assigned_count++] = ready_us;
}

void broker_engine_assignments_sent(broker_engine_t *self, int64_t now_us)
{
    for (size_t i = 0; i < self->assigned_count; i++)
        syn_histogram_observe(&self->dispatch_seconds,
                              (double)(now_us - self->assigned_ready_us[i]) / 1e6);
    self->assigned_count = 0;
}

const syn_histogram_t *broker_engine_dispatch_latency(const broker_engine_t *self)
{
    return &self->dispatch_seconds;
}

static void dispatch_one(broker_engine_t *self, broker_execution_t *exec, broker_worker_t *worker,
                         int64_t now_ms)
{
    broker_phase_t *phase = broker_execution_active_phase(exec);
    if (!phase || phase->status != BROKER_PHASE_QUEUED)
        return;
    bind_messages(self, exec, phase);
    char err[256];
    char *prompt = broker_prompt_render(exec, phase, err, sizeof err);
    if (!prompt) {
        engine_fail_phase(self, exec, phase, err, NULL);
        return;
    }
    int64_t now_us = syn_now_us();
    if (!engine_move_phase(exec, phase, BROKER_PHASE_RUNNING)) {
        free(prompt);
        return;
    }
    phase->attempt++;
    phase->not_before_ms = 0;
    broker_output_reset(phase);
    phase->cost_usd = 0;
    if (!phase->started_at)
        phase->started_at = now_us;
    /* An attempt that waits on the worker for a slot (its prefetch) gets its
     * backstop when the worker reports it started: until then how long it waits
     * depends on the phases ahead of it, whose own limits and the worker's
     * liveness cover that time. */
    bool waits = !broker_worker_slot_free(worker);
    engine_bind_worker(phase, worker,
                       waits ? 0 : now_ms + broker_deadlines_backstop_ms(self, phase));
    /* Only the first dispatch changes the execution's row (running, started_at):
     * later phases leave it as advance() saved it. */
    bool exec_changed = false;
    if (exec->status == BROKER_EXEC_PENDING && engine_move_execution(exec, BROKER_EXEC_RUNNING)) {
        exec->started_at = now_us;
        exec_changed = true;
        broker_limits_take(self, exec);
    }
    if (broker_store_attempt_insert(self->store, exec, phase->phase_id, phase->attempt,
                                    worker->name, now_us) < 0)
        syn_error("broker", "cannot record attempt execution=%s phase=%s", exec->id,
                  phase->phase_id);
    engine_save_phase(self, exec, phase);
    if (exec_changed || exec->stored_status != (int)exec->status)
        engine_save_execution(self, exec);
    json_t *data = engine_phase_event(phase);
    json_object_set_new(data, "worker", json_string(worker->name));
    engine_emit(self, exec, "PhaseStarted", data);
    broker_worker_hold(worker, exec->id, phase->phase_id, phase->attempt, true);

    size_t prompt_len = strlen(prompt);
    size_t budget = prompt_len < BROKER_ASSIGN_BUDGET ? BROKER_ASSIGN_BUDGET - prompt_len : 0;
    json_t *inputs = broker_dispatch_earlier_outputs(
        exec, phase, budget < BROKER_ASSIGN_INPUTS_MAX ? budget : BROKER_ASSIGN_INPUTS_MAX);
    json_t *artifacts = broker_artifact_inputs_list(self, exec, phase);
    bool reads = json_array_size(phase->input_artifacts) > 0;
    bool writes = json_array_size(phase->output_artifacts) > 0;
    /* Packed straight to msgpack (syn_pack): one per phase, and the prompt is its
     * largest part, which a field object would copy twice. */
    bool has_budget = exec->max_budget_usd > 0;
    syn_pack_t *pack = syn_pack_new(SYN_MSG_ASSIGN, 11 + (phase->max_tokens > 0) +
                                                        (phase->network != NULL) +
                                                        2 * has_budget + (artifacts != NULL) +
                                                        reads + writes);
    syn_msg_t *msg = NULL;
    snprintf(err, sizeof err, "out of memory");
    if (pack) { /* inputs NULL (out of memory) fails the pack like any bad value */
        syn_pack_str(pack, "execution_id", exec->id);
        syn_pack_str(pack, "workflow_id", exec->workflow_id);
        syn_pack_str(pack, "phase_id", phase->phase_id);
        syn_pack_int(pack, "attempt", phase->attempt);
        syn_pack_str(pack, "prompt", prompt);
        syn_pack_str(pack, "model", phase->model);
        syn_pack_int(pack, "timeout_ms", phase->timeout_seconds * 1000);
        syn_pack_str(pack, "provider", phase->provider);
        syn_pack_json(pack, "inputs", inputs);
        syn_pack_json(pack, "repos", exec->repos);
        syn_pack_json(pack, "allowed_tools", phase->allowed_tools);
        if (phase->max_tokens > 0)
            syn_pack_int(pack, "max_tokens", phase->max_tokens);
        if (phase->network)
            syn_pack_str(pack, "network", phase->network);
        if (has_budget) /* the worker stops its agent on the crossing itself (budget_usd.h) */
            broker_budget_pack(pack, exec);
        if (artifacts)
            syn_pack_json(pack, "artifacts", artifacts);
        if (reads)
            syn_pack_json(pack, "input_artifacts", phase->input_artifacts);
        if (writes)
            syn_pack_json(pack, "output_artifacts", phase->output_artifacts);
        msg = syn_pack_finish(&pack, err, sizeof err);
    }
    json_decref(inputs);
    json_decref(artifacts);
    free(prompt);
    if (!msg)
        syn_error("broker", "cannot pack an assign: %s", err);
    engine_queue_for_worker(self, worker->identity, worker->identity_len, SYN_MSG_ASSIGN, msg);
    self->stats.dispatched++;
    note_assigned(self, exec->ready_us);
    syn_debug("broker", "dispatched execution=%s phase=%s attempt=%lld worker=%s%s", exec->id,
              phase->phase_id, (long long)phase->attempt, worker->name,
              waits ? " (waits for a slot there)" : "");
}

/* In the queue's order (priority, then oldest first); a phase that names a
 * provider waits (keeping its place) until a worker offering it has a free
 * slot, without holding up the others; so does an execution that has not
 * started while its workflow's max_concurrent or the broker's --max-running
 * is reached (limits.h): it starts at a later dispatch, once a place is free. */
void broker_engine_dispatch(broker_engine_t *self, int64_t now_ms)
{
    engine_clock(self, now_ms);
    broker_execution_t *exec = zlistx_first(self->ready);
    while (exec && broker_workers_pick(self->workers, NULL)) {
        broker_phase_t *phase = broker_execution_active_phase(exec);
        broker_worker_t *worker =
            broker_workers_pick(self->workers, phase ? phase->provider : NULL);
        broker_execution_t *next = zlistx_next(self->ready);
        if (worker && phase && !broker_limits_may_start(self, exec))
            worker = NULL; /* waits, keeping its place */
        if (worker || !phase) {
            engine_dequeue(self, exec);
            if (worker &&
                (exec->status == BROKER_EXEC_PENDING || exec->status == BROKER_EXEC_RUNNING))
                dispatch_one(self, exec, worker, now_ms);
        }
        exec = next;
    }
    engine_bury(self);
}
