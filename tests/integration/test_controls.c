/* The team controls end to end (issue 19): an execute with an Idempotency-Key
 * answered once (concurrent submits, after a broker restart, another body → 409,
 * the key's expiry), and the rerun of a finished execution from a phase. */
#include "tests/support/execution.h"
#include "tests/support/expect.h"
#include "tests/support/http.h"
#include "tests/support/teststack.h"

#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
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

/* ---- helpers ---- */

/* POST /workflows/{workflow}/execute with body and, when key is given, that
 * Idempotency-Key. */
static void execute_keyed(teststack_t *on, const char *workflow, const char *body,
                          const char *key, http_response_t *resp)
{
    char url[256], header[400];
    snprintf(url, sizeof url, "%s/workflows/%s/execute", teststack_url(on), workflow);
    snprintf(header, sizeof header, "Idempotency-Key: %s", key);
    http_extra_t extra = {.header = key ? header : NULL};
    assert_int_equal(http_request_ex("POST", url, body, NULL, &extra, resp), 0);
}

/* The execution id of a 200 answer (malloc'd); fails otherwise. */
static char *accepted_id(http_response_t *resp)
{
    if (resp->status != 200)
        fail_msg("execute: %ld %s", resp->status, resp->body ? resp->body : "");
    return strdup(json_str(resp->json, "execution_id"));
}

static long executions_of(teststack_t *on, const char *workflow)
{
    return teststack_db_count(on, "SELECT 1 FROM executions WHERE workflow_id = ?1", workflow,
                              NULL);
}

static void create_one_phase(teststack_t *on, const char *id)
{
    char json[256];
    snprintf(json, sizeof json,
             "{\"id\":\"%s\",\"name\":\"%s\",\"phases\":[{\"phase_id\":\"only\","
             "\"name\":\"Only\",\"order\":1,\"prompt_template\":\"hi {{task}}\"}]}",
             id, id);
    execution_create_workflow(on, json);
}

/* ---- idempotency ---- */

typedef struct {
    pthread_t thread;
    http_response_t resp;
} submit_t;

static void *submit_run(void *arg)
{
    submit_t *s = arg;
    char url[256];
    snprintf(url, sizeof url, "%s/workflows/keyed/execute", teststack_url(stack));
    http_extra_t extra = {.header = "Idempotency-Key: same-key-twice"};
    http_request_ex("POST", url, "{\"task\":\"t\"}", NULL, &extra, &s->resp);
    return NULL;
}

static void test_concurrent_submits_with_one_key_make_one_execution(void **state)
{
    (void)state;
    create_one_phase(stack, "keyed");
    enum { SUBMITS = 4 };
    submit_t submits[SUBMITS];
    memset(submits, 0, sizeof submits);
    for (int i = 0; i < SUBMITS; i++)
        assert_int_equal(pthread_create(&submits[i].thread, NULL, submit_run, &submits[i]), 0);
    for (int i = 0; i < SUBMITS; i++)
        pthread_join(submits[i].thread, NULL);
    char *first = accepted_id(&submits[0].resp);
    int replayed = 0;
    for (int i = 0; i < SUBMITS; i++) {
        char *id = accepted_id(&submits[i].resp);
        assert_string_equal(id, first);
        replayed += strcmp(submits[i].resp.replayed, "true") == 0;
        /* the same body as the first answer: no mark of the replay in it */
        assert_null(json_object_get(submits[i].resp.json, "idempotent_replayed"));
        assert_string_equal(json_str(submits[i].resp.json, "status"), "started");
        free(id);
        http_response_clear(&submits[i].resp);
    }
    assert_int_equal(replayed, SUBMITS - 1);
    assert_int_equal(executions_of(stack, "keyed"), 1);
    free(first);
}

static void test_a_key_replays_after_a_broker_restart(void **state)
{
    (void)state;
    create_one_phase(stack, "restarted");
    http_response_t resp;
    execute_keyed(stack, "restarted", "{\"task\":\"a\"}", "key-across-restart", &resp);
    char *id = accepted_id(&resp);
    assert_string_equal(resp.replayed, "");
    http_response_clear(&resp);

    teststack_kill_broker(stack, SIGKILL);
    assert_int_equal(teststack_start_broker(stack), 0);
    assert_int_equal(teststack_wait_health(stack, 1, 15000), 0);

    execute_keyed(stack, "restarted", "{\"task\":\"a\"}", "key-across-restart", &resp);
    char *again = accepted_id(&resp);
    assert_string_equal(again, id);
    assert_string_equal(resp.replayed, "true");
    http_response_clear(&resp);
    assert_int_equal(executions_of(stack, "restarted"), 1);
    free(again);
    free(id);
}

