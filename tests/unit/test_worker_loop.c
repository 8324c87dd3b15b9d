/* The worker loop, as the built syn-worker program, against a fake broker: a
 * ROUTER in this process that speaks the worker protocol by hand. */
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

static void test_ready_and_heartbeats(void **state)
{
    fake_t *fake = *state;
    start_worker(fake, (const char *[]){"--slots", "2", NULL});
    syn_msg_t *ready = expect_ready(fake, 2, 0);
    json_t *providers = json_object_get(syn_msg_fields(ready), "providers");
    assert_string_equal(json_string_value(json_array_get(providers, 0)), "mock");
    syn_msg_destroy(&ready);
    /* An idle worker heartbeats about every 100 ms, and stays registered. */
    fake->heartbeats_seen = 0;
    syn_msg_t *other = next_msg(fake, 1000, true);
    if (other)
        fail_msg("unexpected %s", syn_msg_type_name(syn_msg_type(other)));
    assert_true(fake->heartbeats_seen >= 5);
    assert_true(fake->heartbeats_seen <= 15);
}

/* Whether the process maps a file whose name contains name (from /proc). */
static bool maps_library(pid_t pid, const char *name)
{
    char path[64], line[1024];
    snprintf(path, sizeof path, "/proc/%ld/maps", (long)pid);
    FILE *maps = fopen(path, "r");
    if (!maps)
        fail_msg("cannot read %s: %s", path, strerror(errno));
    bool found = false;
    while (!found && fgets(line, sizeof line, maps))
        found = strstr(line, name) != NULL;
    fclose(maps);
    return found;
}

/* An idle worker's memory is mostly the libraries it maps (issue 7): one
 * without the anthropic provider loads no libcurl. */
static void test_libcurl_only_for_anthropic(void **state)
{
    fake_t *fake = *state;
    start_registered(fake, NULL, 4);
    assert_true(maps_library(fake->pid, "/libzmq.so"));
    assert_false(maps_library(fake->pid, "/libcurl"));
    kill(fake->pid, SIGTERM);
    expect_goodbye(fake, 3000); /* after its draining READY */
    assert_int_equal(wait_exit(fake, 3000), 0);

    setenv("ANTHROPIC_API_KEY", "sk-test", 1);
    start_worker(fake, (const char *[]){"--provider", "anthropic", "--anthropic-url",
                                        "http://127.0.0.1:9", NULL});
    unsetenv("ANTHROPIC_API_KEY");
    syn_msg_t *ready = expect_ready(fake, 4, 0);
    json_t *providers = json_object_get(syn_msg_fields(ready), "providers");
    assert_string_equal(json_string_value(json_array_get(providers, 0)), "anthropic");
    syn_msg_destroy(&ready);
    assert_true(maps_library(fake->pid, "/libcurl"));
}

static void test_assign_progress_result(void **state)
{
    fake_t *fake = *state;
    start_registered(fake, NULL, 4);
    syn_msg_t *msg;
    assign(fake, "exec-000000000001", "plan", 1, "hello\nworld", "mock");
    msg = expect(fake, SYN_MSG_PROGRESS, 2000, true);
    assert_ref(msg, "exec-000000000001", "plan", 1);
    assert_string_equal(str_of(msg, "kind"), "started");
    syn_msg_destroy(&msg);
    msg = expect_result(fake, "exec-000000000001", "plan", 1, "completed");
    assert_string_equal(str_of(msg, "output"), "mock output for phase plan:\nhello\nworld");
    assert_true(json_is_null(json_object_get(syn_msg_fields(msg), "error")));
    assert_true(json_is_null(json_object_get(syn_msg_fields(msg), "exit_code")));
    syn_msg_destroy(&msg);
    ack(fake, "exec-000000000001", "plan", 1);

    /* A failing phase, with the provider left to the worker. */
    assign(fake, "exec-000000000002", "build", 3, "#mock fail compiler exploded", NULL);
    msg = expect_result(fake, "exec-000000000002", "build", 3, "failed");
    assert_string_equal(str_of(msg, "error"), "compiler exploded");
    syn_msg_destroy(&msg);
    ack(fake, "exec-000000000002", "build", 3);
}

