/* Status reads from the gateway's local view, over real HTTP, in-process, against a
 * fake broker that publishes events carrying `status` and counts the execution.status
 * requests it gets: a read the view has costs no broker round trip; a prefix, another
 * workflow or an unknown id goes to the broker; so does a read right after a start, a
 * read after this gateway's control op until the op's event arrives, a read after a gap
 * in seq, and every read while the events connection is down. */
#include "gateway/gateway.h"
#include "proto/msg.h"
#include "tests/support/fake_broker.h"
#include "tests/support/gateway_harness.h"
#include "tests/support/http.h"
#include "tests/support/wait.h"

#include <czmq.h>
#include <curl/curl.h>
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

/* ---- fake broker (tests/support/fake_broker.h) holding one execution's truth ---- */

typedef struct {
    fake_broker_t *fake;
    pthread_mutex_t lock; /* guards everything below */
    long long next_seq;
    char state[32];       /* what execution.status answers (the truth) */
} status_broker_t;

static json_t *status_object(const char *id, const char *workflow, const char *state)
{
    return json_pack("{s:s, s:s, s:s, s:n, s:i, s:i, s:s, s:n, s:n}", "execution_id", id,
                     "workflow_id", workflow, "status", state, "current_phase",
                     "completed_phases", 0, "total_phases", 2, "started_at",
                     "2026-11-28T14:56:19.123456Z", "completed_at", "error");
}

/* execution.status → the current truth (an id "exec-missing" → 404); controls → 200
 * with the state they lead to (no event published: the test publishes it); start →
 * exec-new; health → up (a canned reply). */
static void status_broker_handle(fake_broker_t *fb, const fake_request_t *request, void *user)
{
    status_broker_t *sb = user;
    const char *op = request->op;
    json_t *args = request->args;
    const char *execution_id = json_string_value(json_object_get(args, "execution_id"));
    pthread_mutex_lock(&sb->lock);
    if (!strcmp(op, "execution.status")) {
        if (!strcmp(execution_id, "exec-missing"))
            fake_broker_answer(fb, request, 404,
                               json_pack("{s:s}", "detail", "Execution not found: exec-missing"));
        else
            fake_broker_answer(fb, request, 200,
                               status_object(execution_id,
                                             json_string_value(json_object_get(args, "workflow_id")),
                                             sb->state));
    } else if (!strcmp(op, "events.replay")) {
        /* Only how far the log goes matters here (the view's probe). */
        json_int_t after = json_integer_value(json_object_get(args, "after_seq"));
        json_int_t last = sb->next_seq - 1 > after ? after + 1 : after;
        fake_broker_answer(fb, request, 200,
                           json_pack("{s:[], s:I, s:b, s:b, s:n}", "events", "last_seq", last,
                                     "more", last > after, "terminal", 0, "execution_id"));
    } else if (!strcmp(op, "execution.start")) {
        fake_broker_answer(fb, request, 200,
                           json_pack("{s:s, s:O, s:s, s:s}", "execution_id", "exec-new",
                                     "workflow_id", json_object_get(args, "workflow_id"),
                                     "status", "started", "message",
                                     "Workflow execution started"));
    } else if (!strcmp(op, "execution.pause") || !strcmp(op, "execution.cancel")) {
        snprintf(sb->state, sizeof sb->state, "%s",
                 !strcmp(op, "execution.pause") ? "paused" : "cancelled");
        /* The reply resolves the prefix the way the broker would, in these tests. */
        fake_broker_answer(fb, request, 200,
                           json_pack("{s:b, s:s, s:s, s:s, s:n}", "success", 1, "execution_id",
                                     "exec-aaa", "state", sb->state, "message", "done", "error"));
    } else {
        fake_broker_answer(fb, request, 400,
                           json_pack("{s:s}", "detail", "unexpected operation"));
    }
    pthread_mutex_unlock(&sb->lock);
}

static status_broker_t *status_broker_start(void)
{
    status_broker_t *sb = calloc(1, sizeof *sb);
    pthread_mutex_init(&sb->lock, NULL);
    sb->next_seq = 1;
    snprintf(sb->state, sizeof sb->state, "running");
    sb->fake = fake_broker_start(&(fake_broker_config_t){
        .handler = status_broker_handle, .user = sb, .poll_ms = 1});
    fake_broker_set_healthy(sb->fake, 1);
    return sb;
}