static void test_a_key_with_another_body_is_a_conflict(void **state)
{
    (void)state;
    create_one_phase(stack, "conflicting");
    http_response_t resp;
    execute_keyed(stack, "conflicting", "{\"task\":\"one\"}", "key-two-bodies", &resp);
    char *id = accepted_id(&resp);
    http_response_clear(&resp);
    execute_keyed(stack, "conflicting", "{\"task\":\"two\"}", "key-two-bodies", &resp);
    assert_int_equal(resp.status, 409);
    assert_non_null(strstr(json_str(resp.json, "detail"),
                           "Idempotency-Key key-two-bodies was already used with a different "
                           "request"));
    http_response_clear(&resp);
    /* the same words in another order are the same request */
    execute_keyed(stack, "conflicting", "{\"inputs\":{},\"task\":\"one\"}", "key-two-bodies",
                  &resp);
    char *again = accepted_id(&resp);
    assert_string_equal(again, id);
    http_response_clear(&resp);
    /* no key, or a bad one */
    execute_keyed(stack, "conflicting", "{\"task\":\"one\"}", NULL, &resp);
    char *other = accepted_id(&resp);
    assert_string_not_equal(other, id);
    http_response_clear(&resp);
    char long_key[300];
    memset(long_key, 'k', sizeof long_key - 1);
    long_key[sizeof long_key - 1] = '\0';
    execute_keyed(stack, "conflicting", "{\"task\":\"one\"}", long_key, &resp);
    assert_int_equal(resp.status, 422);
    assert_non_null(strstr(resp.body, "idempotency-key"));
    http_response_clear(&resp);
    assert_int_equal(executions_of(stack, "conflicting"), 2);
    free(other);
    free(again);
    free(id);
}

/* A new execution for the key once its window has passed (each try before
 * that only replays, so the wait is on what the API says), and the keys that
 * expired meanwhile are gone from the database. */
static void test_a_key_expires_after_the_window(void **state)
{
    (void)state;
    teststack_options_t opts = {.workers = 1, .slots = 2,
                                .broker_args = "--idempotency-window 1"};
    teststack_t *short_window = teststack_start(&opts);
    assert_non_null(short_window);
    create_one_phase(short_window, "expiring");
    http_response_t resp;
    execute_keyed(short_window, "expiring", "{\"task\":\"x\"}", "forgotten-key", &resp);
    char *forgotten = accepted_id(&resp);
    http_response_clear(&resp);
    execute_keyed(short_window, "expiring", "{}", "old-key", &resp);
    char *first = accepted_id(&resp);
    http_response_clear(&resp);
    char *later = NULL;
    wait_t w = wait_begin(15000);
    do {
        free(later);
        execute_keyed(short_window, "expiring", "{}", "old-key", &resp);
        later = accepted_id(&resp);
        http_response_clear(&resp);
    } while (strcmp(later, first) == 0 && wait_next(&w));
    assert_string_not_equal(later, first);
    assert_int_equal(executions_of(short_window, "expiring"), 3);
    assert_int_equal(teststack_db_count(short_window,
                                        "SELECT 1 FROM idempotency_keys WHERE key = ?1",
                                        "forgotten-key", NULL),
                     0);
    assert_int_equal(teststack_db_count(short_window,
                                        "SELECT 1 FROM idempotency_keys WHERE execution_id = ?1",
                                        later, NULL),
                     1);
    free(later);
    free(first);
    free(forgotten);
    teststack_destroy(&short_window);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_concurrent_submits_with_one_key_make_one_execution),
        cmocka_unit_test(test_a_key_replays_after_a_broker_restart),
        cmocka_unit_test(test_a_key_with_another_body_is_a_conflict),
        cmocka_unit_test(test_a_key_expires_after_the_window),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
