/* broker/engine in-process: real SQLite in a temporary directory, fake workers
 * (identities and hand-made messages), and the outbox read back to see what the
 * broker would have sent (tests/support/broker_fixture). Every message the broker
 * produces is checked against its protocol schema. What engine.c itself decides:
 * starting an execution, the outcomes of attempts over a whole run, eviction of a
 * finished execution, recovery after a restart, lookup by prefix. The decisions
 * split out of it are tested in test_broker_<module>.c. */
#include "broker/engine.h"
#include "proto/limits.h"
#include "proto/msg.h"
#include "tests/support/broker_steps.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static void test_execution_start_errors(void **state)
{
    fx_t *f = *state;
    json_t *body;
    fx_expect(f, "execution.start",
              json_pack("{s:s, s:{}, s:n, s:[]}", "workflow_id", "nope", "inputs", "task", "repos"),
              404, "Workflow nope not found");

    json_t *args = json_pack("{s:s, s:[{s:s}, {s:s, s:b}, {s:s}, {s:s, s:s}], s:[{s:s, s:s, "
                             "s:i, s:s}]}",
                             "name", "n", "input_declarations", "name", "zeta", "name", "opt",
                             "required", 0, "name", "alpha", "name", "dflt", "default", "v",
                             "phases", "phase_id", "a", "name", "A", "order", 1,
                             "prompt_template", "x");
    json_object_set_new(args, "id", json_string("wf-in"));
    fx_expect(f, "workflow.create", args, 201, NULL);
    fx_expect(f, "execution.start", json_pack("{s:s, s:{}, s:n, s:[]}", "workflow_id", "wf-in",
                                              "inputs", "task", "repos"), 422,
              "Missing required inputs: alpha, zeta. Provide them via: "
              "--input alpha=<value>, --input zeta=<value>");
    /* what the request names is no longer missing */
    fx_expect(f, "execution.start", json_pack("{s:s, s:{s:s}, s:n, s:[]}", "workflow_id", "wf-in",
                                              "inputs", "alpha", "a", "task", "repos"), 422,
              "Missing required inputs: zeta. Provide them via: --input zeta=<value>");
    fx_expect(f, "execution.start",
              json_pack("{s:s, s:{s:i}}", "workflow_id", "wf-in", "inputs", "alpha", 3), 400, NULL);
    /* a long multi-byte key in a reason is cut on a character boundary */
    char key[1201];
    for (int i = 0; i < 600; i++)
        memcpy(key + 2 * i, "\xc3\xa9", 2);
    key[1200] = '\0';
    json_t *inputs = json_object();
    json_object_set_new(inputs, key, json_integer(1));
    assert_int_equal(fx_call(f, "execution.start",
                             json_pack("{s:s, s:o}", "workflow_id", "wf-in", "inputs", inputs),
                             &body),
                     400);
    assert_memory_equal(fx_str(body, "detail"), "bad request: inputs.\xc3\xa9", 22);
    json_decref(body);
    assert_int_equal(fx_call(f, "execution.start",
                             json_pack("{s:s, s:{s:s, s:s}, s:n, s:[]}", "workflow_id", "wf-in",
                                       "inputs", "alpha", "a", "zeta", "z", "task", "repos"),
                             &body),
                     200);
    assert_string_equal(fx_str(body, "status"), "started");
    assert_string_equal(fx_str(body, "message"), "Workflow execution started");
    assert_string_equal(fx_str(body, "workflow_id"), "wf-in");
    const char *id = fx_str(body, "execution_id");
    assert_int_equal(strlen(id), 17);
    assert_memory_equal(id, "exec-", 5);
    for (size_t i = 5; i < 17; i++)
        assert_non_null(strchr("0123456789abcdef", id[i]));
    json_decref(body);
}

