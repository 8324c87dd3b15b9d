/* The test stack's secure switch (teststack.h: opts.secure, SYN_TEST_SECURE=1)
 * really runs a stack over CURVE and API tokens. Without this check, the second
 * run of the whole-stack tests in scripts/test.sh could quietly run them on a
 * plain stack and prove nothing more than the first. */
#include "tests/support/http.h"
#include "tests/support/sse.h"
#include "tests/support/teststack.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

static teststack_t *stack;

static int setup(void **state)
{
    (void)state;
    teststack_options_t opts = {.workers = 1, .slots = 2, .secure = true};
    stack = teststack_start(&opts);
    return stack ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    teststack_destroy(&stack);
    return 0;
}

static void key_path(char *out, size_t size, const char *file)
{
    snprintf(out, size, "%s/keys/%s", teststack_dir(stack), file);
}

/* Every program was given its keys, and the stack became healthy with them
 * (teststack_start waits for /health to count the worker). */
static void test_every_link_has_its_keys(void **state)
{
    (void)state;
    assert_true(teststack_secure(stack));
    char secret[512], broker_key[512], authorized[512], tokens[512];
    key_path(secret, sizeof secret, "broker.key_secret");
    key_path(authorized, sizeof authorized, "authorized");
    key_path(broker_key, sizeof broker_key, "broker.key");
    snprintf(tokens, sizeof tokens, "%s/api-tokens", teststack_dir(stack));
    pid_t broker = teststack_broker_pid(stack), gateway = teststack_gateway_pid(stack);
    pid_t worker = teststack_worker_pid(stack, 0);
    assert_true(teststack_cmdline_has(broker, "--curve-secret", secret));
    assert_true(teststack_cmdline_has(broker, "--authorized-keys", authorized));
    key_path(secret, sizeof secret, "gateway.key_secret");
    assert_true(teststack_cmdline_has(gateway, "--curve-secret", secret));
    assert_true(teststack_cmdline_has(gateway, "--broker-key", broker_key));
    assert_true(teststack_cmdline_has(gateway, "--api-tokens", tokens));
    key_path(secret, sizeof secret, "w0.key_secret");
    assert_true(teststack_cmdline_has(worker, "--curve-secret", secret));
    assert_true(teststack_cmdline_has(worker, "--broker-key", broker_key));
}

/* The status line is in. */
static bool has_status(const sse_client_t *client, long want)
{
    (void)want;
    return sse_client_status(client) != 0;
}

/* The gateway checks tokens, and the helpers send the one teststack made. */
static void test_http_calls_carry_the_token(void **state)
{
    (void)state;
    char token[128];
    assert_non_null(http_bearer());
    assert_int_equal(strlen(http_bearer()), 43);
    snprintf(token, sizeof token, "%s", http_bearer());
    http_response_t r;

    http_set_bearer(NULL);
    assert_int_equal(http_get(&r, "%s/workflows", teststack_url(stack)), 0);
    long without = r.status;
    http_response_clear(&r);
    int port = atoi(strrchr(teststack_url(stack), ':') + 1);
    sse_client_t *sse = sse_client_new(port, "/sse/activity", NULL, 0);
    assert_non_null(sse);
    assert_true(sse_client_wait(sse, has_status, 0, 10000));
    int sse_without = sse_client_status(sse);
    sse_client_destroy(&sse);
    http_set_bearer(token);
    assert_int_equal(without, 401);
    assert_int_equal(sse_without, 401);

    assert_int_equal(http_get(&r, "%s/workflows", teststack_url(stack)), 0);
    assert_int_equal(r.status, 200);
    http_response_clear(&r);
    sse = sse_client_new(port, "/sse/activity", NULL, 0);
    assert_non_null(sse);
    assert_true(sse_client_wait(sse, has_status, 0, 10000));
    assert_int_equal(sse_client_status(sse), 200);
    sse_client_destroy(&sse);
}

/* And work flows through it: gateway → broker → worker → back, over CURVE. */
static void test_an_execution_completes(void **state)
{
    (void)state;
    json_t *wf = teststack_create_workflow(
        stack, "{\"id\":\"secure\",\"name\":\"Secure\",\"phases\":[{\"phase_id\":\"a\","
               "\"name\":\"A\",\"order\":1,\"prompt_template\":\"hi $ARGUMENTS\"}]}");
    assert_non_null(wf);
    json_decref(wf);
    char *id = teststack_execute(stack, "secure", "{\"task\":\"over curve\"}");
    assert_non_null(id);
    json_t *final = teststack_wait_terminal(stack, "secure", id, 20000);
    assert_non_null(final);
    assert_string_equal(json_string_value(json_object_get(final, "status")), "completed");
    json_decref(final);
    free(id);
}

/* /health's status code, or -1 when the gateway does not answer. */
static long health_status(void)
{
    http_response_t r;
    long status = http_get(&r, "%s/health", teststack_url(stack)) == 0 ? r.status : -1;
    http_response_clear(&r);
    return status;
}

static bool wait_health(long want, int timeout_ms)
{
    WAIT_FOR(health_status() == want, timeout_ms);
    return health_status() == want;
}

/* Lines of the broker's log holding needle. */
static int broker_log_count(const char *needle)
{
    char path[512];
    snprintf(path, sizeof path, "%s/broker.log", teststack_dir(stack));
    FILE *in = fopen(path, "r");
    if (!in)
        return 0;
    char line[4096];
    int count = 0;
    while (fgets(line, sizeof line, in))
        count += strstr(line, needle) != NULL;
    fclose(in);
    return count;
}

static bool wait_broker_log(const char *needle, int want, int timeout_ms)
{
    WAIT_FOR(broker_log_count(needle) >= want, timeout_ms);
    return broker_log_count(needle) >= want;
}

static void copy_file(const char *from, const char *to)
{
    FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
    assert_non_null(in);
    assert_non_null(out);
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0)
        assert_int_equal(fwrite(buf, 1, n, out), n);
    fclose(in);
    assert_int_equal(fclose(out), 0);
}

/* A gateway whose key the broker does not know sees the broker down (/health 503,
 * the broker logs the refusal), and is up again, without a restart, as soon as
 * its key is authorized and the broker told so (SIGHUP). */
static void test_gateway_without_an_authorized_key_recovers_once_given_one(void **state)
{
    (void)state;
    char authorized[512], original[512];
    key_path(authorized, sizeof authorized, "authorized/gateway.key");
    key_path(original, sizeof original, "gateway.key");
    int reloads = broker_log_count("authorized keys reloaded");
    assert_int_equal(unlink(authorized), 0);
    assert_int_equal(kill(teststack_broker_pid(stack), SIGHUP), 0);
    assert_true(wait_broker_log("authorized keys reloaded", reloads + 1, 10000));
    /* The gateway's connection from before the reload stays up; a new gateway
     * makes a new one, which is refused. */
    teststack_kill_gateway(stack, SIGKILL);
    assert_int_equal(teststack_start_gateway(stack), 0);
    assert_true(wait_broker_log("socket=clients", 1, 10000));
    assert_true(wait_health(503, 10000));
    assert_int_equal(health_status(), 503);

    copy_file(original, authorized);
    assert_int_equal(kill(teststack_broker_pid(stack), SIGHUP), 0);
    assert_true(wait_health(200, 20000));
    assert_int_equal(teststack_wait_health(stack, 1, 20000), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_link_has_its_keys),
        cmocka_unit_test(test_http_calls_carry_the_token),
        cmocka_unit_test(test_an_execution_completes),
        cmocka_unit_test(test_gateway_without_an_authorized_key_recovers_once_given_one),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
