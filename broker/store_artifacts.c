/* store_artifacts: where an attempt's artifacts are kept (store.h, "Artifacts").
 *
 * Storage: SQLite, in the broker's one database file, a row per file and its bytes
 * as blobs of at most one wire chunk (256 KiB) each. Chosen over files under a data
 * directory because every promise the files would need to keep by hand comes with
 * the database for free: a set becomes visible in the very transaction that records
 * its attempt's completion (no rename dance, no orphan files after a crash between a
 * file and its row), it survives a restart with the rest of the state, retention
 * deletes it in the same transaction as its execution, and a backup of the file is a
 * backup of everything. No file is ever read or written whole: a chunk is one row,
 * inserted as it arrives and read back a range at a time. The cost is the database's
 * size (with WAL, every byte is written twice); deployments with many large
 * deliverables are the case for object storage later, behind these same functions. */
#include "broker/store_internal.h"

#include "common/base64.h"
#include "common/clock.h"
#include "common/log.h"

#include <stdlib.h>
#include <string.h>

int64_t broker_store_artifact_begin(broker_store_t *self, const char *execution_id,
                                    const char *phase_id, int64_t attempt, const char *path,
                                    int64_t size, const char *sha256, const char *media_type)
{
    store_q_t *s = store_write_stmt(self, SQL_ARTIFACT_INSERT);
    if (!s)
        return -1;
    store_bind_text(s, 1, execution_id);
    store_bind_text(s, 2, phase_id);
    store_bind_int(s, 3, attempt);
    store_bind_text(s, 4, path);
    store_bind_int(s, 5, size);
    store_bind_text(s, 6, sha256);
    store_bind_text(s, 7, media_type);
    store_bind_time(s, 8, syn_now_us());
    if (store_run(self, s, "insert an artifact") != STORE_DONE)
        return -1;
    return store_inserted_id(self);
}

int broker_store_artifact_chunk(broker_store_t *self, int64_t artifact_id, int64_t offset,
                                const void *data, size_t len)
{
    store_q_t *s = store_write_stmt(self, SQL_ARTIFACT_CHUNK_INSERT);
    if (!s)
        return -1;
    store_bind_int(s, 1, artifact_id);
    store_bind_int(s, 2, offset);
    store_bind_int(s, 3, (int64_t)len);
    store_bind_blob(s, 4, data, len);
    return store_run(self, s, "insert an artifact chunk") == STORE_DONE ? 0 : -1;
}

/* Runs a write statement bound to an attempt (or to nothing when execution_id is NULL). */
static int run_for_attempt(broker_store_t *self, sql_id_t id, const char *execution_id,
                           const char *phase_id, int64_t attempt, const char *what)
{
    store_q_t *s = store_write_stmt(self, id);
    if (!s)
        return -1;
    if (execution_id) {
        store_bind_text(s, 1, execution_id);
        store_bind_text(s, 2, phase_id);
        store_bind_int(s, 3, attempt);
    }
    return store_run(self, s, what) == STORE_DONE ? 0 : -1;
}

int broker_store_artifacts_discard(broker_store_t *self, const char *execution_id,
                                   const char *phase_id, int64_t attempt)
{
    if (execution_id)
        return run_for_attempt(self, SQL_ARTIFACT_DISCARD_CHUNKS, execution_id, phase_id,
                               attempt, "discard artifact chunks") < 0 ||
                       run_for_attempt(self, SQL_ARTIFACT_DISCARD, execution_id, phase_id,
                                       attempt, "discard artifacts") < 0
                   ? -1
                   : 0;
    return run_for_attempt(self, SQL_ARTIFACT_STAGING_CHUNKS, NULL, NULL, 0,
                           "discard unfinished artifact chunks") < 0 ||
                   run_for_attempt(self, SQL_ARTIFACT_STAGING, NULL, NULL, 0,
                                   "discard unfinished artifacts") < 0
               ? -1
               : 0;
}

int broker_store_artifacts_complete(broker_store_t *self, const char *execution_id,
                                    const char *phase_id, int64_t attempt)
{
    return run_for_attempt(self, SQL_ARTIFACT_COMPLETE, execution_id, phase_id, attempt,
                           "complete artifacts");
}

