/* A standby broker takes over (issue 21), over the private PostgreSQL cluster:
 * two brokers on one database, exactly one binds; the active one killed (kill
 * -9), the standby takes the lease, loads the state and serves within the
 * lease's lapse, and every execution submitted before the kill completes; an
 * active one stopped past its lease (SIGSTOP) and then continued is deposed: it
 * commits nothing, says so and stops. Registered @postgresql only. */
#include "bench/synload/localproc.h"
#include "tests/support/http.h"
#include "tests/support/teststack.h"
#include "tests/support/wait.h"

#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#define EXECUTIONS 12

static const char *WORKFLOW =
    "{\"id\":\"ha\",\"name\":\"HA\",\"phases\":["
    "{\"phase_id\":\"a\",\"name\":\"A\",\"order\":1,\"prompt_template\":\"#mock sleep 300\\none\"},"
    "{\"phase_id\":\"b\",\"name\":\"B\",\"order\":2,\"prompt_template\":\"#mock sleep 300\\n{{a}}\"}]}";

/* The exit status of pid once it has exited (within timeout_ms), else -1. */
static int wait_exit(pid_t pid, int timeout_ms)
{
    int status = 0;
    pid_t done = 0;
    WAIT_FOR((done = waitpid(pid, &status, WNOHANG)) != 0, timeout_ms);
    if (done != pid)
        return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* The status and body of GET url (the body's JSON in *json, may be NULL). */
static int get(const char *url, json_t **json)
{
    http_response_t r;
    int status = http_get(&r, "%s", url) == 0 ? (int)r.status : -1;
    if (json)
        *json = r.json ? json_incref(r.json) : NULL;
    http_response_clear(&r);
    return status;
}

static bool ready_is(const char *url, int want)
{
    return get(url, NULL) == want;
}

/* The active broker's pid as the gateway's /health names it (0: none yet). */
static long long active_pid(teststack_t *stack)
{
    char url[300];
    snprintf(url, sizeof url, "%s/health", teststack_url(stack));
    json_t *health = NULL;
    long long pid = 0;
    if (get(url, &health) == 200)
        pid = json_integer_value(
            json_object_get(json_object_get(health, "active_broker"), "pid"));
    json_decref(health);
    return pid;
}

static void test_standby_takes_over_after_kill(void **state)
{
    (void)state;
    teststack_options_t opts = {.workers = 2, .slots = 4};
    teststack_t *stack = teststack_start(&opts);
    assert_non_null(stack);
    assert_true(teststack_log_has(stack, "broker", "active: took the lease token=1"));
    int metrics = localproc_free_port();
    char args[64], ready[96], health[96];
    snprintf(args, sizeof args, "--metrics 127.0.0.1:%d", metrics);
    snprintf(ready, sizeof ready, "http://127.0.0.1:%d/ready", metrics);
    snprintf(health, sizeof health, "http://127.0.0.1:%d/health", metrics);
    /* same endpoints: it can bind them only once the first broker is gone */
    pid_t standby = teststack_spawn_broker(stack, "standby", NULL, NULL, NULL, args);
    assert_true(standby > 0);
    WAIT_FOR(teststack_log_has(stack, "standby", "standby: the lease is held by"), 20000);
    assert_true(teststack_log_has(stack, "standby", "standby: the lease is held by"));
    WAIT_FOR(ready_is(ready, 503), 10000);
    json_t *role = NULL;
    assert_int_equal(get(health, &role), 200);
    assert_string_equal(json_string_value(json_object_get(role, "role")), "standby");
    json_decref(role);
    assert_false(teststack_log_has(stack, "standby", "listening clients="));
    assert_int_equal(active_pid(stack), teststack_broker_pid(stack));

    json_decref(teststack_create_workflow(stack, WORKFLOW));
    char *ids[EXECUTIONS];
    for (int i = 0; i < EXECUTIONS; i++) {
        ids[i] = teststack_execute(stack, "ha", "{\"inputs\":{}}");
        assert_non_null(ids[i]);
    }
    long long killed = teststack_now_ms();
    teststack_kill_broker(stack, SIGKILL);
    WAIT_FOR(teststack_log_has(stack, "standby", "listening clients="), 20000);
    long long bound = teststack_now_ms();
    assert_true(teststack_log_has(stack, "standby", "active: took the lease token=2"));
    teststack_adopt_broker(stack, standby);
    WAIT_FOR(active_pid(stack) == standby, 20000);
    long long serving = teststack_now_ms();
    assert_int_equal(active_pid(stack), standby);
    assert_true(ready_is(ready, 200));
    fprintf(stderr, "takeover: kill -9 to the standby's sockets bound %lld ms, to /health "
                    "through the gateway naming it %lld ms (lease 3000 ms)\n",
            bound - killed, serving - killed);
    for (int i = 0; i < EXECUTIONS; i++) {
        json_t *st = teststack_wait_terminal(stack, "ha", ids[i], 60000);
        assert_non_null(st);
        assert_string_equal(json_string_value(json_object_get(st, "status")), "completed");
        json_decref(st);
        free(ids[i]);
    }
    char url[300];
    snprintf(url, sizeof url, "%s/workers", teststack_url(stack));
    json_t *workers = NULL;
    assert_int_equal(get(url, &workers), 200);
    json_t *active = json_object_get(workers, "active_broker");
    assert_int_equal(json_integer_value(json_object_get(active, "token")), 2);
    assert_int_equal(json_integer_value(json_object_get(active, "pid")), standby);
    json_decref(workers);
    teststack_destroy(&stack);
}

static void test_a_deposed_broker_cannot_commit(void **state)
{
    (void)state;
    teststack_options_t opts = {.workers = 1, .slots = 2};
    teststack_t *stack = teststack_start(&opts);
    assert_non_null(stack);
    json_decref(teststack_create_workflow(stack, WORKFLOW));
    char *id = teststack_execute(stack, "ha", "{\"inputs\":{}}");
    assert_non_null(id);
    int ports[3];
    assert_int_equal(localproc_free_ports(ports, 3), 0);
    char eps[3][64];
    for (int i = 0; i < 3; i++)
        snprintf(eps[i], sizeof eps[i], "tcp://127.0.0.1:%d", ports[i]);
    pid_t standby = teststack_spawn_broker(stack, "standby", eps[0], eps[1], eps[2], NULL);
    assert_true(standby > 0);
    WAIT_FOR(teststack_log_has(stack, "standby", "standby: the lease is held by"), 20000);
    assert_true(teststack_log_has(stack, "standby", "standby: the lease is held by"));

    pid_t old = teststack_broker_pid(stack);
    assert_int_equal(kill(old, SIGSTOP), 0);
    WAIT_FOR(teststack_log_has(stack, "standby", "listening clients="), 20000);
    assert_true(teststack_log_has(stack, "standby", "active: took the lease token=2"));
    /* A write sent to the stopped broker while it is stopped: the gateway still
     * points at it (a child, as the request waits for the broker). */
    pid_t client = fork();
    if (client == 0) {
        http_response_t r;
        http_post(&r, "{\"id\":\"probe\",\"name\":\"P\",\"phases\":[{\"phase_id\":\"p\","
                      "\"name\":\"P\",\"order\":1,\"prompt_template\":\"x\"}]}",
                  "%s/workflows", teststack_url(stack));
        _exit(r.status == 201 ? 0 : 1);
    }
    assert_int_equal(kill(old, SIGCONT), 0);
    int code = wait_exit(old, 20000);
    teststack_adopt_broker(stack, 0);
    assert_int_equal(code, 1);
    assert_true(teststack_log_has(stack, "broker", "deposed:"));
    int status = 0;
    waitpid(client, &status, 0);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 1); /* never acknowledged */
    assert_int_equal(teststack_db_int(stack, "SELECT count(*) FROM workflows WHERE id = 'probe'", NULL), 0);
    assert_int_equal(teststack_db_int(stack, "SELECT token FROM broker_lease", NULL), 2);
    char holder[128];
    snprintf(holder, sizeof holder,
             "SELECT count(*) FROM broker_lease WHERE holder LIKE '%% pid=%d %%'", (int)standby);
    assert_int_equal(teststack_db_int(stack, holder, NULL), 1);
    /* the new active serves the execution's state, as committed */
    assert_int_equal(teststack_db_int(stack, "SELECT count(*) FROM executions", NULL), 1);
    free(id);
    kill(standby, SIGTERM);
    assert_int_equal(wait_exit(standby, 20000), 0);
    teststack_destroy(&stack);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_standby_takes_over_after_kill),
        cmocka_unit_test(test_a_deposed_broker_cannot_commit),
    };
    return cmocka_run_group_tests_name("broker_standby", tests, NULL, NULL);
}
