/* The command provider, with real scripts from tests/fixtures. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include "common/clock.h"
#include "tests/support/worker_runs.h"
#include "worker/provider.h"
#include "tests/support/wait.h"

#define FIXTURE(name) "'" SYN_SOURCE_DIR "/tests/fixtures/" name "'"

static worker_job_t job_with(const char *prompt, int64_t timeout_ms)
{
    return (worker_job_t){.execution_id = "exec-00000000000a",
                          .workflow_id = "wf-test",
                          .phase_id = "plan",
                          .attempt = 2,
                          .prompt = prompt,
                          .model = "sonnet",
                          .timeout_ms = timeout_ms};
}

static worker_provider_t *provider(const char *command, int64_t grace_ms)
{
    char err[256] = "";
    worker_provider_t *p = worker_provider_command_new(command, grace_ms, err, sizeof err);
    if (!p)
        fail_msg("provider: %s", err);
    assert_string_equal(worker_provider_name(p), "command");
    return p;
}

/* Runs a test started, so a failing test (which skips its own clean-up) still
 * has its children killed by the teardown instead of leaving them behind. */
#define MAX_LIVE 8
static worker_run_t *live[MAX_LIVE];

static worker_run_t *start(worker_provider_t *p, const worker_job_t *job)
{
    char err[256] = "";
    worker_run_t *run = worker_run_start(p, job, err, sizeof err);
    if (!run)
        fail_msg("start: %s", err);
    for (int i = 0; i < MAX_LIVE; i++)
        if (!live[i]) {
            live[i] = run;
            break;
        }
    return run;
}

/* Destroys a run (killing its process group) and forgets it. */
static void stop(worker_run_t **run_p)
{
    for (int i = 0; i < MAX_LIVE; i++)
        if (live[i] == *run_p)
            live[i] = NULL;
    worker_run_destroy(run_p);
}

static int kill_leftovers(void **state)
{
    (void)state;
    for (int i = 0; i < MAX_LIVE; i++)
        worker_run_destroy(&live[i]);
    return 0;
}

/* The process group id a fixture printed after "<word> ". */
static pid_t printed_pgid(worker_run_t *run, const char *word)
{
    const char *at = strstr(worker_run_output(run, NULL), word);
    assert_non_null(at);
    long pgid = strtol(at + strlen(word) + 1, NULL, 10);
    assert_true(pgid > 1);
    return (pid_t)pgid;
}

static void assert_group_gone(pid_t pgid)
{
    /* As a subreaper (see main) the provider reaps the group itself; the wait
     * only allows the kernel a moment to tear a process down. */
    WAIT_FOR(kill(-pgid, 0) != 0, 1000);
    errno = 0;
    assert_int_equal(kill(-pgid, 0), -1);
    assert_int_equal(errno, ESRCH);
}

static void test_prompt_and_env(void **state)
{
    (void)state;
    setenv("SYN_PHASE_ID", "stale-value-from-parent", 1);
    setenv("SYN_TEST_INHERITED", "yes", 1);
    worker_provider_t *p = provider(FIXTURE("echo_env.sh"), 1000);
    worker_job_t job = job_with("hello prompt\nline two", 10000);
    worker_run_t *run = start(p, &job);
    assert_int_equal(worker_run_drive(run, 5000), 0);
    assert_int_equal(worker_run_status(run), WORKER_RUN_COMPLETED);
    assert_string_equal(worker_run_output(run, NULL),
                        "hello prompt\nline two\nexecution=exec-00000000000a workflow=wf-test "
                        "phase=plan attempt=2 model=sonnet\n");
    int code = -1;
    assert_true(worker_run_exit_code(run, &code));
    assert_int_equal(code, 0);
    assert_null(worker_run_error(run));
    stop(&run);
    worker_provider_destroy(&p);

    /* The rest of the environment is inherited; a NULL model is "". */
    p = provider("sh -c 'cat >/dev/null; echo \"$SYN_TEST_INHERITED [$SYN_MODEL]\"'", 1000);
    job = job_with("x", 0);
    job.model = NULL;
    run = start(p, &job);
    assert_int_equal(worker_run_drive(run, 5000), 0);
    assert_string_equal(worker_run_output(run, NULL), "yes []\n");
    stop(&run);
    worker_provider_destroy(&p);
    unsetenv("SYN_PHASE_ID");
}

