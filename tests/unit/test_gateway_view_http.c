/* Status reads from the gateway's local view, over real HTTP, in-process, against a
 * fake broker that publishes events carrying `status` and counts the execution.status
 * requests it gets: a read the view has costs no broker round trip; a prefix, another
 * workflow or an unknown id goes to the broker; so does a read right after a start, a
 * read after this gateway's control op until the op's event arrives, a read after a gap
 * in seq, and every read while the events connection is down. */
#include "gateway/gateway.h"
#include "proto/msg.h"
#include "tests/support/http.h"

#include <czmq.h>
#include <curl/curl.h>
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

/* ---- fake broker ---- */

typedef struct {
    zsock_t *router, *pub;
    char endpoint[128], events_endpoint[128];
    pthread_t thread;
    atomic_int stop;
    atomic_int drop_pub;  /* close the PUB socket (the events connection goes down) */
    pthread_mutex_t lock; /* guards everything below */
    json_t *outbox;       /* events to publish */
    long long next_seq;
    char state[32];       /* what execution.status answers (the truth) */
    int status_requests;  /* execution.status requests received */
} fake_broker_t;

static json_t *status_object(const char *id, const char *workflow, const char *state)
{
    return json_pack("{s:s, s:s, s:s, s:n, s:i, s:i, s:s, s:n, s:n}", "execution_id", id,
                     "workflow_id", workflow, "status", state, "current_phase",
                     "completed_phases", 0, "total_phases", 2, "started_at",
                     "2026-11-28T14:56:19.123456Z", "completed_at", "error");
}

static void send_reply(fake_broker_t *fb, const unsigned char *identity, size_t identity_len,
                       json_int_t id, int status, json_t *body)
{
    syn_msg_t *reply = syn_msg_new_with(
        SYN_MSG_REPLY, json_pack("{s:I, s:i, s:o}", "id", id, "status", status, "body", body));
    if (syn_msg_send(zsock_resolve(fb->router), identity, identity_len, reply) != 0)
        fprintf(stderr, "fake broker: send failed: %s\n", strerror(errno));
    syn_msg_destroy(&reply);
}

/* execution.status → the current truth (an id "exec-missing" → 404); controls → 200
 * with the state they lead to (no event published: the test publishes it); start →
 * exec-new; health → up. */
static void fake_handle(fake_broker_t *fb, const unsigned char *identity, size_t identity_len,
                        syn_msg_t *msg)
{
    json_t *fields = syn_msg_fields(msg);
    json_int_t id = json_integer_value(json_object_get(fields, "id"));
    const char *op = json_string_value(json_object_get(fields, "op"));
    json_t *args = json_object_get(fields, "args");
    const char *execution_id = json_string_value(json_object_get(args, "execution_id"));
    pthread_mutex_lock(&fb->lock);
    if (!strcmp(op, "health")) {
        send_reply(fb, identity, identity_len, id, 200,
                   json_pack("{s:s, s:s, s:i}", "status", "ok", "broker", "up", "workers", 1));
    } else if (!strcmp(op, "execution.status")) {
        fb->status_requests++;
        if (!strcmp(execution_id, "exec-missing"))
            send_reply(fb, identity, identity_len, id, 404,
                       json_pack("{s:s}", "detail", "Execution not found: exec-missing"));
        else
            send_reply(fb, identity, identity_len, id, 200,
                       status_object(execution_id,
                                     json_string_value(json_object_get(args, "workflow_id")),
                                     fb->state));
    } else if (!strcmp(op, "events.replay")) {
        /* Only how far the log goes matters here (the view's probe). */
        json_int_t after = json_integer_value(json_object_get(args, "after_seq"));
        json_int_t last = fb->next_seq - 1 > after ? after + 1 : after;
        send_reply(fb, identity, identity_len, id, 200,
                   json_pack("{s:[], s:I, s:b, s:b, s:n}", "events", "last_seq", last, "more",
                             last > after, "terminal", 0, "execution_id"));
    } else if (!strcmp(op, "execution.start")) {
        send_reply(fb, identity, identity_len, id, 200,
                   json_pack("{s:s, s:O, s:s, s:s}", "execution_id", "exec-new", "workflow_id",
                             json_object_get(args, "workflow_id"), "status", "started",
                             "message", "Workflow execution started"));
    } else if (!strcmp(op, "execution.pause") || !strcmp(op, "execution.cancel")) {
        snprintf(fb->state, sizeof fb->state, "%s",
                 !strcmp(op, "execution.pause") ? "paused" : "cancelled");
        /* The reply resolves the prefix the way the broker would, in these tests. */
        send_reply(fb, identity, identity_len, id, 200,
                   json_pack("{s:b, s:s, s:s, s:s, s:n}", "success", 1, "execution_id",
                             "exec-aaa", "state", fb->state, "message", "done", "error"));
    } else {
        send_reply(fb, identity, identity_len, id, 400,
                   json_pack("{s:s}", "detail", "unexpected operation"));
    }
    pthread_mutex_unlock(&fb->lock);
}

