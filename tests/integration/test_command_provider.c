/* The `command` provider with a real script (issue 2): output, failure with the
 * exit code and stderr tail, and a timeout that kills the whole process group. */
#include "tests/support/execution.h"
#include "tests/support/expect.h"
#include "tests/support/http.h"
#include "tests/support/teststack.h"

#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

static teststack_t *stack;
static char scratch[] = "/tmp/syn-agent-XXXXXX";

static int setup(void **state)
{
    (void)state;
    stack = teststack_start_command(
        scratch, 2, SYN_SOURCE_DIR "/tests/integration/fixtures/scripted_agent.sh");
    if (!stack)
        return -1;
    json_t *wf = teststack_create_workflow(
        stack, "{\"id\":\"agent\",\"name\":\"Agent\",\"phases\":["
               "{\"phase_id\":\"work\",\"name\":\"Work\",\"order\":1,\"timeout_seconds\":2,"
               " \"prompt_template\":\"$ARGUMENTS\"},"
               "{\"phase_id\":\"check\",\"name\":\"Check\",\"order\":2,"
               " \"prompt_template\":\"check: {{work}}\"}]}");
    json_decref(wf);
    return wf ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    teststack_destroy(&stack);
    return teststack_remove_dir(scratch);
}

static void test_output_is_stdout_and_env_is_set(void **state)
{
    (void)state;
    char *id = teststack_execute(stack, "agent", "{\"task\":\"write the release notes\"}");
    assert_non_null(id);
    json_t *final = teststack_wait_terminal(stack, "agent", id, 20000);
    assert_non_null(final);
    assert_string_equal(json_str(final, "status"), "completed");
    char *work = teststack_db_text(
        stack, "SELECT output FROM phases WHERE execution_id=?1 AND phase_id='work'", id, NULL);
    char *check = teststack_db_text(
        stack, "SELECT output FROM phases WHERE execution_id=?1 AND phase_id='check'", id, NULL);
    char expected[256];
    snprintf(expected, sizeof expected,
             "agent ran phase work attempt 1 of %s in agent\nwrite the release notes\n", id);
    assert_non_null(work);
    assert_string_equal(work, expected);
    assert_non_null(check);
    assert_non_null(strstr(check, "check: agent ran phase work"));
    free(work);
    free(check);
    json_decref(final);
    free(id);
}

static void test_nonzero_exit_fails_with_code_and_stderr(void **state)
{
    (void)state;
    char *id = teststack_execute(stack, "agent", "{\"task\":\"FAIL\"}");
    assert_non_null(id);
    json_t *final = teststack_wait_terminal(stack, "agent", id, 20000);
    assert_non_null(final);
    assert_string_equal(json_str(final, "status"), "failed");
    const char *error = json_str(final, "error");
    assert_non_null(strstr(error, "work"));
    assert_non_null(strstr(error, "7"));
    assert_non_null(strstr(error, "the agent could not reach the repository"));
    char *skipped = teststack_db_text(
        stack, "SELECT status FROM phases WHERE execution_id=?1 AND phase_id='check'", id, NULL);
    assert_string_equal(skipped, "skipped");
    free(skipped);
    json_decref(final);
    free(id);
}

static void test_timeout_kills_the_process_group(void **state)
{
    (void)state;
    long long t0 = teststack_now_ms();
    char *id = teststack_execute(stack, "agent", "{\"task\":\"HANG\"}");
    assert_non_null(id);
    json_t *final = teststack_wait_terminal(stack, "agent", id, 20000);
    long long took = teststack_now_ms() - t0;
    assert_non_null(final);
    assert_string_equal(json_str(final, "status"), "failed");
    assert_non_null(strstr(json_str(final, "error"), "timed out"));
    /* timeout_seconds is 2: it fails in about 2 s, not at some later sweep. */
    assert_true(took >= 1900);
    assert_true(took < 6000);
    pid_t agent = execution_read_pid(scratch, id, "pid"), child = execution_read_pid(scratch, id, "child.pid");
    assert_true(agent > 0);
    assert_true(child > 0);
    WAIT_FOR(execution_process_gone(agent) && execution_process_gone(child), 2000);
    assert_true(execution_process_gone(agent));
    assert_true(execution_process_gone(child));
    json_decref(final);
    free(id);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_output_is_stdout_and_env_is_set),
        cmocka_unit_test(test_nonzero_exit_fails_with_code_and_stderr),
        cmocka_unit_test(test_timeout_kills_the_process_group),
    };
    return cmocka_run_group_tests_name("command_provider", tests, setup, teardown);
}
