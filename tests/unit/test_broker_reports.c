/* PROGRESS and RESULT (broker/reports.c): what each does to the attempt it
 * names, and how a failure is worded.
 * Through the engine: reports before READY or from a stale attempt, the backstop,
 * and usage accounting. */
#include "broker/deadlines.h"
#include "broker/reports.h"
#include "tests/support/broker_steps.h"

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

/* Messages before READY get a DISCONNECT; progress from a stale attempt gets a
 * CANCEL once; an attempt that never gets a result fails at the backstop. */
static void test_unregistered_stale_progress_and_backstop(void **state)
{
    fx_t *f = *state;
    fx_worker_send(f, "WX", SYN_MSG_PROGRESS,
                   json_pack("{s:s, s:s, s:i, s:s, s:s}", "execution_id", "exec-x", "phase_id",
                             "p", "attempt", 1, "kind", "output", "data", "hi"));
    expect_sent(f, "disconnect", "WX", NULL, NULL);

    fx_ready(f, "W1", 2, NULL);
    for (int i = 0; i < 2; i++)
        fx_worker_send(f, "W1", SYN_MSG_PROGRESS,
                       json_pack("{s:s, s:s, s:i, s:s, s:s}", "execution_id", "exec-gone",
                                 "phase_id", "p", "attempt", 4, "kind", "output", "data", "x"));
    assert_int_equal(fx_count_sent(f, "cancel"), 1);

    create_workflow(f, "wf-demo", 3);
    char id[BROKER_EXEC_ID_SIZE];
    start(f, "wf-demo", id);
    json_t *a1 = fx_take(f, "assign", "W1");
    assert_non_null(a1);
    /* still quiet long after timeout + grace + window, while heartbeating */
    for (int i = 0; i < 40; i++)
        fx_advance(f, 10 * 1000, "W1");
    json_t *st = status_of(f, "wf-demo", id);
    assert_string_equal(fx_str(st, "status"), "failed");
    assert_non_null(strstr(fx_str(st, "error"), "no result within the timeout of 300 s"));
    json_decref(st);
    expect_sent(f, "cancel", "W1", "execution_id", "exec-gone");
    expect_sent(f, "cancel", "W1", "execution_id", id);
    json_decref(a1);
}

/* A RESULT's usage lands in the phase, the execution totals, the attempt and the
 * PhaseCompleted event, once even if the RESULT is repeated. */
static void test_usage_accounting(void **state)
{
    fx_t *f = *state;
    create_workflow(f, "wf-demo", 3);
    char id[BROKER_EXEC_ID_SIZE];
    json_t *a1 = start_on_w1(f, "wf-demo", 1, id);
    json_t *fields = fx_attempt_fields(
        a1, json_pack("{s:s, s:s, s:n, s:i, s:{s:i, s:i, s:i, s:i, s:f, s:i, s:i, s:s, "
                      "s:[{s:s, s:b}]}}",
                      "status", "completed", "output", "out", "error", "exit_code", 0, "usage",
                      "input_tokens", 1000, "output_tokens", 200, "cache_creation_tokens", 30,
                      "cache_read_tokens", 40, "cost_usd", 0.125, "num_turns", 4, "duration_ms",
                      1500, "model", "claude-sonnet-x", "tool_calls", "name", "Bash", "success",
                      0));
    fx_worker_send(f, "W1", SYN_MSG_RESULT, json_deep_copy(fields));
    fx_worker_send(f, "W1", SYN_MSG_RESULT, fields); /* repeated after a reconnect */
    json_decref(a1);
    json_t *ev = fx_take_event(f, id, "PhaseCompleted");
    json_t *data = json_object_get(ev, "data");
    assert_int_equal(fx_num(data, "input_tokens"), 1000);
    assert_int_equal(fx_num(data, "output_tokens"), 200);
    assert_int_equal(fx_num(data, "cache_creation_tokens"), 30);
    assert_int_equal(fx_num(data, "cache_read_tokens"), 40);
    assert_int_equal(fx_num(data, "total_tokens"), 1270);
    assert_true(json_real_value(json_object_get(data, "cost_usd")) == 0.125);
    assert_int_equal(fx_num(data, "num_turns"), 4);
    assert_int_equal(fx_num(data, "duration_ms"), 1500);
    assert_string_equal(fx_str(data, "model"), "claude-sonnet-x");
    assert_int_equal(fx_num(data, "tool_call_count"), 1);
    assert_false(json_is_true(json_object_get(json_array_get(json_object_get(data,
                                                                             "tool_calls"),
                                                             0),
                                              "success")));
    assert_int_equal(fx_num(data, "output_bytes"), 3);
    assert_string_equal(fx_str(data, "worker"), "W1");
    json_decref(ev);
    json_t *d = detail_of(f, id);
    assert_int_equal(fx_num(d, "total_input_tokens"), 1000);
    assert_int_equal(fx_num(d, "total_output_tokens"), 200);
    assert_true(json_real_value(json_object_get(d, "total_cost_usd")) == 0.125);
    json_t *p1 = phase_in(d, "p1");
    assert_int_equal(fx_num(p1, "input_tokens"), 1000);
    assert_string_equal(fx_str(p1, "model"), "claude-sonnet-x");
    assert_int_equal(fx_num(p1, "tool_call_count"), 1);
    assert_string_equal(fx_str(json_array_get(json_object_get(p1, "tool_calls"), 0), "name"),
                        "Bash");
    json_t *usage = json_object_get(json_array_get(json_object_get(p1, "attempts"), 0), "usage");
    assert_int_equal(fx_num(usage, "num_turns"), 4);
    json_t *p2 = phase_in(d, "p2");
    assert_int_equal(fx_num(p2, "input_tokens"), 0);
    assert_true(json_is_null(json_object_get(p2, "model")));
    json_decref(d);
    json_t *body;
    assert_int_equal(fx_call(f, "execution.list", json_object(), &body), 200);
    json_t *summary = json_array_get(json_object_get(body, "executions"), 0);
    assert_int_equal(fx_num(summary, "total_input_tokens"), 1000);
    assert_int_equal(fx_num(summary, "total_output_tokens"), 200);
    json_decref(body);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        fx_unit_test(test_stale_result_acked_and_dropped),
        fx_unit_test(test_timeout_wording),
        fx_unit_test(test_reason_from_exit_code),
        fx_unit_test(test_progress),
        fx_unit_test(test_unregistered_stale_progress_and_backstop),
        fx_unit_test(test_usage_accounting),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