/* Bursts of 50 ms phases: no RESULT comes back sooner than 50 ms after its
 * ASSIGN left (a whole-millisecond clock ended phases up to 1 ms early: a few
 * rounds, each starting at another point of a millisecond, catch that).
 * Only this bound is asserted; how close to 50 ms they land is W2's to measure. */
static void test_phases_never_end_early(void **state)
{
    fake_t *fake = *state;
    enum { ROUNDS = 10, PHASES = 2 };
    start_registered(fake, (const char *[]){"--slots", "2", NULL}, PHASES);
    for (int round = 0; round < ROUNDS; round++) {
        int64_t sent[PHASES];
        bool seen[PHASES] = {false};
        for (int i = 0; i < PHASES; i++) {
            char id[32];
            snprintf(id, sizeof id, "exec-0000000%d%04d", round, i);
            sent[i] = syn_mono_us();
            assign(fake, id, "p", 1, "#mock sleep 50", "mock");
        }
        int64_t give_up = syn_mono_ms() + 2000;
        for (int n = 0; n < PHASES;) {
            /* A heartbeat every millisecond or so wakes the worker often, as
             * a busy broker would, so it re-reads its clock all along. */
            send_to_worker(fake, SYN_MSG_HEARTBEAT, NULL);
            syn_msg_t *msg = next_msg(fake, 1, false);
            int64_t arrived = syn_mono_us();
            if (syn_mono_ms() > give_up)
                fail_msg("round %d: %d of %d results within 2 s", round, n, PHASES);
            if (!msg || syn_msg_type(msg) != SYN_MSG_RESULT) {
                syn_msg_destroy(&msg);
                continue;
            }
            n++;
            const char *id = str_of(msg, "execution_id");
            int i = atoi(id + strlen("exec-0000000") + 1);
            assert_true(i >= 0 && i < PHASES && !seen[i]);
            seen[i] = true;
            int64_t took = arrived - sent[i];
            if (took < 50000)
                fail_msg("%s reported after %lld us, less than its 50 ms", id, (long long)took);
            assert_string_equal(str_of(msg, "status"), "completed");
            ack(fake, id, "p", 1);
            syn_msg_destroy(&msg);
        }
        /* Each round starts elsewhere in a millisecond: the phase against the
         * clock's tick is what is varied, not a wait. */
        usleep(300 + 170 * (useconds_t)round);
    }
}

static void test_result_resent_until_ack(void **state)
{
    fake_t *fake = *state;
    start_registered(fake, NULL, 4);
    syn_msg_t *msg;
    assign(fake, "exec-00000000000a", "p", 1, "x", "mock");
    discard_next(fake, SYN_MSG_RESULT, 2000);
    /* Not acknowledged: the same result comes again (every 3 heartbeats). */
    int64_t first = syn_mono_ms();
    msg = expect(fake, SYN_MSG_RESULT, 2000, true);
    assert_true(syn_mono_ms() - first >= 200);
    assert_ref(msg, "exec-00000000000a", "p", 1);
    assert_string_equal(str_of(msg, "status"), "completed");
    syn_msg_destroy(&msg);
    ack(fake, "exec-00000000000a", "p", 1);
    /* Acknowledged: never again. */
    int64_t until = syn_mono_ms() + 1200;
    while (syn_mono_ms() < until) {
        msg = next_msg(fake, until - syn_mono_ms(), true);
        if (msg && syn_msg_type(msg) == SYN_MSG_RESULT)
            fail_msg("result sent again after its acknowledgement");
        syn_msg_destroy(&msg);
    }
}

