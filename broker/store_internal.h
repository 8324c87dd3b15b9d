/* store_internal: what the parts of the store share and nobody else sees — the
 * store's struct, the ids of its prepared statements and the helpers that bind,
 * step and read them. The parts (store.c and store_*.c, one concern each) keep
 * every SQL text and SQLite call among themselves, so store.h stays the one
 * face the broker sees. Not for use outside broker/store*.c. */
#ifndef SYN_BROKER_STORE_INTERNAL_H
#define SYN_BROKER_STORE_INTERNAL_H

#include "broker/store.h"
#include "broker/store_exec.h"
#include "broker/tally.h"
#include "common/metrics.h"

#include <czmq.h>
#include <jansson.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The prepared statements, by what they do; their text is in store_statements.c. */
typedef enum {
    SQL_BEGIN,
    SQL_COMMIT,
    SQL_WORKFLOW_INSERT,
    SQL_WORKFLOW_VERSION_INSERT,
    SQL_WORKFLOW_GET,
    SQL_WORKFLOW_TEMPLATE,
    SQL_WORKFLOW_LIST,
    SQL_WORKFLOW_COUNT,
    SQL_WORKFLOW_BUMP,
    SQL_WORKFLOW_ARCHIVE,
    SQL_EXECUTION_INSERT,
    SQL_EXECUTION_INSERT_KEYED, /* PostgreSQL: an id known free, with its key */
    SQL_EXECUTION_SAVE,
    SQL_EXECUTION_SAVE_PROGRESS,
    SQL_EXECUTION_ROW,
    SQL_TALLY_COUNT,
    SQL_TALLY_PAGES,
    SQL_TALLY_DROP,
    SQL_PHASE_INSERT,
    SQL_PHASE_SAVE,
    SQL_PHASE_SAVE_ROW,
    SQL_PHASE_OUTPUT,
    SQL_PHASE_SAVE_OUTPUT,
    SQL_PHASE_SAVE_OUTPUT_ROW,
    SQL_ATTEMPT_INSERT,
    SQL_ATTEMPT_FINISH,
    SQL_EXECUTION_MATCH,
    SQL_EXECUTION_STATUS,
    SQL_EXECUTION_ACTIVE,
    SQL_EXECUTION_ONE,
    SQL_EXECUTION_FAIL,
    SQL_PHASES_OF,
    SQL_ATTEMPTS_OF,
    SQL_EVENT_LAST,
    /* Filtered families: each is _ALL, _STATUS, _WORKFLOW, _WORKFLOW_STATUS in
     * this order, and takes the status as ?4 and the workflow id as ?5
     * (store_query.c, filtered() and bind_filter()). */
    SQL_COUNT_ALL,
    SQL_COUNT_STATUS,
    SQL_COUNT_WORKFLOW,
    SQL_COUNT_WORKFLOW_STATUS,
    SQL_USAGE_ATTEMPT,
    SQL_USAGE_PHASE,
    SQL_USAGE_EXECUTION,
    SQL_MESSAGE_INSERT,
    SQL_MESSAGES_BIND,
    SQL_MESSAGES_OF,
    SQL_PAGES,
    SQL_LIST_ALL,
    SQL_LIST_STATUS,
    SQL_LIST_WORKFLOW,
    SQL_LIST_WORKFLOW_STATUS,
    SQL_SKIP_ALL,
    SQL_SKIP_STATUS,
    SQL_SKIP_WORKFLOW,
    SQL_SKIP_WORKFLOW_STATUS,
    SQL_SUMMARY,
    SQL_DETAIL_PHASES,
    SQL_DETAIL_ATTEMPTS,
    SQL_EXECUTION_STATE,
    SQL_PHASE_OUTPUT_GET,
    SQL_WORKFLOW_NAME,
    SQL_EVENTS_ALL,
    SQL_EVENTS_EXECUTION,
    SQL_RETAIN_OLDEST,
    SQL_RETAIN_FINISHED_COUNT,
    SQL_RETAIN_DELETE_PHASES,
    SQL_RETAIN_DELETE_ATTEMPTS,
    SQL_RETAIN_DELETE_EVENTS,
    SQL_RETAIN_DELETE_MESSAGES,
    SQL_RETAIN_DELETE_EXECUTION,
    /* the team controls (issue 19, store_controls.c) */
    SQL_IDEMPOTENCY_FIND,
    SQL_IDEMPOTENCY_PUT,
    SQL_IDEMPOTENCY_EXPIRE,
    SQL_RERUN_REUSE_PHASE,
    SQL_RERUN_MARK,
    SQL_RERUN_OF,
    SQL_RERUNS,
    SQL_REUSED_PHASES,
    SQL_COSTS_TOTALS, /* store_costs.c: what the original's /costs and metrics read */
    SQL_COSTS_STATUS,
    SQL_COSTS_MODELS,
    SQL_COSTS_EXECUTIONS,
    SQL_COSTS_SESSIONS,
    SQL_COSTS_ARTIFACTS, /* the original's metrics: artifacts, a workflow's phases */
    SQL_COSTS_PHASES,
    SQL_COSTS_RUNS,
    SQL_RETAIN_DELETE_ARTIFACT_CHUNKS,
    SQL_RETAIN_DELETE_ARTIFACTS,
    SQL_RETAIN_DETACH_NAMED_ARTIFACTS, /* schema v10: a rerun's referenced artifacts */
    SQL_RETAIN_DELETE_DETACHED_CHUNKS,
    SQL_RETAIN_DELETE_DETACHED,
    SQL_RERUN_REUSE_ARTIFACTS,
    SQL_ARTIFACT_INSERT,
    SQL_ARTIFACT_CHUNK_INSERT,
    SQL_ARTIFACT_DISCARD_CHUNKS,
    SQL_ARTIFACT_DISCARD,
    SQL_ARTIFACT_STAGING_CHUNKS,
    SQL_ARTIFACT_STAGING,
    SQL_ARTIFACT_COMPLETE,
    SQL_ARTIFACT_LIST,
    SQL_ARTIFACT_FIND,
    SQL_ARTIFACT_READ,
    SQL_COUNT
} sql_id_t;

