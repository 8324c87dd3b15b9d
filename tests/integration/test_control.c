/* Execution control and queries end to end (issue 4): cancel during a long phase,
 * pause / inject / resume between phases, every 400 rule, id prefixes (404/409),
 * listings with totals and filters, and the detail with its attempts. */
#include "tests/support/execution.h"
#include "tests/support/expect.h"
#include "tests/support/http.h"
#include "tests/support/teststack.h"

#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

static teststack_t *stack;

static int setup(void **state)
{
    (void)state;
    teststack_options_t opts = {.workers = 2, .slots = 4};
    stack = teststack_start(&opts);
    return stack ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    teststack_destroy(&stack);
    return 0;
}

/* ---- helpers ---- */

/* POST /executions/{id}/{verb} with body (NULL: none). */
static void control(http_response_t *resp, const char *id, const char *verb, const char *body)
{
    char url[256];
    snprintf(url, sizeof url, "%s/executions/%s/%s", teststack_url(stack), id, verb);
    assert_int_equal(http_request("POST", url, body, NULL, resp), 0);
}

static void expect_control_ok(const char *id, const char *verb, const char *body,
                              const char *message)
{
    http_response_t resp;
    control(&resp, id, verb, body);
    if (resp.status != 200)
        fail_msg("%s %s: %ld %s", verb, id, resp.status, resp.body ? resp.body : "");
    assert_true(json_is_true(json_object_get(resp.json, "success")));
    assert_string_equal(json_str(resp.json, "execution_id"), id);
    assert_string_equal(json_str(resp.json, "message"), message);
    assert_true(json_is_null(json_object_get(resp.json, "error")));
    assert_true(json_is_string(json_object_get(resp.json, "state")));
    http_response_clear(&resp);
}

static void expect_control_error(const char *id, const char *verb, const char *body,
                                 long status, const char *detail)
{
    http_response_t resp;
    control(&resp, id, verb, body);
    char want[512];
    snprintf(want, sizeof want, "{\"detail\":\"%s\"}", detail);
    expect_response(&resp, status, want);
    http_response_clear(&resp);
}

static json_t *get_json(long want_status, const char *fmt, const char *a, const char *b)
{
    char path[512];
    snprintf(path, sizeof path, fmt, a, b);
    http_response_t resp;
    assert_int_equal(http_get(&resp, "%s%s", teststack_url(stack), path), 0);
    if (resp.status != want_status)
        fail_msg("GET %s: %ld %s", path, resp.status, resp.body ? resp.body : "");
    json_t *json = json_incref(resp.json);
    http_response_clear(&resp);
    return json;
}

static json_t *detail(const char *id)
{
    return get_json(200, "/executions/%s%s", id, "");
}

static char *state_of(const char *id)
{
    json_t *json = get_json(200, "/executions/%s/state%s", id, "");
    char *state = strdup(json_str(json, "state"));
    json_decref(json);
    return state;
}

static char *run_to_end(const char *workflow_id, const char *body, const char *want_status)
{
    char *id = teststack_execute(stack, workflow_id, body);
    assert_non_null(id);
    json_t *final = teststack_wait_terminal(stack, workflow_id, id, 30000);
    assert_non_null(final);
    assert_string_equal(json_str(final, "status"), want_status);
    json_decref(final);
    return id;
}

/* GET /sse/executions/{id} in a thread: the stream's whole text once it ends. */
typedef struct {
    pthread_t thread;
    char url[256];
    http_response_t resp;
} stream_t;

static void *stream_run(void *arg)
{
    stream_t *s = arg;
    http_get(&s->resp, "%s", s->url);
    return NULL;
}

static stream_t *stream_start(const char *id)
{
    stream_t *s = calloc(1, sizeof *s);
    snprintf(s->url, sizeof s->url, "%s/sse/executions/%s", teststack_url(stack), id);
    pthread_create(&s->thread, NULL, stream_run, s);
    return s;
}

