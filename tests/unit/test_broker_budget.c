/* The broker's turn has a time budget (issue 18): a flood of slow requests (big
 * events.replay pages from several DEALERs) must not delay its heartbeats past a
 * worker's patience, nor make it lose the worker; and the budget bounds the
 * workers' socket too (issue 17: a turn of artifact chunks took seconds on a
 * loaded machine while executes waited), each socket giving at least one message
 * a turn, clients first. A real broker_t on loopback sockets, driven turn by turn
 * in this thread, with a fake worker that answers heartbeats between turns. */
#include "broker/broker.h"
#include "common/clock.h"
#include "proto/msg.h"
#include "proto/ops.h"
#include "tests/support/wait.h"

#include <czmq.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#define HEARTBEAT_MS 250
#define LIVENESS 3
/* The broker's own patience with the fake worker, far longer than the worker's with
 * the broker (LIVENESS, which the test holds the broker to): the worker's heartbeats
 * are sent between the broker's turns in the same thread, so on a loaded machine a
 * stretch of that thread not running would make the broker lose the worker in wall
 * time. A broker that read nothing from the workers' socket for 10 s would still
 * lose it; heartbeats kept on time is the CPU-time check. */
#define BROKER_LIVENESS 40
#define EXECUTIONS 400
#define FLOODERS 4
#define REQUESTS_EACH 300

static void send_request(zsock_t *dealer, int64_t id, const char *op, json_t *args)
{
    syn_msg_t *msg = syn_msg_new_with(SYN_MSG_REQUEST,
                                      json_pack("{s:I, s:s, s:o}", "id", (json_int_t)id, "op",
                                                op, "args", args));
    assert_non_null(msg);
    assert_int_equal(syn_msg_send(zsock_resolve(dealer), NULL, 0, msg), 0);
    syn_msg_destroy(&msg);
}

/* Replies waiting on dealer, read and counted; the last status in *status. */
static int take_replies(zsock_t *dealer, int *status)
{
    int n = 0;
    syn_msg_t *msg = NULL;
    char err[256];
    while (syn_msg_recv(zsock_resolve(dealer), &msg, NULL, NULL, err, sizeof err) == 0) {
        if (syn_msg_type(msg) == SYN_MSG_REPLY) {
            n++;
            if (status)
                *status = (int)json_integer_value(json_object_get(syn_msg_fields(msg), "status"));
        }
        syn_msg_destroy(&msg);
    }
    return n;
}

/* Replies waiting on dealer, counted and dropped undecoded: the test's own time
 * must not pass for the broker's. */
static int drop_replies(zsock_t *dealer)
{
    int n = 0;
    zmq_msg_t part;
    zmq_msg_init(&part);
    while (zmq_msg_recv(&part, zsock_resolve(dealer), ZMQ_DONTWAIT) >= 0)
        if (!zmq_msg_more(&part))
            n++;
    zmq_msg_close(&part);
    return n;
}

/* This thread's CPU time: the broker and the fake worker both run in it, so a
 * silence in CPU time is the broker's own work between two messages, and a stretch
 * of the machine not running the test (a loaded CI runner) is not counted. */
static int64_t thread_cpu_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

typedef struct {
    zsock_t *sock;
    int64_t last_heard_ms; /* the broker's last message */
    int64_t last_heard_cpu_ms;
    int64_t last_sent_ms;
    int64_t longest_silence_ms;
    int64_t longest_silence_cpu_ms; /* in thread_cpu_ms: what the flood may not stretch */
    bool disconnected;     /* the broker told it to register again: it was lost */
} fake_worker_t;

static void worker_step(fake_worker_t *w)
{
    syn_msg_t *msg = NULL;
    char err[256];
    int64_t now = syn_mono_ms(), cpu = thread_cpu_ms();
    while (syn_msg_recv(zsock_resolve(w->sock), &msg, NULL, NULL, err, sizeof err) == 0) {
        if (now - w->last_heard_ms > w->longest_silence_ms)
            w->longest_silence_ms = now - w->last_heard_ms;
        if (cpu - w->last_heard_cpu_ms > w->longest_silence_cpu_ms)
            w->longest_silence_cpu_ms = cpu - w->last_heard_cpu_ms;
        w->last_heard_ms = now;
        w->last_heard_cpu_ms = cpu;
        if (syn_msg_type(msg) == SYN_MSG_DISCONNECT)
            w->disconnected = true;
        syn_msg_destroy(&msg);
    }
    if (now - w->last_sent_ms >= HEARTBEAT_MS) {
        syn_msg_t *hb = syn_msg_new_with(SYN_MSG_HEARTBEAT, json_object());
        syn_msg_send(zsock_resolve(w->sock), NULL, 0, hb);
        syn_msg_destroy(&hb);
        w->last_sent_ms = now;
    }
}

