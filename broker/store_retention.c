/* store_retention: which finished executions the store forgets, and forgetting
 * them a few at a time (broker_store_retention_batch, store.h). It stands alone
 * because it is the one place rows leave the store: every other part only adds
 * and updates, and the rules here (never an unfinished execution, never the newest
 * event, the counts told through the tally) hold only if deletes live together. */
#include "broker/store_internal.h"

#include "common/clock.h"
#include "common/log.h"

#include <stdlib.h>
#include <string.h>

#define FINISHED_STATUSES 3

typedef struct {
    int64_t num;
    char *id;
    char *workflow_id;
    const char *status;
    int64_t completed_at;
} candidate_t;

/* Up to max of status's oldest executions into out; their count, or -1. */
static int oldest_of(broker_store_t *self, const char *status, size_t max, candidate_t *out)
{
    store_q_t *s = store_stmt(self, SQL_RETAIN_OLDEST);
    if (!s)
        return -1;
    store_bind_text(s, 1, status);
    store_bind_int(s, 2, (int64_t)max);
    int n = 0, rc;
    while ((size_t)n < max && (rc = store_step(s)) == STORE_ROW) {
        out[n].num = store_col_int(s, 0);
        out[n].id = store_column_strdup(s, 1);
        out[n].completed_at = store_col_int(s, 2);
        out[n].workflow_id = store_column_strdup(s, 3);
        out[n].status = status;
        if (!out[n].id || !out[n].workflow_id) {
            free(out[n].id);
            free(out[n].workflow_id);
            break;
        }
        n++;
    }
    store_reset(s);
    return n;
}

static int by_num(const void *a, const void *b)
{
    const candidate_t *x = a, *y = b;
    return x->num < y->num ? -1 : x->num > y->num;
}

/* Runs one delete of the execution's rows; 0 or -1. */
static int delete_rows(broker_store_t *self, sql_id_t id, const candidate_t *c)
{
    store_q_t *s = store_write_stmt(self, id);
    if (!s)
        return -1;
    store_bind_int(s, 1, c->num);
    if (id == SQL_RETAIN_DELETE_MESSAGES)
        store_bind_text(s, 2, c->id);
    return store_run(self, s, "delete an expired execution") == STORE_DONE ? 0 : -1;
}

static int delete_execution(broker_store_t *self, const candidate_t *c)
{
    static const sql_id_t order[] = {SQL_RETAIN_DELETE_ARTIFACT_CHUNKS,
                                     SQL_RETAIN_DETACH_NAMED_ARTIFACTS,
                                     SQL_RETAIN_DELETE_DETACHED_CHUNKS,
                                     SQL_RETAIN_DELETE_DETACHED,
                                     SQL_RETAIN_DELETE_ARTIFACTS,
                                     SQL_RETAIN_DELETE_PHASES, SQL_RETAIN_DELETE_ATTEMPTS,
                                     SQL_RETAIN_DELETE_EVENTS, SQL_RETAIN_DELETE_MESSAGES,
                                     SQL_RETAIN_DELETE_EXECUTION};
    for (size_t i = 0; i < sizeof order / sizeof order[0]; i++)
        if (delete_rows(self, order[i], c) < 0)
            return -1;
    /* The counts lose it through the tally, as they gained it (schema v7). */
    if (store_count_change(self, c->workflow_id, c->status, c->num, -1) < 0 ||
        store_count_change(self, c->workflow_id, "", c->num, -1) < 0)
        return -1;
    return 0;
}

int broker_store_retention_batch(broker_store_t *self, int64_t finished_before_us,
                                 int64_t keep_finished, size_t max_count, int64_t budget_us,
                                 broker_store_keep_fn keep, void *arg, json_t *deleted_ids)
{
    if (max_count == 0 || (finished_before_us <= 0 && keep_finished < 0))
        return 0;
    /* Events of the open transaction are written first, so that its deletes find
     * every row; the count changes go to the tally as the turn's others do. */
    if (store_begin_write(self) < 0 || store_flush_events(self) < 0)
        return -1;
    int64_t excess = 0;
    if (keep_finished >= 0) {
        store_q_t *s = store_stmt(self, SQL_RETAIN_FINISHED_COUNT);
        int64_t finished = s ? store_step_int(self, s, "count finished executions") : -1;
        if (finished < 0)
            return -1;
        excess = finished > keep_finished ? finished - keep_finished : 0;
    }
    static const char *const statuses[FINISHED_STATUSES] = {"completed", "failed", "cancelled"};
    candidate_t *found = calloc(FINISHED_STATUSES * max_count, sizeof *found);
    if (!found)
        return -1;
    size_t count = 0;
    int deleted = 0;
    for (size_t i = 0; i < FINISHED_STATUSES; i++) {
        int n = oldest_of(self, statuses[i], max_count, found + count);
        if (n < 0) {
            deleted = -1;
            goto done;
        }
        count += (size_t)n;
    }
    /* Oldest first over the three statuses, so --retain-max-executions keeps the
     * newest whatever they ended as. */
    qsort(found, count, sizeof *found, by_num);
    /* The budget is the deletes': the flushes above are the turn's commit's work
     * done early, not retention's. */
    int64_t started = syn_mono_us();
    for (size_t i = 0; i < count && (size_t)deleted < max_count; i++) {
        bool expired = finished_before_us > 0 && found[i].completed_at > 0 &&
                       found[i].completed_at < finished_before_us;
        if (!expired && excess <= 0)
            continue;
        if (keep && keep(found[i].id, arg))
            continue;
        if (delete_execution(self, &found[i]) < 0) {
            deleted = -1;
            goto done;
        }
        deleted++;
        excess--;
        if (deleted_ids && json_array_append_new(deleted_ids, json_string(found[i].id)) < 0) {
            deleted = -1; /* the caller could not tell who forgets what */
            goto done;
        }
        if (syn_mono_us() - started >= budget_us)
            break;
    }
done:
    for (size_t i = 0; i < count; i++) {
        free(found[i].id);
        free(found[i].workflow_id);
    }
    free(found);
    return deleted;
}