static void *fake_broker_run(void *arg)
{
    fake_broker_t *fb = arg;
    void *router = zsock_resolve(fb->router);
    while (!atomic_load(&fb->stop)) {
        zmq_pollitem_t item = {router, 0, ZMQ_POLLIN, 0};
        zmq_poll(&item, 1, 1);
        for (;;) {
            unsigned char identity[256];
            size_t identity_len = sizeof identity;
            syn_msg_t *msg = NULL;
            char err[256];
            int rc = syn_msg_recv(router, &msg, identity, &identity_len, err, sizeof err);
            if (rc == -1)
                break;
            if (rc == 0)
                fake_handle(fb, identity, identity_len, msg);
            syn_msg_destroy(&msg);
        }
        if (atomic_load(&fb->drop_pub))
            zsock_destroy(&fb->pub);
        pthread_mutex_lock(&fb->lock);
        size_t i;
        json_t *event;
        json_array_foreach(fb->outbox, i, event) {
            if (!fb->pub)
                break;
            const char *topic = json_string_value(json_object_get(event, "execution_id"));
            syn_msg_t *msg = syn_msg_new_with(SYN_MSG_EVENT, json_incref(event));
            if (syn_msg_send(zsock_resolve(fb->pub), topic ? topic : "-",
                             topic ? strlen(topic) : 1, msg) != 0)
                fprintf(stderr, "fake broker: publish failed: %s\n", strerror(errno));
            syn_msg_destroy(&msg);
        }
        json_array_clear(fb->outbox);
        pthread_mutex_unlock(&fb->lock);
    }
    return NULL;
}

static fake_broker_t *fake_broker_start(void)
{
    fake_broker_t *fb = calloc(1, sizeof *fb);
    pthread_mutex_init(&fb->lock, NULL);
    fb->outbox = json_array();
    fb->next_seq = 1;
    snprintf(fb->state, sizeof fb->state, "running");
    fb->router = zsock_new(ZMQ_ROUTER);
    zsock_set_router_mandatory(fb->router, 1);
    zsock_set_linger(fb->router, 0);
    assert_true(zsock_bind(fb->router, "tcp://127.0.0.1:*") > 0);
    snprintf(fb->endpoint, sizeof fb->endpoint, "%s", zsock_endpoint(fb->router));
    fb->pub = zsock_new(ZMQ_PUB);
    zsock_set_linger(fb->pub, 0);
    assert_true(zsock_bind(fb->pub, "tcp://127.0.0.1:*") > 0);
    snprintf(fb->events_endpoint, sizeof fb->events_endpoint, "%s", zsock_endpoint(fb->pub));
    assert_int_equal(pthread_create(&fb->thread, NULL, fake_broker_run, fb), 0);
    return fb;
}

