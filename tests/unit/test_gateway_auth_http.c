/* Who may do what, over real HTTP against a fake broker (gateway/access.h): the token
 * matrix (no token, a wrong one, each scope against a read, an execute, a control call
 * and a workflow change), basic auth, ?access_token on the event streams and nowhere
 * else, HTTPS with curl against a CA the test makes, and a gateway whose CURVE keys
 * the broker does not take seeing the broker down. */
#include "auth/token.h"
#include "common/clock.h"
#include "gateway/gateway.h"
#include "tests/support/fake_broker.h"
#include "tests/support/gateway_harness.h"
#include "tests/support/http.h"
#include "tests/support/wait.h"
#include "tests/support/testca.h"

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

typedef struct {
    char dir[256];
    char tokens_file[512];
    char reader[SYN_TOKEN_TEXT], runner[SYN_TOKEN_TEXT], admin[SYN_TOKEN_TEXT];
    fake_broker_t *broker;
    gateway_harness_t *gw;
} fixture_t;

/* Every request the fake broker gets is answered 200 {"op": ...}. */
static void answer_all(fake_broker_t *fb, const fake_request_t *request, void *user)
{
    (void)user;
    fake_broker_answer(fb, request, 200, json_pack("{s:s}", "op", request->op));
}

static void add_token(fixture_t *f, const char *name, syn_scope_t scope, char *token)
{
    char hash[SYN_TOKEN_HASH_HEX], err[256];
    assert_int_equal(syn_token_generate(token), 0);
    syn_token_hash(token, strlen(token), hash);
    if (syn_tokens_append(f->tokens_file, name, scope, hash, err, sizeof err) != 0)
        fail_msg("%s", err);
}

static gateway_config_t base_config(fixture_t *f)
{
    return (gateway_config_t){
        .http = "127.0.0.1:0",
        .broker = fake_broker_endpoint(f->broker),
        .events = fake_broker_events_endpoint(f->broker),
        .request_timeout_ms = 2000,
        .health_timeout_ms = 200,
        .max_connections = 64,
    };
}

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/syn-test-auth-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->tokens_file, sizeof f->tokens_file, "%s/tokens", f->dir);
    add_token(f, "reader", SYN_SCOPE_READ, f->reader);
    add_token(f, "runner", SYN_SCOPE_RUN, f->runner);
    add_token(f, "admin", SYN_SCOPE_ADMIN, f->admin);
    f->broker = fake_broker_start(&(fake_broker_config_t){.handler = answer_all});
    fake_broker_set_healthy(f->broker, 1);
    gateway_config_t config = base_config(f);
    config.api_tokens = f->tokens_file;
    config.api_user = "alice";
    config.api_password = "wonderland";
    f->gw = gateway_harness_start(&config);
    if (!gateway_harness_wait_healthy(f->gw, 5000))
        fail_msg("gateway never reached the broker");
    fake_broker_reset_requests(f->broker);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    gateway_harness_stop(&f->gw);
    fake_broker_stop(&f->broker);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

typedef struct {
    const char *method, *path, *body;
} call_t;

/* One of each kind: a read, an execute, a control call, a workflow change. */
static const call_t calls[] = {
    {"GET", "/workflows", NULL},
    {"POST", "/workflows/wf/execute", "{}"},
    {"POST", "/executions/exec-1/pause", NULL},
    {"DELETE", "/workflows/wf", NULL},
};

static long call(fixture_t *f, const call_t *c, const char *authorization, http_response_t *r)
{
    char url[512];
    snprintf(url, sizeof url, "%s%s", gateway_harness_url(f->gw), c->path);
    http_extra_t extra = {.authorization = authorization};
    assert_int_equal(http_request_ex(c->method, url, c->body, NULL, &extra, r), 0);
    return r->status;
}

static void expect_401(fixture_t *f, const call_t *c, const char *authorization)
{
    http_response_t r;
    if (call(f, c, authorization, &r) != 401)
        fail_msg("%s %s with '%s' → %ld %s, want 401", c->method, c->path,
                 authorization ? authorization : "(none)", r.status, r.body ? r.body : "");
    assert_string_equal(r.body, "{\"detail\":\"Not authenticated\"}");
    assert_non_null(strstr(r.www_authenticate, "Bearer realm=\"syn\""));
    assert_non_null(strstr(r.www_authenticate, "Basic realm=\"syn\""));
    http_response_clear(&r);
}

