/* broker/store against a real SQLite file in a temporary directory: schema,
 * workflows, executions and their phases, group commit (checked from a second
 * connection), prefix lookup, reload of active executions, counts, events, and
 * that closing and reopening keeps everything. */
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
static const char *const back_to_v5 =
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
                " DROP TRIGGER executions_paged_delete; DROP TABLE execution_pages;"
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

static void test_workflows(void **state)
{
    fixture_t *f = *state;
    add_workflow(f, "wf-a", 2, 1000);
    add_workflow(f, "wf-b", 3, 2000);
    add_workflow(f, "wf-c", 1, 3000);
    broker_workflow_row_t dup = {.id = "wf-b", .name = "x", .workflow_type = "custom",
                                 .classification = "standard", .phase_count = 1,
                                 .template_json = json_object(), .created_at = 1};
    assert_int_equal(broker_store_workflow_insert(f->store, &dup), 1);
    json_decref((json_t *)dup.template_json);
    assert_int_equal(broker_store_commit(f->store), 0);

    json_t *tpl = NULL;
    broker_workflow_meta_t meta;
    assert_int_equal(broker_store_workflow_get(f->store, "wf-b", &tpl, &meta), 1);
    assert_int_equal(meta.version, 1);
    assert_int_equal(meta.created_at, 2000);
    assert_false(meta.archived);
    assert_string_equal(meta.source_hash, "");
    assert_string_equal(json_string_value(json_object_get(tpl, "id")), "wf-b");
    assert_int_equal(json_array_size(json_object_get(tpl, "phases")), 3);
    json_decref(tpl);
    tpl = NULL;
    assert_int_equal(broker_store_workflow_get(f->store, "wf-zzz", &tpl, NULL), 0);
    assert_null(tpl);
    assert_int_equal(broker_store_workflow_template(f->store, "wf-a", 1, &tpl), 1);
    json_decref(tpl);
    assert_int_equal(broker_store_workflow_template(f->store, "wf-a", 2, &tpl), 0);

    json_t *items;
    int64_t total;
    assert_int_equal(broker_store_workflow_list(f->store, NULL, 1, 2, &items, &total), 0);
    assert_int_equal(total, 3);
    assert_int_equal(json_array_size(items), 2);
    json_t *first = json_array_get(items, 0);
    assert_string_equal(json_string_value(json_object_get(first, "id")), "wf-c");
    assert_true(json_is_null(json_object_get(first, "description")));
    assert_int_equal(json_integer_value(json_object_get(first, "phase_count")), 1);
    assert_string_equal(json_string_value(json_object_get(first, "created_at")),
                        "1970-01-01T00:00:00.003000Z");
    json_decref(items);
    assert_int_equal(broker_store_workflow_list(f->store, NULL, 2, 2, &items, &total), 0);
    assert_int_equal(json_array_size(items), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(items, 0), "id")),
                        "wf-a");
    json_decref(items);

    reopen(f);
    assert_int_equal(broker_store_workflow_get(f->store, "wf-a", &tpl, NULL), 1);
    json_decref(tpl);
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

static const char *phase_prompt(const json_t *tpl, size_t index)
{
    return json_string_value(
        json_object_get(json_array_get(json_object_get(tpl, "phases"), index), "prompt_template"));
}

/* Versions: an update stores the next version and keeps the old ones; the source
 * hash changes only when given; archive hides from the listing, not from get. */
static void test_workflow_versions_and_archive(void **state)
{
    fixture_t *f = *state;
    json_t *tpl = template_of(2);
    broker_workflow_row_t row = {.id = "wf-1", .name = "demo", .workflow_type = "research",
                                 .classification = "standard", .phase_count = 2,
                                 .template_json = tpl, .created_at = 10, .source_hash = "h1"};
    assert_int_equal(broker_store_workflow_insert(f->store, &row), 0);
    add_workflow(f, "wf-2", 1, 20);
    add_workflow(f, "wf-3", 1, 30);

    json_object_set_new(json_array_get(json_object_get(tpl, "phases"), 0), "prompt_template",
                        json_string("changed"));
    row.name = "demo 2";
    row.source_hash = "h2";
    row.created_at = 40;
    int64_t version = 0;
    assert_int_equal(broker_store_workflow_update(f->store, &row, &version), 0);
    assert_int_equal(version, 2);
    row.source_hash = NULL;
    assert_int_equal(broker_store_workflow_update(f->store, &row, &version), 0);
    assert_int_equal(version, 3);
    broker_workflow_row_t unknown = row;
    unknown.id = "wf-nope";
    assert_int_equal(broker_store_workflow_update(f->store, &unknown, &version), 1);
    assert_int_equal(version, 3);
    json_decref(tpl);
    assert_int_equal(broker_store_commit(f->store), 0);
    reopen(f);

    broker_workflow_meta_t meta;
    assert_int_equal(broker_store_workflow_get(f->store, "wf-1", &tpl, &meta), 1);
    assert_int_equal(meta.version, 3);
    assert_int_equal(meta.created_at, 10); /* the workflow's, not the version's */
    assert_string_equal(meta.source_hash, "h2");
    assert_string_equal(phase_prompt(tpl, 0), "changed");
    json_decref(tpl);
    assert_int_equal(broker_store_workflow_template(f->store, "wf-1", 1, &tpl), 1);
    assert_string_equal(phase_prompt(tpl, 0), "phase 2 of {{workflow_id}}");
    json_decref(tpl);
    assert_int_equal(peek_int(f, "SELECT count(*) FROM workflow_versions WHERE workflow_id = "
                                 "'wf-1'"),
                     3);

    assert_int_equal(broker_store_workflow_archive(f->store, "wf-2"), 0);
    assert_int_equal(broker_store_workflow_archive(f->store, "wf-2"), 1);
    assert_int_equal(broker_store_workflow_archive(f->store, "wf-nope"), 1);
    assert_int_equal(broker_store_commit(f->store), 0);
    assert_int_equal(broker_store_workflow_get(f->store, "wf-2", &tpl, &meta), 1);
    assert_true(meta.archived);
    json_decref(tpl);

    json_t *items;
    int64_t total;
    assert_int_equal(broker_store_workflow_list(f->store, NULL, 1, 10, &items, &total), 0);
    assert_int_equal(total, 2);
    assert_int_equal(json_array_size(items), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(items, 0), "id")),
                        "wf-3");
    json_t *first_made = json_array_get(items, 1);
    assert_string_equal(json_string_value(json_object_get(first_made, "name")), "demo 2");
    assert_int_equal(json_integer_value(json_object_get(first_made, "version")), 3);
    assert_true(json_is_false(json_object_get(first_made, "archived")));
    json_decref(items);
    broker_workflow_filter_t all = {NULL, true};
    assert_int_equal(broker_store_workflow_list(f->store, &all, 1, 1, &items, &total), 0);
    assert_int_equal(total, 3);
    assert_int_equal(json_array_size(items), 1);
    json_decref(items);
    assert_int_equal(broker_store_workflow_list(f->store, &all, 2, 1, &items, &total), 0);
    json_t *archived = json_array_get(items, 0);
    assert_string_equal(json_string_value(json_object_get(archived, "id")), "wf-2");
    assert_true(json_is_true(json_object_get(archived, "archived")));
    json_decref(items);
    broker_workflow_filter_t research = {"research", true};
    assert_int_equal(broker_store_workflow_list(f->store, &research, 1, 10, &items, &total), 0);
    assert_int_equal(total, 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(items, 0), "id")),
                        "wf-1");
    json_decref(items);
    broker_workflow_filter_t review = {"review", false};
    assert_int_equal(broker_store_workflow_list(f->store, &review, 1, 10, &items, &total), 0);
    assert_int_equal(total, 0);
    assert_int_equal(json_array_size(items), 0);
    json_decref(items);
}

