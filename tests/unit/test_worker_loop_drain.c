/* The built syn-worker stopping: SIGTERM drains what runs, a second signal exits at
 * once, and what waits for a slot (--prefetch) starts only while a slot is free and
 * the broker surely there. */
#include "tests/support/worker_fake.h"

#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <czmq.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zmq.h>

#include "common/clock.h"
#include "proto/curve.h"
#include "tests/support/wait.h"

static void test_sigterm_drains(void **state)
{
    fake_t *fake = *state;
    start_registered(fake, NULL, 4);
    syn_msg_t *msg;
    assign(fake, "exec-0000000000e1", "p", 1, "#mock sleep 600", "mock");
    discard_next(fake, SYN_MSG_PROGRESS, 2000);
    kill(fake->pid, SIGTERM);
    /* The broker hears at once that this worker is draining... */
    msg = expect(fake, SYN_MSG_READY, 2000, true);
    assert_true(json_is_true(json_object_get(syn_msg_fields(msg), "draining")));
    assert_int_equal(json_array_size(json_object_get(syn_msg_fields(msg), "running")), 1);
    syn_msg_destroy(&msg);
    /* ...and work sent anyway is refused, not failed. */
    assign(fake, "exec-0000000000e2", "p", 1, "x", "mock");
    msg = expect_result(fake, "exec-0000000000e2", "p", 1, "refused");
    assert_string_equal(str_of(msg, "error"), "worker is shutting down");
    syn_msg_destroy(&msg);
    ack(fake, "exec-0000000000e2", "p", 1);
    /* ...but the running attempt finishes and reports. */
    msg = expect_result(fake, "exec-0000000000e1", "p", 1, "completed");
    syn_msg_destroy(&msg);
    ack(fake, "exec-0000000000e1", "p", 1);
    expect_goodbye(fake, 2000);
    assert_int_equal(wait_exit(fake, 2000), 0);
}

/* Assigns phase p (attempt 1) of execution_id and takes its progress, which
 * must be about it; keepalive as for expect. */
static void assign_started(fake_t *fake, const char *execution_id, const char *prompt,
                           bool keepalive)
{
    assign(fake, execution_id, "p", 1, prompt, "mock");
    syn_msg_t *msg = expect(fake, SYN_MSG_PROGRESS, 2000, keepalive);
    assert_ref(msg, execution_id, "p", 1);
    syn_msg_destroy(&msg);
}

/* --prefetch 1 on one slot: a second ASSIGN waits (no "started" yet) and
 * starts the moment the first phase ends, without a word from the broker; a
 * third is refused. READY lists a waiting attempt as held and announces the
 * prefetch; a CANCEL of a waiting attempt answers at once without running it;
 * a drain gives waiting attempts back (refused) and lets the running one end. */
