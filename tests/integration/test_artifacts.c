/* Artifacts end to end (issue 17) with the command provider and a real agent script
 * (fixtures/artifact_agent.sh): files left in artifacts/output, sub-folders and
 * binary content included, come back byte for byte from GET
 * /executions/{id}/artifacts/{phase}/{path} and in the tar, and in the next phase's
 * workspace (artifacts/input/<phase>/<path>); symbolic links and FIFOs are skipped with a PhaseWarning; the
 * limits fail the phase with their flag's name; a worker killed while sending
 * leaves nothing half-stored and the attempt runs again; a broker restart keeps
 * them. Declared artifact names reach the agent (SYN_INPUT_ARTIFACTS,
 * SYN_OUTPUT_ARTIFACTS) and a declared output left unmade is a PhaseWarning,
 * never a failure. */
#include "tests/support/http.h"
#include "tests/support/teststack.h"

#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#define AGENT SYN_SOURCE_DIR "/tests/integration/fixtures/artifact_agent.sh"

static teststack_t *stack;
static char scratch[] = "/tmp/syn-artifacts-XXXXXX";

static int setup(void **state)
{
    (void)state;
    /* Small limits, so the tests of limits stay small; the kill test's file fits. */
    if (!mkdtemp(scratch))
        return -1;
    setenv("SYN_TEST_DIR", scratch, 1);
    /* Workspaces (and the artifacts a killed worker leaves behind) in scratch. */
    static char worker_args[256];
    snprintf(worker_args, sizeof worker_args, "--kill-grace-ms 500 --sandbox none --workspace %s",
             scratch);
    teststack_options_t opts = {
        .workers = 1,
        .slots = 2,
        .provider = "command",
        .command = AGENT,
        .worker_args = worker_args,
        .broker_args = "--artifact-max-file-bytes 41943040 --artifact-max-files 8",
    };
    stack = teststack_start(&opts);
    if (!stack)
        return -1;
    json_t *wf = teststack_create_workflow(
        stack, "{\"id\":\"deliver\",\"name\":\"Deliver\",\"phases\":["
               "{\"phase_id\":\"make\",\"name\":\"Make\",\"order\":1,"
               " \"prompt_template\":\"$ARGUMENTS\"},"
               "{\"phase_id\":\"use\",\"name\":\"Use\",\"order\":2,"
               " \"prompt_template\":\"USE\"}]}");
    if (!wf)
        return -1;
    json_decref(wf);
    /* the same phases, with the artifact names the original lets phases declare */
    wf = teststack_create_workflow(
        stack, "{\"id\":\"declared\",\"name\":\"Declared\",\"phases\":["
               "{\"phase_id\":\"make\",\"name\":\"Make\",\"order\":1,"
               " \"prompt_template\":\"$ARGUMENTS\","
               " \"output_artifacts\":[\"report\",\"data\",\"missing\"]},"
               "{\"phase_id\":\"use\",\"name\":\"Use\",\"order\":2,"
               " \"prompt_template\":\"USE\",\"input_artifacts\":[\"report\",\"data\"],"
               " \"output_artifacts\":[\"summary\"]}]}");
    json_decref(wf);
    return wf ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    teststack_destroy(&stack);
    return teststack_remove_dir(scratch);
}

/* The whole file (malloc'd) and its length; NULL when it cannot be read. */
static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *data = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n == cap) {
            cap = cap ? cap * 2 : 65536;
            data = realloc(data, cap);
            assert_non_null(data);
        }
        size_t got = fread(data + n, 1, cap - n, f);
        if (got == 0)
            break;
        n += got;
    }
    fclose(f);
    *len = n;
    return data;
}

static char *run_workflow(const char *workflow, const char *task, const char *want_status)
{
    char body[128];
    snprintf(body, sizeof body, "{\"task\":\"%s\"}", task);
    char *id = teststack_execute(stack, workflow, body);
    assert_non_null(id);
    json_t *final = teststack_wait_terminal(stack, workflow, id, 60000);
    assert_non_null(final);
    if (strcmp(json_string_value(json_object_get(final, "status")), want_status) != 0) {
        teststack_dump_logs(stack);
        fail_msg("execution %s ended %s, not %s", id,
                 json_string_value(json_object_get(final, "status")), want_status);
    }
    json_decref(final);
    return id;
}

