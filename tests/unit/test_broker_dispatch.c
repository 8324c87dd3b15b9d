/* Dispatch (broker/dispatch.c): the queue's order, a phase waiting for its
 * provider without holding up the others, and what an ASSIGN carries.
 * Through the engine: an undeliverable ASSIGN, prefetch placement and its
 * backstop, a free slot before a busy prefetch, ASSIGN's optional fields. */
#include "broker/dispatch.h"
#include "tests/support/broker_steps.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static void expect_assign(fx_t *f, const char *worker, const char *id, int attempt)
{
    json_t *assign = fx_take(f, "assign", worker);
    if (!assign)
        fail_msg("no assign to %s", worker);
    assert_string_equal(fx_str(assign, "execution_id"), id);
    assert_int_equal(fx_num(assign, "attempt"), attempt);
    json_decref(assign);
}

/* Oldest first, and a phase handed back goes to the front. */
static void test_oldest_first_retry_at_the_front(void **state)
{
    fx_t *f = *state;
    fx_workflow(f, "wf", 1, 60);
    char a[BROKER_EXEC_ID_SIZE], b[BROKER_EXEC_ID_SIZE];
    strcpy(a, fx_start(f, "wf")->id);
    strcpy(b, fx_start(f, "wf")->id);
    fx_ready(f, "W1", 1, NULL);
    json_t *assign = fx_take(f, "assign", "W1");
    assert_string_equal(fx_str(assign, "execution_id"), a);
    assert_int_equal(fx_count_sent(f, "assign"), 0);
    fx_result(f, "W1", assign, "cancelled", "", NULL);
    json_decref(assign);
    expect_assign(f, "W1", a, 2);
}

static void test_provider_waits_keeping_its_place(void **state)
{
    fx_t *f = *state;
    fx_workflow(f, "wf", 1, 60);
    broker_execution_t *first = fx_start(f, "wf");
    broker_set_string(&first->phases[0].provider, "special");
    char a[BROKER_EXEC_ID_SIZE], b[BROKER_EXEC_ID_SIZE];
    strcpy(a, first->id);
    strcpy(b, fx_start(f, "wf")->id);
    fx_ready(f, "W1", 2, NULL); /* mock only */
    expect_assign(f, "W1", b, 1);
    assert_int_equal(fx_count_sent(f, "assign"), 0);
    fx_worker_send(f, "W2", SYN_MSG_READY,
                   json_pack("{s:s, s:i, s:[s], s:[]}", "worker", "W2", "slots", 1, "providers",
                             "special", "running"));
    expect_assign(f, "W2", a, 1);
}

/* The earlier outputs, newest first while they fit the budget. */
static void test_earlier_outputs_within_budget(void **state)
{
    fx_t *f = *state;
    fx_workflow(f, "wf", 3, 60);
    broker_execution_t *exec = fx_start(f, "wf");
    exec->phases[0].status = BROKER_PHASE_COMPLETED;
    exec->phases[0].output = strdup("aaaa"); /* 4 + "p1" */
    exec->phases[1].status = BROKER_PHASE_COMPLETED;
    exec->phases[1].output = strdup("bb"); /* 2 + "p2" */
    json_t *inputs = broker_dispatch_earlier_outputs(exec, &exec->phases[2], 5);
    assert_int_equal(json_object_size(inputs), 1);
    assert_string_equal(fx_str(inputs, "p2"), "bb");
    json_decref(inputs);
    inputs = broker_dispatch_earlier_outputs(exec, &exec->phases[2], 10);
    assert_int_equal(json_object_size(inputs), 2);
    json_decref(inputs);
    inputs = broker_dispatch_earlier_outputs(exec, &exec->phases[1], 100);
    assert_int_equal(json_object_size(inputs), 1);
    assert_string_equal(fx_str(inputs, "p1"), "aaaa");
    json_decref(inputs);
}

/* An ASSIGN that could not be sent did not run anything: it does not use up
 * max_attempts, and EHOSTUNREACH drops the worker at once. */
static void test_undeliverable_assign(void **state)
{
    fx_t *f = *state;
    create_workflow(f, "wf-once", 1);
    char id[BROKER_EXEC_ID_SIZE];
    json_t *a1 = start_on_w1(f, "wf-once", 1, id);
    syn_msg_t *msg = syn_msg_new_with(SYN_MSG_ASSIGN, json_incref(a1));
    broker_engine_undeliverable(f->engine, "W1", 2, msg, EHOSTUNREACH, f->now);
    syn_msg_destroy(&msg);
    fx_turn(f);
    json_decref(a1);
    json_t *body;
    assert_int_equal(fx_call(f, "health", json_object(), &body), 200);
    assert_int_equal(fx_num(body, "workers"), 0);
    json_decref(body);
    fx_ready(f, "W2", 1, NULL);
    json_t *a2 = fx_take(f, "assign", "W2");
    assert_non_null(a2);
    assert_int_equal(fx_num(a2, "attempt"), 2);
    fx_result(f, "W2", a2, "completed", "ok", NULL);
    json_decref(a2);
    json_t *st = status_of(f, "wf-once", id);
    assert_string_equal(fx_str(st, "status"), "running");
    assert_int_equal(fx_num(st, "completed_phases"), 1);
    json_decref(st);
}

