/* engine: the execution and attempt logic of the broker.
 *
 * Memory: a hash of active executions by id, a list in creation order (for
 * "active, newest first") and the ready queue of executions whose current phase
 * is queued and may be dispatched now (not paused, not waiting for a retry's
 * back-off). An execution that reaches a terminal state is retired: it leaves
 * the hash and the queue at once and is freed when the current entry point
 * returns, so no caller is left holding a freed pointer. */
#include "broker/engine.h"

#include "broker/render.h"
#include "broker/usage.h"
#include "common/clock.h"
#include "common/ids.h"
#include "common/json_text.h"
#include "common/log.h"
#include "common/ratelog.h"
#include "common/utf8.h"

#include <czmq.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* An ASSIGN must fit in one message (SYN_MSG_MAX_SIZE): the prompt is bounded by
 * the renderer, and the earlier outputs sent along as `inputs` share what is left
 * of this budget. */
#define ASSIGN_BUDGET (14u * 1024u * 1024u)
#define ASSIGN_INPUTS_MAX (6u * 1024u * 1024u)
#define TOOL_DETAIL_MAX 4096
/* A rendered prompt plus one dispatch's worth of operator messages (each line
 * "- [role] message\n" is at most 16 bytes longer than its message). */
#define PROMPT_MAX \
    (BROKER_RENDER_MAX_SIZE + BROKER_MESSAGES_WAITING_MAX * (BROKER_MESSAGE_MAX + 16))

struct broker_engine_t {
    broker_store_t *store;
    broker_events_t *events;
    broker_outbox_t *outbox;
    broker_workers_t *workers;
    broker_engine_config_t config;
    zhashx_t *active;       /* id → broker_execution_t (not owned here) */
    zlistx_t *by_creation;  /* owns the executions, oldest first */
    zlistx_t *ready;        /* executions whose current phase waits for a slot */
    zlistx_t *graveyard;    /* retired during this entry point, freed at its end */
    syn_ratelog_t *claims;  /* refused name claims: one line per (name, key) a minute */
    broker_engine_stats_t stats;
};

/* A worker refused for its name claim, reconnecting in a loop, logs once a minute. */
#define CLAIM_LOG_INTERVAL_MS 60000
#define CLAIM_LOG_CAUSES 256

/* --- small helpers --------------------------------------------------------- */

/* printf into a fresh string; never cuts a message (a cut could split a UTF-8
 * character and make the text unusable as JSON). */
static char *strdupf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *strdupf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *out = NULL;
    if (vasprintf(&out, fmt, ap) < 0)
        out = NULL;
    va_end(ap);
    return out;
}

static int64_t window_ms(const broker_engine_t *self)
{
    return self->config.heartbeat_ms * self->config.liveness;
}

/* How long after dispatch the broker gives up on a result: the phase timeout,
 * the worker's kill grace and one liveness window for the result to travel. */
static int64_t backstop_ms(const broker_engine_t *self, const broker_phase_t *phase)
{
    return phase->timeout_seconds * 1000 + self->config.kill_grace_ms + window_ms(self);
}

/* The delay before re-running after the n-th agent failure (n from 1). */
static int64_t retry_delay_ms(const broker_phase_t *phase, int64_t n)
{
    double seconds = phase->retry_backoff_seconds;
    for (int64_t i = 1; i < n && seconds < BROKER_RETRY_BACKOFF_CAP_SECONDS; i++)
        seconds *= 2;
    if (seconds > BROKER_RETRY_BACKOFF_CAP_SECONDS)
        seconds = BROKER_RETRY_BACKOFF_CAP_SECONDS;
    return (int64_t)(seconds * 1000.0 + 0.5);
}

static void clear_binding(broker_phase_t *phase)
{
    free(phase->worker_key);
    phase->worker_key = NULL;
    phase->deadline_ms = 0;
}

static void bind_worker(broker_phase_t *phase, const broker_worker_t *worker, int64_t deadline)
{
    broker_set_string(&phase->worker_key, worker->key);
    broker_set_string(&phase->worker_name, worker->name);
    phase->deadline_ms = deadline;
}

/* Writes the status column only when it changed since the last save: most
 * saves (the next phase queued) then touch no index and fire no trigger. */
static void save_execution(broker_engine_t *self, broker_execution_t *exec)
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

static void save_phase(broker_engine_t *self, broker_execution_t *exec, broker_phase_t *phase)
{
    if (broker_store_phase_save(self->store, exec, phase) < 0)
        syn_error("broker", "cannot save execution=%s phase=%s", exec->id, phase->phase_id);
}

/* A phase status change the tables forbid is a bug in the engine: log it loudly
 * and leave the state as it was rather than write nonsense. */
static bool move_phase(broker_execution_t *exec, broker_phase_t *phase, broker_phase_status_t to)
{
    if (broker_phase_set_status(phase, to) == 0)
        return true;
    syn_error("broker", "refused phase transition execution=%s phase=%s %s -> %s", exec->id,
              phase->phase_id, broker_phase_status_name(phase->status),
              broker_phase_status_name(to));
    return false;
}

static bool move_execution(broker_execution_t *exec, broker_exec_status_t to)
{
    if (broker_execution_set_status(exec, to) == 0)
        return true;
    syn_error("broker", "refused execution transition execution=%s %s -> %s", exec->id,
              broker_exec_status_name(exec->status), broker_exec_status_name(to));
    return false;
}

static json_t *phase_event(const broker_phase_t *phase)
{
    return json_pack("{s:s, s:I}", "phase_id", phase->phase_id, "attempt",
                     (json_int_t)phase->attempt);
}

/* Every event of an execution carries, on PUB only, its status object as it is
 * right after the event (the engine changes the state first, then emits), so a
 * subscriber (the gateway's local view) never has to ask the broker for it. */
static void emit(broker_engine_t *self, broker_execution_t *exec, const char *type,
                 json_t *data)
{
    broker_status_view_t view;
    broker_execution_status_view(exec, &view);
    broker_events_emit_with_status(self->events, exec->id, exec->num, type, data, &view);
}

/* Queues msg (taken; NULL when it could not be made) for a worker. */
static void queue_for_worker(broker_engine_t *self, const void *identity, size_t identity_len,
                             syn_msg_type_t type, syn_msg_t *msg)
{
    if (!msg || broker_outbox_push(self->outbox, BROKER_TO_WORKER, identity, identity_len,
                                   msg) < 0)
        syn_error("broker", "cannot queue %s for a worker", syn_msg_type_name(type));
}

static void send_to_worker(broker_engine_t *self, const void *identity, size_t identity_len,
                           syn_msg_type_t type, json_t *fields)
{
    queue_for_worker(self, identity, identity_len, type,
                     fields ? syn_msg_new_with(type, fields) : NULL);
}

static void send_ref(broker_engine_t *self, const broker_worker_t *worker, syn_msg_type_t type,
                     const char *execution_id, const char *phase_id, int64_t attempt)
{
    send_to_worker(self, worker->identity, worker->identity_len, type,
                   json_pack("{s:s, s:s, s:I}", "execution_id", execution_id, "phase_id",
                             phase_id, "attempt", (json_int_t)attempt));
}

/* --- streamed output ------------------------------------------------------- */

/* One PhaseOutput event with the first len bytes of the phase's stream buffer. */
static void stream_emit(broker_engine_t *self, broker_execution_t *exec, broker_phase_t *phase,
                        size_t len, int64_t now_ms)
{
    json_t *data = phase_event(phase);
    json_object_set_new(data, "text", json_stringn(phase->stream, len));
    json_object_set_new(data, "offset", json_integer(phase->streamed));
    emit(self, exec, "PhaseOutput", data);
    memmove(phase->stream, phase->stream + len, phase->stream_len - len);
    phase->stream_len -= len;
    phase->streamed += (int64_t)len;
    phase->stream_sent_ms = now_ms;
}

