/* `syn-broker --migrate-from sqlite:DIR --store postgresql://...` end to end
 * (issue 21): a SQLite store filled through the real stack — executions
 * completed, failed and one still running, events, costs (tokens), artifacts
 * with their chunks, an Idempotency-Key, an operator message — is copied into
 * an empty PostgreSQL database of a private cluster and verified; a broker
 * started on PostgreSQL then answers every API read as the SQLite one did,
 * takes back the running execution from its worker and finishes it (its
 * phase not run twice), and the key still answers the same execution. The
 * tool refuses a database that is not empty, and a copy altered on its way
 * (the SYN_TEST_MIGRATE_TAMPER hook) fails verification, naming the table and
 * keeping nothing. */
#include "tests/support/http.h"
#include "tests/support/pg_cluster.h"
#include "tests/support/teststack.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#define AGENT SYN_SOURCE_DIR "/tests/integration/fixtures/migrate_agent.sh"
#define NREADS 32

static char scratch[] = "/tmp/syn-migrate-XXXXXX";
static teststack_t *stack;

/* Runs syn-broker --migrate-from on the stack's data into uri: its exit code,
 * and its output (stdout and stderr) in out. */
static int migrate(teststack_t *stack, const char *uri, const char *tamper, char *out,
                   size_t outlen)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "%s%s%s '%s' --migrate-from 'sqlite:%s/var' --store '%s' 2>&1",
             tamper ? "SYN_TEST_MIGRATE_TAMPER=" : "", tamper ? tamper : "", tamper ? " " : "",
             SYN_BIN_DIR "/syn-broker", teststack_dir(stack), uri);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t used = 0;
    size_t n;
    while (used + 1 < outlen && (n = fread(out + used, 1, outlen - used - 1, p)) > 0)
        used += n;
    out[used] = '\0';
    int status = pclose(p);
    print_message("--- migrate%s%s ---\n%s", tamper ? " tampering with " : "", tamper ? tamper : "",
                  out);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static long long pg_count(const char *uri, const char *sql)
{
    return pg_cluster_query_int(uri, sql);
}

static char *get_body(teststack_t *stack, const char *path)
{
    http_response_t r;
    assert_int_equal(http_get(&r, "%s%s", teststack_url(stack), path), 0);
    if (r.status != 200)
        fail_msg("GET %s: %ld %s", path, r.status, r.body ? r.body : "");
    char *body = malloc(r.body_len + 1);
    memcpy(body, r.body, r.body_len);
    body[r.body_len] = '\0';
    http_response_clear(&r);
    return body;
}

static char *run_to_end(teststack_t *stack, const char *workflow, const char *body,
                        const char *key, const char *want)
{
    char url[256], header[128];
    snprintf(url, sizeof url, "%s/workflows/%s/execute", teststack_url(stack), workflow);
    snprintf(header, sizeof header, "Idempotency-Key: %s", key ? key : "");
    http_extra_t extra = {.header = key ? header : NULL};
    http_response_t r;
    assert_int_equal(http_request_ex("POST", url, body, NULL, &extra, &r), 0);
    assert_int_equal(r.status, 200);
    char *id = strdup(json_string_value(json_object_get(r.json, "execution_id")));
    http_response_clear(&r);
    json_t *end = teststack_wait_terminal(stack, workflow, id, 60000);
    assert_non_null(end);
    assert_string_equal(json_string_value(json_object_get(end, "status")), want);
    json_decref(end);
    return id;
}

static int count_lines(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    int n = 0;
    for (int c; (c = fgetc(f)) != EOF;)
        n += c == '\n';
    fclose(f);
    return n;
}

