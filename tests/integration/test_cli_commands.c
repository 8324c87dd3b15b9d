/* The `syn` client commands against a real stack (issue 15): each command's table,
 * its --json and its exit code, every error exit code (unknown id 4, server down 5
 * within 2 s, bad flags 2, ambiguous prefix 2, refused 1, unauthorized 5), the
 * examples of workflows/ installed with `create -f` (files and a package folder),
 * `validate` printing the server's file:line:column errors, and the team
 * controls (issue 19): `syn run --idempotency-key`, `syn rerun`. */
#include "tests/support/http.h"
#include "tests/support/synrun.h"
#include "tests/support/teststack.h"

#include <jansson.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

static teststack_t *stack;
static char scratch[64];

static int setup(void **state)
{
    (void)state;
    snprintf(scratch, sizeof scratch, "/tmp/syn-test-cli-cmd-XXXXXX");
    if (!mkdtemp(scratch))
        return -1;
    stack = teststack_start(NULL);
    return stack ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    teststack_destroy(&stack);
    return teststack_remove_dir(scratch);
}

#define ARGS(...) ((const char *const[]){__VA_ARGS__, NULL})
#define SYN(...) synrun(teststack_url(stack), NULL, NULL, ARGS(__VA_ARGS__))

/* Fails with everything syn printed unless it exited with code and printed
 * each of the NULL-ended texts on stdout (out) or stderr (err). */
#define expect_run(r, want_code, ...) \
    expect_run_at(&(r), (want_code), __FILE__, __LINE__, (const char *const[]){__VA_ARGS__, NULL})
static void expect_run_at(const synrun_t *r, int code, const char *file, int line,
                          const char *const *texts)
{
    bool ok = r->code == code;
    for (int i = 0; texts[i]; i++) {
        const char *where = !strncmp(texts[i], "err:", 4) ? r->err : r->out;
        const char *text = !strncmp(texts[i], "err:", 4) ? texts[i] + 4 : texts[i];
        if (!strstr(where, text)) {
            fprintf(stderr, "%s:%d: missing '%s'\n", file, line, text);
            ok = false;
        }
    }
    if (!ok) {
        fprintf(stderr, "%s:%d: exit %d (want %d)\n--- stdout\n%s--- stderr\n%s---\n", file, line,
                r->code, code, r->out, r->err);
        fail();
    }
}

/* Runs syn with args against the stack and expects code and texts (as expect_run). */
#define check(code, args, ...)                                        \
    do {                                                              \
        synrun_t r_ = synrun(teststack_url(stack), NULL, NULL, args); \
        expect_run(r_, (code), __VA_ARGS__);                          \
        synrun_clear(&r_);                                            \
    } while (0)

/* The answer's stdout as JSON (fails when it is not one document). */
static json_t *json_of(const synrun_t *r)
{
    json_error_t error;
    json_t *doc = json_loads(r->out, JSON_DECODE_ANY, &error);
    if (!doc)
        fprintf(stderr, "not JSON (%s): %s\n", error.text, r->out);
    assert_non_null(doc);
    return doc;
}

static const char *write_file(const char *name, const char *text)
{
    static char path[4][256];
    static int next;
    char *p = path[next++ % 4];
    snprintf(p, sizeof path[0], "%s/%s", scratch, name);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    return p;
}

static void install_examples(void)
{
    static bool done;
    if (done)
        return;
    check(0, ARGS("workflow", "create", "-f", SYN_SOURCE_DIR "/workflows/research.yaml"), "created workflow research");
    check(0, ARGS("workflow", "create", "-f", SYN_SOURCE_DIR "/workflows/pr-review.yaml"), "created workflow pr-review");
    /* a package folder: its prompts are Markdown files next to it */
    check(0, ARGS("workflow", "create", "-f", SYN_SOURCE_DIR "/workflows/implement-and-review", "-q"), "implement-and-review\n");
    done = true;
}

/* ---- workflows ---- */

