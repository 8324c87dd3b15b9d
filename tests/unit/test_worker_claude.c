/* The claude provider, against tests/fixtures/fake_claude.py: a stand-in for
 * the Claude Code CLI that writes a recorded stream-json session and logs its
 * argv, stdin and environment. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/clock.h"
#include "worker/provider.h"
#include "worker/workspace.h"
#include "tests/support/wait.h"

#define FAKE_CLAUDE SYN_SOURCE_DIR "/tests/fixtures/fake_claude.py"

typedef struct {
    char dir[256];          /* scratch: workspaces and the fake's log */
    char log[320];
    worker_provider_t *provider;
    worker_run_t *run;
} fixture_t;

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof *f);
    assert_non_null(f);
    snprintf(f->dir, sizeof f->dir, "/tmp/syn-claude-test-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->log, sizeof f->log, "%s/fake.log", f->dir);
    setenv("SYN_FAKE_CLAUDE_LOG", f->log, 1);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    worker_run_destroy(&f->run);
    worker_provider_destroy(&f->provider);
    worker_workspace_remove_tree(f->dir);
    unsetenv("SYN_FAKE_CLAUDE_LOG");
    free(f);
    return 0;
}

static worker_provider_t *claude_with(fixture_t *f, const char *bin, const char *extra_args)
{
    char err[256] = "";
    f->provider = worker_provider_claude_new(bin, extra_args, 1000, err, sizeof err);
    if (!f->provider)
        fail_msg("provider: %s", err);
    assert_string_equal(worker_provider_name(f->provider), "claude");
    char workspaces[300];
    snprintf(workspaces, sizeof workspaces, "%s/ws", f->dir);
    worker_options_t options = {.workspace_dir = workspaces, .kill_grace_ms = 1000};
    assert_int_equal(worker_provider_set_options(f->provider, &options), 0);
    return f->provider;
}

static worker_provider_t *claude(fixture_t *f, const char *bin)
{
    return claude_with(f, bin, NULL);
}

static worker_job_t job_with(const char *prompt, int64_t timeout_ms)
{
    return (worker_job_t){.execution_id = "exec-0000000000c1",
                          .workflow_id = "wf-test",
                          .phase_id = "build",
                          .attempt = 1,
                          .prompt = prompt,
                          .model = "opus",
                          .timeout_ms = timeout_ms};
}

static worker_run_t *start(fixture_t *f, const worker_job_t *job)
{
    char err[256] = "";
    f->run = worker_run_start(f->provider, job, err, sizeof err);
    if (!f->run)
        fail_msg("start: %s", err);
    return f->run;
}

/* Steps the run until pred holds (or it finishes, or max_ms). */
static bool drive_until(worker_run_t *run, bool (*pred)(worker_run_t *, void *), void *arg,
                        int64_t max_ms)
{
    int64_t give_up = syn_mono_ms() + wait_scaled_ms((int)max_ms);
    while (!pred(run, arg)) {
        if (worker_run_finished(run) || syn_mono_ms() >= give_up)
            return false;
        struct pollfd fds[WORKER_RUN_MAX_FDS];
        int n = worker_run_pollfds(run, fds, WORKER_RUN_MAX_FDS);
        int64_t deadline = worker_run_deadline(run);
        int wait = 20;
        if (deadline >= 0 && deadline - syn_mono_ms() < wait)
            wait = deadline > syn_mono_ms() ? (int)(deadline - syn_mono_ms()) : 0;
        poll(fds, (nfds_t)n, wait);
        worker_run_step(run, fds, n, syn_mono_ms());
    }
    return true;
}

static bool output_has(worker_run_t *run, void *needle)
{
    return strstr(worker_run_output(run, NULL), needle) != NULL;
}

/* Takes every queued progress event into the array events. */
static void take_events(worker_run_t *run, json_t *events)
{
    json_t *event;
    while ((event = worker_run_take_event(run)) != NULL)
        json_array_append_new(events, event);
}

static bool has_events(worker_run_t *run, void *events)
{
    take_events(run, events);
    return json_array_size(events) > 0;
}

/* The fake's log: one {"argv": [...]} or {"stdin": "<line>"} per line. */
static json_t *read_log(const fixture_t *f, const char *kind)
{
    FILE *file = fopen(f->log, "r");
    assert_non_null(file);
    json_t *all = json_array();
    char line[65536];
    while (fgets(line, sizeof line, file)) {
        json_t *entry = json_loads(line, 0, NULL);
        assert_non_null(entry);
        json_t *value = json_object_get(entry, kind);
        if (value)
            json_array_append(all, value);
        json_decref(entry);
    }
    fclose(file);
    return all;
}

