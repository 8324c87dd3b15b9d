/* The hub: events reach exactly the clients they concern, in seq order; duplicates are
 * dropped; a gap in seq holds live events and asks for the missing range; fill pages
 * and held events are merged without repeats; a failed fill disconnects everyone. */
#include "gateway/hub.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static const gateway_sse_limits_t limits = {.max_bytes = 1 << 20, .low_bytes = 1 << 18};

typedef struct {
    int wakes;
} woken_t;

static void on_wake(gateway_sse_client_t *client, void *cls)
{
    (void)client;
    ((woken_t *)cls)->wakes++;
}

static json_t *event_json(long long seq, const char *execution_id)
{
    return json_pack("{s:I, s:i, s:s?, s:s, s:{}}", "seq", (json_int_t)seq, "time", 0,
                     "execution_id", execution_id, "type", "PhaseOutput", "data");
}

static gateway_sse_frame_t *frame(long long seq, const char *execution_id)
{
    json_t *event = event_json(seq, execution_id);
    char err[128];
    gateway_sse_frame_t *f = gateway_sse_frame_event(event, err, sizeof err);
    json_decref(event);
    assert_non_null(f);
    return f;
}

/* Feeds one live event; returns whether a fill was asked for (after *after). */
static bool live(gateway_hub_t *hub, long long seq, const char *execution_id, uint64_t *after)
{
    gateway_sse_frame_t *f = frame(seq, execution_id);
    bool fill = gateway_hub_live(hub, f, after);
    gateway_sse_frame_unref(&f);
    return fill;
}

/* A live client (no replay) registered in the hub. */
static gateway_sse_client_t *live_client(gateway_hub_t *hub, const char *execution_id)
{
    gateway_sse_client_t *client = gateway_sse_client_new(execution_id, 0, false, &limits);
    assert_non_null(client);
    if (execution_id)
        gateway_sse_client_resolve(client, execution_id);
    assert_int_equal(gateway_hub_add(hub, client), 0);
    return client;
}

/* The ids read from the client, comma separated. */
static void expect_ids(gateway_sse_client_t *client, const char *want)
{
    char text[65536];
    size_t len = 0;
    ssize_t n;
    while ((n = gateway_sse_client_read(client, text + len, sizeof text - len - 1)) > 0)
        len += (size_t)n;
    text[len] = '\0';
    char got[4096] = "";
    size_t used = 0;
    for (const char *p = strstr(text, "id: "); p; p = strstr(p + 1, "\nid: ")) {
        const char *digits = p[0] == '\n' ? p + 5 : p + 4;
        used += (size_t)snprintf(got + used, sizeof got - used, "%s%lld", used ? "," : "",
                                 atoll(digits));
    }
    if (strcmp(got, want) != 0)
        print_error("got %s want %s\n", got, want);
    assert_string_equal(got, want);
}

