/* Workflows run end to end through gateway, broker and worker processes (issue 2):
 * outputs flow from phase to phase, failures stop the run, many run at once. */
#include "tests/support/execution.h"
#include "tests/support/expect.h"
#include "tests/support/http.h"
#include "tests/support/teststack.h"

#include <pthread.h>
#include <signal.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

static teststack_t *stack;

static int setup(void **state)
{
    (void)state;
    teststack_options_t opts = {.workers = 2, .slots = 4};
    stack = teststack_start(&opts);
    return stack ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    teststack_destroy(&stack);
    return 0;
}

static void test_three_phases_feed_each_other(void **state)
{
    (void)state;
    json_t *wf = teststack_create_workflow(
        stack,
        "{\"id\":\"chain\",\"name\":\"Chain\","
        " \"input_declarations\":[{\"name\":\"audience\",\"default\":\"engineers\"},"
        "                         {\"name\":\"task\",\"required\":true}],"
        " \"phases\":["
        "  {\"phase_id\":\"research\",\"name\":\"Research\",\"order\":1,"
        "   \"prompt_template\":\"Research $ARGUMENTS for {{audience}} in {{execution_id}}\"},"
        "  {\"phase_id\":\"plan\",\"name\":\"Plan\",\"order\":2,"
        "   \"prompt_template\":\"Plan from [{{research}}] in {{workflow_id}}\"},"
        "  {\"phase_id\":\"review\",\"name\":\"Review\",\"order\":3,"
        "   \"prompt_template\":\"Review A=[{{research}}] B=[{{plan}}] task=$ARGUMENTS "
        "{{unknown}}\"}]}");
    assert_non_null(wf);
    json_decref(wf);

    char *id = teststack_execute(stack, "chain",
                                 "{\"task\":\"fix the login bug\","
                                 " \"inputs\":{\"audience\":\"testers\"}}");
    assert_non_null(id);
    json_t *final = teststack_wait_terminal(stack, "chain", id, 20000);
    assert_non_null(final);
    assert_string_equal(json_str(final, "status"), "completed");
    assert_int_equal(json_integer_value(json_object_get(final, "completed_phases")), 3);
    assert_int_equal(json_integer_value(json_object_get(final, "total_phases")), 3);
    assert_true(json_is_null(json_object_get(final, "current_phase")));
    assert_true(json_is_null(json_object_get(final, "error")));
    expect_timestamp(final, "started_at");
    expect_timestamp(final, "completed_at");

    char *research = execution_db_phase_output(stack, id, "research");
    char *plan = execution_db_phase_output(stack, id, "plan");
    char *review = execution_db_phase_output(stack, id, "review");
    assert_non_null(research);
    assert_non_null(plan);
    assert_non_null(review);
    char expected_research[256];
    snprintf(expected_research, sizeof expected_research,
             "mock output for phase research:\nResearch fix the login bug for testers in %s", id);
    assert_string_equal(research, expected_research);
    /* Phase 3 saw phase 1's and phase 2's outputs, the task and the untouched unknown. */
    assert_non_null(strstr(review, "mock output for phase review:\nReview A=["));
    assert_non_null(strstr(review, expected_research));
    assert_non_null(strstr(review, plan));
    assert_non_null(strstr(review, "in chain"));
    assert_non_null(strstr(review, "task=fix the login bug {{unknown}}"));
    free(research);
    free(plan);
    free(review);
    json_decref(final);
    free(id);
}

/* The timeline picture of a finished execution: SVG with one bar per attempt. */
static void expect_timeline(const char *execution_id, int attempts)
{
    http_response_t r;
    http_get(&r, "%s/executions/%s/timeline.svg", teststack_url(stack), execution_id);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.content_type, "image/svg+xml");
    assert_non_null(strstr(r.body, "<svg xmlns=\"http://www.w3.org/2000/svg\""));
    int bars = 0;
    for (const char *p = strstr(r.body, "<title>attempt "); p; p = strstr(p + 1, "<title>attempt "))
        bars++;
    assert_int_equal(bars, attempts);
    http_response_clear(&r);
}

