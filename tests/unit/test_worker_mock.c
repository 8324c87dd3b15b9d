/* The mock provider: in-process, timer driven, steered by #mock prompt lines. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <string.h>
#include <unistd.h>

#include "common/clock.h"
#include "worker/provider.h"

static worker_job_t job_with(const char *prompt, int64_t timeout_ms)
{
    return (worker_job_t){.execution_id = "exec-000000000001",
                          .workflow_id = "wf",
                          .phase_id = "plan",
                          .attempt = 1,
                          .prompt = prompt,
                          .model = NULL,
                          .timeout_ms = timeout_ms};
}

static worker_run_t *start(worker_provider_t *provider, const worker_job_t *job)
{
    char err[128] = "";
    worker_run_t *run = worker_run_start(provider, job, err, sizeof err);
    assert_non_null(run);
    return run;
}

static void test_output_after_delay(void **state)
{
    (void)state;
    worker_provider_t *mock = worker_provider_mock_new(50);
    assert_string_equal(worker_provider_name(mock), "mock");
    worker_job_t job = job_with("do the thing\nsecond line", 0);
    int64_t began = syn_mono_ms();
    worker_run_t *run = start(mock, &job);
    assert_false(worker_run_finished(run));
    assert_int_equal(worker_run_pollfds(run, (struct pollfd[WORKER_RUN_MAX_FDS]){{0}},
                                        WORKER_RUN_MAX_FDS), 0);
    int64_t deadline = worker_run_deadline(run);
    /* In whole milliseconds the deadline is rounded up. */
    assert_true(deadline >= began + 50 && deadline <= syn_mono_ms() + 51);
    /* Stepping before the deadline does nothing. */
    worker_run_step(run, NULL, 0, syn_mono_ms());
    assert_false(worker_run_finished(run));
    assert_int_equal(worker_run_drive(run, 2000), 0);
    assert_true(syn_mono_ms() - began >= 50);
    assert_int_equal(worker_run_status(run), WORKER_RUN_COMPLETED);
    assert_string_equal(worker_run_output(run, NULL),
                        "mock output for phase plan:\ndo the thing\nsecond line");
    assert_null(worker_run_error(run));
    assert_false(worker_run_exit_code(run, NULL));
    worker_run_destroy(&run);
    worker_run_destroy(&run);
    assert_null(run);
    worker_provider_destroy(&mock);
    worker_provider_destroy(&mock);
}

/* A phase lasts its delay to the microsecond from the attempt's start: never
 * less (a whole-millisecond clock ended it up to 1 ms early), and a step once
 * the deadline has passed ends it. How late it ends in a loaded worker is the
 * benchmark's to measure (W2), not a unit test's. */
static void test_deadline_in_microseconds(void **state)
{
    (void)state;
    worker_provider_t *mock = worker_provider_mock_new(50);
    worker_job_t job = job_with("precise", 0);
    job.started_us = syn_mono_us();
    worker_run_t *run = start(mock, &job);
    int64_t due = job.started_us + 50000;
    assert_int_equal(worker_run_deadline_us(run), due);
    assert_int_equal(worker_run_deadline(run), (due + 999) / 1000);
    /* Stepped all along, with the millisecond clock the worker loop passes. */
    while (!worker_run_finished(run)) {
        int64_t before = syn_mono_us();
        worker_run_step(run, NULL, 0, syn_mono_ms());
        int64_t after = syn_mono_us();
        if (worker_run_finished(run) && after < due)
            fail_msg("the phase ended %lld us early", (long long)(due - after));
        if (!worker_run_finished(run) && before >= due)
            fail_msg("a step %lld us after the deadline did not end the phase",
                     (long long)(before - due));
        /* Steps at a fine pace, so one lands close to the deadline: not a wait. */
        usleep(100);
    }
    assert_int_equal(worker_run_status(run), WORKER_RUN_COMPLETED);
    assert_int_equal(worker_run_deadline_us(run), -1);
    worker_run_destroy(&run);

    /* Without a start given, the run's own start counts; a timeout cuts the
     * delay to the microsecond as well. */
    job = job_with("#mock sleep 10000", 20);
    int64_t began = syn_mono_us();
    run = start(mock, &job);
    int64_t deadline = worker_run_deadline_us(run);
    assert_true(deadline >= began + 20000 && deadline <= syn_mono_us() + 20000);
    worker_run_destroy(&run);
    worker_provider_destroy(&mock);
}

