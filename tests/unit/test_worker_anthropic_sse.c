/* worker/anthropic_sse.c: the Messages API's event stream read into a run,
 * without a server (tests/support/bare_run.h). The whole provider, against a
 * fake API, is tests/unit/test_worker_anthropic.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "tests/support/bare_run.h"
#include "worker/anthropic_sse.h"

static const char answer[] =
    "event: message_start\n"
    "data: {\"type\":\"message_start\",\"message\":{\"model\":\"claude-haiku-4-5\","
    "\"usage\":{\"input_tokens\":15,\"cache_read_input_tokens\":4,\"output_tokens\":1}}}\n\n"
    ": a comment\n"
    "event: content_block_delta\r\n"
    "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\","
    "\"text\":\"Hello, w\xC3\xB6rld\"}}\r\n\r\n"
    "event: message_delta\n"
    "data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},"
    "\"usage\":{\"output_tokens\":35}}\n\n"
    "event: message_stop\n"
    /* two data lines joined with '\n', and no blank line at the end */
    "data: {\"type\":\n"
    "data: \"message_stop\"}";

/* In pieces of every size, the same answer. */
static void test_answer_in_any_pieces(void **state)
{
    (void)state;
    size_t len = strlen(answer);
    for (size_t piece = 1; piece <= len; piece++) {
        worker_run_t *run = bare_run_new();
        assert_non_null(run);
        anthropic_sse_t sse;
        anthropic_sse_init(&sse);
        for (size_t at = 0; at < len; at += piece)
            anthropic_sse_feed(&sse, run, answer + at, at + piece <= len ? piece : len - at);
        anthropic_sse_end(&sse, run);
        assert_string_equal(worker_run_output(run, NULL), "Hello, w\xC3\xB6rld");
        worker_usage_t *usage = worker_run_usage(run);
        assert_int_equal(usage->input_tokens, 15);
        assert_int_equal(usage->cache_read_tokens, 4);
        assert_int_equal(usage->output_tokens, 35);
        assert_string_equal(usage->stop_reason, "end_turn");
        assert_string_equal(usage->model, "claude-haiku-4-5");
        assert_true(sse.message_stopped && sse.shown_text);
        assert_null(sse.stream_error);
        anthropic_sse_free(&sse);
        worker_run_destroy(&run);
    }
}

static void test_error_event_and_reset(void **state)
{
    (void)state;
    worker_run_t *run = bare_run_new();
    assert_non_null(run);
    anthropic_sse_t sse;
    anthropic_sse_init(&sse);
    const char *error = "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":"
                        "\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n"
                        "data: not json\n\n";
    anthropic_sse_feed(&sse, run, error, strlen(error));
    anthropic_sse_end(&sse, run);
    assert_string_equal(sse.stream_error, "overloaded_error: Overloaded");
    assert_true(sse.stream_error_retryable);
    assert_false(sse.message_stopped || sse.shown_text);
    anthropic_sse_reset(&sse);
    assert_null(sse.stream_error);
    assert_false(sse.stream_error_retryable);
    anthropic_sse_free(&sse);
    worker_run_destroy(&run);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_answer_in_any_pieces),
        cmocka_unit_test(test_error_event_and_reset),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
