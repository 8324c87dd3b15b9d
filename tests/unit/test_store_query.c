/* broker/store_query.c: id prefixes and the pages of execution.list, checked
 * against the obvious (slow) query. */
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
#include <libpq-fe.h>
#include <sqlite3.h>

static void test_prefix_match(void **state)
{
    fixture_t *f = *state;
    const char *ids[] = {"exec-aaaa00000001", "exec-aaaa00000002", "exec-aaab00000001",
                         "exec-b00000000001", "exec-aaaa00000003"};
    for (int i = 0; i < 5; i++) {
        broker_execution_t *exec = make_exec(ids[i], "wf-1", 1, i + 1);
        assert_int_equal(broker_store_execution_insert(f->store, exec), 0);
        broker_execution_destroy(&exec);
    }
    assert_int_equal(broker_store_commit(f->store), 0);
    char found[4][BROKER_EXEC_ID_SIZE];
    size_t n;
    assert_int_equal(broker_store_execution_match(f->store, "exec-b", found, 4, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(found[0], "exec-b00000000001");
    assert_int_equal(broker_store_execution_match(f->store, "exec-aaab", found, 4, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(found[0], "exec-aaab00000001");
    assert_int_equal(broker_store_execution_match(f->store, "exec-aaaa", found, 4, &n), 0);
    assert_int_equal(n, 3);
    assert_string_equal(found[0], "exec-aaaa00000001");
    assert_string_equal(found[2], "exec-aaaa00000003");
    assert_int_equal(broker_store_execution_match(f->store, "exec-aaa", found, 2, &n), 0);
    assert_int_equal(n, 2); /* capped: the caller asks for one more than it shows */
    assert_int_equal(broker_store_execution_match(f->store, "exec-aaaa00000002", found, 4, &n),
                     0);
    assert_int_equal(n, 1);
    assert_int_equal(broker_store_execution_match(f->store, "exec-c", found, 4, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(broker_store_execution_match(f->store, "exec-aaaa00000002x", found, 4, &n),
                     0);
    assert_int_equal(n, 0);
    assert_int_equal(broker_store_execution_match(f->store, "%", found, 4, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(broker_store_execution_match(f->store, "", found, 4, &n), 0);
    assert_int_equal(n, 4);
    /* The lookup walks the unique index on id, not the table (SQLite's plan;
     * PostgreSQL's planner decides its own). */
    if (broker_store_is_postgresql(f->path))
        return;
    sqlite3 *db;
    assert_int_equal(sqlite3_open_v2(f->path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *s;
    assert_int_equal(sqlite3_prepare_v2(db, "EXPLAIN QUERY PLAN SELECT id FROM executions "
                                            "WHERE id >= ?1 AND id < ?2 ORDER BY id LIMIT ?3",
                                        -1, &s, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    const char *plan = (const char *)sqlite3_column_text(s, 3);
    assert_non_null(strstr(plan, "USING COVERING INDEX"));
    sqlite3_finalize(s);
    sqlite3_close(db);
}

/* Ids of a page by the obvious (slow) query, to check the seeking one. */
static json_t *naive_page_pg(const fixture_t *f, const char *workflow_id, const char *status,
                             int64_t page, int64_t size)
{
    PGconn *conn = store_fixture_peer(f);
    char limit[24], offset[24];
    snprintf(limit, sizeof limit, "%lld", (long long)size);
    snprintf(offset, sizeof offset, "%lld", (long long)((page - 1) * size));
    const char *values[] = {workflow_id, status, limit, offset};
    PGresult *r = PQexecParams(conn,
                               "SELECT id FROM executions WHERE ($1::text IS NULL OR "
                               "workflow_id = $1) AND ($2::text IS NULL OR status = $2) "
                               "ORDER BY num DESC LIMIT $3 OFFSET $4",
                               4, NULL, values, NULL, NULL, 0);
    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    json_t *ids = json_array();
    for (int i = 0; i < PQntuples(r); i++)
        json_array_append_new(ids, json_string(PQgetvalue(r, i, 0)));
    PQclear(r);
    return ids;
}

static json_t *naive_page(const fixture_t *f, const char *workflow_id, const char *status,
                          int64_t page, int64_t size)
{
    if (broker_store_is_postgresql(f->path))
        return naive_page_pg(f, workflow_id, status, page, size);
    sqlite3 *db;
    assert_int_equal(sqlite3_open_v2(f->path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *s;
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT id FROM executions WHERE (?1 IS NULL OR "
                                            "workflow_id = ?1) AND (?2 IS NULL OR status = ?2) "
                                            "ORDER BY num DESC LIMIT ?3 OFFSET ?4",
                                        -1, &s, NULL),
                     SQLITE_OK);
    if (workflow_id)
        sqlite3_bind_text(s, 1, workflow_id, -1, SQLITE_STATIC);
    if (status)
        sqlite3_bind_text(s, 2, status, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 3, size);
    sqlite3_bind_int64(s, 4, (page - 1) * size);
    json_t *ids = json_array();
    while (sqlite3_step(s) == SQLITE_ROW)
        json_array_append_new(ids, json_string((const char *)sqlite3_column_text(s, 0)));
    sqlite3_finalize(s);
    sqlite3_close(db);
    return ids;
}

/* Pages found through the per-block counts are exactly the pages an OFFSET query
 * gives, for every filter, across block boundaries and after status changes;
 * totals come from the counts. */
static void test_list_pages(void **state)
{
    fixture_t *f = *state;
    add_workflow(f, "wf-a", 1, 1);
    add_workflow(f, "wf-b", 1, 2);
    const int n = 2600;
    for (int i = 0; i < n; i++) {
        char id[32];
        snprintf(id, sizeof id, "exec-%012x", i * 7919 % 100000);
        broker_execution_t *exec = make_exec(id, i % 3 == 0 ? "wf-b" : "wf-a", 1, i + 1);
        assert_int_equal(broker_store_execution_insert(f->store, exec), 0);
        exec->status = i % 5 == 0 ? BROKER_EXEC_FAILED : BROKER_EXEC_COMPLETED;
        if (i % 11 == 0)
            exec->status = BROKER_EXEC_RUNNING;
        assert_int_equal(broker_store_execution_save(f->store, exec), 0);
        broker_execution_destroy(&exec);
    }
    assert_int_equal(broker_store_commit(f->store), 0);
    const char *workflows[] = {NULL, "wf-a", "wf-b", "wf-none"};
    const int statuses[] = {-1, BROKER_EXEC_COMPLETED, BROKER_EXEC_FAILED, BROKER_EXEC_RUNNING,
                            BROKER_EXEC_PAUSED};
    const int64_t sizes[] = {1, 7, 50, 100};
    for (size_t w = 0; w < 4; w++)
        for (size_t st = 0; st < 5; st++)
            for (size_t z = 0; z < 4; z++) {
                const char *status_name =
                    statuses[st] >= 0 ? broker_exec_status_name(statuses[st]) : NULL;
                int64_t pages[] = {1, 2, 3, 1024 / sizes[z], 1024 / sizes[z] + 1,
                                   2048 / sizes[z] + 1, 2500 / sizes[z], 100000};
                for (size_t p = 0; p < 8; p++) {
                    json_t *items;
                    int64_t total;
                    assert_int_equal(broker_store_execution_list(f->store, workflows[w],
                                                                 statuses[st], pages[p],
                                                                 sizes[z], &items, &total),
                                     0);
                    json_t *expected = naive_page(f, workflows[w], status_name, pages[p],
                                                  sizes[z]);
                    if (json_array_size(items) != json_array_size(expected))
                        fail_msg("wf=%s status=%s page=%lld size=%lld: %zu items, expected %zu",
                                 workflows[w] ? workflows[w] : "*",
                                 status_name ? status_name : "*", (long long)pages[p],
                                 (long long)sizes[z], json_array_size(items),
                                 json_array_size(expected));
                    for (size_t i = 0; i < json_array_size(items); i++)
                        assert_string_equal(
                            json_string_value(
                                json_object_get(json_array_get(items, i), "execution_id")),
                            json_string_value(json_array_get(expected, i)));
                    json_decref(items);
                    json_decref(expected);
                    assert_int_equal(total, broker_store_execution_count(f->store, workflows[w],
                                                                         statuses[st]));
                }
            }
    json_t *items;
    int64_t total;
    assert_int_equal(broker_store_execution_list(f->store, NULL, -1, 1, 1, &items, &total), 0);
    assert_int_equal(total, n);
    json_t *first = json_array_get(items, 0);
    const char *keys[] = {"execution_id", "workflow_id", "workflow_name", "status", "started_at",
                          "completed_at", "completed_phases", "total_phases",
                          "duration_seconds", "total_input_tokens", "total_output_tokens",
                          "total_cost_usd", "error", "total_cache_creation_tokens",
                          "total_cache_read_tokens"};
    assert_int_equal(json_object_size(first), 15);
    for (size_t i = 0; i < 15; i++)
        assert_non_null(json_object_get(first, keys[i]));
    assert_string_equal(json_string_value(json_object_get(first, "workflow_name")), "demo");
    assert_true(json_is_null(json_object_get(first, "duration_seconds")));
    json_decref(items);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        store_test(test_prefix_match),
        store_test(test_list_pages),
    };
    return cmocka_run_group_tests_name("store_query", tests, NULL, NULL);
}