static void test_no_free_slot_and_cancel(void **state)
{
    fake_t *fake = *state;
    start_registered(fake, (const char *[]){"--slots", "1", NULL}, 1);
    syn_msg_t *msg;
    assign(fake, "exec-0000000000b1", "long", 1, "#mock sleep 60000", "mock");
    discard_next(fake, SYN_MSG_PROGRESS, 2000);
    assign(fake, "exec-0000000000b2", "more", 1, "x", "mock");
    msg = expect_result(fake, "exec-0000000000b2", "more", 1, "refused");
    assert_string_equal(str_of(msg, "error"), "no free slot");
    syn_msg_destroy(&msg);
    ack(fake, "exec-0000000000b2", "more", 1);

    /* Another provider is refused too. */
    assign(fake, "exec-0000000000b3", "p", 1, "x", "claude");
    msg = expect(fake, SYN_MSG_RESULT, 2000, true);
    assert_string_equal(str_of(msg, "status"), "refused");
    assert_non_null(strstr(str_of(msg, "error"), "provider claude is not available"));
    syn_msg_destroy(&msg);
    ack(fake, "exec-0000000000b3", "p", 1);

    int64_t cancelled_at = syn_mono_ms();
    send_to_worker(fake, SYN_MSG_CANCEL, ref("exec-0000000000b1", "long", 1));
    msg = expect(fake, SYN_MSG_RESULT, 2000, true);
    assert_true(syn_mono_ms() - cancelled_at < 500);
    assert_ref(msg, "exec-0000000000b1", "long", 1);
    assert_string_equal(str_of(msg, "status"), "cancelled");
    syn_msg_destroy(&msg);
    ack(fake, "exec-0000000000b1", "long", 1);

    /* The slot is free again. */
    assign(fake, "exec-0000000000b4", "after", 1, "y", "mock");
    msg = expect(fake, SYN_MSG_RESULT, 2000, true);
    assert_string_equal(str_of(msg, "status"), "completed");
    syn_msg_destroy(&msg);
}

static void test_reconnect_after_silence(void **state)
{
    fake_t *fake = *state;
    start_registered(fake, NULL, 4);
    syn_msg_t *msg;
    unsigned char old_id[256];
    size_t old_len = fake->id_len;
    memcpy(old_id, fake->id, old_len);
    assign(fake, "exec-0000000000c1", "slow", 2, "#mock sleep 60000", "mock");
    discard_next(fake, SYN_MSG_PROGRESS, 2000);

    /* The broker goes silent: after 3 intervals the worker connects a fresh
     * socket and registers again, listing the attempt it still runs. */
    int64_t silent_from = syn_mono_ms();
    msg = expect(fake, SYN_MSG_READY, 3000, false);
    int64_t took = syn_mono_ms() - silent_from;
    assert_true(took >= 250);
    assert_true(took < 2000);
    assert_false(fake->id_len == old_len && memcmp(fake->id, old_id, old_len) == 0);
    json_t *running = json_object_get(syn_msg_fields(msg), "running");
    assert_int_equal(json_array_size(running), 1);
    json_t *entry = json_array_get(running, 0);
    assert_string_equal(json_string_value(json_object_get(entry, "execution_id")),
                        "exec-0000000000c1");
    assert_string_equal(json_string_value(json_object_get(entry, "phase_id")), "slow");
    assert_int_equal(json_integer_value(json_object_get(entry, "attempt")), 2);
    syn_msg_destroy(&msg);

    /* The attempt kept running through it and can be cancelled over the new link. */
    send_to_worker(fake, SYN_MSG_CANCEL, ref("exec-0000000000c1", "slow", 2));
    msg = expect_result(fake, "exec-0000000000c1", "slow", 2, "cancelled");
    syn_msg_destroy(&msg);
}

static void test_unacked_result_resent_after_reconnect(void **state)
{
    fake_t *fake = *state;
    start_registered(fake, NULL, 4);
    syn_msg_t *msg;
    assign(fake, "exec-0000000000d1", "p", 1, "done soon", "mock");
    discard_next(fake, SYN_MSG_RESULT, 2000);
    /* Silence (as if the broker died before acknowledging): the result is sent
     * again on the new connection, right after READY. */
    msg = expect(fake, SYN_MSG_READY, 3000, false);
    json_t *running = json_object_get(syn_msg_fields(msg), "running");
    assert_int_equal(json_array_size(running), 0);
    syn_msg_destroy(&msg);
    int64_t ready_at = syn_mono_ms();
    msg = expect(fake, SYN_MSG_RESULT, 2000, true);
    assert_true(syn_mono_ms() - ready_at < 250);
    assert_ref(msg, "exec-0000000000d1", "p", 1);
    assert_string_equal(str_of(msg, "output"), "mock output for phase p:\ndone soon");
    syn_msg_destroy(&msg);
}