static char *run(const char *task, const char *want_status)
{
    return run_workflow("deliver", task, want_status);
}

/* The two files hold the same bytes (both in the scratch dir). */
static void assert_same_file(const char *made, const char *seen)
{
    size_t made_len = 0, seen_len = 0;
    char *a = slurp(made, &made_len);
    char *b = slurp(seen, &seen_len);
    if (!a || !b)
        fail_msg("cannot read %s or %s", made, seen);
    assert_int_equal(made_len, seen_len);
    assert_memory_equal(a, b, made_len);
    free(a);
    free(b);
}

/* GET of one artifact must give the bytes of file (a path in the scratch dir). */
static void assert_served(const char *id, const char *phase, const char *path,
                          const char *file)
{
    size_t len = 0;
    char *want = slurp(file, &len);
    assert_non_null(want);
    http_response_t resp;
    char url[1024];
    snprintf(url, sizeof url, "%s/executions/%s/artifacts/%s/%s", teststack_url(stack), id, phase,
             path);
    /* the kill test's 40 MiB takes its time through a sanitized stack: a deadline
     * for the whole body, not the default 15 s */
    const http_extra_t patient = {.timeout_ms = 180000};
    assert_int_equal(http_request_ex("GET", url, NULL, NULL, &patient, &resp), 0);
    assert_int_equal(resp.status, 200);
    assert_int_equal(resp.body_len, len);
    assert_memory_equal(resp.body, want, len);
    assert_true(resp.etag[0] == '"' && strlen(resp.etag) == 66);
    assert_non_null(strstr(resp.content_disposition, "attachment"));
    http_response_clear(&resp);
    free(want);
}

static json_t *listing(const char *id)
{
    http_response_t resp;
    assert_int_equal(http_get(&resp, "%s/executions/%s/artifacts", teststack_url(stack), id), 0);
    assert_int_equal(resp.status, 200);
    json_t *list = json_incref(json_object_get(resp.json, "artifacts"));
    http_response_clear(&resp);
    assert_non_null(list);
    return list;
}

static const json_t *find(const json_t *list, const char *path)
{
    for (size_t i = 0; i < json_array_size(list); i++)
        if (!strcmp(json_string_value(json_object_get(json_array_get(list, i), "path")), path))
            return json_array_get(list, i);
    return NULL;
}

static void test_files_come_back_byte_for_byte(void **state)
{
    (void)state;
    char *id = run("MAKE", "completed");
    json_t *list = listing(id);
    /* report.md, sub/dir/data.bin, empty.txt; not the link nor the FIFO */
    assert_int_equal(json_array_size(list), 3);
    const json_t *bin = find(list, "sub/dir/data.bin");
    assert_non_null(bin);
    assert_string_equal(json_string_value(json_object_get(bin, "phase_id")), "make");
    assert_int_equal(json_integer_value(json_object_get(bin, "size")), 716804);
    assert_int_equal(json_integer_value(json_object_get(bin, "attempt")), 1);
    assert_string_equal(json_string_value(json_object_get(bin, "media_type")),
                        "application/octet-stream");
    assert_int_equal(strlen(json_string_value(json_object_get(bin, "sha256"))), 64);
    assert_non_null(json_string_value(json_object_get(bin, "created_at")));
    assert_string_equal(json_string_value(json_object_get(find(list, "report.md"), "media_type")),
                        "text/markdown; charset=utf-8");
    assert_null(find(list, "link.txt"));
    json_decref(list);

    char file[512];
    snprintf(file, sizeof file, "%s/%s/make/sub/dir/data.bin", scratch, id);
    assert_served(id, "make", "sub/dir/data.bin", file);
    snprintf(file, sizeof file, "%s/%s/make/report.md", scratch, id);
    assert_served(id, "make", "report.md", file);
    snprintf(file, sizeof file, "%s/%s/make/empty.txt", scratch, id);
    assert_served(id, "make", "empty.txt", file);

    /* the skipped entries are warnings in the phase's events */
    long warnings = teststack_db_count(
        stack, "SELECT 1 FROM events WHERE execution_id = ?1 AND type = 'PhaseWarning'", id,
        NULL);
    assert_int_equal(warnings, 2);
    free(id);
}

