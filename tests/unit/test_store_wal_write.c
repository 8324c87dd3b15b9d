/* broker/store_wal_write.c: a database written through the VFS that gathers the
 * WAL's writes reads back whole, through another connection on the default VFS
 * while the writer is open, after a checkpoint and after a reopen — with
 * transactions larger than the buffer and than one write of the real VFS, and
 * with pages spilled and rewritten within a transaction. */
#include "broker/store_internal.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sqlite3.h>

#define ROWS 3000
#define ROW_BYTES 1000 /* 3 MB a transaction: three buffers, ~25 writes of the real VFS */

static void exec(sqlite3 *db, const char *sql)
{
    char *err = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &err);
    if (rc != SQLITE_OK)
        fail_msg("%s: %s", sql, err ? err : sqlite3_errstr(rc));
}

static sqlite3_int64 one_int(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *s;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    sqlite3_int64 v = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    return v;
}

/* What a reader sees: rows, and the sum of every row's version. */
static void expect(sqlite3 *db, sqlite3_int64 rows, sqlite3_int64 versions)
{
    assert_int_equal(one_int(db, "SELECT count(*) FROM t"), rows);
    assert_int_equal(one_int(db, "SELECT coalesce(sum(v), 0) FROM t"), versions);
    assert_int_equal(one_int(db, "SELECT count(*) FROM t WHERE length(b) != 1000"), 0);
}

static void test_everything_written_reads_back(void **state)
{
    (void)state;
    char dir[] = "/tmp/syn-walw-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[256];
    snprintf(path, sizeof path, "%s/t.db", dir);
    const char *vfs = store_wal_write_vfs();
    assert_non_null(vfs);
    assert_string_equal(store_wal_write_vfs(), vfs); /* registered once */

    sqlite3 *w, *r;
    assert_int_equal(sqlite3_open_v2(path, &w, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, vfs),
                     SQLITE_OK);
    /* A small page cache: a large transaction spills pages to the WAL before
     * its commit, and updating them again rewrites their frames in place. */
    exec(w, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA cache_size=20;"
            " PRAGMA wal_autocheckpoint=0;"
            " CREATE TABLE t (id INTEGER PRIMARY KEY, v INTEGER, b BLOB)");
    assert_int_equal(sqlite3_open_v2(path, &r, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    expect(r, 0, 0);

    char sql[256];
    snprintf(sql, sizeof sql,
             "BEGIN; WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < %d)"
             " INSERT INTO t SELECT i, 1, randomblob(%d) FROM n;"
             " UPDATE t SET v = 2; UPDATE t SET v = 3 WHERE id %% 2 = 0; COMMIT",
             ROWS, ROW_BYTES);
    exec(w, sql);
    sqlite3_int64 versions = ROWS / 2 * 2 + ROWS / 2 * 3;
    expect(r, ROWS, versions);

    /* Many small commits, as the broker makes. */
    for (int i = 0; i < 200; i++)
        exec(w, "UPDATE t SET v = v + 1 WHERE id = 1 + abs(random()) % 10");
    versions += 200;
    expect(r, ROWS, versions);
    expect(w, ROWS, versions);

    /* A transaction rolled back leaves nothing, though its pages spilled. */
    exec(w, "BEGIN; UPDATE t SET v = v + 100, b = randomblob(1000); ROLLBACK");
    expect(r, ROWS, versions);

    assert_int_equal(sqlite3_wal_checkpoint_v2(w, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL),
                     SQLITE_OK);
    expect(r, ROWS, versions);
    exec(w, "DELETE FROM t WHERE id > 100");
    expect(r, 100, one_int(w, "SELECT sum(v) FROM t"));
    versions = one_int(w, "SELECT sum(v) FROM t");
    sqlite3_close(r);
    assert_int_equal(sqlite3_close(w), SQLITE_OK);

    assert_int_equal(sqlite3_open_v2(path, &r, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    expect(r, 100, versions);
    assert_int_equal(one_int(r, "SELECT count(*) FROM pragma_integrity_check WHERE "
                                "integrity_check != 'ok'"),
                     0);
    sqlite3_close(r);

    snprintf(sql, sizeof sql, "rm -rf '%s'", dir);
    assert_int_equal(system(sql), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_everything_written_reads_back),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