/* Turns buffered output into events: the first chunk of an attempt at once,
 * then at most one event per interval unless a full event's worth is waiting;
 * force (the attempt ends, a tool event must come after the text before it)
 * sends everything. */
static void stream_flush(broker_engine_t *self, broker_execution_t *exec, broker_phase_t *phase,
                         int64_t now_ms, bool force)
{
    while (phase->stream_len > 0) {
        bool due = force || phase->stream_len >= BROKER_STREAM_EVENT_MAX ||
                   phase->streamed == 0 ||
                   now_ms - phase->stream_sent_ms >= BROKER_STREAM_INTERVAL_MS;
        if (!due)
            return;
        size_t len = syn_utf8_cut(phase->stream, phase->stream_len, BROKER_STREAM_EVENT_MAX);
        if (len == 0)
            len = phase->stream_len; /* cannot happen with valid UTF-8 */
        stream_emit(self, exec, phase, len, now_ms);
    }
}

static void stream_reset(broker_phase_t *phase)
{
    free(phase->stream);
    phase->stream = NULL;
    phase->stream_len = 0;
    phase->streamed = 0;
    phase->stream_sent_ms = 0;
    phase->stream_capped = false;
    phase->tool_events = 0;
}

static void stream_append(broker_engine_t *self, broker_execution_t *exec, broker_phase_t *phase,
                          const char *text, int64_t now_ms)
{
    if (phase->stream_capped || !text || !*text)
        return;
    size_t len = strlen(text);
    size_t used = (size_t)phase->streamed + phase->stream_len;
    size_t room = used < BROKER_OUTPUT_MAX ? BROKER_OUTPUT_MAX - used : 0;
    size_t take = syn_utf8_cut(text, len, room);
    if (take > 0) {
        char *grown = realloc(phase->stream, phase->stream_len + take);
        if (!grown) {
            syn_error("broker", "out of memory buffering output execution=%s", exec->id);
            return;
        }
        phase->stream = grown;
        memcpy(phase->stream + phase->stream_len, text, take);
        phase->stream_len += take;
    }
    if (take == len) {
        stream_flush(self, exec, phase, now_ms, false);
        return;
    }
    stream_flush(self, exec, phase, now_ms, true);
    phase->stream_capped = true;
    json_t *data = phase_event(phase);
    json_object_set_new(data, "text", json_string(""));
    json_object_set_new(data, "offset", json_integer(phase->streamed));
    json_object_set_new(data, "truncated", json_true());
    emit(self, exec, "PhaseOutput", data);
}

/* Records the end of the current attempt (after the output it streamed). */
static void finish_attempt(broker_engine_t *self, broker_execution_t *exec,
                           broker_phase_t *phase, broker_attempt_status_t status,
                           const int64_t *exit_code, const char *error)
{
    stream_flush(self, exec, phase, 0, true);
    stream_reset(phase);
    if (broker_store_attempt_finish(self->store, exec, phase->phase_id, phase->attempt,
                                    status, syn_now_us(), exit_code, error) < 0)
        syn_error("broker", "cannot record attempt end execution=%s phase=%s attempt=%lld",
                  exec->id, phase->phase_id, (long long)phase->attempt);
}

/* --- active set ------------------------------------------------------------ */

/* Puts the execution in the ready queue when its current phase may be
 * dispatched now: queued, not paused, not waiting out a retry back-off. */
static void enqueue(broker_engine_t *self, broker_execution_t *exec, bool front)
{
    if (exec->ready_handle || broker_exec_is_terminal(exec->status) ||
        exec->status == BROKER_EXEC_PAUSED)
        return;
    broker_phase_t *phase = broker_execution_active_phase(exec);
    if (!phase || phase->status != BROKER_PHASE_QUEUED || phase->not_before_ms)
        return;
    exec->ready_handle =
        front ? zlistx_add_start(self->ready, exec) : zlistx_add_end(self->ready, exec);
}

