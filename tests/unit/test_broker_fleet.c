/* The fleet as the broker sees it (issue 18): workers.list (GET /workers), with
 * the workers lost in the last ten minutes, and ready (GET /ready). */
#include "tests/support/broker_fixture.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

/* The listed worker named name (borrowed from list), or NULL. */
static json_t *listed(json_t *list, const char *name)
{
    size_t i;
    json_t *w;
    json_array_foreach(json_object_get(list, "workers"), i, w)
        if (strcmp(json_string_value(json_object_get(w, "name")), name) == 0)
            return w;
    return NULL;
}

static void test_workers_list_counts_and_keeps_the_lost(void **state)
{
    fx_t *f = *state;
    fx_workflow(f, "wf", 1, 60);
    fx_ready(f, "W1", 2, NULL);
    fx_ready(f, "W2", 1, NULL);
    fx_start(f, "wf");
    json_t *assign = fx_take(f, "assign", NULL);
    assert_non_null(assign);
    /* The phase went to the least busy worker registered first: W1. */
    fx_result(f, "W1", assign, "completed", "done", NULL);
    json_decref(assign);

    json_t *body = NULL;
    assert_int_equal(fx_call(f, "workers.list", json_object(), &body), 200);
    json_t *w1 = listed(body, "W1");
    assert_non_null(w1);
    assert_int_equal(json_integer_value(json_object_get(w1, "slots")), 2);
    assert_int_equal(json_integer_value(json_object_get(w1, "attempts_completed")), 1);
    assert_int_equal(json_integer_value(json_object_get(w1, "attempts_failed")), 0);
    assert_int_equal(json_integer_value(json_object_get(w1, "running")), 0);
    assert_true(json_is_true(json_object_get(w1, "healthy")));
    assert_true(json_is_true(json_object_get(w1, "connected")));
    assert_true(json_is_string(json_object_get(w1, "connected_at")));
    assert_true(json_is_string(json_object_get(w1, "last_heartbeat_at")));
    assert_non_null(listed(body, "W2"));
    json_decref(body);

    /* W2 goes silent: it is lost, and still listed, as lost. */
    for (int i = 0; i < 2 * FX_LIVENESS; i++)
        fx_advance(f, FX_HEARTBEAT_MS, "W1");
    assert_int_equal(broker_workers_count(f->workers), 1);
    assert_int_equal(fx_call(f, "workers.list", json_object(), &body), 200);
    json_t *w2 = listed(body, "W2");
    assert_non_null(w2);
    assert_true(json_is_false(json_object_get(w2, "connected")));
    assert_true(json_is_string(json_object_get(w2, "lost_at")));
    assert_non_null(strstr(json_string_value(json_object_get(w2, "lost_reason")),
                           "stopped responding"));
    json_decref(body);
}

static void test_ready_needs_a_healthy_worker(void **state)
{
    fx_t *f = *state;
    json_t *body = NULL;
    assert_int_equal(fx_call(f, "ready", json_object(), &body), 503);
    assert_string_equal(json_string_value(json_object_get(body, "reason")),
                        "no worker connected");
    json_decref(body);

    fx_ready(f, "W1", 1, NULL);
    assert_int_equal(fx_call(f, "ready", json_object(), &body), 200);
    assert_string_equal(json_string_value(json_object_get(body, "status")), "ready");
    json_decref(body);
    assert_int_equal(broker_workers_count_healthy(f->workers), 1);

    broker_worker_t *w = broker_workers_at(f->workers, 0);
    assert_true(broker_worker_set_unhealthy(w, "cannot run claude"));
    assert_int_equal(broker_workers_count_healthy(f->workers), 0);
    assert_int_equal(fx_call(f, "ready", json_object(), &body), 503);
    assert_non_null(strstr(json_string_value(json_object_get(body, "reason")), "no healthy"));
    json_decref(body);

    /* An unhealthy worker takes no work. */
    fx_workflow(f, "wf", 1, 60);
    fx_start(f, "wf");
    assert_int_equal(fx_count_sent(f, "assign"), 0);
    assert_true(broker_worker_set_unhealthy(w, NULL));
    fx_turn(f);
    assert_int_equal(fx_count_sent(f, "assign"), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        fx_unit_test(test_workers_list_counts_and_keeps_the_lost),
        fx_unit_test(test_ready_needs_a_healthy_worker),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