static void status_broker_stop(status_broker_t **sb_p)
{
    status_broker_t *sb = *sb_p;
    fake_broker_stop(&sb->fake);
    pthread_mutex_destroy(&sb->lock);
    free(sb);
    *sb_p = NULL;
}

/* Publishes the next event (status NULL: none; stolen). skip > 0 leaves that many seqs
 * out first (a gap the gateway sees). */
static void publish(status_broker_t *sb, const char *execution_id, json_t *status, int skip)
{
    pthread_mutex_lock(&sb->lock);
    sb->next_seq += skip;
    json_t *event = json_pack("{s:I, s:I, s:s?, s:s, s:o}", "seq", (json_int_t)sb->next_seq++,
                              "time", (json_int_t)zclock_time() * 1000, "execution_id",
                              execution_id, "type", execution_id ? "PhaseStarted" : "Warmup",
                              "data", json_object());
    if (status)
        json_object_set_new(event, "status", status);
    fake_broker_publish(sb->fake, event);
    json_decref(event);
    pthread_mutex_unlock(&sb->lock);
}

static int status_requests(status_broker_t *sb)
{
    return fake_broker_requests(sb->fake, "execution.status");
}

/* ---- the gateway under test (tests/support/gateway_harness.h) ---- */

/* How long a wait for the gateway's state may take: generous, for a loaded machine. */
#define WAIT_MS 10000

typedef struct {
    status_broker_t *broker;
    gateway_harness_t *gw;
} fixture_t;

/* ---- a SUB that finishes connecting before its monitor watches ----
 * zmq reports nothing of a socket to a monitor attached after the fact. With
 * connect_first set, zmq_connect remembers the sockets it connected, and a monitor
 * attached to one of them waits until connect_first's PUB has seen that connection's
 * handshake: the order a loaded machine sometimes picks, made certain. */

static fake_broker_t *connect_first;
static void *connected[4];
static size_t connected_count;

int zmq_connect(void *socket, const char *endpoint)
{
    static int (*real)(void *, const char *);
    if (!real)
        *(void **)&real = dlsym(RTLD_NEXT, "zmq_connect");
    if (connect_first && connected_count < sizeof connected / sizeof *connected)
        connected[connected_count++] = socket;
    return real(socket, endpoint);
}

int zmq_socket_monitor(void *socket, const char *endpoint, int events)
{
    static int (*real)(void *, const char *, int);
    if (!real)
        *(void **)&real = dlsym(RTLD_NEXT, "zmq_socket_monitor");
    bool was_connected = false;
    for (size_t i = 0; i < connected_count; i++)
        was_connected |= connected[i] == socket;
    if (connect_first && endpoint && was_connected) {
        WAIT_FOR(fake_broker_events_handshakes(connect_first) > 0, WAIT_MS);
        assert_true(fake_broker_events_handshakes(connect_first) > 0);
    }
    return real(socket, endpoint, events);
}

static int start(void **state, bool sub_connects_first)
{
    fixture_t *f = calloc(1, sizeof *f);
    f->broker = status_broker_start();
    gateway_config_t config = {
        .http = "127.0.0.1:0",
        .broker = fake_broker_endpoint(f->broker->fake),
        .events = fake_broker_events_endpoint(f->broker->fake),
        .request_timeout_ms = 1000,
        .health_timeout_ms = 500,
        .max_connections = 64,
    };
    connect_first = sub_connects_first ? f->broker->fake : NULL;
    connected_count = 0;
    gateway_harness_t *h = f->gw = gateway_harness_start(&config);
    connect_first = NULL;
    /* Until the DEALER and the SUB are connected, requests get 503 and events are lost. */
    (void)gateway_harness_wait_healthy(h, 3000);
    for (wait_t w = wait_begin(WAIT_MS); gateway_harness_stats(h).events == 0 && wait_next(&w);)
        publish(f->broker, NULL, NULL, 0);
    assert_true(gateway_harness_stats(h).events > 0);
    *state = f;
    return 0;
}

static int setup(void **state)
{
    return start(state, false);
}

