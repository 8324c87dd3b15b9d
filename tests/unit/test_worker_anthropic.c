/* The anthropic provider against a fake Messages API: a libmicrohttpd server
 * in this process (its own threads) that answers each request with the next
 * planned answer — an SSE stream sent in small pieces, or an error. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <curl/curl.h>
#include <math.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/clock.h"
#include "worker/provider.h"

#define MAX_PLANS 8
#define MAX_REQUESTS 8

typedef struct {
    unsigned status;
    const char *retry_after;  /* header value or NULL */
    const char *body;
    int delay_ms;             /* before the first byte */
} plan_t;

typedef struct {
    char *body;
    char *api_key;
    char *version;
    char *content_type;
    int64_t at_ms;
} request_t;

typedef struct {
    struct MHD_Daemon *daemon;
    int port;
    pthread_mutex_t lock;
    plan_t plans[MAX_PLANS];
    int nplans, next_plan;
    request_t requests[MAX_REQUESTS];
    int nrequests;
    volatile int stopping;
    worker_provider_t *provider;
    worker_run_t *run;
} server_t;

typedef struct {
    server_t *server;
    const char *text;
    size_t len;
    int delay_ms;
} stream_t;

static const char sse_answer[] =
    "event: message_start\n"
    "data: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_01\",\"type\":\"message\","
    "\"role\":\"assistant\",\"content\":[],\"model\":\"claude-haiku-4-5-20251001\","
    "\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":1500,"
    "\"cache_creation_input_tokens\":200,\"cache_read_input_tokens\":1000,"
    "\"output_tokens\":1}}}\n\n"
    "event: content_block_start\n"
    "data: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\","
    "\"text\":\"\"}}\n\n"
    "event: ping\n"
    "data: {\"type\": \"ping\"}\n\n"
    ": a comment line\n"
    "event: content_block_delta\n"
    "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\","
    "\"text\":\"Hello\"}}\n\n"
    "event: content_block_delta\r\n"
    "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\","
    "\"text\":\", w\xC3\xB6rld!\"}}\r\n\r\n"
    "event: content_block_stop\n"
    "data: {\"type\":\"content_block_stop\",\"index\":0}\n\n"
    "event: message_delta\n"
    "data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\","
    "\"stop_sequence\":null},\"usage\":{\"output_tokens\":350}}\n\n"
    "event: message_stop\n"
    "data: {\"type\":\"message_stop\"}\n\n";

static const char sse_overloaded[] =
    "event: message_start\n"
    "data: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_02\",\"model\":"
    "\"claude-haiku-4-5-20251001\",\"usage\":{\"input_tokens\":10,\"output_tokens\":1}}}\n\n"
    "event: content_block_delta\n"
    "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\","
    "\"text\":\"Partial\"}}\n\n"
    "event: error\n"
    "data: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":"
    "\"Overloaded\"}}\n\n";

static const char overloaded_body[] =
    "{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}";
static const char server_error_body[] =
    "{\"type\":\"error\",\"error\":{\"type\":\"api_error\",\"message\":\"Internal server "
    "error\"}}";
static const char bad_request_body[] =
    "{\"type\":\"error\",\"error\":{\"type\":\"invalid_request_error\",\"message\":"
    "\"max_tokens: 999999 > 64000, which is the maximum allowed\"}}";

/* Sends the stream 7 bytes at a time, so events arrive cut anywhere. */
static ssize_t read_stream(void *cls, uint64_t pos, char *buf, size_t max)
{
    stream_t *s = cls;
    if (pos == 0 && s->delay_ms > 0) {
        for (int waited = 0; waited < s->delay_ms && !s->server->stopping; waited += 10)
            usleep(10000);
    }
    if (s->server->stopping)
        return MHD_CONTENT_READER_END_WITH_ERROR;
    if (pos >= s->len)
        return MHD_CONTENT_READER_END_OF_STREAM;
    size_t n = s->len - pos < 7 ? s->len - pos : 7;
    if (n > max)
        n = max;
    memcpy(buf, s->text + pos, n);
    usleep(200);
    return (ssize_t)n;
}