static void dequeue(broker_engine_t *self, broker_execution_t *exec)
{
    if (!exec->ready_handle)
        return;
    zlistx_detach(self->ready, exec->ready_handle);
    exec->ready_handle = NULL;
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
 * creation list (which a caller may be walking) and memory in bury(). */
static void retire(broker_engine_t *self, broker_execution_t *exec)
{
    zhashx_delete(self->active, exec->id);
    dequeue(self, exec);
    zlistx_add_end(self->graveyard, exec);
}

static void bury(broker_engine_t *self)
{
    broker_execution_t *exec;
    while ((exec = zlistx_detach(self->graveyard, NULL))) {
        if (exec->list_handle)
            zlistx_detach(self->by_creation, exec->list_handle);
        broker_execution_destroy(&exec);
    }
}

/* --- phase and execution outcomes ----------------------------------------- */

static void queue_phase(broker_engine_t *self, broker_execution_t *exec, broker_phase_t *phase)
{
    if (!move_phase(exec, phase, BROKER_PHASE_QUEUED))
        return;
    phase->not_before_ms = 0;
    save_phase(self, exec, phase);
    emit(self, exec, "PhaseQueued", json_pack("{s:s}", "phase_id", phase->phase_id));
    enqueue(self, exec, false);
}

static void complete_execution(broker_engine_t *self, broker_execution_t *exec)
{
    if (!move_execution(exec, BROKER_EXEC_COMPLETED))
        return;
    exec->completed_at = syn_now_us();
    save_execution(self, exec);
    emit(self, exec, "ExecutionCompleted",
         json_pack("{s:I, s:I}", "completed_phases", (json_int_t)exec->completed_phases,
                   "total_phases", (json_int_t)exec->phase_count));
    self->stats.completed++;
    syn_info("broker", "execution completed execution=%s phases=%zu", exec->id,
             exec->phase_count);
    retire(self, exec);
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
    if (exec->status != BROKER_EXEC_PAUSED)
        queue_phase(self, exec, &exec->phases[exec->current]);
    save_execution(self, exec);
}

/* The phase failed for reason: the execution fails with it, later phases are
 * skipped. usage (may be NULL) is what the last attempt reported. */
static void fail_phase(broker_engine_t *self, broker_execution_t *exec, broker_phase_t *phase,
                       const char *reason, const broker_usage_t *usage)
{
    if (!move_phase(exec, phase, BROKER_PHASE_FAILED))
        return;
    broker_set_string(&phase->error, reason);
    phase->completed_at = syn_now_us();
    phase->not_before_ms = 0;
    clear_binding(phase);
    save_phase(self, exec, phase);
    for (broker_phase_t *later = phase + 1; later < exec->phases + exec->phase_count; later++)
        if (move_phase(exec, later, BROKER_PHASE_SKIPPED))
            save_phase(self, exec, later);

    char *error = strdupf("Phase %s failed: %s", phase->phase_id, reason);
    free(exec->error);
    exec->error = error;
    if (move_execution(exec, BROKER_EXEC_FAILED))
        exec->completed_at = syn_now_us();
    save_execution(self, exec);
    json_t *data = phase_event(phase);
    json_object_set_new(data, "error", json_string(reason));
    if (usage)
        broker_usage_put(usage, data, phase->model, false);
    emit(self, exec, "PhaseFailed", data);
    emit(self, exec, "ExecutionFailed",
         json_pack("{s:s?, s:s, s:I, s:I}", "error", exec->error, "phase_id", phase->phase_id,
                   "completed_phases", (json_int_t)exec->completed_phases, "total_phases",
                   (json_int_t)exec->phase_count));
    self->stats.failed++;
    syn_info("broker", "execution failed execution=%s phase=%s reason=\"%s\"", exec->id,
             phase->phase_id, reason);
    retire(self, exec);
}

/* Cuts an output above the limit on a character boundary, with the worker's
 * marker; an output the worker already cut (limit + marker) passes unchanged. */
static char *bounded_output(const char *output)
{
    size_t len = strlen(output);
    if (len <= BROKER_OUTPUT_MAX + sizeof BROKER_OUTPUT_MARKER - 1)
        return strdup(output);
    size_t cut = syn_utf8_cut(output, len, BROKER_OUTPUT_MAX);
    char *out = malloc(cut + sizeof BROKER_OUTPUT_MARKER);
    if (!out)
        return NULL;
    memcpy(out, output, cut);
    memcpy(out + cut, BROKER_OUTPUT_MARKER, sizeof BROKER_OUTPUT_MARKER);
    return out;
}

static void complete_phase(broker_engine_t *self, broker_execution_t *exec,
                           broker_phase_t *phase, const char *output, const int64_t *exit_code,
                           const broker_usage_t *usage)
{
    char *kept = bounded_output(output ? output : "");
    if (!kept) {
        fail_phase(self, exec, phase, "out of memory storing the output", usage);
        return;
    }
    if (!move_phase(exec, phase, BROKER_PHASE_COMPLETED)) {
        free(kept);
        return;
    }
    finish_attempt(self, exec, phase, BROKER_ATTEMPT_COMPLETED, exit_code, NULL);
    free(phase->output);
    phase->output = kept;
    phase->completed_at = syn_now_us();
    clear_binding(phase);
    if (broker_store_phase_save_with_output(self->store, exec, phase) < 0)
        syn_error("broker", "cannot store output execution=%s phase=%s", exec->id,
                  phase->phase_id);
    exec->completed_phases++;
    json_t *data = phase_event(phase);
    json_object_set_new(data, "output_bytes", json_integer((json_int_t)strlen(kept)));
    json_object_set_new(data, "worker",
                        phase->worker_name ? json_string(phase->worker_name) : json_null());
    broker_usage_put(usage, data, phase->model, true);
    emit(self, exec, "PhaseCompleted", data);
    syn_debug("broker", "phase completed execution=%s phase=%s attempt=%lld", exec->id,
              phase->phase_id, (long long)phase->attempt);
    advance(self, exec);
}

/* Sends the phase back to the queue for its next attempt, after delay_ms. */
static void requeue(broker_engine_t *self, broker_execution_t *exec, broker_phase_t *phase,
                    const char *cause, const char *reason, int64_t delay_ms, int64_t now_ms,
                    const broker_usage_t *usage)
{
    if (!move_phase(exec, phase, BROKER_PHASE_QUEUED))
        return;
    clear_binding(phase);
    phase->not_before_ms = delay_ms > 0 ? now_ms + delay_ms : 0;
    save_phase(self, exec, phase);
    save_execution(self, exec);
    json_t *data = phase_event(phase);
    json_object_set_new(data, "next_attempt", json_integer(phase->attempt + 1));
    json_object_set_new(data, "reason", json_string(reason));
    json_object_set_new(data, "cause", json_string(cause));
    json_object_set_new(data, "retry_in_seconds", json_real((double)delay_ms / 1000.0));
    if (usage)
        broker_usage_put(usage, data, phase->model, false);
    emit(self, exec, "PhaseRetrying", data);
    self->stats.retried++;
    enqueue(self, exec, true);
}

/* The current attempt ended without a result (worker lost, disconnected, gone
 * across a restart, or it gave the work back): retry while max_attempts allows.
 * Attempts the agent failed are not counted here: they have `retries`. */
static void attempt_lost(broker_engine_t *self, broker_execution_t *exec, broker_phase_t *phase,
                         broker_attempt_status_t how, const char *reason, int64_t now_ms)
{
    finish_attempt(self, exec, phase, how, NULL, reason);
    if (how == BROKER_ATTEMPT_LOST)
        phase->lost++;
    self->stats.lost++;
    syn_warn("broker", "attempt lost execution=%s phase=%s attempt=%lld/%lld reason=\"%s\"",
             exec->id, phase->phase_id, (long long)phase->attempt,
             (long long)phase->max_attempts, reason);
    if (phase->attempt - phase->undelivered - phase->failures < phase->max_attempts) {
        requeue(self, exec, phase, "worker_lost", reason, 0, now_ms, NULL);
        return;
    }
    char *why = how == BROKER_ATTEMPT_LOST
                    ? strdupf("worker lost %lld time%s (max_attempts %lld); last: %s",
                              (long long)phase->lost, phase->lost == 1 ? "" : "s",
                              (long long)phase->max_attempts, reason)
                    : strdupf("%s (attempt %lld of max_attempts %lld)", reason,
                              (long long)phase->attempt, (long long)phase->max_attempts);
    fail_phase(self, exec, phase, why ? why : reason, NULL);
    free(why);
}

/* The worker could not start the attempt (it is draining, or had no free slot):
 * the agent never ran, so the attempt does not count against max_attempts and
 * the phase goes straight back to the queue for another worker. */
static void attempt_refused(broker_engine_t *self, broker_execution_t *exec,
                            broker_phase_t *phase, const broker_worker_t *worker,
                            const char *why, int64_t now_ms)
{
    char *reason = strdupf("worker %s refused the attempt: %s", worker->name,
                           why ? why : "no reason given");
    const char *text = reason ? reason : "worker refused the attempt";
    finish_attempt(self, exec, phase, BROKER_ATTEMPT_CANCELLED, NULL, text);
    phase->undelivered++;
    self->stats.refused++;
    syn_info("broker", "attempt refused execution=%s phase=%s attempt=%lld worker=%s reason=\"%s\"",
             exec->id, phase->phase_id, (long long)phase->attempt, worker->name,
             why ? why : "");
    requeue(self, exec, phase, "refused", text, 0, now_ms, NULL);
    free(reason);
}

/* The agent failed the current attempt (its error, its timeout, or the broker's
 * backstop): run it again after the back-off while `retries` allow, else the
 * phase fails with the reason. */
static void attempt_failed(broker_engine_t *self, broker_execution_t *exec, broker_phase_t *phase,
                           broker_attempt_status_t how, const int64_t *exit_code,
                           const char *reason, const broker_usage_t *usage, int64_t now_ms)
{
    finish_attempt(self, exec, phase, how, exit_code, reason);
    phase->failures++;
    if (phase->failures <= phase->retries) {
        int64_t delay = retry_delay_ms(phase, phase->failures);
        syn_info("broker",
                 "retrying execution=%s phase=%s attempt=%lld retry=%lld/%lld in_ms=%lld "
                 "reason=\"%s\"",
                 exec->id, phase->phase_id, (long long)phase->attempt,
                 (long long)phase->failures, (long long)phase->retries, (long long)delay, reason);
        requeue(self, exec, phase, how == BROKER_ATTEMPT_TIMEOUT ? "timeout" : "agent_failed",
                reason, delay, now_ms, usage);
        return;
    }
    if (phase->retries == 0) {
        fail_phase(self, exec, phase, reason, usage);
        return;
    }
    char *why = strdupf("%s (failed %lld times; retries %lld)", reason,
                        (long long)phase->failures, (long long)phase->retries);
    fail_phase(self, exec, phase, why ? why : reason, usage);
    free(why);
}

/* The phase (execution_id, phase_id) if attempt is its current, running one. */
static broker_phase_t *current_attempt(broker_engine_t *self, const char *execution_id,
                                       const char *phase_id, int64_t attempt,
                                       broker_execution_t **exec_out)
{
    broker_execution_t *exec = execution_id ? zhashx_lookup(self->active, execution_id) : NULL;
    broker_phase_t *phase = exec && phase_id ? broker_execution_find_phase(exec, phase_id) : NULL;
    if (!phase || phase->status != BROKER_PHASE_RUNNING || phase->attempt != attempt)
        return NULL;
    *exec_out = exec;
    return phase;
}

/* The worker that holds phase's current attempt lets go of it (if any). */
static void release_holder(broker_engine_t *self, broker_execution_t *exec,
                           broker_phase_t *phase)
{
    broker_worker_t *holder = broker_workers_lookup_key(self->workers, phase->worker_key);
    if (holder)
        broker_worker_release(holder, exec->id, phase->phase_id, phase->attempt);
}

/* Whether worker may take over or report phase's current attempt, which another
 * worker holds. Without CURVE any worker may (a restarted process says READY from a
 * new identity). With it, only one with the holder's key, so a worker key, stolen or
 * not, cannot take or end the attempts of another host's worker by naming them (ids
 * are no secret: a worker learns them from its own phases). A holder the broker does
 * not know (after a restart, until it says READY) leaves the attempt to any worker. */
static bool may_take_over(broker_engine_t *self, const broker_phase_t *phase,
                          const broker_worker_t *worker)
{
    if (!phase->worker_key || strcmp(phase->worker_key, worker->key) == 0 || !worker->peer_key)
        return true;
    const broker_worker_t *holder = broker_workers_lookup_key(self->workers, phase->worker_key);
    return !holder || !holder->peer_key || strcmp(holder->peer_key, worker->peer_key) == 0;
}

static void refuse_take_over(broker_engine_t *self, const broker_execution_t *exec,
                             const broker_phase_t *phase, const broker_worker_t *worker,
                             const char *what)
{
    self->stats.stale++;
    char cause[64];
    snprintf(cause, sizeof cause, "take-over %.8s", worker->peer_key);
    syn_ratelog_log(self->claims, cause, syn_mono_ms(), SYN_LOG_WARN, "broker",
                    "refused %s execution=%s phase=%s attempt=%lld from worker=%s key=%.8s: "
                    "another key's worker holds it",
                    what, exec->id, phase->phase_id, (long long)phase->attempt, worker->name,
                    worker->peer_key);
}

/* Asks the worker holding the phase's running attempt to stop it. Its slot stays
 * taken (the held entry turns stale) until the worker's RESULT for it arrives. */
static void cancel_holder(broker_engine_t *self, broker_execution_t *exec, broker_phase_t *phase)
{
    broker_worker_t *holder = broker_workers_lookup_key(self->workers, phase->worker_key);
    if (!holder)
        return;
    broker_held_t *held = broker_worker_find(holder, exec->id, phase->phase_id, phase->attempt);
    if (held)
        held->current = false;
    send_ref(self, holder, SYN_MSG_CANCEL, exec->id, phase->phase_id, phase->attempt);
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
    self->claims = syn_ratelog_new(CLAIM_LOG_INTERVAL_MS, CLAIM_LOG_CAUSES);
    if (!self->active || !self->by_creation || !self->ready || !self->graveyard ||
        !self->claims) {
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
        bury(self);
    broker_execution_t *exec;
    while (self->by_creation && (exec = zlistx_detach(self->by_creation, NULL)))
        broker_execution_destroy(&exec);
    zhashx_destroy(&self->active);
    zlistx_destroy(&self->by_creation);
    zlistx_destroy(&self->ready);
    zlistx_destroy(&self->graveyard);
    syn_ratelog_destroy(&self->claims);
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
    if (exec->current >= exec->phase_count) {
        complete_execution(self, exec);
        return;
    }
    broker_phase_t *phase = &exec->phases[exec->current];
    switch (phase->status) {
    case BROKER_PHASE_QUEUED:
        enqueue(self, exec, false);
        break;
    case BROKER_PHASE_RUNNING:
        phase->deadline_ms = ctx->now_ms + window_ms(self);
        break;
    case BROKER_PHASE_PENDING:
        if (exec->status != BROKER_EXEC_PAUSED) {
            queue_phase(self, exec, phase);
            save_execution(self, exec);
        }
        break;
    default: {
        char *why = strdupf("found %s after a restart", broker_phase_status_name(phase->status));
        syn_warn("broker", "execution=%s phase=%s is %s but the execution is %s: failing it",
                 exec->id, phase->phase_id, broker_phase_status_name(phase->status),
                 broker_exec_status_name(exec->status));
        free(exec->error);
        exec->error = strdupf("Phase %s failed: %s", phase->phase_id, why ? why : "?");
        free(why);
        if (move_execution(exec, BROKER_EXEC_FAILED))
            exec->completed_at = syn_now_us();
        save_execution(self, exec);
        emit(self, exec, "ExecutionFailed", json_pack("{s:s?}", "error", exec->error));
        retire(self, exec);
    }
    }
}

int broker_engine_recover(broker_engine_t *self, int64_t now_ms)
{
    recover_ctx_t ctx = {self, now_ms, 0};
    int rc = broker_store_load_active(self->store, recover_one, &ctx);
    bury(self);
    if (rc < 0)
        return -1;
    if (ctx.loaded)
        syn_info("broker", "reloaded active executions count=%d", ctx.loaded);
    return ctx.loaded;
}

int broker_engine_start(broker_engine_t *self, const char *workflow_id, int64_t version,
                        const json_t *template_json, json_t *inputs, const char *task,
                        json_t *repos, char id_out[BROKER_EXEC_ID_SIZE], char *err,
                        size_t errlen)
{
    char id[BROKER_EXEC_ID_SIZE];
    if (syn_id_make("exec-", BROKER_EXEC_ID_HEX, id, sizeof id) < 0) {
        snprintf(err, errlen, "cannot make an execution id");
        return -1;
    }
    broker_execution_t *exec = broker_execution_new(id, workflow_id, version, template_json,
                                                    inputs, task, repos, syn_now_us(), err,
                                                    errlen);
    if (!exec)
        return -1;
    exec->phases[0].status = BROKER_PHASE_QUEUED;
    /* 48 random bits rarely collide, but a collision must not fail a request. */
    int rc = 1;
    for (int tries = 0; tries < 8 && rc == 1; tries++) {
        if (tries > 0 && syn_id_make("exec-", BROKER_EXEC_ID_HEX, exec->id, sizeof exec->id) < 0)
            break;
        rc = zhashx_lookup(self->active, exec->id)
                 ? 1
                 : broker_store_execution_insert(self->store, exec);
    }
    if (rc != 0 || adopt_execution(self, exec) < 0) {
        snprintf(err, errlen, "cannot store the execution");
        broker_execution_destroy(&exec);
        return -1;
    }
    exec->stored_status = (int)exec->status;
    emit(self, exec, "ExecutionStarted",
         json_pack("{s:s, s:I}", "workflow_id", workflow_id, "total_phases",
                   (json_int_t)exec->phase_count));
    emit(self, exec, "PhaseQueued", json_pack("{s:s}", "phase_id", exec->phases[0].phase_id));
    enqueue(self, exec, false);
    self->stats.started++;
    snprintf(id_out, BROKER_EXEC_ID_SIZE, "%s", exec->id);
    syn_debug("broker", "execution accepted execution=%s workflow=%s", exec->id, workflow_id);
    return 0;
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
        json_array_append_new(list, broker_status_json(&view));
    }
    return list;
}

broker_engine_stats_t broker_engine_stats(const broker_engine_t *self)
{
    return self->stats;
}

/* --- control --------------------------------------------------------------- */

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
            cancel_holder(self, exec, phase);
            finish_attempt(self, exec, phase, BROKER_ATTEMPT_CANCELLED, NULL, why);
        }
        if (move_phase(exec, phase, BROKER_PHASE_CANCELLED)) {
            phase->completed_at = now_us;
            phase->not_before_ms = 0;
            broker_set_string(&phase->error, why);
            clear_binding(phase);
            save_phase(self, exec, phase);
        }
    }
    for (size_t i = exec->current; i < exec->phase_count; i++) {
        broker_phase_t *later = &exec->phases[i];
        if (later->status == BROKER_PHASE_PENDING && move_phase(exec, later, BROKER_PHASE_SKIPPED))
            save_phase(self, exec, later);
    }
    broker_set_string(&exec->error, why);
    move_execution(exec, BROKER_EXEC_CANCELLED);
    exec->completed_at = now_us;
    save_execution(self, exec);
    emit(self, exec, "ExecutionCancelled",
         json_pack("{s:s, s:o, s:I, s:I}", "error", why, "phase_id",
                   phase ? json_string(phase->phase_id) : json_null(), "completed_phases",
                   (json_int_t)exec->completed_phases, "total_phases",
                   (json_int_t)exec->phase_count));
    self->stats.cancelled++;
    syn_info("broker", "execution cancelled execution=%s phase=%s reason=\"%s\"", exec->id,
             phase ? phase->phase_id : "-", why);
    *status = exec->status;
    retire(self, exec);
    bury(self);
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
    if (!move_execution(exec, BROKER_EXEC_PAUSED))
        return -1;
    dequeue(self, exec);
    save_execution(self, exec);
    broker_phase_t *phase = broker_execution_active_phase(exec);
    emit(self, exec, "ExecutionPaused",
         json_pack("{s:o, s:o}", "reason", reason ? json_string(reason) : json_null(),
                   "phase_id",
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
    /* Back to where it was: pending when no phase has started yet. */
    if (!move_execution(exec, exec->started_at ? BROKER_EXEC_RUNNING : BROKER_EXEC_PENDING))
        return -1;
    save_execution(self, exec);
    emit(self, exec, "ExecutionResumed",
         json_pack("{s:s}", "status", broker_exec_status_name(exec->status)));
    if (exec->current < exec->phase_count) {
        broker_phase_t *phase = &exec->phases[exec->current];
        if (phase->status == BROKER_PHASE_PENDING) {
            queue_phase(self, exec, phase);
            save_execution(self, exec);
        } else {
            enqueue(self, exec, false);
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
            send_to_worker(self, holder->identity, holder->identity_len, SYN_MSG_INJECT,
                           json_pack("{s:s, s:s, s:I, s:s, s:s}", "execution_id", exec->id,
                                     "phase_id", phase->phase_id, "attempt",
                                     (json_int_t)phase->attempt, "role", role, "message",
                                     message));
            live = true;
        }
    }
    emit(self, exec, "MessageInjected",
         json_pack("{s:s, s:s, s:o, s:b}", "role", role, "message", message, "phase_id",
                   live ? json_string(phase->phase_id) : json_null(), "live", live));
    syn_info("broker", "operator message queued execution=%s role=%s live=%s", exec->id, role,
             live ? "yes" : "no");
    return 0;
}

/* --- dispatch -------------------------------------------------------------- */

/* Appends "## Operator messages" with every message bound to phase_id. */
static char *add_operator_messages(char *prompt, const json_t *messages, const char *phase_id,
                                   char *err, size_t errlen)
{
    size_t i, extra = 0;
    const json_t *m;
    json_array_foreach(messages, i, m)
        if (json_is_string(json_object_get(m, "phase_id")) &&
            strcmp(json_string_value(json_object_get(m, "phase_id")), phase_id) == 0)
            extra += strlen(json_string_value(json_object_get(m, "message"))) + 16;
    if (extra == 0)
        return prompt;
    size_t len = strlen(prompt);
    static const char heading[] = "\n\n## Operator messages\n\n";
    if (len + sizeof heading + extra > PROMPT_MAX) {
        snprintf(err, errlen, "operator messages make the prompt too large");
        free(prompt);
        return NULL;
    }
    char *out = realloc(prompt, len + sizeof heading + extra);
    if (!out) {
        snprintf(err, errlen, "out of memory adding operator messages");
        free(prompt);
        return NULL;
    }
    memcpy(out + len, heading, sizeof heading);
    len += sizeof heading - 1;
    json_array_foreach(messages, i, m)
    {
        const char *bound = json_string_value(json_object_get(m, "phase_id"));
        if (!bound || strcmp(bound, phase_id) != 0)
            continue;
        len += (size_t)sprintf(out + len, "- [%s] %s\n",
                               json_string_value(json_object_get(m, "role")),
                               json_string_value(json_object_get(m, "message")));
    }
    return out;
}

/* Renders the current phase's prompt from the execution's inputs, task and the
 * outputs of the phases before it, then the operator messages meant for it. */
static char *render_prompt(broker_execution_t *exec, broker_phase_t *phase, char *err,
                           size_t errlen)
{
    size_t ninputs = json_object_size(exec->inputs);
    size_t index = (size_t)(phase - exec->phases);
    broker_render_var_t *inputs = calloc(ninputs + 1, sizeof *inputs);
    broker_render_var_t *outputs = calloc(index + 1, sizeof *outputs);
    char *prompt = NULL;
    if (!inputs || !outputs) {
        snprintf(err, errlen, "out of memory rendering the prompt");
        goto done;
    }
    size_t n = 0;
    const char *key;
    json_t *value;
    json_object_foreach(exec->inputs, key, value)
        if (json_is_string(value))
            inputs[n++] = (broker_render_var_t){key, json_string_value(value)};
    size_t m = 0;
    for (size_t i = 0; i < index; i++)
        if (exec->phases[i].status == BROKER_PHASE_COMPLETED && exec->phases[i].output)
            outputs[m++] = (broker_render_var_t){exec->phases[i].phase_id, exec->phases[i].output};
    broker_render_ctx_t ctx = {
        .execution_id = exec->id,
        .workflow_id = exec->workflow_id,
        .inputs = inputs,
        .input_count = n,
        .outputs = outputs,
        .output_count = m,
        .task = exec->task,
    };
    prompt = broker_render(phase->prompt_template, &ctx, NULL, err, errlen);
    if (prompt)
        prompt = add_operator_messages(prompt, exec->messages, phase->phase_id, err, errlen);
done:
    free(inputs);
    free(outputs);
    return prompt;
}

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

/* Earlier phases' outputs by phase id, newest first while they fit the budget
 * (an agent provider writes them to artifacts/input/). */
static json_t *earlier_outputs(broker_execution_t *exec, broker_phase_t *phase, size_t budget)
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

static void dispatch_one(broker_engine_t *self, broker_execution_t *exec, broker_worker_t *worker,
                         int64_t now_ms)
{
    broker_phase_t *phase = broker_execution_active_phase(exec);
    if (!phase || phase->status != BROKER_PHASE_QUEUED)
        return;
    bind_messages(self, exec, phase);
    char err[256];
    char *prompt = render_prompt(exec, phase, err, sizeof err);
    if (!prompt) {
        fail_phase(self, exec, phase, err, NULL);
        return;
    }
    int64_t now_us = syn_now_us();
    if (!move_phase(exec, phase, BROKER_PHASE_RUNNING)) {
        free(prompt);
        return;
    }
    phase->attempt++;
    phase->not_before_ms = 0;
    stream_reset(phase);
    if (!phase->started_at)
        phase->started_at = now_us;
    /* An attempt that waits on the worker for a slot (its prefetch) gets its
     * backstop when the worker reports it started: until then how long it waits
     * depends on the phases ahead of it, whose own limits and the worker's
     * liveness cover that time. */
    bool waits = !broker_worker_slot_free(worker);
    bind_worker(phase, worker, waits ? 0 : now_ms + backstop_ms(self, phase));
    /* Only the first dispatch changes the execution's row (running, started_at):
     * later phases leave it as advance() saved it. */
    bool exec_changed = false;
    if (exec->status == BROKER_EXEC_PENDING && move_execution(exec, BROKER_EXEC_RUNNING)) {
        exec->started_at = now_us;
        exec_changed = true;
    }
    if (broker_store_attempt_insert(self->store, exec, phase->phase_id, phase->attempt,
                                    worker->name, now_us) < 0)
        syn_error("broker", "cannot record attempt execution=%s phase=%s", exec->id,
                  phase->phase_id);
    save_phase(self, exec, phase);
    if (exec_changed || exec->stored_status != (int)exec->status)
        save_execution(self, exec);
    json_t *data = phase_event(phase);
    json_object_set_new(data, "worker", json_string(worker->name));
    emit(self, exec, "PhaseStarted", data);
    broker_worker_hold(worker, exec->id, phase->phase_id, phase->attempt, true);

    size_t prompt_len = strlen(prompt);
    size_t budget = prompt_len < ASSIGN_BUDGET ? ASSIGN_BUDGET - prompt_len : 0;
    json_t *inputs = earlier_outputs(exec, phase,
                                     budget < ASSIGN_INPUTS_MAX ? budget : ASSIGN_INPUTS_MAX);
    /* Packed straight to msgpack (syn_pack): one per phase, and the prompt is its
     * largest part, which a field object would copy twice. */
    syn_pack_t *pack = syn_pack_new(SYN_MSG_ASSIGN, 11 + (phase->max_tokens > 0) +
                                                        (phase->network != NULL));
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
        msg = syn_pack_finish(&pack, err, sizeof err);
    }
    json_decref(inputs);
    free(prompt);
    if (!msg)
        syn_error("broker", "cannot pack an assign: %s", err);
    queue_for_worker(self, worker->identity, worker->identity_len, SYN_MSG_ASSIGN, msg);
    self->stats.dispatched++;
    syn_debug("broker", "dispatched execution=%s phase=%s attempt=%lld worker=%s%s", exec->id,
              phase->phase_id, (long long)phase->attempt, worker->name,
              waits ? " (waits for a slot there)" : "");
}

