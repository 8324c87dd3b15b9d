/* The sandbox: the bwrap command built from a policy (no bwrap needed), then
 * real agents under bwrap through the command provider (skipped, with the
 * reason, on a host where bwrap cannot make a sandbox): what they can read and
 * reach, and that nothing of theirs outlives a cancel, a timeout or a killed
 * worker. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/clock.h"
#include "tests/support/wait.h"
#include "tests/support/worker_runs.h"
#include "worker/provider.h"
#include "worker/sandbox.h"

/* --- the command ------------------------------------------------------------- */

static bool nothing_exists(const char *path)
{
    (void)path;
    return false;
}

static bool everything_exists(const char *path)
{
    (void)path;
    return true;
}

static int index_of(char **argv, const char *arg, int from)
{
    for (int i = from; argv[i]; i++)
        if (strcmp(argv[i], arg) == 0)
            return i;
    return -1;
}

/* Whether argv holds opt followed by a and (when given) b. */
static bool has_option(char **argv, const char *opt, const char *a, const char *b)
{
    for (int i = 0; argv[i]; i++)
        if (strcmp(argv[i], opt) == 0 && argv[i + 1] && strcmp(argv[i + 1], a) == 0 &&
            (!b || (argv[i + 2] && strcmp(argv[i + 2], b) == 0)))
            return true;
    return false;
}

static char **build(const worker_sandbox_policy_t *policy)
{
    char *inner[] = {"agent", "--flag", NULL};
    char err[256] = "";
    char **argv = worker_sandbox_argv(policy, inner, err, sizeof err);
    if (!argv)
        fail_msg("argv: %s", err);
    return argv;
}

static void test_argv_shape(void **state)
{
    (void)state;
    worker_sandbox_policy_t policy = {.workspace = "/srv/ws/a1", .exists = nothing_exists};
    char **argv = build(&policy);
    assert_string_equal(argv[0], "bwrap");
    const char *isolating[] = {"--die-with-parent", "--unshare-user", "--unshare-pid",
                               "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try"};
    for (size_t i = 0; i < sizeof isolating / sizeof isolating[0]; i++)
        assert_true(index_of(argv, isolating[i], 1) > 0);
    /* No --new-session: a stop signals the process group, which must reach inside. */
    assert_int_equal(index_of(argv, "--new-session", 1), -1);
    assert_true(has_option(argv, "--ro-bind-try", "/usr", "/usr"));
    assert_true(has_option(argv, "--ro-bind-try", "/etc", "/etc"));
    assert_true(has_option(argv, "--proc", "/proc", NULL));
    assert_true(has_option(argv, "--tmpfs", "/tmp", NULL));
    /* The workspace is mounted after /tmp (it may live under it) and is the cwd. */
    int tmp = index_of(argv, "/tmp", 1), ws = index_of(argv, "--bind", 1);
    assert_true(tmp > 0 && ws > tmp);
    assert_true(has_option(argv, "--bind", "/srv/ws/a1", "/srv/ws/a1"));
    assert_true(has_option(argv, "--chdir", "/srv/ws/a1", NULL));
    /* Secrets are only covered where they exist. */
    assert_false(has_option(argv, "--tmpfs", "/etc/ssl/private", NULL));
    assert_false(has_option(argv, "--ro-bind", "/dev/null", "/etc/shadow"));
    /* The agent's own command comes last, untouched. */
    int dashes = index_of(argv, "--", 1);
    assert_true(dashes > 0);
    assert_string_equal(argv[dashes + 1], "agent");
    assert_string_equal(argv[dashes + 2], "--flag");
    assert_null(argv[dashes + 3]);
    free(argv);

    policy.exists = everything_exists;
    policy.bwrap = "/opt/bwrap";
    argv = build(&policy);
    assert_string_equal(argv[0], "/opt/bwrap");
    assert_true(has_option(argv, "--tmpfs", "/etc/ssl/private", NULL));
    assert_true(has_option(argv, "--ro-bind", "/dev/null", "/etc/shadow"));
    free(argv);
}

