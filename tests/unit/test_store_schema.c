/* broker/store_schema.c: the schema and pragmas of a new file, a newer file
 * refused, and older files (versions 1 and 2) upgraded in place. */
#include "tests/support/store_fixture.h"

#include "broker/usage.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

static void test_schema_and_pragmas(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(peek_int(f, "PRAGMA user_version"), BROKER_STORE_SCHEMA_VERSION);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    sqlite3_stmt *s;
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &s, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(s, 0), "wal");
    sqlite3_finalize(s);
    sqlite3_close(db);
    assert_int_equal(peek_int(f, "SELECT count(*) FROM sqlite_master WHERE type='index' AND "
                                 "name IN ('executions_status','executions_workflow',"
                                 "'executions_workflow_status','events_execution')"),
                     4);
}

static void test_newer_schema_refused(void **state)
{
    fixture_t *f = *state;
    broker_store_destroy(&f->store);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "PRAGMA user_version=99", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    char err[256] = "";
    assert_null(broker_store_open(f->path, err, sizeof err));
    assert_non_null(strstr(err, "99"));
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    char pragma[64];
    snprintf(pragma, sizeof pragma, "PRAGMA user_version=%d", BROKER_STORE_SCHEMA_VERSION);
    sqlite3_exec(db, pragma, NULL, NULL, NULL);
    sqlite3_close(db);
    reopen(f);
}

/* Turns a current file back into version 5's shape, where phases, attempts and
 * the events index were keyed by the execution's id: the first step of making
 * an older file out of a new one. */
/* Undoes version 8 (the team controls' table and columns). */
#define BACK_TO_V7                                                                             \
    "DROP TABLE idempotency_keys; DROP INDEX executions_rerun_of;"                               \
    "ALTER TABLE executions DROP COLUMN rerun_of;"                                              \
    "ALTER TABLE executions DROP COLUMN priority;"                                              \
    "ALTER TABLE executions DROP COLUMN max_budget_usd;"                                        \
    "ALTER TABLE phases DROP COLUMN reused_from;"

static const char *const back_to_v5 =
    "DROP TABLE artifacts; DROP TABLE artifact_chunks;"
    BACK_TO_V7
    "CREATE TABLE phases_v5 (execution_id TEXT NOT NULL, phase_id TEXT NOT NULL,"
    "  ord INTEGER NOT NULL, name TEXT NOT NULL, model TEXT, status TEXT NOT NULL,"
    "  attempts INTEGER NOT NULL DEFAULT 0, output TEXT, error TEXT, started_at INTEGER,"
    "  completed_at INTEGER, input_tokens INTEGER NOT NULL DEFAULT 0,"
    "  output_tokens INTEGER NOT NULL DEFAULT 0, cost_usd REAL NOT NULL DEFAULT 0,"
    "  cache_creation_tokens INTEGER NOT NULL DEFAULT 0,"
    "  cache_read_tokens INTEGER NOT NULL DEFAULT 0, num_turns INTEGER NOT NULL DEFAULT 0,"
    "  duration_ms INTEGER NOT NULL DEFAULT 0, tool_call_count INTEGER NOT NULL DEFAULT 0,"
    "  PRIMARY KEY (execution_id, phase_id));"
    "INSERT INTO phases_v5 SELECT p.execution_id, p.phase_id, p.ord, p.name, p.model, p.status,"
    "  p.attempts, p.output, p.error, p.started_at, p.completed_at, p.input_tokens,"
    "  p.output_tokens, p.cost_usd, p.cache_creation_tokens, p.cache_read_tokens,"
    "  p.num_turns, p.duration_ms, p.tool_call_count"
    "  FROM phases p;"
    "DROP TABLE phases; ALTER TABLE phases_v5 RENAME TO phases;"
    "CREATE TABLE attempts_v5 (execution_id TEXT NOT NULL, phase_id TEXT NOT NULL,"
    "  attempt INTEGER NOT NULL, worker TEXT, status TEXT NOT NULL, started_at INTEGER,"
    "  completed_at INTEGER, exit_code INTEGER, error TEXT, usage TEXT,"
    "  PRIMARY KEY (execution_id, phase_id, attempt)) WITHOUT ROWID;"
    "INSERT INTO attempts_v5 SELECT a.execution_id, a.phase_id, a.attempt, a.worker, a.status,"
    "  a.started_at, a.completed_at, a.exit_code, a.error, a.usage"
    "  FROM attempts a;"
    "DROP TABLE attempts; ALTER TABLE attempts_v5 RENAME TO attempts;"
    "DROP INDEX events_execution; ALTER TABLE events DROP COLUMN exec_num;"
    "CREATE INDEX events_execution ON events(execution_id, seq);";

