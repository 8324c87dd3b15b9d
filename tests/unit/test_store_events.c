/* broker/store_events.c: the event log — events wait for the commit yet reads see
 * them, and replay pages by execution or all, bounded by count and bytes. */
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

static void test_events(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(broker_store_last_event_seq(f->store), 0);
    assert_int_equal(broker_store_event_insert(f->store, 1, 10, "exec-1", 0, "A", "{}"), 0);
    assert_int_equal(broker_store_event_insert(f->store, 2, 11, NULL, 0, "B", "{\"x\":1}"), 0);
    assert_int_equal(broker_store_commit(f->store), 0);
    reopen(f);
    assert_int_equal(broker_store_last_event_seq(f->store), 2);
    assert_int_equal(peek_int(f, "SELECT count(*) FROM events WHERE execution_id IS NULL"), 1);
}

/* Replay pages: by execution or all, after a seq, bounded by count and bytes. */
static void test_events_after(void **state)
{
    fixture_t *f = *state;
    const char *ids[] = {"exec-a", "exec-b"};
    for (size_t i = 0; i < 2; i++) {
        broker_execution_t *exec = make_exec(ids[i], "wf-1", 1, 1);
        assert_int_equal(broker_store_execution_insert(f->store, exec), 0);
        broker_execution_destroy(&exec);
    }
    for (int seq = 1; seq <= 10; seq++)
        assert_int_equal(broker_store_event_insert(f->store, seq, seq * 10,
                                                   seq % 2 ? "exec-a" : "exec-b", 0, "T",
                                                   "{\"n\":12345678}"),
                         0);
    json_t *events;
    bool more;
    assert_int_equal(broker_store_events_after(f->store, "exec-a", 0, 3, 1 << 20, &events, &more),
                     0);
    assert_int_equal(json_array_size(events), 3);
    assert_true(more);
    json_t *e = json_array_get(events, 2);
    assert_int_equal(json_integer_value(json_object_get(e, "seq")), 5);
    assert_int_equal(json_integer_value(json_object_get(e, "time")), 50);
    assert_string_equal(json_string_value(json_object_get(e, "execution_id")), "exec-a");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(e, "data"), "n")),
                     12345678);
    json_decref(events);
    assert_int_equal(broker_store_events_after(f->store, "exec-a", 5, 3, 1 << 20, &events, &more),
                     0);
    assert_int_equal(json_array_size(events), 2);
    assert_false(more);
    json_decref(events);
    assert_int_equal(broker_store_events_after(f->store, NULL, 4, 100, 1 << 20, &events, &more),
                     0);
    assert_int_equal(json_array_size(events), 6);
    assert_false(more);
    json_decref(events);
    /* 14 bytes of data each: a 30-byte budget takes two, the first always fits */
    assert_int_equal(broker_store_events_after(f->store, NULL, 0, 100, 30, &events, &more), 0);
    assert_int_equal(json_array_size(events), 2);
    assert_true(more);
    json_decref(events);
    assert_int_equal(broker_store_events_after(f->store, NULL, 0, 100, 1, &events, &more), 0);
    assert_int_equal(json_array_size(events), 1);
    json_decref(events);
    assert_int_equal(broker_store_events_after(f->store, "exec-z", 0, 10, 100, &events, &more),
                     0);
    assert_int_equal(json_array_size(events), 0);
    assert_false(more);
    json_decref(events);
}

/* Events wait in the store for the commit, yet reads see them; a batch of
 * them lands whole, in seq order, each under its execution's number. */
static void test_events_wait_for_commit(void **state)
{
    fixture_t *f = *state;
    broker_execution_t *exec = make_exec("exec-a", "wf-1", 1, 1);
    assert_int_equal(broker_store_execution_insert(f->store, exec), 0);
    assert_int_equal(broker_store_commit(f->store), 0);
    enum { N = 75 }; /* more than two full batches, and an odd rest */
    for (int seq = 1; seq <= N; seq++) {
        char data[32];
        snprintf(data, sizeof data, "{\"n\":%d}", seq);
        /* every fifth about no execution; of the others every third leaves the
         * number to be looked up */
        bool about_exec = seq % 5 != 0;
        assert_int_equal(broker_store_event_insert(f->store, seq, seq * 10,
                                                   about_exec ? "exec-a" : NULL,
                                                   about_exec && seq % 3 ? exec->num : 0, "T",
                                                   data),
                         0);
    }
    assert_true(broker_store_dirty(f->store));
    assert_int_equal(broker_store_last_event_seq(f->store), N);
    assert_int_equal(peek_int(f, "SELECT count(*) FROM events"), 0);
    json_t *events;
    bool more;
    assert_int_equal(broker_store_events_after(f->store, "exec-a", 70, 100, 1 << 20, &events,
                                               &more),
                     0);
    assert_int_equal(json_array_size(events), 4); /* 71, 72, 73, 74 */
    json_decref(events);
    assert_int_equal(broker_store_commit(f->store), 0);
    assert_int_equal(peek_int(f, "SELECT count(*) FROM events"), N);
    assert_int_equal(peek_int(f, "SELECT count(*) FROM events"
                                 " WHERE seq * 10 = time AND data = '{\"n\":' || seq || '}'"),
                     N);
    assert_int_equal(peek_int(f, "SELECT count(*) FROM events WHERE execution_id IS NULL"
                                 " AND exec_num IS NULL"),
                     N / 5);
    assert_int_equal(peek_int(f, "SELECT count(*) FROM events WHERE execution_id = 'exec-a'"
                                 " AND exec_num = (SELECT num FROM executions)"),
                     N - N / 5);

    /* A seq taken twice fails the transaction whole, and nothing of it waits
     * for the next one. */
    assert_int_equal(broker_store_event_insert(f->store, N + 1, 1, "exec-a", 0, "T", "{}"), 0);
    assert_int_equal(broker_store_event_insert(f->store, N, 1, "exec-a", 0, "T", "{}"), 0);
    assert_int_equal(broker_store_commit(f->store), -1);
    assert_int_equal(broker_store_last_event_seq(f->store), N);
    assert_int_equal(broker_store_event_insert(f->store, N + 1, 1, "exec-a", 0, "T", "{}"), 0);
    assert_int_equal(broker_store_commit(f->store), 0);
    assert_int_equal(peek_int(f, "SELECT count(*) FROM events"), N + 1);
    broker_execution_destroy(&exec);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        store_test(test_events),
        store_test(test_events_after),
        store_test(test_events_wait_for_commit),
    };
    return cmocka_run_group_tests_name("store_events", tests, NULL, NULL);
}