static void test_create_every_example_and_list_them(void **state)
{
    (void)state;
    install_examples();
    check(0, ARGS("workflow", "list"), "ID ", "NAME", "PHASES", "research ", "pr-review ", "implement-and-review ",
               "Research a question");
    synrun_t r = SYN("workflow", "list", "--json");
    expect_run(r, 0, "\"workflows\"");
    json_t *doc = json_of(&r);
    assert_int_equal(json_integer_value(json_object_get(doc, "total")), 3);
    json_decref(doc);
    synrun_clear(&r);
    r = SYN("workflow", "list", "-q");
    expect_run(r, 0, "research\n", "pr-review\n", "implement-and-review\n");
    assert_null(strstr(r.out, "NAME"));
    synrun_clear(&r);
    /* the package's prompt files were read: the phase prompt holds the Markdown body */
    json_t *w = NULL;
    http_response_t resp;
    assert_int_equal(http_get(&resp, "%s/workflows/implement-and-review", teststack_url(stack)), 0);
    assert_int_equal(resp.status, 200);
    w = json_loads(resp.body, 0, NULL);
    const char *prompt = json_string_value(
        json_object_get(json_array_get(json_object_get(w, "phases"), 0), "prompt_template"));
    assert_non_null(prompt);
    assert_true(strlen(prompt) > 20);
    json_decref(w);
    http_response_clear(&resp);
    /* the same file again: the id is taken, the server says so, exit 1 */
    check(1, ARGS("workflow", "create", "-f", SYN_SOURCE_DIR "/workflows/research.yaml"), "err:Workflow research already exists");
    /* under another id */
    check(0, ARGS("workflow", "create", "-f", SYN_SOURCE_DIR "/workflows/research.yaml", "--id",
            "research-copy"), "created workflow research-copy");
}

static void test_show_export_archive_and_prefixes(void **state)
{
    (void)state;
    install_examples();
    check(0, ARGS("workflow", "show", "pr-"), "pr-review  Pull request review", "ORDER", "PHASE", "inputs:");
    synrun_t r = SYN("workflow", "show", "research", "--json");
    json_t *doc = json_of(&r);
    assert_string_equal(json_string_value(json_object_get(doc, "id")), "research");
    json_decref(doc);
    synrun_clear(&r);
    /* export, then the export validates and installs again */
    char out[256];
    snprintf(out, sizeof out, "%s/research-export.yaml", scratch);
    check(0, ARGS("workflow", "export", "research", "-o", out), "");
    char *yaml = synrun_slurp(out);
    assert_non_null(strstr(yaml, "id: research\n"));
    free(yaml);
    check(0, ARGS("workflow", "validate", out), ": valid");
    check(0, ARGS("workflow", "export", "research"), "id: research\n", "phases:");
    /* ambiguous and unknown prefixes */
    check(0, ARGS("workflow", "create", "-f", SYN_SOURCE_DIR "/workflows/pr-review.yaml", "--id",
            "pr-review-2"), "");
    check(2, ARGS("workflow", "show", "pr"), "err:ambiguous workflow id pr: matches", "err:pr-review", "err:pr-review-2");
    check(0, ARGS("workflow", "show", "pr-review"), "Pull request review"); /* exact beats prefix */
    check(4, ARGS("workflow", "show", "nope"), "err:Workflow nope not found");
    check(0, ARGS("workflow", "archive", "pr-review-2"), "archived workflow pr-review-2");
    check(1, ARGS("workflow", "archive", "pr-review-2"), "err:already archived");
    check(0, ARGS("workflow", "list", "--all"), "(archived)");
}

