/* What the passing of time decides (broker/deadlines.c), driven by the
 * fixture's fake clock: the backstop to the millisecond, the end of a retry's
 * back-off, the adoption window after a restart. */
#include "broker/deadlines.h"
#include "broker/lost.h"
#include "tests/support/broker_fixture.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#define WINDOW (FX_HEARTBEAT_MS * FX_LIVENESS)

static broker_phase_t *run_on_w1(fx_t *f, int timeout_seconds, broker_execution_t **exec)
{
    fx_workflow(f, "wf", 1, timeout_seconds);
    *exec = fx_start(f, "wf");
    fx_ready(f, "W1", 1, NULL);
    broker_phase_t *phase = broker_execution_active_phase(*exec);
    assert_int_equal(phase->status, BROKER_PHASE_RUNNING);
    return phase;
}

/* A phase running on W1, then a broker restart that reloads it (id: its execution). */
static void restart_with_w1_running(fx_t *f, int timeout_seconds, char id[BROKER_EXEC_ID_SIZE])
{
    broker_execution_t *exec;
    run_on_w1(f, timeout_seconds, &exec);
    strcpy(id, exec->id);
    fx_restart(f);
    assert_int_equal(broker_engine_recover(f->engine, f->now), 1);
}

/* Lets ms pass in steps short enough for W1's heartbeats to keep it alive. */
static void pass(fx_t *f, int64_t ms)
{
    for (; ms > FX_HEARTBEAT_MS; ms -= FX_HEARTBEAT_MS)
        fx_advance(f, FX_HEARTBEAT_MS, "W1");
    fx_advance(f, ms, "W1");
}

static void test_window_and_backstop(void **state)
{
    fx_t *f = *state;
    broker_execution_t *exec;
    broker_phase_t *phase = run_on_w1(f, 2, &exec);
    assert_int_equal(broker_deadlines_window_ms(f->engine), WINDOW);
    /* timeout + the fixture's kill grace (50) + one window */
    assert_int_equal(broker_deadlines_backstop_ms(f->engine, phase), 2000 + 50 + WINDOW);
    assert_int_equal(phase->deadline_ms, f->now + 2000 + 50 + WINDOW);
}

static void test_backstop_fails_the_attempt(void **state)
{
    fx_t *f = *state;
    broker_execution_t *exec;
    broker_phase_t *phase = run_on_w1(f, 1, &exec);
    char id[BROKER_EXEC_ID_SIZE];
    strcpy(id, exec->id);
    json_t *assign = fx_take(f, "assign", "W1");
    json_decref(assign);
    pass(f, phase->deadline_ms - f->now - 1);
    assert_int_equal(fx_count_sent(f, "cancel"), 0);
    assert_non_null(broker_engine_find(f->engine, id));
    pass(f, 1);
    json_t *cancel = fx_take(f, "cancel", "W1");
    assert_non_null(cancel);
    json_decref(cancel);
    /* No retries: the timeout fails the execution. */
    assert_null(broker_engine_find(f->engine, id));
    json_t *failed = fx_take_event(f, id, "ExecutionFailed");
    assert_non_null(failed);
    assert_non_null(strstr(fx_str(json_object_get(failed, "data"), "error"),
                           "no result within the timeout of 1 s (worker W1)"));
    json_decref(failed);
    assert_int_equal(fx_db_int(f, "SELECT count(*) FROM attempts WHERE execution_id='%s' AND "
                                  "status='timeout'", id),
                     1);
}

static void test_backoff_ends_on_time(void **state)
{
    fx_t *f = *state;
    broker_execution_t *exec;
    broker_phase_t *phase = run_on_w1(f, 60, &exec);
    phase->retries = 1;
    phase->retry_backoff_seconds = 0.5;
    json_t *assign = fx_take(f, "assign", "W1");
    fx_result(f, "W1", assign, "failed", "", "boom");
    json_decref(assign);
    assert_int_equal(phase->status, BROKER_PHASE_QUEUED);
    pass(f, 499);
    assert_int_equal(fx_count_sent(f, "assign"), 0);
    pass(f, 1);
    assign = fx_take(f, "assign", "W1");
    assert_non_null(assign);
    assert_int_equal(fx_num(assign, "attempt"), 2);
    json_decref(assign);
}

