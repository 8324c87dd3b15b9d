/* Reliability when the broker or the gateway dies (issue 3): the real processes
 * are killed with SIGKILL (or stopped with SIGTERM) under load and restarted;
 * every accepted execution must complete exactly once, checked through the API
 * and in the broker's database. Lines starting "measure:" report timings for
 * docs/reliability.md. */
#include "tests/support/exactly_once.h"
#include "tests/support/execution.h"
#include "tests/support/expect.h"
#include "tests/support/http.h"
#include "tests/support/teststack.h"

#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

static teststack_t *stack;

/* --- helpers ---------------------------------------------------------------- */

static long long wall_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* POST …/execute without complaining on failure (failures are expected while a
 * process is down): the execution id, or NULL when the answer was not a 200. */
static char *try_execute(const char *workflow_id, const char *body)
{
    http_response_t r;
    char *id = NULL;
    if (http_post(&r, body, "%s/workflows/%s/execute", teststack_url(stack), workflow_id) == 0 &&
        r.status == 200) {
        const char *eid = json_string_value(json_object_get(r.json, "execution_id"));
        id = eid ? strdup(eid) : NULL;
    }
    http_response_clear(&r);
    return id;
}

static char *wait_attempt(const char *execution_id, const char *phase_id, int timeout_ms)
{
    for (wait_t w = wait_begin(timeout_ms);;) {
        char *worker = teststack_db_text(
            stack, "SELECT worker FROM attempts WHERE execution_id=?1 AND phase_id=?2",
            execution_id, phase_id, NULL);
        if (worker)
            return worker;
        if (!wait_next(&w))
            return NULL;
    }
}

static long attempt_count(const char *execution_id)
{
    return teststack_db_count(stack, "SELECT 1 FROM attempts WHERE execution_id=?1",
                              execution_id, NULL);
}

static json_t *create(const char *json_body)
{
    json_t *wf = teststack_create_workflow(stack, json_body);
    json_decref(wf);
    return wf;
}

static int setup(void **state)
{
    (void)state;
    teststack_options_t opts = {.workers = 2, .slots = 8};
    stack = teststack_start(&opts);
    if (!stack)
        return -1;
    if (!create("{\"id\":\"inflight\",\"name\":\"In flight\",\"phases\":["
                "{\"phase_id\":\"p1\",\"name\":\"P1\",\"order\":1,"
                " \"prompt_template\":\"#mock sleep 200\\n$ARGUMENTS\"},"
                "{\"phase_id\":\"p2\",\"name\":\"P2\",\"order\":2,"
                " \"prompt_template\":\"#mock sleep 200\\n{{p1}}\"}]}") ||
        !create("{\"id\":\"steady\",\"name\":\"Steady\",\"phases\":[{\"phase_id\":\"work\","
                "\"name\":\"Work\",\"order\":1,\"prompt_template\":\"#mock sleep 50\"}]}") ||
        !create("{\"id\":\"burst\",\"name\":\"Burst\",\"phases\":[{\"phase_id\":\"work\","
                "\"name\":\"Work\",\"order\":1,\"prompt_template\":\"#mock sleep 50\"}]}") ||
        !create("{\"id\":\"slow\",\"name\":\"Slow\",\"phases\":[{\"phase_id\":\"work\","
                "\"name\":\"Work\",\"order\":1,\"prompt_template\":\"#mock sleep 2500\"}]}"))
        return -1;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    teststack_destroy(&stack);
    return 0;
}

/* --- kill -9 of the broker with 200 executions in flight --------------------- */

#define IN_FLIGHT 200
#define SUBMITTERS 8

typedef struct {
    int first, count;
    char **ids;
} batch_t;

static void *submit_batch(void *arg)
{
    batch_t *b = arg;
    for (int i = b->first; i < b->first + b->count; i++) {
        char body[64];
        snprintf(body, sizeof body, "{\"task\":\"job %d\"}", i);
        b->ids[i] = try_execute("inflight", body);
    }
    return NULL;
}