/* Oldest first; a phase that names a provider waits (keeping its place) until a
 * worker offering it has a free slot, without holding up the others. */
void broker_engine_dispatch(broker_engine_t *self, int64_t now_ms)
{
    broker_execution_t *exec = zlistx_first(self->ready);
    while (exec && broker_workers_pick(self->workers, NULL)) {
        broker_phase_t *phase = broker_execution_active_phase(exec);
        broker_worker_t *worker =
            broker_workers_pick(self->workers, phase ? phase->provider : NULL);
        void *handle = exec->ready_handle;
        broker_execution_t *next = zlistx_next(self->ready);
        if (worker || !phase) {
            zlistx_detach(self->ready, handle);
            exec->ready_handle = NULL;
            if (worker &&
                (exec->status == BROKER_EXEC_PENDING || exec->status == BROKER_EXEC_RUNNING))
                dispatch_one(self, exec, worker, now_ms);
        }
        exec = next;
    }
    bury(self);
}

/* --- worker messages ------------------------------------------------------- */

typedef struct {
    const char *execution_id;
    const char *phase_id;
    int64_t attempt;
} ref_t;

static bool read_ref(const json_t *fields, ref_t *ref)
{
    const json_t *attempt = json_object_get(fields, "attempt");
    ref->execution_id = json_string_value(json_object_get(fields, "execution_id"));
    ref->phase_id = json_string_value(json_object_get(fields, "phase_id"));
    ref->attempt = json_is_integer(attempt) ? (int64_t)json_integer_value(attempt) : -1;
    return ref->execution_id && ref->phase_id && ref->attempt >= 0;
}

