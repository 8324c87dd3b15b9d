/* The fleet as the broker sees it (issue 18): workers.list (GET /workers), with
 * the workers lost in the last ten minutes, and ready (GET /ready). */
#include "tests/support/broker_fixture.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

/* The listed worker named name (borrowed from list), or NULL. */
static json_t *listed(json_t *list, const char *name)
{
    size_t i;
    json_t *w;
    json_array_foreach(json_object_get(list, "workers"), i, w)
        if (strcmp(json_string_value(json_object_get(w, "name")), name) == 0)
            return w;
    return NULL;
}

static void test_workers_list_counts_and_keeps_the_lost(void **state)
{
    fx_t *f = *state;
    fx_workflow(f, "wf", 1, 60);
    fx_ready(f, "W1", 2, NULL);
    fx_ready(f, "W2", 1, NULL);
    fx_start(f, "wf");
    json_t *assign = fx_take(f, "assign", NULL);
    assert_non_null(assign);
    /* The phase went to the least busy worker registered first: W1. */
    fx_result(f, "W1", assign, "completed", "done", NULL);
    json_decref(assign);

    json_t *body = NULL;
    assert_int_equal(fx_call(f, "workers.list", json_object(), &body), 200);
    json_t *w1 = listed(body, "W1");
    assert_non_null(w1);
    assert_int_equal(json_integer_value(json_object_get(w1, "slots")), 2);
    assert_int_equal(json_integer_value(json_object_get(w1, "attempts_completed")), 1);
    assert_int_equal(json_integer_value(json_object_get(w1, "attempts_failed")), 0);
    assert_int_equal(json_integer_value(json_object_get(w1, "running")), 0);
    assert_true(json_is_true(json_object_get(w1, "healthy")));
    assert_true(json_is_true(json_object_get(w1, "connected")));
    assert_true(json_is_string(json_object_get(w1, "connected_at")));
    assert_true(json_is_string(json_object_get(w1, "last_heartbeat_at")));
    assert_non_null(listed(body, "W2"));
    json_decref(body);

    json_t *joined = fx_take_event(f, "-", "worker_joined");
    assert_non_null(joined);
    assert_string_equal(fx_str(json_object_get(joined, "data"), "worker"), "W1");
    json_decref(joined);
    /* W2 goes silent: it is lost, and still listed, as lost. */
    for (int i = 0; i < 2 * FX_LIVENESS; i++)
        fx_advance(f, FX_HEARTBEAT_MS, "W1");
    assert_int_equal(broker_workers_count(f->workers), 1);
    assert_int_equal(fx_call(f, "workers.list", json_object(), &body), 200);
    json_t *w2 = listed(body, "W2");
    assert_non_null(w2);
    assert_true(json_is_false(json_object_get(w2, "connected")));
    assert_true(json_is_string(json_object_get(w2, "lost_at")));
    assert_non_null(strstr(json_string_value(json_object_get(w2, "lost_reason")),
                           "stopped responding"));
    json_decref(body);
    json_t *lost = fx_take_event(f, "-", "worker_lost");
    assert_non_null(lost);
    assert_string_equal(fx_str(json_object_get(lost, "data"), "worker"), "W2");
    json_decref(lost);
}

static void test_ready_needs_a_healthy_worker(void **state)
{
    fx_t *f = *state;
    json_t *body = NULL;
    assert_int_equal(fx_call(f, "ready", json_object(), &body), 503);
    assert_string_equal(json_string_value(json_object_get(body, "reason")),
                        "no worker connected");
    json_decref(body);

    fx_ready(f, "W1", 1, NULL);
    assert_int_equal(fx_call(f, "ready", json_object(), &body), 200);
    assert_string_equal(json_string_value(json_object_get(body, "status")), "ready");
    json_decref(body);
    assert_int_equal(broker_workers_count_healthy(f->workers), 1);

    broker_worker_t *w = broker_workers_at(f->workers, 0);
    assert_true(broker_worker_set_unhealthy(w, "cannot run claude"));
    assert_int_equal(broker_workers_count_healthy(f->workers), 0);
    assert_int_equal(fx_call(f, "ready", json_object(), &body), 503);
    assert_non_null(strstr(json_string_value(json_object_get(body, "reason")), "no healthy"));
    json_decref(body);

    /* An unhealthy worker takes no work. */
    fx_workflow(f, "wf", 1, 60);
    fx_start(f, "wf");
    assert_int_equal(fx_count_sent(f, "assign"), 0);
    assert_true(broker_worker_set_unhealthy(w, NULL));
    fx_turn(f);
    assert_int_equal(fx_count_sent(f, "assign"), 1);
}

