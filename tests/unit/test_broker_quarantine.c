/* The black-hole rule on its own (broker/quarantine.c): a streak of failures of
 * different executions within the window while others succeed, the doubling
 * length, probation, and what does not count. */
#include "broker/quarantine.h"
#include "broker/workers.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

static const broker_quarantine_config_t config = {3, 60000};

static void test_three_failures_while_others_succeed(void **state)
{
    (void)state;
    broker_quarantine_t q = {0};
    assert_false(broker_quarantine_failed(&q, &config, "e1", 900, 1000));
    assert_false(broker_quarantine_failed(&q, &config, "e2", 900, 1100));
    assert_true(broker_quarantine_failed(&q, &config, "e3", 900, 1200));
    assert_int_equal(q.until_ms, 1200 + 60000);
    /* Not over before its time; then on probation, the streak forgotten. */
    assert_false(broker_quarantine_over(&q, 1200 + 59999));
    assert_true(broker_quarantine_over(&q, 1200 + 60000));
    assert_int_equal(q.until_ms, 0);
    /* Three more: twice as long this time. */
    broker_quarantine_failed(&q, &config, "e4", 61000, 61300);
    broker_quarantine_failed(&q, &config, "e5", 61000, 61400);
    assert_true(broker_quarantine_failed(&q, &config, "e6", 61000, 61500));
    assert_int_equal(q.until_ms, 61500 + 120000);
}

static void test_what_does_not_count(void **state)
{
    (void)state;
    broker_quarantine_t q = {0};
    /* The same execution failing again is one of the streak, not three. */
    broker_quarantine_failed(&q, &config, "e1", 900, 1000);
    broker_quarantine_failed(&q, &config, "e1", 900, 1100);
    assert_false(broker_quarantine_failed(&q, &config, "e1", 900, 1200));
    /* Nobody else succeeding: the work's fault, not this worker's. */
    broker_quarantine_t alone = {0};
    broker_quarantine_failed(&alone, &config, "e1", 0, 1000);
    broker_quarantine_failed(&alone, &config, "e2", 0, 1100);
    assert_false(broker_quarantine_failed(&alone, &config, "e3", 0, 1200));
    /* Failures spread wider than the window start a new streak. */
    broker_quarantine_t slow = {0};
    broker_quarantine_failed(&slow, &config, "e1", 900, 1000);
    broker_quarantine_failed(&slow, &config, "e2", 900, 2000);
    assert_false(broker_quarantine_failed(&slow, &config, "e3", 70000, 70000));
    /* A completed attempt resets the streak. */
    broker_quarantine_t ok = {0};
    broker_quarantine_failed(&ok, &config, "e1", 900, 1000);
    broker_quarantine_failed(&ok, &config, "e2", 900, 1100);
    broker_quarantine_completed(&ok);
    assert_false(broker_quarantine_failed(&ok, &config, "e3", 900, 1200));
    /* after 0: never. */
    const broker_quarantine_config_t off = {0, 60000};
    broker_quarantine_t never = {0};
    for (int i = 0; i < 10; i++)
        assert_false(broker_quarantine_failed(&never, &off, i % 2 ? "a" : "b", 900, 1000 + i));
}

/* Whose successes make a failing worker a black hole: only those of workers
 * that offer one of its providers, so could have run the phases it failed. The
 * chaos soak (issue 23) found both command workers quarantined at once, the
 * second only because mock workers had completed mock phases: phases pinned to
 * the command provider then waited a minute with no worker at all. */
static void test_only_peers_of_a_provider_count_as_others(void **state)
{
    (void)state;
    broker_workers_t *workers = broker_workers_new();
    json_t *mock = json_pack("[s]", "mock"), *command = json_pack("[s]", "command");
    json_t *both = json_pack("[s, s]", "command", "claude");
    broker_worker_t *m = broker_workers_register(workers, "M", 1, "m", 1, mock, 0);
    broker_worker_t *c1 = broker_workers_register(workers, "C1", 2, "c1", 1, command, 0);
    broker_worker_t *c2 = broker_workers_register(workers, "C2", 2, "c2", 1, both, 0);
    assert_non_null(m);
    assert_non_null(c1);
    assert_non_null(c2);
    m->last_completed_ms = 5000;
    assert_int_equal(broker_workers_peer_completed_ms(workers, c1), 0);
    c2->last_completed_ms = 4000;
    assert_int_equal(broker_workers_peer_completed_ms(workers, c1), 4000);
    /* Its own successes never count; the mock worker has no peer at all. */
    c1->last_completed_ms = 6000;
    assert_int_equal(broker_workers_peer_completed_ms(workers, c2), 6000);
    assert_int_equal(broker_workers_peer_completed_ms(workers, m), 0);
    json_decref(mock);
    json_decref(command);
    json_decref(both);
    broker_workers_destroy(&workers);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_three_failures_while_others_succeed),
        cmocka_unit_test(test_what_does_not_count),
        cmocka_unit_test(test_only_peers_of_a_provider_count_as_others),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
