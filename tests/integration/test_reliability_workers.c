/* Reliability when workers die, freeze, stop or run too long (issue 3): real
 * worker processes are killed with SIGKILL, frozen with SIGSTOP and stopped with
 * SIGTERM while they run phases; every check reads the broker's database or the
 * HTTP API. Lines starting "measure:" report timings for docs/reliability.md. */
#include "tests/support/execution.h"
#include "tests/support/expect.h"
#include "tests/support/http.h"
#include "tests/support/teststack.h"

#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

static teststack_t *stack;
static char scratch[] = "/tmp/syn-reliability-XXXXXX";

/* --- helpers ---------------------------------------------------------------- */

static long long wall_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* teststack names workers "w<index>". */
static int worker_index(const char *name)
{
    return name && name[0] == 'w' ? atoi(name + 1) : -1;
}

/* The worker that got attempt number `attempt` of the phase, once the broker has
 * recorded it (NULL after timeout_ms). */
static char *wait_attempt(const char *execution_id, const char *phase_id, const char *attempt,
                          int timeout_ms)
{
    for (wait_t w = wait_begin(timeout_ms);;) {
        char *worker = teststack_db_text(
            stack,
            "SELECT worker FROM attempts WHERE execution_id=?1 AND phase_id=?2 AND attempt=?3",
            execution_id, phase_id, attempt, NULL);
        if (worker)
            return worker;
        if (!wait_next(&w))
            return NULL;
    }
}

static char *attempt_field(const char *field, const char *execution_id, const char *phase_id,
                           const char *attempt)
{
    char sql[160];
    snprintf(sql, sizeof sql,
             "SELECT %s FROM attempts WHERE execution_id=?1 AND phase_id=?2 AND attempt=?3",
             field);
    return teststack_db_text(stack, sql, execution_id, phase_id, attempt, NULL);
}

static long attempt_count(const char *execution_id, const char *phase_id)
{
    return teststack_db_count(stack,
                              "SELECT 1 FROM attempts WHERE execution_id=?1 AND phase_id=?2",
                              execution_id, phase_id, NULL);
}

static long events_of(const char *execution_id, const char *type)
{
    return teststack_db_count(stack, "SELECT 1 FROM events WHERE execution_id=?1 AND type=?2",
                              execution_id, type, NULL);
}

/* Reads a whole small file (NULL when it does not exist). */
static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    char *buf = calloc(1, 65536);
    if (buf)
        buf[fread(buf, 1, 65535, f)] = '\0';
    fclose(f);
    return buf;
}

static int count_lines(const char *text)
{
    int n = 0;
    for (const char *p = text; p && *p; p++)
        n += *p == '\n';
    return n;
}

/* Lines in the agent's run log for the execution (see reliability_agent.sh). */
static int agent_runs(const char *execution_id)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s.runs", scratch, execution_id);
    char *text = slurp(path);
    int n = count_lines(text);
    free(text);
    return n;
}

static int wait_agent_runs(const char *execution_id, int runs, int timeout_ms)
{
    WAIT_FOR(agent_runs(execution_id) >= runs, timeout_ms);
    return agent_runs(execution_id);
}

/* The pid of the agent's first run (it leads its own process group). */
static pid_t first_agent_pid(const char *execution_id)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s.runs", scratch, execution_id);
    char *text = slurp(path);
    const char *at = text ? strstr(text, " pid ") : NULL;
    pid_t pid = at ? (pid_t)atoi(at + 5) : 0;
    free(text);
    return pid;
}

static pid_t read_pid_file(const char *execution_id, const char *suffix)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s.%s", scratch, execution_id, suffix);
    char *text = slurp(path);
    pid_t pid = text ? (pid_t)atoi(text) : 0;
    free(text);
    return pid;
}

/* Lines of the broker's log containing needle. */
static int broker_log_count(const char *needle)
{
    char path[512];
    snprintf(path, sizeof path, "%s/broker.log", teststack_dir(stack));
    FILE *f = fopen(path, "r");
    char line[4096];
    int n = 0;
    while (f && fgets(line, sizeof line, f))
        n += strstr(line, needle) != NULL;
    if (f)
        fclose(f);
    return n;
}