/* want_detail NULL: allowed (the broker's 200); else 403 with that detail. */
static void expect_scope(fixture_t *f, const call_t *c, const char *token, const char *want_detail)
{
    char authorization[128];
    snprintf(authorization, sizeof authorization, "Bearer %s", token);
    http_response_t r;
    long status = call(f, c, authorization, &r);
    long want = want_detail ? 403 : 200;
    if (status != want)
        fail_msg("%s %s → %ld %s, want %ld", c->method, c->path, status, r.body ? r.body : "",
                 want);
    if (want_detail)
        assert_string_equal(json_string_value(json_object_get(r.json, "detail")), want_detail);
    http_response_clear(&r);
}

static void test_no_token_or_a_wrong_one_is_401(void **state)
{
    fixture_t *f = *state;
    char wrong[SYN_TOKEN_TEXT], authorization[128];
    assert_int_equal(syn_token_generate(wrong), 0);
    snprintf(authorization, sizeof authorization, "Bearer %s", wrong);
    for (size_t i = 0; i < sizeof calls / sizeof *calls; i++) {
        expect_401(f, &calls[i], NULL);
        expect_401(f, &calls[i], authorization);
        expect_401(f, &calls[i], "Bearer");
        expect_401(f, &calls[i], f->admin); /* no scheme */
    }
    /* Unknown paths say nothing without a token either. */
    expect_401(f, &(call_t){"GET", "/nowhere", NULL}, NULL);
    /* Nothing of it reached the broker. */
    assert_int_equal(fake_broker_requests(f->broker, NULL), 0);
    assert_true(gateway_harness_stats(f->gw).refused_auth >= 17);
    /* /health stays open and says what it always said. */
    http_response_t r;
    assert_int_equal(http_get(&r, "%s/health", gateway_harness_url(f->gw)), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(json_string_value(json_object_get(r.json, "broker")), "up");
    http_response_clear(&r);
}

static void test_each_scope_against_each_kind_of_call(void **state)
{
    fixture_t *f = *state;
    expect_scope(f, &calls[0], f->reader, NULL);
    expect_scope(f, &calls[1], f->reader, "Token reader may not run executions");
    expect_scope(f, &calls[2], f->reader, "Token reader may not control executions");
    expect_scope(f, &calls[3], f->reader, "Token reader may not change workflows");
    expect_scope(f, &calls[0], f->runner, NULL);
    expect_scope(f, &calls[1], f->runner, NULL);
    expect_scope(f, &calls[2], f->runner, NULL);
    expect_scope(f, &calls[3], f->runner, "Token runner may not change workflows");
    for (size_t i = 0; i < sizeof calls / sizeof *calls; i++)
        expect_scope(f, &calls[i], f->admin, NULL);
    /* Validating changes nothing: a read token may. */
    expect_scope(f, &(call_t){"POST", "/workflows/validate", "{\"content\":\"name: x\\n\"}"},
                 f->reader, NULL);
    /* What was allowed reached the broker; what was refused did not. */
    assert_int_equal(fake_broker_requests(f->broker, "workflow.archive"), 1);
    assert_int_equal(fake_broker_requests(f->broker, "execution.start"), 2);
}

static void test_basic_auth_is_admin(void **state)
{
    fixture_t *f = *state;
    char *good = NULL, *bad = NULL;
    assert_true(asprintf(&good, "Basic %s", "YWxpY2U6d29uZGVybGFuZA==") > 0); /* alice:wonderland */
    assert_true(asprintf(&bad, "Basic %s", "YWxpY2U6d29uZGVybGFuZQ==") > 0);  /* alice:wonderlane */
    for (size_t i = 0; i < sizeof calls / sizeof *calls; i++) {
        http_response_t r;
        assert_int_equal(call(f, &calls[i], good, &r), 200);
        http_response_clear(&r);
        expect_401(f, &calls[i], bad);
        expect_401(f, &calls[i], "Basic Ym9iOndvbmRlcmxhbmQ="); /* bob:wonderland */
    }
    free(good);
    free(bad);
}

/* Browsers' EventSource cannot set headers: the streams take ?access_token=, nothing
 * else does. */
static void test_access_token_in_the_query_only_on_streams(void **state)
{
    fixture_t *f = *state;
    char url[512], authorization[128];
    http_extra_t stream = {.timeout_ms = 300};
    http_response_t r;
    snprintf(url, sizeof url, "%s/sse/activity?access_token=%s", gateway_harness_url(f->gw),
             f->reader);
    assert_int_equal(http_request_ex("GET", url, NULL, NULL, &stream, &r), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.content_type, "text/event-stream");
    http_response_clear(&r);
    snprintf(url, sizeof url, "%s/sse/activity?access_token=%s", gateway_harness_url(f->gw),
             "not-a-token");
    assert_int_equal(http_request_ex("GET", url, NULL, NULL, &stream, &r), 0);
    assert_int_equal(r.status, 401);
    http_response_clear(&r);
    snprintf(url, sizeof url, "%s/sse/activity", gateway_harness_url(f->gw));
    assert_int_equal(http_request_ex("GET", url, NULL, NULL, &stream, &r), 0);
    assert_int_equal(r.status, 401);
    http_response_clear(&r);
    /* The header works on streams too. */
    snprintf(authorization, sizeof authorization, "Bearer %s", f->reader);
    stream.authorization = authorization;
    assert_int_equal(http_request_ex("GET", url, NULL, NULL, &stream, &r), 0);
    assert_int_equal(r.status, 200);
    http_response_clear(&r);

    /* Elsewhere the query counts for nothing, whatever the token may do. */
    http_extra_t plain = {0};
    snprintf(url, sizeof url, "%s/workflows?access_token=%s", gateway_harness_url(f->gw),
             f->admin);
    assert_int_equal(http_request_ex("GET", url, NULL, NULL, &plain, &r), 0);
    assert_int_equal(r.status, 401);
    http_response_clear(&r);
    snprintf(url, sizeof url, "%s/executions/exec-1/cancel?access_token=%s",
             gateway_harness_url(f->gw), f->admin);
    assert_int_equal(http_request_ex("POST", url, NULL, NULL, &plain, &r), 0);
    assert_int_equal(r.status, 401);
    http_response_clear(&r);
}

/* GET /whoami: open to all, it names the caller's token and scope so the dashboard
 * shows only what that caller may press, and says when a token is needed. */
static void test_whoami_names_the_caller(void **state)
{
    fixture_t *f = *state;
    struct {
        const char *authorization_token; /* NULL: none */
        const char *name, *scope;        /* NULL: JSON null */
    } cases[] = {{NULL, NULL, NULL}, {"not-a-token", NULL, NULL},
                 {f->reader, "reader", "read"}, {f->runner, "runner", "run"},
                 {f->admin, "admin", "admin"}};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char url[512], authorization[128];
        snprintf(url, sizeof url, "%s/whoami", gateway_harness_url(f->gw));
        snprintf(authorization, sizeof authorization, "Bearer %s",
                 cases[i].authorization_token ? cases[i].authorization_token : "");
        http_extra_t extra = {.authorization =
                                  cases[i].authorization_token ? authorization : NULL};
        http_response_t r;
        assert_int_equal(http_request_ex("GET", url, NULL, NULL, &extra, &r), 0);
        assert_int_equal(r.status, 200);
        assert_true(json_is_true(json_object_get(r.json, "auth")));
        json_t *name = json_object_get(r.json, "name"), *scope = json_object_get(r.json, "scope");
        if (cases[i].name) {
            assert_string_equal(json_string_value(name), cases[i].name);
            assert_string_equal(json_string_value(scope), cases[i].scope);
        } else {
            assert_true(json_is_null(name) && json_is_null(scope));
        }
        http_response_clear(&r);
    }
    /* The basic-auth user is admin, with no token name. */
    http_extra_t basic = {.authorization = "Basic YWxpY2U6d29uZGVybGFuZA=="}; /* alice */
    http_response_t r;
    char url[512];
    snprintf(url, sizeof url, "%s/whoami", gateway_harness_url(f->gw));
    assert_int_equal(http_request_ex("GET", url, NULL, NULL, &basic, &r), 0);
    assert_string_equal(json_string_value(json_object_get(r.json, "scope")), "admin");
    assert_true(json_is_null(json_object_get(r.json, "name")));
    http_response_clear(&r);
    /* The access token in the query names nobody here: streams only. */
    snprintf(url, sizeof url, "%s/whoami?access_token=%s", gateway_harness_url(f->gw), f->admin);
    http_extra_t none = {0};
    assert_int_equal(http_request_ex("GET", url, NULL, NULL, &none, &r), 0);
    assert_true(json_is_null(json_object_get(r.json, "scope")));
    http_response_clear(&r);
    assert_int_equal(fake_broker_requests(f->broker, NULL), 0);
}

