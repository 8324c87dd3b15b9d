/* Fencing on its own: whether a worker may take over or report an attempt
 * another worker holds, with the workers registry alone (no engine, no store). */
#include "broker/fence.h"
#include "broker/workers.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>

#include <cmocka.h>

static broker_worker_t *add(broker_workers_t *workers, const char *identity, const char *name,
                            const char *peer_key)
{
    broker_worker_t *w = broker_workers_register(workers, identity, 2, name, 1, NULL, 0);
    assert_non_null(w);
    assert_int_equal(broker_worker_set_peer_key(w, peer_key), 0);
    return w;
}

static void test_may_take_over(void **state)
{
    (void)state;
    broker_workers_t *workers = broker_workers_new();
    broker_worker_t *holder = add(workers, "H1", "w1", "KEY-A");
    broker_worker_t *same_key = add(workers, "H2", "w1", "KEY-A");
    broker_worker_t *other_key = add(workers, "H3", "w3", "KEY-B");
    broker_worker_t *no_curve = add(workers, "H4", "w4", NULL);
    broker_phase_t phase = {0};

    /* Nobody holds it: anyone may. */
    assert_true(broker_fence_may_take_over(workers, &phase, other_key));
    phase.worker_key = holder->key;
    assert_true(broker_fence_may_take_over(workers, &phase, holder));
    assert_true(broker_fence_may_take_over(workers, &phase, same_key));
    assert_false(broker_fence_may_take_over(workers, &phase, other_key));
    /* Without CURVE there is no key to go by. */
    assert_true(broker_fence_may_take_over(workers, &phase, no_curve));
    /* A holder the broker does not know (yet) leaves it to any worker. */
    phase.worker_key = "gone";
    assert_true(broker_fence_may_take_over(workers, &phase, other_key));
    /* A holder without a key neither. */
    phase.worker_key = no_curve->key;
    assert_true(broker_fence_may_take_over(workers, &phase, other_key));
    broker_workers_destroy(&workers);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_may_take_over),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
