/* Real agents end to end (issue 5), through gateway, broker and worker processes:
 * - claude: workers run tests/fixtures/fake_claude.py as the Claude Code CLI; the
 *   session's tokens, cost, turns, tools, model and duration land per phase in the
 *   execution detail, summed in its totals and the listing, and in the replayed
 *   PhaseCompleted events; phase 2 finds phase 1's output in its workspace; an
 *   is_error result or a crash fails the phase; an injected message reaches the
 *   agent's stdin while it runs;
 * - anthropic: workers call a fake Messages API in this process (streamed SSE):
 *   usage and cost recorded, 529 then 200 completes, 400 fails with the API's text;
 * - mock: "#mock tokens" is costed from the shipped price table;
 * - command: local git repos passed in `repos` are cloned into the workspace, which
 *   is gone afterwards, and the agent sees only the environment it is allowed. */
#include "tests/support/execution.h"
#include "tests/support/expect.h"
#include "tests/support/fake_anthropic.h"
#include "tests/support/http.h"
#include "tests/support/sse.h"
#include "tests/support/teststack.h"

#include <dirent.h>
#include <ftw.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#define FAKE_CLAUDE SYN_SOURCE_DIR "/tests/fixtures/fake_claude.py"
#define SHOW_REPOS SYN_SOURCE_DIR "/tests/fixtures/show_repos.sh"
#define API_KEY "sk-ant-e2e-dummy-key"

/* One stack per group, with a scratch directory of the test's own for the
 * workers' workspaces, the fake claude's log and git repositories. */
static teststack_t *stack;
static fake_anthropic_t *api;
static char scratch[64];
static char workspaces[128];
static char claude_log[128];
static char repo[160]; /* a git repository made by the command group */

/* ---- scratch directory ---- */

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int make_scratch(void)
{
    snprintf(scratch, sizeof scratch, "/tmp/syn-agents-XXXXXX");
    if (!mkdtemp(scratch))
        return -1;
    snprintf(workspaces, sizeof workspaces, "%s/ws", scratch);
    snprintf(claude_log, sizeof claude_log, "%s/fake-claude.log", scratch);
    return mkdir(workspaces, 0700);
}

static void remove_scratch(void)
{
    if (scratch[0])
        nftw(scratch, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    scratch[0] = '\0';
}

/* The names in dir ("" when empty; NULL when it cannot be read), space separated. */
static char *dir_listing(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return NULL;
    char *list = calloc(1, 1);
    size_t len = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        size_t add = strlen(e->d_name) + 1;
        list = realloc(list, len + add + 1);
        snprintf(list + len, add + 1, "%s ", e->d_name);
        len += add;
    }
    closedir(d);
    return list;
}

/* Workspaces are removed when an attempt ends; the result may reach the broker a
 * moment before. Fails unless the directory is empty within a few seconds. */
static void expect_workspaces_gone(void)
{
    char *left = NULL;
    for (wait_t w = wait_begin(3000);;) {
        free(left);
        left = dir_listing(workspaces);
        assert_non_null(left);
        if (!*left || !wait_next(&w))
            break;
    }
    if (*left)
        fail_msg("workspaces left behind in %s: %s", workspaces, left);
    free(left);
}

static char *read_text_file(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    char *text = NULL;
    size_t len = 0;
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) {
        text = realloc(text, len + n + 1);
        memcpy(text + len, buf, n);
        len += n;
        text[len] = '\0';
    }
    fclose(f);
    return text ? text : strdup("");
}

/* ---- API helpers ---- */

static json_t *get_json(const char *fmt, const char *a)
{
    char path[512];
    snprintf(path, sizeof path, fmt, a);
    http_response_t resp;
    assert_int_equal(http_get(&resp, "%s%s", teststack_url(stack), path), 0);
    if (resp.status != 200 || !resp.json)
        fail_msg("GET %s: %ld %s", path, resp.status, resp.body ? resp.body : "");
    json_t *json = json_incref(resp.json);
    http_response_clear(&resp);
    return json;
}

/* Starts an execution and waits for it to end with want_status; returns its id. */
static char *run_to_end(const char *workflow_id, const char *body, const char *want_status)
{
    char *id = teststack_execute(stack, workflow_id, body);
    assert_non_null(id);
    json_t *final = teststack_wait_terminal(stack, workflow_id, id, 20000);
    if (!final)
        fail_msg("%s did not end", id);
    if (strcmp(json_str(final, "status"), want_status) != 0)
        fail_msg("%s is %s (error: %s), not %s", id, json_str(final, "status"),
                 json_str(final, "error"), want_status);
    json_decref(final);
    return id;
}

