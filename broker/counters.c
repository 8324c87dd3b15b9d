/* counters: the broker's metrics from its events (broker/counters.h). */
#include "broker/counters.h"

#include <czmq.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct broker_counters_t {
    json_t *started;  /* samples {workflow} */
    json_t *finished; /* samples {workflow, status} */
    json_t *phases;   /* samples {status}: completed, failed, retrying */
    json_t *tokens;   /* samples {workflow, model, kind}: input, output, cache_* */
    json_t *cost;     /* samples {workflow, model} */
    syn_histogram_t phase_seconds, queue_wait_seconds;
    zhashx_t *queued_at; /* "execution/phase" → time it was queued (int64_t *) */
};

broker_counters_t *broker_counters_new(void)
{
    broker_counters_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->started = json_array();
    self->finished = json_array();
    self->phases = json_array();
    self->tokens = json_array();
    self->cost = json_array();
    self->queued_at = zhashx_new();
    if (!self->started || !self->finished || !self->phases || !self->tokens || !self->cost ||
        !self->queued_at) {
        broker_counters_destroy(&self);
        return NULL;
    }
    zhashx_set_destructor(self->queued_at, (zhashx_destructor_fn *)zstr_free);
    syn_histogram_init(&self->phase_seconds, syn_buckets_slow_seconds, syn_buckets_slow_count);
    syn_histogram_init(&self->queue_wait_seconds, syn_buckets_slow_seconds,
                       syn_buckets_slow_count);
    return self;
}

void broker_counters_destroy(broker_counters_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    broker_counters_t *self = *self_p;
    json_decref(self->started);
    json_decref(self->finished);
    json_decref(self->phases);
    json_decref(self->tokens);
    json_decref(self->cost);
    zhashx_destroy(&self->queued_at);
    free(self);
    *self_p = NULL;
}

static const char *text_or(const json_t *data, const char *key, const char *fallback)
{
    const char *v = json_string_value(json_object_get(data, key));
    return v && *v ? v : fallback;
}

/* The wait of a phase in the ready queue: PhaseQueued → its first PhaseStarted. */
static void queue_wait(broker_counters_t *self, const char *execution_id, const char *type,
                       const json_t *data, int64_t now_us)
{
    char key[256];
    snprintf(key, sizeof key, "%s/%s", execution_id, text_or(data, "phase_id", ""));
    if (!strcmp(type, "PhaseQueued")) {
        /* stored as text, so the hash owns plain strings */
        char when[32];
        snprintf(when, sizeof when, "%lld", (long long)now_us);
        zhashx_update(self->queued_at, key, strdup(when));
    } else if (!strcmp(type, "PhaseStarted")) {
        const char *when = zhashx_lookup(self->queued_at, key);
        if (when) {
            syn_histogram_observe(&self->queue_wait_seconds,
                                  (double)(now_us - atoll(when)) / 1e6);
            zhashx_delete(self->queued_at, key);
        }
    }
}

static void usage(broker_counters_t *self, const char *workflow, const json_t *data)
{
    const char *model = text_or(data, "model", "unknown");
    static const char *kinds[] = {"input", "output", "cache_creation", "cache_read"};
    for (size_t i = 0; i < 4; i++) {
        char key[32];
        snprintf(key, sizeof key, "%s_tokens", kinds[i]);
        json_int_t n = json_integer_value(json_object_get(data, key));
        if (n > 0)
            syn_metrics_count(self->tokens,
                              json_pack("{s:s, s:s, s:s}", "workflow", workflow, "model", model,
                                        "kind", kinds[i]),
                              (double)n);
    }
    double cost = json_number_value(json_object_get(data, "cost_usd"));
    if (cost > 0)
        syn_metrics_count(self->cost, json_pack("{s:s, s:s}", "workflow", workflow, "model", model),
                          cost);
}

