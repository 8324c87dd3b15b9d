/* The team controls end to end (issue 19): an execute with an Idempotency-Key
 * answered once (concurrent submits, after a broker restart, another body → 409,
 * the key's expiry); max_concurrent, --max-running and priority, with the
 * queue_position of waiting executions; the rerun of a finished execution from
 * a phase (its priority kept, its reused artifacts kept past retention). */
#include "tests/support/execution.h"
#include "tests/support/expect.h"
#include "tests/support/http.h"
#include "tests/support/teststack.h"

#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
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

/* ---- concurrency limits and priority ---- */

/* The events of type PhaseStarted and ExecutionCompleted of the workflows
 * matching the LIKE pattern (PostgreSQL has no GLOB), in the order of the
 * event log: "S:<id>" and "C:<id>", comma-separated (malloc'd). */
static char *start_and_end_log(teststack_t *on, const char *workflows)
{
    return teststack_db_text(
        on,
        "SELECT group_concat(t, ',') FROM (SELECT CASE e.type WHEN 'PhaseStarted' THEN 'S:'"
        " ELSE 'C:' END || e.execution_id AS t FROM events e JOIN executions x"
        " ON x.id = e.execution_id WHERE x.workflow_id LIKE ?1"
        " AND e.type IN ('PhaseStarted', 'ExecutionCompleted') ORDER BY e.seq) AS l",
        workflows, NULL);
}

/* From the log: the most executions running at once, and the order they
 * started in (ids, each once) into started[]. */
static int most_running(char *log, char started[][32], int max, int *nstarted)
{
    int running = 0, most = 0;
    *nstarted = 0;
    for (char *item = strtok(log, ","); item; item = strtok(NULL, ",")) {
        const char *id = item + 2;
        if (item[0] == 'C') {
            running--;
            continue;
        }
        bool seen = false;
        for (int i = 0; i < *nstarted; i++)
            seen = seen || strcmp(started[i], id) == 0;
        if (seen || *nstarted >= max)
            continue;
        snprintf(started[(*nstarted)++], 32, "%s", id);
        if (++running > most)
            most = running;
    }
    return most;
}

/* max_concurrent: 2 on a worker with 4 slots: never more than 2 of its
 * executions run at once; the others wait as pending and start in the order
 * they were submitted; all complete. */
static void test_max_concurrent_holds_the_rest_pending(void **state)
{
    (void)state;
    execution_create_workflow(stack, "{\"id\":\"limited\",\"name\":\"Limited\","
                                     "\"max_concurrent\":2,\"phases\":["
                                     "{\"phase_id\":\"p\",\"name\":\"P\",\"order\":1,"
                                     " \"prompt_template\":\"#mock sleep 200\\nx\"}]}");
    enum { SUBMITS = 10 };
    char *ids[SUBMITS];
    for (int i = 0; i < SUBMITS; i++) {
        ids[i] = teststack_execute(stack, "limited", "{}");
        assert_non_null(ids[i]);
    }
    for (int i = 0; i < SUBMITS; i++) {
        json_t *final = teststack_wait_terminal(stack, "limited", ids[i], 60000);
        assert_non_null(final);
        assert_string_equal(json_str(final, "status"), "completed");
        json_decref(final);
    }
    char *log = start_and_end_log(stack, "limited");
    assert_non_null(log);
    char started[SUBMITS][32];
    int nstarted;
    int most = most_running(log, started, SUBMITS, &nstarted);
    print_message("most running at once: %d\n", most);
    assert_int_equal(most, 2);
    assert_int_equal(nstarted, SUBMITS);
    for (int i = 0; i < SUBMITS; i++) {
        assert_string_equal(started[i], ids[i]);
        free(ids[i]);
    }
    free(log);
}

/* One at a time: while the first runs, a later submit with a higher priority
 * starts before an earlier one with the default. */
