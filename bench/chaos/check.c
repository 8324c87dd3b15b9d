/* check: the soak's checker (the Jepsen queue checker's questions, asked of
 * syn). It reads, after the stack has stopped, three histories that no single
 * process owns:
 *   - what the clients were told: every submit, its answers and 503s;
 *   - the broker's store (read-only): executions, phases, and the event log;
 *   - the command agents' own records (one "start EXEC PHASE ATTEMPT PID" line
 *     per run, written by the agent itself, so a run the broker never heard of
 *     still shows).
 * and counts what must be zero: an accepted execution the store lacks (lost), a
 * phase result or a terminal state recorded twice, a phase whose agent ran more
 * often than its attempts say or one attempt run twice, an execution still not
 * terminal after the settle, a completed execution whose phases are not all
 * completed. */
#include "bench/chaos/chaos.h"

#include <sqlite3.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char *id;
    char *task;
    char *status;
    int answered; /* 200s the clients got for this id */
} row_t;

static int row_cmp_id(const void *a, const void *b)
{
    return strcmp(((const row_t *)a)->id, ((const row_t *)b)->id);
}

static void problem(chaos_findings_t *f, const char *fmt, const char *a, const char *b)
{
    size_t len = strlen(f->problems);
    if (len + 200 < sizeof f->problems)
        snprintf(f->problems + len, sizeof f->problems - len, fmt, a, b ? b : "");
}

static char *dup_col(sqlite3_stmt *s, int col)
{
    const unsigned char *t = sqlite3_column_text(s, col);
    return strdup(t ? (const char *)t : "");
}

/* Every execution of the store, sorted by id. */
static row_t *load_rows(sqlite3 *db, size_t *n)
{
    sqlite3_stmt *s = NULL;
    *n = 0;
    if (sqlite3_prepare_v2(db, "SELECT id, COALESCE(task, ''), status FROM executions", -1, &s,
                           NULL) != SQLITE_OK)
        return NULL;
    size_t cap = 1024;
    row_t *rows = malloc(cap * sizeof *rows);
    while (rows && sqlite3_step(s) == SQLITE_ROW) {
        if (*n == cap) {
            row_t *grown = realloc(rows, (cap *= 2) * sizeof *rows);
            if (!grown)
                break;
            rows = grown;
        }
        rows[(*n)++] = (row_t){dup_col(s, 0), dup_col(s, 1), dup_col(s, 2), 0};
    }
    sqlite3_finalize(s);
    if (rows)
        qsort(rows, *n, sizeof *rows, row_cmp_id);
    return rows;
}

/* Runs a query whose rows are (name, detail, count) and counts them as
 * violations of one kind, naming the first few. */
static long count_violations(sqlite3 *db, const char *sql, const char *what, chaos_findings_t *f)
{
    sqlite3_stmt *s = NULL;
    long n = 0;
    if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK) {
        problem(f, "query failed: %s (%s)\n", sqlite3_errmsg(db), what);
        return 1;
    }
    while (sqlite3_step(s) == SQLITE_ROW) {
        if (n++ < 5) {
            char detail[160];
            snprintf(detail, sizeof detail, "%s %s",
                     (const char *)sqlite3_column_text(s, 1) ? (const char *)sqlite3_column_text(s, 1) : "",
                     (const char *)sqlite3_column_text(s, 2) ? (const char *)sqlite3_column_text(s, 2) : "");
            char head[200];
            snprintf(head, sizeof head, "%s: %s", what,
                     (const char *)sqlite3_column_text(s, 0) ? (const char *)sqlite3_column_text(s, 0) : "");
            problem(f, "%s %s\n", head, detail);
        }
    }
    sqlite3_finalize(s);
    return n;
}

static long count_of(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *s = NULL;
    long n = -1;
    if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) == SQLITE_OK && sqlite3_step(s) == SQLITE_ROW)
        n = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    return n;
}

