/* Artifact downloads (issue 17): GET /executions/{id}/artifacts.zip read back by
 * real readers (python3's zipfile, unzip -t) byte for byte — sub-folders, binary
 * content, an empty file, an execution without artifacts — and `syn exec
 * artifacts` through the built CLI: the table, -q, --json, --get of one file (to
 * -o FILE, to its own name, to stdout), --all as a tar and as a ZIP, and the exit
 * codes of what is not there. The agent is tests/integration/fixtures/
 * artifact_agent.sh, which keeps a copy of what it leaves for the comparisons. */
#include "tests/support/http.h"
#include "tests/support/synrun.h"
#include "tests/support/teststack.h"

#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#define AGENT SYN_SOURCE_DIR "/tests/integration/fixtures/artifact_agent.sh"

static teststack_t *stack;
static char scratch[] = "/tmp/syn-artifact-dl-XXXXXX";
static char *made;    /* an execution whose agent left files (MAKE) */
static char *nothing; /* one whose agent left none */

static char *run(const char *task)
{
    char body[128];
    snprintf(body, sizeof body, "{\"task\":\"%s\"}", task);
    char *id = teststack_execute(stack, "deliver", body);
    assert_non_null(id);
    json_t *final = teststack_wait_terminal(stack, "deliver", id, 60000);
    assert_non_null(final);
    if (strcmp(json_string_value(json_object_get(final, "status")), "completed") != 0) {
        teststack_dump_logs(stack);
        fail_msg("execution %s did not complete", id);
    }
    json_decref(final);
    return id;
}

static int setup(void **state)
{
    (void)state;
    if (!mkdtemp(scratch))
        return -1;
    setenv("SYN_TEST_DIR", scratch, 1);
    static char worker_args[256];
    snprintf(worker_args, sizeof worker_args, "--sandbox none --workspace %s", scratch);
    teststack_options_t opts = {
        .workers = 1,
        .slots = 2,
        .provider = "command",
        .command = AGENT,
        .worker_args = worker_args,
    };
    stack = teststack_start(&opts);
    if (!stack)
        return -1;
    json_t *wf = teststack_create_workflow(
        stack, "{\"id\":\"deliver\",\"name\":\"Deliver\",\"phases\":["
               "{\"phase_id\":\"make\",\"name\":\"Make\",\"order\":1,"
               " \"prompt_template\":\"$ARGUMENTS\"}]}");
    json_decref(wf);
    if (!wf)
        return -1;
    made = run("MAKE");
    nothing = run("NOTHING");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    free(made);
    free(nothing);
    teststack_destroy(&stack);
    return teststack_remove_dir(scratch);
}