/* All writes of one turn share a transaction: invisible elsewhere until commit,
 * then visible together, for one commit. */
/* workflow_shared: read once, then from memory; every write to the workflow
 * (new version, archive) and a failed commit drop what it remembered. */
static void test_workflow_shared_cache(void **state)
{
    fixture_t *f = *state;
    const json_t *shared = NULL;
    broker_workflow_meta_t meta;
    assert_int_equal(broker_store_workflow_shared(f->store, "wf-1", &shared, &meta), 0);
    add_workflow(f, "wf-1", 2, 10);
    assert_int_equal(broker_store_commit(f->store), 0);
    assert_int_equal(broker_store_workflow_shared(f->store, "wf-1", &shared, &meta), 1);
    assert_int_equal(meta.version, 1);
    assert_false(meta.archived);
    assert_string_equal(phase_prompt(shared, 0), "phase 2 of {{workflow_id}}");
    const json_t *again = NULL;
    assert_int_equal(broker_store_workflow_shared(f->store, "wf-1", &again, NULL), 1);
    assert_ptr_equal(again, shared); /* from memory */

    json_t *tpl = template_of(2);
    json_object_set_new(json_array_get(json_object_get(tpl, "phases"), 0), "prompt_template",
                        json_string("changed"));
    broker_workflow_row_t row = {.id = "wf-1", .name = "demo", .workflow_type = "custom",
                                 .classification = "standard", .phase_count = 2,
                                 .template_json = tpl, .created_at = 20};
    int64_t version = 0;
    assert_int_equal(broker_store_workflow_update(f->store, &row, &version), 0);
    json_decref(tpl);
    assert_int_equal(broker_store_workflow_shared(f->store, "wf-1", &shared, &meta), 1);
    assert_int_equal(meta.version, 2);
    assert_string_equal(phase_prompt(shared, 0), "changed");
    assert_int_equal(broker_store_workflow_archive(f->store, "wf-1"), 0);
    assert_int_equal(broker_store_workflow_shared(f->store, "wf-1", &shared, &meta), 1);
    assert_true(meta.archived);
    assert_int_equal(broker_store_commit(f->store), 0);
}

/* The narrower saves write what they say and leave the counts right. */
static void test_progress_and_output_saves(void **state)
{
    fixture_t *f = *state;
    add_workflow(f, "wf-1", 2, 10);
    broker_execution_t *exec = make_exec("exec-000000000001", "wf-1", 2, 100);
    assert_int_equal(broker_store_execution_insert(f->store, exec), 0);
    exec->status = BROKER_EXEC_RUNNING;
    exec->started_at = 200;
    assert_int_equal(broker_store_execution_save(f->store, exec), 0);
    broker_phase_t *phase = &exec->phases[0];
    phase->status = BROKER_PHASE_COMPLETED;
    phase->attempt = 1;
    phase->completed_at = 300;
    phase->output = strdup("the output");
    assert_int_equal(broker_store_phase_save_with_output(f->store, exec, phase), 0);
    exec->completed_phases = 1;
    exec->current = 1;
    exec->phases[1].status = BROKER_PHASE_QUEUED;
    assert_int_equal(broker_store_execution_save_progress(f->store, exec), 0);
    assert_int_equal(broker_store_commit(f->store), 0);
    assert_int_equal(peek_int(f, "SELECT completed_phases FROM executions"), 1);
    assert_int_equal(peek_int(f, "SELECT current_phase = 'p2' FROM executions"), 1);
    assert_int_equal(peek_int(f, "SELECT status = 'running' FROM executions"), 1);
    assert_int_equal(peek_int(f, "SELECT output = 'the output' AND status = 'completed' AND "
                                 "attempts = 1 AND completed_at = 300 FROM phases WHERE "
                                 "phase_id = 'p1'"),
                     1);
    assert_int_equal(broker_store_execution_count(f->store, "wf-1", BROKER_EXEC_RUNNING), 1);
    assert_int_equal(broker_store_execution_count(f->store, NULL, BROKER_EXEC_PENDING), 0);
    broker_execution_destroy(&exec);
}

static void test_group_commit(void **state)
{
    fixture_t *f = *state;
    add_workflow(f, "wf-1", 2, 1);
    assert_int_equal(broker_store_commit(f->store), 0);
    uint64_t commits = broker_store_commit_count(f->store);
    assert_false(broker_store_dirty(f->store));

    for (int i = 0; i < 50; i++) {
        char id[32];
        snprintf(id, sizeof id, "exec-%012d", i);
        broker_execution_t *exec = make_exec(id, "wf-1", 2, 100 + i);
        assert_int_equal(broker_store_execution_insert(f->store, exec), 0);
        assert_int_equal(broker_store_event_insert(f->store, i + 1, 5, id, exec->num,
                                                   "ExecutionStarted", "{}"),
                         0);
        broker_execution_destroy(&exec);
    }
    assert_true(broker_store_dirty(f->store));
    assert_int_equal(peek_int(f, "SELECT count(*) FROM executions"), 0);
    assert_int_equal(peek_int(f, "SELECT count(*) FROM events"), 0);
    /* ... but this connection reads its own pending writes */
    json_t *status = NULL;
    assert_int_equal(broker_store_execution_status(f->store, "exec-000000000007", &status), 1);
    json_decref(status);

    assert_int_equal(broker_store_commit(f->store), 0);
    assert_int_equal(broker_store_commit_count(f->store), commits + 1);
    assert_false(broker_store_dirty(f->store));
    assert_int_equal(peek_int(f, "SELECT count(*) FROM executions"), 50);
    assert_int_equal(peek_int(f, "SELECT count(*) FROM phases"), 100);
    assert_int_equal(peek_int(f, "SELECT count(*) FROM events"), 50);
    /* each event filed under its execution's number, as the caller gave it */
    assert_int_equal(peek_int(f, "SELECT count(*) FROM events ev JOIN executions e"
                                 " ON e.num = ev.exec_num AND e.id = ev.execution_id"),
                     50);
    assert_int_equal(broker_store_last_event_seq(f->store), 50);
    /* a commit with nothing pending is free */
    assert_int_equal(broker_store_commit(f->store), 0);
    assert_int_equal(broker_store_commit_count(f->store), commits + 1);
}