/* The data of the last frame of a finished stream. */
static json_t *stream_last_frame(stream_t *s)
{
    pthread_join(s->thread, NULL);
    assert_int_equal(s->resp.status, 200);
    assert_string_equal(s->resp.content_type, "text/event-stream");
    const char *last = NULL;
    for (const char *p = s->resp.body; (p = strstr(p, "data: ")); p += 6)
        last = p + 6;
    assert_non_null(last);
    const char *end = strchr(last, '\n');
    json_t *data = json_loadb(last, end ? (size_t)(end - last) : strlen(last), 0, NULL);
    assert_non_null(data);
    return data;
}

static void stream_free(stream_t **s_p)
{
    http_response_clear(&(*s_p)->resp);
    free(*s_p);
    *s_p = NULL;
}

/* ---- tests ---- */

static void test_cancel_during_a_long_phase(void **state)
{
    (void)state;
    execution_create_workflow(stack, "{\"id\":\"longrun\",\"name\":\"Long run\",\"phases\":["
                    "{\"phase_id\":\"slow\",\"name\":\"Slow\",\"order\":1,"
                    " \"prompt_template\":\"#mock sleep 10000\\nthinking\"},"
                    "{\"phase_id\":\"next\",\"name\":\"Next\",\"order\":2,\"prompt_template\":\"n\"},"
                    "{\"phase_id\":\"last\",\"name\":\"Last\",\"order\":3,\"prompt_template\":\"l\"}]}");
    char *id = teststack_execute(stack, "longrun", "{}");
    assert_non_null(id);
    stream_t *stream = stream_start(id);
    execution_wait_phase(stack, id, "slow", "running", 10000);
    long long t0 = teststack_now_ms();
    expect_control_ok(id, "cancel", "{\"reason\":\"operator stop\"}", "Cancel signal queued");
    char *now = NULL;
    for (wait_t w = wait_begin(3000);;) {
        free(now);
        now = state_of(id);
        if (!strcmp(now, "cancelled") || !wait_next(&w))
            break;
    }
    long long took = teststack_now_ms() - t0;
    print_message("cancelled in %lld ms\n", took);
    assert_string_equal(now, "cancelled");
    assert_true(took < 1000);
    free(now);

    json_t *execution = detail(id);
    assert_string_equal(json_str(execution, "status"), "cancelled");
    assert_string_equal(json_str(execution, "error"), "operator stop");
    expect_timestamp(execution, "completed_at");
    json_t *slow = execution_phase_in(execution, "slow");
    assert_string_equal(json_str(slow, "status"), "cancelled");
    json_t *attempts = json_object_get(slow, "attempts");
    assert_int_equal(json_array_size(attempts), 1);
    assert_string_equal(json_str(json_array_get(attempts, 0), "status"), "cancelled");
    const char *later[] = {"next", "last"};
    for (int i = 0; i < 2; i++) {
        json_t *phase = execution_phase_in(execution, later[i]);
        assert_string_equal(json_str(phase, "status"), "skipped");
        assert_int_equal(json_array_size(json_object_get(phase, "attempts")), 0);
    }
    json_decref(execution);

    /* The stream ended with the terminal frame. */
    json_t *last = stream_last_frame(stream);
    assert_string_equal(json_str(last, "type"), "terminal");
    assert_string_equal(json_str(last, "event_type"), "ExecutionCancelled");
    json_decref(last);
    stream_free(&stream);

    /* Nothing was dispatched after the cancel, even later: a quiet stretch in
     * which nothing may happen, not a wait. */
    wait_quiet_ms(500);
    assert_int_equal(teststack_db_count(stack,
                                        "SELECT 1 FROM attempts WHERE execution_id = ?1 AND "
                                        "phase_id != 'slow'",
                                        id, NULL),
                     0);
    expect_control_error(id, "cancel", NULL, 400, "Cannot cancel execution in state cancelled");
    free(id);

    /* Without a reason the error says who did it. */
    id = teststack_execute(stack, "longrun", "{}");
    execution_wait_phase(stack, id, "slow", "running", 10000);
    expect_control_ok(id, "cancel", NULL, "Cancel signal queued");
    json_t *final = teststack_wait_terminal(stack, "longrun", id, 5000);
    assert_string_equal(json_str(final, "status"), "cancelled");
    assert_string_equal(json_str(final, "error"), "Cancelled by user");
    json_decref(final);
    free(id);
}

