/* The gateway's HTTP server in-process against a fake broker (a ROUTER + PUB in a
 * thread answering with canned replies): routing, 404/405/413/422, 503 with
 * Retry-After when the broker is silent or absent, late replies, clients that hang
 * up while waiting, keep-alive with many requests in flight, shutdown while waiting. */
#include "gateway/gateway.h"
#include "proto/msg.h"
#include "tests/support/fake_broker.h"
#include "tests/support/gateway_harness.h"
#include "tests/support/http.h"
#include "tests/support/wait.h"

#include <arpa/inet.h>
#include <czmq.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cmocka.h>

#define REQUEST_TIMEOUT_MS 500
#define HEALTH_TIMEOUT_MS 100
#define LATE_REPLY_MS (REQUEST_TIMEOUT_MS + 300)
#define MAX_HELD 512

/* ---- what the fake broker answers (tests/support/fake_broker.h) ---- */

typedef struct {
    unsigned char identity[256];
    size_t identity_len;
    syn_msg_t *reply;
    int64_t due_ms;
} delayed_t;

/* The replies kept back, and the knobs the tests turn. Touched by the broker's
 * thread only, but for the atomics. */
typedef struct {
    atomic_int health_silent;   /* do not answer health */
    atomic_int hold_target;     /* hold "hold-*" replies until this many are held */
    atomic_int publish;         /* events still to publish */
    delayed_t delayed[MAX_HELD];
    size_t delayed_count;
    delayed_t held[MAX_HELD];
    size_t held_count;
} script_t;

static syn_msg_t *make_reply(json_int_t id, int status, json_t *body)
{
    return syn_msg_new_with(SYN_MSG_REPLY,
                            json_pack("{s:I, s:i, s:o}", "id", id, "status", status, "body", body));
}

static void send_delayed(fake_broker_t *fb, delayed_t *d)
{
    fake_broker_send(fb, d->identity, d->identity_len, d->reply);
    syn_msg_destroy(&d->reply);
}

/* Canned answers, chosen by operation and id:
 *   health                     200 {"status":"ok","broker":"up","workers":2} (unless silent)
 *   workflow.get "silent"      never answered
 *   workflow.get "late"        answered after LATE_REPLY_MS (past the gateway's timeout)
 *   workflow.get "hold-*"      held until hold_target are held, then answered newest first
 *   execution.status           404 {"detail":"Execution not found: <id>"}
 *   execution.active           200 []
 *   workflow.get "as-yaml"     200 a workflow (for export)
 *   workflow.create            201 {"op","args"}
 *   anything else              200 {"op","args"} */
static void script_handle(fake_broker_t *fb, const fake_request_t *request, void *user)
{
    script_t *script = user;
    json_int_t id = request->id;
    const char *op = request->op;
    json_t *args = request->args;
    const char *wf = json_string_value(json_object_get(args, "id"));
    delayed_t d = {.identity_len = request->identity_len};
    memcpy(d.identity, request->identity, request->identity_len);

    if (strcmp(op, "health") == 0) {
        if (atomic_load(&script->health_silent))
            return;
        d.reply = make_reply(id, 200, json_pack("{s:s, s:s, s:i}", "status", "ok", "broker",
                                                "up", "workers", 2));
    } else if (strcmp(op, "execution.status") == 0) {
        char detail[256];
        snprintf(detail, sizeof detail, "Execution not found: %s",
                 json_string_value(json_object_get(args, "execution_id")));
        d.reply = make_reply(id, 404, json_pack("{s:s}", "detail", detail));
    } else if (strcmp(op, "execution.active") == 0) {
        d.reply = make_reply(id, 200, json_array());
    } else if (strcmp(op, "workflow.get") == 0 && wf && strcmp(wf, "as-yaml") == 0) {
        d.reply = make_reply(
            id, 200,
            json_pack("{s:s, s:s, s:n, s:[{s:s, s:s, s:i, s:s, s:i}], s:s}", "id", "as-yaml",
                      "name", "As YAML", "description", "phases", "phase_id", "p", "name", "P",
                      "order", 1, "prompt_template", "line one\nline two\n", "timeout_seconds",
                      300, "created_at", "2026-11-28T14:56:19.123456Z"));
    } else {
        int status = strcmp(op, "workflow.create") == 0 ? 201 : 200;
        d.reply = make_reply(id, status, json_pack("{s:s, s:O}", "op", op, "args", args));
    }

    if (wf && strcmp(wf, "silent") == 0) {
        syn_msg_destroy(&d.reply);
    } else if (wf && strcmp(wf, "late") == 0 && script->delayed_count < MAX_HELD) {
        d.due_ms = zclock_mono() + LATE_REPLY_MS;
        script->delayed[script->delayed_count++] = d;
    } else if (wf && strncmp(wf, "hold-", 5) == 0 && script->held_count < MAX_HELD) {
        script->held[script->held_count++] = d;
        if ((int)script->held_count >= atomic_load(&script->hold_target)) {
            while (script->held_count > 0)
                send_delayed(fb, &script->held[--script->held_count]);
        }
    } else {
        send_delayed(fb, &d);
    }
}