static json_int_t int_at(const json_t *obj, const char *key)
{
    const json_t *v = json_object_get(obj, key);
    if (!json_is_integer(v))
        fail_msg("%s is not an integer", key);
    return json_integer_value(v);
}

static void expect_cost(const json_t *obj, const char *key, double want)
{
    double got = json_num(obj, key);
    if (fabs(got - want) > 1e-9)
        fail_msg("%s is %.10f, want %.10f", key, got, want);
}

/* What one phase (or one PhaseCompleted event) should account. */
typedef struct {
    json_int_t input, output, cache_creation, cache_read;
    double cost;
    json_int_t turns, duration_ms;
    const char *model;
    const char *tool_calls; /* JSON: [{"name":..,"success":..}] */
} usage_want_t;

static void expect_usage(const json_t *obj, const usage_want_t *want)
{
    assert_int_equal(int_at(obj, "input_tokens"), want->input);
    assert_int_equal(int_at(obj, "output_tokens"), want->output);
    assert_int_equal(int_at(obj, "cache_creation_tokens"), want->cache_creation);
    assert_int_equal(int_at(obj, "cache_read_tokens"), want->cache_read);
    assert_int_equal(int_at(obj, "total_tokens"),
                     want->input + want->output + want->cache_creation + want->cache_read);
    expect_cost(obj, "cost_usd", want->cost);
    assert_int_equal(int_at(obj, "num_turns"), want->turns);
    assert_int_equal(int_at(obj, "duration_ms"), want->duration_ms);
    assert_string_equal(json_str(obj, "model"), want->model);
    json_t *tools = json_loads(want->tool_calls, 0, NULL);
    assert_non_null(tools);
    json_t *got = json_object_get(obj, "tool_calls");
    if (!json_equal(got, tools)) {
        char *text = json_dumps(got, JSON_COMPACT);
        fail_msg("tool_calls are %s, want %s", text ? text : "(none)", want->tool_calls);
    }
    assert_int_equal(int_at(obj, "tool_call_count"), (json_int_t)json_array_size(tools));
    json_decref(tools);
}

/* The execution's whole event stream (it ends after the terminal frame). */
static sse_client_t *replay_stream(const char *id)
{
    int port = atoi(strrchr(teststack_url(stack), ':') + 1);
    char path[128];
    snprintf(path, sizeof path, "/sse/executions/%s", id);
    sse_client_t *sse = sse_client_new(port, path, NULL, 0);
    assert_non_null(sse);
    if (!sse_client_wait(sse, sse_client_has_closed, 0, 10000))
        fail_msg("the stream of %s did not end: %s", id, sse_client_body(sse));
    assert_int_equal(sse_client_status(sse), 200);
    assert_true(sse_client_ended(sse));
    return sse;
}

/* The data of the stream's event_type event for phase_id (NULL for any phase). */
static const json_t *event_data(const sse_client_t *sse, const char *event_type,
                                const char *phase_id)
{
    for (size_t i = 0; i < sse_client_frame_count(sse); i++) {
        const sse_frame_t *frame = sse_client_frame(sse, i);
        const json_t *data = json_object_get(frame->data, "data");
        if (!strcmp(sse_frame_str(frame, "event_type"), event_type) &&
            (!phase_id || !strcmp(json_str(data, "phase_id"), phase_id)))
            return data;
    }
    fail_msg("no %s event for phase %s in: %s", event_type, phase_id ? phase_id : "(any)",
             sse_client_body(sse));
    return NULL;
}

/* Waits until the file holds text; fails after timeout_ms. */
static void wait_file_has(const char *path, const char *text, int timeout_ms)
{
    for (wait_t w = wait_begin(timeout_ms);;) {
        char *content = read_text_file(path);
        bool found = content && strstr(content, text);
        if (!found && !wait_next(&w))
            fail_msg("%s never held %s: %s", path, text, content ? content : "(no file)");
        free(content);
        if (found)
            return;
    }
}

/* Empties the fake claude's log (each test reads what its own executions wrote). */
static void reset_claude_log(void)
{
    FILE *f = fopen(claude_log, "w");
    assert_non_null(f);
    fclose(f);
}

/* The fake claude's log, entries of one kind ("argv" or "stdin"), as a JSON array. */
static json_t *claude_log_entries(const char *kind)
{
    json_t *all = json_array();
    FILE *f = fopen(claude_log, "r");
    assert_non_null(f);
    char line[65536];
    while (fgets(line, sizeof line, f)) {
        json_t *entry = json_loads(line, 0, NULL);
        assert_non_null(entry);
        json_t *value = json_object_get(entry, kind);
        if (value)
            json_array_append(all, value);
        json_decref(entry);
    }
    fclose(f);
    return all;
}