/* The same with a real agent process (the command provider): its whole process group
 * is gone within a second of the cancel. Runs on a stack of its own. */
static void test_cancel_kills_a_real_agent(void **state)
{
    (void)state;
    char scratch[] = "/tmp/syn-control-XXXXXX";
    teststack_t *mock_stack = stack;
    stack = teststack_start_command(
        scratch, 1, SYN_SOURCE_DIR "/tests/integration/fixtures/scripted_agent.sh");
    assert_non_null(stack);
    execution_create_workflow(stack, "{\"id\":\"agent\",\"name\":\"Agent\",\"phases\":["
                    "{\"phase_id\":\"work\",\"name\":\"Work\",\"order\":1,"
                    " \"prompt_template\":\"$ARGUMENTS\"},"
                    "{\"phase_id\":\"after\",\"name\":\"After\",\"order\":2,"
                    " \"prompt_template\":\"never\"}]}");
    char *id = teststack_execute(stack, "agent", "{\"task\":\"HANG\"}");
    assert_non_null(id);
    pid_t agent = 0, child = 0;
    WAIT_FOR((agent = execution_read_pid(scratch, id, "pid")) > 0 &&
                 (child = execution_read_pid(scratch, id, "child.pid")) > 0,
             10000);
    assert_true(agent > 0 && child > 0);
    stream_t *stream = stream_start(id);
    long long t0 = teststack_now_ms();
    expect_control_ok(id, "cancel", NULL, "Cancel signal queued");
    WAIT_FOR(execution_process_gone(agent) && execution_process_gone(child), 3000);
    long long took = teststack_now_ms() - t0;
    print_message("agent process group gone %lld ms after the cancel\n", took);
    assert_true(execution_process_gone(agent));
    assert_true(execution_process_gone(child));
    assert_true(took < 1000);
    json_t *final = teststack_wait_terminal(stack, "agent", id, 5000);
    assert_string_equal(json_str(final, "status"), "cancelled");
    json_decref(final);
    char *after = execution_phase_status(stack, id, "after");
    assert_string_equal(after, "skipped");
    free(after);
    json_t *last = stream_last_frame(stream);
    assert_string_equal(json_str(last, "event_type"), "ExecutionCancelled");
    json_decref(last);
    stream_free(&stream);
    free(id);
    teststack_destroy(&stack);
    stack = mock_stack;
    assert_int_equal(teststack_remove_dir(scratch), 0);
}

