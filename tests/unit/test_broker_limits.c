/* Queue positions (broker/limits.c) through the API of an in-process broker
 * (tests/support/broker_fixture): the numbers of waiting executions in their
 * detail and status — within their workflow when it has max_concurrent, over
 * all workflows otherwise —, a higher priority ahead, the numbers moving up
 * when one ahead is cancelled or starts, and none once it runs. */
#include "tests/support/broker_steps.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

static void one_phase_workflow(fx_t *f, const char *id, int max_concurrent)
{
    json_t *args = json_pack("{s:s, s:s, s:[{s:s, s:s, s:i, s:s}]}", "id", id, "name", id,
                             "phases", "phase_id", "p", "name", "P", "order", 1,
                             "prompt_template", "x");
    if (max_concurrent > 0)
        json_object_set_new(args, "max_concurrent", json_integer(max_concurrent));
    fx_expect(f, "workflow.create", args, 201, NULL);
}

static void start_with(fx_t *f, const char *workflow_id, int priority,
                       char id[BROKER_EXEC_ID_SIZE])
{
    json_t *body;
    json_t *args = json_pack("{s:s, s:i}", "workflow_id", workflow_id, "priority", priority);
    assert_int_equal(fx_call(f, "execution.start", args, &body), 200);
    snprintf(id, BROKER_EXEC_ID_SIZE, "%s", fx_str(body, "execution_id"));
    json_decref(body);
}

/* The position in the detail (null → 0), checked against the status answer's
 * (absent → 0). */
static json_int_t position(fx_t *f, const char *workflow_id, const char *id)
{
    json_t *detail;
    assert_int_equal(fx_call(f, "execution.get", json_pack("{s:s}", "execution_id", id), &detail),
                     200);
    json_t *at = json_object_get(detail, "queue_position");
    assert_true(json_is_integer(at) || json_is_null(at));
    json_int_t n = json_integer_value(at);
    json_decref(detail);
    json_t *status = status_of(f, workflow_id, id);
    assert_int_equal(json_integer_value(json_object_get(status, "queue_position")), n);
    json_decref(status);
    return n;
}

static void test_positions_follow_the_queue(void **state)
{
    fx_t *f = *state;
    one_phase_workflow(f, "solo", 1);
    one_phase_workflow(f, "free", 0);
    /* no worker yet: everything waits */
    char s1[BROKER_EXEC_ID_SIZE], f1[BROKER_EXEC_ID_SIZE], s2[BROKER_EXEC_ID_SIZE],
        f2[BROKER_EXEC_ID_SIZE], s3[BROKER_EXEC_ID_SIZE], urgent[BROKER_EXEC_ID_SIZE];
    start_with(f, "solo", 0, s1);
    start_with(f, "free", 0, f1);
    start_with(f, "solo", 0, s2);
    start_with(f, "free", 0, f2);
    start_with(f, "solo", 0, s3);
    /* solo has max_concurrent: numbered among its own; free among all */
    assert_int_equal(position(f, "solo", s1), 1);
    assert_int_equal(position(f, "solo", s2), 2);
    assert_int_equal(position(f, "solo", s3), 3);
    assert_int_equal(position(f, "free", f1), 2);
    assert_int_equal(position(f, "free", f2), 4);

    start_with(f, "solo", 5, urgent);
    assert_int_equal(position(f, "solo", urgent), 1);
    assert_int_equal(position(f, "solo", s1), 2);
    assert_int_equal(position(f, "free", f1), 3);

    fx_expect(f, "execution.cancel", json_pack("{s:s}", "execution_id", s1), 200, NULL);
    assert_int_equal(position(f, "solo", s2), 2);
    assert_int_equal(position(f, "free", f1), 2);

    /* one slot: the urgent one starts, solo's others still wait for its place */
    fx_ready(f, "W1", 1, NULL);
    json_t *assign = fx_take(f, "assign", "W1");
    assert_non_null(assign);
    assert_string_equal(fx_str(assign, "execution_id"), urgent);
    json_decref(assign);
    assert_int_equal(position(f, "solo", urgent), 0);
    assert_int_equal(position(f, "solo", s2), 1);
    assert_int_equal(position(f, "solo", s3), 2);
    assert_int_equal(position(f, "free", f1), 1); /* the urgent one no longer ahead */
    assert_int_equal(position(f, "free", f2), 3);

    /* the listing's summaries carry them too */
    json_t *list;
    assert_int_equal(
        fx_call(f, "execution.list", json_pack("{s:s}", "status", "pending"), &list), 200);
    json_t *items = json_object_get(list, "executions");
    assert_int_equal(json_array_size(items), 4);
    for (size_t i = 0; i < json_array_size(items); i++)
        assert_true(json_integer_value(
                        json_object_get(json_array_get(items, i), "queue_position")) >= 1);
    json_decref(list);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        fx_unit_test(test_positions_follow_the_queue),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
