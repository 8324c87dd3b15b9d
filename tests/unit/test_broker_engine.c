/* broker/engine and broker/api in-process: real SQLite in a temporary directory,
 * fake workers (identities and hand-made messages), and the outbox read back to
 * see what the broker would have sent (tests/support/broker_fixture). Every
 * message the broker produces is checked against its protocol schema. */
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

/* --- api ------------------------------------------------------------------- */

static void test_workflow_create_get_list(void **state)
{
    fx_t *f = *state;
    json_t *body;
    json_t *args = json_pack("{s:s, s:[{s:s, s:s, s:i, s:s}]}", "name", "Gen", "phases",
                             "phase_id", "a", "name", "A", "order", 1, "prompt_template", "x");
    assert_int_equal(fx_call(f, "workflow.create", args, &body), 201);
    const char *id = fx_str(body, "id");
    assert_int_equal(strlen(id), 15);
    assert_memory_equal(id, "wf-", 3);
    assert_string_equal(fx_str(body, "workflow_type"), "custom");
    assert_string_equal(fx_str(body, "classification"), "standard");
    assert_string_equal(fx_str(body, "status"), "created");
    assert_int_equal(json_object_size(body), 5);
    char gen_id[32];
    snprintf(gen_id, sizeof gen_id, "%s", id);
    json_decref(body);

    create_workflow(f, "wf-demo", 3);
    assert_int_equal(fx_call(f, "workflow.get", json_pack("{s:s}", "id", "wf-demo"), &body), 200);
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    /* created_at is the only moving part */
    char *created = strstr(text, ",\"created_at\":\"");
    assert_non_null(created);
    *created = '\0';
    assert_string_equal(
        text,
        "{\"id\":\"wf-demo\",\"name\":\"Demo\",\"description\":null,\"workflow_type\":\"custom\","
        "\"classification\":\"standard\",\"input_declarations\":["
        "{\"name\":\"topic\",\"description\":null,\"required\":true,\"default\":null},"
        "{\"name\":\"tone\",\"description\":null,\"required\":true,\"default\":\"dry\"}],"
        "\"phases\":["
        "{\"phase_id\":\"p1\",\"name\":\"Plan\",\"order\":1,\"prompt_template\":"
        "\"plan {{topic}} in a {{tone}} tone for $ARGUMENTS ({{execution_id}})\","
        "\"model\":null,\"timeout_seconds\":300,\"max_attempts\":3,\"description\":null,"
        "\"argument_hint\":null,\"allowed_tools\":[],\"network\":\"host\"},"
        "{\"phase_id\":\"p2\",\"name\":\"Draft\",\"order\":2,\"prompt_template\":"
        "\"draft from [{{p1}}] {{unknown}}\",\"model\":null,\"timeout_seconds\":300,"
        "\"max_attempts\":3,\"description\":null,\"argument_hint\":null,\"allowed_tools\":[],"
        "\"network\":\"host\"},"
        "{\"phase_id\":\"p3\",\"name\":\"Review\",\"order\":3,\"prompt_template\":"
        "\"review [{{p1}}] [{{p2}}] {{workflow_id}} {{task}}\",\"model\":\"big\","
        "\"timeout_seconds\":7,\"max_attempts\":3,\"description\":null,\"argument_hint\":null,"
        "\"allowed_tools\":[],\"network\":\"host\"}]");
    free(text);

    fx_expect(f, "workflow.create",
              json_pack("{s:s, s:s, s:[{s:s, s:s, s:i, s:s}]}", "id", "wf-demo", "name", "again",
                        "phases", "phase_id", "a", "name", "A", "order", 1, "prompt_template", "x"),
              409, "Workflow wf-demo already exists");

    fx_expect(f, "workflow.get", json_pack("{s:s}", "id", "nope"), 404, "Workflow nope not found");

    assert_int_equal(fx_call(f, "workflow.list", json_pack("{s:i, s:i}", "page", 1, "page_size", 1),
                             &body),
                     200);
    assert_int_equal(fx_num(body, "total"), 2);
    assert_int_equal(fx_num(body, "page_size"), 1);
    json_t *first = json_array_get(json_object_get(body, "workflows"), 0);
    assert_string_equal(fx_str(first, "id"), "wf-demo");
    assert_int_equal(fx_num(first, "phase_count"), 3);
    json_decref(body);
    assert_int_equal(fx_call(f, "workflow.list", json_pack("{s:i, s:i}", "page", 2, "page_size", 1),
                             &body),
                     200);
    assert_string_equal(fx_str(json_array_get(json_object_get(body, "workflows"), 0), "id"),
                        gen_id);
    json_decref(body);
}

static void test_workflow_create_rejects(void **state)
{
    fx_t *f = *state;
    json_t *body;
    fx_expect(f, "workflow.create",
              json_pack("{s:s, s:[{s:s, s:s, s:i, s:s}, {s:s, s:s, s:i, s:s}]}", "name", "d",
                        "phases", "phase_id", "a", "name", "A", "order", 1, "prompt_template", "x",
                        "phase_id", "a", "name", "B", "order", 2, "prompt_template", "y"), 422,
              "Duplicate phase_id 'a' in phases[0] and phases[1]");
    fx_expect(f, "workflow.create",
              json_pack("{s:s, s:[{s:s, s:s, s:i, s:s}, {s:s, s:s, s:i, s:s}]}", "name", "d",
                        "phases", "phase_id", "a", "name", "A", "order", 5, "prompt_template", "x",
                        "phase_id", "b", "name", "B", "order", 5, "prompt_template", "y"), 422,
              "Duplicate order 5 in phases[0] and phases[1]");

    /* shapes the gateway should have stopped: 400, never a crash */
    json_t *bad[] = {
        json_pack("{s:s, s:[]}", "name", "no phases", "phases"),
        json_pack("{s:[{s:s, s:s, s:i, s:s}]}", "phases", "phase_id", "a", "name", "A", "order",
                  1, "prompt_template", "x"),
        json_pack("{s:s, s:s, s:[{s:s, s:s, s:i, s:s}]}", "id", "-bad", "name", "n", "phases",
                  "phase_id", "a", "name", "A", "order", 1, "prompt_template", "x"),
        json_pack("{s:s, s:[{s:s, s:s, s:s, s:s}]}", "name", "n", "phases", "phase_id", "a",
                  "name", "A", "order", "1", "prompt_template", "x"),
        json_pack("{s:s, s:[{s:s, s:s, s:i, s:s, s:i}]}", "name", "n", "phases", "phase_id", "a",
                  "name", "A", "order", 1, "prompt_template", "x", "timeout_seconds", 0),
        json_pack("{s:s, s:[i]}", "name", "n", "phases", 4),
        json_pack("{s:s, s:i, s:[{s:s, s:s, s:i, s:s}]}", "name", "n", "input_declarations", 3,
                  "phases", "phase_id", "a", "name", "A", "order", 1, "prompt_template", "x"),
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(fx_call(f, "workflow.create", bad[i], &body), 400);
        assert_memory_equal(fx_str(body, "detail"), "bad request: ", 13);
        json_decref(body);
    }
    fx_expect(f, "no.such.op", json_object(), 400, "unknown operation no.such.op");
    fx_expect(f, "health", json_array(), 400, NULL);
    assert_int_equal(fx_call(f, "health", json_object(), &body), 200);
    assert_string_equal(fx_str(body, "broker"), "up");
    assert_int_equal(fx_num(body, "workers"), 0);
    json_decref(body);
}

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

/* --- the whole run --------------------------------------------------------- */

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
    assert_int_equal(json_object_size(st), 9);
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

/* A silent worker is dead after liveness intervals; its attempt runs again on
 * another worker; when it wakes up, its stale result is acked and dropped. */
