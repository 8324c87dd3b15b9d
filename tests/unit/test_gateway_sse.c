/* The SSE stream of one client as a pure module: frame text, replay then live without
 * repeats or gaps, holds and their budget, paging by queue length, terminal frames,
 * overflow → disconnect, keepalive, prefixes. */
#include "gateway/sse.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static const gateway_sse_limits_t limits = {.max_bytes = 4096, .low_bytes = 1024};

static json_t *event_json(long long seq, const char *execution_id, const char *type)
{
    return json_pack("{s:I, s:I, s:s?, s:s, s:{s:I}}", "seq", (json_int_t)seq, "time",
                     (json_int_t)1234567, "execution_id", execution_id, "type", type, "data",
                     "n", (json_int_t)seq);
}

static gateway_sse_frame_t *event_frame(long long seq, const char *execution_id,
                                        const char *type)
{
    json_t *event = event_json(seq, execution_id, type);
    char err[128];
    gateway_sse_frame_t *frame = gateway_sse_frame_event(event, err, sizeof err);
    json_decref(event);
    assert_non_null(frame);
    return frame;
}

/* A page of events seq first..last of one execution, the last one of type last_type. */
static json_t *page(long long first, long long last, const char *execution_id,
                    const char *last_type)
{
    json_t *events = json_array();
    for (long long seq = first; seq <= last; seq++)
        json_array_append_new(events, event_json(seq, execution_id,
                                                 seq == last && last_type ? last_type
                                                                          : "PhaseOutput"));
    return events;
}

static gateway_sse_offer_t offer(gateway_sse_client_t *client, long long seq,
                                 const char *execution_id, const char *type)
{
    gateway_sse_frame_t *frame = event_frame(seq, execution_id, type);
    gateway_sse_offer_t result = gateway_sse_client_offer(client, frame);
    gateway_sse_frame_unref(&frame);
    return result;
}

/* Reads everything queued, in small pieces; *end gets the last non-positive answer. */
static char *read_all(gateway_sse_client_t *client, ssize_t *end)
{
    size_t cap = 65536, len = 0;
    char *text = calloc(1, cap);
    for (;;) {
        ssize_t n = gateway_sse_client_read(client, text + len, 7);
        if (n <= 0) {
            *end = n;
            break;
        }
        len += (size_t)n;
        assert_true(len + 8 < cap);
    }
    text[len] = '\0';
    return text;
}

/* The ids of the frames in text ("-" for a frame without an id, "k" for a keepalive),
 * comma separated. */
static void ids_of(const char *text, char *out, size_t len)
{
    out[0] = '\0';
    size_t used = 0;
    const char *p = text;
    while (*p) {
        const char *end = strstr(p, "\n\n");
        assert_non_null(end);
        char item[32];
        if (strncmp(p, "id: ", 4) == 0)
            snprintf(item, sizeof item, "%lld", atoll(p + 4));
        else if (strncmp(p, ": keepalive", 11) == 0)
            snprintf(item, sizeof item, "k");
        else
            snprintf(item, sizeof item, "-");
        used += (size_t)snprintf(out + used, len - used, "%s%s", used ? "," : "", item);
        p = end + 2;
    }
}

static void expect_ids(gateway_sse_client_t *client, const char *want, ssize_t want_end)
{
    ssize_t end;
    char *text = read_all(client, &end);
    char got[1024];
    ids_of(text, got, sizeof got);
    if (strcmp(got, want) != 0)
        print_error("got ids %s, want %s\n%s", got, want, text);
    assert_string_equal(got, want);
    assert_int_equal(end, want_end);
    free(text);
}