/* Every current attempt the worker holds is lost (it died or left). */
static void lose_worker_attempts(broker_engine_t *self, broker_worker_t *worker,
                                 const char *reason, int64_t now_ms)
{
    while (worker->held_count > 0) {
        broker_held_t *held = &worker->held[worker->held_count - 1];
        broker_execution_t *exec = NULL;
        broker_phase_t *phase = held->current
                                    ? current_attempt(self, held->execution_id, held->phase_id,
                                                      held->attempt, &exec)
                                    : NULL;
        bool bound_here =
            phase && phase->worker_key && strcmp(phase->worker_key, worker->key) == 0;
        broker_worker_release(worker, held->execution_id, held->phase_id, held->attempt);
        if (bound_here)
            attempt_lost(self, exec, phase, BROKER_ATTEMPT_LOST, reason, now_ms);
    }
}

/* Takes over the attempts a READY lists: the current ones are adopted (their
 * backstop runs from now, or, for ones still waiting for a slot, from when the
 * worker reports them started); stale or unknown ones are cancelled. */
static void adopt_listed(broker_engine_t *self, broker_worker_t *worker, const json_t *list,
                         bool waiting, int64_t now_ms, size_t *adopted, size_t *stale)
{
    size_t i;
    json_t *r;
    json_array_foreach(list, i, r)
    {
        ref_t ref;
        if (!read_ref(r, &ref) ||
            broker_worker_find(worker, ref.execution_id, ref.phase_id, ref.attempt))
            continue;
        broker_execution_t *exec = NULL;
        broker_phase_t *phase =
            current_attempt(self, ref.execution_id, ref.phase_id, ref.attempt, &exec);
        if (phase && !may_take_over(self, phase, worker)) {
            refuse_take_over(self, exec, phase, worker, "adoption");
            phase = NULL;
        }
        if (phase) {
            if (phase->worker_key && strcmp(phase->worker_key, worker->key) != 0)
                release_holder(self, exec, phase);
            bind_worker(phase, worker, waiting ? 0 : now_ms + backstop_ms(self, phase));
            broker_worker_hold(worker, exec->id, phase->phase_id, phase->attempt, true);
            (*adopted)++;
            self->stats.adopted++;
            syn_info("broker", "adopted execution=%s phase=%s attempt=%lld worker=%s%s",
                     exec->id, phase->phase_id, (long long)phase->attempt, worker->name,
                     waiting ? " (waiting for a slot)" : "");
        } else {
            broker_worker_hold(worker, ref.execution_id, ref.phase_id, ref.attempt, false);
            send_ref(self, worker, SYN_MSG_CANCEL, ref.execution_id, ref.phase_id, ref.attempt);
            (*stale)++;
        }
    }
}

