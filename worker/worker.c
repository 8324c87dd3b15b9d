/* worker: the worker's loop — the messages to and from the broker (READY, ASSIGN,
 * CANCEL, INJECT, RESULT and its acknowledgement), heartbeats, drain — around the
 * attempts it holds (attempts.c), its DEALER (broker_conn.c) and one zmq_poll over
 * the socket, a deadline timer and the agents' descriptors (poll_set.c). */
#include "worker/worker.h"
#include "worker/worker_internal.h"
#include "worker/artifacts.h"
#include "common/utf8.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/timerfd.h>
#include <unistd.h>
#include <zmq.h>

#include "common/clock.h"
#include "common/log.h"
#include "common/ratelog.h"
#include "proto/msg.h"

/* Failed sends are logged once per cause this often. */
#define SEND_LOG_INTERVAL_MS 10000
/* Output chunks: at most one PROGRESS per attempt this often, this big. */
#define PROGRESS_EVERY_MS 100
#define PROGRESS_MAX_BYTES (64u * 1024u)
/* Cost reports: at most one per attempt this often (but the crossing of a budget). */
#define COST_EVERY_MS 500
/* The loop wakes at least this often, so a stop request is seen promptly even
 * when its signal came between the check and the poll. */
#define MAX_SLEEP_MS 100
/* After a drain, how long to wait for the last results to be acknowledged. */
#define ACK_WAIT_MS 2000
/* Messages read per loop turn, so a flood cannot starve the running attempts. */
#define MAX_RECV_PER_TURN 256
/* Operator messages kept for an attempt that waits for a slot, at most. */
#define MAX_KEPT_INJECTS 32
/* No phase runs longer than this (keeps deadline arithmetic far from overflow). */
#define MAX_TIMEOUT_MS (30LL * 24 * 3600 * 1000)

#define RECHECK_FIRST_MS 1000
#define RECHECK_MAX_MS 60000

/* --- sending ------------------------------------------------------------ */

/* Sends without blocking; a failure is logged and counted, never silent. */
int worker_send_msg(worker_t *self, const syn_msg_t *msg, int64_t now)
{
    if (!self->conn)
        return -1;
    if (syn_msg_send(self->conn, NULL, 0, msg) != 0) {
        /* While the broker cannot be reached (or refuses our key) every
         * heartbeat fails: a line per cause per interval says so. */
        const char *why = strerror(errno);
        uint64_t held_back;
        self->send_failures++;
        if (syn_ratelog_allow(self->send_log, why, now, &held_back))
            syn_warn("worker", "cannot send %s: %s (failures=%" PRIu64 ", %" PRIu64
                     " such lines held back)", syn_msg_type_name(syn_msg_type(msg)), why,
                     self->send_failures, held_back);
        return -1;
    }
    self->last_send_ms = now;
    return 0;
}

/* Sends a message made here and frees it; fields is stolen. */
static int send_new(worker_t *self, syn_msg_type_t type, json_t *fields, int64_t now)
{
    if (!fields) {
        syn_error("worker", "cannot build a %s message (out of memory?)", syn_msg_type_name(type));
        return -1;
    }
    syn_msg_t *msg = syn_msg_new_with(type, fields);
    if (!msg)
        return -1;
    int rc = worker_send_msg(self, msg, now);
    syn_msg_destroy(&msg);
    return rc;
}

int worker_send(worker_t *self, syn_msg_type_t type, json_t *fields, int64_t now)
{
    return send_new(self, type, fields, now);
}

/* After a reconnect or the broker's "who are you?": what it may have lost is
 * sent again, the chunk in flight too (on the same socket, a broker that
 * restarted behind it never stored it). */
void worker_resend_results(worker_t *self, int64_t now)
{
    for (size_t i = 0; i < self->count; i++)
        if (self->attempts[i]->result) {
            self->attempts[i]->art_sent_conn = 0;
            worker_send_result(self, self->attempts[i], now);
        }
}

/* detail (stolen, may be NULL) goes along with a "tool" event. 0 when sent. */
static int send_progress(worker_t *self, const attempt_t *a, const char *kind, const char *data,
                         size_t len, json_t *detail, int64_t now)
{
    json_t *fields = worker_attempt_ref(a);
    if (fields) {
        json_object_set_new(fields, "kind", json_string(kind));
        json_object_set_new(fields, "data", json_stringn(data, len));
        if (detail)
            json_object_set(fields, "detail", detail);
    }
    json_decref(detail);
    return send_new(self, SYN_MSG_PROGRESS, fields, now);
}

/* A short single-line form of text for a log line (a stderr tail has newlines). */
static void one_line(const char *text, char *out, size_t outlen)
{
    size_t n = 0;
    for (; text[n] && n + 1 < outlen; n++)
        out[n] = (unsigned char)text[n] < 0x20 ? ' ' : text[n];
    out[n] = '\0';
    if (text[n] && outlen > 4)
        memcpy(out + outlen - 4, "...", 4);
}

