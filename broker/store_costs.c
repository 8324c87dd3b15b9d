/* store_costs: what the original service's cost and metrics routes read (issue 17):
 * sums over every execution, executions by status, cost by model, per-execution
 * sums and agent sessions (a session is one attempt that started). It stands alone
 * because these are whole-table operator reads the engine never makes, answered in
 * one reply (costs.report) that the gateway shapes into the original's answers
 * (gateway/original_compat.c). */
#include "broker/store_internal.h"

#include <string.h>

static json_t *totals_of(broker_store_t *self, const char *workflow_id)
{
    store_q_t *s = store_stmt(self, SQL_COSTS_TOTALS);
    if (s)
        store_bind_text(s, 1, workflow_id);
    if (!s || store_step_one(self, s, "sum costs") != 1)
        return NULL;
    json_t *totals = json_pack(
        "{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:f, s:I, s:I}", "executions",
        (json_int_t)store_col_int(s, 0), "workflows",
        (json_int_t)store_col_int(s, 1), "sessions",
        (json_int_t)store_col_int(s, 2), "input_tokens",
        (json_int_t)store_col_int(s, 3), "output_tokens",
        (json_int_t)store_col_int(s, 4), "cache_creation_tokens",
        (json_int_t)store_col_int(s, 5), "cache_read_tokens",
        (json_int_t)store_col_int(s, 6), "cost_usd", store_col_double(s, 7),
        "tool_calls", (json_int_t)store_col_int(s, 8), "turns",
        (json_int_t)store_col_int(s, 9));
    store_reset(s);
    return totals;
}

static json_t *status_counts_of(broker_store_t *self, const char *workflow_id)
{
    store_q_t *s = store_stmt(self, SQL_COSTS_STATUS);
    if (!s)
        return NULL;
    store_bind_text(s, 1, workflow_id);
    json_t *counts = json_object();
    int rc = STORE_ERROR;
    while (counts && (rc = store_step(s)) == STORE_ROW) {
        const char *status = store_col_text(s, 0);
        if (status)
            json_object_set_new(counts, status, json_integer(store_col_int(s, 1)));
    }
    return store_rows_end(self, s, counts, rc, "count executions by status");
}

static json_t *models_of(broker_store_t *self)
{
    store_q_t *s = store_stmt(self, SQL_COSTS_MODELS);
    if (!s)
        return NULL;
    json_t *models = json_array();
    int rc = STORE_ERROR;
    while (models && (rc = store_step(s)) == STORE_ROW)
        json_array_append_new(models, json_pack("{s:o, s:f}", "model",
                                                store_column_string_or_null(s, 0), "cost_usd",
                                                store_col_double(s, 1)));
    return store_rows_end(self, s, models, rc, "sum cost by model");
}

static json_t *executions_of(broker_store_t *self, const char *execution_id, int64_t limit)
{
    store_q_t *s = store_stmt(self, SQL_COSTS_EXECUTIONS);
    if (!s)
        return NULL;
    store_bind_text(s, 1, execution_id);
    store_bind_int(s, 2, limit);
    json_t *rows = json_array();
    int rc = STORE_ERROR;
    while (rows && (rc = store_step(s)) == STORE_ROW)
        json_array_append_new(
            rows,
            json_pack("{s:o, s:o, s:o, s:o, s:I, s:I, s:I, s:I, s:f, s:I, s:I, s:I, s:I}",
                      "execution_id", store_column_string_or_null(s, 0), "workflow_id",
                      store_column_string_or_null(s, 1), "started_at", store_column_time(s, 2),
                      "completed_at", store_column_time(s, 3), "input_tokens",
                      (json_int_t)store_col_int(s, 4), "output_tokens",
                      (json_int_t)store_col_int(s, 5), "cache_creation_tokens",
                      (json_int_t)store_col_int(s, 6), "cache_read_tokens",
                      (json_int_t)store_col_int(s, 7), "cost_usd",
                      store_col_double(s, 8), "sessions",
                      (json_int_t)store_col_int(s, 9), "tool_calls",
                      (json_int_t)store_col_int(s, 10), "turns",
                      (json_int_t)store_col_int(s, 11), "duration_ms",
                      (json_int_t)store_col_int(s, 12)));
    return store_rows_end(self, s, rows, rc, "sum costs by execution");
}

