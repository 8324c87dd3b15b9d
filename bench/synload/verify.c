#include "bench/synload/verify.h"

#include <libpq-fe.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *verify_workflow_json(const char *id, int phases, int sleep_ms, int max_attempts)
{
    size_t size = 512 + (size_t)phases * 256;
    char *json = malloc(size);
    if (!json)
        return NULL;
    size_t len = (size_t)snprintf(json, size,
                                  "{\"id\":\"%s\",\"name\":\"synload %d-phase chain\","
                                  "\"phases\":[",
                                  id, phases);
    for (int k = 1; k <= phases && len < size; k++) {
        char source[32], attempts[48] = "";
        if (k == 1)
            snprintf(source, sizeof source, "$ARGUMENTS");
        else
            snprintf(source, sizeof source, "{{p%d}}", k - 1);
        if (max_attempts > 0)
            snprintf(attempts, sizeof attempts, ",\"max_attempts\":%d", max_attempts);
        len += (size_t)snprintf(json + len, size - len,
                                "%s{\"phase_id\":\"p%d\",\"name\":\"Phase %d\",\"order\":%d,"
                                "\"prompt_template\":\"#mock sleep %d\\n%s|p%d\"%s}",
                                k > 1 ? "," : "", k, k, k, sleep_ms, source, k, attempts);
    }
    if (len < size)
        snprintf(json + len, size - len, "]}");
    return json;
}

char *verify_expected_output(const char *task, int phase, int sleep_ms)
{
    char *prev = NULL;
    for (int k = 1; k <= phase; k++) {
        const char *source = k == 1 ? task : prev;
        size_t size = strlen(source) + 96;
        char *out = malloc(size);
        if (!out) {
            free(prev);
            return NULL;
        }
        snprintf(out, size, "mock output for phase p%d:\n#mock sleep %d\n%s|p%d", k, sleep_ms,
                 source, k);
        free(prev);
        prev = out;
    }
    return prev;
}

void verify_result_clear(verify_result_t *result)
{
    free(result->completed_us);
    memset(result, 0, sizeof *result);
}

static void problem(verify_result_t *r, const char *fmt, const char *a, const char *b)
{
    r->bad++;
    if (!r->first_problem[0])
        snprintf(r->first_problem, sizeof r->first_problem, fmt, a, b);
}

/* Where the rows come from: the broker's SQLite file (read-only, beside the
 * running broker) or its PostgreSQL database; the same two queries on both. */
#define EXEC_SQL "SELECT status, completed_at FROM executions WHERE id = %s"
#define PHASES_SQL                                                                         \
    "SELECT phase_id, status, output FROM phases"                                          \
    " WHERE exec_num = (SELECT num FROM executions WHERE id = %s) ORDER BY ord"

typedef struct {
    sqlite3 *db;
    sqlite3_stmt *ex, *ph;
    PGconn *pg;
    PGresult *res; /* PostgreSQL: the rows of the last query */
    int row;
    char exec_sql[128], phases_sql[192];
} source_t;

static int source_open(source_t *src, const char *where, char *err, size_t errlen)
{
    memset(src, 0, sizeof *src);
    if (strncmp(where, "postgresql:", 11) == 0) {
        src->pg = PQconnectdb(where);
        if (PQstatus(src->pg) != CONNECTION_OK) {
            snprintf(err, errlen, "connect %s: %s", where, PQerrorMessage(src->pg));
            return -1;
        }
        snprintf(src->exec_sql, sizeof src->exec_sql, EXEC_SQL, "$1");
        snprintf(src->phases_sql, sizeof src->phases_sql, PHASES_SQL, "$1");
        return 0;
    }
    if (sqlite3_open_v2(where, &src->db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "open %s: %s", where,
                 src->db ? sqlite3_errmsg(src->db) : "out of memory");
        return -1;
    }
    sqlite3_busy_timeout(src->db, 10000);
    snprintf(src->exec_sql, sizeof src->exec_sql, EXEC_SQL, "?1");
    snprintf(src->phases_sql, sizeof src->phases_sql, PHASES_SQL, "?1");
    if (sqlite3_prepare_v2(src->db, src->exec_sql, -1, &src->ex, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(src->db, src->phases_sql, -1, &src->ph, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "%s: %s", where, sqlite3_errmsg(src->db));
        return -1;
    }
    sqlite3_exec(src->db, "BEGIN", NULL, NULL, NULL);
    return 0;
}

static void source_close(source_t *src)
{
    if (src->db)
        sqlite3_exec(src->db, "COMMIT", NULL, NULL, NULL);
    sqlite3_finalize(src->ex);
    sqlite3_finalize(src->ph);
    sqlite3_close(src->db);
    PQclear(src->res);
    PQfinish(src->pg);
}

static const char *source_error(source_t *src)
{
    return src->pg ? PQerrorMessage(src->pg) : sqlite3_errmsg(src->db);
}

/* Runs one of the two queries for an execution id: 0, or -1. */
static int source_query(source_t *src, sqlite3_stmt *st, const char *sql, const char *id)
{
    if (src->pg) {
        PQclear(src->res);
        src->res = PQexecParams(src->pg, sql, 1, NULL, &id, NULL, NULL, 0);
        src->row = -1;
        return PQresultStatus(src->res) == PGRES_TUPLES_OK ? 0 : -1;
    }
    sqlite3_reset(st);
    return sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC) == SQLITE_OK ? 0 : -1;
}

