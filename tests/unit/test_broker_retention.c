/* Retention (issue 18): broker_store_retention_batch deletes finished executions
 * with their rows, never one that is running or pending, keeps the counts right,
 * and lets the file's pages be reused so it stops growing under a steady load. */
#include "common/clock.h"
#include "tests/support/broker_fixture.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static bool held(const char *execution_id, void *arg)
{
    fx_t *f = arg;
    return broker_engine_find(f->engine, execution_id) != NULL;
}

/* Starts and completes one execution on W1; its id (malloc'd). */
static char *run_one(fx_t *f)
{
    broker_execution_t *exec = fx_start(f, "wf");
    char *id = strdup(exec->id);
    json_t *assign = fx_take(f, "assign", "W1");
    assert_non_null(assign);
    fx_result(f, "W1", assign, "completed", "some output", NULL);
    json_decref(assign);
    assert_null(broker_engine_find(f->engine, id));
    return id;
}

static int retain(fx_t *f, int64_t before_us, int64_t keep_finished)
{
    int n = broker_store_retention_batch(f->store, before_us, keep_finished, 100, 1000000, held,
                                         f, NULL);
    assert_int_equal(broker_store_commit(f->store), 0);
    return n;
}

/* The counts tables say what the rows say. */
static void expect_counts_match(fx_t *f)
{
    int64_t rows = fx_db_int(f, "SELECT count(*) FROM executions");
    assert_int_equal(fx_db_int(f, "SELECT coalesce(sum(n), 0) FROM execution_counts"), rows);
    assert_int_equal(fx_db_int(f, "SELECT coalesce(sum(n), 0) FROM execution_pages"
                                  " WHERE workflow_id = '' AND status = ''"),
                     rows);
    assert_int_equal(fx_db_int(f, "SELECT coalesce(sum(n), 0) FROM execution_counts"
                                  " WHERE status = 'completed'"),
                     fx_db_int(f, "SELECT count(*) FROM executions WHERE status = 'completed'"));
}

static void test_finished_go_running_and_pending_stay(void **state)
{
    fx_t *f = *state;
    fx_workflow(f, "wf", 1, 600);
    fx_ready(f, "W1", 2, NULL);
    char *done[3];
    for (int i = 0; i < 3; i++)
        done[i] = run_one(f);
    /* Two running (W1's two slots), one pending in the ready queue. */
    char *active[3];
    for (int i = 0; i < 3; i++)
        active[i] = strdup(fx_start(f, "wf")->id);
    assert_int_equal(broker_engine_ready_depth(f->engine), 1);
    int64_t last_seq = fx_db_int(f, "SELECT max(seq) FROM events");

    /* --retain-max-executions 2: the oldest finished one goes. */
    assert_int_equal(retain(f, 0, 2), 1);
    fx_expect(f, "execution.get", json_pack("{s:s}", "execution_id", done[0]), 404, NULL);
    fx_expect(f, "execution.get", json_pack("{s:s}", "execution_id", done[1]), 200, NULL);
    expect_counts_match(f);

    /* By age: everything finished before now goes; the active ones stay. */
    assert_int_equal(retain(f, syn_now_us() + 1, -1), 2);
    for (int i = 0; i < 3; i++) {
        fx_expect(f, "execution.get", json_pack("{s:s}", "execution_id", done[i]), 404, NULL);
        fx_expect(f, "execution.get", json_pack("{s:s}", "execution_id", active[i]), 200, NULL);
    }
    assert_int_equal(fx_db_int(f, "SELECT count(*) FROM executions"), 3);
    /* Their phases, attempts and events went with them; the newest event stays. */
    assert_int_equal(fx_db_int(f, "SELECT count(*) FROM phases WHERE exec_num NOT IN"
                                  " (SELECT num FROM executions)"),
                     0);
    assert_int_equal(fx_db_int(f, "SELECT count(*) FROM attempts WHERE exec_num NOT IN"
                                  " (SELECT num FROM executions)"),
                     0);
    assert_int_equal(fx_db_int(f, "SELECT count(*) FROM events WHERE exec_num NOT IN"
                                  " (SELECT num FROM executions)"),
                     0);
    assert_int_equal(fx_db_int(f, "SELECT max(seq) FROM events"), last_seq);
    expect_counts_match(f);
    json_t *body;
    assert_int_equal(fx_call(f, "execution.list", json_object(), &body), 200);
    assert_int_equal(fx_num(body, "total"), 3);
    json_decref(body);
    /* Nothing more to do: nothing is deleted. */
    assert_int_equal(retain(f, syn_now_us() + 1, 0), 0);
    for (int i = 0; i < 3; i++) {
        free(done[i]);
        free(active[i]);
    }
}

/* The database's size as the file will hold it once the WAL is checkpointed. */
static int64_t file_bytes(fx_t *f)
{
    return fx_db_int(f, "PRAGMA page_count") * fx_db_int(f, "PRAGMA page_size");
}

/* Rounds of 100 executions each deleted after the next round: once the first
 * rounds have set the size, the file stays within a few pages of it. */
static void test_file_stops_growing(void **state)
{
    fx_t *f = *state;
    fx_workflow(f, "wf", 1, 600);
    fx_ready(f, "W1", 4, NULL);
    int64_t settled = 0;
    for (int round = 0; round < 12; round++) {
        int64_t cutoff = syn_now_us();
        for (int i = 0; i < 100; i++)
            free(run_one(f));
        while (retain(f, cutoff, -1) > 0) {
        }
        int64_t size = file_bytes(f);
        if (round == 3)
            settled = size;
        if (round > 3)
            assert_true(size <= settled + 16 * 4096);
    }
    assert_int_equal(fx_db_int(f, "SELECT count(*) FROM executions"), 100);
    expect_counts_match(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_finished_go_running_and_pending_stay, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_file_stops_growing, fx_setup, fx_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
