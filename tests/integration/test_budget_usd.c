/* Budgets (issue 19), through gateway, broker and worker processes: an agent whose
 * reported cost crosses the execution's max_budget_usd mid-phase is stopped within
 * a second of the crossing, the execution fails with "Budget of $0.50 exceeded
 * ($0.60 spent)", and its later phase never starts.
 * - claude: tests/fixtures/fake_claude.py's FAKE_SPEND spends $0.30, waits until the
 *   test has seen that cost live (PhaseCost event, the detail's cost_usd), spends
 *   $0.30 more and would work on for 30 s: its log says when it crossed and when
 *   SIGTERM stopped it, and counts its runs; claude is given --max-budget-usd;
 * - anthropic: a fake Messages API stream reports $0.60 of usage and then holds
 *   (a model still generating): the worker hangs up, which the fake times; the
 *   budget is the workflow's default (max_budget_usd in the template). */
#include "tests/support/execution.h"
#include "tests/support/expect.h"
#include "tests/support/fake_anthropic.h"
#include "tests/support/http.h"
#include "tests/support/teststack.h"

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#define FAKE_CLAUDE SYN_SOURCE_DIR "/tests/fixtures/fake_claude.py"
#define BUDGET_ERROR "Budget of $0.50 exceeded ($0.60 spent)"

static teststack_t *stack;
static fake_anthropic_t *api;
static char scratch[64];
static char claude_log[128];

static json_t *detail_of(const char *id)
{
    http_response_t resp;
    assert_int_equal(http_get(&resp, "%s/executions/%s", teststack_url(stack), id), 0);
    if (resp.status != 200 || !resp.json)
        fail_msg("GET /executions/%s: %ld", id, resp.status);
    json_t *json = json_incref(resp.json);
    http_response_clear(&resp);
    return json;
}

/* The execution failed with the budget's words; its second phase never ran. */
static void expect_budget_failure(const char *workflow_id, const char *id)
{
    json_t *final = teststack_wait_terminal(stack, workflow_id, id, 20000);
    assert_non_null(final);
    assert_string_equal(json_str(final, "status"), "failed");
    assert_string_equal(json_str(final, "error"), BUDGET_ERROR);
    json_decref(final);
    json_t *detail = detail_of(id);
    assert_string_equal(json_str(execution_phase_in(detail, "spend"), "status"), "failed");
    assert_string_equal(json_str(execution_phase_in(detail, "spend"), "error"), BUDGET_ERROR);
    assert_string_equal(json_str(execution_phase_in(detail, "after"), "status"), "skipped");
    assert_true(fabs(json_num(detail, "max_budget_usd") - 0.5) < 1e-9);
    /* What the stopped attempt cost is in once its result is (after the agent exits). */
    WAIT_FOR((json_decref(detail), detail = detail_of(id),
              json_num(detail, "cost_usd") >= 0.6 - 1e-9),
             10000);
    if (json_num(detail, "cost_usd") < 0.6 - 1e-9)
        fail_msg("cost_usd is %f after the stop", json_num(detail, "cost_usd"));
    json_decref(detail);
    assert_int_equal(teststack_db_count(stack,
                                        "SELECT 1 FROM attempts WHERE exec_num = (SELECT num FROM "
                                        "executions WHERE id = ?1) AND phase_id = 'after'",
                                        id, NULL),
                     0);
}

/* The PhaseCost events of id that said the execution had spent want (of 0.50);
 * compared as numbers on both stores (PostgreSQL's ->> is text). */
static long cost_events(const char *id, const char *want)
{
    return teststack_db_count(
        stack,
        "SELECT 1 FROM events WHERE type = 'PhaseCost' AND exec_num = (SELECT num FROM "
        "executions WHERE id = ?1) AND CAST(json_extract(data, '$.execution_cost_usd') AS"
        " DOUBLE PRECISION) = CAST(?2 AS DOUBLE PRECISION)"
        " AND CAST(json_extract(data, '$.max_budget_usd') AS DOUBLE PRECISION) = 0.5",
        id, want, NULL);
}

/* ---- claude ---- */

