/* store_pg: PostgreSQL's executor of the store's statements (store_exec.h), on
 * libpq in pipeline mode. It decides how a loop turn's writes reach the
 * database in one round trip, and stands alone because nothing else in the
 * store knows a connection, a pipeline or a result.
 *
 * A write whose outcome the store does not read (a phase saved, an event
 * batch, the count changes: most of a turn) is sent at once and its result
 * read later, at the next statement that must answer now — a read, an insert
 * whose new key the store needs, COMMIT. Such a statement ends the pipeline
 * with a sync and reads every result in order: the turn's writes and its
 * commit cost one round trip. A write that failed fails the transaction, as
 * on SQLite (the commit then rolls it back). Every 256 unread results the
 * pipeline is synced anyway, so the server never blocks on a full socket
 * while we still write to it.
 *
 * Why in the loop's thread rather than a thread of its own: the loop already
 * waits for the commit on SQLite (its fdatasync) before it acknowledges
 * anything, and the writes before it do not wait at all; a read waits one
 * round trip, less than a commit. A commit hand-off to a thread would only pay
 * off once the loop has other work to do while a commit is in flight, which
 * group commit does not give it today (docs/architecture.md). */
#include "broker/store_internal.h"

#include "common/log.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PG_TEXT_OID 25
#define PG_SYNC_EVERY 256

struct store_pg {
    PGconn *conn;
    bool *failed;          /* the store's: a write of the open transaction failed */
    int queued;            /* sent since the last sync, results not read */
    int64_t inserted_id;   /* of the last insert that returned one */
    int64_t changes;       /* rows the last answered write changed */
    unsigned next_name;
    bool deposed;          /* a statement met syn_fence's SYF01 (broker/lease.h) */
    char error[256];       /* the last error the server gave */
};

struct store_pg_q {
    store_pg_t *pg;
    char name[16];
    char *sql;
    int flags;             /* STORE_PG_* */
    int nparams;
    unsigned prepared : 1;
    Oid *types;            /* 0: the server infers it; text for a number never used */
    const char **values;
    int *lengths;
    int *formats;
    char (*num)[32];       /* the text of bound numbers */
    PGresult *res;         /* the rows of a read */
    int row;
};

/* The SQLSTATE syn_fence raises when another broker took the lease. */
#define PG_DEPOSED "SYF01"

static void note_error(store_pg_t *pg, const PGresult *r)
{
    const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    if (state && strcmp(state, PG_DEPOSED) == 0)
        pg->deposed = true;
    const char *msg = r ? PQresultErrorMessage(r) : PQerrorMessage(pg->conn);
    snprintf(pg->error, sizeof pg->error, "%s", msg && *msg ? msg : "unknown error");
    size_t len = strlen(pg->error);
    while (len > 0 && (pg->error[len - 1] == '\n' || pg->error[len - 1] == ' '))
        pg->error[--len] = '\0';
}

const char *store_pg_error(const store_pg_t *pg)
{
    return pg->error;
}

bool store_pg_deposed(const store_pg_t *pg)
{
    return pg->deposed;
}

store_pg_t *store_pg_open(const char *conninfo, bool *failed, char *err, size_t errlen)
{
    store_pg_t *pg = calloc(1, sizeof *pg);
    if (!pg) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    pg->failed = failed;
    pg->conn = PQconnectdb(conninfo);
    if (!pg->conn || PQstatus(pg->conn) != CONNECTION_OK) {
        snprintf(err, errlen, "cannot connect to PostgreSQL: %s",
                 pg->conn ? PQerrorMessage(pg->conn) : "out of memory");
        size_t len = strlen(err);
        if (len > 0 && err[len - 1] == '\n')
            err[len - 1] = '\0';
        store_pg_close(&pg);
        return NULL;
    }
    /* Quiet: NOTICEs (an IF NOT EXISTS that found the table) are not errors. */
    PQclear(PQexec(pg->conn, "SET client_min_messages = warning"));
    return pg;
}