/* Waits until the broker's log has at least count lines containing needle. */
static bool wait_broker_log_count(const char *needle, int count, int timeout_ms)
{
    WAIT_FOR(broker_log_count(needle) >= count, timeout_ms);
    return broker_log_count(needle) >= count;
}

/* Waits until the broker's log has a line containing needle. */
static bool wait_broker_log(const char *needle, int timeout_ms)
{
    return wait_broker_log_count(needle, 1, timeout_ms);
}

/* Puts the fleet back to two live workers after a test took one away. */
static void replace_worker(void)
{
    assert_true(teststack_add_worker(stack, NULL) >= 0);
    assert_int_equal(teststack_wait_health(stack, 2, 15000), 0);
}

static json_t *create(const char *json_body)
{
    json_t *wf = teststack_create_workflow(stack, json_body);
    json_decref(wf);
    return wf;
}

/* --- the mock provider ------------------------------------------------------ */

static int setup_mock(void **state)
{
    (void)state;
    teststack_options_t opts = {.workers = 2, .slots = 4};
    stack = teststack_start(&opts);
    if (!stack)
        return -1;
    if (!create("{\"id\":\"long\",\"name\":\"Long\",\"phases\":[{\"phase_id\":\"work\","
                "\"name\":\"Work\",\"order\":1,\"prompt_template\":\"#mock sleep 3000\"}]}") ||
        !create("{\"id\":\"slowmock\",\"name\":\"Slow\",\"phases\":[{\"phase_id\":\"work\","
                "\"name\":\"Work\",\"order\":1,\"timeout_seconds\":2,"
                "\"prompt_template\":\"#mock sleep 10000\"}]}") ||
        !create("{\"id\":\"drain\",\"name\":\"Drain\",\"phases\":[{\"phase_id\":\"work\","
                "\"name\":\"Work\",\"order\":1,\"prompt_template\":\"#mock sleep 1500\"}]}") ||
        !create("{\"id\":\"quick\",\"name\":\"Quick\",\"phases\":[{\"phase_id\":\"work\","
                "\"name\":\"Work\",\"order\":1,\"prompt_template\":\"#mock sleep 100\"}]}"))
        return -1;
    return 0;
}

static int teardown_stack(void **state)
{
    (void)state;
    teststack_destroy(&stack);
    return 0;
}

/* kill -9 of the worker running a phase: the broker notices (its next send to the
 * gone peer fails, or heartbeats stop), records the attempt as lost and runs the
 * phase again on the other worker, well within 5 s. */
static void test_killed_worker_phase_reruns_elsewhere(void **state)
{
    (void)state;
    char *id = teststack_execute(stack, "long", "{}");
    assert_non_null(id);
    char *first = wait_attempt(id, "work", "1", 5000);
    assert_non_null(first);
    int victim = worker_index(first);
    assert_true(victim >= 0);
    /* Killed while its agent runs, well inside the 3 s phase. */
    execution_wait_phase(stack, id, "work", "running", 5000);

    long long killed_us = wall_us();
    teststack_kill_worker(stack, victim, SIGKILL);
    char *second = wait_attempt(id, "work", "2", 8000);
    assert_non_null(second);
    assert_string_not_equal(second, first);
    char *started = attempt_field("started_at", id, "work", "2");
    assert_non_null(started);
    long long reassign_ms = (atoll(started) - killed_us) / 1000;
    printf("measure: worker_kill9_to_reassign_ms=%lld\n", reassign_ms);
    assert_true(reassign_ms >= 0);
    assert_true(reassign_ms < 5000);

    json_t *final = teststack_wait_terminal(stack, "long", id, 15000);
    assert_non_null(final);
    assert_string_equal(json_str(final, "status"), "completed");
    char *s1 = attempt_field("status", id, "work", "1");
    char *s2 = attempt_field("status", id, "work", "2");
    char *why = attempt_field("error", id, "work", "1");
    assert_string_equal(s1, "lost");
    assert_string_equal(s2, "completed");
    assert_non_null(why);
    assert_non_null(strstr(why, first));
    assert_int_equal(attempt_count(id, "work"), 2);
    assert_int_equal(events_of(id, "PhaseCompleted"), 1);
    char *output = execution_db_phase_output(stack, id, "work");
    assert_non_null(output);
    assert_non_null(strstr(output, "mock output for phase work"));
    free(output);
    free(s1);
    free(s2);
    free(why);
    free(started);
    free(first);
    free(second);
    json_decref(final);
    free(id);
    replace_worker();
}