static void test_execution_status_and_reopen(void **state)
{
    fixture_t *f = *state;
    add_workflow(f, "wf-1", 3, 1);
    broker_execution_t *exec = make_exec("exec-00000000000a", "wf-1", 3, 1000);
    assert_string_equal(exec->phases[0].phase_id, "p1"); /* sorted by order */
    exec->phases[0].status = BROKER_PHASE_QUEUED;
    assert_int_equal(broker_store_execution_insert(f->store, exec), 0);
    assert_int_equal(broker_store_execution_insert(f->store, exec), 1); /* same id */

    /* phase 1 runs and completes, phase 2 runs */
    assert_int_equal(broker_execution_set_status(exec, BROKER_EXEC_RUNNING), 0);
    exec->started_at = 2000000;
    broker_phase_t *p1 = &exec->phases[0];
    assert_int_equal(broker_phase_set_status(p1, BROKER_PHASE_RUNNING), 0);
    p1->attempt = 1;
    assert_int_equal(broker_store_attempt_insert(f->store, exec, "p1", 1, "w1", 2000000), 0);
    assert_int_equal(broker_phase_set_status(p1, BROKER_PHASE_COMPLETED), 0);
    p1->output = strdup("output of p1");
    p1->completed_at = 3000000;
    int64_t code = 0;
    assert_int_equal(broker_store_attempt_finish(f->store, exec, "p1", 1,
                                                 BROKER_ATTEMPT_COMPLETED, 3000000, &code, NULL),
                     0);
    assert_int_equal(broker_store_phase_save(f->store, exec, p1), 0);
    assert_int_equal(broker_store_phase_set_output(f->store, exec, p1), 0);
    exec->completed_phases = 1;
    exec->current = 1;
    broker_phase_t *p2 = &exec->phases[1];
    assert_int_equal(broker_phase_set_status(p2, BROKER_PHASE_QUEUED), 0);
    assert_int_equal(broker_phase_set_status(p2, BROKER_PHASE_RUNNING), 0);
    p2->attempt = 2;
    assert_int_equal(broker_store_attempt_insert(f->store, exec, "p2", 1, "w1", 3000000), 0);
    assert_int_equal(broker_store_attempt_finish(f->store, exec, "p2", 1, BROKER_ATTEMPT_LOST,
                                                 3500000, NULL, "worker lost"),
                     0);
    assert_int_equal(broker_store_attempt_insert(f->store, exec, "p2", 2, "w2", 3600000), 0);
    assert_int_equal(broker_store_phase_save(f->store, exec, p2), 0);
    assert_int_equal(broker_store_execution_save(f->store, exec), 0);
    assert_int_equal(broker_store_commit(f->store), 0);
    broker_execution_destroy(&exec);

    reopen(f);
    json_t *status = NULL;
    assert_int_equal(broker_store_execution_status(f->store, "exec-00000000000a", &status), 1);
    char *text = json_dumps(status, JSON_COMPACT);
    assert_string_equal(text, "{\"execution_id\":\"exec-00000000000a\",\"workflow_id\":\"wf-1\","
                              "\"status\":\"running\",\"current_phase\":\"p2\","
                              "\"completed_phases\":1,\"total_phases\":3,"
                              "\"started_at\":\"1970-01-01T00:00:02.000000Z\","
                              "\"completed_at\":null,\"error\":null}");
    free(text);
    json_decref(status);
    assert_int_equal(broker_store_execution_status(f->store, "exec-00000000000b", &status), 0);

    assert_int_equal(peek_int(f, "SELECT count(*) FROM attempts"), 3);
    assert_int_equal(peek_int(f, "SELECT exit_code FROM attempts WHERE phase_id='p1'"), 0);
}

static void collect(broker_execution_t *exec, void *arg)
{
    json_t *list = arg;
    json_array_append_new(list, json_integer((json_int_t)(intptr_t)exec));
}

static broker_execution_t *exec_at(json_t *list, size_t i)
{
    return (broker_execution_t *)(intptr_t)json_integer_value(json_array_get(list, i));
}

static void free_collected(json_t *list)
{
    for (size_t i = 0; i < json_array_size(list); i++) {
        broker_execution_t *exec = exec_at(list, i);
        broker_execution_destroy(&exec);
    }
    json_decref(list);
}

/* Only non-terminal executions come back, oldest first, with phase states, the
 * outputs later prompts need, lost counts and the running attempt's worker. */
static void test_load_active(void **state)
{
    fixture_t *f = *state;
    add_workflow(f, "wf-1", 3, 1);
    const char *ids[] = {"exec-000000000001", "exec-000000000002", "exec-000000000003",
                         "exec-000000000004"};
    broker_exec_status_t statuses[] = {BROKER_EXEC_RUNNING, BROKER_EXEC_COMPLETED,
                                       BROKER_EXEC_PENDING, BROKER_EXEC_FAILED};
    for (int i = 0; i < 4; i++) {
        broker_execution_t *exec = make_exec(ids[i], "wf-1", 3, 100 + i);
        exec->phases[0].status = BROKER_PHASE_QUEUED;
        assert_int_equal(broker_store_execution_insert(f->store, exec), 0);
        exec->status = statuses[i];
        if (i == 0) {
            exec->phases[0].status = BROKER_PHASE_COMPLETED;
            exec->phases[0].attempt = 1;
            exec->phases[0].output = strdup("first output");
            assert_int_equal(broker_store_phase_set_output(f->store, exec, &exec->phases[0]), 0);
            assert_int_equal(broker_store_phase_save(f->store, exec, &exec->phases[0]), 0);
            exec->phases[1].status = BROKER_PHASE_RUNNING;
            exec->phases[1].attempt = 2;
            assert_int_equal(broker_store_phase_save(f->store, exec, &exec->phases[1]), 0);
            broker_store_attempt_insert(f->store, exec, "p2", 1, "w-old", 1);
            broker_store_attempt_finish(f->store, exec, "p2", 1, BROKER_ATTEMPT_LOST, 2,
                                        NULL, "lost");
            broker_store_attempt_insert(f->store, exec, "p2", 2, "w-new", 3);
            exec->completed_phases = 1;
            exec->current = 1;
        }
        assert_int_equal(broker_store_execution_save(f->store, exec), 0);
        broker_execution_destroy(&exec);
    }
    assert_int_equal(broker_store_commit(f->store), 0);
    reopen(f);

    json_t *list = json_array();
    assert_int_equal(broker_store_load_active(f->store, collect, list), 2);
    assert_int_equal(json_array_size(list), 2);
    broker_execution_t *a = exec_at(list, 0), *b = exec_at(list, 1);
    assert_string_equal(a->id, ids[0]);
    assert_string_equal(b->id, ids[2]);
    assert_int_equal(a->status, BROKER_EXEC_RUNNING);
    assert_int_equal(a->current, 1);
    assert_int_equal(a->completed_phases, 1);
    assert_string_equal(a->phases[0].output, "first output");
    assert_int_equal(a->phases[1].status, BROKER_PHASE_RUNNING);
    assert_int_equal(a->phases[1].attempt, 2);
    assert_int_equal(a->phases[1].lost, 1);
    assert_string_equal(a->phases[1].worker_name, "w-new");
    assert_null(a->phases[1].worker_key);
    assert_string_equal(a->task, "the task");
    assert_string_equal(json_string_value(json_object_get(a->inputs, "topic")), "cats");
    assert_int_equal(b->status, BROKER_EXEC_PENDING);
    assert_int_equal(b->current, 0);
    assert_int_equal(b->phases[0].status, BROKER_PHASE_QUEUED);
    free_collected(list);
}