/* The next row: 1, 0 at the end, -1 on error. */
static int source_next(source_t *src, sqlite3_stmt *st)
{
    if (src->pg)
        return ++src->row < PQntuples(src->res) ? 1 : 0;
    int step = sqlite3_step(st);
    return step == SQLITE_ROW ? 1 : step == SQLITE_DONE ? 0 : -1;
}

static const char *source_text(source_t *src, sqlite3_stmt *st, int col)
{
    if (src->pg)
        return PQgetisnull(src->res, src->row, col) ? NULL : PQgetvalue(src->res, src->row, col);
    return (const char *)sqlite3_column_text(st, col);
}

static int check_phases(source_t *src, const batch_t *batch, int i, int phases, int sleep_ms,
                        verify_result_t *r)
{
    if (source_query(src, src->ph, src->phases_sql, batch->ids[i]) != 0)
        return -1;
    int k = 0, ok = 1;
    int step;
    while ((step = source_next(src, src->ph)) == 1) {
        k++;
        const char *status = source_text(src, src->ph, 1);
        const char *output = source_text(src, src->ph, 2);
        char *expected = verify_expected_output(batch->tasks[i], k, sleep_ms);
        if (!expected)
            return -1;
        if (!status || strcmp(status, "completed") != 0) {
            problem(r, "execution %s: a phase is %s, not completed", batch->ids[i],
                    status ? status : "NULL");
            ok = 0;
        } else if (!output || strcmp(output, expected) != 0) {
            problem(r, "execution %s: a phase's output differs from the expected: %.200s",
                    batch->ids[i], output ? output : "NULL");
            ok = 0;
        }
        free(expected);
        if (!ok)
            return 0;
    }
    if (step != 0)
        return -1;
    if (k != phases)
        problem(r, "execution %s: %s phase rows", batch->ids[i], k < phases ? "too few" : "too many");
    return 0;
}

int verify_batch_db(const char *db_path, const batch_t *batch, int phases, int sleep_ms,
                    verify_result_t *r, char *err, size_t errlen)
{
    memset(r, 0, sizeof *r);
    r->completed_us = calloc((size_t)(batch->n > 0 ? batch->n : 1), sizeof *r->completed_us);
    if (!r->completed_us) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    source_t src;
    int rc = -1;
    if (source_open(&src, db_path, err, errlen) != 0)
        goto done;
    for (int i = 0; i < batch->n; i++) {
        r->checked++;
        int step = source_query(&src, src.ex, src.exec_sql, batch->ids[i]) == 0
                       ? source_next(&src, src.ex)
                       : -1;
        if (step == 0) {
            problem(r, "execution %s (task %s) is not in the database", batch->ids[i],
                    batch->tasks[i]);
            continue;
        }
        if (step < 0) {
            snprintf(err, errlen, "%s: %s", db_path, source_error(&src));
            goto done;
        }
        const char *status = source_text(&src, src.ex, 0);
        if (!status || strcmp(status, "completed") != 0) {
            problem(r, "execution %s is %s, not completed", batch->ids[i],
                    status ? status : "NULL");
            continue;
        }
        const char *completed = source_text(&src, src.ex, 1);
        r->completed_us[i] = completed ? strtoll(completed, NULL, 10) : 0;
        if (r->completed_us[i] > r->last_completed_us)
            r->last_completed_us = r->completed_us[i];
        if (check_phases(&src, batch, i, phases, sleep_ms, r) != 0) {
            snprintf(err, errlen, "%s: %s", db_path, source_error(&src));
            goto done;
        }
    }
    rc = 0;
done:
    source_close(&src);
    return rc;
}
