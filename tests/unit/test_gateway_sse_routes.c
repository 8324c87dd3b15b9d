/* The SSE routes' decisions alone (gateway/sse_routes.h): what counts as a replay page,
 * when streams must read the log again, and a gap on the live feed filled from the
 * broker's log through the broker link (a bare ROUTER plays the broker), or the
 * streams failed when the broker cannot be asked. The HTTP side of streams is in
 * test_gateway_sse_http. */
#include "common/clock.h"
#include "gateway/sse_routes.h"
#include "proto/msg.h"
#include "tests/support/wait.h"

#include <czmq.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#define WAIT_MS 5000

static void test_page_valid(void **state)
{
    (void)state;
    json_t *page = json_pack("{s:[], s:b}", "events", "more", 0);
    assert_true(gateway_sse_page_valid(page));
    json_object_set_new(page, "more", json_integer(1));
    assert_false(gateway_sse_page_valid(page));
    json_decref(page);
    page = json_pack("{s:{}, s:b}", "events", "more", 1);
    assert_false(gateway_sse_page_valid(page));
    json_decref(page);
    page = json_pack("{s:b}", "more", 1);
    assert_false(gateway_sse_page_valid(page));
    json_decref(page);
    assert_false(gateway_sse_page_valid(NULL));
}

/* The original's CLI streams under /api/v1 and on /watch/... (also without the prefix,
 * when told to send none): those streams take the original's event names. */
static void test_original_streams(void **state)
{
    (void)state;
    assert_true(gateway_sse_original_stream("/api/v1/sse/executions/exec-1"));
    assert_true(gateway_sse_original_stream("/api/v1/sse/activity"));
    assert_true(gateway_sse_original_stream("/api/v1/watch/activity"));
    assert_true(gateway_sse_original_stream("/watch/executions/exec-1"));
    assert_true(gateway_sse_original_stream("/watch/activity"));
    assert_false(gateway_sse_original_stream("/sse/executions/exec-1"));
    assert_false(gateway_sse_original_stream("/sse/activity"));
    assert_false(gateway_sse_original_stream("/api/v10/sse/activity"));
}

static void test_catch_up_due(void **state)
{
    (void)state;
    /* Nothing live seen yet and the log has events: read it. */
    assert_true(gateway_sse_catch_up_due(false, 0, 5, 0));
    /* The live feed brought as much as the log has: nothing missed. */
    assert_false(gateway_sse_catch_up_due(true, 5, 5, 0));
    assert_false(gateway_sse_catch_up_due(true, 7, 5, 0));
    /* The log went further than the feed. */
    assert_true(gateway_sse_catch_up_due(true, 4, 5, 0));
    /* Once per such seq. */
    assert_false(gateway_sse_catch_up_due(true, 4, 5, 5));
    assert_true(gateway_sse_catch_up_due(true, 4, 6, 5));
    assert_false(gateway_sse_catch_up_due(false, 0, 0, 0));
}

static gateway_sse_frame_t *frame(long long seq)
{
    json_t *event = json_pack("{s:I, s:i, s:s, s:s, s:{}}", "seq", (json_int_t)seq, "time", 0,
                              "execution_id", "e-1", "type", "PhaseOutput", "data");
    char err[128];
    gateway_sse_frame_t *f = gateway_sse_frame_event(event, err, sizeof err);
    json_decref(event);
    assert_non_null(f);
    return f;
}

static void live(gateway_sse_routes_t *routes, long long seq)
{
    gateway_sse_frame_t *f = frame(seq);
    gateway_sse_routes_live(routes, f);
    gateway_sse_frame_unref(&f);
}

/* An activity stream on the hub (a gap matters only with someone to tell), on a
 * request the stream wiring leaves alone (its response not queued yet). */
typedef struct {
    gateway_request_t req;
    gateway_sse_limits_t limits;
} listener_t;

static void listen_on(gateway_sse_routes_t *routes, listener_t *l)
{
    memset(l, 0, sizeof *l);
    l->limits.max_bytes = 1 << 20;
    l->limits.low_bytes = 1 << 18;
    l->req.state = REQUEST_RECEIVING;
    l->req.sse = gateway_sse_client_new(NULL, 0, false, &l->limits);
    assert_non_null(l->req.sse);
    gateway_sse_client_set_user(l->req.sse, &l->req);
    assert_int_equal(gateway_hub_add(gateway_sse_routes_hub(routes), l->req.sse), 0);
}

static void unlisten(gateway_sse_routes_t *routes, listener_t *l)
{
    gateway_sse_routes_closed(routes, &l->req);
    gateway_sse_client_destroy(&l->req.sse);
}

static gateway_hub_stats_t hub_stats(gateway_sse_routes_t *routes)
{
    gateway_hub_stats_t stats;
    gateway_hub_stats(gateway_sse_routes_hub(routes), &stats);
    return stats;
}

/* No broker to ask: the gap cannot be filled, and the hub gives up on it at once. */
static void test_gap_without_broker(void **state)
{
    (void)state;
    char err[256];
    gateway_broker_link_t *link = gateway_broker_link_new("tcp://127.0.0.1:1", "tcp://127.0.0.1:1",
                                                          NULL, err, sizeof err);
    assert_non_null(link);
    assert_int_equal(gateway_broker_link_connect(link, err, sizeof err), 0);
    gateway_turn_t turn = {0};
    gateway_sse_routes_t *routes = gateway_sse_routes_new(link, &turn, 15000, 1 << 20, 1000);
    assert_non_null(routes);
    assert_int_equal(gateway_sse_routes_next_due(routes), -1); /* no stream: no sweep */
    listener_t l;
    listen_on(routes, &l);
    assert_true(gateway_sse_routes_next_due(routes) >= 0);
    live(routes, 1);
    live(routes, 3);
    assert_int_equal(hub_stats(routes).gaps, 1);
    assert_false(gateway_hub_filling(gateway_sse_routes_hub(routes)));
    gateway_broker_link_stats_t stats;
    gateway_broker_link_stats(link, &stats);
    assert_int_equal(stats.send_failures, 1);
    assert_int_equal(stats.in_flight, 0);
    unlisten(routes, &l);
    gateway_sse_routes_destroy(&routes);
    gateway_sse_routes_destroy(&routes);
    gateway_broker_link_destroy(&link);
}