static void test_three_phases_complete(void **state)
{
    fx_t *f = *state;
    create_workflow(f, "wf-demo", 3);
    char id[BROKER_EXEC_ID_SIZE];
    start(f, "wf-demo", id);
    /* durable as soon as the reply could leave */
    assert_int_equal(fx_db_int(f, "SELECT count(*) FROM executions WHERE id='%s'", id), 1);

    json_t *st = status_of(f, "wf-demo", id);
    assert_string_equal(fx_str(st, "status"), "pending");
    assert_string_equal(fx_str(st, "current_phase"), "p1");
    assert_int_equal(fx_num(st, "total_phases"), 3);
    assert_true(json_is_null(json_object_get(st, "started_at")));
    /* the nine keys, and its place while it waits to start */
    assert_int_equal(json_object_size(st), 10);
    assert_int_equal(fx_num(st, "queue_position"), 1);
    json_decref(st);
    assert_int_equal(fx_count_sent(f, "assign"), 0);

    fx_ready(f, "W1", 2, NULL);
    json_t *a1 = fx_take(f, "assign", "W1");
    assert_non_null(a1);
    assert_string_equal(fx_str(a1, "phase_id"), "p1");
    assert_int_equal(fx_num(a1, "attempt"), 1);
    assert_int_equal(fx_num(a1, "timeout_ms"), 300000);
    assert_true(json_is_null(json_object_get(a1, "model")));
    char expected[256];
    snprintf(expected, sizeof expected, "plan cats in a dry tone for the task (%s)", id);
    assert_string_equal(fx_str(a1, "prompt"), expected);

    st = status_of(f, "wf-demo", id);
    assert_string_equal(fx_str(st, "status"), "running");
    assert_false(json_is_null(json_object_get(st, "started_at")));
    json_decref(st);

    fx_result(f, "W1", a1, "completed", "PLAN-OUT {{topic}}", NULL);
    json_t *ack = fx_take(f, "result_ack", "W1");
    assert_non_null(ack);
    assert_int_equal(fx_num(ack, "attempt"), 1);
    json_decref(ack);
    json_t *a2 = fx_take(f, "assign", "W1");
    assert_non_null(a2);
    assert_string_equal(fx_str(a2, "phase_id"), "p2");
    assert_string_equal(fx_str(a2, "prompt"), "draft from [PLAN-OUT {{topic}}] {{unknown}}");

    /* a repeat of phase 1's result is acked and changes nothing */
    fx_result(f, "W1", a1, "completed", "SOMETHING ELSE", NULL);
    expect_sent(f, "result_ack", "W1", NULL, NULL);
    json_decref(a1);

    fx_result(f, "W1", a2, "completed", "DRAFT", NULL);
    json_decref(fx_take(f, "result_ack", "W1"));
    json_decref(a2);
    json_t *a3 = fx_take(f, "assign", "W1");
    assert_non_null(a3);
    snprintf(expected, sizeof expected, "review [PLAN-OUT {{topic}}] [DRAFT] wf-demo the task");
    assert_string_equal(fx_str(a3, "prompt"), expected);
    assert_string_equal(fx_str(a3, "model"), "big");
    assert_int_equal(fx_num(a3, "timeout_ms"), 7000);

    json_t *body;
    assert_int_equal(fx_call(f, "execution.active", json_pack("{s:i}", "limit", 5), &body), 200);
    assert_int_equal(json_array_size(body), 1);
    assert_string_equal(fx_str(json_array_get(body, 0), "current_phase"), "p3");
    json_decref(body);

    fx_result(f, "W1", a3, "completed", "REVIEW", NULL);
    json_decref(a3);
    st = status_of(f, "wf-demo", id);
    assert_string_equal(fx_str(st, "status"), "completed");
    assert_int_equal(fx_num(st, "completed_phases"), 3);
    assert_true(json_is_null(json_object_get(st, "current_phase")));
    assert_true(json_is_null(json_object_get(st, "error")));
    assert_false(json_is_null(json_object_get(st, "completed_at")));
    json_decref(st);
    assert_int_equal(broker_engine_active_count(f->engine), 0);

    assert_int_equal(fx_db_int(f, "SELECT output = 'PLAN-OUT {{topic}}' FROM phases WHERE "
                                  "execution_id='%s' AND phase_id='p1'", id),
                     1);
    assert_int_equal(fx_db_int(f, "SELECT count(*) FROM attempts WHERE execution_id='%s'", id), 3);

    /* the event history, in order, on PUB and in the log */
    const char *history[] = {"ExecutionStarted", "PhaseQueued",    "PhaseStarted",
                             "PhaseCompleted",   "PhaseQueued",    "PhaseStarted",
                             "PhaseCompleted",   "PhaseQueued",    "PhaseStarted",
                             "PhaseCompleted",   "ExecutionCompleted"};
    int64_t last_seq = 0;
    for (size_t i = 0; i < sizeof history / sizeof history[0]; i++) {
        json_t *ev = fx_take(f, "event", id);
        assert_non_null(ev);
        if (strcmp(fx_str(ev, "type"), history[i]) != 0)
            fail_msg("event %zu is %s, expected %s", i, fx_str(ev, "type"), history[i]);
        assert_true(fx_num(ev, "seq") > last_seq);
        last_seq = fx_num(ev, "seq");
        json_decref(ev);
    }
    assert_null(fx_take(f, "event", id));
    assert_int_equal(fx_db_int(f, "SELECT count(*) FROM events WHERE execution_id='%s'", id), 11);
}

