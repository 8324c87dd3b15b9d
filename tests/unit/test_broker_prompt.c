/* An attempt's prompt (broker/prompt.c), pure: an execution record built in
 * memory, no engine and no store. */
#include "broker/prompt.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static broker_execution_t *two_phases(void)
{
    json_t *template_json = json_pack(
        "{s:[{s:s, s:i, s:s}, {s:s, s:i, s:s}]}", "phases", "phase_id", "p1", "order", 1,
        "prompt_template", "plan {{topic}} for $ARGUMENTS", "phase_id", "p2", "order", 2,
        "prompt_template", "draft from [{{p1}}] in {{workflow_id}}");
    json_t *inputs = json_pack("{s:s}", "topic", "cats");
    json_t *repos = json_array();
    char err[128];
    broker_execution_t *exec = broker_execution_new("exec-1", "wf", 1, template_json, inputs,
                                                    "the task", repos, 0, err, sizeof err);
    assert_non_null(exec);
    json_decref(template_json);
    json_decref(inputs);
    json_decref(repos);
    return exec;
}

static void expect_prompt(broker_execution_t *exec, size_t phase, const char *want)
{
    char err[128];
    char *prompt = broker_prompt_render(exec, &exec->phases[phase], err, sizeof err);
    if (!prompt)
        fail_msg("no prompt: %s", err);
    assert_string_equal(prompt, want);
    free(prompt);
}

static void test_inputs_task_and_earlier_outputs(void **state)
{
    (void)state;
    broker_execution_t *exec = two_phases();
    expect_prompt(exec, 0, "plan cats for the task");
    /* An earlier output counts once its phase completed. */
    exec->phases[0].output = strdup("the plan");
    expect_prompt(exec, 1, "draft from [{{p1}}] in wf");
    exec->phases[0].status = BROKER_PHASE_COMPLETED;
    expect_prompt(exec, 1, "draft from [the plan] in wf");
    broker_execution_destroy(&exec);
}

static void test_operator_messages_of_the_phase_only(void **state)
{
    (void)state;
    broker_execution_t *exec = two_phases();
    json_array_append_new(exec->messages, json_pack("{s:i, s:s, s:s, s:s}", "id", 1, "role",
                                                    "user", "message", "be brief", "phase_id",
                                                    "p1"));
    json_array_append_new(exec->messages, json_pack("{s:i, s:s, s:s, s:s}", "id", 2, "role",
                                                    "system", "message", "later", "phase_id",
                                                    "p2"));
    json_array_append_new(exec->messages, json_pack("{s:i, s:s, s:s, s:n}", "id", 3, "role",
                                                    "user", "message", "waiting", "phase_id"));
    expect_prompt(exec, 0, "plan cats for the task\n\n## Operator messages\n\n- [user] be brief\n");
    broker_execution_destroy(&exec);
}

static void test_too_large(void **state)
{
    (void)state;
    broker_execution_t *exec = two_phases();
    char *big = malloc(BROKER_MESSAGE_MAX + 1);
    memset(big, 'm', BROKER_MESSAGE_MAX);
    big[BROKER_MESSAGE_MAX] = '\0';
    /* More than a prompt may carry: beyond the waiting limit and the render bound. */
    int count = BROKER_MESSAGES_WAITING_MAX + BROKER_RENDER_MAX_SIZE / BROKER_MESSAGE_MAX + 1;
    for (int i = 0; i < count; i++)
        json_array_append_new(exec->messages, json_pack("{s:i, s:s, s:s, s:s}", "id", i, "role",
                                                        "user", "message", big, "phase_id",
                                                        "p1"));
    free(big);
    char err[128];
    assert_null(broker_prompt_render(exec, &exec->phases[0], err, sizeof err));
    assert_string_equal(err, "operator messages make the prompt too large");
    broker_execution_destroy(&exec);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_inputs_task_and_earlier_outputs),
        cmocka_unit_test(test_operator_messages_of_the_phase_only),
        cmocka_unit_test(test_too_large),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