static void test_exit_code_and_stderr_tail(void **state)
{
    (void)state;
    worker_provider_t *p = provider(FIXTURE("fail_exit3.sh"), 1000);
    worker_job_t job = job_with("whatever", 10000);
    worker_run_t *run = start(p, &job);
    assert_int_equal(worker_run_drive(run, 5000), 0);
    assert_int_equal(worker_run_status(run), WORKER_RUN_FAILED);
    assert_string_equal(worker_run_error(run),
                        "exit code 3: first problem\nthe agent could not finish");
    int code = -1;
    assert_true(worker_run_exit_code(run, &code));
    assert_int_equal(code, 3);
    assert_string_equal(worker_run_output(run, NULL), "partial output\n");
    stop(&run);
    worker_provider_destroy(&p);

    /* Only the last 2 KiB of stderr are kept. */
    p = provider("sh -c 'i=0; while [ $i -lt 500 ]; do echo \"line $i\" >&2; i=$((i+1)); done; "
                 "exit 1'",
                 1000);
    run = start(p, &job);
    assert_int_equal(worker_run_drive(run, 5000), 0);
    const char *error = worker_run_error(run);
    assert_non_null(error);
    assert_true(strlen(error) <= strlen("exit code 1: ") + WORKER_STDERR_TAIL);
    assert_true(strlen(error) > WORKER_STDERR_TAIL - 20);
    assert_non_null(strstr(error, "line 499"));
    assert_null(strstr(error, "line 1\n"));
    assert_int_equal(strncmp(error, "exit code 1: ", 13), 0);
    stop(&run);
    worker_provider_destroy(&p);
}

static void test_killed_by_signal(void **state)
{
    (void)state;
    worker_provider_t *p = provider("sh -c 'echo dying >&2; kill -9 $$'", 1000);
    worker_job_t job = job_with("", 10000);
    worker_run_t *run = start(p, &job);
    assert_int_equal(worker_run_drive(run, 5000), 0);
    assert_int_equal(worker_run_status(run), WORKER_RUN_FAILED);
    assert_string_equal(worker_run_error(run), "killed by signal 9: dying");
    assert_false(worker_run_exit_code(run, NULL));
    stop(&run);
    worker_provider_destroy(&p);
}

static void test_timeout_kills_group(void **state)
{
    (void)state;
    worker_provider_t *p = provider(FIXTURE("sleep_forever.sh"), 2000);
    worker_job_t job = job_with("", 1000);
    int64_t began = syn_mono_ms();
    worker_run_t *run = start(p, &job);
    assert_true(worker_runs_drive_until_output(run, "pgid", 5000));
    pid_t pgid = printed_pgid(run, "pgid");
    assert_int_equal(kill(-pgid, 0), 0);
    assert_int_equal(worker_run_drive(run, 10000), 0);
    int64_t took = syn_mono_ms() - began;
    assert_true(took >= 1000);
    assert_true(took < 2500); /* SIGTERM was enough: no wait for the grace */
    assert_int_equal(worker_run_status(run), WORKER_RUN_FAILED);
    assert_string_equal(worker_run_error(run), "timed out after 1 s");
    assert_group_gone(pgid);
    stop(&run);
    worker_provider_destroy(&p);
}

