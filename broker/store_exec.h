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

/* A prepared statement of the store (one per sql_id_t, kept for the store's
 * life). */
typedef struct {
    sqlite3_stmt *lite;
} store_q_t;

static inline void store_bind_int(store_q_t *q, int index, int64_t value)
{
    sqlite3_bind_int64(q->lite, index, value);
}

static inline void store_bind_double(store_q_t *q, int index, double value)
{
    sqlite3_bind_double(q->lite, index, value);
}

static inline void store_bind_null(store_q_t *q, int index)
{
    sqlite3_bind_null(q->lite, index);
}

/* text NULL binds NULL; the text is borrowed until the statement is reset. */
static inline void store_bind_text(store_q_t *q, int index, const char *text)
{
    if (text)
        sqlite3_bind_text(q->lite, index, text, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(q->lite, index);
}

/* Bytes, borrowed until the statement is reset (len 0 binds an empty value). */
static inline void store_bind_blob(store_q_t *q, int index, const void *data, size_t len)
{
    sqlite3_bind_blob64(q->lite, index, len ? data : "", len, SQLITE_STATIC);
}

/* STORE_ROW (read the columns), STORE_DONE, or an error code. */
static inline int store_step(store_q_t *q)
{
    return sqlite3_step(q->lite);
}

/* Done with the rows (or the run): bound memory is no longer referenced. */
static inline void store_reset(store_q_t *q)
{
    sqlite3_reset(q->lite);
}

static inline int64_t store_col_int(store_q_t *q, int col)
{
    return sqlite3_column_int64(q->lite, col);
}

static inline double store_col_double(store_q_t *q, int col)
{
    return sqlite3_column_double(q->lite, col);
}

/* NULL for a NULL column; valid until the next step or reset. */
static inline const char *store_col_text(store_q_t *q, int col)
{
    return (const char *)sqlite3_column_text(q->lite, col);
}

static inline const void *store_col_blob(store_q_t *q, int col)
{
    return sqlite3_column_blob(q->lite, col);
}

/* The size in bytes of a text or blob column. */
static inline size_t store_col_bytes(store_q_t *q, int col)
{
    return (size_t)sqlite3_column_bytes(q->lite, col);
}

static inline int store_col_null(store_q_t *q, int col)
{
    return sqlite3_column_type(q->lite, col) == SQLITE_NULL;
}

#endif