/* Phases of the 'inflight' executions (p, of e) matching where_sql. */
static long count_inflight(const char *where_sql)
{
    char sql[256];
    snprintf(sql, sizeof sql,
             "SELECT 1 FROM phases p JOIN executions e ON e.id=p.execution_id"
             " WHERE e.workflow_id='inflight' AND %s",
             where_sql);
    return teststack_db_count(stack, sql, NULL);
}

static void test_broker_kill9_with_executions_in_flight(void **state)
{
    (void)state;
    static char *ids[IN_FLIGHT];
    batch_t batches[SUBMITTERS];
    pthread_t threads[SUBMITTERS];
    int per = IN_FLIGHT / SUBMITTERS;
    for (int t = 0; t < SUBMITTERS; t++) {
        batches[t] = (batch_t){.first = t * per, .count = per, .ids = ids};
        pthread_create(&threads[t], NULL, submit_batch, &batches[t]);
    }
    for (int t = 0; t < SUBMITTERS; t++)
        pthread_join(threads[t], NULL);
    int accepted = 0;
    for (int i = 0; i < IN_FLIGHT; i++)
        accepted += ids[i] != NULL;
    assert_int_equal(accepted, IN_FLIGHT);
    /* Work in every state: some executions done, some phases running. */
    WAIT_FOR(count_inflight("e.status='completed'") > 0 && count_inflight("p.status='running'") > 0,
             10000);

    teststack_kill_broker(stack, SIGKILL);
    /* What the dead broker left on disk: work in every state. */
    long running = teststack_db_count(
        stack,
        "SELECT 1 FROM phases p JOIN executions e ON e.id=p.execution_id"
        " WHERE e.workflow_id='inflight' AND p.status='running'",
        NULL);
    long finished = teststack_db_count(
        stack, "SELECT 1 FROM executions WHERE workflow_id='inflight' AND status='completed'",
        NULL);
    long phases_done = teststack_db_count(
        stack,
        "SELECT 1 FROM phases p JOIN executions e ON e.id=p.execution_id"
        " WHERE e.workflow_id='inflight' AND p.status='completed'",
        NULL);
    printf("measure: at_broker_kill running_phases=%ld completed_phases=%ld of %d "
           "completed_executions=%ld of %d\n",
           running, phases_done, 2 * IN_FLIGHT, finished, IN_FLIGHT);
    assert_true(running > 0);
    assert_true(finished < IN_FLIGHT);

    long long restarted = teststack_now_ms();
    assert_int_equal(teststack_start_broker(stack), 0);
    assert_int_equal(teststack_wait_health(stack, 2, 15000), 0);
    long long healthy_ms = teststack_now_ms() - restarted;
    int completed = 0;
    for (int i = 0; i < IN_FLIGHT; i++) {
        json_t *final = teststack_wait_terminal(stack, "inflight", ids[i], 60000);
        if (final && !strcmp(json_str(final, "status"), "completed") &&
            json_integer_value(json_object_get(final, "completed_phases")) == 2)
            completed++;
        else
            fprintf(stderr, "execution %s: %s\n", ids[i], final ? json_str(final, "status")
                                                                 : "not terminal in time");
        json_decref(final);
    }
    long long recovery_ms = teststack_now_ms() - restarted;
    printf("measure: broker_restart_healthy_ms=%lld all_%d_completed_after_restart_ms=%lld "
           "adopted=%ld\n",
           healthy_ms, IN_FLIGHT, recovery_ms,
           exactly_once_log_lines(stack, "broker.log", "adopted execution="));
    assert_int_equal(completed, IN_FLIGHT);
    exactly_once_expect(stack, "inflight", IN_FLIGHT, 2);
    /* The workers came back within the liveness window: the attempts they ran
     * across the restart were adopted, none re-run. (A second attempt row can
     * still appear for an ASSIGN the broker committed but died before sending.) */
    printf("measure: second_attempts_after_restart=%ld\n",
           teststack_db_count(stack,
                              "SELECT 1 FROM attempts a JOIN executions e ON e.id=a.execution_id"
                              " WHERE e.workflow_id='inflight' AND a.attempt>1",
                              NULL));
    size_t started = 0;
    assert_int_equal(exactly_once_started_twice(stack, 2, &started), 0);
    assert_true(started >= 2 * IN_FLIGHT); /* the logs were read: every phase is in them */
    /* Each execution carried its own task through both phases. */
    for (int i = 0; i < IN_FLIGHT; i += 23) {
        char *out = teststack_db_text(
            stack, "SELECT output FROM phases WHERE execution_id=?1 AND phase_id='p2'", ids[i],
            NULL);
        char want[32];
        snprintf(want, sizeof want, "job %d", i);
        assert_non_null(out);
        assert_non_null(strstr(out, want));
        free(out);
    }
    for (int i = 0; i < IN_FLIGHT; i++)
        free(ids[i]);
}