/* The text of a stream-json user message line. */
static const char *message_text(json_t *line_value, json_t **parsed)
{
    *parsed = json_loads(json_string_value(line_value), 0, NULL);
    assert_non_null(*parsed);
    assert_string_equal(json_string_value(json_object_get(*parsed, "type")), "user");
    json_t *message = json_object_get(*parsed, "message");
    assert_string_equal(json_string_value(json_object_get(message, "role")), "user");
    json_t *block = json_array_get(json_object_get(message, "content"), 0);
    assert_string_equal(json_string_value(json_object_get(block, "type")), "text");
    return json_string_value(json_object_get(block, "text"));
}

static json_int_t usage_int(const json_t *usage, const char *name)
{
    json_t *v = json_object_get(usage, name);
    if (!json_is_integer(v))
        fail_msg("usage.%s is not an integer", name);
    return json_integer_value(v);
}

static void test_recorded_session(void **state)
{
    fixture_t *f = *state;
    claude(f, FAKE_CLAUDE);
    json_t *inputs = json_pack("{s:s}", "plan", "the plan from phase one");
    json_t *tools = json_pack("[s, s]", "Bash", "Read");
    worker_job_t job = job_with("Find the answer.\nSECRET_PROMPT_MARKER", 30000);
    job.inputs = inputs;
    job.allowed_tools = tools;
    json_t *reads = json_pack("[s]", "plan"), *writes = json_pack("[s, s]", "report", "patch");
    job.input_artifacts = reads;
    job.output_artifacts = writes;
    job.max_tokens = 4096; /* the original's key: claude's only cap is a variable */
    setenv("ANTHROPIC_API_KEY", "sk-test-key", 1);
    setenv("SOME_OTHER_SECRET", "must-not-leak", 1);
    worker_run_t *run = start(f, &job);
    json_decref(inputs);
    json_decref(tools);
    json_decref(reads);
    json_decref(writes);
    char workspace[512];
    assert_non_null(worker_run_workspace(run));
    snprintf(workspace, sizeof workspace, "%s", worker_run_workspace(run));
    assert_int_equal(strncmp(workspace, f->dir, strlen(f->dir)), 0);

    /* Assistant text shows while it runs. */
    assert_true(drive_until(run, output_has, "I'll look at the files.", 10000));
    assert_int_equal(worker_run_drive(run, 10000), 0);
    assert_int_equal(worker_run_status(run), WORKER_RUN_COMPLETED);
    assert_null(worker_run_error(run));
    int code = -1;
    assert_true(worker_run_exit_code(run, &code));
    assert_int_equal(code, 0);
    /* The result text is the output. */
    assert_string_equal(worker_run_output(run, NULL), "The answer is 42.");

    /* The result's totals are authoritative: tokens, its own cost, turns, time. */
    json_t *usage = worker_run_usage_json(run);
    assert_non_null(usage);
    assert_int_equal(usage_int(usage, "input_tokens"), 1260);
    assert_int_equal(usage_int(usage, "output_tokens"), 190);
    assert_int_equal(usage_int(usage, "cache_creation_tokens"), 500);
    assert_int_equal(usage_int(usage, "cache_read_tokens"), 12600);
    assert_int_equal(usage_int(usage, "total_tokens"), 1260 + 190 + 500 + 12600);
    assert_true(fabs(json_real_value(json_object_get(usage, "cost_usd")) - 0.0421) < 1e-9);
    assert_string_equal(json_string_value(json_object_get(usage, "cost_source")), "agent");
    assert_int_equal(usage_int(usage, "num_turns"), 3);
    assert_int_equal(usage_int(usage, "duration_ms"), 4321);
    assert_string_equal(json_string_value(json_object_get(usage, "model")),
                        "claude-opus-4-5-20251101");
    json_t *calls = json_object_get(usage, "tool_calls");
    assert_int_equal(json_array_size(calls), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(calls, 0), "name")),
                        "Bash");
    assert_true(json_is_true(json_object_get(json_array_get(calls, 0), "success")));
    assert_string_equal(json_string_value(json_object_get(json_array_get(calls, 1), "name")),
                        "Write");
    assert_true(json_is_false(json_object_get(json_array_get(calls, 1), "success")));
    json_decref(usage);

    /* Tool events: use (input cut to 500 characters) and result, for each call. */
    json_t *events = json_array();
    take_events(run, events);
    assert_int_equal(json_array_size(events), 4);
    const char *expect_name[] = {"Bash", "Bash", "Write", "Write"};
    const char *expect_event[] = {"use", "result", "use", "result"};
    for (size_t i = 0; i < 4; i++) {
        json_t *event = json_array_get(events, i);
        json_t *detail = json_object_get(event, "detail");
        assert_string_equal(json_string_value(json_object_get(event, "kind")), "tool");
        assert_string_equal(json_string_value(json_object_get(event, "data")), expect_name[i]);
        assert_string_equal(json_string_value(json_object_get(detail, "name")), expect_name[i]);
        assert_string_equal(json_string_value(json_object_get(detail, "event")),
                            expect_event[i]);
    }
    json_t *bash_use = json_object_get(json_array_get(events, 0), "detail");
    assert_string_equal(json_string_value(json_object_get(bash_use, "id")), "toolu_01");
    const char *preview = json_string_value(json_object_get(bash_use, "input_preview"));
    assert_int_equal(strlen(preview), 500);
    assert_int_equal(strncmp(preview, "{\"command\":\"grep -rn 'TODO'", 26), 0);
    assert_true(json_is_true(json_object_get(json_object_get(json_array_get(events, 1), "detail"),
                                             "success")));
    assert_true(json_is_false(json_object_get(json_object_get(json_array_get(events, 3),
                                                              "detail"), "success")));
    json_decref(events);

    /* The command line: headless stream-json, the resolved model, the tools;
     * the prompt is not on it. */
    json_t *argvs = read_log(f, "argv");
    assert_int_equal(json_array_size(argvs), 1);
    char *argv_text = json_dumps(json_array_get(argvs, 0), JSON_COMPACT);
    assert_string_equal(argv_text,
                        "[\"" FAKE_CLAUDE "\",\"-p\",\"--output-format\",\"stream-json\","
                        "\"--input-format\",\"stream-json\",\"--verbose\",\"--model\","
                        "\"claude-opus-4-5-20251101\",\"--allowedTools\",\"Bash\",\"Read\"]");
    free(argv_text);
    json_decref(argvs);

    /* The prompt came as the first stream-json user message, after the preamble. */
    json_t *lines = read_log(f, "stdin");
    assert_int_equal(json_array_size(lines), 1);
    json_t *parsed;
    const char *text = message_text(json_array_get(lines, 0), &parsed);
    assert_non_null(strstr(text, "phase \"build\""));
    assert_non_null(strstr(text, "artifacts/input/"));
    assert_non_null(strstr(text, "plan.md"));
    assert_non_null(strstr(text, "artifacts/output/"));
    /* the artifact names the phase declares */
    assert_non_null(strstr(text, "This phase reads the artifacts: plan.\n"));
    assert_non_null(strstr(text, "(any extension): report, patch.\n"));
    const char *tail = "---\n\nFind the answer.\nSECRET_PROMPT_MARKER";
    assert_string_equal(text + strlen(text) - strlen(tail), tail);
    json_decref(parsed);
    json_decref(lines);

    /* Its environment: the key claude needs, never the other secret. */
    char env_path[400];
    snprintf(env_path, sizeof env_path, "%s.env", f->log);
    json_t *env = json_load_file(env_path, 0, NULL);
    assert_non_null(env);
    assert_string_equal(json_string_value(json_object_get(env, "ANTHROPIC_API_KEY")),
                        "sk-test-key");
    assert_null(json_object_get(env, "SOME_OTHER_SECRET"));
    assert_string_equal(json_string_value(json_object_get(env, "CLAUDE_CODE_MAX_OUTPUT_TOKENS")),
                        "4096");
    assert_string_equal(json_string_value(json_object_get(env, "HOME")), workspace);
    json_decref(env);
    unsetenv("ANTHROPIC_API_KEY");
    unsetenv("SOME_OTHER_SECRET");

    /* It ran in its workspace, which goes with the run. */
    struct stat st;
    assert_int_equal(stat(workspace, &st), 0);
    worker_run_destroy(&f->run);
    assert_int_equal(stat(workspace, &st), -1);
}