static void test_prefetch_waits_for_a_slot(void **state)
{
    fake_t *fake = *state;
    start_worker(fake, (const char *[]){"--slots", "1", "--prefetch", "1", NULL});
    syn_msg_t *msg = expect_ready(fake, 1, 0);
    assert_int_equal(int_of(msg, "prefetch"), 1);
    syn_msg_destroy(&msg);

    assign_started(fake, "exec-0000000000f1", "#mock sleep 300", true);
    assign(fake, "exec-0000000000f2", "p", 1, "#mock sleep 0", "mock");
    assign(fake, "exec-0000000000f3", "p", 1, "x", "mock");
    /* The third finds the slot taken and the one prefetch place too. */
    msg = expect_result(fake, "exec-0000000000f3", "p", 1, "refused");
    assert_string_equal(str_of(msg, "error"), "no free slot");
    syn_msg_destroy(&msg);
    ack(fake, "exec-0000000000f3", "p", 1);
    /* Nothing more while the first runs: the second has not started. */
    msg = next_msg(fake, 150, true);
    if (msg)
        fail_msg("unexpected %s while the slot is busy", syn_msg_type_name(syn_msg_type(msg)));
    /* The first ends; the second starts at once, unasked, and ends (0 ms). */
    msg = expect_result(fake, "exec-0000000000f1", "p", 1, "completed");
    syn_msg_destroy(&msg);
    msg = expect(fake, SYN_MSG_PROGRESS, 1000, true);
    assert_ref(msg, "exec-0000000000f2", "p", 1);
    assert_string_equal(str_of(msg, "kind"), "started");
    syn_msg_destroy(&msg);
    msg = expect_result(fake, "exec-0000000000f2", "p", 1, "completed");
    syn_msg_destroy(&msg);
    ack(fake, "exec-0000000000f1", "p", 1);
    ack(fake, "exec-0000000000f2", "p", 1);

    /* A waiting attempt is held: READY lists it apart from the running one. */
    assign(fake, "exec-0000000000f4", "p", 1, "#mock sleep 600", "mock");
    discard_next(fake, SYN_MSG_PROGRESS, 2000);
    assign(fake, "exec-0000000000f5", "p", 1, "x", "mock");
    send_to_worker(fake, SYN_MSG_DISCONNECT, NULL);
    msg = expect(fake, SYN_MSG_READY, 1000, true);
    json_t *running = json_object_get(syn_msg_fields(msg), "running");
    json_t *waiting = json_object_get(syn_msg_fields(msg), "waiting");
    assert_int_equal(json_array_size(running), 1);
    assert_int_equal(json_array_size(waiting), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(running, 0),
                                                          "execution_id")),
                        "exec-0000000000f4");
    assert_string_equal(json_string_value(json_object_get(json_array_get(waiting, 0),
                                                          "execution_id")),
                        "exec-0000000000f5");
    syn_msg_destroy(&msg);
    /* Cancelled while waiting: answered at once, never run. */
    send_to_worker(fake, SYN_MSG_CANCEL, ref("exec-0000000000f5", "p", 1));
    msg = expect_result(fake, "exec-0000000000f5", "p", 1, "cancelled");
    assert_string_equal(str_of(msg, "error"), "cancelled before it started");
    syn_msg_destroy(&msg);
    ack(fake, "exec-0000000000f5", "p", 1);

    /* Draining: the waiting one goes back, the running one may finish. */
    assign(fake, "exec-0000000000f6", "p", 1, "x", "mock");
    msg = next_msg(fake, 100, true);
    if (msg)
        fail_msg("unexpected %s: the ASSIGN should wait", syn_msg_type_name(syn_msg_type(msg)));
    kill(fake->pid, SIGTERM);
    /* The broker hears first that the worker is draining, then gets it back. */
    msg = expect(fake, SYN_MSG_READY, 2000, true);
    assert_true(json_is_true(json_object_get(syn_msg_fields(msg), "draining")));
    assert_int_equal(json_array_size(json_object_get(syn_msg_fields(msg), "running")), 1);
    syn_msg_destroy(&msg);
    msg = next_msg(fake, 2000, true);
    assert_non_null(msg);
    assert_int_equal(syn_msg_type(msg), SYN_MSG_RESULT);
    assert_ref(msg, "exec-0000000000f6", "p", 1);
    assert_string_equal(str_of(msg, "status"), "refused");
    assert_string_equal(str_of(msg, "error"), "worker is shutting down");
    syn_msg_destroy(&msg);
    ack(fake, "exec-0000000000f6", "p", 1);
}

/* Fails if any PROGRESS arrives within ms (without heartbeating the worker);
 * true when a RESULT for execution_id came meanwhile. */
static bool quiet_but_result(fake_t *fake, int64_t ms, const char *execution_id)
{
    bool seen = false;
    int64_t until = syn_mono_ms() + ms;
    syn_msg_t *msg;
    while (syn_mono_ms() < until && (msg = next_msg(fake, until - syn_mono_ms(), false))) {
        if (syn_msg_type(msg) == SYN_MSG_PROGRESS)
            fail_msg("%s started while the broker was quiet", str_of(msg, "execution_id"));
        if (syn_msg_type(msg) == SYN_MSG_RESULT)
            seen |= !strcmp(str_of(msg, "execution_id"), execution_id);
        syn_msg_destroy(&msg);
    }
    return seen;
}