static void test_priority_reorders_waiting_work(void **state)
{
    (void)state;
    execution_create_workflow(stack, "{\"id\":\"ranked\",\"name\":\"Ranked\","
                                     "\"max_concurrent\":1,\"phases\":["
                                     "{\"phase_id\":\"p\",\"name\":\"P\",\"order\":1,"
                                     " \"prompt_template\":\"#mock sleep 300\\nx\"}]}");
    char *first = teststack_execute(stack, "ranked", "{}");
    assert_non_null(first);
    execution_wait_phase(stack, first, "p", "running", 10000);
    char *plain = teststack_execute(stack, "ranked", "{}");
    char *urgent = teststack_execute(stack, "ranked", "{\"priority\":5}");
    assert_non_null(plain);
    assert_non_null(urgent);
    json_t *status = teststack_wait_terminal(stack, "ranked", plain, 30000);
    assert_non_null(status);
    json_decref(status);
    char *log = start_and_end_log(stack, "ranked");
    char started[3][32];
    int nstarted;
    assert_int_equal(most_running(log, started, 3, &nstarted), 1);
    assert_int_equal(nstarted, 3);
    assert_string_equal(started[0], first);
    assert_string_equal(started[1], urgent);
    assert_string_equal(started[2], plain);
    free(log);
    free(urgent);
    free(plain);
    free(first);
}

/* ---- rerun ---- */

/* Lines in dir/name (the runs the counting agent recorded), 0 when absent. */
static int runs_of(const char *dir, const char *phase)
{
    char path[512];
    snprintf(path, sizeof path, "%s/runs.%s", dir, phase);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    int lines = 0, c;
    while ((c = fgetc(f)) != EOF)
        lines += c == '\n';
    fclose(f);
    return lines;
}

static void touch(const char *dir, const char *name, bool present)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (present) {
        FILE *f = fopen(path, "w");
        assert_non_null(f);
        fclose(f);
    } else {
        unlink(path);
    }
}

static void rerun(teststack_t *on, const char *id, const char *body, http_response_t *resp)
{
    char url[256];
    snprintf(url, sizeof url, "%s/executions/%s/rerun", teststack_url(on), id);
    assert_int_equal(http_request("POST", url, body, NULL, resp), 0);
}

static json_t *detail_of(teststack_t *on, const char *id)
{
    http_response_t resp;
    assert_int_equal(http_get(&resp, "%s/executions/%s", teststack_url(on), id), 0);
    assert_int_equal(resp.status, 200);
    json_t *json = json_incref(resp.json);
    http_response_clear(&resp);
    return json;
}

static void wait_status(teststack_t *on, const char *id, const char *want)
{
    json_t *final = teststack_wait_terminal(on, "chain", id, 30000);
    assert_non_null(final);
    assert_string_equal(json_str(final, "status"), want);
    json_decref(final);
}

/* A rerun of a failed execution runs only the phase that failed and those
 * after it: the phase before is copied (the agent did not run it again, its
 * output is the same bytes, later prompts render it); from the first phase
 * everything runs again; a running execution cannot be rerun, an unknown
 * phase is named with the phases there are. */