static int setup_sub_connects_first(void **state)
{
    return start(state, true);
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    gateway_harness_stop(&f->gw);
    status_broker_stop(&f->broker);
    free(f);
    return 0;
}

/* Publishes exec-aaa's status (workflow wf) and waits until the view has applied it.
 * Counting status updates, not events: a late heartbeat event from the setup must not
 * pass for this one. */
static void publish_status(fixture_t *f, const char *state, int skip)
{
    uint64_t updates = gateway_harness_stats(f->gw).view_updates;
    publish(f->broker, "exec-aaa", status_object("exec-aaa", "wf", state), skip);
    WAIT_FOR(gateway_harness_stats(f->gw).view_updates != updates, WAIT_MS);
    assert_true(gateway_harness_stats(f->gw).view_updates > updates);
}

/* Waits until the view has started over since it had counted `clears`. */
static void wait_for_clear(fixture_t *f, uint64_t clears)
{
    WAIT_FOR(gateway_harness_stats(f->gw).view_clears != clears, WAIT_MS);
    assert_true(gateway_harness_stats(f->gw).view_clears > clears);
}

/* GETs the status of id in workflow wf: returns the "status" field ("" if none) and
 * says whether the broker was asked. */
static const char *get_status(fixture_t *f, const char *wf, const char *id, long want_http,
                              bool *asked_broker)
{
    static char buf[64];
    int before = status_requests(f->broker);
    http_response_t r;
    assert_int_equal(http_get(&r, "%s/workflows/%s/executions/%s", gateway_harness_url(f->gw), wf, id), 0);
    assert_int_equal(r.status, want_http);
    assert_string_equal(r.content_type, "application/json");
    const char *state = json_string_value(json_object_get(r.json, "status"));
    snprintf(buf, sizeof buf, "%s", state ? state : "");
    http_response_clear(&r);
    *asked_broker = status_requests(f->broker) > before;
    return buf;
}

static void test_view_answers_without_the_broker(void **state)
{
    fixture_t *f = *state;
    publish_status(f, "running", 0);
    bool asked;
    http_response_t r;
    assert_int_equal(http_get(&r, "%s/workflows/wf/executions/exec-aaa", gateway_harness_url(f->gw)), 0);
    assert_int_equal(r.status, 200);
    json_t *want = status_object("exec-aaa", "wf", "running");
    assert_true(json_equal(r.json, want));
    json_decref(want);
    http_response_clear(&r);
    assert_int_equal(status_requests(f->broker), 0);
    for (int i = 0; i < 20; i++)
        assert_string_equal(get_status(f, "wf", "exec-aaa", 200, &asked), "running");
    assert_int_equal(status_requests(f->broker), 0);
    assert_int_equal(gateway_harness_stats(f->gw).view_hits, 21);
    /* A prefix, another workflow, an unknown id: the broker's answers. */
    assert_string_equal(get_status(f, "wf", "exec-a", 200, &asked), "running");
    assert_true(asked);
    assert_string_equal(get_status(f, "other", "exec-aaa", 200, &asked), "running");
    assert_true(asked);
    assert_string_equal(get_status(f, "wf", "exec-missing", 404, &asked), "");
    assert_true(asked);
    assert_int_equal(status_requests(f->broker), 3);
}

/* The view serves once the events connection is up, however early zmq finished the
 * connect (a CONNECTED the gateway never hears of would keep it from ever serving). */
static void test_view_serves_when_the_sub_connected_first(void **state)
{
    fixture_t *f = *state;
    publish_status(f, "running", 0);
    bool asked;
    assert_string_equal(get_status(f, "wf", "exec-aaa", 200, &asked), "running");
    assert_false(asked);
}

/* Rule 1: right after a start the view may not have it yet; the broker does. */
static void test_read_right_after_start(void **state)
{
    fixture_t *f = *state;
    http_response_t r;
    assert_int_equal(http_post(&r, "{}", "%s/workflows/wf/execute", gateway_harness_url(f->gw)), 0);
    assert_int_equal(r.status, 200);
    http_response_clear(&r);
    bool asked;
    assert_string_equal(get_status(f, "wf", "exec-new", 200, &asked), "running");
    assert_true(asked);
}

/* Rule 2: after this gateway's pause is answered, the view's older "running" is not
 * served; the pause's own event makes the view good again. */
