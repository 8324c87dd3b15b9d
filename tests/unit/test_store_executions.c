/* broker/store_executions.c: the narrower saves of a running execution, the
 * status counts that follow every insert and change, and usage per attempt. */
#include "tests/support/pg_cluster.h"
#include "tests/support/store_fixture.h"

#include "broker/usage.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

/* The narrower saves write what they say and leave the counts right. */
static void test_progress_and_output_saves(void **state)
{
    fixture_t *f = *state;
    add_workflow(f, "wf-1", 2, 10);
    broker_execution_t *exec = make_exec("exec-000000000001", "wf-1", 2, 100);
    assert_int_equal(broker_store_execution_insert(f->store, exec), 0);
    exec->status = BROKER_EXEC_RUNNING;
    exec->started_at = 200;
    assert_int_equal(broker_store_execution_save(f->store, exec), 0);
    broker_phase_t *phase = &exec->phases[0];
    phase->status = BROKER_PHASE_COMPLETED;
    phase->attempt = 1;
    phase->completed_at = 300;
    phase->output = strdup("the output");
    assert_int_equal(broker_store_phase_save_with_output(f->store, exec, phase), 0);
    exec->completed_phases = 1;
    exec->current = 1;
    exec->phases[1].status = BROKER_PHASE_QUEUED;
    assert_int_equal(broker_store_execution_save_progress(f->store, exec), 0);
    assert_int_equal(broker_store_commit(f->store), 0);
    assert_int_equal(peek_int(f, "SELECT completed_phases FROM executions"), 1);
    assert_int_equal(peek_int(f, "SELECT current_phase = 'p2' FROM executions"), 1);
    assert_int_equal(peek_int(f, "SELECT status = 'running' FROM executions"), 1);
    assert_int_equal(peek_int(f, "SELECT output = 'the output' AND status = 'completed' AND "
                                 "attempts = 1 AND completed_at = 300 FROM phases WHERE "
                                 "phase_id = 'p1'"),
                     1);
    assert_int_equal(broker_store_execution_count(f->store, "wf-1", BROKER_EXEC_RUNNING), 1);
    assert_int_equal(broker_store_execution_count(f->store, NULL, BROKER_EXEC_PENDING), 0);
    broker_execution_destroy(&exec);
}

/* New ids from the store: all different, none already stored (on PostgreSQL
 * checked 64 at a time, their inserts unanswered), keys in the order given; an
 * id given twice is still refused, and an id of one's own still answered. */
static void test_new_ids(void **state)
{
    fixture_t *f = *state;
    add_workflow(f, "wf-1", 1, 1);
    broker_execution_t *own = make_exec("exec-0000000000ff", "wf-1", 1, 1);
    assert_int_equal(broker_store_execution_insert(f->store, own), 0);
    enum { N = 150 }; /* more than one batch of the PostgreSQL store's */
    char ids[N][BROKER_EXEC_ID_SIZE];
    for (int i = 0; i < N; i++) {
        assert_int_equal(broker_store_execution_id(f->store, ids[i]), 0);
        assert_int_equal(strncmp(ids[i], "exec-", 5), 0);
        assert_int_equal(strlen(ids[i]), 5 + BROKER_EXEC_ID_HEX);
        broker_execution_t *exec = make_exec(ids[i], "wf-1", 1, i + 2);
        assert_int_equal(broker_store_execution_insert(f->store, exec), 0);
        broker_execution_destroy(&exec);
    }
    broker_execution_t *again = make_exec(ids[N - 1], "wf-1", 1, 1);
    assert_int_equal(broker_store_execution_insert(f->store, again), 1);
    assert_int_equal(broker_store_execution_insert(f->store, own), 1);
    assert_int_equal(broker_store_commit(f->store), 0);
    assert_int_equal(peek_int(f, "SELECT count(DISTINCT id) FROM executions"), N + 1);
    assert_int_equal(peek_int(f, "SELECT count(*) FROM phases"), N + 1);
    /* the keys follow the order the ids were given (the listing's order) */
    assert_int_equal(peek_int(f, "SELECT count(*) FROM executions a JOIN executions b"
                                 " ON a.created_at < b.created_at AND a.num > b.num"),
                     0);
    broker_execution_destroy(&again);
    broker_execution_destroy(&own);
}

