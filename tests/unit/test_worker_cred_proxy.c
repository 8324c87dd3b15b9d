/* The credential proxy (issue 22): agents under bwrap with `network: proxy`
 * reach the fake Messages API (tests/support/fake_anthropic.h) only through
 * the worker's proxy, with a placeholder key; the fake sees the worker's real
 * key; other paths are refused; nothing else is reachable; the attempt's usage
 * is what the proxy counted; a slow upstream holds up no other attempt.
 * Through the command provider (sh and curl) and the claude provider (the fake
 * Claude CLI). Skipped, with the reason, where bwrap cannot make a sandbox. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/clock.h"
#include "tests/support/fake_anthropic.h"
#include "tests/support/wait.h"
#include "tests/support/worker_runs.h"
#include "worker/cred_proxy.h"
#include "worker/provider.h"
#include "worker/sandbox.h"

#define FAKE_CLAUDE SYN_SOURCE_DIR "/tests/fixtures/fake_claude.py"
#define REAL_KEY "sk-ant-real-key-must-stay-outside"

static char scratch[128];
static fake_anthropic_t *api;


static void set_sandboxed(worker_provider_t *p)
{
    worker_options_t options = {.workspace_dir = scratch, .sandbox = true,
                                .proxy_upstream = fake_anthropic_url(api)};
    assert_int_equal(worker_provider_set_options(p, &options), 0);
}

static worker_provider_t *sandboxed_shell(void)
{
    char err[256] = "";
    worker_provider_t *p = worker_provider_command_new("sh -s", 500, err, sizeof err);
    assert_non_null(p);
    set_sandboxed(p);
    return p;
}

static worker_job_t job_for(const char *prompt)
{
    return (worker_job_t){.execution_id = "exec-0000000000cp", .workflow_id = "wf-test",
                          .phase_id = "proxy", .attempt = 1, .prompt = prompt,
                          .timeout_ms = 30000, .network = WORKER_NETWORK_PROXY};
}

static worker_run_t *start(worker_provider_t *p, const worker_job_t *job)
{
    worker_run_t *run = worker_runs_start(p, job);
    assert_non_null(run);
    return run;
}

static json_t *finish(worker_run_t *run, char **out)
{
    assert_int_equal(worker_run_drive(run, 30000), 0);
    *out = strdup(worker_run_output(run, NULL));
    print_message("%s\n", *out);
    if (worker_run_status(run) != WORKER_RUN_COMPLETED)
        fail_msg("agent failed: %s", worker_run_error(run));
    return worker_run_usage_json(run);
}

/* The usage of fake_anthropic_sse_answer, counted by the proxy. */
static void expect_proxy_usage(json_t *usage)
{
    assert_non_null(usage);
    assert_int_equal(json_integer_value(json_object_get(usage, "input_tokens")), 1500);
    assert_int_equal(json_integer_value(json_object_get(usage, "output_tokens")), 350);
    assert_int_equal(json_integer_value(json_object_get(usage, "cache_creation_tokens")), 200);
    assert_int_equal(json_integer_value(json_object_get(usage, "cache_read_tokens")), 1000);
    assert_string_equal(json_string_value(json_object_get(usage, "cost_source")), "proxy");
    assert_true(json_real_value(json_object_get(usage, "cost_usd")) > 0);
}

static void expect_real_key_upstream(int index)
{
    const fake_anthropic_request_t *r = fake_anthropic_request(api, index);
    assert_non_null(r);
    assert_non_null(r->api_key);
    assert_string_equal(r->api_key, REAL_KEY);
}

/* Only the one request, after before, reached the API, with the real key; the
 * attempt's usage is what the proxy counted of it. Takes usage. */
static void expect_forwarded_once(int before, json_t *usage)
{
    assert_int_equal(fake_anthropic_request_count(api), before + 1);
    expect_real_key_upstream(before);
    expect_proxy_usage(usage);
    json_decref(usage);
}

/* A listening loopback port of the host, outside the sandbox. */
static int host_server(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof addr;
    assert_int_equal(bind(fd, (struct sockaddr *)&addr, sizeof addr), 0);
    assert_int_equal(listen(fd, 16), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&addr, &len), 0);
    *port = ntohs(addr.sin_port);
    return fd;
}