static void test_failing_phase_fails_execution_and_skips_the_rest(void **state)
{
    (void)state;
    json_t *wf = teststack_create_workflow(
        stack, "{\"id\":\"breaks\",\"name\":\"Breaks\",\"phases\":["
               "{\"phase_id\":\"one\",\"name\":\"One\",\"order\":1,\"prompt_template\":\"ok\"},"
               "{\"phase_id\":\"two\",\"name\":\"Two\",\"order\":2,"
               " \"prompt_template\":\"#mock fail the model refused\"},"
               "{\"phase_id\":\"three\",\"name\":\"Three\",\"order\":3,"
               " \"prompt_template\":\"never\"}]}");
    assert_non_null(wf);
    json_decref(wf);
    char *id = teststack_execute(stack, "breaks", "{}");
    assert_non_null(id);
    json_t *final = teststack_wait_terminal(stack, "breaks", id, 20000);
    assert_non_null(final);
    assert_string_equal(json_str(final, "status"), "failed");
    assert_int_equal(json_integer_value(json_object_get(final, "completed_phases")), 1);
    assert_int_equal(json_integer_value(json_object_get(final, "total_phases")), 3);
    const char *error = json_str(final, "error");
    assert_non_null(strstr(error, "two"));
    assert_non_null(strstr(error, "the model refused"));
    expect_timestamp(final, "completed_at");

    char *s1 = execution_db_phase_status(stack, id, "one"), *s2 = execution_db_phase_status(stack, id, "two"),
         *s3 = execution_db_phase_status(stack, id, "three");
    assert_string_equal(s1, "completed");
    assert_string_equal(s2, "failed");
    assert_string_equal(s3, "skipped");
    expect_timeline(id, 2); /* one, then two failing; three never ran */
    free(s1);
    free(s2);
    free(s3);
    json_decref(final);
    free(id);
}

#define CONCURRENT_EXECUTIONS 200
#define SUBMITTERS 8

typedef struct {
    int first, count;
    char *ids[CONCURRENT_EXECUTIONS];
    int visible_at_once; /* GET right after the 200 found it */
} submitter_t;

static void *submit_many(void *arg)
{
    submitter_t *s = arg;
    for (int i = s->first; i < s->first + s->count; i++) {
        char body[128];
        snprintf(body, sizeof body, "{\"task\":\"job %d\"}", i);
        s->ids[i] = teststack_execute(stack, "fleet", body);
        if (!s->ids[i])
            continue;
        http_response_t r;
        http_get(&r, "%s/workflows/fleet/executions/%s", teststack_url(stack), s->ids[i]);
        s->visible_at_once += r.status == 200;
        http_response_clear(&r);
    }
    return NULL;
}

