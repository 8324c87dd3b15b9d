/* The broker's loop with its syncer (broker/syncer.h): a real broker_t on
 * loopback sockets and a real SQLite file, whose WAL sync a test holds or fails.
 * What the tests prove is the durability promise of broker/outbox.h with the
 * sync off the loop: nothing a commit covers is said before its sync ended well,
 * the loop keeps handling requests meanwhile, order is kept, and a failed sync
 * stops the broker without a word. */
#include "broker/broker.h"
#include "common/clock.h"
#include "proto/msg.h"

#include <czmq.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

/* The stand-in for fdatasync: while `held`, syncs wait; `fail_with` makes the
 * next one fail. Runs on the syncer's thread. */
typedef struct {
    pthread_mutex_t lock;
    pthread_cond_t changed;
    bool held;
    int fail_with;
    int started, ended; /* syncs begun, syncs returned */
} gate_t;

typedef struct {
    char dir[64];
    gate_t gate;
    broker_t *broker;
    zsock_t *client;
    int64_t next_id;
} sync_fx_t;

static int gated_sync(int fd, void *arg)
{
    gate_t *gate = arg;
    pthread_mutex_lock(&gate->lock);
    gate->started++;
    pthread_cond_broadcast(&gate->changed);
    while (gate->held)
        pthread_cond_wait(&gate->changed, &gate->lock);
    int fail = gate->fail_with;
    gate->fail_with = 0;
    gate->ended++;
    pthread_mutex_unlock(&gate->lock);
    if (fail) {
        errno = fail;
        return -1;
    }
    return fdatasync(fd);
}

static void gate_set(gate_t *gate, bool held, int fail_with)
{
    pthread_mutex_lock(&gate->lock);
    gate->held = held;
    gate->fail_with = fail_with;
    pthread_cond_broadcast(&gate->changed);
    pthread_mutex_unlock(&gate->lock);
}

static int gate_started(gate_t *gate)
{
    pthread_mutex_lock(&gate->lock);
    int n = gate->started;
    pthread_mutex_unlock(&gate->lock);
    return n;
}