/* An execution whose template version vanished cannot run again: it is failed
 * with a reason instead of being retried forever. */
static void test_load_active_unloadable(void **state)
{
    fixture_t *f = *state;
    broker_execution_t *exec = make_exec("exec-0000000000ff", "wf-gone", 1, 1);
    assert_int_equal(broker_store_execution_insert(f->store, exec), 0);
    broker_execution_destroy(&exec);
    assert_int_equal(broker_store_commit(f->store), 0);
    json_t *list = json_array();
    assert_int_equal(broker_store_load_active(f->store, collect, list), 0);
    assert_int_equal(broker_store_commit(f->store), 0);
    free_collected(list);
    json_t *status = NULL;
    assert_int_equal(broker_store_execution_status(f->store, "exec-0000000000ff", &status), 1);
    assert_string_equal(json_string_value(json_object_get(status, "status")), "failed");
    assert_non_null(strstr(json_string_value(json_object_get(status, "error")), "wf-gone"));
    json_decref(status);
}

static void test_prefix_match(void **state)
{
    fixture_t *f = *state;
    const char *ids[] = {"exec-aaaa00000001", "exec-aaaa00000002", "exec-aaab00000001",
                         "exec-b00000000001", "exec-aaaa00000003"};
    for (int i = 0; i < 5; i++) {
        broker_execution_t *exec = make_exec(ids[i], "wf-1", 1, i + 1);
        assert_int_equal(broker_store_execution_insert(f->store, exec), 0);
        broker_execution_destroy(&exec);
    }
    assert_int_equal(broker_store_commit(f->store), 0);
    char found[4][BROKER_EXEC_ID_SIZE];
    size_t n;
    assert_int_equal(broker_store_execution_match(f->store, "exec-b", found, 4, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(found[0], "exec-b00000000001");
    assert_int_equal(broker_store_execution_match(f->store, "exec-aaab", found, 4, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(found[0], "exec-aaab00000001");
    assert_int_equal(broker_store_execution_match(f->store, "exec-aaaa", found, 4, &n), 0);
    assert_int_equal(n, 3);
    assert_string_equal(found[0], "exec-aaaa00000001");
    assert_string_equal(found[2], "exec-aaaa00000003");
    assert_int_equal(broker_store_execution_match(f->store, "exec-aaa", found, 2, &n), 0);
    assert_int_equal(n, 2); /* capped: the caller asks for one more than it shows */
    assert_int_equal(broker_store_execution_match(f->store, "exec-aaaa00000002", found, 4, &n),
                     0);
    assert_int_equal(n, 1);
    assert_int_equal(broker_store_execution_match(f->store, "exec-c", found, 4, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(broker_store_execution_match(f->store, "exec-aaaa00000002x", found, 4, &n),
                     0);
    assert_int_equal(n, 0);
    assert_int_equal(broker_store_execution_match(f->store, "%", found, 4, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(broker_store_execution_match(f->store, "", found, 4, &n), 0);
    assert_int_equal(n, 4);
    /* The lookup walks the unique index on id, not the table. */
    sqlite3 *db;
    assert_int_equal(sqlite3_open_v2(f->path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *s;
    assert_int_equal(sqlite3_prepare_v2(db, "EXPLAIN QUERY PLAN SELECT id FROM executions "
                                            "WHERE id >= ?1 AND id < ?2 ORDER BY id LIMIT ?3",
                                        -1, &s, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    const char *plan = (const char *)sqlite3_column_text(s, 3);
    assert_non_null(strstr(plan, "USING COVERING INDEX"));
    sqlite3_finalize(s);
    sqlite3_close(db);
}

/* execution_counts follows every insert and status change. */
static void test_counts(void **state)
{
    fixture_t *f = *state;
    for (int i = 0; i < 6; i++) {
        char id[32];
        snprintf(id, sizeof id, "exec-%012d", i);
        broker_execution_t *exec = make_exec(id, i < 4 ? "wf-a" : "wf-b", 1, i + 1);
        assert_int_equal(broker_store_execution_insert(f->store, exec), 0);
        if (i % 2 == 0) {
            exec->status = BROKER_EXEC_RUNNING;
            assert_int_equal(broker_store_execution_save(f->store, exec), 0);
            exec->status = BROKER_EXEC_COMPLETED;
            assert_int_equal(broker_store_execution_save(f->store, exec), 0);
            assert_int_equal(broker_store_execution_save(f->store, exec), 0); /* no change */
        }
        broker_execution_destroy(&exec);
    }
    assert_int_equal(broker_store_execution_count(f->store, NULL, -1), 6);
    assert_int_equal(broker_store_execution_count(f->store, NULL, BROKER_EXEC_COMPLETED), 3);
    assert_int_equal(broker_store_execution_count(f->store, NULL, BROKER_EXEC_PENDING), 3);
    assert_int_equal(broker_store_execution_count(f->store, NULL, BROKER_EXEC_RUNNING), 0);
    assert_int_equal(broker_store_execution_count(f->store, "wf-a", -1), 4);
    assert_int_equal(broker_store_execution_count(f->store, "wf-a", BROKER_EXEC_COMPLETED), 2);
    assert_int_equal(broker_store_execution_count(f->store, "wf-b", BROKER_EXEC_PENDING), 1);
    assert_int_equal(broker_store_execution_count(f->store, "wf-none", -1), 0);
}

/* The counts written from the tally, over many transactions of inserts and
 * status changes across workflows and page blocks, equal what the rows say. */
static void test_counts_match_rows(void **state)
{
    fixture_t *f = *state;
    const char *workflows[] = {"wf-a", "wf-b", "wf-c"};
    const broker_exec_status_t path[] = {BROKER_EXEC_RUNNING, BROKER_EXEC_PAUSED,
                                         BROKER_EXEC_RUNNING, BROKER_EXEC_COMPLETED};
    uint32_t seed = 7;
    for (int i = 0; i < 2500; i++) {
        seed = seed * 1103515245u + 12345u;
        char id[32];
        snprintf(id, sizeof id, "exec-%012x", (unsigned)i);
        broker_execution_t *exec = make_exec(id, workflows[seed % 3], 1, i + 1);
        assert_int_equal(broker_store_execution_insert(f->store, exec), 0);
        /* Half of them say what their row holds, as the engine's do (the store
         * then need not read it); the others leave the store to read it. */
        bool vouch = (seed >> 16) & 1;
        if (vouch)
            exec->stored_status = (int)exec->status;
        for (unsigned step = 0; step < (seed >> 8) % 5; step++) {
            exec->status = path[step];
            assert_int_equal(broker_store_execution_save(f->store, exec), 0);
            if (vouch)
                exec->stored_status = (int)exec->status;
        }
        broker_execution_destroy(&exec);
        if ((seed >> 12) % 7 == 0)
            assert_int_equal(broker_store_commit(f->store), 0);
    }
    assert_int_equal(broker_store_commit(f->store), 0);
    assert_int_equal(peek_int(f, "SELECT count(*) FROM ("
                                 " SELECT workflow_id, status, count(*) AS n FROM executions"
                                 "  GROUP BY 1, 2"
                                 " EXCEPT SELECT workflow_id, status, n FROM execution_counts"
                                 "  WHERE n != 0)"),
                     0);
    assert_int_equal(peek_int(f, "SELECT count(*) FROM execution_counts WHERE n != 0"),
                     peek_int(f, "SELECT count(DISTINCT workflow_id || '/' || status)"
                                 " FROM executions"));
    const char *truth = "SELECT workflow_id, status, num >> 10, count(*) FROM executions"
                        " GROUP BY 1, 2, 3"
                        " UNION ALL SELECT workflow_id, '', num >> 10, count(*) FROM executions"
                        " GROUP BY 1, 3"
                        " UNION ALL SELECT '', status, num >> 10, count(*) FROM executions"
                        " GROUP BY 2, 3"
                        " UNION ALL SELECT '', '', num >> 10, count(*) FROM executions"
                        " GROUP BY 3";
    char sql[1024];
    snprintf(sql, sizeof sql,
             "SELECT (SELECT count(*) FROM (SELECT * FROM (%s) EXCEPT"
             " SELECT workflow_id, status, bucket, n FROM execution_pages))"
             " + (SELECT count(*) FROM (SELECT workflow_id, status, bucket, n"
             " FROM execution_pages EXCEPT SELECT * FROM (%s)))",
             truth, truth);
    assert_int_equal(peek_int(f, sql), 0);
}

static void test_events(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(broker_store_last_event_seq(f->store), 0);
    assert_int_equal(broker_store_event_insert(f->store, 1, 10, "exec-1", 0, "A", "{}"), 0);
    assert_int_equal(broker_store_event_insert(f->store, 2, 11, NULL, 0, "B", "{\"x\":1}"), 0);
    assert_int_equal(broker_store_commit(f->store), 0);
    reopen(f);
    assert_int_equal(broker_store_last_event_seq(f->store), 2);
    assert_int_equal(peek_int(f, "SELECT count(*) FROM events WHERE execution_id IS NULL"), 1);
}

/* Ids of a page by the obvious (slow) query, to check the seeking one. */
static json_t *naive_page(const fixture_t *f, const char *workflow_id, const char *status,
                          int64_t page, int64_t size)
{
    sqlite3 *db;
    assert_int_equal(sqlite3_open_v2(f->path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *s;
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT id FROM executions WHERE (?1 IS NULL OR "
                                            "workflow_id = ?1) AND (?2 IS NULL OR status = ?2) "
                                            "ORDER BY num DESC LIMIT ?3 OFFSET ?4",
                                        -1, &s, NULL),
                     SQLITE_OK);
    if (workflow_id)
        sqlite3_bind_text(s, 1, workflow_id, -1, SQLITE_STATIC);
    if (status)
        sqlite3_bind_text(s, 2, status, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 3, size);
    sqlite3_bind_int64(s, 4, (page - 1) * size);
    json_t *ids = json_array();
    while (sqlite3_step(s) == SQLITE_ROW)
        json_array_append_new(ids, json_string((const char *)sqlite3_column_text(s, 0)));
    sqlite3_finalize(s);
    sqlite3_close(db);
    return ids;
}

/* Pages found through the per-block counts are exactly the pages an OFFSET query
 * gives, for every filter, across block boundaries and after status changes;
 * totals come from the counts. */
static void test_list_pages(void **state)
{
    fixture_t *f = *state;
    add_workflow(f, "wf-a", 1, 1);
    add_workflow(f, "wf-b", 1, 2);
    const int n = 2600;
    for (int i = 0; i < n; i++) {
        char id[32];
        snprintf(id, sizeof id, "exec-%012x", i * 7919 % 100000);
        broker_execution_t *exec = make_exec(id, i % 3 == 0 ? "wf-b" : "wf-a", 1, i + 1);
        assert_int_equal(broker_store_execution_insert(f->store, exec), 0);
        exec->status = i % 5 == 0 ? BROKER_EXEC_FAILED : BROKER_EXEC_COMPLETED;
        if (i % 11 == 0)
            exec->status = BROKER_EXEC_RUNNING;
        assert_int_equal(broker_store_execution_save(f->store, exec), 0);
        broker_execution_destroy(&exec);
    }
    assert_int_equal(broker_store_commit(f->store), 0);
    const char *workflows[] = {NULL, "wf-a", "wf-b", "wf-none"};
    const int statuses[] = {-1, BROKER_EXEC_COMPLETED, BROKER_EXEC_FAILED, BROKER_EXEC_RUNNING,
                            BROKER_EXEC_PAUSED};
    const int64_t sizes[] = {1, 7, 50, 100};
    for (size_t w = 0; w < 4; w++)
        for (size_t st = 0; st < 5; st++)
            for (size_t z = 0; z < 4; z++) {
                const char *status_name =
                    statuses[st] >= 0 ? broker_exec_status_name(statuses[st]) : NULL;
                int64_t pages[] = {1, 2, 3, 1024 / sizes[z], 1024 / sizes[z] + 1,
                                   2048 / sizes[z] + 1, 2500 / sizes[z], 100000};
                for (size_t p = 0; p < 8; p++) {
                    json_t *items;
                    int64_t total;
                    assert_int_equal(broker_store_execution_list(f->store, workflows[w],
                                                                 statuses[st], pages[p],
                                                                 sizes[z], &items, &total),
                                     0);
                    json_t *expected = naive_page(f, workflows[w], status_name, pages[p],
                                                  sizes[z]);
                    if (json_array_size(items) != json_array_size(expected))
                        fail_msg("wf=%s status=%s page=%lld size=%lld: %zu items, expected %zu",
                                 workflows[w] ? workflows[w] : "*",
                                 status_name ? status_name : "*", (long long)pages[p],
                                 (long long)sizes[z], json_array_size(items),
                                 json_array_size(expected));
                    for (size_t i = 0; i < json_array_size(items); i++)
                        assert_string_equal(
                            json_string_value(
                                json_object_get(json_array_get(items, i), "execution_id")),
                            json_string_value(json_array_get(expected, i)));
                    json_decref(items);
                    json_decref(expected);
                    assert_int_equal(total, broker_store_execution_count(f->store, workflows[w],
                                                                         statuses[st]));
                }
            }
    json_t *items;
    int64_t total;
    assert_int_equal(broker_store_execution_list(f->store, NULL, -1, 1, 1, &items, &total), 0);
    assert_int_equal(total, n);
    json_t *first = json_array_get(items, 0);
    const char *keys[] = {"execution_id", "workflow_id", "workflow_name", "status", "started_at",
                          "completed_at", "completed_phases", "total_phases",
                          "duration_seconds", "total_input_tokens", "total_output_tokens",
                          "total_cost_usd", "error"};
    assert_int_equal(json_object_size(first), 13);
    for (size_t i = 0; i < 13; i++)
        assert_non_null(json_object_get(first, keys[i]));
    assert_string_equal(json_string_value(json_object_get(first, "workflow_name")), "demo");
    assert_true(json_is_null(json_object_get(first, "duration_seconds")));
    json_decref(items);
}

/* Usage is recorded once per attempt (a repeated RESULT adds nothing) and sums
 * into the phase and the execution; the detail shows attempts, tools, usage and
 * a preview cut by characters. */
static void test_usage_and_detail(void **state)
{
    fixture_t *f = *state;
    add_workflow(f, "wf-1", 2, 1);
    broker_execution_t *exec = make_exec("exec-0000000000aa", "wf-1", 2, 1);
    assert_int_equal(broker_store_execution_insert(f->store, exec), 0);
    exec->started_at = 1000000;
    exec->completed_at = 3500000;
    exec->status = BROKER_EXEC_RUNNING;
    assert_int_equal(broker_store_execution_save(f->store, exec), 0);
    broker_store_attempt_insert(f->store, exec, "p1", 1, "w1", 1000000);
    broker_store_attempt_finish(f->store, exec, "p1", 1, BROKER_ATTEMPT_TIMEOUT, 2000000,
                                NULL, "timed out after 2 s");
    broker_store_attempt_insert(f->store, exec, "p1", 2, "w2", 2000000);
    int64_t zero = 0;
    broker_store_attempt_finish(f->store, exec, "p1", 2, BROKER_ATTEMPT_COMPLETED, 3000000,
                                &zero, NULL);
    broker_usage_t u;
    json_t *report = json_pack("{s:i, s:i, s:i, s:i, s:f, s:i, s:i, s:s, s:[{s:s, s:b}, s]}",
                               "input_tokens", 100, "output_tokens", 20,
                               "cache_creation_input_tokens", 5, "cache_read_tokens", 7,
                               "total_cost_usd", 0.25, "num_turns", 3, "duration_ms", 900,
                               "model", "claude-x", "tool_calls", "name", "Read", "success", 1,
                               "Bash");
    assert_true(broker_usage_parse(report, &u));
    assert_int_equal(u.tool_call_count, 2);
    assert_int_equal(broker_store_usage_record(f->store, exec->id, "p1", 2, &u), 1);
    assert_int_equal(broker_store_usage_record(f->store, exec->id, "p1", 2, &u), 0);
    assert_int_equal(broker_store_usage_record(f->store, exec->id, "p1", 1, &u), 1);
    assert_int_equal(broker_store_usage_record(f->store, exec->id, "p1", 9, &u), 0);
    broker_usage_clear(&u);
    json_decref(report);
    /* a 2500-character output of 2-byte characters */
    broker_phase_t *p1 = &exec->phases[0];
    p1->output = malloc(5001);
    for (int i = 0; i < 2500; i++)
        memcpy(p1->output + 2 * i, "\xc3\xa9", 2);
    p1->output[5000] = '\0';
    p1->status = BROKER_PHASE_COMPLETED;
    p1->attempt = 2;
    p1->started_at = 1000000;
    p1->completed_at = 3000000;
    assert_int_equal(broker_store_phase_save(f->store, exec, p1), 0);
    assert_int_equal(broker_store_phase_set_output(f->store, exec, p1), 0);
    assert_int_equal(broker_store_message_insert(f->store, exec->id, "user", "be brief", 5), 1);
    assert_int_equal(broker_store_messages_bind(f->store, exec->id, "p2"), 0);
    assert_int_equal(broker_store_message_insert(f->store, exec->id, "system", "later", 6), 2);
    assert_int_equal(broker_store_commit(f->store), 0);

    json_t *d = NULL;
    assert_int_equal(broker_store_execution_detail(f->store, exec->id, &d), 1);
    assert_int_equal(json_integer_value(json_object_get(d, "total_input_tokens")), 200);
    assert_int_equal(json_integer_value(json_object_get(d, "total_output_tokens")), 40);
    assert_int_equal(json_integer_value(json_object_get(d, "total_cache_creation_tokens")), 10);
    assert_true(json_real_value(json_object_get(d, "total_cost_usd")) == 0.5);
    assert_true(json_real_value(json_object_get(d, "duration_seconds")) == 2.5);
    assert_string_equal(json_string_value(json_object_get(d, "task")), "the task");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(d, "inputs"), "topic")), "cats");
    json_t *messages = json_object_get(d, "operator_messages");
    assert_int_equal(json_array_size(messages), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(messages, 0),
                                                          "phase_id")),
                        "p2");
    assert_true(json_is_null(json_object_get(json_array_get(messages, 1), "phase_id")));
    json_t *phases = json_object_get(d, "phases");
    assert_int_equal(json_array_size(phases), 2);
    json_t *ph = json_array_get(phases, 0);
    assert_string_equal(json_string_value(json_object_get(ph, "phase_id")), "p1");
    assert_int_equal(json_integer_value(json_object_get(ph, "order")), 10);
    assert_string_equal(json_string_value(json_object_get(ph, "model")), "claude-x");
    assert_int_equal(json_integer_value(json_object_get(ph, "total_tokens")), 264);
    assert_int_equal(json_integer_value(json_object_get(ph, "num_turns")), 6);
    assert_int_equal(json_integer_value(json_object_get(ph, "tool_call_count")), 4);
    assert_int_equal(json_array_size(json_object_get(ph, "tool_calls")), 4);
    assert_true(json_real_value(json_object_get(ph, "duration_seconds")) == 2.0);
    assert_int_equal(strlen(json_string_value(json_object_get(ph, "output_preview"))), 4000);
    json_t *attempts = json_object_get(ph, "attempts");
    assert_int_equal(json_array_size(attempts), 2);
    json_t *a1 = json_array_get(attempts, 0);
    assert_string_equal(json_string_value(json_object_get(a1, "status")), "timeout");
    assert_string_equal(json_string_value(json_object_get(a1, "worker")), "w1");
    assert_string_equal(json_string_value(json_object_get(a1, "error")), "timed out after 2 s");
    assert_true(json_is_null(json_object_get(a1, "exit_code")));
    json_t *a2 = json_array_get(attempts, 1);
    assert_int_equal(json_integer_value(json_object_get(a2, "exit_code")), 0);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(a2, "usage"),
                                                        "cache_read_tokens")),
                     7);
    json_t *p2 = json_array_get(phases, 1);
    assert_int_equal(json_array_size(json_object_get(p2, "attempts")), 0);
    assert_true(json_is_null(json_object_get(p2, "output_preview")));
    assert_true(json_is_null(json_object_get(p2, "duration_seconds")));
    json_decref(d);
    assert_int_equal(broker_store_execution_detail(f->store, "exec-nope", &d), 0);

    char *output = NULL;
    assert_int_equal(broker_store_phase_output(f->store, exec->id, "p1", &output), 1);
    assert_int_equal(strlen(output), 5000);
    free(output);
    assert_int_equal(broker_store_phase_output(f->store, exec->id, "p2", &output), 1);
    assert_string_equal(output, "");
    free(output);
    assert_int_equal(broker_store_phase_output(f->store, exec->id, "p9", &output), 0);
    broker_exec_status_t st;
    assert_int_equal(broker_store_execution_state(f->store, exec->id, &st), 1);
    assert_int_equal(st, BROKER_EXEC_RUNNING);
    assert_int_equal(broker_store_execution_state(f->store, "exec-x", &st), 0);
    char *name = NULL;
    assert_int_equal(broker_store_workflow_name(f->store, "wf-1", &name), 1);
    assert_string_equal(name, "demo");
    free(name);
    assert_int_equal(broker_store_workflow_name(f->store, "wf-x", &name), 0);

    json_t *loaded = broker_store_messages_load(f->store, exec->id);
    assert_int_equal(json_array_size(loaded), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(loaded, 1), "role")),
                        "system");
    json_decref(loaded);
    broker_execution_destroy(&exec);
}

/* Usage from a peer is checked, never trusted. */
static void test_usage_parse_rejects(void **state)
{
    (void)state;
    broker_usage_t u;
    assert_false(broker_usage_parse(NULL, &u));
    assert_int_equal(json_array_size(u.tool_calls), 0);
    broker_usage_clear(&u);
    json_t *bad = json_pack("{s:i, s:s, s:f, s:i, s:[i, {s:i}], s:I}", "input_tokens", -5,
                            "output_tokens", "12", "cost_usd", -1.0, "num_turns", 2,
                            "tool_calls", 3, "x", 1, "duration_ms", (json_int_t)INT64_MAX);
    assert_true(broker_usage_parse(bad, &u));
    assert_int_equal(u.input_tokens, 0);
    assert_int_equal(u.output_tokens, 0);
    assert_true(u.cost_usd == 0);
    assert_int_equal(u.num_turns, 2);
    assert_int_equal(u.tool_call_count, 0);
    assert_true(u.duration_ms < INT64_MAX / 1000);
    assert_null(u.model);
    broker_usage_clear(&u);
    json_decref(bad);
    json_t *many = json_pack("{s:o}", "tool_calls", json_array());
    for (int i = 0; i < 300; i++)
        json_array_append_new(json_object_get(many, "tool_calls"), json_string("T"));
    assert_true(broker_usage_parse(many, &u));
    assert_int_equal(u.tool_call_count, 300);
    assert_int_equal(json_array_size(u.tool_calls), BROKER_USAGE_TOOLS_MAX);
    broker_usage_clear(&u);
    json_decref(many);
}

/* Replay pages: by execution or all, after a seq, bounded by count and bytes. */
static void test_events_after(void **state)
{
    fixture_t *f = *state;
    const char *ids[] = {"exec-a", "exec-b"};
    for (size_t i = 0; i < 2; i++) {
        broker_execution_t *exec = make_exec(ids[i], "wf-1", 1, 1);
        assert_int_equal(broker_store_execution_insert(f->store, exec), 0);
        broker_execution_destroy(&exec);
    }
    for (int seq = 1; seq <= 10; seq++)
        assert_int_equal(broker_store_event_insert(f->store, seq, seq * 10,
                                                   seq % 2 ? "exec-a" : "exec-b", 0, "T",
                                                   "{\"n\":12345678}"),
                         0);
    json_t *events;
    bool more;
    assert_int_equal(broker_store_events_after(f->store, "exec-a", 0, 3, 1 << 20, &events, &more),
                     0);
    assert_int_equal(json_array_size(events), 3);
    assert_true(more);
    json_t *e = json_array_get(events, 2);
    assert_int_equal(json_integer_value(json_object_get(e, "seq")), 5);
    assert_int_equal(json_integer_value(json_object_get(e, "time")), 50);
    assert_string_equal(json_string_value(json_object_get(e, "execution_id")), "exec-a");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(e, "data"), "n")),
                     12345678);
    json_decref(events);
    assert_int_equal(broker_store_events_after(f->store, "exec-a", 5, 3, 1 << 20, &events, &more),
                     0);
    assert_int_equal(json_array_size(events), 2);
    assert_false(more);
    json_decref(events);
    assert_int_equal(broker_store_events_after(f->store, NULL, 4, 100, 1 << 20, &events, &more),
                     0);
    assert_int_equal(json_array_size(events), 6);
    assert_false(more);
    json_decref(events);
    /* 14 bytes of data each: a 30-byte budget takes two, the first always fits */
    assert_int_equal(broker_store_events_after(f->store, NULL, 0, 100, 30, &events, &more), 0);
    assert_int_equal(json_array_size(events), 2);
    assert_true(more);
    json_decref(events);
    assert_int_equal(broker_store_events_after(f->store, NULL, 0, 100, 1, &events, &more), 0);
    assert_int_equal(json_array_size(events), 1);
    json_decref(events);
    assert_int_equal(broker_store_events_after(f->store, "exec-z", 0, 10, 100, &events, &more),
                     0);
    assert_int_equal(json_array_size(events), 0);
    assert_false(more);
    json_decref(events);
}

