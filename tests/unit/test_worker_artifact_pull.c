/* Earlier phases' files pulled into a workspace (worker/artifact_pull.c), the
 * declared output names checked against what an agent left
 * (worker_artifacts_check_declared) and told in its environment (worker/env.c),
 * and what an agent left hashed a slice at a time (worker_artifacts_hash). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/base64.h"
#include "common/sha256.h"
#include "worker/artifact_pull.h"
#include "worker/artifacts.h"
#include "worker/env.h"
#include "worker/workspace.h"

typedef struct {
    char dir[256];
} fixture_t;

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof *f);
    assert_non_null(f);
    snprintf(f->dir, sizeof f->dir, "/tmp/syn-pull-test-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    worker_workspace_remove_tree(f->dir);
    free(f);
    return 0;
}

static void hex_of(const void *data, size_t len, char hex[SYN_SHA256_HEX_SIZE])
{
    syn_sha256_t h;
    syn_sha256_init(&h);
    syn_sha256_update(&h, data, len);
    syn_sha256_hex(&h, hex);
}

/* {phase_id, path, size, sha256} of bytes. */
static json_t *entry(const char *phase, const char *path, const void *bytes, size_t len)
{
    char hex[SYN_SHA256_HEX_SIZE];
    hex_of(bytes, len, hex);
    return json_pack("{s:s, s:s, s:I, s:s}", "phase_id", phase, "path", path, "size",
                     (json_int_t)len, "sha256", hex);
}

/* The broker's answer to the pull's request: bytes [offset, offset + chunk) of data. */
static json_t *answer(const json_t *request, const json_t *listed, const unsigned char *data,
                      size_t chunk)
{
    json_int_t offset = json_integer_value(json_object_get(request, "offset"));
    json_int_t size = json_integer_value(json_object_get(listed, "size"));
    size_t n = (size_t)(size - offset) < chunk ? (size_t)(size - offset) : chunk;
    char *text = malloc(syn_base64_encoded_len(n) + 1);
    syn_base64_encode(data + offset, n, text);
    json_t *fields = json_pack("{s:O, s:O, s:O, s:O, s:O, s:s}", "from_phase",
                               json_object_get(request, "from_phase"), "path",
                               json_object_get(request, "path"), "offset",
                               json_object_get(request, "offset"), "size",
                               json_object_get(listed, "size"), "sha256",
                               json_object_get(listed, "sha256"), "data", text);
    free(text);
    return fields;
}

static char *slurp(const char *path, size_t *len)
{
    FILE *file = fopen(path, "rb");
    if (!file)
        return NULL;
    char *data = malloc(1 << 20);
    *len = fread(data, 1, 1 << 20, file);
    fclose(file);
    return data;
}

static void test_files_land_under_their_phase_byte_for_byte(void **state)
{
    fixture_t *f = *state;
    unsigned char bin[3000];
    for (size_t i = 0; i < sizeof bin; i++)
        bin[i] = (unsigned char)(i * 7);
    const char *report = "# Report\n";
    json_t *list = json_pack("[o, o, o, o]", entry("make", "sub/dir/data.bin", bin, sizeof bin),
                             entry("make", "empty.txt", "", 0),
                             entry("a/b", "report.md", report, strlen(report)),
                             entry("a_b", "x.txt", "x", 1));
    char err[256] = "";
    worker_pull_t *pull = worker_pull_new(list, f->dir, err, sizeof err);
    assert_non_null(pull);
    assert_null(worker_pull_error(pull));
    assert_int_equal(worker_pull_file_count(pull), 4);
    /* a phase id that is not a file name is made one; the next that makes the
     * same name gets "-2" */
    assert_int_equal(worker_pull_dir_count(pull), 3);
    assert_string_equal(worker_pull_dir_name(pull, 1), "a_b");
    assert_string_equal(worker_pull_dir_name(pull, 2), "a_b-2");
    const unsigned char *contents[] = {bin, NULL, (const unsigned char *)report,
                                       (const unsigned char *)"x"};
    int answers = 0;
    json_t *request;
    while ((request = worker_pull_request(pull)) != NULL) {
        const char *path = json_string_value(json_object_get(request, "path"));
        size_t i = strcmp(path, "sub/dir/data.bin") == 0 ? 0 : strcmp(path, "report.md") == 0 ? 2 : 3;
        assert_true(strcmp(path, "empty.txt") != 0); /* nothing to ask for an empty file */
        json_t *fields = answer(request, json_array_get(list, i), contents[i], 1000);
        /* the same answer twice: the second is for a position already written */
        assert_true(worker_pull_take(pull, fields));
        assert_false(worker_pull_take(pull, fields));
        json_decref(fields);
        json_decref(request);
        answers++;
    }
    assert_null(worker_pull_error(pull));
    assert_true(worker_pull_done(pull));
    assert_int_equal(answers, 3 + 1 + 1);
    char path[512];
    size_t len;
    snprintf(path, sizeof path, "%s/make/sub/dir/data.bin", f->dir);
    char *data = slurp(path, &len);
    assert_non_null(data);
    assert_int_equal(len, sizeof bin);
    assert_memory_equal(data, bin, sizeof bin);
    free(data);
    snprintf(path, sizeof path, "%s/make/empty.txt", f->dir);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_size, 0);
    snprintf(path, sizeof path, "%s/a_b/report.md", f->dir);
    data = slurp(path, &len);
    assert_non_null(data);
    assert_memory_equal(data, report, strlen(report));
    free(data);
    snprintf(path, sizeof path, "%s/a_b-2/x.txt", f->dir);
    assert_int_equal(stat(path, &st), 0);
    worker_pull_destroy(&pull);
    worker_pull_destroy(&pull);
    json_decref(list);
}