static void test_sleep_directive(void **state)
{
    (void)state;
    worker_provider_t *mock = worker_provider_mock_new(5000);
    worker_job_t job = job_with("before\n  #mock sleep 120\nafter", 0);
    int64_t began = syn_mono_ms();
    worker_run_t *run = start(mock, &job);
    assert_int_equal(worker_run_drive(run, 3000), 0);
    int64_t took = syn_mono_ms() - began;
    assert_true(took >= 120);
    assert_true(took < 1000); /* the directive replaced the 5 s default */
    assert_int_equal(worker_run_status(run), WORKER_RUN_COMPLETED);
    assert_non_null(strstr(worker_run_output(run, NULL), "#mock sleep 120"));
    worker_run_destroy(&run);

    /* A malformed directive is ignored: the default delay applies. */
    worker_provider_t *quick = worker_provider_mock_new(10);
    job = job_with("#mock sleep soon", 0);
    run = start(quick, &job);
    assert_true(worker_run_deadline(run) <= syn_mono_ms() + 11);
    worker_run_destroy(&run);
    worker_provider_destroy(&quick);
    worker_provider_destroy(&mock);
}

static void test_fail_directive(void **state)
{
    (void)state;
    worker_provider_t *mock = worker_provider_mock_new(30);
    worker_job_t job = job_with("step one\n#mock fail the model refused  \n", 0);
    int64_t began = syn_mono_ms();
    worker_run_t *run = start(mock, &job);
    assert_int_equal(worker_run_drive(run, 2000), 0);
    assert_true(syn_mono_ms() - began >= 30);
    assert_int_equal(worker_run_status(run), WORKER_RUN_FAILED);
    assert_string_equal(worker_run_error(run), "the model refused");
    worker_run_destroy(&run);

    job = job_with("#mock fail", 0);
    run = start(mock, &job);
    assert_int_equal(worker_run_drive(run, 2000), 0);
    assert_int_equal(worker_run_status(run), WORKER_RUN_FAILED);
    assert_string_equal(worker_run_error(run), "mock failure");
    worker_run_destroy(&run);

    /* "#mock failure" is not the fail directive. */
    job = job_with("#mock failure is not an option", 0);
    run = start(mock, &job);
    assert_int_equal(worker_run_drive(run, 2000), 0);
    assert_int_equal(worker_run_status(run), WORKER_RUN_COMPLETED);
    worker_run_destroy(&run);
    worker_provider_destroy(&mock);
}

static void test_cancel_is_immediate(void **state)
{
    (void)state;
    worker_provider_t *mock = worker_provider_mock_new(20);
    worker_job_t job = job_with("#mock sleep 60000", 0);
    worker_run_t *run = start(mock, &job);
    worker_run_step(run, NULL, 0, syn_mono_ms());
    assert_false(worker_run_finished(run));
    worker_run_cancel(run, syn_mono_ms());
    assert_true(worker_run_finished(run));
    assert_int_equal(worker_run_status(run), WORKER_RUN_CANCELLED);
    assert_string_equal(worker_run_status_name(worker_run_status(run)), "cancelled");
    assert_int_equal(worker_run_deadline(run), -1);
    /* A later cancel or step changes nothing. */
    worker_run_cancel(run, syn_mono_ms());
    worker_run_step(run, NULL, 0, syn_mono_ms() + 100000);
    assert_int_equal(worker_run_status(run), WORKER_RUN_CANCELLED);
    worker_run_destroy(&run);
    worker_provider_destroy(&mock);
}

static void test_timeout(void **state)
{
    (void)state;
    worker_provider_t *mock = worker_provider_mock_new(20);
    worker_job_t job = job_with("#mock sleep 10000", 300);
    int64_t began = syn_mono_ms();
    worker_run_t *run = start(mock, &job);
    assert_int_equal(worker_run_drive(run, 3000), 0);
    int64_t took = syn_mono_ms() - began;
    assert_true(took >= 300 && took < 2000);
    assert_int_equal(worker_run_status(run), WORKER_RUN_FAILED);
    assert_string_equal(worker_run_error(run), "timed out after 0.3 s");
    worker_run_destroy(&run);

    /* A delay within the timeout is not affected. */
    job = job_with("quick", 1000);
    run = start(mock, &job);
    assert_int_equal(worker_run_drive(run, 3000), 0);
    assert_int_equal(worker_run_status(run), WORKER_RUN_COMPLETED);
    worker_run_destroy(&run);
    worker_provider_destroy(&mock);
}