static void test_lost_worker_retry_and_fencing(void **state)
{
    fx_t *f = *state;
    create_workflow(f, "wf-demo", 3);
    char id[BROKER_EXEC_ID_SIZE];
    json_t *a1 = start_on_w1(f, "wf-demo", 1, id);
    fx_ready(f, "W2", 1, NULL);
    assert_int_equal(fx_count_sent(f, "assign"), 0);

    /* W2 keeps talking, W1 falls silent */
    fx_advance(f, FX_HEARTBEAT_MS * FX_LIVENESS - 10, "W2");
    assert_int_equal(fx_count_sent(f, "assign"), 0);
    fx_advance(f, 20, NULL);
    json_t *a2 = fx_take(f, "assign", "W2");
    assert_non_null(a2);
    assert_string_equal(fx_str(a2, "phase_id"), "p1");
    assert_int_equal(fx_num(a2, "attempt"), 2);

    /* W1 wakes up: unknown now, told to register; it does, still running attempt 1 */
    fx_worker_send(f, "W1", SYN_MSG_HEARTBEAT, json_object());
    expect_sent(f, "disconnect", "W1", NULL, NULL);
    fx_ready(f, "W1", 1, json_pack("[o]", fx_ref_of(a1)));
    json_t *cancel = fx_take(f, "cancel", "W1");
    assert_non_null(cancel);
    assert_int_equal(fx_num(cancel, "attempt"), 1);
    json_decref(cancel);
    /* its slot is taken by the stale attempt until it answers */
    char other[BROKER_EXEC_ID_SIZE];
    start(f, "wf-demo", other);
    assert_null(fx_take(f, "assign", "W1"));
    fx_result(f, "W1", a1, "completed", "STALE OUTPUT", NULL);
    expect_sent(f, "result_ack", "W1", NULL, NULL);
    expect_sent(f, "assign", "W1", "execution_id", other); /* the slot came back */

    fx_result(f, "W2", a2, "completed", "REAL OUTPUT", NULL);
    assert_int_equal(fx_db_int(f, "SELECT count(*) FROM phases WHERE execution_id='%s' AND "
                                  "phase_id='p1' AND output='REAL OUTPUT'", id),
                     1);
    assert_int_equal(fx_db_int(f, "SELECT count(*) FROM attempts WHERE execution_id='%s' AND "
                                  "phase_id='p1' AND status='lost'", id),
                     1);
    expect_sent(f, "assign", "W2", "prompt", "draft from [REAL OUTPUT] {{unknown}}");
    json_decref(a1);
    json_decref(a2);
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
 * not return within the liveness window runs again. */
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

    /* W2 never returns: after the window its attempt is lost and requeued */
    fx_advance(f, FX_HEARTBEAT_MS * FX_LIVENESS + 1, "W1");
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

/* Outputs above 1 MiB are cut with the marker; a render over the bound fails the
 * phase with the reason. */
static void test_output_cut_and_render_bound(void **state)
{
    fx_t *f = *state;
    json_t *args = json_pack("{s:s, s:s, s:[{s:s, s:s, s:i, s:s}, {s:s, s:s, s:i, s:s}]}", "id",
                             "wf-big", "name", "big", "phases", "phase_id", "p1", "name", "A",
                             "order", 1, "prompt_template", "x", "phase_id", "p2", "name", "B",
                             "order", 2, "prompt_template",
                             "{{p1}}{{p1}}{{p1}}{{p1}}{{p1}}{{p1}}{{p1}}{{p1}}{{p1}}");
    fx_expect(f, "workflow.create", args, 201, NULL);
    char id[BROKER_EXEC_ID_SIZE];
    json_t *a1 = start_on_w1(f, "wf-big", 1, id);
    size_t big = 2 * 1024 * 1024;
    char *output = malloc(big + 1);
    memset(output, 'a', big);
    output[big] = '\0';
    output[1024 * 1024 - 1] = '\xc3'; /* a 2-byte character across the cut */
    output[1024 * 1024] = '\xa9';
    fx_result(f, "W1", a1, "completed", output, NULL);
    free(output);
    json_decref(a1);
    assert_int_equal(fx_db_int(f, "SELECT length(CAST(output AS BLOB)) FROM phases WHERE "
                                  "execution_id='%s' AND phase_id='p1'", id),
                     1024 * 1024 - 1 + (int64_t)strlen(SYN_OUTPUT_MARKER));
    assert_int_equal(fx_db_int(f, "SELECT output LIKE '%%[output truncated: more than 1 MiB]' "
                                  "FROM phases WHERE execution_id='%s' AND phase_id='p1'", id),
                     1);
    /* 9 × ~1 MiB > 8 MiB: phase 2 fails at render time, never dispatched */
    assert_int_equal(fx_count_sent(f, "assign"), 0);
    json_t *st = status_of(f, "wf-big", id);
    assert_string_equal(fx_str(st, "status"), "failed");
    assert_non_null(strstr(fx_str(st, "error"), "Phase p2 failed: rendered prompt exceeds"));
    json_decref(st);
}

/* Messages before READY get a DISCONNECT; progress from a stale attempt gets a
 * CANCEL once; an attempt that never gets a result fails at the backstop. */
static void test_unregistered_stale_progress_and_backstop(void **state)
{
    fx_t *f = *state;
    fx_worker_send(f, "WX", SYN_MSG_PROGRESS,
                   json_pack("{s:s, s:s, s:i, s:s, s:s}", "execution_id", "exec-x", "phase_id",
                             "p", "attempt", 1, "kind", "output", "data", "hi"));
    expect_sent(f, "disconnect", "WX", NULL, NULL);

    fx_ready(f, "W1", 2, NULL);
    for (int i = 0; i < 2; i++)
        fx_worker_send(f, "W1", SYN_MSG_PROGRESS,
                       json_pack("{s:s, s:s, s:i, s:s, s:s}", "execution_id", "exec-gone",
                                 "phase_id", "p", "attempt", 4, "kind", "output", "data", "x"));
    assert_int_equal(fx_count_sent(f, "cancel"), 1);

    create_workflow(f, "wf-demo", 3);
    char id[BROKER_EXEC_ID_SIZE];
    start(f, "wf-demo", id);
    json_t *a1 = fx_take(f, "assign", "W1");
    assert_non_null(a1);
    /* still quiet long after timeout + grace + window, while heartbeating */
    for (int i = 0; i < 40; i++)
        fx_advance(f, 10 * 1000, "W1");
    json_t *st = status_of(f, "wf-demo", id);
    assert_string_equal(fx_str(st, "status"), "failed");
    assert_non_null(strstr(fx_str(st, "error"), "no result within the timeout of 300 s"));
    json_decref(st);
    expect_sent(f, "cancel", "W1", "execution_id", "exec-gone");
    expect_sent(f, "cancel", "W1", "execution_id", id);
    json_decref(a1);
}

/* A second READY on the same connection (the worker was told twice to register)
 * must not lose an ASSIGN that was in flight when the worker wrote it. */
static void test_repeated_ready_keeps_attempts(void **state)
{
    fx_t *f = *state;
    create_workflow(f, "wf-once", 1);
    char id[BROKER_EXEC_ID_SIZE];
    json_t *a1 = start_on_w1(f, "wf-once", 1, id);
    fx_ready(f, "W1", 1, NULL);
    expect_status(f, "wf-once", id, "running");
    fx_result(f, "W1", a1, "completed", "done", NULL);
    json_decref(a1);
    json_t *st = status_of(f, "wf-once", id);
    assert_string_equal(fx_str(st, "status"), "running"); /* p2 now */
    assert_int_equal(fx_num(st, "completed_phases"), 1);
    json_decref(st);
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

/* --- issue 4: control, queries, events ------------------------------------- */

/* Every 400 rule of cancel/pause/resume/inject, word for word, and the reply of
 * a successful control call. */
static void test_control_rules(void **state)
{
    fx_t *f = *state;
    create_workflow(f, "wf-demo", 3);
    char id[BROKER_EXEC_ID_SIZE], done[BROKER_EXEC_ID_SIZE];
    start(f, "wf-demo", id);
    json_t *body;

    expect_400(f, "execution.resume", id, NULL, "Cannot resume execution in state pending");
    expect_control_reply(f, "execution.pause", id, NULL, "Execution paused", "paused");
    expect_400(f, "execution.pause", id, NULL, "Cannot pause execution in state paused");
    assert_int_equal(control(f, "execution.state", id, NULL, &body), 200);
    assert_string_equal(fx_str(body, "state"), "paused");
    assert_string_equal(fx_str(body, "execution_id"), id);
    assert_int_equal(json_object_size(body), 2);
    json_decref(body);
    assert_int_equal(control(f, "execution.resume", id, NULL, &body), 200);
    assert_string_equal(fx_str(body, "state"), "pending"); /* nothing had run yet */
    assert_string_equal(fx_str(body, "message"), "Execution resumed");
    json_decref(body);

    assert_int_equal(control(f, "execution.inject", id,
                             json_pack("{s:s}", "message", "hello"), &body),
                     200);
    assert_string_equal(fx_str(body, "message"), "Message queued");
    assert_string_equal(fx_str(body, "state"), "pending");
    assert_true(json_is_true(json_object_get(body, "success")));
    json_decref(body);
    expect_400(f, "execution.inject", id, json_pack("{s:s}", "message", ""),
               "bad request: message must not be empty");
    expect_400(f, "execution.inject", id, json_pack("{s:s, s:s}", "message", "x", "role", "admin"),
               "bad request: role must be \"user\" or \"system\"");
    expect_400(f, "execution.inject", id, json_object(), "bad request: message is required");

    expect_control_reply(f, "execution.cancel", id, json_pack("{s:n}", "reason"),
                         "Cancel signal queued", "cancelled");
    json_t *st = status_of(f, "wf-demo", id);
    assert_string_equal(fx_str(st, "status"), "cancelled");
    assert_string_equal(fx_str(st, "error"), "Cancelled by user");
    assert_false(json_is_null(json_object_get(st, "completed_at")));
    json_decref(st);

    expect_400(f, "execution.cancel", id, NULL, "Cannot cancel execution in state cancelled");
    expect_400(f, "execution.pause", id, NULL, "Cannot pause execution in state cancelled");
    expect_400(f, "execution.resume", id, NULL, "Cannot resume execution in state cancelled");
    expect_400(f, "execution.inject", id, json_pack("{s:s}", "message", "late"),
               "Cannot inject into terminal execution");
    assert_int_equal(control(f, "execution.state", id, NULL, &body), 200);
    assert_string_equal(fx_str(body, "state"), "cancelled");
    json_decref(body);

    /* a completed one */
    start(f, "wf-demo", done);
    fx_ready(f, "W1", 1, NULL);
    for (int i = 0; i < 3; i++) {
        json_t *a = fx_take(f, "assign", "W1");
        assert_non_null(a);
        fx_result(f, "W1", a, "completed", "ok", NULL);
        json_decref(a);
    }
    expect_400(f, "execution.cancel", done, NULL, "Cannot cancel execution in state completed");
    expect_400(f, "execution.pause", done, NULL, "Cannot pause execution in state completed");
    expect_400(f, "execution.resume", done, NULL, "Cannot resume execution in state completed");
    expect_400(f, "execution.inject", done, json_pack("{s:s}", "message", "x"),
               "Cannot inject into terminal execution");

    /* prefixes: none → 404, several → 409, unique → found */
    expect_control(f, "execution.cancel", "exec-zz", NULL, 404, "Execution not found: exec-zz");
    assert_int_equal(control(f, "execution.pause", "exec-", NULL, &body), 409);
    assert_memory_equal(fx_str(body, "detail"), "Ambiguous execution id exec-", 28);
    json_decref(body);
    char prefix[20];
    snprintf(prefix, sizeof prefix, "%.16s", done);
    assert_int_equal(control(f, "execution.state", prefix, NULL, &body), 200);
    assert_string_equal(fx_str(body, "execution_id"), done);
    assert_string_equal(fx_str(body, "state"), "completed");
    json_decref(body);
    fx_expect(f, "execution.cancel", json_object(), 400, "bad request: execution_id is required");
}

/* Cancel while a phase runs: CANCEL to its worker at once, the execution is
 * cancelled with the reason, the phase cancelled, later phases skipped, nothing
 * more dispatched; the worker's slot frees when its (stale) result arrives. */
static void test_cancel_running(void **state)
{
    fx_t *f = *state;
    create_workflow(f, "wf-demo", 3);
    char id[BROKER_EXEC_ID_SIZE], other[BROKER_EXEC_ID_SIZE];
    json_t *a1 = start_on_w1(f, "wf-demo", 1, id);
    expect_control_state(f, "execution.cancel", id, json_pack("{s:s}", "reason", "wrong inputs"),
                         "cancelled");
    json_t *cancel = fx_take(f, "cancel", "W1");
    assert_non_null(cancel);
    assert_string_equal(fx_str(cancel, "execution_id"), id);
    assert_string_equal(fx_str(cancel, "phase_id"), "p1");
    assert_int_equal(fx_num(cancel, "attempt"), 1);
    json_decref(cancel);
    json_t *st = status_of(f, "wf-demo", id);
    assert_string_equal(fx_str(st, "status"), "cancelled");
    assert_string_equal(fx_str(st, "error"), "wrong inputs");
    assert_true(json_is_null(json_object_get(st, "current_phase")));
    json_decref(st);

    start(f, "wf-demo", other);
    assert_null(fx_take(f, "assign", "W1")); /* the slot is still busy */
    fx_result(f, "W1", a1, "cancelled", "", "cancelled");
    expect_sent(f, "result_ack", "W1", NULL, NULL);
    expect_sent(f, "assign", "W1", "execution_id", other);
    json_decref(a1);

    json_t *d = detail_of(f, id);
    assert_string_equal(fx_str(phase_in(d, "p1"), "status"), "cancelled");
    assert_string_equal(fx_str(phase_in(d, "p2"), "status"), "skipped");
    assert_string_equal(fx_str(phase_in(d, "p3"), "status"), "skipped");
    json_t *attempt = json_array_get(json_object_get(phase_in(d, "p1"), "attempts"), 0);
    assert_string_equal(fx_str(attempt, "status"), "cancelled");
    assert_string_equal(fx_str(attempt, "worker"), "W1");
    json_decref(d);

    json_t *types = event_types(f, id);
    assert_string_equal(json_string_value(json_array_get(types, json_array_size(types) - 1)),
                        "ExecutionCancelled");
    json_decref(types);
    json_t *body;
    assert_int_equal(replay(f, id, 0, 100, &body), 200);
    assert_true(json_is_true(json_object_get(body, "terminal")));
    json_t *events = json_object_get(body, "events");
    json_t *last = json_array_get(events, json_array_size(events) - 1);
    assert_string_equal(fx_str(last, "type"), "ExecutionCancelled");
    assert_string_equal(fx_str(json_object_get(last, "data"), "error"), "wrong inputs");
    assert_string_equal(fx_str(json_object_get(last, "data"), "phase_id"), "p1");
    json_decref(body);
}

/* Pause during phase 1 of 3: phase 1 finishes and keeps its result, phase 2 does
 * not start however long it waits; messages injected meanwhile land in phase 2's
 * prompt after resume, and only there. */
static void test_pause_inject_resume(void **state)
{
    fx_t *f = *state;
    create_workflow(f, "wf-demo", 3);
    char id[BROKER_EXEC_ID_SIZE];
    json_t *a1 = start_on_w1(f, "wf-demo", 2, id);
    expect_control(f, "execution.pause", id, json_pack("{s:s}", "reason", "look"), 200, NULL);
    json_t *paused = fx_take_event(f, id, "ExecutionPaused");
    assert_non_null(paused);
    assert_string_equal(fx_str(json_object_get(paused, "data"), "reason"), "look");
    assert_string_equal(fx_str(json_object_get(paused, "data"), "phase_id"), "p1");
    json_decref(paused);
    fx_result(f, "W1", a1, "completed", "OUT1", NULL);
    json_decref(a1);
    for (int i = 0; i < 50; i++)
        fx_advance(f, 100, "W1");
    assert_int_equal(fx_count_sent(f, "assign"), 0);
    json_t *st = status_of(f, "wf-demo", id);
    assert_string_equal(fx_str(st, "status"), "paused");
    assert_int_equal(fx_num(st, "completed_phases"), 1);
    json_decref(st);
    json_t *d = detail_of(f, id);
    assert_string_equal(fx_str(phase_in(d, "p1"), "status"), "completed");
    assert_string_equal(fx_str(phase_in(d, "p1"), "output_preview"), "OUT1");
    assert_string_equal(fx_str(phase_in(d, "p2"), "status"), "pending");
    json_decref(d);

    expect_control_state(f, "execution.inject", id,
                         json_pack("{s:s, s:s}", "message", "focus on tests", "role", "user"),
                         "paused");
    expect_control(f, "execution.inject", id,
                   json_pack("{s:s, s:s}", "message", "be terse", "role", "system"), 200, NULL);
    assert_int_equal(fx_count_sent(f, "inject"), 0); /* nothing runs: nobody to tell live */
    json_t *injected = fx_take_event(f, id, "MessageInjected");
    assert_non_null(injected);
    assert_string_equal(fx_str(json_object_get(injected, "data"), "message"), "focus on tests");
    assert_false(json_is_true(json_object_get(json_object_get(injected, "data"), "live")));
    json_decref(injected);

    expect_control_state(f, "execution.resume", id, NULL, "running");
    json_t *a2 = fx_take(f, "assign", "W1");
    assert_non_null(a2);
    assert_string_equal(fx_str(a2, "phase_id"), "p2");
    assert_string_equal(fx_str(a2, "prompt"), "draft from [OUT1] {{unknown}}\n\n"
                                              "## Operator messages\n\n"
                                              "- [user] focus on tests\n"
                                              "- [system] be terse\n");
    fx_result(f, "W1", a2, "completed", "OUT2", NULL);
    json_decref(a2);
    json_t *a3 = fx_take(f, "assign", "W1");
    assert_non_null(a3);
    assert_null(strstr(fx_str(a3, "prompt"), "Operator messages"));
    json_decref(a3);
    json_t *types = event_types(f, id);
    assert_true(has_type(types, "ExecutionResumed"));
    json_decref(types);
    d = detail_of(f, id);
    json_t *msgs = json_object_get(d, "operator_messages");
    assert_int_equal(json_array_size(msgs), 2);
    assert_string_equal(fx_str(json_array_get(msgs, 1), "phase_id"), "p2");
    json_decref(d);

    /* paused before anything ran: a free worker gets nothing until resume */
    char filler[BROKER_EXEC_ID_SIZE], later[BROKER_EXEC_ID_SIZE];
    start(f, "wf-demo", filler); /* takes W1's second slot */
    json_decref(fx_take(f, "assign", "W1"));
    start(f, "wf-demo", later);
    expect_control(f, "execution.pause", later, NULL, 200, NULL);
    fx_ready(f, "W9", 1, NULL);
    assert_null(fx_take(f, "assign", "W9"));
    st = status_of(f, "wf-demo", later);
    assert_string_equal(fx_str(st, "status"), "paused");
    assert_string_equal(fx_str(st, "current_phase"), "p1");
    json_decref(st);
    expect_control_state(f, "execution.resume", later, NULL, "pending");
    expect_sent(f, "assign", "W9", "execution_id", later);
    st = status_of(f, "wf-demo", later);
    assert_string_equal(fx_str(st, "status"), "running");
    assert_false(json_is_null(json_object_get(st, "started_at")));
    json_decref(st);
}

/* A message injected while a phase runs goes live to its worker and waits for
 * the next phase's prompt; a retry of that phase carries the same messages;
 * waiting messages are bounded. Injected messages survive a broker restart. */
static void test_inject_live_and_restart(void **state)
{
    fx_t *f = *state;
    create_workflow(f, "wf-demo", 3);
    char id[BROKER_EXEC_ID_SIZE];
    json_t *a1 = start_on_w1(f, "wf-demo", 1, id);
    expect_control_state(f, "execution.inject", id, json_pack("{s:s}", "message", "use the cache"),
                         "running");
    json_t *live = fx_take(f, "inject", "W1");
    assert_non_null(live);
    assert_string_equal(fx_str(live, "execution_id"), id);
    assert_string_equal(fx_str(live, "phase_id"), "p1");
    assert_int_equal(fx_num(live, "attempt"), 1);
    assert_string_equal(fx_str(live, "role"), "user");
    assert_string_equal(fx_str(live, "message"), "use the cache");
    json_decref(live);
    json_t *ev = fx_take_event(f, id, "MessageInjected");
    assert_true(json_is_true(json_object_get(json_object_get(ev, "data"), "live")));
    json_decref(ev);

    /* restart: the waiting message is still there */
    fx_restart(f);
    assert_int_equal(broker_engine_recover(f->engine, f->now), 1);
    fx_turn(f);
    fx_ready(f, "W1", 1, json_pack("[o]", fx_ref_of(a1)));
    fx_result(f, "W1", a1, "completed", "OUT1", NULL);
    json_decref(a1);
    json_t *a2 = fx_take(f, "assign", "W1");
    assert_non_null(a2);
    assert_non_null(
        strstr(fx_str(a2, "prompt"), "## Operator messages\n\n- [user] use the cache\n"));
    /* its worker vanishes: the retry carries the same message */
    fx_worker_send(f, "W1", SYN_MSG_DISCONNECT, json_object());
    fx_ready(f, "W2", 1, NULL);
    json_t *again = fx_take(f, "assign", "W2");
    assert_non_null(again);
    assert_int_equal(fx_num(again, "attempt"), 2);
    assert_string_equal(fx_str(again, "prompt"), fx_str(a2, "prompt"));
    json_decref(a2);
    json_decref(again);

    for (int i = 0; i < BROKER_MESSAGES_WAITING_MAX; i++)
        expect_control(f, "execution.inject", id, json_pack("{s:s}", "message", "m"), 200, NULL);
    char text[128];
    snprintf(text, sizeof text, "Too many operator messages waiting for execution %s (limit %d)",
             id, BROKER_MESSAGES_WAITING_MAX);
    expect_400(f, "execution.inject", id, json_pack("{s:s}", "message", "one more"), text);
    char *big = malloc(BROKER_MESSAGE_MAX + 2);
    memset(big, 'x', BROKER_MESSAGE_MAX + 1);
    big[BROKER_MESSAGE_MAX + 1] = '\0';
    expect_400(f, "execution.inject", id, json_pack("{s:s}", "message", big),
               "bad request: message is longer than 65536 bytes");
    free(big);
}

/* retries: 2 with a 1 s back-off: failed, failed, completed — three attempts in
 * the detail, the waits 1 s then 2 s, PhaseRetrying each time. */
static void test_retries_with_backoff(void **state)
{
    fx_t *f = *state;
    create_retry_workflow(f, "wf-retry", 2, 1.0, 3);
    char id[BROKER_EXEC_ID_SIZE];
    json_t *a1 = start_on_w1(f, "wf-retry", 1, id);
    fx_result(f, "W1", a1, "failed", "", "boom 1");
    json_decref(a1);
    json_t *retrying = fx_take_event(f, id, "PhaseRetrying");
    assert_non_null(retrying);
    json_t *data = json_object_get(retrying, "data");
    assert_int_equal(fx_num(data, "attempt"), 1);
    assert_int_equal(fx_num(data, "next_attempt"), 2);
    assert_string_equal(fx_str(data, "cause"), "agent_failed");
    assert_string_equal(fx_str(data, "reason"), "boom 1");
    assert_true(json_real_value(json_object_get(data, "retry_in_seconds")) == 1.0);
    json_decref(retrying);
    json_t *st = status_of(f, "wf-retry", id);
    assert_string_equal(fx_str(st, "status"), "running");
    assert_string_equal(fx_str(st, "current_phase"), "p1");
    json_decref(st);
    fx_advance(f, 999, "W1");
    assert_int_equal(fx_count_sent(f, "assign"), 0);
    fx_advance(f, 1, "W1");
    json_t *a2 = fx_take(f, "assign", "W1");
    assert_non_null(a2);
    assert_int_equal(fx_num(a2, "attempt"), 2);
    fx_result(f, "W1", a2, "failed", "", "timed out after 300 s");
    json_decref(a2);
    retrying = fx_take_event(f, id, "PhaseRetrying");
    assert_string_equal(fx_str(json_object_get(retrying, "data"), "cause"), "timeout");
    assert_true(json_real_value(json_object_get(json_object_get(retrying, "data"),
                                                "retry_in_seconds")) == 2.0);
    json_decref(retrying);
    fx_advance(f, 1999, "W1");
    assert_int_equal(fx_count_sent(f, "assign"), 0);
    fx_advance(f, 1, "W1");
    json_t *a3 = fx_take(f, "assign", "W1");
    assert_non_null(a3);
    assert_int_equal(fx_num(a3, "attempt"), 3);
    fx_result(f, "W1", a3, "completed", "finally", NULL);
    json_decref(a3);
    json_t *a4 = fx_take(f, "assign", "W1");
    assert_string_equal(fx_str(a4, "prompt"), "after [finally]");
    json_decref(a4);

    json_t *d = detail_of(f, id);
    json_t *attempts = json_object_get(phase_in(d, "p1"), "attempts");
    assert_int_equal(json_array_size(attempts), 3);
    assert_string_equal(fx_str(json_array_get(attempts, 0), "status"), "failed");
    assert_string_equal(fx_str(json_array_get(attempts, 0), "error"), "boom 1");
    assert_int_equal(fx_num(json_array_get(attempts, 0), "exit_code"), 3);
    assert_string_equal(fx_str(json_array_get(attempts, 1), "status"), "timeout");
    assert_string_equal(fx_str(json_array_get(attempts, 1), "error"), "timed out after 300 s");
    assert_string_equal(fx_str(json_array_get(attempts, 2), "status"), "completed");
    assert_string_equal(fx_str(phase_in(d, "p1"), "status"), "completed");
    json_decref(d);
}

/* Retries run out: the error names the reason and the count. Agent failures and
 * lost workers are counted apart: with max_attempts 1 and retries 1, a failure
 * is retried, but losing the retry's worker fails the phase. The back-off
 * doubles up to 60 s. */
static void test_retries_exhausted_and_counted_apart(void **state)
{
    fx_t *f = *state;
    create_retry_workflow(f, "wf-r1", 1, 0, 3);
    char id[BROKER_EXEC_ID_SIZE];
    start(f, "wf-r1", id);
    fx_ready(f, "W1", 1, NULL);
    for (int i = 0; i < 2; i++)
        answer_on_w1(f, "failed", "", "nope"); /* back-off 0: at once */
    json_t *st = status_of(f, "wf-r1", id);
    assert_string_equal(fx_str(st, "status"), "failed");
    assert_string_equal(fx_str(st, "error"), "Phase p1 failed: nope (failed 2 times; retries 1)");
    json_decref(st);

    create_retry_workflow(f, "wf-r2", 1, 0, 1);
    start(f, "wf-r2", id);
    answer_on_w1(f, "failed", "", "flaky");
    json_t *a2 = fx_take(f, "assign", "W1");
    assert_non_null(a2);
    assert_int_equal(fx_num(a2, "attempt"), 2);
    json_decref(a2);
    fx_worker_send(f, "W1", SYN_MSG_DISCONNECT, json_object());
    st = status_of(f, "wf-r2", id);
    assert_string_equal(fx_str(st, "status"), "failed");
    assert_non_null(strstr(fx_str(st, "error"), "worker lost 1 time (max_attempts 1)"));
    json_decref(st);

    create_retry_workflow(f, "wf-r3", 5, 40, 3);
    start(f, "wf-r3", id);
    fx_ready(f, "W1", 1, NULL);
    answer_on_w1(f, "failed", "", "x");
    expect_retry_in(f, id, 40.0);
    fx_advance(f, 40000, "W1");
    answer_on_w1(f, "failed", "", "x");
    expect_retry_in(f, id, 60.0);
    /* cancel during the back-off: nothing is dispatched later */
    expect_control(f, "execution.cancel", id, NULL, 200, NULL);
    fx_advance(f, 61000, "W1");
    assert_int_equal(fx_count_sent(f, "assign"), 0);
}

/* Listing: total over all pages, newest first, filters, pages; runs of a
 * workflow; the detail's attempts (lost included); output; bad arguments. */
static void test_list_runs_detail_output(void **state)
{
    fx_t *f = *state;
    create_workflow(f, "wf-demo", 3);
    create_workflow(f, "wf-other", 3);
    char ids[7][BROKER_EXEC_ID_SIZE];
    for (int i = 0; i < 7; i++)
        start(f, i < 5 ? "wf-demo" : "wf-other", ids[i]);
    fx_ready(f, "W1", 1, NULL);
    json_t *a = fx_take(f, "assign", "W1"); /* ids[0], p1 */
    assert_string_equal(fx_str(a, "execution_id"), ids[0]);
    fx_worker_send(f, "W1", SYN_MSG_DISCONNECT, json_object()); /* lost: requeued */
    fx_ready(f, "W2", 1, NULL);
    json_decref(a);
    a = fx_take(f, "assign", "W2");
    assert_int_equal(fx_num(a, "attempt"), 2);
    fx_result(f, "W2", a, "failed", "partial", "bad thing");
    json_decref(a);
    json_t *body;
    expect_control(f, "execution.cancel", ids[6], NULL, 200, NULL);

    assert_int_equal(fx_call(f, "execution.list",
                             json_pack("{s:n, s:n, s:i, s:i}", "status", "workflow_id", "page", 1,
                                       "page_size", 3),
                             &body),
                     200);
    assert_int_equal(fx_num(body, "total"), 7);
    assert_int_equal(fx_num(body, "page"), 1);
    assert_int_equal(fx_num(body, "page_size"), 3);
    json_t *list = json_object_get(body, "executions");
    assert_int_equal(json_array_size(list), 3);
    assert_string_equal(fx_str(json_array_get(list, 0), "execution_id"), ids[6]);
    assert_string_equal(fx_str(json_array_get(list, 0), "status"), "cancelled");
    assert_string_equal(fx_str(json_array_get(list, 0), "workflow_name"), "Demo");
    assert_string_equal(fx_str(json_array_get(list, 2), "execution_id"), ids[4]);
    json_decref(body);
    assert_int_equal(fx_call(f, "execution.list",
                             json_pack("{s:i, s:i}", "page", 3, "page_size", 3), &body),
                     200);
    assert_int_equal(json_array_size(json_object_get(body, "executions")), 1);
    assert_string_equal(fx_str(json_array_get(json_object_get(body, "executions"), 0),
                               "execution_id"),
                        ids[0]);
    json_decref(body);
    assert_int_equal(fx_call(f, "execution.list",
                             json_pack("{s:s, s:s}", "status", "pending", "workflow_id", "wf-demo"),
                             &body),
                     200);
    /* ids[1] took W2's slot after ids[0] failed */
    assert_int_equal(fx_num(body, "total"), 3);
    assert_int_equal(fx_num(body, "page_size"), 50);
    assert_int_equal(json_array_size(json_object_get(body, "executions")), 3);
    json_decref(body);
    assert_int_equal(fx_call(f, "execution.list", json_pack("{s:s}", "status", "running"), &body),
                     200);
    assert_int_equal(fx_num(body, "total"), 1);
    assert_string_equal(fx_str(json_array_get(json_object_get(body, "executions"), 0),
                               "execution_id"),
                        ids[1]);
    json_decref(body);
    assert_int_equal(fx_call(f, "execution.list", json_pack("{s:s}", "status", "failed"), &body),
                     200);
    assert_int_equal(fx_num(body, "total"), 1);
    json_t *failed = json_array_get(json_object_get(body, "executions"), 0);
    assert_string_equal(fx_str(failed, "execution_id"), ids[0]);
    assert_string_equal(fx_str(failed, "error"), "Phase p1 failed: bad thing");
    assert_true(json_is_real(json_object_get(failed, "duration_seconds")));
    json_decref(body);
    fx_expect(f, "execution.list", json_pack("{s:s}", "status", "done"), 400,
              "bad request: status must be one of pending, running, paused, "
              "completed, failed, cancelled");
    fx_expect(f, "execution.list", json_pack("{s:i}", "page_size", 101), 400, NULL);

    assert_int_equal(fx_call(f, "workflow.runs",
                             json_pack("{s:s, s:i, s:i}", "workflow_id", "wf-other", "page", 1,
                                       "page_size", 10),
                             &body),
                     200);
    assert_int_equal(fx_num(body, "total"), 2);
    assert_string_equal(fx_str(body, "workflow_id"), "wf-other");
    assert_string_equal(fx_str(body, "workflow_name"), "Demo");
    assert_string_equal(fx_str(json_array_get(json_object_get(body, "runs"), 0), "execution_id"),
                        ids[6]);
    json_decref(body);
    fx_expect(f, "workflow.runs", json_pack("{s:s}", "workflow_id", "wf-x"), 404,
              "Workflow wf-x not found");

    json_t *d = detail_of(f, ids[0]);
    assert_string_equal(fx_str(d, "status"), "failed");
    assert_string_equal(fx_str(d, "task"), "the task");
    assert_string_equal(fx_str(json_object_get(d, "inputs"), "topic"), "cats");
    assert_string_equal(fx_str(json_object_get(d, "inputs"), "tone"), "dry");
    json_t *p1 = phase_in(d, "p1");
    assert_string_equal(fx_str(p1, "status"), "failed");
    assert_string_equal(fx_str(p1, "name"), "Plan");
    assert_string_equal(fx_str(p1, "output_preview"), "partial");
    json_t *attempts = json_object_get(p1, "attempts");
    assert_int_equal(json_array_size(attempts), 2);
    assert_string_equal(fx_str(json_array_get(attempts, 0), "status"), "lost");
    assert_string_equal(fx_str(json_array_get(attempts, 0), "worker"), "W1");
    assert_non_null(strstr(fx_str(json_array_get(attempts, 0), "error"), "disconnected"));
    assert_string_equal(fx_str(json_array_get(attempts, 1), "status"), "failed");
    assert_string_equal(fx_str(json_array_get(attempts, 1), "worker"), "W2");
    assert_false(json_is_null(json_object_get(json_array_get(attempts, 1), "completed_at")));
    assert_string_equal(fx_str(phase_in(d, "p3"), "status"), "skipped");
    assert_string_equal(fx_str(phase_in(d, "p3"), "model"), "big");
    json_decref(d);

    assert_int_equal(fx_call(f, "execution.output",
                             json_pack("{s:s, s:s}", "execution_id", ids[0], "phase_id", "p1"),
                             &body),
                     200);
    assert_string_equal(fx_str(body, "output"), "partial");
    json_decref(body);
    char text[128];
    snprintf(text, sizeof text, "Phase zz not found in execution %s", ids[0]);
    fx_expect(f, "execution.output",
              json_pack("{s:s, s:s}", "execution_id", ids[0], "phase_id", "zz"), 404, text);
    fx_expect(f, "execution.get", json_pack("{s:s}", "execution_id", "exec-zz"), 404, NULL);
}

/* The event log replays by execution or globally, after a seq, in pages;
 * terminal says whether the execution finished. */
static void test_events_replay(void **state)
{
    fx_t *f = *state;
    create_workflow(f, "wf-demo", 3);
    char id[BROKER_EXEC_ID_SIZE], other[BROKER_EXEC_ID_SIZE];
    start(f, "wf-demo", id);
    start(f, "wf-demo", other);
    fx_ready(f, "W1", 1, NULL);
    json_t *body;
    assert_int_equal(replay(f, id, 0, 2, &body), 200);
    json_t *events = json_object_get(body, "events");
    assert_int_equal(json_array_size(events), 2);
    assert_true(json_is_true(json_object_get(body, "more")));
    assert_false(json_is_true(json_object_get(body, "terminal")));
    assert_string_equal(fx_str(body, "execution_id"), id);
    assert_string_equal(fx_str(json_array_get(events, 0), "type"), "ExecutionStarted");
    assert_string_equal(fx_str(json_array_get(events, 1), "type"), "PhaseQueued");
    json_t *first = json_array_get(events, 0);
    assert_int_equal(json_object_size(first), 5);
    assert_string_equal(fx_str(first, "execution_id"), id);
    assert_true(fx_num(first, "time") > 0);
    assert_int_equal(fx_num(json_object_get(first, "data"), "total_phases"), 3);
    json_int_t last = fx_num(body, "last_seq");
    assert_int_equal(last, fx_num(json_array_get(events, 1), "seq"));
    json_decref(body);
    /* the rest, after last_seq: PhaseStarted only (the other execution's events
     * in between are not this one's) */
    assert_int_equal(replay(f, id, last, 100, &body), 200);
    events = json_object_get(body, "events");
    assert_int_equal(json_array_size(events), 1);
    assert_string_equal(fx_str(json_array_get(events, 0), "type"), "PhaseStarted");
    assert_false(json_is_true(json_object_get(body, "more")));
    json_int_t after = fx_num(body, "last_seq");
    json_decref(body);
    assert_int_equal(replay(f, id, after, 100, &body), 200);
    assert_int_equal(json_array_size(json_object_get(body, "events")), 0);
    assert_int_equal(fx_num(body, "last_seq"), after);
    json_decref(body);
    /* all executions */
    assert_int_equal(replay(f, NULL, 0, 1000, &body), 200);
    events = json_object_get(body, "events");
    assert_int_equal(json_array_size(events), 5);
    for (size_t i = 0; i < 5; i++)
        assert_int_equal(fx_num(json_array_get(events, i), "seq"), (json_int_t)i + 1);
    assert_true(json_is_null(json_object_get(body, "execution_id")));
    json_decref(body);
    /* finish it (and the other one, which shares the worker): terminal */
    json_t *a;
    while ((a = fx_take(f, "assign", "W1"))) {
        fx_result(f, "W1", a, "completed", "x", NULL);
        json_decref(a);
    }
    expect_status(f, "wf-demo", id, "completed");
    assert_int_equal(replay(f, id, 0, 1000, &body), 200);
    events = json_object_get(body, "events");
    assert_true(json_is_true(json_object_get(body, "terminal")));
    assert_string_equal(fx_str(json_array_get(events, json_array_size(events) - 1), "type"),
                        "ExecutionCompleted");
    json_decref(body);
    assert_int_equal(replay(f, "exec-zz", 0, 10, &body), 404);
    json_decref(body);
    fx_expect(f, "events.replay", json_pack("{s:i}", "limit", 1001), 400, NULL);
}

/* Output chunks become PhaseOutput events: the first at once, then at most one
 * per 250 ms with everything that arrived, never more than 64 KiB, at most
 * 1 MiB per attempt; the rest is flushed before the phase's end event. */
static void test_phase_output_coalescing(void **state)
{
    fx_t *f = *state;
    create_workflow(f, "wf-demo", 3);
    char id[BROKER_EXEC_ID_SIZE];
    json_t *a1 = start_on_w1(f, "wf-demo", 1, id);
    json_array_clear(f->sent);
    progress(f, "W1", a1, "started", "");
    progress(f, "W1", a1, "output", "a");
    json_t *ev = fx_take_event(f, id, "PhaseOutput");
    assert_non_null(ev);
    json_t *data = json_object_get(ev, "data");
    assert_string_equal(fx_str(data, "text"), "a");
    assert_int_equal(fx_num(data, "offset"), 0);
    assert_string_equal(fx_str(data, "phase_id"), "p1");
    assert_int_equal(fx_num(data, "attempt"), 1);
    json_decref(ev);
    const char *chunks[] = {"b", "c", "d\n", "\xc3\xa9", "f"};
    for (int i = 0; i < 5; i++) {
        f->now += 40;
        progress(f, "W1", a1, "output", chunks[i]);
    }
    fx_advance(f, 0, NULL); /* 200 ms after the first: not yet */
    assert_null(fx_take_event(f, id, "PhaseOutput"));
    fx_advance(f, 50, NULL);
    ev = fx_take_event(f, id, "PhaseOutput");
    assert_non_null(ev);
    assert_string_equal(fx_str(json_object_get(ev, "data"), "text"), "bcd\n\xc3\xa9" "f");
    assert_int_equal(fx_num(json_object_get(ev, "data"), "offset"), 1);
    json_decref(ev);
    /* 150 KiB at once: two full events now, the rest waits */
    size_t big = 150 * 1024;
    char *text = malloc(big + 1);
    memset(text, 'z', big);
    text[big] = '\0';
    f->now += 10;
    progress(f, "W1", a1, "output", text);
    for (int i = 0; i < 2; i++) {
        ev = fx_take_event(f, id, "PhaseOutput");
        assert_non_null(ev);
        assert_int_equal(strlen(fx_str(json_object_get(ev, "data"), "text")), 64 * 1024);
        json_decref(ev);
    }
    assert_null(fx_take_event(f, id, "PhaseOutput"));
    /* a tool call flushes the text before it */
    json_t *tool = json_pack("{s:s, s:s, s:{s:s, s:s}}", "kind", "tool", "data", "Read", "detail",
                             "name", "Read", "input_preview", "{\"path\":\"x\"}");
    fx_worker_send(f, "W1", SYN_MSG_PROGRESS, fx_attempt_fields(a1, tool));
    ev = fx_take_event(f, id, "PhaseOutput");
    assert_non_null(ev);
    assert_int_equal(strlen(fx_str(json_object_get(ev, "data"), "text")), 22 * 1024);
    assert_int_equal(fx_num(json_object_get(ev, "data"), "offset"), 8 + 128 * 1024);
    json_decref(ev);
    ev = fx_take_event(f, id, "PhaseToolCall");
    assert_non_null(ev);
    assert_string_equal(fx_str(json_object_get(ev, "data"), "name"), "Read");
    assert_string_equal(fx_str(json_object_get(json_object_get(ev, "data"), "detail"),
                               "input_preview"),
                        "{\"path\":\"x\"}");
    json_decref(ev);
    /* past 1 MiB per attempt: cut, one truncated marker, then silence */
    for (int i = 0; i < 8; i++) {
        f->now += 300;
        progress(f, "W1", a1, "output", text);
    }
    size_t streamed = 8 + 150 * 1024, events = 0;
    bool truncated = false;
    while ((ev = fx_take_event(f, id, "PhaseOutput"))) {
        json_t *d = json_object_get(ev, "data");
        assert_int_equal(fx_num(d, "offset"), (json_int_t)streamed);
        assert_true(strlen(fx_str(d, "text")) <= 64 * 1024);
        streamed += strlen(fx_str(d, "text"));
        truncated = json_is_true(json_object_get(d, "truncated"));
        events++;
        json_decref(ev);
    }
    assert_true(truncated);
    assert_int_equal(streamed, SYN_OUTPUT_MAX);
    f->now += 300;
    progress(f, "W1", a1, "output", "more");
    assert_null(fx_take_event(f, id, "PhaseOutput"));
    free(text);
    /* the next attempt starts a fresh stream; pending text precedes PhaseCompleted */
    fx_result(f, "W1", a1, "completed", "done", NULL);
    json_decref(a1);
    json_t *a2 = fx_take(f, "assign", "W1");
    progress(f, "W1", a2, "output", "one");
    progress(f, "W1", a2, "output", "two");
    fx_result(f, "W1", a2, "completed", "onetwo", NULL);
    json_decref(a2);
    json_t *types = event_types(f, id);
    const char *order[] = {"PhaseCompleted", "PhaseQueued", "PhaseStarted", "PhaseOutput",
                           "PhaseOutput", "PhaseCompleted"};
    assert_true(json_array_size(types) >= 6);
    for (size_t i = 0; i < 6; i++)
        assert_string_equal(json_string_value(json_array_get(types, i)), order[i]);
    json_decref(types);
    /* in the log as well, so a replay misses nothing */
    assert_int_equal(fx_db_int(f, "SELECT count(*) FROM events WHERE execution_id='%s' AND "
                                  "type='PhaseOutput'", id),
                     (int64_t)(2 + 2 + 1 + events + 2));
}

/* A RESULT's usage lands in the phase, the execution totals, the attempt and the
 * PhaseCompleted event, once even if the RESULT is repeated. */
static void test_usage_accounting(void **state)
{
    fx_t *f = *state;
    create_workflow(f, "wf-demo", 3);
    char id[BROKER_EXEC_ID_SIZE];
    json_t *a1 = start_on_w1(f, "wf-demo", 1, id);
    json_t *fields = fx_attempt_fields(
        a1, json_pack("{s:s, s:s, s:n, s:i, s:{s:i, s:i, s:i, s:i, s:f, s:i, s:i, s:s, "
                      "s:[{s:s, s:b}]}}",
                      "status", "completed", "output", "out", "error", "exit_code", 0, "usage",
                      "input_tokens", 1000, "output_tokens", 200, "cache_creation_tokens", 30,
                      "cache_read_tokens", 40, "cost_usd", 0.125, "num_turns", 4, "duration_ms",
                      1500, "model", "claude-sonnet-x", "tool_calls", "name", "Bash", "success",
                      0));
    fx_worker_send(f, "W1", SYN_MSG_RESULT, json_deep_copy(fields));
    fx_worker_send(f, "W1", SYN_MSG_RESULT, fields); /* repeated after a reconnect */
    json_decref(a1);
    json_t *ev = fx_take_event(f, id, "PhaseCompleted");
    json_t *data = json_object_get(ev, "data");
    assert_int_equal(fx_num(data, "input_tokens"), 1000);
    assert_int_equal(fx_num(data, "output_tokens"), 200);
    assert_int_equal(fx_num(data, "cache_creation_tokens"), 30);
    assert_int_equal(fx_num(data, "cache_read_tokens"), 40);
    assert_int_equal(fx_num(data, "total_tokens"), 1270);
    assert_true(json_real_value(json_object_get(data, "cost_usd")) == 0.125);
    assert_int_equal(fx_num(data, "num_turns"), 4);
    assert_int_equal(fx_num(data, "duration_ms"), 1500);
    assert_string_equal(fx_str(data, "model"), "claude-sonnet-x");
    assert_int_equal(fx_num(data, "tool_call_count"), 1);
    assert_false(json_is_true(json_object_get(json_array_get(json_object_get(data,
                                                                             "tool_calls"),
                                                             0),
                                              "success")));
    assert_int_equal(fx_num(data, "output_bytes"), 3);
    assert_string_equal(fx_str(data, "worker"), "W1");
    json_decref(ev);
    json_t *d = detail_of(f, id);
    assert_int_equal(fx_num(d, "total_input_tokens"), 1000);
    assert_int_equal(fx_num(d, "total_output_tokens"), 200);
    assert_true(json_real_value(json_object_get(d, "total_cost_usd")) == 0.125);
    json_t *p1 = phase_in(d, "p1");
    assert_int_equal(fx_num(p1, "input_tokens"), 1000);
    assert_string_equal(fx_str(p1, "model"), "claude-sonnet-x");
    assert_int_equal(fx_num(p1, "tool_call_count"), 1);
    assert_string_equal(fx_str(json_array_get(json_object_get(p1, "tool_calls"), 0), "name"),
                        "Bash");
    json_t *usage = json_object_get(json_array_get(json_object_get(p1, "attempts"), 0), "usage");
    assert_int_equal(fx_num(usage, "num_turns"), 4);
    json_t *p2 = phase_in(d, "p2");
    assert_int_equal(fx_num(p2, "input_tokens"), 0);
    assert_true(json_is_null(json_object_get(p2, "model")));
    json_decref(d);
    json_t *body;
    assert_int_equal(fx_call(f, "execution.list", json_object(), &body), 200);
    json_t *summary = json_array_get(json_object_get(body, "executions"), 0);
    assert_int_equal(fx_num(summary, "total_input_tokens"), 1000);
    assert_int_equal(fx_num(summary, "total_output_tokens"), 200);
    json_decref(body);
}

static void test_worker_name_bound_to_key(void **state)
{
    fx_t *f = *state;
    create_workflow(f, "wf", 3);
    keyed_ready(f, "A", "w1", KEY_A);
    /* Another key claiming w1: told why, once, and ignored. */
    keyed_ready(f, "B", "w1", KEY_B);
    json_t *bye = fx_take(f, "disconnect", "B");
    assert_non_null(bye);
    assert_string_equal(fx_str(bye, "reason"), "worker name w1 is held by another key");
    json_decref(bye);
    keyed_send(f, "B", KEY_B, SYN_MSG_HEARTBEAT, json_object());
    keyed_ready(f, "B", "w1", KEY_B);
    assert_int_equal(sent_to(f, "disconnect", "B"), 0);
    assert_int_equal(broker_workers_count(f->workers), 1);

    char id[BROKER_EXEC_ID_SIZE];
    start(f, "wf", id);
    for (int i = 0; i < 3; i++) {
        json_t *assign = fx_take(f, "assign", "A");
        assert_non_null(assign);
        keyed_send(f, "A", KEY_A, SYN_MSG_RESULT,
                   fx_attempt_fields(assign, json_pack("{s:s, s:s, s:n, s:i}", "status",
                                                       "completed", "output", "ok", "error",
                                                       "exit_code", 0)));
        json_decref(assign);
    }
    expect_status(f, "wf", id, "completed");
    assert_int_equal(sent_to(f, "assign", "B"), 0);

    /* The same key on a new connection keeps its name. */
    keyed_ready(f, "A2", "w1", KEY_A);
    assert_int_equal(sent_to(f, "disconnect", "A2"), 0);
    assert_int_equal(broker_workers_count(f->workers), 2);
    /* Once every holder said goodbye, the name is free for another key. */
    keyed_send(f, "A", KEY_A, SYN_MSG_DISCONNECT, json_object());
    keyed_send(f, "A2", KEY_A, SYN_MSG_DISCONNECT, json_object());
    keyed_ready(f, "B", "w1", KEY_B);
    assert_int_equal(sent_to(f, "disconnect", "B"), 0);
    start(f, "wf", id);
    json_t *assign = fx_take(f, "assign", "B");
    assert_non_null(assign);
    json_decref(assign);
}

/* Under CURVE a worker of another key cannot end, feed or adopt an attempt that a
 * live worker holds, even naming it exactly: ids are no secret among workers. */
static void test_other_keys_cannot_take_over_an_attempt(void **state)
{
    fx_t *f = *state;
    create_workflow(f, "wf", 1);
    keyed_ready(f, "A", "w1", KEY_A);
    char id[BROKER_EXEC_ID_SIZE];
    start(f, "wf", id);
    json_t *assign = fx_take(f, "assign", "A");
    assert_non_null(assign);
    keyed_ready(f, "B", "w2", KEY_B);
    /* A made-up result and output from B for A's attempt: refused. */
    keyed_send(f, "B", KEY_B, SYN_MSG_PROGRESS,
               fx_attempt_fields(assign, json_pack("{s:s, s:s}", "kind", "output", "data",
                                                   "forged")));
    keyed_send(f, "B", KEY_B, SYN_MSG_RESULT,
               fx_attempt_fields(assign, json_pack("{s:s, s:s, s:n, s:i}", "status",
                                                   "completed", "output", "forged", "error",
                                                   "exit_code", 0)));
    expect_status(f, "wf", id, "running");
    assert_int_equal(sent_to(f, "assign", "A") + sent_to(f, "assign", "B"), 0); /* no p2 yet */
    /* Nor can B adopt it by listing it in a READY. */
    keyed_send(f, "B", KEY_B, SYN_MSG_READY,
               json_pack("{s:s, s:i, s:[s], s:[o]}", "worker", "w2", "slots", 4, "providers",
                         "mock", "running",
                         fx_attempt_fields(assign, json_object())));
    json_t *cancel = fx_take(f, "cancel", "B");
    assert_non_null(cancel);
    json_decref(cancel);
    expect_status(f, "wf", id, "running");
    assert_int_equal(sent_to(f, "assign", "A") + sent_to(f, "assign", "B"), 0);
    /* A's own result counts: the next phase goes out. */
    keyed_send(f, "A", KEY_A, SYN_MSG_RESULT,
               fx_attempt_fields(assign, json_pack("{s:s, s:s, s:n, s:i}", "status",
                                                   "completed", "output", "real", "error",
                                                   "exit_code", 0)));
    json_decref(assign);
    json_t *next = fx_take(f, "assign", "A");
    assert_non_null(next);
    assert_string_equal(fx_str(next, "phase_id"), "p2");
    json_decref(next);
}

static void test_worker_names_without_curve_unbound(void **state)
{
    fx_t *f = *state;
    fx_ready(f, "A", 1, NULL);
    keyed_send(f, "B", NULL, SYN_MSG_READY,
               json_pack("{s:s, s:i, s:[s], s:[]}", "worker", "A", "slots", 1, "providers",
                         "mock", "running"));
    assert_int_equal(fx_count_sent(f, "disconnect"), 0);
    assert_int_equal(broker_workers_count(f->workers), 2);
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
        fx_unit_test(test_workflow_create_get_list),
        fx_unit_test(test_workflow_create_rejects),
        fx_unit_test(test_execution_start_errors),
        fx_unit_test(test_three_phases_complete),
        fx_unit_test(test_event_status_and_eviction),
        fx_unit_test(test_failure_skips_later_phases),
        fx_unit_test(test_lost_worker_retry_and_fencing),
        fx_unit_test(test_max_attempts_one_fails),
        fx_unit_test(test_restart_adopts_or_requeues),
        fx_unit_test(test_status_lookup_by_prefix),
        fx_unit_test(test_output_cut_and_render_bound),
        fx_unit_test(test_unregistered_stale_progress_and_backstop),
        fx_unit_test(test_repeated_ready_keeps_attempts),
        fx_unit_test(test_undeliverable_assign),
        fx_unit_test(test_prefetch_places_and_backstop),
        fx_unit_test(test_free_slot_beats_less_busy_prefetch),
        fx_unit_test(test_control_rules),
        fx_unit_test(test_cancel_running),
        fx_unit_test(test_pause_inject_resume),
        fx_unit_test(test_inject_live_and_restart),
        fx_unit_test(test_retries_with_backoff),
        fx_unit_test(test_retries_exhausted_and_counted_apart),
        fx_unit_test(test_list_runs_detail_output),
        fx_unit_test(test_events_replay),
        fx_unit_test(test_phase_output_coalescing),
        fx_unit_test(test_usage_accounting),
        fx_unit_test(test_assign_optional_fields),
        fx_unit_test(test_worker_name_bound_to_key),
        fx_unit_test(test_other_keys_cannot_take_over_an_attempt),
        fx_unit_test(test_worker_names_without_curve_unbound),
    };
    return cmocka_run_group_tests_name("broker_engine", tests, NULL, NULL);
}