static void test_disconnect_reregisters(void **state)
{
    fake_t *fake = *state;
    /* Liveness 10: neither a reconnect nor the periodic resend of a result
     * comes within a second, so what arrives sooner answers the DISCONNECT. */
    start_registered(fake, (const char *[]){"--liveness", "10", NULL}, 4);
    syn_msg_t *msg;
    assign(fake, "exec-0000000000d2", "p", 1, "unacknowledged", "mock");
    discard_next(fake, SYN_MSG_RESULT, 2000);
    send_to_worker(fake, SYN_MSG_DISCONNECT, NULL);
    int64_t sent = syn_mono_ms();
    msg = expect(fake, SYN_MSG_READY, 1000, true);
    assert_true(syn_mono_ms() - sent < 250);
    syn_msg_destroy(&msg);
    msg = expect(fake, SYN_MSG_RESULT, 1000, true);
    assert_true(syn_mono_ms() - sent < 250);
    assert_ref(msg, "exec-0000000000d2", "p", 1);
    syn_msg_destroy(&msg);
}

/* Whether the worker's log (fake->log_path) holds needle. */
static bool log_has(const fake_t *fake, const char *needle)
{
    FILE *in = fopen(fake->log_path, "r");
    if (!in)
        return false;
    char line[4096];
    bool found = false;
    while (!found && fgets(line, sizeof line, in))
        found = strstr(line, needle) != NULL;
    fclose(in);
    return found;
}

/* A DISCONNECT with a reason is a refusal (the broker's name-to-key binding): the
 * worker says why in its log and registers again only after its back-off, not at
 * once as for a plain DISCONNECT (which would be refused at once, in a loop). */
static void test_refusal_is_logged_and_backed_off(void **state)
{
    fake_t *fake = *state;
    snprintf(fake->log_path, sizeof fake->log_path, "/tmp/syn-worker-refusal-%d.log",
             (int)getpid());
    unlink(fake->log_path);
    start_registered(fake, (const char *[]){"--liveness", "10", NULL}, 4);
    send_to_worker(fake, SYN_MSG_DISCONNECT,
                   json_pack("{s:s}", "reason", "worker name test-worker is held by another key"));
    int64_t sent = syn_mono_ms();
    syn_msg_t *again = expect(fake, SYN_MSG_READY, 10000, false); /* no heartbeats: it hung up */
    int64_t waited = syn_mono_ms() - sent;
    syn_msg_destroy(&again);
    bool logged = log_has(fake, "broker refused this worker: worker name test-worker is held by "
                                "another key");
    unlink(fake->log_path);
    assert_true(logged);
    assert_true(waited >= 200); /* the first back-off is 250 ms; never sooner */
}

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

/* The command provider through the loop: output streams as PROGRESS chunks
 * while the phase runs; the result carries the whole output. */
static void test_command_streams_output(void **state)
{
    fake_t *fake = *state;
    start_worker(fake, (const char *[]){"--provider", "command", "--command",
                                        "sh -c 'cat; echo; sleep 0.3; echo two; sleep 0.3; "
                                        "echo three; echo $SYN_PHASE_ID'",
                                        NULL});
    syn_msg_t *msg = expect(fake, SYN_MSG_READY, 5000, false);
    json_t *providers = json_object_get(syn_msg_fields(msg), "providers");
    assert_string_equal(json_string_value(json_array_get(providers, 0)), "command");
    syn_msg_destroy(&msg);
    assign(fake, "exec-000000000101", "write", 1, "one", "command");
    char streamed[256] = "";
    int chunks = 0;
    for (;;) {
        msg = next_msg(fake, 5000, true);
        assert_non_null(msg);
        if (syn_msg_type(msg) == SYN_MSG_RESULT)
            break;
        if (syn_msg_type(msg) == SYN_MSG_PROGRESS && !strcmp(str_of(msg, "kind"), "output")) {
            strncat(streamed, str_of(msg, "data"), sizeof streamed - strlen(streamed) - 1);
            chunks++;
        }
        syn_msg_destroy(&msg);
    }
    assert_string_equal(str_of(msg, "status"), "completed");
    const char *output = "one\ntwo\nthree\nwrite\n";
    assert_string_equal(str_of(msg, "output"), output);
    assert_int_equal(int_of(msg, "exit_code"), 0);
    syn_msg_destroy(&msg);
    /* "one" and "two" came 300 ms apart, so in separate chunks; what was not
     * streamed when the phase ended is only in the result. */
    assert_true(chunks >= 2);
    assert_true(strlen(streamed) >= strlen("one\ntwo\n"));
    assert_int_equal(strncmp(streamed, output, strlen(streamed)), 0);
}

