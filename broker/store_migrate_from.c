/* store_migrate_from: `syn-broker --migrate-from sqlite:DIR --store
 * postgresql://...` — a SQLite store copied into an empty PostgreSQL database
 * and proved equal, table by table, by row counts and checksums (issue 21). It
 * stands alone because it is the one place that reads both databases at once;
 * the broker itself only ever runs on one.
 *
 * Decisions:
 * - The source is first brought to this version's schema in place, exactly as
 *   the broker would at its next start on that directory (one transaction: all
 *   or nothing). A copy would need the store's size again in free disk, the very
 *   thing a large store lacks, and the upgraded file stays a valid store of this
 *   version: going back to SQLite is starting the broker on it again.
 * - Empty target: no table but the store's own, and none of those holding a
 *   row. A database holding anything else is refused, never merged into; one
 *   where an earlier migration failed (schema made, copy rolled back) is empty.
 * - The rows are streamed: SQLite's in primary-key order, inside one read
 *   transaction (a snapshot), into COPY ... FROM STDIN in binary format (no
 *   escaping, doubles bit for bit); PostgreSQL's read back in single-row mode.
 *   Nothing holds more than one row and a copy buffer.
 * - One checksum, computed the same way on both sides: SHA-256 over each row's
 *   columns (in PostgreSQL's column order) rendered canonically — NULL as "N",
 *   a value as "V<length>:" and its bytes (integers in decimal, doubles as
 *   %.17g, text and bytes as they are) — rows in primary-key order (bytewise
 *   for text on both sides: SQLite's BINARY collation, PostgreSQL's "C").
 *   SQLite's side is hashed from the values as read, PostgreSQL's from what it
 *   holds after the copy, inside the copy's transaction: a mismatch rolls
 *   everything back and names the table.
 * - Strict: a SQLite value whose type is not the column's (text in an integer
 *   column, which SQLite allows) stops the copy, naming table, column and row. */
#include "broker/store_internal.h"

#include "common/log.h"
#include "common/sha256.h"

#include <endian.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define OID_INT8 20
#define OID_TEXT 25
#define OID_BYTEA 17
#define OID_FLOAT8 701
#define MAX_COLUMNS 64
#define COPY_BUFFER (256 * 1024)
#define PROGRESS_ROWS 100000

typedef struct {
    char name[64];
    unsigned type; /* one of the OID_* */
} column_t;

/* One table as PostgreSQL's schema has it: what both sides read. */
typedef struct {
    char name[64];
    column_t cols[MAX_COLUMNS];
    int ncols;
    char order[512];   /* the primary key's columns, for ORDER BY */
    char select[2048]; /* the column list, quoted */
    long long rows;    /* SQLite's count */
    char lite_sum[SYN_SHA256_HEX_SIZE];
    char pg_sum[SYN_SHA256_HEX_SIZE];
    long long pg_rows;
} table_t;

typedef struct {
    sqlite3 *lite;
    PGconn *pg;
    FILE *out;
    table_t *tables;
    int ntables;
    const char *tamper; /* SYN_TEST_MIGRATE_TAMPER: a table one row of which the copy alters */
    char *err;
    size_t errlen;
} migration_t;

/* --- the canonical rendering, both sides ------------------------------------ */

static void sum_null(syn_sha256_t *sha)
{
    syn_sha256_update(sha, "N", 1);
}

static void sum_bytes(syn_sha256_t *sha, const void *data, size_t len)
{
    char head[32];
    int n = snprintf(head, sizeof head, "V%zu:", len);
    syn_sha256_update(sha, head, (size_t)n);
    syn_sha256_update(sha, data, len);
}

static void sum_int(syn_sha256_t *sha, int64_t v)
{
    char text[32];
    int n = snprintf(text, sizeof text, "%lld", (long long)v);
    sum_bytes(sha, text, (size_t)n);
}

static void sum_double(syn_sha256_t *sha, double v)
{
    char text[40];
    int n = snprintf(text, sizeof text, "%.17g", v);
    sum_bytes(sha, text, (size_t)n);
}

/* --- PostgreSQL helpers ----------------------------------------------------- */

static int fail(migration_t *m, const char *fmt, const char *a, const char *b)
{
    snprintf(m->err, m->errlen, fmt, a, b);
    size_t len = strlen(m->err);
    while (len > 0 && (m->err[len - 1] == '\n' || m->err[len - 1] == ' '))
        m->err[--len] = '\0';
    return -1;
}