/* Enters pipeline mode: from here on every statement goes through the executor. */
int store_pg_pipeline(store_pg_t *pg, char *err, size_t errlen)
{
    if (PQenterPipelineMode(pg->conn) != 1) {
        snprintf(err, errlen, "cannot enter pipeline mode: %s", PQerrorMessage(pg->conn));
        return -1;
    }
    return 0;
}

void store_pg_close(store_pg_t **pg_p)
{
    if (!pg_p || !*pg_p)
        return;
    store_pg_t *pg = *pg_p;
    PQfinish(pg->conn);
    free(pg);
    *pg_p = NULL;
}

/* One statement of its own (the schema's scripts before store_pg_pipeline, a
 * ROLLBACK after): 0, or -1 with the server's message in err. */
static int drain(store_pg_t *pg, PGresult **last);

int store_pg_exec_plain(store_pg_t *pg, const char *sql, char *err, size_t errlen)
{
    PGresult *r = NULL;
    if (PQpipelineStatus(pg->conn) == PQ_PIPELINE_OFF) {
        r = PQexec(pg->conn, sql);
    } else if (PQsendQueryParams(pg->conn, sql, 0, NULL, NULL, NULL, NULL, 0) == 1) {
        pg->queued++;
        drain(pg, &r);
    }
    ExecStatusType st = PQresultStatus(r);
    int rc = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK ? 0 : -1;
    if (rc < 0) {
        note_error(pg, r);
        snprintf(err, errlen, "%s", pg->error);
    }
    PQclear(r);
    return rc;
}

/* The integer a plain query answers (its first row's first column), or
 * fallback when there is no row, NULL, or an error. */
int64_t store_pg_query_int(store_pg_t *pg, const char *sql, int64_t fallback)
{
    PGresult *r = PQexec(pg->conn, sql);
    int64_t value = fallback;
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0 && !PQgetisnull(r, 0, 0))
        value = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    return value;
}

/* Syncs the pipeline and reads every result in order. The result of the last
 * statement sent is kept in *last (when last is not NULL); a failure of any
 * other marks the transaction failed. 0, or -1 when any statement failed or
 * the connection is gone. */
static int drain(store_pg_t *pg, PGresult **last)
{
    if (last)
        *last = NULL;
    if (pg->queued == 0)
        return 0;
    int rc = 0;
    if (PQpipelineSync(pg->conn) != 1) {
        note_error(pg, NULL);
        syn_error("broker", "postgresql sync failed: %s", pg->error);
        *pg->failed = true;
        pg->queued = 0;
        return -1;
    }
    int index = 0;
    for (;;) {
        PGresult *r = PQgetResult(pg->conn);
        if (!r) {
            if (PQstatus(pg->conn) != CONNECTION_OK) {
                note_error(pg, NULL);
                syn_error("broker", "postgresql connection lost: %s", pg->error);
                rc = -1;
                break;
            }
            index++; /* the end of one statement's results */
            continue;
        }
        ExecStatusType st = PQresultStatus(r);
        if (st == PGRES_PIPELINE_SYNC) {
            PQclear(r);
            break;
        }
        bool ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
        bool mine = last && index == pg->queued - 1;
        if (!ok) {
            if (st != PGRES_PIPELINE_ABORTED) {
                note_error(pg, r);
                syn_error("broker", "postgresql statement failed: %s", pg->error);
            }
            rc = -1;
        }
        if (mine && !*last)
            *last = r;
        else
            PQclear(r);
    }
    pg->queued = 0;
    if (rc < 0 && PQtransactionStatus(pg->conn) == PQTRANS_INERROR)
        *pg->failed = true;
    return rc;
}

int store_pg_sync(store_pg_t *pg)
{
    return drain(pg, NULL);
}

bool store_pg_in_transaction(store_pg_t *pg)
{
    drain(pg, NULL);
    return PQtransactionStatus(pg->conn) != PQTRANS_IDLE;
}

int64_t store_pg_inserted_id(const store_pg_t *pg)
{
    return pg->inserted_id;
}

