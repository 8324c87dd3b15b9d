/* Dispatch (broker/dispatch.c): the queue's order, a phase waiting for its
 * provider without holding up the others, and what an ASSIGN carries. */
#include "broker/dispatch.h"
#include "tests/support/broker_fixture.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static void expect_assign(fx_t *f, const char *worker, const char *id, int attempt)
{
    json_t *assign = fx_take(f, "assign", worker);
    if (!assign)
        fail_msg("no assign to %s", worker);
    assert_string_equal(fx_str(assign, "execution_id"), id);
    assert_int_equal(fx_num(assign, "attempt"), attempt);
    json_decref(assign);
}

/* Oldest first, and a phase handed back goes to the front. */
static void test_oldest_first_retry_at_the_front(void **state)
{
    fx_t *f = *state;
    fx_workflow(f, "wf", 1, 60);
    char a[BROKER_EXEC_ID_SIZE], b[BROKER_EXEC_ID_SIZE];
    strcpy(a, fx_start(f, "wf")->id);
    strcpy(b, fx_start(f, "wf")->id);
    fx_ready(f, "W1", 1, NULL);
    json_t *assign = fx_take(f, "assign", "W1");
    assert_string_equal(fx_str(assign, "execution_id"), a);
    assert_int_equal(fx_count_sent(f, "assign"), 0);
    fx_result(f, "W1", assign, "cancelled", "", NULL);
    json_decref(assign);
    expect_assign(f, "W1", a, 2);
}

static void test_provider_waits_keeping_its_place(void **state)
{
    fx_t *f = *state;
    fx_workflow(f, "wf", 1, 60);
    broker_execution_t *first = fx_start(f, "wf");
    broker_set_string(&first->phases[0].provider, "special");
    char a[BROKER_EXEC_ID_SIZE], b[BROKER_EXEC_ID_SIZE];
    strcpy(a, first->id);
    strcpy(b, fx_start(f, "wf")->id);
    fx_ready(f, "W1", 2, NULL); /* mock only */
    expect_assign(f, "W1", b, 1);
    assert_int_equal(fx_count_sent(f, "assign"), 0);
    fx_worker_send(f, "W2", SYN_MSG_READY,
                   json_pack("{s:s, s:i, s:[s], s:[]}", "worker", "W2", "slots", 1, "providers",
                             "special", "running"));
    expect_assign(f, "W2", a, 1);
}

/* The earlier outputs, newest first while they fit the budget. */
static void test_earlier_outputs_within_budget(void **state)
{
    fx_t *f = *state;
    fx_workflow(f, "wf", 3, 60);
    broker_execution_t *exec = fx_start(f, "wf");
    exec->phases[0].status = BROKER_PHASE_COMPLETED;
    exec->phases[0].output = strdup("aaaa"); /* 4 + "p1" */
    exec->phases[1].status = BROKER_PHASE_COMPLETED;
    exec->phases[1].output = strdup("bb"); /* 2 + "p2" */
    json_t *inputs = broker_dispatch_earlier_outputs(exec, &exec->phases[2], 5);
    assert_int_equal(json_object_size(inputs), 1);
    assert_string_equal(fx_str(inputs, "p2"), "bb");
    json_decref(inputs);
    inputs = broker_dispatch_earlier_outputs(exec, &exec->phases[2], 10);
    assert_int_equal(json_object_size(inputs), 2);
    json_decref(inputs);
    inputs = broker_dispatch_earlier_outputs(exec, &exec->phases[1], 100);
    assert_int_equal(json_object_size(inputs), 1);
    assert_string_equal(fx_str(inputs, "p1"), "aaaa");
    json_decref(inputs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        fx_unit_test(test_oldest_first_retry_at_the_front),
        fx_unit_test(test_provider_waits_keeping_its_place),
        fx_unit_test(test_earlier_outputs_within_budget),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
