/* `syn watch` and `syn run` watching, against a real stack (issue 15): without a
 * terminal one line per event in order and the execution's exit code (0, 1, 3);
 * under a real terminal (tmux) the live view reaching 100 % with every phase
 * completed; and a gateway killed and restarted in the middle of a watch, which
 * resumes with Last-Event-ID and shows every event exactly once. */
#include "cli/table.h"
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
#include <unistd.h>
#include <cmocka.h>

static teststack_t *stack;
static char scratch[64];

/* Three phases of a few hundred milliseconds with tokens, and variants. */
static const char demo_yaml[] = "id: demo\nname: Demo\nphases:\n"
                                "  - id: plan\n    name: Plan\n    order: 1\n"
                                "    prompt_template: |\n      #mock sleep SLEEP\n"
                                "      #mock tokens 1200 340\n      Plan $ARGUMENTS\n"
                                "  - id: build\n    name: Build\n    order: 2\n"
                                "    prompt_template: |\n      #mock sleep SLEEP\n"
                                "      #mock tokens 5300 2100\n      Build {{plan}}\n"
                                "  - id: review\n    name: Review\n    order: 3\n"
                                "    prompt_template: |\n      #mock sleep SLEEP\n"
                                "      Review {{build}}\n";

/* Installs demo_yaml as id with SLEEP replaced by sleep_ms. */
static void install(const char *id, int sleep_ms, const char *extra_phase)
{
    char yaml[4096], path[256], *p;
    snprintf(yaml, sizeof yaml, "%s%s", demo_yaml, extra_phase ? extra_phase : "");
    while ((p = strstr(yaml, "SLEEP"))) {
        char n[16];
        snprintf(n, sizeof n, "%05d", sleep_ms);
        memcpy(p, n, 5);
    }
    snprintf(path, sizeof path, "%s/%s.yaml", scratch, id);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(yaml, f);
    fclose(f);
    synrun_t r = synrun(teststack_url(stack), NULL, NULL,
                        (const char *const[]){"workflow", "create", "-f", path, "--id", id, NULL});
    if (r.code != 0)
        fprintf(stderr, "%s%s", r.out, r.err);
    assert_int_equal(r.code, 0);
    synrun_clear(&r);
}

static int setup(void **state)
{
    (void)state;
    snprintf(scratch, sizeof scratch, "/tmp/syn-test-cli-watch-XXXXXX");
    if (!mkdtemp(scratch))
        return -1;
    stack = teststack_start(NULL);
    if (!stack)
        return -1;
    install("demo", 300, NULL);
    install("slow", 1500, NULL);
    install("failing", 100,
            "  - id: broken\n    name: Broken\n    order: 4\n"
            "    prompt_template: \"#mock fail model refused\"\n");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    teststack_destroy(&stack);
    return teststack_remove_dir(scratch);
}

/* The event names of syn's plain lines ("HH:MM:SS #id Event …"), in order, as
 * "id Event phase" strings in a JSON array; output text lines are skipped. */
static json_t *events_of(const char *text)
{
    json_t *events = json_array();
    const char *line = text;
    while (*line) {
        size_t len = strcspn(line, "\n");
        long long id;
        char event[64], phase[64] = "";
        if (sscanf(line, "%*2d:%*2d:%*2d #%lld %63s %63s", &id, event, phase) >= 2) {
            char item[160];
            snprintf(item, sizeof item, "%lld %s %s", id, event,
                     strncmp(event, "Phase", 5) ? "" : phase);
            json_array_append_new(events, json_string(item));
        }
        line += len + (line[len] == '\n');
    }
    return events;
}

static void expect_in_order(const char *text, const char *const *wanted)
{
    const char *at = text;
    for (int i = 0; wanted[i]; i++) {
        const char *found = strstr(at, wanted[i]);
        if (!found) {
            fprintf(stderr, "missing (in order) '%s' in:\n%s\n", wanted[i], text);
            fail();
        }
        at = found + strlen(wanted[i]);
    }
}

/* Starts an execution of workflow without watching it: its id (malloc'd). */
static char *start_detached(const char *workflow)
{
    synrun_t r = synrun(teststack_url(stack), NULL, NULL,
                        (const char *const[]){"run", workflow, "--detach", "-q", NULL});
    assert_int_equal(r.code, 0);
    char *id = strndup(r.out, strcspn(r.out, "\n"));
    synrun_clear(&r);
    return id;
}

