/* cli/watch: the state an execution's event frames build, the plain line of each
 * event, and the live screen, all without a terminal or a server. */
#include "cli/watch.h"

#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#define T0 "2026-11-28T16:34:1"

static json_t *frame(const char *type, const char *event, const char *when, const char *data)
{
    char text[2048];
    snprintf(text, sizeof text,
             "{\"type\":\"%s\",\"event_type\":%s%s%s,\"execution_id\":\"exec-c6393bb70d8c\","
             "\"data\":%s,\"timestamp\":\"" T0 "%s.000000Z\"}",
             type, event ? "\"" : "", event ? event : "null", event ? "\"" : "", data, when);
    json_t *f = json_loads(text, 0, NULL);
    assert_non_null(f);
    return f;
}

/* Applies one frame and says what watch_apply said. */
static int apply(watch_t *w, long long id, const char *type, const char *event, const char *when,
                 const char *data)
{
    json_t *f = frame(type, event, when, data);
    int applied = watch_apply(w, id, f);
    json_decref(f);
    return applied;
}

static watch_t *loaded(void)
{
    watch_t *w = watch_new();
    json_t *e = json_loads("{\"execution_id\":\"exec-c6393bb70d8c\",\"workflow_id\":\"research\","
                           "\"total_phases\":2,\"phases\":[{\"phase_id\":\"plan\",\"name\":\"Plan\"},"
                           "{\"phase_id\":\"write\",\"name\":\"Write\"}]}",
                           0, NULL);
    assert_int_equal(watch_load(w, e), 0);
    json_decref(e);
    return w;
}

/* A whole successful run: start, two phases, the terminal frame. */
static void run_to_completion(watch_t *w)
{
    assert_int_equal(apply(w, 0, "connected", NULL, "0", "{}"), 0);
    assert_int_equal(apply(w, 1, "event", "ExecutionStarted", "0",
                           "{\"workflow_id\":\"research\",\"total_phases\":2}"), 1);
    assert_int_equal(apply(w, 2, "event", "PhaseQueued", "0", "{\"phase_id\":\"plan\"}"), 1);
    assert_int_equal(apply(w, 3, "event", "PhaseStarted", "1",
                           "{\"phase_id\":\"plan\",\"attempt\":1,\"worker\":\"w1\"}"), 1);
    assert_int_equal(apply(w, 4, "event", "PhaseOutput", "2",
                           "{\"phase_id\":\"plan\",\"attempt\":1,\"text\":\"step one\\nstep t\","
                           "\"offset\":0}"), 1);
    assert_int_equal(apply(w, 5, "event", "PhaseCompleted", "3",
                           "{\"phase_id\":\"plan\",\"attempt\":1,\"input_tokens\":1200,"
                           "\"output_tokens\":340,\"cost_usd\":0.0087,\"duration_ms\":2000}"), 1);
    assert_int_equal(apply(w, 7, "event", "PhaseStarted", "3",
                           "{\"phase_id\":\"write\",\"attempt\":1,\"worker\":\"w2\"}"), 1);
    assert_int_equal(apply(w, 8, "event", "PhaseCompleted", "5",
                           "{\"phase_id\":\"write\",\"attempt\":1,\"input_tokens\":100,"
                           "\"output_tokens\":10,\"cost_usd\":0.001}"), 1);
}

static void test_a_completed_run_exits_0_with_every_phase_done(void **state)
{
    (void)state;
    watch_t *w = loaded();
    run_to_completion(w);
    assert_false(watch_done(w));
    assert_int_equal(watch_exit_code(w), -1);
    assert_int_equal(apply(w, 9, "terminal", "ExecutionCompleted", "5",
                           "{\"completed_phases\":2,\"total_phases\":2}"), 1);
    assert_true(watch_done(w));
    assert_int_equal(watch_exit_code(w), 0);
    char *screen = watch_render(w, 100, false, 0);
    assert_non_null(strstr(screen, "exec-c6393bb70d8c  research  completed"));
    assert_non_null(strstr(screen, "] 100%  2/2 phases  5.0s  tokens 1.3k in / 350 out  $0.0097"));
    assert_non_null(strstr(screen, "  ✓ plan   Plan   completed     2.0s  w1\n"));
    assert_non_null(strstr(screen, "  ✓ write  Write  completed     2.0s  w2\n"));
    assert_non_null(strstr(screen, "── output of plan ──\n  step one\n  step t\n"));
    free(screen);
    watch_destroy(&w);
    watch_destroy(&w);
}

static void test_frames_already_seen_are_ignored(void **state)
{
    (void)state;
    watch_t *w = loaded();
    run_to_completion(w);
    /* a resumed stream may start again below the last id: nothing is counted twice */
    assert_int_equal(apply(w, 5, "event", "PhaseCompleted", "3",
                           "{\"phase_id\":\"plan\",\"attempt\":1,\"input_tokens\":1200}"), 0);
    assert_int_equal(apply(w, 8, "event", "PhaseCompleted", "5", "{\"phase_id\":\"write\"}"), 0);
    char *screen = watch_render(w, 100, false, 0);
    assert_non_null(strstr(screen, "tokens 1.3k in"));
    free(screen);
    /* unknown types are ignored, as the API asks */
    assert_int_equal(apply(w, 10, "event", "SomethingNew", "5", "{}"), 0);
    watch_destroy(&w);
}

