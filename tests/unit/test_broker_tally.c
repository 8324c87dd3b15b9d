/* broker/tally: net count changes per (workflow, status, block). */
#include "broker/tally.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

typedef struct {
    char seen[16][64];
    size_t count;
    int stop_after; /* fn returns 7 once this many were seen, 0 = never */
} collected_t;

static int collect(const broker_tally_entry_t *entry, void *arg)
{
    collected_t *c = arg;
    assert_true(c->count < 16);
    snprintf(c->seen[c->count++], sizeof c->seen[0], "%s/%s/%lld:%+lld", entry->workflow_id,
             entry->status, (long long)entry->block, (long long)entry->delta);
    return c->stop_after && (int)c->count == c->stop_after ? 7 : 0;
}

static void test_sums_per_key_in_first_seen_order(void **state)
{
    (void)state;
    broker_tally_t *tally = broker_tally_new();
    assert_non_null(tally);
    /* num 5 and 1000 share block 0; 1024 starts block 1 */
    assert_int_equal(broker_tally_add(tally, "wf-a", "pending", 5, 1), 0);
    assert_int_equal(broker_tally_add(tally, "wf-a", "", 5, 1), 0);
    assert_int_equal(broker_tally_add(tally, "wf-a", "pending", 1000, 1), 0);
    assert_int_equal(broker_tally_add(tally, "wf-a", "pending", 1024, 1), 0);
    assert_int_equal(broker_tally_add(tally, "wf-b", "pending", 5, 1), 0);
    /* wf-b's execution moves pending -> running -> completed */
    assert_int_equal(broker_tally_add(tally, "wf-b", "pending", 5, -1), 0);
    assert_int_equal(broker_tally_add(tally, "wf-b", "running", 5, 1), 0);
    assert_int_equal(broker_tally_add(tally, "wf-b", "running", 5, -1), 0);
    assert_int_equal(broker_tally_add(tally, "wf-b", "completed", 5, 1), 0);
    assert_int_equal(broker_tally_size(tally), 6);

    collected_t c = {0};
    assert_int_equal(broker_tally_each(tally, collect, &c), 0);
    assert_int_equal(c.count, 4); /* the keys that cancelled out are skipped */
    assert_string_equal(c.seen[0], "wf-a/pending/0:+2");
    assert_string_equal(c.seen[1], "wf-a//0:+1");
    assert_string_equal(c.seen[2], "wf-a/pending/1:+1");
    assert_string_equal(c.seen[3], "wf-b/completed/0:+1");

    collected_t stopped = {.stop_after = 2};
    assert_int_equal(broker_tally_each(tally, collect, &stopped), 7);
    assert_int_equal(stopped.count, 2);

    broker_tally_clear(tally);
    assert_int_equal(broker_tally_size(tally), 0);
    collected_t none = {0};
    assert_int_equal(broker_tally_each(tally, collect, &none), 0);
    assert_int_equal(none.count, 0);

    /* usable again after a clear, and many keys grow the array */
    for (int i = 0; i < 100; i++) {
        char workflow[16];
        snprintf(workflow, sizeof workflow, "wf-%d", i);
        assert_int_equal(broker_tally_add(tally, workflow, "failed", 1, -1), 0);
    }
    assert_int_equal(broker_tally_size(tally), 100);
    broker_tally_destroy(&tally);
    assert_null(tally);
    broker_tally_destroy(&tally); /* safe twice */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sums_per_key_in_first_seen_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
