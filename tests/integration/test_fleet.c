/* The fleet through HTTP (issue 18): GET /workers through joins, a kill -9 and a
 * drain; GET /ready through no workers and the broker down. */
#include "tests/support/http.h"
#include "tests/support/sse.h"
#include "tests/support/teststack.h"

#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

/* The broker notices a silent worker after 3 × 100 ms. */
#define FAST_BROKER "--heartbeat-ms 100 --liveness 3"
#define FAST_WORKER "--heartbeat-ms 100"

/* A lost entry's lost_at, "" when it has none (ISO 8601: compares as text). */
static const char *lost_at(const json_t *w)
{
    const char *at = json_string_value(json_object_get(w, "lost_at"));
    return at ? at : "";
}

/* GET /workers' entry for name (a new reference), connected or not as asked, or
 * NULL; of several lost ones, the last lost (a worker that reconnected while its
 * stack started left its first connection's entry). */
static json_t *worker_entry(teststack_t *stack, const char *name, bool connected)
{
    http_response_t resp;
    json_t *found = NULL;
    if (http_get(&resp, "%s/workers", teststack_url(stack)) == 0 && resp.status == 200) {
        size_t i;
        json_t *w;
        json_array_foreach(json_object_get(resp.json, "workers"), i, w)
        {
            const char *n = json_string_value(json_object_get(w, "name"));
            bool c = json_is_true(json_object_get(w, "connected"));
            if (!n || strcmp(n, name) != 0 || c != connected)
                continue;
            if (!found || strcmp(lost_at(w), lost_at(found)) > 0) {
                json_decref(found);
                found = json_incref(w);
            }
        }
    }
    http_response_clear(&resp);
    return found;
}

static bool listed(teststack_t *stack, const char *name, bool connected)
{
    json_t *w = worker_entry(stack, name, connected);
    json_decref(w);
    return w != NULL;
}

static bool field_true(teststack_t *stack, const char *name, const char *field)
{
    json_t *w = worker_entry(stack, name, true);
    bool yes = w && json_is_true(json_object_get(w, field));
    json_decref(w);
    return yes;
}

static long ready_status(teststack_t *stack, char *reason, size_t len)
{
    http_response_t resp;
    long status = http_get(&resp, "%s/ready", teststack_url(stack)) == 0 ? resp.status : 0;
    const char *why = json_string_value(json_object_get(resp.json, "reason"));
    if (!why)
        why = json_string_value(json_object_get(resp.json, "detail"));
    snprintf(reason, len, "%s", why ? why : "");
    http_response_clear(&resp);
    return status;
}