int64_t store_pg_changes(const store_pg_t *pg)
{
    return pg->changes;
}

/* The highest $N of a statement's text: how many parameters it takes. Marks
 * in used[] (of PG_PARAMS_MAX) those it names. */
#define PG_PARAMS_MAX 256
static int count_params(const char *sql, bool *used)
{
    int max = 0;
    for (const char *p = sql; (p = strchr(p, '$')) != NULL; p++) {
        char *end;
        long n = strtol(p + 1, &end, 10);
        if (end == p + 1 || n <= 0 || n > PG_PARAMS_MAX)
            continue;
        used[n - 1] = true;
        if (n > max)
            max = (int)n;
    }
    return max;
}

store_pg_q_t *store_pg_q_new(store_pg_t *pg, const char *sql, int flags)
{
    store_pg_q_t *q = calloc(1, sizeof *q);
    if (!q)
        return NULL;
    bool used[PG_PARAMS_MAX] = {false};
    q->pg = pg;
    q->flags = flags;
    q->sql = strdup(sql);
    q->nparams = count_params(sql, used);
    int n = q->nparams > 0 ? q->nparams : 1;
    q->types = calloc((size_t)n, sizeof *q->types);
    q->values = calloc((size_t)n, sizeof *q->values);
    q->lengths = calloc((size_t)n, sizeof *q->lengths);
    q->formats = calloc((size_t)n, sizeof *q->formats);
    q->num = calloc((size_t)n, sizeof *q->num);
    if (!q->sql || !q->types || !q->values || !q->lengths || !q->formats || !q->num) {
        store_pg_q_destroy(&q);
        return NULL;
    }
    for (int i = 0; i < q->nparams; i++)
        q->types[i] = used[i] ? 0 : PG_TEXT_OID;
    snprintf(q->name, sizeof q->name, "s%u", pg->next_name++);
    return q;
}

void store_pg_q_destroy(store_pg_q_t **q_p)
{
    if (!q_p || !*q_p)
        return;
    store_pg_q_t *q = *q_p;
    PQclear(q->res);
    free(q->sql);
    free(q->types);
    free(q->values);
    free(q->lengths);
    free(q->formats);
    free(q->num);
    free(q);
    *q_p = NULL;
}

/* --- the executor's calls (store_exec.h) ------------------------------------ */

void store_pg_bind_text(store_pg_q_t *q, int index, const char *text)
{
    if (index < 1 || index > q->nparams)
        return; /* a number the statement does not use on PostgreSQL */
    q->values[index - 1] = text;
    q->lengths[index - 1] = 0;
    q->formats[index - 1] = 0;
}

void store_pg_bind_int(store_pg_q_t *q, int index, int64_t value)
{
    if (index < 1 || index > q->nparams)
        return;
    snprintf(q->num[index - 1], sizeof q->num[0], "%lld", (long long)value);
    store_pg_bind_text(q, index, q->num[index - 1]);
}

void store_pg_bind_double(store_pg_q_t *q, int index, double value)
{
    if (index < 1 || index > q->nparams)
        return;
    snprintf(q->num[index - 1], sizeof q->num[0], "%.17g", value);
    store_pg_bind_text(q, index, q->num[index - 1]);
}

void store_pg_bind_blob(store_pg_q_t *q, int index, const void *data, size_t len)
{
    if (index < 1 || index > q->nparams)
        return;
    q->values[index - 1] = len ? data : "";
    q->lengths[index - 1] = (int)len;
    q->formats[index - 1] = 1;
}

/* What a write's answer means to the store: the new key it returned, how many
 * rows it changed, and whether it met a key already held (ON CONFLICT DO
 * NOTHING changed nothing). */
static int answer_of(store_pg_q_t *q, PGresult *r)
{
    store_pg_t *pg = q->pg;
    const char *tuples = PQcmdTuples(r);
    pg->changes = *tuples ? strtoll(tuples, NULL, 10) : 0;
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0 && PQnfields(r) > 0)
        pg->inserted_id = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    if ((q->flags & STORE_PG_CONFLICT) && pg->changes == 0)
        return STORE_CONSTRAINT;
    return STORE_DONE;
}