/* execution_counts follows every insert and status change. */
static void test_counts(void **state)
{
    fixture_t *f = *state;
    for (int i = 0; i < 6; i++) {
        char id[32];
        snprintf(id, sizeof id, "exec-%012d", i);
        broker_execution_t *exec = make_exec(id, i < 4 ? "wf-a" : "wf-b", 1, i + 1);
        assert_int_equal(broker_store_execution_insert(f->store, exec), 0);
        if (i % 2 == 0) {
            exec->status = BROKER_EXEC_RUNNING;
            assert_int_equal(broker_store_execution_save(f->store, exec), 0);
            exec->status = BROKER_EXEC_COMPLETED;
            assert_int_equal(broker_store_execution_save(f->store, exec), 0);
            assert_int_equal(broker_store_execution_save(f->store, exec), 0); /* no change */
        }
        broker_execution_destroy(&exec);
    }
    assert_int_equal(broker_store_execution_count(f->store, NULL, -1), 6);
    assert_int_equal(broker_store_execution_count(f->store, NULL, BROKER_EXEC_COMPLETED), 3);
    assert_int_equal(broker_store_execution_count(f->store, NULL, BROKER_EXEC_PENDING), 3);
    assert_int_equal(broker_store_execution_count(f->store, NULL, BROKER_EXEC_RUNNING), 0);
    assert_int_equal(broker_store_execution_count(f->store, "wf-a", -1), 4);
    assert_int_equal(broker_store_execution_count(f->store, "wf-a", BROKER_EXEC_COMPLETED), 2);
    assert_int_equal(broker_store_execution_count(f->store, "wf-b", BROKER_EXEC_PENDING), 1);
    assert_int_equal(broker_store_execution_count(f->store, "wf-none", -1), 0);
}

/* The counts written from the tally, over many transactions of inserts and
 * status changes across workflows and page blocks, equal what the rows say. */
static void test_counts_match_rows(void **state)
{
    fixture_t *f = *state;
    const char *workflows[] = {"wf-a", "wf-b", "wf-c"};
    const broker_exec_status_t path[] = {BROKER_EXEC_RUNNING, BROKER_EXEC_PAUSED,
                                         BROKER_EXEC_RUNNING, BROKER_EXEC_COMPLETED};
    uint32_t seed = 7;
    /* Rows over three blocks of 1,024 (execution_pages' buckets); on PostgreSQL
     * over two, which still crosses a boundary: each insert there waits one round
     * trip for its key, and 2,500 of them took half a minute under load. */
    const int n = pg_cluster_wanted() ? 1300 : 2500;
    for (int i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        char id[32];
        snprintf(id, sizeof id, "exec-%012x", (unsigned)i);
        broker_execution_t *exec = make_exec(id, workflows[seed % 3], 1, i + 1);
        assert_int_equal(broker_store_execution_insert(f->store, exec), 0);
        /* Half of them say what their row holds, as the engine's do (the store
         * then need not read it); the others leave the store to read it. */
        bool vouch = (seed >> 16) & 1;
        if (vouch)
            exec->stored_status = (int)exec->status;
        for (unsigned step = 0; step < (seed >> 8) % 5; step++) {
            exec->status = path[step];
            assert_int_equal(broker_store_execution_save(f->store, exec), 0);
            if (vouch)
                exec->stored_status = (int)exec->status;
        }
        broker_execution_destroy(&exec);
        if ((seed >> 12) % 7 == 0)
            assert_int_equal(broker_store_commit(f->store), 0);
    }
    assert_int_equal(broker_store_commit(f->store), 0);
    assert_int_equal(peek_int(f, "SELECT count(*) FROM ("
                                 " SELECT workflow_id, status, count(*) AS n FROM executions"
                                 "  GROUP BY 1, 2"
                                 " EXCEPT SELECT workflow_id, status, n FROM execution_counts"
                                 "  WHERE n != 0) AS d"),
                     0);
    assert_int_equal(peek_int(f, "SELECT count(*) FROM execution_counts WHERE n != 0"),
                     peek_int(f, "SELECT count(DISTINCT workflow_id || '/' || status)"
                                 " FROM executions"));
    const char *truth = "SELECT workflow_id, status, num >> 10, count(*) FROM executions"
                        " GROUP BY 1, 2, 3"
                        " UNION ALL SELECT workflow_id, '', num >> 10, count(*) FROM executions"
                        " GROUP BY 1, 3"
                        " UNION ALL SELECT '', status, num >> 10, count(*) FROM executions"
                        " GROUP BY 2, 3"
                        " UNION ALL SELECT '', '', num >> 10, count(*) FROM executions"
                        " GROUP BY 3";
    char sql[1024];
    snprintf(sql, sizeof sql,
             "SELECT (SELECT count(*) FROM (SELECT * FROM (%s) AS t EXCEPT"
             " SELECT workflow_id, status, bucket, n FROM execution_pages) AS a)"
             " + (SELECT count(*) FROM (SELECT workflow_id, status, bucket, n"
             " FROM execution_pages EXCEPT SELECT * FROM (%s) AS t) AS b)",
             truth, truth);
    assert_int_equal(peek_int(f, sql), 0);
}

/* Usage is recorded once per attempt (a repeated RESULT adds nothing) and sums
 * into the phase and the execution; the detail shows attempts, tools, usage and
 * a preview cut by characters. */