void broker_counters_event(broker_counters_t *self, const char *execution_id, const char *type,
                           const json_t *data, const broker_status_view_t *status,
                           int64_t now_us)
{
    if (!self || !execution_id)
        return;
    const char *workflow = status && status->workflow_id ? status->workflow_id : "unknown";
    if (!strcmp(type, "ExecutionStarted")) {
        syn_metrics_count(self->started, json_pack("{s:s}", "workflow", workflow), 1);
    } else if (!strcmp(type, "ExecutionCompleted") || !strcmp(type, "ExecutionFailed") ||
               !strcmp(type, "ExecutionCancelled")) {
        const char *outcome = !strcmp(type, "ExecutionCompleted") ? "completed"
                              : !strcmp(type, "ExecutionFailed")  ? "failed"
                                                                  : "cancelled";
        syn_metrics_count(self->finished,
                          json_pack("{s:s, s:s}", "workflow", workflow, "status", outcome), 1);
    } else if (!strcmp(type, "PhaseQueued") || !strcmp(type, "PhaseStarted")) {
        queue_wait(self, execution_id, type, data, now_us);
    } else if (!strcmp(type, "PhaseCompleted") || !strcmp(type, "PhaseFailed") ||
               !strcmp(type, "PhaseRetrying")) {
        const char *outcome = !strcmp(type, "PhaseCompleted") ? "completed"
                              : !strcmp(type, "PhaseFailed")  ? "failed"
                                                              : "retrying";
        syn_metrics_count(self->phases, json_pack("{s:s}", "status", outcome), 1);
        json_int_t ms = json_integer_value(json_object_get(data, "duration_ms"));
        if (ms > 0)
            syn_histogram_observe(&self->phase_seconds, (double)ms / 1000.0);
        usage(self, workflow, data);
    }
}

json_t *broker_counters_families(const broker_counters_t *self, const broker_gauges_t *g)
{
    json_t *families = json_array();
    if (!families)
        return NULL;
    syn_metrics_add_samples(families, "syn_executions_started_total", "counter",
                            "Executions started, by workflow.", self->started);
    syn_metrics_add_samples(
        families, "syn_executions_finished_total", "counter",
        "Executions finished, by workflow and status (completed, failed, cancelled).",
        self->finished);
    syn_metrics_add_samples(families, "syn_phases_total", "counter",
                            "Phase attempts ended, by status (completed, failed, retrying).",
                            self->phases);
    syn_metrics_add_histogram(families, "syn_phase_duration_seconds",
                              "Run time of a phase attempt.", &self->phase_seconds);
    syn_metrics_add_histogram(families, "syn_phase_queue_wait_seconds",
                              "Time from a phase being queued to its attempt starting.",
                              &self->queue_wait_seconds);
    syn_metrics_add_samples(families, "syn_tokens_total", "counter",
                            "Tokens used by agents, by workflow, model and kind.", self->tokens);
    syn_metrics_add_samples(families, "syn_cost_usd_total", "counter",
                            "Cost reported by agents in US dollars, by workflow and model.",
                            self->cost);
    static const struct {
        const char *name, *type, *help;
    } states[] = {
        {"syn_ready_queue_depth", "gauge", "Executions whose phase waits for a worker slot."},
        {"syn_workers_connected", "gauge", "Workers connected."},
        {"syn_workers_healthy", "gauge", "Workers connected and taking work."},
        {"syn_worker_slots_busy", "gauge", "Worker slots running an attempt."},
        {"syn_worker_slots_free", "gauge", "Worker slots free."},
        {"syn_attempts_lost_total", "counter", "Attempts lost with their worker."},
        {"syn_attempts_retried_total", "counter", "Attempts retried."},
        {"syn_attempts_timed_out_total", "counter", "Attempts that ran past their timeout."},
        {"syn_broker_commits_total", "counter", "Transactions committed by the broker."},
        {"syn_broker_storage_full", "gauge",
         "1 while the broker's commits fail (a full disk): it refuses new work."},
    };
    const double values[] = {
        (double)g->ready_depth,    (double)g->workers_connected, (double)g->workers_healthy,
        (double)g->slots_busy,     (double)g->slots_free,        (double)g->attempts_lost,
        (double)g->attempts_retried, (double)g->attempts_timed_out, (double)g->commits,
        g->storage_full ? 1.0 : 0.0,
    };
    _Static_assert(sizeof states / sizeof states[0] == sizeof values / sizeof values[0],
                   "one value per state");
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++)
        syn_metrics_add_value(families, states[i].name, states[i].type, states[i].help,
                              values[i]);
    syn_metrics_add_histogram(families, "syn_broker_commit_seconds", "Time of one broker commit.",
                              g->commit_seconds);
    syn_metrics_add_histogram(families, "syn_dispatch_seconds",
                              "Time from a phase ready to run to its assignment sent to a worker.",
                              g->dispatch_seconds);
    return families;
}