static void fake_broker_stop(fake_broker_t **fb_p)
{
    fake_broker_t *fb = *fb_p;
    atomic_store(&fb->stop, 1);
    pthread_join(fb->thread, NULL);
    zsock_destroy(&fb->router);
    zsock_destroy(&fb->pub);
    json_decref(fb->outbox);
    pthread_mutex_destroy(&fb->lock);
    free(fb);
    *fb_p = NULL;
}

/* Publishes the next event (status NULL: none; stolen). skip > 0 leaves that many seqs
 * out first (a gap the gateway sees). */
static void publish(fake_broker_t *fb, const char *execution_id, json_t *status, int skip)
{
    pthread_mutex_lock(&fb->lock);
    fb->next_seq += skip;
    json_t *event = json_pack("{s:I, s:I, s:s?, s:s, s:o}", "seq", (json_int_t)fb->next_seq++,
                              "time", (json_int_t)zclock_time() * 1000, "execution_id",
                              execution_id, "type", execution_id ? "PhaseStarted" : "Warmup",
                              "data", json_object());
    if (status)
        json_object_set_new(event, "status", status);
    json_array_append_new(fb->outbox, event);
    pthread_mutex_unlock(&fb->lock);
}

static int status_requests(fake_broker_t *fb)
{
    pthread_mutex_lock(&fb->lock);
    int n = fb->status_requests;
    pthread_mutex_unlock(&fb->lock);
    return n;
}

/* ---- the gateway under test, in its own thread ---- */

typedef struct {
    gateway_t *gateway;
    pthread_t thread;
    atomic_int stop;
    pthread_mutex_t lock;
    gateway_stats_t stats;
    atomic_long turns;
    char url[64];
} harness_t;

static void *gateway_thread(void *arg)
{
    harness_t *h = arg;
    while (!atomic_load(&h->stop)) {
        if (gateway_poll(h->gateway, 10) != 0)
            break;
        pthread_mutex_lock(&h->lock);
        gateway_stats(h->gateway, &h->stats);
        pthread_mutex_unlock(&h->lock);
        atomic_fetch_add(&h->turns, 1);
    }
    return NULL;
}

static gateway_stats_t harness_stats(harness_t *h)
{
    long seen = atomic_load(&h->turns);
    for (int i = 0; i < 1000 && atomic_load(&h->turns) < seen + 2; i++)
        usleep(1000);
    gateway_stats_t stats;
    pthread_mutex_lock(&h->lock);
    stats = h->stats;
    pthread_mutex_unlock(&h->lock);
    return stats;
}

typedef struct {
    fake_broker_t *broker;
    harness_t *gw;
} fixture_t;

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof *f);
    f->broker = fake_broker_start();
    harness_t *h = f->gw = calloc(1, sizeof *h);
    pthread_mutex_init(&h->lock, NULL);
    gateway_config_t config = {
        .http = "127.0.0.1:0",
        .broker = f->broker->endpoint,
        .events = f->broker->events_endpoint,
        .request_timeout_ms = 1000,
        .health_timeout_ms = 500,
        .max_connections = 64,
    };
    char err[256];
    h->gateway = gateway_new(&config, err, sizeof err);
    if (!h->gateway)
        fail_msg("gateway_new: %s", err);
    snprintf(h->url, sizeof h->url, "http://127.0.0.1:%d", gateway_port(h->gateway));
    assert_int_equal(pthread_create(&h->thread, NULL, gateway_thread, h), 0);
    /* Until the DEALER and the SUB are connected, requests get 503 and events are lost. */
    for (int i = 0; i < 300; i++) {
        http_response_t r;
        int rc = http_get(&r, "%s/health", h->url);
        long status = r.status;
        http_response_clear(&r);
        if (rc == 0 && status == 200)
            break;
        usleep(10000);
    }
    for (int i = 0; i < 300 && harness_stats(h).events == 0; i++) {
        publish(f->broker, NULL, NULL, 0);
        usleep(10000);
    }
    assert_true(harness_stats(h).events > 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    harness_t *h = f->gw;
    atomic_store(&h->stop, 1);
    pthread_join(h->thread, NULL);
    gateway_destroy(&h->gateway);
    pthread_mutex_destroy(&h->lock);
    free(h);
    fake_broker_stop(&f->broker);
    free(f);
    return 0;
}