/* ---- claude ---- */

static int claude_setup(void **state)
{
    (void)state;
    if (make_scratch() != 0)
        return -1;
    setenv("SYN_FAKE_CLAUDE_LOG", claude_log, 1); /* SYN_*: reaches the agent */
    setenv("ANTHROPIC_API_KEY", API_KEY, 1);      /* a secret claude is given */
    setenv("E2E_OTHER_SECRET", "must-not-leak", 1);
    char args[512];
    /* --sandbox none: the fake CLI logs what it gets to a file outside its
     * workspace, and this test checks that claude is given its key, which a
     * sandboxed agent is not (tests/unit/test_worker_sandbox covers that). */
    snprintf(args, sizeof args,
             "--claude-bin %s --workspace %s --kill-grace-ms 500 --sandbox none", FAKE_CLAUDE,
             workspaces);
    teststack_options_t opts = {.workers = 1, .slots = 4, .provider = "claude",
                                .worker_args = args};
    stack = teststack_start(&opts);
    return stack ? 0 : -1;
}

static int claude_teardown(void **state)
{
    (void)state;
    teststack_destroy(&stack);
    unsetenv("SYN_FAKE_CLAUDE_LOG");
    unsetenv("ANTHROPIC_API_KEY");
    unsetenv("E2E_OTHER_SECRET");
    remove_scratch();
    return 0;
}

/* The recorded session (phase research, opus) and the FAKE_SHOW_INPUTS one
 * (phase review, haiku), as fake_claude.py reports them. */
static const usage_want_t research_usage = {
    1260, 190, 500, 12600, 0.0421, 3, 4321, "claude-opus-4-5-20251101",
    "[{\"name\":\"Bash\",\"success\":true},{\"name\":\"Write\",\"success\":false}]"};
static const usage_want_t review_usage = {312,  80,   0, 2000, 0.0123, 2, 1500,
                                          "claude-haiku-4-5-20251001",
                                          "[{\"name\":\"Read\",\"success\":true}]"};