static void test_timeout_text(void **state)
{
    (void)state;
    char buf[64];
    worker_format_timeout(2000, buf, sizeof buf);
    assert_string_equal(buf, "timed out after 2 s");
    worker_format_timeout(300000, buf, sizeof buf);
    assert_string_equal(buf, "timed out after 300 s");
    worker_format_timeout(1500, buf, sizeof buf);
    assert_string_equal(buf, "timed out after 1.5 s");
}

static void test_tokens_directive(void **state)
{
    (void)state;
    worker_provider_t *mock = worker_provider_mock_new(10);
    worker_job_t job = job_with("work\n#mock tokens 1200 300\n", 0);
    job.model = "opus";
    worker_run_t *run = start(mock, &job);
    assert_int_equal(worker_run_drive(run, 2000), 0);
    assert_int_equal(worker_run_status(run), WORKER_RUN_COMPLETED);
    json_t *usage = worker_run_usage_json(run);
    assert_non_null(usage);
    assert_int_equal(json_integer_value(json_object_get(usage, "input_tokens")), 1200);
    assert_int_equal(json_integer_value(json_object_get(usage, "output_tokens")), 300);
    assert_int_equal(json_integer_value(json_object_get(usage, "total_tokens")), 1500);
    assert_int_equal(json_integer_value(json_object_get(usage, "num_turns")), 1);
    assert_string_equal(json_string_value(json_object_get(usage, "model")),
                        "claude-opus-4-5-20251101");
    assert_string_equal(json_string_value(json_object_get(usage, "cost_source")),
                        "price_table");
    /* opus 4.5: $5 in, $25 out per million tokens. */
    double cost = json_real_value(json_object_get(usage, "cost_usd"));
    assert_true(fabs(cost - (1200 * 5.0 + 300 * 25.0) / 1e6) < 1e-12);
    assert_true(json_integer_value(json_object_get(usage, "duration_ms")) >= 10);
    assert_int_equal(json_array_size(json_object_get(usage, "tool_calls")), 0);
    json_decref(usage);
    worker_run_destroy(&run);

    /* No directive (or a malformed one): no usage is reported. */
    job = job_with("plain", 0);
    run = start(mock, &job);
    assert_int_equal(worker_run_drive(run, 2000), 0);
    assert_null(worker_run_usage_json(run));
    worker_run_destroy(&run);
    job = job_with("#mock tokens many 3", 0);
    run = start(mock, &job);
    assert_int_equal(worker_run_drive(run, 2000), 0);
    assert_null(worker_run_usage_json(run));
    worker_run_destroy(&run);

    /* Another price table, by alias; an unknown model has no cost. */
    char err[256] = "";
    worker_models_t *table = worker_models_parse(
        "{\"default_model\": \"tiny\", \"aliases\": {\"tiny\": \"tiny-1\"}, \"models\": "
        "{\"tiny-1\": {\"input\": 2, \"output\": 4, \"cache_write\": 0, \"cache_read\": 0}}}",
        err, sizeof err);
    assert_non_null(table);
    worker_options_t options = {.models = table};
    assert_int_equal(worker_provider_set_options(mock, &options), 0);
    job = job_with("#mock tokens 1000000 1000000", 0);
    run = start(mock, &job);
    assert_int_equal(worker_run_drive(run, 2000), 0);
    usage = worker_run_usage_json(run);
    assert_string_equal(json_string_value(json_object_get(usage, "model")), "tiny-1");
    assert_true(fabs(json_real_value(json_object_get(usage, "cost_usd")) - 6.0) < 1e-9);
    json_decref(usage);
    worker_run_destroy(&run);
    job = job_with("#mock tokens 5 5", 0);
    job.model = "mystery-model";
    run = start(mock, &job);
    assert_int_equal(worker_run_drive(run, 2000), 0);
    usage = worker_run_usage_json(run);
    assert_string_equal(json_string_value(json_object_get(usage, "model")), "mystery-model");
    assert_string_equal(json_string_value(json_object_get(usage, "cost_source")), "unknown");
    assert_true(json_real_value(json_object_get(usage, "cost_usd")) == 0);
    json_decref(usage);
    worker_run_destroy(&run);
    worker_provider_destroy(&mock);
    worker_models_destroy(&table);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_output_after_delay), cmocka_unit_test(test_sleep_directive),
        cmocka_unit_test(test_fail_directive),     cmocka_unit_test(test_cancel_is_immediate),
        cmocka_unit_test(test_timeout),            cmocka_unit_test(test_timeout_text),
        cmocka_unit_test(test_tokens_directive),   cmocka_unit_test(test_deadline_in_microseconds),
    };
    return cmocka_run_group_tests_name("worker_mock", tests, NULL, NULL);
}
