/* broker/store_reload.c: what the broker reads back at start — active executions
 * oldest first with their phases, the unloadable ones failed, and phases saved by
 * the rowid a reload found. */
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

/* A phase is saved by the rowid its insert (or a reload) found, and a rowid
 * that names another phase's row changes neither: the save finds its own. */
static void test_phase_rows(void **state)
{
    fixture_t *f = *state;
    add_workflow(f, "wf-1", 3, 1);
    broker_execution_t *exec = make_exec("exec-000000000001", "wf-1", 3, 10);
    exec->phases[0].status = BROKER_PHASE_QUEUED;
    assert_int_equal(broker_store_execution_insert(f->store, exec), 0);
    if (broker_store_is_postgresql(f->path)) {
        /* PostgreSQL has no rowid: a phase is saved by its key (store_pg_sql.c) */
        assert_int_equal(exec->phases[0].row, 0);
        exec->phases[0].status = BROKER_PHASE_RUNNING;
        assert_int_equal(broker_store_phase_save(f->store, exec, &exec->phases[0]), 0);
        assert_int_equal(broker_store_commit(f->store), 0);
        assert_int_equal(peek_int(f, "SELECT count(*) FROM phases WHERE status = 'running'"), 1);
        broker_execution_destroy(&exec);
        return;
    }
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
        store_test(test_load_active),
        store_test(test_load_active_unloadable),
        store_test(test_phase_rows),
    };
    return cmocka_run_group_tests_name("store_reload", tests, NULL, NULL);
}