static void test_event_frame_text(void **state)
{
    (void)state;
    gateway_sse_frame_t *frame = event_frame(7, "exec-1", "PhaseStarted");
    assert_string_equal(gateway_sse_frame_text(frame),
                        "id: 7\ndata: {\"type\":\"event\",\"event_type\":\"PhaseStarted\","
                        "\"execution_id\":\"exec-1\",\"data\":{\"n\":7,"
                        "\"execution_id\":\"exec-1\"},"
                        "\"timestamp\":\"1970-01-01T00:00:01.234567Z\","
                        "\"original_event_type\":\"PhaseStarted\"}\n\n");
    assert_int_equal(gateway_sse_frame_len(frame), strlen(gateway_sse_frame_text(frame)));
    assert_int_equal(gateway_sse_frame_seq(frame), 7);
    assert_false(gateway_sse_frame_terminal(frame));
    assert_string_equal(gateway_sse_frame_execution_id(frame), "exec-1");
    gateway_sse_frame_t *again = gateway_sse_frame_ref(frame);
    gateway_sse_frame_unref(&frame);
    assert_null(frame);
    assert_int_equal(gateway_sse_frame_seq(again), 7); /* still alive: one ref left */
    gateway_sse_frame_unref(&again);

    const char *terminals[] = {"ExecutionCompleted", "ExecutionFailed", "ExecutionCancelled"};
    for (int i = 0; i < 3; i++) {
        frame = event_frame(9, "exec-1", terminals[i]);
        assert_true(gateway_sse_frame_terminal(frame));
        assert_non_null(strstr(gateway_sse_frame_text(frame), "{\"type\":\"terminal\","));
        gateway_sse_frame_unref(&frame);
    }

    /* No execution, no data, and text that needs escaping stays on one data line. */
    json_t *event = json_pack("{s:i, s:i, s:n, s:s}", "seq", 3, "time", 0, "execution_id",
                              "type", "Worker\nJoined");
    char err[128];
    frame = gateway_sse_frame_event(event, err, sizeof err);
    json_decref(event);
    assert_non_null(frame);
    assert_string_equal(gateway_sse_frame_text(frame),
                        "id: 3\ndata: {\"type\":\"event\",\"event_type\":\"Worker\\nJoined\","
                        "\"execution_id\":null,\"data\":{},"
                        "\"timestamp\":\"1970-01-01T00:00:00.000000Z\","
                        "\"original_event_type\":\"Worker\\nJoined\"}\n\n");
    assert_null(gateway_sse_frame_execution_id(frame));
    gateway_sse_frame_unref(&frame);
}

/* A frame's text is made when a stream first takes it, after the event it came from is
 * gone, and every stream it goes to reads the same bytes. */
static void test_shared_frame_reads_the_same_everywhere(void **state)
{
    (void)state;
    const char *want = "id: 5\ndata: {\"type\":\"terminal\",\"event_type\":\"ExecutionCompleted\","
                       "\"execution_id\":\"exec-1\",\"data\":{\"n\":5,"
                       "\"execution_id\":\"exec-1\"},"
                       "\"timestamp\":\"1970-01-01T00:00:01.234567Z\","
                       "\"original_event_type\":\"WorkflowCompleted\"}\n\n";
    gateway_sse_frame_t *frame = event_frame(5, "exec-1", "ExecutionCompleted");
    gateway_sse_client_t *activity = gateway_sse_client_new(NULL, 0, false, &limits);
    gateway_sse_client_t *execution = gateway_sse_client_new("exec-1", 0, false, &limits);
    gateway_sse_client_t *other = gateway_sse_client_new("exec-2", 0, false, &limits);
    assert_int_equal(gateway_sse_client_offer(activity, frame), GATEWAY_SSE_QUEUED);
    assert_int_equal(gateway_sse_client_offer(execution, frame), GATEWAY_SSE_QUEUED);
    assert_int_equal(gateway_sse_client_offer(other, frame), GATEWAY_SSE_IGNORED);
    assert_int_equal(gateway_sse_client_queued(activity), strlen(want));
    gateway_sse_frame_unref(&frame); /* the queues keep it */
    ssize_t end;
    char *text = read_all(activity, &end);
    assert_string_equal(text, want);
    assert_int_equal(end, 0);
    free(text);
    text = read_all(execution, &end);
    assert_string_equal(text, want);
    assert_int_equal(end, GATEWAY_SSE_END); /* its terminal frame ends it */
    free(text);
    gateway_sse_client_destroy(&activity);
    gateway_sse_client_destroy(&execution);
    gateway_sse_client_destroy(&other);
}

