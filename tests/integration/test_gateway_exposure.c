/* The syn-gateway program where it meets the network, against a fake broker in this
 * process: the --insecure rules refuse before anything is bound or connected (exit 2,
 * one line); SIGHUP reads the tokens file again and keeps the old one when the new
 * one is bad; no token or password ever reaches the log; and 5,000 half-sent
 * requests from one address neither keep another address waiting nor fill the log,
 * and are all closed within the header timeout. */
#include "auth/token.h"
#include "tests/support/fake_broker.h"
#include "tests/support/gateway_proc.h"
#include "tests/support/http.h"
#include "tests/support/rawconn.h"
#include "tests/support/teststack.h"

#include <czmq.h>
#include <curl/curl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#define FLOOD 5000
#define FLOOD_PER_IP 128 /* the gateway's default --max-per-ip */

typedef struct {
    char dir[256];
    char log[512];
    char tokens[512];
    fake_broker_t *broker;
    gateway_proc_t *gw;
} fixture_t;

static void answer_all(fake_broker_t *fb, const fake_request_t *request, void *user)
{
    (void)user;
    fake_broker_answer(fb, request, 200, json_pack("{s:s}", "op", request->op));
}

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/syn-test-exposure-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->log, sizeof f->log, "%s/gateway.log", f->dir);
    snprintf(f->tokens, sizeof f->tokens, "%s/tokens", f->dir);
    f->broker = fake_broker_start(&(fake_broker_config_t){.handler = answer_all});
    fake_broker_set_healthy(f->broker, 1);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    gateway_proc_stop(&f->gw);
    fake_broker_stop(&f->broker);
    if (getenv("SYN_TEST_LOGS")) {
        char *log = gateway_proc_read_file(f->log);
        fprintf(stderr, "gateway log:\n%s\n", log);
        free(log);
    }
    teststack_remove_dir(f->dir);
    free(f);
    return 0;
}

static void add_token(fixture_t *f, const char *name, syn_scope_t scope, char *token)
{
    char hash[SYN_TOKEN_HASH_HEX], err[256];
    assert_int_equal(syn_token_generate(token), 0);
    syn_token_hash(token, strlen(token), hash);
    if (syn_tokens_append(f->tokens, name, scope, hash, err, sizeof err) != 0)
        fail_msg("%s", err);
}

static long get_with(fixture_t *f, const char *path, const char *authorization)
{
    char url[512];
    snprintf(url, sizeof url, "%s%s", gateway_proc_url(f->gw), path);
    /* An event stream goes on: its status is in well before this. */
    http_extra_t extra = {.authorization = authorization, .timeout_ms = 1000};
    http_response_t r;
    http_request_ex("GET", url, NULL, NULL, &extra, &r);
    long status = r.status;
    http_response_clear(&r);
    return status;
}

static long get_bearer(fixture_t *f, const char *path, const char *token)
{
    char authorization[128];
    snprintf(authorization, sizeof authorization, "Bearer %s", token);
    return get_with(f, path, authorization);
}

/* Runs the gateway expecting a refusal: exit 2 and exactly one line naming what. */
static void expect_refusal(fixture_t *f, const char *const *args, const char *what)
{
    unlink(f->log);
    int rc = gateway_proc_run(f->log, args, 10000);
    char *log = gateway_proc_read_file(f->log);
    if (rc != 2 || !strstr(log, what) || gateway_proc_count_lines(f->log) != 1)
        fail_msg("exit %d, wanted 2 and one line with '%s'; log:\n%s", rc, what, log);
    free(log);
}

/* The addresses are chosen so that a missing refusal shows as something else, never
 * as traffic off this host: 192.0.2.1 (TEST-NET-1) is no address of this machine, so
 * binding it fails (exit 1); connecting to 0.0.0.0 reaches this host only, and the
 * gateway would run on (no exit). */
