/* The gateway's local view: updates ordered by seq, workflow and full-id matching,
 * bounds and eviction order, holds for control ops (read-your-writes), and starting
 * over on a gap or a disconnect. */
#include "gateway/view.h"

#include "common/json_text.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static json_t *status_of(const char *id, const char *workflow, const char *state, int done)
{
    return json_pack("{s:s, s:s, s:s, s:n, s:i, s:i, s:s, s:n, s:n}", "execution_id", id,
                     "workflow_id", workflow, "status", state, "current_phase",
                     "completed_phases", done, "total_phases", 2, "started_at",
                     "2026-11-28T14:56:19.123456Z", "completed_at", "error");
}

/* Feeds one event carrying a status. */
static void feed(gateway_view_t *view, uint64_t seq, const char *id, const char *state)
{
    json_t *status = status_of(id, "wf", state, 0);
    gateway_view_event(view, seq, status);
    json_decref(status);
}

static gateway_view_t *connected_view(size_t capacity, size_t max_bytes)
{
    gateway_view_t *view = gateway_view_new(capacity, max_bytes);
    assert_non_null(view);
    gateway_view_set_connected(view, true);
    return view;
}

/* The status the view serves for id in workflow wf, or NULL on a miss. */
static const char *served(gateway_view_t *view, const char *wf, const char *id)
{
    static char buf[1024];
    const char *text;
    size_t len;
    if (!gateway_view_get(view, wf, id, &text, &len))
        return NULL;
    assert_int_equal(len, strlen(text));
    json_t *json = json_loads(text, 0, NULL);
    assert_non_null(json);
    snprintf(buf, sizeof buf, "%s", json_string_value(json_object_get(json, "status")));
    json_decref(json);
    return buf;
}

static void test_serves_exact_text_for_full_id_and_workflow(void **state)
{
    (void)state;
    gateway_view_t *view = connected_view(0, 0);
    json_t *status = status_of("exec-aa11", "wf", "running", 1);
    gateway_view_event(view, 1, status);
    const char *text;
    size_t len;
    assert_true(gateway_view_get(view, "wf", "exec-aa11", &text, &len));
    char *want = syn_json_text(status);
    assert_string_equal(text, want); /* the reply body as the broker would write it */
    free(want);
    json_decref(status);
    assert_false(gateway_view_get(view, "other", "exec-aa11", &text, &len));
    assert_false(gateway_view_get(view, "wf", "exec-aa", &text, &len)); /* prefix */
    assert_false(gateway_view_get(view, "wf", "exec-bb22", &text, &len));
    gateway_view_stats_t stats;
    gateway_view_stats(view, &stats);
    assert_int_equal(stats.hits, 1);
    assert_int_equal(stats.misses, 3);
    assert_int_equal(stats.entries, 1);
    gateway_view_destroy(&view);
    gateway_view_destroy(&view);
}

/* The text served is always that of the newest status, read as often as wanted, and it
 * outlives the object it came from. */
static void test_served_text_follows_every_update(void **state)
{
    (void)state;
    gateway_view_t *view = connected_view(0, 0);
    const char *states[] = {"paused", "running", "running", "completed"};
    for (int i = 0; i < 4; i++) {
        json_t *status = status_of("exec-1", "wf", states[i], i);
        char *want = syn_json_text(status);
        gateway_view_event(view, (uint64_t)i + 1, status);
        json_decref(status);
        for (int read = 0; read < 2; read++) {
            const char *text;
            size_t len;
            assert_true(gateway_view_get(view, "wf", "exec-1", &text, &len));
            assert_string_equal(text, want);
            assert_int_equal(len, strlen(want));
        }
        free(want);
    }
    gateway_view_stats_t stats;
    gateway_view_stats(view, &stats);
    assert_int_equal(stats.updates, 4);
    assert_int_equal(stats.hits, 8);
    gateway_view_destroy(&view);
}