static char *header_copy(struct MHD_Connection *c, const char *name)
{
    const char *v = MHD_lookup_connection_value(c, MHD_HEADER_KIND, name);
    return v ? strdup(v) : NULL;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *connection, const char *url,
                              const char *method, const char *version, const char *upload_data,
                              size_t *upload_data_size, void **con_cls)
{
    (void)version;
    server_t *server = cls;
    typedef struct {
        char *data;
        size_t len;
    } upload_t;
    upload_t *up = *con_cls;
    if (!up) {
        up = calloc(1, sizeof *up);
        *con_cls = up;
        return up ? MHD_YES : MHD_NO;
    }
    if (*upload_data_size > 0) {
        char *grown = realloc(up->data, up->len + *upload_data_size + 1);
        if (!grown)
            return MHD_NO;
        memcpy(grown + up->len, upload_data, *upload_data_size);
        up->len += *upload_data_size;
        grown[up->len] = '\0';
        up->data = grown;
        *upload_data_size = 0;
        return MHD_YES;
    }
    pthread_mutex_lock(&server->lock);
    if (server->nrequests < MAX_REQUESTS && strcmp(url, "/v1/messages") == 0 &&
        strcmp(method, "POST") == 0) {
        request_t *r = &server->requests[server->nrequests++];
        r->body = up->data ? strdup(up->data) : strdup("");
        r->api_key = header_copy(connection, "x-api-key");
        r->version = header_copy(connection, "anthropic-version");
        r->content_type = header_copy(connection, "content-type");
        r->at_ms = syn_mono_ms();
    }
    plan_t plan = {404, NULL, "{\"type\":\"error\",\"error\":{\"type\":\"not_found_error\","
                              "\"message\":\"no plan\"}}", 0};
    if (server->next_plan < server->nplans)
        plan = server->plans[server->next_plan++];
    pthread_mutex_unlock(&server->lock);
    struct MHD_Response *response;
    if (plan.status == 200) {
        stream_t *s = calloc(1, sizeof *s);
        s->server = server;
        s->text = plan.body;
        s->len = strlen(plan.body);
        s->delay_ms = plan.delay_ms;
        response = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 64, read_stream, s, free);
        MHD_add_response_header(response, "content-type", "text/event-stream");
    } else {
        response = MHD_create_response_from_buffer(strlen(plan.body), (void *)plan.body,
                                                   MHD_RESPMEM_PERSISTENT);
        MHD_add_response_header(response, "content-type", "application/json");
    }
    if (plan.retry_after)
        MHD_add_response_header(response, "retry-after", plan.retry_after);
    enum MHD_Result rc = MHD_queue_response(connection, plan.status, response);
    MHD_destroy_response(response);
    return rc;
}

static void completed(void *cls, struct MHD_Connection *connection, void **con_cls,
                      enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)connection;
    (void)toe;
    char **up = *con_cls; /* upload_t: data pointer first */
    if (up) {
        free(*up);
        free(up);
    }
    *con_cls = NULL;
}

static int setup(void **state)
{
    server_t *server = calloc(1, sizeof *server);
    assert_non_null(server);
    pthread_mutex_init(&server->lock, NULL);
    server->daemon = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD |
                                          MHD_USE_THREAD_PER_CONNECTION,
                                      0, NULL, NULL, handle, server, MHD_OPTION_NOTIFY_COMPLETED,
                                      completed, NULL, MHD_OPTION_END);
    assert_non_null(server->daemon);
    const union MHD_DaemonInfo *info =
        MHD_get_daemon_info(server->daemon, MHD_DAEMON_INFO_BIND_PORT);
    server->port = info->port;
    *state = server;
    return 0;
}

static int teardown(void **state)
{
    server_t *server = *state;
    worker_run_destroy(&server->run);
    worker_provider_destroy(&server->provider);
    server->stopping = 1;
    MHD_stop_daemon(server->daemon);
    for (int i = 0; i < server->nrequests; i++) {
        free(server->requests[i].body);
        free(server->requests[i].api_key);
        free(server->requests[i].version);
        free(server->requests[i].content_type);
    }
    pthread_mutex_destroy(&server->lock);
    free(server);
    return 0;
}

static void plan(server_t *server, unsigned status, const char *retry_after, const char *body,
                 int delay_ms)
{
    pthread_mutex_lock(&server->lock);
    assert_true(server->nplans < MAX_PLANS);
    server->plans[server->nplans++] = (plan_t){status, retry_after, body, delay_ms};
    pthread_mutex_unlock(&server->lock);
}