/* Every turn: the late replies that are due, and one event while publish > 0. */
static void script_tick(fake_broker_t *fb, void *user)
{
    script_t *script = user;
    int64_t now = zclock_mono();
    for (size_t i = 0; i < script->delayed_count;) {
        if (script->delayed[i].due_ms <= now) {
            send_delayed(fb, &script->delayed[i]);
            script->delayed[i] = script->delayed[--script->delayed_count];
        } else {
            i++;
        }
    }
    if (atomic_load(&script->publish) <= 0)
        return;
    atomic_fetch_sub(&script->publish, 1);
    json_t *event = json_pack("{s:i, s:I, s:s, s:s, s:{}}", "seq", 1, "time",
                              (json_int_t)zclock_time(), "execution_id", "exec-1", "type",
                              "ExecutionStarted", "data");
    fake_broker_publish(fb, event);
    json_decref(event);
}

/* The replies still kept back when the broker stopped. */
static void script_clear(script_t *script)
{
    for (size_t i = 0; i < script->delayed_count; i++)
        syn_msg_destroy(&script->delayed[i].reply);
    for (size_t i = 0; i < script->held_count; i++)
        syn_msg_destroy(&script->held[i].reply);
}

/* ---- the gateway under test (tests/support/gateway_harness.h) ---- */

static gateway_harness_t *start_gateway(const char *broker, const char *events)
{
    gateway_config_t config = {
        .http = "127.0.0.1:0",
        .broker = broker,
        .events = events,
        .request_timeout_ms = REQUEST_TIMEOUT_MS,
        .health_timeout_ms = HEALTH_TIMEOUT_MS,
        .max_connections = 1024,
    };
    return gateway_harness_start(&config);
}

typedef struct {
    script_t script;
    fake_broker_t *broker;
    gateway_harness_t *gw;
    gateway_stats_t base;
} fixture_t;

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof *f);
    atomic_store(&f->script.hold_target, 1);
    f->broker = fake_broker_start(&(fake_broker_config_t){
        .handler = script_handle, .tick = script_tick, .user = &f->script, .poll_ms = 5});
    f->gw = start_gateway(fake_broker_endpoint(f->broker), fake_broker_events_endpoint(f->broker));
    /* Until the gateway's DEALER is connected to the broker, sends fail at once
     * (ZMQ_IMMEDIATE) and every request is answered 503. */
    if (!gateway_harness_wait_healthy(f->gw, 2000))
        fail_msg("gateway never reached the broker");
    /* Every test counts from here. */
    f->base = gateway_harness_stats(f->gw);
    fake_broker_reset_requests(f->broker);
    *state = f;
    return 0;
}

/* The gateway's counters since setup (in_flight as it is now). */
static gateway_stats_t stats_since_setup(fixture_t *f)
{
    gateway_stats_t now = gateway_harness_stats(f->gw), base = f->base;
    now.requests_sent -= base.requests_sent;
    now.replies -= base.replies;
    now.timeouts -= base.timeouts;
    now.late_replies -= base.late_replies;
    now.send_failures -= base.send_failures;
    now.bad_messages -= base.bad_messages;
    now.events -= base.events;
    return now;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    gateway_harness_stop(&f->gw);
    fake_broker_stop(&f->broker);
    script_clear(&f->script);
    free(f);
    return 0;
}

/* ---- helpers ---- */

static void assert_json_text(json_t *got, const char *want_text)
{
    json_t *want = json_loads(want_text, JSON_DECODE_ANY, NULL);
    assert_non_null(want);
    if (!got || !json_equal(got, want)) {
        char *text = got ? json_dumps(got, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
        print_error("got:  %s\nwant: %s\n", text ? text : "(null)", want_text);
        free(text);
        json_decref(want);
        fail();
    }
    json_decref(want);
}

static void expect(const char *method, const char *url, const char *body, long status,
                   const char *want_body)
{
    http_response_t r;
    assert_int_equal(http_request(method, url, body, NULL, &r), 0);
    if (r.status != status)
        print_error("%s %s → %ld %s\n", method, url, r.status, r.body ? r.body : "");
    assert_int_equal(r.status, status);
    assert_string_equal(r.content_type, "application/json");
    assert_json_text(r.json, want_body);
    http_response_clear(&r);
}

static int connect_to(gateway_harness_t *h)
{
    int port = gateway_harness_port(h);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&addr, sizeof addr), 0);
    struct timeval tv = {.tv_sec = 5};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return fd;
}

static void send_all(int fd, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, data, len, MSG_NOSIGNAL);
        if (n <= 0)
            return; /* the server may close early (413): that is fine */
        data += n;
        len -= (size_t)n;
    }
}

