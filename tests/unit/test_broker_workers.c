/* The worker registry's indexes (broker/workers.c, issue 24): look-ups by
 * identity and key through the hash, the longest-silent worker from the order
 * of last messages, and pick from the lists of workers with room — least busy
 * first, a free slot before a prefetch place, draining and unhealthy workers
 * out until they change, the provider filter — each checked against what a
 * walk over every worker would answer; and the workers holding a name (a
 * READY's check over CURVE) from the index by name, against the same walk. */
#include "broker/workers.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

static broker_worker_t *add(broker_workers_t *w, const char *id, int64_t slots,
                            const char *provider, int64_t now_ms)
{
    json_t *providers = json_pack("[s]", provider);
    broker_worker_t *worker = broker_workers_register(w, id, strlen(id), id, slots, providers,
                                                      now_ms);
    json_decref(providers);
    assert_non_null(worker);
    return worker;
}

static void hold(broker_worker_t *worker, int n)
{
    static int next = 0;
    for (int i = 0; i < n; i++) {
        char exec[32];
        snprintf(exec, sizeof exec, "e%d", next++);
        assert_int_equal(broker_worker_hold(worker, exec, "p1", 1, true), 0);
    }
}

/* Releases the most recent attempt the worker holds. */
static void release_one(broker_worker_t *worker)
{
    broker_held_t *h = &worker->held[worker->held_count - 1];
    char exec[32];
    snprintf(exec, sizeof exec, "%s", h->execution_id);
    assert_true(broker_worker_release(worker, exec, "p1", 1));
}

static void test_lookup_by_identity_and_key(void **state)
{
    (void)state;
    broker_workers_t *w = broker_workers_new();
    broker_worker_t *a = add(w, "AAAA", 1, "mock", 0);
    broker_worker_t *b = add(w, "BBBB", 1, "mock", 0);
    assert_ptr_equal(broker_workers_lookup(w, "AAAA", 4), a);
    assert_ptr_equal(broker_workers_lookup(w, "BBBB", 4), b);
    assert_null(broker_workers_lookup(w, "AAA", 3));
    assert_ptr_equal(broker_workers_lookup_key(w, "42424242"), b); /* hex of BBBB */
    assert_null(broker_workers_lookup_key(w, NULL));
    /* Registering again updates the same worker. */
    assert_ptr_equal(add(w, "AAAA", 4, "mock", 5), a);
    assert_int_equal(broker_workers_count(w), 2);
    broker_workers_remove(w, a);
    assert_null(broker_workers_lookup(w, "AAAA", 4));
    assert_null(broker_workers_lookup_key(w, "41414141"));
    assert_ptr_equal(broker_workers_lookup(w, "BBBB", 4), b);
    broker_workers_destroy(&w);
}

static void test_longest_silent_first(void **state)
{
    (void)state;
    broker_workers_t *w = broker_workers_new();
    broker_worker_t *a = add(w, "A", 1, "mock", 0);
    broker_worker_t *b = add(w, "B", 1, "mock", 1);
    broker_worker_t *c = add(w, "C", 1, "mock", 2);
    assert_null(broker_workers_expired(w, 3, 3));
    assert_ptr_equal(broker_workers_expired(w, 4, 3), a);
    broker_workers_seen(w, a, 10); /* A spoke: B is the longest silent now */
    assert_ptr_equal(broker_workers_expired(w, 10, 3), b);
    broker_workers_remove(w, b);
    assert_ptr_equal(broker_workers_expired(w, 10, 3), c);
    /* A time from before the latest goes to its place, not to the end. */
    broker_workers_seen(w, c, 8);
    assert_null(broker_workers_expired(w, 11, 3));
    assert_ptr_equal(broker_workers_expired(w, 12, 3), c);
    broker_workers_remove(w, c);
    assert_ptr_equal(broker_workers_expired(w, 14, 3), a);
    broker_workers_remove(w, a);
    assert_null(broker_workers_expired(w, 1000, 3));
    broker_workers_destroy(&w);
}

