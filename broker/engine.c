/* engine: the orchestration of executions. Each decision lives in a file named
 * for it (engine_internal.h lists them); this one keeps what they all lead to:
 *
 * - the active set: a hash of active executions by id, a list in creation order
 *   (for "active, newest first") and the ready queue of executions whose current
 *   phase is queued and may be dispatched now (not paused, not waiting for a
 *   retry's back-off). An execution that reaches a terminal state is retired: it
 *   leaves the hash and the queue at once and is freed when the current entry
 *   point returns, so no caller is left holding a freed pointer;
 * - the outcomes: a phase completed (the next one queued, or the execution
 *   completed), failed (the execution fails, later phases skipped), or back in
 *   the queue as retry.h decides, each written through and announced once;
 * - start, recovery after a restart, and the routing of worker messages. */
#include "broker/engine.h"

#include "broker/artifact_inputs.h"
#include "broker/approval.h"
#include "broker/budget_usd.h"
#include "broker/deadlines.h"
#include "broker/engine_internal.h"
#include "broker/fence.h"
#include "broker/limits.h"
#include "broker/lost.h"
#include "broker/output.h"
#include "broker/ready.h"
#include "broker/reports.h"
#include "broker/retry.h"
#include "broker/usage.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/ratelog.h"

#include <czmq.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A worker refused for its name claim, reconnecting in a loop, logs once a minute. */
#define CLAIM_LOG_INTERVAL_MS 60000
#define CLAIM_LOG_CAUSES 256

/* --- small helpers --------------------------------------------------------- */

char *engine_strdupf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *out = NULL;
    if (vasprintf(&out, fmt, ap) < 0)
        out = NULL;
    va_end(ap);
    return out;
}

void engine_clear_binding(broker_phase_t *phase)
{
    free(phase->worker_key);
    phase->worker_key = NULL;
    phase->deadline_ms = 0;
}

void engine_bind_worker(broker_phase_t *phase, const broker_worker_t *worker, int64_t deadline)
{
    broker_set_string(&phase->worker_key, worker->key);
    broker_set_string(&phase->worker_name, worker->name);
    phase->deadline_ms = deadline;
}

/* Writes the status column only when it changed since the last save: most
 * saves (the next phase queued) then touch no index and fire no trigger. */
void engine_save_execution(broker_engine_t *self, broker_execution_t *exec)
{
    bool same = exec->stored_status == (int)exec->status;
    int rc = same ? broker_store_execution_save_progress(self->store, exec)
                  : broker_store_execution_save(self->store, exec);
    if (rc < 0) {
        exec->stored_status = -1;
        syn_error("broker", "cannot save execution=%s", exec->id);
        return;
    }
    exec->stored_status = (int)exec->status;
}

void engine_save_phase(broker_engine_t *self, broker_execution_t *exec, broker_phase_t *phase)
{
    if (broker_store_phase_save(self->store, exec, phase) < 0)
        syn_error("broker", "cannot save execution=%s phase=%s", exec->id, phase->phase_id);
}

/* A phase status change the tables forbid is a bug in the engine: log it loudly
 * and leave the state as it was rather than write nonsense. */
bool engine_move_phase(broker_execution_t *exec, broker_phase_t *phase, broker_phase_status_t to)
{
    if (broker_phase_set_status(phase, to) == 0)
        return true;
    syn_error("broker", "refused phase transition execution=%s phase=%s %s -> %s", exec->id,
              phase->phase_id, broker_phase_status_name(phase->status),
              broker_phase_status_name(to));
    return false;
}

bool engine_move_execution(broker_execution_t *exec, broker_exec_status_t to)
{
    if (broker_execution_set_status(exec, to) == 0)
        return true;
    syn_error("broker", "refused execution transition execution=%s %s -> %s", exec->id,
              broker_exec_status_name(exec->status), broker_exec_status_name(to));
    return false;
}

json_t *engine_phase_event(const broker_phase_t *phase)
{
    return json_pack("{s:s, s:I}", "phase_id", phase->phase_id, "attempt",
                     (json_int_t)phase->attempt);
}

/* Every event of an execution carries, on PUB only, its status object as it is
 * right after the event (the engine changes the state first, then emits), so a
 * subscriber (the gateway's local view) never has to ask the broker for it. An event
 * about a phase also names it (phase_name): the original's clients show names. */
void engine_emit(broker_engine_t *self, broker_execution_t *exec, const char *type, json_t *data)
{
    const char *phase_id = json_string_value(json_object_get(data, "phase_id"));
    broker_phase_t *phase = phase_id ? broker_execution_find_phase(exec, phase_id) : NULL;
    if (phase && phase->name && !json_object_get(data, "phase_name"))
        json_object_set_new(data, "phase_name", json_string(phase->name));
    broker_status_view_t view;
    broker_execution_status_view(exec, &view);
    broker_events_emit_with_status(self->events, exec->id, exec->num, type, data, &view);
}

void engine_clock(broker_engine_t *self, int64_t now_ms)
{
    if (now_ms > self->clock_ms)
        self->clock_ms = now_ms;
}