static void test_command_agent_through_proxy(void **state)
{
    (void)state;
    WORKER_RUNS_SKIP_WITHOUT_BWRAP();
    assert_int_equal(fake_anthropic_plan(api, 200, NULL, fake_anthropic_sse_answer, 0), 0);
    int before = fake_anthropic_request_count(api);
    int port = 0, server = host_server(&port);
    char script[2048];
    snprintf(script, sizeof script,
             "env | grep -c '%s' || true\n"
             "echo \"base=$ANTHROPIC_BASE_URL key=$ANTHROPIC_API_KEY\"\n"
             "curl -sS -N \"$ANTHROPIC_BASE_URL/v1/messages\" -H \"x-api-key: $ANTHROPIC_API_KEY\" "
             "-H 'content-type: application/json' -H 'anthropic-version: 2023-06-01' "
             "-d '{\"model\":\"claude-haiku-4-5\",\"max_tokens\":10,\"stream\":true,"
             "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}'\n"
             "echo\n"
             "curl -sS -w ' status=%%{http_code}\\n' \"$ANTHROPIC_BASE_URL/v1/models\"\n"
             "curl -sS -w ' status=%%{http_code}\\n' -d x \"$ANTHROPIC_BASE_URL/v1/complete\"\n"
             "for p in %d %d; do if bash -c \"exec 3<>/dev/tcp/127.0.0.1/$p\" 2>/dev/null; "
             "then echo \"reached $p\"; else echo \"unreachable $p\"; fi; done\n",
             REAL_KEY, fake_anthropic_port(api), port);
    worker_provider_t *p = sandboxed_shell();
    worker_job_t job = job_for(script);
    worker_run_t *run = start(p, &job);
    char *out = NULL;
    json_t *usage = finish(run, &out);
    close(server);
    /* No real key inside; the proxy's address and the placeholder instead. */
    assert_true(strncmp(out, "0\n", 2) == 0);
    char want[256];
    snprintf(want, sizeof want, "base=http://127.0.0.1:%d key=%s\n", WORKER_SANDBOX_PROXY_PORT,
             WORKER_CRED_PROXY_DUMMY_KEY);
    assert_non_null(strstr(out, want));
    /* The answer came back unchanged (the SSE events as the API sent them). */
    assert_non_null(strstr(out, "\"text\":\"Hello\""));
    assert_non_null(strstr(out, "{\"type\":\"message_stop\"}"));
    /* Anything else is refused, saying what is forwarded. */
    assert_non_null(strstr(out, "GET /v1/models is not forwarded"));
    assert_non_null(strstr(out, "POST /v1/complete is not forwarded"));
    assert_null(strstr(out, "status=200"));
    assert_non_null(strstr(out, "status=403"));
    /* Neither the API directly nor any other port of the host. */
    assert_null(strstr(out, "reached"));
    assert_non_null(strstr(out, "unreachable"));
    /* A command agent reports no usage: the proxy's count is the attempt's. */
    expect_forwarded_once(before, usage);
    free(out);
    worker_run_destroy(&run);
    worker_provider_destroy(&p);
}

static void test_fake_claude_through_proxy(void **state)
{
    (void)state;
    WORKER_RUNS_SKIP_WITHOUT_BWRAP();
    assert_int_equal(fake_anthropic_plan(api, 200, NULL, fake_anthropic_sse_answer, 0), 0);
    int before = fake_anthropic_request_count(api);
    char err[256] = "";
    worker_provider_t *p = worker_provider_claude_new(FAKE_CLAUDE, NULL, 500, err, sizeof err);
    assert_non_null(p);
    set_sandboxed(p);
    worker_job_t job = job_for("FAKE_CALL_API");
    job.model_id = "claude-haiku-4-5-20251001";
    worker_run_t *run = start(p, &job);
    char *out = NULL;
    json_t *usage = finish(run, &out);
    assert_non_null(strstr(out, "api said: Hello, w\xC3\xB6rld!;"));
    assert_non_null(strstr(out, "refused 403: syn credential proxy: GET /v1/models"));
    assert_non_null(strstr(out, "key=" WORKER_CRED_PROXY_DUMMY_KEY));
    /* The fake CLI claims 1 token in, 1 out and $0.0001: the proxy's count wins. */
    expect_forwarded_once(before, usage);
    free(out);
    worker_run_destroy(&run);
    worker_provider_destroy(&p);
}

/* The worker's one loop drives every attempt: while one attempt's upstream
 * sits silent, another attempt starts, runs and finishes. */