static void test_events_reach_their_clients(void **state)
{
    (void)state;
    woken_t woken = {0};
    gateway_hub_t *hub = gateway_hub_new(100, 0, on_wake, &woken);
    gateway_sse_client_t *one = live_client(hub, "exec-1");
    gateway_sse_client_t *one_again = live_client(hub, "exec-1");
    gateway_sse_client_t *two = live_client(hub, "exec-2");
    gateway_sse_client_t *all = live_client(hub, NULL);
    gateway_sse_client_t *prefixed = gateway_sse_client_new("exec-", 0, false, &limits);
    gateway_hub_add(hub, prefixed);
    gateway_hub_stats_t stats;
    gateway_hub_stats(hub, &stats);
    assert_int_equal(stats.clients, 5);
    uint64_t after, last;
    assert_false(gateway_hub_last_seq(hub, &last));
    assert_false(live(hub, 1, "exec-1", &after));
    assert_false(live(hub, 2, "exec-2", &after));
    assert_false(live(hub, 3, NULL, &after));
    assert_false(live(hub, 4, "exec-1", &after));
    assert_true(gateway_hub_last_seq(hub, &last));
    assert_int_equal(last, 4);
    /* exec-1 ×2, prefixed, all for 1 and 4; exec-2, prefixed, all for 2; all for 3. */
    assert_int_equal(woken.wakes, 4 + 4 + 3 + 1);
    expect_ids(one, "1,4");
    expect_ids(one_again, "1,4");
    expect_ids(two, "2");
    expect_ids(all, "1,2,3,4");
    expect_ids(prefixed, "1,2,4");

    /* Resolved, the prefixed client sees its own execution only. */
    assert_int_equal(gateway_hub_resolve(hub, prefixed, "exec-2"), 0);
    live(hub, 5, "exec-1", &after);
    live(hub, 6, "exec-2", &after);
    expect_ids(prefixed, "6");

    /* Removal from the middle and the head of a list, then from a list of one. */
    gateway_hub_remove(hub, one);
    live(hub, 7, "exec-1", &after);
    expect_ids(one_again, "5,7");
    gateway_hub_remove(hub, one_again);
    gateway_hub_remove(hub, two);
    gateway_hub_remove(hub, prefixed);
    live(hub, 8, "exec-2", &after);
    expect_ids(all, "5,6,7,8");
    gateway_hub_stats(hub, &stats);
    assert_int_equal(stats.clients, 1);
    assert_int_equal(stats.dispatched, 8);
    gateway_hub_destroy(&hub);
    gateway_hub_destroy(&hub);
    gateway_sse_client_destroy(&one);
    gateway_sse_client_destroy(&one_again);
    gateway_sse_client_destroy(&two);
    gateway_sse_client_destroy(&all);
    gateway_sse_client_destroy(&prefixed);
}

static void test_duplicates_are_dropped(void **state)
{
    (void)state;
    gateway_hub_t *hub = gateway_hub_new(100, 0, NULL, NULL);
    gateway_sse_client_t *all = live_client(hub, NULL);
    uint64_t after;
    live(hub, 10, "exec-1", &after);
    live(hub, 10, "exec-1", &after);
    live(hub, 9, "exec-1", &after);
    live(hub, 11, "exec-1", &after);
    expect_ids(all, "10,11");
    gateway_hub_stats_t stats;
    gateway_hub_stats(hub, &stats);
    assert_int_equal(stats.duplicates, 2);
    assert_int_equal(stats.gaps, 0);
    gateway_hub_remove(hub, all);
    gateway_sse_client_destroy(&all);
    gateway_hub_destroy(&hub);
}

static void test_gap_is_filled_in_order(void **state)
{
    (void)state;
    gateway_hub_t *hub = gateway_hub_new(100, 0, NULL, NULL);
    gateway_sse_client_t *one = live_client(hub, "exec-1");
    gateway_sse_client_t *all = live_client(hub, NULL);
    uint64_t after = 0;
    live(hub, 1, "exec-1", &after);
    live(hub, 2, "exec-2", &after);
    assert_true(live(hub, 6, "exec-1", &after));
    assert_int_equal(after, 2);
    assert_true(gateway_hub_filling(hub));
    assert_false(live(hub, 7, "exec-1", &after)); /* held, no second fill */
    expect_ids(all, "1,2");

    /* A first page: 3 and 4, more to come. */
    json_t *events = json_array();
    json_array_append_new(events, event_json(3, "exec-1"));
    json_array_append_new(events, event_json(4, "exec-2"));
    assert_true(gateway_hub_fill(hub, events, true, &after));
    json_decref(events);
    assert_int_equal(after, 4);
    expect_ids(all, "3,4");
    /* The second page overlaps the held events: each is dispatched once. */
    events = json_array();
    for (int seq = 5; seq <= 7; seq++)
        json_array_append_new(events, event_json(seq, "exec-1"));
    assert_false(gateway_hub_fill(hub, events, false, &after));
    json_decref(events);
    assert_false(gateway_hub_filling(hub));
    assert_false(live(hub, 8, "exec-1", &after));
    expect_ids(all, "5,6,7,8");
    expect_ids(one, "1,3,5,6,7,8");
    gateway_hub_stats_t stats;
    gateway_hub_stats(hub, &stats);
    assert_int_equal(stats.gaps, 1);
    assert_int_equal(stats.filled, 5);
    assert_int_equal(stats.dispatched, 8);

    /* Held events released by a page that ends before them. */
    assert_true(live(hub, 10, "exec-1", &after));
    live(hub, 11, "exec-1", &after);
    events = json_array();
    json_array_append_new(events, event_json(9, "exec-1"));
    assert_false(gateway_hub_fill(hub, events, false, &after));
    json_decref(events);
    expect_ids(one, "9,10,11");

    gateway_hub_remove(hub, one);
    gateway_hub_remove(hub, all);
    gateway_sse_client_destroy(&one);
    gateway_sse_client_destroy(&all);
    gateway_hub_destroy(&hub);
}