static void test_argv_network(void **state)
{
    (void)state;
    worker_sandbox_policy_t policy = {.workspace = "/w", .exists = nothing_exists};
    const worker_network_t isolated[] = {WORKER_NETWORK_NONE, WORKER_NETWORK_PROXY};
    for (size_t i = 0; i < 2; i++) {
        policy.network = isolated[i];
        char **argv = build(&policy);
        assert_true(index_of(argv, "--unshare-net", 1) > 0);
        free(argv);
    }
    policy.network = WORKER_NETWORK_HOST;
    char **argv = build(&policy);
    assert_int_equal(index_of(argv, "--unshare-net", 1), -1);
    free(argv);
    /* proxy keeps the namespace its process made (worker_sandbox_netns_enter);
     * none never does, even if told one is ready. */
    policy.netns_ready = true;
    policy.network = WORKER_NETWORK_PROXY;
    argv = build(&policy);
    assert_int_equal(index_of(argv, "--unshare-net", 1), -1);
    free(argv);
    policy.network = WORKER_NETWORK_NONE;
    argv = build(&policy);
    assert_true(index_of(argv, "--unshare-net", 1) > 0);
    free(argv);

    worker_network_t n = WORKER_NETWORK_HOST;
    assert_int_equal(worker_network_parse(NULL, &n), 0);
    assert_int_equal(n, WORKER_NETWORK_PROXY); /* the default */
    assert_int_equal(worker_network_parse("none", &n), 0);
    assert_int_equal(n, WORKER_NETWORK_NONE);
    assert_int_equal(worker_network_parse("host", &n), 0);
    assert_int_equal(n, WORKER_NETWORK_HOST);
    assert_int_equal(worker_network_parse("internet", &n), -1);
    assert_string_equal(worker_network_name(WORKER_NETWORK_NONE), "none");
    assert_string_equal(worker_network_name(WORKER_NETWORK_PROXY), "proxy");
}

static void test_argv_extra_paths(void **state)
{
    (void)state;
    worker_sandbox_policy_t policy = {.workspace = "/w",
                                      .ro_paths = "/opt/go, /srv/tools,,",
                                      .program = "/home/op/agent.sh",
                                      .exists = nothing_exists};
    char **argv = build(&policy);
    assert_true(has_option(argv, "--ro-bind", "/opt/go", "/opt/go"));
    assert_true(has_option(argv, "--ro-bind", "/srv/tools", "/srv/tools"));
    /* The agent's program is visible (read-only) wherever it lives... */
    assert_true(has_option(argv, "--ro-bind", "/home/op/agent.sh", "/home/op/agent.sh"));
    free(argv);
    /* ...but one in the system directories needs no bind of its own. */
    policy.program = "/usr/bin/python3";
    policy.ro_paths = NULL;
    argv = build(&policy);
    assert_false(has_option(argv, "--ro-bind", "/usr/bin/python3", NULL));
    free(argv);

    char err[256] = "";
    char *inner[] = {"agent", NULL};
    policy.ro_paths = "/ok,relative/path";
    assert_null(worker_sandbox_argv(&policy, inner, err, sizeof err));
    assert_non_null(strstr(err, "'relative/path' is not absolute"));
    policy.ro_paths = NULL;
    policy.workspace = "ws";
    assert_null(worker_sandbox_argv(&policy, inner, err, sizeof err));
    assert_non_null(strstr(err, "workspace"));
}

/* --- real agents ------------------------------------------------------------- */



static char scratch[128];

/* A provider running "sh -s": the prompt is the agent's script. */
static worker_provider_t *sandboxed_shell(void)
{
    char err[256] = "";
    worker_provider_t *p = worker_provider_command_new("sh -s", 500, err, sizeof err);
    assert_non_null(p);
    worker_options_t options = {.workspace_dir = scratch, .sandbox = true};
    assert_int_equal(worker_provider_set_options(p, &options), 0);
    return p;
}

static worker_job_t job_for(const char *script, int64_t timeout_ms)
{
    return (worker_job_t){.execution_id = "exec-00000000000b", .workflow_id = "wf-test",
                          .phase_id = "probe", .attempt = 1, .prompt = script,
                          .timeout_ms = timeout_ms};
}

static worker_run_t *start(worker_provider_t *p, const worker_job_t *job)
{
    worker_run_t *run = worker_runs_start(p, job);
    assert_non_null(run);
    return run;
}

