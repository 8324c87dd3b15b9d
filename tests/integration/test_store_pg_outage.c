/* A PostgreSQL store's lost connection (issue 21): the cluster stopped
 * (pg_ctl stop -m fast) and started again while executions run. The broker
 * treats the loss as it treats a full disk — the turn rolled back, new work
 * refused with 503, reads answered — reconnects with back-off, rebuilds its
 * state from the store, and every execution completes, none twice; its log
 * says when the connection was lost and when it was made again. */
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
    return pg_cluster_query_int(teststack_store(stack), sql);
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

static int teardown(void **state)
{
    (void)state;
    teststack_destroy(&stack);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_cluster_restart_under_load, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
