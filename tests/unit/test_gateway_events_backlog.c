/* The gateway's events SUB while its loop is stalled, in-process against a fake broker
 * whose PUB keeps few events for a slow subscriber. ZeroMQ bounds a socket's queue by
 * messages, not bytes, and each queued event may keep a whole receive buffer, so what
 * the gateway takes in ahead of its loop is bounded by count (GATEWAY_EVENTS_BUFFERED):
 * the rest wait in the broker's queue or are dropped there, and the loop sees the gap
 * once it runs again. */
#include "gateway/gateway.h"
#include "tests/support/fake_broker.h"
#include "tests/support/gateway_harness.h"
#include "tests/support/wait.h"

#include <czmq.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

/* Enough events, big enough, that the kernel's socket buffers (tens of MiB at most)
 * cannot hold what the gateway's queue does not: with a queue of 10,000 events it would
 * take in every one of them. */
#define BACKLOG_EVENTS 3000
#define EVENT_TEXT_BYTES (32 * 1024)
/* The fake broker's PUB queue for the gateway: small, so the test measures the gateway. */
#define PUB_SNDHWM 10
/* The gateway's queue plus what the sockets' kernel buffers hold: ~1,110 here, where
 * TCP may grow a receive buffer to 32 MiB (1,000 such events); a queue of 10,000 took
 * in ~2,990. The bound sits between, with room for larger kernel buffers elsewhere. */
#define MAX_TAKEN_IN 2500
#define PUBLISH_CHUNK 4
#define PUBLISH_PAUSE_US 2000

static void publish_event(fake_broker_t *fb, uint64_t seq, json_t *data)
{
    json_t *event = json_pack("{s:I, s:I, s:s, s:s, s:O}", "seq", (json_int_t)seq, "time",
                              (json_int_t)zclock_time() * 1000, "execution_id", "exec-aaa",
                              "type", "PhaseOutput", "data", data);
    fake_broker_publish(fb, event);
    json_decref(event);
}

/* Runs the gateway's loop from this thread until no event has come for quiet_ms. */
static gateway_stats_t run_until_quiet(gateway_t *gateway, int quiet_ms)
{
    gateway_stats_t stats;
    gateway_stats(gateway, &stats);
    int64_t quiet_since = zclock_mono();
    uint64_t seen = stats.events;
    while (zclock_mono() - quiet_since < quiet_ms) {
        assert_int_equal(gateway_poll(gateway, 20), 0);
        gateway_stats(gateway, &stats);
        if (stats.events != seen) {
            seen = stats.events;
            quiet_since = zclock_mono();
        }
    }
    return stats;
}

static void test_stalled_loop_takes_in_a_bounded_backlog(void **state)
{
    (void)state;
    fake_broker_t *fb = fake_broker_start(
        &(fake_broker_config_t){.poll_ms = 1, .events_sndhwm = PUB_SNDHWM});
    fake_broker_set_healthy(fb, 1);
    gateway_config_t config = {
        .http = "127.0.0.1:0",
        .broker = fake_broker_endpoint(fb),
        .events = fake_broker_events_endpoint(fb),
        .request_timeout_ms = 1000,
        .health_timeout_ms = 500,
        .max_connections = 16,
    };
    gateway_harness_t *h = gateway_harness_start(&config);
    assert_true(gateway_harness_wait_healthy(h, 3000));
    json_t *small = json_object();
    uint64_t seq = 1;
    /* Until the SUB's subscription reaches the PUB, events are lost. */
    for (wait_t w = wait_begin(3000); gateway_harness_stats(h).events == 0 && wait_next(&w);)
        publish_event(fb, seq++, small);
    uint64_t before = gateway_harness_stats(h).events;
    assert_true(before > 0);

    gateway_harness_halt(h); /* the loop stalls; the SUB's I/O thread does not */
    gateway_t *gateway = gateway_harness_gateway(h);
    char *text = malloc(EVENT_TEXT_BYTES + 1);
    assert_non_null(text);
    memset(text, 'x', EVENT_TEXT_BYTES);
    text[EVENT_TEXT_BYTES] = '\0';
    json_t *big = json_pack("{s:s, s:i, s:i, s:s}", "phase_id", "p1", "attempt", 1, "offset",
                            0, "text", text);
    free(text);
    /* A few at a time, so the PUB's short queue drops only what the gateway refuses, not
     * what its I/O thread has not sent yet. */
    for (int i = 0; i < BACKLOG_EVENTS; i++) {
        publish_event(fb, seq++, big);
        /* The publisher's pace (part of the scenario), not a wait. */
        if (i % PUBLISH_CHUNK == PUBLISH_CHUNK - 1)
            usleep(PUBLISH_PAUSE_US);
    }
    json_decref(big);
    /* Every one handed to the PUB: sent towards the gateway or dropped there. */
    WAIT_FOR(fake_broker_published(fb) == (int)seq - 1, 10000);
    assert_int_equal(fake_broker_published(fb), (int)seq - 1);

    gateway_stats_t stats = run_until_quiet(gateway, 500);
    uint64_t taken_in = stats.events - before;
    print_message("events taken in while stalled: %llu of %d\n", (unsigned long long)taken_in,
                  BACKLOG_EVENTS);
    assert_true(taken_in >= GATEWAY_EVENTS_BUFFERED / 2); /* it did queue some */
    assert_true(taken_in < MAX_TAKEN_IN);                 /* ... and not much more */

    /* What was dropped is a gap the next event shows, if none did already. */
    publish_event(fb, seq++, small);
    stats = run_until_quiet(gateway, 300);
    assert_int_equal(stats.events, before + taken_in + 1);
    assert_true(stats.event_gaps >= 1);

    json_decref(small);
    gateway_harness_stop(&h);
    fake_broker_stop(&fb);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stalled_loop_takes_in_a_bounded_backlog),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
