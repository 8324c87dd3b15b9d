/* PROGRESS and RESULT (broker/reports.c): what each does to the attempt it
 * names, and how a failure is worded. */
#include "broker/deadlines.h"
#include "broker/reports.h"
#include "tests/support/broker_fixture.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

static json_t *run_on_w1(fx_t *f, char id[BROKER_EXEC_ID_SIZE])
{
    fx_workflow(f, "wf", 1, 60);
    strcpy(id, fx_start(f, "wf")->id);
    fx_ready(f, "W1", 1, NULL);
    json_t *assign = fx_take(f, "assign", "W1");
    assert_non_null(assign);
    return assign;
}

static void test_stale_result_acked_and_dropped(void **state)
{
    fx_t *f = *state;
    char id[BROKER_EXEC_ID_SIZE];
    json_t *assign = run_on_w1(f, id);
    json_t *old = json_deep_copy(assign);
    json_object_set_new(old, "attempt", json_integer(7));
    fx_result(f, "W1", old, "completed", "old work", NULL);
    json_decref(old);
    json_t *ack = fx_take(f, "result_ack", "W1");
    assert_non_null(ack);
    assert_int_equal(fx_num(ack, "attempt"), 7);
    json_decref(ack);
    broker_phase_t *phase = broker_execution_active_phase(broker_engine_find(f->engine, id));
    assert_int_equal(phase->status, BROKER_PHASE_RUNNING);
    assert_int_equal(broker_engine_stats(f->engine).stale, 1);
    json_decref(assign);
}

/* Workers word their own time limit "timed out …": recorded as a timeout. */
static void test_timeout_wording(void **state)
{
    fx_t *f = *state;
    char id[BROKER_EXEC_ID_SIZE];
    json_t *assign = run_on_w1(f, id);
    fx_result(f, "W1", assign, "failed", "", "timed out after 60 s");
    json_decref(assign);
    assert_int_equal(fx_db_int(f, "SELECT count(*) FROM attempts WHERE execution_id='%s' AND "
                                  "status='timeout'", id),
                     1);
}

static void test_reason_from_exit_code(void **state)
{
    fx_t *f = *state;
    char id[BROKER_EXEC_ID_SIZE];
    json_t *assign = run_on_w1(f, id);
    fx_result(f, "W1", assign, "failed", "", NULL);
    json_decref(assign);
    json_t *ev = fx_take_event(f, id, "ExecutionFailed");
    assert_non_null(ev);
    assert_string_equal(fx_str(json_object_get(ev, "data"), "error"),
                        "Phase p1 failed: agent exited with code 3");
    json_decref(ev);
    assert_int_equal(fx_db_int(f, "SELECT count(*) FROM attempts WHERE execution_id='%s' AND "
                                  "status='failed'", id),
                     1);
}

static void test_progress(void **state)
{
    fx_t *f = *state;
    char id[BROKER_EXEC_ID_SIZE];
    json_t *assign = run_on_w1(f, id);
    broker_phase_t *phase = broker_execution_active_phase(broker_engine_find(f->engine, id));
    /* "started" restarts the backstop from now. */
    f->now += 5000;
    fx_worker_send(f, "W1", SYN_MSG_PROGRESS,
                   fx_attempt_fields(assign, json_pack("{s:s, s:s}", "kind", "started",
                                                       "data", "")));
    assert_int_equal(phase->deadline_ms,
                     f->now + broker_deadlines_backstop_ms(f->engine, phase));
    /* Another attempt's progress: CANCEL, once. */
    json_t *old = json_deep_copy(assign);
    json_object_set_new(old, "attempt", json_integer(4));
    for (int i = 0; i < 2; i++)
        fx_worker_send(f, "W1", SYN_MSG_PROGRESS,
                       fx_attempt_fields(old, json_pack("{s:s, s:s}", "kind", "output", "data",
                                                        "x")));
    json_decref(old);
    assert_int_equal(fx_count_sent(f, "cancel"), 1);
    json_decref(assign);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        fx_unit_test(test_stale_result_acked_and_dropped),
        fx_unit_test(test_timeout_wording),
        fx_unit_test(test_reason_from_exit_code),
        fx_unit_test(test_progress),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
