/* store: opening and closing the database, and the lazily opened transaction
 * that makes group commit work — the first write of an iteration begins it,
 * broker_store_commit ends it, and the count changes (the tally) and waiting
 * events are written just before. The concerns the store holds are each in a
 * file of their own: store_schema.c, store_statements.c, store_workflows.c,
 * store_executions.c, store_query.c, store_reload.c and store_events.c. */
#include "broker/store_internal.h"

#include "common/clock.h"
#include "common/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int configure(broker_store_t *self, char *err, size_t errlen)
{
    sqlite3_busy_timeout(self->db, 5000);
    /* More lookaside slots: most of SQLite's small allocations per statement
     * then come from the connection's own pool instead of malloc. */
    sqlite3_db_config(self->db, SQLITE_DBCONFIG_LOOKASIDE, NULL, 512, 1024);
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(self->db, "PRAGMA journal_mode=WAL", -1, &s, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "cannot set WAL: %s", sqlite3_errmsg(self->db));
        return -1;
    }
    const char *mode = NULL;
    if (sqlite3_step(s) == SQLITE_ROW)
        mode = (const char *)sqlite3_column_text(s, 0);
    bool wal = mode && strcmp(mode, "wal") == 0;
    sqlite3_finalize(s);
    if (!wal) {
        snprintf(err, errlen, "the database refused WAL journaling");
        return -1;
    }
    /* temp_store=FILE: a sort over the whole archive (the costs report's sum by
     * model reads every phase) spills past its in-memory share to a temporary
     * file instead of growing the heap with the archive (issue 24: 178 MiB peak
     * at 1,000,000 executions with MEMORY); small temporary b-trees stay in the
     * page cache and never reach the file. */
    if (store_exec_sql(self,
                       "PRAGMA synchronous=FULL; PRAGMA foreign_keys=OFF;"
                       " PRAGMA temp_store=FILE; PRAGMA cache_size=-16384;"
                       " PRAGMA wal_autocheckpoint=10000;",
                       "pragma") < 0) {
        snprintf(err, errlen, "cannot configure the database");
        return -1;
    }
    return 0;
}

/* Opens the group's transaction on the first write of an iteration. */
/* After a failed write nothing more is written until the commit rolls the
 * transaction back: SQLite may already have rolled it back by itself (full
 * disk, I/O error, out of memory), and later writes would then each commit on
 * their own, without the count changes the tally holds for them. */
int store_begin_write(broker_store_t *self)
{
    if (self->failed)
        return -1;
    if (self->in_transaction)
        return 0;
    store_q_t *s = store_stmt(self, SQL_BEGIN);
    if (!s || store_run(self, s, "begin") != STORE_DONE ||
        (self->fence_token > 0 && store_lease_fence(self) < 0)) {
        self->failed = true;
        return -1;
    }
    self->in_transaction = true;
    return 0;
}

/* The statement of a write, the transaction begun: what every write starts
 * with. NULL when the transaction cannot begin or the statement not prepare. */
store_q_t *store_write_stmt(broker_store_t *self, sql_id_t id)
{
    return store_begin_write(self) < 0 ? NULL : store_stmt(self, id);
}

/* The JSON text a write is about to store (malloc'd), the transaction begun.
 * NULL when the text cannot be made or the transaction cannot begin. */
char *store_write_json(broker_store_t *self, const json_t *value)
{
    char *text = store_dump_json(value);
    if (!text || store_begin_write(self) < 0) {
        free(text);
        return NULL;
    }
    return text;
}

bool broker_store_is_postgresql(const char *location)
{
    return strncmp(location, "postgresql://", 13) == 0 || strncmp(location, "postgres://", 11) == 0;
}

/* PostgreSQL: connect, bring the schema to this version, then every statement
 * goes through the pipeline (store_pg.c). */
static int open_postgresql(broker_store_t *self, const char *conninfo, char *err, size_t errlen)
{
    self->pg = store_pg_open(conninfo, &self->failed, err, errlen);
    if (!self->pg)
        return -1;
    return store_pg_migrate(self->pg, err, errlen) < 0 ||
                   store_pg_pipeline(self->pg, err, errlen) < 0
               ? -1
               : 0;
}