/* A shell command's exit status (0 when it succeeded), printed on failure. */
static int shell(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int shell(const char *fmt, ...)
{
    char cmd[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    int rc = system(cmd);
    if (rc != 0)
        fprintf(stderr, "failed (%d): %s\n", rc, cmd);
    return rc;
}

/* GETs url into file; the response (its body freed). */
static void download(const char *url, const char *file, http_response_t *resp)
{
    assert_int_equal(http_get(resp, "%s", url), 0);
    FILE *f = fopen(file, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(resp->body, 1, resp->body_len, f), resp->body_len);
    assert_int_equal(fclose(f), 0);
}

/* GETs execution id's ZIP into scratch: its file, the folder to extract it to and
 * the file of its names (512 bytes each). */
static void get_zip(const char *id, char *file, char *dir, char *names, http_response_t *resp)
{
    char url[512];
    snprintf(url, sizeof url, "%s/executions/%s/artifacts.zip", teststack_url(stack), id);
    snprintf(file, 512, "%s/%s.zip", scratch, id);
    snprintf(dir, 512, "%s/%s.unzipped", scratch, id);
    snprintf(names, 512, "%s/%s.names", scratch, id);
    download(url, file, resp);
}

/* Python's zipfile checks every entry's CRC-32, extracts them into dir and prints
 * their names in order. */
#define PY_READ                                                                                  \
    "python3 -c 'import sys, zipfile\n"                                                          \
    "z = zipfile.ZipFile(sys.argv[1])\n"                                                         \
    "assert z.testzip() is None\n"                                                               \
    "z.extractall(sys.argv[2])\n"                                                                \
    "print(\",\".join(z.namelist()))' %s %s > %s"

static void test_zip_holds_them_all_byte_for_byte(void **state)
{
    (void)state;
    char file[512], dir[512], names[512];
    http_response_t resp;
    get_zip(made, file, dir, names, &resp);
    assert_int_equal(resp.status, 200);
    assert_string_equal(resp.content_type, "application/zip");
    assert_non_null(strstr(resp.content_disposition, "-artifacts.zip"));
    http_response_clear(&resp);
    assert_int_equal(shell(PY_READ, file, dir, names), 0);
    char *listed = synrun_slurp(names);
    assert_string_equal(listed, "make/empty.txt,make/report.md,make/sub/dir/data.bin\n");
    free(listed);
    /* the agent's own copies, byte for byte (data.bin is binary, NULs included) */
    assert_int_equal(shell("cmp %s/make/sub/dir/data.bin %s/%s/make/sub/dir/data.bin && "
                           "cmp %s/make/report.md %s/%s/make/report.md && "
                           "cmp %s/make/empty.txt %s/%s/make/empty.txt",
                           dir, scratch, made, dir, scratch, made, dir, scratch, made),
                     0);
    /* and unzip agrees that every entry is whole */
    assert_int_equal(shell("unzip -tqq %s", file), 0);
    /* the original's clients find it under /api/v1 too */
    assert_int_equal(http_get(&resp, "%s/api/v1/executions/%s/artifacts.zip",
                              teststack_url(stack), made),
                     0);
    assert_int_equal(resp.status, 200);
    http_response_clear(&resp);
}

static void test_zip_of_an_execution_without_artifacts_is_empty(void **state)
{
    (void)state;
    char file[512], dir[512], names[512];
    http_response_t resp;
    get_zip(nothing, file, dir, names, &resp);
    assert_int_equal(resp.status, 200);
    assert_int_equal(resp.body_len, 22); /* the end record alone */
    http_response_clear(&resp);
    assert_int_equal(shell(PY_READ, file, dir, names), 0);
    char *listed = synrun_slurp(names);
    assert_string_equal(listed, "\n");
    free(listed);
}

static void test_zip_of_an_unknown_execution_is_404(void **state)
{
    (void)state;
    http_response_t resp;
    assert_int_equal(
        http_get(&resp, "%s/executions/exec-nothere/artifacts.zip", teststack_url(stack)), 0);
    assert_int_equal(resp.status, 404);
    assert_non_null(json_string_value(json_object_get(resp.json, "detail")));
    http_response_clear(&resp);
}

/* ---- syn exec artifacts ---- */

#define ARGS(...) ((const char *const[]){__VA_ARGS__, NULL})

/* Runs syn; fails with what it printed unless it exited with code and its stdout
 * holds each of texts (NULL-ended). */
static synrun_t expect_syn(int code, const char *const *argv, const char *const *texts)
{
    synrun_t r = synrun(teststack_url(stack), NULL, NULL, argv);
    bool ok = r.code == code;
    for (int i = 0; texts && texts[i]; i++)
        if (!strstr(r.out, texts[i])) {
            fprintf(stderr, "missing '%s'\n", texts[i]);
            ok = false;
        }
    if (!ok) {
        fprintf(stderr, "exit %d (want %d)\n--- stdout\n%s--- stderr\n%s---\n", r.code, code,
                r.out, r.err);
        fail();
    }
    return r;
}

static void expect(int code, const char *const *argv, const char *const *texts)
{
    synrun_t r = expect_syn(code, argv, texts);
    synrun_clear(&r);
}

static void test_cli_lists_them(void **state)
{
    (void)state;
    expect(0, ARGS("exec", "artifacts", made),
           ARGS("PHASE", "ATTEMPT", "PATH", "SIZE", "TYPE", "SHA256", "sub/dir/data.bin",
                "700.0 KiB", "application/octet-stream", "report.md", "text/markdown",
                "empty.txt", "0 B"));
    expect(0, ARGS("exec", "artifacts", made, "-q"),
           ARGS("make/empty.txt\nmake/report.md\nmake/sub/dir/data.bin\n"));
    synrun_t r = expect_syn(0, ARGS("exec", "artifacts", made, "--json"), NULL);
    json_t *doc = json_loads(r.out, 0, NULL);
    assert_non_null(doc);
    assert_int_equal(json_array_size(json_object_get(doc, "artifacts")), 3);
    json_decref(doc);
    synrun_clear(&r);
    expect(0, ARGS("exec", "artifacts", nothing), ARGS("has no artifacts"));
    /* an unknown execution is exit 4, bad usage 2 */
    expect(4, ARGS("exec", "artifacts", "exec-nothere"), NULL);
    expect(2, ARGS("exec", "artifacts", made, "--get", "make/report.md", "--all"), NULL);
    expect(2, ARGS("exec", "artifacts", made, "--get", "report.md"), NULL);
}

static void test_cli_gets_one(void **state)
{
    (void)state;
    char out[512], want[512];
    snprintf(out, sizeof out, "%s/got.bin", scratch);
    snprintf(want, sizeof want, "%s/%s/make/sub/dir/data.bin", scratch, made);
    expect(0, ARGS("exec", "artifacts", made, "--get", "make/sub/dir/data.bin", "-o", out),
           ARGS("saved ", "got.bin", "700.0 KiB"));
    assert_int_equal(shell("cmp %s %s", out, want), 0);
    /* without -o: its own name, in the current directory */
    char cwd[512];
    assert_non_null(getcwd(cwd, sizeof cwd));
    assert_int_equal(chdir(scratch), 0);
    synrun_t r = synrun(teststack_url(stack), NULL, NULL,
                        ARGS("exec", "artifacts", made, "--get", "make/sub/dir/data.bin", "-q"));
    assert_int_equal(chdir(cwd), 0);
    assert_int_equal(r.code, 0);
    synrun_clear(&r);
    assert_int_equal(shell("cmp %s/data.bin %s", scratch, want), 0);
    /* to stdout */
    r = expect_syn(0, ARGS("exec", "artifacts", made, "--get", "make/report.md", "-o", "-"),
                   NULL);
    assert_string_equal(r.out, "# Report\n\nAll good.\n");
    synrun_clear(&r);
    /* one it does not have: exit 4, and no file made */
    snprintf(out, sizeof out, "%s/nope.txt", scratch);
    expect(4, ARGS("exec", "artifacts", made, "--get", "make/nope.txt", "-o", out), NULL);
    struct stat st;
    assert_int_not_equal(stat(out, &st), 0);
}

static void test_cli_gets_them_all(void **state)
{
    (void)state;
    char out[512], dir[512], names[512];
    /* a ZIP, by the name's extension */
    snprintf(out, sizeof out, "%s/all.zip", scratch);
    snprintf(dir, sizeof dir, "%s/all.zip.d", scratch);
    snprintf(names, sizeof names, "%s/all.zip.names", scratch);
    expect(0, ARGS("exec", "artifacts", made, "--all", "-o", out), ARGS("saved ", "all.zip"));
    assert_int_equal(shell(PY_READ, out, dir, names), 0);
    assert_int_equal(
        shell("cmp %s/make/sub/dir/data.bin %s/%s/make/sub/dir/data.bin", dir, scratch, made), 0);
    /* a tar, named after the execution, in the current directory */
    char cwd[512];
    assert_non_null(getcwd(cwd, sizeof cwd));
    assert_int_equal(chdir(scratch), 0);
    synrun_t r = synrun(teststack_url(stack), NULL, NULL, ARGS("exec", "artifacts", made, "--all"));
    assert_int_equal(chdir(cwd), 0);
    assert_int_equal(r.code, 0);
    synrun_clear(&r);
    assert_int_equal(shell("mkdir -p %s/all.tar.d && tar -xf %s/%s-artifacts.tar -C %s/all.tar.d "
                           "&& cmp %s/all.tar.d/make/sub/dir/data.bin %s/%s/make/sub/dir/data.bin",
                           scratch, scratch, made, scratch, scratch, scratch, made),
                     0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_zip_holds_them_all_byte_for_byte),
        cmocka_unit_test(test_zip_of_an_execution_without_artifacts_is_empty),
        cmocka_unit_test(test_zip_of_an_unknown_execution_is_404),
        cmocka_unit_test(test_cli_lists_them),
        cmocka_unit_test(test_cli_gets_one),
        cmocka_unit_test(test_cli_gets_them_all),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
