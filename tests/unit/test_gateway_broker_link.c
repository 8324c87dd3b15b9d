/* The gateway's broker link (gateway/broker_link.h) against a bare ROUTER on loopback:
 * a request goes out under its op's name and comes back to its item by id; a deadline
 * hands the item back and the reply that comes after is dropped as late; a forgotten
 * item's reply too; no broker connected or a message too deep to encode is refused
 * at once; a refused handshake schedules a redial after a doubling pause, an admitted
 * one resets it. */
#include "common/clock.h"
#include "gateway/broker_link.h"
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

typedef struct {
    zsock_t *router;
    zsock_t *pub;
    gateway_broker_link_t *link;
    int replies;
    void *last_item;
    json_int_t last_status;
    json_t *last_body;
    int lost;
    void *lost_item;
} fixture_t;

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof *f);
    f->router = zsock_new_router("tcp://127.0.0.1:*");
    f->pub = zsock_new_pub("tcp://127.0.0.1:*");
    assert_non_null(f->router);
    assert_non_null(f->pub);
    char err[256];
    f->link = gateway_broker_link_new(zsock_endpoint(f->router), zsock_endpoint(f->pub), NULL,
                                      err, sizeof err);
    assert_non_null(f->link);
    assert_int_equal(gateway_broker_link_connect(f->link, err, sizeof err), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    gateway_broker_link_destroy(&f->link);
    gateway_broker_link_destroy(&f->link);
    zsock_destroy(&f->router);
    zsock_destroy(&f->pub);
    json_decref(f->last_body);
    free(f);
    return 0;
}

static bool on_reply(void *item, json_int_t status, json_t *body, void *cls)
{
    fixture_t *f = cls;
    f->replies++;
    f->last_item = item;
    f->last_status = status;
    json_decref(f->last_body);
    f->last_body = json_incref(body);
    return true;
}

static void on_no_reply(void *item, void *cls)
{
    fixture_t *f = cls;
    f->lost++;
    f->lost_item = item;
}

/* Sends until the DEALER is connected (sends fail at once until then). */
static uint64_t send_when_connected(fixture_t *f, syn_op_t op, json_t *args, long timeout_ms,
                                    void *item)
{
    wait_t w = wait_begin(WAIT_MS);
    uint64_t corr = 0;
    while (gateway_broker_link_send(f->link, op, args, timeout_ms, item, &corr) != GATEWAY_SENT)
        assert_true(wait_next(&w));
    return corr;
}

/* The request the ROUTER got: its identity frame kept for the reply. */
static json_t *take_request(fixture_t *f, zframe_t **identity)
{
    zsock_set_rcvtimeo(f->router, WAIT_MS);
    zmsg_t *msg = zmsg_recv(f->router);
    assert_non_null(msg);
    *identity = zmsg_pop(msg);
    zframe_t *payload = zmsg_pop(msg);
    char err[256];
    syn_msg_t *request = syn_msg_decode(zframe_data(payload), zframe_size(payload), err,
                                        sizeof err);
    assert_non_null(request);
    assert_int_equal(syn_msg_type(request), SYN_MSG_REQUEST);
    json_t *fields = json_incref(syn_msg_fields(request));
    syn_msg_destroy(&request);
    zframe_destroy(&payload);
    zmsg_destroy(&msg);
    return fields;
}

static void reply(fixture_t *f, zframe_t **identity, syn_msg_type_t type, json_t *fields)
{
    syn_msg_t *msg = syn_msg_new_with(type, fields);
    assert_non_null(msg);
    assert_int_equal(syn_msg_send(zsock_resolve(f->router), zframe_data(*identity),
                                  zframe_size(*identity), msg),
                     0);
    syn_msg_destroy(&msg);
    zframe_destroy(identity);
}

/* Drains until the stats say what came in reached want (replies matched + late +
 * bad), within the deadline. */
static void drain_until(fixture_t *f, uint64_t want)
{
    wait_t w = wait_begin(WAIT_MS);
    for (;;) {
        gateway_broker_link_woken(f->link);
        gateway_broker_link_drain(f->link, on_reply, f);
        gateway_broker_link_stats_t stats;
        gateway_broker_link_stats(f->link, &stats);
        if (stats.replies + stats.late_replies + stats.bad_messages >= want)
            return;
        assert_true(wait_next(&w));
    }
}