/* The worker enforces timeout_seconds: the phase fails with a timeout reason
 * about 2 s after it started, and is not run again. */
static void test_mock_phase_times_out(void **state)
{
    (void)state;
    long long t0 = teststack_now_ms();
    char *id = teststack_execute(stack, "slowmock", "{}");
    assert_non_null(id);
    json_t *final = teststack_wait_terminal(stack, "slowmock", id, 20000);
    long long took = teststack_now_ms() - t0;
    printf("measure: mock_timeout_2s_failed_after_ms=%lld\n", took);
    assert_non_null(final);
    assert_string_equal(json_str(final, "status"), "failed");
    assert_non_null(strstr(json_str(final, "error"), "timed out"));
    assert_true(took >= 1900);
    assert_true(took < 6000);
    assert_int_equal(attempt_count(id, "work"), 1);
    json_decref(final);
    free(id);
}

/* Starts a 1.5 s phase and sends SIGTERM to the worker running it 300 ms in;
 * returns the execution id and sets the worker's index, name and signal time. */
static char *start_drain(int *index, char **holder, long long *signalled_ms)
{
    char *id = teststack_execute(stack, "drain", "{}");
    assert_non_null(id);
    *holder = wait_attempt(id, "work", "1", 5000);
    assert_non_null(*holder);
    *index = worker_index(*holder);
    pid_t pid = teststack_worker_pid(stack, *index);
    assert_true(pid > 0);
    /* 300 ms into the 1.5 s phase is the scenario (docs/reliability.md's table
     * measures from it): timed, not a wait for state. */
    wait_exactly_ms(300);
    *signalled_ms = teststack_now_ms();
    assert_int_equal(kill(pid, SIGTERM), 0);
    return id;
}

/* SIGTERM on a busy worker: it finishes the phase it runs (whose result is
 * recorded as its own, not re-run elsewhere), then exits 0. */
static void test_sigterm_worker_finishes_its_phase_then_exits(void **state)
{
    (void)state;
    int index;
    char *holder;
    long long t0;
    char *id = start_drain(&index, &holder, &t0);
    /* Signal 0: just wait for the exit the SIGTERM asked for. */
    int code = teststack_stop_worker(stack, index, 0, 15000);
    long long took = teststack_now_ms() - t0;
    printf("measure: worker_sigterm_exit_after_ms=%lld (phase had ~1200 ms left)\n", took);
    assert_int_equal(code, 0);
    assert_true(took >= 900); /* it waited for the phase */

    json_t *final = teststack_wait_terminal(stack, "drain", id, 10000);
    assert_non_null(final);
    assert_string_equal(json_str(final, "status"), "completed");
    assert_int_equal(attempt_count(id, "work"), 1);
    char *status = attempt_field("status", id, "work", "1");
    char *worker = attempt_field("worker", id, "work", "1");
    assert_string_equal(status, "completed");
    assert_string_equal(worker, holder);
    free(status);
    free(worker);
    free(holder);
    json_decref(final);
    free(id);
    replace_worker();
}

#define FILL_SLOTS 9 /* w0 and w1 with 4 slots each, the prefetching worker with 1 */

/* Whether the log of worker index holds a line with both needles. */
static bool worker_log_has(int index, const char *needle, const char *and_needle)
{
    char path[512];
    snprintf(path, sizeof path, "%s/worker%d.log", teststack_dir(stack), index);
    FILE *f = fopen(path, "r");
    char line[4096];
    bool found = false;
    while (f && !found && fgets(line, sizeof line, f))
        found = strstr(line, needle) && strstr(line, and_needle);
    if (f)
        fclose(f);
    return found;
}