static void test_pick_least_busy_then_prefetch(void **state)
{
    (void)state;
    broker_workers_t *w = broker_workers_new();
    broker_worker_t *a = add(w, "A", 2, "mock", 0);
    broker_worker_t *b = add(w, "B", 2, "mock", 0);
    a->prefetch = 1;
    broker_workers_reindex(w, a);
    /* Ties: the one registered first. */
    assert_ptr_equal(broker_workers_pick(w, NULL), a);
    hold(a, 1);
    assert_ptr_equal(broker_workers_pick(w, NULL), b);
    hold(b, 1);
    /* Both hold one: A has held one longer. */
    assert_ptr_equal(broker_workers_pick(w, NULL), a);
    hold(a, 1);
    assert_ptr_equal(broker_workers_pick(w, NULL), b);
    hold(b, 1);
    /* No slot free: A's prefetch place. */
    assert_ptr_equal(broker_workers_pick(w, NULL), a);
    hold(a, 1);
    assert_null(broker_workers_pick(w, NULL));
    /* A slot freed on B comes before anything else. */
    release_one(b);
    assert_ptr_equal(broker_workers_pick(w, NULL), b);
    assert_true(broker_worker_slot_free(b));
    broker_workers_destroy(&w);
}

static void test_pick_skips_draining_unhealthy_and_other_providers(void **state)
{
    (void)state;
    broker_workers_t *w = broker_workers_new();
    broker_worker_t *a = add(w, "A", 1, "mock", 0);
    broker_worker_t *b = add(w, "B", 1, "claude", 0);
    assert_ptr_equal(broker_workers_pick(w, "claude"), b);
    assert_null(broker_workers_pick(w, "command"));
    assert_true(broker_worker_set_unhealthy(a, "broken"));
    assert_ptr_equal(broker_workers_pick(w, NULL), b);
    assert_null(broker_workers_pick(w, "mock"));
    assert_true(broker_worker_set_unhealthy(a, NULL));
    assert_ptr_equal(broker_workers_pick(w, "mock"), a);
    b->draining = true;
    broker_workers_reindex(w, b);
    assert_null(broker_workers_pick(w, "claude"));
    b->draining = false;
    broker_workers_reindex(w, b);
    assert_ptr_equal(broker_workers_pick(w, "claude"), b);
    /* Slots grown by a new READY: room again. */
    hold(b, 1);
    assert_null(broker_workers_pick(w, "claude"));
    assert_ptr_equal(add(w, "B", 2, "claude", 1), b);
    assert_ptr_equal(broker_workers_pick(w, "claude"), b);
    broker_workers_remove(w, b);
    assert_null(broker_workers_pick(w, "claude"));
    assert_ptr_equal(broker_workers_pick(w, NULL), a);
    broker_workers_destroy(&w);
}

/* Many workers and random changes: pick always equals the walk over every
 * worker (least held with a free slot, else least held with room; among equals
 * any is right, so only the count held is compared). */
static void test_pick_matches_a_full_walk(void **state)
{
    (void)state;
    enum { N = 200 };
    broker_workers_t *w = broker_workers_new();
    broker_worker_t *all[N];
    for (int i = 0; i < N; i++) {
        char id[16];
        snprintf(id, sizeof id, "w%03d", i);
        all[i] = add(w, id, 1 + i % 4, "mock", 0);
        all[i]->prefetch = i % 3;
        broker_workers_reindex(w, all[i]);
    }
    unsigned seed = 24;
    for (int step = 0; step < 5000; step++) {
        seed = seed * 1103515245u + 12345u;
        broker_worker_t *x = all[(seed >> 8) % N];
        switch ((seed >> 20) % 4) {
        case 0:
        case 1:
            if ((int64_t)x->held_count < x->slots + x->prefetch)
                hold(x, 1);
            break;
        case 2:
            if (x->held_count)
                release_one(x);
            break;
        default:
            x->draining = !x->draining;
            broker_workers_reindex(w, x);
        }
        long best_free = -1, best_room = -1;
        for (int i = 0; i < N; i++) {
            const broker_worker_t *y = all[i];
            long held = (long)y->held_count;
            if (y->draining)
                continue;
            if (held < y->slots && (best_free < 0 || held < best_free))
                best_free = held;
            if (held < y->slots + y->prefetch && (best_room < 0 || held < best_room))
                best_room = held;
        }
        broker_worker_t *picked = broker_workers_pick(w, NULL);
        if (best_free >= 0) {
            assert_non_null(picked);
            assert_int_equal((long)picked->held_count, best_free);
            assert_true(broker_worker_slot_free(picked));
        } else if (best_room >= 0) {
            assert_non_null(picked);
            assert_int_equal((long)picked->held_count, best_room);
        } else {
            assert_null(picked);
        }
    }
    broker_workers_destroy(&w);
}