static json_t *sessions_of(broker_store_t *self, const char *execution_id, int64_t limit)
{
    store_q_t *s = store_stmt(self, SQL_COSTS_SESSIONS);
    if (!s)
        return NULL;
    store_bind_text(s, 1, execution_id);
    store_bind_int(s, 2, limit);
    json_t *rows = json_array();
    int rc = STORE_ERROR;
    while (rows && (rc = store_step(s)) == STORE_ROW) {
        json_t *usage = store_column_json(s, 8);
        json_array_append_new(
            rows, json_pack("{s:o, s:o, s:o, s:o, s:I, s:o, s:o, s:o, s:o}", "execution_id",
                            store_column_string_or_null(s, 0), "workflow_id",
                            store_column_string_or_null(s, 1), "phase_id",
                            store_column_string_or_null(s, 2), "phase_name",
                            store_column_string_or_null(s, 3), "attempt",
                            (json_int_t)store_col_int(s, 4), "status",
                            store_column_string_or_null(s, 5), "started_at",
                            store_column_time(s, 6), "completed_at", store_column_time(s, 7), "usage",
                            json_is_object(usage) ? json_incref(usage) : json_null()));
        json_decref(usage);
    }
    return store_rows_end(self, s, rows, rc, "list sessions");
}

static json_t *artifacts_of(broker_store_t *self)
{
    store_q_t *s = store_stmt(self, SQL_COSTS_ARTIFACTS);
    if (!s || store_step_one(self, s, "count artifacts") != 1)
        return NULL;
    json_t *artifacts = json_pack("{s:I, s:I}", "count", (json_int_t)store_col_int(s, 0),
                                  "bytes", (json_int_t)store_col_int(s, 1));
    store_reset(s);
    return artifacts;
}

/* {phase_id: {running, run_us, last_status}} of the workflow's runs. */
static json_t *runs_of(broker_store_t *self, const char *workflow_id, int64_t now_us)
{
    store_q_t *s = store_stmt(self, SQL_COSTS_RUNS);
    if (!s)
        return NULL;
    store_bind_text(s, 1, workflow_id);
    store_bind_int(s, 2, now_us);
    json_t *runs = json_object();
    int rc = STORE_ERROR;
    while (runs && (rc = store_step(s)) == STORE_ROW) {
        const char *phase_id = store_col_text(s, 0);
        if (phase_id)
            json_object_set_new(runs, phase_id,
                                json_pack("{s:I, s:I, s:o}", "running",
                                          (json_int_t)store_col_int(s, 1), "run_us",
                                          (json_int_t)store_col_int(s, 2), "last_status",
                                          store_column_string_or_null(s, 3)));
    }
    return store_rows_end(self, s, runs, rc, "sum a workflow's runs");
}

/* The workflow's phases that ran, in their order, with their runs merged in. */
static json_t *phases_of(broker_store_t *self, const char *workflow_id, int64_t now_us)
{
    json_t *runs = runs_of(self, workflow_id, now_us);
    store_q_t *s = runs ? store_stmt(self, SQL_COSTS_PHASES) : NULL;
    if (!s) {
        json_decref(runs);
        return NULL;
    }
    store_bind_text(s, 1, workflow_id);
    json_t *phases = json_array();
    int rc = STORE_ERROR;
    while (phases && (rc = store_step(s)) == STORE_ROW) {
        json_t *run = json_object_get(runs, store_col_text(s, 0) ? store_col_text(s, 0) : "");
        if (!run)
            continue; /* never started (skipped, pending, reused by a rerun) */
        json_t *phase = json_pack(
            "{s:o, s:o, s:I, s:I, s:I, s:I, s:f, s:I}", "phase_id",
            store_column_string_or_null(s, 0), "name", store_column_string_or_null(s, 2),
            "input_tokens", (json_int_t)store_col_int(s, 3), "output_tokens",
            (json_int_t)store_col_int(s, 4), "cache_creation_tokens",
            (json_int_t)store_col_int(s, 5), "cache_read_tokens",
            (json_int_t)store_col_int(s, 6), "cost_usd", store_col_double(s, 7), "artifacts",
            (json_int_t)store_col_int(s, 8));
        if (phase)
            json_object_update(phase, run);
        json_array_append_new(phases, phase);
    }
    json_decref(runs);
    return store_rows_end(self, s, phases, rc, "sum a workflow's phases");
}

int broker_store_costs(broker_store_t *self, const char *execution_id, const char *workflow_id,
                       int64_t limit, int64_t now_us, json_t **report)
{
    enum { N = 6 };
    json_t *parts[N] = {totals_of(self, workflow_id), status_counts_of(self, workflow_id),
                        models_of(self), executions_of(self, execution_id, limit),
                        sessions_of(self, execution_id, limit), artifacts_of(self)};
    *report = NULL;
    for (size_t i = 0; i < N; i++)
        if (!parts[i]) {
            for (size_t j = 0; j < N; j++)
                json_decref(parts[j]);
            return -1;
        }
    *report = json_pack("{s:o, s:o, s:o, s:o, s:o, s:o}", "totals", parts[0], "status_counts",
                        parts[1], "models", parts[2], "executions", parts[3], "sessions",
                        parts[4], "artifacts", parts[5]);
    if (*report && workflow_id) {
        json_t *phases = phases_of(self, workflow_id, now_us);
        if (!phases) {
            json_decref(*report);
            *report = NULL;
            return -1;
        }
        json_object_set_new(*report, "phases", phases);
    }
    return *report ? 0 : -1;
}