/* A worker with --prefetch holds phases beyond its slots only when no worker
 * has a free slot; when it is killed, the phases waiting on it (which never
 * started there) run again elsewhere like its running one, and every execution
 * completes. */
static void test_killed_worker_prefetched_phases_rerun(void **state)
{
    (void)state;
    int index = teststack_add_worker(stack, "--slots 1 --prefetch 2");
    assert_true(index >= 0);
    assert_int_equal(teststack_wait_health(stack, 3, 15000), 0);
    char name[16];
    snprintf(name, sizeof name, "w%d", index);
    char *ids[FILL_SLOTS + 2];
    for (int i = 0; i < FILL_SLOTS + 2; i++) {
        ids[i] = teststack_execute(stack, "long", "{}");
        assert_non_null(ids[i]);
        char *worker = wait_attempt(ids[i], "work", "1", 5000);
        assert_non_null(worker);
        /* Every slot is filled first; only then the prefetch places. */
        if (i >= FILL_SLOTS)
            assert_string_equal(worker, name);
        free(worker);
    }
    for (int i = FILL_SLOTS; i < FILL_SLOTS + 2; i++) {
        WAIT_FOR(worker_log_has(index, "waiting for a slot", ids[i]), 5000);
        assert_true(worker_log_has(index, "waiting for a slot", ids[i]));
    }
    teststack_kill_worker(stack, index, SIGKILL);
    for (int i = 0; i < FILL_SLOTS + 2; i++) {
        json_t *final = teststack_wait_terminal(stack, "long", ids[i], 20000);
        assert_non_null(final);
        assert_string_equal(json_str(final, "status"), "completed");
        json_decref(final);
    }
    for (int i = FILL_SLOTS; i < FILL_SLOTS + 2; i++) {
        char *s1 = attempt_field("status", ids[i], "work", "1");
        char *w2 = attempt_field("worker", ids[i], "work", "2");
        assert_string_equal(s1, "lost");
        assert_non_null(w2);
        assert_string_not_equal(w2, name);
        assert_false(worker_log_has(index, "assigned execution=", ids[i])); /* never ran there */
        free(s1);
        free(w2);
    }
    for (int i = 0; i < FILL_SLOTS + 2; i++)
        free(ids[i]);
}

#define DURING_DRAIN 6

/* A draining worker takes no new work: executions submitted while it drains run
 * on the other worker and complete (none fails because of the drain). */
static void test_work_submitted_during_a_drain_runs_elsewhere(void **state)
{
    (void)state;
    int index;
    char *holder;
    long long t0;
    int drains = broker_log_count("worker draining worker=");
    char *id = start_drain(&index, &holder, &t0);
    /* The broker knows: it picks the draining worker no more. */
    assert_true(wait_broker_log_count("worker draining worker=", drains + 1, 5000));
    char *during[DURING_DRAIN] = {0};
    for (int i = 0; i < DURING_DRAIN; i++) {
        during[i] = teststack_execute(stack, "quick", "{}");
        assert_non_null(during[i]);
    }
    int code = teststack_stop_worker(stack, index, 0, 15000);
    int completed = 0;
    for (int i = 0; i < DURING_DRAIN; i++) {
        json_t *other = teststack_wait_terminal(stack, "quick", during[i], 10000);
        if (other && !strcmp(json_str(other, "status"), "completed"))
            completed++;
        else
            fprintf(stderr, "execution %s submitted during the drain of %s: %s (%s)\n",
                    during[i], holder, json_str(other, "status"), json_str(other, "error"));
        json_decref(other);
        free(during[i]);
    }
    json_t *final = teststack_wait_terminal(stack, "drain", id, 10000);
    free(holder);
    free(id);
    replace_worker();
    assert_int_equal(code, 0);
    assert_non_null(final);
    assert_string_equal(json_str(final, "status"), "completed");
    json_decref(final);
    assert_int_equal(completed, DURING_DRAIN);
}

/* --- the command provider (a real agent process) ----------------------------- */