/* Runs script to its end in a fresh sandboxed attempt; the output, malloc'd. */
static char *run_script(const char *script, worker_network_t network)
{
    worker_provider_t *p = sandboxed_shell();
    worker_job_t job = job_for(script, 20000);
    job.network = network;
    worker_run_t *run = start(p, &job);
    assert_int_equal(worker_run_drive(run, 20000), 0);
    char *out = strdup(worker_run_output(run, NULL));
    if (worker_run_status(run) != WORKER_RUN_COMPLETED)
        fail_msg("agent failed: %s\n%s", worker_run_error(run), out);
    worker_run_destroy(&run);
    worker_provider_destroy(&p);
    return out;
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* What a hostile agent tries: each read outside its workspace fails, its own
 * workspace works, and the keys the worker holds are not in its environment. */
static void test_sees_only_its_workspace(void **state)
{
    (void)state;
    WORKER_RUNS_SKIP_WITHOUT_BWRAP();
    /* Stand-ins for the worker's home and the broker's data, with secrets. */
    char home[192], data[192], path[256];
    snprintf(home, sizeof home, "%s/worker-home", scratch);
    snprintf(data, sizeof data, "%s/broker-data", scratch);
    assert_int_equal(mkdir(home, 0700), 0);
    assert_int_equal(mkdir(data, 0700), 0);
    snprintf(path, sizeof path, "%s/.netrc", home);
    write_file(path, "machine github.com password hunter2\n");
    snprintf(path, sizeof path, "%s/syn.db", data);
    write_file(path, "broker rows\n");
    setenv("ANTHROPIC_API_KEY", "sk-real-key-must-not-leak", 1);
    setenv("GITHUB_TOKEN", "ghp-real-token-must-not-leak", 1);

    /* Another attempt, running beside it, with a file in its workspace. */
    worker_provider_t *p = sandboxed_shell();
    worker_job_t other_job = job_for("echo other-secret > mine.txt; echo ready; sleep 600", 0);
    worker_run_t *other = start(p, &other_job);
    assert_true(worker_runs_drive_until_output(other, "ready", 10000));
    const char *other_ws = worker_run_workspace(other);
    assert_non_null(other_ws);

    char script[2048];
    snprintf(script, sizeof script,
             "try() { if cat \"$1\" >/dev/null 2>&1; then echo \"READ $1\"; else echo \"denied $1\"; fi; }\n"
             "try '%s/.netrc'\n"
             "try '%s/syn.db'\n"
             "try '%s/mine.txt'\n"
             "try /proc/%ld/environ\n"
             "try /etc/shadow\n"
             "ls '%s' >/dev/null 2>&1 && echo \"LISTED home\" || echo 'denied home'\n"
             "echo own > own.txt && cat own.txt && cat \"$HOME/own.txt\"\n"
             "env | grep -c -e sk-real -e ghp-real || true\n",
             home, data, other_ws, (long)getpid(), home);
    char *out = run_script(script, WORKER_NETWORK_PROXY);
    worker_run_destroy(&other);
    worker_provider_destroy(&p);
    print_message("%s", out);
    assert_null(strstr(out, "READ"));
    assert_null(strstr(out, "LISTED"));
    assert_non_null(strstr(out, "denied /etc/shadow"));
    assert_non_null(strstr(out, "/mine.txt\n"));
    assert_non_null(strstr(out, "own\nown\n0\n"));
    free(out);
    unsetenv("ANTHROPIC_API_KEY");
    unsetenv("GITHUB_TOKEN");
}

/* A loopback server outside the sandbox: reachable with the host's network
 * only. The listen queue accepts the connection; nothing needs to answer. */
static void test_network_per_phase(void **state)
{
    (void)state;
    WORKER_RUNS_SKIP_WITHOUT_BWRAP();
    int server = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof addr;
    assert_int_equal(bind(server, (struct sockaddr *)&addr, sizeof addr), 0);
    assert_int_equal(listen(server, 16), 0);
    assert_int_equal(getsockname(server, (struct sockaddr *)&addr, &len), 0);
    char script[512];
    snprintf(script, sizeof script,
             "if bash -c 'exec 3<>/dev/tcp/127.0.0.1/%d' 2>/dev/null; then echo reached; "
             "else echo unreachable; fi\n",
             ntohs(addr.sin_port));
    const struct {
        worker_network_t network;
        const char *expect;
    } cases[] = {{WORKER_NETWORK_NONE, "unreachable\n"},
                 {WORKER_NETWORK_PROXY, "unreachable\n"},
                 {WORKER_NETWORK_HOST, "reached\n"}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *out = run_script(script, cases[i].network);
        if (strcmp(out, cases[i].expect) != 0)
            fail_msg("network %s: got '%s'", worker_network_name(cases[i].network), out);
        free(out);
    }
    close(server);
}

/* Every process whose PID namespace is ns ("pid:[N]"): none must be left. */
static int processes_in(const char *ns)
{
    int found = 0;
    DIR *proc = opendir("/proc");
    assert_non_null(proc);
    struct dirent *e;
    while ((e = readdir(proc))) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9')
            continue;
        char link[300], target[64];
        snprintf(link, sizeof link, "/proc/%s/ns/pid", e->d_name);
        ssize_t n = readlink(link, target, sizeof target - 1);
        if (n <= 0)
            continue;
        target[n] = '\0';
        if (strcmp(target, ns) == 0)
            found++;
    }
    closedir(proc);
    return found;
}