/* A broker on loopback over a new database in dir (a mkdtemp template). */
static broker_t *new_broker(char *dir)
{
    assert_non_null(mkdtemp(dir));
    broker_config_t config = {
        .data_dir = dir,
        .clients = "tcp://127.0.0.1:*",
        .workers = "tcp://127.0.0.1:*",
        .events = "tcp://127.0.0.1:*",
        .heartbeat_ms = HEARTBEAT_MS,
        .liveness = BROKER_LIVENESS,
        .kill_grace_ms = 100,
    };
    char err[512];
    broker_t *broker = broker_new(&config, err, sizeof err);
    assert_non_null(broker);
    return broker;
}

static void destroy_broker(broker_t **broker_p, const char *dir)
{
    broker_destroy(broker_p);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

static void test_flood_leaves_heartbeats_on_time(void **state)
{
    (void)state;
    char dir[] = "/tmp/syn-budget-XXXXXX";
    broker_t *broker = new_broker(dir);

    /* An event log worth replaying: executions nobody runs. */
    zsock_t *client = zsock_new_dealer(broker_clients_endpoint(broker));
    send_request(client, 1, "workflow.create",
                 json_pack("{s:s, s:s, s:[{s:s, s:s, s:i, s:s}]}", "id", "wf", "name", "wf",
                           "phases", "phase_id", "p1", "name", "p1", "order", 1,
                           "prompt_template", "do it"));
    for (int i = 0; i < EXECUTIONS; i++)
        send_request(client, 2 + i, "execution.start", json_pack("{s:s}", "workflow_id", "wf"));
    int replies = 0, status = 0;
    for (wait_t w = wait_begin(30000); replies < EXECUTIONS + 1 && wait_next(&w);) {
        broker_poll(broker, 10);
        replies += take_replies(client, &status);
    }
    assert_int_equal(replies, EXECUTIONS + 1);

    /* A worker offering a provider nothing asks for: it only exchanges heartbeats. */
    fake_worker_t worker = {.sock = zsock_new_dealer(broker_workers_endpoint(broker))};
    syn_msg_t *ready = syn_msg_new_with(
        SYN_MSG_READY, json_pack("{s:s, s:i, s:[s], s:[]}", "worker", "w", "slots", 1,
                                 "providers", "nothing", "running"));
    assert_int_equal(syn_msg_send(zsock_resolve(worker.sock), NULL, 0, ready), 0);
    syn_msg_destroy(&ready);
    worker.last_heard_ms = worker.last_sent_ms = syn_mono_ms();
    worker.last_heard_cpu_ms = thread_cpu_ms();
    for (wait_t w = wait_begin(5000); worker.longest_silence_ms == 0 && wait_next(&w);) {
        broker_poll(broker, 10);
        worker_step(&worker);
    }
    worker.longest_silence_ms = worker.longest_silence_cpu_ms = 0;

    /* The flood: every request a replay of a full page. */
    zsock_t *flooders[FLOODERS];
    for (int f = 0; f < FLOODERS; f++) {
        flooders[f] = zsock_new_dealer(broker_clients_endpoint(broker));
        zsock_set_sndhwm(flooders[f], 0);
        for (int i = 0; i < REQUESTS_EACH; i++)
            send_request(flooders[f], i + 1, "events.replay",
                         json_pack("{s:I, s:i}", "after_seq", (json_int_t)0, "limit",
                                   SYN_OP_REPLAY_LIMIT_MAX));
    }
    int flood_replies = 0;
    int64_t longest_turn = 0;
    for (wait_t w = wait_begin(120000);
         flood_replies < FLOODERS * REQUESTS_EACH && wait_next(&w);) {
        int64_t start = syn_mono_ms();
        broker_poll(broker, 10);
        if (syn_mono_ms() - start > longest_turn)
            longest_turn = syn_mono_ms() - start;
        worker_step(&worker);
        for (int f = 0; f < FLOODERS; f++)
            flood_replies += drop_replies(flooders[f]);
    }
    assert_int_equal(flood_replies, FLOODERS * REQUESTS_EACH);
    print_message("measure: longest turn %lld ms, longest heartbeat silence %lld ms "
                  "(%lld ms of CPU), turns over budget %llu\n",
                  (long long)longest_turn, (long long)worker.longest_silence_ms,
                  (long long)worker.longest_silence_cpu_ms,
                  (unsigned long long)broker_stats(broker).budget_turns);
    /* The flood really was one: it took turns past the budget. */
    assert_true(broker_stats(broker).budget_turns > 0);
    /* The worker heard the broker well within its patience (the broker's work between
     * two messages, thread_cpu_ms), and was never lost. */
    assert_true(worker.longest_silence_cpu_ms < HEARTBEAT_MS * LIVENESS);
    assert_false(worker.disconnected);
    send_request(client, 9999, "health", json_object());
    status = 0;
    json_t *health = NULL;
    char err[256];
    for (wait_t w = wait_begin(5000); !health && wait_next(&w);) {
        broker_poll(broker, 10);
        worker_step(&worker);
        syn_msg_t *msg = NULL;
        if (syn_msg_recv(zsock_resolve(client), &msg, NULL, NULL, err, sizeof err) == 0) {
            health = json_incref(json_object_get(syn_msg_fields(msg), "body"));
            syn_msg_destroy(&msg);
        }
    }
    assert_non_null(health);
    assert_int_equal(json_integer_value(json_object_get(health, "workers")), 1);
    json_decref(health);

    for (int f = 0; f < FLOODERS; f++)
        zsock_destroy(&flooders[f]);
    zsock_destroy(&worker.sock);
    zsock_destroy(&client);
    destroy_broker(&broker, dir);
}

/* With a budget of 0 every turn is over it at once: it reads one request and one
 * worker message, however many wait — where the byte and message caps alone would
 * let it read them all. */
static void test_a_turn_yields_at_its_budget(void **state)
{
    (void)state;
    char dir[] = "/tmp/syn-budget-XXXXXX";
    broker_t *broker = new_broker(dir);
    broker_set_turn_budget(broker, 0);
    zsock_t *client = zsock_new_dealer(broker_clients_endpoint(broker));
    zsock_t *worker = zsock_new_dealer(broker_workers_endpoint(broker));
    syn_msg_t *ready = syn_msg_new_with(
        SYN_MSG_READY, json_pack("{s:s, s:i, s:[s], s:[]}", "worker", "w", "slots", 1,
                                 "providers", "nothing", "running"));
    assert_int_equal(syn_msg_send(zsock_resolve(worker), NULL, 0, ready), 0);
    syn_msg_destroy(&ready);
    for (wait_t w = wait_begin(5000);
         broker_stats(broker).worker_messages == 0 && wait_next(&w);)
        broker_poll(broker, 10);
    assert_int_equal(broker_stats(broker).worker_messages, 1);

    enum { WAITING = 64 };
    for (int i = 0; i < WAITING; i++) {
        syn_msg_t *hb = syn_msg_new_with(SYN_MSG_HEARTBEAT, json_object());
        assert_int_equal(syn_msg_send(zsock_resolve(worker), NULL, 0, hb), 0);
        syn_msg_destroy(&hb);
        send_request(client, i + 1, "health", json_object());
    }
    broker_stats_t before = broker_stats(broker);
    int turns = 0, replies = 0;
    uint64_t most_requests = 0, most_worker = 0;
    for (wait_t w = wait_begin(30000); replies < WAITING && wait_next(&w);) {
        broker_stats_t was = broker_stats(broker);
        broker_poll(broker, 10);
        broker_stats_t now = broker_stats(broker);
        if (now.requests - was.requests > most_requests)
            most_requests = now.requests - was.requests;
        if (now.worker_messages - was.worker_messages > most_worker)
            most_worker = now.worker_messages - was.worker_messages;
        replies += drop_replies(client);
        turns++;
    }
    assert_int_equal(replies, WAITING);
    assert_int_equal(most_requests, 1);
    assert_int_equal(most_worker, 1);
    assert_true(turns >= WAITING);
    assert_true(broker_stats(broker).budget_turns - before.budget_turns >= WAITING);

    zsock_destroy(&worker);
    zsock_destroy(&client);
    destroy_broker(&broker, dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_flood_leaves_heartbeats_on_time),
        cmocka_unit_test(test_a_turn_yields_at_its_budget),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
