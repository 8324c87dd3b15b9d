/* The adaptive prefetch rule (worker/prefetch.h): short phases against the
 * broker's round trip get as many held as the slots, long ones none; a phase
 * running well past the limit lets go at once; --prefetch N is kept as is. */
#include "worker/prefetch.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

static void feed(worker_prefetch_t *p, int n, int64_t took_us, int64_t trip_us)
{
    for (int i = 0; i < n; i++) {
        worker_prefetch_took(p, took_us);
        worker_prefetch_trip(p, trip_us);
    }
}

static void test_fixed_is_kept(void **state)
{
    (void)state;
    worker_prefetch_t p;
    worker_prefetch_init(&p, 3);
    feed(&p, 8, 60 * 1000000LL, 1000);
    assert_int_equal(worker_prefetch_want(&p, 16, 3, 60 * 1000000LL), 3);
    worker_prefetch_init(&p, 0);
    feed(&p, 8, 50000, 2000);
    assert_int_equal(worker_prefetch_want(&p, 16, 0, -1), 0);
}

static void test_short_phases_get_slots(void **state)
{
    (void)state;
    worker_prefetch_t p;
    worker_prefetch_init(&p, PREFETCH_AUTO);
    /* Nothing measured yet: hold nothing (agents' phases are long). */
    assert_int_equal(worker_prefetch_want(&p, 16, 0, -1), 0);
    feed(&p, PREFETCH_MIN_SAMPLES - 1, 50000, 2000);
    assert_int_equal(worker_prefetch_want(&p, 16, 0, -1), 0);
    feed(&p, 1, 50000, 2000);
    /* 50 ms phases, 2 ms round trips: short. */
    assert_int_equal(worker_prefetch_want(&p, 16, 0, 10000), 16);
    assert_int_equal(worker_prefetch_want(&p, 16, 16, 10000), 16);
}

static void test_long_phases_get_none(void **state)
{
    (void)state;
    worker_prefetch_t p;
    worker_prefetch_init(&p, PREFETCH_AUTO);
    /* 8 s phases: longer than the cap whatever the round trip. */
    feed(&p, 8, 8 * 1000000LL, 50000);
    assert_int_equal(worker_prefetch_want(&p, 4, 0, -1), 0);
    /* 500 ms phases against 0.2 ms round trips: 2,500 trips, not worth it. */
    worker_prefetch_init(&p, PREFETCH_AUTO);
    feed(&p, 8, 500000, 200);
    assert_int_equal(worker_prefetch_limit_us(&p), 200000);
    assert_int_equal(worker_prefetch_want(&p, 4, 0, -1), 0);
    /* ... against 1 ms round trips: 500, worth it. */
    feed(&p, 16, 500000, 1000);
    assert_int_equal(worker_prefetch_want(&p, 4, 0, -1), 4);
}

static void test_a_long_running_phase_lets_go(void **state)
{
    (void)state;
    worker_prefetch_t p;
    worker_prefetch_init(&p, PREFETCH_AUTO);
    feed(&p, 8, 50000, 1000); /* limit 1 s */
    assert_int_equal(worker_prefetch_want(&p, 4, 0, -1), 4);
    worker_prefetch_changed(&p);
    /* Past the limit but not twice it: kept (no flapping at the edge). */
    assert_int_equal(worker_prefetch_want(&p, 4, 4, 1500000), 4);
    /* Twice the limit: the phases are long now. */
    assert_int_equal(worker_prefetch_want(&p, 4, 4, 2100000), 0);
    /* Back to short phases: fresh ones are needed before it holds again. */
    assert_int_equal(worker_prefetch_want(&p, 4, 0, -1), 0);
    feed(&p, PREFETCH_MIN_SAMPLES, 50000, 1000);
    assert_int_equal(worker_prefetch_want(&p, 4, 0, -1), 4);
    /* A median of long phases lets go too, with nothing running. */
    feed(&p, PREFETCH_SAMPLES, 5 * 1000000LL, 1000);
    assert_int_equal(worker_prefetch_want(&p, 4, 4, -1), 0);
}

static void test_median_resists_one_outlier(void **state)
{
    (void)state;
    worker_prefetch_t p;
    worker_prefetch_init(&p, PREFETCH_AUTO);
    feed(&p, 7, 50000, 1000);
    worker_prefetch_took(&p, 600 * 1000000LL);
    assert_int_equal(worker_prefetch_median_took(&p), 50000);
    assert_int_equal(worker_prefetch_want(&p, 8, 0, -1), 8);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixed_is_kept),
        cmocka_unit_test(test_short_phases_get_slots),
        cmocka_unit_test(test_long_phases_get_none),
        cmocka_unit_test(test_a_long_running_phase_lets_go),
        cmocka_unit_test(test_median_resists_one_outlier),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
