/* store_exec: the seam between the store's parts and the database behind them.
 * It decides how one store serves two databases (SQLite, the embedded default,
 * and PostgreSQL, issue 21) without the SQLite path paying for the second.
 *
 * The parts (store_*.c) keep saying what they do as today: a statement by its
 * id (sql_id_t), bound by position, stepped, read by column. What changes per
 * database is only (a) the SQL text of a statement id (store_statements.c keeps
 * SQLite's; the other database's text is derived from it or overridden beside
 * it) and (b) this small executor, which runs a prepared statement on the
 * database the store was opened on.
 *
 * Why not a struct of function pointers, one per store operation (insert
 * execution, save phase, ...)? Because two implementations of ~60 operations
 * would hold the same logic twice (counts, tally, caches, JSON shapes) and drift,
 * and the SQLite half would pay an indirect call per operation. Here the logic
 * is written once; the executor's calls are inline and, on SQLite, each is the
 * sqlite3_* call it replaces: the result codes are SQLite's own (STORE_ROW is
 * SQLITE_ROW...), so nothing is translated on the hot path.
 *
 * Not for use outside broker/store*.c. */
#ifndef SYN_BROKER_STORE_EXEC_H
#define SYN_BROKER_STORE_EXEC_H

#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

/* What a step returns: SQLite's codes, which the other executor maps to. */
#define STORE_ROW SQLITE_ROW
#define STORE_DONE SQLITE_DONE
#define STORE_CONSTRAINT SQLITE_CONSTRAINT /* a unique key already held */
#define STORE_ERROR SQLITE_ERROR
#define STORE_NOMEM SQLITE_NOMEM

/* PostgreSQL's executor (store_pg.c): called only when lite is NULL. */
typedef struct store_pg_q store_pg_q_t;
void store_pg_bind_int(store_pg_q_t *q, int index, int64_t value);
void store_pg_bind_double(store_pg_q_t *q, int index, double value);
void store_pg_bind_text(store_pg_q_t *q, int index, const char *text);
void store_pg_bind_blob(store_pg_q_t *q, int index, const void *data, size_t len);
int store_pg_step(store_pg_q_t *q);
void store_pg_reset(store_pg_q_t *q);
int64_t store_pg_col_int(store_pg_q_t *q, int col);
double store_pg_col_double(store_pg_q_t *q, int col);
const char *store_pg_col_text(store_pg_q_t *q, int col);
size_t store_pg_col_bytes(store_pg_q_t *q, int col);

/* A prepared statement of the store (one per sql_id_t, kept for the store's
 * life): SQLite's (lite) or PostgreSQL's (pg). The test of lite is the whole
 * cost of the seam on the SQLite path: one predicted branch per call. */
typedef struct {
    sqlite3_stmt *lite;
    store_pg_q_t *pg;
} store_q_t;

#define STORE_LITE(q) __builtin_expect((q)->lite != NULL, 1)

static inline void store_bind_int(store_q_t *q, int index, int64_t value)
{
    if (STORE_LITE(q))
        sqlite3_bind_int64(q->lite, index, value);
    else
        store_pg_bind_int(q->pg, index, value);
}

static inline void store_bind_double(store_q_t *q, int index, double value)
{
    if (STORE_LITE(q))
        sqlite3_bind_double(q->lite, index, value);
    else
        store_pg_bind_double(q->pg, index, value);
}

static inline void store_bind_null(store_q_t *q, int index)
{
    if (STORE_LITE(q))
        sqlite3_bind_null(q->lite, index);
    else
        store_pg_bind_text(q->pg, index, NULL);
}

/* text NULL binds NULL; the text is borrowed until the statement is reset. */
static inline void store_bind_text(store_q_t *q, int index, const char *text)
{
    if (!STORE_LITE(q))
        store_pg_bind_text(q->pg, index, text);
    else if (text)
        sqlite3_bind_text(q->lite, index, text, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(q->lite, index);
}

/* Bytes, borrowed until the statement is reset (len 0 binds an empty value). */
static inline void store_bind_blob(store_q_t *q, int index, const void *data, size_t len)
{
    if (STORE_LITE(q))
        sqlite3_bind_blob64(q->lite, index, len ? data : "", len, SQLITE_STATIC);
    else
        store_pg_bind_blob(q->pg, index, data, len);
}

/* STORE_ROW (read the columns), STORE_DONE, or an error code. */
static inline int store_step(store_q_t *q)
{
    return STORE_LITE(q) ? sqlite3_step(q->lite) : store_pg_step(q->pg);
}

/* Done with the rows (or the run): bound memory is no longer referenced. */
static inline void store_reset(store_q_t *q)
{
    if (STORE_LITE(q))
        sqlite3_reset(q->lite);
    else
        store_pg_reset(q->pg);
}

static inline int64_t store_col_int(store_q_t *q, int col)
{
    return STORE_LITE(q) ? sqlite3_column_int64(q->lite, col) : store_pg_col_int(q->pg, col);
}

static inline double store_col_double(store_q_t *q, int col)
{
    return STORE_LITE(q) ? sqlite3_column_double(q->lite, col)
                         : store_pg_col_double(q->pg, col);
}

/* NULL for a NULL column; valid until the next step or reset. */
static inline const char *store_col_text(store_q_t *q, int col)
{
    return STORE_LITE(q) ? (const char *)sqlite3_column_text(q->lite, col)
                         : store_pg_col_text(q->pg, col);
}

static inline const void *store_col_blob(store_q_t *q, int col)
{
    return STORE_LITE(q) ? sqlite3_column_blob(q->lite, col) : store_pg_col_text(q->pg, col);
}

/* The size in bytes of a text or blob column. */
static inline size_t store_col_bytes(store_q_t *q, int col)
{
    return STORE_LITE(q) ? (size_t)sqlite3_column_bytes(q->lite, col)
                         : store_pg_col_bytes(q->pg, col);
}

static inline int store_col_null(store_q_t *q, int col)
{
    return STORE_LITE(q) ? sqlite3_column_type(q->lite, col) == SQLITE_NULL
                         : store_pg_col_text(q->pg, col) == NULL;
}

#endif