static void test_rerun_from_a_failed_middle_phase(void **state)
{
    (void)state;
    char dir[] = "/tmp/syn-rerun-XXXXXX";
    teststack_t *agents = teststack_start_command(
        dir, 1, SYN_SOURCE_DIR "/tests/integration/fixtures/counting_agent.sh");
    assert_non_null(agents);
    execution_create_workflow(agents, "{\"id\":\"chain\",\"name\":\"Chain\",\"phases\":["
                              "{\"phase_id\":\"a\",\"name\":\"A\",\"order\":1,"
                              " \"prompt_template\":\"start $ARGUMENTS\"},"
                              "{\"phase_id\":\"b\",\"name\":\"B\",\"order\":2,"
                              " \"prompt_template\":\"b after {{a}}\"},"
                              "{\"phase_id\":\"c\",\"name\":\"C\",\"order\":3,"
                              " \"prompt_template\":\"c sees {{a}}|{{b}}\"}]}");
    touch(dir, "fail.b", true);
    char *first = teststack_execute(agents, "chain", "{\"task\":\"T\",\"priority\":7}");
    assert_non_null(first);
    wait_status(agents, first, "failed");
    assert_int_equal(runs_of(dir, "a"), 1);
    assert_int_equal(runs_of(dir, "b"), 1);
    assert_int_equal(runs_of(dir, "c"), 0);

    touch(dir, "fail.b", false);
    http_response_t resp;
    rerun(agents, first, NULL, &resp);
    if (resp.status != 200)
        fail_msg("rerun: %ld %s", resp.status, resp.body);
    char *second = strdup(json_str(resp.json, "execution_id"));
    assert_string_equal(json_str(resp.json, "rerun_of"), first);
    assert_string_equal(json_str(resp.json, "from_phase"), "b");
    assert_true(strncmp(second, "exec-", 5) == 0 && strlen(second) == 17);
    http_response_clear(&resp);
    wait_status(agents, second, "completed");
    /* it keeps the old execution's priority */
    assert_int_equal(teststack_db_count(agents, "SELECT 1 FROM executions WHERE id = ?1"
                                                " AND priority = 7", second, NULL), 1);
    assert_int_equal(runs_of(dir, "a"), 1); /* reused, not run */
    assert_int_equal(runs_of(dir, "b"), 2);
    assert_int_equal(runs_of(dir, "c"), 1);

    char *a_then = execution_phase_output(agents, first, "a");
    char *a_now = execution_phase_output(agents, second, "a");
    assert_string_equal(a_now, a_then);
    char *c_now = execution_phase_output(agents, second, "c");
    char *b_now = execution_phase_output(agents, second, "b");
    char want[1024];
    /* (the agent reads its prompt without the trailing newline the last output had) */
    snprintf(want, sizeof want, "c sees %s|%.*s", a_then, (int)strcspn(b_now, "\n"), b_now);
    if (!strstr(c_now, want))
        fail_msg("c saw [%s], wanted [%s]", c_now, want);
    json_t *detail = detail_of(agents, second);
    assert_string_equal(json_str(detail, "rerun_of"), first);
    assert_string_equal(json_str(execution_phase_in(detail, "a"), "reused_from"), first);
    assert_string_equal(json_str(execution_phase_in(detail, "a"), "status"), "completed");
    assert_true(json_is_null(json_object_get(execution_phase_in(detail, "b"), "reused_from")));
    assert_int_equal(json_integer_value(json_object_get(detail, "completed_phases")), 3);
    json_decref(detail);
    detail = detail_of(agents, first);
    assert_int_equal(json_array_size(json_object_get(detail, "reruns")), 1);
    assert_string_equal(json_string_value(json_array_get(json_object_get(detail, "reruns"), 0)),
                        second);
    assert_true(json_is_null(json_object_get(detail, "rerun_of")));
    json_decref(detail);

    /* from the first phase: everything runs again */
    rerun(agents, second, "{\"from_phase\":\"a\",\"task\":\"U\",\"priority\":-2}", &resp);
    assert_int_equal(resp.status, 200);
    char *third = strdup(json_str(resp.json, "execution_id"));
    http_response_clear(&resp);
    assert_int_equal(teststack_db_count(agents, "SELECT 1 FROM executions WHERE id = ?1"
                                                " AND priority = -2", third, NULL), 1);
    wait_status(agents, third, "completed");
    assert_int_equal(runs_of(dir, "a"), 2);
    assert_int_equal(runs_of(dir, "c"), 2);
    char *a_third = execution_phase_output(agents, third, "a");
    assert_non_null(strstr(a_third, "start U"));

    /* an unknown phase; a running execution */
    rerun(agents, third, "{\"from_phase\":\"zz\"}", &resp);
    assert_int_equal(resp.status, 422);
    assert_non_null(strstr(json_str(resp.json, "detail"), "Phase zz not found"));
    assert_non_null(strstr(json_str(resp.json, "detail"), "its phases are a, b, c"));
    http_response_clear(&resp);
    touch(dir, "hold.a", true);
    char *held = teststack_execute(agents, "chain", "{}");
    assert_non_null(held);
    execution_wait_phase(agents, held, "a", "running", 10000);
    rerun(agents, held, NULL, &resp);
    assert_int_equal(resp.status, 409);
    assert_non_null(strstr(json_str(resp.json, "detail"), "Cannot rerun execution in state "
                                                          "running"));
    http_response_clear(&resp);
    touch(dir, "hold.a", false);
    wait_status(agents, held, "completed");

    free(held);
    free(a_third);
    free(third);
    free(b_now);
    free(c_now);
    free(a_now);
    free(a_then);
    free(second);
    free(first);
    teststack_destroy(&agents);
    assert_int_equal(teststack_remove_dir(dir), 0);
}