/* Reads until the server closes (or 5 s pass); returns the malloc'd text. */
static char *read_all(int fd)
{
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (len + 1024 > cap)
            buf = realloc(buf, cap *= 2);
        ssize_t n = recv(fd, buf + len, cap - len - 1, 0);
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    buf[len] = '\0';
    return buf;
}

/* One request on a raw connection with "Connection: close"; returns the response. */
static char *raw_request(gateway_harness_t *h, const char *request)
{
    int fd = connect_to(h);
    send_all(fd, request, strlen(request));
    char *response = read_all(fd);
    close(fd);
    return response;
}

static void wait_for_received(fake_broker_t *fb, int count)
{
    WAIT_FOR(fake_broker_requests(fb, NULL) >= count, 1000);
    assert_true(fake_broker_requests(fb, NULL) >= count);
}

/* ---- tests ---- */

static void test_routes_reach_the_broker(void **state)
{
    fixture_t *f = *state;
    char url[256];
    snprintf(url, sizeof url, "%s/health", gateway_harness_url(f->gw));
    expect("GET", url, NULL, 200, "{\"status\":\"healthy\",\"broker\":\"up\",\"workers\":2,"
                              "\"mode\":\"full\",\"degraded_reasons\":[]}");
    snprintf(url, sizeof url, "%s/workflows?page=2&page_size=5&ignored=1", gateway_harness_url(f->gw));
    expect("GET", url, NULL, 200,
           "{\"op\":\"workflow.list\",\"args\":{\"workflow_type\":null,\"include_archived\":"
           "false,\"page\":2,\"page_size\":5}}");
    snprintf(url, sizeof url, "%s/workflows", gateway_harness_url(f->gw));
    expect("POST", url,
           "{\"name\":\"n\",\"phases\":[{\"phase_id\":\"p\",\"name\":\"P\",\"order\":1,"
           "\"prompt_template\":\"x\",\"model\":null}]}",
           201,
           "{\"op\":\"workflow.create\",\"args\":{\"name\":\"n\",\"phases\":[{\"phase_id\":\"p\","
           "\"name\":\"P\",\"order\":1,\"prompt_template\":\"x\"}]},"
           /* the original's CreateWorkflowResponse fields (gateway/original_compat.h) */
           "\"repository_url\":\"\",\"requires_repos\":true,\"warnings\":[]}");
    snprintf(url, sizeof url, "%s/workflows/wf%%2D1", gateway_harness_url(f->gw)); /* URL-decoded: wf-1 */
    expect("GET", url, NULL, 200, "{\"op\":\"workflow.get\",\"args\":{\"id\":\"wf-1\"}}");
    snprintf(url, sizeof url, "%s/workflows/wf-1/execute", gateway_harness_url(f->gw));
    expect("POST", url, "{\"inputs\":{\"a\":\"b\"},\"provider\":\"x\"}", 200,
           "{\"op\":\"execution.start\",\"args\":{\"workflow_id\":\"wf-1\",\"inputs\":{\"a\":\"b\"},"
           "\"task\":null,\"repos\":[]}}");
    snprintf(url, sizeof url, "%s/workflows/wf-1/executions/exec-9", gateway_harness_url(f->gw));
    expect("GET", url, NULL, 404, "{\"detail\":\"Execution not found: exec-9\"}");
    snprintf(url, sizeof url, "%s/workflows/executions/active?limit=3", gateway_harness_url(f->gw));
    expect("GET", url, NULL, 200, "[]");
}

/* Issue 6 over real HTTP: the Content-Type of uploads, the answer the gateway gives
 * alone, the YAML answer of export, and the DELETE and PUT routes. */
