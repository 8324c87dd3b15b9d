/* A broker that takes over at another address (issue 21): the gateway and the
 * workers are given two broker sites, A and B (--broker A,B, --events A,B); the
 * broker at A is killed with SIGKILL while executions run and a broker over the
 * same data dir starts at B (on one host, a faithful failover: the same state at
 * another address); then back the other way. Every accepted execution completes
 * exactly once, the workers' running attempts are adopted at the new address (none
 * runs twice) and the gateway answers through it. Lines starting "measure:" give
 * how long the clients took to find the new broker (docs/operations.md). */
#include "tests/support/exactly_once.h"
#include "tests/support/http.h"
#include "tests/support/teststack.h"

#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#define WORKERS 3
#define PER_ROUND 40

static teststack_t *stack;

static char *submit(int i)
{
    char body[64];
    snprintf(body, sizeof body, "{\"task\":\"job %d\"}", i);
    return teststack_execute(stack, "failover", body);
}

/* Phases of the 'failover' executions matching where_sql. */
static long count_phases(const char *where_sql)
{
    char sql[256];
    snprintf(sql, sizeof sql,
             "SELECT 1 FROM phases p JOIN executions e ON e.id=p.execution_id"
             " WHERE e.workflow_id='failover' AND %s",
             where_sql);
    return teststack_db_count(stack, sql, NULL);
}

/* Kills the broker at `from` with work running (among it a phase long enough to
 * outlast the takeover: its worker re-registers it at `to`), starts one at `to`, and
 * waits until the gateway answers through it with every worker registered there.
 * Returns the long execution's id. */
static char *take_over(int from, int to)
{
    char *long_id = teststack_execute(stack, "long", "{}");
    assert_non_null(long_id);
    WAIT_FOR(teststack_db_count(stack, "SELECT 1 FROM phases WHERE execution_id=?1 AND "
                                       "status='running'", long_id, NULL) == 1 &&
                 count_phases("p.status='running'") > 0,
             20000);
    teststack_kill_broker_at(stack, from, SIGKILL);
    const char *log = to == 0 ? "broker.log" : "broker-b.log";
    long listening_before = exactly_once_log_lines(stack, log, "listening clients=");
    assert_int_equal(teststack_start_broker_at(stack, to), 0);
    WAIT_FOR(exactly_once_log_lines(stack, log, "listening clients=") > listening_before, 20000);
    long long bound = teststack_now_ms();
    assert_int_equal(teststack_wait_health(stack, WORKERS, 20000), 0);
    long long healthy_ms = teststack_now_ms() - bound;
    printf("measure: takeover site=%d->%d from_bound_to_gateway_and_%d_workers_ms=%lld\n", from,
           to, WORKERS, healthy_ms);
    return long_id;
}

/* The long execution ran its phase once, adopted by the new broker, not run again. */
static void expect_adopted(char *long_id)
{
    json_t *final = teststack_wait_terminal(stack, "long", long_id, 60000);
    assert_non_null(final);
    assert_string_equal(json_string_value(json_object_get(final, "status")), "completed");
    json_decref(final);
    assert_int_equal(teststack_db_count(stack, "SELECT 1 FROM attempts WHERE execution_id=?1",
                                        long_id, NULL),
                     1);
    free(long_id);
}

static void wait_all_completed(char **ids, int count)
{
    for (int i = 0; i < count; i++) {
        assert_non_null(ids[i]);
        json_t *final = teststack_wait_terminal(stack, "failover", ids[i], 60000);
        assert_non_null(final);
        assert_string_equal(json_string_value(json_object_get(final, "status")), "completed");
        json_decref(final);
    }
}

static void test_clients_follow_the_broker_to_another_address_and_back(void **state)
{
    (void)state;
    static char *ids[2 * PER_ROUND];
    for (int i = 0; i < PER_ROUND; i++)
        ids[i] = submit(i);
    char *long_a = take_over(0, 1);
    /* The gateway answers through B: the broker at A is dead. */
    assert_int_equal(teststack_broker_pid_at(stack, 0), 0);
    wait_all_completed(ids, PER_ROUND);
    for (int i = PER_ROUND; i < 2 * PER_ROUND; i++)
        ids[i] = submit(i); /* accepted through B */
    char *long_b = take_over(1, 0);
    wait_all_completed(ids, 2 * PER_ROUND);
    expect_adopted(long_a);
    expect_adopted(long_b);

    exactly_once_expect(stack, "failover", 2 * PER_ROUND, 2);
    size_t started = 0;
    assert_int_equal(exactly_once_started_twice(stack, WORKERS, &started), 0);
    assert_true(started >= 2 * 2 * PER_ROUND);
    long adopted = exactly_once_log_lines(stack, "broker.log", "adopted execution=") +
                   exactly_once_log_lines(stack, "broker-b.log", "adopted execution=");
    printf("measure: attempts_adopted_across_takeovers=%ld\n", adopted);
    assert_true(adopted >= 2);
    /* Workers and gateway said whom they follow. */
    assert_true(exactly_once_log_lines(stack, "worker0.log", "following broker=") >= 2);
    assert_true(exactly_once_log_lines(stack, "gateway.log", "following broker=") >= 2);
    for (int i = 0; i < 2 * PER_ROUND; i++)
        free(ids[i]);
}

static int setup(void **state)
{
    (void)state;
    teststack_options_t opts = {.workers = WORKERS, .slots = 4, .two_sites = true};
    stack = teststack_start(&opts);
    if (!stack)
        return -1;
    json_t *wf = teststack_create_workflow(
        stack, "{\"id\":\"failover\",\"name\":\"Failover\",\"phases\":["
               "{\"phase_id\":\"p1\",\"name\":\"P1\",\"order\":1,"
               " \"prompt_template\":\"#mock sleep 300\\n$ARGUMENTS\"},"
               "{\"phase_id\":\"p2\",\"name\":\"P2\",\"order\":2,"
               " \"prompt_template\":\"#mock sleep 300\\n{{p1}}\"}]}");
    json_decref(wf);
    json_t *long_wf = teststack_create_workflow(
        stack, "{\"id\":\"long\",\"name\":\"Long\",\"phases\":[{\"phase_id\":\"work\","
               "\"name\":\"Work\",\"order\":1,\"prompt_template\":\"#mock sleep 8000\"}]}");
    json_decref(long_wf);
    return wf && long_wf ? 0 : -1;
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
        cmocka_unit_test(test_clients_follow_the_broker_to_another_address_and_back),
    };
    return cmocka_run_group_tests_name("broker_failover", tests, setup, teardown);
}
