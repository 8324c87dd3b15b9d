/* Lost workers (broker/lost.c): each of the three ways a worker is lost ends
 * its attempts and forgets it.
 * Through the engine: a lost worker's attempt retried and fenced off. */
#include "broker/lost.h"
#include "tests/support/broker_steps.h"

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

/* A worker leaving says DISCONNECT and closes its connection: a send in
 * between fails, but the goodbye, read afterwards, is why it left. */
static void test_goodbye_read_after_a_failed_send(void **state)
{
    fx_t *f = *state;
    char id[BROKER_EXEC_ID_SIZE];
    run_on_w1(f, id);
    syn_msg_t *heartbeat = syn_msg_new_with(SYN_MSG_HEARTBEAT, json_object());
    broker_engine_undeliverable(f->engine, "W1", 2, heartbeat, EHOSTUNREACH, f->now);
    syn_msg_destroy(&heartbeat);
    assert_int_equal(broker_workers_count(f->workers), 1); /* not before its messages are read */
    fx_worker_send(f, "W1", SYN_MSG_DISCONNECT, json_object());
    expect_lost(f, id, "worker W1 disconnected");
}

/* A worker draining with an assignment in flight: its draining READY lists
 * only what it runs, and it leaves before the assignment arrives. What it ran
 * is lost; what never reached it goes back uncounted, as refused. */
static void test_drained_worker_hands_back_what_never_arrived(void **state)
{
    fx_t *f = *state;
    char ran[BROKER_EXEC_ID_SIZE], in_flight[BROKER_EXEC_ID_SIZE];
    fx_workflow(f, "wf", 1, 60);
    strcpy(ran, fx_start(f, "wf")->id);
    fx_ready(f, "W1", 2, NULL);
    json_t *first = fx_take(f, "assign", "W1");
    assert_non_null(first);
    strcpy(in_flight, fx_start(f, "wf")->id);
    json_t *second = fx_take(f, "assign", "W1");
    assert_non_null(second);
    fx_worker_send(f, "W1", SYN_MSG_READY,
                   json_pack("{s:s, s:i, s:[s], s:[o], s:b}", "worker", "W1", "slots", 2,
                             "providers", "mock", "running", fx_ref_of(first), "draining", 1));
    fx_worker_send(f, "W1", SYN_MSG_DISCONNECT, json_object());
    assert_int_equal(broker_workers_count(f->workers), 0);
    assert_int_equal(fx_db_int(f, "SELECT count(*) FROM attempts WHERE execution_id='%s' AND "
                                  "status='lost'", ran),
                     1);
    assert_int_equal(fx_db_int(f, "SELECT count(*) FROM attempts WHERE execution_id='%s' AND "
                                  "status='lost'", in_flight),
                     0);
    json_t *refused = fx_take_event(f, in_flight, "PhaseRetrying");
    assert_non_null(refused);
    assert_string_equal(fx_str(json_object_get(refused, "data"), "cause"), "refused");
    json_decref(refused);
    json_decref(first);
    json_decref(second);
}

/* A draining worker whose connection closes has left, whether or not its
 * DISCONNECT made it (a reset drops what was not read yet). */
static void test_draining_worker_gone_has_left(void **state)
{
    fx_t *f = *state;
    char id[BROKER_EXEC_ID_SIZE];
    run_on_w1(f, id);
    fx_worker_send(f, "W1", SYN_MSG_READY,
                   json_pack("{s:s, s:i, s:[s], s:[], s:b}", "worker", "W1", "slots", 1,
                             "providers", "mock", "running", "draining", 1));
    heartbeat_undeliverable(f, EHOSTUNREACH);
    assert_int_equal(broker_workers_count(f->workers), 0);
    json_t *list = broker_workers_list(f->workers, 0);
    json_t *lost = json_array_get(list, 0);
    assert_non_null(lost);
    assert_string_equal(fx_str(lost, "lost_reason"), "worker W1 disconnected");
    json_decref(list);
    /* What it had not listed never ran: back uncounted. */
    json_t *ev = fx_take_event(f, id, "PhaseRetrying");
    assert_non_null(ev);
    assert_string_equal(fx_str(json_object_get(ev, "data"), "cause"), "refused");
    json_decref(ev);
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

/* A silent worker is dead after liveness intervals; its attempt runs again on
 * another worker; when it wakes up, its stale result is acked and dropped. */
static void test_lost_worker_retry_and_fencing(void **state)
{
    fx_t *f = *state;
    create_workflow(f, "wf-demo", 3);
    char id[BROKER_EXEC_ID_SIZE];
    json_t *a1 = start_on_w1(f, "wf-demo", 1, id);
    fx_ready(f, "W2", 1, NULL);
    assert_int_equal(fx_count_sent(f, "assign"), 0);

    /* W2 keeps talking, W1 falls silent */
    fx_advance(f, FX_HEARTBEAT_MS * FX_LIVENESS - 10, "W2");
    assert_int_equal(fx_count_sent(f, "assign"), 0);
    fx_advance(f, 20, NULL);
    json_t *a2 = fx_take(f, "assign", "W2");
    assert_non_null(a2);
    assert_string_equal(fx_str(a2, "phase_id"), "p1");
    assert_int_equal(fx_num(a2, "attempt"), 2);

    /* W1 wakes up: unknown now, told to register; it does, still running attempt 1 */
    fx_worker_send(f, "W1", SYN_MSG_HEARTBEAT, json_object());
    expect_sent(f, "disconnect", "W1", NULL, NULL);
    fx_ready(f, "W1", 1, json_pack("[o]", fx_ref_of(a1)));
    json_t *cancel = fx_take(f, "cancel", "W1");
    assert_non_null(cancel);
    assert_int_equal(fx_num(cancel, "attempt"), 1);
    json_decref(cancel);
    /* its slot is taken by the stale attempt until it answers */
    char other[BROKER_EXEC_ID_SIZE];
    start(f, "wf-demo", other);
    assert_null(fx_take(f, "assign", "W1"));
    fx_result(f, "W1", a1, "completed", "STALE OUTPUT", NULL);
    expect_sent(f, "result_ack", "W1", NULL, NULL);
    expect_sent(f, "assign", "W1", "execution_id", other); /* the slot came back */

    fx_result(f, "W2", a2, "completed", "REAL OUTPUT", NULL);
    assert_int_equal(fx_db_int(f, "SELECT count(*) FROM phases WHERE execution_id='%s' AND "
                                  "phase_id='p1' AND output='REAL OUTPUT'", id),
                     1);
    assert_int_equal(fx_db_int(f, "SELECT count(*) FROM attempts WHERE execution_id='%s' AND "
                                  "phase_id='p1' AND status='lost'", id),
                     1);
    expect_sent(f, "assign", "W2", "prompt", "draft from [REAL OUTPUT] {{unknown}}");
    json_decref(a1);
    json_decref(a2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        fx_unit_test(test_disconnected),
        fx_unit_test(test_silent),
        fx_unit_test(test_unreachable),
        fx_unit_test(test_goodbye_read_after_a_failed_send),
        fx_unit_test(test_drained_worker_hands_back_what_never_arrived),
        fx_unit_test(test_draining_worker_gone_has_left),
        fx_unit_test(test_other_send_errors_keep_the_worker),
        fx_unit_test(test_lost_worker_retry_and_fencing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