static void test_validate_prints_file_line_column(void **state)
{
    (void)state;
    const char *broken = write_file("broken.yaml", "name: Broken\n"
                                                   "type: reserch\n"
                                                   "phases:\n"
                                                   "  - id: a\n"
                                                   "    name: A\n"
                                                   "    prompt_template: hi\n");
    synrun_t r = SYN("workflow", "validate", broken);
    char want[512];
    snprintf(want, sizeof want, "err:%s:2:7: type: 'reserch' is not one of", broken);
    /* (a phase without order runs in its place: the original's oldest format) */
    expect_run(r, 1, want, "err:did you mean 'research'?");
    synrun_clear(&r);
    check(1, ARGS("workflow", "create", "-f", broken), want);
    r = SYN("workflow", "validate", broken, "--json");
    json_t *doc = json_of(&r);
    assert_true(json_is_false(json_object_get(doc, "valid")));
    json_decref(doc);
    assert_int_equal(r.code, 1);
    synrun_clear(&r);
    /* every example is valid, the package folder too */
    const char *examples[] = {"research.yaml", "pr-review.yaml", "implement-and-review"};
    for (size_t i = 0; i < 3; i++) {
        char path[512];
        snprintf(path, sizeof path, "%s/workflows/%s", SYN_SOURCE_DIR, examples[i]);
        check(0, ARGS("workflow", "validate", path), ": valid");
    }
    /* a package whose prompt file has an error: the file is named, with its line */
    char pkg[256], prompts[300];
    snprintf(pkg, sizeof pkg, "%s/pkg", scratch);
    snprintf(prompts, sizeof prompts, "%s/prompts", pkg);
    assert_int_equal(mkdir(pkg, 0700), 0);
    assert_int_equal(mkdir(prompts, 0700), 0);
    write_file("pkg/workflow.yaml", "id: pkg\nname: Pkg\nphases:\n"
                                    "  - {id: a, name: A, order: 1, prompt_file: prompts/a.md}\n");
    write_file("pkg/prompts/a.md", "---\nmodle: opus\n---\nDo it.\n");
    check(1, ARGS("workflow", "create", "-f", pkg), "err:prompts/a.md:2:1: ", "err:modle");
    check(4, ARGS("workflow", "validate", SYN_SOURCE_DIR "/workflows/missing.yaml"), "err:missing.yaml");
}

/* ---- executions ---- */

static char *run_research(void)
{
    install_examples();
    synrun_t r = SYN("run", "research", "-t", "How do Raft and Paxos differ?", "-i",
                     "length=short", "-R", "acme/app");
    expect_run(r, 0, "exec-");
    char *id = strndup(r.out, strcspn(r.out, "\n"));
    assert_int_equal(strlen(id), 17);
    synrun_clear(&r);
    json_t *done = teststack_wait_terminal(stack, "research", id, 20000);
    assert_non_null(done);
    assert_string_equal(json_string_value(json_object_get(done, "status")), "completed");
    json_decref(done);
    return id;
}

static void test_run_checks_inputs_and_flags(void **state)
{
    (void)state;
    install_examples();
    synrun_t r = SYN("run", "research");
    expect_run(r, 2, "err:give -t TASK");
    assert_string_equal(r.out, ""); /* nothing was started */
    synrun_clear(&r);
    check(2, ARGS("run", "research", "-t", "x", "-i", "novalue"), "err:-i takes key=value");
    check(4, ARGS("run", "nope", "-t", "x"), "err:Workflow nope not found");
    check(2, ARGS("run", "research", "--bogus"), "err:unknown option '--bogus'", "err:usage: syn run");
    check(2, ARGS("run"), "err:usage: syn run");
    r = SYN("run", "research", "-t", "x", "--json", "--detach");
    json_t *doc = json_of(&r);
    assert_string_equal(json_string_value(json_object_get(doc, "status")), "started");
    json_decref(doc);
    synrun_clear(&r);
}

