/* store_executions: what the engine writes through as an execution runs — its
 * row and the status counts that follow it, its phases, attempts, usage and
 * operator messages. It stands alone because these are the hot writes: each
 * change is one row update, keyed by the execution's insertion number. */
#include "broker/store_internal.h"

#include "common/ids.h"
#include "common/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *current_phase_id(const broker_execution_t *exec)
{
    return broker_execution_active_phase((broker_execution_t *)exec)
               ? exec->phases[exec->current].phase_id
               : NULL;
}

int broker_store_execution_id(broker_store_t *self, char *id)
{
    if (!self->pg)
        return syn_id_make("exec-", BROKER_EXEC_ID_HEX, id, BROKER_EXEC_ID_SIZE);
    for (int tries = 0; self->nfree == 0 && tries < 4; tries++) {
        int n = 0;
        while (n < STORE_FREE_IDS &&
               syn_id_make("exec-", BROKER_EXEC_ID_HEX, self->free_ids[n], BROKER_EXEC_ID_SIZE) == 0)
            n++;
        self->nfree = store_pg_free_ids(self->pg, self->free_ids, self->free_nums, n);
        if (self->nfree < 0) {
            self->nfree = 0;
            store_log_error(self, "check new execution ids");
            return -1;
        }
    }
    if (self->nfree == 0)
        return -1;
    self->nfree--;
    snprintf(id, BROKER_EXEC_ID_SIZE, "%s", self->free_ids[self->nfree]);
    snprintf(self->handed_id, sizeof self->handed_id, "%s", id);
    self->handed_num = self->free_nums[self->nfree];
    return 0;
}

int broker_store_execution_insert(broker_store_t *self, broker_execution_t *exec)
{
    char *inputs = store_dump_json(exec->inputs);
    char *repos = store_dump_json(exec->repos);
    int result = -1;
    if (!inputs || !repos || store_begin_write(self) < 0)
        goto done;
    /* An id this store found free (PostgreSQL) is inserted with its key, unanswered. */
    int64_t keyed = self->handed_num > 0 && strcmp(exec->id, self->handed_id) == 0
                        ? self->handed_num
                        : 0;
    self->handed_num = 0;
    store_q_t *s = store_stmt(self, keyed ? SQL_EXECUTION_INSERT_KEYED : SQL_EXECUTION_INSERT);
    if (!s)
        goto done;
    if (keyed)
        store_bind_int(s, 17, keyed);
    store_bind_text(s, 1, exec->id);
    store_bind_text(s, 2, exec->workflow_id);
    store_bind_int(s, 3, exec->workflow_version);
    store_bind_text(s, 4, broker_exec_status_name(exec->status));
    store_bind_text(s, 5, inputs);
    store_bind_text(s, 6, exec->task);
    store_bind_text(s, 7, repos);
    store_bind_int(s, 8, (int64_t)exec->phase_count);
    store_bind_int(s, 9, (int64_t)exec->completed_phases);
    store_bind_text(s, 10, current_phase_id(exec));
    store_bind_int(s, 11, exec->created_at);
    store_bind_time(s, 12, exec->started_at);
    store_bind_time(s, 13, exec->completed_at);
    store_bind_text(s, 14, exec->error);
    store_bind_int(s, 15, exec->priority);
    if (exec->max_budget_usd > 0)
        store_bind_double(s, 16, exec->max_budget_usd);
    else
        store_bind_null(s, 16);
    int rc = store_run(self, s, "insert execution");
    if (rc != STORE_DONE) {
        result = rc == STORE_CONSTRAINT ? 1 : -1;
        goto done;
    }
    int64_t num = keyed ? keyed : store_inserted_id(self);
    exec->num = num;
    const char *status = broker_exec_status_name(exec->status);
    if (store_count_change(self, exec->workflow_id, status, num, 1) < 0 ||
        store_count_change(self, exec->workflow_id, "", num, 1) < 0)
        goto done;
    for (size_t i = 0; i < exec->phase_count; i++) {
        broker_phase_t *phase = &exec->phases[i];
        s = store_stmt(self, SQL_PHASE_INSERT);
        if (!s)
            goto done;
        store_bind_int(s, 1, num);
        store_bind_text(s, 2, phase->phase_id);
        store_bind_int(s, 3, phase->order);
        store_bind_text(s, 4, phase->name);
        store_bind_text(s, 5, phase->model);
        store_bind_text(s, 6, broker_phase_status_name(phase->status));
        store_bind_text(s, 7, exec->id);
        if (store_run(self, s, "insert phase") != STORE_DONE)
            goto done;
        phase->row = store_inserted_id(self);
    }
    result = 0;
done:
    free(inputs);
    free(repos);
    return result;
}