broker_store_t *broker_store_open(const char *path, char *err, size_t errlen)
{
    /* The broker uses SQLite from one thread: without memory statistics every
     * allocation inside SQLite (hundreds per execution) skips a global mutex.
     * Only possible before SQLite initializes; later calls fail harmlessly. */
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
    broker_store_t *self = calloc(1, sizeof *self);
    if (self)
        syn_histogram_init(&self->commit_seconds, syn_buckets_fast_seconds,
                           syn_buckets_fast_count);
    if (!self) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    self->workflows = zhashx_new();
    self->tally = broker_tally_new();
    if (!self->workflows || !self->tally) {
        snprintf(err, errlen, "out of memory");
        zhashx_destroy(&self->workflows);
        broker_tally_destroy(&self->tally);
        free(self);
        return NULL;
    }
    zhashx_set_destructor(self->workflows, store_cached_workflow_destroy);
    if (broker_store_is_postgresql(path)) {
        if (open_postgresql(self, path, err, errlen) < 0)
            broker_store_destroy(&self);
        return self;
    }
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
    if (sqlite3_open_v2(path, &self->db, flags, store_wal_write_vfs()) != SQLITE_OK) {
        snprintf(err, errlen, "cannot open %s: %s", path,
                 self->db ? sqlite3_errmsg(self->db) : "out of memory");
        broker_store_destroy(&self);
        return NULL;
    }
    if (configure(self, err, errlen) < 0 || store_migrate(self, err, errlen) < 0) {
        broker_store_destroy(&self);
        return NULL;
    }
    return self;
}

void broker_store_destroy(broker_store_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    broker_store_t *self = *self_p;
    if (self->db) {
        if (self->in_transaction)
            broker_store_commit(self);
        for (int i = 0; i < SQL_COUNT; i++)
            sqlite3_finalize(self->stmts[i].lite);
        for (int i = 0; i <= EVENT_BATCH_SHIFT; i++)
            sqlite3_finalize(self->event_batch[i].lite);
        sqlite3_close(self->db);
    }
    if (self->pg) {
        if (self->in_transaction)
            broker_store_commit(self);
        for (int i = 0; i < SQL_COUNT; i++)
            store_pg_q_destroy(&self->stmts[i].pg);
        for (int i = 0; i <= EVENT_BATCH_SHIFT; i++)
            store_pg_q_destroy(&self->event_batch[i].pg);
        for (int i = 0; i < STORE_LEASE_COUNT; i++)
            store_pg_q_destroy(&self->lease[i].pg);
        store_pg_close(&self->pg);
    }
    zhashx_destroy(&self->workflows);
    broker_tally_destroy(&self->tally);
    free(self->events.text);
    free(self);
    *self_p = NULL;
}

static int write_tally_entry(const broker_tally_entry_t *entry, void *arg)
{
    broker_store_t *self = arg;
    store_q_t *s;
    if (*entry->status) {
        s = store_stmt(self, SQL_TALLY_COUNT);
        if (!s)
            return -1;
        store_bind_text(s, 1, entry->workflow_id);
        store_bind_text(s, 2, entry->status);
        store_bind_int(s, 3, entry->delta);
        if (store_run(self, s, "count executions") != STORE_DONE)
            return -1;
    }
    s = store_stmt(self, SQL_TALLY_PAGES);
    if (!s)
        return -1;
    store_bind_text(s, 1, entry->workflow_id);
    store_bind_text(s, 2, entry->status);
    store_bind_int(s, 3, entry->block);
    store_bind_int(s, 4, entry->delta);
    if (store_run(self, s, "count execution pages") != STORE_DONE)
        return -1;
    if (entry->delta > 0)
        return 0;
    const char *owners[] = {entry->workflow_id, ""};
    for (size_t i = 0; i < 2; i++) {
        s = store_stmt(self, SQL_TALLY_DROP);
        if (!s)
            return -1;
        store_bind_text(s, 1, owners[i]);
        store_bind_text(s, 2, entry->status);
        store_bind_int(s, 3, entry->block);
        if (store_run(self, s, "drop empty execution pages") != STORE_DONE)
            return -1;
    }
    return 0;
}

/* Writes the open transaction's count changes: before it commits, and before
 * anything reads the counts. */
int store_flush_tally(broker_store_t *self)
{
    int rc = 0;
    if (self->in_transaction && !self->failed &&
        broker_tally_each(self->tally, write_tally_entry, self) != 0) {
        self->failed = true;
        rc = -1;
    }
    broker_tally_clear(self->tally);
    return rc;
}

/* A status change or insert of execution num of workflow_id: status "" is the
 * any-status key, which only inserts (and deletes) move. */
