/* The output stream on its own: the stored output's cut (pure), and the
 * coalescing of chunks into PhaseOutput events fed straight to broker/output.c
 * (the engine, the store and the clock from tests/support/broker_fixture).
 * Through the engine: the cut above 1 MiB and the render bound, and PhaseOutput
 * coalescing over a whole run. */
#include "broker/output.h"
#include "proto/limits.h"
#include "tests/support/broker_steps.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static void test_bounded_output(void **state)
{
    (void)state;
    char *kept = broker_output_bounded("short");
    assert_string_equal(kept, "short");
    free(kept);

    /* Already cut by the worker (limit + marker): unchanged. */
    size_t marker = strlen(SYN_OUTPUT_MARKER);
    char *cut = malloc(SYN_OUTPUT_MAX + marker + 1);
    memset(cut, 'a', SYN_OUTPUT_MAX);
    memcpy(cut + SYN_OUTPUT_MAX, SYN_OUTPUT_MARKER, marker + 1);
    kept = broker_output_bounded(cut);
    assert_string_equal(kept, cut);
    free(kept);
    free(cut);

    /* Longer: cut on a character boundary (a 2-byte é straddles the limit). */
    size_t len = SYN_OUTPUT_MAX + marker + 10;
    char *big = malloc(len + 1);
    memset(big, 'b', len);
    big[len] = '\0';
    big[SYN_OUTPUT_MAX - 1] = (char)0xC3;
    big[SYN_OUTPUT_MAX] = (char)0xA9;
    kept = broker_output_bounded(big);
    assert_int_equal(strlen(kept), SYN_OUTPUT_MAX - 1 + marker);
    assert_string_equal(kept + SYN_OUTPUT_MAX - 1, SYN_OUTPUT_MARKER);
    free(kept);
    free(big);
}

/* An execution whose first phase runs on W1. */
static broker_phase_t *running_phase(fx_t *f, broker_execution_t **exec)
{
    fx_workflow(f, "wf", 1, 60);
    *exec = fx_start(f, "wf");
    fx_ready(f, "W1", 1, NULL);
    broker_phase_t *phase = broker_execution_active_phase(*exec);
    assert_int_equal(phase->status, BROKER_PHASE_RUNNING);
    return phase;
}

static json_t *take_output(fx_t *f, broker_execution_t *exec)
{
    fx_turn(f);
    return fx_take_event(f, exec->id, "PhaseOutput");
}

static void test_chunks_coalesced_by_interval(void **state)
{
    fx_t *f = *state;
    broker_execution_t *exec;
    broker_phase_t *phase = running_phase(f, &exec);

    broker_output_append(f->engine, exec, phase, "one ", f->now);
    json_t *ev = take_output(f, exec);
    assert_non_null(ev); /* the first chunk at once */
    json_decref(ev);

    f->now += BROKER_STREAM_INTERVAL_MS - 1;
    broker_output_append(f->engine, exec, phase, "two ", f->now);
    broker_output_append(f->engine, exec, phase, "three", f->now);
    assert_null(take_output(f, exec)); /* within the interval: held */
    broker_output_flush(f->engine, exec, phase, f->now, false);
    assert_null(take_output(f, exec));

    f->now += 1;
    broker_output_flush(f->engine, exec, phase, f->now, false);
    ev = take_output(f, exec);
    assert_non_null(ev);
    json_t *data = json_object_get(ev, "data");
    assert_string_equal(fx_str(data, "text"), "two three");
    assert_int_equal(fx_num(data, "offset"), 4);
    json_decref(ev);
    assert_null(take_output(f, exec));
}

static void test_per_attempt_bound(void **state)
{
    fx_t *f = *state;
    broker_execution_t *exec;
    broker_phase_t *phase = running_phase(f, &exec);
    char *chunk = malloc(SYN_OUTPUT_MAX / 2 + 1);
    memset(chunk, 'x', SYN_OUTPUT_MAX / 2);
    chunk[SYN_OUTPUT_MAX / 2] = '\0';
    for (int i = 0; i < 3; i++)
        broker_output_append(f->engine, exec, phase, chunk, f->now);
    free(chunk);
    assert_true(phase->stream_capped);
    assert_int_equal(phase->streamed, SYN_OUTPUT_MAX);
    fx_turn(f);
    json_t *ev, *last = NULL;
    while ((ev = fx_take_event(f, exec->id, "PhaseOutput"))) {
        assert_true(strlen(fx_str(json_object_get(ev, "data"), "text")) <=
                    BROKER_STREAM_EVENT_MAX);
        json_decref(last);
        last = ev;
    }
    assert_true(json_is_true(json_object_get(json_object_get(last, "data"), "truncated")));
    json_decref(last);
    broker_output_append(f->engine, exec, phase, "more", f->now + 1000);
    assert_null(take_output(f, exec));
}

/* A tool event comes after the text written before it, whatever the interval. */
static void test_tool_event_after_text(void **state)
{
    fx_t *f = *state;
    broker_execution_t *exec;
    broker_phase_t *phase = running_phase(f, &exec);
    broker_output_append(f->engine, exec, phase, "first", f->now);
    broker_output_append(f->engine, exec, phase, "second", f->now);
    json_t *fields = json_pack("{s:s, s:{s:s}}", "data", "Read", "detail", "path", "a.txt");
    broker_output_tool(f->engine, exec, phase, fields, f->now);
    json_decref(fields);
    fx_turn(f);
    json_t *ev = fx_take_event(f, exec->id, "PhaseOutput");
    json_decref(ev);
    ev = fx_take_event(f, exec->id, "PhaseOutput");
    assert_non_null(ev);
    assert_string_equal(fx_str(json_object_get(ev, "data"), "text"), "second");
    json_t *tool = fx_take_event(f, exec->id, "PhaseToolCall");
    assert_non_null(tool);
    assert_string_equal(fx_str(json_object_get(tool, "data"), "name"), "Read");
    assert_true(fx_num(ev, "seq") > 0);
    assert_true(fx_num(ev, "seq") < fx_num(tool, "seq"));
    json_decref(ev);
    json_decref(tool);
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bounded_output),
        fx_unit_test(test_chunks_coalesced_by_interval),
        fx_unit_test(test_per_attempt_bound),
        fx_unit_test(test_tool_event_after_text),
        fx_unit_test(test_output_cut_and_render_bound),
        fx_unit_test(test_phase_output_coalescing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