static void test_claude_session_accounted_everywhere(void **state)
{
    (void)state;
    execution_create_workflow(stack, "{\"id\":\"claude-duo\",\"name\":\"Claude duo\","
                    " \"input_declarations\":[{\"name\":\"question\"}],\"phases\":["
                    "{\"phase_id\":\"research\",\"name\":\"Research\",\"order\":1,"
                    " \"model\":\"opus\",\"max_attempts\":1,"
                    " \"prompt_template\":\"Find the answer to {{question}}.\"},"
                    "{\"phase_id\":\"review\",\"name\":\"Review\",\"order\":2,"
                    " \"model\":\"haiku\",\"max_attempts\":1,"
                    " \"prompt_template\":\"FAKE_SHOW_INPUTS check the research\"}]}");
    reset_claude_log();
    char *id = run_to_end("claude-duo", "{\"inputs\":{\"question\":\"everything\"}}",
                          "completed");

    /* The detail: each phase's own accounting, and totals that are their sums. */
    json_t *execution = get_json("/executions/%s", id);
    json_t *research = execution_phase_in(execution, "research"), *review = execution_phase_in(execution, "review");
    assert_string_equal(json_str(research, "status"), "completed");
    assert_string_equal(json_str(review, "status"), "completed");
    expect_usage(research, &research_usage);
    expect_usage(review, &review_usage);
    const char *counts[] = {"input_tokens", "output_tokens", "cache_creation_tokens",
                            "cache_read_tokens"};
    for (int i = 0; i < 4; i++) {
        char total[64];
        snprintf(total, sizeof total, "total_%s", counts[i]);
        assert_int_equal(int_at(execution, total),
                         int_at(research, counts[i]) + int_at(review, counts[i]));
    }
    assert_int_equal(int_at(execution, "total_input_tokens"), 1260 + 312);
    assert_int_equal(int_at(execution, "total_output_tokens"), 190 + 80);
    expect_cost(execution, "total_cost_usd",
                json_num(research, "cost_usd") + json_num(review, "cost_usd"));
    expect_cost(execution, "total_cost_usd", 0.0421 + 0.0123);
    /* The attempt carries the usage it reported. */
    json_t *attempt = json_array_get(json_object_get(research, "attempts"), 0);
    assert_non_null(attempt);
    assert_int_equal(int_at(json_object_get(attempt, "usage"), "input_tokens"), 1260);
    assert_string_equal(json_str(research, "output_preview"), "The answer is 42.");
    json_decref(execution);

    /* The listing shows the same totals. */
    json_t *listing = get_json("/executions?workflow_id=%s", "claude-duo");
    json_t *summary = json_array_get(json_object_get(listing, "executions"), 0);
    assert_non_null(summary);
    assert_string_equal(json_str(summary, "execution_id"), id);
    assert_int_equal(int_at(summary, "total_input_tokens"), 1260 + 312);
    assert_int_equal(int_at(summary, "total_output_tokens"), 190 + 80);
    expect_cost(summary, "total_cost_usd", 0.0421 + 0.0123);
    json_decref(listing);

    /* The outputs are the result texts; phase 2's agent read phase 1's output from
     * artifacts/input/research.md in its workspace. */
    char *out = execution_phase_output(stack, id, "research");
    assert_string_equal(out, "The answer is 42.");
    free(out);
    out = execution_phase_output(stack, id, "review");
    assert_string_equal(out, "inputs: research.md=The answer is 42.");
    free(out);

    /* The replayed stream: PhaseCompleted with the usage, tool calls as they came. */
    sse_client_t *sse = replay_stream(id);
    expect_usage(event_data(sse, "PhaseCompleted", "research"), &research_usage);
    expect_usage(event_data(sse, "PhaseCompleted", "review"), &review_usage);
    const json_t *tool = event_data(sse, "PhaseToolCall", "review");
    assert_string_equal(json_str(tool, "name"), "Read");
    sse_client_destroy(&sse);

    /* What the agent got: the resolved model on its command line, the prompt on
     * stdin, a clean environment with its key, HOME in a workspace of ours. */
    json_t *argvs = claude_log_entries("argv");
    assert_int_equal(json_array_size(argvs), 2);
    char *first = json_dumps(json_array_get(argvs, 0), JSON_COMPACT);
    assert_non_null(strstr(first, "\"--model\",\"claude-opus-4-5-20251101\""));
    assert_null(strstr(first, "everything"));
    free(first);
    json_decref(argvs);
    json_t *lines = claude_log_entries("stdin");
    assert_int_equal(json_array_size(lines), 2);
    assert_non_null(strstr(json_string_value(json_array_get(lines, 0)),
                           "Find the answer to everything."));
    json_decref(lines);
    char env_path[160];
    snprintf(env_path, sizeof env_path, "%s.env", claude_log);
    json_t *env = json_load_file(env_path, 0, NULL);
    assert_non_null(env);
    assert_string_equal(json_str(env, "ANTHROPIC_API_KEY"), API_KEY);
    assert_string_equal(json_str(env, "SYN_PHASE_ID"), "review");
    assert_string_equal(json_str(env, "SYN_EXECUTION_ID"), id);
    assert_null(json_object_get(env, "E2E_OTHER_SECRET"));
    const char *home = json_str(env, "HOME");
    assert_int_equal(strncmp(home, workspaces, strlen(workspaces)), 0);
    json_decref(env);

    expect_workspaces_gone();
    free(id);
}