int store_pg_step(store_pg_q_t *q)
{
    store_pg_t *pg = q->pg;
    if (q->res) /* a read's next row */
        return ++q->row < PQntuples(q->res) ? STORE_ROW : STORE_DONE;
    pg->inserted_id = 0;
    if (!q->prepared) {
        if (PQsendPrepare(pg->conn, q->name, q->sql, q->nparams, q->types) != 1) {
            note_error(pg, NULL);
            syn_error("broker", "postgresql prepare failed: %s", pg->error);
            return STORE_ERROR;
        }
        q->prepared = 1;
        pg->queued++;
    }
    if (PQsendQueryPrepared(pg->conn, q->name, q->nparams, q->values, q->lengths, q->formats,
                            (q->flags & STORE_PG_BINARY) ? 1 : 0) != 1) {
        note_error(pg, NULL);
        syn_error("broker", "postgresql send failed: %s", pg->error);
        return STORE_ERROR;
    }
    pg->queued++;
    if (!(q->flags & (STORE_PG_READ | STORE_PG_ANSWER))) {
        pg->changes = -1; /* not known until the pipeline is read */
        if (pg->queued >= PG_SYNC_EVERY && drain(pg, NULL) < 0)
            return STORE_ERROR;
        return STORE_DONE;
    }
    PGresult *r;
    int drained = drain(pg, &r);
    ExecStatusType st = PQresultStatus(r);
    if (!r || (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK)) {
        PQclear(r);
        return STORE_ERROR;
    }
    if (!(q->flags & STORE_PG_READ)) {
        int rc = answer_of(q, r);
        /* COMMIT answers "ROLLBACK" when the transaction had failed */
        if ((q->flags & STORE_PG_COMMIT) && strcmp(PQcmdStatus(r), "COMMIT") != 0)
            rc = STORE_ERROR;
        PQclear(r);
        return rc == STORE_DONE && drained < 0 ? STORE_ERROR : rc;
    }
    q->res = r;
    q->row = 0;
    return PQntuples(r) > 0 ? STORE_ROW : STORE_DONE;
}

void store_pg_reset(store_pg_q_t *q)
{
    PQclear(q->res);
    q->res = NULL;
    for (int i = 0; i < q->nparams; i++) {
        q->values[i] = NULL;
        q->formats[i] = 0;
        q->lengths[i] = 0;
    }
}

static bool on_row(const store_pg_q_t *q, int col)
{
    return q->res && q->row < PQntuples(q->res) && col < PQnfields(q->res);
}

const char *store_pg_col_text(store_pg_q_t *q, int col)
{
    if (!on_row(q, col) || PQgetisnull(q->res, q->row, col))
        return NULL;
    return PQgetvalue(q->res, q->row, col);
}

size_t store_pg_col_bytes(store_pg_q_t *q, int col)
{
    return on_row(q, col) ? (size_t)PQgetlength(q->res, q->row, col) : 0;
}

int64_t store_pg_col_int(store_pg_q_t *q, int col)
{
    const char *v = store_pg_col_text(q, col);
    if (!v)
        return 0;
    if (PQfformat(q->res, col) == 0)
        return strtoll(v, NULL, 10);
    /* binary: a big-endian integer of 2, 4 or 8 bytes */
    int len = PQgetlength(q->res, q->row, col);
    uint64_t u = 0;
    for (int i = 0; i < len && i < 8; i++)
        u = u << 8 | (unsigned char)v[i];
    if (len == 4)
        return (int32_t)(uint32_t)u;
    if (len == 2)
        return (int16_t)(uint16_t)u;
    return (int64_t)u;
}

double store_pg_col_double(store_pg_q_t *q, int col)
{
    const char *v = store_pg_col_text(q, col);
    return v ? strtod(v, NULL) : 0.0;
}