static void test_pause_inject_resume(void **state)
{
    (void)state;
    execution_create_workflow(stack, "{\"id\":\"pausable\",\"name\":\"Pausable\",\"phases\":["
                    "{\"phase_id\":\"p1\",\"name\":\"One\",\"order\":1,"
                    " \"prompt_template\":\"#mock sleep 1500\\nfirst\"},"
                    "{\"phase_id\":\"p2\",\"name\":\"Two\",\"order\":2,"
                    " \"prompt_template\":\"second\"},"
                    "{\"phase_id\":\"p3\",\"name\":\"Three\",\"order\":3,"
                    " \"prompt_template\":\"third\"}]}");
    char *id = teststack_execute(stack, "pausable", "{}");
    assert_non_null(id);
    execution_wait_phase(stack, id, "p1", "running", 10000);
    expect_control_ok(id, "pause", "{\"reason\":\"let me look\"}", "Execution paused");
    char *now = state_of(id);
    assert_string_equal(now, "paused"); /* at once, while p1 still runs */
    free(now);
    expect_control_ok(id, "inject", "{\"message\":\"mind the tests\",\"role\":\"system\"}",
                      "Message queued");
    expect_control_ok(id, "inject", "{\"message\":\"and the docs\"}", "Message queued");

    /* The running phase finishes and keeps its result... */
    execution_wait_phase(stack, id, "p1", "completed", 10000);
    /* ...and nothing else starts while paused. */
    long long until = teststack_now_ms() + 3000;
    int checks = 0;
    while (teststack_now_ms() < until) {
        json_t *execution = detail(id);
        assert_string_equal(json_str(execution, "status"), "paused");
        assert_int_equal(json_integer_value(json_object_get(execution, "completed_phases")), 1);
        json_t *p2 = execution_phase_in(execution, "p2");
        assert_string_equal(json_str(p2, "status"), "pending");
        assert_int_equal(json_array_size(json_object_get(p2, "attempts")), 0);
        json_decref(execution);
        checks++;
        /* Looked at over the whole stretch: that nothing moves is what is
         * checked, at a fixed pace (the count of looks is checked too). */
        wait_exactly_ms(200);
    }
    assert_true(checks >= 10);
    char *p1 = execution_phase_output(stack, id, "p1");
    assert_non_null(strstr(p1, "first"));
    assert_null(strstr(p1, "mind the tests")); /* queued for the next phase, not this one */
    free(p1);

    expect_control_ok(id, "resume", NULL, "Execution resumed");
    json_t *final = teststack_wait_terminal(stack, "pausable", id, 20000);
    assert_string_equal(json_str(final, "status"), "completed");
    assert_int_equal(json_integer_value(json_object_get(final, "completed_phases")), 3);
    json_decref(final);

    /* The mock echoes its prompt: the messages were added to phase 2's, in order. */
    char *p2 = execution_phase_output(stack, id, "p2");
    print_message("phase 2 output:\n%s\n", p2);
    const char *heading = strstr(p2, "## Operator messages");
    assert_non_null(strstr(p2, "second"));
    assert_non_null(heading);
    const char *first = strstr(heading, "mind the tests");
    const char *second = strstr(heading, "and the docs");
    assert_non_null(first);
    assert_non_null(second);
    assert_true(first < second);
    assert_non_null(strstr(heading, "system"));
    assert_non_null(strstr(heading, "user"));
    free(p2);
    /* ...and then cleared. */
    char *p3 = execution_phase_output(stack, id, "p3");
    assert_null(strstr(p3, "mind the tests"));
    assert_null(strstr(p3, "Operator messages"));
    free(p3);
    free(id);
}