/* Whatever a status holds, the text served is the one a reply through the broker
 * carries (the gateway writes every reply body with syn_json_text): escapes, every
 * control character, numbers at the edges, reals, non-ASCII text, and values that
 * are not flat. */
static void test_text_is_what_a_reply_carries(void **state)
{
    (void)state;
    gateway_view_t *view = connected_view(0, 0);
    char controls[40];
    size_t n = 0;
    for (int c = 1; c < 0x20; c++)
        controls[n++] = (char)c;
    memcpy(controls + n, "\"\\/\x7f", 4);
    n += 4;
    json_t *odd[] = {
        json_pack("{s:s#}", "error", controls, (int)n),
        json_pack("{s:s#}", "error", "nul\0inside", 11),
        json_pack("{s:I, s:I, s:i, s:i, s:i}", "completed_phases", (json_int_t)INT64_MAX,
                  "total_phases", (json_int_t)INT64_MIN, "zero", 0, "minus", -42, "ten", 10),
        json_pack("{s:b, s:b, s:n}", "yes", 1, "no", 0, "none"),
        json_pack("{s:s}", "error", "Phase write failed: caf\xc3\xa9 \xe2\x80\x94 \xf0\x9f\x98\x80"),
        json_pack("{s:f}", "cost", 0.1),
        json_pack("{s:{s:i}, s:[i]}", "nested", "a", 1, "list", 2),
        json_pack("{s:s}", "key\twith \"escapes\"", "v"),
    };
    for (size_t i = 0; i < sizeof odd / sizeof odd[0]; i++) {
        assert_non_null(odd[i]);
        json_t *status = status_of("exec-1", "wf", "running", 0);
        assert_int_equal(json_object_update(status, odd[i]), 0);
        char *want = syn_json_text(status);
        gateway_view_event(view, i + 1, status);
        json_decref(status);
        json_decref(odd[i]);
        const char *text;
        size_t len;
        assert_true(gateway_view_get(view, "wf", "exec-1", &text, &len));
        assert_int_equal(len, strlen(want));
        assert_string_equal(text, want);
        free(want);
    }
    gateway_view_destroy(&view);
}

static void test_newer_seq_wins_and_events_without_status_count(void **state)
{
    (void)state;
    gateway_view_t *view = connected_view(0, 0);
    feed(view, 1, "exec-1", "pending");
    feed(view, 2, "exec-1", "running");
    gateway_view_event(view, 3, NULL); /* an event without status still counts */
    feed(view, 4, "exec-1", "completed");
    assert_string_equal(served(view, "wf", "exec-1"), "completed");
    /* A repeat of an older seq changes nothing. */
    feed(view, 2, "exec-1", "running");
    assert_string_equal(served(view, "wf", "exec-1"), "completed");
    /* Unusable status objects are refused. */
    json_t *bad = json_pack("{s:s}", "execution_id", "exec-2");
    gateway_view_event(view, 5, bad);
    json_decref(bad);
    assert_null(served(view, "wf", "exec-2"));
    bad = status_of("exec-2", "wf", "pending", 0);
    json_object_set_new(bad, "started_at", json_null()); /* not the documented shape */
    gateway_view_event(view, 6, bad);
    json_decref(bad);
    assert_null(served(view, "wf", "exec-2"));
    gateway_view_stats_t stats;
    gateway_view_stats(view, &stats);
    assert_int_equal(stats.rejected, 2);
    assert_int_equal(stats.clears, 0); /* no gap above, and a first connect clears nothing */
    gateway_view_destroy(&view);
}

/* A pending execution's status is the broker's to answer: its queue_position
 * moves while no event of its own says so. */
static void test_pending_is_left_to_the_broker(void **state)
{
    (void)state;
    gateway_view_t *view = connected_view(0, 0);
    feed(view, 1, "exec-1", "pending");
    assert_null(served(view, "wf", "exec-1"));
    feed(view, 2, "exec-1", "running");
    assert_string_equal(served(view, "wf", "exec-1"), "running");
    gateway_view_destroy(&view);
}