static int request_count(server_t *server)
{
    pthread_mutex_lock(&server->lock);
    int n = server->nrequests;
    pthread_mutex_unlock(&server->lock);
    return n;
}

static worker_provider_t *anthropic(server_t *server, int max_tries, int64_t retry_ms)
{
    char url[64], err[256] = "";
    snprintf(url, sizeof url, "http://127.0.0.1:%d/", server->port);
    server->provider = worker_provider_anthropic_new(url, "sk-fake-key", retry_ms, max_tries,
                                                     err, sizeof err);
    if (!server->provider)
        fail_msg("provider: %s", err);
    assert_string_equal(worker_provider_name(server->provider), "anthropic");
    return server->provider;
}

static worker_job_t job_with(const char *prompt, const char *model, int64_t timeout_ms)
{
    return (worker_job_t){.execution_id = "exec-0000000000a1",
                          .workflow_id = "wf-test",
                          .phase_id = "draft",
                          .attempt = 1,
                          .prompt = prompt,
                          .model = model,
                          .timeout_ms = timeout_ms};
}

static worker_run_t *start(server_t *server, const worker_job_t *job)
{
    char err[256] = "";
    server->run = worker_run_start(server->provider, job, err, sizeof err);
    if (!server->run)
        fail_msg("start: %s", err);
    return server->run;
}

static void test_streamed_answer(void **state)
{
    server_t *server = *state;
    anthropic(server, 3, 50);
    plan(server, 200, NULL, sse_answer, 0);
    json_t *inputs = json_pack("{s:s}", "outline", "the outline");
    worker_job_t job = job_with("Write a greeting.", "haiku", 20000);
    job.inputs = inputs;
    job.max_tokens = 1234;
    worker_run_t *run = start(server, &job);
    json_decref(inputs);
    /* No workspace for an in-process agent. */
    assert_null(worker_run_workspace(run));
    assert_int_equal(worker_run_drive(run, 10000), 0);
    assert_int_equal(worker_run_status(run), WORKER_RUN_COMPLETED);
    assert_null(worker_run_error(run));
    assert_string_equal(worker_run_output(run, NULL), "Hello, w\xC3\xB6rld!");

    json_t *usage = worker_run_usage_json(run);
    assert_non_null(usage);
    assert_int_equal(json_integer_value(json_object_get(usage, "input_tokens")), 1500);
    assert_int_equal(json_integer_value(json_object_get(usage, "output_tokens")), 350);
    assert_int_equal(json_integer_value(json_object_get(usage, "cache_creation_tokens")), 200);
    assert_int_equal(json_integer_value(json_object_get(usage, "cache_read_tokens")), 1000);
    assert_int_equal(json_integer_value(json_object_get(usage, "total_tokens")), 3050);
    assert_int_equal(json_integer_value(json_object_get(usage, "num_turns")), 1);
    assert_string_equal(json_string_value(json_object_get(usage, "model")),
                        "claude-haiku-4-5-20251001");
    assert_string_equal(json_string_value(json_object_get(usage, "stop_reason")), "end_turn");
    assert_string_equal(json_string_value(json_object_get(usage, "cost_source")),
                        "price_table");
    /* haiku 4.5: $1 in, $5 out, $1.25 cache write, $0.10 cache read per million. */
    double expect = (1500 * 1.0 + 350 * 5.0 + 200 * 1.25 + 1000 * 0.10) / 1e6;
    assert_true(fabs(json_real_value(json_object_get(usage, "cost_usd")) - expect) < 1e-12);
    assert_int_equal(json_array_size(json_object_get(usage, "tool_calls")), 0);
    json_decref(usage);

    /* What the API got. */
    assert_int_equal(request_count(server), 1);
    request_t *r = &server->requests[0];
    assert_string_equal(r->api_key, "sk-fake-key");
    assert_string_equal(r->version, "2023-06-01");
    assert_string_equal(r->content_type, "application/json");
    json_t *body = json_loads(r->body, 0, NULL);
    assert_non_null(body);
    assert_string_equal(json_string_value(json_object_get(body, "model")),
                        "claude-haiku-4-5-20251001");
    assert_int_equal(json_integer_value(json_object_get(body, "max_tokens")), 1234);
    assert_true(json_is_true(json_object_get(body, "stream")));
    json_t *message = json_array_get(json_object_get(body, "messages"), 0);
    assert_string_equal(json_string_value(json_object_get(message, "role")), "user");
    const char *content = json_string_value(json_object_get(message, "content"));
    assert_non_null(strstr(content, "phase \"draft\""));
    assert_non_null(strstr(content, "Earlier phases of this workflow: outline."));
    const char *tail = "---\n\nWrite a greeting.";
    assert_string_equal(content + strlen(content) - strlen(tail), tail);
    json_decref(body);
    worker_run_destroy(&server->run);

    /* No max_tokens from the phase: 4096. */
    plan(server, 200, NULL, sse_answer, 0);
    job = job_with("Again.", NULL, 20000);
    run = start(server, &job);
    assert_int_equal(worker_run_drive(run, 10000), 0);
    assert_int_equal(worker_run_status(run), WORKER_RUN_COMPLETED);
    body = json_loads(server->requests[1].body, 0, NULL);
    assert_int_equal(json_integer_value(json_object_get(body, "max_tokens")), 4096);
    assert_string_equal(json_string_value(json_object_get(body, "model")),
                        "claude-sonnet-4-5-20250929");
    json_decref(body);
}