static void test_yaml_routes(void **state)
{
    fixture_t *f = *state;
    char url[256];
    http_response_t r;
    const char *doc = "name: Y\nphases:\n  - {id: p, name: P, order: 1, prompt_template: hi}\n";
    snprintf(url, sizeof url, "%s/workflows/from-yaml?id=copy", gateway_harness_url(f->gw));
    assert_int_equal(http_request("POST", url, doc, "application/x-yaml; charset=UTF-8", &r), 0);
    assert_int_equal(r.status, 201);
    assert_json_text(r.json, "{\"op\":\"workflow.create\",\"args\":{\"id\":\"copy\",\"name\":"
                             "\"Y\",\"phases\":[{\"phase_id\":\"p\",\"name\":\"P\",\"order\":1,"
                             "\"prompt_template\":\"hi\"}]}}");
    http_response_clear(&r);
    int reached = fake_broker_requests(f->broker, NULL);
    assert_int_equal(http_request("POST", url, doc, "text/plain", &r), 0);
    assert_int_equal(r.status, 415);
    assert_string_equal(r.content_type, "application/json");
    assert_non_null(strstr(r.body, "Unsupported Media Type: text/plain"));
    http_response_clear(&r);
    snprintf(url, sizeof url, "%s/workflows/validate", gateway_harness_url(f->gw));
    assert_int_equal(http_request("POST", url, "{\"content\":\"name: [\"}", NULL, &r), 0);
    assert_int_equal(r.status, 200);
    assert_true(json_is_false(json_object_get(r.json, "valid")));
    assert_int_equal(json_array_size(json_object_get(r.json, "errors")), 1);
    http_response_clear(&r);
    assert_int_equal(http_request("POST", url, doc, "application/yaml", &r), 0);
    assert_int_equal(r.status, 200);
    assert_json_text(r.json, "{\"valid\":true,\"errors\":[],\"name\":\"Y\","
                             "\"workflow_type\":\"custom\",\"phase_count\":1,\"warnings\":[]}");
    http_response_clear(&r);
    assert_int_equal(fake_broker_requests(f->broker, NULL), reached);

    snprintf(url, sizeof url, "%s/workflows/as-yaml/export", gateway_harness_url(f->gw));
    assert_int_equal(http_request("GET", url, NULL, NULL, &r), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.content_type, "application/yaml; charset=utf-8");
    assert_string_equal(r.body, "id: as-yaml\n"
                                "name: As YAML\n"
                                "phases:\n"
                                "  - id: p\n"
                                "    name: P\n"
                                "    order: 1\n"
                                "    timeout_seconds: 300\n"
                                "    prompt_template: |\n"
                                "      line one\n"
                                "      line two\n");
    http_response_clear(&r);
    snprintf(url, sizeof url, "%s/workflows/wf-1/export", gateway_harness_url(f->gw));
    expect("GET", url, NULL, 502, "{\"detail\":\"invalid reply from broker: not a workflow\"}");

    snprintf(url, sizeof url, "%s/workflows/wf-1", gateway_harness_url(f->gw));
    expect("DELETE", url, NULL, 200, "{\"op\":\"workflow.archive\",\"args\":{\"id\":\"wf-1\"}}");
    snprintf(url, sizeof url, "%s/workflows/wf-1/phases/p", gateway_harness_url(f->gw));
    expect("PUT", url, "{\"prompt_template\":\"new\"}", 200,
           "{\"op\":\"workflow.phase_update\",\"args\":{\"workflow_id\":\"wf-1\","
           "\"phase_id\":\"p\",\"prompt_template\":\"new\"}}");
}

static void test_not_found_and_method_not_allowed(void **state)
{
    fixture_t *f = *state;
    char url[256];
    snprintf(url, sizeof url, "%s/nope", gateway_harness_url(f->gw));
    expect("GET", url, NULL, 404, "{\"detail\":\"Not Found\"}");
    snprintf(url, sizeof url, "%s/workflows/", gateway_harness_url(f->gw));
    expect("GET", url, NULL, 404, "{\"detail\":\"Not Found\"}");
    snprintf(url, sizeof url, "%s/nope", gateway_harness_url(f->gw));
    expect("POST", url, "{}", 404, "{\"detail\":\"Not Found\"}");
    snprintf(url, sizeof url, "%s/health", gateway_harness_url(f->gw));
    expect("POST", url, "{}", 405, "{\"detail\":\"Method Not Allowed\"}");
    snprintf(url, sizeof url, "%s/workflows/x/execute", gateway_harness_url(f->gw));
    expect("GET", url, NULL, 405, "{\"detail\":\"Method Not Allowed\"}");

    char *response = raw_request(f->gw, "DELETE /workflows HTTP/1.1\r\nHost: x\r\n"
                                        "Connection: close\r\n\r\n");
    assert_non_null(strstr(response, "HTTP/1.1 405"));
    assert_non_null(strstr(response, "\r\nAllow: GET, POST\r\n"));
    assert_non_null(strstr(response, "{\"detail\":\"Method Not Allowed\"}"));
    free(response);
    assert_int_equal(fake_broker_requests(f->broker, NULL), 0);
}

/* An escaped NUL is refused where it stands, never taken for the end of the text:
 * "/workflows/wf-1%00x" is not workflow wf-1, nor "limit=5%00" the limit 5. */
