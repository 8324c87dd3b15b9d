/* broker/store.c against a real SQLite file in a temporary directory: the lazily
 * opened transaction that makes group commit work (checked from a second
 * connection), and that closing and reopening keeps everything. Each part of the
 * store has its own file: test_store_<part>.c. */
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

/* All writes of one turn share a transaction: invisible elsewhere until commit,
 * then visible together, for one commit. */
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        store_test(test_group_commit),
        store_test(test_execution_status_and_reopen),
    };
    return cmocka_run_group_tests_name("store", tests, NULL, NULL);
}