static int pg_command(migration_t *m, const char *sql)
{
    PGresult *r = PQexec(m->pg, sql);
    ExecStatusType st = PQresultStatus(r);
    int rc = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK ? 0 : -1;
    if (rc < 0)
        fail(m, "postgresql: %s: %s", sql, PQresultErrorMessage(r));
    PQclear(r);
    return rc;
}

/* The rows of a catalog query with one text parameter (NULL on error). */
static PGresult *pg_query(migration_t *m, const char *sql, const char *param)
{
    PGresult *r = PQexecParams(m->pg, sql, param ? 1 : 0, NULL, &param, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        fail(m, "postgresql: %s: %s", sql, PQresultErrorMessage(r));
        PQclear(r);
        return NULL;
    }
    return r;
}

static bool lite_has_table(migration_t *m, const char *name)
{
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(m->lite, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1",
                           -1, &s, NULL) != SQLITE_OK)
        return false;
    sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
    bool found = sqlite3_step(s) == SQLITE_ROW;
    sqlite3_finalize(s);
    return found;
}

/* PostgreSQL's own tables, not the store's data: the schema version and the
 * brokers' lease (broker/lease.h), which SQLite has no use for. Not copied. */
#define PG_ONLY_TABLES "('syn_schema', 'broker_lease')"

static bool pg_only_table(const char *name)
{
    return strcmp(name, "syn_schema") == 0 || strcmp(name, "broker_lease") == 0;
}

/* Refuses a database holding anything: a table that is not the store's, or a
 * row in one of the store's (syn_schema's version row aside). */
static int check_empty(migration_t *m)
{
    PGresult *r = pg_query(m, "SELECT schemaname, tablename FROM pg_tables WHERE schemaname NOT IN"
                              " ('pg_catalog', 'information_schema') ORDER BY 1, 2",
                           NULL);
    if (!r)
        return -1;
    int rc = 0;
    for (int i = 0; i < PQntuples(r) && rc == 0; i++) {
        const char *schema = PQgetvalue(r, i, 0), *table = PQgetvalue(r, i, 1);
        if (pg_only_table(table))
            continue;
        if (!lite_has_table(m, table)) {
            snprintf(m->err, m->errlen,
                     "the PostgreSQL database is not empty (it holds table %s.%s): "
                     "--migrate-from copies into an empty database only",
                     schema, table);
            rc = -1;
            break;
        }
        char *quoted = PQescapeIdentifier(m->pg, table, strlen(table));
        char sql[256];
        snprintf(sql, sizeof sql, "SELECT EXISTS (SELECT 1 FROM %s)", quoted ? quoted : "\"\"");
        PQfreemem(quoted);
        PGresult *any = pg_query(m, sql, NULL);
        if (!any) {
            rc = -1;
        } else if (strcmp(PQgetvalue(any, 0, 0), "t") == 0) {
            snprintf(m->err, m->errlen,
                     "the PostgreSQL database is not empty (table %s holds rows): "
                     "--migrate-from copies into an empty database only",
                     table);
            rc = -1;
        }
        PQclear(any);
    }
    PQclear(r);
    return rc;
}

/* Every table of the store as PostgreSQL has it: columns, types and key. Each
 * must be one SQLite has too, and the other way round. */