/* Accounting reaches the broker: a phase that reports usage sends it in its
 * result; one that does not sends none. An inject for a provider that cannot
 * take one is dropped without harm. */
static void test_usage_in_result(void **state)
{
    fake_t *fake = *state;
    start_registered(fake, NULL, 4);
    syn_msg_t *msg;
    assign(fake, "exec-000000000201", "p", 1, "#mock tokens 2000 500\n#mock sleep 300", "mock");
    discard_next(fake, SYN_MSG_PROGRESS, 2000);
    send_to_worker(fake, SYN_MSG_INJECT,
                   json_pack("{s:s, s:s, s:I, s:s, s:s}", "execution_id", "exec-000000000201",
                             "phase_id", "p", "attempt", (json_int_t)1, "role", "user",
                             "message", "hello?"));
    msg = expect(fake, SYN_MSG_RESULT, 2000, true);
    assert_string_equal(str_of(msg, "status"), "completed");
    json_t *usage = json_object_get(syn_msg_fields(msg), "usage");
    assert_true(json_is_object(usage));
    assert_int_equal(json_integer_value(json_object_get(usage, "input_tokens")), 2000);
    assert_int_equal(json_integer_value(json_object_get(usage, "output_tokens")), 500);
    assert_int_equal(json_integer_value(json_object_get(usage, "total_tokens")), 2500);
    assert_string_equal(json_string_value(json_object_get(usage, "model")),
                        "claude-sonnet-4-5-20250929");
    /* sonnet 4.5: $3 in, $15 out per million. */
    double cost = json_number_value(json_object_get(usage, "cost_usd"));
    assert_true(cost > 0.01349 && cost < 0.01351);
    syn_msg_destroy(&msg);
    ack(fake, "exec-000000000201", "p", 1);
    assign(fake, "exec-000000000202", "p", 1, "no accounting", "mock");
    msg = expect(fake, SYN_MSG_RESULT, 2000, true);
    assert_null(json_object_get(syn_msg_fields(msg), "usage"));
    syn_msg_destroy(&msg);
}

/* The claude provider through the loop: tool calls stream as "tool" progress
 * with their details, an operator's message reaches the agent's stdin, and the
 * result carries the usage. */