static void test_claude_error_and_crash_fail_the_phase(void **state)
{
    (void)state;
    execution_create_workflow(stack, "{\"id\":\"claude-bad\",\"name\":\"Claude bad\","
                    " \"input_declarations\":[{\"name\":\"mode\"}],\"phases\":["
                    "{\"phase_id\":\"work\",\"name\":\"Work\",\"order\":1,\"max_attempts\":1,"
                    " \"model\":\"sonnet\",\"prompt_template\":\"{{mode}}\"},"
                    "{\"phase_id\":\"after\",\"name\":\"After\",\"order\":2,"
                    " \"prompt_template\":\"never\"}]}");
    char *error_id =
        teststack_execute(stack, "claude-bad", "{\"inputs\":{\"mode\":\"FAKE_ERROR\"}}");
    char *crash_id =
        teststack_execute(stack, "claude-bad", "{\"inputs\":{\"mode\":\"FAKE_CRASH\"}}");
    assert_non_null(error_id);
    assert_non_null(crash_id);
    json_t *final = teststack_wait_terminal(stack, "claude-bad", error_id, 20000);
    assert_non_null(final);
    assert_string_equal(json_str(final, "status"), "failed");
    assert_string_equal(json_str(final, "error"), "Phase work failed: Credit balance is too low");
    json_decref(final);
    final = teststack_wait_terminal(stack, "claude-bad", crash_id, 20000);
    assert_non_null(final);
    assert_string_equal(json_str(final, "status"), "failed");
    assert_non_null(strstr(json_str(final, "error"), "killed by signal 9"));
    assert_non_null(strstr(json_str(final, "error"), "fatal: something broke inside"));
    json_decref(final);

    /* The error's session still counts what it used. */
    json_t *execution = get_json("/executions/%s", error_id);
    json_t *work = execution_phase_in(execution, "work");
    assert_string_equal(json_str(work, "status"), "failed");
    assert_string_equal(json_str(work, "error"), "Credit balance is too low");
    assert_int_equal(int_at(work, "input_tokens"), 10);
    assert_int_equal(int_at(work, "output_tokens"), 5);
    expect_cost(work, "cost_usd", 0.0001);
    assert_string_equal(json_str(execution_phase_in(execution, "after"), "status"), "skipped");
    assert_int_equal(int_at(execution, "total_input_tokens"), 10);
    expect_cost(execution, "total_cost_usd", 0.0001);
    json_decref(execution);

    /* The crash: the messages seen before it (each id once), priced from the table
     * (no result, so no cost of its own): sonnet, 107 in, 23 out, 110 cache read. */
    execution = get_json("/executions/%s", crash_id);
    work = execution_phase_in(execution, "work");
    assert_string_equal(json_str(work, "status"), "failed");
    assert_int_equal(int_at(work, "input_tokens"), 107);
    assert_int_equal(int_at(work, "output_tokens"), 23);
    assert_int_equal(int_at(work, "cache_read_tokens"), 110);
    expect_cost(work, "cost_usd", (107 * 3.0 + 23 * 15.0 + 110 * 0.30) / 1e6);
    json_decref(execution);

    sse_client_t *sse = replay_stream(error_id);
    const json_t *failed = event_data(sse, "PhaseFailed", "work");
    assert_string_equal(json_str(failed, "error"), "Credit balance is too low");
    assert_int_equal(int_at(failed, "input_tokens"), 10);
    const json_t *end = event_data(sse, "ExecutionFailed", NULL);
    assert_string_equal(json_str(end, "phase_id"), "work");
    sse_client_destroy(&sse);

    expect_workspaces_gone();
    free(error_id);
    free(crash_id);
}

static void test_claude_gets_injected_message_live(void **state)
{
    (void)state;
    execution_create_workflow(stack, "{\"id\":\"claude-talk\",\"name\":\"Claude talk\",\"phases\":["
                    "{\"phase_id\":\"listen\",\"name\":\"Listen\",\"order\":1,"
                    " \"max_attempts\":1,\"timeout_seconds\":30,"
                    " \"prompt_template\":\"FAKE_WAIT_INJECT until told\"}]}");
    reset_claude_log();
    char *id = teststack_execute(stack, "claude-talk", "{}");
    assert_non_null(id);
    /* The agent has read its prompt and now waits in a "tool call" for more input. */
    wait_file_has(claude_log, "FAKE_WAIT_INJECT until told", 10000);
    http_response_t resp;
    assert_int_equal(http_post(&resp, "{\"message\":\"use the staging database\"}",
                               "%s/executions/%s/inject", teststack_url(stack), id),
                     0);
    if (resp.status != 200)
        fail_msg("inject: %ld %s", resp.status, resp.body ? resp.body : "");
    http_response_clear(&resp);
    json_t *final = teststack_wait_terminal(stack, "claude-talk", id, 15000);
    assert_non_null(final);
    assert_string_equal(json_str(final, "status"), "completed");
    json_decref(final);

    /* It came on the agent's stdin as a second stream-json user message. */
    json_t *lines = claude_log_entries("stdin");
    assert_int_equal(json_array_size(lines), 2);
    json_t *message = json_loads(json_string_value(json_array_get(lines, 1)), 0, NULL);
    assert_non_null(message);
    assert_string_equal(json_str(message, "type"), "user");
    json_t *content = json_object_get(json_object_get(message, "message"), "content");
    const char *text = json_is_string(content)
                           ? json_string_value(content)
                           : json_str(json_array_get(content, 0), "text");
    assert_string_equal(text, "use the staging database");
    json_decref(message);
    json_decref(lines);
    char *out = execution_phase_output(stack, id, "listen");
    assert_string_equal(out, "Operator said: use the staging database");
    free(out);

    /* The event says it was told to the running phase. */
    sse_client_t *sse = replay_stream(id);
    const json_t *injected = event_data(sse, "MessageInjected", NULL);
    assert_true(json_is_true(json_object_get(injected, "live")));
    assert_string_equal(json_str(injected, "phase_id"), "listen");
    assert_string_equal(json_str(injected, "message"), "use the staging database");
    sse_client_destroy(&sse);
    expect_workspaces_gone();
    free(id);
}

/* ---- anthropic ---- */