/* Events wait in the store for the commit, yet reads see them; a batch of
 * them lands whole, in seq order, each under its execution's number. */
static void test_events_wait_for_commit(void **state)
{
    fixture_t *f = *state;
    broker_execution_t *exec = make_exec("exec-a", "wf-1", 1, 1);
    assert_int_equal(broker_store_execution_insert(f->store, exec), 0);
    assert_int_equal(broker_store_commit(f->store), 0);
    enum { N = 75 }; /* more than two full batches, and an odd rest */
    for (int seq = 1; seq <= N; seq++) {
        char data[32];
        snprintf(data, sizeof data, "{\"n\":%d}", seq);
        /* every fifth about no execution; of the others every third leaves the
         * number to be looked up */
        bool about_exec = seq % 5 != 0;
        assert_int_equal(broker_store_event_insert(f->store, seq, seq * 10,
                                                   about_exec ? "exec-a" : NULL,
                                                   about_exec && seq % 3 ? exec->num : 0, "T",
                                                   data),
                         0);
    }
    assert_true(broker_store_dirty(f->store));
    assert_int_equal(broker_store_last_event_seq(f->store), N);
    assert_int_equal(peek_int(f, "SELECT count(*) FROM events"), 0);
    json_t *events;
    bool more;
    assert_int_equal(broker_store_events_after(f->store, "exec-a", 70, 100, 1 << 20, &events,
                                               &more),
                     0);
    assert_int_equal(json_array_size(events), 4); /* 71, 72, 73, 74 */
    json_decref(events);
    assert_int_equal(broker_store_commit(f->store), 0);
    assert_int_equal(peek_int(f, "SELECT count(*) FROM events"), N);
    assert_int_equal(peek_int(f, "SELECT sum(seq * 10 = time AND data = '{\"n\":' || seq || '}')"
                                 " FROM events"),
                     N);
    assert_int_equal(peek_int(f, "SELECT count(*) FROM events WHERE execution_id IS NULL"
                                 " AND exec_num IS NULL"),
                     N / 5);
    assert_int_equal(peek_int(f, "SELECT count(*) FROM events WHERE execution_id = 'exec-a'"
                                 " AND exec_num = (SELECT num FROM executions)"),
                     N - N / 5);

    /* A seq taken twice fails the transaction whole, and nothing of it waits
     * for the next one. */
    assert_int_equal(broker_store_event_insert(f->store, N + 1, 1, "exec-a", 0, "T", "{}"), 0);
    assert_int_equal(broker_store_event_insert(f->store, N, 1, "exec-a", 0, "T", "{}"), 0);
    assert_int_equal(broker_store_commit(f->store), -1);
    assert_int_equal(broker_store_last_event_seq(f->store), N);
    assert_int_equal(broker_store_event_insert(f->store, N + 1, 1, "exec-a", 0, "T", "{}"), 0);
    assert_int_equal(broker_store_commit(f->store), 0);
    assert_int_equal(peek_int(f, "SELECT count(*) FROM events"), N + 1);
    broker_execution_destroy(&exec);
}