/* Compares the clients' submits with the store's executions. */
static void check_submits(chaos_t *self, row_t *rows, size_t nrows, chaos_findings_t *f)
{
    /* tag → executions in the store with that task. */
    for (size_t i = 0; i < self->nsubs; i++) {
        const chaos_submit_t *s = &self->subs[i];
        if (s->status != 0)
            f->answered++;
        if (s->got_503) {
            f->answered_503 += s->got_503;
            if (s->tries > 1)
                f->retried_503++;
            if (s->status == 200)
                f->accepted_after_503++;
            else if (s->status == 503)
                f->gave_up_503++;
        }
        if (s->status == 200) {
            f->accepted++;
            row_t key = {.id = (char *)s->id};
            row_t *r = bsearch(&key, rows, nrows, sizeof *rows, row_cmp_id);
            if (!r) {
                f->lost++;
                problem(f, "lost: %s (%s) was accepted and is not in the store\n", s->id,
                        s->tag);
            } else {
                r->answered++;
                if (strcmp(r->task, s->tag))
                    problem(f, "wrong task: %s holds %s\n", s->id, r->task);
            }
        } else if (s->status < 0) {
            f->no_answer++;
        }
    }
    /* Executions nobody was told about: from a 503 (committed all the same) or
     * from a submit that got no answer. Matched by task, which is unique per
     * submit. */
    for (size_t i = 0; i < nrows; i++) {
        if (rows[i].answered)
            continue;
        if (strncmp(rows[i].task, "chaos-", 6) || !strcmp(rows[i].task, "chaos-disk-probe")) {
            f->untagged_in_store++;
            continue;
        }
        const chaos_submit_t *s = NULL;
        for (size_t k = 0; k < self->nsubs && !s; k++)
            if (!strcmp(self->subs[k].tag, rows[i].task))
                s = &self->subs[k];
        if (s && s->got_503 && s->status != -1 && s->status != -2) {
            f->committed_503++;
            problem(f, "a 503 answer, yet committed: %s (%s)\n", rows[i].id, rows[i].task);
        } else {
            f->no_answer_in_store++;
        }
    }
}

/* The agents' records against the store's attempt counts. */
static void check_agent_records(chaos_t *self, sqlite3 *db, chaos_findings_t *f)
{
    FILE *in = fopen(self->records, "r");
    if (!in)
        return;
    sqlite3_exec(db, "CREATE TEMP TABLE runs(execution_id TEXT, phase_id TEXT, attempt INTEGER)",
                 NULL, NULL, NULL);
    sqlite3_stmt *ins = NULL;
    sqlite3_prepare_v2(db, "INSERT INTO runs VALUES (?, ?, ?)", -1, &ins, NULL);
    char line[512], exec[128], phase[128];
    int attempt;
    sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
    while (ins && fgets(line, sizeof line, in))
        if (sscanf(line, "start %127s %127s %d", exec, phase, &attempt) == 3) {
            f->agent_runs++;
            sqlite3_bind_text(ins, 1, exec, -1, SQLITE_TRANSIENT);
            sqlite3_bind_text(ins, 2, phase, -1, SQLITE_TRANSIENT);
            sqlite3_bind_int(ins, 3, attempt);
            sqlite3_step(ins);
            sqlite3_reset(ins);
        }
    sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
    sqlite3_finalize(ins);
    fclose(in);
    f->runs_over_attempts = count_violations(
        db,
        "SELECT r.execution_id, r.phase_id, 'ran ' || count(*) || ' times, attempts '"
        " || COALESCE(p.attempts, 'none') FROM runs r LEFT JOIN phases p"
        " ON p.execution_id = r.execution_id AND p.phase_id = r.phase_id"
        " GROUP BY r.execution_id, r.phase_id HAVING count(*) > COALESCE(p.attempts, 0)",
        "phase run more often than its attempts", f);
    f->attempts_run_twice = count_violations(
        db,
        "SELECT execution_id, phase_id, 'attempt ' || attempt || ' ran ' || count(*) || ' times'"
        " FROM runs GROUP BY execution_id, phase_id, attempt HAVING count(*) > 1",
        "one attempt run twice", f);
}

/* The store's own questions: each query's rows are violations of one kind. */
static const struct {
    const char *what;
    size_t field; /* offsetof the count in chaos_findings_t */
    const char *sql;
} STORE_CHECKS[] = {
    {"phase result recorded twice", offsetof(chaos_findings_t, duplicate_results),
     "SELECT execution_id, json_extract(data, '$.phase_id'), count(*) || ' PhaseCompleted'"
     " FROM events WHERE type = 'PhaseCompleted' GROUP BY 1, 2 HAVING count(*) > 1"},
    {"terminal state recorded twice", offsetof(chaos_findings_t, duplicate_terminals),
     "SELECT execution_id, group_concat(type), count(*) FROM events WHERE type IN"
     " ('ExecutionCompleted', 'ExecutionFailed', 'ExecutionCancelled')"
     " GROUP BY execution_id HAVING count(*) > 1"},
    {"stuck after the settle", offsetof(chaos_findings_t, stuck),
     "SELECT id, status, COALESCE(current_phase, '') FROM executions"
     " WHERE status NOT IN ('completed', 'failed', 'cancelled')"},
    {"inconsistent", offsetof(chaos_findings_t, inconsistent),
     "SELECT e.id, p.phase_id, 'completed execution, phase ' || p.status FROM executions e"
     " JOIN phases p ON p.execution_id = e.id"
     " WHERE e.status = 'completed' AND p.status != 'completed'"},
    {"inconsistent", offsetof(chaos_findings_t, inconsistent),
     "SELECT e.id, e.status, 'no terminal event' FROM executions e"
     " WHERE e.status IN ('completed', 'failed', 'cancelled') AND NOT EXISTS"
     " (SELECT 1 FROM events v WHERE v.execution_id = e.id AND v.type = 'Execution' ||"
     "  upper(substr(e.status, 1, 1)) || substr(e.status, 2))"},
};