static void test_is_error_fails(void **state)
{
    fixture_t *f = *state;
    claude(f, FAKE_CLAUDE);
    worker_job_t job = job_with("FAKE_ERROR please", 30000);
    worker_run_t *run = start(f, &job);
    assert_int_equal(worker_run_drive(run, 10000), 0);
    assert_int_equal(worker_run_status(run), WORKER_RUN_FAILED);
    assert_string_equal(worker_run_error(run), "Credit balance is too low");
    int code = -1;
    assert_true(worker_run_exit_code(run, &code));
    assert_int_equal(code, 1);
    json_t *usage = worker_run_usage_json(run);
    assert_int_equal(usage_int(usage, "input_tokens"), 10);
    json_decref(usage);
}

static void test_crash_mid_stream(void **state)
{
    fixture_t *f = *state;
    claude(f, FAKE_CLAUDE);
    worker_job_t job = job_with("FAKE_CRASH", 30000);
    worker_run_t *run = start(f, &job);
    assert_int_equal(worker_run_drive(run, 10000), 0);
    assert_int_equal(worker_run_status(run), WORKER_RUN_FAILED);
    assert_string_equal(worker_run_error(run),
                        "killed by signal 9: fatal: something broke inside");
    assert_false(worker_run_exit_code(run, NULL));
    /* What it streamed is kept, the cut-off line too (as text). */
    assert_non_null(strstr(worker_run_output(run, NULL), "Starting work."));
    assert_non_null(strstr(worker_run_output(run, NULL), "{\"type\":\"assistant\""));
    /* No result: the assistant messages' usage, each message id counted once,
     * costed from the price table (opus 4.5: $5 in, $25 out, $0.50 cache read). */
    json_t *usage = worker_run_usage_json(run);
    assert_int_equal(usage_int(usage, "input_tokens"), 107);
    assert_int_equal(usage_int(usage, "output_tokens"), 23);
    assert_int_equal(usage_int(usage, "cache_read_tokens"), 110);
    assert_string_equal(json_string_value(json_object_get(usage, "cost_source")),
                        "price_table");
    double expect = (107 * 5.0 + 23 * 25.0 + 110 * 0.5) / 1e6;
    assert_true(fabs(json_real_value(json_object_get(usage, "cost_usd")) - expect) < 1e-12);
    json_t *calls = json_object_get(usage, "tool_calls");
    assert_int_equal(json_array_size(calls), 1);
    assert_true(json_is_false(json_object_get(json_array_get(calls, 0), "success")));
    json_decref(usage);
}