/* ---- --max-running and queue positions ---- */

#define COUNTING_AGENT SYN_SOURCE_DIR "/tests/integration/fixtures/counting_agent.sh"

/* A stack of command agents (fixtures/counting_agent.sh or another) in scratch
 * dir (a mkdtemp template), with extra broker flags. */
static teststack_t *start_agents(char *dir, int workers, int slots, const char *agent,
                                 const char *broker_args)
{
    assert_non_null(mkdtemp(dir));
    setenv("SYN_TEST_DIR", dir, 1);
    teststack_options_t opts = {.workers = workers,
                                .slots = slots,
                                .provider = "command",
                                .command = agent,
                                .worker_args = "--kill-grace-ms 500 --sandbox none",
                                .broker_args = broker_args};
    teststack_t *on = teststack_start(&opts);
    assert_non_null(on);
    return on;
}

/* queue_position in the detail, the status answer and the list's summary of a
 * pending execution (0 for null: not waiting), which must agree. */
static long queue_position_of(teststack_t *on, const char *workflow, const char *id)
{
    json_t *detail = detail_of(on, id);
    json_t *at = json_object_get(detail, "queue_position");
    assert_true(json_is_integer(at) || json_is_null(at));
    long position = json_is_integer(at) ? (long)json_integer_value(at) : 0;
    json_decref(detail);
    http_response_t resp;
    assert_int_equal(
        http_get(&resp, "%s/workflows/%s/executions/%s", teststack_url(on), workflow, id), 0);
    assert_int_equal(resp.status, 200);
    at = json_object_get(resp.json, "queue_position");
    assert_int_equal(at ? (long)json_integer_value(at) : 0, position);
    http_response_clear(&resp);
    return position;
}

/* --max-running 2 alone (no max_concurrent), four agent slots, two workflows:
 * never more than two of their executions run at once (from the event log);
 * the waiting ones are numbered 1.. in the order they start (submission order,
 * a higher priority first) in their detail, status and summaries, the numbers
 * move up as places free, and are null once they run. */