static void assert_namespace_empties(const char *ns)
{
    wait_t w = wait_begin(5000);
    do {
        /* As subreaper this test inherits what a killed worker left: reap it,
         * as a worker's supervisor would, so a zombie is not counted. */
        while (waitpid(-1, NULL, WNOHANG) > 0)
            ;
    } while (processes_in(ns) > 0 && wait_next(&w));
    assert_int_equal(processes_in(ns), 0);
}

/* The agent prints its PID namespace and leaves children behind in it. */
#define SPREADING_AGENT                                                                        \
    "sleep 600 & (sleep 600 &) ; echo ns=$(readlink /proc/self/ns/pid) ; wait\n"

static void namespace_of(worker_run_t *run, char *ns, size_t cap)
{
    assert_true(worker_runs_drive_until_output(run, "]\n", 10000));
    const char *at = strstr(worker_run_output(run, NULL), "ns=");
    assert_non_null(at);
    snprintf(ns, cap, "%.*s", (int)strcspn(at + 3, "\n"), at + 3);
    assert_true(processes_in(ns) >= 3);
}

static void test_cancel_and_timeout_leave_nothing(void **state)
{
    (void)state;
    WORKER_RUNS_SKIP_WITHOUT_BWRAP();
    char ns[64];
    worker_provider_t *p = sandboxed_shell();
    worker_job_t job = job_for(SPREADING_AGENT, 0);
    worker_run_t *run = start(p, &job);
    namespace_of(run, ns, sizeof ns);
    worker_run_cancel(run, syn_mono_ms());
    assert_int_equal(worker_run_drive(run, 10000), 0);
    assert_int_equal(worker_run_status(run), WORKER_RUN_CANCELLED);
    assert_namespace_empties(ns);
    worker_run_destroy(&run);

    job = job_for(SPREADING_AGENT, 1500);
    run = start(p, &job);
    namespace_of(run, ns, sizeof ns);
    assert_int_equal(worker_run_drive(run, 10000), 0);
    assert_int_equal(worker_run_status(run), WORKER_RUN_FAILED);
    assert_non_null(strstr(worker_run_error(run), "timed out"));
    assert_namespace_empties(ns);
    worker_run_destroy(&run);
    worker_provider_destroy(&p);
}

/* kill -9 of the worker: nothing can clean up but the kernel (--die-with-parent). */
static void test_killed_worker_leaves_nothing(void **state)
{
    (void)state;
    WORKER_RUNS_SKIP_WITHOUT_BWRAP();
    int report[2];
    assert_int_equal(pipe(report), 0);
    pid_t worker = fork();
    assert_true(worker >= 0);
    if (worker == 0) {
        close(report[0]);
        worker_provider_t *p = sandboxed_shell();
        worker_job_t job = job_for(SPREADING_AGENT, 0);
        char err[256];
        worker_run_t *run = worker_run_start(p, &job, err, sizeof err);
        if (!run || !worker_runs_drive_until_output(run, "]\n", 10000))
            _exit(1);
        const char *at = strstr(worker_run_output(run, NULL), "ns=");
        if (!at)
            _exit(1);
        dprintf(report[1], "%.*s\n", (int)strcspn(at + 3, "\n"), at + 3);
        for (;;)
            pause();
    }
    close(report[1]);
    char ns[64] = "";
    FILE *f = fdopen(report[0], "r");
    assert_non_null(fgets(ns, sizeof ns, f));
    fclose(f);
    ns[strcspn(ns, "\n")] = '\0';
    assert_true(processes_in(ns) >= 3);
    assert_int_equal(kill(worker, SIGKILL), 0);
    assert_int_equal(waitpid(worker, NULL, 0), worker);
    assert_namespace_empties(ns);
}

static int make_scratch(void **state)
{
    (void)state;
    snprintf(scratch, sizeof scratch, "/tmp/syn-sandbox-test-XXXXXX");
    assert_non_null(mkdtemp(scratch));
    return 0;
}

static int remove_scratch(void **state)
{
    (void)state;
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", scratch);
    return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
    /* Orphans of a killed group are reaped here, as the worker reaps them. */
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_argv_shape),
        cmocka_unit_test(test_argv_network),
        cmocka_unit_test(test_argv_extra_paths),
        cmocka_unit_test(test_sees_only_its_workspace),
        cmocka_unit_test(test_network_per_phase),
        cmocka_unit_test(test_cancel_and_timeout_leave_nothing),
        cmocka_unit_test(test_killed_worker_leaves_nothing),
    };
    return cmocka_run_group_tests(tests, make_scratch, remove_scratch);
}