static void test_slow_upstream_holds_up_nothing(void **state)
{
    (void)state;
    WORKER_RUNS_SKIP_WITHOUT_BWRAP();
    int before = fake_anthropic_request_count(api);
    assert_int_equal(fake_anthropic_plan(api, 200, NULL, fake_anthropic_sse_answer, 60000), 0);
    worker_provider_t *p = sandboxed_shell();
    worker_job_t slow_job = job_for("curl -sS -N -d '{}' \"$ANTHROPIC_BASE_URL/v1/messages\"\n");
    worker_run_t *slow = start(p, &slow_job);
    worker_job_t quick_job = job_for("echo quick\n");
    worker_run_t *quick = NULL;
    wait_t w = wait_begin(20000);
    do {
        if (!quick && fake_anthropic_request_count(api) > before)
            quick = start(p, &quick_job); /* the slow one's request is upstream now */
        worker_run_t *runs[] = {slow, quick};
        struct pollfd fds[2 * WORKER_RUN_MAX_FDS];
        int counts[2] = {0, 0}, n = 0;
        int64_t deadline = -1;
        for (int i = 0; i < 2; i++) {
            if (!runs[i])
                continue;
            counts[i] = worker_run_pollfds(runs[i], fds + n, WORKER_RUN_MAX_FDS);
            n += counts[i];
            int64_t d = worker_run_deadline(runs[i]);
            if (d >= 0 && (deadline < 0 || d < deadline))
                deadline = d;
        }
        int64_t now = syn_mono_ms();
        poll(fds, (nfds_t)n, deadline < 0 ? 50 : deadline <= now ? 0 : (int)(deadline - now));
        now = syn_mono_ms();
        for (int i = 0, at = 0; i < 2; i++) {
            if (!runs[i])
                continue;
            worker_run_step(runs[i], fds + at, counts[i], now);
            at += counts[i];
        }
    } while (!(quick && worker_run_finished(quick)) && wait_next(&w));
    assert_non_null(quick);
    assert_true(worker_run_finished(quick));
    assert_string_equal(worker_run_output(quick, NULL), "quick\n");
    assert_false(worker_run_finished(slow));
    /* Cancelling the slow one ends its transfer with it. */
    worker_run_cancel(slow, syn_mono_ms());
    assert_int_equal(worker_run_drive(slow, 10000), 0);
    assert_int_equal(worker_run_status(slow), WORKER_RUN_CANCELLED);
    worker_run_destroy(&quick);
    worker_run_destroy(&slow);
    worker_provider_destroy(&p);
}

/* --- the proxy's HTTP, without a sandbox: raw requests on a loopback port ------ */

/* The body of the chunked answer whose head starts at answer, malloc'd, or
 * NULL while its last chunk has not arrived. */
static char *dechunk(const char *answer)
{
    const char *p = answer ? strstr(answer, "\r\n\r\n") : NULL;
    if (!p)
        return NULL;
    p += 4;
    size_t len = 0;
    char *body = calloc(1, strlen(p) + 1);
    for (;;) {
        char *end;
        unsigned long size = strtoul(p, &end, 16);
        if (end == p || strncmp(end, "\r\n", 2) != 0 || strlen(end + 2) < size + 2) {
            free(body);
            return NULL;
        }
        if (size == 0)
            return body;
        memcpy(body + len, end + 2, size);
        len += size;
        p = end + 2 + size + 2;
    }
}

static bool whole_200(const char *got)
{
    char *body = dechunk(strstr(got, "HTTP/1.1 200 OK\r\n"));
    free(body);
    return body != NULL;
}

/* Steps proxy until the client socket has received an answer containing
 * needle, or one that done says is whole (or it closed); what it received,
 * malloc'd. */
static char *exchange_until(worker_cred_proxy_t *proxy, int client, const char *request,
                            const char *needle, bool (*done)(const char *))
{
    if (request)
        assert_int_equal(send(client, request, strlen(request), MSG_NOSIGNAL),
                         (ssize_t)strlen(request));
    size_t len = 0, cap = 65536;
    char *got = calloc(1, cap);
    bool closed = false;
    wait_t w = wait_begin(10000);
    do {
        struct pollfd fds[2] = {{.fd = worker_cred_proxy_fd(proxy), .events = POLLIN},
                                {.fd = client, .events = POLLIN}};
        int64_t due = worker_cred_proxy_deadline(proxy), now = syn_mono_ms();
        poll(fds, 2, due < 0 ? 50 : due <= now ? 0 : (int)(due - now));
        worker_cred_proxy_step(proxy, syn_mono_ms());
        if (fds[1].revents) {
            ssize_t n = recv(client, got + len, cap - 1 - len, MSG_DONTWAIT);
            if (n > 0)
                len += (size_t)n;
            else if (n == 0)
                closed = true;
        }
        got[len] = '\0';
    } while (!closed && !(needle && strstr(got, needle)) && !(done && done(got)) &&
             wait_next(&w));
    return got;
}

static char *exchange(worker_cred_proxy_t *proxy, int client, const char *request,
                      const char *needle)
{
    return exchange_until(proxy, client, request, needle, NULL);
}

static int connect_to(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                               .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(connect(fd, (struct sockaddr *)&addr, sizeof addr), 0);
    return fd;
}