/* Publishes exec-aaa's status (workflow wf) and waits until the view has it. */
static void publish_status(fixture_t *f, const char *state, int skip)
{
    uint64_t updates = harness_stats(f->gw).events;
    publish(f->broker, "exec-aaa", status_object("exec-aaa", "wf", state), skip);
    for (int i = 0; i < 500 && harness_stats(f->gw).events == updates; i++)
        usleep(1000);
    assert_true(harness_stats(f->gw).events > updates);
}

/* GETs the status of id in workflow wf: returns the "status" field ("" if none) and
 * says whether the broker was asked. */
static const char *get_status(fixture_t *f, const char *wf, const char *id, long want_http,
                              bool *asked_broker)
{
    static char buf[64];
    int before = status_requests(f->broker);
    http_response_t r;
    assert_int_equal(http_get(&r, "%s/workflows/%s/executions/%s", f->gw->url, wf, id), 0);
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
    assert_int_equal(http_get(&r, "%s/workflows/wf/executions/exec-aaa", f->gw->url), 0);
    assert_int_equal(r.status, 200);
    json_t *want = status_object("exec-aaa", "wf", "running");
    assert_true(json_equal(r.json, want));
    json_decref(want);
    http_response_clear(&r);
    assert_int_equal(status_requests(f->broker), 0);
    for (int i = 0; i < 20; i++)
        assert_string_equal(get_status(f, "wf", "exec-aaa", 200, &asked), "running");
    assert_int_equal(status_requests(f->broker), 0);
    assert_int_equal(harness_stats(f->gw).view_hits, 21);
    /* A prefix, another workflow, an unknown id: the broker's answers. */
    assert_string_equal(get_status(f, "wf", "exec-a", 200, &asked), "running");
    assert_true(asked);
    assert_string_equal(get_status(f, "other", "exec-aaa", 200, &asked), "running");
    assert_true(asked);
    assert_string_equal(get_status(f, "wf", "exec-missing", 404, &asked), "");
    assert_true(asked);
    assert_int_equal(status_requests(f->broker), 3);
}

/* Rule 1: right after a start the view may not have it yet; the broker does. */
static void test_read_right_after_start(void **state)
{
    fixture_t *f = *state;
    http_response_t r;
    assert_int_equal(http_post(&r, "{}", "%s/workflows/wf/execute", f->gw->url), 0);
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
    assert_int_equal(http_post(&r, "{}", "%s/executions/exec-a/pause", f->gw->url), 0);
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
    uint64_t clears = harness_stats(f->gw).view_clears;
    publish(f->broker, "exec-bbb", status_object("exec-bbb", "wf", "running"), 2);
    for (int i = 0; i < 500 && harness_stats(f->gw).view_clears == clears; i++)
        usleep(1000);
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
    uint64_t clears = harness_stats(f->gw).view_clears;
    pthread_mutex_lock(&f->broker->lock);
    f->broker->next_seq++; /* committed, never published */
    snprintf(f->broker->state, sizeof f->broker->state, "completed");
    pthread_mutex_unlock(&f->broker->lock);
    for (int i = 0; i < 5000 && harness_stats(f->gw).view_clears == clears; i++)
        usleep(1000);
    assert_true(harness_stats(f->gw).view_clears > clears);
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
    uint64_t clears = harness_stats(f->gw).view_clears;
    atomic_store(&f->broker->drop_pub, 1);
    for (int i = 0; i < 2000 && harness_stats(f->gw).view_clears == clears; i++)
        usleep(1000);
    assert_true(harness_stats(f->gw).view_clears > clears);
    get_status(f, "wf", "exec-aaa", 200, &asked);
    assert_true(asked);
    assert_int_equal(harness_stats(f->gw).view_entries, 0);
}

int main(void)
{
    zsys_handler_set(NULL);
    zsys_init();
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_view_answers_without_the_broker, setup, teardown),
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