/* `syn watch id` in the background, output to scratch/name, once it has printed
 * text (within 15 s): its pid. */
static pid_t watch_until(const char *id, const char *name, const char *text)
{
    char out[256];
    snprintf(out, sizeof out, "%s/%s", scratch, name);
    pid_t watcher = synrun_spawn(teststack_url(stack), (const char *const[]){"watch", id, NULL},
                                 out);
    wait_t w = wait_begin(15000);
    char *seen = NULL;
    do {
        free(seen);
        seen = synrun_slurp(out);
    } while (!strstr(seen, text) && wait_next(&w));
    if (!strstr(seen, text))
        fprintf(stderr, "watch printed:\n%s\n", seen);
    assert_non_null(strstr(seen, text));
    free(seen);
    return watcher;
}

/* What the watch wrote to scratch/name (malloc'd). */
static char *watch_output(const char *name)
{
    char out[256];
    snprintf(out, sizeof out, "%s/%s", scratch, name);
    return synrun_slurp(out);
}

static void test_run_watch_without_a_terminal(void **state)
{
    (void)state;
    synrun_t r = synrun(teststack_url(stack), NULL, NULL,
                        (const char *const[]){"run", "demo", "-t", "the CLI", "--watch", NULL});
    if (r.code != 0)
        fprintf(stderr, "%s%s", r.out, r.err);
    assert_int_equal(r.code, 0);
    const char *wanted[] = {"exec-",
                            " ExecutionStarted demo, 3 phases\n",
                            " PhaseQueued plan\n",
                            " PhaseStarted plan attempt 1 on ",
                            " PhaseCompleted plan in ",
                            " PhaseQueued build\n",
                            " PhaseStarted build attempt 1 on ",
                            " PhaseCompleted build in ",
                            "tokens 5.3k in / 2.1k out",
                            " PhaseQueued review\n",
                            " PhaseStarted review attempt 1 on ",
                            " PhaseCompleted review in ",
                            " ExecutionCompleted 3/3 phases\n",
                            NULL};
    expect_in_order(r.out, wanted);
    /* ids increase along the lines, none twice */
    json_t *events = events_of(r.out);
    assert_true(json_array_size(events) >= 10);
    long long last = -1;
    for (size_t i = 0; i < json_array_size(events); i++) {
        long long id = atoll(json_string_value(json_array_get(events, i)));
        assert_true(id > last);
        last = id;
    }
    json_decref(events);
    /* watching again after the end replays the same events and exits the same */
    char id[32];
    snprintf(id, sizeof id, "%.17s", r.out);
    synrun_t again =
        synrun(teststack_url(stack), NULL, NULL, (const char *const[]){"watch", id, NULL});
    assert_int_equal(again.code, 0);
    json_t *first = events_of(r.out), *second = events_of(again.out);
    assert_true(json_equal(first, second));
    json_decref(first);
    json_decref(second);
    synrun_clear(&again);
    synrun_clear(&r);
}

static void test_watch_exit_codes_for_failed_and_cancelled(void **state)
{
    (void)state;
    synrun_t r = synrun(teststack_url(stack), NULL, NULL,
                        (const char *const[]){"run", "failing", "--watch", NULL});
    assert_int_equal(r.code, 1);
    const char *failed[] = {" PhaseFailed broken attempt 1: model refused",
                            " ExecutionFailed 3/4 phases: ", NULL};
    expect_in_order(r.out, failed);
    synrun_clear(&r);

    char *id = start_detached("slow");
    /* cancel once the watch has seen the phase start */
    pid_t watcher = watch_until(id, "watch-cancel.out", "PhaseStarted plan");
    r = synrun(teststack_url(stack), NULL, NULL,
               (const char *const[]){"cancel", id, "-y", "--reason", "enough", NULL});
    assert_int_equal(r.code, 0);
    synrun_clear(&r);
    assert_int_equal(synrun_wait(watcher, 15000), 3);
    char *seen = watch_output("watch-cancel.out");
    assert_non_null(strstr(seen, " ExecutionCancelled 0/3 phases: enough"));
    free(seen);
    free(id);
}