/* Every event on PUB carries the execution's status object as it is after the
 * event (the last one exactly what execution.status answers), the event log
 * does not keep it, and a finished execution leaves memory while every query
 * still answers it from SQLite. */
static void test_event_status_and_eviction(void **state)
{
    fx_t *f = *state;
    create_workflow(f, "wf-demo", 3);
    char id[BROKER_EXEC_ID_SIZE];
    start(f, "wf-demo", id);
    assert_non_null(broker_engine_find(f->engine, id));
    fx_ready(f, "W1", 1, NULL);
    complete_on_w1(f, 3, "OUT");
    /* evicted: no longer in memory, every query still answers */
    assert_null(broker_engine_find(f->engine, id));
    assert_int_equal(broker_engine_active_count(f->engine), 0);
    json_t *final = status_of(f, "wf-demo", id);
    assert_string_equal(fx_str(final, "status"), "completed");
    json_t *body;
    assert_int_equal(fx_call(f, "execution.get", json_pack("{s:s}", "execution_id", id), &body),
                     200);
    assert_string_equal(fx_str(body, "status"), "completed");
    assert_int_equal(json_array_size(json_object_get(body, "phases")), 3);
    json_decref(body);
    fx_expect(f, "execution.state", json_pack("{s:s}", "execution_id", id), 200, NULL);
    fx_expect(f, "execution.output", json_pack("{s:s, s:s}", "execution_id", id, "phase_id", "p2"),
              200, NULL);
    assert_int_equal(fx_call(f, "execution.list",
                             json_pack("{s:n, s:s, s:i, s:i}", "workflow_id", "status", "completed",
                                       "page", 1, "page_size", 10),
                             &body),
                     200);
    assert_int_equal(fx_num(body, "total"), 1);
    json_decref(body);
    assert_int_equal(fx_call(f, "execution.active", json_pack("{s:i}", "limit", 5), &body), 200);
    assert_int_equal(json_array_size(body), 0);
    json_decref(body);

    /* type, status, current_phase, completed_phases after each event */
    const struct {
        const char *type, *status, *current;
        int completed;
    } want[] = {
        {"ExecutionStarted", "pending", "p1", 0},   {"PhaseQueued", "pending", "p1", 0},
        {"PhaseStarted", "running", "p1", 0},       {"PhaseCompleted", "running", NULL, 1},
        {"PhaseQueued", "running", "p2", 1},        {"PhaseStarted", "running", "p2", 1},
        {"PhaseCompleted", "running", NULL, 2},     {"PhaseQueued", "running", "p3", 2},
        {"PhaseStarted", "running", "p3", 2},       {"PhaseCompleted", "running", NULL, 3},
        {"ExecutionCompleted", "completed", NULL, 3},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        json_t *ev = fx_take(f, "event", id);
        assert_non_null(ev);
        assert_string_equal(fx_str(ev, "type"), want[i].type);
        json_t *st = json_object_get(ev, "status");
        if (!json_is_object(st))
            fail_msg("event %zu (%s) has no status", i, want[i].type);
        assert_int_equal(json_object_size(st), 9);
        assert_string_equal(fx_str(st, "execution_id"), id);
        assert_string_equal(fx_str(st, "workflow_id"), "wf-demo");
        if (strcmp(fx_str(st, "status"), want[i].status) != 0)
            fail_msg("event %zu (%s): status %s, expected %s", i, want[i].type,
                     fx_str(st, "status"), want[i].status);
        if (want[i].current)
            assert_string_equal(fx_str(st, "current_phase"), want[i].current);
        else
            assert_true(json_is_null(json_object_get(st, "current_phase")));
        assert_int_equal(fx_num(st, "completed_phases"), want[i].completed);
        assert_int_equal(fx_num(st, "total_phases"), 3);
        assert_int_equal(json_is_null(json_object_get(st, "started_at")), i < 2);
        if (i == sizeof want / sizeof want[0] - 1 && !json_equal(st, final))
            fail_msg("the last event's status differs from execution.status");
        json_decref(ev);
    }
    json_decref(final);

    /* the log keeps the event data alone */
    assert_int_equal(replay(f, id, 0, 100, &body), 200);
    size_t i;
    json_t *ev;
    json_array_foreach(json_object_get(body, "events"), i, ev)
    {
        assert_null(json_object_get(ev, "status"));
        assert_null(json_object_get(json_object_get(ev, "data"), "status"));
    }
    assert_int_equal(json_array_size(json_object_get(body, "events")), 11);
    json_decref(body);
}

