/* The benchmark harness must not rot: `synload --smoke` starts its own stacks,
 * runs a few seconds of W1, W3 and W2, checks every output and exits non-zero
 * on any wrong or missing result. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* Runs synload with the given extra arguments; returns its exit status, or -1
 * when it did not exit normally. Its output goes to the test's output. */
static int run_synload(char *const extra[])
{
    char *argv[16] = {SYN_BIN_DIR "/synload"};
    int argc = 1;
    for (int i = 0; extra[i] && argc < 15; i++)
        argv[argc++] = extra[i];
    argv[argc] = NULL;
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        execv(argv[0], argv);
        fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    assert_true(pid > 0);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void test_smoke_passes(void **state)
{
    (void)state;
    char *args[] = {"--smoke", NULL};
    assert_int_equal(run_synload(args), 0);
}

static void test_bad_flag_is_a_usage_error(void **state)
{
    (void)state;
    char *args[] = {"--workload", "w9", NULL};
    assert_int_equal(run_synload(args), 2);
}

/* A gateway that is not there is a failure, not an empty success. */
static void test_unreachable_gateway_fails(void **state)
{
    (void)state;
    char *args[] = {"--gateway", "http://127.0.0.1:1", "--workload", "w1", "--runs", "1",
                    "--executions", "5", "--warmup", "0", "--timeout-s", "5", NULL};
    assert_int_equal(run_synload(args), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_smoke_passes),
        cmocka_unit_test(test_bad_flag_is_a_usage_error),
        cmocka_unit_test(test_unreachable_gateway_fails),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