/* A READY claiming a name another key holds: the claimant hears why, once (a
 * worker told `disconnect` says READY again, which would loop), and is ignored
 * from then on, so no phase ever goes to it. The holder keeps its name. */
static void refuse_claim(broker_engine_t *self, const void *identity, size_t identity_len,
                         const char *name, const char *peer_key, const broker_worker_t *holder)
{
    if (broker_workers_refused(self->workers, identity, identity_len))
        return;
    broker_workers_refuse(self->workers, identity, identity_len);
    char *reason = strdupf("worker name %s is held by another key", name);
    send_to_worker(self, identity, identity_len, SYN_MSG_DISCONNECT,
                   json_pack("{s:s}", "reason", reason ? reason : "worker name held"));
    free(reason);
    char cause[256];
    snprintf(cause, sizeof cause, "%.8s %s", peer_key, name);
    syn_ratelog_log(self->claims, cause, syn_mono_ms(), SYN_LOG_WARN, "broker",
                    "refused worker name=%s key=%.8s: the name is held by key=%.8s", name,
                    peer_key, holder->peer_key);
}

static void handle_ready(broker_engine_t *self, const void *identity, size_t identity_len,
                         const char *peer_key, const json_t *fields, int64_t now_ms)
{
    const char *name = json_string_value(json_object_get(fields, "worker"));
    const json_t *slots = json_object_get(fields, "slots");
    const json_t *providers = json_object_get(fields, "providers");
    const json_t *running = json_object_get(fields, "running");
    const json_t *waiting = json_object_get(fields, "waiting");
    if (!name || !json_is_integer(slots) || json_integer_value(slots) < 1 ||
        !json_is_array(running)) {
        syn_warn("broker", "ignoring a malformed READY");
        return;
    }
    const broker_worker_t *holder =
        broker_workers_name_holder(self->workers, name, peer_key, identity, identity_len);
    if (holder) {
        refuse_claim(self, identity, identity_len, name, peer_key, holder);
        return;
    }
    broker_workers_unrefuse(self->workers, identity, identity_len);
    /* A READY from a registered identity (the same process and socket, e.g. told
     * twice to re-register) keeps what it holds: an ASSIGN may be in flight that
     * its running list could not show yet. */
    broker_worker_t *worker = broker_workers_register(
        self->workers, identity, identity_len, name, json_integer_value(slots),
        json_is_array(providers) ? providers : NULL, now_ms);
    if (!worker || broker_worker_set_peer_key(worker, peer_key) < 0) {
        syn_error("broker", "out of memory registering worker %s", name);
        return;
    }
    const json_t *prefetch = json_object_get(fields, "prefetch");
    worker->prefetch = json_is_integer(prefetch) ? json_integer_value(prefetch) : 0;
    bool was_draining = worker->draining;
    worker->draining = json_is_true(json_object_get(fields, "draining"));
    if (worker->draining && !was_draining)
        syn_info("broker", "worker draining worker=%s held=%zu", worker->name,
                 worker->held_count);
    size_t adopted = 0, stale = 0;
    adopt_listed(self, worker, running, false, now_ms, &adopted, &stale);
    adopt_listed(self, worker, waiting, true, now_ms, &adopted, &stale);
    syn_info("broker",
             "worker ready worker=%s slots=%lld prefetch=%lld running=%zu waiting=%zu "
             "adopted=%zu stale=%zu",
             worker->name, (long long)worker->slots, (long long)worker->prefetch,
             json_array_size(running), json_array_size(waiting), adopted, stale);
}