static void test_workers_through_join_kill_and_drain(void **state)
{
    (void)state;
    teststack_options_t opts = {.workers = 2, .slots = 1, .mock_delay_ms = 3000,
                                .broker_args = FAST_BROKER, .worker_args = FAST_WORKER};
    teststack_t *stack = teststack_start(&opts);
    assert_non_null(stack);

    json_t *w0 = worker_entry(stack, "w0", true);
    assert_non_null(w0);
    assert_true(json_is_true(json_object_get(w0, "healthy")));
    assert_int_equal(json_integer_value(json_object_get(w0, "slots")), 1);
    assert_true(json_is_string(json_object_get(w0, "host")));
    assert_true(json_is_string(json_object_get(w0, "version")));
    assert_true(json_is_string(json_object_get(w0, "connected_at")));
    /* The address its connection came from (the stack runs on loopback). */
    assert_string_equal(json_string_value(json_object_get(w0, "address")), "127.0.0.1");
    json_decref(w0);

    /* A join. */
    int added = teststack_add_worker(stack, NULL);
    assert_int_equal(added, 2);
    WAIT_FOR(listed(stack, "w2", true), 10000);
    assert_true(listed(stack, "w2", true));

    /* A kill -9: the worker is lost and still listed, as lost. */
    teststack_kill_worker(stack, 0, SIGKILL);
    WAIT_FOR(listed(stack, "w0", false) && !listed(stack, "w0", true), 10000);
    json_t *lost = worker_entry(stack, "w0", false);
    assert_non_null(lost);
    assert_non_null(strstr(json_string_value(json_object_get(lost, "lost_reason")), "w0"));
    assert_true(json_is_string(json_object_get(lost, "lost_at")));
    json_decref(lost);
    assert_false(listed(stack, "w0", true));

    /* A drain: w1 runs a phase, SIGTERM makes it finish that and take nothing new. */
    json_t *wf = teststack_create_workflow(
        stack, "{\"name\":\"fleet\",\"phases\":[{\"phase_id\":\"p1\",\"name\":\"P1\","
               "\"order\":1,\"prompt_template\":\"x\"}]}");
    assert_non_null(wf);
    const char *wf_id = json_string_value(json_object_get(wf, "id"));
    /* Two executions: one on each live worker. */
    char *e1 = teststack_execute(stack, wf_id, "{}");
    char *e2 = teststack_execute(stack, wf_id, "{}");
    assert_non_null(e1);
    assert_non_null(e2);
    json_t *busy = NULL;
    WAIT_FOR((json_decref(busy), busy = worker_entry(stack, "w1", true),
              busy && json_integer_value(json_object_get(busy, "running")) == 1),
             10000);
    assert_int_equal(json_integer_value(json_object_get(busy, "running")), 1);
    json_decref(busy);
    /* The broker counts an attempt as running once it sends the assignment: the
     * drain under test is of one the worker has (a signal before it arrives
     * loses it, and the attempt runs again elsewhere). */
    WAIT_FOR(teststack_log_has(stack, "worker1", "assigned execution="), 10000);
    assert_true(teststack_log_has(stack, "worker1", "assigned execution="));
    kill(teststack_worker_pid(stack, 1), SIGTERM);
    WAIT_FOR(field_true(stack, "w1", "draining"), 10000);
    assert_true(field_true(stack, "w1", "draining"));
    /* Once done it leaves, and is listed as lost with why. */
    WAIT_FOR(listed(stack, "w1", false) && !listed(stack, "w1", true), 15000);
    json_t *left = worker_entry(stack, "w1", false);
    assert_non_null(left);
    assert_non_null(strstr(json_string_value(json_object_get(left, "lost_reason")),
                           "disconnected"));
    assert_int_equal(json_integer_value(json_object_get(left, "attempts_completed")), 1);
    json_decref(left);

    free(e1);
    free(e2);
    json_decref(wf);
    teststack_destroy(&stack);
}

static void test_ready_through_no_workers_and_broker_down(void **state)
{
    (void)state;
    teststack_options_t opts = {.workers = 1, .broker_args = FAST_BROKER,
                                .worker_args = FAST_WORKER};
    teststack_t *stack = teststack_start(&opts);
    assert_non_null(stack);
    char reason[256];
    assert_int_equal(ready_status(stack, reason, sizeof reason), 200);

    assert_int_equal(teststack_stop_worker(stack, 0, SIGTERM, 10000), 0);
    WAIT_FOR(ready_status(stack, reason, sizeof reason) == 503, 10000);
    assert_int_equal(ready_status(stack, reason, sizeof reason), 503);
    assert_string_equal(reason, "no worker connected");
    /* /health stays liveness: the broker is up. */
    http_response_t health;
    assert_int_equal(http_get(&health, "%s/health", teststack_url(stack)), 0);
    assert_int_equal(health.status, 200);
    http_response_clear(&health);

    assert_true(teststack_add_worker(stack, NULL) >= 0);
    WAIT_FOR(ready_status(stack, reason, sizeof reason) == 200, 10000);
    assert_int_equal(ready_status(stack, reason, sizeof reason), 200);

    teststack_kill_broker(stack, SIGKILL);
    WAIT_FOR(ready_status(stack, reason, sizeof reason) == 503, 10000);
    assert_int_equal(ready_status(stack, reason, sizeof reason), 503);
    assert_string_equal(reason, "broker unavailable");
    teststack_destroy(&stack);
}

/* Copies /bin/cat to path (an agent: the command provider's stdout is the output). */
static int install_agent(const char *path)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "cp /bin/cat '%s'", path);
    return system(cmd) == 0 ? 0 : -1;
}

static long long entry_int(teststack_t *stack, const char *name, const char *field)
{
    json_t *w = worker_entry(stack, name, true);
    long long v = w ? (long long)json_integer_value(json_object_get(w, field)) : -1;
    json_decref(w);
    return v;
}

