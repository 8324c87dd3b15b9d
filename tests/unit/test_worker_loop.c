/* The worker loop, as the built syn-worker program, against a fake broker (a
 * ROUTER in this process that speaks the worker protocol by hand,
 * tests/support/worker_fake): what it checks and maps at start. Its concerns have
 * their own files: test_worker_loop_reconnect.c (registration, heartbeats,
 * reconnects, CURVE), test_worker_loop_results.c (assignments, results and their
 * acks), test_worker_loop_drain.c (stop signals, draining, prefetch). */
#include "tests/support/worker_fake.h"

#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <czmq.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zmq.h>

#include "common/clock.h"
#include "proto/curve.h"
#include "tests/support/wait.h"

/* Whether the process maps a file whose name contains name (from /proc). */
static bool maps_library(pid_t pid, const char *name)
{
    char path[64], line[1024];
    snprintf(path, sizeof path, "/proc/%ld/maps", (long)pid);
    FILE *maps = fopen(path, "r");
    if (!maps)
        fail_msg("cannot read %s: %s", path, strerror(errno));
    bool found = false;
    while (!found && fgets(line, sizeof line, maps))
        found = strstr(line, name) != NULL;
    fclose(maps);
    return found;
}

/* An idle worker's memory is mostly the libraries it maps (issue 7): one
 * without the anthropic provider loads no libcurl. */
static void test_libcurl_only_for_anthropic(void **state)
{
    fake_t *fake = *state;
    start_registered(fake, NULL, 4);
    assert_true(maps_library(fake->pid, "/libzmq.so"));
    assert_false(maps_library(fake->pid, "/libcurl"));
    kill(fake->pid, SIGTERM);
    expect_goodbye(fake, 3000); /* after its draining READY */
    assert_int_equal(wait_exit(fake, 3000), 0);

    setenv("ANTHROPIC_API_KEY", "sk-test", 1);
    start_worker(fake, (const char *[]){"--provider", "anthropic", "--anthropic-url",
                                        "http://127.0.0.1:9", NULL});
    unsetenv("ANTHROPIC_API_KEY");
    syn_msg_t *ready = expect_ready(fake, 4, 0);
    json_t *providers = json_object_get(syn_msg_fields(ready), "providers");
    assert_string_equal(json_string_value(json_array_get(providers, 0)), "anthropic");
    syn_msg_destroy(&ready);
    assert_true(maps_library(fake->pid, "/libcurl"));
}

/* Runs syn-worker with args until it exits (within 5 s); its exit status, and its
 * stderr in err. For flags that must stop it before it connects anywhere. */
static int run_to_exit(const char *const *args, char *err, size_t errlen)
{
    const char *argv[32] = {WORKER_BIN};
    int argc = 1;
    for (int i = 0; args[i] && argc < 31; i++)
        argv[argc++] = args[i];
    argv[argc] = NULL;
    int pipefd[2];
    assert_int_equal(pipe(pipefd), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(pipefd[1], 2);
        close(pipefd[0]);
        close(pipefd[1]);
        execv(WORKER_BIN, (char **)argv);
        _exit(127);
    }
    close(pipefd[1]);
    /* Read to the end (the usage text can be long): a closed pipe would kill it. */
    size_t used = 0;
    ssize_t n;
    char rest[4096];
    while ((n = used + 1 < errlen ? read(pipefd[0], err + used, errlen - 1 - used)
                                  : read(pipefd[0], rest, sizeof rest)) > 0)
        if (used + 1 < errlen)
            used += (size_t)n;
    err[used] = '\0';
    close(pipefd[0]);
    fake_t waiting = {.pid = pid};
    int status = wait_exit(&waiting, 5000);
    if (status < 0) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        fail_msg("syn-worker did not exit; stderr: %s", err);
    }
    return status;
}

static void expect_refused(const char *const *args, const char *needle)
{
    char err[2048];
    int status = run_to_exit(args, err, sizeof err);
    if (status != 2 || !strstr(err, needle))
        fail_msg("exit %d, stderr \"%s\"; expected 2 and \"%s\"", status, err, needle);
    /* One line, and never a key. */
    int lines = 0;
    for (const char *c = err; *c; c++)
        lines += *c == '\n';
    assert_int_equal(lines, 1);
    assert_null(strstr(err, "secret-key"));
}

/* A worker told to sandbox its agents (the default) that cannot refuses to
 * start, in one line that says why; --sandbox takes bwrap or none. */