/* --- kill -9 of the gateway under load --------------------------------------- */

#define LOAD_MAX 4000

typedef struct {
    pthread_mutex_t lock;
    const char *workflow_id;
    volatile bool stop;
    char *ids[LOAD_MAX];
    int accepted, refused;
} load_t;

static void *submit_until_stopped(void *arg)
{
    load_t *load = arg;
    while (!load->stop) {
        char *id = try_execute(load->workflow_id, "{}");
        pthread_mutex_lock(&load->lock);
        if (id && load->accepted < LOAD_MAX)
            load->ids[load->accepted++] = id;
        else if (id)
            free(id);
        else
            load->refused++;
        pthread_mutex_unlock(&load->lock);
        /* A refused client's pause before it tries again (the load's shape),
         * not a wait. */
        if (!id)
            wait_exactly_ms(20);
    }
    return NULL;
}

static int accepted_so_far(load_t *load)
{
    pthread_mutex_lock(&load->lock);
    int n = load->accepted;
    pthread_mutex_unlock(&load->lock);
    return n;
}

/* Waits until more than `floor` executions were accepted, and a few more after
 * that (traffic is flowing), or timeout_ms passed. */
static void wait_accepted_above(load_t *load, int floor, int timeout_ms)
{
    WAIT_FOR(accepted_so_far(load) > floor + 5, timeout_ms);
}

static int refused_so_far(load_t *load)
{
    pthread_mutex_lock(&load->lock);
    int n = load->refused;
    pthread_mutex_unlock(&load->lock);
    return n;
}

/* Waits until a submitter has been refused since `floor` refusals: the clients
 * saw the outage. */
static bool wait_refused_above(load_t *load, int floor, int timeout_ms)
{
    WAIT_FOR(refused_so_far(load) > floor, timeout_ms);
    return refused_so_far(load) > floor;
}

static void test_gateway_kill9_under_load(void **state)
{
    (void)state;
    static load_t load;
    memset(&load, 0, sizeof load);
    pthread_mutex_init(&load.lock, NULL);
    load.workflow_id = "steady";
    pthread_t thread;
    pthread_create(&thread, NULL, submit_until_stopped, &load);

    /* Load is flowing before the kill (waiting on progress, not a fixed time, so a
     * busy machine does not make the test fail). */
    wait_accepted_above(&load, 0, 15000);
    int before = accepted_so_far(&load);
    int refused = refused_so_far(&load);
    teststack_kill_gateway(stack, SIGKILL);
    assert_true(wait_refused_above(&load, refused, 5000));
    long long restarted = teststack_now_ms();
    assert_int_equal(teststack_start_gateway(stack), 0);
    assert_int_equal(teststack_wait_health(stack, 2, 15000), 0);
    long long healthy_ms = teststack_now_ms() - restarted;
    int at_restart = accepted_so_far(&load);
    wait_accepted_above(&load, at_restart, 15000);
    load.stop = true;
    pthread_join(thread, NULL);
    printf("measure: gateway_restart_healthy_ms=%lld accepted=%d (before kill %d, after "
           "restart %d) refused=%d\n",
           healthy_ms, load.accepted, before, load.accepted - at_restart, load.refused);
    assert_true(before > 0);
    assert_true(load.accepted > at_restart);
    assert_true(load.refused > 0); /* the gateway really was down */

    int completed = 0;
    for (int i = 0; i < load.accepted; i++) {
        json_t *final = teststack_wait_terminal(stack, "steady", load.ids[i], 30000);
        completed += final && !strcmp(json_str(final, "status"), "completed");
        json_decref(final);
        free(load.ids[i]);
    }
    assert_int_equal(completed, load.accepted);
    /* A request cut with the gateway may have been committed without the client
     * hearing of it: those run to completion too. */
    WAIT_FOR(teststack_db_count(stack,
                                "SELECT 1 FROM executions WHERE workflow_id='steady'"
                                " AND status NOT IN ('completed','failed','cancelled')",
                                NULL) == 0,
             15000);
    long total = teststack_db_count(stack, "SELECT 1 FROM executions WHERE workflow_id='steady'",
                                    NULL);
    assert_true(total >= load.accepted);
    exactly_once_expect(stack, "steady", total, 1);
    pthread_mutex_destroy(&load.lock);
}