static void test_reply_reaches_its_item(void **state)
{
    fixture_t *f = *state;
    int item_a, item_b;
    json_t *args = json_pack("{s:s}", "execution_id", "e-1");
    uint64_t a = send_when_connected(f, SYN_OP_EXECUTION_GET, args, WAIT_MS, &item_a);
    uint64_t b = send_when_connected(f, SYN_OP_HEALTH, args, WAIT_MS, &item_b);
    json_decref(args);
    assert_int_not_equal(a, b);

    zframe_t *id_a, *id_b;
    json_t *req_a = take_request(f, &id_a);
    json_t *req_b = take_request(f, &id_b);
    assert_string_equal(json_string_value(json_object_get(req_a, "op")), "execution.get");
    assert_string_equal(json_string_value(json_object_get(req_b, "op")), "health");
    assert_int_equal(json_integer_value(json_object_get(req_a, "id")), a);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(req_a, "args"), "execution_id")),
        "e-1");
    /* Answered out of order: each reply finds its own item by id. */
    reply(f, &id_b, SYN_MSG_REPLY,
          json_pack("{s:I, s:i, s:{s:s}}", "id", (json_int_t)b, "status", 200, "body", "who",
                    "b"));
    drain_until(f, 1);
    assert_ptr_equal(f->last_item, &item_b);
    reply(f, &id_a, SYN_MSG_REPLY,
          json_pack("{s:I, s:i, s:{s:s}}", "id", (json_int_t)a, "status", 404, "body", "who",
                    "a"));
    drain_until(f, 2);
    assert_int_equal(f->replies, 2);
    assert_ptr_equal(f->last_item, &item_a);
    assert_int_equal(f->last_status, 404);
    assert_string_equal(json_string_value(json_object_get(f->last_body, "who")), "a");
    gateway_broker_link_stats_t stats;
    gateway_broker_link_stats(f->link, &stats);
    assert_int_equal(stats.in_flight, 0);
    assert_int_equal(stats.late_replies, 0);
    assert_int_equal(gateway_broker_link_next_due(f->link), -1);
    json_decref(req_a);
    json_decref(req_b);
}

static void test_deadline_then_late_reply(void **state)
{
    fixture_t *f = *state;
    int item, other;
    json_t *args = json_object();
    uint64_t corr = send_when_connected(f, SYN_OP_HEALTH, args, 0, &item);
    /* A second one, forgotten as a client that left would be. */
    uint64_t gone = send_when_connected(f, SYN_OP_HEALTH, args, WAIT_MS, &other);
    json_decref(args);
    int64_t due = gateway_broker_link_next_due(f->link);
    assert_true(due >= 0 && due <= syn_mono_ms());
    gateway_broker_link_expire(f->link, syn_mono_ms(), on_no_reply, f);
    assert_int_equal(f->lost, 1);
    assert_ptr_equal(f->lost_item, &item);
    gateway_broker_link_forget(f->link, gone);

    zframe_t *id1, *id2;
    json_decref(take_request(f, &id1));
    json_decref(take_request(f, &id2));
    reply(f, &id1, SYN_MSG_REPLY,
          json_pack("{s:I, s:i, s:{}}", "id", (json_int_t)corr, "status", 200, "body"));
    reply(f, &id2, SYN_MSG_REPLY,
          json_pack("{s:I, s:i, s:{}}", "id", (json_int_t)gone, "status", 200, "body"));
    drain_until(f, 2);
    gateway_broker_link_stats_t stats;
    gateway_broker_link_stats(f->link, &stats);
    assert_int_equal(f->replies, 0);
    assert_int_equal(stats.late_replies, 2);
    assert_int_equal(stats.timeouts, 1);
    assert_int_equal(stats.in_flight, 0);
}

static void test_unexpected_message_counted(void **state)
{
    fixture_t *f = *state;
    int item;
    json_t *args = json_object();
    send_when_connected(f, SYN_OP_HEALTH, args, WAIT_MS, &item);
    json_decref(args);
    zframe_t *id;
    json_decref(take_request(f, &id));
    reply(f, &id, SYN_MSG_HEARTBEAT, json_object());
    drain_until(f, 1);
    gateway_broker_link_stats_t stats;
    gateway_broker_link_stats(f->link, &stats);
    assert_int_equal(stats.bad_messages, 1);
    assert_int_equal(f->replies, 0);
    /* Still waiting: closing hands it back without counting a timeout. */
    gateway_broker_link_abandon(f->link, on_no_reply, f);
    assert_int_equal(f->lost, 1);
    gateway_broker_link_stats(f->link, &stats);
    assert_int_equal(stats.timeouts, 0);
    assert_int_equal(stats.in_flight, 0);
}