/* The dashboard's files hold no data: they load without a token, so the page can
 * ask for one. Through the whole request lifecycle (an answer made whole by ui.c). */
static void test_dashboard_files_need_no_token(void **state)
{
    fixture_t *f = *state;
    const struct {
        const char *path;
        long status;
        const char *type;
    } files[] = {{"/", 302, ""}, {"/ui", 302, ""}, {"/ui/", 200, "text/html; charset=utf-8"},
                 {"/ui/app.js", 200, "text/javascript; charset=utf-8"},
                 {"/ui/nope.js", 404, "application/json"}};
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        http_response_t r;
        assert_int_equal(http_get(&r, "%s%s", gateway_harness_url(f->gw), files[i].path), 0);
        if (r.status != files[i].status)
            fail_msg("GET %s → %ld, want %ld", files[i].path, r.status, files[i].status);
        assert_string_equal(r.content_type, files[i].type);
        http_response_clear(&r);
    }
    assert_int_equal(fake_broker_requests(f->broker, NULL), 0);
}

/* HTTPS through libmicrohttpd's TLS: curl trusts only the test's CA and checks that the
 * certificate names 127.0.0.1. */
static void test_tls_with_curl(void **state)
{
    fixture_t *f = *state;
    testca_files_t files;
    assert_int_equal(testca_make(f->dir, "127.0.0.1", &files), 0);
    gateway_config_t config = base_config(f);
    config.tls_cert = files.cert;
    config.tls_key = files.key;
    gateway_harness_t *tls = gateway_harness_start(&config);
    char url[128];
    snprintf(url, sizeof url, "https://127.0.0.1:%d/health", gateway_harness_port(tls));
    http_extra_t trusted = {.cainfo = files.ca};
    http_response_t r;
    long status = 0;
    for (wait_t w = wait_begin(10000);;) {
        assert_int_equal(http_request_ex("GET", url, NULL, NULL, &trusted, &r), 0);
        status = r.status;
        http_response_clear(&r);
        if (status == 200 || !wait_next(&w))
            break;
    }
    assert_int_equal(status, 200);
    /* A client that does not trust the CA refuses the certificate... */
    http_extra_t untrusted = {0};
    assert_int_equal(http_request_ex("GET", url, NULL, NULL, &untrusted, &r), -1);
    http_response_clear(&r);
    /* ...and one speaking plain HTTP gets no answer. */
    snprintf(url, sizeof url, "http://127.0.0.1:%d/health", gateway_harness_port(tls));
    http_extra_t quick = {.timeout_ms = 2000};
    http_request_ex("GET", url, NULL, NULL, &quick, &r);
    assert_int_not_equal(r.status, 200);
    http_response_clear(&r);
    gateway_harness_stop(&tls);

    /* The certificate is checked against the name asked for: 127.0.0.2 is not in it. */
    testca_files_t other;
    char dir2[300];
    snprintf(dir2, sizeof dir2, "%s/other", f->dir);
    assert_int_equal(mkdir(dir2, 0700), 0);
    assert_int_equal(testca_make(dir2, "127.0.0.2", &other), 0);
    config.tls_cert = other.cert;
    config.tls_key = other.key;
    tls = gateway_harness_start(&config);
    snprintf(url, sizeof url, "https://127.0.0.1:%d/health", gateway_harness_port(tls));
    http_extra_t wrong_name = {.cainfo = other.ca};
    assert_int_equal(http_request_ex("GET", url, NULL, NULL, &wrong_name, &r), -1);
    http_response_clear(&r);
    gateway_harness_stop(&tls);

    /* Unreadable files are named at start. */
    char err[512];
    config.tls_cert = "/nonexistent/cert.pem";
    assert_null(gateway_new(&config, err, sizeof err));
    assert_non_null(strstr(err, "cannot read --tls-cert /nonexistent/cert.pem"));
    config.tls_cert = files.cert;
    config.tls_key = f->tokens_file; /* not a key */
    assert_null(gateway_new(&config, err, sizeof err));
    assert_non_null(strstr(err, "with TLS"));
}

