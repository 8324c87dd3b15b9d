/* The in-flight request table: lookup by id, expiry in deadline order, removal from
 * the middle, growth to many thousands, against a brute-force model. */
#include "gateway/pending.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

static void test_add_take(void **state)
{
    (void)state;
    gateway_pending_t *p = gateway_pending_new();
    int a, b;
    assert_int_equal(gateway_pending_next_deadline(p), -1);
    assert_int_equal(gateway_pending_add(p, 1, 100, &a), 0);
    assert_int_equal(gateway_pending_add(p, 2, 50, &b), 0);
    assert_int_equal(gateway_pending_size(p), 2);
    assert_int_equal(gateway_pending_next_deadline(p), 50);
    assert_ptr_equal(gateway_pending_take(p, 2), &b);
    assert_null(gateway_pending_take(p, 2)); /* a late reply finds nothing */
    assert_null(gateway_pending_take(p, 3));
    assert_int_equal(gateway_pending_next_deadline(p), 100);
    assert_null(gateway_pending_expire(p, 99));
    assert_ptr_equal(gateway_pending_expire(p, 100), &a);
    assert_null(gateway_pending_take(p, 1));
    assert_int_equal(gateway_pending_size(p), 0);
    gateway_pending_destroy(&p);
    gateway_pending_destroy(&p);
    assert_null(p);
}

static void test_expire_order(void **state)
{
    (void)state;
    gateway_pending_t *p = gateway_pending_new();
    static int items[5];
    int64_t deadlines[5] = {30, 10, 50, 20, 40};
    for (int i = 0; i < 5; i++)
        assert_int_equal(gateway_pending_add(p, (uint64_t)i + 1, deadlines[i], &items[i]), 0);
    int want[] = {1, 3, 0, 4, 2};
    for (int i = 0; i < 5; i++)
        assert_ptr_equal(gateway_pending_expire(p, 1000), &items[want[i]]);
    assert_null(gateway_pending_expire(p, 1000));
    gateway_pending_destroy(&p);
}

/* Random adds, takes and expiries against an array model: the heap and the hash
 * must agree with it after every step. */
static void test_random_against_model(void **state)
{
    (void)state;
    enum { N = 20000 };
    gateway_pending_t *p = gateway_pending_new();
    static int64_t deadline[N + 1];
    static int present[N + 1];
    static int items[N + 1];
    size_t live = 0;
    uint64_t next_id = 1;
    srand(42);
    int64_t now = 0;
    for (int step = 0; step < 100000; step++) {
        int action = rand() % 10;
        if (action < 5 && next_id <= N) {
            uint64_t id = next_id++;
            deadline[id] = now + rand() % 1000;
            assert_int_equal(gateway_pending_add(p, id, deadline[id], &items[id]), 0);
            present[id] = 1;
            live++;
        } else if (action < 8 && next_id > 1) {
            uint64_t id = 1 + (uint64_t)rand() % (next_id - 1);
            void *got = gateway_pending_take(p, id);
            assert_ptr_equal(got, present[id] ? &items[id] : NULL);
            if (present[id]) {
                present[id] = 0;
                live--;
            }
        } else {
            now += rand() % 50;
            void *got;
            while ((got = gateway_pending_expire(p, now))) {
                uint64_t id = (uint64_t)((int *)got - items);
                assert_true(present[id]);
                assert_true(deadline[id] <= now);
                present[id] = 0;
                live--;
            }
            int64_t earliest = -1;
            for (uint64_t id = 1; id < next_id; id++)
                if (present[id]) {
                    assert_true(deadline[id] > now);
                    if (earliest < 0 || deadline[id] < earliest)
                        earliest = deadline[id];
                }
            assert_int_equal(gateway_pending_next_deadline(p), earliest);
        }
        assert_int_equal(gateway_pending_size(p), live);
    }
    gateway_pending_destroy(&p); /* frees whatever is left */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_add_take),
        cmocka_unit_test(test_expire_order),
        cmocka_unit_test(test_random_against_model),
    };
    return cmocka_run_group_tests_name("gateway_pending", tests, NULL, NULL);
}
