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

#include "common/clock.h"
#include "common/log.h"

#include <libpq-fe.h>
#include <poll.h>
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
    unsigned session;      /* counts connections: statements are prepared per session */
    int64_t next_connect_ms; /* a lost connection: the next attempt (back-off) */
    int64_t backoff_ms;
    bool connecting;         /* an attempt under way (store_pg_reconnect) */
    int64_t connect_until_ms; /* when that attempt is given up */
    PostgresPollingStatusType poll; /* what it waits for */
    char error[256];       /* the last error the server gave */
    char session_set[96];  /* a SET every session of this store runs ("": none) */
};

/* The back-off of reconnection attempts: doubling from the first to the last. */
#define PG_RECONNECT_FIRST_MS 250
#define PG_RECONNECT_MAX_MS 8000

struct store_pg_q {
    store_pg_t *pg;
    char name[16];
    char *sql;
    int flags;             /* STORE_PG_* */
    int nparams;
    unsigned prepared;     /* the session it was prepared in (0: not yet) */
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
    for (char *c = pg->error; *c; c++) /* libpq's lines, one line of a 503's detail */
        if (*c == '\n' || *c == '\t')
            *c = ' ';
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
    pg->session = 1;
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

bool store_pg_lost(const store_pg_t *pg)
{
    return PQstatus(pg->conn) != CONNECTION_OK;
}

/* How long one connection attempt may wait for the server: libpq's
 * connect_timeout of the URI when it has one, else this. libpq enforces its
 * timeout only in a blocking connect, so the attempt polled here keeps its own. */
#define PG_CONNECT_TIMEOUT_MS 10000

static int64_t connect_timeout_ms(PGconn *conn)
{
    int64_t ms = PG_CONNECT_TIMEOUT_MS;
    PQconninfoOption *opts = PQconninfo(conn);
    for (PQconninfoOption *o = opts; o && o->keyword; o++) {
        if (strcmp(o->keyword, "connect_timeout") == 0 && o->val && atoi(o->val) > 0)
            ms = (int64_t)atoi(o->val) * 1000;
    }
    PQconninfoFree(opts);
    return ms;
}

/* The attempt failed (refused, timed out, or the server went away meanwhile):
 * the next one waits the back-off, doubling from the first to the last. */
static int attempt_failed(store_pg_t *pg, int64_t now, const char *why, char *err, size_t errlen)
{
    pg->connecting = false;
    pg->backoff_ms = pg->backoff_ms ? pg->backoff_ms * 2 : PG_RECONNECT_FIRST_MS;
    if (pg->backoff_ms > PG_RECONNECT_MAX_MS)
        pg->backoff_ms = PG_RECONNECT_MAX_MS;
    pg->next_connect_ms = now + pg->backoff_ms;
    if (why)
        snprintf(pg->error, sizeof pg->error, "%s", why);
    else
        note_error(pg, NULL);
    snprintf(err, errlen, "%s: %s (next attempt in %lld ms)", BROKER_STORE_LOST, pg->error,
             (long long)pg->backoff_ms);
    return -1;
}

/* A lost connection made again without ever waiting for the server: the
 * attempt is started (PQresetStart) at most once per back-off step and then
 * advanced a step per call (PQresetPoll), the loop calling again when the
 * socket store_pg_connecting_fd names is ready — a dead host or a hung server
 * costs the loop nothing but the attempt's own timeout. The new session
 * prepares every statement again at its first use, and is in pipeline mode as
 * the old one was. 0 once connected, or -1 with the reason in err (not yet
 * time, the attempt still under way, or the server still away). */
int store_pg_reconnect(store_pg_t *pg, char *err, size_t errlen)
{
    int64_t now = syn_mono_ms();
    if (!pg->connecting) {
        if (now < pg->next_connect_ms) {
            snprintf(err, errlen, "%s: %s (next attempt in %lld ms)", BROKER_STORE_LOST,
                     pg->error, (long long)(pg->next_connect_ms - now));
            return -1;
        }
        if (PQresetStart(pg->conn) != 1)
            return attempt_failed(pg, now, NULL, err, errlen);
        pg->connecting = true;
        pg->connect_until_ms = now + connect_timeout_ms(pg->conn);
        pg->poll = PGRES_POLLING_WRITING; /* libpq's first step waits to write */
    }
    /* libpq's next step only once its socket is ready (a step taken early
     * would take a TCP connect still under way for made) */
    bool for_write = false;
    struct pollfd pfd = {.fd = store_pg_connecting_fd(pg, &for_write),
                         .events = for_write ? POLLOUT : POLLIN};
    if (poll(&pfd, 1, 0) == 1)
        pg->poll = PQresetPoll(pg->conn);
    if (pg->poll == PGRES_POLLING_FAILED)
        return attempt_failed(pg, now, NULL, err, errlen);
    if (pg->poll != PGRES_POLLING_OK) {
        if (now >= pg->connect_until_ms)
            return attempt_failed(pg, now, "the server did not answer the connection attempt",
                                  err, errlen);
        snprintf(err, errlen, "%s: %s (connecting again)", BROKER_STORE_LOST, pg->error);
        return -1;
    }
    pg->connecting = false;
    pg->session++;
    pg->queued = 0;
    pg->backoff_ms = 0;
    pg->next_connect_ms = 0;
    if (store_pg_pipeline(pg, err, errlen) < 0)
        return -1;
    /* Quiet, as store_pg_open makes it; its answer is read with the next
     * statement's, not waited for here. */
    if (PQsendQueryParams(pg->conn, "SET client_min_messages = warning", 0, NULL, NULL, NULL,
                          NULL, 0) == 1)
        pg->queued++;
    if (pg->session_set[0] &&
        PQsendQueryParams(pg->conn, pg->session_set, 0, NULL, NULL, NULL, NULL, 0) == 1)
        pg->queued++;
    syn_info("broker", "postgresql connection made again: new session %u", pg->session);
    return 0;
}

int store_pg_session_set(store_pg_t *pg, const char *sql, char *err, size_t errlen)
{
    if (strlen(sql) >= sizeof pg->session_set) {
        snprintf(err, errlen, "session setting too long");
        return -1;
    }
    snprintf(pg->session_set, sizeof pg->session_set, "%s", sql);
    return store_pg_exec_plain(pg, sql, err, errlen);
}

int store_pg_connecting_fd(const store_pg_t *pg, bool *for_write)
{
    if (!pg->connecting)
        return -1;
    *for_write = pg->poll == PGRES_POLLING_WRITING;
    return PQsocket(pg->conn);
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
    if (store_pg_lost(pg))
        return false; /* the server rolled it back when the session ended */
    drain(pg, NULL);
    return PQtransactionStatus(pg->conn) != PQTRANS_IDLE;
}

int64_t store_pg_inserted_id(const store_pg_t *pg)
{
    return pg->inserted_id;
}

/* The insert that waited for RETURNING num (and for whether its id was new) cost
 * a round trip per execution, W1's largest cost on PostgreSQL (docs/benchmarks.md).
 * Ids are checked 64 at a time instead, with their keys: nextval() is never
 * rolled back nor handed out twice, and only the broker holding the lease
 * inserts, so an id found free stays free until this broker uses it. Largest
 * key first: they are used from the end, in the order of their keys. */
int store_pg_free_ids(store_pg_t *pg, char (*ids)[BROKER_EXEC_ID_SIZE], int64_t *nums, int n)
{
    char list[STORE_FREE_IDS * (BROKER_EXEC_ID_SIZE + 1) + 3];
    size_t len = 0;
    list[len++] = '{';
    for (int i = 0; i < n && i < STORE_FREE_IDS; i++) /* hex ids: nothing to quote */
        len += (size_t)snprintf(list + len, sizeof list - len, "%s%s", i ? "," : "", ids[i]);
    snprintf(list + len, sizeof list - len, "}");
    const char *param = list;
    PGresult *r = NULL;
    if (PQsendQueryParams(pg->conn,
                          "SELECT c, nextval(pg_get_serial_sequence('executions', 'num'))"
                          " FROM unnest($1::text[]) AS c WHERE NOT EXISTS"
                          " (SELECT 1 FROM executions WHERE id = c) ORDER BY 2 DESC",
                          1, NULL, &param, NULL, NULL, 0) == 1) {
        pg->queued++;
        drain(pg, &r);
    }
    int kept = -1;
    if (PQresultStatus(r) == PGRES_TUPLES_OK) {
        for (kept = 0; kept < PQntuples(r) && kept < n; kept++) {
            snprintf(ids[kept], BROKER_EXEC_ID_SIZE, "%s", PQgetvalue(r, kept, 0));
            nums[kept] = strtoll(PQgetvalue(r, kept, 1), NULL, 10);
        }
    } else {
        note_error(pg, r);
    }
    PQclear(r);
    return kept;
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
    if (store_pg_lost(pg)) /* keeps the reason it was lost for (store_pg_error) */
        return STORE_ERROR;
    if (q->prepared != pg->session) {
        if (PQsendPrepare(pg->conn, q->name, q->sql, q->nparams, q->types) != 1) {
            note_error(pg, NULL);
            syn_error("broker", "postgresql prepare failed: %s", pg->error);
            return STORE_ERROR;
        }
        q->prepared = pg->session;
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