static int claude_setup(void **state)
{
    (void)state;
    snprintf(scratch, sizeof scratch, "/tmp/syn-budgetusd-XXXXXX");
    if (!mkdtemp(scratch))
        return -1;
    snprintf(claude_log, sizeof claude_log, "%s/fake-claude.log", scratch);
    setenv("SYN_FAKE_CLAUDE_LOG", claude_log, 1);
    char args[512];
    snprintf(args, sizeof args, "--claude-bin %s --kill-grace-ms 3000 --sandbox none",
             FAKE_CLAUDE);
    teststack_options_t opts = {.workers = 1, .slots = 2, .provider = "claude",
                                .worker_args = args};
    stack = teststack_start(&opts);
    return stack ? 0 : -1;
}

static int claude_teardown(void **state)
{
    (void)state;
    teststack_destroy(&stack);
    unsetenv("SYN_FAKE_CLAUDE_LOG");
    teststack_remove_dir(scratch);
    return 0;
}

/* The value of the fake's log record {"<key>": value}, -1 when there is none;
 * *count is how many there are. */
static long long log_value(const char *key, int *count)
{
    FILE *f = fopen(claude_log, "r");
    long long value = -1;
    *count = 0;
    char line[8192];
    while (f && fgets(line, sizeof line, f)) {
        json_t *record = json_loads(line, 0, NULL);
        json_t *v = json_object_get(record, key);
        if (v) {
            (*count)++;
            value = json_is_integer(v) ? (long long)json_integer_value(v) : 0;
        }
        json_decref(record);
    }
    if (f)
        fclose(f);
    return value;
}

static void test_claude_stopped_at_the_crossing(void **state)
{
    (void)state;
    execution_create_workflow(
        stack, "{\"id\":\"spender\",\"name\":\"Spender\",\"phases\":["
               "{\"phase_id\":\"spend\",\"name\":\"Spend\",\"order\":1,\"model\":\"sonnet\","
               " \"prompt_template\":\"FAKE_SPEND\"},"
               "{\"phase_id\":\"after\",\"name\":\"After\",\"order\":2,\"model\":\"sonnet\","
               " \"prompt_template\":\"FAKE_SPEND again\"}]}");
    char *id = teststack_execute(stack, "spender", "{\"max_budget_usd\":0.5}");
    assert_non_null(id);

    /* $0.30 of $0.50: a watcher sees it live, in the detail and as an event. */
    json_t *detail = NULL;
    WAIT_FOR((json_decref(detail), detail = detail_of(id),
              fabs(json_num(detail, "cost_usd") - 0.3) < 1e-9),
             10000);
    if (fabs(json_num(detail, "cost_usd") - 0.3) >= 1e-9)
        fail_msg("cost_usd is %f, not 0.30, while the agent waits", json_num(detail, "cost_usd"));
    assert_true(fabs(json_num(detail, "max_budget_usd") - 0.5) < 1e-9);
    assert_string_equal(json_str(detail, "status"), "running");
    json_decref(detail);
    assert_int_equal(cost_events(id, "0.3"), 1);

    char go[160];
    snprintf(go, sizeof go, "%s.go", claude_log);
    FILE *f = fopen(go, "w");
    assert_non_null(f);
    fclose(f);
    expect_budget_failure("spender", id);
    assert_int_equal(cost_events(id, "0.6"), 1);

    /* Stopped by SIGTERM within a second of writing the crossing usage. */
    int crossed_n = 0, stopped_n = 0, runs = 0;
    long long crossed = 0, stopped = 0;
    WAIT_FOR((crossed = log_value("crossed", &crossed_n),
              stopped = log_value("stopped", &stopped_n), stopped_n == 1),
             5000);
    assert_int_equal(crossed_n, 1);
    assert_int_equal(stopped_n, 1);
    if (stopped - crossed >= 1000)
        fail_msg("the agent was stopped %lld ms after its cost crossed the budget",
                 stopped - crossed);
    /* One run only (the later phase's would be a second), told its budget. */
    log_value("argv", &runs);
    assert_int_equal(runs, 1);
    char *argv_text = NULL;
    FILE *lf = fopen(claude_log, "r");
    char line[8192];
    while (lf && fgets(line, sizeof line, lf))
        if (strstr(line, "\"argv\"") && !argv_text)
            argv_text = strdup(line);
    if (lf)
        fclose(lf);
    assert_non_null(argv_text);
    assert_non_null(strstr(argv_text, "\"--max-budget-usd\", \"0.5000\""));
    free(argv_text);
    free(id);
}

