/* Pause, resume, cancel and inject (broker/control.c), called directly on the
 * engine of tests/support/broker_fixture. */
#include "broker/control.h"
#include "tests/support/broker_fixture.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

/* A two-phase execution whose p1 runs on W1: its id, and p1's ASSIGN in *assign. */
static void run_p1(fx_t *f, char id[BROKER_EXEC_ID_SIZE], json_t **assign)
{
    fx_workflow(f, "wf", 2, 60);
    strcpy(id, fx_start(f, "wf")->id);
    fx_ready(f, "W1", 1, NULL);
    *assign = fx_take(f, "assign", "W1");
    assert_non_null(*assign);
}

static void test_pause_lets_the_phase_finish_and_holds_the_next(void **state)
{
    fx_t *f = *state;
    char id[BROKER_EXEC_ID_SIZE];
    json_t *assign;
    run_p1(f, id, &assign);
    broker_exec_status_t status;
    assert_int_equal(broker_engine_pause(f->engine, id, "look", &status), 0);
    assert_int_equal(status, BROKER_EXEC_PAUSED);
    assert_int_equal(broker_engine_pause(f->engine, id, NULL, &status), -1);
    fx_result(f, "W1", assign, "completed", "out", NULL);
    json_decref(assign);
    assert_int_equal(fx_count_sent(f, "assign"), 0);
    broker_execution_t *exec = broker_engine_find(f->engine, id);
    assert_int_equal(exec->phases[1].status, BROKER_PHASE_PENDING);
    assert_int_equal(broker_engine_resume(f->engine, id, f->now, &status), 0);
    assert_int_equal(status, BROKER_EXEC_RUNNING);
    assert_int_equal(broker_engine_resume(f->engine, id, f->now, &status), -1);
    fx_turn(f);
    assign = fx_take(f, "assign", "W1");
    assert_non_null(assign);
    assert_string_equal(fx_str(assign, "phase_id"), "p2");
    json_decref(assign);
}

/* Paused before anything ran, it resumes as pending. */
static void test_resume_to_pending(void **state)
{
    fx_t *f = *state;
    fx_workflow(f, "wf", 1, 60);
    char id[BROKER_EXEC_ID_SIZE];
    strcpy(id, fx_start(f, "wf")->id);
    broker_exec_status_t status;
    assert_int_equal(broker_engine_pause(f->engine, id, NULL, &status), 0);
    assert_int_equal(broker_engine_resume(f->engine, id, f->now, &status), 0);
    assert_int_equal(status, BROKER_EXEC_PENDING);
}

static void test_cancel_stops_the_worker_and_skips_the_rest(void **state)
{
    fx_t *f = *state;
    char id[BROKER_EXEC_ID_SIZE];
    json_t *assign;
    run_p1(f, id, &assign);
    json_decref(assign);
    broker_exec_status_t status;
    assert_int_equal(broker_engine_cancel(f->engine, id, NULL, &status), 0);
    assert_int_equal(status, BROKER_EXEC_CANCELLED);
    fx_turn(f);
    json_t *cancel = fx_take(f, "cancel", "W1");
    assert_non_null(cancel);
    assert_string_equal(fx_str(cancel, "phase_id"), "p1");
    json_decref(cancel);
    assert_null(broker_engine_find(f->engine, id));
    assert_int_equal(broker_engine_cancel(f->engine, id, NULL, &status), -2);
    assert_int_equal(fx_db_int(f, "SELECT count(*) FROM phases WHERE execution_id='%s' AND "
                                  "status='skipped'", id),
                     1);
    json_t *ev = fx_take_event(f, id, "ExecutionCancelled");
    assert_string_equal(fx_str(json_object_get(ev, "data"), "error"), "Cancelled by user");
    json_decref(ev);
}

static void test_inject_live_and_bounded(void **state)
{
    fx_t *f = *state;
    char id[BROKER_EXEC_ID_SIZE];
    json_t *assign;
    run_p1(f, id, &assign);
    json_decref(assign);
    broker_exec_status_t status;
    char err[256];
    assert_int_equal(
        broker_engine_inject(f->engine, id, "user", "hello", &status, err, sizeof err), 0);
    fx_turn(f);
    json_t *inject = fx_take(f, "inject", "W1");
    assert_non_null(inject);
    assert_string_equal(fx_str(inject, "message"), "hello");
    json_decref(inject);
    for (int i = 1; i < BROKER_MESSAGES_WAITING_MAX; i++)
        assert_int_equal(
            broker_engine_inject(f->engine, id, "user", "more", &status, err, sizeof err), 0);
    assert_int_equal(
        broker_engine_inject(f->engine, id, "user", "one too many", &status, err, sizeof err),
        -3);
    assert_non_null(strstr(err, "Too many operator messages waiting"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        fx_unit_test(test_pause_lets_the_phase_finish_and_holds_the_next),
        fx_unit_test(test_resume_to_pending),
        fx_unit_test(test_cancel_stops_the_worker_and_skips_the_rest),
        fx_unit_test(test_inject_live_and_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