/* Queues msg (taken; NULL when it could not be made) for a worker. */
void engine_queue_for_worker(broker_engine_t *self, const void *identity, size_t identity_len,
                             syn_msg_type_t type, syn_msg_t *msg)
{
    broker_worker_t *worker = broker_workers_lookup(self->workers, identity, identity_len);
    if (worker)
        broker_workers_sent(self->workers, worker, self->clock_ms);
    if (!msg || broker_outbox_push(self->outbox, BROKER_TO_WORKER, identity, identity_len,
                                   msg) < 0)
        syn_error("broker", "cannot queue %s for a worker", syn_msg_type_name(type));
}

void engine_send_to_worker(broker_engine_t *self, const void *identity, size_t identity_len,
                           syn_msg_type_t type, json_t *fields)
{
    engine_queue_for_worker(self, identity, identity_len, type,
                            fields ? syn_msg_new_with(type, fields) : NULL);
}

void engine_send_ref(broker_engine_t *self, const broker_worker_t *worker, syn_msg_type_t type,
                     const char *execution_id, const char *phase_id, int64_t attempt)
{
    engine_send_to_worker(self, worker->identity, worker->identity_len, type,
                          json_pack("{s:s, s:s, s:I}", "execution_id", execution_id, "phase_id",
                                    phase_id, "attempt", (json_int_t)attempt));
}

/* Records the end of the current attempt (after the output it streamed). */
void engine_finish_attempt(broker_engine_t *self, broker_execution_t *exec, broker_phase_t *phase,
                           broker_attempt_status_t status, const int64_t *exit_code,
                           const char *error)
{
    broker_output_flush(self, exec, phase, 0, true);
    broker_output_reset(phase);
    if (broker_store_attempt_finish(self->store, exec, phase->phase_id, phase->attempt,
                                    status, syn_now_us(), exit_code, error) < 0)
        syn_error("broker", "cannot record attempt end execution=%s phase=%s attempt=%lld",
                  exec->id, phase->phase_id, (long long)phase->attempt);
}

/* --- active set ------------------------------------------------------------ */

/* Puts the execution in the ready queue when its current phase may be
 * dispatched now: queued, not paused, not waiting out a retry back-off. */
void engine_enqueue(broker_engine_t *self, broker_execution_t *exec, bool front)
{
    if (exec->ready_handle || broker_exec_is_terminal(exec->status) ||
        exec->status == BROKER_EXEC_PAUSED)
        return;
    broker_phase_t *phase = broker_execution_active_phase(exec);
    if (!phase || phase->status != BROKER_PHASE_QUEUED || phase->not_before_ms)
        return;
    /* Sorted by priority (ready_order): from the end, after the last of its
     * priority or higher (submission order among equals); a retry from the
     * front, before the first of its priority or lower (it keeps its place).
     * With equal priorities either stops at once. */
    exec->ready_handle = zlistx_insert(self->ready, exec, front);
    exec->ready_us = syn_mono_us();
    self->queue_gen++; /* queue positions are numbered again when read (limits.h) */
}

/* Higher priority first: "less" is the higher priority. */
static int ready_order(const void *a, const void *b)
{
    int64_t pa = ((const broker_execution_t *)a)->priority;
    int64_t pb = ((const broker_execution_t *)b)->priority;
    return pa > pb ? -1 : pa < pb ? 1 : 0;
}

void engine_dequeue(broker_engine_t *self, broker_execution_t *exec)
{
    if (!exec->ready_handle)
        return;
    zlistx_detach(self->ready, exec->ready_handle);
    exec->ready_handle = NULL;
    self->queue_gen++;
}

static int adopt_execution(broker_engine_t *self, broker_execution_t *exec)
{
    exec->list_handle = zlistx_add_end(self->by_creation, exec);
    if (!exec->list_handle)
        return -1;
    if (zhashx_insert(self->active, exec->id, exec) != 0) {
        zlistx_detach(self->by_creation, exec->list_handle);
        exec->list_handle = NULL;
        return -1;
    }
    return 0;
}

/* Takes a terminal execution out of the hash and the queue at once; it leaves the
 * creation list (which a caller may be walking) and memory in engine_bury(). */
void engine_retire(broker_engine_t *self, broker_execution_t *exec)
{
    broker_limits_release(self, exec);
    zhashx_delete(self->active, exec->id);
    engine_dequeue(self, exec);
    zlistx_add_end(self->graveyard, exec);
}

void engine_bury(broker_engine_t *self)
{
    broker_execution_t *exec;
    while ((exec = zlistx_detach(self->graveyard, NULL))) {
        if (exec->list_handle)
            zlistx_detach(self->by_creation, exec->list_handle);
        broker_execution_destroy(&exec);
    }
}

/* --- phase and execution outcomes ----------------------------------------- */

void engine_queue_phase(broker_engine_t *self, broker_execution_t *exec, broker_phase_t *phase)
{
    if (phase->gate && !phase->approved && phase->status == BROKER_PHASE_PENDING) {
        broker_approval_stop(self, exec, phase);
        return;
    }
    if (!engine_move_phase(exec, phase, BROKER_PHASE_QUEUED))
        return;
    phase->not_before_ms = 0;
    engine_save_phase(self, exec, phase);
    engine_emit(self, exec, "PhaseQueued", json_pack("{s:s}", "phase_id", phase->phase_id));
    engine_enqueue(self, exec, false);
}