static int setup_command(void **state)
{
    (void)state;
    stack = teststack_start_command(
        scratch, 2, SYN_SOURCE_DIR "/tests/integration/fixtures/reliability_agent.sh");
    if (!stack)
        return -1;
    if (!create("{\"id\":\"agent\",\"name\":\"Agent\",\"phases\":[{\"phase_id\":\"work\","
                "\"name\":\"Work\",\"order\":1,\"prompt_template\":\"$ARGUMENTS\"}]}") ||
        !create("{\"id\":\"once\",\"name\":\"Once\",\"phases\":[{\"phase_id\":\"work\","
                "\"name\":\"Work\",\"order\":1,\"max_attempts\":1,"
                "\"prompt_template\":\"$ARGUMENTS\"}]}") ||
        !create("{\"id\":\"bounded\",\"name\":\"Bounded\",\"phases\":[{\"phase_id\":\"work\","
                "\"name\":\"Work\",\"order\":1,\"timeout_seconds\":2,"
                "\"prompt_template\":\"$ARGUMENTS\"}]}"))
        return -1;
    return 0;
}

static int teardown_command(void **state)
{
    teardown_stack(state);
    return teststack_remove_dir(scratch);
}

/* SIGSTOP freezes the worker (its connection stays up, only heartbeats stop):
 * the attempt is reassigned and completed; after SIGCONT the frozen worker's
 * late result reaches the broker and is dropped, and the replacement's output
 * stays the one recorded, once. */
static void test_frozen_worker_late_result_is_fenced(void **state)
{
    (void)state;
    char *id = teststack_execute(stack, "agent", "{\"task\":\"SLEEP 2\"}");
    assert_non_null(id);
    char *first = wait_attempt(id, "work", "1", 5000);
    assert_non_null(first);
    assert_int_equal(wait_agent_runs(id, 1, 5000), 1);
    int frozen = worker_index(first);
    long long stopped_us = wall_us();
    teststack_kill_worker(stack, frozen, SIGSTOP);

    char *second = wait_attempt(id, "work", "2", 10000);
    assert_non_null(second);
    assert_string_not_equal(second, first);
    char *started = attempt_field("started_at", id, "work", "2");
    assert_non_null(started);
    long long detect_ms = (atoll(started) - stopped_us) / 1000;
    printf("measure: worker_sigstop_to_reassign_ms=%lld\n", detect_ms);
    assert_true(detect_ms < 5000);

    json_t *final = teststack_wait_terminal(stack, "agent", id, 15000);
    assert_non_null(final);
    assert_string_equal(json_str(final, "status"), "completed");
    char expected[160];
    snprintf(expected, sizeof expected, "phase work attempt 2 of %s\n", id);
    char *output = execution_db_phase_output(stack, id, "work");
    assert_non_null(output);
    assert_string_equal(output, expected);
    free(output);

    /* The frozen agent finished meanwhile; its worker now delivers attempt 1. */
    teststack_kill_worker(stack, frozen, SIGCONT);
    char stale[200];
    snprintf(stale, sizeof stale, "dropped stale result execution=%s phase=work attempt=1 ", id);
    assert_true(wait_broker_log(stale, 10000));

    output = execution_db_phase_output(stack, id, "work");
    assert_non_null(output);
    assert_string_equal(output, expected);
    char *s1 = attempt_field("status", id, "work", "1");
    char *s2 = attempt_field("status", id, "work", "2");
    assert_string_equal(s1, "lost");
    assert_string_equal(s2, "completed");
    assert_int_equal(attempt_count(id, "work"), 2);
    assert_int_equal(
        teststack_db_count(stack, "SELECT 1 FROM phases WHERE execution_id=?1", id, NULL), 1);
    assert_int_equal(events_of(id, "PhaseCompleted"), 1);
    assert_int_equal(events_of(id, "ExecutionCompleted"), 1);
    assert_int_equal(agent_runs(id), 2);
    json_t *again = teststack_wait_terminal(stack, "agent", id, 1000);
    assert_non_null(again);
    assert_string_equal(json_str(again, "status"), "completed");
    json_decref(again);
    /* The thawed worker re-registers and takes work again. */
    assert_int_equal(teststack_wait_health(stack, 2, 15000), 0);
    free(output);
    free(s1);
    free(s2);
    free(started);
    free(first);
    free(second);
    json_decref(final);
    free(id);
}