/* Events wait here until the transaction commits or something reads the log,
 * then go in as multi-row inserts: one statement per event (eleven per
 * execution) spent a fifth of an event's cost on the statement itself. Batches
 * have power-of-two sizes up to EVENT_BATCH_MAX, so a handful of statements,
 * prepared once, serve every count. The strings are copied into one buffer (the
 * caller's are gone by then). */
#define EVENT_BATCH_SHIFT 5
#define EVENT_BATCH_MAX (1u << EVENT_BATCH_SHIFT)

typedef struct {
    int64_t seq;
    int64_t time;
    int64_t exec_num;        /* 0: looked up from execution_id */
    size_t execution_id;     /* offsets into text; NO_TEXT: NULL */
    size_t type;
    size_t data;
} pending_event_t;

#define NO_TEXT SIZE_MAX

typedef struct {
    pending_event_t rows[EVENT_BATCH_MAX];
    size_t count;
    char *text;
    size_t len, cap;
} pending_events_t;

/* The lease's statements (store_lease.c), prepared on first use. */
typedef enum {
    STORE_LEASE_TAKE,
    STORE_LEASE_HOLDER,
    STORE_LEASE_RENEW,
    STORE_LEASE_RELEASE,
    STORE_LEASE_FENCE,
    STORE_LEASE_COUNT
} store_lease_id_t;
#define STORE_FREE_IDS 64

/* PostgreSQL (store_pg.c, store_pg_sql.c): the connection and its executor. */
typedef struct store_pg store_pg_t;
#define STORE_PG_READ 1     /* the store reads its rows */
#define STORE_PG_ANSWER 2   /* a write whose new key or count of changes the store reads */
#define STORE_PG_CONFLICT 4 /* a write that changed nothing met a key already held */
#define STORE_PG_COMMIT 8   /* COMMIT: done only when the server says COMMIT */
#define STORE_PG_BINARY 16  /* rows come back as bytes (blobs) */

struct broker_store_t {
    sqlite3 *db;    /* SQLite, or NULL when pg */
    store_pg_t *pg; /* PostgreSQL, or NULL when db */
    store_q_t stmts[SQL_COUNT];
    store_q_t event_batch[EVENT_BATCH_SHIFT + 1]; /* [k]: the insert of 2^k events */
    store_q_t lease[STORE_LEASE_COUNT]; /* PostgreSQL's lease statements (store_lease.c) */
    int64_t fence_token; /* > 0: each write transaction begins with syn_fence(token) */
    pending_events_t events; /* events of the open transaction, not yet written */
    zhashx_t *workflows; /* id → cached_workflow_t */
    broker_tally_t *tally; /* count changes of the open transaction, not yet written */
    bool in_transaction;
    bool failed; /* a write of the open transaction failed: it must not commit */
    uint64_t commits;
    char last_error[200]; /* SQLite's message of the last failure (store_log_error) */
    syn_histogram_t commit_seconds; /* time of each COMMIT, for /metrics */
    /* PostgreSQL: execution ids known free, each with its key (store_executions.c),
     * and the one handed out last, whose insert need not wait for an answer. */
    char free_ids[STORE_FREE_IDS][BROKER_EXEC_ID_SIZE];
    int64_t free_nums[STORE_FREE_IDS];
    int nfree;
    char handed_id[BROKER_EXEC_ID_SIZE];
    int64_t handed_num;
};

/* The key (INTEGER PRIMARY KEY) of the row the last insert made. */
int64_t store_pg_inserted_id(const store_pg_t *pg);
/* Keeps those of the n candidate ids (each BROKER_EXEC_ID_SIZE bytes) no
 * execution has, in place, each with a new key from the executions' sequence:
 * one round trip. The count kept, or -1. */
int store_pg_free_ids(store_pg_t *pg, char (*ids)[BROKER_EXEC_ID_SIZE], int64_t *nums, int n);
int64_t store_pg_changes(const store_pg_t *pg);