static void test_escaped_nul_is_refused(void **state)
{
    fixture_t *f = *state;
    char url[256];
    snprintf(url, sizeof url, "%s/workflows/wf-1%%00x", gateway_harness_url(f->gw));
    expect("DELETE", url, NULL, 404, "{\"detail\":\"Not Found\"}");
    expect("GET", url, NULL, 404, "{\"detail\":\"Not Found\"}");
    snprintf(url, sizeof url, "%s/executions?workflow_id=wf-1%%00x", gateway_harness_url(f->gw));
    expect("GET", url, NULL, 422,
           "{\"detail\":[{\"loc\":[\"query\",\"workflow_id\"],\"msg\":\"Input should be a "
           "valid string, unable to parse raw data as a unicode string\",\"type\":"
           "\"string_unicode\"}]}");
    snprintf(url, sizeof url, "%s/workflows/executions/active?limit=5%%00", gateway_harness_url(f->gw));
    expect("GET", url, NULL, 422,
           "{\"detail\":[{\"loc\":[\"query\",\"limit\"],\"msg\":\"Input should be a valid "
           "integer, unable to parse string as an integer\",\"type\":\"int_parsing\"}]}");
    assert_int_equal(fake_broker_requests(f->broker, NULL), 0);
    /* Other escapes decode as before, "%25" included: "%2500" is the text "%00". */
    snprintf(url, sizeof url, "%s/workflows/wf%%2500%%2D1", gateway_harness_url(f->gw));
    expect("GET", url, NULL, 200, "{\"op\":\"workflow.get\",\"args\":{\"id\":\"wf%00-1\"}}");
}

static void test_validation_errors_do_not_reach_the_broker(void **state)
{
    fixture_t *f = *state;
    char url[256];
    snprintf(url, sizeof url, "%s/workflows/wf-1/execute", gateway_harness_url(f->gw));
    expect("POST", url, "{\"inputs\":{\"k\":1},\"bogus\":true}", 422,
           "{\"detail\":[{\"loc\":[\"body\",\"inputs\",\"k\"],\"msg\":\"Input should be a valid "
           "string\",\"type\":\"string_type\"},{\"loc\":[\"body\",\"bogus\"],\"msg\":\"Extra inputs "
           "are not permitted\",\"type\":\"extra_forbidden\"}]}");
    expect("POST", url, NULL, 422,
           "{\"detail\":[{\"loc\":[\"body\"],\"msg\":\"Field required\",\"type\":\"missing\"}]}");
    expect("POST", url, "{\"a\":", 422,
           "{\"detail\":[{\"loc\":[\"body\",5],\"msg\":\"JSON decode error\",\"type\":\"json_invalid\"}]}");
    snprintf(url, sizeof url, "%s/workflows/executions/active?limit=abc", gateway_harness_url(f->gw));
    expect("GET", url, NULL, 422,
           "{\"detail\":[{\"loc\":[\"query\",\"limit\"],\"msg\":\"Input should be a valid integer, "
           "unable to parse string as an integer\",\"type\":\"int_parsing\"}]}");
    snprintf(url, sizeof url, "%s/workflows/executions/active?limit=101", gateway_harness_url(f->gw));
    expect("GET", url, NULL, 422,
           "{\"detail\":[{\"loc\":[\"query\",\"limit\"],\"msg\":\"Input should be less than or "
           "equal to 100\",\"type\":\"less_than_equal\"}]}");
    assert_int_equal(fake_broker_requests(f->broker, NULL), 0);
}

/* {"task":"aaa…"} of exactly len bytes. */
static char *task_body(size_t len)
{
    char *body = malloc(len + 1);
    memcpy(body, "{\"task\":\"", 9);
    memset(body + 9, 'a', len - 11);
    memcpy(body + len - 2, "\"}", 3);
    return body;
}

static void test_body_limit(void **state)
{
    fixture_t *f = *state;
    char url[256];
    snprintf(url, sizeof url, "%s/workflows/wf-1/execute", gateway_harness_url(f->gw));
    char *body = task_body(GATEWAY_BODY_LIMIT);
    http_response_t r;
    assert_int_equal(http_post(&r, body, "%s", url), 0);
    assert_int_equal(r.status, 200); /* exactly the limit is fine */
    assert_int_equal(strlen(json_string_value(
                         json_object_get(json_object_get(r.json, "args"), "task"))),
                     GATEWAY_BODY_LIMIT - 11);
    http_response_clear(&r);
    free(body);

    body = task_body(GATEWAY_BODY_LIMIT + 1);
    expect("POST", url, body, 413, "{\"detail\":\"Request body too large\"}");
    free(body);

    /* Without a Content-Length (chunked) the limit is found while reading. */
    int fd = connect_to(f->gw);
    const char *head = "POST /workflows/wf-1/execute HTTP/1.1\r\nHost: x\r\n"
                       "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
    send_all(fd, head, strlen(head));
    char chunk[64 * 1024 + 16];
    int n = snprintf(chunk, sizeof chunk, "%x\r\n", 64 * 1024);
    memset(chunk + n, 'x', 64 * 1024);
    memcpy(chunk + n + 64 * 1024, "\r\n", 2);
    for (int i = 0; i < 17; i++) /* 17 × 64 KiB > 1 MiB */
        send_all(fd, chunk, (size_t)n + 64 * 1024 + 2);
    send_all(fd, "0\r\n\r\n", 5);
    char *response = read_all(fd);
    close(fd);
    assert_non_null(strstr(response, "HTTP/1.1 413"));
    assert_non_null(strstr(response, "{\"detail\":\"Request body too large\"}"));
    free(response);

    /* Under the byte limit but over the message's element budget (proto/msg.h). */
    size_t count = 300000;
    body = malloc(3 * count + 32);
    size_t len = (size_t)sprintf(body, "{\"repos\":[");
    for (size_t i = 0; i < count; i++)
        len += (size_t)sprintf(body + len, "%s\"\"", i ? "," : "");
    sprintf(body + len, "]}");
    assert_true(strlen(body) < GATEWAY_BODY_LIMIT);
    expect("POST", url, body, 413, "{\"detail\":\"Request body too large\"}");
    free(body);
    assert_int_equal(fake_broker_requests(f->broker, NULL), 1);
}