static void test_refused_identities(void **state)
{
    (void)state;
    broker_workers_t *w = broker_workers_new();
    assert_false(broker_workers_refused(w, "X", 1));
    broker_workers_refuse(w, "X", 1);
    broker_workers_refuse(w, "X", 1);
    assert_true(broker_workers_refused(w, "X", 1));
    assert_false(broker_workers_refused(w, "Y", 1));
    broker_workers_unrefuse(w, "X", 1);
    assert_false(broker_workers_refused(w, "X", 1));
    /* The ring forgets the oldest once full. */
    for (int i = 0; i <= BROKER_REFUSED_MAX; i++) {
        char id[16];
        snprintf(id, sizeof id, "r%d", i);
        broker_workers_refuse(w, id, strlen(id));
    }
    assert_false(broker_workers_refused(w, "r0", 2));
    assert_true(broker_workers_refused(w, "r1", 2));
    char last[16];
    snprintf(last, sizeof last, "r%d", BROKER_REFUSED_MAX);
    assert_true(broker_workers_refused(w, last, strlen(last)));
    broker_workers_destroy(&w);
}

/* The name check of a READY over CURVE (broker_workers_name_holder) reads the
 * workers of that name from an index: after random registrations, renames,
 * key changes and removals it answers what a walk over every worker answers. */
static void test_name_holder_matches_a_full_walk(void **state)
{
    (void)state;
    enum { N = 60, NAMES = 7, KEYS = 3 };
    broker_workers_t *w = broker_workers_new();
    broker_worker_t *all[N] = {0};
    unsigned seed = 2024;
    for (int step = 0; step < 4000; step++) {
        seed = seed * 1103515245u + 12345u;
        int i = (int)((seed >> 8) % N);
        char id[16], name[16], key[16];
        snprintf(id, sizeof id, "id%02d", i);
        snprintf(name, sizeof name, "n%u", (seed >> 16) % NAMES);
        snprintf(key, sizeof key, "k%u", (seed >> 24) % KEYS);
        if ((seed >> 20) % 4 == 0 && all[i]) {
            broker_workers_remove(w, all[i]);
            all[i] = NULL;
        } else {
            all[i] = broker_workers_register(w, id, strlen(id), name, 1, NULL, step);
            assert_non_null(all[i]);
            assert_int_equal(broker_worker_set_peer_key(all[i], key), 0);
        }
        /* Every name and key, asked from every identity. */
        for (int n = 0; n < NAMES; n++)
            for (int k = 0; k < KEYS; k++)
                for (int j = 0; j < N; j += 7) {
                    snprintf(name, sizeof name, "n%d", n);
                    snprintf(key, sizeof key, "k%d", k);
                    snprintf(id, sizeof id, "id%02d", j);
                    bool walk = false;
                    for (int x = 0; x < N; x++)
                        if (all[x] && x != j && !strcmp(all[x]->name, name) &&
                            strcmp(all[x]->peer_key, key) != 0)
                            walk = true;
                    broker_worker_t *h = broker_workers_name_holder(w, name, key, id, strlen(id));
                    assert_int_equal(h != NULL, walk);
                    if (h) {
                        assert_string_equal(h->name, name);
                        assert_string_not_equal(h->peer_key, key);
                        assert_ptr_not_equal(h, all[j]);
                    }
                }
    }
    broker_workers_destroy(&w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lookup_by_identity_and_key),
        cmocka_unit_test(test_longest_silent_first),
        cmocka_unit_test(test_pick_least_busy_then_prefetch),
        cmocka_unit_test(test_pick_skips_draining_unhealthy_and_other_providers),
        cmocka_unit_test(test_pick_matches_a_full_walk),
        cmocka_unit_test(test_refused_identities),
        cmocka_unit_test(test_name_holder_matches_a_full_walk),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
