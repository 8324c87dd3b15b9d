/* worker/claude_stream.c: what each line of claude's stream-json does to a run,
 * without a process (tests/support/bare_run.h). The whole provider, with a fake
 * claude, is tests/unit/test_worker_claude.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "tests/support/bare_run.h"
#include "worker/claude_stream.h"

static claude_line_t line(claude_stream_t *stream, worker_run_t *run, const char *text)
{
    return claude_stream_line(stream, run, text, strlen(text));
}

static void test_usage_once_per_message_and_text_shown(void **state)
{
    (void)state;
    claude_stream_t stream = {0};
    worker_run_t *run = bare_run_new();
    assert_non_null(run);
    const char *first = "{\"type\":\"assistant\",\"message\":{\"id\":\"m1\",\"model\":\"opus-x\","
                        "\"content\":[{\"type\":\"text\",\"text\":\"One\"}],"
                        "\"usage\":{\"input_tokens\":10,\"output_tokens\":2}}}";
    /* Claude Code repeats a message once per content block: counted once. */
    const char *again = "{\"type\":\"assistant\",\"message\":{\"id\":\"m1\",\"content\":["
                        "{\"type\":\"tool_use\",\"id\":\"t1\",\"name\":\"Bash\",\"input\":{}}],"
                        "\"usage\":{\"input_tokens\":10,\"output_tokens\":2}}}\r";
    const char *second = "{\"type\":\"assistant\",\"message\":{\"id\":\"m2\",\"content\":["
                         "{\"type\":\"text\",\"text\":\"Two\"}],\"usage\":{\"input_tokens\":1}}}";
    assert_int_equal(line(&stream, run, first), CLAUDE_LINE_OTHER);
    assert_int_equal(line(&stream, run, again), CLAUDE_LINE_OTHER);
    assert_int_equal(line(&stream, run, second), CLAUDE_LINE_OTHER);
    assert_int_equal(line(&stream, run, "\r"), CLAUDE_LINE_EMPTY);
    worker_usage_t *usage = worker_run_usage(run);
    assert_int_equal(usage->input_tokens, 11);
    assert_int_equal(usage->output_tokens, 2);
    assert_string_equal(usage->model, "opus-x");
    assert_string_equal(worker_run_output(run, NULL), "One\nTwo");
    json_t *event = worker_run_take_event(run);
    assert_string_equal(json_string_value(json_object_get(event, "kind")), "tool");
    json_decref(event);
    assert_false(stream.result_seen);
    claude_stream_free(&stream);
    worker_run_destroy(&run);
}

static void test_result_and_lines_not_ours(void **state)
{
    (void)state;
    claude_stream_t stream = {0};
    worker_run_t *run = bare_run_new();
    assert_non_null(run);
    assert_int_equal(line(&stream, run, "not json"), CLAUDE_LINE_OTHER);
    assert_int_equal(line(&stream, run, "{\"no\":\"type\"}"), CLAUDE_LINE_OTHER);
    assert_int_equal(line(&stream, run, "{\"type\":\"result\",\"subtype\":\"error_max_turns\","
                                        "\"is_error\":true,\"result\":\"stuck\",\"usage\":"
                                        "{\"input_tokens\":5},\"total_cost_usd\":0.5,"
                                        "\"num_turns\":3}"),
                     CLAUDE_LINE_RESULT);
    assert_string_equal(worker_run_output(run, NULL), "not json\n{\"no\":\"type\"}");
    assert_true(stream.result_seen && stream.result_is_error);
    assert_int_equal(stream.results_seen, 1);
    assert_string_equal(stream.result_subtype, "error_max_turns");
    assert_string_equal(stream.result_text, "stuck");
    worker_usage_t *usage = worker_run_usage(run);
    assert_int_equal(usage->input_tokens, 5);
    assert_int_equal(usage->num_turns, 3);
    assert_true(usage->cost_reported);
    claude_stream_free(&stream);
    assert_null(stream.result_text);
    worker_run_destroy(&run);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_usage_once_per_message_and_text_shown),
        cmocka_unit_test(test_result_and_lines_not_ours),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