/* A worker fault: no new work until the provider's check passes again. */
static void become_unhealthy(worker_t *self, const char *why, int64_t now)
{
    self->recheck_backoff_ms = self->recheck_backoff_ms == 0 ? RECHECK_FIRST_MS
                               : self->recheck_backoff_ms * 2 > RECHECK_MAX_MS
                                   ? RECHECK_MAX_MS
                                   : self->recheck_backoff_ms * 2;
    self->recheck_at = now + self->recheck_backoff_ms;
    if (self->unhealthy)
        return;
    self->unhealthy = strdup(why && *why ? why : "the agent could not be started");
    syn_warn("worker", "unhealthy: %s (checking again in %lld ms)",
             self->unhealthy ? self->unhealthy : "?", (long long)self->recheck_backoff_ms);
}

/* Runs the provider's check once the back-off is over: healthy again, it says
 * so with a READY; still failing, it waits twice as long. */
static void recheck_health(worker_t *self, int64_t now)
{
    if (!self->unhealthy || now < self->recheck_at)
        return;
    char why[256];
    if (worker_provider_check(self->provider, why, sizeof why) != 0) {
        become_unhealthy(self, why, now);
        syn_warn("worker", "still unhealthy: %s (checking again in %lld ms)", why,
                 (long long)self->recheck_backoff_ms);
        return;
    }
    syn_info("worker", "healthy again: the %s check passes (was: %s)",
             worker_provider_name(self->provider), self->unhealthy);
    free(self->unhealthy);
    self->unhealthy = NULL;
    if (self->conn)
        worker_send_ready(self, now);
}

/* Records the final result of a (kept until acknowledged) and sends it;
 * usage (stolen, may be NULL) is the attempt's accounting. */
static void settle(worker_t *self, attempt_t *a, const char *status, const char *output,
                   const char *error, bool has_exit_code, int exit_code, json_t *usage,
                   json_t *warnings, int64_t now)
{
    json_t *fields = worker_attempt_ref(a);
    if (fields && warnings)
        json_object_set(fields, "warnings", warnings);
    json_decref(warnings);
    if (fields) {
        json_object_set_new(fields, "status", json_string(status));
        json_object_set_new(fields, "output", json_string(output ? output : ""));
        json_object_set_new(fields, "error", error ? json_string(error) : json_null());
        json_object_set_new(fields, "exit_code",
                            has_exit_code ? json_integer(exit_code) : json_null());
        if (usage)
            json_object_set(fields, "usage", usage);
    }
    /* With artifacts, the result waits for their hashes (uploading.c). */
    if (fields && a->artifacts)
        a->pending = fields;
    else
        a->result = fields ? syn_msg_new_with(SYN_MSG_RESULT, fields) : NULL;
    a->result_at_us = syn_mono_us();
    /* Sent before it is logged: the broker is waiting for it, the log is not. */
    if (a->result)
        worker_send_result(self, a, now);
    if (strcmp(status, "fault") == 0)
        become_unhealthy(self, error, now);
    else if (strcmp(status, "completed") == 0)
        self->recheck_backoff_ms = 0; /* agents start again: faults are news */
    /* The worker's own share of the phase, from its start to the result sent:
     * what a phase's length is measured against (W2). */
    char took[48] = "";
    if (a->started_us > 0)
        snprintf(took, sizeof took, " took_ms=%.3f",
                 (double)(syn_mono_us() - a->started_us) / 1e3);
    char code[16] = "none";
    if (has_exit_code)
        snprintf(code, sizeof code, "%d", exit_code);
    char reason[256] = "";
    if (error)
        one_line(error, reason, sizeof reason);
    char tokens[160] = "";
    if (usage)
        snprintf(tokens, sizeof tokens, " tokens=%" JSON_INTEGER_FORMAT " cost_usd=%.6f",
                 json_integer_value(json_object_get(usage, "total_tokens")),
                 json_number_value(json_object_get(usage, "cost_usd")));
    json_decref(usage);
    syn_info("worker",
             "result execution=%s phase=%s attempt=%" PRIu64 " status=%s exit_code=%s%s%s%s%s",
             a->execution_id, a->phase_id, a->attempt, status, code, took, tokens,
             error ? " error=" : "", reason);
    if (!a->result && !a->pending)
        syn_error("worker", "cannot build the result execution=%s phase=%s (out of memory?)",
                  a->execution_id, a->phase_id);
}

/* Moves a finished run's outcome into a result and frees the run (and with it
 * any process it had). */