/* A client of the original's (its CLI reads event_type) reads the original's names,
 * syn's in syn_event_type, while a client of syn's reading the same frame gets syn's
 * text, unchanged; each text is made once, and only for a client that reads it. */
static void test_original_clients_read_the_originals_names(void **state)
{
    (void)state;
    const char *theirs =
        "id: 5\ndata: {\"type\":\"terminal\",\"event_type\":\"WorkflowCompleted\","
        "\"execution_id\":\"exec-1\",\"data\":{\"n\":5,\"execution_id\":\"exec-1\"},"
        "\"timestamp\":\"1970-01-01T00:00:01.234567Z\","
        "\"syn_event_type\":\"ExecutionCompleted\","
        "\"original_event_type\":\"WorkflowCompleted\"}\n\n";
    gateway_sse_frame_t *frame = event_frame(5, "exec-1", "ExecutionCompleted");
    gateway_sse_client_t *syn = gateway_sse_client_new("exec-1", 0, false, &limits);
    gateway_sse_client_t *original = gateway_sse_client_new("exec-1", 0, false, &limits);
    gateway_sse_client_set_original(original);
    assert_true(gateway_sse_client_original(original));
    assert_false(gateway_sse_client_original(syn));
    assert_int_equal(gateway_sse_client_offer(original, frame), GATEWAY_SSE_QUEUED);
    assert_int_equal(gateway_sse_client_offer(syn, frame), GATEWAY_SSE_QUEUED);
    assert_int_equal(gateway_sse_client_queued(original), strlen(theirs));
    const char *text_theirs = gateway_sse_frame_text_original(frame);
    assert_ptr_equal(text_theirs, gateway_sse_frame_text_original(frame)); /* made once */
    gateway_sse_frame_unref(&frame);
    ssize_t end;
    char *text = read_all(original, &end);
    assert_string_equal(text, theirs);
    assert_int_equal(end, GATEWAY_SSE_END);
    free(text);
    text = read_all(syn, &end);
    assert_non_null(strstr(text, "\"event_type\":\"ExecutionCompleted\""));
    assert_null(strstr(text, "syn_event_type"));
    free(text);
    gateway_sse_client_destroy(&syn);
    gateway_sse_client_destroy(&original);

    /* Names the original shares, or has none for, stay; every frame is an event. */
    frame = event_frame(6, "exec-1", "PhaseQueued");
    assert_non_null(strstr(gateway_sse_frame_text_original(frame),
                           "\"event_type\":\"PhaseQueued\""));
    gateway_sse_frame_unref(&frame);
    frame = event_frame(7, "exec-1", "ExecutionStarted");
    assert_non_null(strstr(gateway_sse_frame_text_original(frame),
                           "{\"type\":\"event\",\"event_type\":\"WorkflowExecutionStarted\","));
    gateway_sse_frame_unref(&frame);

    /* Its connected frame names itself, and its activity stream's says its channel. */
    original = gateway_sse_client_new(NULL, 0, false, &limits);
    gateway_sse_client_set_original(original);
    gateway_sse_client_connect(original, false, 0);
    assert_true(gateway_sse_client_keepalive(original, INT64_MAX / 2, 1) == false);
    text = read_all(original, &end);
    assert_string_equal(text, "data: {\"type\":\"connected\",\"event_type\":\"connected\","
                              "\"execution_id\":null,\"data\":{\"channel\":\"activity\"},"
                              "\"timestamp\":\"1970-01-01T00:00:00.000000Z\"}\n\n");
    free(text);
    assert_true(gateway_sse_client_keepalive(original, INT64_MAX / 2, 1));
    text = read_all(original, &end);
    assert_string_equal(text, ": keepalive\n\n");
    free(text);
    gateway_sse_client_destroy(&original);
    original = gateway_sse_client_new("exec-1", 3, true, &limits);
    gateway_sse_client_set_original(original);
    gateway_sse_client_connect(original, true, 0);
    text = read_all(original, &end);
    assert_string_equal(text, "id: 3\ndata: {\"type\":\"connected\",\"event_type\":\"connected\","
                              "\"execution_id\":\"exec-1\",\"data\":{},"
                              "\"timestamp\":\"1970-01-01T00:00:00.000000Z\"}\n\n");
    free(text);
    gateway_sse_client_destroy(&original);
}