static void test_insecure_rules(void **state)
{
    fixture_t *f = *state;
    const char *broker = fake_broker_endpoint(f->broker);
    const char *events = fake_broker_events_endpoint(f->broker);
    char any_broker[128], any_events[128];
    snprintf(any_broker, sizeof any_broker, "tcp://0.0.0.0:%s", strrchr(broker, ':') + 1);
    snprintf(any_events, sizeof any_events, "tcp://0.0.0.0:%s", strrchr(events, ':') + 1);

    expect_refusal(f,
                   (const char *[]){"--http", "192.0.2.1:0", "--broker", broker, "--events",
                                    events, NULL},
                   "--http 192.0.2.1:0 is not a loopback address and neither --api-tokens nor "
                   "--api-user is given");
    expect_refusal(f,
                   (const char *[]){"--http", "127.0.0.1:0", "--broker", any_broker, "--events",
                                    events, NULL},
                   "is not a loopback address and no --curve-secret is given");
    expect_refusal(f,
                   (const char *[]){"--http", "127.0.0.1:0", "--broker", broker, "--events",
                                    any_events, NULL},
                   "--events tcp://0.0.0.0:");
    expect_refusal(f,
                   (const char *[]){"--http", "127.0.0.1:0", "--broker", broker, "--events",
                                    events, "--tls-cert", "cert.pem", NULL},
                   "--tls-cert is given without --tls-key");
    expect_refusal(f,
                   (const char *[]){"--http", "127.0.0.1:0", "--broker", broker, "--events",
                                    events, "--broker-key", "broker.key", NULL},
                   "--broker-key is given without --curve-secret");
    /* SYN_API_USER alone (no password) is half of a pair too. */
    setenv("SYN_API_USER", "alice", 1);
    expect_refusal(f,
                   (const char *[]){"--http", "127.0.0.1:0", "--broker", broker, "--events",
                                    events, NULL},
                   "--api-user is given without --api-password");
    unsetenv("SYN_API_USER");

    /* Allowed: then the bind itself fails, which shows the check let it through. */
    char token[SYN_TOKEN_TEXT];
    add_token(f, "reader", SYN_SCOPE_READ, token);
    const char *allowed[][9] = {
        {"--http", "192.0.2.1:0", "--broker", broker, "--events", events, "--insecure", NULL},
        {"--http", "192.0.2.1:0", "--broker", broker, "--events", events, "--api-tokens",
         f->tokens},
    };
    for (size_t i = 0; i < 2; i++) {
        unlink(f->log);
        assert_int_equal(gateway_proc_run(f->log, allowed[i], 10000), 1);
        assert_true(gateway_proc_wait_text(f->log, "cannot listen on 192.0.2.1:0", 1, 0));
    }
    /* A missing tokens file is named, with its path. */
    unlink(f->log);
    const char *missing[] = {"--http", "127.0.0.1:0", "--broker", broker, "--events", events,
                             "--api-tokens", "/nonexistent/tokens", NULL};
    assert_int_equal(gateway_proc_run(f->log, missing, 10000), 1);
    assert_true(gateway_proc_wait_text(f->log, "/nonexistent/tokens", 1, 0));
}

static gateway_proc_t *start_gateway(fixture_t *f, const char *extra1, const char *extra2)
{
    const char *args[] = {"--http", "127.0.0.1:0", "--broker", fake_broker_endpoint(f->broker),
                          "--events", fake_broker_events_endpoint(f->broker), "--log-level",
                          "debug", "--api-tokens", f->tokens, extra1, extra2, NULL};
    f->gw = gateway_proc_start(f->log, args);
    assert_non_null(f->gw);
    assert_true(gateway_proc_wait_healthy(f->gw, 10000));
    return f->gw;
}

static void test_sighup_reloads_the_tokens(void **state)
{
    fixture_t *f = *state;
    char reader[SYN_TOKEN_TEXT], admin[SYN_TOKEN_TEXT];
    add_token(f, "reader", SYN_SCOPE_READ, reader);
    start_gateway(f, NULL, NULL);
    assert_int_equal(get_bearer(f, "/workflows", reader), 200);
    add_token(f, "admin", SYN_SCOPE_ADMIN, admin);
    assert_int_equal(get_bearer(f, "/workflows", admin), 401);
    kill(gateway_proc_pid(f->gw), SIGHUP);
    assert_true(gateway_proc_wait_text(f->log, "API tokens reloaded", 1, 10000));
    assert_true(gateway_proc_wait_text(f->log, "tokens=2", 1, 0));
    assert_int_equal(get_bearer(f, "/workflows", admin), 200);

    /* A bad file: an ERROR naming file and line, and both tokens still work. */
    FILE *file = fopen(f->tokens, "a");
    fputs("intruder root sha256:nothex\n", file);
    fclose(file);
    kill(gateway_proc_pid(f->gw), SIGHUP);
    char where[600];
    snprintf(where, sizeof where, "%s:3:", f->tokens);
    assert_true(gateway_proc_wait_text(f->log, where, 1, 10000));
    assert_true(gateway_proc_wait_text(f->log, "ERROR", 1, 0));
    assert_true(gateway_proc_wait_text(f->log, "keeping the tokens loaded before", 1, 0));
    assert_int_equal(get_bearer(f, "/workflows", reader), 200);
    assert_int_equal(get_bearer(f, "/workflows", admin), 200);
}

/* Every place a token or password travels, right or wrong, at log level debug: none
 * of them is in the log. */