static void finish_run(worker_t *self, attempt_t *a, int64_t now)
{
    int code = 0;
    bool has_code = worker_run_exit_code(a->run, &code);
    json_t *warnings = NULL;
    const char *workspace = worker_run_workspace(a->run);
    if (worker_run_status(a->run) == WORKER_RUN_COMPLETED && workspace) {
        char err[512];
        a->artifacts = worker_artifacts_collect(workspace, &warnings, err, sizeof err);
        if (err[0] && (warnings || (warnings = json_array())))
            json_array_append_new(warnings, json_string(err));
        else if (!err[0])
            worker_artifacts_check_declared(a->artifacts,
                                            worker_run_job(a->run)->output_artifacts, &warnings);
    }
    if (a->started_us > 0)
        worker_prefetch_took(&self->adapt, syn_mono_us() - a->started_us);
    settle(self, a, worker_run_status_name(worker_run_status(a->run)),
           worker_run_output(a->run, NULL), worker_run_error(a->run), has_code, code,
           worker_run_usage_json(a->run), warnings, now);
    worker_run_destroy(&a->run);
    a->nfds = 0;
    self->running--;
}

/* Sends the tool events the run queued, in order. */
static void send_events(worker_t *self, attempt_t *a, int64_t now)
{
    json_t *event;
    while ((event = worker_run_take_event(a->run)) != NULL) {
        json_t *data = json_object_get(event, "data");
        send_progress(self, a, json_string_value(json_object_get(event, "kind")),
                      json_string_value(data), json_string_length(data),
                      json_incref(json_object_get(event, "detail")), now);
        json_decref(event);
    }
}

/* Tells the broker what the attempt has cost so far when that grew: at most one
 * report per COST_EVERY_MS, except the one that crossed the budget, which goes at
 * once, before the result (the broker fails the execution on it: budget_usd.h). */
static void report_cost(worker_t *self, attempt_t *a, int64_t now)
{
    double cost = worker_run_cost(a->run);
    if (!(cost > a->cost_sent) || !self->conn)
        return;
    if (!worker_run_over_budget(a->run) && now - a->cost_sent_ms < COST_EVERY_MS) {
        a->cost_unsent = true;
        return;
    }
    json_t *fields = worker_attempt_ref(a);
    if (fields) {
        json_object_set_new(fields, "kind", json_string("cost"));
        json_object_set_new(fields, "data", json_string(""));
        json_object_set_new(fields, "cost_usd", json_real(cost));
    }
    send_new(self, SYN_MSG_PROGRESS, fields, now);
    a->cost_sent = cost;
    a->cost_sent_ms = now;
    a->cost_unsent = false;
}

/* Sends the next chunk of new output, at most one per PROGRESS_EVERY_MS. */
static void stream_output(worker_t *self, attempt_t *a, int64_t now)
{
    size_t len = 0;
    const char *out = worker_run_output(a->run, &len);
    if (len <= a->streamed || !self->conn)
        return;
    if (a->output_sent_ms >= 0 && now - a->output_sent_ms < PROGRESS_EVERY_MS)
        return;
    size_t n = syn_utf8_cut(out + a->streamed, len - a->streamed, PROGRESS_MAX_BYTES);
    send_progress(self, a, "output", out + a->streamed, n, NULL, now);
    a->streamed += n;
    a->output_sent_ms = now;
}

/* --- handling broker messages ------------------------------------------- */

static const char *field_str(const syn_msg_t *msg, const char *name)
{
    return json_string_value(json_object_get(syn_msg_fields(msg), name));
}

static uint64_t field_uint(const syn_msg_t *msg, const char *name)
{
    json_int_t v = json_integer_value(json_object_get(syn_msg_fields(msg), name));
    return v > 0 ? (uint64_t)v : 0;
}

/* Answers an ASSIGN that cannot run here with a "refused" result, kept until
 * acknowledged like any other: the broker gives the phase to another worker
 * without counting it as an attempt, since the agent never ran. */
static void refuse(worker_t *self, const syn_msg_t *msg, const char *reason, int64_t now)
{
    attempt_t *a = worker_attempt_new(field_str(msg, "execution_id"), field_str(msg, "workflow_id"),
                               field_str(msg, "phase_id"), field_uint(msg, "attempt"));
    if (!a || worker_attempt_add(self, a) != 0) {
        worker_attempt_destroy(&a);
        return;
    }
    syn_warn("worker", "refused execution=%s phase=%s attempt=%" PRIu64 ": %s", a->execution_id,
             a->phase_id, a->attempt, reason);
    settle(self, a, "refused", "", reason, false, 0, NULL, NULL, now);
}

/* Hands an operator's message to a's running agent; logged either way (the
 * broker has no answer to wait for). */
static void inject_into(attempt_t *a, const char *role, const char *message)
{
    char err[256];
    if (worker_run_inject(a->run, role, message, err, sizeof err) != 0) {
        syn_warn("worker", "message for execution=%s phase=%s attempt=%" PRIu64 " dropped: %s",
                 a->execution_id, a->phase_id, a->attempt, err);
        return;
    }
    syn_info("worker", "injected a %s message into execution=%s phase=%s attempt=%" PRIu64, role,
             a->execution_id, a->phase_id, a->attempt);
}

/* An attempt waiting for a slot keeps the message (bounded) for its agent,
 * which gets it right after it starts. */