static void test_sigkill_after_grace(void **state)
{
    (void)state;
    worker_provider_t *p = provider(FIXTURE("ignore_term.sh"), 400);
    worker_job_t job = job_with("", 0);
    worker_run_t *run = start(p, &job);
    assert_true(worker_runs_drive_until_output(run, "ready", 5000));
    pid_t pgid = printed_pgid(run, "ready");
    int64_t cancelled_at = syn_mono_ms();
    worker_run_cancel(run, cancelled_at);
    /* SIGTERM is ignored: still running well within the grace. */
    worker_run_step(run, NULL, 0, syn_mono_ms());
    /* Half the 400 ms grace goes by: that nothing ends it is what is checked. */
    wait_exactly_ms(200);
    worker_run_step(run, NULL, 0, syn_mono_ms());
    assert_false(worker_run_finished(run));
    assert_int_equal(kill(-pgid, 0), 0);
    assert_int_equal(worker_run_drive(run, 5000), 0);
    int64_t took = syn_mono_ms() - cancelled_at;
    assert_true(took >= 400);
    assert_true(took < 2000);
    assert_int_equal(worker_run_status(run), WORKER_RUN_CANCELLED);
    assert_string_equal(worker_run_error(run), "cancelled");
    assert_group_gone(pgid);
    stop(&run);
    worker_provider_destroy(&p);
}

static void test_destroy_kills_running_group(void **state)
{
    (void)state;
    worker_provider_t *p = provider(FIXTURE("sleep_forever.sh"), 5000);
    worker_job_t job = job_with("", 0);
    worker_run_t *run = start(p, &job);
    assert_true(worker_runs_drive_until_output(run, "pgid", 5000));
    pid_t pgid = printed_pgid(run, "pgid");
    stop(&run);
    assert_group_gone(pgid);
    worker_provider_destroy(&p);
}

static long max_rss_kib(void)
{
    struct rusage usage;
    getrusage(RUSAGE_SELF, &usage);
    return usage.ru_maxrss;
}

static void test_output_truncated(void **state)
{
    (void)state;
    worker_provider_t *p = provider(FIXTURE("big_output.sh"), 1000);
    worker_job_t job = job_with("", 20000);
    worker_run_t *run = start(p, &job);
    assert_int_equal(worker_run_drive(run, 20000), 0);
    assert_int_equal(worker_run_status(run), WORKER_RUN_COMPLETED);
    size_t len = 0;
    const char *out = worker_run_output(run, &len);
    size_t marker = strlen(SYN_OUTPUT_MARKER);
    assert_int_equal(len, SYN_OUTPUT_MAX + marker);
    assert_string_equal(out + SYN_OUTPUT_MAX, "\n[output truncated: more than 1 MiB]");
    for (size_t i = 0; i < SYN_OUTPUT_MAX; i++)
        if (out[i] != 'x')
            fail_msg("byte %zu is %d", i, out[i]);
    stop(&run);
    worker_provider_destroy(&p);
}

/* 64 MiB of output: the worker keeps draining the pipe (the child finishes)
 * but holds on to only about the limit. */
static void test_memory_bounded(void **state)
{
    (void)state;
    worker_provider_t *p = provider(FIXTURE("big_output.sh") " 67108864", 1000);
    worker_job_t job = job_with("", 60000);
    long before = max_rss_kib();
    worker_run_t *run = start(p, &job);
    assert_int_equal(worker_run_drive(run, 60000), 0);
    assert_int_equal(worker_run_status(run), WORKER_RUN_COMPLETED);
    size_t len = 0;
    worker_run_output(run, &len);
    assert_int_equal(len, SYN_OUTPUT_MAX + strlen(SYN_OUTPUT_MARKER));
    long grew = max_rss_kib() - before;
    if (grew > 16 * 1024)
        fail_msg("resident memory grew by %ld KiB", grew);
    stop(&run);
    worker_provider_destroy(&p);
}

/* A 4 MiB prompt to a child that never reads stdin and writes a lot: neither
 * side blocks the other. */
