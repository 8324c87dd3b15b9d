/* The anthropic provider against a fake Messages API (tests/support/fake_anthropic.h):
 * a libmicrohttpd server in this process (its own threads) that answers each
 * request with the next planned answer — an SSE stream sent in small pieces, or
 * an error. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <curl/curl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "tests/support/fake_anthropic.h"
#include "worker/provider.h"

typedef struct {
    fake_anthropic_t *api; /* the fake Messages API (tests/support/fake_anthropic.h) */
    worker_provider_t *provider;
    worker_run_t *run;
} server_t;

static int setup(void **state)
{
    server_t *server = calloc(1, sizeof *server);
    assert_non_null(server);
    server->api = fake_anthropic_new();
    assert_non_null(server->api);
    *state = server;
    return 0;
}

static int teardown(void **state)
{
    server_t *server = *state;
    worker_run_destroy(&server->run);
    worker_provider_destroy(&server->provider);
    fake_anthropic_destroy(&server->api);
    free(server);
    return 0;
}

static void plan(server_t *server, unsigned status, const char *retry_after, const char *body,
                 int delay_ms)
{
    assert_int_equal(fake_anthropic_plan(server->api, status, retry_after, body, delay_ms), 0);
}

static int request_count(server_t *server)
{
    return fake_anthropic_request_count(server->api);
}

static const fake_anthropic_request_t *request(server_t *server, int index)
{
    const fake_anthropic_request_t *r = fake_anthropic_request(server->api, index);
    if (!r)
        fail_msg("no request %d (of %d)", index, request_count(server));
    return r;
}

static worker_provider_t *anthropic(server_t *server, int max_tries, int64_t retry_ms)
{
    char url[64], err[256] = "";
    snprintf(url, sizeof url, "http://127.0.0.1:%d/", fake_anthropic_port(server->api));
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
    plan(server, 200, NULL, fake_anthropic_sse_answer, 0);
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
    const fake_anthropic_request_t *r = request(server, 0);
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
    plan(server, 200, NULL, fake_anthropic_sse_answer, 0);
    job = job_with("Again.", NULL, 20000);
    run = start(server, &job);
    assert_int_equal(worker_run_drive(run, 10000), 0);
    assert_int_equal(worker_run_status(run), WORKER_RUN_COMPLETED);
    body = json_loads(request(server, 1)->body, 0, NULL);
    assert_int_equal(json_integer_value(json_object_get(body, "max_tokens")), 4096);
    assert_string_equal(json_string_value(json_object_get(body, "model")),
                        "claude-sonnet-4-5-20250929");
    json_decref(body);
}

static void test_529_then_200_retried(void **state)
{
    server_t *server = *state;
    anthropic(server, 3, 5000);
    plan(server, 529, "1", fake_anthropic_overloaded_body, 0);
    plan(server, 200, NULL, fake_anthropic_sse_answer, 0);
    worker_job_t job = job_with("Hi.", "haiku", 20000);
    int64_t began = syn_mono_ms();
    worker_run_t *run = start(server, &job);
    assert_int_equal(worker_run_drive(run, 10000), 0);
    assert_int_equal(worker_run_status(run), WORKER_RUN_COMPLETED);
    assert_string_equal(worker_run_output(run, NULL), "Hello, w\xC3\xB6rld!");
    assert_int_equal(request_count(server), 2);
    /* retry-after: 1 was honoured (not the 5 s back-off). */
    int64_t gap = request(server, 1)->at_ms - request(server, 0)->at_ms;
    assert_true(gap >= 950);
    assert_true(syn_mono_ms() - began < 4000);
}

static void test_5xx_backs_off_then_gives_up(void **state)
{
    server_t *server = *state;
    anthropic(server, 3, 100);
    plan(server, 500, NULL, fake_anthropic_server_error_body, 0);
    plan(server, 503, NULL, fake_anthropic_server_error_body, 0);
    plan(server, 500, NULL, fake_anthropic_server_error_body, 0);
    plan(server, 200, NULL, fake_anthropic_sse_answer, 0); /* never reached */
    worker_job_t job = job_with("Hi.", "haiku", 20000);
    worker_run_t *run = start(server, &job);
    assert_int_equal(worker_run_drive(run, 10000), 0);
    assert_int_equal(worker_run_status(run), WORKER_RUN_FAILED);
    assert_string_equal(worker_run_error(run),
                        "HTTP 500 api_error: Internal server error (gave up after 3 tries)");
    assert_int_equal(request_count(server), 3);
    /* Back-off 100 ms, then 200 ms. */
    assert_true(request(server, 1)->at_ms - request(server, 0)->at_ms >= 90);
    assert_true(request(server, 2)->at_ms - request(server, 1)->at_ms >= 190);
}

static void test_400_fails_with_api_message(void **state)
{
    server_t *server = *state;
    anthropic(server, 5, 10);
    plan(server, 400, NULL, fake_anthropic_bad_request_body, 0);
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
    plan(server, 200, NULL, fake_anthropic_sse_overloaded, 0);
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
    plan(server, 200, NULL, fake_anthropic_sse_answer, 3000);
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

    plan(server, 200, NULL, fake_anthropic_sse_answer, 3000);
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
    plan(server, 200, NULL, fake_anthropic_sse_answer, 0);
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