static void keep_inject(attempt_t *a, const char *role, const char *message)
{
    if (!a->injects)
        a->injects = json_array();
    if (json_array_size(a->injects) >= MAX_KEPT_INJECTS ||
        json_array_append_new(a->injects, json_pack("{s:s, s:s}", "role", role, "message",
                                                    message)) != 0) {
        syn_warn("worker", "message for execution=%s phase=%s attempt=%" PRIu64
                 " dropped: too many kept while it waits", a->execution_id, a->phase_id,
                 a->attempt);
        return;
    }
    syn_info("worker", "kept a %s message for execution=%s phase=%s attempt=%" PRIu64
             " until it starts", role, a->execution_id, a->phase_id, a->attempt);
}

/* Starts a on a free slot with what msg assigns; started_us is the phase's
 * start, from which its time limit counts. */
static void start_attempt(worker_t *self, attempt_t *a, const syn_msg_t *msg, int64_t started_us)
{
    int64_t now = started_us / 1000;
    uint64_t timeout = field_uint(msg, "timeout_ms");
    worker_job_t job = {
        .execution_id = a->execution_id,
        .workflow_id = a->workflow_id,
        .phase_id = a->phase_id,
        .attempt = a->attempt,
        .prompt = field_str(msg, "prompt"),
        .model = field_str(msg, "model"),
        .timeout_ms = timeout > (uint64_t)MAX_TIMEOUT_MS ? MAX_TIMEOUT_MS : (int64_t)timeout,
        .cwd = NULL,
        .inputs = json_object_get(syn_msg_fields(msg), "inputs"),
        .repos = json_object_get(syn_msg_fields(msg), "repos"),
        .allowed_tools = json_object_get(syn_msg_fields(msg), "allowed_tools"),
        .max_tokens = field_uint(msg, "max_tokens"),
        .max_budget_usd = json_number_value(json_object_get(syn_msg_fields(msg), "max_budget_usd")),
        .spent_usd = json_number_value(json_object_get(syn_msg_fields(msg), "spent_usd")),
        .artifacts = json_object_get(syn_msg_fields(msg), "artifacts"),
        .input_artifacts = json_object_get(syn_msg_fields(msg), "input_artifacts"),
        .output_artifacts = json_object_get(syn_msg_fields(msg), "output_artifacts"),
        .started_us = started_us,
    };
    /* The protocol checked the name; a broker that sends none means the default. */
    if (worker_network_parse(field_str(msg, "network"), &job.network) != 0)
        job.network = WORKER_NETWORK_PROXY;
    a->started_us = started_us;
    syn_info("worker", "assigned execution=%s workflow=%s phase=%s attempt=%" PRIu64
             " timeout_ms=%" PRId64 " network=%s running=%d/%d", a->execution_id,
             a->workflow_id, a->phase_id, a->attempt, job.timeout_ms,
             worker_network_name(job.network), self->running + 1, self->slots);
    char reason[256];
    a->run = worker_run_start(self->provider, &job, reason, sizeof reason);
    if (!a->run) {
        /* Nothing of the agent ran (no workspace, no process): this worker's fault. */
        settle(self, a, "fault", "", reason, false, 0, NULL, NULL, now);
        return;
    }
    self->running++;
    a->started_unsent = send_progress(self, a, "started", "", 0, NULL, now) != 0;
    json_t *kept = a->injects;
    a->injects = NULL;
    size_t i;
    json_t *m;
    json_array_foreach(kept, i, m)
        inject_into(a, json_string_value(json_object_get(m, "role")),
                    json_string_value(json_object_get(m, "message")));
    json_decref(kept);
}

/* Starts waiting attempts, oldest first, while slots are free. now_us is when
 * the loop turn began, after the runs that freed the slots had ended: every
 * attempt started in one turn gets that start, so a slot freed early in the
 * turn is not left idle while the turn sends and logs the results. */
static void start_waiting(worker_t *self, int64_t now_us)
{
    /* Only while the broker is surely there: once it has gone quiet it may
     * count this worker as lost and give the waiting phases to another (it
     * waits liveness heartbeats for that; this waits fewer), and after a
     * reconnect it must first answer the READY that lists them. */
    if (!self->conn || !self->registered ||
        now_us / 1000 - self->last_recv_ms >= 2 * self->heartbeat_ms)
        return;
    for (size_t i = 0; i < self->count && self->waiting > 0 && self->running < self->slots;
         i++) {
        attempt_t *a = self->attempts[i];
        if (!a->assign)
            continue;
        syn_msg_t *msg = a->assign;
        a->assign = NULL;
        self->waiting--;
        start_attempt(self, a, msg, now_us);
        syn_msg_destroy(&msg);
    }
}

/* Hands waiting attempts back, the newest first, until keep wait (refused: the
 * broker gives them to another worker without counting an attempt, since the
 * agent never ran). */
static void give_back_waiting(worker_t *self, const char *reason, int keep, int64_t now)
{
    for (size_t i = self->count; i-- > 0 && self->waiting > keep;) {
        attempt_t *a = self->attempts[i];
        if (!a->assign)
            continue;
        syn_msg_destroy(&a->assign);
        self->waiting--;
        settle(self, a, "refused", "", reason, false, 0, NULL, NULL, now);
    }
}