static int anthropic_setup(void **state)
{
    (void)state;
    api = fake_anthropic_new();
    if (!api || make_scratch() != 0)
        return -1;
    setenv("ANTHROPIC_API_KEY", API_KEY, 1);
    char args[256];
    snprintf(args, sizeof args,
             "--anthropic-url %s --anthropic-retry-ms 50 --anthropic-tries 3",
             fake_anthropic_url(api));
    teststack_options_t opts = {.workers = 1, .slots = 2, .provider = "anthropic",
                                .worker_args = args};
    stack = teststack_start(&opts);
    json_t *wf = stack ? teststack_create_workflow(
                             stack, "{\"id\":\"api\",\"name\":\"API\",\"phases\":["
                                    "{\"phase_id\":\"draft\",\"name\":\"Draft\",\"order\":1,"
                                    " \"model\":\"haiku\",\"max_attempts\":1,"
                                    " \"prompt_template\":\"Write a greeting.\"}]}")
                       : NULL;
    json_decref(wf);
    return wf ? 0 : -1;
}

static int anthropic_teardown(void **state)
{
    (void)state;
    teststack_destroy(&stack);
    fake_anthropic_destroy(&api);
    unsetenv("ANTHROPIC_API_KEY");
    remove_scratch();
    return 0;
}

/* haiku 4.5: $1 in, $5 out, $1.25 cache write, $0.10 cache read per million. */
static const usage_want_t api_usage = {1500, 350, 200, 1000,
                                       (1500 * 1.0 + 350 * 5.0 + 200 * 1.25 + 1000 * 0.10) / 1e6,
                                       1, -1, "claude-haiku-4-5-20251001", "[]"};

static void expect_api_answer(const char *id)
{
    json_t *execution = get_json("/executions/%s", id);
    json_t *draft = execution_phase_in(execution, "draft");
    usage_want_t want = api_usage;
    want.duration_ms = int_at(draft, "duration_ms"); /* measured: any value */
    expect_usage(draft, &want);
    assert_int_equal(int_at(execution, "total_input_tokens"), 1500);
    assert_int_equal(int_at(execution, "total_output_tokens"), 350);
    expect_cost(execution, "total_cost_usd", api_usage.cost);
    json_decref(execution);
    char *out = execution_phase_output(stack, id, "draft");
    assert_string_equal(out, "Hello, w\xC3\xB6rld!");
    free(out);
}

static void test_anthropic_usage_and_cost(void **state)
{
    (void)state;
    int before = fake_anthropic_request_count(api);
    assert_int_equal(fake_anthropic_plan(api, 200, NULL, fake_anthropic_sse_answer, 0), 0);
    char *id = run_to_end("api", "{}", "completed");
    expect_api_answer(id);
    assert_int_equal(fake_anthropic_request_count(api), before + 1);
    const fake_anthropic_request_t *request = fake_anthropic_request(api, before);
    assert_non_null(request);
    assert_string_equal(request->api_key, API_KEY);
    assert_string_equal(request->version, "2023-06-01");
    json_t *body = json_loads(request->body, 0, NULL);
    assert_non_null(body);
    assert_string_equal(json_str(body, "model"), "claude-haiku-4-5-20251001");
    assert_true(json_is_true(json_object_get(body, "stream")));
    json_decref(body);

    sse_client_t *sse = replay_stream(id);
    usage_want_t want = api_usage;
    const json_t *completed = event_data(sse, "PhaseCompleted", "draft");
    want.duration_ms = int_at(completed, "duration_ms");
    expect_usage(completed, &want);
    sse_client_destroy(&sse);
    free(id);
}

static void test_anthropic_529_then_200_completes(void **state)
{
    (void)state;
    int before = fake_anthropic_request_count(api);
    assert_int_equal(fake_anthropic_plan(api, 529, NULL, fake_anthropic_overloaded_body, 0), 0);
    assert_int_equal(fake_anthropic_plan(api, 200, NULL, fake_anthropic_sse_answer, 0), 0);
    char *id = run_to_end("api", "{}", "completed");
    assert_int_equal(fake_anthropic_request_count(api), before + 2);
    expect_api_answer(id);
    /* Retried inside the one attempt, not by the broker. */
    json_t *execution = get_json("/executions/%s", id);
    assert_int_equal(json_array_size(json_object_get(execution_phase_in(execution, "draft"), "attempts")),
                     1);
    json_decref(execution);
    free(id);
}

