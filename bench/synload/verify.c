#include "bench/synload/verify.h"

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

static int check_phases(sqlite3_stmt *ph, const batch_t *batch, int i, int phases, int sleep_ms,
                        verify_result_t *r)
{
    sqlite3_reset(ph);
    sqlite3_bind_text(ph, 1, batch->ids[i], -1, SQLITE_STATIC);
    int k = 0, ok = 1;
    int step;
    while ((step = sqlite3_step(ph)) == SQLITE_ROW) {
        k++;
        const char *status = (const char *)sqlite3_column_text(ph, 1);
        const char *output = (const char *)sqlite3_column_text(ph, 2);
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
    if (step != SQLITE_DONE)
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
    sqlite3 *db = NULL;
    sqlite3_stmt *ex = NULL, *ph = NULL;
    int rc = -1;
    if (sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "open %s: %s", db_path, db ? sqlite3_errmsg(db) : "out of memory");
        goto done;
    }
    sqlite3_busy_timeout(db, 10000);
    if (sqlite3_prepare_v2(db, "SELECT status, completed_at FROM executions WHERE id = ?1", -1,
                           &ex, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db,
                           "SELECT phase_id, status, output FROM phases"
                           " WHERE exec_num = (SELECT num FROM executions WHERE id = ?1)"
                           " ORDER BY ord",
                           -1, &ph, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "%s: %s", db_path, sqlite3_errmsg(db));
        goto done;
    }
    sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
    for (int i = 0; i < batch->n; i++) {
        r->checked++;
        sqlite3_reset(ex);
        sqlite3_bind_text(ex, 1, batch->ids[i], -1, SQLITE_STATIC);
        int step = sqlite3_step(ex);
        if (step == SQLITE_DONE) {
            problem(r, "execution %s (task %s) is not in the database", batch->ids[i],
                    batch->tasks[i]);
            continue;
        }
        if (step != SQLITE_ROW) {
            snprintf(err, errlen, "%s: %s", db_path, sqlite3_errmsg(db));
            goto done;
        }
        const char *status = (const char *)sqlite3_column_text(ex, 0);
        if (!status || strcmp(status, "completed") != 0) {
            problem(r, "execution %s is %s, not completed", batch->ids[i],
                    status ? status : "NULL");
            continue;
        }
        r->completed_us[i] = sqlite3_column_int64(ex, 1);
        if (r->completed_us[i] > r->last_completed_us)
            r->last_completed_us = r->completed_us[i];
        if (check_phases(ph, batch, i, phases, sleep_ms, r) != 0) {
            snprintf(err, errlen, "%s: %s", db_path, sqlite3_errmsg(db));
            goto done;
        }
    }
    rc = 0;
done:
    if (db)
        sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
    sqlite3_finalize(ex);
    sqlite3_finalize(ph);
    sqlite3_close(db);
    return rc;
}