static void test_big_prompt_no_deadlock(void **state)
{
    (void)state;
    size_t size = 4u * 1024 * 1024;
    char *prompt = malloc(size + 1);
    assert_non_null(prompt);
    memset(prompt, 'p', size);
    prompt[size] = '\0';
    worker_provider_t *p = provider(FIXTURE("ignore_stdin.sh"), 1000);
    worker_job_t job = job_with(prompt, 20000);
    worker_run_t *run = start(p, &job);
    assert_int_equal(worker_run_drive(run, 20000), 0);
    assert_int_equal(worker_run_status(run), WORKER_RUN_COMPLETED);
    size_t len = 0;
    worker_run_output(run, &len);
    assert_int_equal(len, 262144);
    stop(&run);
    worker_provider_destroy(&p);

    /* And a child that reads it all gets it all. */
    p = provider("wc -c", 1000);
    run = start(p, &job);
    assert_int_equal(worker_run_drive(run, 20000), 0);
    assert_int_equal(worker_run_status(run), WORKER_RUN_COMPLETED);
    assert_int_equal(strtol(worker_run_output(run, NULL), NULL, 10), (long)size);
    stop(&run);
    worker_provider_destroy(&p);
    free(prompt);
}

static void test_output_sanitized(void **state)
{
    (void)state;
    worker_provider_t *p = provider("printf 'a\\000b\\377c\\342\\202\\254'", 1000);
    worker_job_t job = job_with("", 5000);
    worker_run_t *run = start(p, &job);
    assert_int_equal(worker_run_drive(run, 5000), 0);
    assert_string_equal(worker_run_output(run, NULL),
                        "a\xEF\xBF\xBD" "b\xEF\xBF\xBD" "c\xE2\x82\xAC");
    stop(&run);
    worker_provider_destroy(&p);

    /* A character split across two writes survives intact. */
    p = provider("sh -c 'printf \"\\342\\202\"; sleep 0.2; printf \"\\254!\"'", 1000);
    run = start(p, &job);
    assert_int_equal(worker_run_drive(run, 5000), 0);
    assert_string_equal(worker_run_output(run, NULL), "\xE2\x82\xAC!");
    stop(&run);
    worker_provider_destroy(&p);

    /* An unfinished character at the very end becomes U+FFFD. */
    p = provider("printf 'z\\342\\202'", 1000);
    run = start(p, &job);
    assert_int_equal(worker_run_drive(run, 5000), 0);
    assert_string_equal(worker_run_output(run, NULL), "z\xEF\xBF\xBD");
    stop(&run);
    worker_provider_destroy(&p);
}

static void test_cannot_start(void **state)
{
    (void)state;
    worker_provider_t *p = provider("/nonexistent/agent --flag", 1000);
    worker_job_t job = job_with("x", 5000);
    worker_run_t *run = start(p, &job);
    /* The exec failure is reported by the child through a close-on-exec pipe
     * before the start returns (under valgrind too). */
    assert_true(worker_run_finished(run));
    /* Nothing of the agent ran: the worker's fault, not the agent's (issue 18). */
    assert_int_equal(worker_run_status(run), WORKER_RUN_FAULT);
    assert_string_equal(worker_run_error(run),
                        "cannot run /nonexistent/agent: No such file or directory");
    stop(&run);
    worker_provider_destroy(&p);

    /* Not found in PATH, and found but not executable. */
    p = provider("no-such-agent-anywhere", 1000);
    run = start(p, &job);
    assert_string_equal(worker_run_error(run),
                        "cannot run no-such-agent-anywhere: No such file or directory");
    stop(&run);
    worker_provider_destroy(&p);
    p = provider(SYN_SOURCE_DIR "/tests/fixtures/../../README.md", 1000);
    run = start(p, &job);
    assert_non_null(strstr(worker_run_error(run), "Permission denied"));
    stop(&run);
    worker_provider_destroy(&p);

    char err[128] = "";
    assert_null(worker_provider_command_new("agent 'unbalanced", 1000, err, sizeof err));
    assert_string_equal(err, "bad --command: unbalanced single quote");
    assert_null(worker_provider_command_new("  ", 1000, err, sizeof err));
    assert_string_equal(err, "bad --command: empty command");
}