static void test_inject_reaches_stdin(void **state)
{
    fixture_t *f = *state;
    claude(f, FAKE_CLAUDE);
    worker_job_t job = job_with("FAKE_WAIT_INJECT", 30000);
    worker_run_t *run = start(f, &job);
    char err[256] = "";
    /* Once the (endless) tool call has started, the operator speaks. */
    json_t *events = json_array();
    assert_true(drive_until(run, has_events, events, 10000));
    json_decref(events);
    assert_int_equal(worker_run_inject(run, "user", "please wrap up now", err, sizeof err), 0);
    assert_int_equal(worker_run_drive(run, 10000), 0);
    assert_int_equal(worker_run_status(run), WORKER_RUN_COMPLETED);
    assert_string_equal(worker_run_output(run, NULL), "Operator said: please wrap up now");
    json_t *usage = worker_run_usage_json(run);
    assert_int_equal(usage_int(usage, "num_turns"), 2);
    assert_int_equal(usage_int(usage, "input_tokens"), 70);
    json_decref(usage);
    json_t *lines = read_log(f, "stdin");
    assert_int_equal(json_array_size(lines), 2);
    json_t *parsed;
    assert_string_equal(message_text(json_array_get(lines, 1), &parsed), "please wrap up now");
    json_decref(parsed);
    json_decref(lines);
    /* Over: no more messages. */
    assert_int_equal(worker_run_inject(run, "user", "too late", err, sizeof err), -1);
    assert_string_equal(err, "the attempt has finished");
}

static void test_output_file_wins(void **state)
{
    fixture_t *f = *state;
    claude(f, FAKE_CLAUDE);
    worker_job_t job = job_with("FAKE_OUTPUT_FILE", 30000);
    worker_run_t *run = start(f, &job);
    assert_int_equal(worker_run_drive(run, 10000), 0);
    assert_int_equal(worker_run_status(run), WORKER_RUN_COMPLETED);
    assert_string_equal(worker_run_output(run, NULL), "# Report\nwritten to a file\n");
}