static void test_read_your_writes_after_control(void **state)
{
    fixture_t *f = *state;
    publish_status(f, "running", 0);
    bool asked;
    assert_string_equal(get_status(f, "wf", "exec-aaa", 200, &asked), "running");
    assert_false(asked);
    http_response_t r;
    assert_int_equal(http_post(&r, "{}", "%s/executions/exec-a/pause", gateway_harness_url(f->gw)), 0);
    assert_int_equal(r.status, 200);
    http_response_clear(&r);
    assert_string_equal(get_status(f, "wf", "exec-aaa", 200, &asked), "paused");
    assert_true(asked);
    /* An event committed before the pause, arriving late, does not bring it back. */
    publish_status(f, "running", 0);
    assert_string_equal(get_status(f, "wf", "exec-aaa", 200, &asked), "paused");
    assert_true(asked);
    publish_status(f, "paused", 0);
    assert_string_equal(get_status(f, "wf", "exec-aaa", 200, &asked), "paused");
    assert_false(asked);
}

/* Rule 3: a gap in seq → the view may have missed updates: back to the broker until a
 * fresh event comes. */
static void test_gap_falls_back_to_the_broker(void **state)
{
    fixture_t *f = *state;
    publish_status(f, "running", 0);
    bool asked;
    get_status(f, "wf", "exec-aaa", 200, &asked);
    assert_false(asked);
    uint64_t clears = gateway_harness_stats(f->gw).view_clears;
    publish(f->broker, "exec-bbb", status_object("exec-bbb", "wf", "running"), 2);
    wait_for_clear(f, clears);
    get_status(f, "wf", "exec-aaa", 200, &asked);
    assert_true(asked);
    get_status(f, "wf", "exec-bbb", 200, &asked); /* the event after the gap is whole */
    assert_false(asked);
    publish_status(f, "running", 0);
    get_status(f, "wf", "exec-aaa", 200, &asked);
    assert_false(asked);
}

/* The last event lost by PUB shows no gap (nothing follows it): the view's probe of
 * the broker's log finds it missing and the view starts over. */
static void test_lost_last_event_is_found_by_the_probe(void **state)
{
    fixture_t *f = *state;
    publish_status(f, "running", 0);
    bool asked;
    get_status(f, "wf", "exec-aaa", 200, &asked);
    assert_false(asked);
    uint64_t clears = gateway_harness_stats(f->gw).view_clears;
    pthread_mutex_lock(&f->broker->lock);
    f->broker->next_seq++; /* committed, never published */
    snprintf(f->broker->state, sizeof f->broker->state, "completed");
    pthread_mutex_unlock(&f->broker->lock);
    wait_for_clear(f, clears); /* two probes, VIEW_PROBE_MS apart, at the least */
    assert_string_equal(get_status(f, "wf", "exec-aaa", 200, &asked), "completed");
    assert_true(asked);
}

/* Rule 4: the events connection down → nothing is served from the view. */
static void test_events_down_falls_back_to_the_broker(void **state)
{
    fixture_t *f = *state;
    publish_status(f, "running", 0);
    bool asked;
    get_status(f, "wf", "exec-aaa", 200, &asked);
    assert_false(asked);
    uint64_t clears = gateway_harness_stats(f->gw).view_clears;
    fake_broker_close_events(f->broker->fake);
    wait_for_clear(f, clears);
    get_status(f, "wf", "exec-aaa", 200, &asked);
    assert_true(asked);
    assert_int_equal(gateway_harness_stats(f->gw).view_entries, 0);
}

int main(void)
{
    zsys_handler_set(NULL);
    zsys_init();
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_view_answers_without_the_broker, setup, teardown),
        cmocka_unit_test_setup_teardown(test_view_serves_when_the_sub_connected_first,
                                        setup_sub_connects_first, teardown),
        cmocka_unit_test_setup_teardown(test_read_right_after_start, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_your_writes_after_control, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gap_falls_back_to_the_broker, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lost_last_event_is_found_by_the_probe, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_events_down_falls_back_to_the_broker, setup,
                                        teardown),
    };
    int failed = cmocka_run_group_tests_name("gateway_view_http", tests, NULL, NULL);
    curl_global_cleanup();
    return failed;
}