/* ---- anthropic ---- */

/* haiku 4.5 ($1 in, $5 out per million): $0.10 of input, then $0.50 of output
 * reported while the message is still being written. */
static const char spend_stream[] =
    "event: message_start\n"
    "data: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_b\",\"type\":\"message\","
    "\"role\":\"assistant\",\"content\":[],\"model\":\"claude-haiku-4-5-20251001\","
    "\"usage\":{\"input_tokens\":100000,\"output_tokens\":1}}}\n\n"
    "event: content_block_delta\n"
    "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\","
    "\"text\":\"Thinking hard\"}}\n\n"
    "event: message_delta\n"
    "data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":null},"
    "\"usage\":{\"output_tokens\":100000}}\n\n"
    "event: content_block_delta\n"
    "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\","
    "\"text\":\" and long\"}}\n\n"
    "event: message_stop\n"
    "data: {\"type\":\"message_stop\"}\n\n";

static int anthropic_setup(void **state)
{
    (void)state;
    api = fake_anthropic_new();
    if (!api)
        return -1;
    setenv("ANTHROPIC_API_KEY", "sk-ant-budget-dummy", 1);
    char args[256];
    snprintf(args, sizeof args, "--anthropic-url %s --anthropic-retry-ms 50 --anthropic-tries 1",
             fake_anthropic_url(api));
    teststack_options_t opts = {.workers = 1, .slots = 2, .provider = "anthropic",
                                .worker_args = args};
    stack = teststack_start(&opts);
    return stack ? 0 : -1;
}

static int anthropic_teardown(void **state)
{
    (void)state;
    teststack_destroy(&stack);
    fake_anthropic_destroy(&api);
    unsetenv("ANTHROPIC_API_KEY");
    return 0;
}

static void test_anthropic_stream_stopped_at_the_crossing(void **state)
{
    (void)state;
    /* The budget is the workflow's: the execute names none. */
    execution_create_workflow(
        stack, "{\"id\":\"api-spender\",\"name\":\"API spender\",\"max_budget_usd\":0.5,"
               "\"phases\":["
               "{\"phase_id\":\"spend\",\"name\":\"Spend\",\"order\":1,\"model\":\"haiku\","
               " \"max_attempts\":1,\"prompt_template\":\"Write at length.\"},"
               "{\"phase_id\":\"after\",\"name\":\"After\",\"order\":2,\"model\":\"haiku\","
               " \"prompt_template\":\"Write again.\"}]}");
    int before = fake_anthropic_request_count(api);
    assert_int_equal(fake_anthropic_plan_held(api, spend_stream,
                                              "\"usage\":{\"output_tokens\":100000}}\n\n", 30000),
                     0);
    char *id = teststack_execute(stack, "api-spender", "{}");
    assert_non_null(id);
    expect_budget_failure("api-spender", id);
    assert_int_equal(cost_events(id, "0.6"), 1);

    const fake_anthropic_request_t *request = NULL;
    WAIT_FOR((request = fake_anthropic_request(api, before)) && request->hangup_ms > 0, 5000);
    assert_non_null(request);
    assert_true(request->held_ms > 0);
    assert_true(request->hangup_ms > 0);
    if (request->hangup_ms - request->held_ms >= 1000)
        fail_msg("the stream was stopped %lld ms after the usage crossed the budget",
                 (long long)(request->hangup_ms - request->held_ms));
    /* No request for the later phase. */
    assert_int_equal(fake_anthropic_request_count(api), before + 1);
    free(id);
}

int main(void)
{
    const struct CMUnitTest claude[] = {
        cmocka_unit_test(test_claude_stopped_at_the_crossing),
    };
    const struct CMUnitTest anthropic[] = {
        cmocka_unit_test(test_anthropic_stream_stopped_at_the_crossing),
    };
    int failed = cmocka_run_group_tests_name("budget_claude", claude, claude_setup,
                                             claude_teardown);
    failed += cmocka_run_group_tests_name("budget_anthropic", anthropic, anthropic_setup,
                                          anthropic_teardown);
    return failed;
}
