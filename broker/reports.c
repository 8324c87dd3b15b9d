/* reports: PROGRESS and RESULT (reports.h). They stand alone because they turn
 * a worker's word into the attempt's fate, and that reading (fields, statuses,
 * the failure's reason) is one concern apart from what each fate then does. */
#include "broker/reports.h"

#include "broker/budget_usd.h"
#include "broker/deadlines.h"
#include "broker/engine_internal.h"
#include "broker/fence.h"
#include "broker/output.h"
#include "common/log.h"

#include <stdlib.h>
#include <string.h>

void broker_reports_progress(broker_engine_t *self, broker_worker_t *worker, const json_t *fields,
                             int64_t now_ms)
{
    engine_ref_t ref;
    if (!engine_read_ref(fields, &ref))
        return;
    broker_execution_t *exec = NULL;
    bool refused;
    broker_phase_t *phase = broker_fence_admit(self, worker, ref.execution_id, ref.phase_id,
                                               ref.attempt, "progress", &exec, &refused);
    if (refused)
        return;
    if (phase) {
        if (!phase->worker_key) {
            engine_bind_worker(phase, worker, now_ms + broker_deadlines_backstop_ms(self, phase));
            broker_worker_hold(worker, exec->id, phase->phase_id, phase->attempt, true);
        }
        const char *kind = json_string_value(json_object_get(fields, "kind"));
        /* The time limit runs from the agent's start, which for an attempt that
         * waited for a slot is now. */
        if (kind && strcmp(kind, "started") == 0)
            phase->deadline_ms = now_ms + broker_deadlines_backstop_ms(self, phase);
        else if (kind && strcmp(kind, "output") == 0)
            broker_output_append(self, exec, phase,
                                 json_string_value(json_object_get(fields, "data")), now_ms);
        else if (kind && strcmp(kind, "tool") == 0)
            broker_output_tool(self, exec, phase, fields, now_ms);
        else if (kind && strcmp(kind, "cost") == 0)
            broker_budget_progress(self, exec, phase, fields);
        return;
    }
    /* Someone else's attempt now: ask the worker to stop wasting a slot on it. */
    broker_held_t *held = broker_worker_find(worker, ref.execution_id, ref.phase_id, ref.attempt);
    if (!held) {
        broker_worker_hold(worker, ref.execution_id, ref.phase_id, ref.attempt, false);
        engine_send_ref(self, worker, SYN_MSG_CANCEL, ref.execution_id, ref.phase_id, ref.attempt);
    } else if (held->current) {
        held->current = false;
        engine_send_ref(self, worker, SYN_MSG_CANCEL, ref.execution_id, ref.phase_id, ref.attempt);
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
        return engine_strdupf("agent exited with code %lld",
                              (long long)json_integer_value(exit_code));
    return strdup("agent failed without giving a reason");
}

/* Workers word their own time limit "timed out after N s" (worker/provider.c):
 * such an attempt is recorded as a timeout rather than a plain failure. */
static bool is_timeout(const char *reason)
{
    return strncmp(reason, "timed out", 9) == 0;
}

static void quarantine_if_black_hole(broker_engine_t *self, broker_worker_t *worker,
                                     const char *execution_id, int64_t now_ms)
{
    const broker_quarantine_config_t *config = &self->config.quarantine;
    if (!broker_quarantine_failed(&worker->quarantine, config, execution_id,
                                  broker_workers_peer_completed_ms(self->workers, worker),
                                  now_ms))
        return;
    char *why = engine_strdupf("quarantined for %lld s: %lld attempts of different executions "
                               "failed in a row while other workers of its providers succeeded",
                               (long long)((worker->quarantine.until_ms - now_ms) / 1000),
                               (long long)worker->quarantine.streak);
    broker_engine_worker_unhealthy(self, worker, why ? why : "quarantined");
    free(why);
}

void broker_reports_artifact(broker_engine_t *self, broker_worker_t *worker,
                             const json_t *fields, int64_t now_ms)
{
    engine_ref_t ref;
    if (!engine_read_ref(fields, &ref))
        return;
    broker_execution_t *exec = NULL;
    bool refused;
    broker_phase_t *phase = broker_fence_admit(self, worker, ref.execution_id, ref.phase_id,
                                               ref.attempt, "artifact", &exec, &refused);
    json_t *ack = phase ? broker_artifacts_chunk(self->artifacts, fields, now_ms)
                        : broker_artifacts_refuse(self->artifacts, fields,
                                                  refused ? "another worker holds this attempt"
                                                          : "not the current attempt");
    engine_send_to_worker(self, worker->identity, worker->identity_len, SYN_MSG_ARTIFACT_ACK, ack);
}

/* A completed result whose artifacts have not all arrived is not taken yet: the
 * worker is told where to resume, and sends the result again after (true). */
static bool artifacts_missing(broker_engine_t *self, broker_worker_t *worker,
                              const json_t *fields, const engine_ref_t *ref, char **refusal)
{
    const char *status = json_string_value(json_object_get(fields, "status"));
    const json_t *manifest = json_object_get(fields, "artifacts");
    broker_execution_t *exec = NULL;
    if (!broker_fence_current(self, ref->execution_id, ref->phase_id, ref->attempt, &exec))
        return false;
    if (!status || strcmp(status, "completed") != 0) {
        broker_artifacts_drop(self->artifacts, ref->execution_id, ref->phase_id, ref->attempt);
        return false;
    }
    json_t *ack = NULL;
    char why[512];
    switch (broker_artifacts_settle(self->artifacts, ref->execution_id, ref->phase_id,
                                    ref->attempt, manifest, &ack, why, sizeof why)) {
    case BROKER_ARTIFACTS_MISSING:
        engine_send_to_worker(self, worker->identity, worker->identity_len,
                              SYN_MSG_ARTIFACT_ACK, ack);
        return true;
    case BROKER_ARTIFACTS_REFUSED:
        *refusal = strdup(why);
        return false;
    case BROKER_ARTIFACTS_WHOLE:
        if (json_array_size(manifest) > 0)
            exec->no_artifacts = false;
        return false;
    }
    return false;
}

/* Files the worker skipped (symlinks, devices), each a PhaseWarning event. */
static void emit_warnings(broker_engine_t *self, broker_execution_t *exec, broker_phase_t *phase,
                          const json_t *fields)
{
    const json_t *warnings = json_object_get(fields, "warnings");
    for (size_t i = 0; i < json_array_size(warnings); i++) {
        json_t *data = engine_phase_event(phase);
        json_object_set(data, "message", json_array_get(warnings, i));
        engine_emit(self, exec, "PhaseWarning", data);
    }
}

void broker_reports_result(broker_engine_t *self, broker_worker_t *worker, const json_t *fields,
                           int64_t now_ms)
{
    engine_ref_t ref;
    if (!engine_read_ref(fields, &ref))
        return;
    char *artifacts_refused = NULL;
    if (artifacts_missing(self, worker, fields, &ref, &artifacts_refused))
        return;
    /* Acknowledged whatever happens next: a stale or repeated result is a no-op,
     * and the worker may forget it once the ack (sent after commit) arrives. */
    engine_send_ref(self, worker, SYN_MSG_RESULT_ACK, ref.execution_id, ref.phase_id, ref.attempt);
    broker_worker_release(worker, ref.execution_id, ref.phase_id, ref.attempt);
    broker_execution_t *exec = NULL;
    bool refused;
    broker_phase_t *phase = broker_fence_admit(self, worker, ref.execution_id, ref.phase_id,
                                               ref.attempt, "result", &exec, &refused);
    if (refused) {
        free(artifacts_refused);
        return;
    }

    /* Tokens are spent whether or not the attempt still counts: its usage is
     * recorded once (a repeated RESULT adds nothing). */
    broker_usage_t usage;
    int recorded = broker_usage_parse(json_object_get(fields, "usage"), &usage)
                       ? broker_store_usage_record(self->store, ref.execution_id, ref.phase_id,
                                                   ref.attempt, &usage)
                       : 0;
    if (recorded < 0)
        syn_error("broker", "cannot record usage execution=%s phase=%s attempt=%lld",
                  ref.execution_id, ref.phase_id, (long long)ref.attempt);
    /* What it cost counts against the budget (budget_usd.h), stale or not. */
    broker_execution_t *spender = phase ? exec : broker_engine_find(self, ref.execution_id);
    if (spender && recorded > 0)
        broker_budget_result(spender, phase, usage.cost_usd);
    const char *status = json_string_value(json_object_get(fields, "status"));
    bool completed = status && strcmp(status, "completed") == 0;
    if (spender && !completed && broker_budget_enforce(self, spender, phase != NULL)) {
        free(artifacts_refused);
        broker_usage_clear(&usage);
        return;
    }

    if (!phase) {
        free(artifacts_refused);
        self->stats.stale++;
        syn_info("broker", "dropped stale result execution=%s phase=%s attempt=%lld worker=%s",
                 ref.execution_id, ref.phase_id, (long long)ref.attempt, worker->name);
        broker_usage_clear(&usage);
        return;
    }
    if (phase->worker_key && strcmp(phase->worker_key, worker->key) != 0)
        broker_fence_release_holder(self, exec, phase);

    const char *output = json_string_value(json_object_get(fields, "output"));
    const json_t *code = json_object_get(fields, "exit_code");
    int64_t exit_code = json_is_integer(code) ? (int64_t)json_integer_value(code) : 0;
    const int64_t *exit_p = json_is_integer(code) ? &exit_code : NULL;

    emit_warnings(self, exec, phase, fields);
    if (artifacts_refused) {
        /* The agent's work is there but its deliverables break a rule: the phase
         * fails with the rule, as any failure (its retries apply). */
        engine_attempt_failed(self, exec, phase, BROKER_ATTEMPT_FAILED, exit_p,
                              artifacts_refused, &usage, now_ms);
        free(artifacts_refused);
    } else if (completed) {
        worker->attempts_completed++;
        worker->last_completed_ms = now_ms;
        broker_quarantine_completed(&worker->quarantine);
        engine_complete_phase(self, exec, phase, output, exit_p, &usage);
    } else if (status && strcmp(status, "fault") == 0) {
        engine_attempt_worker_fault(self, exec, phase, worker,
                                    json_string_value(json_object_get(fields, "error")), now_ms);
    } else if (status && strcmp(status, "refused") == 0) {
        engine_attempt_refused(self, exec, phase, worker,
                               json_string_value(json_object_get(fields, "error")), now_ms);
    } else if (status && strcmp(status, "cancelled") == 0) {
        char *why = engine_strdupf("worker %s gave the attempt back (cancelled)", worker->name);
        engine_attempt_lost(self, exec, phase, BROKER_ATTEMPT_CANCELLED, why ? why : "cancelled",
                            now_ms);
        free(why);
    } else {
        worker->attempts_failed++;
        char *reason = failure_reason(fields);
        const char *why = reason ? reason : "agent failed";
        if (output && *output) {
            char *kept = broker_output_bounded(output);
            if (kept) {
                free(phase->output);
                phase->output = kept;
                broker_store_phase_set_output(self->store, exec, phase);
            }
        }
        engine_attempt_failed(self, exec, phase,
                              is_timeout(why) ? BROKER_ATTEMPT_TIMEOUT : BROKER_ATTEMPT_FAILED,
                              exit_p, why, &usage, now_ms);
        quarantine_if_black_hole(self, worker, ref.execution_id, now_ms);
        free(reason);
    }
    broker_usage_clear(&usage);
}
