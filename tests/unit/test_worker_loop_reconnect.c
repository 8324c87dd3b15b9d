/* The built syn-worker and its broker connection: READY and heartbeats, reconnects
 * after silence or DISCONNECT (and what is resent then), a refusal logged and backed
 * off, and CURVE — a known key served, strangers refused. */
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        worker_test(test_ready_and_heartbeats),
        worker_test(test_reconnect_after_silence),
        worker_test(test_unacked_result_resent_after_reconnect),
        worker_test(test_disconnect_reregisters),
        worker_test(test_refusal_is_logged_and_backed_off),
        worker_curve_test(test_curve_worker_gets_and_acks),
        worker_curve_test(test_curve_refuses_strangers),
    };
    return cmocka_run_group_tests_name("worker_loop_reconnect", tests, NULL, NULL);
}