static void test_claude_tools_and_inject(void **state)
{
    fake_t *fake = *state;
    char dir[] = "/tmp/syn-loop-claude-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char log[64];
    snprintf(log, sizeof log, "%s/fake.log", dir);
    setenv("SYN_FAKE_CLAUDE_LOG", log, 1);
    start_worker(fake, (const char *[]){"--provider", "claude", "--claude-bin",
                                        SYN_SOURCE_DIR "/tests/fixtures/fake_claude.py",
                                        /* its log is outside the workspace */
                                        "--sandbox", "none", "--workspace", dir, NULL});
    unsetenv("SYN_FAKE_CLAUDE_LOG");
    syn_msg_t *msg = expect(fake, SYN_MSG_READY, 5000, false);
    json_t *providers = json_object_get(syn_msg_fields(msg), "providers");
    assert_string_equal(json_string_value(json_array_get(providers, 0)), "claude");
    syn_msg_destroy(&msg);
    json_t *fields = json_pack("{s:s, s:s, s:s, s:I, s:s, s:s, s:I, s:s, s:{s:s}, s:[s]}",
                               "execution_id", "exec-000000000301", "workflow_id", "wf-test",
                               "phase_id", "fix", "attempt", (json_int_t)1, "prompt",
                               "FAKE_WAIT_INJECT", "model", "haiku", "timeout_ms",
                               (json_int_t)60000, "provider", "claude", "inputs", "plan",
                               "the plan", "allowed_tools", "Bash");
    assert_non_null(fields);
    send_to_worker(fake, SYN_MSG_ASSIGN, fields);
    /* started, then the tool call that waits. */
    msg = expect(fake, SYN_MSG_PROGRESS, 5000, true);
    assert_string_equal(str_of(msg, "kind"), "started");
    syn_msg_destroy(&msg);
    for (;;) {
        msg = expect(fake, SYN_MSG_PROGRESS, 5000, true);
        if (!strcmp(str_of(msg, "kind"), "tool"))
            break;
        syn_msg_destroy(&msg);
    }
    assert_string_equal(str_of(msg, "data"), "Bash");
    json_t *detail = json_object_get(syn_msg_fields(msg), "detail");
    assert_string_equal(json_string_value(json_object_get(detail, "event")), "use");
    assert_string_equal(json_string_value(json_object_get(detail, "name")), "Bash");
    assert_string_equal(json_string_value(json_object_get(detail, "input_preview")),
                        "{\"command\":\"sleep 3600\"}");
    syn_msg_destroy(&msg);
    send_to_worker(fake, SYN_MSG_INJECT,
                   json_pack("{s:s, s:s, s:I, s:s, s:s}", "execution_id", "exec-000000000301",
                             "phase_id", "fix", "attempt", (json_int_t)1, "role", "user",
                             "message", "use the other approach"));
    bool saw_tool_result = false;
    for (;;) {
        msg = next_msg(fake, 5000, true);
        assert_non_null(msg);
        if (syn_msg_type(msg) == SYN_MSG_RESULT)
            break;
        if (syn_msg_type(msg) == SYN_MSG_PROGRESS && !strcmp(str_of(msg, "kind"), "tool"))
            saw_tool_result = json_is_true(json_object_get(
                json_object_get(syn_msg_fields(msg), "detail"), "success"));
        syn_msg_destroy(&msg);
    }
    assert_true(saw_tool_result);
    assert_string_equal(str_of(msg, "status"), "completed");
    assert_string_equal(str_of(msg, "output"), "Operator said: use the other approach");
    assert_int_equal(int_of(msg, "exit_code"), 0);
    json_t *usage = json_object_get(syn_msg_fields(msg), "usage");
    assert_int_equal(json_integer_value(json_object_get(usage, "num_turns")), 2);
    assert_int_equal(json_integer_value(json_object_get(usage, "input_tokens")), 70);
    assert_true(json_number_value(json_object_get(usage, "cost_usd")) == 0.02);
    assert_string_equal(json_string_value(json_object_get(usage, "cost_source")), "agent");
    assert_string_equal(json_string_value(json_object_get(usage, "model")),
                        "claude-haiku-4-5-20251001");
    json_t *calls = json_object_get(usage, "tool_calls");
    assert_int_equal(json_array_size(calls), 1);
    syn_msg_destroy(&msg);
    ack(fake, "exec-000000000301", "fix", 1);
    /* The workspace is gone; the log shows the injected line on stdin. */
    char cmd[256];
    snprintf(cmd, sizeof cmd, "test -z \"$(ls -d %s/syn-* 2>/dev/null)\" && "
             "grep -q 'use the other approach' %s", dir, log);
    WAIT_FOR(system(cmd) == 0, 1000);
    assert_int_equal(system(cmd), 0);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

/* Stops the worker started last: two stop signals, so it leaves at once. */
static void stop_worker(fake_t *fake)
{
    kill(fake->pid, SIGTERM);
    wait_signal_taken(fake->pid, SIGTERM, 1000);
    kill(fake->pid, SIGTERM);
    assert_int_equal(wait_exit(fake, 3000), 0);
}

/* With its key allowed in, the worker talks CURVE to the broker: it registers,
 * runs what it is given and takes the acknowledgement. */
static void test_curve_worker_gets_and_acks(void **state)
{
    fake_t *fake = *state;
    char secret[128], broker_key[128];
    snprintf(secret, sizeof secret, "%s/worker.key_secret", fake->dir);
    snprintf(broker_key, sizeof broker_key, "%s/broker.key", fake->dir);
    start_registered(fake, (const char *[]){"--curve-secret", secret, "--broker-key", broker_key,
                                            NULL},
                     4);
    assign(fake, "exec-000000000c01", "plan", 1, "over curve", "mock");
    syn_msg_t *msg = expect_result(fake, "exec-000000000c01", "plan", 1, "completed");
    assert_string_equal(str_of(msg, "output"), "mock output for phase plan:\nover curve");
    syn_msg_destroy(&msg);
    ack(fake, "exec-000000000c01", "plan", 1);
    /* Acknowledged: not sent again (the resend would come after 300 ms). */
    int64_t until = syn_mono_ms() + 600;
    while (syn_mono_ms() < until) {
        msg = next_msg(fake, until - syn_mono_ms(), true);
        if (msg && syn_msg_type(msg) == SYN_MSG_RESULT)
            fail_msg("result sent again after its acknowledgement");
        syn_msg_destroy(&msg);
    }
}

/* A worker whose key is not allowed in, and one without keys (plaintext against
 * a CURVE broker), never get a word through. */
static void test_curve_refuses_strangers(void **state)
{
    fake_t *fake = *state;
    char secret[128], broker_key[128];
    snprintf(secret, sizeof secret, "%s/stranger.key_secret", fake->dir);
    snprintf(broker_key, sizeof broker_key, "%s/broker.key", fake->dir);
    start_worker(fake, (const char *[]){"--curve-secret", secret, "--broker-key", broker_key,
                                        NULL});
    syn_msg_t *msg = next_msg(fake, 1500, false);
    if (msg)
        fail_msg("a stranger's %s came through", syn_msg_type_name(syn_msg_type(msg)));
    assert_int_equal(fake->heartbeats_seen, 0);
    stop_worker(fake);

    start_worker(fake, NULL);
    msg = next_msg(fake, 1500, false);
    if (msg)
        fail_msg("a plaintext %s came through", syn_msg_type_name(syn_msg_type(msg)));
    assert_int_equal(fake->heartbeats_seen, 0);
}

/* Runs syn-worker with args until it exits (within 5 s); its exit status, and its
 * stderr in err. For flags that must stop it before it connects anywhere. */
static int run_to_exit(const char *const *args, char *err, size_t errlen)
{
    const char *argv[32] = {WORKER_BIN};
    int argc = 1;
    for (int i = 0; args[i] && argc < 31; i++)
        argv[argc++] = args[i];
    argv[argc] = NULL;
    int pipefd[2];
    assert_int_equal(pipe(pipefd), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(pipefd[1], 2);
        close(pipefd[0]);
        close(pipefd[1]);
        execv(WORKER_BIN, (char **)argv);
        _exit(127);
    }
    close(pipefd[1]);
    /* Read to the end (the usage text can be long): a closed pipe would kill it. */
    size_t used = 0;
    ssize_t n;
    char rest[4096];
    while ((n = used + 1 < errlen ? read(pipefd[0], err + used, errlen - 1 - used)
                                  : read(pipefd[0], rest, sizeof rest)) > 0)
        if (used + 1 < errlen)
            used += (size_t)n;
    err[used] = '\0';
    close(pipefd[0]);
    fake_t waiting = {.pid = pid};
    int status = wait_exit(&waiting, 5000);
    if (status < 0) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        fail_msg("syn-worker did not exit; stderr: %s", err);
    }
    return status;
}