/* After a restart a running attempt waits two windows for its worker. */
static void test_adoption_window(void **state)
{
    fx_t *f = *state;
    char id[BROKER_EXEC_ID_SIZE];
    restart_with_w1_running(f, 60, id);
    fx_advance(f, 2 * WINDOW - 1, NULL);
    broker_phase_t *phase = broker_execution_active_phase(broker_engine_find(f->engine, id));
    assert_int_equal(phase->status, BROKER_PHASE_RUNNING);
    fx_advance(f, 1, NULL);
    assert_int_equal(phase->status, BROKER_PHASE_QUEUED);
    json_t *retrying = fx_take_event(f, id, "PhaseRetrying");
    assert_non_null(retrying);
    assert_string_equal(fx_str(json_object_get(retrying, "data"), "reason"),
                        "worker W1 did not come back after a broker restart");
    json_decref(retrying);
}

/* A reload that takes long (thousands of executions) does not eat the window:
 * it opens when the broker can be reached (broker_engine_adoption_open). */
static void test_adoption_window_opens_after_the_reload(void **state)
{
    fx_t *f = *state;
    char id[BROKER_EXEC_ID_SIZE];
    restart_with_w1_running(f, 60, id);
    f->now += 5 * WINDOW; /* the reload and the rest of the start */
    broker_engine_adoption_open(f->engine, f->now);
    fx_advance(f, 2 * WINDOW - 1, NULL);
    broker_phase_t *phase = broker_execution_active_phase(broker_engine_find(f->engine, id));
    assert_int_equal(phase->status, BROKER_PHASE_RUNNING);
    fx_advance(f, 1, NULL);
    assert_int_equal(phase->status, BROKER_PHASE_QUEUED);
}

/* A worker registered in the window whose connection is then found gone (it
 * replaced its socket, as a thousand workers reconnecting at once do) leaves
 * its attempt waiting in the window: its fresh READY adopts it, attempt 1 still,
 * nothing run again. Past the window, the attempt is lost as before. */
static void test_worker_gone_in_the_adoption_window(void **state)
{
    fx_t *f = *state;
    broker_execution_t *exec;
    run_on_w1(f, 60, &exec);
    json_t *assign = fx_take(f, "assign", "W1");
    assert_non_null(assign);
    char id[BROKER_EXEC_ID_SIZE];
    strcpy(id, exec->id);
    fx_restart(f);
    assert_int_equal(broker_engine_recover(f->engine, f->now), 1);
    broker_engine_adoption_open(f->engine, f->now);
    fx_ready(f, "W1", 1, json_pack("[o]", fx_ref_of(assign)));
    syn_msg_t *beat = syn_msg_new_with(SYN_MSG_HEARTBEAT, json_object());
    broker_engine_undeliverable(f->engine, "W1", 2, beat, EHOSTUNREACH, f->now);
    syn_msg_destroy(&beat);
    fx_turn(f);
    broker_phase_t *phase = broker_execution_active_phase(broker_engine_find(f->engine, id));
    assert_int_equal(phase->status, BROKER_PHASE_RUNNING);
    assert_null(phase->worker_key);
    fx_advance(f, WINDOW, NULL);
    fx_ready(f, "W2", 1, json_pack("[o]", fx_ref_of(assign)));
    assert_int_equal(phase->status, BROKER_PHASE_RUNNING);
    assert_non_null(phase->worker_key);
    assert_int_equal(phase->attempt, 1);
    assert_null(fx_take_event(f, id, "PhaseRetrying"));
    /* Gone again after the window closed: lost at once. */
    fx_advance(f, WINDOW, "W2");
    beat = syn_msg_new_with(SYN_MSG_HEARTBEAT, json_object());
    broker_engine_undeliverable(f->engine, "W2", 2, beat, EHOSTUNREACH, f->now);
    syn_msg_destroy(&beat);
    broker_lost_unreachable_now(f->engine, f->now);
    assert_int_equal(phase->status, BROKER_PHASE_QUEUED);
    fx_turn(f);
    json_t *retrying = fx_take_event(f, id, "PhaseRetrying");
    assert_non_null(retrying);
    json_decref(retrying);
    json_decref(assign);
}