static void test_gap_without_clients_is_skipped(void **state)
{
    (void)state;
    gateway_hub_t *hub = gateway_hub_new(100, 0, NULL, NULL);
    uint64_t after, last;
    live(hub, 1, "exec-1", &after);
    assert_false(live(hub, 5, "exec-1", &after));
    assert_false(gateway_hub_filling(hub));
    gateway_hub_last_seq(hub, &last);
    assert_int_equal(last, 5);
    gateway_hub_destroy(&hub);
}

/* The log does not have the missing events (no progress): go on after the hole. */
static void test_fill_without_progress_skips_the_hole(void **state)
{
    (void)state;
    gateway_hub_t *hub = gateway_hub_new(100, 0, NULL, NULL);
    gateway_sse_client_t *all = live_client(hub, NULL);
    uint64_t after;
    live(hub, 1, "exec-1", &after);
    assert_true(live(hub, 4, "exec-1", &after));
    json_t *events = json_array();
    assert_false(gateway_hub_fill(hub, events, false, &after));
    json_decref(events);
    assert_false(gateway_hub_filling(hub));
    expect_ids(all, "1,4");
    gateway_hub_remove(hub, all);
    gateway_sse_client_destroy(&all);
    gateway_hub_destroy(&hub);
}

/* Fills the gap after seq 1 with 2-4 (more to come), then 5-6 (the last page):
 * the client must then have had 1-8 in order, the held 7 and 8 included. */
static void fill_2_to_6_and_expect_all(gateway_hub_t *hub, gateway_sse_client_t *all)
{
    uint64_t after;
    json_t *events = json_array();
    for (int seq = 2; seq <= 4; seq++)
        json_array_append_new(events, event_json(seq, "exec-1"));
    assert_true(gateway_hub_fill(hub, events, true, &after));
    json_decref(events);
    assert_int_equal(after, 4);
    events = json_array();
    json_array_append_new(events, event_json(5, "exec-1"));
    json_array_append_new(events, event_json(6, "exec-1"));
    assert_false(gateway_hub_fill(hub, events, false, &after));
    json_decref(events);
    expect_ids(all, "1,2,3,4,5,6,7,8");
}

/* Too many held events: they are dropped and the fill keeps paging until the log is
 * read up to them. */
static void test_hold_overflow_keeps_filling(void **state)
{
    (void)state;
    gateway_hub_t *hub = gateway_hub_new(3, 0, NULL, NULL);
    gateway_sse_client_t *all = live_client(hub, NULL);
    uint64_t after;
    live(hub, 1, "exec-1", &after);
    assert_true(live(hub, 3, "exec-1", &after));
    for (int seq = 4; seq <= 8; seq++) /* 3,4,5 held; 6 finds no room: all dropped; 7,8 held */
        live(hub, seq, "exec-1", &after);
    fill_2_to_6_and_expect_all(hub, all);
    gateway_hub_remove(hub, all);
    gateway_sse_client_destroy(&all);
    gateway_hub_destroy(&hub);
}

/* The same by bytes: held events whose text passes hold_bytes are dropped alike, however
 * few they are. */