static void test_every_rule(void **state)
{
    (void)state;
    execution_create_workflow(stack, "{\"id\":\"rules-ok\",\"name\":\"Ok\",\"phases\":["
                    "{\"phase_id\":\"a\",\"name\":\"A\",\"order\":1,\"prompt_template\":\"x\"}]}");
    execution_create_workflow(stack, "{\"id\":\"rules-bad\",\"name\":\"Bad\",\"phases\":["
                    "{\"phase_id\":\"a\",\"name\":\"A\",\"order\":1,\"max_attempts\":1,"
                    " \"prompt_template\":\"#mock fail no\"}]}");
    execution_create_workflow(stack, "{\"id\":\"rules-long\",\"name\":\"Long\",\"phases\":["
                    "{\"phase_id\":\"a\",\"name\":\"A\",\"order\":1,"
                    " \"prompt_template\":\"#mock sleep 10000\\nx\"}]}");

    char *done = run_to_end("rules-ok", "{}", "completed");
    expect_control_error(done, "pause", NULL, 400, "Cannot pause execution in state completed");
    expect_control_error(done, "resume", NULL, 400,
                         "Cannot resume execution in state completed");
    expect_control_error(done, "cancel", NULL, 400,
                         "Cannot cancel execution in state completed");
    expect_control_error(done, "inject", "{\"message\":\"late\"}", 400,
                         "Cannot inject into terminal execution");

    char *failed = run_to_end("rules-bad", "{}", "failed");
    expect_control_error(failed, "pause", "{}", 400, "Cannot pause execution in state failed");
    expect_control_error(failed, "resume", "{}", 400, "Cannot resume execution in state failed");
    expect_control_error(failed, "cancel", "{}", 400, "Cannot cancel execution in state failed");
    expect_control_error(failed, "inject", "{\"message\":\"m\"}", 400,
                         "Cannot inject into terminal execution");

    char *running = teststack_execute(stack, "rules-long", "{}");
    execution_wait_phase(stack, running, "a", "running", 10000);
    expect_control_error(running, "resume", NULL, 400,
                         "Cannot resume execution in state running");
    expect_control_ok(running, "inject", "{\"message\":\"for later\"}", "Message queued");
    expect_control_ok(running, "pause", NULL, "Execution paused");
    expect_control_error(running, "pause", NULL, 400, "Cannot pause execution in state paused");
    expect_control_ok(running, "inject", "{\"message\":\"while paused\"}", "Message queued");
    expect_control_ok(running, "cancel", NULL, "Cancel signal queued"); /* from paused */
    json_t *final = teststack_wait_terminal(stack, "rules-long", running, 5000);
    assert_string_equal(json_str(final, "status"), "cancelled");
    json_decref(final);
    expect_control_error(running, "resume", NULL, 400,
                         "Cannot resume execution in state cancelled");
    expect_control_error(running, "pause", NULL, 400,
                         "Cannot pause execution in state cancelled");
    expect_control_error(running, "inject", "{\"message\":\"m\"}", 400,
                         "Cannot inject into terminal execution");

    /* Shape errors are the gateway's 422s; they never reach the rules. */
    http_response_t resp;
    control(&resp, done, "inject", "{}");
    expect_response(&resp, 422,
                    "{\"detail\":[{\"loc\":[\"body\",\"message\"],\"msg\":\"Field required\","
                    "\"type\":\"missing\"}]}");
    http_response_clear(&resp);
    control(&resp, done, "inject", "{\"message\":\"\",\"role\":\"admin\"}");
    expect_response(&resp, 422,
                    "{\"detail\":[{\"loc\":[\"body\",\"message\"],\"msg\":\"String should have "
                    "at least 1 character\",\"type\":\"string_too_short\"},"
                    "{\"loc\":[\"body\",\"role\"],\"msg\":\"Input should be 'user' or "
                    "'system'\",\"type\":\"literal_error\"}]}");
    http_response_clear(&resp);
    control(&resp, done, "cancel", "{\"force\":true}");
    expect_response(&resp, 422,
                    "{\"detail\":[{\"loc\":[\"body\",\"force\"],\"msg\":\"Extra inputs are not "
                    "permitted\",\"type\":\"extra_forbidden\"}]}");
    http_response_clear(&resp);
    control(&resp, done, "resume", "{\"reason\":\"x\"}");
    assert_int_equal(resp.status, 422);
    http_response_clear(&resp);
    free(done);
    free(failed);
    free(running);
}