static void test_silent_broker_gives_503(void **state)
{
    fixture_t *f = *state;
    http_response_t r;
    int64_t start = zclock_mono();
    assert_int_equal(http_get(&r, "%s/workflows/silent", gateway_harness_url(f->gw)), 0);
    int64_t took = zclock_mono() - start;
    assert_int_equal(r.status, 503);
    assert_string_equal(r.retry_after, "1");
    assert_json_text(r.json, "{\"detail\":\"broker unavailable\"}");
    assert_true(took >= REQUEST_TIMEOUT_MS - 20);
    assert_true(took < REQUEST_TIMEOUT_MS + 1000);
    http_response_clear(&r);

    atomic_store(&f->script.health_silent, 1);
    start = zclock_mono();
    assert_int_equal(http_get(&r, "%s/health", gateway_harness_url(f->gw)), 0);
    took = zclock_mono() - start;
    assert_int_equal(r.status, 503);
    assert_json_text(r.json, "{\"status\":\"degraded\",\"broker\":\"down\",\"workers\":0,"
                             "\"mode\":\"degraded\",\"degraded_reasons\":[\"broker unavailable\"]}");
    assert_true(took >= HEALTH_TIMEOUT_MS - 20);
    assert_true(took < REQUEST_TIMEOUT_MS); /* its own, shorter timeout */
    http_response_clear(&r);
    gateway_stats_t stats = stats_since_setup(f);
    assert_int_equal(stats.timeouts, 2);
    assert_int_equal(stats.in_flight, 0);
}

static void test_no_broker_gives_503_at_once(void **state)
{
    (void)state;
    /* Nothing listens there: ZMQ_IMMEDIATE makes the send fail instead of queueing. */
    gateway_harness_t *h = start_gateway("tcp://127.0.0.1:1", "tcp://127.0.0.1:1");
    http_response_t r;
    int64_t start = zclock_mono();
    assert_int_equal(http_get(&r, "%s/workflows/x", gateway_harness_url(h)), 0);
    assert_int_equal(r.status, 503);
    assert_string_equal(r.retry_after, "1");
    assert_json_text(r.json, "{\"detail\":\"broker unavailable\"}");
    http_response_clear(&r);
    assert_int_equal(http_get(&r, "%s/health", gateway_harness_url(h)), 0);
    assert_int_equal(r.status, 503);
    assert_json_text(r.json, "{\"status\":\"degraded\",\"broker\":\"down\",\"workers\":0,"
                             "\"mode\":\"degraded\",\"degraded_reasons\":[\"broker unavailable\"]}");
    http_response_clear(&r);
    assert_true(zclock_mono() - start < REQUEST_TIMEOUT_MS);
    gateway_harness_halt(h);
    gateway_stats_t stats;
    gateway_stats(gateway_harness_gateway(h), &stats);
    assert_int_equal(stats.send_failures, 2);
    assert_int_equal(stats.requests_sent, 0);
    gateway_harness_stop(&h);
}

static void test_late_reply_is_dropped(void **state)
{
    fixture_t *f = *state;
    http_response_t r;
    assert_int_equal(http_get(&r, "%s/workflows/late", gateway_harness_url(f->gw)), 0);
    assert_int_equal(r.status, 503);
    http_response_clear(&r);
    /* The reply comes after its request timed out. */
    WAIT_FOR(stats_since_setup(f).late_replies >= 1, LATE_REPLY_MS + 1000);
    assert_int_equal(http_get(&r, "%s/workflows/fine", gateway_harness_url(f->gw)), 0);
    assert_int_equal(r.status, 200);
    assert_json_text(r.json, "{\"op\":\"workflow.get\",\"args\":{\"id\":\"fine\"}}");
    http_response_clear(&r);
    gateway_stats_t stats = stats_since_setup(f);
    assert_int_equal(stats.late_replies, 1);
    assert_int_equal(stats.timeouts, 1);
    assert_int_equal(stats.replies, 1);
}

/* A client that hangs up while its request waits: the timeout or the late reply
 * must not touch the freed request (ASan watches), and the gateway keeps serving. */