static void expect_refused(const char *const *args, const char *needle)
{
    char err[2048];
    int status = run_to_exit(args, err, sizeof err);
    if (status != 2 || !strstr(err, needle))
        fail_msg("exit %d, stderr \"%s\"; expected 2 and \"%s\"", status, err, needle);
    /* One line, and never a key. */
    int lines = 0;
    for (const char *c = err; *c; c++)
        lines += *c == '\n';
    assert_int_equal(lines, 1);
    assert_null(strstr(err, "secret-key"));
}

/* A worker told to sandbox its agents (the default) that cannot refuses to
 * start, in one line that says why; --sandbox takes bwrap or none. */
static void test_sandbox_refused_at_start(void **state)
{
    (void)state;
    const char *path = getenv("PATH");
    char *saved = strdup(path ? path : "/usr/bin:/bin");
    setenv("PATH", "/nonexistent", 1); /* no bwrap to be found */
    expect_refused((const char *[]){"--provider", "command", "--command", "/bin/true", NULL},
                   "error: cannot sandbox agents (cannot run bwrap: No such file or "
                   "directory); install bubblewrap and allow user namespaces, or give "
                   "--sandbox none");
    setenv("PATH", saved, 1);
    free(saved);
    expect_refused((const char *[]){"--provider", "command", "--command", "/bin/true",
                                    "--sandbox", "docker", NULL},
                   "error: --sandbox wants bwrap or none, got 'docker'");
    /* A read-only path the sandbox cannot have stops it at start, not each attempt. */
    expect_refused((const char *[]){"--provider", "command", "--command", "/bin/true",
                                    "--sandbox-ro", "/nonexistent/toolchain", NULL},
                   "/nonexistent/toolchain");
    expect_refused((const char *[]){"--provider", "command", "--command", "/bin/true",
                                    "--sandbox-ro", "relative/dir", NULL},
                   "read-only path 'relative/dir' is not absolute");
}