static void test_ls_show_output_logs(void **state)
{
    (void)state;
    char *id = run_research();
    char prefix[12];
    snprintf(prefix, sizeof prefix, "%.10s", id);
    check(0, ARGS("ls"), "ID ", "WORKFLOW", "STATUS", "DURATION", id, "completed", "3/3");
    check(0, ARGS("ls", "-s", "completed", "-w", "research", "--limit", "5"), id);
    synrun_t r = SYN("ls", "-s", "failed");
    expect_run(r, 0, "");
    assert_null(strstr(r.out, id));
    synrun_clear(&r);
    r = SYN("ls", "--json");
    json_t *doc = json_of(&r);
    assert_true(json_integer_value(json_object_get(doc, "total")) >= 1);
    json_decref(doc);
    synrun_clear(&r);
    r = SYN("ls", "-q");
    expect_run(r, 0, id);
    assert_null(strstr(r.out, "STATUS"));
    synrun_clear(&r);
    check(2, ARGS("ls", "-s", "bogus"), "err:--status must be one of");
    check(2, ARGS("ls", "--limit", "0"), "err:--limit must be a number from 1 to 100");

    check(0, ARGS("show", prefix), id, "research", "PHASE", "ATTEMPTS", "WORKER", "scope ", "investigate ",
               "report ", "task: How do Raft and Paxos differ?");
    r = SYN("show", id, "--json");
    doc = json_of(&r);
    assert_int_equal(json_array_size(json_object_get(doc, "phases")), 3);
    assert_string_equal(json_string_value(json_array_get(json_object_get(doc, "repos"), 0)),
                        "acme/app");
    json_decref(doc);
    synrun_clear(&r);
    check(4, ARGS("show", "exec-000000000000"), "err:Execution not found");
    check(2, ARGS("show", "exec-"), "err:Ambiguous execution id exec-: matches");

    check(0, ARGS("output", prefix), "mock output for phase report:");
    check(0, ARGS("output", prefix, "scope"), "mock output for phase scope:", "How do Raft and Paxos differ?");
    check(4, ARGS("output", prefix, "nope"), "err:Phase nope not found");
    r = SYN("output", prefix, "scope", "--json");
    doc = json_of(&r);
    assert_non_null(strstr(json_string_value(json_object_get(doc, "output")), "mock output"));
    json_decref(doc);
    synrun_clear(&r);

    r = SYN("logs", prefix);
    expect_run(r, 0, "ExecutionStarted research, 3 phases", "PhaseStarted scope attempt 1",
               "PhaseCompleted report", "ExecutionCompleted 3/3 phases");
    assert_true(strstr(r.out, "ExecutionStarted") < strstr(r.out, "ExecutionCompleted"));
    synrun_clear(&r);
    r = SYN("logs", prefix, "--json");
    doc = json_of(&r);
    assert_true(json_array_size(doc) >= 11);
    json_decref(doc);
    synrun_clear(&r);
    free(id);
}

/* A workflow whose one phase runs until it is stopped, to steer. */
static char *run_slow(void)
{
    static bool created;
    if (!created) {
        const char *slow = write_file("slow.yaml", "id: slow\nname: Slow\nphases:\n"
                                                   "  - id: wait\n    name: Wait\n    order: 1\n"
                                                   "    prompt_template: \"#mock sleep 60000\"\n"
                                                   "  - id: after\n    name: After\n    order: 2\n"
                                                   "    prompt_template: done\n");
        check(0, ARGS("workflow", "create", "-f", slow), "");
        created = true;
    }
    synrun_t r = SYN("run", "slow", "--detach", "-q");
    expect_run(r, 0, "exec-");
    char *id = strndup(r.out, strcspn(r.out, "\n"));
    synrun_clear(&r);
    return id;
}