static void test_client_gone_while_waiting(void **state)
{
    fixture_t *f = *state;
    const char *paths[] = {"/workflows/silent", "/workflows/late", "/workflows/hold-1"};
    atomic_store(&f->script.hold_target, 2); /* hold-1 waits for a second hold-* */
    for (int i = 0; i < 3; i++) {
        char request[256];
        snprintf(request, sizeof request, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", paths[i]);
        int fd = connect_to(f->gw);
        send_all(fd, request, strlen(request));
        wait_for_received(f->broker, i + 1);
        close(fd);
    }
    /* Answer the held one now: its client is gone. */
    http_response_t r;
    assert_int_equal(http_get(&r, "%s/workflows/hold-2", gateway_harness_url(f->gw)), 0);
    assert_int_equal(r.status, 200);
    http_response_clear(&r);
    /* Both waiting ones time out, and the late one's reply comes after. */
    WAIT_FOR(stats_since_setup(f).timeouts >= 2 && stats_since_setup(f).late_replies >= 1,
             LATE_REPLY_MS + 1000);
    assert_int_equal(http_get(&r, "%s/health", gateway_harness_url(f->gw)), 0);
    assert_int_equal(r.status, 200);
    http_response_clear(&r);
    gateway_stats_t stats = stats_since_setup(f);
    assert_int_equal(stats.in_flight, 0);
    assert_int_equal(stats.timeouts, 2);
    assert_int_equal(stats.late_replies, 1);
}

typedef struct {
    char *body;
    size_t len;
} buffer_t;

static size_t collect(char *data, size_t size, size_t nmemb, void *user)
{
    buffer_t *b = user;
    b->body = realloc(b->body, b->len + size * nmemb + 1);
    memcpy(b->body + b->len, data, size * nmemb);
    b->len += size * nmemb;
    b->body[b->len] = '\0';
    return size * nmemb;
}

/* Runs count GET /workflows/hold-<round>-<i> at once on the multi handle; the fake
 * broker answers only when all are in flight, newest first. Returns how many new
 * connections the round opened. */
static long run_round(CURLM *multi, const char *base, int round, int count)
{
    CURL **easy = calloc((size_t)count, sizeof *easy);
    buffer_t *bodies = calloc((size_t)count, sizeof *bodies);
    for (int i = 0; i < count; i++) {
        char url[256];
        snprintf(url, sizeof url, "%s/workflows/hold-%d-%d", base, round, i);
        easy[i] = curl_easy_init();
        curl_easy_setopt(easy[i], CURLOPT_URL, url);
        curl_easy_setopt(easy[i], CURLOPT_WRITEFUNCTION, collect);
        curl_easy_setopt(easy[i], CURLOPT_WRITEDATA, &bodies[i]);
        curl_easy_setopt(easy[i], CURLOPT_TIMEOUT_MS, 10000L);
        curl_multi_add_handle(multi, easy[i]);
    }
    int running = 1;
    while (running) {
        curl_multi_perform(multi, &running);
        if (running)
            curl_multi_poll(multi, NULL, 0, 100, NULL);
    }
    long connects = 0;
    for (int i = 0; i < count; i++) {
        long status = 0, opened = 0;
        curl_easy_getinfo(easy[i], CURLINFO_RESPONSE_CODE, &status);
        curl_easy_getinfo(easy[i], CURLINFO_NUM_CONNECTS, &opened);
        connects += opened;
        assert_int_equal(status, 200);
        /* Each answer is the one for its own request, though they came back reversed. */
        char want[128];
        snprintf(want, sizeof want,
                 "{\"op\":\"workflow.get\",\"args\":{\"id\":\"hold-%d-%d\"}}", round, i);
        json_t *got = json_loads(bodies[i].body ? bodies[i].body : "", 0, NULL);
        assert_json_text(got, want);
        json_decref(got);
        free(bodies[i].body);
        curl_multi_remove_handle(multi, easy[i]);
        curl_easy_cleanup(easy[i]);
    }
    free(easy);
    free(bodies);
    return connects;
}

static void test_keep_alive_many_in_flight(void **state)
{
    fixture_t *f = *state;
    enum { IN_FLIGHT = 200 };
    atomic_store(&f->script.hold_target, IN_FLIGHT);
    CURLM *multi = curl_multi_init();
    curl_multi_setopt(multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long)IN_FLIGHT);
    curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, (long)IN_FLIGHT);
    long first = run_round(multi, gateway_harness_url(f->gw), 1, IN_FLIGHT);
    long second = run_round(multi, gateway_harness_url(f->gw), 2, IN_FLIGHT);
    long third = run_round(multi, gateway_harness_url(f->gw), 3, IN_FLIGHT);
    curl_multi_cleanup(multi);
    assert_int_equal(first, IN_FLIGHT);
    /* Later rounds ride the same keep-alive connections. */
    assert_int_equal(second, 0);
    assert_int_equal(third, 0);
    gateway_stats_t stats = stats_since_setup(f);
    assert_int_equal(stats.replies, 3 * IN_FLIGHT);
    assert_int_equal(stats.timeouts, 0);
}