json_t *broker_store_artifacts_list(broker_store_t *self, const char *execution_id)
{
    store_q_t *s = store_stmt(self, SQL_ARTIFACT_LIST);
    json_t *rows = json_array();
    if (!s || !rows) {
        json_decref(rows);
        return NULL;
    }
    store_bind_text(s, 1, execution_id);
    int rc;
    while ((rc = store_step(s)) == STORE_ROW) {
        json_t *row = json_pack(
            "{s:s, s:I, s:s, s:I, s:s, s:s, s:o}", "phase_id", store_col_text(s, 0),
            "attempt", (json_int_t)store_col_int(s, 1), "path", store_col_text(s, 2),
            "size", (json_int_t)store_col_int(s, 3), "sha256", store_col_text(s, 4),
            "media_type", store_col_text(s, 5), "created_at",
            broker_time_json(store_col_int(s, 6)));
        if (!row || json_array_append_new(rows, row) < 0)
            break;
    }
    return store_rows_end(self, s, rows, rc, "list artifacts");
}

int broker_store_artifact_find(broker_store_t *self, const char *execution_id,
                               const char *phase_id, const char *path,
                               broker_artifact_row_t *row)
{
    store_q_t *s = store_stmt(self, SQL_ARTIFACT_FIND);
    if (!s)
        return -1;
    store_bind_text(s, 1, execution_id);
    store_bind_text(s, 2, phase_id);
    store_bind_text(s, 3, path);
    int found = store_step_one(self, s, "find an artifact");
    if (found != 1)
        return found;
    row->id = store_col_int(s, 0);
    row->attempt = store_col_int(s, 1);
    row->size = store_col_int(s, 2);
    snprintf(row->sha256, sizeof row->sha256, "%s", store_col_text(s, 3));
    snprintf(row->media_type, sizeof row->media_type, "%s",
             store_col_text(s, 4));
    store_reset(s);
    return 1;
}

long broker_store_artifact_read(broker_store_t *self, int64_t artifact_id, int64_t offset,
                                unsigned char *buf, size_t max)
{
    store_q_t *s = store_stmt(self, SQL_ARTIFACT_READ);
    if (!s)
        return -1;
    store_bind_int(s, 1, artifact_id);
    store_bind_int(s, 2, offset);
    store_bind_int(s, 3, offset + (int64_t)max);
    size_t got = 0;
    int rc;
    while ((rc = store_step(s)) == STORE_ROW) {
        int64_t at = store_col_int(s, 0);
        const unsigned char *data = store_col_blob(s, 1);
        int64_t len = (int64_t)store_col_bytes(s, 1);
        /* The chunks follow each other without a gap (the receiver wrote them in
         * order): copy the part of this one that falls in [offset + got, offset + max). */
        int64_t from = offset + (int64_t)got;
        if (at > from)
            break;
        int64_t skip = from - at;
        int64_t take = len - skip;
        if (take > (int64_t)(max - got))
            take = (int64_t)(max - got);
        if (take > 0) {
            memcpy(buf + got, data + skip, (size_t)take);
            got += (size_t)take;
        }
    }
    store_reset(s);
    if (rc != STORE_ROW && rc != STORE_DONE) {
        store_log_error(self, "read an artifact");
        return -1;
    }
    return (long)got;
}

char *broker_store_artifact_read_base64(broker_store_t *self, const broker_artifact_row_t *row,
                                        int64_t offset, size_t max, size_t *len)
{
    size_t want = offset >= row->size ? 0
                  : (uint64_t)(row->size - offset) < max ? (size_t)(row->size - offset)
                                                         : max;
    unsigned char *bytes = malloc(want ? want : 1);
    char *text = malloc(syn_base64_encoded_len(want) + 1);
    long got = bytes && text ? broker_store_artifact_read(self, row->id, offset, bytes, want)
                             : -1;
    if (got != (long)want) {
        free(bytes);
        free(text);
        return NULL;
    }
    syn_base64_encode(bytes, want, text);
    free(bytes);
    if (len)
        *len = want;
    return text;
}