static void test_pause_resume_inject_cancel(void **state)
{
    (void)state;
    char *id = run_slow();
    check(0, ARGS("pause", id, "--reason", "look"), id, "paused");
    check(1, ARGS("pause", id), "err:Cannot pause execution in state paused");
    check(0, ARGS("inject", id, "-m", "mind the tests"), "Message queued");
    synrun_t r = synrun(teststack_url(stack), NULL, "from stdin\n", (const char *const[]){"inject", id,
                                                                                "--json", NULL});
    json_t *doc = json_of(&r);
    assert_true(json_is_true(json_object_get(doc, "success")));
    json_decref(doc);
    synrun_clear(&r);
    check(2, ARGS("inject", id, "-m", ""), "err:needs a message");
    check(0, ARGS("resume", id), "running");
    r = SYN("show", id, "--json");
    doc = json_of(&r);
    json_t *messages = json_object_get(doc, "operator_messages");
    assert_int_equal(json_array_size(messages), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(messages, 1), "message")),
                        "from stdin");
    json_decref(doc);
    synrun_clear(&r);
    /* stdin is not a terminal: no question asked */
    check(0, ARGS("cancel", id, "--reason", "enough"), "cancelled");
    check(1, ARGS("cancel", id, "-y"), "err:Cannot cancel execution in state cancelled");
    check(4, ARGS("resume", "exec-000000000000"), "err:Execution not found");
    free(id);
}

/* ---- status, usage, a server that is down ---- */

static void test_status(void **state)
{
    (void)state;
    check(0, ARGS("status"), "gateway  http://127.0.0.1:", "healthy", "broker   up", "workers  2");
    /* The workers' table from GET /workers: real names, slots, state. */
    check(0, ARGS("status"), "WORKER", "HOST", "RUNNING", "STATE", "w0", "w1", "mock", "ok");
    synrun_t r = SYN("status", "--json");
    json_t *doc = json_of(&r);
    assert_string_equal(json_string_value(json_object_get(json_object_get(doc, "health"),
                                                          "status")),
                        "healthy");
    json_t *workers = json_object_get(doc, "workers");
    assert_int_equal(json_array_size(workers), 2);
    assert_true(json_is_true(json_object_get(json_array_get(workers, 0), "healthy")));
    json_decref(doc);
    synrun_clear(&r);
}

/* syn health: the yes or no a compose health check runs. Ready with the stack up;
 * with its broker gone both questions say no, with the reason; once the broker is
 * back, yes again. */
static void test_health(void **state)
{
    (void)state;
    check(0, ARGS("health"), "ready (/ready 200): broker up, 2 workers");
    check(0, ARGS("health", "--live"), "(/health 200): broker up, 2 workers");
    synrun_t r = SYN("health", "-q");
    assert_int_equal(r.code, 0);
    assert_string_equal(r.out, "");
    synrun_clear(&r);
    teststack_kill_broker(stack, SIGKILL);
    check(5, ARGS("health"), "err:(/ready failed)", "err:broker unavailable");
    check(5, ARGS("health", "--live"), "err:(/health failed): broker down, 0 workers");
    assert_int_equal(teststack_start_broker(stack), 0);
    assert_int_equal(teststack_wait_health(stack, 2, 30000), 0);
    check(0, ARGS("health"), "ready (/ready 200)");
    r = synrun("http://127.0.0.1:9", NULL, NULL, ARGS("health"));
    expect_run(r, 5, "err:cannot reach http://127.0.0.1:9");
    synrun_clear(&r);
}