static inline int64_t store_inserted_id(broker_store_t *self)
{
    return self->db ? sqlite3_last_insert_rowid(self->db) : store_pg_inserted_id(self->pg);
}

/* How many rows the last write changed. */
static inline int64_t store_changes(broker_store_t *self)
{
    return self->db ? sqlite3_changes(self->db) : store_pg_changes(self->pg);
}

/* An execution's row as the counts know it: workflow, status, insertion number. */
typedef struct {
    char *workflow_id;
    char status[16];
    int64_t num;
} counted_row_t;

/* --- statements (store_statements.c) -------------------------------------- */
/* (Each helper says what it does above its definition.) */

void store_log_error(broker_store_t *self, const char *what);
store_q_t *store_stmt(broker_store_t *self, sql_id_t id);
int store_run(broker_store_t *self, store_q_t *s, const char *what);
int store_step_one(broker_store_t *self, store_q_t *s, const char *what);
int store_step_text(broker_store_t *self, store_q_t *s, const char *what, char **text);
int64_t store_step_int(broker_store_t *self, store_q_t *s, const char *what);
json_t *store_rows_end(broker_store_t *self, store_q_t *s, json_t *rows, int rc,
                       const char *what);
void store_bind_time(store_q_t *s, int index, int64_t value);
char *store_column_strdup(store_q_t *s, int col);
json_t *store_column_json(store_q_t *s, int col);
json_t *store_column_string_or_null(store_q_t *s, int col);
json_t *store_column_time(store_q_t *s, int col);
char *store_dump_json(const json_t *value);
int store_exec_sql(broker_store_t *self, const char *sql, const char *what);

/* --- the WAL's writes, one per commit (store_wal_write.c) ------------------ */

/* The name of the VFS that gathers the WAL's writes (registered on first use),
 * or NULL when it cannot be registered (the default VFS is used then). */
const char *store_wal_write_vfs(void);

/* --- the transaction and its counts (store.c) ------------------------------ */

int store_begin_write(broker_store_t *self);
store_q_t *store_write_stmt(broker_store_t *self, sql_id_t id);
char *store_write_json(broker_store_t *self, const json_t *value);
int store_flush_tally(broker_store_t *self);
int store_count_change(broker_store_t *self, const char *workflow_id, const char *status,
                       int64_t num, int64_t delta);

/* --- PostgreSQL (store_pg.c, store_pg_sql.c) ------------------------------- */

store_pg_t *store_pg_open(const char *conninfo, bool *failed, char *err, size_t errlen);
int store_pg_pipeline(store_pg_t *pg, char *err, size_t errlen);
void store_pg_close(store_pg_t **pg_p);
bool store_pg_lost(const store_pg_t *pg);
int store_pg_reconnect(store_pg_t *pg, char *err, size_t errlen);
/* The socket of the reconnection under way, and whether it waits to write
 * (else to read); -1 when none is. */
int store_pg_connecting_fd(const store_pg_t *pg, bool *for_write);
const char *store_pg_error(const store_pg_t *pg);
bool store_pg_deposed(const store_pg_t *pg);
int store_pg_exec_plain(store_pg_t *pg, const char *sql, char *err, size_t errlen);
/* Runs sql (a SET) now and again at the start of every new session after a
 * lost connection: 0, or -1 with the server's message in err. */
int store_pg_session_set(store_pg_t *pg, const char *sql, char *err, size_t errlen);
int64_t store_pg_query_int(store_pg_t *pg, const char *sql, int64_t fallback);
int store_pg_sync(store_pg_t *pg);
bool store_pg_in_transaction(store_pg_t *pg);
store_pg_q_t *store_pg_q_new(store_pg_t *pg, const char *sql, int flags);
void store_pg_q_destroy(store_pg_q_t **q_p);
int store_pg_migrate(store_pg_t *pg, char *err, size_t errlen);
char *store_pg_sql(const char *lite, int id, int *flags);
/* A statement prepared for the store's database from SQLite's text (id its
 * sql_id_t, or -1): into *q; 0 or -1. */
int store_prepare(broker_store_t *self, store_q_t *q, const char *lite, int id);

/* --- the parts ------------------------------------------------------------- */

/* store_schema.c */
int store_migrate(broker_store_t *self, char *err, size_t errlen);
/* store_workflows.c: the destructor of the workflow cache's entries */
void store_cached_workflow_destroy(void **item);
/* store_executions.c */
int store_counted_row(broker_store_t *self, const char *id, counted_row_t *row);
int store_recount(broker_store_t *self, const counted_row_t *row, const char *status);
json_t *store_messages_of(broker_store_t *self, const char *execution_id, bool with_time);
/* store_controls.c: a detail's rerun_of, reruns and its phases' reused_from */
int store_controls_detail(broker_store_t *self, const char *id, json_t *detail);
/* store_events.c */
int store_flush_events(broker_store_t *self);
/* store_lease.c: sends syn_fence(token) into the transaction just begun (its
 * answer is read with the turn's others); 0, or -1 when it cannot be sent. */
int store_lease_fence(broker_store_t *self);

#endif