static void test_tokens_never_in_the_log(void **state)
{
    fixture_t *f = *state;
    char reader[SYN_TOKEN_TEXT], wrong[SYN_TOKEN_TEXT];
    add_token(f, "reader", SYN_SCOPE_READ, reader);
    assert_int_equal(syn_token_generate(wrong), 0);
    start_gateway(f, "--api-user=alice", "--api-password=wonderland-secret");
    char path[256];
    assert_int_equal(get_bearer(f, "/workflows", reader), 200);
    assert_int_equal(get_bearer(f, "/workflows", wrong), 401);
    snprintf(path, sizeof path, "/sse/activity?access_token=%s", reader);
    assert_int_equal(get_with(f, path, NULL), 200);
    snprintf(path, sizeof path, "/sse/activity?access_token=%s", wrong);
    assert_int_equal(get_with(f, path, NULL), 401);
    snprintf(path, sizeof path, "/workflows?access_token=%s", reader);
    assert_int_equal(get_with(f, path, NULL), 401);
    assert_int_equal(get_with(f, "/workflows", "Basic YWxpY2U6d29uZGVybGFuZC1zZWNyZXQ="), 200);
    assert_int_equal(get_with(f, "/workflows", "Basic YWxpY2U6d29uZGVybGFuZC1zZWNyZXU="), 401);
    /* The requests were logged (debug), so the log was there to leak into. */
    assert_true(gateway_proc_wait_text(f->log, "path=/workflows status=401", 1, 5000));
    assert_true(gateway_proc_wait_text(f->log, "path=/sse/activity status=401", 1, 5000));
    gateway_proc_stop(&f->gw); /* ends the stream that was let in, which logs it */
    assert_true(gateway_proc_wait_text(f->log, "path=/sse/activity status=200", 1, 0));
    char *log = gateway_proc_read_file(f->log);
    assert_null(strstr(log, reader));
    assert_null(strstr(log, wrong));
    assert_null(strstr(log, "wonderland"));
    assert_null(strstr(log, "YWxpY2U6"));
    free(log);
}

/* Marks the connections of fds the gateway has closed since the last look: how
 * many there were. */
static int count_newly_closed(const int *fds, bool *closed, int n)
{
    int newly = 0;
    for (int i = 0; i < n; i++)
        if (!closed[i] && rawconn_closed(fds[i])) {
            closed[i] = true;
            newly++;
        }
    return newly;
}

/* The greedy client: 5,000 half-sent requests from 127.0.0.1. */
static void test_flood_of_half_sent_requests(void **state)
{
    fixture_t *f = *state;
    long limit = rawconn_raise_fd_limit(FLOOD + 512);
    if (limit < FLOOD + 256)
        fail_msg("this test needs %d descriptors; the hard limit allows %ld", FLOOD + 256, limit);
    const char *args[] = {"--http", "127.0.0.1:0", "--broker", fake_broker_endpoint(f->broker),
                          "--events", fake_broker_events_endpoint(f->broker),
                          "--header-timeout-ms", "1000", NULL};
    f->gw = gateway_proc_start(f->log, args);
    assert_non_null(f->gw);
    assert_true(gateway_proc_wait_healthy(f->gw, 10000));
    http_response_t r;

    int *fds = calloc(FLOOD, sizeof *fds);
    bool *closed = calloc(FLOOD, sizeof *closed);
    long long flood_started = teststack_now_ms();
    for (int i = 0; i < FLOOD; i++) {
        fds[i] = rawconn_open("127.0.0.1", gateway_proc_port(f->gw), RAWCONN_HALF_REQUEST);
        if (fds[i] < 0)
            fail_msg("connection %d could not be made", i);
    }
    /* In place: the gateway has seen every one and closed all it does not hold. */
    int open_count = FLOOD;
    for (wait_t w = wait_begin(60000); open_count > FLOOD_PER_IP && wait_next(&w);)
        open_count -= count_newly_closed(fds, closed, FLOOD);
    long long in_place = teststack_now_ms();
    print_message("flood of %d in place after %lld ms, %d held\n", FLOOD,
                  in_place - flood_started, open_count);
    assert_true(open_count <= FLOOD_PER_IP);

    /* Another address is served at once, flood or not. */
    char url[128];
    snprintf(url, sizeof url, "%s/health", gateway_proc_url(f->gw));
    http_extra_t other = {.source = "127.0.0.2"};
    long long asked = teststack_now_ms();
    assert_int_equal(http_request_ex("GET", url, NULL, NULL, &other, &r), 0);
    long long latency = teststack_now_ms() - asked;
    assert_int_equal(r.status, 200);
    http_response_clear(&r);
    print_message("a client from 127.0.0.2 served in %lld ms\n", latency);
    /* How fast is the promise; a loaded machine (SYN_TEST_TIMEOUT_MULTIPLIER)
     * stretches the bound, as it stretches every wait. */
    assert_true(latency < wait_scaled_ms(100));

    /* The ones held are closed once the header timeout (1 s) has passed. */
    for (wait_t w = wait_begin(30000); open_count > 0 && wait_next(&w);)
        open_count -= count_newly_closed(fds, closed, FLOOD);
    print_message("the last held connection closed %lld ms after the flood was in place\n",
                  teststack_now_ms() - in_place);
    assert_int_equal(open_count, 0);
    for (int i = 0; i < FLOOD; i++)
        close(fds[i]);
    free(fds);
    free(closed);

    int lines = gateway_proc_count_lines(f->log);
    print_message("the gateway logged %d lines\n", lines);
    if (lines >= 20) {
        char *log = gateway_proc_read_file(f->log);
        fail_msg("the log has %d lines:\n%s", lines, log);
    }
}

int main(void)
{
    zsys_handler_set(NULL);
    zsys_init();
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_insecure_rules, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sighup_reloads_the_tokens, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tokens_never_in_the_log, setup, teardown),
        cmocka_unit_test_setup_teardown(test_flood_of_half_sent_requests, setup, teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