static void test_sandbox_refused_at_start(void **state)
{
    (void)state;
    const char *path = getenv("PATH");
    char *saved = strdup(path ? path : "/usr/bin:/bin");
    setenv("PATH", "/nonexistent", 1); /* no bwrap to be found */
    expect_refused((const char *[]){"--provider", "command", "--command", "/bin/true", NULL},
                   "error: cannot sandbox agents (cannot run bwrap: No such file or "
                   "directory); install bubblewrap and allow user namespaces, or give "
                   "--sandbox none");
    setenv("PATH", saved, 1);
    free(saved);
    expect_refused((const char *[]){"--provider", "command", "--command", "/bin/true",
                                    "--sandbox", "docker", NULL},
                   "error: --sandbox wants bwrap or none, got 'docker'");
    /* A read-only path the sandbox cannot have stops it at start, not each attempt. */
    expect_refused((const char *[]){"--provider", "command", "--command", "/bin/true",
                                    "--sandbox-ro", "/nonexistent/toolchain", NULL},
                   "/nonexistent/toolchain");
    expect_refused((const char *[]){"--provider", "command", "--command", "/bin/true",
                                    "--sandbox-ro", "relative/dir", NULL},
                   "read-only path 'relative/dir' is not absolute");
}

/* Without keys, a broker that is not on this host is refused before any
 * connection is made, unless --insecure (also SYN_INSECURE) says so; keys that
 * cannot be read stop the worker at start. Every case here exits before it
 * connects anywhere: 192.0.2.1 (TEST-NET-1) is only named, never reached. */
static void test_insecure_rule_and_keys_at_start(void **state)
{
    fake_t *fake = *state;
    char secret[128], broker_key[128], stranger_public[128];
    snprintf(secret, sizeof secret, "%s/worker.key_secret", fake->dir);
    snprintf(broker_key, sizeof broker_key, "%s/broker.key", fake->dir);
    snprintf(stranger_public, sizeof stranger_public, "%s/stranger.key", fake->dir);
    const char *far = "tcp://192.0.2.1:1";
    expect_refused((const char *[]){"--broker", far, NULL},
                   "error: --broker tcp://192.0.2.1:1 is not a loopback address and no CURVE "
                   "key is given: give --curve-secret FILE and --broker-key FILE, or "
                   "--insecure");
    /* Allowed (--insecure, or keys): the run goes on to the next check, the
     * provider, and stops there. */
    const char *const allowed[][8] = {
        {"--broker", far, "--insecure", "--provider", "nope", NULL},
        {"--broker", far, "--curve-secret", secret, "--broker-key", broker_key, "--provider",
         "nope"},
    };
    for (size_t i = 0; i < sizeof allowed / sizeof allowed[0]; i++) {
        const char *args[10] = {0};
        memcpy(args, allowed[i], sizeof allowed[i]);
        char err[2048];
        assert_int_equal(run_to_exit(args, err, sizeof err), 2);
        if (strstr(err, "not a loopback") || !strstr(err, "--provider wants"))
            fail_msg("case %zu: stderr \"%s\"", i, err);
    }
    setenv("SYN_INSECURE", "1", 1);
    char err[2048];
    int status = run_to_exit((const char *[]){"--broker", far, "--provider", "nope", NULL}, err,
                             sizeof err);
    unsetenv("SYN_INSECURE");
    assert_int_equal(status, 2);
    assert_null(strstr(err, "not a loopback"));

    expect_refused((const char *[]){"--curve-secret", "/nonexistent/w.key_secret",
                                    "--broker-key", broker_key, NULL},
                   "error: --curve-secret: cannot read certificate /nonexistent/w.key_secret");
    expect_refused((const char *[]){"--curve-secret", stranger_public, "--broker-key",
                                    broker_key, NULL},
                   "has no secret key");
    expect_refused((const char *[]){"--curve-secret", secret, NULL}, "--broker-key FILE");
    expect_refused((const char *[]){"--broker-key", broker_key, NULL},
                   "error: --broker-key needs --curve-secret FILE");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        worker_test(test_libcurl_only_for_anthropic),
        cmocka_unit_test(test_sandbox_refused_at_start),
        worker_curve_test(test_insecure_rule_and_keys_at_start),
    };
    return cmocka_run_group_tests_name("worker_loop", tests, NULL, NULL);
}