static void test_bad_events_are_refused(void **state)
{
    (void)state;
    const char *bad[] = {
        "[]",
        "{\"seq\":0,\"time\":1,\"execution_id\":null,\"type\":\"T\",\"data\":{}}",
        "{\"seq\":\"1\",\"time\":1,\"execution_id\":null,\"type\":\"T\",\"data\":{}}",
        "{\"seq\":1,\"time\":1.5,\"execution_id\":null,\"type\":\"T\",\"data\":{}}",
        "{\"seq\":1,\"time\":1,\"execution_id\":5,\"type\":\"T\",\"data\":{}}",
        "{\"seq\":1,\"time\":1,\"execution_id\":null,\"type\":\"\",\"data\":{}}",
        "{\"seq\":1,\"time\":1,\"execution_id\":null,\"type\":\"T\",\"data\":[]}",
        "{\"time\":1,\"execution_id\":null,\"type\":\"T\",\"data\":{}}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        json_t *event = json_loads(bad[i], JSON_DECODE_ANY, NULL);
        assert_non_null(event);
        char err[128] = "";
        assert_null(gateway_sse_frame_event(event, err, sizeof err));
        assert_true(strlen(err) > 0);
        json_decref(event);
    }
}

static void test_connected_and_keepalive_frames(void **state)
{
    (void)state;
    gateway_sse_frame_t *frame = gateway_sse_frame_connected("exec-1", true, 42, 0);
    assert_string_equal(gateway_sse_frame_text(frame),
                        "id: 42\ndata: {\"type\":\"connected\",\"event_type\":null,"
                        "\"execution_id\":\"exec-1\",\"data\":{},"
                        "\"timestamp\":\"1970-01-01T00:00:00.000000Z\"}\n\n");
    gateway_sse_frame_unref(&frame);
    frame = gateway_sse_frame_connected(NULL, false, 0, 0);
    assert_string_equal(gateway_sse_frame_text(frame),
                        "data: {\"type\":\"connected\",\"event_type\":null,\"execution_id\":null,"
                        "\"data\":{},\"timestamp\":\"1970-01-01T00:00:00.000000Z\"}\n\n");
    gateway_sse_frame_unref(&frame);
    frame = gateway_sse_frame_keepalive();
    assert_string_equal(gateway_sse_frame_text(frame), ": keepalive\n\n");
    gateway_sse_frame_unref(&frame);
}

/* Live events that arrive while the replay is in flight are held; those the replay also
 * brought are dropped; the rest follow the replay in order. */
static void test_replay_then_live_without_repeats(void **state)
{
    (void)state;
    gateway_sse_client_t *client = gateway_sse_client_new("exec-1", 0, true, &limits);
    assert_non_null(client);
    assert_true(gateway_sse_client_resolve(client, "exec-1") == 0);
    assert_int_equal(gateway_sse_client_state(client), GATEWAY_SSE_REPLAYING);
    gateway_sse_client_connect(client, true, 0);
    uint64_t after = 99;
    assert_true(gateway_sse_client_next_page(client, &after));
    assert_int_equal(after, 0);
    assert_false(gateway_sse_client_next_page(client, &after)); /* one page at a time */

    assert_int_equal(offer(client, 3, "exec-1", "PhaseOutput"), GATEWAY_SSE_HELD);
    assert_int_equal(offer(client, 4, "exec-2", "PhaseOutput"), GATEWAY_SSE_IGNORED);
    assert_int_equal(offer(client, 5, "exec-1", "PhaseOutput"), GATEWAY_SSE_HELD);
    json_t *events = page(1, 3, "exec-1", NULL);
    assert_int_equal(gateway_sse_client_page(client, events, false, false), 0);
    json_decref(events);
    assert_int_equal(gateway_sse_client_state(client), GATEWAY_SSE_LIVE);
    assert_int_equal(gateway_sse_client_last_seq(client), 5);
    assert_false(gateway_sse_client_next_page(client, &after));
    assert_int_equal(offer(client, 5, "exec-1", "PhaseOutput"), GATEWAY_SSE_IGNORED);
    assert_int_equal(offer(client, 6, "exec-1", "PhaseOutput"), GATEWAY_SSE_QUEUED);
    expect_ids(client, "0,1,2,3,5,6", 0);
    gateway_sse_client_destroy(&client);
    gateway_sse_client_destroy(&client);
}

