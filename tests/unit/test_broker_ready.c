/* A worker's READY (broker/ready.c): its name bound to its key, what it runs
 * adopted after a broker restart, stale attempts cancelled.
 * Through the engine: a repeated READY keeps what was in flight, and a worker's
 * name bound to its CURVE key (or not, without CURVE). */
#include "broker/ready.h"
#include "tests/support/broker_steps.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

/* READY from identity, named name, over a connection with this CURVE key. */
static void ready_from(fx_t *f, const char *identity, const char *name, const char *key,
                       json_t *running)
{
    syn_msg_t *msg = syn_msg_new_with(
        SYN_MSG_READY, json_pack("{s:s, s:i, s:[s], s:o}", "worker", name, "slots", 1,
                                 "providers", "mock", "running",
                                 running ? running : json_array()));
    broker_engine_on_worker_from(f->engine, identity, strlen(identity), key, NULL, msg,
                                 f->now);
    syn_msg_destroy(&msg);
    fx_turn(f);
}

static void test_name_bound_to_key(void **state)
{
    fx_t *f = *state;
    ready_from(f, "I1", "w", "KEY-A", NULL);
    ready_from(f, "I2", "w", "KEY-B", NULL);
    json_t *bye = fx_take(f, "disconnect", "I2");
    assert_non_null(bye);
    assert_string_equal(fx_str(bye, "reason"), "worker name w is held by another key");
    json_decref(bye);
    assert_int_equal(broker_workers_count(f->workers), 1);
    /* Told once: a claimant that keeps trying hears nothing more. */
    ready_from(f, "I2", "w", "KEY-B", NULL);
    assert_int_equal(fx_count_sent(f, "disconnect"), 0);
    /* The same key may take its name back from a new identity. */
    ready_from(f, "I3", "w", "KEY-A", NULL);
    assert_int_equal(fx_count_sent(f, "disconnect"), 0);
}

static void test_adopts_after_restart_and_cancels_stale(void **state)
{
    fx_t *f = *state;
    fx_workflow(f, "wf", 1, 60);
    char id[BROKER_EXEC_ID_SIZE];
    strcpy(id, fx_start(f, "wf")->id);
    fx_ready(f, "W1", 2, NULL);
    json_t *assign = fx_take(f, "assign", "W1");
    assert_non_null(assign);
    fx_restart(f);
    assert_int_equal(broker_engine_recover(f->engine, f->now), 1);

    json_t *stale = fx_ref_of(assign);
    json_object_set_new(stale, "attempt", json_integer(9));
    fx_ready(f, "W1", 2, json_pack("[o, o]", fx_ref_of(assign), stale));
    assert_int_equal(fx_count_sent(f, "assign"), 0);
    json_t *cancel = fx_take(f, "cancel", "W1");
    assert_non_null(cancel);
    assert_int_equal(fx_num(cancel, "attempt"), 9);
    json_decref(cancel);
    broker_phase_t *phase = broker_execution_active_phase(broker_engine_find(f->engine, id));
    assert_int_equal(phase->status, BROKER_PHASE_RUNNING);
    assert_non_null(phase->worker_key);
    /* The adopted attempt's result completes the phase. */
    fx_result(f, "W1", assign, "completed", "done", NULL);
    json_decref(assign);
    assert_null(broker_engine_find(f->engine, id));
}

static void test_malformed_ready_ignored(void **state)
{
    fx_t *f = *state;
    syn_msg_t *msg = syn_msg_new_with(
        SYN_MSG_READY, json_pack("{s:s, s:i, s:[s], s:[]}", "worker", "w", "slots", 0,
                                 "providers", "mock", "running"));
    broker_engine_on_worker_from(f->engine, "I1", 2, NULL, NULL, msg, f->now);
    syn_msg_destroy(&msg);
    assert_int_equal(broker_workers_count(f->workers), 0);
}

