/* The real syn-broker over CURVE (issue 14): workers are played by raw libzmq
 * DEALERs speaking the protocol (READY, heartbeats, RESULT), a gateway by a
 * DEALER making requests; everything on random loopback ports. Rogue workers (no
 * key, PLAIN credentials, an unknown key, a wrong broker key) never receive a
 * message while a known worker runs every phase; each refusal is in the broker's
 * log; a key removed and SIGHUP'd is refused on its next connection; a second
 * key claiming a worker's name is told why and given nothing. And the --insecure
 * rule: without keys a non-loopback endpoint is refused before anything binds. */
#include "bench/synload/localproc.h"
#include "broker/broker.h"
#include "proto/msg.h"
#include "tests/support/certs.h"
#include "tests/support/wait.h"

#include <czmq.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#define DEADLINE_MS 20000
#define HEARTBEAT_MS 200

typedef struct {
    char dir[64];
    char keys[96];     /* dir/authorized */
    char log[96];      /* dir/broker.log */
    char secret[96];   /* dir/broker.key_secret */
    char clients_ep[LOCALPROC_ADDR_SIZE], workers_ep[LOCALPROC_ADDR_SIZE],
        events_ep[LOCALPROC_ADDR_SIZE];
    char broker_public[41];
    pid_t broker;
    zcert_t *gateway;  /* authorized: makes the requests */
    zsock_t *client;
    int next_id;
    bool passed;
} secure_stack_t;

/* A worker played by a DEALER: answers every ASSIGN with a completed RESULT when
 * it is a real one, and remembers what it was sent. */
typedef struct {
    const char *name;
    zsock_t *sock;
    bool answers;
    int assigns, messages, disconnects;
    char reason[256];
    long long last_heartbeat;
} fake_t;

static long long now_ms(void)
{
    return wait_now_ms();
}

/* --- the broker's log --------------------------------------------------------- */

static char *read_file(const char *path)
{
    FILE *in = fopen(path, "r");
    if (!in)
        return strdup("");
    char *text = calloc(1, 1 << 20);
    size_t n = fread(text, 1, (1 << 20) - 1, in);
    text[n] = '\0';
    fclose(in);
    return text;
}

/* Lines of the log holding needle and also (when not NULL) also. */
static int log_lines(secure_stack_t *s, const char *needle, const char *also)
{
    char *text = read_file(s->log);
    int count = 0;
    for (char *save = NULL, *line = strtok_r(text, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save))
        count += strstr(line, needle) && (!also || strstr(line, also));
    free(text);
    return count;
}

static int log_count(secure_stack_t *s, const char *needle)
{
    char *text = read_file(s->log);
    int count = 0;
    for (const char *p = text; (p = strstr(p, needle)); p += strlen(needle))
        count++;
    free(text);
    return count;
}

static void fail_with_log(secure_stack_t *s, const char *what)
{
    char *text = read_file(s->log);
    fprintf(stderr, "--- broker log ---\n%s---\n", text);
    free(text);
    fail_msg("%s", what);
}

/* --- keys and the broker process ------------------------------------------------ */

static zcert_t *make_cert(secure_stack_t *s, const char *name, bool authorize)
{
    return testcerts_make(s->keys, name, authorize);
}

static pid_t spawn(const char *log, char **argv)
{
    pid_t pid = fork();
    if (pid == 0) {
        localproc_redirect_child(log);
        execv(argv[0], argv);
        _exit(127);
    }
    return pid;
}

/* Runs syn-broker with extra (NULL-ended) arguments, output to log, waits for it
 * to exit: its exit code, or -1 when it was still running after DEADLINE_MS. */