/* A worker fault: the attempt goes to another worker, counts against nothing,
 * and the worker takes no work until its READY says healthy again. */
static void test_worker_fault_requeues_and_marks_unhealthy(void **state)
{
    fx_t *f = *state;
    fx_workflow(f, "wf", 1, 60);
    fx_ready(f, "W1", 1, NULL);
    broker_execution_t *exec = fx_start(f, "wf");
    char id[BROKER_EXEC_ID_SIZE];
    strcpy(id, exec->id);
    json_t *assign = fx_take(f, "assign", "W1");
    assert_non_null(assign);
    fx_ready(f, "W2", 1, NULL);
    fx_worker_send(f, "W1", SYN_MSG_RESULT,
                   fx_attempt_fields(assign, json_pack("{s:s, s:s, s:s, s:n}", "status", "fault",
                                                       "output", "", "error",
                                                       "cannot run claude: No such file",
                                                       "exit_code")));
    json_decref(assign);
    json_t *again = fx_take(f, "assign", "W2");
    assert_non_null(again);
    json_t *retrying = fx_take_event(f, id, "PhaseRetrying");
    assert_non_null(retrying);
    assert_string_equal(fx_str(json_object_get(retrying, "data"), "cause"), "worker_fault");
    json_decref(retrying);
    broker_worker_t *w1 = broker_workers_lookup(f->workers, "W1", 2);
    assert_non_null(w1);
    json_t *event = fx_take_event(f, "-", "worker_unhealthy");
    assert_non_null(event);
    assert_string_equal(fx_str(json_object_get(event, "data"), "worker"), "W1");
    json_decref(event);
    assert_string_equal(w1->unhealthy, "cannot run claude: No such file");
    assert_int_equal(broker_workers_count_healthy(f->workers), 1);

    /* Faults counted against nothing: a max_attempts of 1 still lets W2 finish. */
    fx_result(f, "W2", again, "completed", "done", NULL);
    json_decref(again);
    json_t *done = fx_take_event(f, id, "ExecutionCompleted");
    assert_non_null(done);
    json_decref(done);

    /* Its READY saying healthy (no "healthy": false) makes it take work again. */
    fx_ready(f, "W1", 1, NULL);
    assert_null(w1->unhealthy);
    assert_int_equal(broker_workers_count_healthy(f->workers), 2);
}

/* Heartbeats go to the workers the broker has sent nothing for an interval
 * (docs/protocol.md, Liveness), each when it falls due: a worker that just got
 * an ASSIGN gets none, and a thousand workers are not all written to in one turn. */
static void test_heartbeats_only_to_the_quiet(void **state)
{
    fx_t *f = *state;
    fx_workflow(f, "wf", 1, 60);
    int64_t t0 = f->now;
    fx_ready(f, "W1", 1, NULL);
    fx_ready(f, "W2", 1, NULL);
    f->now = t0 + FX_HEARTBEAT_MS - 10;
    fx_start(f, "wf");
    json_t *assign = fx_take(f, "assign", "W1");
    assert_non_null(assign);
    json_decref(assign);
    /* Nobody is due before an interval has passed. */
    assert_int_equal(broker_engine_heartbeat(f->engine, f->now), t0 + FX_HEARTBEAT_MS);
    fx_turn(f);
    assert_int_equal(fx_count_sent(f, "heartbeat"), 0);

    /* W2 has had nothing for an interval; W1 got its ASSIGN 10 ms ago. */
    f->now = t0 + FX_HEARTBEAT_MS;
    assert_int_equal(broker_engine_heartbeat(f->engine, f->now), t0 + 2 * FX_HEARTBEAT_MS - 10);
    fx_turn(f);
    assert_int_equal(fx_count_sent(f, "heartbeat"), 1);
    json_t *beat = fx_take(f, "heartbeat", "W2");
    assert_non_null(beat);
    json_decref(beat);

    /* An interval after its ASSIGN, W1's turn; W2 is not due again yet. */
    f->now = t0 + 2 * FX_HEARTBEAT_MS - 10;
    assert_int_equal(broker_engine_heartbeat(f->engine, f->now), t0 + 2 * FX_HEARTBEAT_MS);
    fx_turn(f);
    assert_int_equal(fx_count_sent(f, "heartbeat"), 1);
    beat = fx_take(f, "heartbeat", "W1");
    assert_non_null(beat);
    json_decref(beat);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        fx_unit_test(test_workers_list_counts_and_keeps_the_lost),
        fx_unit_test(test_heartbeats_only_to_the_quiet),
        fx_unit_test(test_ready_needs_a_healthy_worker),
        fx_unit_test(test_worker_fault_requeues_and_marks_unhealthy),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
