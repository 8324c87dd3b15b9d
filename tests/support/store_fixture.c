/* store_fixture: a broker store over a fresh SQLite file in a temporary directory,
 * and the workflows and executions the tests of broker/store_*.c put in it. Apart so
 * that the test files of the store's parts share one definition of each. */
#include "tests/support/store_fixture.h"
#include "tests/support/pg_cluster.h"

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

/* PostgreSQL's second connection (store_fixture_peer) and its database. */
static PGconn *peer;
static char peer_uri[160];

int store_fixture_setup(void **state)
{
    fixture_t *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/syn-test-store-XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    snprintf(f->path, sizeof f->path, "%s/syn.db", f->dir);
    char err[256];
    if (pg_cluster_wanted() && pg_cluster_new_database(f->path, sizeof f->path, err,
                                                       sizeof err) < 0) {
        fprintf(stderr, "postgresql: %s\n", err);
        return -1;
    }
    f->store = broker_store_open(f->path, err, sizeof err);
    if (!f->store) {
        fprintf(stderr, "open: %s\n", err);
        return -1;
    }
    *state = f;
    return 0;
}

int store_fixture_teardown(void **state)
{
    fixture_t *f = *state;
    broker_store_destroy(&f->store);
    if (peer) {
        PQfinish(peer);
        peer = NULL;
    }
    const char *suffixes[] = {"", "-wal", "-shm"};
    for (int i = 0; i < 3; i++) {
        char p[200];
        snprintf(p, sizeof p, "%s%s", f->path, suffixes[i]);
        unlink(p);
    }
    rmdir(f->dir);
    free(f);
    return 0;
}

void reopen(fixture_t *f)
{
    broker_store_destroy(&f->store);
    assert_null(f->store);
    broker_store_destroy(&f->store); /* safe twice */
    char err[256];
    f->store = broker_store_open(f->path, err, sizeof err);
    assert_non_null(f->store);
}

/* PostgreSQL's second connection: one per database, kept until the test's
 * teardown (a connection per peek is a new server process each time, which
 * under load made the paging test take minutes). Outside a transaction it sees
 * what was committed, as a fresh one would. */
PGconn *store_fixture_peer(const fixture_t *f)
{
    if (peer && strcmp(peer_uri, f->path) != 0) {
        PQfinish(peer);
        peer = NULL;
    }
    if (!peer) {
        peer = PQconnectdb(f->path);
        assert_int_equal(PQstatus(peer), CONNECTION_OK);
        snprintf(peer_uri, sizeof peer_uri, "%s", f->path);
    }
    return peer;
}

/* PostgreSQL's peek_int. */
static int64_t peek_int_pg(const fixture_t *f, const char *sql)
{
    PGresult *r = PQexec(store_fixture_peer(f), sql);
    int64_t v = -1;
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0)
    {
        const char *text = PQgetisnull(r, 0, 0) ? "0" : PQgetvalue(r, 0, 0);
        /* a truth value reads as SQLite's 1 or 0 */
        v = strcmp(text, "t") == 0 ? 1 : strcmp(text, "f") == 0 ? 0 : strtoll(text, NULL, 10);
    }
    else if (PQresultStatus(r) != PGRES_TUPLES_OK)
        fail_msg("peek %s: %s", sql, PQresultErrorMessage(r));
    PQclear(r);
    return v;
}

/* A second connection sees only what was committed. */
int64_t peek_int(const fixture_t *f, const char *sql)
{
    if (broker_store_is_postgresql(f->path))
        return peek_int_pg(f, sql);
    sqlite3 *db;
    assert_int_equal(sqlite3_open_v2(f->path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *s;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK);
    int64_t v = -1;
    if (sqlite3_step(s) == SQLITE_ROW)
        v = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    sqlite3_close(db);
    return v;
}

json_t *template_of(int nphases)
{
    json_t *phases = json_array();
    for (int i = nphases; i >= 1; i--) { /* given out of order on purpose */
        char id[16], prompt[64];
        snprintf(id, sizeof id, "p%d", i);
        snprintf(prompt, sizeof prompt, "phase %d of {{workflow_id}}", i);
        json_array_append_new(phases, json_pack("{s:s, s:s, s:i, s:s, s:n, s:i, s:i}", "phase_id",
                                                id, "name", id, "order", i * 10,
                                                "prompt_template", prompt, "model",
                                                "timeout_seconds", 60, "max_attempts", 2));
    }
    return json_pack("{s:s, s:s, s:o, s:o}", "id", "wf-1", "name", "demo", "input_declarations",
                     json_array(), "phases", phases);
}

void add_workflow(fixture_t *f, const char *id, int nphases, int64_t created_at)
{
    json_t *tpl = template_of(nphases);
    json_object_set_new(tpl, "id", json_string(id));
    broker_workflow_row_t row = {
        .id = id, .name = "demo", .description = NULL, .workflow_type = "custom",
        .classification = "standard", .phase_count = nphases, .template_json = tpl,
        .created_at = created_at,
    };
    assert_int_equal(broker_store_workflow_insert(f->store, &row), 0);
    json_decref(tpl);
}

broker_execution_t *make_exec(const char *id, const char *workflow_id, int nphases,
                                     int64_t created_at)
{
    json_t *tpl = template_of(nphases);
    json_t *inputs = json_pack("{s:s}", "topic", "cats");
    json_t *repos = json_pack("[s]", "r1");
    char err[256];
    broker_execution_t *exec = broker_execution_new(id, workflow_id, 1, tpl, inputs, "the task",
                                                    repos, created_at, err, sizeof err);
    json_decref(tpl);
    json_decref(inputs);
    json_decref(repos);
    assert_non_null(exec);
    return exec;
}
