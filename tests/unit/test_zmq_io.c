/* Tests for proto/zmq_io.c: syn_msg_send/syn_msg_recv over real ZeroMQ sockets
 * (DEALER/ROUTER over inproc and TCP, PUB/SUB, invalid frames then valid ones). */
#include "tests/support/msg_wire.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <msgpack.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>


/* --- ZeroMQ -------------------------------------------------------------- */

typedef struct {
    void *ctx;
    void *router;
    void *dealer;
} pair_t;

static void *socket_new(void *ctx, int type)
{
    void *sock = zmq_socket(ctx, type);
    assert_non_null(sock);
    int zero = 0;
    int64_t max = SYN_MSG_MAX_SIZE;
    zmq_setsockopt(sock, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt(sock, ZMQ_MAXMSGSIZE, &max, sizeof max);
    return sock;
}

/* A ROUTER bound and a DEALER with routing id "worker-1" connected to it. */
static void pair_open(pair_t *pair, const char *endpoint)
{
    pair->ctx = zmq_ctx_new();
    pair->router = socket_new(pair->ctx, ZMQ_ROUTER);
    int one = 1;
    zmq_setsockopt(pair->router, ZMQ_ROUTER_MANDATORY, &one, sizeof one);
    assert_int_equal(zmq_bind(pair->router, endpoint), 0);
    char bound[256];
    size_t bound_len = sizeof bound;
    zmq_getsockopt(pair->router, ZMQ_LAST_ENDPOINT, bound, &bound_len);
    pair->dealer = socket_new(pair->ctx, ZMQ_DEALER);
    zmq_setsockopt(pair->dealer, ZMQ_ROUTING_ID, "worker-1", 8);
    assert_int_equal(zmq_connect(pair->dealer, bound), 0);
}

static void pair_close(pair_t *pair)
{
    zmq_close(pair->dealer);
    zmq_close(pair->router);
    zmq_ctx_term(pair->ctx);
}

/* Waits for a message then receives it (recv itself never blocks). */
static int recv_wait(void *sock, syn_msg_t **msg, void *identity, size_t *identity_len,
                     char *err, size_t errlen)
{
    zmq_pollitem_t item = {sock, 0, ZMQ_POLLIN, 0};
    if (zmq_poll(&item, 1, 5000) != 1)
        fail_msg("nothing arrived within 5 s");
    return syn_msg_recv(sock, msg, identity, identity_len, err, errlen);
}

static void test_zmq_dealer_router(void **state)
{
    (void) state;
    pair_t pair;
    pair_open(&pair, "inproc://msg-test-1");
    char err[256];
    char identity[256];
    size_t identity_len = sizeof identity;
    syn_msg_t *msg = NULL;

    /* Nothing waiting: -1 with EAGAIN, nothing filled. */
    assert_int_equal(syn_msg_recv(pair.router, &msg, identity, &identity_len, err, sizeof err),
                     -1);
    assert_int_equal(errno, EAGAIN);
    assert_null(msg);

    /* DEALER → ROUTER: the identity comes with it. */
    syn_msg_t *ready = make(SYN_MSG_READY, samples[6].fields);
    assert_int_equal(syn_msg_send(pair.dealer, NULL, 0, ready), 0);
    identity_len = sizeof identity;
    assert_int_equal(recv_wait(pair.router, &msg, identity, &identity_len, err, sizeof err), 0);
    assert_int_equal(identity_len, 8);
    assert_memory_equal(identity, "worker-1", 8);
    assert_int_equal(syn_msg_type(msg), SYN_MSG_READY);
    assert_true(json_equal(syn_msg_fields(msg), syn_msg_fields(ready)));
    syn_msg_destroy(&msg);
    syn_msg_destroy(&ready);

    /* ROUTER → DEALER, addressed by that identity. */
    syn_msg_t *assign = make(SYN_MSG_ASSIGN, samples[9].fields);
    assert_int_equal(syn_msg_send(pair.router, identity, identity_len, assign), 0);
    assert_int_equal(recv_wait(pair.dealer, &msg, NULL, NULL, err, sizeof err), 0);
    assert_int_equal(syn_msg_type(msg), SYN_MSG_ASSIGN);
    assert_true(json_equal(syn_msg_fields(msg), syn_msg_fields(assign)));
    syn_msg_destroy(&msg);

    /* An unknown peer on a ROUTER_MANDATORY socket is an error, not a silent drop. */
    errno = 0;
    assert_int_equal(syn_msg_send(pair.router, "nobody", 6, assign), -1);
    assert_int_equal(errno, EHOSTUNREACH);
    syn_msg_destroy(&assign);

    /* A message breaking its schema is not sent. */
    syn_msg_t *broken = syn_msg_new(SYN_MSG_RESULT);
    errno = 0;
    assert_int_equal(syn_msg_send(pair.dealer, NULL, 0, broken), -1);
    assert_int_equal(errno, EINVAL);
    syn_msg_destroy(&broken);
    pair_close(&pair);
}

static void test_zmq_invalid_then_valid(void **state)
{
    (void) state;
    pair_t pair;
    pair_open(&pair, "inproc://msg-test-2");
    char err[256];
    char identity[256];
    size_t identity_len;
    syn_msg_t *msg = NULL;
    syn_msg_t *heartbeat = syn_msg_new(SYN_MSG_HEARTBEAT);

    /* Garbage payload: -2, reason given, identity filled, and the next message reads. */
    assert_int_equal(zmq_send(pair.dealer, "\x92\x01\x02", 3, 0), 3);
    assert_int_equal(syn_msg_send(pair.dealer, NULL, 0, heartbeat), 0);
    identity_len = sizeof identity;
    assert_int_equal(recv_wait(pair.router, &msg, identity, &identity_len, err, sizeof err), -2);
    assert_null(msg);
    assert_non_null(strstr(err, "top level is array"));
    assert_int_equal(identity_len, 8);
    assert_memory_equal(identity, "worker-1", 8);
    identity_len = sizeof identity;
    assert_int_equal(recv_wait(pair.router, &msg, identity, &identity_len, err, sizeof err), 0);
    assert_int_equal(syn_msg_type(msg), SYN_MSG_HEARTBEAT);
    syn_msg_destroy(&msg);

    /* Too many frames (a REQ-style empty delimiter, say): all consumed, -2. */
    assert_int_equal(zmq_send(pair.dealer, "", 0, ZMQ_SNDMORE), 0);
    assert_int_equal(syn_msg_send(pair.dealer, NULL, 0, heartbeat), 0);
    assert_int_equal(zmq_send(pair.dealer, "a", 1, ZMQ_SNDMORE), 1);
    assert_int_equal(zmq_send(pair.dealer, "b", 1, ZMQ_SNDMORE), 1);
    assert_int_equal(zmq_send(pair.dealer, "c", 1, 0), 1);
    assert_int_equal(syn_msg_send(pair.dealer, NULL, 0, heartbeat), 0);
    identity_len = sizeof identity;
    assert_int_equal(recv_wait(pair.router, &msg, identity, &identity_len, err, sizeof err), -2);
    assert_non_null(strstr(err, "expected 2 frames, got 3"));
    assert_int_equal(identity_len, 8);
    identity_len = sizeof identity;
    assert_int_equal(recv_wait(pair.router, &msg, identity, &identity_len, err, sizeof err), -2);
    assert_non_null(strstr(err, "expected 2 frames, got 4"));
    identity_len = sizeof identity;
    assert_int_equal(recv_wait(pair.router, &msg, identity, &identity_len, err, sizeof err), 0);
    assert_int_equal(syn_msg_type(msg), SYN_MSG_HEARTBEAT);
    syn_msg_destroy(&msg);

    /* A DEALER given two frames: -2, then the next one is fine. */
    assert_int_equal(zmq_send(pair.router, "worker-1", 8, ZMQ_SNDMORE), 8);
    assert_int_equal(zmq_send(pair.router, "x", 1, ZMQ_SNDMORE), 1);
    assert_int_equal(zmq_send(pair.router, "y", 1, 0), 1);
    assert_int_equal(syn_msg_send(pair.router, "worker-1", 8, heartbeat), 0);
    assert_int_equal(recv_wait(pair.dealer, &msg, NULL, NULL, err, sizeof err), -2);
    assert_non_null(strstr(err, "expected 1 frame, got 2"));
    assert_int_equal(recv_wait(pair.dealer, &msg, NULL, NULL, err, sizeof err), 0);
    syn_msg_destroy(&msg);

    /* An identity larger than the caller's buffer: -2, truncated copy. */
    assert_int_equal(syn_msg_send(pair.dealer, NULL, 0, heartbeat), 0);
    identity_len = 4;
    assert_int_equal(recv_wait(pair.router, &msg, identity, &identity_len, err, sizeof err), -2);
    assert_int_equal(identity_len, 4);
    assert_non_null(strstr(err, "identity of 8 bytes does not fit in 4"));

    /* An empty frame is an empty message. */
    assert_int_equal(zmq_send(pair.dealer, "", 0, 0), 0);
    identity_len = sizeof identity;
    assert_int_equal(recv_wait(pair.router, &msg, identity, &identity_len, err, sizeof err), -2);
    assert_non_null(strstr(err, "empty message"));

    syn_msg_destroy(&heartbeat);
    pair_close(&pair);
}

static void test_zmq_tcp_big(void **state)
{
    (void) state;
    pair_t pair;
    pair_open(&pair, "tcp://127.0.0.1:*");
    char *output = big_unicode_string(1024 * 1024);
    syn_msg_t *result = make(SYN_MSG_RESULT, samples[14].fields);
    json_object_set_new(syn_msg_fields(result), "output", json_string(output));
    /* The connection is made asynchronously: retry until the pipe exists. */
    int rc = -1;
    for (int i = 0; i < 500 && rc != 0; i++) {
        rc = syn_msg_send(pair.dealer, NULL, 0, result);
        if (rc != 0) {
            assert_int_equal(errno, EAGAIN);
            zmq_poll(NULL, 0, 10);
        }
    }
    assert_int_equal(rc, 0);
    char err[256];
    char identity[256];
    size_t identity_len = sizeof identity;
    syn_msg_t *msg = NULL;
    assert_int_equal(recv_wait(pair.router, &msg, identity, &identity_len, err, sizeof err), 0);
    assert_true(json_equal(syn_msg_fields(msg), syn_msg_fields(result)));
    syn_msg_destroy(&msg);
    syn_msg_destroy(&result);
    free(output);
    pair_close(&pair);
}

static void test_zmq_pub_sub(void **state)
{
    (void) state;
    void *ctx = zmq_ctx_new();
    void *pub = socket_new(ctx, ZMQ_PUB);
    void *sub = socket_new(ctx, ZMQ_SUB);
    assert_int_equal(zmq_bind(pub, "inproc://msg-test-events"), 0);
    assert_int_equal(zmq_connect(sub, "inproc://msg-test-events"), 0);
    assert_int_equal(zmq_setsockopt(sub, ZMQ_SUBSCRIBE, "exec-1", 6), 0);

    syn_msg_t *event = make(SYN_MSG_EVENT, samples[19].fields);
    syn_msg_t *other = make(SYN_MSG_EVENT, samples[20].fields);
    char err[256];
    char topic[64];
    size_t topic_len = 0;
    syn_msg_t *msg = NULL;
    /* Subscriptions travel asynchronously: publish until one gets through. */
    int rc = -1;
    for (int i = 0; i < 500 && rc != 0; i++) {
        assert_int_equal(syn_msg_send(pub, "-", 1, other), 0);
        assert_int_equal(syn_msg_send(pub, "exec-1", 6, event), 0);
        zmq_pollitem_t item = {sub, 0, ZMQ_POLLIN, 0};
        if (zmq_poll(&item, 1, 10) == 1) {
            topic_len = sizeof topic;
            rc = syn_msg_recv(sub, &msg, topic, &topic_len, err, sizeof err);
            assert_int_equal(rc, 0);
        }
    }
    assert_int_equal(rc, 0);
    /* Only the subscribed topic arrives, with the topic as identity. */
    assert_int_equal(topic_len, 6);
    assert_memory_equal(topic, "exec-1", 6);
    assert_true(json_equal(syn_msg_fields(msg), syn_msg_fields(event)));
    syn_msg_destroy(&msg);
    for (;;) {
        topic_len = sizeof topic;
        rc = syn_msg_recv(sub, &msg, topic, &topic_len, err, sizeof err);
        if (rc == -1)
            break;
        assert_int_equal(rc, 0);
        assert_memory_equal(topic, "exec-1", 6);
        syn_msg_destroy(&msg);
    }
    assert_int_equal(errno, EAGAIN);

    /* A publisher that sends no topic frame: -2, and the next event still reads. */
    assert_int_equal(zmq_send(pub, "exec-1-no-topic", 15, 0), 15);
    assert_int_equal(syn_msg_send(pub, "exec-1", 6, event), 0);
    topic_len = sizeof topic;
    assert_int_equal(recv_wait(sub, &msg, topic, &topic_len, err, sizeof err), -2);
    assert_non_null(strstr(err, "expected 2 frames, got 1"));
    assert_int_equal(topic_len, 15);
    topic_len = sizeof topic;
    assert_int_equal(recv_wait(sub, &msg, topic, &topic_len, err, sizeof err), 0);
    assert_int_equal(syn_msg_type(msg), SYN_MSG_EVENT);
    syn_msg_destroy(&msg);

    syn_msg_destroy(&event);
    syn_msg_destroy(&other);
    zmq_close(sub);
    zmq_close(pub);
    zmq_ctx_term(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_zmq_dealer_router),
        cmocka_unit_test(test_zmq_invalid_then_valid),
        cmocka_unit_test(test_zmq_tcp_big),
        cmocka_unit_test(test_zmq_pub_sub),
    };
    return cmocka_run_group_tests_name("zmq_io", tests, NULL, NULL);
}