/* Without keys, a broker that is not on this host is refused before any
 * connection is made, unless --insecure (also SYN_INSECURE) says so; keys that
 * cannot be read stop the worker at start. Every case here exits before it
 * connects anywhere: 192.0.2.1 (TEST-NET-1) is only named, never reached. */
static void test_insecure_rule_and_keys_at_start(void **state)
{
    fake_t *fake = *state;
    char secret[128], broker_key[128], stranger_public[128];
    snprintf(secret, sizeof secret, "%s/worker.key_secret", fake->dir);
    snprintf(broker_key, sizeof broker_key, "%s/broker.key", fake->dir);
    snprintf(stranger_public, sizeof stranger_public, "%s/stranger.key", fake->dir);
    const char *far = "tcp://192.0.2.1:1";
    expect_refused((const char *[]){"--broker", far, NULL},
                   "error: --broker tcp://192.0.2.1:1 is not a loopback address and no CURVE "
                   "key is given: give --curve-secret FILE and --broker-key FILE, or "
                   "--insecure");
    /* Allowed (--insecure, or keys): the run goes on to the next check, the
     * provider, and stops there. */
    const char *const allowed[][8] = {
        {"--broker", far, "--insecure", "--provider", "nope", NULL},
        {"--broker", far, "--curve-secret", secret, "--broker-key", broker_key, "--provider",
         "nope"},
    };
    for (size_t i = 0; i < sizeof allowed / sizeof allowed[0]; i++) {
        const char *args[10] = {0};
        memcpy(args, allowed[i], sizeof allowed[i]);
        char err[2048];
        assert_int_equal(run_to_exit(args, err, sizeof err), 2);
        if (strstr(err, "not a loopback") || !strstr(err, "--provider wants"))
            fail_msg("case %zu: stderr \"%s\"", i, err);
    }
    setenv("SYN_INSECURE", "1", 1);
    char err[2048];
    int status = run_to_exit((const char *[]){"--broker", far, "--provider", "nope", NULL}, err,
                             sizeof err);
    unsetenv("SYN_INSECURE");
    assert_int_equal(status, 2);
    assert_null(strstr(err, "not a loopback"));

    expect_refused((const char *[]){"--curve-secret", "/nonexistent/w.key_secret",
                                    "--broker-key", broker_key, NULL},
                   "error: --curve-secret: cannot read certificate /nonexistent/w.key_secret");
    expect_refused((const char *[]){"--curve-secret", stranger_public, "--broker-key",
                                    broker_key, NULL},
                   "has no secret key");
    expect_refused((const char *[]){"--curve-secret", secret, NULL}, "--broker-key FILE");
    expect_refused((const char *[]){"--broker-key", broker_key, NULL},
                   "error: --broker-key needs --curve-secret FILE");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        worker_test(test_ready_and_heartbeats),
        worker_test(test_libcurl_only_for_anthropic),
        worker_test(test_assign_progress_result),
        worker_test(test_phases_never_end_early),
        worker_test(test_result_resent_until_ack),
        worker_test(test_no_free_slot_and_cancel),
        worker_test(test_reconnect_after_silence),
        worker_test(test_unacked_result_resent_after_reconnect),
        worker_test(test_disconnect_reregisters),
        worker_test(test_refusal_is_logged_and_backed_off),
        worker_test(test_sigterm_drains),
        worker_test(test_prefetch_waits_for_a_slot),
        worker_test(test_prefetch_waits_for_the_broker),
        worker_test(test_second_signal_exits_at_once),
        worker_test(test_command_streams_output),
        worker_test(test_usage_in_result),
        worker_test(test_claude_tools_and_inject),
        worker_curve_test(test_curve_worker_gets_and_acks),
        worker_curve_test(test_curve_refuses_strangers),
        cmocka_unit_test(test_sandbox_refused_at_start),
        worker_curve_test(test_insecure_rule_and_keys_at_start),
    };
    return cmocka_run_group_tests_name("worker_loop", tests, NULL, NULL);
}