/* now_us is when the loop turn that read the message began: the attempt's
 * start, the same for every ASSIGN of one burst, so their phases end together
 * too. An ASSIGN that waits for a slot is kept (taken from *msg_p). */
static void handle_assign(worker_t *self, syn_msg_t **msg_p, int64_t now_us)
{
    const syn_msg_t *msg = *msg_p;
    int64_t now = now_us / 1000;
    const char *execution_id = field_str(msg, "execution_id");
    const char *phase_id = field_str(msg, "phase_id");
    uint64_t attempt = field_uint(msg, "attempt");
    attempt_t *known = worker_attempt_find(self, execution_id, phase_id, attempt, NULL);
    if (known) {
        /* A repeat (the broker resent it): the attempt runs, waits or has its result. */
        if (known->result)
            worker_send_result(self, known, now);
        return;
    }
    const char *wanted = field_str(msg, "provider");
    const char *mine = worker_provider_name(self->provider);
    char reason[256];
    if (self->draining) {
        refuse(self, msg, "worker is shutting down", now);
        return;
    }
    if (wanted && strcmp(wanted, mine) != 0) {
        snprintf(reason, sizeof reason, "provider %s is not available on worker %s (it runs %s)",
                 wanted, self->name, mine);
        refuse(self, msg, reason, now);
        return;
    }
    bool slot_free = self->running < self->slots;
    if (!slot_free && self->waiting >= self->prefetch) {
        refuse(self, msg, "no free slot", now);
        return;
    }
    attempt_t *a = worker_attempt_new(execution_id, field_str(msg, "workflow_id"), phase_id, attempt);
    if (!a || worker_attempt_add(self, a) != 0) {
        worker_attempt_destroy(&a);
        refuse(self, msg, "worker out of memory", now);
        return;
    }
    if (slot_free) {
        start_attempt(self, a, msg, now_us);
        return;
    }
    a->assign = *msg_p;
    *msg_p = NULL;
    self->waiting++;
    syn_info("worker", "waiting for a slot execution=%s phase=%s attempt=%" PRIu64
             " waiting=%d/%d", a->execution_id, a->phase_id, a->attempt, self->waiting,
             self->prefetch);
}

static void handle_cancel(worker_t *self, const syn_msg_t *msg, int64_t now)
{
    const char *execution_id = field_str(msg, "execution_id");
    const char *phase_id = field_str(msg, "phase_id");
    uint64_t attempt = field_uint(msg, "attempt");
    attempt_t *a = worker_attempt_find(self, execution_id, phase_id, attempt, NULL);
    if (a && a->run) {
        syn_info("worker", "cancelling execution=%s phase=%s attempt=%" PRIu64, execution_id,
                 phase_id, attempt);
        worker_run_cancel(a->run, now);
    } else if (a && a->assign) {
        syn_msg_destroy(&a->assign);
        self->waiting--;
        settle(self, a, "cancelled", "", "cancelled before it started", false, 0, NULL, NULL, now);
    } else if (a && a->result)
        worker_send_result(self, a, now); /* already over: the broker may have missed it */
    else if (a && a->pending)
        ; /* over, its result follows once its artifacts are hashed */
    else {
        /* Not here (any more): say so, so the broker can settle the attempt. */
        a = worker_attempt_new(execution_id, NULL, phase_id, attempt);
        if (!a || worker_attempt_add(self, a) != 0) {
            worker_attempt_destroy(&a);
            return;
        }
        settle(self, a, "cancelled", "", "not running on this worker", false, 0, NULL, NULL, now);
    }
}

/* An operator's message for a running attempt goes to its agent; one that
 * cannot take it is logged (the broker has no answer to wait for). */
static void handle_inject(worker_t *self, const syn_msg_t *msg)
{
    const char *execution_id = field_str(msg, "execution_id");
    const char *phase_id = field_str(msg, "phase_id");
    uint64_t attempt = field_uint(msg, "attempt");
    attempt_t *a = worker_attempt_find(self, execution_id, phase_id, attempt, NULL);
    if (a && a->assign)
        keep_inject(a, field_str(msg, "role"), field_str(msg, "message"));
    else if (a && a->run)
        inject_into(a, field_str(msg, "role"), field_str(msg, "message"));
    else
        syn_warn("worker", "message for execution=%s phase=%s attempt=%" PRIu64
                 " dropped: not running here", execution_id, phase_id, attempt);
}

static void handle_ack(worker_t *self, const syn_msg_t *msg, int64_t now_us)
{
    size_t index;
    attempt_t *a = worker_attempt_find(self, field_str(msg, "execution_id"), field_str(msg, "phase_id"),
                                field_uint(msg, "attempt"), &index);
    if (a && a->result) {
        if (!a->artifacts) /* chunks went first: not one round trip */
            worker_prefetch_trip(&self->adapt, now_us - a->result_at_us);
        syn_debug("worker", "acknowledged execution=%s phase=%s attempt=%" PRIu64,
                  a->execution_id, a->phase_id, a->attempt);
        worker_attempt_remove(self, index);
    }
}