static void test_failure_skips_later_phases(void **state)
{
    fx_t *f = *state;
    create_workflow(f, "wf-demo", 3);
    char id[BROKER_EXEC_ID_SIZE];
    json_t *a1 = start_on_w1(f, "wf-demo", 1, id);
    fx_result(f, "W1", a1, "failed", "partial", "the agent gave up");
    json_decref(a1);
    json_t *st = status_of(f, "wf-demo", id);
    assert_string_equal(fx_str(st, "status"), "failed");
    assert_string_equal(fx_str(st, "error"), "Phase p1 failed: the agent gave up");
    assert_true(json_is_null(json_object_get(st, "current_phase")));
    json_decref(st);
    assert_int_equal(fx_db_int(f, "SELECT count(*) FROM phases WHERE execution_id='%s' AND "
                                  "status='skipped'", id),
                     2);
    assert_int_equal(fx_db_int(f, "SELECT count(*) FROM attempts WHERE execution_id='%s' AND "
                                  "status='failed' AND exit_code=3", id),
                     1);
    assert_int_equal(fx_count_sent(f, "assign"), 0);
    /* the slot is free again: new work goes to W1 */
    char id2[BROKER_EXEC_ID_SIZE];
    start(f, "wf-demo", id2);
    expect_sent(f, "assign", "W1", "execution_id", id2);
}

static void test_max_attempts_one_fails(void **state)
{
    fx_t *f = *state;
    create_workflow(f, "wf-once", 1);
    char id[BROKER_EXEC_ID_SIZE];
    json_decref(start_on_w1(f, "wf-once", 1, id));
    fx_worker_send(f, "W1", SYN_MSG_DISCONNECT, json_object());
    json_t *st = status_of(f, "wf-once", id);
    assert_string_equal(fx_str(st, "status"), "failed");
    const char *error = fx_str(st, "error");
    assert_non_null(strstr(error, "Phase p1 failed: worker lost 1 time (max_attempts 1)"));
    assert_non_null(strstr(error, "disconnected"));
    json_decref(st);
    fx_ready(f, "W2", 1, NULL);
    assert_int_equal(fx_count_sent(f, "assign"), 0); /* never run twice */
}

/* Stopping the broker mid-phase: the new one waits for the worker to come back
 * with its attempt and adopts it (no second run); an attempt whose worker does
 * not return within the adoption window runs again. */