static void test_prefixes(void **state)
{
    (void)state;
    execution_create_workflow(stack, "{\"id\":\"prefixed\",\"name\":\"Prefixed\",\"phases\":["
                    "{\"phase_id\":\"a\",\"name\":\"A\",\"order\":1,\"prompt_template\":\"x\"}]}");
    char *one = run_to_end("prefixed", "{}", "completed");
    char *two = run_to_end("prefixed", "{}", "completed");
    (void)two;
    http_response_t resp;
    const char *gets[] = {"/executions/exec-zzzzzz", "/executions/exec-zzzzzz/state",
                          "/executions/exec-zzzzzz/phases/a/output",
                          "/sse/executions/exec-zzzzzz"};
    for (int i = 0; i < 4; i++) {
        assert_int_equal(http_get(&resp, "%s%s", teststack_url(stack), gets[i]), 0);
        expect_response(&resp, 404, "{\"detail\":\"Execution not found: exec-zzzzzz\"}");
        http_response_clear(&resp);
    }
    const char *verbs[] = {"cancel", "pause", "resume"};
    for (int i = 0; i < 3; i++) {
        control(&resp, "exec-zzzzzz", verbs[i], NULL);
        expect_response(&resp, 404, "{\"detail\":\"Execution not found: exec-zzzzzz\"}");
        http_response_clear(&resp);
    }
    control(&resp, "exec-zzzzzz", "inject", "{\"message\":\"m\"}");
    expect_response(&resp, 404, "{\"detail\":\"Execution not found: exec-zzzzzz\"}");
    http_response_clear(&resp);

    /* "exec-" matches every execution: ambiguous. */
    const char *ambiguous[] = {"/executions/exec-", "/executions/exec-/state",
                               "/sse/executions/exec-"};
    for (int i = 0; i < 3; i++) {
        assert_int_equal(http_get(&resp, "%s%s", teststack_url(stack), ambiguous[i]), 0);
        assert_int_equal(resp.status, 409);
        assert_non_null(strstr(json_str(resp.json, "detail"), "Ambiguous execution id exec-"));
        http_response_clear(&resp);
    }
    control(&resp, "exec-", "cancel", NULL);
    assert_int_equal(resp.status, 409);
    http_response_clear(&resp);

    /* A unique prefix names the execution. */
    char prefix[32];
    snprintf(prefix, sizeof prefix, "%.16s", one);
    json_t *state_json = get_json(200, "/executions/%s/state%s", prefix, "");
    if (strcmp(json_str(state_json, "execution_id"), one) != 0) {
        /* Two ids may share 11 hex digits only by a 1-in-2^44 chance. */
        fail_msg("prefix %s resolved to %s", prefix, json_str(state_json, "execution_id"));
    }
    assert_string_equal(json_str(state_json, "state"), "completed");
    json_decref(state_json);
    assert_int_equal(http_get(&resp, "%s/executions/%s/phases/nope/output",
                              teststack_url(stack), one),
                     0);
    char want[256];
    snprintf(want, sizeof want, "{\"detail\":\"Phase nope not found in execution %s\"}", one);
    expect_response(&resp, 404, want);
    http_response_clear(&resp);
    free(one);
    free(two);
}

