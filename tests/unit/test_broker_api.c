/* The broker's operations (broker/api.c) through the fixture's engine: workflows
 * created, read, listed and refused; executions listed, run by run, in detail and
 * output; the event log replayed. */
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
        "\"argument_hint\":null,\"allowed_tools\":[],\"network\":\"proxy\","
        "\"input_artifacts\":[],\"output_artifacts\":[]},"
        "{\"phase_id\":\"p2\",\"name\":\"Draft\",\"order\":2,\"prompt_template\":"
        "\"draft from [{{p1}}] {{unknown}}\",\"model\":null,\"timeout_seconds\":300,"
        "\"max_attempts\":3,\"description\":null,\"argument_hint\":null,\"allowed_tools\":[],"
        "\"network\":\"proxy\",\"input_artifacts\":[],\"output_artifacts\":[]},"
        "{\"phase_id\":\"p3\",\"name\":\"Review\",\"order\":3,\"prompt_template\":"
        "\"review [{{p1}}] [{{p2}}] {{workflow_id}} {{task}}\",\"model\":\"big\","
        "\"timeout_seconds\":7,\"max_attempts\":3,\"description\":null,\"argument_hint\":null,"
        "\"allowed_tools\":[],\"network\":\"proxy\",\"input_artifacts\":[],"
        "\"output_artifacts\":[]}]");
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
    /* all executions, and the worker's worker_joined (issue 18) */
    assert_int_equal(replay(f, NULL, 0, 1000, &body), 200);
    events = json_object_get(body, "events");
    assert_int_equal(json_array_size(events), 6);
    for (size_t i = 0; i < 6; i++)
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        fx_unit_test(test_workflow_create_get_list),
        fx_unit_test(test_workflow_create_rejects),
        fx_unit_test(test_list_runs_detail_output),
        fx_unit_test(test_events_replay),
    };
    return cmocka_run_group_tests_name("broker_api", tests, NULL, NULL);
}