static void test_restart_adopts_or_requeues(void **state)
{
    fx_t *f = *state;
    create_workflow(f, "wf-demo", 3);
    char kept[BROKER_EXEC_ID_SIZE], orphan[BROKER_EXEC_ID_SIZE], waiting[BROKER_EXEC_ID_SIZE];
    start(f, "wf-demo", kept);
    start(f, "wf-demo", orphan);
    fx_ready(f, "W1", 1, NULL);
    fx_ready(f, "W2", 1, NULL);
    json_t *ak = fx_take(f, "assign", "W1");
    json_t *ao = fx_take(f, "assign", "W2");
    assert_non_null(ak);
    assert_non_null(ao);
    assert_string_equal(fx_str(ak, "execution_id"), kept);
    start(f, "wf-demo", waiting); /* no slot: stays queued */

    fx_restart(f);
    assert_int_equal(broker_engine_recover(f->engine, f->now), 3);
    fx_turn(f);
    assert_int_equal(broker_engine_active_count(f->engine), 3);

    /* W1 comes back with its attempt: adopted, nothing re-sent */
    fx_ready(f, "W1", 1, json_pack("[o]", fx_ref_of(ak)));
    assert_int_equal(fx_count_sent(f, "assign"), 0);
    assert_int_equal(fx_count_sent(f, "cancel"), 0);
    expect_status(f, "wf-demo", kept, "running");

    /* W2 never returns: after the adoption window (two liveness windows) its
     * attempt is lost and requeued; W1 keeps beating meanwhile */
    for (int i = 0; i < 4; i++)
        fx_advance(f, FX_HEARTBEAT_MS * FX_LIVENESS / 2, "W1");
    fx_advance(f, 1, "W1");
    fx_ready(f, "W3", 2, NULL);
    json_t *retry = fx_take(f, "assign", "W3");
    assert_non_null(retry);
    assert_string_equal(fx_str(retry, "execution_id"), orphan);
    assert_int_equal(fx_num(retry, "attempt"), 2);
    json_t *queued = fx_take(f, "assign", "W3");
    assert_non_null(queued);
    assert_string_equal(fx_str(queued, "execution_id"), waiting);
    assert_int_equal(fx_num(queued, "attempt"), 1);

    fx_result(f, "W1", ak, "completed", "adopted output", NULL);
    expect_sent(f, "assign", "W1", "prompt", "draft from [adopted output] {{unknown}}");
    json_decref(ak);
    json_decref(ao);
    json_decref(retry);
    json_decref(queued);
}

static void test_status_lookup_by_prefix(void **state)
{
    fx_t *f = *state;
    create_workflow(f, "wf-demo", 3);
    create_workflow(f, "wf-other", 3);
    char ids[40][BROKER_EXEC_ID_SIZE];
    for (int i = 0; i < 40; i++)
        start(f, "wf-demo", ids[i]);
    json_t *body;
    /* unique prefix */
    char prefix[16];
    snprintf(prefix, sizeof prefix, "%.13s", ids[7]);
    int status = fx_call(f, "execution.status",
                         json_pack("{s:s, s:s}", "workflow_id", "wf-demo", "execution_id", prefix),
                         &body);
    /* 12 random hex digits: 8 of them make a unique prefix among 40 */
    assert_int_equal(status, 200);
    assert_string_equal(fx_str(body, "execution_id"), ids[7]);
    json_decref(body);
    /* none */
    fx_expect(f, "execution.status",
              json_pack("{s:s, s:s}", "workflow_id", "wf-demo", "execution_id", "exec-zz"), 404,
              "Execution not found: exec-zz");
    /* ambiguous */
    assert_int_equal(fx_call(f, "execution.status",
                             json_pack("{s:s, s:s}", "workflow_id", "wf-demo", "execution_id",
                                       "exec-"),
                             &body),
                     409);
    const char *d = fx_str(body, "detail");
    assert_memory_equal(d, "Ambiguous execution id exec-: matches exec-", 43);
    assert_non_null(strstr(d, "(more than 5 matches)"));
    json_decref(body);
    /* another workflow's execution */
    char expected[128];
    snprintf(expected, sizeof expected, "Execution %s not found for workflow wf-other", ids[3]);
    fx_expect(f, "execution.status",
              json_pack("{s:s, s:s}", "workflow_id", "wf-other", "execution_id", ids[3]), 404,
              expected);

    /* active: newest first, limit applied after the filter */
    assert_int_equal(fx_call(f, "execution.active", json_pack("{s:i}", "limit", 3), &body), 200);
    assert_int_equal(json_array_size(body), 3);
    assert_string_equal(fx_str(json_array_get(body, 0), "execution_id"), ids[39]);
    assert_string_equal(fx_str(json_array_get(body, 2), "execution_id"), ids[37]);
    json_decref(body);
    fx_expect(f, "execution.active", json_pack("{s:i}", "limit", 0), 400, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        fx_unit_test(test_execution_start_errors),
        fx_unit_test(test_three_phases_complete),
        fx_unit_test(test_event_status_and_eviction),
        fx_unit_test(test_failure_skips_later_phases),
        fx_unit_test(test_max_attempts_one_fails),
        fx_unit_test(test_restart_adopts_or_requeues),
        fx_unit_test(test_status_lookup_by_prefix),
    };
    return cmocka_run_group_tests_name("broker_engine", tests, NULL, NULL);
}