/* A tool the agent used: one PhaseToolCall event (bounded per attempt), after the
 * text the agent wrote before it. */
static void tool_event(broker_engine_t *self, broker_execution_t *exec, broker_phase_t *phase,
                       const json_t *fields, int64_t now_ms)
{
    if (phase->tool_events >= BROKER_TOOL_EVENTS_MAX)
        return;
    phase->tool_events++;
    stream_flush(self, exec, phase, now_ms, true);
    const char *name = json_string_value(json_object_get(fields, "data"));
    const json_t *detail = json_object_get(fields, "detail");
    json_t *data = phase_event(phase);
    size_t len = name ? syn_utf8_cut(name, strlen(name), BROKER_USAGE_NAME_MAX) : 0;
    json_object_set_new(data, "name", json_stringn(name ? name : "", len));
    char *text = json_is_object(detail) ? syn_json_text(detail) : NULL;
    bool fits = text && strlen(text) <= TOOL_DETAIL_MAX;
    json_object_set_new(data, "detail",
                        fits ? json_deep_copy(detail)
                             : json_pack("{s:b}", "truncated", text != NULL));
    free(text);
    emit(self, exec, "PhaseToolCall", data);
}

static void handle_progress(broker_engine_t *self, broker_worker_t *worker,
                            const json_t *fields, int64_t now_ms)
{
    ref_t ref;
    if (!read_ref(fields, &ref))
        return;
    broker_execution_t *exec = NULL;
    broker_phase_t *phase = current_attempt(self, ref.execution_id, ref.phase_id, ref.attempt,
                                            &exec);
    if (phase && !may_take_over(self, phase, worker)) {
        refuse_take_over(self, exec, phase, worker, "progress");
        return;
    }
    if (phase) {
        if (!phase->worker_key) {
            bind_worker(phase, worker, now_ms + backstop_ms(self, phase));
            broker_worker_hold(worker, exec->id, phase->phase_id, phase->attempt, true);
        }
        const char *kind = json_string_value(json_object_get(fields, "kind"));
        /* The time limit runs from the agent's start, which for an attempt that
         * waited for a slot is now. */
        if (kind && strcmp(kind, "started") == 0)
            phase->deadline_ms = now_ms + backstop_ms(self, phase);
        else if (kind && strcmp(kind, "output") == 0)
            stream_append(self, exec, phase, json_string_value(json_object_get(fields, "data")),
                          now_ms);
        else if (kind && strcmp(kind, "tool") == 0)
            tool_event(self, exec, phase, fields, now_ms);
        return;
    }
    /* Someone else's attempt now: ask the worker to stop wasting a slot on it. */
    broker_held_t *held = broker_worker_find(worker, ref.execution_id, ref.phase_id, ref.attempt);
    if (!held) {
        broker_worker_hold(worker, ref.execution_id, ref.phase_id, ref.attempt, false);
        send_ref(self, worker, SYN_MSG_CANCEL, ref.execution_id, ref.phase_id, ref.attempt);
    } else if (held->current) {
        held->current = false;
        send_ref(self, worker, SYN_MSG_CANCEL, ref.execution_id, ref.phase_id, ref.attempt);
    }
    self->stats.stale++;
}

/* Turns a failed result into the reason users read in the execution's error. */
static char *failure_reason(const json_t *fields)
{
    const char *error = json_string_value(json_object_get(fields, "error"));
    const json_t *exit_code = json_object_get(fields, "exit_code");
    if (error && *error)
        return strdup(error);
    if (json_is_integer(exit_code))
        return strdupf("agent exited with code %lld", (long long)json_integer_value(exit_code));
    return strdup("agent failed without giving a reason");
}

/* Workers word their own time limit "timed out after N s" (worker/provider.c):
 * such an attempt is recorded as a timeout rather than a plain failure. */
static bool is_timeout(const char *reason)
{
    return strncmp(reason, "timed out", 9) == 0;
}

static void handle_result(broker_engine_t *self, broker_worker_t *worker, const json_t *fields,
                          int64_t now_ms)
{
    ref_t ref;
    if (!read_ref(fields, &ref))
        return;
    /* Acknowledged whatever happens next: a stale or repeated result is a no-op,
     * and the worker may forget it once the ack (sent after commit) arrives. */
    send_ref(self, worker, SYN_MSG_RESULT_ACK, ref.execution_id, ref.phase_id, ref.attempt);
    broker_worker_release(worker, ref.execution_id, ref.phase_id, ref.attempt);
    broker_execution_t *exec = NULL;
    broker_phase_t *phase = current_attempt(self, ref.execution_id, ref.phase_id, ref.attempt,
                                            &exec);
    if (phase && !may_take_over(self, phase, worker)) {
        refuse_take_over(self, exec, phase, worker, "result");
        return;
    }

    /* Tokens are spent whether or not the attempt still counts: its usage is
     * recorded once (a repeated RESULT adds nothing). */
    broker_usage_t usage;
    if (broker_usage_parse(json_object_get(fields, "usage"), &usage) &&
        broker_store_usage_record(self->store, ref.execution_id, ref.phase_id, ref.attempt,
                                  &usage) < 0)
        syn_error("broker", "cannot record usage execution=%s phase=%s attempt=%lld",
                  ref.execution_id, ref.phase_id, (long long)ref.attempt);

    if (!phase) {
        self->stats.stale++;
        syn_info("broker", "dropped stale result execution=%s phase=%s attempt=%lld worker=%s",
                 ref.execution_id, ref.phase_id, (long long)ref.attempt, worker->name);
        broker_usage_clear(&usage);
        return;
    }
    if (phase->worker_key && strcmp(phase->worker_key, worker->key) != 0)
        release_holder(self, exec, phase);

    const char *status = json_string_value(json_object_get(fields, "status"));
    const char *output = json_string_value(json_object_get(fields, "output"));
    const json_t *code = json_object_get(fields, "exit_code");
    int64_t exit_code = json_is_integer(code) ? (int64_t)json_integer_value(code) : 0;
    const int64_t *exit_p = json_is_integer(code) ? &exit_code : NULL;

    if (status && strcmp(status, "completed") == 0) {
        complete_phase(self, exec, phase, output, exit_p, &usage);
    } else if (status && strcmp(status, "refused") == 0) {
        attempt_refused(self, exec, phase, worker,
                        json_string_value(json_object_get(fields, "error")), now_ms);
    } else if (status && strcmp(status, "cancelled") == 0) {
        char *why = strdupf("worker %s gave the attempt back (cancelled)", worker->name);
        attempt_lost(self, exec, phase, BROKER_ATTEMPT_CANCELLED, why ? why : "cancelled",
                     now_ms);
        free(why);
    } else {
        char *reason = failure_reason(fields);
        const char *why = reason ? reason : "agent failed";
        if (output && *output) {
            char *kept = bounded_output(output);
            if (kept) {
                free(phase->output);
                phase->output = kept;
                broker_store_phase_set_output(self->store, exec, phase);
            }
        }
        attempt_failed(self, exec, phase,
                       is_timeout(why) ? BROKER_ATTEMPT_TIMEOUT : BROKER_ATTEMPT_FAILED, exit_p,
                       why, &usage, now_ms);
        free(reason);
    }
    broker_usage_clear(&usage);
}

