/* A PostgreSQL store's lost connection (issue 21): the cluster stopped
 * (pg_ctl stop -m fast) and started again while executions run. The broker
 * treats the loss as it treats a full disk — the turn rolled back, new work
 * refused with 503, reads answered — reconnects with back-off, rebuilds its
 * state from the store, and every execution completes, none twice; its log
 * says when the connection was lost and when it was made again.
 *
 * And a server that takes the connection and never answers (a hung server, a
 * dead host behind a live route: the postmaster SIGSTOPped) costs the broker's
 * loop nothing: the reconnection waits on its socket with the loop's own, so
 * reads and refusals are answered all the while it is pending. */
#include "tests/support/http.h"
#include "tests/support/pg_cluster.h"
#include "tests/support/teststack.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define EXECUTIONS 40

static teststack_t *stack;

static long long pg_count(const char *sql)
{
    return teststack_db_int(stack, sql, NULL);
}

static int completed(char **ids)
{
    int n = 0;
    for (int i = 0; i < EXECUTIONS; i++) {
        http_response_t r;
        if (http_get(&r, "%s/workflows/two/executions/%s", teststack_url(stack), ids[i]) == 0 &&
            r.status == 200) {
            const char *status = json_string_value(json_object_get(r.json, "status"));
            n += status && strcmp(status, "completed") == 0;
        }
        http_response_clear(&r);
    }
    return n;
}

static void test_cluster_restart_under_load(void **state)
{
    (void)state;
    setenv("SYN_TEST_STORE", "postgresql", 1);
    /* a restarted store gives the workers one liveness window to come back:
     * 10 heartbeats, the machine may be loaded; and a lease longer than the
     * outage (a broker that cannot renew for a whole lease stops, for a standby
     * to take over: test_broker_standby), so this proves the reconnect */
    teststack_options_t opts = {.workers = 2,
                                .slots = 4,
                                .mock_delay_ms = 200,
                                .broker_args = "--liveness 10 --lease-ms 60000"};
    stack = teststack_start(&opts);
    assert_non_null(stack);
    assert_true(*teststack_store(stack));
    json_t *wf = teststack_create_workflow(
        stack, "{\"id\":\"two\",\"name\":\"Two\",\"phases\":["
               "{\"phase_id\":\"a\",\"name\":\"A\",\"order\":1,\"prompt_template\":\"a\"},"
               "{\"phase_id\":\"b\",\"name\":\"B\",\"order\":2,\"prompt_template\":\"b\"}]}");
    assert_non_null(wf);
    json_decref(wf);
    char *ids[EXECUTIONS];
    for (int i = 0; i < EXECUTIONS; i++) {
        ids[i] = teststack_execute(stack, "two", "{}");
        assert_non_null(ids[i]);
    }
    WAIT_FOR(completed(ids) >= 3, 60000);

    /* the server goes away in the middle of the work */
    assert_int_equal(pg_cluster_stop_server(), 0);
    WAIT_FOR(teststack_log_has(stack, "broker", "connection to PostgreSQL lost"), 30000);
    http_response_t r;
    assert_int_equal(http_post(&r, "{}", "%s/workflows/two/execute", teststack_url(stack)), 0);
    assert_int_equal(r.status, 503);
    assert_non_null(strstr(r.body, "connection to PostgreSQL lost"));
    http_response_clear(&r);
    assert_int_equal(http_get(&r, "%s/workflows/two/executions/%s", teststack_url(stack), ids[0]),
                     0);
    assert_int_equal(r.status, 200); /* reads, from memory */
    http_response_clear(&r);
    print_message("completed while the server was away: %d of %d\n", completed(ids), EXECUTIONS);

    /* and comes back */
    char err[256];
    assert_int_equal(pg_cluster_start_server(err, sizeof err), 0);
    WAIT_FOR(teststack_log_has(stack, "broker", "postgresql connection made again"), 60000);
    for (int i = 0; i < EXECUTIONS; i++) {
        json_t *end = teststack_wait_terminal(stack, "two", ids[i], 120000);
        assert_non_null(end);
        assert_string_equal(json_string_value(json_object_get(end, "status")), "completed");
        json_decref(end);
        free(ids[i]);
    }
    assert_true(teststack_log_has(stack, "broker", "storage writable again"));
    /* each once: one ExecutionCompleted each, no phase completed twice */
    assert_int_equal(pg_count("SELECT count(*) FROM executions WHERE status = 'completed'"),
                     EXECUTIONS);
    assert_int_equal(pg_count("SELECT count(*) FROM events WHERE type = 'ExecutionCompleted'"),
                     EXECUTIONS);
    assert_int_equal(pg_count("SELECT count(DISTINCT execution_id) FROM events"
                              " WHERE type = 'ExecutionCompleted'"),
                     EXECUTIONS);
    assert_int_equal(pg_count("SELECT count(*) FROM (SELECT exec_num, phase_id FROM attempts"
                              " WHERE status = 'completed' GROUP BY 1, 2 HAVING count(*) > 1) t"),
                     0);
}