/* A DISCONNECT that says why the broker will not have this worker. */
static bool is_refusal(const syn_msg_t *msg)
{
    const char *reason = syn_msg_type(msg) == SYN_MSG_DISCONNECT ? field_str(msg, "reason") : NULL;
    return reason && *reason;
}

/* May take the message (*msg_p set to NULL) to keep it. */
static void handle_message(worker_t *self, syn_msg_t **msg_p, int64_t now_us)
{
    const syn_msg_t *msg = *msg_p;
    int64_t now = now_us / 1000;
    if (syn_msg_type(msg) != SYN_MSG_DISCONNECT)
        self->registered = true;
    switch (syn_msg_type(msg)) {
    case SYN_MSG_ASSIGN:
        handle_assign(self, msg_p, now_us);
        break;
    case SYN_MSG_CANCEL:
        handle_cancel(self, msg, now);
        break;
    case SYN_MSG_RESULT_ACK:
        handle_ack(self, msg, now_us);
        break;
    case SYN_MSG_INJECT:
        handle_inject(self, msg);
        break;
    case SYN_MSG_ARTIFACT_ACK:
        worker_uploading_ack(self, msg, now);
        break;
    case SYN_MSG_ARTIFACT_DATA:
        worker_pulling_data(self, msg, now);
        break;
    case SYN_MSG_HEARTBEAT:
        break;
    case SYN_MSG_DISCONNECT:
        if (is_refusal(msg)) {
            /* Our name is held by another key, say: an operator's to fix, so loud,
             * and asked again only after the back-off (a READY at once would be
             * refused at once, again and again). */
            int64_t wait = self->backoff_ms;
            syn_error("worker", "broker refused this worker: %s (trying again in %" PRId64
                      " ms)", field_str(msg, "reason"), wait);
            worker_conn_close(self, 0);
            worker_conn_back_off(self, now);
            break;
        }
        /* The broker does not know us (it restarted, or took us for dead). It
         * answers each message of ours so, and the heartbeats queued while it
         * was down arrive together: the READY sent for the first answers them
         * all (a thousand workers each saying READY three times was most of a
         * restarted broker's work), unless a heartbeat's time passed without a
         * word from it (that READY may be lost). */
        if (!self->registered && self->ready_sent_ms >= 0 &&
            now - self->ready_sent_ms < self->heartbeat_ms)
            break;
        syn_info("worker", "broker asked to re-register");
        worker_send_ready(self, now);
        worker_resend_results(self, now);
        break;
    default:
        syn_warn("worker", "ignoring unexpected %s from the broker",
                 syn_msg_type_name(syn_msg_type(msg)));
        break;
    }
}

static void receive(worker_t *self, int64_t now_us)
{
    int64_t now = now_us / 1000;
    for (int i = 0; i < MAX_RECV_PER_TURN && self->conn; i++) {
        syn_msg_t *msg = NULL;
        char err[256];
        int rc = syn_msg_recv(self->conn, &msg, NULL, NULL, err, sizeof err);
        if (rc == -1)
            return;
        /* Any traffic, even a message we reject, shows the broker is alive; a
         * refusal keeps the back-off growing. */
        worker_conn_heard(self, now);
        if (rc == -2 || !is_refusal(msg))
            self->backoff_ms = BACKOFF_FIRST_MS;
        if (rc == -2) {
            syn_warn("worker", "invalid message from the broker: %s", err);
            continue;
        }
        handle_message(self, &msg, now_us);
        syn_msg_destroy(&msg);
    }
}

/* --- the loop ----------------------------------------------------------- */

worker_t *worker_new(const worker_config_t *config)
{
    worker_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->timer_fd = -1;
    self->timer_armed_us = -1;
    char err[256];
    self->brokers = syn_endpoint_list_new("--broker", config->broker, err, sizeof err);
    if (!self->brokers)
        syn_error("worker", "%s", err);
    self->heard_index = -1;
    self->name = strdup(config->name);
    if (!self->brokers || !self->name) {
        worker_destroy(&self);
        return NULL;
    }
    self->slots = config->slots;
    worker_prefetch_init(&self->adapt, config->prefetch);
    self->prefetch = config->prefetch > 0 ? config->prefetch : 0;
    self->heartbeat_ms = config->heartbeat_ms > 0 ? config->heartbeat_ms : 1000;
    if (config->unhealthy)
        become_unhealthy(self, config->unhealthy, syn_mono_ms());
    self->liveness = config->liveness > 0 ? config->liveness : 3;
    self->drain_ms = config->drain_ms;
    self->provider = config->provider;
    self->curve = config->curve;
    self->backoff_ms = BACKOFF_FIRST_MS;
    self->reconnect_at = 0;
    self->ready_sent_ms = -1;
    self->leave_deadline = -1;
    /* libzmq's defaults (one I/O thread, high-water marks of 1000) are what the
     * worker needs; its threads start with the first socket. */
    self->ctx = zmq_ctx_new();
    self->send_log = syn_ratelog_new(SEND_LOG_INTERVAL_MS, 8);
    if (!self->ctx || !self->send_log) {
        worker_destroy(&self);
        return NULL;
    }
    self->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (self->timer_fd < 0)
        syn_warn("worker", "no timerfd (%s): deadlines are met to the millisecond only",
                 strerror(errno));
    return self;
}