static void test_anthropic_400_fails_with_api_text(void **state)
{
    (void)state;
    int before = fake_anthropic_request_count(api);
    assert_int_equal(fake_anthropic_plan(api, 400, NULL, fake_anthropic_bad_request_body, 0), 0);
    char *id = run_to_end("api", "{}", "failed");
    assert_int_equal(fake_anthropic_request_count(api), before + 1);
    const char *api_error = "HTTP 400 invalid_request_error: max_tokens: 999999 > 64000, which "
                            "is the maximum allowed";
    json_t *execution = get_json("/executions/%s", id);
    json_t *draft = execution_phase_in(execution, "draft");
    assert_string_equal(json_str(draft, "status"), "failed");
    assert_string_equal(json_str(draft, "error"), api_error);
    char want[256];
    snprintf(want, sizeof want, "Phase draft failed: %s", api_error);
    assert_string_equal(json_str(execution, "error"), want);
    json_decref(execution);
    free(id);
}

/* ---- mock ---- */

static int mock_setup(void **state)
{
    (void)state;
    teststack_options_t opts = {.workers = 1, .slots = 2};
    stack = teststack_start(&opts);
    return stack ? 0 : -1;
}

static int mock_teardown(void **state)
{
    (void)state;
    teststack_destroy(&stack);
    return 0;
}

static void test_mock_tokens_costed_from_price_table(void **state)
{
    (void)state;
    execution_create_workflow(stack, "{\"id\":\"counted\",\"name\":\"Counted\",\"phases\":["
                    "{\"phase_id\":\"a\",\"name\":\"A\",\"order\":1,"
                    " \"prompt_template\":\"#mock tokens 1200 300\\nfirst\"},"
                    "{\"phase_id\":\"b\",\"name\":\"B\",\"order\":2,\"model\":\"haiku\","
                    " \"prompt_template\":\"#mock tokens 1000 200\\nsecond\"}]}");
    char *id = run_to_end("counted", "{}", "completed");
    /* No model: sonnet 4.5 at $3 / $15 per million; haiku 4.5 at $1 / $5. */
    double cost_a = (1200 * 3.0 + 300 * 15.0) / 1e6, cost_b = (1000 * 1.0 + 200 * 5.0) / 1e6;
    json_t *execution = get_json("/executions/%s", id);
    json_t *a = execution_phase_in(execution, "a"), *b = execution_phase_in(execution, "b");
    usage_want_t want_a = {1200, 300, 0, 0, cost_a, 1, int_at(a, "duration_ms"),
                           "claude-sonnet-4-5-20250929", "[]"};
    usage_want_t want_b = {1000, 200, 0, 0, cost_b, 1, int_at(b, "duration_ms"),
                           "claude-haiku-4-5-20251001", "[]"};
    expect_usage(a, &want_a);
    expect_usage(b, &want_b);
    assert_int_equal(int_at(execution, "total_input_tokens"), 2200);
    assert_int_equal(int_at(execution, "total_output_tokens"), 500);
    expect_cost(execution, "total_cost_usd", cost_a + cost_b);
    json_decref(execution);

    json_t *listing = get_json("/executions?workflow_id=%s", "counted");
    json_t *summary = json_array_get(json_object_get(listing, "executions"), 0);
    assert_string_equal(json_str(summary, "execution_id"), id);
    assert_int_equal(int_at(summary, "total_input_tokens"), 2200);
    assert_int_equal(int_at(summary, "total_output_tokens"), 500);
    expect_cost(summary, "total_cost_usd", cost_a + cost_b);
    json_decref(listing);
    free(id);
}

/* ---- command: repositories and workspaces ---- */

static int git(const char *args)
{
    char command[1024];
    snprintf(command, sizeof command,
             "git -C %s -c user.name=syn-test -c user.email=test@syn.invalid "
             "-c init.defaultBranch=main %s >/dev/null 2>&1",
             repo, args);
    return system(command);
}

static int write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    fputs(text, f);
    return fclose(f);
}

static int command_setup(void **state)
{
    (void)state;
    if (make_scratch() != 0)
        return -1;
    /* A local repository with two commits. */
    char readme[200];
    snprintf(repo, sizeof repo, "%s/demo-repo", scratch);
    snprintf(readme, sizeof readme, "%s/README.md", repo);
    if (mkdir(repo, 0700) != 0 || git("init -q") != 0 || write_file(readme, "draft\n") != 0 ||
        git("add README.md") != 0 || git("commit -q -m one") != 0 ||
        write_file(readme, "hello from the clone\n") != 0 || git("commit -q -am two") != 0)
        return -1;
    setenv("E2E_OTHER_SECRET", "must-not-leak", 1);
    setenv("ANTHROPIC_API_KEY", API_KEY, 1);
    char args[256];
    snprintf(args, sizeof args, "--workspace %s", workspaces);
    teststack_options_t opts = {.workers = 1, .slots = 2, .provider = "command",
                                .command = SHOW_REPOS, .worker_args = args};
    stack = teststack_start(&opts);
    return stack ? 0 : -1;
}