typedef struct {
    gateway_sse_routes_t *routes;
    int fills;
} fill_cls_t;

static bool on_reply(void *item, json_int_t status, json_t *body, void *cls)
{
    fill_cls_t *c = cls;
    assert_true(gateway_sse_routes_is_fill(c->routes, item));
    gateway_sse_routes_fill_reply(c->routes, status, body);
    c->fills++;
    return false;
}

/* A gap asks the broker for every execution's events after the last seq seen, holds
 * later live events meanwhile, and flows again once the page filled it. */
static void test_gap_filled_from_the_log(void **state)
{
    (void)state;
    zsock_t *router = zsock_new_router("tcp://127.0.0.1:*");
    assert_non_null(router);
    char err[256];
    gateway_broker_link_t *link = gateway_broker_link_new(
        zsock_endpoint(router), "tcp://127.0.0.1:1", NULL, err, sizeof err);
    assert_non_null(link);
    assert_int_equal(gateway_broker_link_connect(link, err, sizeof err), 0);
    gateway_turn_t turn = {0};
    gateway_sse_routes_t *routes = gateway_sse_routes_new(link, &turn, 15000, 1 << 20, WAIT_MS);
    assert_non_null(routes);
    int not_fill;
    assert_false(gateway_sse_routes_is_fill(routes, &not_fill));
    listener_t l;
    listen_on(routes, &l);

    live(routes, 1);
    /* The DEALER connects in the background: until it has, a fill cannot be sent. */
    wait_t w = wait_begin(WAIT_MS);
    gateway_broker_link_stats_t stats;
    long long seq = 1;
    do {
        assert_true(wait_next(&w));
        seq += 2; /* each a new gap after a dropped one */
        live(routes, seq);
        gateway_broker_link_stats(link, &stats);
    } while (stats.requests_sent == 0);
    assert_true(gateway_hub_filling(gateway_sse_routes_hub(routes)));
    live(routes, seq + 1); /* held while the gap before seq is filled */

    zsock_set_rcvtimeo(router, WAIT_MS);
    zmsg_t *msg = zmsg_recv(router);
    assert_non_null(msg);
    zframe_t *identity = zmsg_pop(msg);
    zframe_t *payload = zmsg_pop(msg);
    syn_msg_t *request = syn_msg_decode(zframe_data(payload), zframe_size(payload), err,
                                        sizeof err);
    assert_non_null(request);
    json_t *fields = syn_msg_fields(request);
    assert_string_equal(json_string_value(json_object_get(fields, "op")), "events.replay");
    json_t *args = json_object_get(fields, "args");
    assert_true(json_is_null(json_object_get(args, "execution_id")));
    assert_int_equal(json_integer_value(json_object_get(args, "after_seq")), seq - 2);
    assert_int_equal(json_integer_value(json_object_get(args, "limit")), GATEWAY_REPLAY_PAGE);

    /* The log's page: the one event the live feed dropped. */
    syn_msg_t *answer = syn_msg_new_with(
        SYN_MSG_REPLY,
        json_pack("{s:O, s:i, s:{s:[{s:I, s:i, s:s, s:s, s:{}}], s:b, s:I, s:b, s:n}}", "id",
                  json_object_get(fields, "id"), "status", 200, "body", "events", "seq",
                  (json_int_t)(seq - 1), "time", 0, "execution_id", "e-1", "type",
                  "PhaseOutput", "data", "more", 0, "last_seq", (json_int_t)(seq - 1),
                  "terminal", 0, "execution_id"));
    assert_int_equal(syn_msg_send(zsock_resolve(router), zframe_data(identity),
                                  zframe_size(identity), answer),
                     0);
    syn_msg_destroy(&answer);
    syn_msg_destroy(&request);

    fill_cls_t cls = {routes, 0};
    w = wait_begin(WAIT_MS);
    while (cls.fills == 0) {
        gateway_broker_link_woken(link);
        gateway_broker_link_drain(link, on_reply, &cls);
        if (cls.fills == 0)
            assert_true(wait_next(&w));
    }
    assert_false(gateway_hub_filling(gateway_sse_routes_hub(routes)));
    uint64_t last;
    assert_true(gateway_hub_last_seq(gateway_sse_routes_hub(routes), &last));
    assert_int_equal(last, seq + 1); /* the held events went out after the fill */
    assert_int_equal(hub_stats(routes).filled, 1);

    zframe_destroy(&identity);
    zframe_destroy(&payload);
    zmsg_destroy(&msg);
    unlisten(routes, &l);
    gateway_sse_routes_destroy(&routes);
    gateway_broker_link_destroy(&link);
    zsock_destroy(&router);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_page_valid),
        cmocka_unit_test(test_catch_up_due),
        cmocka_unit_test(test_original_streams),
        cmocka_unit_test(test_gap_without_broker),
        cmocka_unit_test(test_gap_filled_from_the_log),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