static void raw_exec(const fixture_t *f, const char *sql)
{
    sqlite3 *db;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
        fail_msg("%s: %s", sql, msg ? msg : "?");
    sqlite3_close(db);
}

/* A version 1 file (as the first release left it) is upgraded in place: the new
 * columns and tables appear, and the page counts are rebuilt from the rows. */
static void test_upgrade_from_v1(void **state)
{
    fixture_t *f = *state;
    add_workflow(f, "wf-1", 2, 1);
    for (int i = 0; i < 3; i++) {
        char id[32];
        snprintf(id, sizeof id, "exec-%012d", i);
        broker_execution_t *exec = make_exec(id, "wf-1", 2, i + 1);
        assert_int_equal(broker_store_execution_insert(f->store, exec), 0);
        if (i == 1) {
            exec->status = BROKER_EXEC_FAILED;
            assert_int_equal(broker_store_execution_save(f->store, exec), 0);
        }
        broker_execution_destroy(&exec);
    }
    assert_int_equal(broker_store_event_insert(f->store, 1, 5, "exec-000000000001", 0,
                                               "ExecutionStarted", "{}"),
                     0);
    assert_int_equal(broker_store_commit(f->store), 0);
    broker_store_destroy(&f->store);
    raw_exec(f, back_to_v5);
    /* A version 1 file counted with triggers, which later versions dropped. */
    raw_exec(f, "CREATE TRIGGER executions_counted_insert AFTER INSERT ON executions BEGIN"
                "  INSERT INTO execution_counts(workflow_id, status, n)"
                "  VALUES (new.workflow_id, new.status, 1)"
                "  ON CONFLICT(workflow_id, status) DO UPDATE SET n = n + 1;"
                " END;"
                " DROP TABLE execution_pages;"
                " DROP TABLE operator_messages;"
                " ALTER TABLE executions DROP COLUMN total_cache_creation_tokens;"
                " ALTER TABLE executions DROP COLUMN total_cache_read_tokens;"
                " ALTER TABLE phases DROP COLUMN cache_creation_tokens;"
                " ALTER TABLE phases DROP COLUMN cache_read_tokens;"
                " ALTER TABLE phases DROP COLUMN num_turns;"
                " ALTER TABLE phases DROP COLUMN duration_ms;"
                " ALTER TABLE phases DROP COLUMN tool_call_count;"
                " ALTER TABLE attempts DROP COLUMN usage;"
                " ALTER TABLE workflows DROP COLUMN source_hash; PRAGMA user_version=1;");
    char err[256] = "";
    f->store = broker_store_open(f->path, err, sizeof err);
    if (!f->store)
        fail_msg("upgrade failed: %s", err);
    assert_int_equal(peek_int(f, "PRAGMA user_version"), BROKER_STORE_SCHEMA_VERSION);
    assert_int_equal(peek_int(f, "SELECT n FROM execution_pages WHERE workflow_id='' AND "
                                 "status=''"),
                     3);
    assert_int_equal(peek_int(f, "SELECT n FROM execution_pages WHERE workflow_id='wf-1' AND "
                                 "status='pending'"),
                     2);
    json_t *items;
    int64_t total;
    assert_int_equal(broker_store_execution_list(f->store, NULL, BROKER_EXEC_PENDING, 2, 1,
                                                 &items, &total),
                     0);
    assert_int_equal(total, 2);
    assert_int_equal(json_array_size(items), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(items, 0),
                                                          "execution_id")),
                        "exec-000000000000");
    json_decref(items);
    assert_int_equal(peek_int(f, "SELECT count(*) FROM pragma_table_info('phases') WHERE "
                                 "name='tool_call_count'"),
                     1);
    /* version 6: phases, attempts and events found through the execution's number */
    assert_int_equal(peek_int(f, "SELECT count(*) FROM phases p JOIN executions e"
                                 " ON e.num = p.exec_num"),
                     6);
    assert_int_equal(peek_int(f, "SELECT count(*) FROM events WHERE exec_num ="
                                 " (SELECT num FROM executions WHERE id = 'exec-000000000001')"),
                     1);
    json_t *detail = NULL;
    assert_int_equal(broker_store_execution_detail(f->store, "exec-000000000001", &detail), 1);
    assert_int_equal(json_array_size(json_object_get(detail, "phases")), 2);
    json_decref(detail);
    /* versions 4 and 5: status changes and inserts are counted by the store */
    assert_int_equal(peek_int(f, "SELECT count(*) FROM sqlite_master WHERE type='trigger' AND "
                                 "(name LIKE '%_update' OR name LIKE '%_insert')"),
                     0);
    broker_execution_t *exec = make_exec("exec-000000000000", "wf-1", 2, 1);
    exec->status = BROKER_EXEC_CANCELLED;
    assert_int_equal(broker_store_execution_save(f->store, exec), 0);
    broker_execution_destroy(&exec);
    assert_int_equal(broker_store_commit(f->store), 0);
    assert_int_equal(broker_store_execution_count(f->store, "wf-1", BROKER_EXEC_PENDING), 1);
    assert_int_equal(broker_store_execution_count(f->store, "wf-1", BROKER_EXEC_CANCELLED), 1);
    assert_int_equal(peek_int(f, "SELECT n FROM execution_pages WHERE workflow_id='' AND "
                                 "status='cancelled'"),
                     1);
    assert_int_equal(peek_int(f, "SELECT n FROM execution_pages WHERE workflow_id='wf-1' AND "
                                 "status='pending'"),
                     1);
    /* an execution added after the upgrade is counted once, not by a trigger too */
    exec = make_exec("exec-000000000009", "wf-1", 2, 9);
    assert_int_equal(broker_store_execution_insert(f->store, exec), 0);
    broker_execution_destroy(&exec);
    assert_int_equal(broker_store_execution_count(f->store, "wf-1", BROKER_EXEC_PENDING), 2);
    assert_int_equal(broker_store_commit(f->store), 0);
    assert_int_equal(peek_int(f, "SELECT n FROM execution_pages WHERE workflow_id='' AND "
                                 "status=''"),
                     4);
}

