/* broker_steps: the steps of the broker's scenario tests (broker_steps.h). Apart so
 * that the test files of the broker's decisions share one definition of each. */
#include "tests/support/broker_steps.h"

#include "broker/engine.h"
#include "proto/limits.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

/* A 3-phase workflow (p1, p2, p3) whose prompts use every rendering rule. */
void create_workflow(fx_t *f, const char *id, int max_attempts)
{
    json_t *args = json_pack(
        "{s:s, s:s, s:[{s:s, s:b}, {s:s, s:b, s:s}], s:["
        "{s:s, s:s, s:i, s:s, s:i},"
        "{s:s, s:s, s:i, s:s, s:i},"
        "{s:s, s:s, s:i, s:s, s:s, s:i, s:i}]}",
        "id", id, "name", "Demo",
        "input_declarations", "name", "topic", "required", 1, "name", "tone", "required", 1,
        "default", "dry",
        "phases",
        "phase_id", "p1", "name", "Plan", "order", 1, "prompt_template",
        "plan {{topic}} in a {{tone}} tone for $ARGUMENTS ({{execution_id}})", "max_attempts",
        max_attempts,
        "phase_id", "p2", "name", "Draft", "order", 2, "prompt_template",
        "draft from [{{p1}}] {{unknown}}", "max_attempts", max_attempts,
        "phase_id", "p3", "name", "Review", "order", 3, "prompt_template",
        "review [{{p1}}] [{{p2}}] {{workflow_id}} {{task}}", "model", "big", "timeout_seconds",
        7, "max_attempts", max_attempts);
    fx_expect(f, "workflow.create", args, 201, NULL);
}

void start(fx_t *f, const char *workflow_id, char id[BROKER_EXEC_ID_SIZE])
{
    json_t *body;
    json_t *args = json_pack("{s:s, s:{s:s}, s:s, s:[]}", "workflow_id", workflow_id, "inputs",
                             "topic", "cats", "task", "the task", "repos");
    assert_int_equal(fx_call(f, "execution.start", args, &body), 200);
    snprintf(id, BROKER_EXEC_ID_SIZE, "%s", fx_str(body, "execution_id"));
    json_decref(body);
}

json_t *status_of(fx_t *f, const char *workflow_id, const char *id)
{
    json_t *body;
    int status = fx_call(f, "execution.status",
                         json_pack("{s:s, s:s}", "workflow_id", workflow_id, "execution_id", id),
                         &body);
    assert_int_equal(status, 200);
    return body;
}

/* Fails unless the execution's status is want. */
void expect_status(fx_t *f, const char *workflow_id, const char *id, const char *want)
{
    json_t *st = status_of(f, workflow_id, id);
    assert_string_equal(fx_str(st, "status"), want);
    json_decref(st);
}

/* Starts an execution with a worker W1 of `slots` slots registered: the ASSIGN of
 * its first phase. */
json_t *start_on_w1(fx_t *f, const char *workflow_id, int slots,
                    char id[BROKER_EXEC_ID_SIZE])
{
    start(f, workflow_id, id);
    fx_ready(f, "W1", slots, NULL);
    json_t *assign = fx_take(f, "assign", "W1");
    assert_non_null(assign);
    return assign;
}

/* Takes the next ASSIGN W1 was given and answers it with a RESULT. */
void answer_on_w1(fx_t *f, const char *status, const char *output, const char *error)
{
    json_t *assign = fx_take(f, "assign", "W1");
    assert_non_null(assign);
    fx_result(f, "W1", assign, status, output, error);
    json_decref(assign);
}

/* Completes the next `phases` phases W1 is given, each with output. */
void complete_on_w1(fx_t *f, int phases, const char *output)
{
    for (int i = 0; i < phases; i++)
        answer_on_w1(f, "completed", output, NULL);
}

/* Takes a message that must have been sent out of the log; fails unless its
 * string field key is want (when key is not NULL). */
void expect_sent(fx_t *f, const char *type, const char *identity, const char *key,
                 const char *want)
{
    json_t *fields = fx_take(f, type, identity);
    if (!fields)
        fail_msg("no %s sent to %s", type, identity);
    if (key)
        assert_string_equal(fx_str(fields, key), want);
    json_decref(fields);
}

/* events.replay of one execution (NULL: all of them). */
int replay(fx_t *f, const char *id, json_int_t after_seq, int limit, json_t **body)
{
    return fx_call(f, "events.replay",
                   json_pack("{s:o, s:I, s:i}", "execution_id", id ? json_string(id) : json_null(),
                             "after_seq", after_seq, "limit", limit),
                   body);
}

void ready_with(fx_t *f, const char *identity, int slots, json_t *providers)
{
    fx_worker_send(f, identity, SYN_MSG_READY,
                   json_pack("{s:s, s:i, s:o, s:[]}", "worker", identity, "slots", slots,
                             "providers", providers, "running"));
}

void progress(fx_t *f, const char *identity, const json_t *assign, const char *kind,
              const char *data)
{
    fx_worker_send(f, identity, SYN_MSG_PROGRESS,
                   fx_attempt_fields(assign, json_pack("{s:s, s:s}", "kind", kind, "data", data)));
}

