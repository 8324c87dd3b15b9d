/* store_controls: what the team controls (issue 19) keep in SQLite — the first
 * answer to an execute that carried an Idempotency-Key, and its expiry; the
 * links between an execution and its reruns, and the usage a rerun reuses. It
 * stands alone because these rows are about executions in relation to others
 * (a key across retries, a rerun and its origin), not one execution's life:
 * keys outlive a restart so a client retrying after a lost answer gets the same
 * execution, and go when the broker's window has passed. */
#include "broker/store_internal.h"

#include <stdlib.h>
#include <string.h>

int broker_store_idempotency_find(broker_store_t *self, const char *key, int64_t since_us,
                                  char **fingerprint, char **answer)
{
    *fingerprint = *answer = NULL;
    store_q_t *s = store_stmt(self, SQL_IDEMPOTENCY_FIND);
    if (!s)
        return -1;
    store_bind_text(s, 1, key);
    store_bind_int(s, 2, since_us);
    int found = store_step_one(self, s, "find an idempotency key");
    if (found != 1)
        return found;
    *fingerprint = store_column_strdup(s, 0);
    *answer = store_column_strdup(s, 1);
    store_reset(s);
    if (!*fingerprint || !*answer) {
        free(*fingerprint);
        free(*answer);
        *fingerprint = *answer = NULL;
        return -1;
    }
    return 1;
}

/* The expired keys go first, in the same transaction: the index on created_at
 * makes that a seek when there are none, so expiry needs no timer of its own. */
int broker_store_idempotency_put(broker_store_t *self, const char *key, const char *fingerprint,
                                 const char *execution_id, const char *answer,
                                 int64_t created_at, int64_t expire_before_us)
{
    store_q_t *s = store_write_stmt(self, SQL_IDEMPOTENCY_EXPIRE);
    if (!s)
        return -1;
    store_bind_int(s, 1, expire_before_us);
    if (store_run(self, s, "expire idempotency keys") != STORE_DONE)
        return -1;
    s = store_stmt(self, SQL_IDEMPOTENCY_PUT);
    if (!s)
        return -1;
    store_bind_text(s, 1, key);
    store_bind_text(s, 2, fingerprint);
    store_bind_text(s, 3, execution_id);
    store_bind_text(s, 4, answer);
    store_bind_int(s, 5, created_at);
    return store_run(self, s, "store an idempotency key") == STORE_DONE ? 0 : -1;
}

int broker_store_rerun_link(broker_store_t *self, const broker_execution_t *exec,
                            const char *rerun_of, size_t reused)
{
    static const sql_id_t reuse[] = {SQL_RERUN_REUSE_PHASE, SQL_RERUN_REUSE_ARTIFACTS};
    for (size_t i = 0; i < reused * 2; i++) {
        store_q_t *s = store_write_stmt(self, reuse[i % 2]);
        if (!s)
            return -1;
        store_bind_int(s, 1, exec->num);
        store_bind_text(s, 2, exec->phases[i / 2].phase_id);
        store_bind_text(s, 3, rerun_of);
        if (store_run(self, s, "reuse a phase") != STORE_DONE)
            return -1;
    }
    store_q_t *s = store_write_stmt(self, SQL_RERUN_MARK);
    if (!s)
        return -1;
    store_bind_int(s, 1, exec->num);
    store_bind_text(s, 2, rerun_of);
    return store_run(self, s, "link a rerun") == STORE_DONE ? 0 : -1;
}

/* The ids a statement of one text column yields, bound to id, as an array. */
static json_t *ids_of(broker_store_t *self, sql_id_t which, const char *id, const char *what)
{
    store_q_t *s = store_stmt(self, which);
    if (!s)
        return NULL;
    store_bind_text(s, 1, id);
    json_t *rows = json_array();
    int rc = STORE_NOMEM;
    while (rows && (rc = store_step(s)) == STORE_ROW)
        json_array_append_new(rows, store_column_string_or_null(s, 0));
    return store_rows_end(self, s, rows, rows ? rc : STORE_NOMEM, what);
}

/* max_budget_usd (or null) and cost_usd, what it spent itself (broker/budget_usd.h):
 * the finished execution's; the engine puts an active one's over them. */
static int store_budget_detail(broker_store_t *self, const char *id, json_t *detail)
{
    store_q_t *s = store_stmt(self, SQL_RERUN_OF);
    if (!s)
        return -1;
    store_bind_text(s, 1, id);
    int found = store_step_one(self, s, "read the budget");
    if (found == 1) {
        json_object_set_new(detail, "max_budget_usd",
                            store_col_null(s, 1) ? json_null()
                                                 : json_real(store_col_double(s, 1)));
        json_object_set_new(detail, "cost_usd", json_real(store_col_double(s, 2)));
        store_reset(s);
    }
    return found < 0 ? -1 : 0;
}

int store_controls_detail(broker_store_t *self, const char *id, json_t *detail)
{
    json_t *of = ids_of(self, SQL_RERUN_OF, id, "read rerun_of");
    json_t *reruns = of ? ids_of(self, SQL_RERUNS, id, "read reruns") : NULL;
    store_q_t *s = reruns ? store_stmt(self, SQL_REUSED_PHASES) : NULL;
    if (!s) {
        json_decref(of);
        json_decref(reruns);
        return -1;
    }
    json_t *first = json_array_get(of, 0);
    json_object_set_new(detail, "rerun_of", first ? json_incref(first) : json_null());
    if (store_budget_detail(self, id, detail) < 0) {
        json_decref(of);
        json_decref(reruns);
        store_reset(s);
        return -1;
    }
    json_object_set_new(detail, "reruns", reruns);
    json_decref(of);
    json_t *phases = json_object_get(detail, "phases");
    size_t i;
    json_t *phase;
    json_array_foreach(phases, i, phase)
        json_object_set_new(phase, "reused_from", json_null());
    store_bind_text(s, 1, id);
    int rc;
    while ((rc = store_step(s)) == STORE_ROW) {
        const char *phase_id = store_col_text(s, 0);
        json_array_foreach(phases, i, phase)
            if (phase_id && json_is_string(json_object_get(phase, "phase_id")) &&
                strcmp(json_string_value(json_object_get(phase, "phase_id")), phase_id) == 0)
                json_object_set_new(phase, "reused_from", store_column_string_or_null(s, 1));
    }
    store_reset(s);
    if (rc != STORE_DONE) {
        store_log_error(self, "read reused phases");
        return -1;
    }
    return 0;
}