/* Last-Event-ID: the stream continues after it; the connected frame carries it. */
static void test_resume_after_last_event_id(void **state)
{
    (void)state;
    gateway_sse_client_t *client = gateway_sse_client_new("exec-1", 2, true, &limits);
    gateway_sse_client_connect(client, true, 0);
    uint64_t after;
    assert_true(gateway_sse_client_next_page(client, &after));
    assert_int_equal(after, 2);
    json_t *events = page(1, 4, "exec-1", NULL); /* a sloppy page: 1 and 2 are dropped */
    gateway_sse_client_page(client, events, false, false);
    json_decref(events);
    expect_ids(client, "2,3,4", 0);
    gateway_sse_client_destroy(&client);
}

/* Pages are asked for only while the queue is short, so a long history never piles up
 * in memory; the client goes live only once the log is done. */
static void test_paging_follows_the_reader(void **state)
{
    (void)state;
    gateway_sse_client_t *client = gateway_sse_client_new("exec-1", 0, true, &limits);
    gateway_sse_client_resolve(client, "exec-1");
    gateway_sse_client_connect(client, true, 0);
    uint64_t after;
    long long seq = 0;
    int pages = 0;
    char *all = calloc(1, 1 << 20);
    size_t all_len = 0;
    while (gateway_sse_client_state(client) == GATEWAY_SSE_REPLAYING) {
        if (gateway_sse_client_next_page(client, &after)) {
            assert_int_equal(after, (uint64_t)seq);
            json_t *events = page(seq + 1, seq + 20, "exec-1", NULL);
            seq += 20;
            pages++;
            gateway_sse_client_page(client, events, pages < 10, false);
            json_decref(events);
            /* The page went over the low mark: no next page until it is read. */
            assert_false(gateway_sse_client_next_page(client, &after));
            assert_true(gateway_sse_client_queued(client) >= limits.low_bytes);
        }
        ssize_t n = gateway_sse_client_read(client, all + all_len, 100);
        assert_true(n > 0);
        all_len += (size_t)n;
    }
    assert_int_equal(pages, 10);
    assert_int_equal(gateway_sse_client_state(client), GATEWAY_SSE_LIVE);
    ssize_t end;
    char *rest = read_all(client, &end);
    memcpy(all + all_len, rest, strlen(rest) + 1);
    free(rest);
    char ids[4096];
    ids_of(all, ids, sizeof ids);
    char want[4096] = "0";
    for (int i = 1; i <= 200; i++)
        snprintf(want + strlen(want), sizeof want - strlen(want), ",%d", i);
    assert_string_equal(ids, want);
    free(all);
    gateway_sse_client_destroy(&client);
}

