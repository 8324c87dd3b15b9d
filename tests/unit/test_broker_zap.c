/* The broker's ZAP handler against real CURVE handshakes on loopback TCP: a
 * known key gets in with its User-Id, an unknown key and a plaintext client are
 * refused and logged once per cause per interval, and a reload (the broker's
 * SIGHUP) picks up an added key and drops a removed one. The log is read from
 * stderr, which each test sends to a file (shown when the test fails). */
#include "broker/zap.h"
#include "proto/curve.h"
#include "tests/support/certs.h"
#include "tests/support/wait.h"
#include "proto/msg.h"

#include <czmq.h>
#include <fcntl.h>
#include <stdarg.h>
#include <setjmp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#define DEADLINE_MS 10000

typedef struct {
    char dir[64];        /* scratch: server.key(_secret), stderr.log */
    char keys[96];       /* dir/authorized */
    char log_path[96];
    int saved_stderr;
    bool passed;         /* set at a test's end: otherwise teardown shows the log */
    syn_curve_t *server_curve;
    char server_public[SYN_CURVE_KEY_TXT];
    broker_zap_t *zap;
    zsock_t *router;
    char endpoint[64];
} fx_t;

/* A client certificate; its public part saved in the authorized directory as
 * name.key when authorize is set. */
static zcert_t *client_cert(fx_t *f, const char *name, bool authorize)
{
    return testcerts_make(f->keys, name, authorize);
}

static void unauthorize(fx_t *f, const char *name)
{
    char path[160];
    snprintf(path, sizeof path, "%s/%s.key", f->keys, name);
    assert_int_equal(unlink(path), 0);
}

static char *read_log(fx_t *f)
{
    fflush(stderr);
    FILE *in = fopen(f->log_path, "r");
    assert_non_null(in);
    char *text = calloc(1, 1 << 20);
    size_t n = fread(text, 1, (1 << 20) - 1, in);
    text[n] = '\0';
    fclose(in);
    return text;
}

static int count_in_log(fx_t *f, const char *needle)
{
    char *text = read_log(f);
    int count = 0;
    for (const char *p = text; (p = strstr(p, needle)); p += strlen(needle))
        count++;
    free(text);
    return count;
}

static void wait_log(fx_t *f, const char *needle, int want)
{
    for (wait_t w = wait_begin(DEADLINE_MS); count_in_log(f, needle) < want;) {
        if (!wait_next(&w)) {
            char *text = read_log(f);
            fail_msg("no %d line(s) with '%s' in the log:\n%s", want, needle, text);
        }
    }
}

static int setup(void **state)
{
    fx_t *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/syn-zap-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->keys, sizeof f->keys, "%s/authorized", f->dir);
    assert_int_equal(mkdir(f->keys, 0700), 0);
    snprintf(f->log_path, sizeof f->log_path, "%s/stderr.log", f->dir);
    fflush(stderr);
    f->saved_stderr = dup(2);
    int fd = open(f->log_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    dup2(fd, 2);
    close(fd);

    zcert_t *server = zcert_new();
    char path[160], err[256];
    snprintf(path, sizeof path, "%s/server.key", f->dir);
    assert_int_equal(zcert_save(server, path), 0);
    snprintf(f->server_public, sizeof f->server_public, "%s", zcert_public_txt(server));
    zcert_destroy(&server);
    snprintf(path, sizeof path, "%s/server.key_secret", f->dir);
    f->server_curve = syn_curve_new_server(path, err, sizeof err);
    assert_non_null(f->server_curve);
    *state = f;
    return 0;
}

static void start(fx_t *f)
{
    char err[256];
    f->zap = broker_zap_new(f->keys, 60000, err, sizeof err);
    if (!f->zap)
        fail_msg("broker_zap_new: %s", err);
    f->router = zsock_new(ZMQ_ROUTER);
    zsock_set_linger(f->router, 0);
    syn_curve_apply_server(f->server_curve, f->router, "workers");
    assert_int_equal(broker_zap_watch(f->zap, f->router, "workers"), 0);
    assert_true(zsock_bind(f->router, "tcp://127.0.0.1:*") > 0);
    snprintf(f->endpoint, sizeof f->endpoint, "%s", zsock_endpoint(f->router));
}