/* The arguments of a control op on an execution: its id and extra (stolen). */
json_t *control_args(const char *id, json_t *extra)
{
    json_t *args = json_pack("{s:s}", "execution_id", id);
    if (extra) {
        json_object_update(args, extra);
        json_decref(extra);
    }
    return args;
}

/* A control op on an execution: the status, with the body in *body. */
int control(fx_t *f, const char *op, const char *id, json_t *extra, json_t **body)
{
    return fx_call(f, op, control_args(id, extra), body);
}

/* A control op that must answer status (and detail, when not NULL). */
void expect_control(fx_t *f, const char *op, const char *id, json_t *extra, int status,
                    const char *detail)
{
    fx_expect(f, op, control_args(id, extra), status, detail);
}

void expect_400(fx_t *f, const char *op, const char *id, json_t *extra, const char *text)
{
    expect_control(f, op, id, extra, 400, text);
}

/* A control op that must succeed, leaving the execution in state. */
void expect_control_state(fx_t *f, const char *op, const char *id, json_t *extra,
                          const char *state)
{
    json_t *body;
    assert_int_equal(control(f, op, id, extra, &body), 200);
    assert_string_equal(fx_str(body, "state"), state);
    json_decref(body);
}

/* A control op that must succeed with exactly this reply. */
void expect_control_reply(fx_t *f, const char *op, const char *id, json_t *extra,
                          const char *message, const char *state)
{
    json_t *body;
    assert_int_equal(control(f, op, id, extra, &body), 200);
    char *text = json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS);
    char expected[256];
    snprintf(expected, sizeof expected,
             "{\"error\":null,\"execution_id\":\"%s\",\"message\":\"%s\","
             "\"state\":\"%s\",\"success\":true}",
             id, message, state);
    assert_string_equal(text, expected);
    free(text);
    json_decref(body);
}

/* The types of the events sent so far for one execution (taken out of the log). */
json_t *event_types(fx_t *f, const char *id)
{
    json_t *types = json_array(), *ev;
    while ((ev = fx_take(f, "event", id))) {
        json_array_append_new(types, json_string(fx_str(ev, "type")));
        json_decref(ev);
    }
    return types;
}

bool has_type(const json_t *types, const char *type)
{
    size_t i;
    json_t *t;
    json_array_foreach(types, i, t)
        if (strcmp(json_string_value(t), type) == 0)
            return true;
    return false;
}

json_t *detail_of(fx_t *f, const char *id)
{
    json_t *body;
    assert_int_equal(fx_call(f, "execution.get", json_pack("{s:s}", "execution_id", id), &body),
                     200);
    return body;
}

json_t *phase_in(json_t *detail, const char *phase_id)
{
    size_t i;
    json_t *p;
    json_array_foreach(json_object_get(detail, "phases"), i, p)
        if (strcmp(fx_str(p, "phase_id"), phase_id) == 0)
            return p;
    return NULL;
}

/* A workflow with one phase that may be retried. */
void create_retry_workflow(fx_t *f, const char *id, int retries, double backoff,
                           int max_attempts)
{
    json_t *args = json_pack("{s:s, s:s, s:[{s:s, s:s, s:i, s:s, s:i, s:f, s:i}, "
                             "{s:s, s:s, s:i, s:s}]}",
                             "id", id, "name", "Retry", "phases", "phase_id", "p1", "name", "A",
                             "order", 1, "prompt_template", "try", "retries", retries,
                             "retry_backoff_seconds", backoff, "max_attempts", max_attempts,
                             "phase_id", "p2", "name", "B", "order", 2, "prompt_template",
                             "after [{{p1}}]");
    fx_expect(f, "workflow.create", args, 201, NULL);
}

/* Takes the execution's next PhaseRetrying event; fails unless it waits seconds. */
void expect_retry_in(fx_t *f, const char *id, double seconds)
{
    json_t *ev = fx_take_event(f, id, "PhaseRetrying");
    assert_non_null(ev);
    assert_true(json_real_value(json_object_get(json_object_get(ev, "data"),
                                                "retry_in_seconds")) == seconds);
    json_decref(ev);
}

/* A message from a worker whose connection carries a CURVE key (its User-Id). */
void keyed_send(fx_t *f, const char *identity, const char *key, syn_msg_type_t type,
                json_t *fields)
{
    syn_msg_t *msg = syn_msg_new_with(type, fields);
    broker_engine_on_worker_from(f->engine, identity, strlen(identity), key, NULL, msg,
                                 f->now);
    syn_msg_destroy(&msg);
    fx_turn(f);
}

void keyed_ready(fx_t *f, const char *identity, const char *name, const char *key)
{
    keyed_send(f, identity, key, SYN_MSG_READY,
               json_pack("{s:s, s:i, s:[s], s:[]}", "worker", name, "slots", 4, "providers",
                         "mock", "running"));
}

size_t sent_to(fx_t *f, const char *type, const char *identity)
{
    size_t n = 0;
    json_t *fields;
    while ((fields = fx_take(f, type, identity))) {
        json_decref(fields);
        n++;
    }
    return n;
}