static void complete_execution(broker_engine_t *self, broker_execution_t *exec)
{
    if (!engine_move_execution(exec, BROKER_EXEC_COMPLETED))
        return;
    exec->completed_at = syn_now_us();
    engine_save_execution(self, exec);
    engine_emit(self, exec, "ExecutionCompleted",
                json_pack("{s:I, s:I}", "completed_phases", (json_int_t)exec->completed_phases,
                          "total_phases", (json_int_t)exec->phase_count));
    self->stats.completed++;
    syn_info("broker", "execution completed execution=%s phases=%zu", exec->id,
             exec->phase_count);
    engine_retire(self, exec);
}

/* Moves on after the current phase completed: queue the next one, or finish. A
 * paused execution keeps its next phase pending until it is resumed. */
static void advance(broker_engine_t *self, broker_execution_t *exec)
{
    exec->current++;
    if (exec->current >= exec->phase_count) {
        complete_execution(self, exec);
        return;
    }
    if (broker_budget_enforce(self, exec, false))
        return; /* spent: the next phase does not start */
    broker_phase_t *next = &exec->phases[exec->current];
    if (exec->status != BROKER_EXEC_PAUSED)
        engine_queue_phase(self, exec, next);
    else if (next->gate)
        broker_approval_announce(self, exec, next);
    engine_save_execution(self, exec);
}

/* The phase failed for reason: the execution fails with it, later phases are
 * skipped. usage (may be NULL) is what the last attempt reported. */
void engine_fail_phase(broker_engine_t *self, broker_execution_t *exec, broker_phase_t *phase,
                       const char *reason, const broker_usage_t *usage)
{
    char *error = engine_strdupf("Phase %s failed: %s", phase->phase_id, reason);
    engine_fail_execution(self, exec, phase, reason, error ? error : reason, usage);
    free(error);
}

void engine_fail_execution(broker_engine_t *self, broker_execution_t *exec,
                           broker_phase_t *phase, const char *reason, const char *error,
                           const broker_usage_t *usage)
{
    if (phase && !engine_move_phase(exec, phase, BROKER_PHASE_FAILED))
        return;
    if (phase) {
        broker_set_string(&phase->error, reason);
        phase->completed_at = syn_now_us();
        phase->not_before_ms = 0;
        engine_clear_binding(phase);
        engine_save_phase(self, exec, phase);
    }
    for (broker_phase_t *later = phase ? phase + 1 : exec->phases + exec->current;
         later < exec->phases + exec->phase_count; later++)
        if (engine_move_phase(exec, later, BROKER_PHASE_SKIPPED))
            engine_save_phase(self, exec, later);

    broker_set_string(&exec->error, error);
    if (engine_move_execution(exec, BROKER_EXEC_FAILED))
        exec->completed_at = syn_now_us();
    engine_save_execution(self, exec);
    if (phase) {
        json_t *data = engine_phase_event(phase);
        json_object_set_new(data, "error", json_string(reason));
        if (usage)
            broker_usage_put(usage, data, phase->model, false);
        engine_emit(self, exec, "PhaseFailed", data);
    }
    engine_emit(self, exec, "ExecutionFailed",
                json_pack("{s:s?, s:s?, s:I, s:I}", "error", exec->error, "phase_id",
                          phase ? phase->phase_id : NULL, "completed_phases",
                          (json_int_t)exec->completed_phases, "total_phases",
                          (json_int_t)exec->phase_count));
    self->stats.failed++;
    syn_info("broker", "execution failed execution=%s phase=%s reason=\"%s\"", exec->id,
             phase ? phase->phase_id : "-", reason);
    engine_retire(self, exec);
}

void engine_complete_phase(broker_engine_t *self, broker_execution_t *exec, broker_phase_t *phase,
                           const char *output, const int64_t *exit_code,
                           const broker_usage_t *usage)
{
    char *kept = broker_output_bounded(output ? output : "");
    if (!kept) {
        engine_fail_phase(self, exec, phase, "out of memory storing the output", usage);
        return;
    }
    if (!engine_move_phase(exec, phase, BROKER_PHASE_COMPLETED)) {
        free(kept);
        return;
    }
    engine_finish_attempt(self, exec, phase, BROKER_ATTEMPT_COMPLETED, exit_code, NULL);
    free(phase->output);
    phase->output = kept;
    phase->completed_at = syn_now_us();
    engine_clear_binding(phase);
    if (broker_store_phase_save_with_output(self->store, exec, phase) < 0)
        syn_error("broker", "cannot store output execution=%s phase=%s", exec->id,
                  phase->phase_id);
    exec->completed_phases++;
    json_t *data = engine_phase_event(phase);
    json_object_set_new(data, "output_bytes", json_integer((json_int_t)strlen(kept)));
    json_object_set_new(data, "worker",
                        phase->worker_name ? json_string(phase->worker_name) : json_null());
    broker_usage_put(usage, data, phase->model, true);
    engine_emit(self, exec, "PhaseCompleted", data);
    syn_debug("broker", "phase completed execution=%s phase=%s attempt=%lld", exec->id,
              phase->phase_id, (long long)phase->attempt);
    advance(self, exec);
}