static void test_migrated_store_serves_the_same_and_resumes(void **state)
{
    (void)state;
    assert_non_null(mkdtemp(scratch));
    setenv("SYN_TEST_DIR", scratch, 1);
    /* the databases made first: the cluster's start (initdb) is no part of the
     * broker's outage, which must stay within the window a restarted broker
     * gives its workers to come back (--liveness heartbeats: 10 s here, the
     * machine may be loaded) */
    char uri[200], tampered[200], err[256], out[16384];
    assert_int_equal(pg_cluster_new_database(uri, sizeof uri, err, sizeof err), 0);
    assert_int_equal(pg_cluster_new_database(tampered, sizeof tampered, err, sizeof err), 0);
    teststack_options_t opts = {.workers = 1, .slots = 4, .broker_args = "--liveness 10"};
    stack = teststack_start(&opts);
    assert_non_null(stack);
    json_t *wf = teststack_create_workflow(
        stack, "{\"id\":\"two\",\"name\":\"Two\",\"phases\":["
               "{\"phase_id\":\"first\",\"name\":\"First\",\"order\":1,"
               " \"prompt_template\":\"$ARGUMENTS\"},"
               "{\"phase_id\":\"second\",\"name\":\"Second\",\"order\":2,"
               " \"prompt_template\":\"SECOND\"}]}");
    assert_non_null(wf);
    json_decref(wf);

    /* the mock worker: executions with tokens (costs), one failed, one keyed */
    char *ids[8];
    int nids = 0;
    ids[nids++] = run_to_end(stack, "two", "{\"task\":\"#mock tokens 1200 300\"}", NULL,
                             "completed");
    ids[nids++] = run_to_end(stack, "two", "{\"task\":\"#mock tokens 40 7\"}", "mig-key-1",
                             "completed");
    ids[nids++] = run_to_end(stack, "two", "{\"task\":\"#mock fail boom\"}", NULL, "failed");

    /* a worker of the command provider: artifacts, and one execution held running */
    assert_int_equal(teststack_stop_worker(stack, 0, SIGTERM, 20000), 0);
    char extra[512];
    snprintf(extra, sizeof extra,
             "--provider command --command %s --sandbox none --kill-grace-ms 500 --workspace %s",
             AGENT, scratch);
    assert_true(teststack_add_worker(stack, extra) >= 0);
    ids[nids++] = run_to_end(stack, "two", "{\"task\":\"MAKE\"}", NULL, "completed");
    char *held = teststack_execute(stack, "two", "{\"task\":\"HOLD\"}");
    assert_non_null(held);
    char path[512];
    snprintf(path, sizeof path, "%s/held.%s", scratch, held);
    WAIT_FOR(access(path, F_OK) == 0, 30000);
    http_response_t r;
    assert_int_equal(http_post(&r, "{\"message\":\"carried over\"}", "%s/executions/%s/inject",
                               teststack_url(stack), held),
                     0);
    assert_int_equal(r.status, 200);
    http_response_clear(&r);

    /* what SQLite's broker answers */
    char reads[NREADS][160];
    int nreads = 0;
    for (int i = 0; i < nids; i++) {
        snprintf(reads[nreads++], sizeof reads[0], "/executions/%s", ids[i]);
        snprintf(reads[nreads++], sizeof reads[0], "/executions/%s/artifacts", ids[i]);
        snprintf(reads[nreads++], sizeof reads[0], "/costs/executions/%s", ids[i]);
    }
    snprintf(reads[nreads++], sizeof reads[0], "/executions/%s/artifacts/first/sub/data.bin",
             ids[3]);
    snprintf(reads[nreads++], sizeof reads[0], "/executions/%s/artifacts/first/report.md", ids[3]);
    snprintf(reads[nreads++], sizeof reads[0], "/costs/sessions?execution_id=%s", ids[0]);
    snprintf(reads[nreads++], sizeof reads[0], "/workflows/two");
    char *before[NREADS];
    for (int i = 0; i < nreads; i++)
        before[i] = get_body(stack, reads[i]);
    assert_non_null(strstr(before[0], "\"completed\""));
    assert_non_null(strstr(before[3 * 3 + 1], "data.bin")); /* ids[3]'s artifacts */

    /* the broker stopped, its store migrated */
    assert_int_equal(teststack_stop_broker(stack, SIGTERM, 20000), 0);
    assert_int_equal(migrate(stack, uri, NULL, out, sizeof out), 0);
    assert_non_null(strstr(out, "counts and checksums equal"));
    assert_non_null(strstr(out, "artifact_chunks"));

    /* the broker on PostgreSQL answers the same */
    teststack_use_store(stack, uri);
    assert_int_equal(teststack_start_broker(stack), 0);
    assert_int_equal(teststack_wait_health(stack, 1, 30000), 0);
    for (int i = 0; i < nreads; i++) {
        char *after = get_body(stack, reads[i]);
        if (strcmp(before[i], after) != 0)
            fail_msg("GET %s differs after the migration:\nsqlite:     %.600s\npostgresql: %.600s",
                     reads[i], before[i], after);
        free(after);
        free(before[i]);
    }
    assert_int_equal(pg_count(uri, "SELECT count(*) FROM executions"), nids + 1);
    assert_true(pg_count(uri, "SELECT count(*) FROM artifact_chunks") > 0);
    assert_int_equal(pg_count(uri, "SELECT count(*) FROM operator_messages"), 1);
    assert_int_equal(pg_count(uri, "SELECT count(*) FROM idempotency_keys"), 1);

    /* not twice into one database */
    assert_int_equal(migrate(stack, uri, NULL, out, sizeof out), 1);
    assert_non_null(strstr(out, "is not empty (table "));

    /* a copy altered on its way is caught, named, and nothing kept (the
     * SQLite file is no broker's now: the copy reads it as before) */
    assert_int_equal(migrate(stack, tampered, "events", out, sizeof out), 1);
    assert_non_null(strstr(out, "verification failed: table events differs"));
    assert_int_equal(pg_count(tampered, "SELECT count(*) FROM events"), 0);
    assert_int_equal(pg_count(tampered, "SELECT count(*) FROM executions"), 0);

    /* the key answers the execution it made */
    char url[256];
    snprintf(url, sizeof url, "%s/workflows/two/execute", teststack_url(stack));
    http_extra_t keyed = {.header = "Idempotency-Key: mig-key-1"};
    assert_int_equal(http_request_ex("POST", url, "{\"task\":\"#mock tokens 40 7\"}", NULL, &keyed,
                                     &r),
                     0);
    assert_int_equal(r.status, 200);
    assert_string_equal(json_string_value(json_object_get(r.json, "execution_id")), ids[1]);
    http_response_clear(&r);

    /* the running execution goes on where it was */
    snprintf(path, sizeof path, "%s/release", scratch);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fclose(f);
    json_t *end = teststack_wait_terminal(stack, "two", held, 60000);
    assert_non_null(end);
    assert_string_equal(json_string_value(json_object_get(end, "status")), "completed");
    json_decref(end);
    snprintf(path, sizeof path, "%s/starts.%s.first", scratch, held);
    assert_int_equal(count_lines(path), 1);
    assert_int_equal(pg_count(uri, "SELECT count(*) FROM executions WHERE status = 'completed'"),
                     nids);

    for (int i = 0; i < nids; i++)
        free(ids[i]);
    free(held);
}

static int teardown(void **state)
{
    (void)state;
    teststack_destroy(&stack);
    return *scratch && scratch[strlen(scratch) - 1] != 'X' ? teststack_remove_dir(scratch) : 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_migrated_store_serves_the_same_and_resumes, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