static void test_gap_clears(void **state)
{
    (void)state;
    gateway_view_t *view = connected_view(0, 0);
    feed(view, 10, "exec-1", "running");
    feed(view, 11, "exec-2", "running");
    feed(view, 13, "exec-3", "running"); /* 12 was missed: exec-1, exec-2 may be old */
    assert_null(served(view, "wf", "exec-1"));
    assert_null(served(view, "wf", "exec-2"));
    assert_string_equal(served(view, "wf", "exec-3"), "running");
    feed(view, 14, "exec-1", "completed"); /* fresh events refill it */
    assert_string_equal(served(view, "wf", "exec-1"), "completed");
    gateway_view_destroy(&view);
}

/* n executions exec-0000… fed from seq first on, every other one finished. */
static void feed_many(gateway_view_t *view, uint64_t first, int n)
{
    for (int i = 0; i < n; i++) {
        char id[32];
        snprintf(id, sizeof id, "exec-%04d", i);
        feed(view, first + (uint64_t)i, id, i % 2 ? "completed" : "running");
    }
}

static void test_disconnected_serves_nothing(void **state)
{
    (void)state;
    gateway_view_t *view = gateway_view_new(0, 0);
    feed(view, 1, "exec-1", "running");
    assert_null(served(view, "wf", "exec-1")); /* never connected yet */
    gateway_view_set_connected(view, true);
    feed(view, 2, "exec-1", "running");
    assert_string_equal(served(view, "wf", "exec-1"), "running");
    gateway_view_set_connected(view, false);
    assert_null(served(view, "wf", "exec-1"));
    feed(view, 3, "exec-1", "paused");
    assert_null(served(view, "wf", "exec-1"));
    /* Reconnected: what came before may be stale; only new events count. */
    gateway_view_set_connected(view, true);
    assert_null(served(view, "wf", "exec-1"));
    feed(view, 7, "exec-1", "running"); /* seqs start afresh after a reconnect */
    assert_string_equal(served(view, "wf", "exec-1"), "running");
    gateway_view_destroy(&view);
}

static void test_bounded_evicts_finished_first(void **state)
{
    (void)state;
    gateway_view_t *view = connected_view(3, 0);
    feed(view, 1, "exec-a", "running");
    feed(view, 2, "exec-b", "completed");
    feed(view, 3, "exec-c", "running");
    feed(view, 4, "exec-d", "running"); /* evicts exec-b, the only finished one */
    assert_null(served(view, "wf", "exec-b"));
    assert_non_null(served(view, "wf", "exec-a"));
    feed(view, 5, "exec-a", "running"); /* exec-a is now the most recently updated */
    feed(view, 6, "exec-e", "running"); /* no finished one: the oldest active, exec-c */
    assert_null(served(view, "wf", "exec-c"));
    assert_non_null(served(view, "wf", "exec-a"));
    assert_non_null(served(view, "wf", "exec-d"));
    assert_non_null(served(view, "wf", "exec-e"));
    gateway_view_stats_t stats;
    gateway_view_stats(view, &stats);
    assert_int_equal(stats.entries, 3);
    assert_int_equal(stats.evictions, 2);
    /* Many more than the capacity stay within it. */
    feed_many(view, 7, 1000);
    gateway_view_stats(view, &stats);
    assert_int_equal(stats.entries, 3);
    gateway_view_destroy(&view);
}

/* The footprint of one entry as the tests feed them. */
static size_t one_entry_bytes(void)
{
    gateway_view_t *view = connected_view(0, 0);
    feed(view, 1, "exec-a", "running");
    gateway_view_stats_t stats;
    gateway_view_stats(view, &stats);
    gateway_view_destroy(&view);
    assert_true(stats.bytes > 0);
    return stats.bytes;
}

/* However few the executions, their texts cannot take more than max_bytes: the oldest
 * update goes first (finished ones before active ones), and a status bigger than the
 * whole budget is not kept at all. */