static void test_non_json_kept(void **state)
{
    fixture_t *f = *state;
    claude(f, FAKE_CLAUDE);
    worker_job_t job = job_with("FAKE_NOISE", 30000);
    worker_run_t *run = start(f, &job);
    assert_true(drive_until(run, output_has, "{broken json", 10000));
    assert_non_null(strstr(worker_run_output(run, NULL), "Warning: this is not JSON\nHello.\n"));
    assert_int_equal(worker_run_drive(run, 10000), 0);
    assert_int_equal(worker_run_status(run), WORKER_RUN_COMPLETED);
    assert_string_equal(worker_run_output(run, NULL), "noisy but fine");
    worker_run_destroy(&f->run);
    worker_provider_destroy(&f->provider);

    /* A "claude" that writes no JSON at all (echo prints its arguments): its
     * text is the output, and shows the prompt never was an argument. */
    claude(f, "/bin/echo");
    job = job_with("PROMPT_NOT_IN_ARGV", 30000);
    job.model = NULL;
    run = start(f, &job);
    assert_int_equal(worker_run_drive(run, 10000), 0);
    assert_int_equal(worker_run_status(run), WORKER_RUN_COMPLETED);
    assert_string_equal(worker_run_output(run, NULL),
                        "-p --output-format stream-json --input-format stream-json --verbose "
                        "--model claude-sonnet-4-5-20250929");
    worker_run_destroy(&f->run);
    worker_provider_destroy(&f->provider);

    /* --claude-args come after the fixed ones, the phase's tools last. */
    claude_with(f, "/bin/echo", "--permission-mode 'accept Edits'");
    json_t *tools = json_pack("[s, s]", "Bash(git log:*)", "Read");
    job.allowed_tools = tools;
    run = start(f, &job);
    json_decref(tools);
    assert_int_equal(worker_run_drive(run, 10000), 0);
    assert_string_equal(worker_run_output(run, NULL),
                        "-p --output-format stream-json --input-format stream-json --verbose "
                        "--model claude-sonnet-4-5-20250929 --permission-mode accept Edits "
                        "--allowedTools Bash(git log:*) Read");
    worker_run_destroy(&f->run);
    worker_provider_destroy(&f->provider);
    char err[128] = "";
    assert_null(worker_provider_claude_new("claude", "--x 'open", 1000, err, sizeof err));
    assert_string_equal(err, "bad --claude-args: unbalanced single quote");
}

static void test_cannot_start_cancel_timeout(void **state)
{
    fixture_t *f = *state;
    claude(f, "/nonexistent/claude");
    worker_job_t job = job_with("x", 30000);
    worker_run_t *run = start(f, &job);
    assert_true(worker_run_finished(run));
    assert_int_equal(worker_run_status(run), WORKER_RUN_FAULT); /* not the agent's */
    char why[256];
    assert_int_equal(worker_provider_check(f->provider, why, sizeof why), -1);
    assert_string_equal(why, "cannot run /nonexistent/claude: No such file or directory");
    assert_string_equal(worker_run_error(run),
                        "cannot run /nonexistent/claude: No such file or directory");
    worker_run_destroy(&f->run);
    worker_provider_destroy(&f->provider);

    claude(f, FAKE_CLAUDE);
    job = job_with("FAKE_WAIT_INJECT", 0);
    run = start(f, &job);
    json_t *events = json_array();
    assert_true(drive_until(run, has_events, events, 10000));
    json_decref(events);
    int64_t cancelled_at = syn_mono_ms();
    worker_run_cancel(run, cancelled_at);
    assert_int_equal(worker_run_drive(run, 5000), 0);
    assert_true(syn_mono_ms() - cancelled_at < 1000);
    assert_int_equal(worker_run_status(run), WORKER_RUN_CANCELLED);
    worker_run_destroy(&f->run);

    job = job_with("FAKE_WAIT_INJECT", 700);
    int64_t began = syn_mono_ms();
    run = start(f, &job);
    assert_int_equal(worker_run_drive(run, 5000), 0);
    assert_true(syn_mono_ms() - began >= 700);
    assert_int_equal(worker_run_status(run), WORKER_RUN_FAILED);
    assert_string_equal(worker_run_error(run), "timed out after 0.7 s");
}

int main(void)
{
    signal(SIGPIPE, SIG_DFL);
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_recorded_session, setup, teardown),
        cmocka_unit_test_setup_teardown(test_is_error_fails, setup, teardown),
        cmocka_unit_test_setup_teardown(test_crash_mid_stream, setup, teardown),
        cmocka_unit_test_setup_teardown(test_inject_reaches_stdin, setup, teardown),
        cmocka_unit_test_setup_teardown(test_output_file_wins, setup, teardown),
        cmocka_unit_test_setup_teardown(test_non_json_kept, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cannot_start_cancel_timeout, setup, teardown),
    };
    return cmocka_run_group_tests_name("worker_claude", tests, NULL, NULL);
}