static int run_broker_to_exit(const char *log, char **extra)
{
    char *argv[24] = {SYN_BIN_DIR "/syn-broker"};
    int argc = 1;
    for (int i = 0; extra[i] && argc < 23; i++)
        argv[argc++] = extra[i];
    pid_t pid = spawn(log, argv);
    wait_t w = wait_begin(DEADLINE_MS);
    int status;
    while (waitpid(pid, &status, WNOHANG) == 0) {
        if (!wait_next(&w)) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            return -1;
        }
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static void wait_lines(secure_stack_t *s, const char *needle, const char *also, int want)
{
    for (wait_t w = wait_begin(DEADLINE_MS); log_lines(s, needle, also) < want;) {
        if (!wait_next(&w)) {
            char what[512];
            snprintf(what, sizeof what, "no %d line(s) with '%s' and '%s' in the broker's log",
                     want, needle, also ? also : "");
            fail_with_log(s, what);
        }
    }
}

static void wait_log(secure_stack_t *s, const char *needle, int want)
{
    wait_lines(s, needle, NULL, want);
}

static int setup(void **state)
{
    secure_stack_t *s = calloc(1, sizeof *s);
    snprintf(s->dir, sizeof s->dir, "/tmp/syn-security-XXXXXX");
    assert_non_null(mkdtemp(s->dir));
    snprintf(s->keys, sizeof s->keys, "%s/authorized", s->dir);
    assert_int_equal(mkdir(s->keys, 0700), 0);
    snprintf(s->log, sizeof s->log, "%s/broker.log", s->dir);
    char path[160];
    snprintf(path, sizeof path, "%s/broker.key", s->dir);
    zcert_t *broker = zcert_new();
    assert_int_equal(zcert_save(broker, path), 0);
    snprintf(s->broker_public, sizeof s->broker_public, "%s", zcert_public_txt(broker));
    zcert_destroy(&broker);
    snprintf(s->secret, sizeof s->secret, "%s/broker.key_secret", s->dir);
    s->gateway = make_cert(s, "gateway", true);
    *state = s;
    return 0;
}

static void start_broker(secure_stack_t *s)
{
    assert_int_equal(localproc_stack_addresses((char[LOCALPROC_ADDR_SIZE]){0},
                                               (char[LOCALPROC_ADDR_SIZE]){0}, s->clients_ep,
                                               s->workers_ep, s->events_ep),
                     0);
    char data[128];
    snprintf(data, sizeof data, "%s/var", s->dir);
    char *argv[] = {SYN_BIN_DIR "/syn-broker", "--data", data, "--clients", s->clients_ep,
                    "--workers", s->workers_ep, "--events", s->events_ep, "--curve-secret",
                    s->secret, "--authorized-keys", s->keys, "--heartbeat-ms", "200",
                    "--liveness", "5", NULL};
    s->broker = spawn(s->log, argv);
    assert_true(s->broker > 0);
    wait_log(s, "listening clients=", 1);
    s->client = zsock_new(ZMQ_DEALER);
    zsock_set_linger(s->client, 0);
    zcert_apply(s->gateway, s->client);
    zsock_set_curve_serverkey(s->client, s->broker_public);
    assert_int_equal(zsock_connect(s->client, "%s", s->clients_ep), 0);
}

static int teardown(void **state)
{
    secure_stack_t *s = *state;
    zsock_destroy(&s->client);
    if (s->broker > 0) {
        kill(s->broker, SIGTERM);
        waitpid(s->broker, NULL, 0);
    }
    if (!s->passed || getenv("SYN_TEST_LOGS")) {
        char *text = read_file(s->log);
        fprintf(stderr, "--- broker log ---\n%s---\n", text);
        free(text);
    }
    zcert_destroy(&s->gateway);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", s->dir);
    assert_int_equal(system(cmd), 0);
    free(s);
    return 0;
}

/* --- workers and requests ---------------------------------------------------- */

typedef enum { PLAINTEXT, PLAIN_PASSWORD, CURVE_KEY, CURVE_WRONG_BROKER } mech_t;

/* Sends without blocking: 0, or -1 when there is no peer to queue for. A
 * rogue's DEALER has none between a refused handshake and its reconnect, so
 * what a fake worker sends unasked (READY, heartbeats) may fail that way: not
 * asserted, since a good worker whose READY or heartbeat is lost shows as a
 * worker missing or lost and fails the test where it matters. */
static int try_send(zsock_t *sock, syn_msg_type_t type, json_t *fields)
{
    syn_msg_t *msg = syn_msg_new_with(type, fields);
    int rc = syn_msg_send(zsock_resolve(sock), NULL, 0, msg);
    syn_msg_destroy(&msg);
    return rc;
}

static void send_msg(zsock_t *sock, syn_msg_type_t type, json_t *fields)
{
    assert_int_equal(try_send(sock, type, fields), 0);
}

/* Connects as a worker named name and says READY (it waits in the DEALER's queue
 * until a handshake succeeds, which for a rogue is never). */
static fake_t fake_new(secure_stack_t *s, const char *name, mech_t mech, zcert_t *cert, bool answers)
{
    fake_t w = {.name = name, .sock = zsock_new(ZMQ_DEALER), .answers = answers};
    zsock_set_linger(w.sock, 0);
    if (mech == PLAIN_PASSWORD) {
        zsock_set_plain_username(w.sock, "admin");
        zsock_set_plain_password(w.sock, "admin");
    } else if (mech == CURVE_KEY || mech == CURVE_WRONG_BROKER) {
        zcert_apply(cert, w.sock);
        zcert_t *other = zcert_new();
        zsock_set_curve_serverkey(w.sock, mech == CURVE_KEY ? s->broker_public
                                                            : zcert_public_txt(other));
        zcert_destroy(&other);
    }
    assert_int_equal(zsock_connect(w.sock, "%s", s->workers_ep), 0);
    (void)try_send(w.sock, SYN_MSG_READY,
             json_pack("{s:s, s:i, s:[s], s:[]}", "worker", name, "slots", 1, "providers",
                       "mock", "running"));
    w.last_heartbeat = now_ms();
    return w;
}

static void fake_handle(fake_t *w, syn_msg_t *msg)
{
    w->messages++;
    const json_t *fields = syn_msg_fields(msg);
    switch (syn_msg_type(msg)) {
    case SYN_MSG_ASSIGN:
        w->assigns++;
        if (w->answers)
            send_msg(w->sock, SYN_MSG_RESULT,
                     json_pack("{s:O, s:O, s:O, s:s, s:s, s:n, s:i}", "execution_id",
                               json_object_get(fields, "execution_id"), "phase_id",
                               json_object_get(fields, "phase_id"), "attempt",
                               json_object_get(fields, "attempt"), "status", "completed",
                               "output", "done", "error", "exit_code", 0));
        break;
    case SYN_MSG_DISCONNECT: {
        w->disconnects++;
        const char *reason = json_string_value(json_object_get(fields, "reason"));
        snprintf(w->reason, sizeof w->reason, "%s", reason ? reason : "");
        break;
    }
    default:
        break;
    }
}

/* Runs the fakes for up to ms (until a reply with id arrives on the client when
 * id > 0): the reply's body, or NULL. */
static json_t *pump(secure_stack_t *s, fake_t *fakes, int n, int ms, int id)
{
    long long deadline = now_ms() + ms;
    while (now_ms() < deadline) {
        zmq_pollitem_t items[16];
        items[0] = (zmq_pollitem_t){zsock_resolve(s->client), 0, ZMQ_POLLIN, 0};
        for (int i = 0; i < n; i++)
            items[1 + i] = (zmq_pollitem_t){zsock_resolve(fakes[i].sock), 0, ZMQ_POLLIN, 0};
        zmq_poll(items, 1 + n, 20);
        char err[256];
        syn_msg_t *msg = NULL;
        for (int i = 0; i < n; i++) {
            while (syn_msg_recv(zsock_resolve(fakes[i].sock), &msg, NULL, NULL, err,
                                sizeof err) == 0) {
                fake_handle(&fakes[i], msg);
                syn_msg_destroy(&msg);
            }
            if (fakes[i].answers && now_ms() - fakes[i].last_heartbeat >= HEARTBEAT_MS) {
                (void)try_send(fakes[i].sock, SYN_MSG_HEARTBEAT, json_object());
                fakes[i].last_heartbeat = now_ms();
            }
        }
        while (syn_msg_recv(zsock_resolve(s->client), &msg, NULL, NULL, err, sizeof err) == 0) {
            const json_t *fields = syn_msg_fields(msg);
            if (id > 0 && json_integer_value(json_object_get(fields, "id")) == id) {
                json_t *body = json_incref(json_object_get(fields, "body"));
                syn_msg_destroy(&msg);
                return body;
            }
            syn_msg_destroy(&msg);
        }
    }
    return NULL;
}

static json_t *call(secure_stack_t *s, fake_t *fakes, int n, const char *op, json_t *args)
{
    int id = ++s->next_id;
    send_msg(s->client, SYN_MSG_REQUEST,
             json_pack("{s:i, s:s, s:o}", "id", id, "op", op, "args", args));
    json_t *body = pump(s, fakes, n, DEADLINE_MS, id);
    if (!body)
        fail_with_log(s, "no reply from the broker");
    return body;
}

/* Creates a 3-phase workflow and runs one execution to its end while the fakes
 * run: its final status. */
static char *run_workflow(secure_stack_t *s, fake_t *fakes, int n, const char *workflow_id)
{
    json_t *body = call(
        s, fakes, n, "workflow.create",
        json_pack("{s:s, s:s, s:[{s:s, s:s, s:i, s:s}, {s:s, s:s, s:i, s:s},"
                  " {s:s, s:s, s:i, s:s}]}",
                  "id", workflow_id, "name", "Secure", "phases", "phase_id", "a", "name", "A",
                  "order", 1, "prompt_template", "one", "phase_id", "b", "name", "B", "order", 2,
                  "prompt_template", "two {{a}}", "phase_id", "c", "name", "C", "order", 3,
                  "prompt_template", "three {{b}}"));
    json_decref(body);
    body = call(s, fakes, n, "execution.start",
                json_pack("{s:s, s:{}}", "workflow_id", workflow_id, "inputs"));
    char *id = strdup(json_string_value(json_object_get(body, "execution_id")) ?: "");
    json_decref(body);
    assert_true(id[0]);
    wait_t w = wait_begin(DEADLINE_MS);
    char *status = NULL;
    while (now_ms() < w.deadline_ms) {
        body = call(s, fakes, n, "execution.status",
                    json_pack("{s:s, s:s}", "workflow_id", workflow_id, "execution_id", id));
        free(status);
        status = strdup(json_string_value(json_object_get(body, "status")) ?: "?");
        json_decref(body);
        if (strcmp(status, "completed") == 0 || strcmp(status, "failed") == 0)
            break;
        pump(s, fakes, n, 100, 0);
    }
    free(id);
    return status;
}

/* A DEALER with cert's keys whose next handshake event is returned. */
static int handshake_of(secure_stack_t *s, zcert_t *cert)
{
    static int seq;
    zsock_t *dealer = zsock_new(ZMQ_DEALER), *monitor = zsock_new(ZMQ_PAIR);
    zsock_set_linger(dealer, 0);
    zcert_apply(cert, dealer);
    zsock_set_curve_serverkey(dealer, s->broker_public);
    char ep[64];
    snprintf(ep, sizeof ep, "inproc://security-monitor-%d", ++seq);
    assert_int_equal(zmq_socket_monitor(zsock_resolve(dealer), ep,
                                        ZMQ_EVENT_HANDSHAKE_SUCCEEDED |
                                            ZMQ_EVENT_HANDSHAKE_FAILED_AUTH),
                     0);
    assert_int_equal(zsock_connect(monitor, "%s", ep), 0);
    assert_int_equal(zsock_connect(dealer, "%s", s->workers_ep), 0);
    zsock_set_rcvtimeo(monitor, DEADLINE_MS);
    zmsg_t *event = zmsg_recv(monitor);
    uint16_t kind = 0;
    if (event)
        memcpy(&kind, zframe_data(zmsg_first(event)), 2);
    zmsg_destroy(&event);
    zsock_destroy(&monitor);
    zsock_destroy(&dealer);
    return kind;
}

/* --- tests ------------------------------------------------------------------- */

static void test_rogues_get_nothing_known_worker_gets_everything(void **state)
{
    secure_stack_t *s = *state;
    zcert_t *good = make_cert(s, "good", true);
    zcert_t *stranger = make_cert(s, "stranger", false);
    start_broker(s);
    assert_int_equal(log_count(s, "CURVE on clients, workers and events"), 1);
    assert_int_equal(log_count(s, "authorized_keys=2"), 1);
    fake_t fakes[] = {
        fake_new(s, "rogue-plaintext", PLAINTEXT, NULL, true),
        fake_new(s, "rogue-password", PLAIN_PASSWORD, NULL, true),
        fake_new(s, "rogue-unknown", CURVE_KEY, stranger, true),
        fake_new(s, "rogue-wrong-broker", CURVE_WRONG_BROKER, good, true),
        fake_new(s, "good", CURVE_KEY, good, true),
    };
    int n = sizeof fakes / sizeof *fakes;
    /* The events feed: open to an authorized key only. */
    zsock_t *sub = zsock_new(ZMQ_SUB), *plain_sub = zsock_new(ZMQ_SUB);
    zcert_apply(s->gateway, sub);
    zsock_set_curve_serverkey(sub, s->broker_public);
    zsock_set_subscribe(sub, "");
    zsock_set_subscribe(plain_sub, "");
    assert_int_equal(zsock_connect(sub, "%s", s->events_ep), 0);
    assert_int_equal(zsock_connect(plain_sub, "%s", s->events_ep), 0);

    char *status = run_workflow(s, fakes, n, "wf-secure");
    assert_string_equal(status, "completed");
    free(status);
    assert_int_equal(fakes[4].assigns, 3);
    for (int i = 0; i < 4; i++)
        if (fakes[i].messages != 0)
            fail_msg("rogue %s received %d message(s)", fakes[i].name, fakes[i].messages);
    assert_int_equal(log_count(s, "worker ready worker=good"), 1);
    assert_int_equal(log_count(s, "worker=rogue"), 0);

    /* Each refusal in the log: the unknown key with its key and address, the
     * clients without CURVE, the one that holds another broker key. */
    char line[200];
    snprintf(line, sizeof line, "connection refused socket=workers address=127.0.0.1 key=%s",
             zcert_public_txt(stranger));
    wait_log(s, line, 1);
    /* libzmq reports a plaintext client as a mechanism mismatch, or, when the
     * client hung up first, as a handshake that failed without detail. */
    wait_lines(s, "connection refused socket=workers", "without CURVE", 1);
    wait_lines(s, "connection refused socket=workers", "does not decrypt", 1);

    zmq_pollitem_t items[] = {{zsock_resolve(sub), 0, ZMQ_POLLIN, 0},
                              {zsock_resolve(plain_sub), 0, ZMQ_POLLIN, 0}};
    assert_int_equal(zmq_poll(items, 2, 0) >= 1, 1);
    assert_true(items[0].revents & ZMQ_POLLIN);
    assert_false(items[1].revents & ZMQ_POLLIN);
    wait_lines(s, "connection refused socket=events", "without CURVE", 1);

    zsock_destroy(&plain_sub);
    zsock_destroy(&sub);
    for (int i = 0; i < n; i++)
        zsock_destroy(&fakes[i].sock);
    zcert_destroy(&stranger);
    zcert_destroy(&good);
    s->passed = true;
}

static void test_removed_key_refused_after_sighup(void **state)
{
    secure_stack_t *s = *state;
    zcert_t *good = make_cert(s, "good", true);
    start_broker(s);
    assert_int_equal(handshake_of(s, good), ZMQ_EVENT_HANDSHAKE_SUCCEEDED);
    char path[160];
    snprintf(path, sizeof path, "%s/good.key", s->keys);
    assert_int_equal(unlink(path), 0);
    /* Only SIGHUP reads the directory again. */
    assert_int_equal(handshake_of(s, good), ZMQ_EVENT_HANDSHAKE_SUCCEEDED);
    kill(s->broker, SIGHUP);
    wait_log(s, "authorized keys reloaded keys=1", 1);
    assert_int_equal(handshake_of(s, good), ZMQ_EVENT_HANDSHAKE_FAILED_AUTH);
    char line[200];
    snprintf(line, sizeof line, "connection refused socket=workers address=127.0.0.1 key=%s",
             zcert_public_txt(good));
    wait_log(s, line, 1);
    /* And a worker with that key gets no work any more. */
    fake_t fakes[] = {fake_new(s, "good", CURVE_KEY, good, true)};
    json_t *body = call(s, fakes, 1, "execution.active", json_object());
    json_decref(body);
    assert_int_equal(fakes[0].messages, 0);
    assert_int_equal(log_count(s, "worker ready"), 0);
    /* The key comes back with its file and another SIGHUP. */
    assert_int_equal(zcert_save_public(good, path), 0);
    kill(s->broker, SIGHUP);
    wait_log(s, "authorized keys reloaded keys=2", 1);
    assert_int_equal(handshake_of(s, good), ZMQ_EVENT_HANDSHAKE_SUCCEEDED);
    zsock_destroy(&fakes[0].sock);
    zcert_destroy(&good);
    s->passed = true;
}

static void test_one_name_two_keys(void **state)
{
    secure_stack_t *s = *state;
    zcert_t *first = make_cert(s, "first", true);
    zcert_t *second = make_cert(s, "second", true);
    start_broker(s);
    fake_t fakes[2] = {fake_new(s, "twin", CURVE_KEY, first, true)};
    wait_log(s, "worker ready worker=twin", 1);
    fakes[1] = fake_new(s, "twin", CURVE_KEY, second, true);
    char line[200];
    snprintf(line, sizeof line, "refused worker name=twin key=%.8s: the name is held by key=%.8s",
             zcert_public_txt(second), zcert_public_txt(first));
    wait_log(s, line, 1);
    char *status = run_workflow(s, fakes, 2, "wf-twin");
    assert_string_equal(status, "completed");
    free(status);
    assert_int_equal(fakes[0].assigns, 3);
    assert_int_equal(fakes[1].assigns, 0);
    assert_int_equal(fakes[1].disconnects, 1);
    assert_string_equal(fakes[1].reason, "worker name twin is held by another key");
    assert_int_equal(log_count(s, "worker ready worker=twin"), 1);
    zsock_destroy(&fakes[0].sock);
    zsock_destroy(&fakes[1].sock);
    zcert_destroy(&second);
    zcert_destroy(&first);
    s->passed = true;
}

static void test_insecure_rule(void **state)
{
    secure_stack_t *s = *state;
    int port = localproc_free_port();
    char data[128], workers[64], clients[64], events[64];
    snprintf(data, sizeof data, "%s/var", s->dir);
    snprintf(workers, sizeof workers, "tcp://0.0.0.0:%d", port);
    assert_int_equal(localproc_stack_addresses((char[LOCALPROC_ADDR_SIZE]){0},
                                               (char[LOCALPROC_ADDR_SIZE]){0}, clients,
                                               (char[LOCALPROC_ADDR_SIZE]){0}, events),
                     0);
    /* Refused before anything binds: exit 2, one line naming the flag and the remedy. */
    char *open_workers[] = {"--data", data, "--clients", clients, "--workers", workers,
                            "--events", events, NULL};
    assert_int_equal(run_broker_to_exit(s->log, open_workers), 2);
    char want[400];
    snprintf(want, sizeof want,
             "error: --workers %s is not a loopback address and the broker has no CURVE key: "
             "give --curve-secret FILE and --authorized-keys DIR, or --insecure to leave the "
             "links open\n",
             workers);
    char *text = read_file(s->log);
    assert_string_equal(text, want);
    free(text);
    struct stat st;
    assert_int_equal(stat(data, &st), -1); /* it did not even open its data */

    /* A secret without the keys allowed in. */
    assert_int_equal(unlink(s->log), 0);
    char *no_keys[] = {"--data", data, "--clients", clients, "--curve-secret", s->secret, NULL};
    assert_int_equal(run_broker_to_exit(s->log, no_keys), 2);
    assert_int_equal(log_count(s, "error: --curve-secret needs --authorized-keys DIR"), 1);

    /* --insecure passes the check (tested through it: no test binds a
     * non-loopback address) and, on loopback, starts with a warning. */
    broker_config_t config = {.clients = clients, .workers = workers, .events = events,
                              .insecure = true};
    char err[512];
    assert_int_equal(broker_config_check(&config, err, sizeof err), 0);
    config.insecure = false;
    assert_int_equal(broker_config_check(&config, err, sizeof err), -1);
    assert_non_null(strstr(err, "--workers tcp://0.0.0.0:"));
    config.workers = "tcp://127.0.0.1:1";
    assert_int_equal(broker_config_check(&config, err, sizeof err), 0);
    /* --metrics has no authentication: off loopback only with --insecure, even
     * with CURVE on the sockets. */
    config.metrics = "0.0.0.0:9100";
    assert_int_equal(broker_config_check(&config, err, sizeof err), -1);
    assert_non_null(strstr(err, "--metrics 0.0.0.0:9100"));
    config.curve_secret = s->secret;
    config.authorized_keys = "/nonexistent";
    assert_int_equal(broker_config_check(&config, err, sizeof err), -1);
    config.insecure = true;
    assert_int_equal(broker_config_check(&config, err, sizeof err), 0);
    config = (broker_config_t){.clients = clients, .workers = "tcp://127.0.0.1:1",
                               .events = events, .metrics = "127.0.0.1:9100"};
    assert_int_equal(broker_config_check(&config, err, sizeof err), 0);

    assert_int_equal(unlink(s->log), 0);
    snprintf(workers, sizeof workers, "tcp://127.0.0.1:%d", port);
    char *argv[] = {SYN_BIN_DIR "/syn-broker", "--data", data, "--clients", clients,
                    "--workers", workers, "--events", events, "--insecure", NULL};
    s->broker = spawn(s->log, argv);
    wait_log(s, "listening clients=", 1);
    assert_int_equal(log_count(s, "WARN  broker  --insecure: no CURVE"), 1);
    s->passed = true;
}

int main(void)
{
    zsys_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_rogues_get_nothing_known_worker_gets_everything,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_removed_key_refused_after_sighup, setup, teardown),
        cmocka_unit_test_setup_teardown(test_one_name_two_keys, setup, teardown),
        cmocka_unit_test_setup_teardown(test_insecure_rule, setup, teardown),
    };
    return cmocka_run_group_tests_name("security_broker", tests, NULL, NULL);
}
