/* Workspaces, repositories, the agent's environment and resource limits, seen
 * through the command provider running real commands. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/clock.h"
#include "worker/provider.h"
#include "worker/workspace.h"
#include "tests/support/wait.h"

typedef struct {
    char dir[256];       /* scratch for this test */
    char base[300];      /* where workspaces go */
    worker_provider_t *provider;
    worker_run_t *run;
    char *saved_path;
} fixture_t;

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof *f);
    assert_non_null(f);
    snprintf(f->dir, sizeof f->dir, "/tmp/syn-ws-test-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->base, sizeof f->base, "%s/ws", f->dir);
    setenv("SYN_TEST_DIR", f->dir, 1);
    f->saved_path = strdup(getenv("PATH"));
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    worker_run_destroy(&f->run);
    worker_provider_destroy(&f->provider);
    worker_workspace_remove_tree(f->dir);
    setenv("PATH", f->saved_path, 1);
    free(f->saved_path);
    unsetenv("SYN_TEST_DIR");
    free(f);
    return 0;
}

static void command(fixture_t *f, const char *cmd, const worker_options_t *extra)
{
    char err[256] = "";
    worker_run_destroy(&f->run); /* a run must not outlive its provider */
    worker_provider_destroy(&f->provider);
    f->provider = worker_provider_command_new(cmd, 1000, err, sizeof err);
    if (!f->provider)
        fail_msg("provider: %s", err);
    worker_options_t options = extra ? *extra : (worker_options_t){0};
    options.workspace_dir = f->base;
    options.kill_grace_ms = 1000;
    assert_int_equal(worker_provider_set_options(f->provider, &options), 0);
}

static worker_job_t job_with(const char *prompt, int64_t timeout_ms)
{
    return (worker_job_t){.execution_id = "exec-0000000000e1",
                          .workflow_id = "wf-test",
                          .phase_id = "review",
                          .attempt = 3,
                          .prompt = prompt,
                          .timeout_ms = timeout_ms};
}

static worker_run_t *start(fixture_t *f, const worker_job_t *job)
{
    char err[512] = "";
    worker_run_destroy(&f->run);
    f->run = worker_run_start(f->provider, job, err, sizeof err);
    if (!f->run)
        fail_msg("start: %s", err);
    return f->run;
}

static void run_to_end(fixture_t *f, const worker_job_t *job, worker_run_status_t expect)
{
    worker_run_t *run = start(f, job);
    assert_int_equal(worker_run_drive(run, 20000), 0);
    if (worker_run_status(run) != expect)
        fail_msg("status %s, error: %s, output: %s",
                 worker_run_status_name(worker_run_status(run)),
                 worker_run_error(run) ? worker_run_error(run) : "(none)",
                 worker_run_output(run, NULL));
}

static bool exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