/* READYs that keep adopting keep the window open a liveness window past the
 * last of them (a thousand workers on a loaded host), up to its cap. */
static void test_adoption_window_stays_open_while_readys_adopt(void **state)
{
    fx_t *f = *state;
    fx_workflow(f, "wf", 1, 600);
    broker_execution_t *a = fx_start(f, "wf");
    broker_execution_t *b = fx_start(f, "wf");
    fx_ready(f, "W1", 2, NULL);
    json_t *first = fx_take(f, "assign", "W1");
    assert_non_null(first);
    char id_a[BROKER_EXEC_ID_SIZE], id_b[BROKER_EXEC_ID_SIZE];
    strcpy(id_a, a->id);
    strcpy(id_b, b->id);
    const char *adopted_id = fx_str(first, "execution_id");
    const char *other = strcmp(adopted_id, id_a) == 0 ? id_b : id_a;
    char waiting[BROKER_EXEC_ID_SIZE];
    strcpy(waiting, other);
    fx_restart(f);
    assert_int_equal(broker_engine_recover(f->engine, f->now), 2);
    broker_engine_adoption_open(f->engine, f->now);
    fx_advance(f, 2 * WINDOW - 1, NULL);
    fx_ready(f, "W1", 2, json_pack("[o]", fx_ref_of(first)));
    /* The other phase's worker is still on its way: the window holds. */
    fx_advance(f, WINDOW - 1, "W1");
    broker_phase_t *phase =
        broker_execution_active_phase(broker_engine_find(f->engine, waiting));
    assert_int_equal(phase->status, BROKER_PHASE_RUNNING);
    assert_int_equal(phase->attempt, 1);
    fx_advance(f, 1, "W1");
    /* Lost, and run again at once on W1's free slot. */
    assert_int_equal(phase->attempt, 2);
    json_decref(first);
}

/* However long READYs keep adopting, the window closes three adoption windows
 * (six liveness windows) after it opened. */
static void test_adoption_window_has_a_cap(void **state)
{
    fx_t *f = *state;
    char id[BROKER_EXEC_ID_SIZE];
    restart_with_w1_running(f, 600, id);
    broker_engine_adoption_open(f->engine, f->now);
    broker_phase_t *phase = broker_execution_active_phase(broker_engine_find(f->engine, id));
    for (int64_t t = 0; t < 6 * WINDOW - WINDOW / 2; t += WINDOW / 2) {
        fx_advance(f, WINDOW / 2, NULL);
        broker_deadlines_adoption_progress(f->engine, f->now); /* another worker adopted */
    }
    fx_advance(f, WINDOW / 2 - 1, NULL);
    assert_int_equal(phase->status, BROKER_PHASE_RUNNING);
    fx_advance(f, 1, NULL);
    assert_int_equal(phase->status, BROKER_PHASE_QUEUED);
}

/* A first start (nothing found running) opens no window: a worker gone at once
 * loses its attempts at once. */
static void test_no_window_without_attempts_to_adopt(void **state)
{
    fx_t *f = *state;
    broker_engine_adoption_open(f->engine, f->now);
    broker_execution_t *exec;
    broker_phase_t *phase = run_on_w1(f, 60, &exec);
    syn_msg_t *beat = syn_msg_new_with(SYN_MSG_HEARTBEAT, json_object());
    broker_engine_undeliverable(f->engine, "W1", 2, beat, EHOSTUNREACH, f->now);
    syn_msg_destroy(&beat);
    broker_lost_unreachable_now(f->engine, f->now);
    assert_int_equal(phase->status, BROKER_PHASE_QUEUED);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        fx_unit_test(test_window_and_backstop),
        fx_unit_test(test_backstop_fails_the_attempt),
        fx_unit_test(test_backoff_ends_on_time),
        fx_unit_test(test_adoption_window),
        fx_unit_test(test_adoption_window_opens_after_the_reload),
        fx_unit_test(test_worker_gone_in_the_adoption_window),
        fx_unit_test(test_adoption_window_stays_open_while_readys_adopt),
        fx_unit_test(test_adoption_window_has_a_cap),
        fx_unit_test(test_no_window_without_attempts_to_adopt),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