static void test_bounded_by_bytes_evicts_oldest(void **state)
{
    (void)state;
    size_t one = one_entry_bytes();
    size_t budget = 3 * one + one / 2;
    gateway_view_t *view = connected_view(0, budget);
    feed(view, 1, "exec-a", "running");
    feed(view, 2, "exec-b", "completed");
    feed(view, 3, "exec-c", "running");
    feed(view, 4, "exec-d", "running"); /* a fourth does not fit: exec-b goes */
    assert_null(served(view, "wf", "exec-b"));
    assert_string_equal(served(view, "wf", "exec-a"), "running");
    feed(view, 5, "exec-e", "running"); /* no finished one left: the oldest, exec-a */
    assert_null(served(view, "wf", "exec-a"));
    assert_non_null(served(view, "wf", "exec-c"));
    assert_non_null(served(view, "wf", "exec-d"));
    assert_non_null(served(view, "wf", "exec-e"));
    gateway_view_stats_t stats;
    gateway_view_stats(view, &stats);
    assert_int_equal(stats.entries, 3);
    assert_int_equal(stats.evictions, 2);
    assert_true(stats.bytes <= budget);
    feed_many(view, 6, 1000);
    gateway_view_stats(view, &stats);
    assert_int_equal(stats.entries, 3);
    assert_true(stats.bytes <= budget);
    /* An update that grows a text past the budget pushes out the others, not itself. */
    char *error = calloc(1, one);
    memset(error, 'x', one - 1);
    json_t *status = json_pack("{s:s, s:s, s:s, s:n, s:i, s:i, s:s, s:n, s:s}", "execution_id",
                               "exec-0999", "workflow_id", "wf", "status", "failed",
                               "current_phase", "completed_phases", 0, "total_phases", 2,
                               "started_at", "2026-11-28T14:56:19.123456Z", "completed_at",
                               "error", error);
    gateway_view_event(view, 1006, status);
    json_decref(status);
    assert_string_equal(served(view, "wf", "exec-0999"), "failed");
    gateway_view_stats(view, &stats);
    assert_int_equal(stats.entries, 2);
    assert_true(stats.bytes <= budget);
    /* One bigger than the whole budget is not kept, and its older text is forgotten. */
    free(error);
    error = calloc(1, budget);
    memset(error, 'x', budget - 1);
    status = json_pack("{s:s, s:s, s:s, s:n, s:i, s:i, s:s, s:n, s:s}", "execution_id",
                       "exec-0998", "workflow_id", "wf", "status", "failed", "current_phase",
                       "completed_phases", 0, "total_phases", 2, "started_at",
                       "2026-11-28T14:56:19.123456Z", "completed_at", "error", error);
    gateway_view_event(view, 1007, status);
    json_decref(status);
    free(error);
    assert_null(served(view, "wf", "exec-0998"));
    assert_string_equal(served(view, "wf", "exec-0999"), "failed");
    gateway_view_stats(view, &stats);
    assert_true(stats.bytes <= budget);
    gateway_view_destroy(&view);
}

/* A control op holds the entry from its send; its reply (state paused) lets it be
 * served again only once an event newer than the send shows paused. */
static void test_control_op_holds_until_its_state_shows(void **state)
{
    (void)state;
    gateway_view_t *view = connected_view(0, 0);
    feed(view, 1, "exec-1", "running");
    uint64_t token = gateway_view_hold(view, "exec-1");
    assert_null(served(view, "wf", "exec-1"));
    gateway_view_release(view, token, "exec-1", "paused");
    assert_null(served(view, "wf", "exec-1"));
    feed(view, 2, "exec-1", "running"); /* committed before the pause, arriving late */
    assert_null(served(view, "wf", "exec-1"));
    feed(view, 3, "exec-1", "paused");
    assert_string_equal(served(view, "wf", "exec-1"), "paused");
    /* The pause's event came before its reply: served again at once. */
    token = gateway_view_hold(view, "exec-1");
    feed(view, 4, "exec-1", "running");
    gateway_view_release(view, token, "exec-1", "running");
    assert_string_equal(served(view, "wf", "exec-1"), "running");
    /* A cancel whose execution went on to finish otherwise: terminal releases it. */
    token = gateway_view_hold(view, "exec-1");
    gateway_view_release(view, token, "exec-1", "cancelled");
    feed(view, 5, "exec-1", "completed");
    assert_string_equal(served(view, "wf", "exec-1"), "completed");
    gateway_view_destroy(&view);
}