/* Sends the phase back to the queue for its next attempt, after delay_ms. */
static void requeue(broker_engine_t *self, broker_execution_t *exec, broker_phase_t *phase,
                    const char *cause, const char *reason, int64_t delay_ms, int64_t now_ms,
                    const broker_usage_t *usage)
{
    if (!engine_move_phase(exec, phase, BROKER_PHASE_QUEUED))
        return;
    engine_clear_binding(phase);
    phase->not_before_ms = delay_ms > 0 ? now_ms + delay_ms : 0;
    engine_save_phase(self, exec, phase);
    engine_save_execution(self, exec);
    json_t *data = engine_phase_event(phase);
    json_object_set_new(data, "next_attempt", json_integer(phase->attempt + 1));
    json_object_set_new(data, "reason", json_string(reason));
    json_object_set_new(data, "cause", json_string(cause));
    json_object_set_new(data, "retry_in_seconds", json_real((double)delay_ms / 1000.0));
    if (usage)
        broker_usage_put(usage, data, phase->model, false);
    engine_emit(self, exec, "PhaseRetrying", data);
    self->stats.retried++;
    engine_enqueue(self, exec, true);
}

/* Applies the retry policy (retry.h) to the attempt that just ended: the phase
 * goes back to the queue (event_cause says why, in PhaseRetrying), or fails with
 * the budget that ran out. */
static void retry_or_fail(broker_engine_t *self, broker_execution_t *exec, broker_phase_t *phase,
                          broker_retry_cause_t cause, const char *event_cause, const char *reason,
                          const broker_usage_t *usage, int64_t now_ms)
{
    broker_retry_counts_t counts = {
        .attempt = phase->attempt,
        .max_attempts = phase->max_attempts,
        .undelivered = phase->undelivered,
        .failures = phase->failures,
        .lost = phase->lost,
        .retries = phase->retries,
        .backoff_seconds = phase->retry_backoff_seconds,
    };
    broker_retry_t verdict = broker_retry_decide(cause, &counts);
    if (verdict.again) {
        if (cause == BROKER_RETRY_AGENT_FAILED)
            syn_info("broker",
                     "retrying execution=%s phase=%s attempt=%lld retry=%lld/%lld in_ms=%lld "
                     "reason=\"%s\"",
                     exec->id, phase->phase_id, (long long)phase->attempt,
                     (long long)phase->failures, (long long)phase->retries,
                     (long long)verdict.delay_ms, reason);
        requeue(self, exec, phase, event_cause, reason, verdict.delay_ms, now_ms, usage);
        return;
    }
    char *why = broker_retry_give_up_reason(cause, &counts, reason);
    engine_fail_phase(self, exec, phase, why ? why : reason, usage);
    free(why);
}

/* The current attempt ended without a result (worker lost, disconnected, gone
 * across a restart, or it gave the work back): retry while max_attempts allows.
 * Attempts the agent failed are not counted here: they have `retries`. */
void engine_attempt_lost(broker_engine_t *self, broker_execution_t *exec, broker_phase_t *phase,
                         broker_attempt_status_t how, const char *reason, int64_t now_ms)
{
    engine_finish_attempt(self, exec, phase, how, NULL, reason);
    if (how == BROKER_ATTEMPT_LOST)
        phase->lost++;
    self->stats.lost++;
    syn_warn("broker", "attempt lost execution=%s phase=%s attempt=%lld/%lld reason=\"%s\"",
             exec->id, phase->phase_id, (long long)phase->attempt,
             (long long)phase->max_attempts, reason);
    retry_or_fail(self, exec, phase,
                  how == BROKER_ATTEMPT_LOST ? BROKER_RETRY_WORKER_LOST : BROKER_RETRY_GIVEN_BACK,
                  "worker_lost", reason, NULL, now_ms);
}

/* The agent never ran: the attempt is closed with text and the phase goes
 * straight back to the queue, counted against nothing (retry.h's cause). */
static void requeue_not_run(broker_engine_t *self, broker_execution_t *exec,
                            broker_phase_t *phase, broker_retry_cause_t cause,
                            const char *event_cause, const char *text, int64_t now_ms)
{
    engine_finish_attempt(self, exec, phase, BROKER_ATTEMPT_CANCELLED, NULL, text);
    phase->undelivered++;
    retry_or_fail(self, exec, phase, cause, event_cause, text, NULL, now_ms);
}

/* The worker could not start the attempt (it is draining, or had no free slot):
 * the agent never ran, so the attempt does not count against max_attempts and
 * the phase goes straight back to the queue for another worker. */
void engine_attempt_refused(broker_engine_t *self, broker_execution_t *exec, broker_phase_t *phase,
                            const broker_worker_t *worker, const char *why, int64_t now_ms)
{
    char *reason = engine_strdupf("worker %s refused the attempt: %s", worker->name,
                                  why ? why : "no reason given");
    self->stats.refused++;
    syn_info("broker", "attempt refused execution=%s phase=%s attempt=%lld worker=%s reason=\"%s\"",
             exec->id, phase->phase_id, (long long)phase->attempt, worker->name,
             why ? why : "");
    requeue_not_run(self, exec, phase, BROKER_RETRY_NOT_RUN, "refused",
                    reason ? reason : "worker refused the attempt", now_ms);
    free(reason);
}