static int describe_tables(migration_t *m)
{
    PGresult *t = pg_query(m, "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
                              " AND tablename NOT IN " PG_ONLY_TABLES " ORDER BY 1",
                           NULL);
    if (!t)
        return -1;
    m->ntables = PQntuples(t);
    m->tables = calloc((size_t)m->ntables + 1, sizeof *m->tables);
    int rc = m->tables ? 0 : fail(m, "out of memory%s%s", "", "");
    for (int i = 0; i < m->ntables && rc == 0; i++) {
        table_t *tb = &m->tables[i];
        snprintf(tb->name, sizeof tb->name, "%s", PQgetvalue(t, i, 0));
        PGresult *c = pg_query(m, "SELECT attname, atttypid FROM pg_attribute WHERE attrelid ="
                                  " $1::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
                               tb->name);
        PGresult *k = c ? pg_query(m, "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON"
                                      " a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)"
                                      " WHERE i.indrelid = $1::regclass AND i.indisprimary"
                                      " ORDER BY array_position(i.indkey::int2[], a.attnum)",
                                   tb->name)
                        : NULL;
        if (!c || !k) {
            rc = -1;
        } else if (PQntuples(c) > MAX_COLUMNS || PQntuples(k) == 0) {
            rc = fail(m, "table %s: %s", tb->name,
                      PQntuples(k) ? "too many columns" : "no primary key to order its rows by");
        } else {
            tb->ncols = PQntuples(c);
            for (int j = 0; j < tb->ncols && rc == 0; j++) {
                column_t *col = &tb->cols[j];
                snprintf(col->name, sizeof col->name, "%s", PQgetvalue(c, j, 0));
                col->type = (unsigned)strtoul(PQgetvalue(c, j, 1), NULL, 10);
                if (col->type != OID_INT8 && col->type != OID_TEXT && col->type != OID_BYTEA &&
                    col->type != OID_FLOAT8)
                    rc = fail(m, "table %s: column %s has a type the migration does not know",
                              tb->name, col->name);
                size_t used = strlen(tb->select);
                snprintf(tb->select + used, sizeof tb->select - used, "%s\"%s\"", j ? ", " : "",
                         col->name);
            }
            for (int j = 0; j < PQntuples(k); j++) {
                size_t used = strlen(tb->order);
                snprintf(tb->order + used, sizeof tb->order - used, "%s\"%s\"", j ? ", " : "",
                         PQgetvalue(k, j, 0));
            }
            if (rc == 0 && !lite_has_table(m, tb->name))
                rc = fail(m, "table %s is in PostgreSQL's schema but not in the SQLite store%s",
                          tb->name, "");
        }
        PQclear(c);
        PQclear(k);
    }
    PQclear(t);
    if (rc < 0)
        return -1;
    /* and every SQLite table has its place in PostgreSQL */
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(m->lite, "SELECT name FROM sqlite_master WHERE type = 'table' AND"
                                    " name NOT LIKE 'sqlite_%' ORDER BY name",
                           -1, &s, NULL) != SQLITE_OK)
        return fail(m, "sqlite: %s%s", sqlite3_errmsg(m->lite), "");
    while (rc == 0 && sqlite3_step(s) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(s, 0);
        bool found = false;
        for (int i = 0; i < m->ntables; i++)
            found = found || strcmp(m->tables[i].name, name) == 0;
        if (!found)
            rc = fail(m, "table %s of the SQLite store has no place in PostgreSQL's schema%s", name,
                      "");
    }
    sqlite3_finalize(s);
    return rc;
}

/* --- the copy ----------------------------------------------------------------- */

typedef struct {
    char *data;
    size_t used;
} copybuf_t;

static int flush(migration_t *m, copybuf_t *b)
{
    if (b->used && PQputCopyData(m->pg, b->data, (int)b->used) != 1)
        return fail(m, "postgresql: copy: %s%s", PQerrorMessage(m->pg), "");
    b->used = 0;
    return 0;
}

/* Appends len bytes, flushing first when they would not fit (a value larger
 * than the buffer goes out on its own). */
static int put(migration_t *m, copybuf_t *b, const void *data, size_t len)
{
    if (b->used + len > COPY_BUFFER && flush(m, b) < 0)
        return -1;
    if (len > COPY_BUFFER) {
        if (PQputCopyData(m->pg, data, (int)len) != 1)
            return fail(m, "postgresql: copy: %s%s", PQerrorMessage(m->pg), "");
        return 0;
    }
    memcpy(b->data + b->used, data, len);
    b->used += len;
    return 0;
}

static int put_be32(migration_t *m, copybuf_t *b, int32_t v)
{
    uint32_t be = htobe32((uint32_t)v);
    return put(m, b, &be, 4);
}

/* One column of the current SQLite row: hashed, and written as COPY's binary
 * field. alter (the test hook) appends a byte to a text value in the copy only. */
