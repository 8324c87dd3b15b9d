/* The sandbox through the whole stack (issue 22): a worker started with its
 * defaults runs command agents under bwrap, and each phase's `network` (shown
 * in the workflow, sent in assign) decides what its agent reaches: a loopback
 * server outside with `host`, nothing with `none`, only the worker's
 * credential proxy with the default `proxy`. The agent cannot read the
 * broker's data either. Skipped, with the reason, on a
 * host where bwrap cannot make a sandbox. */
#include "tests/support/http.h"
#include "tests/support/teststack.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "worker/sandbox.h"

static teststack_t *stack;
static int server = -1;
static char probe_error[256];

static int setup(void **state)
{
    (void)state;
    if (worker_sandbox_probe(NULL, NULL, probe_error, sizeof probe_error) != 0)
        return 0;
    server = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof addr;
    if (server < 0 || bind(server, (struct sockaddr *)&addr, sizeof addr) != 0 ||
        listen(server, 16) != 0 || getsockname(server, (struct sockaddr *)&addr, &len) != 0)
        return -1;
    /* The prompt is the agent's script ("sh -s"); the worker keeps its default --sandbox. */
    teststack_options_t opts = {.workers = 1, .slots = 2, .provider = "command",
                                .command = "sh -s", .worker_args = "--kill-grace-ms 500"};
    stack = teststack_start(&opts);
    if (!stack)
        return -1;
    char probe[512], body[3072];
    snprintf(probe, sizeof probe,
             "if bash -c 'exec 3<>/dev/tcp/127.0.0.1/%d' 2>/dev/null; then echo reached; "
             "else echo unreachable; fi; ls %s/var >/dev/null 2>&1 && echo data-listed || "
             "echo data-hidden",
             ntohs(addr.sin_port), teststack_dir(stack));
    snprintf(body, sizeof body,
             "{\"id\":\"netcheck\",\"name\":\"Net\",\"phases\":["
             "{\"phase_id\":\"host\",\"name\":\"H\",\"order\":1,\"network\":\"host\","
             " \"prompt_template\":\"%s\"},"
             "{\"phase_id\":\"none\",\"name\":\"N\",\"order\":2,\"network\":\"none\","
             " \"prompt_template\":\"%s\"},"
             "{\"phase_id\":\"prox\",\"name\":\"P\",\"order\":3,\"network\":\"proxy\","
             " \"prompt_template\":\"%s\"},"
             "{\"phase_id\":\"dflt\",\"name\":\"D\",\"order\":4,\"prompt_template\":\"%s\"}]}",
             probe, probe, probe, probe);
    json_t *created = teststack_create_workflow(stack, body);
    if (!created)
        return -1;
    json_decref(created);
    /* The phase's setting shows in the workflow, the default (proxy) included. */
    http_response_t r;
    if (http_get(&r, "%s/workflows/netcheck", teststack_url(stack)) != 0 || r.status != 200) {
        http_response_clear(&r);
        return -1;
    }
    json_t *wf = json_incref(r.json);
    http_response_clear(&r);
    const char *want[] = {"host", "none", "proxy", "proxy"};
    json_t *phases = json_object_get(wf, "phases");
    for (size_t i = 0; i < 4; i++)
        if (strcmp(json_string_value(json_object_get(json_array_get(phases, i), "network")) ?: "",
                   want[i]) != 0) {
            fprintf(stderr, "phase %zu shows network %s\n", i,
                    json_dumps(json_array_get(phases, i), 0));
            json_decref(wf);
            return -1;
        }
    json_decref(wf);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    teststack_destroy(&stack);
    if (server >= 0)
        close(server);
    return 0;
}

static void expect_output(const char *id, const char *phase, const char *want)
{
    char *out = teststack_db_text(
        stack, "SELECT output FROM phases WHERE execution_id=?1 AND phase_id=?2", id, phase, NULL);
    assert_non_null(out);
    if (strcmp(out, want) != 0)
        fail_msg("phase %s: got '%s', want '%s'", phase, out, want);
    free(out);
}

static void test_network_per_phase(void **state)
{
    (void)state;
    if (!stack) {
        print_message("skipped: cannot sandbox here: %s\n", probe_error);
        skip();
    }
    char *id = teststack_execute(stack, "netcheck", "{}");
    assert_non_null(id);
    json_t *final = teststack_wait_terminal(stack, "netcheck", id, 30000);
    assert_non_null(final);
    if (strcmp(json_string_value(json_object_get(final, "status")), "completed") != 0) {
        teststack_dump_logs(stack);
        fail_msg("execution: %s", json_dumps(final, 0));
    }
    expect_output(id, "host", "reached\ndata-hidden\n");
    expect_output(id, "none", "unreachable\ndata-hidden\n");
    expect_output(id, "prox", "unreachable\ndata-hidden\n"); /* the proxy only */
    expect_output(id, "dflt", "unreachable\ndata-hidden\n");
    json_decref(final);
    free(id);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_network_per_phase),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