static void check_store(sqlite3 *db, chaos_findings_t *f)
{
    for (size_t i = 0; i < sizeof STORE_CHECKS / sizeof *STORE_CHECKS; i++)
        *(long *)((char *)f + STORE_CHECKS[i].field) +=
            count_violations(db, STORE_CHECKS[i].sql, STORE_CHECKS[i].what, f);
    f->completed = count_of(db, "SELECT count(*) FROM executions WHERE status = 'completed'");
    f->failed = count_of(db, "SELECT count(*) FROM executions WHERE status = 'failed'");
    f->cancelled = count_of(db, "SELECT count(*) FROM executions WHERE status = 'cancelled'");
    f->executions_in_store = count_of(db, "SELECT count(*) FROM executions");

    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(db,
                           "SELECT count(*), COALESCE(error, '(none)') FROM executions"
                           " WHERE status = 'failed' GROUP BY 2 ORDER BY 1 DESC",
                           -1, &s, NULL) == SQLITE_OK)
        while (sqlite3_step(s) == SQLITE_ROW) {
            size_t len = strlen(f->failed_why);
            if (len + 200 >= sizeof f->failed_why)
                break;
            snprintf(f->failed_why + len, sizeof f->failed_why - len, "%6lld  %.150s\n",
                     (long long)sqlite3_column_int64(s, 0),
                     (const char *)sqlite3_column_text(s, 1));
        }
    sqlite3_finalize(s);
}

/* When each execution ended, in soak seconds (for the chart). */
static void end_times(chaos_t *self, sqlite3 *db, chaos_findings_t *f)
{
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(db, "SELECT completed_at FROM executions WHERE completed_at IS NOT NULL",
                           -1, &s, NULL) != SQLITE_OK)
        return;
    size_t cap = 0;
    while (sqlite3_step(s) == SQLITE_ROW) {
        if (f->nend == cap) {
            cap = cap ? cap * 2 : 1024;
            double *grown = realloc(f->end_t, cap * sizeof *grown);
            if (!grown)
                break;
            f->end_t = grown;
        }
        f->end_t[f->nend++] = (double)(sqlite3_column_int64(s, 0) - self->t0_wall_us) / 1e6;
    }
    sqlite3_finalize(s);
}

int chaos_check(chaos_t *self, chaos_findings_t *f, char *err, size_t errlen)
{
    memset(f, 0, sizeof *f);
    sqlite3 *db = NULL;
    /* Read-write on a copy would be cleaner; the stack is stopped, and the
     * temp table of agent runs lives in memory (temp_store), so the file is
     * only read. */
    if (sqlite3_open_v2(stack_db_path(self->stack), &db, SQLITE_OPEN_READONLY, NULL) !=
        SQLITE_OK) {
        snprintf(err, errlen, "cannot open %s: %s", stack_db_path(self->stack),
                 db ? sqlite3_errmsg(db) : "out of memory");
        sqlite3_close(db);
        return -1;
    }
    sqlite3_exec(db, "PRAGMA temp_store = MEMORY", NULL, NULL, NULL);
    size_t nrows = 0;
    row_t *rows = load_rows(db, &nrows);
    if (!rows) {
        snprintf(err, errlen, "cannot read the executions: %s", sqlite3_errmsg(db));
        sqlite3_close(db);
        return -1;
    }
    pthread_mutex_lock(&self->lock);
    check_submits(self, rows, nrows, f);
    pthread_mutex_unlock(&self->lock);
    check_store(db, f);
    check_agent_records(self, db, f);
    end_times(self, db, f);
    for (size_t i = 0; i < nrows; i++) {
        free(rows[i].id);
        free(rows[i].task);
        free(rows[i].status);
    }
    free(rows);
    sqlite3_close(db);
    return 0;
}

bool chaos_findings_fail(const chaos_findings_t *f, int unexpected_exits)
{
    return f->lost || f->stuck || f->duplicate_results || f->duplicate_terminals ||
           f->runs_over_attempts || f->attempts_run_twice || f->inconsistent ||
           unexpected_exits;
}