/* Holds past their budget are dropped and read back from the log by one more round. */
static void test_dropped_holds_cost_one_more_round(void **state)
{
    (void)state;
    gateway_sse_client_t *client = gateway_sse_client_new("exec-1", 0, true, &limits);
    gateway_sse_client_resolve(client, "exec-1");
    gateway_sse_client_connect(client, true, 0);
    uint64_t after;
    assert_true(gateway_sse_client_next_page(client, &after));
    int held = 0, dropped = 0;
    for (long long seq = 2; seq < 40; seq++) {
        gateway_sse_offer_t r = offer(client, seq, "exec-1", "PhaseOutput");
        held += r == GATEWAY_SSE_HELD;
        dropped += r == GATEWAY_SSE_IGNORED;
    }
    assert_true(held > 0);
    assert_true(dropped > 0);
    json_t *events = page(1, 1, "exec-1", NULL);
    gateway_sse_client_page(client, events, false, false);
    json_decref(events);
    assert_int_equal(gateway_sse_client_state(client), GATEWAY_SSE_REPLAYING);
    assert_true(gateway_sse_client_next_page(client, &after));
    assert_int_equal(after, 1);
    events = page(2, 39, "exec-1", NULL);
    gateway_sse_client_page(client, events, false, false);
    json_decref(events);
    /* Not live before the queue is read down. */
    ssize_t end;
    char *text = read_all(client, &end);
    assert_int_equal(gateway_sse_client_state(client), GATEWAY_SSE_LIVE);
    assert_int_equal(offer(client, 40, "exec-1", "PhaseOutput"), GATEWAY_SSE_QUEUED);
    char *rest = read_all(client, &end);
    char ids[1024];
    ids_of(text, ids, sizeof ids);
    assert_non_null(strstr(ids, "0,1,2,3,"));
    assert_non_null(strstr(ids, ",38,39"));
    ids_of(rest, ids, sizeof ids);
    assert_string_equal(ids, "40");
    free(text);
    free(rest);
    gateway_sse_client_destroy(&client);
}

static void test_terminal_ends_an_execution_stream(void **state)
{
    (void)state;
    /* In the replay. */
    gateway_sse_client_t *client = gateway_sse_client_new("exec-1", 0, true, &limits);
    gateway_sse_client_resolve(client, "exec-1");
    gateway_sse_client_connect(client, true, 0);
    uint64_t after;
    gateway_sse_client_next_page(client, &after);
    json_t *events = page(1, 3, "exec-1", "ExecutionCancelled");
    gateway_sse_client_page(client, events, false, true);
    json_decref(events);
    assert_int_equal(gateway_sse_client_state(client), GATEWAY_SSE_ENDING);
    assert_true(gateway_sse_client_readable(client));
    assert_int_equal(offer(client, 4, "exec-1", "PhaseOutput"), GATEWAY_SSE_IGNORED);
    expect_ids(client, "0,1,2,3", GATEWAY_SSE_END);
    gateway_sse_client_destroy(&client);

    /* Live, for every terminal type. */
    const char *terminals[] = {"ExecutionCompleted", "ExecutionFailed", "ExecutionCancelled"};
    for (int i = 0; i < 3; i++) {
        client = gateway_sse_client_new("exec-1", 0, true, &limits);
        gateway_sse_client_resolve(client, "exec-1");
        gateway_sse_client_connect(client, true, 0);
        gateway_sse_client_next_page(client, &after);
        events = page(1, 1, "exec-1", NULL);
        gateway_sse_client_page(client, events, false, false);
        json_decref(events);
        assert_int_equal(offer(client, 2, "exec-1", terminals[i]), GATEWAY_SSE_QUEUED);
        assert_int_equal(gateway_sse_client_state(client), GATEWAY_SSE_ENDING);
        ssize_t end;
        char *text = read_all(client, &end);
        assert_int_equal(end, GATEWAY_SSE_END);
        assert_non_null(strstr(text, "id: 2\ndata: {\"type\":\"terminal\""));
        free(text);
        gateway_sse_client_destroy(&client);
    }

    /* Finished before, and Last-Event-ID is past its terminal frame: connected, end. */
    client = gateway_sse_client_new("exec-1", 3, true, &limits);
    gateway_sse_client_resolve(client, "exec-1");
    gateway_sse_client_connect(client, true, 0);
    gateway_sse_client_next_page(client, &after);
    events = json_array();
    gateway_sse_client_page(client, events, false, true);
    json_decref(events);
    expect_ids(client, "3", GATEWAY_SSE_END);
    gateway_sse_client_destroy(&client);
}