static void test_usage_and_detail(void **state)
{
    fixture_t *f = *state;
    add_workflow(f, "wf-1", 2, 1);
    broker_execution_t *exec = make_exec("exec-0000000000aa", "wf-1", 2, 1);
    assert_int_equal(broker_store_execution_insert(f->store, exec), 0);
    exec->started_at = 1000000;
    exec->completed_at = 3500000;
    exec->status = BROKER_EXEC_RUNNING;
    assert_int_equal(broker_store_execution_save(f->store, exec), 0);
    broker_store_attempt_insert(f->store, exec, "p1", 1, "w1", 1000000);
    broker_store_attempt_finish(f->store, exec, "p1", 1, BROKER_ATTEMPT_TIMEOUT, 2000000,
                                NULL, "timed out after 2 s");
    broker_store_attempt_insert(f->store, exec, "p1", 2, "w2", 2000000);
    int64_t zero = 0;
    broker_store_attempt_finish(f->store, exec, "p1", 2, BROKER_ATTEMPT_COMPLETED, 3000000,
                                &zero, NULL);
    broker_usage_t u;
    json_t *report = json_pack("{s:i, s:i, s:i, s:i, s:f, s:i, s:i, s:s, s:[{s:s, s:b}, s]}",
                               "input_tokens", 100, "output_tokens", 20,
                               "cache_creation_input_tokens", 5, "cache_read_tokens", 7,
                               "total_cost_usd", 0.25, "num_turns", 3, "duration_ms", 900,
                               "model", "claude-x", "tool_calls", "name", "Read", "success", 1,
                               "Bash");
    assert_true(broker_usage_parse(report, &u));
    assert_int_equal(u.tool_call_count, 2);
    assert_int_equal(broker_store_usage_record(f->store, exec->id, "p1", 2, &u), 1);
    assert_int_equal(broker_store_usage_record(f->store, exec->id, "p1", 2, &u), 0);
    assert_int_equal(broker_store_usage_record(f->store, exec->id, "p1", 1, &u), 1);
    assert_int_equal(broker_store_usage_record(f->store, exec->id, "p1", 9, &u), 0);
    broker_usage_clear(&u);
    json_decref(report);
    /* a 2500-character output of 2-byte characters */
    broker_phase_t *p1 = &exec->phases[0];
    p1->output = malloc(5001);
    for (int i = 0; i < 2500; i++)
        memcpy(p1->output + 2 * i, "\xc3\xa9", 2);
    p1->output[5000] = '\0';
    p1->status = BROKER_PHASE_COMPLETED;
    p1->attempt = 2;
    p1->started_at = 1000000;
    p1->completed_at = 3000000;
    assert_int_equal(broker_store_phase_save(f->store, exec, p1), 0);
    assert_int_equal(broker_store_phase_set_output(f->store, exec, p1), 0);
    assert_int_equal(broker_store_message_insert(f->store, exec->id, "user", "be brief", 5), 1);
    assert_int_equal(broker_store_messages_bind(f->store, exec->id, "p2"), 0);
    assert_int_equal(broker_store_message_insert(f->store, exec->id, "system", "later", 6), 2);
    assert_int_equal(broker_store_commit(f->store), 0);

    json_t *d = NULL;
    assert_int_equal(broker_store_execution_detail(f->store, exec->id, &d), 1);
    assert_int_equal(json_integer_value(json_object_get(d, "total_input_tokens")), 200);
    assert_int_equal(json_integer_value(json_object_get(d, "total_output_tokens")), 40);
    assert_int_equal(json_integer_value(json_object_get(d, "total_cache_creation_tokens")), 10);
    assert_true(json_real_value(json_object_get(d, "total_cost_usd")) == 0.5);
    assert_true(json_real_value(json_object_get(d, "duration_seconds")) == 2.5);
    assert_string_equal(json_string_value(json_object_get(d, "task")), "the task");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(d, "inputs"), "topic")), "cats");
    json_t *messages = json_object_get(d, "operator_messages");
    assert_int_equal(json_array_size(messages), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(messages, 0),
                                                          "phase_id")),
                        "p2");
    assert_true(json_is_null(json_object_get(json_array_get(messages, 1), "phase_id")));
    json_t *phases = json_object_get(d, "phases");
    assert_int_equal(json_array_size(phases), 2);
    json_t *ph = json_array_get(phases, 0);
    assert_string_equal(json_string_value(json_object_get(ph, "phase_id")), "p1");
    assert_int_equal(json_integer_value(json_object_get(ph, "order")), 10);
    assert_string_equal(json_string_value(json_object_get(ph, "model")), "claude-x");
    assert_int_equal(json_integer_value(json_object_get(ph, "total_tokens")), 264);
    assert_int_equal(json_integer_value(json_object_get(ph, "num_turns")), 6);
    assert_int_equal(json_integer_value(json_object_get(ph, "tool_call_count")), 4);
    assert_int_equal(json_array_size(json_object_get(ph, "tool_calls")), 4);
    assert_true(json_real_value(json_object_get(ph, "duration_seconds")) == 2.0);
    assert_int_equal(strlen(json_string_value(json_object_get(ph, "output_preview"))), 4000);
    json_t *attempts = json_object_get(ph, "attempts");
    assert_int_equal(json_array_size(attempts), 2);
    json_t *a1 = json_array_get(attempts, 0);
    assert_string_equal(json_string_value(json_object_get(a1, "status")), "timeout");
    assert_string_equal(json_string_value(json_object_get(a1, "worker")), "w1");
    assert_string_equal(json_string_value(json_object_get(a1, "error")), "timed out after 2 s");
    assert_true(json_is_null(json_object_get(a1, "exit_code")));
    json_t *a2 = json_array_get(attempts, 1);
    assert_int_equal(json_integer_value(json_object_get(a2, "exit_code")), 0);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(a2, "usage"),
                                                        "cache_read_tokens")),
                     7);
    json_t *p2 = json_array_get(phases, 1);
    assert_int_equal(json_array_size(json_object_get(p2, "attempts")), 0);
    assert_true(json_is_null(json_object_get(p2, "output_preview")));
    assert_true(json_is_null(json_object_get(p2, "duration_seconds")));
    json_decref(d);
    assert_int_equal(broker_store_execution_detail(f->store, "exec-nope", &d), 0);

    char *output = NULL;
    assert_int_equal(broker_store_phase_output(f->store, exec->id, "p1", &output), 1);
    assert_int_equal(strlen(output), 5000);
    free(output);
    assert_int_equal(broker_store_phase_output(f->store, exec->id, "p2", &output), 1);
    assert_string_equal(output, "");
    free(output);
    assert_int_equal(broker_store_phase_output(f->store, exec->id, "p9", &output), 0);
    broker_exec_status_t st;
    assert_int_equal(broker_store_execution_state(f->store, exec->id, &st), 1);
    assert_int_equal(st, BROKER_EXEC_RUNNING);
    assert_int_equal(broker_store_execution_state(f->store, "exec-x", &st), 0);
    char *name = NULL;
    assert_int_equal(broker_store_workflow_name(f->store, "wf-1", &name), 1);
    assert_string_equal(name, "demo");
    free(name);
    assert_int_equal(broker_store_workflow_name(f->store, "wf-x", &name), 0);

    json_t *loaded = broker_store_messages_load(f->store, exec->id);
    assert_int_equal(json_array_size(loaded), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(loaded, 1), "role")),
                        "system");
    json_decref(loaded);
    broker_execution_destroy(&exec);
}