static int copy_value(migration_t *m, copybuf_t *b, syn_sha256_t *sha, sqlite3_stmt *s, int i,
                      const table_t *tb, long long row, bool alter)
{
    const column_t *col = &tb->cols[i];
    int type = sqlite3_column_type(s, i);
    if (type == SQLITE_NULL) {
        sum_null(sha);
        return put_be32(m, b, -1);
    }
    bool ok = (col->type == OID_INT8 && type == SQLITE_INTEGER) ||
              (col->type == OID_FLOAT8 && (type == SQLITE_FLOAT || type == SQLITE_INTEGER)) ||
              (col->type == OID_TEXT && type == SQLITE_TEXT) ||
              (col->type == OID_BYTEA && (type == SQLITE_BLOB || type == SQLITE_TEXT));
    if (!ok) {
        snprintf(m->err, m->errlen,
                 "table %s, row %lld in key order: column %s holds a value of another type"
                 " (SQLite type %d), which PostgreSQL's column cannot take",
                 tb->name, row + 1, col->name, type);
        return -1;
    }
    if (col->type == OID_INT8) {
        int64_t v = sqlite3_column_int64(s, i);
        sum_int(sha, v);
        uint64_t be = htobe64((uint64_t)v);
        return put_be32(m, b, 8) < 0 ? -1 : put(m, b, &be, 8);
    }
    if (col->type == OID_FLOAT8) {
        double v = sqlite3_column_double(s, i);
        sum_double(sha, v);
        uint64_t bits;
        memcpy(&bits, &v, 8);
        bits = htobe64(bits);
        return put_be32(m, b, 8) < 0 ? -1 : put(m, b, &bits, 8);
    }
    const void *data = col->type == OID_TEXT ? (const void *)sqlite3_column_text(s, i)
                                             : sqlite3_column_blob(s, i);
    size_t len = (size_t)sqlite3_column_bytes(s, i);
    sum_bytes(sha, data, len);
    if (alter && col->type == OID_TEXT)
        return put_be32(m, b, (int32_t)len + 1) < 0 || put(m, b, data, len) < 0 ? -1
                                                                               : put(m, b, "~", 1);
    return put_be32(m, b, (int32_t)len) < 0 ? -1 : put(m, b, data, len);
}

static long long lite_count(migration_t *m, const table_t *tb)
{
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM \"%s\"", tb->name);
    sqlite3_stmt *s;
    long long n = -1;
    if (sqlite3_prepare_v2(m->lite, sql, -1, &s, NULL) == SQLITE_OK && sqlite3_step(s) == SQLITE_ROW)
        n = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    return n;
}

static void progress(migration_t *m, const table_t *tb, long long done, long long total)
{
    fprintf(m->out, "migrate: %-20s %lld/%lld rows\n", tb->name, done, total);
    fflush(m->out);
}

/* Streams one table from SQLite into PostgreSQL, hashing SQLite's side. */
static int copy_table(migration_t *m, table_t *tb, copybuf_t *b)
{
    long long total = lite_count(m, tb);
    char sql[4096];
    snprintf(sql, sizeof sql, "SELECT %s FROM \"%s\" ORDER BY %s", tb->select, tb->name, tb->order);
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(m->lite, sql, -1, &s, NULL) != SQLITE_OK)
        return fail(m, "sqlite: table %s: %s", tb->name, sqlite3_errmsg(m->lite));
    snprintf(sql, sizeof sql, "COPY \"%s\" (%s) FROM STDIN (FORMAT binary)", tb->name, tb->select);
    PGresult *r = PQexec(m->pg, sql);
    if (PQresultStatus(r) != PGRES_COPY_IN) {
        fail(m, "postgresql: table %s: %s", tb->name, PQresultErrorMessage(r));
        PQclear(r);
        sqlite3_finalize(s);
        return -1;
    }
    PQclear(r);
    static const char header[19] = "PGCOPY\n\377\r\n\0\0\0\0\0\0\0\0\0";
    int rc = put(m, b, header, sizeof header);
    bool tamper = m->tamper && strcmp(m->tamper, tb->name) == 0;
    syn_sha256_t sha;
    syn_sha256_init(&sha);
    long long row = 0;
    int step;
    while (rc == 0 && (step = sqlite3_step(s)) == SQLITE_ROW) {
        uint16_t n = htobe16((uint16_t)tb->ncols);
        rc = put(m, b, &n, 2);
        for (int i = 0; i < tb->ncols && rc == 0; i++)
            rc = copy_value(m, b, &sha, s, i, tb, row, tamper && row == total / 2);
        if (++row % PROGRESS_ROWS == 0)
            progress(m, tb, row, total);
    }
    if (rc == 0 && step != SQLITE_DONE)
        rc = fail(m, "sqlite: table %s: %s", tb->name, sqlite3_errmsg(m->lite));
    sqlite3_finalize(s);
    uint16_t trailer = 0xffff;
    if (rc == 0)
        rc = put(m, b, &trailer, 2) < 0 || flush(m, b) < 0 ? -1 : 0;
    if (PQputCopyEnd(m->pg, rc == 0 ? NULL : "the copy stopped") != 1 && rc == 0)
        rc = fail(m, "postgresql: table %s: %s", tb->name, PQerrorMessage(m->pg));
    while ((r = PQgetResult(m->pg)) != NULL) {
        if (PQresultStatus(r) != PGRES_COMMAND_OK && rc == 0)
            rc = fail(m, "postgresql: table %s: %s", tb->name, PQresultErrorMessage(r));
        PQclear(r);
    }
    b->used = 0;
    tb->rows = row;
    syn_sha256_hex(&sha, tb->lite_sum);
    if (rc == 0 && row >= PROGRESS_ROWS && row % PROGRESS_ROWS)
        progress(m, tb, row, row);
    return rc;
}