static void test_workspace_cwd(void **state)
{
    (void)state;
    worker_provider_t *p = provider("pwd", 1000);
    worker_job_t job = job_with("", 5000);
    job.cwd = "/";
    worker_run_t *run = start(p, &job);
    assert_int_equal(worker_run_drive(run, 5000), 0);
    assert_string_equal(worker_run_output(run, NULL), "/\n");
    stop(&run);
    worker_provider_destroy(&p);
}

/* The agent gets stdin, stdout and stderr and nothing else: not the worker's
 * sockets and not a descriptor inherited without close-on-exec. */
static void test_no_descriptors_leak(void **state)
{
    (void)state;
    int leaked = open("/dev/null", O_RDONLY); /* no O_CLOEXEC on purpose */
    assert_true(leaked > 2);
    worker_provider_t *p = provider("ls /proc/self/fd", 1000);
    worker_job_t job = job_with("", 5000);
    worker_run_t *run = start(p, &job);
    assert_int_equal(worker_run_drive(run, 5000), 0);
    /* ls's own descriptor for the directory it lists is 3. */
    assert_string_equal(worker_run_output(run, NULL), "0\n1\n2\n3\n");
    stop(&run);
    worker_provider_destroy(&p);
    close(leaked);
}

/* A child's leftover background process (same group) is killed when the child
 * exits, so nothing outlives its phase. */
static void test_leftovers_killed(void **state)
{
    (void)state;
    worker_provider_t *p = provider("sh -c 'sleep 600 & echo \"pgid $$\"'", 1000);
    worker_job_t job = job_with("", 5000);
    int64_t began = syn_mono_ms();
    worker_run_t *run = start(p, &job);
    assert_int_equal(worker_run_drive(run, 5000), 0);
    assert_true(syn_mono_ms() - began < 3000);
    assert_int_equal(worker_run_status(run), WORKER_RUN_COMPLETED);
    assert_group_gone(printed_pgid(run, "pgid"));
    stop(&run);
    worker_provider_destroy(&p);
}

int main(void)
{
    /* The worker ignores SIGPIPE in main.c; the provider must not rely on it. */
    signal(SIGPIPE, SIG_DFL);
    /* Orphans of a killed group become our children, as they do for a worker
     * running as PID 1 in a container; otherwise this machine's init may leave
     * them as zombies (which kill(-pgid, 0) still finds) for seconds. */
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_prompt_and_env, kill_leftovers),
        cmocka_unit_test_teardown(test_exit_code_and_stderr_tail, kill_leftovers),
        cmocka_unit_test_teardown(test_killed_by_signal, kill_leftovers),
        cmocka_unit_test_teardown(test_timeout_kills_group, kill_leftovers),
        cmocka_unit_test_teardown(test_sigkill_after_grace, kill_leftovers),
        cmocka_unit_test_teardown(test_destroy_kills_running_group, kill_leftovers),
        cmocka_unit_test_teardown(test_output_truncated, kill_leftovers),
        cmocka_unit_test_teardown(test_memory_bounded, kill_leftovers),
        cmocka_unit_test_teardown(test_big_prompt_no_deadlock, kill_leftovers),
        cmocka_unit_test_teardown(test_output_sanitized, kill_leftovers),
        cmocka_unit_test_teardown(test_cannot_start, kill_leftovers),
        cmocka_unit_test_teardown(test_workspace_cwd, kill_leftovers),
        cmocka_unit_test_teardown(test_leftovers_killed, kill_leftovers),
        cmocka_unit_test_teardown(test_no_descriptors_leak, kill_leftovers),
    };
    return cmocka_run_group_tests_name("worker_command", tests, NULL, NULL);
}