void engine_emit_worker(broker_engine_t *self, const char *type, const broker_worker_t *worker,
                        const char *reason)
{
    json_t *data = json_pack("{s:s, s:s, s:s?, s:s?}", "worker", worker->name, "id", worker->key,
                             "host", worker->host, "reason", reason);
    broker_events_emit_with_status(self->events, NULL, 0, type, data, NULL);
}

void broker_engine_worker_unhealthy(broker_engine_t *self, broker_worker_t *worker,
                                    const char *why)
{
    if (!broker_worker_set_unhealthy(worker, why))
        return;
    if (why) {
        self->stats.workers_unhealthy++;
        engine_emit_worker(self, "worker_unhealthy", worker, why);
        syn_warn("broker", "worker unhealthy worker=%s reason=\"%s\": it takes no work "
                           "meanwhile",
                 worker->name, why);
    } else {
        /* Watchers saw it go unhealthy; they see it come back too. */
        engine_emit_worker(self, "worker_healthy", worker, NULL);
        syn_info("broker", "worker healthy again worker=%s", worker->name);
    }
}

void engine_attempt_worker_fault(broker_engine_t *self, broker_execution_t *exec,
                                 broker_phase_t *phase, broker_worker_t *worker, const char *why,
                                 int64_t now_ms)
{
    char *reason = engine_strdupf("worker %s could not start the agent: %s", worker->name,
                                  why ? why : "no reason given");
    self->stats.worker_faults++;
    broker_engine_worker_unhealthy(self, worker, why ? why : "the agent could not be started");
    syn_warn("broker", "worker fault execution=%s phase=%s attempt=%lld worker=%s reason=\"%s\"",
             exec->id, phase->phase_id, (long long)phase->attempt, worker->name,
             why ? why : "");
    requeue_not_run(self, exec, phase, BROKER_RETRY_WORKER_FAULT, "worker_fault",
                    reason ? reason : "worker fault", now_ms);
    free(reason);
}

/* The agent failed the current attempt (its error, its timeout, or the broker's
 * backstop): run it again after the back-off while `retries` allow, else the
 * phase fails with the reason. */
void engine_attempt_failed(broker_engine_t *self, broker_execution_t *exec, broker_phase_t *phase,
                           broker_attempt_status_t how, const int64_t *exit_code,
                           const char *reason, const broker_usage_t *usage, int64_t now_ms)
{
    engine_finish_attempt(self, exec, phase, how, exit_code, reason);
    phase->failures++;
    retry_or_fail(self, exec, phase, BROKER_RETRY_AGENT_FAILED,
                  how == BROKER_ATTEMPT_TIMEOUT ? "timeout" : "agent_failed", reason, usage,
                  now_ms);
}

/* --- lifecycle entry points ------------------------------------------------ */

broker_engine_t *broker_engine_new(broker_store_t *store, broker_events_t *events,
                                   broker_outbox_t *outbox, broker_workers_t *workers,
                                   const broker_engine_config_t *config)
{
    broker_engine_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->store = store;
    self->events = events;
    self->outbox = outbox;
    self->workers = workers;
    self->config = *config;
    if (self->config.heartbeat_ms <= 0)
        self->config.heartbeat_ms = 1000;
    if (self->config.liveness <= 0)
        self->config.liveness = 3;
    if (self->config.kill_grace_ms < 0)
        self->config.kill_grace_ms = 0;
    self->active = zhashx_new();
    self->by_creation = zlistx_new();
    self->ready = zlistx_new();
    self->graveyard = zlistx_new();
    syn_histogram_init(&self->dispatch_seconds, syn_buckets_dispatch_seconds,
                       syn_buckets_dispatch_count);
    if (self->ready)
        zlistx_set_comparator(self->ready, ready_order);
    self->claims = syn_ratelog_new(CLAIM_LOG_INTERVAL_MS, CLAIM_LOG_CAUSES);
    self->running_by_workflow = zhashx_new();
    broker_artifact_limits_t limits = BROKER_ARTIFACT_LIMITS_DEFAULT;
    if (self->config.artifacts.max_file_bytes > 0)
        limits.max_file_bytes = self->config.artifacts.max_file_bytes;
    if (self->config.artifacts.max_phase_bytes > 0)
        limits.max_phase_bytes = self->config.artifacts.max_phase_bytes;
    if (self->config.artifacts.max_files > 0)
        limits.max_files = self->config.artifacts.max_files;
    self->config.artifacts = limits;
    self->artifacts = broker_artifacts_new(store, &limits);
    if (!self->active || !self->by_creation || !self->ready || !self->graveyard ||
        !self->claims || !self->running_by_workflow || !self->artifacts) {
        broker_engine_destroy(&self);
        return NULL;
    }
    return self;
}