static void test_http_refusals_and_pipelining(void **state)
{
    (void)state;
    int port = 0, listener = host_server(&port);
    worker_cred_proxy_config_t config = {.upstream = fake_anthropic_url(api),
                                         .api_key = REAL_KEY};
    char err[256] = "";
    worker_cred_proxy_t *proxy = worker_cred_proxy_new(listener, &config, err, sizeof err);
    assert_non_null(proxy);
    int before = fake_anthropic_request_count(api);
    assert_int_equal(fake_anthropic_plan(api, 200, NULL, fake_anthropic_sse_answer, 0), 0);

    /* Two requests in one write: a refused one, then a forwarded one, both
     * answered in order on the one connection. */
    int client = connect_to(port);
    char *got = exchange_until(proxy, client,
                               "GET /v1/models HTTP/1.1\r\nHost: x\r\n\r\n"
                               "POST /v1/messages?beta=true HTTP/1.1\r\nHost: x\r\n"
                               "x-api-key: agent-key\r\ncontent-type: application/json\r\n"
                               "Content-Length: 2\r\n\r\n{}",
                               NULL, whole_200);
    char *forbidden = strstr(got, "HTTP/1.1 403 Forbidden\r\n");
    char *ok = strstr(got, "HTTP/1.1 200 OK\r\n");
    assert_non_null(forbidden);
    assert_non_null(ok);
    assert_true(forbidden < ok);
    assert_non_null(strstr(got, "\"type\":\"permission_error\""));
    assert_non_null(strstr(ok, "transfer-encoding: chunked\r\n"));
    /* The body is the API's, byte for byte. */
    char *body = dechunk(ok);
    assert_non_null(body);
    assert_string_equal(body, fake_anthropic_sse_answer);
    free(body);
    free(got);
    assert_int_equal(fake_anthropic_request_count(api), before + 1);
    expect_real_key_upstream(before); /* the agent's key was replaced */
    assert_int_equal(worker_cred_proxy_messages(proxy), 1);
    assert_int_equal(worker_cred_proxy_refused(proxy), 1);
    worker_usage_t usage = {0};
    worker_cred_proxy_account(proxy, &usage);
    assert_int_equal(usage.input_tokens, 1500);
    assert_string_equal(usage.cost_source, "proxy");
    close(client);

    /* Malformed or unsupported heads: an error, then the connection closes. */
    const struct {
        const char *request, *status;
    } bad[] = {
        {"POST /v1/messages HTTP/1.0\r\n\r\n", "HTTP/1.1 505 "},
        {"POST /v1/messages HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", "HTTP/1.1 411 "},
        {"POST /v1/messages HTTP/1.1\r\nContent-Length: 1x\r\n\r\n", "HTTP/1.1 400 "},
        {"POST /v1/messages HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n",
         "HTTP/1.1 400 "},
        {"POST /v1/messages HTTP/1.1\r\nBad Header: x\r\n\r\n", "HTTP/1.1 400 "},
        {"POST /v1/messages HTTP/1.1\r\nContent-Length: 9999999999999\r\n\r\n", "HTTP/1.1 400 "},
        {"POST /v1/messages HTTP/1.1\r\nContent-Length: 40000000\r\n\r\n", "HTTP/1.1 413 "},
        {"CONNECT api.anthropic.com:443 HTTP/1.1\r\n\r\n", "HTTP/1.1 403 "},
        {"POST http://evil.example/v1/messages HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
         "HTTP/1.1 403 "},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        client = connect_to(port);
        got = exchange(proxy, client, bad[i].request, bad[i].status);
        if (strncmp(got, bad[i].status, strlen(bad[i].status)) != 0)
            fail_msg("'%s' got '%s'", bad[i].request, got);
        free(got);
        close(client);
    }
    assert_int_equal(fake_anthropic_request_count(api), before + 1);
    worker_cred_proxy_destroy(&proxy);
    worker_cred_proxy_destroy(&proxy);
}

static int setup(void **state)
{
    (void)state;
    snprintf(scratch, sizeof scratch, "/tmp/syn-proxy-test-XXXXXX");
    assert_non_null(mkdtemp(scratch));
    api = fake_anthropic_new();
    assert_non_null(api);
    setenv("ANTHROPIC_API_KEY", REAL_KEY, 1);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    fake_anthropic_destroy(&api);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", scratch);
    return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_http_refusals_and_pipelining),
        cmocka_unit_test(test_command_agent_through_proxy),
        cmocka_unit_test(test_fake_claude_through_proxy),
        cmocka_unit_test(test_slow_upstream_holds_up_nothing),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
