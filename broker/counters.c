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

static void gauge(json_t *families, const char *name, const char *help, double value)
{
    json_t *samples = syn_metrics_family(families, name, "gauge", help);
    if (samples)
        syn_metrics_sample(samples, NULL, value);
}

static void counter(json_t *families, const char *name, const char *help, double value)
{
    json_t *samples = syn_metrics_family(families, name, "counter", help);
    if (samples)
        syn_metrics_sample(samples, NULL, value);
}

static void labelled(json_t *families, const char *name, const char *type, const char *help,
                     const json_t *samples)
{
    json_t *into = syn_metrics_family(families, name, type, help);
    if (into)
{
        json_t *copy = json_deep_copy(samples);
        json_array_extend(into, copy);
        json_decref(copy);
    }
}

static void histogram(json_t *families, const char *name, const char *help,
                      const syn_histogram_t *h)
{
    json_t *samples = syn_metrics_family(families, name, "histogram", help);
    if (samples && h)
        syn_metrics_histogram_sample(samples, NULL, h);
}

json_t *broker_counters_families(const broker_counters_t *self, const broker_gauges_t *g)
{
    json_t *families = json_array();
    if (!families)
        return NULL;
    labelled(families, "syn_executions_started_total", "counter",
             "Executions started, by workflow.", self->started);
    labelled(families, "syn_executions_finished_total", "counter",
             "Executions finished, by workflow and status (completed, failed, cancelled).",
             self->finished);
    labelled(families, "syn_phases_total", "counter",
             "Phase attempts ended, by status (completed, failed, retrying).", self->phases);
    histogram(families, "syn_phase_duration_seconds", "Run time of a phase attempt.",
              &self->phase_seconds);
    histogram(families, "syn_phase_queue_wait_seconds",
              "Time from a phase being queued to its attempt starting.",
              &self->queue_wait_seconds);
    labelled(families, "syn_tokens_total", "counter",
             "Tokens used by agents, by workflow, model and kind.", self->tokens);
    labelled(families, "syn_cost_usd_total", "counter",
             "Cost reported by agents in US dollars, by workflow and model.", self->cost);
    gauge(families, "syn_ready_queue_depth", "Executions whose phase waits for a worker slot.",
          (double)g->ready_depth);
    gauge(families, "syn_workers_connected", "Workers connected.",
          (double)g->workers_connected);
    gauge(families, "syn_workers_healthy", "Workers connected and taking work.",
          (double)g->workers_healthy);
    gauge(families, "syn_worker_slots_busy", "Worker slots running an attempt.",
          (double)g->slots_busy);
    gauge(families, "syn_worker_slots_free", "Worker slots free.", (double)g->slots_free);
    counter(families, "syn_attempts_lost_total", "Attempts lost with their worker.",
            (double)g->attempts_lost);
    counter(families, "syn_attempts_retried_total", "Attempts retried.",
            (double)g->attempts_retried);
    counter(families, "syn_attempts_timed_out_total", "Attempts that ran past their timeout.",
            (double)g->attempts_timed_out);
    counter(families, "syn_broker_commits_total", "Transactions committed by the broker.",
            (double)g->commits);
    histogram(families, "syn_broker_commit_seconds", "Time of one broker commit.",
              g->commit_seconds);
    return families;
}