void broker_engine_destroy(broker_engine_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    broker_engine_t *self = *self_p;
    if (self->graveyard)
        engine_bury(self);
    broker_execution_t *exec;
    while (self->by_creation && (exec = zlistx_detach(self->by_creation, NULL)))
        broker_execution_destroy(&exec);
    zhashx_destroy(&self->active);
    zhashx_destroy(&self->running_by_workflow);
    zlistx_destroy(&self->by_creation);
    zlistx_destroy(&self->ready);
    zlistx_destroy(&self->graveyard);
    syn_ratelog_destroy(&self->claims);
    broker_artifacts_destroy(&self->artifacts);
    free(self->assigned_ready_us);
    free(self);
    *self_p = NULL;
}

typedef struct {
    broker_engine_t *engine;
    int64_t now_ms;
    int loaded;
} recover_ctx_t;

/* Puts a reloaded execution back in motion: its queued phase back in the queue
 * (a retry's back-off is not resumed: it runs at once), its running phase
 * waiting for its worker to come back. */
static void recover_one(broker_execution_t *exec, void *arg)
{
    recover_ctx_t *ctx = arg;
    broker_engine_t *self = ctx->engine;
    if (adopt_execution(self, exec) < 0) {
        syn_error("broker", "out of memory reloading execution=%s", exec->id);
        broker_execution_destroy(&exec);
        return;
    }
    ctx->loaded++;
    if (exec->status != BROKER_EXEC_PENDING)
        broker_limits_take(self, exec); /* it held a place before the restart */
    if (exec->current >= exec->phase_count) {
        complete_execution(self, exec);
        return;
    }
    broker_phase_t *phase = &exec->phases[exec->current];
    switch (phase->status) {
    case BROKER_PHASE_QUEUED:
        engine_enqueue(self, exec, false);
        break;
    case BROKER_PHASE_RUNNING:
        phase->deadline_ms = ctx->now_ms + broker_deadlines_adoption_ms(self);
        break;
    case BROKER_PHASE_PENDING:
        if (exec->status != BROKER_EXEC_PAUSED) {
            engine_queue_phase(self, exec, phase);
            engine_save_execution(self, exec);
        }
        break;
    default: {
        char *why =
            engine_strdupf("found %s after a restart", broker_phase_status_name(phase->status));
        syn_warn("broker", "execution=%s phase=%s is %s but the execution is %s: failing it",
                 exec->id, phase->phase_id, broker_phase_status_name(phase->status),
                 broker_exec_status_name(exec->status));
        free(exec->error);
        exec->error = engine_strdupf("Phase %s failed: %s", phase->phase_id, why ? why : "?");
        free(why);
        if (engine_move_execution(exec, BROKER_EXEC_FAILED))
            exec->completed_at = syn_now_us();
        engine_save_execution(self, exec);
        engine_emit(self, exec, "ExecutionFailed", json_pack("{s:s?}", "error", exec->error));
        engine_retire(self, exec);
    }
    }
}

int broker_engine_recover(broker_engine_t *self, int64_t now_ms)
{
    recover_ctx_t ctx = {self, now_ms, 0};
    /* Artifacts whose attempt had not completed when the last broker stopped:
     * their workers send them again from the start (artifacts.h). */
    if (broker_store_artifacts_discard(self->store, NULL, NULL, 0) < 0)
        return -1;
    int rc = broker_store_load_active(self->store, recover_one, &ctx);
    engine_bury(self);
    if (rc < 0)
        return -1;
    if (ctx.loaded)
        syn_info("broker", "reloaded active executions count=%d", ctx.loaded);
    return ctx.loaded;
}

/* Stores a new execution (its phase `first` queued, those before it completed
 * with what they carry), adopts it and announces it; a rerun is linked to the
 * execution it reruns. Frees exec on failure. */
static int start_execution(broker_engine_t *self, broker_execution_t *exec, size_t first,
                           const char *rerun_of, char id_out[BROKER_EXEC_ID_SIZE], char *err,
                           size_t errlen)
{
    /* A first phase to run that is a gate: the execution starts paused in front of it. */
    bool gated = exec->phases[first].gate;
    if (gated)
        exec->status = BROKER_EXEC_PAUSED;
    else
        exec->phases[first].status = BROKER_PHASE_QUEUED;
    exec->current = first;
    exec->completed_phases = first;
    exec->no_artifacts = !rerun_of;
    /* 48 random bits rarely collide, but a collision must not fail a request. */
    int rc = 1;
    for (int tries = 0; tries < 8 && rc == 1; tries++) {
        if (tries > 0 && broker_store_execution_id(self->store, exec->id) < 0)
            break;
        rc = zhashx_lookup(self->active, exec->id)
                 ? 1
                 : broker_store_execution_insert(self->store, exec);
    }
    if (rc == 0 && rerun_of) {
        for (size_t i = 0; i < first && rc == 0; i++)
            rc = broker_store_phase_save_with_output(self->store, exec, &exec->phases[i]);
        if (rc == 0)
            rc = broker_store_rerun_link(self->store, exec, rerun_of, first);
    }
    if (rc != 0 || adopt_execution(self, exec) < 0) {
        snprintf(err, errlen, "cannot store the execution");
        broker_execution_destroy(&exec);
        return -1;
    }
    exec->stored_status = (int)exec->status;
    json_t *started = json_pack("{s:s, s:I}", "workflow_id", exec->workflow_id, "total_phases",
                                (json_int_t)exec->phase_count);
    if (rerun_of) {
        json_object_set_new(started, "rerun_of", json_string(rerun_of));
        json_object_set_new(started, "reused_phases", json_integer((json_int_t)first));
    }
    engine_emit(self, exec, "ExecutionStarted", started);
    if (gated) {
        engine_emit(self, exec, "ExecutionPaused",
                    json_pack("{s:s, s:n, s:s, s:s}", "reason", "approval", "phase_id",
                              "waiting_for", "approval", "gate", exec->phases[first].phase_id));
        broker_approval_announce(self, exec, &exec->phases[first]);
    } else {
        engine_emit(self, exec, "PhaseQueued",
                    json_pack("{s:s}", "phase_id", exec->phases[first].phase_id));
        engine_enqueue(self, exec, false);
    }
    self->stats.started++;
    snprintf(id_out, BROKER_EXEC_ID_SIZE, "%s", exec->id);
    syn_debug("broker", "execution accepted execution=%s workflow=%s", exec->id,
              exec->workflow_id);
    return 0;
}

