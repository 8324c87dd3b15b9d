/* The output stream on its own: the stored output's cut (pure), and the
 * coalescing of chunks into PhaseOutput events fed straight to broker/output.c
 * (the engine, the store and the clock from tests/support/broker_fixture). */
#include "broker/output.h"
#include "proto/limits.h"
#include "tests/support/broker_fixture.h"

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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bounded_output),
        fx_unit_test(test_chunks_coalesced_by_interval),
        fx_unit_test(test_per_attempt_bound),
        fx_unit_test(test_tool_event_after_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
