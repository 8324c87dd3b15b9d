/* gateway/access: the scope every route needs, the action a 403 names, and the rules
 * a configuration must pass before anything is bound or connected (the --insecure
 * rule, flags that go in pairs). The same over real HTTP: test_gateway_auth_http. */
#include "gateway/access.h"
#include "gateway/gateway.h"
#include "gateway/router.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

static int scope_of(const char *method, const char *path)
{
    gateway_route_t route;
    gateway_match_t match = gateway_route_match(method, path, &route);
    return gateway_access_scope(match, route.id);
}

/* Every route of the router's table, by the scope it needs. */
static void test_each_route_has_its_scope(void **state)
{
    (void)state;
    assert_int_equal(scope_of("GET", "/health"), 0);
    /* The dashboard's files and /whoami: the page must load to ask for a token. */
    const char *open[] = {"/", "/ui", "/ui/", "/ui/app.js", "/ui/nope.js", "/whoami"};
    for (size_t i = 0; i < sizeof open / sizeof *open; i++) {
        if (scope_of("GET", open[i]) != 0)
            fail_msg("GET %s should be open", open[i]);
    }
    assert_int_equal(scope_of("POST", "/ui/app.js"), SYN_SCOPE_READ); /* 405: says nothing */
    const char *reads[] = {
        "/workflows", "/workflows/executions/active", "/workflows/w", "/workflows/w/export",
        "/workflows/w/executions/e", "/workflows/w/runs", "/executions", "/executions/e",
        "/executions/e/state", "/executions/e/phases/p/output", "/executions/e/timeline.svg",
        "/sse/executions/e", "/sse/activity"};
    for (size_t i = 0; i < sizeof reads / sizeof *reads; i++) {
        if (scope_of("GET", reads[i]) != SYN_SCOPE_READ)
            fail_msg("GET %s should need read", reads[i]);
    }
    assert_int_equal(scope_of("POST", "/workflows/validate"), SYN_SCOPE_READ);
    const char *runs[] = {"/workflows/w/execute", "/executions/e/cancel", "/executions/e/pause",
                          "/executions/e/resume", "/executions/e/inject"};
    for (size_t i = 0; i < sizeof runs / sizeof *runs; i++) {
        if (scope_of("POST", runs[i]) != SYN_SCOPE_RUN)
            fail_msg("POST %s should need run", runs[i]);
    }
    assert_int_equal(scope_of("POST", "/workflows"), SYN_SCOPE_ADMIN);
    assert_int_equal(scope_of("POST", "/workflows/from-yaml"), SYN_SCOPE_ADMIN);
    assert_int_equal(scope_of("DELETE", "/workflows/w"), SYN_SCOPE_ADMIN);
    assert_int_equal(scope_of("PUT", "/workflows/w/phases/p"), SYN_SCOPE_ADMIN);
    /* Nothing is learnt about paths without a token. */
    assert_int_equal(scope_of("GET", "/nowhere"), SYN_SCOPE_READ);
    assert_int_equal(scope_of("DELETE", "/health"), SYN_SCOPE_READ);
}

static void test_actions_name_what_is_refused(void **state)
{
    (void)state;
    assert_string_equal(gateway_access_action(GATEWAY_ROUTE_EXECUTION_START), "run executions");
    assert_string_equal(gateway_access_action(GATEWAY_ROUTE_EXECUTION_PAUSE),
                        "control executions");
    assert_string_equal(gateway_access_action(GATEWAY_ROUTE_WORKFLOW_ARCHIVE), "change workflows");
}

static gateway_config_t local_config(void)
{
    return (gateway_config_t){.http = "127.0.0.1:8137", .broker = "tcp://127.0.0.1:5555",
                              .events = "tcp://127.0.0.1:5557"};
}

static void expect_refused(const gateway_config_t *config, const char *text)
{
    char err[512] = "";
    assert_int_equal(gateway_config_check(config, err, sizeof err), -1);
    if (!strstr(err, text))
        fail_msg("wanted '%s' in '%s'", text, err);
    assert_null(strchr(err, '\n'));
}

static void test_loopback_needs_nothing(void **state)
{
    (void)state;
    gateway_config_t config = local_config();
    char err[512];
    assert_int_equal(gateway_config_check(&config, err, sizeof err), 0);
    config.http = "[::1]:8137";
    config.broker = "ipc:///tmp/syn-broker";
    assert_int_equal(gateway_config_check(&config, err, sizeof err), 0);
}

static void test_insecure_rules(void **state)
{
    (void)state;
    char err[512];
    gateway_config_t config = local_config();
    config.http = "0.0.0.0:8137";
    expect_refused(&config, "--http 0.0.0.0:8137 is not a loopback address and neither "
                            "--api-tokens nor --api-user is given");
    config.api_tokens = "tokens";
    assert_int_equal(gateway_config_check(&config, err, sizeof err), 0);
    config.api_tokens = NULL;
    config.api_user = "u";
    config.api_password = "p";
    assert_int_equal(gateway_config_check(&config, err, sizeof err), 0);
    config.api_user = config.api_password = NULL;
    config.insecure = true;
    assert_int_equal(gateway_config_check(&config, err, sizeof err), 0);
    /* TLS encrypts; it does not say who the caller is. */
    config.insecure = false;
    config.tls_cert = "c";
    config.tls_key = "k";
    expect_refused(&config, "--http 0.0.0.0:8137 is not a loopback address");

    config = local_config();
    config.broker = "tcp://10.1.2.3:5555";
    expect_refused(&config, "--broker tcp://10.1.2.3:5555 is not a loopback address and no "
                            "--curve-secret is given: give --curve-secret and --broker-key, or "
                            "--insecure");
    config.broker = "tcp://127.0.0.1:5555";
    config.events = "tcp://broker.example:5557";
    expect_refused(&config, "--events tcp://broker.example:5557 is not a loopback address");
    config.curve_secret = "gw.key_secret";
    config.broker_key = "broker.key";
    assert_int_equal(gateway_config_check(&config, err, sizeof err), 0);
    config.curve_secret = config.broker_key = NULL;
    config.insecure = true;
    assert_int_equal(gateway_config_check(&config, err, sizeof err), 0);
}

static void test_pairs_go_together(void **state)
{
    (void)state;
    gateway_config_t config = local_config();
    config.tls_cert = "cert.pem";
    expect_refused(&config, "--tls-cert is given without --tls-key: give both, or neither");
    config.tls_cert = NULL;
    config.tls_key = "key.pem";
    expect_refused(&config, "--tls-key is given without --tls-cert");
    config = local_config();
    config.api_user = "alice";
    expect_refused(&config, "--api-user is given without --api-password");
    config = local_config();
    config.api_password = "hunter2";
    expect_refused(&config, "--api-password is given without --api-user");
    config = local_config();
    config.broker_key = "broker.key";
    expect_refused(&config, "--broker-key is given without --curve-secret");
    config = local_config();
    config.http = "nonsense";
    expect_refused(&config, "want HOST:PORT");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_each_route_has_its_scope),
        cmocka_unit_test(test_actions_name_what_is_refused),
        cmocka_unit_test(test_loopback_needs_nothing),
        cmocka_unit_test(test_insecure_rules),
        cmocka_unit_test(test_pairs_go_together),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
