/* Every pair of states is checked against the allowed list written out here,
 * independently of the tables in broker/lifecycle.c. */
#include "broker/lifecycle.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

static const char *const exec_allowed[] = {
    "pending>running", "pending>paused",   "pending>failed",   "pending>cancelled",
    "running>paused",  "running>completed", "running>failed",  "running>cancelled",
    "paused>pending",  "paused>running",   "paused>completed", "paused>failed",
    "paused>cancelled",
    NULL,
};

static const char *const phase_allowed[] = {
    "pending>queued",    "pending>skipped",   "pending>cancelled",
    "queued>running",    "queued>failed",     "queued>skipped",   "queued>cancelled",
    "running>completed", "running>failed",    "running>cancelled", "running>queued",
    NULL,
};

static const char *const attempt_allowed[] = {
    "running>completed", "running>failed", "running>cancelled", "running>lost", "running>timeout",
    NULL,
};

static bool listed(const char *const *list, const char *from, const char *to)
{
    char key[64];
    snprintf(key, sizeof key, "%s>%s", from, to);
    for (size_t i = 0; list[i]; i++)
        if (strcmp(list[i], key) == 0)
            return true;
    return false;
}

static void test_exec_matrix(void **state)
{
    (void)state;
    int allowed = 0;
    for (int from = 0; from < BROKER_EXEC_STATUS_COUNT; from++)
        for (int to = 0; to < BROKER_EXEC_STATUS_COUNT; to++) {
            const char *f = broker_exec_status_name(from), *t = broker_exec_status_name(to);
            bool expected = listed(exec_allowed, f, t);
            if (broker_exec_can_transition(from, to) != expected)
                fail_msg("execution %s -> %s should be %s", f, t,
                         expected ? "allowed" : "forbidden");
            allowed += expected;
        }
    assert_int_equal(allowed, 13);
}

static void test_phase_matrix(void **state)
{
    (void)state;
    int allowed = 0;
    for (int from = 0; from < BROKER_PHASE_STATUS_COUNT; from++)
        for (int to = 0; to < BROKER_PHASE_STATUS_COUNT; to++) {
            const char *f = broker_phase_status_name(from), *t = broker_phase_status_name(to);
            bool expected = listed(phase_allowed, f, t);
            if (broker_phase_can_transition(from, to) != expected)
                fail_msg("phase %s -> %s should be %s", f, t,
                         expected ? "allowed" : "forbidden");
            allowed += expected;
        }
    assert_int_equal(allowed, 11);
}

static void test_attempt_matrix(void **state)
{
    (void)state;
    for (int from = 0; from < BROKER_ATTEMPT_STATUS_COUNT; from++)
        for (int to = 0; to < BROKER_ATTEMPT_STATUS_COUNT; to++) {
            const char *f = broker_attempt_status_name(from);
            const char *t = broker_attempt_status_name(to);
            bool expected = listed(attempt_allowed, f, t);
            if (broker_attempt_can_transition(from, to) != expected)
                fail_msg("attempt %s -> %s should be %s", f, t,
                         expected ? "allowed" : "forbidden");
        }
}

static void test_terminal(void **state)
{
    (void)state;
    assert_false(broker_exec_is_terminal(BROKER_EXEC_PENDING));
    assert_false(broker_exec_is_terminal(BROKER_EXEC_RUNNING));
    assert_false(broker_exec_is_terminal(BROKER_EXEC_PAUSED));
    assert_true(broker_exec_is_terminal(BROKER_EXEC_COMPLETED));
    assert_true(broker_exec_is_terminal(BROKER_EXEC_FAILED));
    assert_true(broker_exec_is_terminal(BROKER_EXEC_CANCELLED));

    assert_false(broker_phase_is_terminal(BROKER_PHASE_PENDING));
    assert_false(broker_phase_is_terminal(BROKER_PHASE_QUEUED));
    assert_false(broker_phase_is_terminal(BROKER_PHASE_RUNNING));
    assert_true(broker_phase_is_terminal(BROKER_PHASE_COMPLETED));
    assert_true(broker_phase_is_terminal(BROKER_PHASE_FAILED));
    assert_true(broker_phase_is_terminal(BROKER_PHASE_CANCELLED));
    assert_true(broker_phase_is_terminal(BROKER_PHASE_SKIPPED));

    assert_false(broker_attempt_is_terminal(BROKER_ATTEMPT_RUNNING));
    assert_true(broker_attempt_is_terminal(BROKER_ATTEMPT_LOST));
    assert_true(broker_attempt_is_terminal(BROKER_ATTEMPT_TIMEOUT));
}

static void test_out_of_range(void **state)
{
    (void)state;
    assert_false(broker_exec_can_transition(BROKER_EXEC_PENDING, BROKER_EXEC_STATUS_COUNT));
    assert_false(broker_exec_can_transition((broker_exec_status_t)-1, BROKER_EXEC_RUNNING));
    assert_false(broker_phase_can_transition(BROKER_PHASE_STATUS_COUNT, BROKER_PHASE_QUEUED));
    assert_null(broker_exec_status_name(BROKER_EXEC_STATUS_COUNT));
    assert_null(broker_phase_status_name((broker_phase_status_t)99));
    assert_false(broker_exec_is_terminal(BROKER_EXEC_STATUS_COUNT));
}

static void test_names_round_trip(void **state)
{
    (void)state;
    for (int s = 0; s < BROKER_EXEC_STATUS_COUNT; s++) {
        broker_exec_status_t back;
        assert_int_equal(broker_exec_status_parse(broker_exec_status_name(s), &back), 0);
        assert_int_equal(back, s);
    }
    for (int s = 0; s < BROKER_PHASE_STATUS_COUNT; s++) {
        broker_phase_status_t back;
        assert_int_equal(broker_phase_status_parse(broker_phase_status_name(s), &back), 0);
        assert_int_equal(back, s);
    }
    for (int s = 0; s < BROKER_ATTEMPT_STATUS_COUNT; s++) {
        broker_attempt_status_t back;
        assert_int_equal(broker_attempt_status_parse(broker_attempt_status_name(s), &back), 0);
        assert_int_equal(back, s);
    }
    broker_exec_status_t e;
    assert_int_equal(broker_exec_status_parse("Running", &e), -1);
    assert_int_equal(broker_exec_status_parse("", &e), -1);
    assert_int_equal(broker_exec_status_parse(NULL, &e), -1);
    broker_phase_status_t p;
    assert_int_equal(broker_phase_status_parse("skip", &p), -1);
    assert_string_equal(broker_exec_status_name(BROKER_EXEC_CANCELLED), "cancelled");
    assert_string_equal(broker_phase_status_name(BROKER_PHASE_SKIPPED), "skipped");
    assert_string_equal(broker_attempt_status_name(BROKER_ATTEMPT_LOST), "lost");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exec_matrix),     cmocka_unit_test(test_phase_matrix),
        cmocka_unit_test(test_attempt_matrix),  cmocka_unit_test(test_terminal),
        cmocka_unit_test(test_out_of_range),    cmocka_unit_test(test_names_round_trip),
    };
    return cmocka_run_group_tests_name("lifecycle", tests, NULL, NULL);
}