void worker_destroy(worker_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    worker_t *self = *self_p;
    while (self->count > 0)
        worker_attempt_remove(self, self->count - 1);
    free(self->attempts);
    free(self->items);
    if (self->timer_fd >= 0)
        close(self->timer_fd);
    worker_conn_close(self, 0);
    /* Waits for a lingering goodbye (leave); a signal only interrupts the wait. */
    while (self->ctx && zmq_ctx_term(self->ctx) != 0 && errno == EINTR)
        ;
    syn_ratelog_destroy(&self->send_log);
    syn_endpoint_list_destroy(&self->brokers);
    free(self->name);
    free(self->unhealthy);
    free(self);
    *self_p = NULL;
}

static void consider(int64_t *best, int64_t when)
{
    if (when >= 0 && (*best < 0 || when < *best))
        *best = when;
}

/* The earliest moment (syn_mono_us) the loop has something to do without any
 * input. The worker's own timers are whole milliseconds (due once now, in
 * ms, reaches them); a run's deadline may be finer. */
static int64_t next_wakeup(worker_t *self, int64_t now)
{
    int64_t best = now + MAX_SLEEP_MS;
    /* How long a result may stay unacknowledged before it is sent again (the
     * broker's silence has its own, worker_conn_patience). */
    int64_t patience = self->heartbeat_ms * self->liveness;
    if (self->conn) {
        consider(&best, self->last_send_ms + self->heartbeat_ms);
        consider(&best, self->last_recv_ms + worker_conn_patience(self) + 1);
    } else
        consider(&best, self->reconnect_at);
    if (self->unhealthy)
        consider(&best, self->recheck_at);
    for (size_t i = 0; i < self->count; i++) {
        attempt_t *a = self->attempts[i];
        if (a->run) {
            size_t len = 0;
            worker_run_output(a->run, &len);
            if (len > a->streamed && self->conn)
                consider(&best, a->output_sent_ms < 0 ? now
                                                      : a->output_sent_ms + PROGRESS_EVERY_MS);
            if (a->cost_unsent && self->conn)
                consider(&best, a->cost_sent_ms + COST_EVERY_MS);
            consider(&best, worker_pulling_wakeup(self, a));
        } else if (a->pending)
            consider(&best, now);
        else if (a->result && self->conn)
            consider(&best, a->result_sent_ms < 0 ? now : a->result_sent_ms + patience);
    }
    if (self->draining) {
        consider(&best, self->drain_deadline);
        consider(&best, self->leave_deadline);
    }
    int64_t best_us = best * 1000;
    for (size_t i = 0; i < self->count; i++)
        if (self->attempts[i]->run)
            consider(&best_us, worker_run_deadline_us(self->attempts[i]->run));
    return best_us;
}

static void step_attempts(worker_t *self, int64_t now_us)
{
    int64_t now = now_us / 1000;
    int64_t patience = self->heartbeat_ms * self->liveness;
    for (size_t i = 0; i < self->count; i++) {
        attempt_t *a = self->attempts[i];
        if (a->run) {
            if (a->started_unsent && self->conn)
                a->started_unsent = send_progress(self, a, "started", "", 0, NULL, now) != 0;
            worker_pulling_step(self, a, now);
            worker_run_step(a->run, a->fds, a->nfds, now);
            send_events(self, a, now);
            report_cost(self, a, now);
            if (worker_run_finished(a->run))
                finish_run(self, a, now);
            else
                stream_output(self, a, now);
        } else if (a->pending) {
            worker_uploading_hash(self, a, now_us);
        } else if (a->result && self->conn &&
                   (a->result_sent_ms < 0 || now - a->result_sent_ms >= patience)) {
            worker_send_result(self, a, now);
        }
    }
    /* A slot freed above goes at once to an attempt waiting here: no round trip
     * to the broker between the two phases (the point of --prefetch). */
    start_waiting(self, now_us);
}

/* Holds as many phases beyond its slots as the phases' lengths call for
 * (prefetch.h); tells the broker when that changes, and hands back what waits
 * beyond it (long phases would make it wait while another worker idles). */