/* A CURVE broker: a gateway with its key gets in; one without a key, or with the wrong
 * broker key, sees the broker down. */
static void test_gateway_without_the_key_sees_the_broker_down(void **state)
{
    fixture_t *f = *state;
    char broker_key[300], broker_secret[300], gw_secret[300], other_key[300];
    snprintf(broker_key, sizeof broker_key, "%s/broker.key", f->dir);
    snprintf(broker_secret, sizeof broker_secret, "%s/broker.key_secret", f->dir);
    snprintf(gw_secret, sizeof gw_secret, "%s/gateway.key_secret", f->dir);
    snprintf(other_key, sizeof other_key, "%s/other.key", f->dir);
    zcert_t *cert = zcert_new();
    assert_int_equal(zcert_save(cert, broker_key), 0);
    zcert_destroy(&cert);
    cert = zcert_new();
    char gw_key[300];
    snprintf(gw_key, sizeof gw_key, "%s/gateway.key", f->dir);
    assert_int_equal(zcert_save(cert, gw_key), 0);
    zcert_destroy(&cert);
    cert = zcert_new();
    assert_int_equal(zcert_save(cert, other_key), 0);
    zcert_destroy(&cert);

    fake_broker_t *curve_broker =
        fake_broker_start(&(fake_broker_config_t){.curve_secret = broker_secret});
    fake_broker_set_healthy(curve_broker, 1);
    gateway_config_t config = base_config(f);
    config.broker = fake_broker_endpoint(curve_broker);
    config.events = fake_broker_events_endpoint(curve_broker);

    config.curve_secret = gw_secret;
    config.broker_key = broker_key;
    gateway_harness_t *keyed = gateway_harness_start(&config);
    assert_true(gateway_harness_wait_healthy(keyed, 5000));
    gateway_harness_stop(&keyed);

    config.broker_key = other_key; /* the wrong server key: the handshake fails */
    gateway_harness_t *wrong = gateway_harness_start(&config);
    config.curve_secret = config.broker_key = NULL;
    gateway_harness_t *plain = gateway_harness_start(&config);
    /* The keyed gateway got in within a few tries; give these many times that. */
    for (int i = 0; i < 30; i++) {
        http_response_t r;
        assert_int_equal(http_get(&r, "%s/health", gateway_harness_url(plain)), 0);
        assert_int_equal(r.status, 503);
        assert_string_equal(json_string_value(json_object_get(r.json, "broker")), "down");
        http_response_clear(&r);
        assert_int_equal(http_get(&r, "%s/health", gateway_harness_url(wrong)), 0);
        assert_int_equal(r.status, 503);
        http_response_clear(&r);
        /* That they stay out over a stretch is what is checked: not a wait. */
        wait_quiet_ms(20);
    }
    assert_int_equal(fake_broker_requests(curve_broker, NULL), 1);
    gateway_harness_stop(&plain);
    gateway_harness_stop(&wrong);
    fake_broker_stop(&curve_broker);

    /* A secret certificate that is not one is named at start. */
    char err[512];
    config = base_config(f);
    config.curve_secret = broker_key;
    config.broker_key = broker_key;
    assert_null(gateway_new(&config, err, sizeof err));
    assert_non_null(strstr(err, "has no secret key"));
}

int main(void)
{
    zsys_handler_set(NULL);
    zsys_init();
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_no_token_or_a_wrong_one_is_401, setup, teardown),
        cmocka_unit_test_setup_teardown(test_each_scope_against_each_kind_of_call, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_basic_auth_is_admin, setup, teardown),
        cmocka_unit_test_setup_teardown(test_access_token_in_the_query_only_on_streams, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_whoami_names_the_caller, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dashboard_files_need_no_token, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tls_with_curl, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gateway_without_the_key_sees_the_broker_down,
                                        setup, teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
