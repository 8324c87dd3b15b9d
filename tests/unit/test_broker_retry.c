/* The retry policy on its own: each budget, the back-off and its cap, and the
 * reason a phase fails with, without an engine or a database.
 * Through the engine: retries with their back-off, and retries exhausted and
 * counted apart from lost workers. */
#include "broker/retry.h"
#include "tests/support/broker_steps.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static broker_retry_counts_t counts(int64_t attempt, int64_t max_attempts, int64_t undelivered,
                                    int64_t failures, int64_t retries)
{
    return (broker_retry_counts_t){
        .attempt = attempt,
        .max_attempts = max_attempts,
        .undelivered = undelivered,
        .failures = failures,
        .lost = attempt - undelivered - failures,
        .retries = retries,
        .backoff_seconds = 2.0,
    };
}

static void test_backoff_doubles_up_to_the_cap(void **state)
{
    (void)state;
    assert_int_equal(broker_retry_delay_ms(2.0, 1), 2000);
    assert_int_equal(broker_retry_delay_ms(2.0, 2), 4000);
    assert_int_equal(broker_retry_delay_ms(2.0, 5), 32000);
    assert_int_equal(broker_retry_delay_ms(2.0, 6), 60000);
    assert_int_equal(broker_retry_delay_ms(2.0, 1000000), 60000);
    assert_int_equal(broker_retry_delay_ms(0.25, 2), 500);
    assert_int_equal(broker_retry_delay_ms(0.0005, 1), 1); /* rounded, not cut */
    assert_int_equal(broker_retry_delay_ms(0, 7), 0);
    assert_int_equal(broker_retry_delay_ms(45, 1), 45000);
    assert_int_equal(broker_retry_delay_ms(90, 1), 60000); /* the cap holds from the first */
}

static void test_not_run_always_again_at_once(void **state)
{
    (void)state;
    broker_retry_counts_t c = counts(50, 1, 40, 9, 0);
    broker_retry_t v = broker_retry_decide(BROKER_RETRY_NOT_RUN, &c);
    assert_true(v.again);
    assert_int_equal(v.delay_ms, 0);
}

/* A worker fault (the agent could not be started) runs again at once and uses up
 * no budget: after 30 of them a phase still has all of max_attempts. */
static void test_worker_fault_counts_against_nothing(void **state)
{
    (void)state;
    broker_retry_counts_t c = counts(30, 1, 30, 0, 0);
    broker_retry_t v = broker_retry_decide(BROKER_RETRY_WORKER_FAULT, &c);
    assert_true(v.again);
    assert_int_equal(v.delay_ms, 0);
    c = counts(31, 2, 30, 0, 0); /* then one attempt lost with its worker */
    assert_true(broker_retry_decide(BROKER_RETRY_WORKER_LOST, &c).again);
}

/* max_attempts counts the lost attempts only: refused, undelivered and
 * agent-failed ones are left out. */
static void test_lost_within_max_attempts(void **state)
{
    (void)state;
    broker_retry_cause_t causes[] = {BROKER_RETRY_WORKER_LOST, BROKER_RETRY_GIVEN_BACK};
    for (size_t i = 0; i < 2; i++) {
        broker_retry_counts_t c = counts(2, 3, 0, 0, 0);
        broker_retry_t v = broker_retry_decide(causes[i], &c);
        assert_true(v.again);
        assert_int_equal(v.delay_ms, 0);
        c = counts(3, 3, 0, 0, 0);
        assert_false(broker_retry_decide(causes[i], &c).again);
        c = counts(5, 3, 1, 2, 0); /* two of five lost */
        assert_true(broker_retry_decide(causes[i], &c).again);
        c = counts(1, 1, 0, 0, 5);
        assert_false(broker_retry_decide(causes[i], &c).again);
    }
}

/* retries counts the agent's failures only, each retry after its back-off. */
static void test_agent_failures_within_retries(void **state)
{
    (void)state;
    broker_retry_counts_t c = counts(1, 1, 0, 1, 2);
    broker_retry_t v = broker_retry_decide(BROKER_RETRY_AGENT_FAILED, &c);
    assert_true(v.again);
    assert_int_equal(v.delay_ms, 2000);
    c = counts(2, 1, 0, 2, 2);
    v = broker_retry_decide(BROKER_RETRY_AGENT_FAILED, &c);
    assert_true(v.again);
    assert_int_equal(v.delay_ms, 4000);
    c = counts(3, 1, 0, 3, 2);
    v = broker_retry_decide(BROKER_RETRY_AGENT_FAILED, &c);
    assert_false(v.again);
    assert_int_equal(v.delay_ms, 0);
    c = counts(4, 1, 3, 1, 0); /* no retries: the first failure ends it */
    assert_false(broker_retry_decide(BROKER_RETRY_AGENT_FAILED, &c).again);
}

static void expect_reason(broker_retry_cause_t cause, broker_retry_counts_t c, const char *want)
{
    char *got = broker_retry_give_up_reason(cause, &c, "boom");
    assert_non_null(got);
    assert_string_equal(got, want);
    free(got);
}

static void test_give_up_reasons(void **state)
{
    (void)state;
    expect_reason(BROKER_RETRY_WORKER_LOST, counts(1, 1, 0, 0, 0),
                  "worker lost 1 time (max_attempts 1); last: boom");
    expect_reason(BROKER_RETRY_WORKER_LOST, counts(4, 3, 1, 0, 0),
                  "worker lost 3 times (max_attempts 3); last: boom");
    expect_reason(BROKER_RETRY_GIVEN_BACK, counts(2, 2, 0, 0, 0),
                  "boom (attempt 2 of max_attempts 2)");
    expect_reason(BROKER_RETRY_AGENT_FAILED, counts(1, 3, 0, 1, 0), "boom");
    expect_reason(BROKER_RETRY_AGENT_FAILED, counts(3, 3, 0, 3, 2),
                  "boom (failed 3 times; retries 2)");
    expect_reason(BROKER_RETRY_NOT_RUN, counts(1, 1, 1, 0, 0), "boom");
    expect_reason(BROKER_RETRY_WORKER_FAULT, counts(1, 1, 1, 0, 0), "boom");
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_backoff_doubles_up_to_the_cap),
        cmocka_unit_test(test_not_run_always_again_at_once),
        cmocka_unit_test(test_worker_fault_counts_against_nothing),
        cmocka_unit_test(test_lost_within_max_attempts),
        cmocka_unit_test(test_agent_failures_within_retries),
        cmocka_unit_test(test_give_up_reasons),
        fx_unit_test(test_retries_with_backoff),
        fx_unit_test(test_retries_exhausted_and_counted_apart),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