/* Interrupting a watch stops the watching only, and says how to go on. */
static void test_ctrl_c_stops_watching_not_the_execution(void **state)
{
    (void)state;
    char *id = start_detached("slow");
    pid_t watcher = watch_until(id, "watch-int.out", "PhaseStarted plan");
    kill(watcher, SIGINT);
    assert_int_equal(synrun_wait(watcher, 5000), 130);
    char *seen = watch_output("watch-int.out");
    char want[128];
    snprintf(want, sizeof want, "syn watch %s", id);
    assert_non_null(strstr(seen, want));
    snprintf(want, sizeof want, "syn cancel %s", id);
    assert_non_null(strstr(seen, want));
    free(seen);
    /* the execution went on */
    json_t *done = teststack_wait_terminal(stack, "slow", id, 20000);
    assert_non_null(done);
    assert_string_equal(json_string_value(json_object_get(done, "status")), "completed");
    json_decref(done);
    free(id);
}

static void test_gateway_restart_during_watch(void **state)
{
    (void)state;
    char *id = start_detached("slow");
    pid_t watcher = watch_until(id, "watch-restart.out", "PhaseStarted plan");
    char *seen = watch_output("watch-restart.out");
    assert_null(strstr(seen, "PhaseCompleted plan")); /* the rest comes after the restart */
    free(seen);
    teststack_kill_gateway(stack, SIGKILL);
    assert_int_equal(teststack_start_gateway(stack), 0);
    assert_int_equal(synrun_wait(watcher, 30000), 0);
    seen = watch_output("watch-restart.out");
    /* every event of the log, once, in order */
    synrun_t logs = synrun(teststack_url(stack), NULL, NULL,
                           (const char *const[]){"logs", id, NULL});
    assert_int_equal(logs.code, 0);
    json_t *watched = events_of(seen), *logged = events_of(logs.out);
    if (!json_equal(watched, logged)) {
        fprintf(stderr, "watched:\n%s\nlogged:\n%s\n", seen, logs.out);
        fail();
    }
    assert_int_equal(json_array_size(logged), 11);
    json_decref(watched);
    json_decref(logged);
    synrun_clear(&logs);
    free(seen);
    free(id);
}

/* Runs a shell command; its stdout (malloc'd). */
static char *shell(const char *command)
{
    FILE *p = popen(command, "r");
    assert_non_null(p);
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, p)) > 0)
        fwrite(buf, 1, n, out);
    fclose(out);
    pclose(p);
    return text;
}

/* A terminal for syn: a tmux server of this test's own (its socket named for the
 * process), one pane of 100x30 running command with the stack's URL and token. */
typedef struct {
    char socket[64];
} terminal_t;

static void terminal_start(terminal_t *t, const char *command)
{
    /* tmux is a test dependency (scripts/deps.sh): its absence fails the test */
    char *version = shell("tmux -V 2>&1");
    if (strncmp(version, "tmux ", 5) != 0) {
        fprintf(stderr, "tmux is needed for this test (scripts/deps.sh installs it): %s\n",
                version);
        free(version);
        fail();
    }
    free(version);
    snprintf(t->socket, sizeof t->socket, "syn-test-%d", (int)getpid());
    char line[2048];
    snprintf(line, sizeof line,
             "tmux -L %s -f /dev/null new-session -d -x 100 -y 30 "
             "'env SYN_API_URL=%s%s%s LANG=C.UTF-8 %s/syn %s; echo EXIT=$?; sleep 600'",
             t->socket, teststack_url(stack), http_bearer() ? " SYN_API_TOKEN=" : "",
             http_bearer() ? http_bearer() : "", SYN_BIN_DIR, command);
    assert_int_equal(system(line), 0);
}

/* The screen once it shows text (or at the deadline); seen is set when a screen on
 * the way showed also_seen (may be NULL). Caller frees. */
static char *terminal_wait(terminal_t *t, const char *text, const char *also_seen, bool *seen)
{
    char capture[256];
    snprintf(capture, sizeof capture, "tmux -L %s capture-pane -p 2>&1", t->socket);
    wait_t w = wait_begin(20000);
    char *screen = NULL;
    do {
        free(screen);
        screen = shell(capture);
        if (also_seen && strstr(screen, also_seen))
            *seen = true;
    } while (!strstr(screen, text) && wait_next(&w));
    if (!strstr(screen, text))
        fprintf(stderr, "waited for '%s' on:\n%s\n", text, screen);
    return screen;
}