/* One file pulled with the given answer to its first request; the pull's error. */
static char *pull_once(fixture_t *f, json_t *list, json_t *(*tamper)(json_t *fields))
{
    char err[256] = "", dir[300];
    snprintf(dir, sizeof dir, "%s/XXXXXX", f->dir); /* a fresh artifacts/input each */
    assert_non_null(mkdtemp(dir));
    worker_pull_t *pull = worker_pull_new(list, dir, err, sizeof err);
    assert_non_null(pull);
    json_t *request = worker_pull_request(pull);
    if (request) {
        json_t *fields = tamper(answer(request, json_array_get(list, 0),
                                       (const unsigned char *)"hello", 1000));
        assert_true(worker_pull_take(pull, fields));
        json_decref(fields);
        json_decref(request);
    }
    assert_false(worker_pull_done(pull));
    assert_null(worker_pull_request(pull));
    char *error = worker_pull_error(pull) ? strdup(worker_pull_error(pull)) : NULL;
    worker_pull_destroy(&pull);
    return error;
}

static json_t *with_error(json_t *fields)
{
    json_object_set_new(fields, "error", json_string("Artifact f.txt of phase p not found"));
    json_object_set_new(fields, "data", json_string(""));
    return fields;
}

static json_t *other_bytes(json_t *fields)
{
    json_object_set_new(fields, "data", json_string("aGVsbE8=")); /* "hellO" */
    return fields;
}

static json_t *too_many(json_t *fields)
{
    json_object_set_new(fields, "data", json_string("aGVsbG8gdGhlcmU=")); /* "hello there" */
    return fields;
}

static json_t *not_base64(json_t *fields)
{
    json_object_set_new(fields, "data", json_string("***"));
    return fields;
}

static json_t *other_file(json_t *fields)
{
    json_object_set_new(fields, "size", json_integer(6));
    return fields;
}

static void assert_says(char *error, const char *words)
{
    assert_non_null(error);
    if (!strstr(error, words))
        fail_msg("\"%s\" does not say \"%s\"", error, words);
    free(error);
}

static void test_bad_answers_fail_the_pull_with_a_reason(void **state)
{
    fixture_t *f = *state;
    json_t *list = json_pack("[o]", entry("p", "f.txt", "hello", 5));
    assert_says(pull_once(f, list, with_error), "cannot get artifact f.txt of phase p: Artifact");
    assert_says(pull_once(f, list, other_bytes), "does not match its SHA-256");
    assert_says(pull_once(f, list, too_many), "too many");
    assert_says(pull_once(f, list, not_base64), "not base64");
    assert_says(pull_once(f, list, other_file), "not the one listed");
    json_decref(list);
    /* a file already there (the same path twice) is not overwritten */
    list = json_pack("[o, o]", entry("q", "same.txt", "", 0), entry("q", "same.txt", "", 0));
    char err[256] = "";
    worker_pull_t *pull = worker_pull_new(list, f->dir, err, sizeof err);
    assert_non_null(pull);
    assert_non_null(strstr(worker_pull_error(pull), "cannot write artifacts/input/q/same.txt"));
    worker_pull_destroy(&pull);
    json_decref(list);
}