int broker_engine_start(broker_engine_t *self, const char *workflow_id, int64_t version,
                        const json_t *template_json, json_t *inputs, const char *task,
                        json_t *repos, int64_t priority, double max_budget_usd,
                        char id_out[BROKER_EXEC_ID_SIZE], char *err, size_t errlen)
{
    char id[BROKER_EXEC_ID_SIZE];
    if (broker_store_execution_id(self->store, id) < 0) {
        snprintf(err, errlen, "cannot make an execution id");
        return -1;
    }
    broker_execution_t *exec = broker_execution_new(id, workflow_id, version, template_json,
                                                    inputs, task, repos, syn_now_us(), err,
                                                    errlen);
    if (!exec)
        return -1;
    exec->priority = priority;
    if (max_budget_usd > 0)
        exec->max_budget_usd = max_budget_usd;
    return start_execution(self, exec, 0, NULL, id_out, err, errlen);
}

int broker_engine_rerun(broker_engine_t *self, const broker_execution_t *earlier,
                        const json_t *template_json, size_t from, json_t *inputs,
                        const char *task, int64_t priority, char id_out[BROKER_EXEC_ID_SIZE],
                        char *err, size_t errlen)
{
    char id[BROKER_EXEC_ID_SIZE];
    if (broker_store_execution_id(self->store, id) < 0) {
        snprintf(err, errlen, "cannot make an execution id");
        return -1;
    }
    broker_execution_t *exec =
        broker_execution_new(id, earlier->workflow_id, earlier->workflow_version, template_json,
                             inputs, task, earlier->repos, syn_now_us(), err, errlen);
    if (!exec)
        return -1;
    exec->max_budget_usd = earlier->max_budget_usd; /* what it cost before is not counted */
    if (exec->phase_count != earlier->phase_count || from >= exec->phase_count) {
        snprintf(err, errlen, "the workflow version no longer matches the execution");
        broker_execution_destroy(&exec);
        return -1;
    }
    /* The phases before `from` are copied as they completed: their outputs are
     * what later prompts render ({{phase_id}}) and what the ASSIGN carries. */
    for (size_t i = 0; i < from; i++) {
        broker_phase_t *phase = &exec->phases[i];
        const broker_phase_t *old = &earlier->phases[i];
        phase->status = BROKER_PHASE_COMPLETED;
        phase->output = strdup(old->output ? old->output : "");
        phase->started_at = old->started_at;
        phase->completed_at = old->completed_at;
        /* Its artifacts are referenced in the store (broker_store_rerun_link). */
        if (!phase->output) {
            snprintf(err, errlen, "out of memory");
            broker_execution_destroy(&exec);
            return -1;
        }
    }
    exec->priority = priority;
    return start_execution(self, exec, from, earlier->id, id_out, err, errlen);
}

broker_execution_t *broker_engine_find(broker_engine_t *self, const char *id)
{
    return zhashx_lookup(self->active, id);
}

size_t broker_engine_active_count(const broker_engine_t *self)
{
    return zhashx_size(self->active);
}

json_t *broker_engine_active_json(broker_engine_t *self, size_t limit)
{
    json_t *list = json_array();
    if (!list)
        return NULL;
    for (broker_execution_t *exec = zlistx_last(self->by_creation);
         exec && json_array_size(list) < limit; exec = zlistx_prev(self->by_creation)) {
        broker_status_view_t view;
        broker_execution_status_view(exec, &view);
        view.queue_position = broker_engine_queue_position(self, exec->id);
        json_array_append_new(list, broker_status_json(&view));
    }
    return list;
}

broker_engine_stats_t broker_engine_stats(const broker_engine_t *self)
{
    return self->stats;
}

broker_artifacts_t *broker_engine_artifacts(broker_engine_t *self)
{
    return self->artifacts;
}

size_t broker_engine_ready_depth(const broker_engine_t *self)
{
    return zlistx_size(self->ready);
}