/* 1 with the row, 0 when there is none, -1 on error (free workflow_id). */
int store_counted_row(broker_store_t *self, const char *id, counted_row_t *row)
{
    store_q_t *s = store_stmt(self, SQL_EXECUTION_ROW);
    if (!s)
        return -1;
    store_bind_text(s, 1, id);
    int result = store_step_one(self, s, "read execution row");
    if (result == 1) {
        row->workflow_id = store_column_strdup(s, 0);
        const char *status = store_col_text(s, 1);
        snprintf(row->status, sizeof row->status, "%s", status ? status : "");
        row->num = store_col_int(s, 2);
        result = row->workflow_id ? 1 : -1;
        store_reset(s);
    } else if (result < 0) {
        self->failed = true;
    }
    return result;
}

/* One execution of row's workflow moved from row's status to status: the
 * counts and page blocks follow. */
int store_recount(broker_store_t *self, const counted_row_t *row, const char *status)
{
    if (strcmp(row->status, status) == 0)
        return 0;
    if (store_count_change(self, row->workflow_id, row->status, row->num, -1) < 0 ||
        store_count_change(self, row->workflow_id, status, row->num, 1) < 0)
        return -1;
    return 0;
}

/* The row as the counts know it, from the execution when it knows what its row
 * says (stored_status), else read from the row. 1, 0 no row, -1 error (free
 * workflow_id). */
static int counted_row_of(broker_store_t *self, const broker_execution_t *exec,
                          counted_row_t *row)
{
    if (exec->stored_status < 0 || exec->num <= 0)
        return store_counted_row(self, exec->id, row);
    row->workflow_id = strdup(exec->workflow_id);
    snprintf(row->status, sizeof row->status, "%s",
             broker_exec_status_name((broker_exec_status_t)exec->stored_status));
    row->num = exec->num;
    return row->workflow_id ? 1 : -1;
}

static int save_execution(broker_store_t *self, const broker_execution_t *exec, bool status)
{
    counted_row_t row = {0};
    if (status) {
        if (store_begin_write(self) < 0)
            return -1;
        int found = counted_row_of(self, exec, &row);
        if (found <= 0)
            return found;
        const char *to = broker_exec_status_name(exec->status);
        int rc = store_recount(self, &row, to);
        bool same = strcmp(row.status, to) == 0;
        free(row.workflow_id);
        if (rc < 0)
            return -1;
        status = !same;
    }
    sql_id_t id = status ? SQL_EXECUTION_SAVE : SQL_EXECUTION_SAVE_PROGRESS;
    store_q_t *s = store_write_stmt(self, id);
    if (!s)
        return -1;
    store_bind_int(s, 1, row.num > 0 ? row.num : exec->num);
    if (status)
        store_bind_text(s, 2, broker_exec_status_name(exec->status));
    store_bind_int(s, 3, (int64_t)exec->completed_phases);
    store_bind_text(s, 4, current_phase_id(exec));
    store_bind_time(s, 5, exec->started_at);
    store_bind_time(s, 6, exec->completed_at);
    store_bind_text(s, 7, exec->error);
    return store_run(self, s, "save execution") == STORE_DONE ? 0 : -1;
}

int broker_store_execution_save(broker_store_t *self, const broker_execution_t *exec)
{
    return save_execution(self, exec, true);
}

int broker_store_execution_save_progress(broker_store_t *self, const broker_execution_t *exec)
{
    return save_execution(self, exec, false);
}

static int save_phase_by(broker_store_t *self, const broker_execution_t *exec,
                         const broker_phase_t *phase, bool output, int64_t row);

