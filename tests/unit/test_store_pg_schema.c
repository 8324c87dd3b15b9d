/* broker/store_pg_sql.c's schema by version on PostgreSQL: a database at every
 * earlier version (9, the base, is the only one before today's) is upgraded at
 * open with its rows kept; a second open changes nothing; versions it cannot
 * upgrade (before the base, newer than this broker) are refused clearly.
 * (SQLite's versions 1-10: test_store_schema.) */
#include "tests/support/pg_cluster.h"

#include "broker/store.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <libpq-fe.h>

static char uri[200];
static PGconn *conn;

static void sql(const char *text)
{
    PGresult *r = PQexec(conn, text);
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
        fail_msg("%s: %s", text, PQresultErrorMessage(r));
    PQclear(r);
}

static long long value(const char *text)
{
    PGresult *r = PQexec(conn, text);
    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    assert_true(PQntuples(r) > 0);
    long long n = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    return n;
}

static int setup(void **state)
{
    (void)state;
    char err[256];
    if (pg_cluster_new_database(uri, sizeof uri, err, sizeof err) < 0) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    broker_store_t *store = broker_store_open(uri, err, sizeof err);
    if (!store) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    broker_store_destroy(&store);
    conn = PQconnectdb(uri);
    return PQstatus(conn) == CONNECTION_OK ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    PQfinish(conn);
    return 0;
}

static void reopen_ok(void)
{
    char err[256] = "";
    broker_store_t *store = broker_store_open(uri, err, sizeof err);
    if (!store)
        fail_msg("open: %s", err);
    broker_store_destroy(&store);
}

static void test_upgrade_from_v9_keeps_rows(void **state)
{
    (void)state;
    assert_int_equal(value("SELECT max(version) FROM syn_schema"), BROKER_STORE_SCHEMA_VERSION);
    sql("INSERT INTO artifacts (exec_num, phase_id, attempt, path, size, sha256, media_type,"
        " created_at, complete) VALUES (7, 'p', 1, 'a.txt', 3, 'x', 'text/plain', 1, 1)");
    /* back to version 9: what version 10 added, gone */
    sql("ALTER TABLE artifacts DROP COLUMN chunks_of; UPDATE syn_schema SET version = 9");
    assert_int_equal(value("SELECT count(*) FROM pg_indexes WHERE indexname ="
                           " 'artifacts_chunks_of'"),
                     0);
    reopen_ok();
    assert_int_equal(value("SELECT max(version) FROM syn_schema"), BROKER_STORE_SCHEMA_VERSION);
    assert_int_equal(value("SELECT count(*) FROM syn_schema"), 1);
    assert_int_equal(value("SELECT count(*) FROM pg_indexes WHERE indexname ="
                           " 'artifacts_chunks_of'"),
                     1);
    assert_int_equal(value("SELECT count(*) FROM artifacts WHERE path = 'a.txt'"
                           " AND chunks_of IS NULL"),
                     1);
    /* idempotent: the next open finds nothing to do */
    reopen_ok();
    assert_int_equal(value("SELECT max(version) FROM syn_schema"), BROKER_STORE_SCHEMA_VERSION);
    assert_int_equal(value("SELECT count(*) FROM artifacts"), 1);
}

static void refused(int version, const char *want)
{
    char text[96];
    snprintf(text, sizeof text, "UPDATE syn_schema SET version = %d", version);
    sql(text);
    char err[256] = "";
    broker_store_t *store = broker_store_open(uri, err, sizeof err);
    assert_null(store);
    if (!strstr(err, want))
        fail_msg("error %s, wanted %s", err, want);
    snprintf(text, sizeof text, "UPDATE syn_schema SET version = %d",
             BROKER_STORE_SCHEMA_VERSION);
    sql(text);
}

static void test_versions_it_cannot_upgrade_are_refused(void **state)
{
    (void)state;
    refused(99, "database schema version 99 is not");
    refused(5, "database schema version 5 is not");
    reopen_ok();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_upgrade_from_v9_keeps_rows),
        cmocka_unit_test(test_versions_it_cannot_upgrade_are_refused),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