static void test_hold_over_bytes_keeps_filling(void **state)
{
    (void)state;
    gateway_sse_frame_t *one = frame(3, "exec-1");
    size_t len = gateway_sse_frame_len(one);
    gateway_sse_frame_unref(&one);
    assert_true(len > 0);
    gateway_hub_t *hub = gateway_hub_new(100, 3 * len, NULL, NULL);
    gateway_sse_client_t *all = live_client(hub, NULL);
    uint64_t after;
    live(hub, 1, "exec-1", &after);
    assert_true(live(hub, 3, "exec-1", &after));
    gateway_hub_stats_t stats;
    for (int seq = 4; seq <= 8; seq++) { /* 3,4,5 held; 6 passes the bytes: dropped; 7,8 */
        live(hub, seq, "exec-1", &after);
        gateway_hub_stats(hub, &stats);
        assert_true(stats.held_bytes <= 3 * len);
    }
    assert_int_equal(stats.held_bytes, 2 * len);
    fill_2_to_6_and_expect_all(hub, all);
    gateway_hub_stats(hub, &stats);
    assert_int_equal(stats.held_bytes, 0);
    gateway_hub_remove(hub, all);
    gateway_sse_client_destroy(&all);
    gateway_hub_destroy(&hub);
}

static void test_failed_fill_disconnects_everyone(void **state)
{
    (void)state;
    woken_t woken = {0};
    gateway_hub_t *hub = gateway_hub_new(100, 0, on_wake, &woken);
    gateway_sse_client_t *one = live_client(hub, "exec-1");
    gateway_sse_client_t *all = live_client(hub, NULL);
    uint64_t after, last;
    live(hub, 1, "exec-2", &after);
    assert_true(live(hub, 3, "exec-2", &after));
    woken.wakes = 0;
    gateway_hub_fill_failed(hub);
    assert_int_equal(woken.wakes, 2);
    assert_int_equal(gateway_sse_client_state(one), GATEWAY_SSE_FAILED);
    assert_int_equal(gateway_sse_client_state(all), GATEWAY_SSE_FAILED);
    assert_false(gateway_hub_filling(hub));
    assert_false(gateway_hub_last_seq(hub, &last));
    assert_false(live(hub, 9, "exec-2", &after)); /* a fresh start */
    gateway_hub_last_seq(hub, &last);
    assert_int_equal(last, 9);
    gateway_hub_remove(hub, one);
    gateway_hub_remove(hub, all);
    gateway_sse_client_destroy(&one);
    gateway_sse_client_destroy(&all);
    gateway_hub_destroy(&hub);
}

/* A replaying client holds what the hub dispatches (fill pages included) and gets it
 * once, after its own replay. */
static void test_replaying_client_during_a_fill(void **state)
{
    (void)state;
    gateway_hub_t *hub = gateway_hub_new(100, 0, NULL, NULL);
    gateway_sse_client_t *client = gateway_sse_client_new("exec-1", 0, true, &limits);
    gateway_sse_client_resolve(client, "exec-1");
    gateway_hub_add(hub, client);
    gateway_sse_client_connect(client, true, 0);
    uint64_t page_after, after;
    assert_true(gateway_sse_client_next_page(client, &page_after));
    live(hub, 1, "exec-1", &after);
    assert_true(live(hub, 4, "exec-1", &after));
    json_t *events = json_array();
    for (int seq = 2; seq <= 3; seq++)
        json_array_append_new(events, event_json(seq, "exec-1"));
    gateway_hub_fill(hub, events, false, &after);
    json_decref(events);
    /* Its replay saw 1 and 2 only. */
    events = json_array();
    for (int seq = 1; seq <= 2; seq++)
        json_array_append_new(events, event_json(seq, "exec-1"));
    gateway_sse_client_page(client, events, false, false);
    json_decref(events);
    live(hub, 5, "exec-1", &after);
    expect_ids(client, "0,1,2,3,4,5");
    gateway_hub_remove(hub, client);
    gateway_sse_client_destroy(&client);
    gateway_hub_destroy(&hub);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_events_reach_their_clients),
        cmocka_unit_test(test_duplicates_are_dropped),
        cmocka_unit_test(test_gap_is_filled_in_order),
        cmocka_unit_test(test_gap_without_clients_is_skipped),
        cmocka_unit_test(test_fill_without_progress_skips_the_hole),
        cmocka_unit_test(test_hold_overflow_keeps_filling),
        cmocka_unit_test(test_hold_over_bytes_keeps_filling),
        cmocka_unit_test(test_failed_fill_disconnects_everyone),
        cmocka_unit_test(test_replaying_client_during_a_fill),
    };
    return cmocka_run_group_tests_name("gateway_hub", tests, NULL, NULL);
}