/* A version 2 file gains source_hash (NULL for what it holds) in place. */
static void test_upgrade_from_v2(void **state)
{
    fixture_t *f = *state;
    add_workflow(f, "wf-1", 2, 1);
    assert_int_equal(broker_store_commit(f->store), 0);
    broker_store_destroy(&f->store);
    raw_exec(f, back_to_v5);
    raw_exec(f, "ALTER TABLE workflows DROP COLUMN source_hash; PRAGMA user_version=2;");
    char err[256] = "";
    f->store = broker_store_open(f->path, err, sizeof err);
    if (!f->store)
        fail_msg("upgrade failed: %s", err);
    assert_int_equal(peek_int(f, "PRAGMA user_version"), BROKER_STORE_SCHEMA_VERSION);
    assert_int_equal(peek_int(f, "SELECT count(*) FROM workflows WHERE source_hash IS NULL"), 1);
    json_t *tpl = NULL;
    broker_workflow_meta_t meta;
    assert_int_equal(broker_store_workflow_get(f->store, "wf-1", &tpl, &meta), 1);
    assert_int_equal(meta.version, 1);
    assert_string_equal(meta.source_hash, "");
    json_decref(tpl);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        store_test(test_schema_and_pragmas),
        store_test(test_newer_schema_refused),
        store_test(test_upgrade_from_v2),
        store_test(test_upgrade_from_v1),
    };
    return cmocka_run_group_tests_name("store_schema", tests, NULL, NULL);
}