static void test_refused_sends(void **state)
{
    (void)state;
    /* Nothing listens there: no broker connected, sends fail at once. */
    char err[256];
    gateway_broker_link_t *link = gateway_broker_link_new("tcp://127.0.0.1:1", "tcp://127.0.0.1:1",
                                                          NULL, err, sizeof err);
    assert_non_null(link);
    assert_int_equal(gateway_broker_link_connect(link, err, sizeof err), 0);
    int item;
    json_t *args = json_object();
    assert_int_equal(gateway_broker_link_send(link, SYN_OP_HEALTH, args, 1000, &item, NULL),
                     GATEWAY_SEND_UNAVAILABLE);
    json_decref(args);
    /* Deeper than a message may nest: refused before any socket is asked. */
    json_t *deep = json_array();
    for (int i = 0; i <= SYN_MSG_MAX_DEPTH; i++)
        deep = json_pack("[o]", deep);
    args = json_pack("{s:o}", "deep", deep);
    assert_int_equal(gateway_broker_link_send(link, SYN_OP_HEALTH, args, 1000, &item, NULL),
                     GATEWAY_SEND_TOO_LARGE);
    json_decref(args);
    gateway_broker_link_stats_t stats;
    gateway_broker_link_stats(link, &stats);
    assert_int_equal(stats.send_failures, 1);
    assert_int_equal(stats.requests_sent, 0);
    assert_int_equal(stats.in_flight, 0);
    gateway_broker_link_destroy(&link);
}

static void test_redial_after_refusal(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(gateway_broker_link_next_due(f->link), -1);
    /* A handshake cut short is libzmq's to dial again. */
    gateway_broker_link_refused(f->link, ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL);
    assert_int_equal(gateway_broker_link_next_due(f->link), -1);
    int64_t before = syn_mono_ms();
    gateway_broker_link_refused(f->link, ZMQ_EVENT_HANDSHAKE_FAILED_AUTH);
    int64_t due = gateway_broker_link_next_due(f->link);
    assert_true(due >= before + GATEWAY_REDIAL_FIRST_MS);
    assert_true(due <= syn_mono_ms() + GATEWAY_REDIAL_FIRST_MS);
    /* A second refusal before the redial changes nothing. */
    gateway_broker_link_refused(f->link, ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL);
    assert_int_equal(gateway_broker_link_next_due(f->link), due);
    gateway_broker_link_redial_when_due(f->link, due - 1);
    assert_int_equal(gateway_broker_link_next_due(f->link), due);
    gateway_broker_link_redial_when_due(f->link, due);
    assert_int_equal(gateway_broker_link_next_due(f->link), -1);
    /* Refused again: the pause doubled. */
    before = syn_mono_ms();
    gateway_broker_link_refused(f->link, ZMQ_EVENT_HANDSHAKE_FAILED_AUTH);
    due = gateway_broker_link_next_due(f->link);
    assert_true(due >= before + 2 * GATEWAY_REDIAL_FIRST_MS);
    gateway_broker_link_redial_when_due(f->link, due);
    /* Admitted: the next refusal waits the shortest pause again. */
    gateway_broker_link_admitted(f->link);
    before = syn_mono_ms();
    gateway_broker_link_refused(f->link, ZMQ_EVENT_HANDSHAKE_FAILED_AUTH);
    due = gateway_broker_link_next_due(f->link);
    assert_true(due <= syn_mono_ms() + GATEWAY_REDIAL_FIRST_MS);
    assert_true(due >= before + GATEWAY_REDIAL_FIRST_MS);
    /* The redial leaves the link working. A request sent the moment after may go to
     * the pipe being torn down and be lost (the caller's deadline answers it): send
     * until one arrives. */
    gateway_broker_link_redial_when_due(f->link, due);
    int item;
    json_t *args = json_object();
    zsock_set_rcvtimeo(f->router, 100);
    zmsg_t *got = NULL;
    wait_t w = wait_begin(WAIT_MS);
    while (!got) {
        assert_true(wait_next(&w));
        send_when_connected(f, SYN_OP_HEALTH, args, WAIT_MS, &item);
        got = zmsg_recv(f->router);
    }
    json_decref(args);
    zframe_t *id = zmsg_pop(got);
    zframe_t *payload = zmsg_pop(got);
    char err[256];
    syn_msg_t *request = syn_msg_decode(zframe_data(payload), zframe_size(payload), err,
                                        sizeof err);
    assert_non_null(request);
    reply(f, &id, SYN_MSG_REPLY,
          json_pack("{s:O, s:i, s:{}}", "id", json_object_get(syn_msg_fields(request), "id"),
                    "status", 200, "body"));
    syn_msg_destroy(&request);
    zframe_destroy(&payload);
    zmsg_destroy(&got);
    drain_until(f, 1);
    assert_ptr_equal(f->last_item, &item);
}

