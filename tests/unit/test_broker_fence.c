/* Fencing on its own: whether a worker may take over or report an attempt
 * another worker holds, with the workers registry alone (no engine, no store).
 * Through the engine: other keys cannot take over an attempt. */
#include "broker/fence.h"
#include "broker/workers.h"
#include "tests/support/broker_steps.h"

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

/* Under CURVE a worker of another key cannot end, feed or adopt an attempt that a
 * live worker holds, even naming it exactly: ids are no secret among workers. */
static void test_other_keys_cannot_take_over_an_attempt(void **state)
{
    fx_t *f = *state;
    create_workflow(f, "wf", 1);
    keyed_ready(f, "A", "w1", KEY_A);
    char id[BROKER_EXEC_ID_SIZE];
    start(f, "wf", id);
    json_t *assign = fx_take(f, "assign", "A");
    assert_non_null(assign);
    keyed_ready(f, "B", "w2", KEY_B);
    /* A made-up result and output from B for A's attempt: refused. */
    keyed_send(f, "B", KEY_B, SYN_MSG_PROGRESS,
               fx_attempt_fields(assign, json_pack("{s:s, s:s}", "kind", "output", "data",
                                                   "forged")));
    keyed_send(f, "B", KEY_B, SYN_MSG_RESULT,
               fx_attempt_fields(assign, json_pack("{s:s, s:s, s:n, s:i}", "status",
                                                   "completed", "output", "forged", "error",
                                                   "exit_code", 0)));
    expect_status(f, "wf", id, "running");
    assert_int_equal(sent_to(f, "assign", "A") + sent_to(f, "assign", "B"), 0); /* no p2 yet */
    /* Nor can B adopt it by listing it in a READY. */
    keyed_send(f, "B", KEY_B, SYN_MSG_READY,
               json_pack("{s:s, s:i, s:[s], s:[o]}", "worker", "w2", "slots", 4, "providers",
                         "mock", "running",
                         fx_attempt_fields(assign, json_object())));
    json_t *cancel = fx_take(f, "cancel", "B");
    assert_non_null(cancel);
    json_decref(cancel);
    expect_status(f, "wf", id, "running");
    assert_int_equal(sent_to(f, "assign", "A") + sent_to(f, "assign", "B"), 0);
    /* A's own result counts: the next phase goes out. */
    keyed_send(f, "A", KEY_A, SYN_MSG_RESULT,
               fx_attempt_fields(assign, json_pack("{s:s, s:s, s:n, s:i}", "status",
                                                   "completed", "output", "real", "error",
                                                   "exit_code", 0)));
    json_decref(assign);
    json_t *next = fx_take(f, "assign", "A");
    assert_non_null(next);
    assert_string_equal(fx_str(next, "phase_id"), "p2");
    json_decref(next);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_may_take_over),
        fx_unit_test(test_other_keys_cannot_take_over_an_attempt),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
