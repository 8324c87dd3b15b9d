/* store_reload: what the broker reads back at start — every execution not yet
 * finished, rebuilt from its template version and its stored phases and
 * attempts, or marked failed when it cannot be rebuilt. It stands alone because
 * it runs once, and decides what a restart recovers. */
#include "broker/store_internal.h"

#include "common/clock.h"
#include "common/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Overlays the stored phase rows (status, attempts, outputs) on an execution
 * rebuilt from its template, then recovers the lost and failure counts and the
 * worker name of each phase still queued or running, and the operator messages. */
static int load_phases(broker_store_t *self, broker_execution_t *exec)
{
    store_q_t *s = store_stmt(self, SQL_PHASES_OF);
    if (!s)
        return -1;
    store_bind_int(s, 1, exec->num);
    int rc;
    while ((rc = store_step(s)) == STORE_ROW) {
        const char *phase_id = store_col_text(s, 0);
        broker_phase_t *phase = phase_id ? broker_execution_find_phase(exec, phase_id) : NULL;
        if (!phase)
            continue;
        if (broker_phase_status_parse(store_col_text(s, 1),
                                      &phase->status) < 0)
            phase->status = BROKER_PHASE_PENDING;
        phase->attempt = store_col_int(s, 2);
        phase->output = store_column_strdup(s, 3);
        phase->error = store_column_strdup(s, 4);
        phase->started_at = store_col_int(s, 5);
        phase->completed_at = store_col_int(s, 6);
        phase->row = store_col_int(s, 7);
    }
    store_reset(s);
    if (rc != STORE_DONE) {
        store_log_error(self, "load phases");
        return -1;
    }

    exec->completed_phases = 0;
    exec->current = exec->phase_count;
    for (size_t i = 0; i < exec->phase_count; i++) {
        broker_phase_t *phase = &exec->phases[i];
        if (phase->status == BROKER_PHASE_COMPLETED)
            exec->completed_phases++;
        else if (exec->current == exec->phase_count)
            exec->current = i;
        if (phase->status != BROKER_PHASE_QUEUED && phase->status != BROKER_PHASE_RUNNING)
            continue;
        s = store_stmt(self, SQL_ATTEMPTS_OF);
        if (!s)
            return -1;
        store_bind_int(s, 1, exec->num);
        store_bind_text(s, 2, phase->phase_id);
        while ((rc = store_step(s)) == STORE_ROW) {
            const char *status = store_col_text(s, 2);
            if (status && strcmp(status, "lost") == 0)
                phase->lost++;
            if (status && (strcmp(status, "failed") == 0 || strcmp(status, "timeout") == 0))
                phase->failures++;
            if (store_col_int(s, 0) == phase->attempt) {
                free(phase->worker_name);
                phase->worker_name = store_column_strdup(s, 1);
            }
        }
        store_reset(s);
    }
    json_t *messages = broker_store_messages_load(self, exec->id);
    if (!messages)
        return -1;
    json_decref(exec->messages);
    exec->messages = messages;
    return 0;
}

/* An execution rebuilt from a row of SQL_EXECUTION_ACTIVE's columns (or
 * SQL_EXECUTION_ONE's, the same) and its template version, phases not yet
 * overlaid; NULL with the reason in err. */
static broker_execution_t *execution_of_row(store_q_t *s, char *err, size_t errlen)
{
    const char *id = store_col_text(s, 0);
    const char *workflow_id = store_col_text(s, 1);
    json_t *inputs = store_column_json(s, 4);
    json_t *repos = store_column_json(s, 6);
    json_t *template_json = store_column_json(s, 11);
    broker_execution_t *exec = NULL;
    if (!id || !workflow_id)
        snprintf(err, errlen, "row without id");
    else if (!template_json)
        snprintf(err, errlen, "workflow %s version %lld is missing", workflow_id,
                 (long long)store_col_int(s, 2));
    else if (!json_is_object(inputs) || !json_is_array(repos))
        snprintf(err, errlen, "unreadable inputs or repos");
    else
        exec = broker_execution_new(id, workflow_id, store_col_int(s, 2), template_json,
                                    inputs, store_col_text(s, 5), repos,
                                    store_col_int(s, 7), err, errlen);
    json_decref(inputs);
    json_decref(repos);
    json_decref(template_json);
    if (exec) {
        broker_exec_status_parse(store_col_text(s, 3), &exec->status);
        exec->started_at = store_col_int(s, 8);
        exec->completed_at = store_col_int(s, 9);
        exec->error = store_column_strdup(s, 10);
        exec->num = store_col_int(s, 12);
        exec->priority = store_col_int(s, 13);
        exec->max_budget_usd = store_col_double(s, 14); /* NULL: 0, none */
        exec->spent_usd = store_col_double(s, 15); /* its own: reused phases not */
    }
    return exec;
}