void broker_engine_on_worker(broker_engine_t *self, const void *identity, size_t identity_len,
                             const syn_msg_t *msg, int64_t now_ms)
{
    broker_engine_on_worker_from(self, identity, identity_len, NULL, msg, now_ms);
}

void broker_engine_on_worker_from(broker_engine_t *self, const void *identity,
                                  size_t identity_len, const char *peer_key,
                                  const syn_msg_t *msg, int64_t now_ms)
{
    syn_msg_type_t type = syn_msg_type(msg);
    const json_t *fields = syn_msg_fields(msg);
    broker_worker_t *worker = broker_workers_lookup(self->workers, identity, identity_len);

    /* A refused claimant is heard again only through a READY (its name may be
     * free by then). */
    if (type != SYN_MSG_READY && broker_workers_refused(self->workers, identity, identity_len))
        return;
    if (type == SYN_MSG_READY) {
        handle_ready(self, identity, identity_len, peer_key, fields, now_ms);
    } else if (!worker) {
        /* Not registered (e.g. the broker restarted): it must say READY first. */
        if (type != SYN_MSG_DISCONNECT)
            send_to_worker(self, identity, identity_len, SYN_MSG_DISCONNECT, json_object());
    } else {
        worker->last_seen_ms = now_ms;
        switch (type) {
        case SYN_MSG_HEARTBEAT:
            break;
        case SYN_MSG_PROGRESS:
            handle_progress(self, worker, fields, now_ms);
            break;
        case SYN_MSG_RESULT:
            handle_result(self, worker, fields, now_ms);
            break;
        case SYN_MSG_DISCONNECT: {
            char *reason = strdupf("worker %s disconnected", worker->name);
            syn_info("broker", "worker left worker=%s held=%zu", worker->name,
                     worker->held_count);
            lose_worker_attempts(self, worker, reason ? reason : "worker disconnected", now_ms);
            free(reason);
            broker_workers_remove(self->workers, worker);
            break;
        }
        default:
            syn_warn("broker", "unexpected %s from worker=%s", syn_msg_type_name(type),
                     worker->name);
        }
    }
    bury(self);
}

void broker_engine_undeliverable(broker_engine_t *self, const void *identity,
                                 size_t identity_len, const syn_msg_t *msg, int error,
                                 int64_t now_ms)
{
    broker_worker_t *worker = broker_workers_lookup(self->workers, identity, identity_len);
    const char *name = worker ? worker->name : "(unregistered)";
    ref_t ref;
    if (syn_msg_type(msg) == SYN_MSG_ASSIGN && read_ref(syn_msg_fields(msg), &ref)) {
        if (worker)
            broker_worker_release(worker, ref.execution_id, ref.phase_id, ref.attempt);
        broker_execution_t *exec = NULL;
        broker_phase_t *phase =
            current_attempt(self, ref.execution_id, ref.phase_id, ref.attempt, &exec);
        if (phase) {
            char *why = strdupf("the assignment could not be sent to worker %s: %s", name,
                                strerror(error));
            const char *reason = why ? why : "not delivered";
            if (error == EINVAL || error == EMSGSIZE) {
                /* It would fail the same way on any worker. */
                finish_attempt(self, exec, phase, BROKER_ATTEMPT_FAILED, NULL, reason);
                fail_phase(self, exec, phase, reason, NULL);
            } else {
                finish_attempt(self, exec, phase, BROKER_ATTEMPT_LOST, NULL, reason);
                phase->undelivered++;
                requeue(self, exec, phase, "undelivered", reason, 0, now_ms, NULL);
            }
            free(why);
        }
    }
    if (worker && error == EHOSTUNREACH) {
        char *reason = strdupf("the connection to worker %s is gone", worker->name);
        syn_warn("broker", "worker gone worker=%s held=%zu", worker->name, worker->held_count);
        lose_worker_attempts(self, worker, reason ? reason : "worker gone", now_ms);
        free(reason);
        broker_workers_remove(self->workers, worker);
    }
    bury(self);
}

/* --- time ------------------------------------------------------------------ */

static void check_deadline(broker_engine_t *self, broker_execution_t *exec, int64_t now_ms)
{
    broker_phase_t *phase = broker_execution_active_phase(exec);
    if (!phase)
        return;
    if (phase->status == BROKER_PHASE_QUEUED) {
        if (phase->not_before_ms && now_ms >= phase->not_before_ms) {
            phase->not_before_ms = 0;
            enqueue(self, exec, true);
        }
        return;
    }
    if (phase->stream_len > 0)
        stream_flush(self, exec, phase, now_ms, false);
    if (!phase->deadline_ms || now_ms < phase->deadline_ms)
        return;
    if (!phase->worker_key) {
        char *why = strdupf("worker %s did not come back after a broker restart",
                            phase->worker_name ? phase->worker_name : "(unknown)");
        attempt_lost(self, exec, phase, BROKER_ATTEMPT_LOST, why ? why : "worker gone", now_ms);
        free(why);
        return;
    }
    cancel_holder(self, exec, phase);
    char *why = strdupf("no result within the timeout of %lld s (worker %s)",
                        (long long)phase->timeout_seconds,
                        phase->worker_name ? phase->worker_name : "?");
    attempt_failed(self, exec, phase, BROKER_ATTEMPT_TIMEOUT, NULL, why ? why : "timeout", NULL,
                   now_ms);
    free(why);
}

void broker_engine_tick(broker_engine_t *self, int64_t now_ms)
{
    broker_worker_t *dead;
    while ((dead = broker_workers_expired(self->workers, now_ms, window_ms(self)))) {
        char *reason = strdupf("worker %s stopped responding (silent for more than %lld ms)",
                               dead->name, (long long)window_ms(self));
        syn_warn("broker", "worker lost worker=%s held=%zu", dead->name, dead->held_count);
        lose_worker_attempts(self, dead, reason ? reason : "worker lost", now_ms);
        free(reason);
        broker_workers_remove(self->workers, dead);
    }
    for (broker_execution_t *exec = zlistx_first(self->by_creation); exec;
         exec = zlistx_next(self->by_creation))
        check_deadline(self, exec, now_ms);
    bury(self);
}

void broker_engine_heartbeat(broker_engine_t *self)
{
    for (size_t i = 0; i < broker_workers_count(self->workers); i++) {
        broker_worker_t *w = broker_workers_at(self->workers, i);
        send_to_worker(self, w->identity, w->identity_len, SYN_MSG_HEARTBEAT, json_object());
    }
}