/* A phase is saved by the rowid its insert (or a reload) found, and a rowid
 * that names another phase's row changes neither: the save finds its own. */
static void test_phase_rows(void **state)
{
    fixture_t *f = *state;
    add_workflow(f, "wf-1", 3, 1);
    broker_execution_t *exec = make_exec("exec-000000000001", "wf-1", 3, 10);
    exec->phases[0].status = BROKER_PHASE_QUEUED;
    assert_int_equal(broker_store_execution_insert(f->store, exec), 0);
    assert_true(exec->phases[0].row > 0);
    assert_int_equal(exec->phases[1].row, exec->phases[0].row + 1);
    exec->phases[0].status = BROKER_PHASE_RUNNING;
    exec->phases[0].attempt = 1;
    assert_int_equal(broker_store_phase_save(f->store, exec, &exec->phases[0]), 0);
    exec->phases[2].row = exec->phases[0].row; /* as if the rows had been renumbered */
    exec->phases[2].status = BROKER_PHASE_SKIPPED;
    assert_int_equal(broker_store_phase_save(f->store, exec, &exec->phases[2]), 0);
    assert_int_equal(broker_store_commit(f->store), 0);
    sqlite3 *db;
    assert_int_equal(sqlite3_open_v2(f->path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *s;
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "SELECT group_concat(status || attempts, ',')"
                                        " FROM (SELECT * FROM phases ORDER BY ord)",
                                        -1, &s, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(s, 0), "running1,pending0,skipped0");
    sqlite3_finalize(s);
    sqlite3_close(db);
    int64_t row2 = exec->phases[1].row;
    broker_execution_destroy(&exec);

    reopen(f);
    json_t *list = json_array();
    assert_int_equal(broker_store_load_active(f->store, collect, list), 1);
    broker_execution_t *loaded = exec_at(list, 0);
    assert_int_equal(loaded->phases[1].row, row2);
    loaded->phases[1].status = BROKER_PHASE_QUEUED;
    assert_int_equal(broker_store_phase_save(f->store, loaded, &loaded->phases[1]), 0);
    assert_int_equal(broker_store_commit(f->store), 0);
    assert_int_equal(peek_int(f, "SELECT status = 'queued' FROM phases WHERE phase_id = 'p2'"), 1);
    free_collected(list);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        store_test(test_schema_and_pragmas),
        store_test(test_newer_schema_refused),
        store_test(test_workflows),
        store_test(test_upgrade_from_v2),
        store_test(test_workflow_versions_and_archive),
        store_test(test_workflow_shared_cache),
        store_test(test_progress_and_output_saves),
        store_test(test_group_commit),
        store_test(test_execution_status_and_reopen),
        store_test(test_load_active),
        store_test(test_load_active_unloadable),
        store_test(test_prefix_match),
        store_test(test_counts_match_rows),
        store_test(test_counts),
        store_test(test_events),
        store_test(test_upgrade_from_v1),
        store_test(test_list_pages),
        store_test(test_usage_and_detail),
        cmocka_unit_test(test_usage_parse_rejects),
        store_test(test_events_after),
        store_test(test_events_wait_for_commit),
        store_test(test_phase_rows),
    };
    return cmocka_run_group_tests_name("store", tests, NULL, NULL);
}