/* max_attempts 1 is at-most-once: when the worker dies the execution fails with
 * a reason naming the lost worker, and the agent never runs a second time. */
static void test_max_attempts_one_fails_without_rerun(void **state)
{
    (void)state;
    char *id = teststack_execute(stack, "once", "{\"task\":\"SLEEP 5\"}");
    assert_non_null(id);
    char *holder = wait_attempt(id, "work", "1", 5000);
    assert_non_null(holder);
    assert_int_equal(wait_agent_runs(id, 1, 5000), 1);
    pid_t agent = first_agent_pid(id);
    assert_true(agent > 0);

    teststack_kill_worker(stack, worker_index(holder), SIGKILL);
    json_t *final = teststack_wait_terminal(stack, "once", id, 10000);
    assert_non_null(final);
    assert_string_equal(json_str(final, "status"), "failed");
    const char *error = json_str(final, "error");
    printf("max_attempts 1 error: %s\n", error);
    assert_non_null(strstr(error, "work"));
    assert_non_null(strstr(error, "lost"));
    assert_non_null(strstr(error, holder));
    /* A stretch for a wrongful second run to show up in: nothing may happen. */
    wait_quiet_ms(1000);
    assert_int_equal(agent_runs(id), 1);
    assert_int_equal(attempt_count(id, "work"), 1);
    char *status = attempt_field("status", id, "work", "1");
    assert_string_equal(status, "lost");
    /* The dead worker's agent was orphaned: clean up its process group. */
    kill(-agent, SIGKILL);
    free(status);
    free(holder);
    json_decref(final);
    free(id);
    replace_worker();
}

/* timeout_seconds 2 on a real process: failed with a timeout reason in about
 * 2 s, and the agent and its child are gone (the worker killed the group). */
static void test_command_phase_times_out_and_leaves_no_orphans(void **state)
{
    (void)state;
    long long t0 = teststack_now_ms();
    char *id = teststack_execute(stack, "bounded", "{\"task\":\"SLEEP 100\"}");
    assert_non_null(id);
    json_t *final = teststack_wait_terminal(stack, "bounded", id, 20000);
    long long took = teststack_now_ms() - t0;
    printf("measure: command_timeout_2s_failed_after_ms=%lld\n", took);
    assert_non_null(final);
    assert_string_equal(json_str(final, "status"), "failed");
    assert_non_null(strstr(json_str(final, "error"), "timed out"));
    assert_true(took >= 1900);
    assert_true(took < 6000);
    pid_t agent = first_agent_pid(id), child = read_pid_file(id, "child.pid");
    assert_true(agent > 0);
    assert_true(child > 0);
    WAIT_FOR(execution_process_gone(agent) && execution_process_gone(child), 2000);
    assert_true(execution_process_gone(agent));
    assert_true(execution_process_gone(child));
    assert_int_equal(agent_runs(id), 1);
    json_decref(final);
    free(id);
}

/* The attempts array of phase_id in GET /executions/{id} (issue 4), or NULL
 * when the endpoint does not exist yet. */
static json_t *api_attempts(const char *execution_id, const char *phase_id, long *status)
{
    http_response_t r;
    http_get(&r, "%s/executions/%s", teststack_url(stack), execution_id);
    *status = r.status;
    json_t *found = NULL;
    size_t i;
    json_t *phase;
    json_array_foreach(json_object_get(r.json, "phases"), i, phase)
        if (!strcmp(json_str(phase, "phase_id"), phase_id))
            found = json_incref(json_object_get(phase, "attempts"));
    http_response_clear(&r);
    return found;
}

/* retries 2 re-runs a failing agent with back-off: it fails twice, succeeds on
 * the third run, and the three attempts are on record with why each ended. */