static void test_529_then_200_retried(void **state)
{
    server_t *server = *state;
    anthropic(server, 3, 5000);
    plan(server, 529, "1", overloaded_body, 0);
    plan(server, 200, NULL, sse_answer, 0);
    worker_job_t job = job_with("Hi.", "haiku", 20000);
    int64_t began = syn_mono_ms();
    worker_run_t *run = start(server, &job);
    assert_int_equal(worker_run_drive(run, 10000), 0);
    assert_int_equal(worker_run_status(run), WORKER_RUN_COMPLETED);
    assert_string_equal(worker_run_output(run, NULL), "Hello, w\xC3\xB6rld!");
    assert_int_equal(request_count(server), 2);
    /* retry-after: 1 was honoured (not the 5 s back-off). */
    int64_t gap = server->requests[1].at_ms - server->requests[0].at_ms;
    assert_true(gap >= 950);
    assert_true(syn_mono_ms() - began < 4000);
}

static void test_5xx_backs_off_then_gives_up(void **state)
{
    server_t *server = *state;
    anthropic(server, 3, 100);
    plan(server, 500, NULL, server_error_body, 0);
    plan(server, 503, NULL, server_error_body, 0);
    plan(server, 500, NULL, server_error_body, 0);
    plan(server, 200, NULL, sse_answer, 0); /* never reached */
    worker_job_t job = job_with("Hi.", "haiku", 20000);
    worker_run_t *run = start(server, &job);
    assert_int_equal(worker_run_drive(run, 10000), 0);
    assert_int_equal(worker_run_status(run), WORKER_RUN_FAILED);
    assert_string_equal(worker_run_error(run),
                        "HTTP 500 api_error: Internal server error (gave up after 3 tries)");
    assert_int_equal(request_count(server), 3);
    /* Back-off 100 ms, then 200 ms. */
    assert_true(server->requests[1].at_ms - server->requests[0].at_ms >= 90);
    assert_true(server->requests[2].at_ms - server->requests[1].at_ms >= 190);
}

static void test_400_fails_with_api_message(void **state)
{
    server_t *server = *state;
    anthropic(server, 5, 10);
    plan(server, 400, NULL, bad_request_body, 0);
    worker_job_t job = job_with("Hi.", "haiku", 20000);
    job.max_tokens = 999999;
    worker_run_t *run = start(server, &job);
    assert_int_equal(worker_run_drive(run, 10000), 0);
    assert_int_equal(worker_run_status(run), WORKER_RUN_FAILED);
    assert_string_equal(worker_run_error(run),
                        "HTTP 400 invalid_request_error: max_tokens: 999999 > 64000, which is "
                        "the maximum allowed");
    assert_int_equal(request_count(server), 1);
}