/* A worker's prefetch: free slots anywhere are used before prefetch places, a
 * worker gets at most slots + prefetch, and an attempt waiting on a worker for
 * a slot has no backstop until the worker says it started (its wait depends on
 * the phases ahead of it), then the usual one. */
static void test_prefetch_places_and_backstop(void **state)
{
    fx_t *f = *state;
    create_workflow(f, "wf-once", 1);
    fx_worker_send(f, "W1", SYN_MSG_READY,
                   json_pack("{s:s, s:i, s:[s], s:[], s:i}", "worker", "W1", "slots", 1,
                             "providers", "mock", "running", "prefetch", 1));
    fx_ready(f, "W2", 1, NULL);
    char id[4][BROKER_EXEC_ID_SIZE];
    for (int i = 0; i < 4; i++)
        start(f, "wf-once", id[i]);
    json_t *a1 = fx_take(f, "assign", "W1"), *a2 = fx_take(f, "assign", "W2");
    json_t *a3 = fx_take(f, "assign", "W1");
    assert_non_null(a1);
    assert_non_null(a2);
    assert_non_null(a3);
    assert_string_equal(fx_str(a1, "execution_id"), id[0]);
    assert_string_equal(fx_str(a2, "execution_id"), id[1]); /* W2's free slot first */
    assert_string_equal(fx_str(a3, "execution_id"), id[2]); /* then W1's prefetch */
    assert_int_equal(fx_count_sent(f, "assign"), 0);        /* both full */
    expect_status(f, "wf-once", id[3], "pending");

    fx_result(f, "W1", a1, "completed", "one", NULL);
    fx_result(f, "W2", a2, "completed", "two", NULL);
    json_t *a4 = fx_take(f, "assign", NULL);
    assert_non_null(a4);
    assert_string_equal(fx_str(a4, "execution_id"), id[3]);
    /* Far past the backstop, with W1 alive: the waiting attempt stays. */
    for (int i = 0; i < 40; i++)
        fx_advance(f, 10 * 1000, "W1");
    expect_status(f, "wf-once", id[2], "running");
    /* W1 comes back on a new connection (W1b) still holding it, not started:
     * adopted without a backstop either. */
    fx_worker_send(f, "W1b", SYN_MSG_READY,
                   json_pack("{s:s, s:i, s:[s], s:[], s:i, s:[o]}", "worker", "W1", "slots", 1,
                             "providers", "mock", "running", "prefetch", 1, "waiting",
                             fx_ref_of(a3)));
    for (int i = 0; i < 40; i++)
        fx_advance(f, 10 * 1000, "W1b");
    expect_status(f, "wf-once", id[2], "running");
    /* Started now: the backstop counts from here. */
    fx_worker_send(f, "W1b", SYN_MSG_PROGRESS,
                   fx_attempt_fields(a3, json_pack("{s:s, s:s}", "kind", "started", "data", "")));
    for (int i = 0; i < 40; i++)
        fx_advance(f, 10 * 1000, "W1b");
    json_t *st = status_of(f, "wf-once", id[2]);
    assert_string_equal(fx_str(st, "status"), "failed");
    assert_non_null(strstr(fx_str(st, "error"), "no result within the timeout of 300 s"));
    json_decref(st);
    json_decref(a1);
    json_decref(a2);
    json_decref(a3);
    json_decref(a4);
}

/* A free slot beats a prefetch place even on a worker that holds more: W1
 * (1 slot + 3 prefetch) holds one, W2 (4 slots) holds one; the next phase goes
 * to W2's free slot, not to the less busy W1's prefetch. */