static void test_max_running_holds_every_workflow(void **state)
{
    (void)state;
    char dir[] = "/tmp/syn-maxrun-XXXXXX";
    teststack_t *on = start_agents(dir, 2, 2, COUNTING_AGENT, "--max-running 2");
    for (int w = 0; w < 2; w++) {
        char json[256];
        snprintf(json, sizeof json,
                 "{\"id\":\"mr-%c\",\"name\":\"MR\",\"phases\":[{\"phase_id\":\"p\","
                 "\"name\":\"P\",\"order\":1,\"prompt_template\":\"x\"}]}",
                 'a' + w);
        execution_create_workflow(on, json);
    }
    touch(dir, "hold.p", true);
    enum { SUBMITS = 6 };
    char *ids[SUBMITS], *workflow[SUBMITS];
    for (int i = 0; i < SUBMITS; i++) {
        workflow[i] = i % 2 ? "mr-b" : "mr-a";
        ids[i] = teststack_execute(on, workflow[i], "{}");
        assert_non_null(ids[i]);
    }
    execution_wait_phase(on, ids[0], "p", "running", 15000);
    execution_wait_phase(on, ids[1], "p", "running", 15000);
    assert_int_equal(queue_position_of(on, workflow[0], ids[0]), 0);
    for (int i = 2; i < SUBMITS; i++)
        assert_int_equal(queue_position_of(on, workflow[i], ids[i]), i - 1);
    char *urgent = teststack_execute(on, "mr-b", "{\"priority\":5}");
    assert_non_null(urgent);
    assert_int_equal(queue_position_of(on, "mr-b", urgent), 1);
    assert_int_equal(queue_position_of(on, workflow[2], ids[2]), 2);
    http_response_t resp;
    assert_int_equal(http_get(&resp, "%s/executions?status=pending", teststack_url(on)), 0);
    json_t *items = json_object_get(resp.json, "executions");
    assert_int_equal(json_array_size(items), 5);
    for (size_t i = 0; i < json_array_size(items); i++)
        assert_true(json_integer_value(
                        json_object_get(json_array_get(items, i), "queue_position")) >= 1);
    http_response_clear(&resp);

    touch(dir, "hold.p", false);
    for (int i = 0; i < SUBMITS; i++) {
        json_t *final = teststack_wait_terminal(on, workflow[i], ids[i], 30000);
        assert_non_null(final);
        assert_string_equal(json_str(final, "status"), "completed");
        json_decref(final);
    }
    json_decref(teststack_wait_terminal(on, "mr-b", urgent, 30000));
    assert_int_equal(queue_position_of(on, workflow[5], ids[5]), 0);
    char *log = start_and_end_log(on, "mr-%");
    assert_non_null(log);
    char started[SUBMITS + 1][32];
    int nstarted;
    int most = most_running(log, started, SUBMITS + 1, &nstarted);
    print_message("most running at once: %d\n", most);
    assert_int_equal(most, 2);
    assert_int_equal(nstarted, SUBMITS + 1);
    const char *order[] = {ids[0], ids[1], urgent, ids[2], ids[3], ids[4], ids[5]};
    for (int i = 0; i < SUBMITS + 1; i++)
        assert_string_equal(started[i], order[i]);
    free(log);
    free(urgent);
    for (int i = 0; i < SUBMITS; i++)
        free(ids[i]);
    teststack_destroy(&on);
    assert_int_equal(teststack_remove_dir(dir), 0);
}

/* ---- a rerun's reused artifacts ---- */

#define ARTIFACT_AGENT SYN_SOURCE_DIR "/tests/integration/fixtures/artifact_agent.sh"

/* The HTTP status of GET /executions/{id}. */
static long detail_status(teststack_t *on, const char *id)
{
    http_response_t resp;
    assert_int_equal(http_get(&resp, "%s/executions/%s", teststack_url(on), id), 0);
    long status = resp.status;
    http_response_clear(&resp);
    return status;
}

/* The artifact's bytes as served equal those the agent kept in the scratch dir. */
static void assert_artifact(teststack_t *on, const char *dir, const char *id, const char *made_by,
                            const char *path)
{
    char file[1024];
    snprintf(file, sizeof file, "%s/%s/make/%s", dir, made_by, path);
    FILE *f = fopen(file, "rb");
    assert_non_null(f);
    static char want[1 << 20];
    size_t len = fread(want, 1, sizeof want, f);
    fclose(f);
    http_response_t resp;
    assert_int_equal(
        http_get(&resp, "%s/executions/%s/artifacts/make/%s", teststack_url(on), id, path), 0);
    assert_int_equal(resp.status, 200);
    assert_int_equal(resp.body_len, len);
    assert_memory_equal(resp.body, want, len);
    http_response_clear(&resp);
}

static char *rerun_from_use(teststack_t *on, const char *id)
{
    http_response_t resp;
    rerun(on, id, "{\"from_phase\":\"use\"}", &resp);
    assert_int_equal(resp.status, 200);
    char *again = strdup(json_str(resp.json, "execution_id"));
    http_response_clear(&resp);
    json_t *final = teststack_wait_terminal(on, "deliver", again, 30000);
    assert_non_null(final);
    assert_string_equal(json_str(final, "status"), "completed");
    json_decref(final);
    return again;
}

/* A rerun's reused phase has the old attempt's artifacts, byte for byte, without
 * a copy of their bytes; retention (--retain-max-executions 1) deleting the old
 * execution keeps them for the rerun, and a rerun of the rerun; the bytes go once
 * no execution names them any more. */