static void remove_tree(const char *dir)
{
    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

static int teardown(void **state)
{
    fx_t *f = *state;
    zsock_destroy(&f->router);
    broker_zap_destroy(&f->zap);
    syn_curve_destroy(&f->server_curve);
    fflush(stderr);
    dup2(f->saved_stderr, 2);
    close(f->saved_stderr);
    if (!f->passed) { /* cmocka's own failure message went to the file too */
        char *text = read_log(f);
        fprintf(stderr, "--- stderr of the failed test ---\n%s---\n", text);
        free(text);
    }
    remove_tree(f->dir);
    free(f);
    return 0;
}

/* A DEALER with cert's keys (NULL: plaintext) that watches its own handshake. */
typedef struct {
    zsock_t *dealer;
    zsock_t *monitor;
} client_t;

static client_t client_new(fx_t *f, zcert_t *cert)
{
    static int seq;
    client_t c = {zsock_new(ZMQ_DEALER), zsock_new(ZMQ_PAIR)};
    zsock_set_linger(c.dealer, 0);
    if (cert) {
        zcert_apply(cert, c.dealer);
        zsock_set_curve_serverkey(c.dealer, f->server_public);
    }
    char ep[64];
    snprintf(ep, sizeof ep, "inproc://zap-test-client-%d", ++seq);
    assert_int_equal(zmq_socket_monitor(zsock_resolve(c.dealer), ep,
                                        ZMQ_EVENT_HANDSHAKE_SUCCEEDED |
                                            ZMQ_EVENT_HANDSHAKE_FAILED_AUTH |
                                            ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
                                            ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL),
                     0);
    assert_int_equal(zsock_connect(c.monitor, "%s", ep), 0);
    assert_int_equal(zsock_connect(c.dealer, "%s", f->endpoint), 0);
    return c;
}

static void client_destroy(client_t *c)
{
    zsock_destroy(&c->monitor);
    zsock_destroy(&c->dealer);
}

/* The first handshake event the client sees (ZMQ_EVENT_*). */
static int client_handshake(client_t *c)
{
    zsock_set_rcvtimeo(c->monitor, DEADLINE_MS);
    zmsg_t *msg = zmsg_recv(c->monitor);
    if (!msg)
        fail_msg("no handshake event within %d ms", DEADLINE_MS);
    uint16_t event;
    memcpy(&event, zframe_data(zmsg_first(msg)), 2);
    zmsg_destroy(&msg);
    return event;
}

static void send_heartbeat(client_t *c)
{
    syn_msg_t *hb = syn_msg_new(SYN_MSG_HEARTBEAT);
    assert_int_equal(syn_msg_send(zsock_resolve(c->dealer), NULL, 0, hb), 0);
    syn_msg_destroy(&hb);
}

/* The User-Id of the next message on the router; fails when none comes. */
static void expect_message_from(fx_t *f, const char *user_id)
{
    zmq_pollitem_t item = {zsock_resolve(f->router), 0, ZMQ_POLLIN, 0};
    assert_int_equal(zmq_poll(&item, 1, DEADLINE_MS), 1);
    unsigned char identity[256];
    size_t identity_len = sizeof identity;
    syn_msg_peer_t peer;
    char err[256];
    syn_msg_t *msg = NULL;
    assert_int_equal(syn_msg_recv_peer(zsock_resolve(f->router), &msg, identity, &identity_len,
                                       &peer, err, sizeof err),
                     0);
    assert_int_equal(syn_msg_type(msg), SYN_MSG_HEARTBEAT);
    assert_string_equal(peer.user_id, user_id);
    syn_msg_destroy(&msg);
}

static void expect_nothing_received(fx_t *f)
{
    zmq_pollitem_t item = {zsock_resolve(f->router), 0, ZMQ_POLLIN, 0};
    assert_int_equal(zmq_poll(&item, 1, 0), 0);
}

static void test_known_key_gets_in_with_its_user_id(void **state)
{
    fx_t *f = *state;
    zcert_t *cert = client_cert(f, "worker1", true);
    start(f);
    assert_int_equal(broker_zap_key_count(f->zap), 1);
    client_t c = client_new(f, cert);
    send_heartbeat(&c);
    assert_int_equal(client_handshake(&c), ZMQ_EVENT_HANDSHAKE_SUCCEEDED);
    expect_message_from(f, zcert_public_txt(cert));
    assert_int_equal(count_in_log(f, "connection refused"), 0);
    client_destroy(&c);
    zcert_destroy(&cert);
    f->passed = true;
}

static void test_unknown_key_refused_and_logged_once_per_interval(void **state)
{
    fx_t *f = *state;
    zcert_t *known = client_cert(f, "worker1", true);
    zcert_t *stranger = client_cert(f, "stranger", false);
    start(f);
    for (int i = 0; i < 3; i++) {
        client_t c = client_new(f, stranger);
        send_heartbeat(&c);
        assert_int_equal(client_handshake(&c), ZMQ_EVENT_HANDSHAKE_FAILED_AUTH);
        client_destroy(&c);
    }
    char line[160];
    snprintf(line, sizeof line, "connection refused socket=workers address=127.0.0.1 key=%s",
             zcert_public_txt(stranger));
    wait_log(f, line, 1);
    assert_int_equal(count_in_log(f, "connection refused"), 1);
    expect_nothing_received(f);
    /* Another key is another cause: its own line. */
    zcert_t *other = client_cert(f, "other", false);
    client_t c = client_new(f, other);
    assert_int_equal(client_handshake(&c), ZMQ_EVENT_HANDSHAKE_FAILED_AUTH);
    client_destroy(&c);
    wait_log(f, zcert_public_txt(other), 1);
    assert_int_equal(count_in_log(f, "connection refused"), 2);
    /* The known key is unaffected. */
    c = client_new(f, known);
    send_heartbeat(&c);
    expect_message_from(f, zcert_public_txt(known));
    client_destroy(&c);
    zcert_destroy(&other);
    zcert_destroy(&stranger);
    zcert_destroy(&known);
    f->passed = true;
}

static void test_plaintext_client_never_reaches_the_socket_and_is_logged(void **state)
{
    fx_t *f = *state;
    start(f);
    client_t c = client_new(f, NULL);
    send_heartbeat(&c);
    wait_log(f, "connection refused socket=workers", 1);
    wait_log(f, "without CURVE", 1);
    expect_nothing_received(f);
    client_destroy(&c);
    f->passed = true;
}

static void test_reload_adds_and_drops_keys(void **state)
{
    fx_t *f = *state;
    zcert_t *old_key = client_cert(f, "old", true);
    start(f);
    zcert_t *new_key = client_cert(f, "new", true);
    unauthorize(f, "old");

    /* Before the reload the directory is not read again. */
    client_t c = client_new(f, new_key);
    assert_int_equal(client_handshake(&c), ZMQ_EVENT_HANDSHAKE_FAILED_AUTH);
    client_destroy(&c);
    c = client_new(f, old_key);
    send_heartbeat(&c);
    expect_message_from(f, zcert_public_txt(old_key));
    client_destroy(&c);

    char err[256];
    assert_int_equal(broker_zap_reload(f->zap, err, sizeof err), 1);
    assert_int_equal(broker_zap_key_count(f->zap), 1);
    c = client_new(f, old_key);
    assert_int_equal(client_handshake(&c), ZMQ_EVENT_HANDSHAKE_FAILED_AUTH);
    client_destroy(&c);
    c = client_new(f, new_key);
    send_heartbeat(&c);
    assert_int_equal(client_handshake(&c), ZMQ_EVENT_HANDSHAKE_SUCCEEDED);
    expect_message_from(f, zcert_public_txt(new_key));
    client_destroy(&c);

    /* A directory that went away: the keys loaded before stay in force. */
    remove_tree(f->keys);
    assert_int_equal(broker_zap_reload(f->zap, err, sizeof err), -1);
    assert_non_null(strstr(err, f->keys));
    c = client_new(f, new_key);
    assert_int_equal(client_handshake(&c), ZMQ_EVENT_HANDSHAKE_SUCCEEDED);
    client_destroy(&c);
    zcert_destroy(&new_key);
    zcert_destroy(&old_key);
    f->passed = true;
}

/* A worker key may use the workers socket only, a gateway key the others only,
 * a key without a role all of them; a role nobody knows keeps the file out. */
static void test_roles_keep_each_key_to_its_sockets(void **state)
{
    fx_t *f = *state;
    zcert_t *worker = zcert_new(), *gateway = zcert_new(), *weird = zcert_new();
    zcert_set_meta(worker, "role", "worker");
    zcert_set_meta(gateway, "role", "gateway");
    zcert_set_meta(weird, "role", "superuser");
    char path[160];
    snprintf(path, sizeof path, "%s/worker.key", f->keys);
    assert_int_equal(zcert_save_public(worker, path), 0);
    snprintf(path, sizeof path, "%s/gateway.key", f->keys);
    assert_int_equal(zcert_save_public(gateway, path), 0);
    snprintf(path, sizeof path, "%s/weird.key", f->keys);
    assert_int_equal(zcert_save_public(weird, path), 0);
    zcert_t *any = client_cert(f, "any", true);
    start(f);
    assert_int_equal(broker_zap_key_count(f->zap), 3);
    assert_int_equal(count_in_log(f, "unknown role 'superuser'"), 1);

    client_t c = client_new(f, worker);
    send_heartbeat(&c);
    expect_message_from(f, zcert_public_txt(worker));
    client_destroy(&c);
    c = client_new(f, any);
    send_heartbeat(&c);
    expect_message_from(f, zcert_public_txt(any));
    client_destroy(&c);
    c = client_new(f, gateway);
    assert_int_equal(client_handshake(&c), ZMQ_EVENT_HANDSHAKE_FAILED_AUTH);
    client_destroy(&c);
    wait_log(f, "a gateway key may not use this socket", 1);

    /* The clients socket: the other way round. */
    zsock_t *workers = f->router;
    f->router = zsock_new(ZMQ_ROUTER);
    zsock_set_linger(f->router, 0);
    syn_curve_apply_server(f->server_curve, f->router, "clients");
    assert_true(zsock_bind(f->router, "tcp://127.0.0.1:*") > 0);
    snprintf(f->endpoint, sizeof f->endpoint, "%s", zsock_endpoint(f->router));
    c = client_new(f, gateway);
    send_heartbeat(&c);
    expect_message_from(f, zcert_public_txt(gateway));
    client_destroy(&c);
    c = client_new(f, worker);
    assert_int_equal(client_handshake(&c), ZMQ_EVENT_HANDSHAKE_FAILED_AUTH);
    client_destroy(&c);
    wait_log(f, "socket=clients address=127.0.0.1", 1);
    wait_log(f, "a worker key may not use this socket", 1);
    expect_nothing_received(f);
    zsock_destroy(&workers);
    zcert_destroy(&any);
    zcert_destroy(&weird);
    zcert_destroy(&gateway);
    zcert_destroy(&worker);
    f->passed = true;
}

static void test_directory_read_as_certificates(void **state)
{
    fx_t *f = *state;
    char err[256];
    /* No directory: a clear error. */
    char missing[160];
    snprintf(missing, sizeof missing, "%s/none", f->dir);
    assert_null(broker_zap_new(missing, 60000, err, sizeof err));
    assert_non_null(strstr(err, missing));
    /* Secret files and duplicates count nothing; junk is skipped with a line. */
    zcert_t *cert = zcert_new();
    char path[200];
    snprintf(path, sizeof path, "%s/w.key", f->keys);
    assert_int_equal(zcert_save(cert, path), 0); /* w.key and w.key_secret */
    snprintf(path, sizeof path, "%s/copy-of-w.key", f->keys);
    assert_int_equal(zcert_save_public(cert, path), 0);
    snprintf(path, sizeof path, "%s/README", f->keys);
    FILE *out = fopen(path, "w");
    fputs("public keys of the workers\n", out);
    fclose(out);
    f->zap = broker_zap_new(f->keys, 60000, err, sizeof err);
    assert_non_null(f->zap);
    assert_int_equal(broker_zap_key_count(f->zap), 1);
    wait_log(f, "authorized keys: skipped", 1);
    assert_int_equal(count_in_log(f, "authorized keys: skipped"), 1);
    assert_int_equal(count_in_log(f, "/README: no public key"), 1);
    /* One handler per process. */
    assert_null(broker_zap_new(f->keys, 60000, err, sizeof err));
    assert_non_null(strstr(err, "inproc://zeromq.zap.01"));
    zcert_destroy(&cert);
    f->passed = true;
}

int main(void)
{
    zsys_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_known_key_gets_in_with_its_user_id, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_key_refused_and_logged_once_per_interval,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_plaintext_client_never_reaches_the_socket_and_is_logged, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reload_adds_and_drops_keys, setup, teardown),
        cmocka_unit_test_setup_teardown(test_roles_keep_each_key_to_its_sockets, setup, teardown),
        cmocka_unit_test_setup_teardown(test_directory_read_as_certificates, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