/* The "use" phase (USE) copied its artifacts/input: the files "make" left are
 * there under make/, sub-folders, binary content and the empty file included,
 * beside make.md, byte for byte what the agent of "make" wrote. */
static void test_later_phase_gets_them_in_its_workspace(void **state)
{
    (void)state;
    char *id = run("MAKE", "completed");
    static const char *const files[] = {"sub/dir/data.bin", "report.md", "empty.txt"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char made[512], seen[512];
        snprintf(made, sizeof made, "%s/%s/make/%s", scratch, id, files[i]);
        snprintf(seen, sizeof seen, "%s/%s/seen/make/%s", scratch, id, files[i]);
        assert_same_file(made, seen);
    }
    char path[512];
    struct stat st;
    snprintf(path, sizeof path, "%s/%s/seen/make.md", scratch, id);
    assert_int_equal(stat(path, &st), 0);
    /* what was skipped was never stored, so never delivered */
    snprintf(path, sizeof path, "%s/%s/seen/make/link.txt", scratch, id);
    assert_int_not_equal(lstat(path, &st), 0);
    free(id);
}

/* The names a phase declares reach its agent; a declared output nobody made is
 * a warning naming it, and the execution still completes. */
static void test_declared_names_reach_the_agent_and_missing_outputs_warn(void **state)
{
    (void)state;
    char *id = run_workflow("declared", "MAKE", "completed");
    char path[512];
    size_t len = 0;
    snprintf(path, sizeof path, "%s/%s/make.env", scratch, id);
    char *env = slurp(path, &len);
    assert_non_null(env);
    assert_int_equal(len, strlen("\nreport,data,missing\n"));
    assert_memory_equal(env, "\nreport,data,missing\n", len);
    free(env);
    snprintf(path, sizeof path, "%s/%s/use.env", scratch, id);
    env = slurp(path, &len);
    assert_non_null(env);
    assert_int_equal(len, strlen("report,data\nsummary\n"));
    assert_memory_equal(env, "report,data\nsummary\n", len);
    free(env);
    /* "missing" of make and "summary" of use; report.md and data.bin answer to
     * theirs (a name without its extension) */
    const char *sql = "SELECT 1 FROM events WHERE execution_id = ?1 AND type = 'PhaseWarning'"
                      " AND json_extract(data, '$.phase_id') = ?2"
                      " AND json_extract(data, '$.message') LIKE ?3";
    assert_int_equal(teststack_db_count(stack, sql, id, "make", "%'missing'%", NULL), 1);
    assert_int_equal(teststack_db_count(stack, sql, id, "use", "%'summary'%", NULL), 1);
    assert_int_equal(teststack_db_count(stack, sql, id, "make", "%declared output%", NULL), 1);
    assert_int_equal(teststack_db_count(stack, sql, id, "use", "%declared output%", NULL), 1);
    free(id);
}

static void test_tar_holds_them_all(void **state)
{
    (void)state;
    char *id = run("MAKE", "completed");
    http_response_t resp;
    assert_int_equal(http_get(&resp, "%s/executions/%s/artifacts.tar", teststack_url(stack), id),
                     0);
    assert_int_equal(resp.status, 200);
    assert_string_equal(resp.content_type, "application/x-tar");
    char path[512];
    snprintf(path, sizeof path, "%s/%s.tar", scratch, id);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(resp.body, 1, resp.body_len, f), resp.body_len);
    fclose(f);
    http_response_clear(&resp);
    /* tar itself reads it back and the binary file is the one the agent wrote */
    char cmd[1400];
    snprintf(cmd, sizeof cmd,
             "mkdir -p %s/%s.x && tar -xf %s -C %s/%s.x && cmp %s/%s.x/make/sub/dir/data.bin "
             "%s/%s/make/sub/dir/data.bin && cmp %s/%s.x/make/report.md %s/%s/make/report.md",
             scratch, id, path, scratch, id, scratch, id, scratch, id, scratch, id, scratch, id);
    assert_int_equal(system(cmd), 0);
    free(id);
}