/* By rowid when the phase knows it, then by key if that matched no row. */
static int save_phase(broker_store_t *self, const broker_execution_t *exec,
                      const broker_phase_t *phase, bool output)
{
    if (store_begin_write(self) < 0)
        return -1;
    if (phase->row > 0) {
        int rc = save_phase_by(self, exec, phase, output, phase->row);
        if (rc != 0 || store_changes(self) > 0)
            return rc;
    }
    return save_phase_by(self, exec, phase, output, 0);
}

/* One phase save, by rowid (row > 0) or by key. */
static int save_phase_by(broker_store_t *self, const broker_execution_t *exec,
                         const broker_phase_t *phase, bool output, int64_t row)
{
    sql_id_t id = output ? (row ? SQL_PHASE_SAVE_OUTPUT_ROW : SQL_PHASE_SAVE_OUTPUT)
                         : (row ? SQL_PHASE_SAVE_ROW : SQL_PHASE_SAVE);
    store_q_t *s = store_stmt(self, id);
    if (!s)
        return -1;
    if (row)
        store_bind_int(s, 9, row);
    store_bind_int(s, 1, exec->num);
    store_bind_text(s, 2, phase->phase_id);
    store_bind_text(s, 3, broker_phase_status_name(phase->status));
    store_bind_int(s, 4, phase->attempt);
    store_bind_text(s, 5, phase->error);
    store_bind_time(s, 6, phase->started_at);
    store_bind_time(s, 7, phase->completed_at);
    if (output)
        store_bind_text(s, 8, phase->output);
    return store_run(self, s, "save phase") == STORE_DONE ? 0 : -1;
}

int broker_store_phase_save(broker_store_t *self, const broker_execution_t *exec,
                            const broker_phase_t *phase)
{
    return save_phase(self, exec, phase, false);
}

int broker_store_phase_save_with_output(broker_store_t *self, const broker_execution_t *exec,
                                        const broker_phase_t *phase)
{
    return save_phase(self, exec, phase, true);
}

int broker_store_phase_set_output(broker_store_t *self, const broker_execution_t *exec,
                                  const broker_phase_t *phase)
{
    store_q_t *s = store_write_stmt(self, SQL_PHASE_OUTPUT);
    if (!s)
        return -1;
    store_bind_int(s, 1, exec->num);
    store_bind_text(s, 2, phase->phase_id);
    store_bind_text(s, 3, phase->output);
    return store_run(self, s, "save phase output") == STORE_DONE ? 0 : -1;
}

int broker_store_attempt_insert(broker_store_t *self, const broker_execution_t *exec,
                                const char *phase_id, int64_t attempt, const char *worker,
                                int64_t started_at)
{
    store_q_t *s = store_write_stmt(self, SQL_ATTEMPT_INSERT);
    if (!s)
        return -1;
    store_bind_int(s, 1, exec->num);
    store_bind_text(s, 2, phase_id);
    store_bind_int(s, 3, attempt);
    store_bind_text(s, 4, worker);
    store_bind_time(s, 5, started_at);
    store_bind_text(s, 6, exec->id);
    return store_run(self, s, "insert attempt") == STORE_DONE ? 0 : -1;
}

int broker_store_attempt_finish(broker_store_t *self, const broker_execution_t *exec,
                                const char *phase_id, int64_t attempt,
                                broker_attempt_status_t status, int64_t completed_at,
                                const int64_t *exit_code, const char *error)
{
    store_q_t *s = store_write_stmt(self, SQL_ATTEMPT_FINISH);
    if (!s)
        return -1;
    store_bind_int(s, 1, exec->num);
    store_bind_text(s, 2, phase_id);
    store_bind_int(s, 3, attempt);
    store_bind_text(s, 4, broker_attempt_status_name(status));
    store_bind_time(s, 5, completed_at);
    if (exit_code)
        store_bind_int(s, 6, *exit_code);
    else
        store_bind_null(s, 6);
    store_bind_text(s, 7, error);
    return store_run(self, s, "finish attempt") == STORE_DONE ? 0 : -1;
}

/* --- accounting and operator messages -------------------------------------- */

/* The sums a phase and its execution both grow by, from parameter first on:
 * input, output, cache creation and cache read tokens, then the cost. */