static void expect_summary_keys(json_t *summary)
{
    static const char *keys[] = {"execution_id", "workflow_id", "workflow_name", "status",
                                 "started_at", "completed_at", "completed_phases",
                                 "total_phases", "duration_seconds", "total_input_tokens",
                                 "total_output_tokens", "total_cost_usd", "error"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        if (!json_object_get(summary, keys[i]))
            fail_msg("summary without %s", keys[i]);
}

static json_t *listing(const char *query)
{
    return get_json(200, "/executions?%s%s", query, "");
}

static void expect_listing(const char *query, long total, size_t count)
{
    json_t *page = listing(query);
    if (json_integer_value(json_object_get(page, "total")) != total ||
        json_array_size(json_object_get(page, "executions")) != count)
        fail_msg("GET /executions?%s: total %lld, %zu items; want %ld, %zu", query,
                 (long long)json_integer_value(json_object_get(page, "total")),
                 json_array_size(json_object_get(page, "executions")), total, count);
    json_decref(page);
}

static void test_listing_totals_and_filters(void **state)
{
    (void)state;
    execution_create_workflow(stack, "{\"id\":\"lister-a\",\"name\":\"Lister A\",\"phases\":["
                    "{\"phase_id\":\"a\",\"name\":\"A\",\"order\":1,\"prompt_template\":\"x\"}]}");
    execution_create_workflow(stack, "{\"id\":\"lister-b\",\"name\":\"Lister B\",\"phases\":["
                    "{\"phase_id\":\"a\",\"name\":\"A\",\"order\":1,\"max_attempts\":1,"
                    " \"prompt_template\":\"#mock fail no\"}]}");
    char *a[5], *b[2];
    for (int i = 0; i < 5; i++)
        a[i] = run_to_end("lister-a", "{}", "completed");
    for (int i = 0; i < 2; i++)
        b[i] = run_to_end("lister-b", "{}", "failed");

    expect_listing("workflow_id=lister-a", 5, 5);
    expect_listing("workflow_id=lister-a&page_size=2", 5, 2);
    expect_listing("workflow_id=lister-a&page_size=2&page=3", 5, 1);
    expect_listing("workflow_id=lister-a&page_size=2&page=4", 5, 0);
    expect_listing("workflow_id=lister-a&status=completed", 5, 5);
    expect_listing("workflow_id=lister-a&status=failed", 0, 0);
    expect_listing("workflow_id=lister-b&status=failed", 2, 2);
    expect_listing("workflow_id=nope", 0, 0);

    /* Newest first, with the page's own numbers. */
    json_t *page = listing("workflow_id=lister-a&page=1&page_size=50");
    assert_int_equal(json_integer_value(json_object_get(page, "page")), 1);
    assert_int_equal(json_integer_value(json_object_get(page, "page_size")), 50);
    json_t *items = json_object_get(page, "executions");
    for (int i = 0; i < 5; i++) {
        json_t *item = json_array_get(items, (size_t)i);
        expect_summary_keys(item);
        assert_string_equal(json_str(item, "execution_id"), a[4 - i]);
        assert_string_equal(json_str(item, "workflow_name"), "Lister A");
        assert_string_equal(json_str(item, "status"), "completed");
        assert_int_equal(json_integer_value(json_object_get(item, "completed_phases")), 1);
        assert_int_equal(json_integer_value(json_object_get(item, "total_phases")), 1);
        expect_timestamp(item, "started_at");
        expect_timestamp(item, "completed_at");
        assert_true(json_is_number(json_object_get(item, "duration_seconds")));
    }
    json_decref(page);

    /* Across workflows, filtered by status only. */
    page = listing("status=failed&page_size=100");
    assert_true(json_integer_value(json_object_get(page, "total")) >= 2);
    size_t i;
    json_t *item;
    json_array_foreach(json_object_get(page, "executions"), i, item)
        assert_string_equal(json_str(item, "status"), "failed");
    json_decref(page);

    json_t *runs = get_json(200, "/workflows/%s/runs%s", "lister-b", "");
    assert_int_equal(json_integer_value(json_object_get(runs, "total")), 2);
    assert_int_equal(json_array_size(json_object_get(runs, "runs")), 2);
    assert_string_equal(json_str(runs, "workflow_id"), "lister-b");
    assert_string_equal(json_str(runs, "workflow_name"), "Lister B");
    json_t *run = json_array_get(json_object_get(runs, "runs"), 0);
    expect_summary_keys(run);
    assert_string_equal(json_str(run, "execution_id"), b[1]);
    assert_non_null(strstr(json_str(run, "error"), "no"));
    json_decref(runs);
    json_t *missing = get_json(404, "/workflows/%s/runs%s", "nope", "");
    assert_string_equal(json_str(missing, "detail"), "Workflow nope not found");
    json_decref(missing);

    http_response_t resp;
    assert_int_equal(http_get(&resp, "%s/executions?status=done", teststack_url(stack)), 0);
    assert_int_equal(resp.status, 422);
    http_response_clear(&resp);
    for (int k = 0; k < 5; k++)
        free(a[k]);
    for (int k = 0; k < 2; k++)
        free(b[k]);
}

static void test_detail_and_attempts(void **state)
{
    (void)state;
    execution_create_workflow(stack, "{\"id\":\"flaky\",\"name\":\"Flaky\",\"phases\":["
                    "{\"phase_id\":\"ok\",\"name\":\"Ok\",\"order\":1,\"prompt_template\":\"fine\"},"
                    "{\"phase_id\":\"bad\",\"name\":\"Bad\",\"order\":2,\"retries\":1,"
                    " \"retry_backoff_seconds\":0,\"prompt_template\":\"#mock fail nope\"}]}");
    char *id = run_to_end("flaky", "{\"task\":\"try\",\"inputs\":{\"k\":\"v\"}}", "failed");
    json_t *execution = detail(id);
    expect_summary_keys(execution);
    assert_string_equal(json_str(execution, "task"), "try");
    assert_string_equal(json_str(json_object_get(execution, "inputs"), "k"), "v");
    assert_int_equal(json_array_size(json_object_get(execution, "phases")), 2);
    json_t *ok = execution_phase_in(execution, "ok");
    assert_string_equal(json_str(ok, "status"), "completed");
    assert_string_equal(json_str(ok, "name"), "Ok");
    assert_int_equal(json_integer_value(json_object_get(ok, "order")), 1);
    assert_int_equal(json_array_size(json_object_get(ok, "attempts")), 1);
    static const char *phase_keys[] = {"phase_id", "name", "order", "status", "attempts",
                                       "started_at", "completed_at", "duration_seconds",
                                       "input_tokens", "output_tokens", "cost_usd", "model",
                                       "output_preview"};
    for (size_t k = 0; k < sizeof phase_keys / sizeof phase_keys[0]; k++)
        if (!json_object_get(ok, phase_keys[k]))
            fail_msg("phase without %s", phase_keys[k]);
    assert_non_null(strstr(json_str(ok, "output_preview"), "fine"));

    json_t *bad = execution_phase_in(execution, "bad");
    assert_string_equal(json_str(bad, "status"), "failed");
    json_t *attempts = json_object_get(bad, "attempts");
    assert_int_equal(json_array_size(attempts), 2);
    for (size_t k = 0; k < 2; k++) {
        json_t *attempt = json_array_get(attempts, k);
        assert_int_equal(json_integer_value(json_object_get(attempt, "attempt")), (long)k + 1);
        assert_string_equal(json_str(attempt, "status"), "failed");
        assert_true(strlen(json_str(attempt, "worker")) > 0);
        assert_non_null(strstr(json_str(attempt, "error"), "nope"));
        expect_timestamp(attempt, "started_at");
        expect_timestamp(attempt, "completed_at");
        assert_non_null(json_object_get(attempt, "exit_code"));
    }
    json_decref(execution);
    free(id);

    /* The preview is the first 2000 characters; the output route has it all. */
    char body[4096];
    char big[3001];
    memset(big, 'y', 3000);
    big[3000] = '\0';
    snprintf(body, sizeof body,
             "{\"id\":\"big\",\"name\":\"Big\",\"phases\":[{\"phase_id\":\"a\",\"name\":\"A\","
             "\"order\":1,\"prompt_template\":\"%s\"}]}",
             big);
    execution_create_workflow(stack, body);
    id = run_to_end("big", "{}", "completed");
    execution = detail(id);
    const char *preview = json_str(execution_phase_in(execution, "a"), "output_preview");
    assert_int_equal(strlen(preview), 2000);
    char *output = execution_phase_output(stack, id, "a");
    assert_true(strlen(output) > 3000);
    assert_int_equal(strncmp(output, preview, 2000), 0);
    free(output);
    json_decref(execution);
    free(id);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cancel_during_a_long_phase),
        cmocka_unit_test(test_cancel_kills_a_real_agent),
        cmocka_unit_test(test_pause_inject_resume),
        cmocka_unit_test(test_every_rule),
        cmocka_unit_test(test_prefixes),
        cmocka_unit_test(test_listing_totals_and_filters),
        cmocka_unit_test(test_detail_and_attempts),
    };
    return cmocka_run_group_tests_name("control", tests, setup, teardown);
}
