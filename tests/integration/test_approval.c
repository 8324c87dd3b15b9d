/* Approval gates end to end (issue 17): a phase declared human_in_loop (the
 * original's key) or `approval: required` stops its execution (paused, waiting_for
 * approval, an approval_required event naming the phase); resume does not pass it;
 * approve with a comment runs the phase with the comment among its operator
 * messages (read back from the mock agent's output, which echoes its prompt);
 * reject cancels with the reason; the gate survives a broker restart. */
#include "tests/support/execution.h"
#include "tests/support/expect.h"
#include "tests/support/http.h"
#include "tests/support/teststack.h"

#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

static teststack_t *stack;

static int setup(void **state)
{
    (void)state;
    teststack_options_t opts = {.workers = 1, .slots = 4};
    stack = teststack_start(&opts);
    return stack ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    teststack_destroy(&stack);
    return 0;
}

/* plan → review (a gate, the original's key) → build. */
#define GATED_YAML                                                                               \
    "id: gated\n"                                                                                \
    "name: Gated\n"                                                                              \
    "phases:\n"                                                                                  \
    "  - {id: plan, name: Plan, order: 1, execution_type: sequential,\n"                       \
    "     prompt_template: \"make a plan\"}\n"                                                   \
    "  - {id: review, name: Review the plan, order: 2, execution_type: human_in_loop,\n"        \
    "     prompt_template: \"carry out {{plan}}\"}\n"                                           \
    "  - {id: build, name: Build, order: 3, prompt_template: \"build it\"}\n"

/* Its first phase is the gate, written the other way. */
#define FIRST_GATED_YAML                                                                         \
    "id: first-gated\n"                                                                          \
    "name: First gated\n"                                                                        \
    "phases:\n"                                                                                  \
    "  - {id: only, name: Only, order: 1, approval: required, prompt_template: hello}\n"

static void upload(const char *yaml)
{
    char url[512];
    snprintf(url, sizeof url, "%s/workflows/from-yaml", teststack_url(stack));
    http_response_t resp;
    assert_int_equal(http_request("POST", url, yaml, "application/yaml", &resp), 0);
    if (resp.status != 200 && resp.status != 201 && resp.status != 409) /* 409: made before */
        fail_msg("from-yaml: %ld %s", resp.status, resp.body ? resp.body : "");
    http_response_clear(&resp);
}

static long control(const char *id, const char *verb, const char *body, json_t **answer)
{
    char url[256];
    snprintf(url, sizeof url, "%s/executions/%s/%s", teststack_url(stack), id, verb);
    http_response_t resp;
    assert_int_equal(http_request("POST", url, body, NULL, &resp), 0);
    long status = resp.status;
    if (answer)
        *answer = json_incref(resp.json);
    http_response_clear(&resp);
    return status;
}

static json_t *detail(const char *id)
{
    http_response_t resp;
    assert_int_equal(http_get(&resp, "%s/executions/%s", teststack_url(stack), id), 0);
    assert_int_equal(resp.status, 200);
    json_t *json = json_incref(resp.json);
    http_response_clear(&resp);
    return json;
}

/* Whether GET /executions/{id} says it waits at gate. */
static bool waiting_at(const char *id, const char *gate)
{
    json_t *d = detail(id);
    const char *waiting = json_string_value(json_object_get(d, "waiting_for"));
    const char *phase = json_string_value(json_object_get(d, "waiting_phase"));
    bool yes = waiting && phase && !strcmp(waiting, "approval") && !strcmp(phase, gate) &&
               !strcmp(json_str(d, "status"), "paused");
    json_decref(d);
    return yes;
}

static void wait_waiting_at(const char *id, const char *gate)
{
    WAIT_FOR(waiting_at(id, gate), 15000);
    if (!waiting_at(id, gate)) {
        json_t *d = detail(id);
        char *text = json_dumps(d, JSON_COMPACT);
        fail_msg("execution %s does not wait at %s: %s", id, gate, text);
    }
}

static json_t *wait_end(const char *workflow_id, const char *id, const char *want)
{
    json_t *final = teststack_wait_terminal(stack, workflow_id, id, 30000);
    assert_non_null(final);
    if (strcmp(json_str(final, "status"), want) != 0)
        fail_msg("execution %s ended %s, want %s", id, json_str(final, "status"), want);
    return final;
}

/* The whole event stream of a finished execution. */
static char *events_of(const char *id)
{
    http_response_t resp;
    assert_int_equal(http_get(&resp, "%s/sse/executions/%s", teststack_url(stack), id), 0);
    assert_int_equal(resp.status, 200);
    char *text = strdup(resp.body ? resp.body : "");
    http_response_clear(&resp);
    return text;
}