/* A second READY on the same connection (the worker was told twice to register)
 * must not lose an ASSIGN that was in flight when the worker wrote it. */
static void test_repeated_ready_keeps_attempts(void **state)
{
    fx_t *f = *state;
    create_workflow(f, "wf-once", 1);
    char id[BROKER_EXEC_ID_SIZE];
    json_t *a1 = start_on_w1(f, "wf-once", 1, id);
    fx_ready(f, "W1", 1, NULL);
    expect_status(f, "wf-once", id, "running");
    fx_result(f, "W1", a1, "completed", "done", NULL);
    json_decref(a1);
    json_t *st = status_of(f, "wf-once", id);
    assert_string_equal(fx_str(st, "status"), "running"); /* p2 now */
    assert_int_equal(fx_num(st, "completed_phases"), 1);
    json_decref(st);
}

static void test_worker_name_bound_to_key(void **state)
{
    fx_t *f = *state;
    create_workflow(f, "wf", 3);
    keyed_ready(f, "A", "w1", KEY_A);
    /* Another key claiming w1: told why, once, and ignored. */
    keyed_ready(f, "B", "w1", KEY_B);
    json_t *bye = fx_take(f, "disconnect", "B");
    assert_non_null(bye);
    assert_string_equal(fx_str(bye, "reason"), "worker name w1 is held by another key");
    json_decref(bye);
    keyed_send(f, "B", KEY_B, SYN_MSG_HEARTBEAT, json_object());
    keyed_ready(f, "B", "w1", KEY_B);
    assert_int_equal(sent_to(f, "disconnect", "B"), 0);
    assert_int_equal(broker_workers_count(f->workers), 1);

    char id[BROKER_EXEC_ID_SIZE];
    start(f, "wf", id);
    for (int i = 0; i < 3; i++) {
        json_t *assign = fx_take(f, "assign", "A");
        assert_non_null(assign);
        keyed_send(f, "A", KEY_A, SYN_MSG_RESULT,
                   fx_attempt_fields(assign, json_pack("{s:s, s:s, s:n, s:i}", "status",
                                                       "completed", "output", "ok", "error",
                                                       "exit_code", 0)));
        json_decref(assign);
    }
    expect_status(f, "wf", id, "completed");
    assert_int_equal(sent_to(f, "assign", "B"), 0);

    /* The same key on a new connection keeps its name. */
    keyed_ready(f, "A2", "w1", KEY_A);
    assert_int_equal(sent_to(f, "disconnect", "A2"), 0);
    assert_int_equal(broker_workers_count(f->workers), 2);
    /* Once every holder said goodbye, the name is free for another key. */
    keyed_send(f, "A", KEY_A, SYN_MSG_DISCONNECT, json_object());
    keyed_send(f, "A2", KEY_A, SYN_MSG_DISCONNECT, json_object());
    keyed_ready(f, "B", "w1", KEY_B);
    assert_int_equal(sent_to(f, "disconnect", "B"), 0);
    start(f, "wf", id);
    json_t *assign = fx_take(f, "assign", "B");
    assert_non_null(assign);
    json_decref(assign);
}

static void test_worker_names_without_curve_unbound(void **state)
{
    fx_t *f = *state;
    fx_ready(f, "A", 1, NULL);
    keyed_send(f, "B", NULL, SYN_MSG_READY,
               json_pack("{s:s, s:i, s:[s], s:[]}", "worker", "A", "slots", 1, "providers",
                         "mock", "running"));
    assert_int_equal(fx_count_sent(f, "disconnect"), 0);
    assert_int_equal(broker_workers_count(f->workers), 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        fx_unit_test(test_name_bound_to_key),
        fx_unit_test(test_adopts_after_restart_and_cancels_stale),
        fx_unit_test(test_malformed_ready_ignored),
        fx_unit_test(test_repeated_ready_keeps_attempts),
        fx_unit_test(test_worker_name_bound_to_key),
        fx_unit_test(test_worker_names_without_curve_unbound),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
