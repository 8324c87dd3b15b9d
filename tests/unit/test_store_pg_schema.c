/* broker/store_pg_sql.c's schema by version on PostgreSQL: a database at every
 * earlier version (9, the base, and 10) is upgraded at open with its rows kept; a second open changes nothing; versions it cannot
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

/* What version 11 added (the brokers' lease and its fence), gone. */
static const char undo_v11[] = "DROP FUNCTION syn_fence(bigint); DROP TABLE broker_lease;";
/* What version 10 added (artifacts.chunks_of and its index), gone. */
static const char undo_v10[] = "ALTER TABLE artifacts DROP COLUMN chunks_of;";

static long long lease_tables(void)
{
    return value("SELECT count(*) FROM pg_tables WHERE tablename = 'broker_lease'");
}

/* The database taken back to version (9 or 10) with a row in it, opened: it is
 * at today's version, every later version's objects there, the row kept; a
 * second open finds nothing to do. */
static void upgrade_keeps_rows(int version)
{
    sql("DELETE FROM artifacts");
    sql("INSERT INTO artifacts (exec_num, phase_id, attempt, path, size, sha256, media_type,"
        " created_at, complete) VALUES (7, 'p', 1, 'a.txt', 3, 'x', 'text/plain', 1, 1)");
    sql(undo_v11);
    if (version < 10)
        sql(undo_v10);
    char text[96];
    snprintf(text, sizeof text, "UPDATE syn_schema SET version = %d", version);
    sql(text);
    assert_int_equal(lease_tables(), 0);
    assert_int_equal(value("SELECT count(*) FROM pg_indexes WHERE indexname ="
                           " 'artifacts_chunks_of'"),
                     version < 10 ? 0 : 1);
    reopen_ok();
    assert_int_equal(value("SELECT max(version) FROM syn_schema"), BROKER_STORE_SCHEMA_VERSION);
    assert_int_equal(value("SELECT count(*) FROM syn_schema"), 1);
    assert_int_equal(value("SELECT count(*) FROM pg_indexes WHERE indexname ="
                           " 'artifacts_chunks_of'"),
                     1);
    assert_int_equal(lease_tables(), 1);
    assert_int_equal(value("SELECT count(*) FROM broker_lease WHERE token = 0"), 1);
    assert_int_equal(value("SELECT count(*) FROM artifacts WHERE path = 'a.txt'"
                           " AND chunks_of IS NULL"),
                     1);
    /* idempotent: the next open finds nothing to do */
    reopen_ok();
    assert_int_equal(value("SELECT max(version) FROM syn_schema"), BROKER_STORE_SCHEMA_VERSION);
    assert_int_equal(value("SELECT count(*) FROM artifacts"), 1);
}

static void test_upgrade_from_v9_keeps_rows(void **state)
{
    (void)state;
    assert_int_equal(value("SELECT max(version) FROM syn_schema"), BROKER_STORE_SCHEMA_VERSION);
    upgrade_keeps_rows(9);
}

static void test_upgrade_from_v10_keeps_rows(void **state)
{
    (void)state;
    upgrade_keeps_rows(10);
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
        cmocka_unit_test(test_upgrade_from_v10_keeps_rows),
        cmocka_unit_test(test_versions_it_cannot_upgrade_are_refused),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