/* One worker whose agent program goes missing among two good ones: every
 * execution completes, the bad worker's faults count against no attempt, it is
 * shown unhealthy, and once the program is back it takes work again. */
/* The index of the first activity frame of this type about worker, or -1. */
static long worker_event_index(const sse_client_t *client, const char *type, const char *worker)
{
    for (size_t i = 0; i < sse_client_frame_count(client); i++) {
        const sse_frame_t *frame = sse_client_frame(client, i);
        json_t *data = frame->data ? json_object_get(frame->data, "data") : NULL;
        const char *name = json_string_value(json_object_get(data, "worker"));
        if (strcmp(sse_frame_str(frame, "event_type"), type) == 0 && name &&
            strcmp(name, worker) == 0)
            return (long)i;
    }
    return -1;
}

/* An sse_done_fn: w2's worker_healthy came (want is ignored). */
static bool saw_w2_healthy(const sse_client_t *client, long want)
{
    (void)want;
    return worker_event_index(client, "worker_healthy", "w2") >= 0;
}

static void test_black_hole(void **state)
{
    (void)state;
    char scratch[] = "/tmp/syn-fleet-XXXXXX";
    assert_non_null(mkdtemp(scratch));
    char agent[256], extra[400];
    snprintf(agent, sizeof agent, "%s/agent", scratch);
    assert_int_equal(install_agent(agent), 0);
    /* The default heartbeats, as in the quarantine test below: with max_attempts 1, a
     * good worker lost to FAST_BROKER's 300 ms of patience on a loaded machine
     * failed its executions (seen under ASan). */
    teststack_options_t opts = {.workers = 2, .slots = 2, .provider = "command",
                                .command = "/bin/cat"};
    teststack_t *stack = teststack_start(&opts);
    assert_non_null(stack);
    sse_client_t *activity = sse_client_new(atoi(strrchr(teststack_url(stack), ':') + 1),
                                            "/sse/activity", NULL, 0);
    assert_non_null(activity);
    snprintf(extra, sizeof extra, "--command %s", agent);
    assert_int_equal(teststack_add_worker(stack, extra), 2);
    WAIT_FOR(listed(stack, "w2", true), 30000); /* a CURVE handshake on a loaded machine */
    assert_true(listed(stack, "w2", true));
    assert_int_equal(unlink(agent), 0); /* the program goes missing */

    json_t *wf = teststack_create_workflow(
        stack, "{\"name\":\"hole\",\"phases\":[{\"phase_id\":\"p1\",\"name\":\"P1\","
               "\"order\":1,\"prompt_template\":\"x\",\"max_attempts\":1}]}");
    assert_non_null(wf);
    const char *wf_id = json_string_value(json_object_get(wf, "id"));
    char *ids[30];
    for (int i = 0; i < 30; i++) {
        ids[i] = teststack_execute(stack, wf_id, "{}");
        assert_non_null(ids[i]);
    }
    for (int i = 0; i < 30; i++) {
        json_t *st = teststack_wait_terminal(stack, wf_id, ids[i], 30000);
        assert_non_null(st);
        assert_string_equal(json_string_value(json_object_get(st, "status")), "completed");
        json_decref(st);
    }
    /* w2 got work, failed none of it, and is unhealthy with why. */
    assert_true(teststack_db_count(stack, "SELECT 1 FROM attempts WHERE worker='w2'", NULL) >= 1);
    assert_int_equal(teststack_db_count(stack,
                                        "SELECT 1 FROM attempts WHERE worker='w2' AND "
                                        "status IN ('failed','timeout','completed')",
                                        NULL),
                     0);
    json_t *bad = worker_entry(stack, "w2", true);
    assert_non_null(bad);
    assert_true(json_is_false(json_object_get(bad, "healthy")));
    assert_non_null(strstr(json_string_value(json_object_get(bad, "unhealthy_reason")),
                           "cannot run"));
    assert_int_equal(json_integer_value(json_object_get(bad, "attempts_failed")), 0);
    json_decref(bad);

    /* The program is back: its next check passes and it takes work again. */
    assert_int_equal(install_agent(agent), 0);
    WAIT_FOR(field_true(stack, "w2", "healthy"), 30000);
    assert_true(field_true(stack, "w2", "healthy"));
    /* Watchers saw it go and come back, in that order. */
    assert_true(sse_client_wait(activity, saw_w2_healthy, 0, 10000));
    long unhealthy_at = worker_event_index(activity, "worker_unhealthy", "w2");
    assert_true(unhealthy_at >= 0);
    assert_true(worker_event_index(activity, "worker_healthy", "w2") > unhealthy_at);
    sse_client_destroy(&activity);
    char *more[12];
    for (int i = 0; i < 12; i++)
        assert_non_null(more[i] = teststack_execute(stack, wf_id, "{}"));
    WAIT_FOR(entry_int(stack, "w2", "attempts_completed") >= 1, 30000);
    assert_true(entry_int(stack, "w2", "attempts_completed") >= 1);
    for (int i = 0; i < 12; i++)
        free(more[i]);
    for (int i = 0; i < 30; i++)
        free(ids[i]);
    json_decref(wf);
    teststack_destroy(&stack);
    unlink(agent);
    rmdir(scratch);
}