static void test_gate_then_approve_with_comment(void **state)
{
    (void)state;
    upload(GATED_YAML);
    char *id = teststack_execute(stack, "gated", "{}");
    assert_non_null(id);
    wait_waiting_at(id, "review");
    /* the phase before it ran; the gate has not */
    char *plan = execution_phase_status(stack, id, "plan");
    assert_string_equal(plan, "completed");
    free(plan);
    char *review = execution_phase_status(stack, id, "review");
    assert_string_equal(review, "pending");
    free(review);

    /* resume does not pass a gate; pause has nothing to pause */
    json_t *answer = NULL;
    assert_int_equal(control(id, "resume", NULL, &answer), 409);
    assert_non_null(strstr(json_str(answer, "detail"), "waiting for approval of phase review"));
    json_decref(answer);
    assert_true(waiting_at(id, "review"));

    assert_int_equal(control(id, "approve", "{\"comment\": \"ship it, but keep it small\"}",
                             &answer),
                     200);
    assert_string_equal(json_str(answer, "message"), "Approved");
    json_decref(answer);
    json_decref(wait_end("gated", id, "completed"));

    /* the comment reached the gated phase's prompt as an operator message */
    char *output = execution_phase_output(stack, id, "review");
    assert_non_null(strstr(output, "## Operator messages"));
    assert_non_null(strstr(output, "[user] ship it, but keep it small"));
    free(output);
    char *events = events_of(id);
    assert_non_null(strstr(events, "\"approval_required\""));
    assert_non_null(strstr(events, "\"phase_name\":\"Review the plan\""));
    assert_non_null(strstr(events, "\"approval_granted\""));
    free(events);

    /* nothing to approve any more */
    assert_int_equal(control(id, "approve", NULL, NULL), 400);
    free(id);
}

static void test_reject_cancels_with_reason(void **state)
{
    (void)state;
    upload(GATED_YAML);
    char *id = teststack_execute(stack, "gated", "{}");
    assert_non_null(id);
    wait_waiting_at(id, "review");
    assert_int_equal(control(id, "reject", "{\"reason\": \"the plan is wrong\"}", NULL), 200);
    json_t *final = wait_end("gated", id, "cancelled");
    assert_string_equal(json_str(final, "error"), "the plan is wrong");
    json_decref(final);
    char *review = execution_phase_status(stack, id, "review");
    assert_string_equal(review, "skipped");
    free(review);
    char *build = execution_phase_status(stack, id, "build");
    assert_string_equal(build, "skipped");
    free(build);
    free(id);
}

static void test_not_waiting_is_a_conflict(void **state)
{
    (void)state;
    execution_create_workflow(stack, "{\"id\": \"plain\", \"name\": \"Plain\", \"phases\": "
                                     "[{\"phase_id\": \"p\", \"name\": \"P\", \"order\": 1, "
                                     "\"prompt_template\": \"#mock sleep 60000\"}]}");
    char *id = teststack_execute(stack, "plain", "{}");
    assert_non_null(id);
    json_t *answer = NULL;
    assert_int_equal(control(id, "approve", "{}", &answer), 409);
    assert_non_null(strstr(json_str(answer, "detail"), "is not waiting for approval"));
    json_decref(answer);
    assert_int_equal(control(id, "reject", "{}", NULL), 409);
    /* the gateway checks the body like every control's */
    assert_int_equal(control(id, "approve", "{\"comment\": 5}", NULL), 422);
    assert_int_equal(control(id, "approve", "{\"note\": \"x\"}", NULL), 422);
    assert_int_equal(control(id, "cancel", NULL, NULL), 200);
    free(id);
}

static void test_first_phase_gate_and_broker_restart(void **state)
{
    (void)state;
    upload(FIRST_GATED_YAML);
    char *id = teststack_execute(stack, "first-gated", "{}");
    assert_non_null(id);
    wait_waiting_at(id, "only");

    /* the gate is in SQLite: a new broker waits at it too */
    teststack_kill_broker(stack, SIGKILL);
    assert_int_equal(teststack_start_broker(stack), 0);
    assert_int_equal(teststack_wait_health(stack, 1, 20000), 0);
    wait_waiting_at(id, "only");
    json_t *answer = NULL;
    assert_int_equal(control(id, "resume", NULL, &answer), 409);
    json_decref(answer);

    assert_int_equal(control(id, "approve", NULL, NULL), 200);
    json_decref(wait_end("first-gated", id, "completed"));
    char *output = execution_phase_output(stack, id, "only");
    assert_null(strstr(output, "Operator messages")); /* no comment, no message */
    free(output);
    free(id);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gate_then_approve_with_comment),
        cmocka_unit_test(test_reject_cancels_with_reason),
        cmocka_unit_test(test_not_waiting_is_a_conflict),
        cmocka_unit_test(test_first_phase_gate_and_broker_restart),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