/* A new connection that has sent GET path (Connection: close). */
static int send_get(fixture_t *f, const char *path)
{
    int fd = connect_to(f->gw);
    char request[256];
    snprintf(request, sizeof request, "GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
             path);
    send_all(fd, request, strlen(request));
    return fd;
}

/* Stops the gateway's loop thread, so the test drives it with gateway_poll. */
static gateway_t *take_the_loop(fixture_t *f)
{
    gateway_harness_halt(f->gw);
    return gateway_harness_gateway(f->gw);
}

/* Stopping with requests still waiting answers them 503 (MHD must not be stopped
 * with suspended connections) and leaks nothing. */
static void test_shutdown_while_waiting(void **state)
{
    fixture_t *f = *state;
    int fds[3];
    for (int i = 0; i < 3; i++)
        fds[i] = send_get(f, "/workflows/silent");
    wait_for_received(f->broker, 3);
    gateway_harness_stop(&f->gw);
    for (int i = 0; i < 3; i++) {
        char *response = read_all(fds[i]);
        assert_non_null(strstr(response, "HTTP/1.1 503"));
        assert_non_null(strstr(response, "{\"detail\":\"broker unavailable\"}"));
        free(response);
        close(fds[i]);
    }
}

/* A request that reaches MHD only while the gateway stops (its connection accepted,
 * its bytes read by the last MHD run) must not be sent to the broker and left
 * suspended: MHD aborts the process when stopped with a connection suspended. It
 * gets 503 at once. Another request waiting for the broker makes the stop run MHD
 * (it answers that one 503 and resumes it). */
static void test_request_arriving_while_stopping(void **state)
{
    fixture_t *f = *state;
    int waiting = send_get(f, "/workflows/silent");
    wait_for_received(f->broker, 1);
    gateway_t *gw = take_the_loop(f);
    int late = connect_to(f->gw);
    for (int i = 0; i < 5; i++) /* accepted by MHD, nothing to read yet */
        assert_int_equal(gateway_poll(gw, 10), 0);
    const char *request = "GET /workflows/late-comer HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    send_all(late, request, strlen(request));
    gateway_harness_stop(&f->gw);
    int fds[] = {waiting, late};
    for (int i = 0; i < 2; i++) {
        char *response = read_all(fds[i]);
        if (!strstr(response, "HTTP/1.1 503"))
            fail_msg("connection %d: \"%s\", expected a 503", i, response);
        free(response);
        close(fds[i]);
    }
    assert_int_equal(fake_broker_requests(f->broker, "workflow.get"), 1);
}

static void test_events_are_drained(void **state)
{
    fixture_t *f = *state;
    atomic_store(&f->script.publish, 200); /* one per fake broker turn (~5 ms) */
    gateway_stats_t stats = {0};
    WAIT_FOR((stats = stats_since_setup(f)).events > 0, 3000);
    assert_true(stats.events > 0);
    assert_int_equal(stats.bad_messages, 0);
}

static void test_bind_failure(void **state)
{
    fixture_t *f = *state;
    char address[64];
    snprintf(address, sizeof address, "127.0.0.1:%d", gateway_harness_port(f->gw));
    gateway_config_t config = {.http = address, .broker = fake_broker_endpoint(f->broker),
                               .events = fake_broker_events_endpoint(f->broker), .request_timeout_ms = 100,
                               .health_timeout_ms = 100, .max_connections = 10};
    char err[256] = "";
    gateway_t *gw = gateway_new(&config, err, sizeof err);
    assert_null(gw);
    assert_non_null(strstr(err, "cannot listen on 127.0.0.1:"));
    assert_non_null(strstr(err, "in use"));
    config.http = "nonsense";
    assert_null(gateway_new(&config, err, sizeof err));
    assert_non_null(strstr(err, "HOST:PORT"));
}

int main(void)
{
    zsys_handler_set(NULL);
    zsys_init();
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_routes_reach_the_broker, setup, teardown),
        cmocka_unit_test_setup_teardown(test_yaml_routes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_not_found_and_method_not_allowed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_escaped_nul_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_validation_errors_do_not_reach_the_broker, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_body_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_silent_broker_gives_503, setup, teardown),
        cmocka_unit_test(test_no_broker_gives_503_at_once),
        cmocka_unit_test_setup_teardown(test_late_reply_is_dropped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_client_gone_while_waiting, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keep_alive_many_in_flight, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shutdown_while_waiting, setup, teardown),
        cmocka_unit_test_setup_teardown(test_request_arriving_while_stopping, setup, teardown),
        cmocka_unit_test_setup_teardown(test_events_are_drained, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bind_failure, setup, teardown),
    };
    int failed = cmocka_run_group_tests_name("gateway_http", tests, NULL, NULL);
    curl_global_cleanup();
    return failed;
}
