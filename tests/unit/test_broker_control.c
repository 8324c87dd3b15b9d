/* Pause, resume, cancel and inject (broker/control.c), called directly on the
 * engine of tests/support/broker_fixture.
 * Through the API: every 400 rule, cancel while running, pause/inject/resume, and
 * inject live and across a restart. */
#include "broker/control.h"
#include "tests/support/broker_steps.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

/* A two-phase execution whose p1 runs on W1: its id, and p1's ASSIGN in *assign. */
static void run_p1(fx_t *f, char id[BROKER_EXEC_ID_SIZE], json_t **assign)
{
    fx_workflow(f, "wf", 2, 60);
    strcpy(id, fx_start(f, "wf")->id);
    fx_ready(f, "W1", 1, NULL);
    *assign = fx_take(f, "assign", "W1");
    assert_non_null(*assign);
}

static void test_pause_lets_the_phase_finish_and_holds_the_next(void **state)
{
    fx_t *f = *state;
    char id[BROKER_EXEC_ID_SIZE];
    json_t *assign;
    run_p1(f, id, &assign);
    broker_exec_status_t status;
    assert_int_equal(broker_engine_pause(f->engine, id, "look", &status), 0);
    assert_int_equal(status, BROKER_EXEC_PAUSED);
    assert_int_equal(broker_engine_pause(f->engine, id, NULL, &status), -1);
    fx_result(f, "W1", assign, "completed", "out", NULL);
    json_decref(assign);
    assert_int_equal(fx_count_sent(f, "assign"), 0);
    broker_execution_t *exec = broker_engine_find(f->engine, id);
    assert_int_equal(exec->phases[1].status, BROKER_PHASE_PENDING);
    assert_int_equal(broker_engine_resume(f->engine, id, f->now, &status), 0);
    assert_int_equal(status, BROKER_EXEC_RUNNING);
    assert_int_equal(broker_engine_resume(f->engine, id, f->now, &status), -1);
    fx_turn(f);
    assign = fx_take(f, "assign", "W1");
    assert_non_null(assign);
    assert_string_equal(fx_str(assign, "phase_id"), "p2");
    json_decref(assign);
}

/* Paused before anything ran, it resumes as pending. */
static void test_resume_to_pending(void **state)
{
    fx_t *f = *state;
    fx_workflow(f, "wf", 1, 60);
    char id[BROKER_EXEC_ID_SIZE];
    strcpy(id, fx_start(f, "wf")->id);
    broker_exec_status_t status;
    assert_int_equal(broker_engine_pause(f->engine, id, NULL, &status), 0);
    assert_int_equal(broker_engine_resume(f->engine, id, f->now, &status), 0);
    assert_int_equal(status, BROKER_EXEC_PENDING);
}

static void test_cancel_stops_the_worker_and_skips_the_rest(void **state)
{
    fx_t *f = *state;
    char id[BROKER_EXEC_ID_SIZE];
    json_t *assign;
    run_p1(f, id, &assign);
    json_decref(assign);
    broker_exec_status_t status;
    assert_int_equal(broker_engine_cancel(f->engine, id, NULL, &status), 0);
    assert_int_equal(status, BROKER_EXEC_CANCELLED);
    fx_turn(f);
    json_t *cancel = fx_take(f, "cancel", "W1");
    assert_non_null(cancel);
    assert_string_equal(fx_str(cancel, "phase_id"), "p1");
    json_decref(cancel);
    assert_null(broker_engine_find(f->engine, id));
    assert_int_equal(broker_engine_cancel(f->engine, id, NULL, &status), -2);
    assert_int_equal(fx_db_int(f, "SELECT count(*) FROM phases WHERE execution_id='%s' AND "
                                  "status='skipped'", id),
                     1);
    json_t *ev = fx_take_event(f, id, "ExecutionCancelled");
    assert_string_equal(fx_str(json_object_get(ev, "data"), "error"), "Cancelled by user");
    json_decref(ev);
}

static void test_inject_live_and_bounded(void **state)
{
    fx_t *f = *state;
    char id[BROKER_EXEC_ID_SIZE];
    json_t *assign;
    run_p1(f, id, &assign);
    json_decref(assign);
    broker_exec_status_t status;
    char err[256];
    assert_int_equal(
        broker_engine_inject(f->engine, id, "user", "hello", &status, err, sizeof err), 0);
    fx_turn(f);
    json_t *inject = fx_take(f, "inject", "W1");
    assert_non_null(inject);
    assert_string_equal(fx_str(inject, "message"), "hello");
    json_decref(inject);
    for (int i = 1; i < BROKER_MESSAGES_WAITING_MAX; i++)
        assert_int_equal(
            broker_engine_inject(f->engine, id, "user", "more", &status, err, sizeof err), 0);
    assert_int_equal(
        broker_engine_inject(f->engine, id, "user", "one too many", &status, err, sizeof err),
        -3);
    assert_non_null(strstr(err, "Too many operator messages waiting"));
}

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
    /* paused by hand, not at a gate */
    assert_true(json_is_null(json_object_get(body, "waiting_for")));
    assert_true(json_is_null(json_object_get(body, "waiting_phase")));
    assert_int_equal(json_object_size(body), 4);
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        fx_unit_test(test_pause_lets_the_phase_finish_and_holds_the_next),
        fx_unit_test(test_resume_to_pending),
        fx_unit_test(test_cancel_stops_the_worker_and_skips_the_rest),
        fx_unit_test(test_inject_live_and_bounded),
        fx_unit_test(test_control_rules),
        fx_unit_test(test_cancel_running),
        fx_unit_test(test_pause_inject_resume),
        fx_unit_test(test_inject_live_and_restart),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