/* PostgreSQL's side: the table read back in key order, one row at a time. */
static int sum_postgresql(migration_t *m, table_t *tb)
{
    char sql[4096];
    snprintf(sql, sizeof sql, "SELECT %s FROM \"%s\" ORDER BY %s", tb->select, tb->name, tb->order);
    if (PQsendQueryParams(m->pg, sql, 0, NULL, NULL, NULL, NULL, 1) != 1 ||
        PQsetSingleRowMode(m->pg) != 1)
        return fail(m, "postgresql: table %s: %s", tb->name, PQerrorMessage(m->pg));
    syn_sha256_t sha;
    syn_sha256_init(&sha);
    int rc = 0;
    tb->pg_rows = 0;
    PGresult *r;
    while ((r = PQgetResult(m->pg)) != NULL) {
        ExecStatusType st = PQresultStatus(r);
        if (st == PGRES_SINGLE_TUPLE) {
            tb->pg_rows++;
            for (int i = 0; i < tb->ncols; i++) {
                if (PQgetisnull(r, 0, i)) {
                    sum_null(&sha);
                    continue;
                }
                const char *v = PQgetvalue(r, 0, i);
                uint64_t bits = 0;
                if (tb->cols[i].type == OID_INT8 || tb->cols[i].type == OID_FLOAT8)
                    memcpy(&bits, v, 8), bits = be64toh(bits);
                if (tb->cols[i].type == OID_INT8) {
                    sum_int(&sha, (int64_t)bits);
                } else if (tb->cols[i].type == OID_FLOAT8) {
                    double d;
                    memcpy(&d, &bits, 8);
                    sum_double(&sha, d);
                } else {
                    sum_bytes(&sha, v, (size_t)PQgetlength(r, 0, i));
                }
            }
        } else if (st != PGRES_TUPLES_OK && rc == 0) {
            rc = fail(m, "postgresql: table %s: %s", tb->name, PQresultErrorMessage(r));
        }
        PQclear(r);
    }
    syn_sha256_hex(&sha, tb->pg_sum);
    return rc;
}

/* Identity columns continue after the copied keys. */
static int advance_identities(migration_t *m)
{
    PGresult *r = pg_query(m, "SELECT c.relname, a.attname FROM pg_attribute a JOIN pg_class c ON"
                              " c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace"
                              " WHERE n.nspname = current_schema() AND a.attidentity <> ''",
                           NULL);
    if (!r)
        return -1;
    int rc = 0;
    for (int i = 0; i < PQntuples(r) && rc == 0; i++) {
        char sql[512];
        snprintf(sql, sizeof sql,
                 "SELECT setval(pg_get_serial_sequence('\"%s\"', '%s'),"
                 " coalesce(max(\"%s\"), 0) + 1, false) FROM \"%s\"",
                 PQgetvalue(r, i, 0), PQgetvalue(r, i, 1), PQgetvalue(r, i, 1),
                 PQgetvalue(r, i, 0));
        rc = pg_command(m, sql);
    }
    PQclear(r);
    return rc;
}