static void test_unknown_artifacts_are_404_with_detail(void **state)
{
    (void)state;
    char *id = run("MAKE", "completed");
    http_response_t resp;
    assert_int_equal(http_get(&resp, "%s/executions/%s/artifacts/make/nope.txt",
                              teststack_url(stack), id),
                     0);
    assert_int_equal(resp.status, 404);
    assert_non_null(json_string_value(json_object_get(resp.json, "detail")));
    http_response_clear(&resp);
    assert_int_equal(http_get(&resp, "%s/executions/exec-nothere/artifacts", teststack_url(stack)),
                     0);
    assert_int_equal(resp.status, 404);
    assert_non_null(json_string_value(json_object_get(resp.json, "detail")));
    http_response_clear(&resp);
    free(id);
}

static void assert_failed_with(const char *id, const char *words)
{
    char *error = teststack_db_text(stack, "SELECT error FROM executions WHERE id = ?1", id,
                                    NULL);
    assert_non_null(error);
    if (!strstr(error, words))
        fail_msg("error \"%s\" does not say \"%s\"", error, words);
    free(error);
    json_t *list = listing(id);
    assert_int_equal(json_array_size(list), 0);
    json_decref(list);
    assert_int_equal(teststack_db_count(stack, "SELECT 1 FROM artifacts WHERE exec_num ="
                                               " (SELECT num FROM executions WHERE id = ?1)",
                                        id, NULL),
                     0);
}

static void test_limits_fail_the_phase_clearly(void **state)
{
    (void)state;
    char *id = run("BIG 41943041", "failed");
    assert_failed_with(id, "--artifact-max-file-bytes");
    free(id);
    id = run("MANY 9", "failed");
    assert_failed_with(id, "--artifact-max-files");
    free(id);
}

static void test_worker_killed_while_sending_leaves_nothing_half_stored(void **state)
{
    (void)state;
    char *id = teststack_execute(stack, "deliver", "{\"task\":\"BIG 41943040\"}");
    assert_non_null(id);
    /* chunks of the set are in the database, not yet complete: kill the worker */
    bool sending = false;
    for (wait_t w = wait_begin(60000); !sending && wait_next(&w);)
        sending = teststack_db_count(stack, "SELECT 1 FROM artifacts WHERE complete = 0",
                                     NULL) > 0;
    assert_true(sending);
    teststack_kill_worker(stack, 0, SIGKILL);
    json_t *list = listing(id);
    assert_int_equal(json_array_size(list), 0);
    json_decref(list);
    /* the attempt runs again on another worker and its set is then whole */
    char args[256];
    snprintf(args, sizeof args, "--kill-grace-ms 500 --sandbox none --workspace %s", scratch);
    assert_true(teststack_add_worker(stack, args) > 0);
    json_t *final = teststack_wait_terminal(stack, "deliver", id, 90000);
    assert_non_null(final);
    assert_string_equal(json_string_value(json_object_get(final, "status")), "completed");
    json_decref(final);
    list = listing(id);
    assert_int_equal(json_array_size(list), 1);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(list, 0), "attempt")), 2);
    json_decref(list);
    assert_int_equal(teststack_db_count(stack, "SELECT 1 FROM artifacts WHERE complete = 0",
                                        NULL),
                     0);
    char file[512];
    snprintf(file, sizeof file, "%s/%s/make/big.bin", scratch, id);
    assert_served(id, "make", "big.bin", file);
    free(id);
}

static void test_broker_restart_keeps_them(void **state)
{
    (void)state;
    char *id = run("MAKE", "completed");
    teststack_kill_broker(stack, SIGKILL);
    assert_int_equal(teststack_start_broker(stack), 0);
    assert_int_equal(teststack_wait_health(stack, 1, 30000), 0);
    json_t *list = listing(id);
    assert_int_equal(json_array_size(list), 3);
    json_decref(list);
    char file[512];
    snprintf(file, sizeof file, "%s/%s/make/sub/dir/data.bin", scratch, id);
    assert_served(id, "make", "sub/dir/data.bin", file);
    free(id);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_files_come_back_byte_for_byte),
        cmocka_unit_test(test_later_phase_gets_them_in_its_workspace),
        cmocka_unit_test(test_declared_names_reach_the_agent_and_missing_outputs_warn),
        cmocka_unit_test(test_tar_holds_them_all),
        cmocka_unit_test(test_unknown_artifacts_are_404_with_detail),
        cmocka_unit_test(test_limits_fail_the_phase_clearly),
        cmocka_unit_test(test_worker_killed_while_sending_leaves_nothing_half_stored),
        cmocka_unit_test(test_broker_restart_keeps_them),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
