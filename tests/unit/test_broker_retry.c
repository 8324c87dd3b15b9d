/* The retry policy on its own: each budget, the back-off and its cap, and the
 * reason a phase fails with, without an engine or a database. */
#include "broker/retry.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>

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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_backoff_doubles_up_to_the_cap),
        cmocka_unit_test(test_not_run_always_again_at_once),
        cmocka_unit_test(test_worker_fault_counts_against_nothing),
        cmocka_unit_test(test_lost_within_max_attempts),
        cmocka_unit_test(test_agent_failures_within_retries),
        cmocka_unit_test(test_give_up_reasons),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