/* The detail of a refused POST (the storage mode's reason), or "" (malloc'd). */
static char *refusal(void)
{
    http_response_t r;
    char *detail = NULL;
    if (http_post(&r, "{}", "%s/workflows/one/execute", teststack_url(stack)) == 0 &&
        r.status == 503 && r.body)
        detail = strdup(r.body);
    http_response_clear(&r);
    return detail ? detail : strdup("");
}

static bool refused_with(const char *text)
{
    char *detail = refusal();
    bool has = strstr(detail, text) != NULL;
    free(detail);
    return has;
}

static void test_reconnect_to_a_hung_server_never_blocks_the_loop(void **state)
{
    (void)state;
    setenv("SYN_TEST_STORE", "postgresql", 1);
    /* a lease longer than the test's outage, as above: this is about the loop */
    teststack_options_t opts = {.workers = 1,
                                .slots = 2,
                                .mock_delay_ms = 50,
                                .broker_args = "--liveness 10 --lease-ms 120000"};
    stack = teststack_start(&opts);
    assert_non_null(stack);
    json_t *wf = teststack_create_workflow(
        stack, "{\"id\":\"one\",\"name\":\"One\",\"phases\":["
               "{\"phase_id\":\"a\",\"name\":\"A\",\"order\":1,\"prompt_template\":\"a\"}]}");
    assert_non_null(wf);
    json_decref(wf);
    char *before = teststack_execute(stack, "one", "{}");
    assert_non_null(before);
    json_t *end = teststack_wait_terminal(stack, "one", before, 60000);
    assert_non_null(end);
    json_decref(end);

    /* the broker's session ends and the server stops answering: the next
     * write finds the connection lost, and the reconnection hangs */
    assert_int_equal(pg_cluster_hang_server(teststack_store(stack)), 0);
    bool lost = false, connecting = false;
    WAIT_FOR((lost = refused_with("connection to PostgreSQL lost")), 30000);
    assert_true(lost);
    /* the reconnection under way (refusals say so): it hangs on the server */
    WAIT_FOR((connecting = refused_with("(connecting again)")), 30000);
    assert_true(connecting);
    /* A blocking connect would hold the loop here until the server answers:
     * every request below would time out instead. */
    for (int i = 0; i < 5; i++) {
        http_response_t r;
        assert_int_equal(
            http_get(&r, "%s/workflows/one/executions/%s", teststack_url(stack), before), 0);
        assert_int_equal(r.status, 200); /* a read, from memory */
        assert_string_equal(json_string_value(json_object_get(r.json, "status")), "completed");
        http_response_clear(&r);
        assert_int_equal(http_get(&r, "%s/workers", teststack_url(stack)), 0);
        assert_int_equal(r.status, 200);
        http_response_clear(&r);
    }
    char *detail = refusal(); /* still lost, and said so at once */
    print_message("while the server hangs: %s\n", detail);
    assert_non_null(strstr(detail, "connection to PostgreSQL lost"));
    free(detail);

    /* the server answers again: the pending attempt (or the next) connects */
    assert_int_equal(pg_cluster_wake_server(), 0);
    WAIT_FOR(teststack_log_has(stack, "broker", "storage writable again"), 60000);
    assert_true(teststack_log_has(stack, "broker", "postgresql connection made again"));
    assert_true(teststack_log_has(stack, "broker", "storage writable again"));
    char *after = NULL;
    WAIT_FOR((after = teststack_execute(stack, "one", "{}")) != NULL, 30000);
    assert_non_null(after);
    end = teststack_wait_terminal(stack, "one", after, 60000);
    assert_non_null(end);
    assert_string_equal(json_string_value(json_object_get(end, "status")), "completed");
    json_decref(end);
    free(before);
    free(after);
}

static int teardown(void **state)
{
    (void)state;
    pg_cluster_wake_server(); /* a failed test's hung server, before the stack stops */
    teststack_destroy(&stack);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_cluster_restart_under_load, teardown),
        cmocka_unit_test_teardown(test_reconnect_to_a_hung_server_never_blocks_the_loop,
                                  teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