static void test_many_concurrent_executions_all_complete(void **state)
{
    (void)state;
    json_t *wf = teststack_create_workflow(
        stack, "{\"id\":\"fleet\",\"name\":\"Fleet\",\"phases\":["
               "{\"phase_id\":\"p1\",\"name\":\"P1\",\"order\":1,\"prompt_template\":\"$ARGUMENTS\"},"
               "{\"phase_id\":\"p2\",\"name\":\"P2\",\"order\":2,\"prompt_template\":\"{{p1}}\"},"
               "{\"phase_id\":\"p3\",\"name\":\"P3\",\"order\":3,\"prompt_template\":\"{{p2}}\"}]}");
    assert_non_null(wf);
    json_decref(wf);

    static submitter_t subs[SUBMITTERS];
    pthread_t threads[SUBMITTERS];
    int per = CONCURRENT_EXECUTIONS / SUBMITTERS;
    for (int t = 0; t < SUBMITTERS; t++) {
        memset(&subs[t], 0, sizeof subs[t]);
        subs[t].first = t * per;
        subs[t].count = per;
        pthread_create(&threads[t], NULL, submit_many, &subs[t]);
    }
    int accepted = 0, visible = 0;
    char *ids[CONCURRENT_EXECUTIONS] = {0};
    for (int t = 0; t < SUBMITTERS; t++) {
        pthread_join(threads[t], NULL);
        visible += subs[t].visible_at_once;
        for (int i = subs[t].first; i < subs[t].first + subs[t].count; i++) {
            ids[i] = subs[t].ids[i];
            accepted += ids[i] != NULL;
        }
    }
    assert_int_equal(accepted, CONCURRENT_EXECUTIONS);
    assert_int_equal(visible, CONCURRENT_EXECUTIONS);

    int completed = 0;
    for (int i = 0; i < CONCURRENT_EXECUTIONS; i++) {
        json_t *final = teststack_wait_terminal(stack, "fleet", ids[i], 60000);
        if (final && !strcmp(json_str(final, "status"), "completed"))
            completed++;
        else
            fprintf(stderr, "execution %s did not complete\n", ids[i]);
        json_decref(final);
    }
    assert_int_equal(completed, CONCURRENT_EXECUTIONS);

    /* Each execution's last output carries its own task through all three phases. */
    for (int i = 0; i < CONCURRENT_EXECUTIONS; i += 37) {
        char *out = execution_db_phase_output(stack, ids[i], "p3");
        char want[64];
        snprintf(want, sizeof want, "job %d", i);
        assert_non_null(out);
        assert_non_null(strstr(out, want));
        free(out);
    }
    /* Both workers took part. */
    assert_true(teststack_db_count(stack, "SELECT DISTINCT worker FROM attempts", NULL) >= 2);
    for (int i = 0; i < CONCURRENT_EXECUTIONS; i++)
        free(ids[i]);
    http_response_t r;
    http_get(&r, "%s/workflows/executions/active?limit=100", teststack_url(stack));
    assert_int_equal(r.status, 200);
    assert_int_equal(json_array_size(r.json), 0);
    http_response_clear(&r);
}

static void test_broker_down_answers_503_then_recovers(void **state)
{
    (void)state;
    teststack_kill_broker(stack, SIGKILL);
    http_response_t r;
    long long t0 = teststack_now_ms();
    http_get(&r, "%s/health", teststack_url(stack));
    long long health_ms = teststack_now_ms() - t0;
    assert_int_equal(r.status, 503);
    assert_string_equal(json_str(r.json, "broker"), "down");
    assert_true(health_ms < 2500);
    http_response_clear(&r);

    t0 = teststack_now_ms();
    http_post(&r, "{}", "%s/workflows/fleet/execute", teststack_url(stack));
    assert_true(teststack_now_ms() - t0 < 2500);
    expect_response(&r, 503, "{\"detail\":\"broker unavailable\"}");
    assert_true(r.retry_after[0] != '\0');
    http_response_clear(&r);

    assert_int_equal(teststack_start_broker(stack), 0);
    assert_int_equal(teststack_wait_health(stack, 2, 15000), 0);
    char *id = teststack_execute(stack, "fleet", "{\"task\":\"after restart\"}");
    assert_non_null(id);
    json_t *final = teststack_wait_terminal(stack, "fleet", id, 20000);
    assert_non_null(final);
    assert_string_equal(json_str(final, "status"), "completed");
    json_decref(final);
    free(id);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_three_phases_feed_each_other),
        cmocka_unit_test(test_failing_phase_fails_execution_and_skips_the_rest),
        cmocka_unit_test(test_many_concurrent_executions_all_complete),
        cmocka_unit_test(test_broker_down_answers_503_then_recovers),
    };
    return cmocka_run_group_tests_name("run_workflows", tests, setup, teardown);
}