static void terminal_keys(terminal_t *t, const char *keys)
{
    char line[256];
    snprintf(line, sizeof line, "tmux -L %s send-keys %s", t->socket, keys);
    assert_int_equal(system(line), 0);
}

static void terminal_stop(terminal_t *t)
{
    char line[128];
    snprintf(line, sizeof line, "tmux -L %s kill-server", t->socket);
    assert_int_equal(system(line), 0);
}

static void test_live_view_in_a_terminal(void **state)
{
    (void)state;
    terminal_t term;
    terminal_start(&term, "run demo -t \"the CLI\"");
    /* a screen between start and end: drawn in place, running */
    bool saw_progress = false;
    char *screen = terminal_wait(&term, "EXIT=", "running", &saw_progress);
    terminal_stop(&term);
    if (!strstr(screen, "EXIT=0") || !strstr(screen, "] 100%  3/3 phases"))
        fail();
    assert_true(saw_progress);
    assert_non_null(strstr(screen, "  ✓ plan  "));
    assert_non_null(strstr(screen, "  ✓ build  "));
    assert_non_null(strstr(screen, "  ✓ review  "));
    assert_non_null(strstr(screen, "demo  completed"));
    /* the totals are the server's (the mock's prompts repeat earlier outputs, and
     * with them their #mock tokens lines) */
    char id[32], tokens[96], in[16], out[16];
    snprintf(id, sizeof id, "%.17s", screen);
    synrun_t shown = synrun(teststack_url(stack), NULL, NULL,
                            (const char *const[]){"show", id, "--json", NULL});
    json_t *execution = json_loads(shown.out, 0, NULL);
    assert_non_null(execution);
    snprintf(tokens, sizeof tokens, "tokens %s in / %s out",
             table_count(json_integer_value(json_object_get(execution, "total_input_tokens")), in,
                         sizeof in),
             table_count(json_integer_value(json_object_get(execution, "total_output_tokens")),
                         out, sizeof out));
    assert_true(json_integer_value(json_object_get(execution, "total_input_tokens")) > 6000);
    if (!strstr(screen, tokens))
        fprintf(stderr, "want '%s' on:\n%s\n", tokens, screen);
    assert_non_null(strstr(screen, tokens));
    json_decref(execution);
    synrun_clear(&shown);
    /* redrawn in place: the header once, no event lines */
    char *first = strstr(screen, "demo  completed");
    assert_null(strstr(first + 1, "demo  completed"));
    assert_null(strstr(screen, "PhaseStarted"));
    free(screen);
}

/* On a terminal cancel asks first: "n" keeps the execution, "y" cancels it. */
static void test_cancel_asks_on_a_terminal(void **state)
{
    (void)state;
    char *id = start_detached("slow");
    char command[128];
    snprintf(command, sizeof command, "cancel %s", id);
    terminal_t term;
    terminal_start(&term, command);
    free(terminal_wait(&term, "[y/N]", NULL, NULL));
    terminal_keys(&term, "n Enter");
    char *screen = terminal_wait(&term, "EXIT=", NULL, NULL);
    terminal_stop(&term);
    assert_non_null(strstr(screen, "not cancelled"));
    assert_non_null(strstr(screen, "EXIT=1"));
    free(screen);
    synrun_t shown = synrun(teststack_url(stack), NULL, NULL,
                            (const char *const[]){"show", id, "--json", NULL});
    assert_null(strstr(shown.out, "\"cancelled\""));
    synrun_clear(&shown);

    terminal_start(&term, command);
    free(terminal_wait(&term, "[y/N]", NULL, NULL));
    terminal_keys(&term, "y Enter");
    screen = terminal_wait(&term, "EXIT=", NULL, NULL);
    terminal_stop(&term);
    assert_non_null(strstr(screen, "cancelled (Cancel signal queued)"));
    assert_non_null(strstr(screen, "EXIT=0"));
    free(screen);
    free(id);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_run_watch_without_a_terminal),
        cmocka_unit_test(test_watch_exit_codes_for_failed_and_cancelled),
        cmocka_unit_test(test_ctrl_c_stops_watching_not_the_execution),
        cmocka_unit_test(test_gateway_restart_during_watch),
        cmocka_unit_test(test_live_view_in_a_terminal),
        cmocka_unit_test(test_cancel_asks_on_a_terminal),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