static void test_usage_errors_and_help(void **state)
{
    (void)state;
    check(2, ARGS("frobnicate"), "err:unknown command 'frobnicate'");
    check(0, ARGS("--help"), "workflow", "watch", "Exit codes");
    const char *commands[] = {"run", "ls", "show", "output", "watch", "logs", "pause", "resume",
                              "cancel", "inject", "status", "health"};
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        synrun_t r = SYN(commands[i], "--help");
        char want[64];
        snprintf(want, sizeof want, "usage: syn %s", commands[i]);
        expect_run(r, 0, want, "--url URL", "--json");
        synrun_clear(&r);
    }
    check(0, ARGS("workflow", "--help"), "create -f FILE|DIR");
    check(0, ARGS("workflow", "create", "--help"), "usage: syn workflow create", "--file FILE");
    const char *subcommands[] = {"list", "show", "validate", "export", "archive"};
    for (size_t i = 0; i < sizeof subcommands / sizeof subcommands[0]; i++) {
        char want[64];
        snprintf(want, sizeof want, "usage: syn workflow %s", subcommands[i]);
        check(0, ARGS("workflow", subcommands[i], "--help"), want, "--url URL");
    }
    check(2, ARGS("workflow", "frob"), "err:unknown workflow command 'frob'");
    check(2, ARGS("workflow", "create"), "err:needs -f FILE");
    check(2, ARGS("show"), "err:usage: syn show ID");
    check(2, ARGS("ls", "--url", "ftp://x"), "err:--url must start with http://");
    /* global options before the command */
    const char *url = teststack_url(stack);
    synrun_t r = synrun(NULL, NULL, NULL, (const char *const[]){"--url", url, "--json", "status", NULL});
    json_t *doc = json_of(&r);
    json_decref(doc);
    assert_int_equal(r.code, 0);
    synrun_clear(&r);
}

static void test_server_down_is_5_within_2s(void **state)
{
    (void)state;
    /* a port nobody listens on: the stack's own, once it is closed, is not known to
     * stay closed; port 9 (discard) on loopback is never served here */
    const char *commands[][3] = {{"ls", NULL, NULL},
                                 {"status", NULL, NULL},
                                 {"show", "exec-1", NULL},
                                 {"watch", "exec-1", NULL},
                                 {"workflow", "list", NULL}};
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        synrun_t r = synrun("http://127.0.0.1:9", NULL, NULL,
                            (const char *const[]){commands[i][0], commands[i][1], NULL});
        expect_run(r, 5, "err:cannot reach http://127.0.0.1:9");
        assert_true(r.ms < 2000);
        synrun_clear(&r);
    }
}

static void test_unauthorized_is_5(void **state)
{
    (void)state;
    /* a stack with tokens: a wrong one is refused with the reason, the right one works */
    teststack_options_t opts = {.workers = 1, .secure = true};
    teststack_t *secure = teststack_start(&opts);
    assert_non_null(secure);
    synrun_t r = synrun(teststack_url(secure), (const char *const[]){"SYN_API_TOKEN=wrong", NULL},
                        NULL, (const char *const[]){"ls", NULL});
    expect_run(r, 5, "err:unauthorized: Not authenticated");
    synrun_clear(&r);
    r = synrun(teststack_url(secure), NULL, NULL,
               (const char *const[]){"ls", "--token", "wrong-too", NULL});
    expect_run(r, 5, "err:unauthorized");
    synrun_clear(&r);
    r = synrun(teststack_url(secure), NULL, NULL, (const char *const[]){"ls", NULL});
    expect_run(r, 0, "STATUS");
    synrun_clear(&r);
    teststack_destroy(&secure);
}

/* ---- the team controls (issue 19) ---- */

/* The id `syn` printed first on stdout, after it exited 0 (malloc'd). */
static char *printed_id(const char *const *args)
{
    synrun_t r = synrun(teststack_url(stack), NULL, NULL, args);
    expect_run(r, 0, "exec-");
    char *id = strndup(r.out, strcspn(r.out, "\n"));
    synrun_clear(&r);
    assert_int_equal(strlen(id), 17);
    return id;
}

static long executions_with_task(const char *task)
{
    return teststack_db_count(stack, "SELECT 1 FROM executions WHERE task = ?1", task, NULL);
}

/* `syn run --idempotency-key`: the same key and request again print the first
 * execution and start nothing; another request with that key is refused (exit
 * 1) with the server's reason; a bad key too; --json carries the answer. */