static void test_retries_rerun_a_failing_agent(void **state)
{
    (void)state;
    json_t *wf = teststack_create_workflow(
        stack, "{\"id\":\"flaky\",\"name\":\"Flaky\",\"phases\":[{\"phase_id\":\"work\","
               "\"name\":\"Work\",\"order\":1,\"retries\":2,\"retry_backoff_seconds\":1,"
               "\"prompt_template\":\"FAIL_TIMES 2\"}]}");
    assert_non_null(wf);
    json_decref(wf);
    char *id = teststack_execute(stack, "flaky", "{}");
    assert_non_null(id);
    json_t *final = teststack_wait_terminal(stack, "flaky", id, 30000);
    assert_non_null(final);
    if (strcmp(json_str(final, "status"), "completed") != 0)
        fprintf(stderr, "flaky execution ended %s: %s\n", json_str(final, "status"),
                json_str(final, "error"));
    assert_string_equal(json_str(final, "status"), "completed");
    assert_int_equal(agent_runs(id), 3);
    assert_int_equal(attempt_count(id, "work"), 3);
    char *s1 = attempt_field("status", id, "work", "1");
    char *s2 = attempt_field("status", id, "work", "2");
    char *s3 = attempt_field("status", id, "work", "3");
    assert_string_equal(s1, "failed");
    assert_string_equal(s2, "failed");
    assert_string_equal(s3, "completed");
    char *output = execution_db_phase_output(stack, id, "work");
    assert_non_null(output);
    assert_non_null(strstr(output, "succeeded on run 3"));
    assert_non_null(strstr(output, "attempt 3"));

    /* Back-off 1 s, doubling: the second run waits about 1 s, the third 2 s. */
    char *end1 = attempt_field("completed_at", id, "work", "1");
    char *start2 = attempt_field("started_at", id, "work", "2");
    char *end2 = attempt_field("completed_at", id, "work", "2");
    char *start3 = attempt_field("started_at", id, "work", "3");
    assert_true(end1 && start2 && end2 && start3);
    long long gap1 = (atoll(start2) - atoll(end1)) / 1000;
    long long gap2 = (atoll(start3) - atoll(end2)) / 1000;
    printf("measure: retry_backoff_gaps_ms=%lld,%lld (backoff 1 s doubling)\n", gap1, gap2);
    assert_true(gap1 >= 900);
    assert_true(gap2 >= 1800);

    long api_status = 0;
    json_t *attempts = api_attempts(id, "work", &api_status);
    if (api_status == 200) {
        assert_non_null(attempts);
        assert_int_equal(json_array_size(attempts), 3);
        assert_string_equal(json_str(json_array_get(attempts, 0), "status"), "failed");
        assert_string_equal(json_str(json_array_get(attempts, 2), "status"), "completed");
    } else {
        printf("note: GET /executions/{id} answered %ld: attempts checked in the DB only\n",
               api_status);
    }
    json_decref(attempts);
    free(end1);
    free(start2);
    free(end2);
    free(start3);
    free(output);
    free(s1);
    free(s2);
    free(s3);
    json_decref(final);
    free(id);
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    const struct CMUnitTest mock_tests[] = {
        cmocka_unit_test(test_killed_worker_phase_reruns_elsewhere),
        cmocka_unit_test(test_killed_worker_prefetched_phases_rerun),
        cmocka_unit_test(test_mock_phase_times_out),
        cmocka_unit_test(test_sigterm_worker_finishes_its_phase_then_exits),
        cmocka_unit_test(test_work_submitted_during_a_drain_runs_elsewhere),
    };
    const struct CMUnitTest command_tests[] = {
        cmocka_unit_test(test_frozen_worker_late_result_is_fenced),
        cmocka_unit_test(test_max_attempts_one_fails_without_rerun),
        cmocka_unit_test(test_command_phase_times_out_and_leaves_no_orphans),
        cmocka_unit_test(test_retries_rerun_a_failing_agent),
    };
    int failed = cmocka_run_group_tests_name("reliability_workers_mock", mock_tests, setup_mock,
                                             teardown_stack);
    failed += cmocka_run_group_tests_name("reliability_workers_command", command_tests,
                                          setup_command, teardown_command);
    return failed;
}