static void fail_unloadable(broker_store_t *self, const char *id, const char *reason,
                            int64_t now)
{
    syn_error("broker", "cannot reload execution=%s: %s; marking it failed", id, reason);
    if (store_begin_write(self) < 0)
        return;
    counted_row_t row = {0};
    if (store_counted_row(self, id, &row) <= 0)
        return;
    int counted = store_recount(self, &row, "failed");
    free(row.workflow_id);
    store_q_t *s = counted == 0 ? store_stmt(self, SQL_EXECUTION_FAIL) : NULL;
    if (!s)
        return;
    char error[256];
    snprintf(error, sizeof error, "Execution could not be reloaded after a restart: %s", reason);
    store_bind_text(s, 1, id);
    store_bind_int(s, 2, now);
    store_bind_text(s, 3, error);
    store_run(self, s, "fail execution");
}

typedef struct {
    char *id;
    char *reason;
} unloadable_t;

int broker_store_load_active(broker_store_t *self, broker_store_exec_fn fn, void *arg)
{
    store_q_t *s = store_stmt(self, SQL_EXECUTION_ACTIVE);
    if (!s)
        return -1;
    /* Loading phases reuses other statements, so rows are collected first. */
    size_t count = 0, cap = 0;
    broker_execution_t **loaded = NULL;
    unloadable_t *bad = NULL;
    size_t bad_count = 0, bad_cap = 0;
    int rc;
    while ((rc = store_step(s)) == STORE_ROW) {
        const char *id = store_col_text(s, 0);
        char err[256] = "";
        broker_execution_t *exec = execution_of_row(s, err, sizeof err);
        if (exec) {
            if (count == cap) {
                cap = cap ? cap * 2 : 64;
                broker_execution_t **grown = realloc(loaded, cap * sizeof *loaded);
                if (!grown) {
                    broker_execution_destroy(&exec);
                    rc = STORE_NOMEM;
                    break;
                }
                loaded = grown;
            }
            loaded[count++] = exec;
        } else if (id) {
            if (bad_count == bad_cap) {
                bad_cap = bad_cap ? bad_cap * 2 : 8;
                unloadable_t *grown = realloc(bad, bad_cap * sizeof *bad);
                if (!grown) {
                    rc = STORE_NOMEM;
                    break;
                }
                bad = grown;
            }
            bad[bad_count++] = (unloadable_t){strdup(id), strdup(err)};
        }
    }
    store_reset(s);
    int result = rc == STORE_DONE ? 0 : -1;
    if (result < 0)
        store_log_error(self, "load active executions");

    for (size_t i = 0; i < bad_count; i++) {
        if (result == 0 && bad[i].id)
            fail_unloadable(self, bad[i].id, bad[i].reason ? bad[i].reason : "?", syn_now_us());
        free(bad[i].id);
        free(bad[i].reason);
    }
    free(bad);
    int handed = 0;
    for (size_t i = 0; i < count; i++) {
        if (result == 0 && load_phases(self, loaded[i]) < 0)
            result = -1;
        if (result == 0) {
            fn(loaded[i], arg);
            handed++;
        } else {
            broker_execution_destroy(&loaded[i]);
        }
    }
    free(loaded);
    return result == 0 ? handed : -1;
}

int broker_store_execution_load(broker_store_t *self, const char *id, broker_execution_t **out,
                                char *err, size_t errlen)
{
    *out = NULL;
    store_q_t *s = store_stmt(self, SQL_EXECUTION_ONE);
    if (!s)
        return -1;
    store_bind_text(s, 1, id);
    int found = store_step_one(self, s, "load an execution");
    if (found != 1) {
        snprintf(err, errlen, found == 0 ? "execution %s not found" : "cannot read it", id);
        return found;
    }
    broker_execution_t *exec = execution_of_row(s, err, errlen);
    store_reset(s);
    if (!exec)
        return -1;
    if (load_phases(self, exec) < 0) {
        snprintf(err, errlen, "cannot read its phases");
        broker_execution_destroy(&exec);
        return -1;
    }
    *out = exec;
    return 1;
}