static void test_run_with_an_idempotency_key(void **state)
{
    (void)state;
    install_examples();
    const char *const once[] = {"run", "research", "-t", "keyed once", "--idempotency-key",
                                "cli-key-1", "--detach", NULL};
    char *first = printed_id(once);
    char *again = printed_id(once);
    assert_string_equal(again, first);
    assert_int_equal(executions_with_task("keyed once"), 1);
    synrun_t r = SYN("run", "research", "-t", "keyed once", "--idempotency-key", "cli-key-1",
                     "--detach", "--json");
    json_t *doc = json_of(&r);
    assert_string_equal(json_string_value(json_object_get(doc, "execution_id")), first);
    json_decref(doc);
    synrun_clear(&r);
    check(1, ARGS("run", "research", "-t", "another", "--idempotency-key", "cli-key-1",
                  "--detach"),
          "err:Idempotency-Key cli-key-1 was already used with a different request");
    assert_int_equal(executions_with_task("another"), 0);
    check(1, ARGS("run", "research", "-t", "bad key", "--idempotency-key", "tab\there",
                  "--detach"),
          "err:Idempotency-Key must be 1 to 255 printable ASCII characters");
    assert_int_equal(executions_with_task("bad key"), 0);
    /* without a key, the same request starts another execution */
    char *other = printed_id(ARGS("run", "research", "-t", "keyed once", "--detach"));
    assert_string_not_equal(other, first);
    free(other);
    free(again);
    free(first);
}

/* `syn rerun`: a new execution of a finished one from --from, the phases before
 * it reused (named by the new detail), a new task; --json; an unknown phase,
 * an execution still running, an unknown id, a missing id. */
static void test_rerun(void **state)
{
    (void)state;
    char *old = run_research();
    char prefix[12];
    snprintf(prefix, sizeof prefix, "%.10s", old);
    char *id = printed_id(ARGS("rerun", prefix, "--from", "report", "-t", "again"));
    assert_string_not_equal(id, old);
    json_decref(teststack_wait_terminal(stack, "research", id, 20000));
    synrun_t r = SYN("show", id, "--json");
    json_t *doc = json_of(&r);
    assert_string_equal(json_string_value(json_object_get(doc, "rerun_of")), old);
    assert_string_equal(json_string_value(json_object_get(doc, "task")), "again");
    json_t *phases = json_object_get(doc, "phases");
    assert_string_equal(
        json_string_value(json_object_get(json_array_get(phases, 0), "reused_from")), old);
    assert_true(json_is_null(json_object_get(json_array_get(phases, 2), "reused_from")));
    assert_string_equal(json_string_value(json_object_get(doc, "status")), "completed");
    json_decref(doc);
    synrun_clear(&r);
    r = SYN("rerun", old, "--json");
    doc = json_of(&r);
    assert_string_equal(json_string_value(json_object_get(doc, "rerun_of")), old);
    assert_string_equal(json_string_value(json_object_get(doc, "from_phase")), "scope");
    json_decref(doc);
    synrun_clear(&r);
    check(1, ARGS("rerun", old, "--from", "nope"),
          "err:Phase nope not found in execution", "err:its phases are scope, investigate, report");
    char *running = run_slow();
    check(1, ARGS("rerun", running), "err:Cannot rerun execution in state running");
    check(0, ARGS("cancel", running, "-y"), "cancelled");
    check(4, ARGS("rerun", "exec-000000000000"), "err:Execution not found");
    check(2, ARGS("rerun"), "err:usage: syn rerun");
    free(running);
    free(id);
    free(old);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create_every_example_and_list_them),
        cmocka_unit_test(test_show_export_archive_and_prefixes),
        cmocka_unit_test(test_validate_prints_file_line_column),
        cmocka_unit_test(test_run_checks_inputs_and_flags),
        cmocka_unit_test(test_ls_show_output_logs),
        cmocka_unit_test(test_pause_resume_inject_cancel),
        cmocka_unit_test(test_status),
        cmocka_unit_test(test_health),
        cmocka_unit_test(test_usage_errors_and_help),
        cmocka_unit_test(test_server_down_is_5_within_2s),
        cmocka_unit_test(test_unauthorized_is_5),
        cmocka_unit_test(test_run_with_an_idempotency_key),
        cmocka_unit_test(test_rerun),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