static void test_failed_control_op_releases_on_newer_event(void **state)
{
    (void)state;
    gateway_view_t *view = connected_view(0, 0);
    feed(view, 1, "exec-1", "running");
    uint64_t token = gateway_view_hold(view, "exec-1");
    gateway_view_release(view, token, NULL, NULL);
    assert_null(served(view, "wf", "exec-1"));
    feed(view, 2, "exec-1", "running");
    assert_string_equal(served(view, "wf", "exec-1"), "running");
    gateway_view_destroy(&view);
}

static void test_prefix_holds_every_match(void **state)
{
    (void)state;
    gateway_view_t *view = connected_view(0, 0);
    feed(view, 1, "exec-ab1", "running");
    feed(view, 2, "exec-ab2", "running");
    feed(view, 3, "exec-cd3", "running");
    uint64_t token = gateway_view_hold(view, "exec-ab");
    assert_null(served(view, "wf", "exec-ab1"));
    assert_null(served(view, "wf", "exec-ab2"));
    assert_non_null(served(view, "wf", "exec-cd3"));
    /* The broker resolved it to exec-ab1 and cancelled it. */
    gateway_view_release(view, token, "exec-ab1", "cancelled");
    feed(view, 4, "exec-ab2", "running");
    assert_non_null(served(view, "wf", "exec-ab2"));
    assert_null(served(view, "wf", "exec-ab1"));
    feed(view, 5, "exec-ab1", "cancelled");
    assert_string_equal(served(view, "wf", "exec-ab1"), "cancelled");
    gateway_view_destroy(&view);
}

/* The reply names an execution the view did not have: older events arriving after it
 * must not make the view look fresh, and a gap does not forget the hold. */
static void test_reply_for_unknown_execution_blocks_older_events(void **state)
{
    (void)state;
    gateway_view_t *view = connected_view(0, 0);
    feed(view, 1, "exec-x", "running");
    uint64_t token = gateway_view_hold(view, "exec-9");
    gateway_view_release(view, token, "exec-9f", "paused");
    feed(view, 2, "exec-9f", "running");
    assert_null(served(view, "wf", "exec-9f"));
    feed(view, 5, "exec-x", "running"); /* gap: exec-9f's hold survives the clear */
    feed(view, 6, "exec-9f", "running");
    assert_null(served(view, "wf", "exec-9f"));
    feed(view, 7, "exec-9f", "paused");
    assert_string_equal(served(view, "wf", "exec-9f"), "paused");
    gateway_view_destroy(&view);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_serves_exact_text_for_full_id_and_workflow),
        cmocka_unit_test(test_served_text_follows_every_update),
        cmocka_unit_test(test_text_is_what_a_reply_carries),
        cmocka_unit_test(test_newer_seq_wins_and_events_without_status_count),
        cmocka_unit_test(test_pending_is_left_to_the_broker),
        cmocka_unit_test(test_gap_clears),
        cmocka_unit_test(test_disconnected_serves_nothing),
        cmocka_unit_test(test_bounded_evicts_finished_first),
        cmocka_unit_test(test_bounded_by_bytes_evicts_oldest),
        cmocka_unit_test(test_control_op_holds_until_its_state_shows),
        cmocka_unit_test(test_failed_control_op_releases_on_newer_event),
        cmocka_unit_test(test_prefix_holds_every_match),
        cmocka_unit_test(test_reply_for_unknown_execution_blocks_older_events),
    };
    return cmocka_run_group_tests_name("gateway_view", tests, NULL, NULL);
}