static int setup(void **state)
{
    sync_fx_t *f = calloc(1, sizeof *f);
    assert_non_null(f);
    snprintf(f->dir, sizeof f->dir, "/tmp/syn-sync-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    pthread_mutex_init(&f->gate.lock, NULL);
    pthread_cond_init(&f->gate.changed, NULL);
    broker_config_t config = {
        .data_dir = f->dir,
        .clients = "tcp://127.0.0.1:*",
        .workers = "tcp://127.0.0.1:*",
        .events = "tcp://127.0.0.1:*",
        .heartbeat_ms = 1000,
        .liveness = 3,
        .kill_grace_ms = 5000,
        .sync = gated_sync,
        .sync_arg = &f->gate,
    };
    char err[256] = "";
    f->broker = broker_new(&config, err, sizeof err);
    if (!f->broker)
        fail_msg("broker_new: %s", err);
    f->client = zsock_new_dealer(broker_clients_endpoint(f->broker));
    assert_non_null(f->client);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    sync_fx_t *f = *state;
    gate_set(&f->gate, false, 0);
    zsock_destroy(&f->client);
    broker_destroy(&f->broker);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
    assert_int_equal(system(cmd), 0);
    pthread_cond_destroy(&f->gate.changed);
    pthread_mutex_destroy(&f->gate.lock);
    free(f);
    return 0;
}

/* Sends a request; its id. */
static int64_t request(sync_fx_t *f, const char *op, json_t *args)
{
    int64_t id = ++f->next_id;
    syn_msg_t *msg = syn_msg_new_with(
        SYN_MSG_REQUEST, json_pack("{s:I, s:s, s:o}", "id", (json_int_t)id, "op", op, "args", args));
    assert_non_null(msg);
    assert_int_equal(syn_msg_send(zsock_resolve(f->client), NULL, 0, msg), 0);
    syn_msg_destroy(&msg);
    return id;
}

static void create_workflow(sync_fx_t *f, const char *workflow_id)
{
    json_t *args = json_pack("{s:s, s:s, s:[{s:s, s:s, s:i, s:s}]}", "id", workflow_id, "name",
                             "Demo", "phases", "phase_id", "p1", "name", "Plan", "order", 1,
                             "prompt_template", "plan it");
    request(f, "workflow.create", args);
}

/* Turns the broker for about ms, collecting the ids of the replies that came
 * (in order) into ids; their count. */
static size_t turn_and_collect(sync_fx_t *f, int64_t ms, int64_t *ids, size_t max)
{
    size_t n = 0;
    int64_t until = syn_mono_ms() + ms;
    while (syn_mono_ms() < until) {
        assert_int_equal(broker_poll(f->broker, 5), 0);
        syn_msg_t *msg = NULL;
        char err[128];
        while (syn_msg_recv(zsock_resolve(f->client), &msg, NULL, NULL, err, sizeof err) == 0) {
            assert_int_equal(syn_msg_type(msg), SYN_MSG_REPLY);
            assert_true(n < max);
            ids[n++] = json_integer_value(json_object_get(syn_msg_fields(msg), "id"));
            syn_msg_destroy(&msg);
        }
    }
    return n;
}

/* A write's reply waits for its sync; requests keep being handled meanwhile and
 * their replies (even one that wrote nothing) never overtake it. */
static void test_reply_waits_for_its_sync(void **state)
{
    sync_fx_t *f = *state;
    int64_t ids[8];
    int syncs_before = gate_started(&f->gate);
    gate_set(&f->gate, true, 0);
    create_workflow(f, "wf-one");
    assert_int_equal(turn_and_collect(f, 200, ids, 8), 0);
    assert_int_equal(gate_started(&f->gate), syncs_before + 1);
    /* While the disk is busy: a second write and a read. */
    create_workflow(f, "wf-two");
    request(f, "workflow.list", json_object());
    assert_int_equal(turn_and_collect(f, 200, ids, 8), 0);
    assert_int_equal(gate_started(&f->gate), syncs_before + 1); /* one sync at a time */
    gate_set(&f->gate, false, 0);
    size_t n = turn_and_collect(f, 300, ids, 8);
    assert_int_equal(n, 3);
    assert_int_equal(ids[0], 1);
    assert_int_equal(ids[1], 2);
    assert_int_equal(ids[2], 3);
    /* wf-two and the list waited for the second commit's own sync. */
    assert_int_equal(gate_started(&f->gate), syncs_before + 2);
}

/* With nothing written and no sync under way, a reply goes out in its turn. */
static void test_read_needs_no_sync(void **state)
{
    sync_fx_t *f = *state;
    int64_t ids[4];
    int syncs_before = gate_started(&f->gate);
    gate_set(&f->gate, true, 0);
    request(f, "workflow.list", json_object());
    assert_int_equal(turn_and_collect(f, 100, ids, 4), 1);
    assert_int_equal(gate_started(&f->gate), syncs_before);
}

/* A failed sync stops the broker and what it covered is never said. */
static void test_failed_sync_stops_silently(void **state)
{
    sync_fx_t *f = *state;
    gate_set(&f->gate, true, EIO);
    create_workflow(f, "wf-lost");
    int64_t ids[4];
    assert_int_equal(turn_and_collect(f, 100, ids, 4), 0);
    gate_set(&f->gate, false, EIO);
    int rc = 0;
    for (int i = 0; i < 100 && rc == 0; i++)
        rc = broker_poll(f->broker, 10);
    assert_int_equal(rc, -1);
    syn_msg_t *msg = NULL;
    char err[128];
    zclock_sleep(50);
    assert_int_equal(syn_msg_recv(zsock_resolve(f->client), &msg, NULL, NULL, err, sizeof err),
                     -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_reply_waits_for_its_sync, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_needs_no_sync, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_sync_stops_silently, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