/* An activity stream takes every execution's events and never ends by itself. */
static void test_activity_stream(void **state)
{
    (void)state;
    gateway_sse_client_t *client = gateway_sse_client_new(NULL, 10, false, &limits);
    assert_int_equal(gateway_sse_client_state(client), GATEWAY_SSE_LIVE);
    gateway_sse_client_connect(client, true, 0);
    uint64_t after;
    assert_false(gateway_sse_client_next_page(client, &after));
    assert_int_equal(offer(client, 10, "exec-1", "PhaseOutput"), GATEWAY_SSE_IGNORED);
    assert_int_equal(offer(client, 11, "exec-1", "ExecutionCompleted"), GATEWAY_SSE_QUEUED);
    assert_int_equal(offer(client, 12, "exec-2", "PhaseOutput"), GATEWAY_SSE_QUEUED);
    assert_int_equal(offer(client, 13, NULL, "WorkerJoined"), GATEWAY_SSE_QUEUED);
    assert_int_equal(gateway_sse_client_state(client), GATEWAY_SSE_LIVE);
    expect_ids(client, "10,11,12,13", 0);
    gateway_sse_client_destroy(&client);
}

static void test_overflow_disconnects(void **state)
{
    (void)state;
    gateway_sse_client_t *client = gateway_sse_client_new(NULL, 0, false, &limits);
    gateway_sse_client_connect(client, false, 0);
    gateway_sse_offer_t r = GATEWAY_SSE_QUEUED;
    long long seq = 1;
    for (; seq < 1000 && r == GATEWAY_SSE_QUEUED; seq++)
        r = offer(client, seq, "exec-1", "PhaseOutput");
    assert_int_equal(r, GATEWAY_SSE_OVERFLOW);
    assert_true(seq > 10); /* it took a buffer's worth */
    assert_int_equal(gateway_sse_client_state(client), GATEWAY_SSE_FAILED);
    assert_int_equal(gateway_sse_client_queued(client), 0);
    assert_true(gateway_sse_client_readable(client));
    char buf[64];
    assert_int_equal(gateway_sse_client_read(client, buf, sizeof buf), GATEWAY_SSE_ERROR);
    assert_int_equal(offer(client, seq + 1, "exec-1", "PhaseOutput"), GATEWAY_SSE_IGNORED);
    gateway_sse_client_destroy(&client);

    /* A reader that keeps up never overflows. */
    client = gateway_sse_client_new(NULL, 0, false, &limits);
    gateway_sse_client_connect(client, false, 0);
    for (seq = 1; seq < 2000; seq++) {
        assert_int_equal(offer(client, seq, "exec-1", "PhaseOutput"), GATEWAY_SSE_QUEUED);
        ssize_t end;
        free(read_all(client, &end));
    }
    gateway_sse_client_destroy(&client);
}

static void test_keepalive_only_after_silence(void **state)
{
    (void)state;
    gateway_sse_client_t *client = gateway_sse_client_new(NULL, 0, false, &limits);
    gateway_sse_client_connect(client, false, 0);
    int64_t now = 0;
    /* The connected frame is still queued: no keepalive. */
    assert_false(gateway_sse_client_keepalive(client, INT64_MAX / 2, 100));
    ssize_t end;
    free(read_all(client, &end));
    assert_false(gateway_sse_client_keepalive(client, now, 100)); /* not silent long enough */
    assert_true(gateway_sse_client_keepalive(client, INT64_MAX / 2, 100));
    assert_false(gateway_sse_client_keepalive(client, INT64_MAX / 2, 100)); /* queued once */
    expect_ids(client, "k", 0);
    gateway_sse_client_destroy(&client);
}