/* Usage from a peer is checked, never trusted. */
static void test_usage_parse_rejects(void **state)
{
    (void)state;
    broker_usage_t u;
    assert_false(broker_usage_parse(NULL, &u));
    assert_int_equal(json_array_size(u.tool_calls), 0);
    broker_usage_clear(&u);
    json_t *bad = json_pack("{s:i, s:s, s:f, s:i, s:[i, {s:i}], s:I}", "input_tokens", -5,
                            "output_tokens", "12", "cost_usd", -1.0, "num_turns", 2,
                            "tool_calls", 3, "x", 1, "duration_ms", (json_int_t)INT64_MAX);
    assert_true(broker_usage_parse(bad, &u));
    assert_int_equal(u.input_tokens, 0);
    assert_int_equal(u.output_tokens, 0);
    assert_true(u.cost_usd == 0);
    assert_int_equal(u.num_turns, 2);
    assert_int_equal(u.tool_call_count, 0);
    assert_true(u.duration_ms < INT64_MAX / 1000);
    assert_null(u.model);
    broker_usage_clear(&u);
    json_decref(bad);
    json_t *many = json_pack("{s:o}", "tool_calls", json_array());
    for (int i = 0; i < 300; i++)
        json_array_append_new(json_object_get(many, "tool_calls"), json_string("T"));
    assert_true(broker_usage_parse(many, &u));
    assert_int_equal(u.tool_call_count, 300);
    assert_int_equal(json_array_size(u.tool_calls), BROKER_USAGE_TOOLS_MAX);
    broker_usage_clear(&u);
    json_decref(many);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        store_test(test_progress_and_output_saves),
        store_test(test_counts_match_rows),
        store_test(test_counts),
        store_test(test_new_ids),
        store_test(test_usage_and_detail),
        cmocka_unit_test(test_usage_parse_rejects),
    };
    return cmocka_run_group_tests_name("store_executions", tests, NULL, NULL);
}