static void test_rerun_keeps_reused_artifacts_past_retention(void **state)
{
    (void)state;
    char dir[] = "/tmp/syn-rerun-art-XXXXXX";
    teststack_t *on = start_agents(dir, 1, 2, ARTIFACT_AGENT, "--retain-max-executions 1");
    execution_create_workflow(on, "{\"id\":\"deliver\",\"name\":\"Deliver\",\"phases\":["
                                  "{\"phase_id\":\"make\",\"name\":\"Make\",\"order\":1,"
                                  " \"prompt_template\":\"MAKE\"},"
                                  "{\"phase_id\":\"use\",\"name\":\"Use\",\"order\":2,"
                                  " \"prompt_template\":\"USE\"}]}");
    char *first = teststack_execute(on, "deliver", "{}");
    assert_non_null(first);
    json_decref(teststack_wait_terminal(on, "deliver", first, 30000));
    long chunks = teststack_db_count(on, "SELECT 1 FROM artifact_chunks", NULL);
    assert_true(chunks >= 2);

    char *second = rerun_from_use(on, first);
    /* retention keeps one finished execution: the first goes */
    WAIT_FOR(detail_status(on, first) == 404, 15000);
    assert_int_equal(detail_status(on, first), 404);
    assert_int_equal(teststack_db_count(on, "SELECT 1 FROM artifact_chunks", NULL), chunks);
    assert_artifact(on, dir, second, first, "report.md");
    assert_artifact(on, dir, second, first, "sub/dir/data.bin");
    http_response_t resp;
    assert_int_equal(http_get(&resp, "%s/executions/%s/artifacts", teststack_url(on), second), 0);
    assert_int_equal(resp.status, 200);
    assert_int_equal(json_array_size(json_object_get(resp.json, "artifacts")), 3);
    http_response_clear(&resp);

    char *third = rerun_from_use(on, second);
    WAIT_FOR(detail_status(on, second) == 404, 15000);
    assert_artifact(on, dir, third, first, "sub/dir/data.bin");
    assert_int_equal(teststack_db_count(on, "SELECT 1 FROM artifact_chunks", NULL), chunks);

    /* from the first phase nothing is reused: once it is the one kept, the
     * first execution's bytes are gone */
    rerun(on, third, "{\"from_phase\":\"make\"}", &resp);
    assert_int_equal(resp.status, 200);
    char *fourth = strdup(json_str(resp.json, "execution_id"));
    http_response_clear(&resp);
    json_decref(teststack_wait_terminal(on, "deliver", fourth, 30000));
    WAIT_FOR(detail_status(on, third) == 404, 15000);
    WAIT_FOR(teststack_db_count(on, "SELECT 1 FROM artifacts WHERE exec_num < 0", NULL) == 0,
             15000);
    assert_int_equal(teststack_db_count(on, "SELECT 1 FROM artifacts WHERE exec_num < 0", NULL),
                     0);
    assert_int_equal(teststack_db_count(on, "SELECT 1 FROM artifact_chunks", NULL), chunks);
    assert_artifact(on, dir, fourth, fourth, "sub/dir/data.bin");
    free(fourth);
    free(third);
    free(second);
    free(first);
    teststack_destroy(&on);
    assert_int_equal(teststack_remove_dir(dir), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_concurrent_submits_with_one_key_make_one_execution),
        cmocka_unit_test(test_a_key_replays_after_a_broker_restart),
        cmocka_unit_test(test_a_key_with_another_body_is_a_conflict),
        cmocka_unit_test(test_a_key_expires_after_the_window),
        cmocka_unit_test(test_max_concurrent_holds_the_rest_pending),
        cmocka_unit_test(test_priority_reorders_waiting_work),
        cmocka_unit_test(test_rerun_from_a_failed_middle_phase),
        cmocka_unit_test(test_max_running_holds_every_workflow),
        cmocka_unit_test(test_rerun_keeps_reused_artifacts_past_retention),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