static void sh(const char *fmt, ...)
{
    char cmd[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    if (system(cmd) != 0)
        fail_msg("command failed: %s", cmd);
}

static void test_layout_and_inputs(void **state)
{
    fixture_t *f = *state;
    command(f, "sh -c 'cat >/dev/null; pwd; ls artifacts/input; cat artifacts/input/plan.md; "
               "echo; cat artifacts/input/research.md; echo; ls -d artifacts/output repos; "
               "echo \"$HOME\" \"$SYN_WORKSPACE\"'",
            NULL);
    json_t *inputs = json_pack("{s:s, s:s, s:s}", "plan", "# The plan\nstep 1", "research",
                               "found things", "../escape", "no way out");
    worker_job_t job = job_with("prompt", 10000);
    job.inputs = inputs;
    worker_run_t *run = start(f, &job);
    json_decref(inputs);
    char workspace[512];
    snprintf(workspace, sizeof workspace, "%s", worker_run_workspace(run));
    /* <base>/syn-<execution>-<phase>-<attempt>-XXXXXX */
    char prefix[400];
    snprintf(prefix, sizeof prefix, "%s/syn-exec-0000000000e1-review-3-", f->base);
    assert_int_equal(strncmp(workspace, prefix, strlen(prefix)), 0);
    struct stat st;
    assert_int_equal(stat(workspace, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
    assert_int_equal(worker_run_drive(run, 10000), 0);
    assert_int_equal(worker_run_status(run), WORKER_RUN_COMPLETED);
    char expect[2048];
    snprintf(expect, sizeof expect,
             "%s\n_._escape.md\nplan.md\nresearch.md\n# The plan\nstep 1\nfound things\n"
             "artifacts/output\nrepos\n%s %s\n",
             workspace, workspace, workspace);
    assert_string_equal(worker_run_output(run, NULL), expect);
    /* Nothing was written outside the workspace. */
    char outside[600];
    snprintf(outside, sizeof outside, "%s/../escape.md", workspace);
    assert_false(exists(outside));
    worker_run_destroy(&f->run);
    assert_false(exists(workspace));
}

static void test_local_repos_cloned(void **state)
{
    fixture_t *f = *state;
    /* A repository with two commits, made here. */
    sh("cd '%s' && mkdir src && cd src && git init -q . && echo first > README && "
       "git add README && git -c user.name=t -c user.email=t@t commit -qm one && "
       "echo second > README && git -c user.name=t -c user.email=t@t commit -qam two",
       f->dir);
    command(f, "sh -c 'cat >/dev/null; ls repos; cat repos/src/README; "
               "git -C repos/src-2 rev-list --count HEAD; cat repos/src-2/README'",
            NULL);
    char path[400], url[420];
    snprintf(path, sizeof path, "%s/src", f->dir);
    snprintf(url, sizeof url, "file://%s/src/", f->dir);
    json_t *repos = json_pack("[s, s]", path, url);
    worker_job_t job = job_with("x", 20000);
    job.repos = repos;
    run_to_end(f, &job, WORKER_RUN_COMPLETED);
    /* Both cloned; the file:// one shallow (one commit of two). */
    assert_string_equal(worker_run_output(f->run, NULL), "src\nsrc-2\nsecond\n1\nsecond\n");

    /* A repository that does not exist fails the attempt with git's reason. */
    json_decref(repos);
    repos = json_pack("[s]", "/nonexistent/repo");
    job.repos = repos;
    run_to_end(f, &job, WORKER_RUN_FAILED);
    const char *error = worker_run_error(f->run);
    assert_int_equal(strncmp(error, "cannot clone /nonexistent/repo: exit code 128: ", 47), 0);
    assert_non_null(strstr(error, "does not exist"));

    /* A credential in a repository URL is never repeated. */
    json_decref(repos);
    repos = json_pack("[s]", "https://someone:sekrit-token@127.0.0.1:1/repo.git");
    job.repos = repos;
    run_to_end(f, &job, WORKER_RUN_FAILED);
    error = worker_run_error(f->run);
    assert_int_equal(strncmp(error, "cannot clone https://***@127.0.0.1:1/repo.git: exit code 128",
                             60), 0);
    assert_null(strstr(error, "sekrit"));

    /* Something that is not a repository is refused before anything runs. */
    json_decref(repos);
    const char *bad[] = {"-uoops", "relative/dir/repo", "ext::sh -c evil", "owner/"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        repos = json_pack("[s]", bad[i]);
        job.repos = repos;
        char err[512] = "";
        worker_run_t *run = worker_run_start(f->provider, &job, err, sizeof err);
        assert_null(run);
        char expect[256];
        snprintf(expect, sizeof expect,
                 "repo '%s' is not owner/repo, a URL or an absolute path", bad[i]);
        assert_string_equal(err, expect);
        json_decref(repos);
    }
    /* No workspace is left behind by any of it. */
    worker_run_destroy(&f->run);
    sh("test -z \"$(ls -A '%s')\"", f->base);
}

/* A "git" that never finishes: cloning happens beside the loop, and a
 * cancel or timeout stops it at once. */
static void test_clone_cancel_and_timeout(void **state)
{
    fixture_t *f = *state;
    sh("mkdir '%s/bin' && printf '#!/bin/sh\\necho $$ > \"$SYN_TEST_DIR/git.pid\"\\n"
       "exec sleep 600\\n' > '%s/bin/git' && chmod +x '%s/bin/git'",
       f->dir, f->dir, f->dir);
    char path[4096];
    snprintf(path, sizeof path, "%s/bin:%s", f->dir, f->saved_path);
    setenv("PATH", path, 1);
    command(f, "true", NULL);
    json_t *repos = json_pack("[s]", "owner/repo");
    worker_job_t job = job_with("x", 0);
    job.repos = repos;
    worker_run_t *run = start(f, &job);
    char pid_file[400];
    snprintf(pid_file, sizeof pid_file, "%s/git.pid", f->dir);
    int64_t give_up = syn_mono_ms() + 5000;
    while (!exists(pid_file) && syn_mono_ms() < give_up)
        worker_run_drive(run, 20);
    assert_false(worker_run_finished(run));
    FILE *file = fopen(pid_file, "r");
    assert_non_null(file);
    long pid = 0;
    assert_int_equal(fscanf(file, "%ld", &pid), 1);
    fclose(file);
    assert_int_equal(kill((pid_t)pid, 0), 0);
    char err[128];
    assert_int_equal(worker_run_inject(run, "user", "hi", err, sizeof err), -1);
    worker_run_cancel(run, syn_mono_ms());
    assert_true(worker_run_finished(run));
    assert_int_equal(worker_run_status(run), WORKER_RUN_CANCELLED);
    WAIT_FOR(kill((pid_t)pid, 0) != 0, 1000);
    assert_int_equal(kill((pid_t)pid, 0), -1);
    worker_run_destroy(&f->run);

    job.timeout_ms = 300;
    int64_t began = syn_mono_ms();
    run_to_end(f, &job, WORKER_RUN_FAILED);
    assert_true(syn_mono_ms() - began >= 300);
    assert_string_equal(worker_run_error(f->run), "timed out after 0.3 s");
    json_decref(repos);
}

/* The agent's environment holds only what is allowed. */
static void test_clean_environment(void **state)
{
    fixture_t *f = *state;
    setenv("ANTHROPIC_API_KEY", "sk-secret", 1);
    setenv("GITHUB_TOKEN", "ghp-secret", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "aws-secret", 1);
    setenv("SYN_EXTRA_SETTING", "passes", 1);
    setenv("LANG", "C.UTF-8", 1);
    setenv("OPERATOR_CHOICE", "chosen", 1);
    command(f, "env", NULL);
    worker_job_t job = job_with("", 10000);
    job.model = "haiku";
    run_to_end(f, &job, WORKER_RUN_COMPLETED);
    const char *allowed[] = {"PATH=", "HOME=", "LANG=", "SYN_"};
    char *env = strdup(worker_run_output(f->run, NULL));
    int syn_vars = 0;
    for (char *line = strtok(env, "\n"); line; line = strtok(NULL, "\n")) {
        bool ok = false;
        for (size_t i = 0; i < sizeof allowed / sizeof allowed[0]; i++)
            ok = ok || strncmp(line, allowed[i], strlen(allowed[i])) == 0;
        if (!ok)
            fail_msg("the agent got %s", line);
        syn_vars += strncmp(line, "SYN_", 4) == 0;
    }
    free(env);
    const char *out = worker_run_output(f->run, NULL);
    assert_non_null(strstr(out, "SYN_EXTRA_SETTING=passes\n"));
    assert_non_null(strstr(out, "SYN_PHASE_ID=review\n"));
    assert_non_null(strstr(out, "SYN_MODEL=haiku\n"));
    assert_non_null(strstr(out, "LANG=C.UTF-8\n"));
    assert_null(strstr(out, "secret"));
    assert_true(syn_vars >= 7);

    /* The operator can let named variables through. */
    worker_options_t options = {.pass_env = "OPERATOR_CHOICE, MISSING_ONE"};
    command(f, "env", &options);
    run_to_end(f, &job, WORKER_RUN_COMPLETED);
    out = worker_run_output(f->run, NULL);
    assert_non_null(strstr(out, "OPERATOR_CHOICE=chosen\n"));
    assert_null(strstr(out, "MISSING_ONE"));
    assert_null(strstr(out, "secret"));
    unsetenv("ANTHROPIC_API_KEY");
    unsetenv("GITHUB_TOKEN");
    unsetenv("AWS_SECRET_ACCESS_KEY");
    unsetenv("SYN_EXTRA_SETTING");
    unsetenv("OPERATOR_CHOICE");
}

static void test_limits(void **state)
{
    fixture_t *f = *state;
    errno = 0;
    int base_nice = getpriority(PRIO_PROCESS, 0);
    worker_options_t options = {.rlimit_as_mb = 512, .nice = 5};
    command(f, "sh -c 'ulimit -v; nice'", &options);
    worker_job_t job = job_with("", 10000);
    run_to_end(f, &job, WORKER_RUN_COMPLETED);
    char expect[64];
    snprintf(expect, sizeof expect, "524288\n%d\n", base_nice + 5 > 19 ? 19 : base_nice + 5);
    assert_string_equal(worker_run_output(f->run, NULL), expect);

    /* An agent that floods stdout is stopped at --max-output-mb. */
    options = (worker_options_t){.max_output_bytes = 2 * 1024 * 1024};
    command(f, "sh -c 'while :; do echo xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx; done'", &options);
    int64_t began = syn_mono_ms();
    run_to_end(f, &job, WORKER_RUN_FAILED);
    assert_true(syn_mono_ms() - began < 5000);
    assert_string_equal(worker_run_error(f->run), "output limit exceeded: more than 2 MiB");
    size_t len = 0;
    worker_run_output(f->run, &len);
    assert_int_equal(len, SYN_OUTPUT_MAX + strlen(SYN_OUTPUT_MARKER));

    /* A workspace is kept on request. */
    options = (worker_options_t){.keep_workspaces = true};
    command(f, "true", &options);
    run_to_end(f, &job, WORKER_RUN_COMPLETED);
    char kept[512];
    snprintf(kept, sizeof kept, "%s", worker_run_workspace(f->run));
    worker_run_destroy(&f->run);
    assert_true(exists(kept));
}

/* Removal copes with what an agent may leave: read-only directories, symlinks
 * pointing out (never followed). */
static void test_remove_tree(void **state)
{
    fixture_t *f = *state;
    sh("cd '%s' && mkdir -p victim keep && echo precious > keep/file && "
       "mkdir -p victim/a/b && echo x > victim/a/b/f && ln -s ../keep victim/link && "
       "ln -s ../keep/file victim/a/filelink && chmod 0500 victim/a && chmod 0400 victim/a/b/f",
       f->dir);
    char victim[400], keep[400];
    snprintf(victim, sizeof victim, "%s/victim", f->dir);
    snprintf(keep, sizeof keep, "%s/keep/file", f->dir);
    assert_int_equal(worker_workspace_remove_tree(victim), 0);
    assert_false(exists(victim));
    assert_true(exists(keep));
    assert_int_equal(worker_workspace_remove_tree(victim), 0); /* gone already: fine */
}

int main(void)
{
    signal(SIGPIPE, SIG_DFL);
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_layout_and_inputs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_local_repos_cloned, setup, teardown),
        cmocka_unit_test_setup_teardown(test_clone_cancel_and_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_clean_environment, setup, teardown),
        cmocka_unit_test_setup_teardown(test_limits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_remove_tree, setup, teardown),
    };
    return cmocka_run_group_tests_name("worker_workspace", tests, NULL, NULL);
}