/* --- worker messages ------------------------------------------------------- */

bool engine_read_ref(const json_t *fields, engine_ref_t *ref)
{
    const json_t *attempt = json_object_get(fields, "attempt");
    ref->execution_id = json_string_value(json_object_get(fields, "execution_id"));
    ref->phase_id = json_string_value(json_object_get(fields, "phase_id"));
    ref->attempt = json_is_integer(attempt) ? (int64_t)json_integer_value(attempt) : -1;
    return ref->execution_id && ref->phase_id && ref->attempt >= 0;
}

void broker_engine_on_worker(broker_engine_t *self, const void *identity, size_t identity_len,
                             const syn_msg_t *msg, int64_t now_ms)
{
    broker_engine_on_worker_from(self, identity, identity_len, NULL, NULL, msg, now_ms);
}

void broker_engine_on_worker_from(broker_engine_t *self, const void *identity,
                                  size_t identity_len, const char *peer_key,
                                  const char *peer_address, const syn_msg_t *msg,
                                  int64_t now_ms)
{
    engine_clock(self, now_ms);
    syn_msg_type_t type = syn_msg_type(msg);
    const json_t *fields = syn_msg_fields(msg);
    broker_worker_t *worker = broker_workers_lookup(self->workers, identity, identity_len);

    /* A refused claimant is heard again only through a READY (its name may be
     * free by then). */
    if (type != SYN_MSG_READY && broker_workers_refused(self->workers, identity, identity_len))
        return;
    if (type == SYN_MSG_READY) {
        broker_ready_handle(self, identity, identity_len, peer_key, peer_address, fields,
                            now_ms);
    } else if (!worker) {
        /* Not registered (e.g. the broker restarted): it must say READY first. */
        if (type != SYN_MSG_DISCONNECT)
            engine_send_to_worker(self, identity, identity_len, SYN_MSG_DISCONNECT, json_object());
    } else {
        broker_workers_seen(self->workers, worker, now_ms);
        worker->last_heartbeat_at = syn_now_us();
        switch (type) {
        case SYN_MSG_HEARTBEAT:
            break;
        case SYN_MSG_PROGRESS:
            broker_reports_progress(self, worker, fields, now_ms);
            break;
        case SYN_MSG_RESULT:
            broker_reports_result(self, worker, fields, now_ms);
            break;
        case SYN_MSG_ARTIFACT:
            broker_reports_artifact(self, worker, fields, now_ms);
            break;
        case SYN_MSG_ARTIFACT_GET:
            broker_artifact_inputs_get(self, worker, fields, now_ms);
            break;
        case SYN_MSG_DISCONNECT:
            broker_lost_disconnected(self, worker, now_ms);
            break;
        default:
            syn_warn("broker", "unexpected %s from worker=%s", syn_msg_type_name(type),
                     worker->name);
        }
    }
    engine_bury(self);
}

void broker_engine_undeliverable(broker_engine_t *self, const void *identity,
                                 size_t identity_len, const syn_msg_t *msg, int error,
                                 int64_t now_ms)
{
    broker_worker_t *worker = broker_workers_lookup(self->workers, identity, identity_len);
    const char *name = worker ? worker->name : "(unregistered)";
    engine_ref_t ref;
    if (syn_msg_type(msg) == SYN_MSG_ASSIGN && engine_read_ref(syn_msg_fields(msg), &ref)) {
        if (worker)
            broker_worker_release(worker, ref.execution_id, ref.phase_id, ref.attempt);
        broker_execution_t *exec = NULL;
        broker_phase_t *phase =
            broker_fence_current(self, ref.execution_id, ref.phase_id, ref.attempt, &exec);
        if (phase) {
            char *why = engine_strdupf("the assignment could not be sent to worker %s: %s", name,
                                       strerror(error));
            const char *reason = why ? why : "not delivered";
            if (error == EINVAL || error == EMSGSIZE) {
                /* It would fail the same way on any worker. */
                engine_finish_attempt(self, exec, phase, BROKER_ATTEMPT_FAILED, NULL, reason);
                engine_fail_phase(self, exec, phase, reason, NULL);
            } else {
                engine_finish_attempt(self, exec, phase, BROKER_ATTEMPT_LOST, NULL, reason);
                phase->undelivered++;
                retry_or_fail(self, exec, phase, BROKER_RETRY_NOT_RUN, "undelivered", reason,
                              NULL, now_ms);
            }
            free(why);
        }
    }
    if (worker && error == EHOSTUNREACH)
        broker_lost_unreachable(self, worker);
    engine_bury(self);
}

int64_t broker_engine_heartbeat(broker_engine_t *self, int64_t now_ms)
{
    engine_clock(self, now_ms);
    now_ms = self->clock_ms;
    int64_t interval = self->config.heartbeat_ms;
    broker_worker_t *w;
    while ((w = broker_workers_quiet(self->workers, now_ms, interval))) {
        engine_send_to_worker(self, w->identity, w->identity_len, SYN_MSG_HEARTBEAT, json_object());
        broker_workers_sent(self->workers, w, now_ms); /* even when it could not be queued */
    }
    return broker_workers_next_quiet_ms(self->workers, now_ms, interval);
}