/* Copies every table, then compares: 0 when every table agrees. */
static int copy_and_verify(migration_t *m)
{
    copybuf_t b = {malloc(COPY_BUFFER), 0};
    if (!b.data)
        return fail(m, "out of memory%s%s", "", "");
    int rc = 0;
    for (int i = 0; i < m->ntables && rc == 0; i++) {
        fprintf(m->out, "migrate: copying %s\n", m->tables[i].name);
        rc = copy_table(m, &m->tables[i], &b);
    }
    free(b.data);
    for (int i = 0; i < m->ntables && rc == 0; i++)
        rc = sum_postgresql(m, &m->tables[i]);
    if (rc < 0)
        return -1;
    fprintf(m->out, "migrate: %-20s %10s %10s  %s\n", "table", "sqlite", "postgresql",
            "sha256 (sqlite = postgresql)");
    const table_t *first_bad = NULL;
    long long total = 0;
    for (int i = 0; i < m->ntables; i++) {
        const table_t *tb = &m->tables[i];
        bool same = tb->rows == tb->pg_rows && strcmp(tb->lite_sum, tb->pg_sum) == 0;
        fprintf(m->out, "migrate: %-20s %10lld %10lld  %s%s%s\n", tb->name, tb->rows, tb->pg_rows,
                tb->lite_sum, same ? "" : " MISMATCH postgresql=", same ? "" : tb->pg_sum);
        if (!same && !first_bad)
            first_bad = tb;
        total += tb->rows;
    }
    if (first_bad) {
        if (first_bad->rows != first_bad->pg_rows)
            snprintf(m->err, m->errlen,
                     "verification failed: table %s has %lld rows in SQLite but %lld in "
                     "PostgreSQL; nothing was kept",
                     first_bad->name, first_bad->rows, first_bad->pg_rows);
        else
            snprintf(m->err, m->errlen,
                     "verification failed: table %s differs (sha256 %s in SQLite, %s in "
                     "PostgreSQL); nothing was kept",
                     first_bad->name, first_bad->lite_sum, first_bad->pg_sum);
        return -1;
    }
    fprintf(m->out, "migrate: verified %d tables, %lld rows: counts and checksums equal\n",
            m->ntables, total);
    return 0;
}

int broker_store_migrate_from(const char *sqlite_path, const char *conninfo, FILE *out,
                              char *err, size_t errlen)
{
    migration_t m = {.out = out, .err = err, .errlen = errlen};
    const char *tamper = getenv("SYN_TEST_MIGRATE_TAMPER");
    m.tamper = tamper && *tamper ? tamper : NULL;
    if (access(sqlite_path, R_OK | W_OK) != 0) {
        snprintf(err, errlen, "no SQLite store at %s (or not readable and writable)", sqlite_path);
        return -1;
    }
    /* the source at this version's schema, as the broker would make it */
    broker_store_t *source = broker_store_open(sqlite_path, err, errlen);
    if (!source)
        return -1;
    broker_store_destroy(&source);
    /* the target's emptiness, then its schema (store_pg_sql.c) */
    m.pg = PQconnectdb(conninfo);
    if (!m.pg || PQstatus(m.pg) != CONNECTION_OK) {
        fail(&m, "cannot connect to PostgreSQL: %s%s", m.pg ? PQerrorMessage(m.pg) : "out of memory",
             "");
        PQfinish(m.pg);
        return -1;
    }
    int rc = -1;
    if (sqlite3_open_v2(sqlite_path, &m.lite, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "cannot open %s: %s", sqlite_path, sqlite3_errmsg(m.lite));
        goto done;
    }
    if (check_empty(&m) < 0)
        goto done;
    bool failed = false;
    store_pg_t *schema = store_pg_open(conninfo, &failed, err, errlen);
    if (!schema)
        goto done;
    int made = store_pg_migrate(schema, err, errlen);
    store_pg_close(&schema);
    if (made < 0 || describe_tables(&m) < 0)
        goto done;
    /* one snapshot of the source; one transaction on the target */
    if (sqlite3_exec(m.lite, "BEGIN", NULL, NULL, NULL) != SQLITE_OK ||
        sqlite3_exec(m.lite, "SELECT count(*) FROM sqlite_master", NULL, NULL, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "sqlite: %s", sqlite3_errmsg(m.lite));
        goto done;
    }
    if (pg_command(&m, "BEGIN") < 0)
        goto done;
    if (copy_and_verify(&m) < 0 || advance_identities(&m) < 0 || pg_command(&m, "COMMIT") < 0) {
        PQclear(PQexec(m.pg, "ROLLBACK"));
        goto done;
    }
    pg_command(&m, "ANALYZE"); /* the planner's statistics for the copied tables */
    rc = 0;
done:
    sqlite3_close(m.lite);
    PQfinish(m.pg);
    free(m.tables);
    return rc;
}