/* What waits for a slot starts only while the broker is surely there: not
 * after it has been silent for two heartbeats (it may be about to count this
 * worker lost and give those phases away), and not after a READY before the
 * broker has answered it (its CANCELs for phases given away come first). */
static void test_prefetch_waits_for_the_broker(void **state)
{
    fake_t *fake = *state;
    /* Liveness 10: the worker keeps its connection through a second of silence. */
    start_worker(fake, (const char *[]){"--slots", "1", "--prefetch", "2", "--liveness", "10",
                                        NULL});
    syn_msg_t *msg = expect_ready(fake, 1, 0);
    syn_msg_destroy(&msg);
    assign_started(fake, "exec-0000000000a1", "#mock sleep 300", false);
    assign(fake, "exec-0000000000a2", "p", 1, "#mock sleep 400", "mock");
    /* Silent: the first phase ends at 300 ms; the second does not start... */
    assert_true(quiet_but_result(fake, 500, "exec-0000000000a1"));
    /* ...until the broker is heard again. */
    send_to_worker(fake, SYN_MSG_HEARTBEAT, NULL);
    msg = expect(fake, SYN_MSG_PROGRESS, 1000, false);
    assert_ref(msg, "exec-0000000000a2", "p", 1);
    syn_msg_destroy(&msg);
    int64_t a2_started = syn_mono_ms();

    /* Two more wait behind it; shortly before it ends the broker asks the
     * worker to register again (as after a broker restart). */
    assign(fake, "exec-0000000000a3", "p", 1, "x", "mock");
    assign(fake, "exec-0000000000a4", "p", 1, "x", "mock");
    /* "Shortly before it ends" is a moment in a2's 400 ms run, part of the
     * scenario: timed, not a wait for state. */
    wait_exactly_ms((int)(a2_started + 300 - syn_mono_ms()));
    send_to_worker(fake, SYN_MSG_DISCONNECT, NULL);
    msg = expect(fake, SYN_MSG_READY, 1000, false);
    assert_int_equal(json_array_size(json_object_get(syn_msg_fields(msg), "waiting")), 2);
    syn_msg_destroy(&msg);
    /* Its slot frees ~100 ms later; still nothing starts before an answer. */
    assert_true(quiet_but_result(fake, 400, "exec-0000000000a2"));
    send_to_worker(fake, SYN_MSG_CANCEL, ref("exec-0000000000a3", "p", 1));
    msg = expect_result(fake, "exec-0000000000a3", "p", 1, "cancelled");
    assert_string_equal(str_of(msg, "error"), "cancelled before it started");
    syn_msg_destroy(&msg);
    msg = expect(fake, SYN_MSG_PROGRESS, 2000, true);
    assert_ref(msg, "exec-0000000000a4", "p", 1);
    assert_string_equal(str_of(msg, "kind"), "started");
    syn_msg_destroy(&msg);
}

static void test_second_signal_exits_at_once(void **state)
{
    fake_t *fake = *state;
    start_registered(fake, NULL, 4);
    assign(fake, "exec-0000000000f1", "p", 1, "#mock sleep 60000", "mock");
    discard_next(fake, SYN_MSG_PROGRESS, 2000);
    kill(fake->pid, SIGTERM);
    assert_true(wait_signal_taken(fake->pid, SIGTERM, 2000));
    int64_t second = syn_mono_ms();
    kill(fake->pid, SIGINT);
    assert_int_equal(wait_exit(fake, 2000), 0);
    assert_true(syn_mono_ms() - second < 1000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        worker_test(test_sigterm_drains),
        worker_test(test_prefetch_waits_for_a_slot),
        worker_test(test_prefetch_waits_for_the_broker),
        worker_test(test_second_signal_exits_at_once),
    };
    return cmocka_run_group_tests_name("worker_loop_drain", tests, NULL, NULL);
}