/* Until the broker resolves the prefix, every execution it is a prefix of matches. */
static void test_prefix_until_resolved(void **state)
{
    (void)state;
    gateway_sse_client_t *client = gateway_sse_client_new("exec-1", 0, true, &limits);
    assert_false(gateway_sse_client_resolved(client));
    gateway_sse_frame_t *mine = event_frame(1, "exec-12", "PhaseOutput");
    gateway_sse_frame_t *other = event_frame(2, "exec-13", "PhaseOutput");
    gateway_sse_frame_t *unrelated = event_frame(3, "exec-2", "PhaseOutput");
    assert_true(gateway_sse_client_matches(client, mine));
    assert_true(gateway_sse_client_matches(client, other));
    assert_false(gateway_sse_client_matches(client, unrelated));
    uint64_t after;
    gateway_sse_client_next_page(client, &after);
    assert_int_equal(gateway_sse_client_offer(client, mine), GATEWAY_SSE_HELD);
    assert_int_equal(gateway_sse_client_offer(client, other), GATEWAY_SSE_HELD);
    assert_int_equal(gateway_sse_client_resolve(client, "exec-12"), 0);
    assert_true(gateway_sse_client_resolved(client));
    assert_string_equal(gateway_sse_client_execution_id(client), "exec-12");
    assert_false(gateway_sse_client_matches(client, other));
    gateway_sse_client_connect(client, true, 0);
    json_t *events = json_array();
    gateway_sse_client_page(client, events, false, false);
    json_decref(events);
    expect_ids(client, "0,1", 0); /* the other execution's held event is not released */
    gateway_sse_frame_unref(&mine);
    gateway_sse_frame_unref(&other);
    gateway_sse_frame_unref(&unrelated);
    gateway_sse_client_destroy(&client);
}

/* The gateway stops: every stream ends cleanly at once, whatever is still queued. */
static void test_finish_ends_at_once(void **state)
{
    (void)state;
    gateway_sse_client_t *client = gateway_sse_client_new(NULL, 0, false, &limits);
    gateway_sse_client_connect(client, false, 0);
    assert_int_equal(offer(client, 1, "exec-1", "PhaseOutput"), GATEWAY_SSE_QUEUED);
    gateway_sse_client_finish(client);
    assert_int_equal(gateway_sse_client_state(client), GATEWAY_SSE_ENDING);
    assert_int_equal(gateway_sse_client_queued(client), 0);
    char buf[64];
    assert_int_equal(gateway_sse_client_read(client, buf, sizeof buf), GATEWAY_SSE_END);
    gateway_sse_client_destroy(&client);
}

static void test_bad_page_fails_the_client(void **state)
{
    (void)state;
    gateway_sse_client_t *client = gateway_sse_client_new("exec-1", 0, true, &limits);
    gateway_sse_client_connect(client, true, 0);
    uint64_t after;
    gateway_sse_client_next_page(client, &after);
    json_t *events = json_loads("[{\"seq\":\"x\"}]", 0, NULL);
    assert_int_equal(gateway_sse_client_page(client, events, false, false), -1);
    json_decref(events);
    assert_int_equal(gateway_sse_client_state(client), GATEWAY_SSE_FAILED);
    gateway_sse_client_destroy(&client);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_event_frame_text),
        cmocka_unit_test(test_shared_frame_reads_the_same_everywhere),
        cmocka_unit_test(test_bad_events_are_refused),
        cmocka_unit_test(test_connected_and_keepalive_frames),
        cmocka_unit_test(test_replay_then_live_without_repeats),
        cmocka_unit_test(test_resume_after_last_event_id),
        cmocka_unit_test(test_paging_follows_the_reader),
        cmocka_unit_test(test_dropped_holds_cost_one_more_round),
        cmocka_unit_test(test_terminal_ends_an_execution_stream),
        cmocka_unit_test(test_activity_stream),
        cmocka_unit_test(test_overflow_disconnects),
        cmocka_unit_test(test_keepalive_only_after_silence),
        cmocka_unit_test(test_prefix_until_resolved),
        cmocka_unit_test(test_finish_ends_at_once),
        cmocka_unit_test(test_bad_page_fails_the_client),
        cmocka_unit_test(test_original_clients_read_the_originals_names),
    };
    return cmocka_run_group_tests_name("gateway_sse", tests, NULL, NULL);
}