int store_count_change(broker_store_t *self, const char *workflow_id, const char *status,
                              int64_t num, int64_t delta)
{
    if (broker_tally_add(self->tally, workflow_id, status, num, delta) < 0) {
        syn_error("broker", "out of memory counting executions");
        self->failed = true;
        return -1;
    }
    /* Many distinct keys in one transaction (a bulk change across workflows):
     * write them now rather than scan an ever longer list. */
    if (broker_tally_size(self->tally) >= 64)
        return store_flush_tally(self);
    return 0;
}

/* Ends a failed (or unwanted) transaction: nothing of it stays, in the file or
 * in the store's caches. */
static void rollback(broker_store_t *self)
{
    self->failed = false;
    if (self->db ? !sqlite3_get_autocommit(self->db) : store_pg_in_transaction(self->pg))
        store_exec_sql(self, "ROLLBACK", "rollback");
    zhashx_purge(self->workflows); /* it may hold what was just rolled back */
}

/* A transaction in which any write failed is rolled back whole: committing the
 * rest would store a state the broker never was in. */
int broker_store_commit(broker_store_t *self)
{
    store_flush_events(self);
    store_flush_tally(self);
    bool failed = self->failed;
    self->failed = false;
    if (!self->in_transaction)
        return failed ? -1 : 0;
    self->in_transaction = false;
    if (!failed) {
        store_q_t *s = store_stmt(self, SQL_COMMIT);
        int64_t started_us = syn_mono_us();
        if (s && store_run(self, s, "commit") == STORE_DONE) {
            syn_histogram_observe(&self->commit_seconds,
                                  (double)(syn_mono_us() - started_us) / 1e6);
            self->failed = false;
            self->commits++;
            return 0;
        }
    }
    rollback(self);
    if (broker_store_connection_lost(self))
        snprintf(self->last_error, sizeof self->last_error, "%s: %s", BROKER_STORE_LOST,
                 store_pg_error(self->pg));
    return -1;
}

bool broker_store_connection_lost(const broker_store_t *self)
{
    return self->pg && store_pg_lost(self->pg);
}

int broker_store_reconnect_fd(const broker_store_t *self, bool *for_write)
{
    return self->pg ? store_pg_connecting_fd(self->pg, for_write) : -1;
}

void broker_store_rollback(broker_store_t *self)
{
    self->failed = true; /* the waiting events and counts are dropped, not written */
    store_flush_events(self);
    broker_tally_clear(self->tally);
    self->in_transaction = false;
    rollback(self);
}

/* A write that needs the disk (page 1 rewritten: a WAL frame), committed on its
 * own, without a line in the log when it fails: while storage is full it fails
 * every time it is tried. */
int broker_store_probe(broker_store_t *self)
{
    if (self->in_transaction)
        return -1;
    if (self->pg) { /* the server's disk: a one-row write of its own */
        if (store_pg_lost(self->pg) &&
            store_pg_reconnect(self->pg, self->last_error, sizeof self->last_error) < 0)
            return -1;
        store_pg_sync(self->pg);
        return store_pg_exec_plain(self->pg, "UPDATE syn_schema SET version = version",
                                   self->last_error, sizeof self->last_error);
    }
    sqlite3_stmt *s = NULL;
    int version = -1;
    if (sqlite3_prepare_v2(self->db, "PRAGMA user_version", -1, &s, NULL) == SQLITE_OK &&
        sqlite3_step(s) == SQLITE_ROW)
        version = sqlite3_column_int(s, 0);
    sqlite3_finalize(s);
    char sql[96];
    snprintf(sql, sizeof sql, "BEGIN IMMEDIATE; PRAGMA user_version=%d; COMMIT;", version);
    char *msg = NULL;
    int rc = version < 0 ? SQLITE_ERROR : sqlite3_exec(self->db, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK) {
        snprintf(self->last_error, sizeof self->last_error, "%s",
                 msg ? msg : sqlite3_errmsg(self->db));
        if (!sqlite3_get_autocommit(self->db))
            sqlite3_exec(self->db, "ROLLBACK", NULL, NULL, NULL);
    }
    sqlite3_free(msg);
    return rc == SQLITE_OK ? 0 : -1;
}

const char *broker_store_last_error(const broker_store_t *self)
{
    return self->last_error;
}

bool broker_store_dirty(const broker_store_t *self)
{
    return self->in_transaction;
}

const syn_histogram_t *broker_store_commit_latency(const broker_store_t *self)
{
    return &self->commit_seconds;
}

uint64_t broker_store_commit_count(const broker_store_t *self)
{
    return self->commits;
}