/* The broker is killed while requests stream in: every execution that got a 200
 * was committed before the answer, so it exists after the restart and completes. */
static void test_every_200_survives_a_broker_kill9_mid_submission(void **state)
{
    (void)state;
    static load_t load;
    memset(&load, 0, sizeof load);
    pthread_mutex_init(&load.lock, NULL);
    load.workflow_id = "burst";
    pthread_t threads[4];
    for (int t = 0; t < 4; t++)
        pthread_create(&threads[t], NULL, submit_until_stopped, &load);
    wait_accepted_above(&load, 0, 15000);
    int refused = refused_so_far(&load);
    teststack_kill_broker(stack, SIGKILL);
    int at_kill = accepted_so_far(&load);
    assert_true(wait_refused_above(&load, refused, 10000));
    assert_int_equal(teststack_start_broker(stack), 0);
    assert_int_equal(teststack_wait_health(stack, 2, 15000), 0);
    /* Requests cut by the kill are answered 503 after the gateway's 2 s request
     * timeout; then the submitters get through again. */
    WAIT_FOR(accepted_so_far(&load) > at_kill + 20, 6000);
    load.stop = true;
    for (int t = 0; t < 4; t++)
        pthread_join(threads[t], NULL);
    printf("measure: submitted_through_broker_kill accepted=%d (%d before the kill) "
           "refused=%d\n",
           load.accepted, at_kill, load.refused);
    assert_true(at_kill > 0);
    assert_true(load.accepted > at_kill); /* and submissions resumed */
    assert_true(load.refused > 0);        /* the broker really was down */
    int completed = 0;
    for (int i = 0; i < load.accepted; i++) {
        json_t *final = teststack_wait_terminal(stack, "burst", load.ids[i], 30000);
        if (final && !strcmp(json_str(final, "status"), "completed"))
            completed++;
        else
            fprintf(stderr, "accepted execution %s: %s\n", load.ids[i],
                    final ? json_str(final, "status") : "not found or not terminal");
        json_decref(final);
        free(load.ids[i]);
    }
    assert_int_equal(completed, load.accepted);
    WAIT_FOR(teststack_db_count(stack,
                                "SELECT 1 FROM executions WHERE workflow_id='burst'"
                                " AND status NOT IN ('completed','failed','cancelled')",
                                NULL) == 0,
             15000);
    long total = teststack_db_count(stack, "SELECT 1 FROM executions WHERE workflow_id='burst'",
                                    NULL);
    assert_true(total >= load.accepted);
    exactly_once_expect(stack, "burst", total, 1);
    pthread_mutex_destroy(&load.lock);
}

/* The broker restarts but the worker that ran an attempt is gone for good: the
 * attempt is requeued once the liveness window has passed, and completes on the
 * other worker. */