static void test_stream_error_after_text_fails(void **state)
{
    server_t *server = *state;
    anthropic(server, 3, 10);
    plan(server, 200, NULL, sse_overloaded, 0);
    worker_job_t job = job_with("Hi.", "haiku", 20000);
    worker_run_t *run = start(server, &job);
    assert_int_equal(worker_run_drive(run, 10000), 0);
    assert_int_equal(worker_run_status(run), WORKER_RUN_FAILED);
    assert_string_equal(worker_run_error(run),
                        "the API stream failed: overloaded_error: Overloaded");
    /* Text was shown already: not tried again (it would repeat itself). */
    assert_int_equal(request_count(server), 1);
    assert_string_equal(worker_run_output(run, NULL), "Partial");
}

static void test_cancel_timeout_unreachable(void **state)
{
    server_t *server = *state;
    anthropic(server, 3, 10);
    plan(server, 200, NULL, sse_answer, 3000);
    worker_job_t job = job_with("Hi.", "haiku", 0);
    worker_run_t *run = start(server, &job);
    /* Let the request reach the server, then cancel. */
    for (int i = 0; i < 200 && request_count(server) == 0; i++)
        worker_run_drive(run, 10);
    assert_int_equal(request_count(server), 1);
    int64_t cancelled_at = syn_mono_ms();
    worker_run_cancel(run, cancelled_at);
    assert_true(worker_run_finished(run));
    assert_int_equal(worker_run_status(run), WORKER_RUN_CANCELLED);
    worker_run_destroy(&server->run);
    assert_true(syn_mono_ms() - cancelled_at < 500);

    plan(server, 200, NULL, sse_answer, 3000);
    job = job_with("Hi.", "haiku", 500);
    int64_t began = syn_mono_ms();
    run = start(server, &job);
    assert_int_equal(worker_run_drive(run, 5000), 0);
    assert_true(syn_mono_ms() - began >= 500);
    assert_true(syn_mono_ms() - began < 2000);
    assert_int_equal(worker_run_status(run), WORKER_RUN_FAILED);
    assert_string_equal(worker_run_error(run), "timed out after 0.5 s");
    worker_run_destroy(&server->run);
    worker_provider_destroy(&server->provider);

    /* Nobody listening: tried again, then failed with the reason. */
    char err[256] = "";
    server->provider = worker_provider_anthropic_new("http://127.0.0.1:1", "k", 10, 2, err,
                                                     sizeof err);
    assert_non_null(server->provider);
    run = start(server, &job);
    assert_int_equal(worker_run_drive(run, 5000), 0);
    assert_int_equal(worker_run_status(run), WORKER_RUN_FAILED);
    const char *error = worker_run_error(run);
    assert_int_equal(strncmp(error, "cannot complete the request to http://127.0.0.1:1/v1/messages",
                             60), 0);
    assert_non_null(strstr(error, "(gave up after 2 tries)"));

    /* No key, no provider. */
    assert_null(worker_provider_anthropic_new(NULL, "", 10, 2, err, sizeof err));
    assert_string_equal(err, "the anthropic provider needs ANTHROPIC_API_KEY");
    assert_null(worker_provider_anthropic_new("ftp://x", "k", 10, 2, err, sizeof err));
}

static void test_output_limit(void **state)
{
    server_t *server = *state;
    anthropic(server, 3, 10);
    worker_options_t options = {.max_output_bytes = 300};
    assert_int_equal(worker_provider_set_options(server->provider, &options), 0);
    plan(server, 200, NULL, sse_answer, 0);
    worker_job_t job = job_with("Hi.", "haiku", 20000);
    worker_run_t *run = start(server, &job);
    assert_int_equal(worker_run_drive(run, 10000), 0);
    assert_int_equal(worker_run_status(run), WORKER_RUN_FAILED);
    assert_string_equal(worker_run_error(run), "output limit exceeded: more than 300 bytes");
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_streamed_answer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_529_then_200_retried, setup, teardown),
        cmocka_unit_test_setup_teardown(test_5xx_backs_off_then_gives_up, setup, teardown),
        cmocka_unit_test_setup_teardown(test_400_fails_with_api_message, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_error_after_text_fails, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel_timeout_unreachable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_output_limit, setup, teardown),
    };
    int rc = cmocka_run_group_tests_name("worker_anthropic", tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
