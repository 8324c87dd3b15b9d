/* Budgets (issue 19): the rule and its words (common/budget_usd.h), and the
 * broker's side (broker/budget_usd.h) without processes: the ASSIGN carries the
 * budget and what was spent; a cost report crossing it cancels the attempt and
 * fails the execution with the words, the next phase never queued; a failed
 * result that crosses it is not retried; a report under it only says the cost.
 * Through real processes: tests/integration/test_budget_usd.c. */
#include "broker/budget_usd.h"
#include "common/budget_usd.h"
#include "tests/support/broker_fixture.h"
#include "tests/support/broker_steps.h"

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static void test_reached_at_the_budget_not_before(void **state)
{
    (void)state;
    assert_false(syn_budget_reached(0.5, 0.4999));
    assert_true(syn_budget_reached(0.5, 0.5));
    assert_true(syn_budget_reached(0.5, 0.6));
    /* No budget, or a nonsense one: never reached. */
    assert_false(syn_budget_reached(0, 100));
    assert_false(syn_budget_reached(-1, 100));
    assert_false(syn_budget_reached(NAN, 100));
    assert_false(syn_budget_reached(0.5, NAN));
}

static void test_message_two_to_four_decimals(void **state)
{
    (void)state;
    char buf[128];
    syn_budget_message(0.5, 0.5123, buf, sizeof buf);
    assert_string_equal(buf, "Budget of $0.50 exceeded ($0.5123 spent)");
    syn_budget_message(2, 2.6, buf, sizeof buf);
    assert_string_equal(buf, "Budget of $2.00 exceeded ($2.60 spent)");
    syn_budget_message(0.05, 0.051234, buf, sizeof buf);
    assert_string_equal(buf, "Budget of $0.05 exceeded ($0.0512 spent)");
    syn_budget_format_usd(1234.5, buf, sizeof buf);
    assert_string_equal(buf, "$1234.50");
    syn_budget_format_usd(0.00004, buf, sizeof buf);
    assert_string_equal(buf, "$0.00");
}

/* Starts an execution of a 2-phase workflow with this budget on W1: its ASSIGN. */
static json_t *start_with_budget(fx_t *f, double budget, char id[BROKER_EXEC_ID_SIZE])
{
    fx_workflow(f, "wf", 2, 60);
    json_t *body = NULL;
    assert_int_equal(fx_call(f, "execution.start",
                             json_pack("{s:s, s:{s:s}, s:f}", "workflow_id", "wf", "inputs",
                                       "topic", "cats", "max_budget_usd", budget),
                             &body),
                     200);
    snprintf(id, BROKER_EXEC_ID_SIZE, "%s", fx_str(body, "execution_id"));
    json_decref(body);
    fx_ready(f, "W1", 2, NULL);
    json_t *assign = fx_take(f, "assign", "W1");
    assert_non_null(assign);
    return assign;
}

static void cost_report(fx_t *f, const json_t *assign, double cost)
{
    fx_worker_send(f, "W1", SYN_MSG_PROGRESS,
                   fx_attempt_fields(assign, json_pack("{s:s, s:s, s:f}", "kind", "cost", "data",
                                                       "", "cost_usd", cost)));
}

/* A RESULT of this status whose usage says the attempt cost cost. */
static void result_costing(fx_t *f, const json_t *assign, const char *status, double cost)
{
    bool completed = strcmp(status, "completed") == 0;
    fx_worker_send(f, "W1", SYN_MSG_RESULT,
                   fx_attempt_fields(assign, json_pack("{s:s, s:s, s:s?, s:i, s:{s:f}}",
                                                       "status", status, "output", "done",
                                                       "error", completed ? NULL : "boom",
                                                       "exit_code", completed ? 0 : 3, "usage",
                                                       "cost_usd", cost)));
}

static void test_cost_report_crossing_stops_the_attempt(void **state)
{
    fx_t *f = *state;
    char id[BROKER_EXEC_ID_SIZE];
    json_t *assign = start_with_budget(f, 0.5, id);
    assert_true(fabs(json_number_value(json_object_get(assign, "max_budget_usd")) - 0.5) < 1e-9);
    assert_true(json_number_value(json_object_get(assign, "spent_usd")) == 0);

    cost_report(f, assign, 0.3);
    json_t *cost = fx_take_event(f, id, "PhaseCost");
    assert_non_null(cost);
    json_t *data = json_object_get(cost, "data");
    assert_true(fabs(json_number_value(json_object_get(data, "execution_cost_usd")) - 0.3) < 1e-9);
    assert_true(fabs(json_number_value(json_object_get(data, "max_budget_usd")) - 0.5) < 1e-9);
    json_decref(cost);
    expect_status(f, "wf", id, "running");
    json_t *detail = detail_of(f, id);
    assert_true(fabs(json_number_value(json_object_get(detail, "cost_usd")) - 0.3) < 1e-9);
    json_decref(detail);
    assert_int_equal(fx_count_sent(f, "cancel"), 0);

    cost_report(f, assign, 0.6);
    expect_status(f, "wf", id, "failed");
    json_t *st = status_of(f, "wf", id);
    assert_string_equal(fx_str(st, "error"), "Budget of $0.50 exceeded ($0.60 spent)");
    json_decref(st);
    expect_sent(f, "cancel", "W1", "phase_id", "p1");
    assert_int_equal(fx_db_int(f, "SELECT count(*) FROM events WHERE type = 'PhaseQueued' AND "
                                  "json_extract(data, '$.phase_id') = 'p2'"),
                     0);
    assert_int_equal(fx_db_int(f, "SELECT count(*) FROM phases WHERE phase_id = 'p2' AND "
                                  "status = 'skipped'"),
                     1);
    /* The stopped attempt's result comes later: stale, its cost still counted. */
    fx_result(f, "W1", assign, "failed", "", "Budget of $0.50 exceeded ($0.60 spent)");
    assert_null(fx_take(f, "assign", "W1"));
    json_decref(assign);
}

static void test_failed_result_over_budget_is_not_retried(void **state)
{
    fx_t *f = *state;
    char id[BROKER_EXEC_ID_SIZE];
    json_t *assign = start_with_budget(f, 0.5, id);
    result_costing(f, assign, "failed", 0.75);
    expect_status(f, "wf", id, "failed");
    json_t *st = status_of(f, "wf", id);
    assert_string_equal(fx_str(st, "error"), "Budget of $0.50 exceeded ($0.75 spent)");
    json_decref(st);
    assert_null(fx_take(f, "assign", "W1"));
    assert_int_equal(fx_count_sent(f, "cancel"), 0); /* its result was in: nothing to stop */
    json_decref(assign);
}

static void test_completed_phase_over_budget_stops_the_next(void **state)
{
    fx_t *f = *state;
    char id[BROKER_EXEC_ID_SIZE];
    json_t *assign = start_with_budget(f, 0.5, id);
    result_costing(f, assign, "completed", 0.5);
    expect_status(f, "wf", id, "failed");
    assert_int_equal(fx_db_int(f, "SELECT count(*) FROM phases WHERE phase_id = 'p1' AND "
                                  "status = 'completed'"),
                     1);
    assert_null(fx_take(f, "assign", "W1"));
    json_decref(assign);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reached_at_the_budget_not_before),
        cmocka_unit_test(test_message_two_to_four_decimals),
        fx_unit_test(test_cost_report_crossing_stops_the_attempt),
        fx_unit_test(test_failed_result_over_budget_is_not_retried),
        fx_unit_test(test_completed_phase_over_budget_stops_the_next),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
