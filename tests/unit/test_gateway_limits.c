/* Slow and greedy clients (gateway/listen.h), in-process against a fake broker: a
 * gateway that is full answers 503 with Retry-After instead of leaving a client
 * hanging; one address holds no more than its share while another is served; a
 * request whose headers never end is closed after the header timeout while
 * keep-alive connections and event streams keep the long one. The flood of 5,000
 * half-sent requests against the real program is in
 * tests/integration/test_gateway_flood.c. */
#include "gateway/gateway.h"
#include "tests/support/fake_broker.h"
#include "tests/support/gateway_harness.h"
#include "tests/support/http.h"
#include "tests/support/rawconn.h"
#include "tests/support/sse.h"
#include "tests/support/teststack.h"

#include <czmq.h>
#include <curl/curl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#define HEALTH "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"

typedef struct {
    fake_broker_t *broker;
    gateway_harness_t *gw;
} fixture_t;

static void wait_connections(gateway_harness_t *gw, size_t want)
{
    WAIT_FOR(gateway_harness_stats(gw).http_connections == want, 10000);
    assert_int_equal(gateway_harness_stats(gw).http_connections, want);
}

static gateway_harness_t *start(fixture_t *f, long max_connections, long max_per_ip,
                                long header_timeout_ms)
{
    gateway_config_t config = {
        .http = "127.0.0.1:0",
        .broker = fake_broker_endpoint(f->broker),
        .events = fake_broker_events_endpoint(f->broker),
        .request_timeout_ms = 2000,
        .health_timeout_ms = 500,
        .max_connections = max_connections,
        .max_per_ip = max_per_ip,
        .header_timeout_ms = header_timeout_ms,
        .sse_keepalive_ms = 600000, /* streams stay silent: only the timeout could end them */
    };
    f->gw = gateway_harness_start(&config);
    if (!gateway_harness_wait_healthy(f->gw, 5000))
        fail_msg("gateway never reached the broker");
    wait_connections(f->gw, 0); /* the health checks' connections are gone */
    return f->gw;
}

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof *f);
    f->broker = fake_broker_start(NULL);
    fake_broker_set_healthy(f->broker, 1);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    gateway_harness_stop(&f->gw);
    fake_broker_stop(&f->broker);
    free(f);
    return 0;
}

/* max_connections half-sent requests fill the gateway: the next client is told 503
 * with Retry-After at once, and served again once there is room. */
static void test_full_gateway_answers_503(void **state)
{
    fixture_t *f = *state;
    gateway_harness_t *gw = start(f, 4, 0, 60000);
    int held[4];
    for (int i = 0; i < 4; i++)
        assert_true((held[i] = rawconn_open(NULL, gateway_harness_port(gw),
                                            RAWCONN_HALF_REQUEST)) >= 0);
    wait_connections(gw, 4);
    http_response_t r;
    long long started = teststack_now_ms();
    assert_int_equal(http_get(&r, "%s/health", gateway_harness_url(gw)), 0);
    long long took = teststack_now_ms() - started;
    assert_int_equal(r.status, 503);
    assert_string_equal(r.retry_after, "1");
    assert_string_equal(r.connection, "close");
    assert_non_null(strstr(r.body, "Too many connections"));
    http_response_clear(&r);
    assert_true(took < 2000);
    assert_int_equal(gateway_harness_stats(gw).refused_full, 1);
    assert_false(rawconn_closed(held[0])); /* those already in are not thrown out */
    close(held[0]);
    wait_connections(gw, 3);
    assert_int_equal(http_get(&r, "%s/health", gateway_harness_url(gw)), 0);
    assert_int_equal(r.status, 200);
    http_response_clear(&r);
    for (int i = 1; i < 4; i++)
        close(held[i]);
}

/* One address gets max_per_ip connections; more are closed at once, and another
 * address is still served. */
static void test_one_address_gets_its_share(void **state)
{
    fixture_t *f = *state;
    gateway_harness_t *gw = start(f, 64, 3, 60000);
    int port = gateway_harness_port(gw);
    int held[3];
    for (int i = 0; i < 3; i++)
        assert_true((held[i] = rawconn_open("127.0.0.1", port, RAWCONN_HALF_REQUEST)) >= 0);
    wait_connections(gw, 3);
    int over = rawconn_open("127.0.0.1", port, RAWCONN_HALF_REQUEST);
    assert_true(over >= 0);
    assert_true(rawconn_wait_closed(over, 10000));
    close(over);
    for (int i = 0; i < 3; i++)
        assert_false(rawconn_closed(held[i]));
    int other = rawconn_open("127.0.0.2", port, NULL);
    assert_true(other >= 0);
    assert_int_equal(rawconn_request(other, HEALTH, 5000), 200);
    close(other);
    for (int i = 0; i < 3; i++)
        close(held[i]);
}

/* Headers that never end: closed after the header timeout (one second here), also
 * when they are a keep-alive connection's second request. An event stream, whose
 * request is complete, is still open when that has happened: it has the long idle
 * timeout. */
static void test_incomplete_requests_get_a_short_deadline(void **state)
{
    fixture_t *f = *state;
    gateway_harness_t *gw = start(f, 64, 0, 1000);
    int port = gateway_harness_port(gw);
    int keepalive = rawconn_open(NULL, port, NULL);
    assert_true(keepalive >= 0);
    assert_int_equal(rawconn_request(keepalive, HEALTH, 5000), 200);
    sse_client_t *stream = sse_client_new(port, "/sse/activity", NULL, 0);
    assert_non_null(stream);
    assert_true(sse_client_wait(stream, sse_client_has_frames, 1, 5000)); /* "connected" */
    long long started = teststack_now_ms();
    int half = rawconn_open(NULL, port, RAWCONN_HALF_REQUEST);
    assert_true(half >= 0);
    size_t len = strlen(RAWCONN_HALF_REQUEST);
    assert_int_equal(write(keepalive, RAWCONN_HALF_REQUEST, len), (ssize_t)len);
    assert_true(rawconn_wait_closed(half, 20000));
    long long took = teststack_now_ms() - started;
    print_message("half-sent request closed after %lld ms (header timeout 1000 ms)\n", took);
    assert_true(took >= 900);
    assert_true(rawconn_wait_closed(keepalive, 20000));
    close(half);
    close(keepalive);
    sse_client_pump(stream);
    assert_false(sse_client_closed(stream));
    sse_client_destroy(&stream);
}

int main(void)
{
    zsys_handler_set(NULL);
    zsys_init();
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_full_gateway_answers_503, setup, teardown),
        cmocka_unit_test_setup_teardown(test_one_address_gets_its_share, setup, teardown),
        cmocka_unit_test_setup_teardown(test_incomplete_requests_get_a_short_deadline, setup,
                                        teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