static void test_free_slot_beats_less_busy_prefetch(void **state)
{
    fx_t *f = *state;
    create_workflow(f, "wf-once", 1);
    fx_worker_send(f, "W1", SYN_MSG_READY,
                   json_pack("{s:s, s:i, s:[s], s:[], s:i}", "worker", "W1", "slots", 1,
                             "providers", "mock", "running", "prefetch", 3));
    fx_ready(f, "W2", 4, NULL);
    char id[3][BROKER_EXEC_ID_SIZE];
    for (int i = 0; i < 3; i++)
        start(f, "wf-once", id[i]);
    json_t *a1 = fx_take(f, "assign", "W1");
    assert_non_null(a1);
    assert_string_equal(fx_str(a1, "execution_id"), id[0]);
    for (int i = 1; i < 3; i++) {
        json_t *a = fx_take(f, "assign", "W2");
        assert_non_null(a);
        assert_string_equal(fx_str(a, "execution_id"), id[i]);
        json_decref(a);
    }
    assert_int_equal(fx_count_sent(f, "assign"), 0);
    json_decref(a1);
}

/* ASSIGN's optional fields: earlier outputs, repos, allowed tools, max_tokens
 * and the phase's provider, which only a worker offering it gets. */
static void test_assign_optional_fields(void **state)
{
    fx_t *f = *state;
    json_t *body;
    json_t *args = json_pack(
        "{s:s, s:s, s:[{s:s, s:s, s:i, s:s}, {s:s, s:s, s:i, s:s, s:s, s:i, s:[s, s]}]}", "id",
        "wf-agent", "name", "Agent", "phases", "phase_id", "research", "name", "R", "order", 1,
        "prompt_template", "research", "phase_id", "write", "name", "W", "order", 2,
        "prompt_template", "write from {{research}}", "provider", "claude", "max_tokens", 2048,
        "allowed_tools", "Read", "Bash");
    fx_expect(f, "workflow.create", args, 201, NULL);
    assert_int_equal(fx_call(f, "workflow.get", json_pack("{s:s}", "id", "wf-agent"), &body), 200);
    json_t *write = json_array_get(json_object_get(body, "phases"), 1);
    assert_string_equal(fx_str(write, "provider"), "claude");
    assert_int_equal(fx_num(write, "max_tokens"), 2048);
    assert_null(json_object_get(write, "retries")); /* only what was given */
    json_decref(body);
    fx_expect(f, "workflow.create",
              json_pack("{s:s, s:[{s:s, s:s, s:i, s:s, s:i}]}", "name", "x", "phases", "phase_id",
                        "a", "name", "A", "order", 1, "prompt_template", "x", "retries", -1), 400,
              NULL);

    assert_int_equal(fx_call(f, "execution.start",
                             json_pack("{s:s, s:{}, s:n, s:[s, s]}", "workflow_id", "wf-agent",
                                       "inputs", "task", "repos", "acme/app", "/srv/lib"),
                             &body),
                     200);
    char id[BROKER_EXEC_ID_SIZE];
    snprintf(id, sizeof id, "%s", fx_str(body, "execution_id"));
    json_decref(body);
    fx_ready(f, "W1", 2, NULL); /* offers mock only */
    json_t *a1 = fx_take(f, "assign", "W1");
    assert_non_null(a1);
    assert_true(json_is_null(json_object_get(a1, "provider")));
    assert_int_equal(json_object_size(json_object_get(a1, "inputs")), 0);
    assert_int_equal(json_array_size(json_object_get(a1, "repos")), 2);
    assert_string_equal(json_string_value(json_array_get(json_object_get(a1, "repos"), 0)),
                        "acme/app");
    assert_int_equal(json_array_size(json_object_get(a1, "allowed_tools")), 0);
    assert_null(json_object_get(a1, "max_tokens"));
    fx_result(f, "W1", a1, "completed", "FINDINGS", NULL);
    json_decref(a1);
    assert_null(fx_take(f, "assign", "W1")); /* needs claude */
    ready_with(f, "W2", 1, json_pack("[s, s]", "mock", "claude"));
    json_t *a2 = fx_take(f, "assign", "W2");
    assert_non_null(a2);
    assert_string_equal(fx_str(a2, "phase_id"), "write");
    assert_string_equal(fx_str(a2, "provider"), "claude");
    assert_int_equal(fx_num(a2, "max_tokens"), 2048);
    assert_string_equal(fx_str(json_object_get(a2, "inputs"), "research"), "FINDINGS");
    assert_string_equal(json_string_value(json_array_get(json_object_get(a2, "allowed_tools"),
                                                         1)),
                        "Bash");
    assert_string_equal(fx_str(a2, "prompt"), "write from FINDINGS");
    json_decref(a2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        fx_unit_test(test_oldest_first_retry_at_the_front),
        fx_unit_test(test_provider_waits_keeping_its_place),
        fx_unit_test(test_earlier_outputs_within_budget),
        fx_unit_test(test_undeliverable_assign),
        fx_unit_test(test_prefetch_places_and_backstop),
        fx_unit_test(test_free_slot_beats_less_busy_prefetch),
        fx_unit_test(test_assign_optional_fields),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