static void test_restart_requeues_the_attempt_of_a_worker_that_never_returns(void **state)
{
    (void)state;
    char *id = teststack_execute(stack, "slow", "{}");
    assert_non_null(id);
    char *first = wait_attempt(id, "work", 5000);
    assert_non_null(first);
    execution_wait_phase(stack, id, "work", "running", 5000);
    teststack_kill_broker(stack, SIGKILL);
    teststack_kill_worker(stack, atoi(first + 1), SIGKILL); /* workers are "w<index>" */
    long long restarted_us = wall_us();
    assert_int_equal(teststack_start_broker(stack), 0);
    json_t *final = teststack_wait_terminal(stack, "slow", id, 20000);
    assert_non_null(final);
    assert_string_equal(json_str(final, "status"), "completed");
    assert_int_equal(attempt_count(id), 2);
    char *lost = teststack_db_text(
        stack, "SELECT status || ': ' || error FROM attempts WHERE execution_id=?1 AND attempt=1",
        id, NULL);
    char *second = teststack_db_text(
        stack, "SELECT worker FROM attempts WHERE execution_id=?1 AND attempt=2", id, NULL);
    char *started = teststack_db_text(
        stack, "SELECT started_at FROM attempts WHERE execution_id=?1 AND attempt=2", id, NULL);
    assert_non_null(lost);
    assert_non_null(second);
    assert_non_null(started);
    printf("measure: broker_restart_to_requeue_of_missing_worker_ms=%lld (%s)\n",
           (atoll(started) - restarted_us) / 1000, lost);
    assert_non_null(strstr(lost, "lost: "));
    assert_non_null(strstr(lost, first));
    assert_string_not_equal(second, first);
    free(lost);
    free(second);
    free(started);
    free(first);
    json_decref(final);
    free(id);
    assert_true(teststack_add_worker(stack, NULL) >= 0);
    assert_int_equal(teststack_wait_health(stack, 2, 15000), 0);
}

/* --- the broker down, then back ---------------------------------------------- */

static void expect_unavailable_fast(const char *method, const char *path)
{
    http_response_t r;
    long long t0 = teststack_now_ms();
    if (!strcmp(method, "POST"))
        http_post(&r, "{}", "%s%s", teststack_url(stack), path);
    else
        http_get(&r, "%s%s", teststack_url(stack), path);
    long long took = teststack_now_ms() - t0;
    printf("measure: broker_down_%s_%s_503_ms=%lld\n", method, path, took);
    expect_response(&r, 503, "{\"detail\":\"broker unavailable\"}");
    assert_true(r.retry_after[0] != '\0');
    assert_true(took < 2500);
    http_response_clear(&r);
}

/* With the broker gone the gateway answers 503 at once; when it comes back, an
 * execution accepted before the kill completes — its attempt adopted from the
 * worker that kept running it, not re-run — and new work is accepted again. */
static void test_broker_down_503_then_everything_resumes(void **state)
{
    (void)state;
    char *before = teststack_execute(stack, "slow", "{}");
    assert_non_null(before);
    char *worker = wait_attempt(before, "work", 5000);
    assert_non_null(worker);
    execution_wait_phase(stack, before, "work", "running", 5000);
    teststack_kill_broker(stack, SIGKILL);
    long long killed = teststack_now_ms();

    http_response_t r;
    long long t0 = teststack_now_ms();
    http_get(&r, "%s/health", teststack_url(stack));
    printf("measure: broker_down_GET_/health_503_ms=%lld\n", teststack_now_ms() - t0);
    assert_int_equal(r.status, 503);
    assert_string_equal(json_str(r.json, "broker"), "down");
    assert_true(teststack_now_ms() - t0 < 2500);
    http_response_clear(&r);
    expect_unavailable_fast("POST", "/workflows/steady/execute");
    expect_unavailable_fast("GET", "/workflows");
    expect_unavailable_fast("POST", "/workflows/steady/execute");

    /* Stay down past the end of the running 2.5 s phase: its result waits in the
     * worker. How long the broker is down is the scenario, not a wait. */
    wait_exactly_ms((int)(killed + 3000 - teststack_now_ms()));
    long long restarted = teststack_now_ms();
    assert_int_equal(teststack_start_broker(stack), 0);
    assert_int_equal(teststack_wait_health(stack, 2, 15000), 0);
    json_t *final = teststack_wait_terminal(stack, "slow", before, 15000);
    printf("measure: broker_back_accepted_before_kill_completed_after_ms=%lld\n",
           teststack_now_ms() - restarted);
    assert_non_null(final);
    assert_string_equal(json_str(final, "status"), "completed");
    assert_int_equal(attempt_count(before), 1);

    char *after = teststack_execute(stack, "steady", "{}");
    assert_non_null(after);
    json_t *later = teststack_wait_terminal(stack, "steady", after, 15000);
    assert_non_null(later);
    assert_string_equal(json_str(later, "status"), "completed");
    json_decref(later);
    json_decref(final);
    free(after);
    free(worker);
    free(before);
}