static void test_listings_it_cannot_take_fail_at_once(void **state)
{
    fixture_t *f = *state;
    static const char *const paths[] = {"../escape", "/etc/passwd", "a//b", "a/./b", "a\\b", ""};
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        json_t *list = json_pack("[o]", entry("p", paths[i], "x", 1));
        char err[256] = "";
        worker_pull_t *pull = worker_pull_new(list, f->dir, err, sizeof err);
        assert_non_null(pull);
        assert_non_null(strstr(worker_pull_error(pull), "is not a plain relative path"));
        assert_null(worker_pull_request(pull));
        worker_pull_destroy(&pull);
        json_decref(list);
    }
    json_t *list = json_pack("[{s:s, s:s, s:i, s:s}]", "phase_id", "p", "path", "f", "size", 1,
                             "sha256", "ABC");
    char err[256] = "";
    worker_pull_t *pull = worker_pull_new(list, f->dir, err, sizeof err);
    assert_non_null(strstr(worker_pull_error(pull), "64 lowercase hex digits"));
    worker_pull_destroy(&pull);
    json_decref(list);
    /* nothing was written outside */
    struct stat st;
    char path[512];
    snprintf(path, sizeof path, "%s/../escape", f->dir);
    assert_int_not_equal(stat(path, &st), 0);
}

/* A workspace whose artifacts/output holds the given files (empty). */
static worker_artifacts_t *collected(fixture_t *f, const char *const *files, json_t **warnings)
{
    char path[512];
    snprintf(path, sizeof path, "%s/ws", f->dir);
    mkdir(path, 0700);
    snprintf(path, sizeof path, "%s/ws/artifacts", f->dir);
    mkdir(path, 0700);
    snprintf(path, sizeof path, "%s/ws/artifacts/output", f->dir);
    mkdir(path, 0700);
    snprintf(path, sizeof path, "%s/ws/artifacts/output/sub", f->dir);
    mkdir(path, 0700);
    for (size_t i = 0; files[i]; i++) {
        snprintf(path, sizeof path, "%s/ws/artifacts/output/%s", f->dir, files[i]);
        FILE *file = fopen(path, "w");
        assert_non_null(file);
        fclose(file);
    }
    snprintf(path, sizeof path, "%s/ws", f->dir);
    char err[256];
    worker_artifacts_t *set = worker_artifacts_collect(path, warnings, err, sizeof err);
    assert_string_equal(err, "");
    return set;
}

static void test_declared_outputs_without_a_file_are_warnings(void **state)
{
    fixture_t *f = *state;
    static const char *const files[] = {"report.md", "sub/data.tar.gz", "notes", NULL};
    json_t *warnings = NULL;
    worker_artifacts_t *set = collected(f, files, &warnings);
    assert_non_null(set);
    assert_null(warnings);
    json_t *declared = json_pack("[s, s, s, s, s, s, s]", "report", "data", "data.tar", "notes",
                                 "sub/data", "report.md", "plan");
    worker_artifacts_check_declared(set, declared, &warnings);
    /* only "plan" has no file */
    assert_int_equal(json_array_size(warnings), 1);
    assert_string_equal(json_string_value(json_array_get(warnings, 0)),
                        "declared output artifact 'plan' was not produced: no file named plan.* "
                        "in artifacts/output");
    json_decref(warnings);
    warnings = NULL;
    /* "rep" is not "report", "sub" is a folder, not a file */
    json_t *near = json_pack("[s, s, s]", "rep", "sub", "md");
    worker_artifacts_check_declared(set, near, &warnings);
    assert_int_equal(json_array_size(warnings), 3);
    json_decref(warnings);
    warnings = NULL;
    /* nothing left at all: every declared name is missing; none declared, no warning */
    worker_artifacts_check_declared(NULL, declared, &warnings);
    assert_int_equal(json_array_size(warnings), 7);
    json_decref(warnings);
    warnings = NULL;
    worker_artifacts_check_declared(set, NULL, &warnings);
    assert_null(warnings);
    json_decref(near);
    json_decref(declared);
    worker_artifacts_destroy(&set);
}

/* Writes len bytes of a pattern to path, their SHA-256 in hex. */
static void write_pattern(const char *path, size_t len, char hex[SYN_SHA256_HEX_SIZE])
{
    unsigned char *bytes = malloc(len);
    assert_non_null(bytes);
    for (size_t i = 0; i < len; i++)
        bytes[i] = (unsigned char)(i * 7 + i / 251);
    FILE *file = fopen(path, "w");
    assert_non_null(file);
    assert_int_equal(fwrite(bytes, 1, len, file), len);
    fclose(file);
    hex_of(bytes, len, hex);
    free(bytes);
}