/* A worker whose agent fails every attempt at once (its program runs, but
 * /bin/false) among good ones: with the broker's default quarantine it fails at
 * most 3 attempts, then takes no work, and every execution completes. */
static void test_quarantine_catches_a_failing_worker(void **state)
{
    (void)state;
    /* The default heartbeats: nothing here waits for a loss, and FAST_BROKER's 300 ms
     * of patience lost good workers on a loaded machine (their attempts lost too,
     * an execution's last retry with them: "failed"; the broker's log said so in the
     * black hole test above). */
    teststack_options_t opts = {.workers = 2, .slots = 2, .provider = "command",
                                .command = "/bin/cat"};
    teststack_t *stack = teststack_start(&opts);
    assert_non_null(stack);
    json_t *wf = teststack_create_workflow(
        stack, "{\"name\":\"q\",\"phases\":[{\"phase_id\":\"p1\",\"name\":\"P1\","
               "\"order\":1,\"prompt_template\":\"x\",\"retries\":3,"
               "\"retry_backoff_seconds\":0.01}]}");
    assert_non_null(wf);
    const char *wf_id = json_string_value(json_object_get(wf, "id"));
    /* The good workers have succeeded before the bad one joins. */
    char *first = teststack_execute(stack, wf_id, "{}");
    json_t *st = teststack_wait_terminal(stack, wf_id, first, 30000);
    assert_string_equal(json_string_value(json_object_get(st, "status")), "completed");
    json_decref(st);
    free(first);
    assert_int_equal(teststack_add_worker(stack, "--command /bin/false --slots 1"), 2);
    WAIT_FOR(listed(stack, "w2", true), 10000);
    assert_true(listed(stack, "w2", true));

    char *ids[30];
    for (int i = 0; i < 30; i++)
        assert_non_null(ids[i] = teststack_execute(stack, wf_id, "{}"));
    for (int i = 0; i < 30; i++) {
        st = teststack_wait_terminal(stack, wf_id, ids[i], 30000);
        assert_non_null(st);
        assert_string_equal(json_string_value(json_object_get(st, "status")), "completed");
        json_decref(st);
        free(ids[i]);
    }
    long failed = teststack_db_count(stack, "SELECT 1 FROM attempts WHERE worker='w2'", NULL);
    print_message("measure: the failing worker ran %ld attempts before its quarantine\n",
                  failed);
    assert_true(failed >= 1);
    assert_true(failed <= 3);
    json_t *bad = worker_entry(stack, "w2", true);
    assert_non_null(bad);
    assert_true(json_is_false(json_object_get(bad, "healthy")));
    assert_non_null(strstr(json_string_value(json_object_get(bad, "unhealthy_reason")),
                           "quarantined"));
    json_decref(bad);
    json_decref(wf);
    teststack_destroy(&stack);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_workers_through_join_kill_and_drain),
        cmocka_unit_test(test_ready_through_no_workers_and_broker_down),
        cmocka_unit_test(test_black_hole),
        cmocka_unit_test(test_quarantine_catches_a_failing_worker),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
