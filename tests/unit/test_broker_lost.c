/* Lost workers (broker/lost.c): each of the three ways a worker is lost ends
 * its attempts and forgets it. */
#include "broker/lost.h"
#include "tests/support/broker_fixture.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

/* An execution whose phase runs on W1; its id in id. */
static void run_on_w1(fx_t *f, char id[BROKER_EXEC_ID_SIZE])
{
    fx_workflow(f, "wf", 1, 60);
    strcpy(id, fx_start(f, "wf")->id);
    fx_ready(f, "W1", 1, NULL);
    json_t *assign = fx_take(f, "assign", "W1");
    assert_non_null(assign);
    json_decref(assign);
    assert_int_equal(broker_workers_count(f->workers), 1);
}

/* The attempt was lost with reason and the phase waits for another worker. */
static void expect_lost(fx_t *f, const char *id, const char *reason)
{
    assert_int_equal(broker_workers_count(f->workers), 0);
    json_t *ev = fx_take_event(f, id, "PhaseRetrying");
    assert_non_null(ev);
    json_t *data = json_object_get(ev, "data");
    assert_string_equal(fx_str(data, "cause"), "worker_lost");
    assert_string_equal(fx_str(data, "reason"), reason);
    json_decref(ev);
    assert_int_equal(fx_db_int(f, "SELECT count(*) FROM attempts WHERE execution_id='%s' AND "
                                  "status='lost'", id),
                     1);
    fx_ready(f, "W2", 1, NULL);
    json_t *assign = fx_take(f, "assign", "W2");
    assert_non_null(assign);
    assert_int_equal(fx_num(assign, "attempt"), 2);
    json_decref(assign);
}

static void test_disconnected(void **state)
{
    fx_t *f = *state;
    char id[BROKER_EXEC_ID_SIZE];
    run_on_w1(f, id);
    fx_worker_send(f, "W1", SYN_MSG_DISCONNECT, json_object());
    expect_lost(f, id, "worker W1 disconnected");
}

static void test_silent(void **state)
{
    fx_t *f = *state;
    char id[BROKER_EXEC_ID_SIZE];
    run_on_w1(f, id);
    fx_advance(f, FX_HEARTBEAT_MS * FX_LIVENESS, NULL);
    assert_int_equal(broker_workers_count(f->workers), 1); /* not longer than the window yet */
    fx_advance(f, 1, NULL);
    expect_lost(f, id, "worker W1 stopped responding (silent for more than 300 ms)");
}

/* The loop could not send W1 a HEARTBEAT: error is the send's errno. */
static void heartbeat_undeliverable(fx_t *f, int error)
{
    syn_msg_t *heartbeat = syn_msg_new_with(SYN_MSG_HEARTBEAT, json_object());
    broker_engine_undeliverable(f->engine, "W1", 2, heartbeat, error, f->now);
    syn_msg_destroy(&heartbeat);
    fx_turn(f);
}

static void test_unreachable(void **state)
{
    fx_t *f = *state;
    char id[BROKER_EXEC_ID_SIZE];
    run_on_w1(f, id);
    heartbeat_undeliverable(f, EHOSTUNREACH);
    expect_lost(f, id, "the connection to worker W1 is gone");
}

/* Another send error leaves the worker alone. */
static void test_other_send_errors_keep_the_worker(void **state)
{
    fx_t *f = *state;
    char id[BROKER_EXEC_ID_SIZE];
    run_on_w1(f, id);
    heartbeat_undeliverable(f, EAGAIN);
    assert_int_equal(broker_workers_count(f->workers), 1);
    assert_null(fx_take_event(f, id, "PhaseRetrying"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        fx_unit_test(test_disconnected),
        fx_unit_test(test_silent),
        fx_unit_test(test_unreachable),
        fx_unit_test(test_other_send_errors_keep_the_worker),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