static void test_files_are_hashed_a_slice_at_a_time(void **state)
{
    fixture_t *f = *state;
    static const char *const files[] = {"report.bin", "gone", NULL};
    json_t *warnings = NULL;
    worker_artifacts_t *set = collected(f, files, &warnings);
    assert_non_null(set);
    char path[512], big[SYN_SHA256_HEX_SIZE], small[SYN_SHA256_HEX_SIZE],
        empty[SYN_SHA256_HEX_SIZE];
    /* written after the listing: what is hashed is what is there when hashed */
    snprintf(path, sizeof path, "%s/ws-artifacts/output/report.bin", f->dir);
    write_pattern(path, 300000, big);
    snprintf(path, sizeof path, "%s/ws-artifacts/output/gone", f->dir);
    assert_int_equal(unlink(path), 0);
    hex_of("", 0, empty);
    /* one step a call whatever the budget (an open counts as 4 KiB): the open,
     * five 64 KiB reads for 300,000 bytes, then the end of the file and the file
     * gone, dropped on the way */
    int calls = 0;
    while (!worker_artifacts_hash(set, 1, INT64_MAX, &warnings))
        calls++;
    assert_int_equal(calls, 6);
    assert_int_equal(worker_artifacts_count(set), 1);
    assert_string_equal(worker_artifacts_path(set, 0), "report.bin");
    assert_int_equal(worker_artifacts_size(set, 0), 300000);
    assert_string_equal(worker_artifacts_sha256(set, 0), big);
    assert_int_equal(json_array_size(warnings), 1);
    assert_non_null(strstr(json_string_value(json_array_get(warnings, 0)),
                           "artifacts/output/gone skipped"));
    json_decref(warnings);
    warnings = NULL;
    worker_artifacts_destroy(&set);

    /* a budget of time: already over, still one read a call; a generous one
     * hashes them all in one call */
    static const char *const two[] = {"a", "sub/b", NULL};
    set = collected(f, two, &warnings);
    snprintf(path, sizeof path, "%s/ws-artifacts/output/sub/b", f->dir);
    write_pattern(path, 1000, small);
    assert_true(worker_artifacts_hash(set, SIZE_MAX, INT64_MAX, &warnings));
    assert_null(warnings);
    assert_string_equal(worker_artifacts_sha256(set, 0), empty);
    assert_int_equal(worker_artifacts_size(set, 0), 0);
    assert_string_equal(worker_artifacts_sha256(set, 1), small);
    json_t *manifest = worker_artifacts_manifest(set);
    assert_int_equal(json_array_size(manifest), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(manifest, 1), "path")),
                        "sub/b");
    json_decref(manifest);
    worker_artifacts_destroy(&set);
}

static void test_declared_names_are_in_the_environment(void **state)
{
    (void)state;
    setenv("SYN_OUTPUT_ARTIFACTS", "from-the-worker", 1);
    json_t *reads = json_pack("[s, s]", "plan", "notes");
    json_t *writes = json_pack("[s]", "report");
    worker_job_t job = {.execution_id = "e", .workflow_id = "w", .phase_id = "p", .attempt = 1,
                        .input_artifacts = reads, .output_artifacts = writes};
    char **env = worker_env_build(&job, "/tmp", NULL, NULL, NULL);
    assert_non_null(env);
    assert_string_equal(worker_env_get(env, "SYN_INPUT_ARTIFACTS"), "plan,notes");
    /* the job's own value wins over an inherited one */
    assert_string_equal(worker_env_get(env, "SYN_OUTPUT_ARTIFACTS"), "report");
    worker_env_free(env);
    worker_job_t none = {.execution_id = "e", .workflow_id = "w", .phase_id = "p"};
    env = worker_env_build(&none, "/tmp", NULL, NULL, NULL);
    assert_string_equal(worker_env_get(env, "SYN_INPUT_ARTIFACTS"), "");
    assert_string_equal(worker_env_get(env, "SYN_OUTPUT_ARTIFACTS"), "");
    worker_env_free(env);
    unsetenv("SYN_OUTPUT_ARTIFACTS");
    json_decref(reads);
    json_decref(writes);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_files_land_under_their_phase_byte_for_byte, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_bad_answers_fail_the_pull_with_a_reason, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_listings_it_cannot_take_fail_at_once, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_declared_outputs_without_a_file_are_warnings, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_files_are_hashed_a_slice_at_a_time, setup, teardown),
        cmocka_unit_test(test_declared_names_are_in_the_environment),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