static void test_failure_and_cancel_exit_codes(void **state)
{
    (void)state;
    watch_t *w = loaded();
    apply(w, 1, "event", "ExecutionStarted", "0", "{\"total_phases\":2}");
    apply(w, 2, "event", "PhaseStarted", "0", "{\"phase_id\":\"plan\",\"attempt\":1}");
    apply(w, 3, "event", "PhaseFailed", "1", "{\"phase_id\":\"plan\",\"attempt\":1,\"error\":\"x\"}");
    apply(w, 4, "terminal", "ExecutionFailed", "1",
          "{\"error\":\"Phase plan failed: x\",\"phase_id\":\"plan\",\"completed_phases\":0,"
          "\"total_phases\":2}");
    assert_int_equal(watch_exit_code(w), 1);
    char *screen = watch_render(w, 100, false, 0);
    assert_non_null(strstr(screen, "  ✗ plan"));
    assert_non_null(strstr(screen, "  – write  Write  skipped"));
    assert_non_null(strstr(screen, "error: Phase plan failed: x"));
    assert_non_null(strstr(screen, "   0%  0/2 phases"));
    free(screen);
    watch_destroy(&w);

    w = loaded();
    apply(w, 1, "event", "PhaseStarted", "0", "{\"phase_id\":\"plan\",\"attempt\":1}");
    apply(w, 2, "event", "ExecutionPaused", "0", "{\"reason\":\"look\",\"phase_id\":\"plan\"}");
    screen = watch_render(w, 100, false, 0);
    assert_non_null(strstr(screen, "research  paused"));
    free(screen);
    apply(w, 3, "terminal", "ExecutionCancelled", "1", "{\"error\":\"Cancelled by user\"}");
    assert_int_equal(watch_exit_code(w), 3);
    screen = watch_render(w, 100, false, 0);
    assert_non_null(strstr(screen, "  ⊘ plan"));
    free(screen);
    watch_destroy(&w);
}

static void test_the_running_phase_clock_ticks(void **state)
{
    (void)state;
    watch_t *w = loaded();
    apply(w, 1, "event", "ExecutionStarted", "0", "{\"total_phases\":2}");
    apply(w, 2, "event", "PhaseStarted", "0", "{\"phase_id\":\"plan\",\"attempt\":2,\"worker\":\"w1\"}");
    int64_t start = 1795883650000000LL; /* 16:34:10 */
    char *screen = watch_render(w, 100, false, start + 4200000);
    assert_non_null(strstr(screen, "  ● plan   Plan   running       4.2s  w1 (attempt 2)"));
    assert_non_null(strstr(screen, "  ○ write  Write  pending"));
    free(screen);
    /* narrow terminals: no line is wider than asked */
    screen = watch_render(w, 20, true, start);
    for (char *line = strtok(screen, "\n"); line; line = strtok(NULL, "\n")) {
        size_t chars = 0;
        for (const unsigned char *p = (const unsigned char *)line; *p; p++)
            if (*p == '\033')
                while (*p && *p != 'm')
                    p++;
            else
                chars += (*p & 0xC0) != 0x80;
        assert_true(chars <= 20);
    }
    free(screen);
    watch_destroy(&w);
}

static void test_plain_lines(void **state)
{
    (void)state;
    json_t *f = frame("event", "PhaseStarted", "5", "{\"phase_id\":\"plan\",\"attempt\":1,\"worker\":\"w1\"}");
    char *line = watch_event_line(3, f);
    assert_string_equal(line, "16:34:15 #3 PhaseStarted plan attempt 1 on w1\n");
    free(line);
    json_decref(f);
    f = frame("event", "PhaseOutput", "5", "{\"phase_id\":\"plan\",\"text\":\"a\\nb\"}");
    line = watch_event_line(4, f);
    assert_string_equal(line, "16:34:15 #4 PhaseOutput plan +3 bytes\n    | a\n    | b\n");
    free(line);
    json_decref(f);
    f = frame("event", "PhaseCost", "5",
              "{\"phase_id\":\"plan\",\"attempt\":1,\"cost_usd\":0.3,"
              "\"execution_cost_usd\":0.35,\"max_budget_usd\":0.5}");
    line = watch_event_line(5, f);
    assert_string_equal(line, "16:34:15 #5 PhaseCost plan $0.3500 spent of $0.5000\n");
    free(line);
    json_decref(f);
    f = frame("terminal", "ExecutionCompleted", "6", "{\"completed_phases\":2,\"total_phases\":2}");
    line = watch_event_line(9, f);
    assert_string_equal(line, "16:34:16 #9 ExecutionCompleted 2/2 phases\n");
    free(line);
    json_decref(f);
    f = frame("connected", NULL, "0", "{}");
    assert_null(watch_event_line(0, f));
    json_decref(f);
}

static void test_load_refuses_what_is_not_an_execution(void **state)
{
    (void)state;
    watch_t *w = watch_new();
    json_t *e = json_loads("{\"detail\":\"nope\"}", 0, NULL);
    assert_int_equal(watch_load(w, e), -1);
    json_decref(e);
    /* phases named only by events are added as they come */
    apply(w, 1, "event", "PhaseStarted", "0", "{\"phase_id\":\"late\",\"attempt\":1}");
    char *screen = watch_render(w, 80, false, 0);
    assert_non_null(strstr(screen, "● late"));
    free(screen);
    watch_destroy(&w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_completed_run_exits_0_with_every_phase_done),
        cmocka_unit_test(test_frames_already_seen_are_ignored),
        cmocka_unit_test(test_failure_and_cancel_exit_codes),
        cmocka_unit_test(test_the_running_phase_clock_ticks),
        cmocka_unit_test(test_plain_lines),
        cmocka_unit_test(test_load_refuses_what_is_not_an_execution),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