/* Several brokers: the link follows the first; while its events link stays down it
 * moves, both sockets together, to the next (here the live one), where requests go;
 * news of the broker it left is stale. Lists of different lengths are refused. */
static void test_follows_the_next_broker(void **state)
{
    fixture_t *f = *state;
    char brokers[256], events[256], err[256];
    snprintf(brokers, sizeof brokers, "tcp://127.0.0.1:1,%s", zsock_endpoint(f->router));
    snprintf(events, sizeof events, "tcp://127.0.0.1:1,%s", zsock_endpoint(f->pub));
    assert_null(gateway_broker_link_new(brokers, "tcp://127.0.0.1:1", NULL, err, sizeof err));
    assert_non_null(strstr(err, "--broker lists 2 endpoints and --events 1"));
    assert_int_equal(gateway_broker_link_check_pairs(brokers, events, err, sizeof err), 0);
    gateway_broker_link_destroy(&f->link);
    f->link = gateway_broker_link_new(brokers, events, NULL, err, sizeof err);
    assert_non_null(f->link);
    int64_t start = syn_mono_ms();
    assert_int_equal(gateway_broker_link_connect(f->link, err, sizeof err), 0);
    /* The first is down from the start: the move is due within GATEWAY_BROKER_DOWN_MS. */
    int64_t due = gateway_broker_link_next_due(f->link);
    assert_true(due >= start && due <= syn_mono_ms() + GATEWAY_BROKER_DOWN_MS);
    assert_true(gateway_broker_link_concerns(f->link, "tcp://127.0.0.1:1"));
    gateway_broker_link_follow_when_due(f->link, due - 1);
    assert_true(gateway_broker_link_concerns(f->link, "tcp://127.0.0.1:1")); /* not yet */
    gateway_broker_link_follow_when_due(f->link, due);
    assert_false(gateway_broker_link_concerns(f->link, "tcp://127.0.0.1:1"));
    assert_true(gateway_broker_link_concerns(f->link, zsock_endpoint(f->pub)));
    assert_true(gateway_broker_link_concerns(f->link, "tcp://localhost:9")); /* not listed */
    /* Up there: no further move is due. */
    gateway_broker_link_admitted(f->link);
    assert_int_equal(gateway_broker_link_next_due(f->link), -1);
    json_t *args = json_object();
    int item;
    gateway_send_result_t sent = GATEWAY_SEND_UNAVAILABLE;
    WAIT_FOR((sent = gateway_broker_link_send(f->link, SYN_OP_HEALTH, args, 5000, &item, NULL)) ==
                 GATEWAY_SENT,
             WAIT_MS);
    json_decref(args);
    assert_int_equal(sent, GATEWAY_SENT);
    zmsg_t *got = NULL;
    zsock_set_rcvtimeo(f->router, WAIT_MS);
    got = zmsg_recv(f->router);
    assert_non_null(got);
    zmsg_destroy(&got);
    /* Its events link lost: after GATEWAY_BROKER_DOWN_MS it moves on, round robin. */
    gateway_broker_link_lost(f->link);
    due = gateway_broker_link_next_due(f->link);
    assert_true(due > 0);
    gateway_broker_link_follow_when_due(f->link, due);
    assert_true(gateway_broker_link_concerns(f->link, "tcp://127.0.0.1:1"));
    gateway_broker_link_abandon(f->link, on_no_reply, f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_reply_reaches_its_item, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deadline_then_late_reply, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unexpected_message_counted, setup, teardown),
        cmocka_unit_test(test_refused_sends),
        cmocka_unit_test_setup_teardown(test_follows_the_next_broker, setup, teardown),
        cmocka_unit_test_setup_teardown(test_redial_after_refusal, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