static int command_teardown(void **state)
{
    (void)state;
    teststack_destroy(&stack);
    unsetenv("ANTHROPIC_API_KEY");
    unsetenv("E2E_OTHER_SECRET");
    remove_scratch();
    return 0;
}

static void test_repos_cloned_into_workspace_then_removed(void **state)
{
    (void)state;
    execution_create_workflow(stack, "{\"id\":\"repos\",\"name\":\"Repos\",\"phases\":["
                    "{\"phase_id\":\"look\",\"name\":\"Look\",\"order\":1,\"max_attempts\":1,"
                    " \"prompt_template\":\"look\"}]}");
    /* A plain local path clones fully; file:// is shallow (--depth 1). */
    char body[512];
    snprintf(body, sizeof body, "{\"repos\":[\"%s\",\"file://%s\"]}", repo, repo);
    char *id = run_to_end("repos", body, "completed");
    char *out = execution_phase_output(stack, id, "look");
    char want[256];
    snprintf(want, sizeof want, "cwd=%s/syn-%s-look-1-", workspaces, id);
    if (strncmp(out, want, strlen(want)) != 0)
        fail_msg("output does not start with %s:\n%s", want, out);
    const char *rest = strchr(out, '\n');
    assert_non_null(rest);
    const char *expected = "\nrepos=demo-repo demo-repo-2 \n"
                           "--- demo-repo commits=2\nhello from the clone\n"
                           "--- demo-repo-2 commits=1\nhello from the clone\n"
                           "env=";
    if (strncmp(rest, expected, strlen(expected)) != 0)
        fail_msg("output:\n%s\nwant after the cwd line:\n%s", out, expected);
    /* The agent's environment: only PATH, LANG, HOME, SYN_* (and what sh adds),
     * and, sandboxed under network proxy (the default), where its credential
     * proxy is, with a placeholder key (the real one is not in its output). */
    char *names = strdup(strstr(out, "\nenv=") + 5);
    char *save = NULL;
    for (char *name = strtok_r(names, " \n", &save); name; name = strtok_r(NULL, " \n", &save)) {
        const char *allowed[] = {"PATH", "LANG", "HOME", "PWD", "OLDPWD", "SHLVL", "_",
                                 "ANTHROPIC_BASE_URL", "ANTHROPIC_API_KEY",
                                 "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC"};
        bool ok = strncmp(name, "SYN_", 4) == 0;
        for (size_t i = 0; !ok && i < sizeof allowed / sizeof *allowed; i++)
            ok = strcmp(name, allowed[i]) == 0;
        if (!ok)
            fail_msg("the agent got %s: %s", name, out);
    }
    assert_null(strstr(out, "E2E_OTHER_SECRET"));
    assert_null(strstr(out, API_KEY));
    free(names);
    free(out);
    expect_workspaces_gone();
    free(id);

    /* A repository that is not there fails the phase with git's complaint, and
     * leaves nothing behind either. */
    snprintf(body, sizeof body, "{\"repos\":[\"%s/no-such-repo\"]}", scratch);
    id = run_to_end("repos", body, "failed");
    json_t *execution = get_json("/executions/%s", id);
    const char *error = json_str(execution_phase_in(execution, "look"), "error");
    if (!strstr(error, "no-such-repo"))
        fail_msg("error: %s", error);
    json_decref(execution);
    expect_workspaces_gone();
    free(id);
}

int main(void)
{
    const struct CMUnitTest claude[] = {
        cmocka_unit_test(test_claude_session_accounted_everywhere),
        cmocka_unit_test(test_claude_error_and_crash_fail_the_phase),
        cmocka_unit_test(test_claude_gets_injected_message_live),
    };
    const struct CMUnitTest anthropic[] = {
        cmocka_unit_test(test_anthropic_usage_and_cost),
        cmocka_unit_test(test_anthropic_529_then_200_completes),
        cmocka_unit_test(test_anthropic_400_fails_with_api_text),
    };
    const struct CMUnitTest mock[] = {
        cmocka_unit_test(test_mock_tokens_costed_from_price_table),
    };
    const struct CMUnitTest command[] = {
        cmocka_unit_test(test_repos_cloned_into_workspace_then_removed),
    };
    int failed = cmocka_run_group_tests_name("agents_claude", claude, claude_setup,
                                             claude_teardown);
    failed += cmocka_run_group_tests_name("agents_anthropic", anthropic, anthropic_setup,
                                          anthropic_teardown);
    failed += cmocka_run_group_tests_name("agents_mock", mock, mock_setup, mock_teardown);
    failed += cmocka_run_group_tests_name("agents_command", command, command_setup,
                                          command_teardown);
    return failed;
}