/* --- SIGTERM on the broker ---------------------------------------------------- */

/* The broker stops cleanly (exit 0) on SIGTERM with work running; a restart finds
 * every execution, finished or not, and the running one completes without being
 * run again. */
static void test_broker_sigterm_exits_cleanly_and_restart_finds_everything(void **state)
{
    (void)state;
    char *done = teststack_execute(stack, "steady", "{}");
    assert_non_null(done);
    json_t *first = teststack_wait_terminal(stack, "steady", done, 10000);
    assert_non_null(first);
    json_decref(first);
    char *running = teststack_execute(stack, "slow", "{}");
    assert_non_null(running);
    char *worker = wait_attempt(running, "work", 5000);
    assert_non_null(worker);
    long executions = teststack_db_count(stack, "SELECT 1 FROM executions", NULL);

    long long t0 = teststack_now_ms();
    int code = teststack_stop_broker(stack, SIGTERM, 10000);
    long long took = teststack_now_ms() - t0;
    printf("measure: broker_sigterm_exit_ms=%lld\n", took);
    assert_int_equal(code, 0);
    assert_true(took < 3000);
    assert_int_equal(teststack_db_count(stack, "SELECT 1 FROM executions", NULL), executions);
    char *status = teststack_db_text(stack, "SELECT status FROM executions WHERE id=?1",
                                     running, NULL);
    assert_string_equal(status, "running");
    free(status);

    assert_int_equal(teststack_start_broker(stack), 0);
    assert_int_equal(teststack_wait_health(stack, 2, 15000), 0);
    assert_int_equal(teststack_db_count(stack, "SELECT 1 FROM executions", NULL), executions);
    json_t *old = teststack_wait_terminal(stack, "steady", done, 5000);
    assert_non_null(old);
    assert_string_equal(json_str(old, "status"), "completed");
    json_t *final = teststack_wait_terminal(stack, "slow", running, 15000);
    assert_non_null(final);
    assert_string_equal(json_str(final, "status"), "completed");
    assert_int_equal(attempt_count(running), 1);
    /* Adopted from the worker's READY, which listed it as still running. */
    char adopted[128];
    snprintf(adopted, sizeof adopted, "adopted execution=%s phase=work attempt=1 ", running);
    assert_int_equal(exactly_once_log_lines(stack, "broker.log", adopted), 1);
    json_decref(old);
    json_decref(final);
    free(worker);
    free(running);
    free(done);
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_broker_kill9_with_executions_in_flight),
        cmocka_unit_test(test_gateway_kill9_under_load),
        cmocka_unit_test(test_every_200_survives_a_broker_kill9_mid_submission),
        cmocka_unit_test(test_restart_requeues_the_attempt_of_a_worker_that_never_returns),
        cmocka_unit_test(test_broker_down_503_then_everything_resumes),
        cmocka_unit_test(test_broker_sigterm_exits_cleanly_and_restart_finds_everything),
    };
    return cmocka_run_group_tests_name("reliability_broker", tests, setup, teardown);
}