static void bind_usage_sums(store_q_t *s, int first, const broker_usage_t *usage)
{
    store_bind_int(s, first, usage->input_tokens);
    store_bind_int(s, first + 1, usage->output_tokens);
    store_bind_int(s, first + 2, usage->cache_creation_tokens);
    store_bind_int(s, first + 3, usage->cache_read_tokens);
    store_bind_double(s, first + 4, usage->cost_usd);
}

int broker_store_usage_record(broker_store_t *self, const char *execution_id,
                              const char *phase_id, int64_t attempt,
                              const broker_usage_t *usage)
{
    json_t *doc = json_object();
    broker_usage_put(usage, doc, NULL, true);
    char *text = store_write_json(self, doc);
    json_decref(doc);
    if (!text)
        return -1;
    int result = -1;
    store_q_t *s = store_stmt(self, SQL_USAGE_ATTEMPT);
    if (!s)
        goto done;
    store_bind_text(s, 1, execution_id);
    store_bind_text(s, 2, phase_id);
    store_bind_int(s, 3, attempt);
    store_bind_text(s, 4, text);
    if (store_run(self, s, "record attempt usage") != STORE_DONE)
        goto done;
    if (store_changes(self) == 0) {
        result = 0;
        goto done;
    }
    s = store_stmt(self, SQL_USAGE_PHASE);
    if (!s)
        goto done;
    store_bind_text(s, 1, execution_id);
    store_bind_text(s, 2, phase_id);
    bind_usage_sums(s, 3, usage);
    store_bind_int(s, 8, usage->num_turns);
    store_bind_int(s, 9, usage->duration_ms);
    store_bind_int(s, 10, usage->tool_call_count);
    store_bind_text(s, 11, usage->model);
    if (store_run(self, s, "add phase usage") != STORE_DONE)
        goto done;
    s = store_stmt(self, SQL_USAGE_EXECUTION);
    if (!s)
        goto done;
    store_bind_text(s, 1, execution_id);
    bind_usage_sums(s, 2, usage);
    if (store_run(self, s, "add execution usage") == STORE_DONE)
        result = 1;
done:
    free(text);
    return result;
}

int64_t broker_store_message_insert(broker_store_t *self, const char *execution_id,
                                    const char *role, const char *message, int64_t created_at)
{
    store_q_t *s = store_write_stmt(self, SQL_MESSAGE_INSERT);
    if (!s)
        return -1;
    store_bind_text(s, 1, execution_id);
    store_bind_text(s, 2, role);
    store_bind_text(s, 3, message);
    store_bind_int(s, 4, created_at);
    if (store_run(self, s, "insert operator message") != STORE_DONE)
        return -1;
    return store_inserted_id(self);
}

int broker_store_messages_bind(broker_store_t *self, const char *execution_id,
                               const char *phase_id)
{
    store_q_t *s = store_write_stmt(self, SQL_MESSAGES_BIND);
    if (!s)
        return -1;
    store_bind_text(s, 1, execution_id);
    store_bind_text(s, 2, phase_id);
    return store_run(self, s, "bind operator messages") == STORE_DONE ? 0 : -1;
}

/* [{id, role, message, phase_id, created_at}] of one execution, oldest first. */
json_t *store_messages_of(broker_store_t *self, const char *execution_id, bool with_time)
{
    store_q_t *s = store_stmt(self, SQL_MESSAGES_OF);
    if (!s)
        return NULL;
    store_bind_text(s, 1, execution_id);
    json_t *list = json_array();
    int rc = STORE_ERROR;
    while (list && (rc = store_step(s)) == STORE_ROW) {
        json_t *m = json_pack("{s:I, s:o, s:o, s:o}", "id",
                              (json_int_t)store_col_int(s, 0), "role",
                              store_column_string_or_null(s, 1), "message",
                              store_column_string_or_null(s, 2), "phase_id",
                              store_column_string_or_null(s, 3));
        if (m && with_time)
            json_object_set_new(m, "created_at", broker_time_json(store_col_int(s, 4)));
        json_array_append_new(list, m);
    }
    return store_rows_end(self, s, list, rc, "load operator messages");
}

json_t *broker_store_messages_load(broker_store_t *self, const char *execution_id)
{
    return store_messages_of(self, execution_id, false);
}