static void review_prefetch(worker_t *self, int64_t now_us)
{
    int64_t oldest = -1;
    for (size_t i = 0; i < self->count; i++)
        if (self->attempts[i]->run && now_us - self->attempts[i]->started_us > oldest)
            oldest = now_us - self->attempts[i]->started_us;
    int want = worker_prefetch_want(&self->adapt, self->slots, self->prefetch, oldest);
    if (want == self->prefetch)
        return;
    syn_info("worker", "prefetch %d -> %d: phases take %.1f ms (median), results are "
             "acknowledged in %.2f ms (median; -1: none yet), the oldest running phase is %.1f ms old",
             self->prefetch, want, (double)worker_prefetch_median_took(&self->adapt) / 1e3,
             (double)worker_prefetch_median_trip(&self->adapt) / 1e3,
             oldest < 0 ? 0.0 : (double)oldest / 1e3);
    self->prefetch = want;
    worker_prefetch_changed(&self->adapt);
    /* The broker hears the new prefetch first, so a phase handed back is not
     * sent straight back into a place that is no longer there. */
    if (self->conn && !self->draining)
        worker_send_prefetch(self, now_us / 1000);
    give_back_waiting(self, "phases are long now: handed back for a free worker", want,
                      now_us / 1000);
}

static bool has_unacked(const worker_t *self)
{
    for (size_t i = 0; i < self->count; i++)
        if (self->attempts[i]->result || self->attempts[i]->pending)
            return true;
    return false;
}

/* Returns true when the drain is over and the worker may leave. */
static bool drain(worker_t *self, int64_t now)
{
    if (self->running > 0 && now >= self->drain_deadline) {
        syn_warn("worker", "drain time is up: killing %d running attempt%s", self->running,
                 self->running == 1 ? "" : "s");
        for (size_t i = self->count; i-- > 0;)
            if (self->attempts[i]->run)
                worker_attempt_remove(self, i);
    }
    if (self->running > 0)
        return false;
    if (self->leave_deadline < 0)
        self->leave_deadline = now + ACK_WAIT_MS;
    return !has_unacked(self) || now >= self->leave_deadline;
}

static void leave(worker_t *self, int64_t now)
{
    if (self->conn) {
        json_t *none = json_object();
        send_new(self, SYN_MSG_DISCONNECT, none, now);
        /* Give the goodbye a moment to leave. */
        worker_conn_close(self, 200);
    }
}

int worker_run(worker_t *self, volatile sig_atomic_t *stop_requests)
{
    syn_info("worker", "starting worker=%s broker=%s slots=%d prefetch=%d provider=%s",
             self->name, syn_endpoint_list_current(self->brokers), self->slots, self->prefetch,
             worker_provider_name(self->provider));
    self->started_ms = syn_mono_ms();
    for (;;) {
        int64_t now_us = syn_mono_us();
        int64_t now = now_us / 1000;
        if (*stop_requests >= 2) {
            syn_warn("worker", "second stop request: leaving now, killing %d running attempt%s",
                     self->running, self->running == 1 ? "" : "s");
            /* What never started goes back uncounted, not lost with the rest. */
            give_back_waiting(self, "worker is shutting down", 0, now);
            break;
        }
        if (*stop_requests >= 1 && !self->draining) {
            self->draining = true;
            self->drain_deadline = now + self->drain_ms;
            /* Tell the broker at once, so it stops picking this worker; then
             * give back what waits (it would otherwise be sent straight back). */
            if (self->conn)
                worker_send_ready(self, now);
            give_back_waiting(self, "worker is shutting down", 0, now);
            syn_info("worker", "stopping: taking no more work, waiting up to %" PRId64
                     " ms for %d running attempt%s", self->drain_ms, self->running,
                     self->running == 1 ? "" : "s");
        }
        if (self->draining && drain(self, now))
            break;
        if (!self->conn && now >= self->reconnect_at)
            worker_conn_open(self, now);

        int nitems = worker_poll_build(self);
        if (nitems < 0) {
            syn_error("worker", "out of memory");
            break;
        }
        long timeout = worker_poll_arm_timer(self, next_wakeup(self, now), now_us);
        int timer_item = self->conn ? 1 : 0;
        int first_fd = timer_item + (self->timer_fd >= 0 ? 1 : 0);
        int rc = zmq_poll(self->items, nitems, timeout);
        if (rc < 0 && errno != EINTR) {
            syn_error("worker", "poll failed: %s", strerror(errno));
            break;
        }
        if (rc < 0)
            for (int i = 0; i < nitems; i++)
                self->items[i].revents = 0;
        now_us = syn_mono_us();
        now = now_us / 1000;
        worker_poll_disarm_fired_timer(self, self->timer_fd >= 0 ? &self->items[timer_item] : NULL);
        worker_poll_scatter(self, first_fd);
        if (self->conn && (self->items[0].revents & ZMQ_POLLIN))
            receive(self, now_us);
        step_attempts(self, now_us);
        review_prefetch(self, now_us);
        recheck_health(self, now);
        worker_attempts_bound_unacked(self);
        if (self->conn)
            worker_conn_check(self, now);
        if (self->conn && now - self->last_send_ms >= self->heartbeat_ms) {
            send_new(self, SYN_MSG_HEARTBEAT, json_object(), now);
            self->last_send_ms = now; /* even when it failed: no retry spin */
        }
    }
    leave(self, syn_mono_ms());
    return 0;
}
