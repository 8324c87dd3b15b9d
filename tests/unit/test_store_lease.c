/* The lease on PostgreSQL (broker/store_lease.c, broker/lease.h): two stores on
 * one database, as two brokers. Exactly one holds the lease; the other takes it
 * only once it lapses, with the next token; a store whose token is no longer the
 * lease's cannot commit (the fence) nor renew. */
#include "broker/store.h"
#include "tests/support/store_fixture.h"
#include "tests/support/wait.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

/* A second store on the fixture's database: another broker. */
static broker_store_t *second(const fixture_t *f)
{
    char err[256];
    broker_store_t *other = broker_store_open(f->path, err, sizeof err);
    if (!other)
        fail_msg("open: %s", err);
    return other;
}

/* b takes the lease once a's lapses (a short lease, waited for by b's attempts). */
static void take_over(broker_store_t *b, int64_t lease_ms)
{
    int taken = 0;
    WAIT_FOR((taken = broker_store_lease_take(b, "b", lease_ms, NULL)) != 0, 10000);
    assert_int_equal(taken, 1);
}

static void test_one_holds_the_lease(void **state)
{
    fixture_t *f = *state;
    broker_store_t *b = second(f);
    assert_int_equal(broker_store_lease_token(f->store), 0);
    assert_int_equal(broker_store_lease_take(f->store, "a pid=1", 60000, NULL), 1);
    assert_int_equal(broker_store_lease_token(f->store), 1);
    broker_store_holder_t seen = {0};
    assert_int_equal(broker_store_lease_take(b, "b pid=2", 60000, &seen), 0);
    assert_string_equal(seen.name, "a pid=1");
    assert_int_equal(seen.token, 1);
    assert_true(seen.left_ms > 50000 && seen.left_ms <= 60000);
    assert_int_equal(broker_store_lease_token(b), 0);
    /* renewing keeps it; releasing hands it over at once, with the next token */
    assert_int_equal(broker_store_lease_renew(f->store, 60000), 0);
    assert_int_equal(broker_store_lease_take(b, "b pid=2", 60000, NULL), 0);
    broker_store_lease_release(f->store);
    assert_int_equal(broker_store_lease_take(b, "b pid=2", 60000, NULL), 1);
    assert_int_equal(broker_store_lease_token(b), 2);
    broker_store_destroy(&b);
}

/* The deposed store's write transaction is refused whole, it learns why, and its
 * renewal fails; the new holder's writes commit. */
static void test_a_deposed_store_cannot_commit(void **state)
{
    fixture_t *f = *state;
    broker_store_t *b = second(f);
    assert_int_equal(broker_store_lease_take(f->store, "a", 200, NULL), 1);
    add_workflow(f, "before", 1, 1);
    assert_int_equal(broker_store_commit(f->store), 0);
    assert_false(broker_store_deposed(f->store));
    take_over(b, 60000);

    json_t *tpl = template_of(1);
    broker_workflow_row_t row = {.id = "after", .name = "x", .workflow_type = "custom",
                                 .classification = "standard", .phase_count = 1,
                                 .template_json = tpl, .created_at = 2};
    broker_store_workflow_insert(f->store, &row); /* its outcome is read at the commit */
    assert_int_equal(broker_store_commit(f->store), -1);
    assert_true(broker_store_deposed(f->store));
    assert_int_equal(broker_store_lease_renew(f->store, 200), 1);
    assert_int_equal(peek_int(f, "SELECT count(*) FROM workflows WHERE id = 'after'"), 0);
    assert_int_equal(peek_int(f, "SELECT count(*) FROM workflows WHERE id = 'before'"), 1);
    assert_int_equal(peek_int(f, "SELECT token FROM broker_lease"), 2);

    row.id = "by-b";
    assert_int_equal(broker_store_workflow_insert(b, &row), 0);
    assert_int_equal(broker_store_commit(b), 0);
    assert_false(broker_store_deposed(b));
    assert_int_equal(peek_int(f, "SELECT count(*) FROM workflows WHERE id = 'by-b'"), 1);
    json_decref(tpl);
    broker_store_destroy(&b);
}

/* A lapsed lease nobody took is still safe to write under and to renew: the
 * token, not the clock, proves that no other broker wrote. */
static void test_a_lapsed_lease_nobody_took_still_commits(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(broker_store_lease_take(f->store, "a", 1, NULL), 1);
    WAIT_FOR(peek_int(f, "SELECT count(*) FROM broker_lease WHERE expires_at < "
                         "clock_timestamp()") == 1,
             5000);
    add_workflow(f, "late", 1, 1);
    assert_int_equal(broker_store_commit(f->store), 0);
    assert_int_equal(broker_store_lease_renew(f->store, 60000), 0);
    assert_int_equal(peek_int(f, "SELECT count(*) FROM workflows WHERE id = 'late'"), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        store_test(test_one_holds_the_lease),
        store_test(test_a_deposed_store_cannot_commit),
        store_test(test_a_lapsed_lease_nobody_took_still_commits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
