/* Tests for worker/zmtp, the worker's own ZMTP 3.0 DEALER: against a real
 * libzmq ROUTER over tcp and ipc (handshake, sizes, bursts, heartbeats, the
 * ROUTER going away), against fake servers that break the protocol in each
 * way the module promises to catch, bad endpoints, name lookups held at a gate
 * (they must not hold the caller), and a seeded fuzz of the greeting and frame
 * reader. */
#include "worker/zmtp.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "common/clock.h"
#include "proto/msg.h"

#define MAX_SIZE ((size_t)SYN_MSG_MAX_SIZE)
#define WAIT_MS 3000

/* --- driving a connection ----------------------------------------------- */

typedef struct {
    void *ctx;
    void *sock;
    char endpoint[256];
} router_t;

/* One poll (at most ms) of the connection and, when given, a ROUTER, then the
 * connection's I/O. */
static void drive(worker_zmtp_t *c, router_t *r, int ms)
{
    zmq_pollitem_t items[2];
    int n = 0;
    int fd = worker_zmtp_fd(c);
    if (worker_zmtp_has_message(c))
        ms = 0;
    if (fd >= 0) {
        short events = worker_zmtp_events(c);
        items[n++] = (zmq_pollitem_t){.fd = fd,
                                      .events = (short)((events & POLLIN ? ZMQ_POLLIN : 0) |
                                                        (events & POLLOUT ? ZMQ_POLLOUT : 0))};
    }
    if (r && r->sock)
        items[n++] = (zmq_pollitem_t){.socket = r->sock, .events = ZMQ_POLLIN};
    if (n == 0) {
        usleep((useconds_t)ms * 1000);
        return;
    }
    if (zmq_poll(items, n, ms) <= 0 || fd < 0)
        return;
    short z = items[0].revents;
    short revents = (short)((z & ZMQ_POLLIN ? POLLIN : 0) | (z & ZMQ_POLLOUT ? POLLOUT : 0) |
                            (z & ZMQ_POLLERR ? POLLERR : 0));
    if (revents)
        worker_zmtp_handle(c, revents);
}

static const char *state_name(worker_zmtp_state_t state)
{
    static const char *names[] = {"connecting", "handshake", "ready", "closed"};
    return names[state];
}

static void wait_state(worker_zmtp_t *c, router_t *r, worker_zmtp_state_t want)
{
    int64_t deadline = syn_mono_ms() + WAIT_MS;
    while (worker_zmtp_state(c) != want && syn_mono_ms() < deadline)
        drive(c, r, 10);
    if (worker_zmtp_state(c) != want)
        fail_msg("connection is %s, not %s (error: %s)", state_name(worker_zmtp_state(c)),
                 state_name(want), worker_zmtp_error(c));
}

/* Drives c until it closes; its error must contain needle. */
static void expect_closed(worker_zmtp_t *c, const char *needle)
{
    int64_t deadline = syn_mono_ms() + WAIT_MS;
    while (worker_zmtp_state(c) != WORKER_ZMTP_CLOSED && syn_mono_ms() < deadline) {
        drive(c, NULL, 10);
        size_t size;
        free(worker_zmtp_recv(c, &size));
    }
    if (worker_zmtp_state(c) != WORKER_ZMTP_CLOSED)
        fail_msg("still %s, expected to close with \"%s\"", state_name(worker_zmtp_state(c)),
                 needle);
    if (!strstr(worker_zmtp_error(c), needle))
        fail_msg("closed with \"%s\", expected \"%s\"", worker_zmtp_error(c), needle);
    assert_int_equal(worker_zmtp_fd(c), -1);
    assert_int_equal(worker_zmtp_events(c), 0);
    errno = 0;
    assert_int_equal(worker_zmtp_send(c, "x", 1), -1);
    assert_int_equal(errno, ENOTCONN);
}

/* The next message on c, driving it (and r) up to WAIT_MS. */
static uint8_t *recv_within(worker_zmtp_t *c, router_t *r, size_t *size)
{
    int64_t deadline = syn_mono_ms() + WAIT_MS;
    for (;;) {
        uint8_t *msg = worker_zmtp_recv(c, size);
        if (msg)
            return msg;
        if (syn_mono_ms() >= deadline || worker_zmtp_state(c) == WORKER_ZMTP_CLOSED)
            fail_msg("no message (connection %s, error: %s)", state_name(worker_zmtp_state(c)),
                     worker_zmtp_error(c));
        drive(c, r, 10);
    }
}

/* --- a real libzmq ROUTER ----------------------------------------------- */

/* heartbeat_ms > 0: libzmq PINGs every heartbeat_ms and drops a peer silent
 * for five of them (options a listener copies when it binds). */
static void router_open_with(router_t *r, const char *bind_endpoint, int heartbeat_ms)
{
    memset(r, 0, sizeof *r);
    r->ctx = zmq_ctx_new();
    assert_non_null(r->ctx);
    r->sock = zmq_socket(r->ctx, ZMQ_ROUTER);
    assert_non_null(r->sock);
    int linger = 0, mandatory = 1;
    int64_t max_size = (int64_t)MAX_SIZE;
    assert_int_equal(zmq_setsockopt(r->sock, ZMQ_LINGER, &linger, sizeof linger), 0);
    assert_int_equal(zmq_setsockopt(r->sock, ZMQ_ROUTER_MANDATORY, &mandatory, sizeof mandatory),
                     0);
    assert_int_equal(zmq_setsockopt(r->sock, ZMQ_MAXMSGSIZE, &max_size, sizeof max_size), 0);
    if (heartbeat_ms > 0) {
        int timeout = 5 * heartbeat_ms;
        assert_int_equal(
            zmq_setsockopt(r->sock, ZMQ_HEARTBEAT_IVL, &heartbeat_ms, sizeof heartbeat_ms), 0);
        assert_int_equal(zmq_setsockopt(r->sock, ZMQ_HEARTBEAT_TIMEOUT, &timeout, sizeof timeout),
                         0);
    }
    assert_int_equal(zmq_bind(r->sock, bind_endpoint), 0);
    size_t len = sizeof r->endpoint;
    assert_int_equal(zmq_getsockopt(r->sock, ZMQ_LAST_ENDPOINT, r->endpoint, &len), 0);
}

static void router_open(router_t *r, const char *bind_endpoint)
{
    router_open_with(r, bind_endpoint, 0);
}

static void router_close_socket(router_t *r)
{
    if (r->sock)
        zmq_close(r->sock);
    r->sock = NULL;
}

static void router_close(router_t *r)
{
    router_close_socket(r);
    zmq_ctx_term(r->ctx);
}

/* The next [identity][payload] on the ROUTER, driving c meanwhile; the
 * identity goes to id (*id_len bytes). Returns the payload (malloc'd). */
static uint8_t *router_recv(router_t *r, worker_zmtp_t *c, size_t *size, uint8_t *id,
                            size_t *id_len)
{
    int64_t deadline = syn_mono_ms() + WAIT_MS;
    zmq_msg_t frame;
    zmq_msg_init(&frame);
    while (zmq_msg_recv(&frame, r->sock, ZMQ_DONTWAIT) < 0) {
        assert_int_equal(errno, EAGAIN);
        if (syn_mono_ms() >= deadline)
            fail_msg("the ROUTER got nothing (connection %s, error: %s)",
                     state_name(worker_zmtp_state(c)), worker_zmtp_error(c));
        drive(c, r, 10);
    }
    assert_true(zmq_msg_more(&frame));
    *id_len = zmq_msg_size(&frame);
    assert_true(*id_len > 0 && *id_len <= 255);
    memcpy(id, zmq_msg_data(&frame), *id_len);
    assert_true(zmq_msg_recv(&frame, r->sock, 0) >= 0);
    assert_false(zmq_msg_more(&frame));
    *size = zmq_msg_size(&frame);
    uint8_t *payload = malloc(*size + 1);
    assert_non_null(payload);
    memcpy(payload, zmq_msg_data(&frame), *size);
    zmq_msg_close(&frame);
    return payload;
}

static int router_send(router_t *r, const uint8_t *id, size_t id_len, const void *data,
                       size_t size)
{
    if (zmq_send(r->sock, id, id_len, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0)
        return -1;
    return zmq_send(r->sock, data, size, ZMQ_DONTWAIT) < 0 ? -1 : 0;
}

/* size bytes that differ with seed, so a swapped or shifted message shows. */
static uint8_t *pattern(size_t size, unsigned seed)
{
    uint8_t *data = malloc(size + 1);
    assert_non_null(data);
    for (size_t i = 0; i < size; i++)
        data[i] = (uint8_t)(i * 31 + seed * 7 + (i >> 8));
    return data;
}

/* Connects to r and waits for the handshake; "early" is sent before it ends. */
static worker_zmtp_t *connect_ready(router_t *r, const char *endpoint)
{
    worker_zmtp_t *c = worker_zmtp_connect(endpoint, MAX_SIZE);
    assert_non_null(c);
    assert_true(worker_zmtp_state(c) == WORKER_ZMTP_CONNECTING ||
                worker_zmtp_state(c) == WORKER_ZMTP_HANDSHAKE);
    assert_string_equal(worker_zmtp_error(c), "");
    assert_int_equal(worker_zmtp_send(c, "early", 5), 0);
    wait_state(c, r, WORKER_ZMTP_READY);
    return c;
}

/* Messages of every size class both ways; the ROUTER sees one identity. */
static void exchange_sizes(const char *bind_endpoint)
{
    router_t r;
    router_open(&r, bind_endpoint);
    worker_zmtp_t *c = connect_ready(&r, r.endpoint);
    uint8_t id[256], other[256];
    size_t id_len, other_len, size;
    uint8_t *got = router_recv(&r, c, &size, id, &id_len);
    assert_int_equal(size, 5);
    assert_memory_equal(got, "early", 5);
    free(got);

    static const size_t sizes[] = {0, 1, 254, 255, 256, 257, 65535, 65536, 1u << 20};
    for (unsigned i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        uint8_t *data = pattern(sizes[i], i);
        assert_int_equal(worker_zmtp_send(c, data, sizes[i]), 0);
        got = router_recv(&r, c, &size, other, &other_len);
        assert_int_equal(size, sizes[i]);
        assert_memory_equal(got, data, size);
        assert_int_equal(other_len, id_len);
        assert_memory_equal(other, id, id_len);
        free(got);

        assert_int_equal(router_send(&r, id, id_len, data, sizes[i]), 0);
        got = recv_within(c, &r, &size);
        assert_int_equal(size, sizes[i]);
        assert_memory_equal(got, data, size);
        assert_int_equal(got[size], '\0');
        free(got);
        free(data);
    }
    assert_int_equal(worker_zmtp_state(c), WORKER_ZMTP_READY);
    worker_zmtp_destroy(&c);
    assert_null(c);
    router_close(&r);
}

static void test_tcp_handshake_and_sizes(void **state)
{
    (void)state;
    exchange_sizes("tcp://127.0.0.1:0");
}

static void test_ipc_handshake_and_sizes(void **state)
{
    (void)state;
    char endpoint[128];
    snprintf(endpoint, sizeof endpoint, "ipc:///tmp/syn-test-zmtp-%ld.sock", (long)getpid());
    exchange_sizes(endpoint);
    unlink(endpoint + 6);
}

/* A host name is resolved (localhost: its IPv4 address, where the ROUTER is). */
static void test_name_resolved(void **state)
{
    (void)state;
    router_t r;
    router_open(&r, "tcp://127.0.0.1:0");
    char endpoint[300];
    snprintf(endpoint, sizeof endpoint, "tcp://localhost%s", strrchr(r.endpoint, ':'));
    worker_zmtp_t *c = connect_ready(&r, endpoint);
    uint8_t id[256];
    size_t id_len, size;
    free(router_recv(&r, c, &size, id, &id_len));
    assert_int_equal(size, 5);
    worker_zmtp_destroy(&c);
    router_close(&r);
}

/* Bursts both ways keep their order; big messages make writes partial. */
static void test_bursts_keep_order(void **state)
{
    (void)state;
    enum { N = WORKER_ZMTP_QUEUE_MSGS, BIG = 40, BIG_SIZE = 256 * 1024 };
    router_t r;
    router_open(&r, "tcp://127.0.0.1:0");
    worker_zmtp_t *c = worker_zmtp_connect(r.endpoint, MAX_SIZE);
    assert_non_null(c);
    char text[64];
    /* All queued before the handshake: the whole queue, in order. */
    for (int i = 0; i < N; i++) {
        int len = snprintf(text, sizeof text, "to-router-%04d", i);
        assert_int_equal(worker_zmtp_send(c, text, (size_t)len), 0);
    }
    uint8_t id[256], other[256];
    size_t id_len = 0, other_len, size;
    for (int i = 0; i < N; i++) {
        uint8_t *got =
            router_recv(&r, c, &size, i == 0 ? id : other, i == 0 ? &id_len : &other_len);
        int len = snprintf(text, sizeof text, "to-router-%04d", i);
        assert_int_equal(size, (size_t)len);
        assert_memory_equal(got, text, size);
        if (i > 0) {
            assert_int_equal(other_len, id_len);
            assert_memory_equal(other, id, id_len);
        }
        free(got);
    }
    for (int i = 0; i < BIG; i++) {
        uint8_t *data = pattern(BIG_SIZE + (size_t)i, (unsigned)i);
        assert_int_equal(worker_zmtp_send(c, data, BIG_SIZE + (size_t)i), 0);
        free(data);
    }
    for (int i = 0; i < BIG; i++) {
        uint8_t *data = pattern(BIG_SIZE + (size_t)i, (unsigned)i);
        uint8_t *got = router_recv(&r, c, &size, other, &other_len);
        assert_int_equal(size, BIG_SIZE + (size_t)i);
        assert_memory_equal(got, data, size);
        assert_memory_equal(other, id, id_len);
        free(got);
        free(data);
    }

    /* The other way: the ROUTER sends as fast as its pipe takes them. */
    int sent = 0, received = 0;
    int64_t deadline = syn_mono_ms() + 10 * WAIT_MS;
    while (received < N && syn_mono_ms() < deadline) {
        while (sent < N) {
            int len = snprintf(text, sizeof text, "to-dealer-%04d", sent);
            if (router_send(&r, id, id_len, text, (size_t)len) != 0)
                break;
            sent++;
        }
        drive(c, &r, 5);
        uint8_t *got;
        while ((got = worker_zmtp_recv(c, &size)) != NULL) {
            int len = snprintf(text, sizeof text, "to-dealer-%04d", received);
            assert_int_equal(size, (size_t)len);
            assert_memory_equal(got, text, size);
            free(got);
            received++;
        }
    }
    assert_int_equal(received, N);
    assert_int_equal(worker_zmtp_state(c), WORKER_ZMTP_READY);
    worker_zmtp_destroy(&c);
    router_close(&r);
}

/* A ROUTER that closes is reported; nothing more can be sent. */
static void test_peer_going_away(void **state)
{
    (void)state;
    router_t r;
    router_open(&r, "tcp://127.0.0.1:0");
    worker_zmtp_t *c = connect_ready(&r, r.endpoint);
    router_close_socket(&r);
    /* The ROUTER closes with linger 0: its kernel ends the connection with FIN,
     * or with RST when bytes it had not read were pending (a heartbeat, say).
     * Either is the peer going away, and nothing else may close it. */
    expect_closed(c, "");
    const char *why = worker_zmtp_error(c);
    if (!strstr(why, "the peer closed the connection") && !strstr(why, "reset by peer"))
        fail_msg("closed with \"%s\", expected the peer going away", why);
    size_t size;
    assert_null(worker_zmtp_recv(c, &size));
    worker_zmtp_destroy(&c);
    router_close(&r);
}

/* libzmq's heartbeats (PING every 20 ms, dropped after 100 ms without
 * traffic) are answered: the connection outlives many timeouts. */
static void test_libzmq_heartbeats_answered(void **state)
{
    (void)state;
    router_t r;
    router_open_with(&r, "tcp://127.0.0.1:0", 20);
    worker_zmtp_t *c = connect_ready(&r, r.endpoint);
    uint8_t id[256];
    size_t id_len, size;
    free(router_recv(&r, c, &size, id, &id_len));
    int64_t until = syn_mono_ms() + 800;
    while (syn_mono_ms() < until)
        drive(c, NULL, 10);
    assert_int_equal(worker_zmtp_state(c), WORKER_ZMTP_READY);
    assert_int_equal(router_send(&r, id, id_len, "still here", 10), 0);
    uint8_t *got = recv_within(c, &r, &size);
    assert_int_equal(size, 10);
    free(got);
    worker_zmtp_destroy(&c);
    router_close(&r);
}

/* --- fake servers ------------------------------------------------------- */

typedef struct {
    int listen_fd;
    int fd;
    char endpoint[128];
    char path[108];
} fake_t;

static void fake_listen_tcp(fake_t *f)
{
    memset(f, 0, sizeof *f);
    f->fd = -1;
    f->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(f->listen_fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(f->listen_fd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(listen(f->listen_fd, 4), 0);
    socklen_t len = sizeof sa;
    assert_int_equal(getsockname(f->listen_fd, (struct sockaddr *)&sa, &len), 0);
    snprintf(f->endpoint, sizeof f->endpoint, "tcp://127.0.0.1:%d", ntohs(sa.sin_port));
}

static void fake_listen_ipc(fake_t *f)
{
    memset(f, 0, sizeof *f);
    f->fd = -1;
    snprintf(f->path, sizeof f->path, "/tmp/syn-test-zmtp-fake-%ld.sock", (long)getpid());
    unlink(f->path);
    f->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(f->listen_fd >= 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    memcpy(sa.sun_path, f->path, strlen(f->path) + 1);
    assert_int_equal(bind(f->listen_fd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(listen(f->listen_fd, 4), 0);
    snprintf(f->endpoint, sizeof f->endpoint, "ipc://%s", f->path);
}

static void fake_accept(fake_t *f)
{
    struct pollfd p = {.fd = f->listen_fd, .events = POLLIN};
    assert_int_equal(poll(&p, 1, WAIT_MS), 1);
    f->fd = accept(f->listen_fd, NULL, NULL);
    assert_true(f->fd >= 0);
}

static void fake_write(fake_t *f, const void *data, size_t len)
{
    const uint8_t *p = data;
    while (len > 0) {
        ssize_t n = write(f->fd, p, len);
        assert_true(n > 0);
        p += n;
        len -= (size_t)n;
    }
}

/* Reads exactly len bytes from the client, driving it meanwhile. */
static void fake_read(fake_t *f, worker_zmtp_t *c, void *buf, size_t len)
{
    uint8_t *p = buf;
    int64_t deadline = syn_mono_ms() + WAIT_MS;
    while (len > 0) {
        if (syn_mono_ms() >= deadline)
            fail_msg("the client sent too little (%zu bytes missing)", len);
        struct pollfd pf = {.fd = f->fd, .events = POLLIN};
        if (poll(&pf, 1, 0) == 1) {
            ssize_t n = read(f->fd, p, len);
            assert_true(n > 0);
            p += n;
            len -= (size_t)n;
        } else
            drive(c, NULL, 5);
    }
}

static void fake_close(fake_t *f)
{
    if (f->fd >= 0)
        close(f->fd);
    close(f->listen_fd);
    if (f->path[0])
        unlink(f->path);
}

/* What a server sends: its greeting, commands, frames. Each appends to a buffer. */
typedef struct {
    uint8_t data[4096];
    size_t len;
} bytes_t;

static void put(bytes_t *b, const void *data, size_t len)
{
    assert_true(b->len + len <= sizeof b->data);
    memcpy(b->data + b->len, data, len);
    b->len += len;
}

static void put_greeting(bytes_t *b, uint8_t major, const char *mechanism)
{
    uint8_t g[64] = {0xFF, 0, 0, 0, 0, 0, 0, 0, 1, 0x7F, major, 1};
    memcpy(g + 12, mechanism, strlen(mechanism));
    put(b, g, sizeof g);
}

static void put_frame_header(bytes_t *b, uint8_t flags, uint64_t size, bool long_form)
{
    uint8_t h[9] = {flags};
    if (!long_form) {
        h[1] = (uint8_t)size;
        put(b, h, 2);
        return;
    }
    h[0] |= 0x02;
    for (int i = 0; i < 8; i++)
        h[1 + i] = (uint8_t)(size >> (56 - 8 * i));
    put(b, h, 9);
}

static void put_command(bytes_t *b, const char *name, const void *data, size_t len)
{
    size_t name_len = strlen(name);
    put_frame_header(b, 0x04, 1 + name_len + len, false);
    uint8_t n = (uint8_t)name_len;
    put(b, &n, 1);
    put(b, name, name_len);
    put(b, data, len);
}

/* READY with an empty Identity and, unless NULL, a Socket-Type. */
static void put_ready(bytes_t *b, const char *socket_type)
{
    bytes_t props = {.len = 0};
    uint8_t identity[] = {8, 'I', 'd', 'e', 'n', 't', 'i', 't', 'y', 0, 0, 0, 0};
    put(&props, identity, sizeof identity);
    if (socket_type) {
        uint8_t name[] = {11, 'S', 'o', 'c', 'k', 'e', 't', '-', 'T', 'y', 'p', 'e', 0, 0, 0,
                          (uint8_t)strlen(socket_type)};
        put(&props, name, sizeof name);
        put(&props, socket_type, strlen(socket_type));
    }
    put_command(b, "READY", props.data, props.len);
}

static void put_handshake(bytes_t *b)
{
    put_greeting(b, 3, "NULL");
    put_ready(b, "ROUTER");
}

/* Our greeting (3.0 NULL, client) and READY (DEALER, no Identity), exactly. */
static void expect_client_handshake(fake_t *f, worker_zmtp_t *c)
{
    uint8_t got[64 + 30];
    fake_read(f, c, got, sizeof got);
    assert_int_equal(got[0], 0xFF);
    assert_int_equal(got[9], 0x7F);
    assert_int_equal(got[10], 3);
    assert_int_equal(got[11], 0);
    assert_memory_equal(got + 12, "NULL\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0", 20);
    assert_int_equal(got[32], 0);
    static const uint8_t ready[] = {0x04, 28,  5,   'R', 'E', 'A', 'D', 'Y', 11,  'S',
                                    'o',  'c', 'k', 'e', 't', '-', 'T', 'y', 'p', 'e',
                                    0,    0,   0,   6,   'D', 'E', 'A', 'L', 'E', 'R'};
    assert_memory_equal(got + 64, ready, sizeof ready);
}

/* A fake server (ipc, or else tcp) with the client connected to it and the
 * client's greeting and READY read and checked. */
static worker_zmtp_t *connect_fake(fake_t *f, bool ipc)
{
    if (ipc)
        fake_listen_ipc(f);
    else
        fake_listen_tcp(f);
    worker_zmtp_t *c = worker_zmtp_connect(f->endpoint, MAX_SIZE);
    assert_non_null(c);
    fake_accept(f);
    expect_client_handshake(f, c);
    return c;
}

/* A server that sends b and stops sending: the client must close with needle
 * in its error. */
static void expect_rejected(const bytes_t *b, const char *needle)
{
    fake_t f;
    fake_listen_tcp(&f);
    worker_zmtp_t *c = worker_zmtp_connect(f.endpoint, MAX_SIZE);
    assert_non_null(c);
    fake_accept(&f);
    fake_write(&f, b->data, b->len);
    shutdown(f.fd, SHUT_WR);
    expect_closed(c, needle);
    worker_zmtp_destroy(&c);
    fake_close(&f);
}

/* Sends only queue: nothing reaches the wire until worker_zmtp_flush, which writes
 * the whole turn's messages together (what keeps the worker to one write per loop
 * turn). */
static void test_flush_writes_a_turn_at_once(void **state)
{
    (void)state;
    fake_t f;
    worker_zmtp_t *c = connect_fake(&f, false);
    bytes_t b = {.len = 0};
    put_handshake(&b);
    fake_write(&f, b.data, b.len);
    wait_state(c, NULL, WORKER_ZMTP_READY);
    static const char *msgs[] = {"one", "two!", "three"};
    for (size_t i = 0; i < 3; i++)
        assert_int_equal(worker_zmtp_send(c, msgs[i], strlen(msgs[i])), 0);
    assert_true(worker_zmtp_has_output(c));
    struct pollfd pf = {.fd = f.fd, .events = POLLIN};
    assert_int_equal(poll(&pf, 1, 50), 0); /* not driven, not flushed: nothing sent */
    worker_zmtp_flush(c);
    assert_false(worker_zmtp_has_output(c));
    uint8_t want[64], got[64];
    size_t len = 0;
    for (size_t i = 0; i < 3; i++) {
        want[len++] = 0x00;
        want[len++] = (uint8_t)strlen(msgs[i]);
        memcpy(want + len, msgs[i], strlen(msgs[i]));
        len += strlen(msgs[i]);
    }
    size_t have = 0;
    while (have < len) {
        assert_int_equal(poll(&pf, 1, WAIT_MS), 1);
        ssize_t n = read(f.fd, got + have, sizeof got - have);
        assert_true(n > 0);
        have += (size_t)n;
    }
    assert_int_equal(have, len);
    assert_memory_equal(got, want, len);
    worker_zmtp_destroy(&c);
    fake_close(&f);
}

static void test_bad_greetings(void **state)
{
    (void)state;
    bytes_t b = {.len = 0};
    put(&b, "GET / HTTP/1.1\r\n\r\n", 18);
    expect_rejected(&b, "does not speak ZMTP");

    b.len = 0;
    uint8_t zmtp1[] = {0xFF, 0, 0, 0, 0, 0, 0, 0, 1, 0x00}; /* ZMTP 1.0: a length, no 0x7F */
    put(&b, zmtp1, sizeof zmtp1);
    expect_rejected(&b, "does not speak ZMTP");

    b.len = 0;
    put_greeting(&b, 2, "NULL");
    expect_rejected(&b, "speaks ZMTP 2; 3.0 or later is needed");

    b.len = 0;
    put_greeting(&b, 3, "PLAIN");
    expect_rejected(&b, "wants the PLAIN security mechanism");

    b.len = 0;
    put_greeting(&b, 3, "NULLX");
    expect_rejected(&b, "wants the NULLX security mechanism");
}

/* A good greeting, then READY naming socket_type (NULL: none). */
static void expect_ready_rejected(const char *socket_type, const char *needle)
{
    bytes_t b = {.len = 0};
    put_greeting(&b, 3, "NULL");
    put_ready(&b, socket_type);
    expect_rejected(&b, needle);
}

static void test_bad_handshakes(void **state)
{
    (void)state;
    expect_ready_rejected("REQ", "is a REQ socket, not a ROUTER");
    expect_ready_rejected("DEALER", "is a DEALER socket, not a ROUTER");
    expect_ready_rejected(NULL, "did not say its socket type");

    bytes_t b = {.len = 0};
    put_greeting(&b, 3, "NULL");
    uint8_t overrun[] = {11, 'S', 'o', 'c', 'k', 'e', 't', '-', 'T', 'y', 'p', 'e', 0, 0, 1, 0,
                         'R', 'O', 'U', 'T', 'E', 'R'};
    put_command(&b, "READY", overrun, sizeof overrun);
    expect_rejected(&b, "malformed READY");

    b.len = 0;
    put_greeting(&b, 3, "NULL");
    put_command(&b, "HELLO", "", 0);
    expect_rejected(&b, "sent HELLO before READY");

    b.len = 0;
    put_greeting(&b, 3, "NULL");
    put_frame_header(&b, 0x00, 2, false);
    put(&b, "hi", 2);
    expect_rejected(&b, "message before READY");

    b.len = 0;
    put_greeting(&b, 3, "NULL");
    uint8_t reason[] = {7, 'g', 'o', ' ', 'a', 'w', 'a', 'y'};
    put_command(&b, "ERROR", reason, sizeof reason);
    expect_rejected(&b, "the peer sent ERROR: go away");

    b.len = 0;
    put_greeting(&b, 3, "NULL");
    expect_rejected(&b, "the peer closed the connection");
}

static void test_bad_frames(void **state)
{
    (void)state;
    bytes_t b = {.len = 0};
    put_handshake(&b);
    put_frame_header(&b, 0x02, MAX_SIZE + 1, true);
    expect_rejected(&b, "a frame of 16777217 bytes (the limit is 16777216)");

    /* Far past anything malloc could give: refused before any allocation. */
    b.len = 0;
    put_handshake(&b);
    put_frame_header(&b, 0x02, (uint64_t)1 << 62, true);
    expect_rejected(&b, "(the limit is 16777216)");

    b.len = 0;
    put_handshake(&b);
    put_frame_header(&b, 0x80, 1, false);
    expect_rejected(&b, "reserved flags 0x80");

    b.len = 0;
    put_handshake(&b);
    put_frame_header(&b, 0x01, 1, false);
    put(&b, "a", 1);
    put_frame_header(&b, 0x00, 1, false);
    put(&b, "b", 1);
    expect_rejected(&b, "multi-frame message");

    b.len = 0;
    put_handshake(&b);
    put_frame_header(&b, 0x05, 5, false);
    put(&b, "\4PING", 5);
    expect_rejected(&b, "command marked MORE");

    b.len = 0;
    put_handshake(&b);
    put_ready(&b, "ROUTER");
    expect_rejected(&b, "sent READY again");

    b.len = 0;
    put_handshake(&b);
    put_command(&b, "PING", "\0\0" "0123456789abcdefg", 19);
    expect_rejected(&b, "malformed PING");

    b.len = 0;
    put_handshake(&b);
    put_frame_header(&b, 0x04, 3, false);
    put(&b, "\5AB", 3); /* a name longer than the command */
    expect_rejected(&b, "malformed command");

    b.len = 0;
    put_handshake(&b);
    uint8_t bad_error[] = {9, 'x'};
    put_command(&b, "ERROR", bad_error, sizeof bad_error);
    expect_rejected(&b, "malformed ERROR");
}

/* PING gets a PONG with its context; other commands are ignored; what we
 * send goes out as the frames the protocol says. */
static void test_ping_and_unknown_commands(void **state)
{
    (void)state;
    fake_t f;
    worker_zmtp_t *c = connect_fake(&f, false);
    bytes_t b = {.len = 0};
    put_handshake(&b);
    put_command(&b, "PING", "\0\12" "ctx123", 8);
    put_command(&b, "HELLO", "whatever", 8);
    put_command(&b, "PONG", "", 0);
    put_frame_header(&b, 0x02, 5, true); /* a long frame with a short size is still a frame */
    put(&b, "after", 5);
    fake_write(&f, b.data, b.len);
    size_t size;
    uint8_t *got = recv_within(c, NULL, &size);
    assert_int_equal(size, 5);
    assert_memory_equal(got, "after", 5);
    free(got);
    uint8_t pong[13];
    fake_read(&f, c, pong, sizeof pong);
    assert_memory_equal(pong, "\4\13\4PONGctx123", 13);

    assert_int_equal(worker_zmtp_send(c, "", 0), 0);
    uint8_t *big = pattern(300, 9);
    assert_int_equal(worker_zmtp_send(c, big, 300), 0);
    uint8_t sent[2 + 9 + 300];
    fake_read(&f, c, sent, sizeof sent);
    assert_memory_equal(sent, "\0\0\2\0\0\0\0\0\0\1\54", 11);
    assert_memory_equal(sent + 11, big, 300);
    free(big);
    assert_int_equal(worker_zmtp_state(c), WORKER_ZMTP_READY);
    worker_zmtp_destroy(&c);
    fake_close(&f);
}

/* Everything arriving one octet at a time still makes a handshake and a message. */
static void test_partial_reads(void **state)
{
    (void)state;
    fake_t f;
    worker_zmtp_t *c = connect_fake(&f, true);
    bytes_t b = {.len = 0};
    put_handshake(&b);
    uint8_t *data = pattern(700, 3);
    put_frame_header(&b, 0x00, 200, false);
    put(&b, data, 200);
    put_frame_header(&b, 0x00, 0, false);
    put_frame_header(&b, 0x02, 700, true);
    put(&b, data, 700);
    /* Taken as they become whole: a message not taken stops the reading. */
    uint8_t *got[3] = {NULL, NULL, NULL};
    size_t sizes[3] = {0, 0, 0}, count = 0;
    for (size_t i = 0; i < b.len; i++) {
        fake_write(&f, b.data + i, 1);
        drive(c, NULL, 1);
        if (i + 1 < 64 + 2)
            assert_int_not_equal(worker_zmtp_state(c), WORKER_ZMTP_READY);
        while (count < 3 && (got[count] = worker_zmtp_recv(c, &sizes[count])) != NULL)
            count++;
    }
    assert_int_equal(count, 3);
    assert_int_equal(sizes[0], 200);
    assert_memory_equal(got[0], data, 200);
    assert_int_equal(sizes[1], 0);
    assert_int_equal(sizes[2], 700);
    assert_memory_equal(got[2], data, 700);
    for (size_t i = 0; i < count; i++)
        free(got[i]);
    free(data);
    worker_zmtp_destroy(&c);
    fake_close(&f);
}

/* The outgoing queue holds WORKER_ZMTP_QUEUE_MSGS messages or
 * WORKER_ZMTP_QUEUE_BYTES bytes; a message over the size limit is refused. */
static void test_queue_limits(void **state)
{
    (void)state;
    fake_t f;
    fake_listen_tcp(&f); /* connects, never answers: the handshake never ends */
    worker_zmtp_t *c = worker_zmtp_connect(f.endpoint, MAX_SIZE);
    assert_non_null(c);
    for (int i = 0; i < WORKER_ZMTP_QUEUE_MSGS; i++)
        assert_int_equal(worker_zmtp_send(c, "queued", 6), 0);
    errno = 0;
    assert_int_equal(worker_zmtp_send(c, "one more", 8), -1);
    assert_int_equal(errno, EAGAIN);
    worker_zmtp_destroy(&c);

    c = worker_zmtp_connect(f.endpoint, MAX_SIZE);
    assert_non_null(c);
    uint8_t *huge = calloc(1, MAX_SIZE + 1);
    assert_non_null(huge);
    errno = 0;
    assert_int_equal(worker_zmtp_send(c, huge, MAX_SIZE + 1), -1);
    assert_int_equal(errno, EMSGSIZE);
    size_t fit = WORKER_ZMTP_QUEUE_BYTES / MAX_SIZE - 1; /* headers take a few bytes */
    for (size_t i = 0; i < fit; i++)
        assert_int_equal(worker_zmtp_send(c, huge, MAX_SIZE), 0);
    errno = 0;
    assert_int_equal(worker_zmtp_send(c, huge, MAX_SIZE), -1);
    assert_int_equal(errno, EAGAIN);
    assert_int_equal(worker_zmtp_send(c, huge, 1000), 0);
    free(huge);
    worker_zmtp_destroy(&c);
    fake_close(&f);
}

/* --- endpoints ---------------------------------------------------------- */

static void test_bad_endpoints(void **state)
{
    (void)state;
    static const struct {
        const char *endpoint, *error;
    } cases[] = {
        {"udp://127.0.0.1:5556", "expected tcp://HOST:PORT or ipc:///PATH"},
        {"127.0.0.1:5556", "expected tcp://HOST:PORT or ipc:///PATH"},
        {"tcp://127.0.0.1", "no port"},
        {"tcp://127.0.0.1:0", "the port must be 1..65535"},
        {"tcp://127.0.0.1:65536", "the port must be 1..65535"},
        {"tcp://127.0.0.1:55x", "the port must be 1..65535"},
        {"tcp://127.0.0.1:", "the port must be 1..65535"},
        {"tcp://:5556", "no host"},
        {"tcp://*:5556", "no host"},
        {"tcp://::1:5556", "an IPv6 address goes in brackets"},
        {"tcp://[::1:5556", "expected tcp://[IPV6]:PORT"},
        {"tcp://[nonsense]:5556", "cannot resolve nonsense"},
        {"ipc://", "expected ipc:///PATH"},
        {"ipc://@abstract", "expected ipc:///PATH"},
        {"ipc:///nonexistent/syn-test.sock", "No such file or directory"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        worker_zmtp_t *c = worker_zmtp_connect(cases[i].endpoint, MAX_SIZE);
        assert_non_null(c);
        assert_int_equal(worker_zmtp_state(c), WORKER_ZMTP_CLOSED);
        if (!strstr(worker_zmtp_error(c), cases[i].error))
            fail_msg("%s: \"%s\", expected \"%s\"", cases[i].endpoint, worker_zmtp_error(c),
                     cases[i].error);
        expect_closed(c, cases[i].error);
        worker_zmtp_destroy(&c);
    }
}

/* --- lookups held at a gate ----------------------------------------------- */

/* getaddrinfo, interposed for this program: a lookup of GATED_NAME waits until
 * the test opens the gate, then resolves as 127.0.0.1, so a test can hold a
 * lookup as long as it likes. A lookup made on the test's own thread is noted
 * instead of held (it would hang the test): that is the bug these tests catch.
 * UNKNOWN_NAME does not exist, without asking any name server. Everything else
 * goes to the C library's. */
#define GATED_NAME "gated.test"
#define UNKNOWN_NAME "unknown.test"

static pthread_mutex_t gate_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cond = PTHREAD_COND_INITIALIZER;
static bool gate_open;
static int gate_waiting;
static bool gate_on_main_thread;
static pthread_t main_thread;

int getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
                struct addrinfo **res)
{
    int (*real)(const char *, const char *, const struct addrinfo *, struct addrinfo **);
    *(void **)&real = dlsym(RTLD_NEXT, "getaddrinfo");
    bool numeric = hints && (hints->ai_flags & AI_NUMERICHOST);
    if (node && !numeric && strcmp(node, UNKNOWN_NAME) == 0)
        return EAI_NONAME;
    if (node && !numeric && strcmp(node, GATED_NAME) == 0) {
        pthread_mutex_lock(&gate_lock);
        if (pthread_equal(pthread_self(), main_thread)) {
            gate_on_main_thread = true;
        } else {
            gate_waiting++;
            pthread_cond_broadcast(&gate_cond);
            while (!gate_open)
                pthread_cond_wait(&gate_cond, &gate_lock);
            gate_waiting--;
        }
        pthread_cond_broadcast(&gate_cond);
        pthread_mutex_unlock(&gate_lock);
        node = "127.0.0.1";
    }
    return real(node, service, hints, res);
}

static void gate_reset(void)
{
    pthread_mutex_lock(&gate_lock);
    main_thread = pthread_self();
    gate_open = false;
    gate_waiting = 0;
    gate_on_main_thread = false;
    pthread_mutex_unlock(&gate_lock);
}

static void gate_set_open(void)
{
    pthread_mutex_lock(&gate_lock);
    gate_open = true;
    pthread_cond_broadcast(&gate_cond);
    pthread_mutex_unlock(&gate_lock);
}

/* Waits (up to WAIT_MS) until *counter reaches want. */
static void gate_wait_for(const int *counter, int want)
{
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += WAIT_MS / 1000;
    pthread_mutex_lock(&gate_lock);
    while (*counter < want && !gate_on_main_thread &&
           pthread_cond_timedwait(&gate_cond, &gate_lock, &deadline) == 0) {
    }
    int got = *counter;
    bool on_main = gate_on_main_thread;
    pthread_mutex_unlock(&gate_lock);
    if (on_main)
        fail_msg("the name was looked up on the caller's thread");
    if (got < want)
        fail_msg("%d lookups at the gate, expected %d", got, want);
}

/* A name is looked up off the caller's loop: the connection waits in CONNECTING
 * and closes once the answer says the name does not exist. */
static void test_unknown_name(void **state)
{
    (void)state;
    worker_zmtp_t *c = worker_zmtp_connect("tcp://" UNKNOWN_NAME ":5556", MAX_SIZE);
    assert_non_null(c);
    assert_int_equal(worker_zmtp_state(c), WORKER_ZMTP_CONNECTING);
    assert_true(worker_zmtp_resolving(c));
    assert_int_equal(worker_zmtp_events(c), POLLIN);
    assert_int_equal(worker_zmtp_send(c, "lost", 4), 0);
    expect_closed(c, "cannot resolve " UNKNOWN_NAME);
    assert_false(worker_zmtp_resolving(c));
    worker_zmtp_destroy(&c);
}

/* While the lookup is held, connect has returned, the connection waits for the
 * lookup's socket and takes messages; once it answers, the handshake goes on. */
static void test_lookup_does_not_hold_the_loop(void **state)
{
    (void)state;
    gate_reset();
    router_t r;
    router_open(&r, "tcp://127.0.0.1:0");
    char endpoint[300];
    snprintf(endpoint, sizeof endpoint, "tcp://" GATED_NAME "%s", strrchr(r.endpoint, ':'));
    worker_zmtp_t *c = worker_zmtp_connect(endpoint, MAX_SIZE);
    assert_non_null(c);
    gate_wait_for(&gate_waiting, 1);
    assert_int_equal(worker_zmtp_state(c), WORKER_ZMTP_CONNECTING);
    assert_int_equal(worker_zmtp_events(c), POLLIN);
    struct pollfd lookup = {.fd = worker_zmtp_fd(c), .events = POLLIN};
    assert_true(lookup.fd >= 0);
    assert_int_equal(poll(&lookup, 1, 50), 0);
    assert_int_equal(worker_zmtp_send(c, "early", 5), 0);
    gate_set_open();
    wait_state(c, &r, WORKER_ZMTP_READY);
    uint8_t id[256];
    size_t id_len, size;
    uint8_t *got = router_recv(&r, c, &size, id, &id_len);
    assert_int_equal(size, 5);
    assert_memory_equal(got, "early", 5);
    free(got);
    worker_zmtp_destroy(&c);
    router_close(&r);
}

/* Threads of this process, from /proc. */
static int thread_count(void)
{
    DIR *dir = opendir("/proc/self/task");
    assert_non_null(dir);
    int n = 0;
    for (struct dirent *e; (e = readdir(dir));)
        if (e->d_name[0] != '.')
            n++;
    closedir(dir);
    return n;
}

/* A connection given up while its lookup is held frees at once; the lookup's
 * late answer goes nowhere and its thread ends (ASan and valgrind watch what it
 * touches on the way). */
static void test_destroyed_during_lookup(void **state)
{
    (void)state;
    gate_reset();
    int threads = thread_count();
    worker_zmtp_t *c = worker_zmtp_connect("tcp://" GATED_NAME ":5556", MAX_SIZE);
    assert_non_null(c);
    gate_wait_for(&gate_waiting, 1);
    assert_int_equal(thread_count(), threads + 1);
    worker_zmtp_destroy(&c);
    assert_null(c);
    gate_set_open();
    int64_t deadline = syn_mono_ms() + WAIT_MS;
    while (thread_count() > threads && syn_mono_ms() < deadline)
        usleep(1000);
    assert_int_equal(thread_count(), threads);
}

static void test_connection_refused(void **state)
{
    (void)state;
    /* A port that was just free and has no listener. */
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof sa;
    assert_int_equal(bind(s, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(getsockname(s, (struct sockaddr *)&sa, &len), 0);
    char endpoint[64];
    snprintf(endpoint, sizeof endpoint, "tcp://127.0.0.1:%d", ntohs(sa.sin_port));
    close(s);
    worker_zmtp_t *c = worker_zmtp_connect(endpoint, MAX_SIZE);
    assert_non_null(c);
    assert_int_equal(worker_zmtp_send(c, "lost", 4), 0);
    expect_closed(c, "Connection refused");
    worker_zmtp_destroy(&c);
}

/* --- fuzz --------------------------------------------------------------- */

static uint32_t rng = 0x5eed1234u;

static uint32_t next_random(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 17;
    rng ^= rng << 5;
    return rng;
}

static void put_random(bytes_t *b, size_t len)
{
    for (size_t i = 0; i < len && b->len < sizeof b->data; i++)
        b->data[b->len++] = (uint8_t)next_random();
}

/* Frames that are nearly right: flags from the valid set (or not), sizes
 * that do or do not match the bytes behind them, commands among them. */
static void put_random_frames(bytes_t *b)
{
    static const uint8_t flags[] = {0x00, 0x02, 0x04, 0x06, 0x01, 0x05, 0x08};
    static const char *names[] = {"PING", "PONG", "ERROR", "READY", "X"};
    int frames = 1 + (int)(next_random() % 8);
    for (int i = 0; i < frames && b->len + 64 < sizeof b->data; i++) {
        uint32_t pick = next_random();
        if (pick % 4 == 0) {
            const char *name = names[next_random() % 5];
            uint8_t data[24];
            size_t len = next_random() % sizeof data;
            for (size_t k = 0; k < len; k++)
                data[k] = (uint8_t)next_random();
            put_command(b, name, data, len);
            continue;
        }
        uint8_t f = flags[next_random() % sizeof flags];
        uint64_t size = next_random() % 3 == 0 ? next_random() : next_random() % 300;
        put_frame_header(b, f & (uint8_t)~0x02, size, f & 0x02);
        put_random(b, size < 400 ? (size_t)size : next_random() % 400);
    }
}

static void test_fuzz_frame_reader(void **state)
{
    (void)state;
    enum { CASES = 3000 };
    fake_t f;
    fake_listen_ipc(&f);
    int delivered = 0, frame_errors = 0;
    for (int n = 0; n < CASES; n++) {
        bytes_t b = {.len = 0};
        switch (n % 3) {
        case 0:
            put_random(&b, next_random() % 200);
            break;
        case 1:
            put_greeting(&b, (uint8_t)(2 + next_random() % 3),
                         next_random() % 4 ? "NULL" : "CURVE");
            put_random(&b, next_random() % 300);
            break;
        default:
            put_handshake(&b);
            put_random_frames(&b);
            break;
        }
        if (b.len > 0 && next_random() % 4 == 0)
            b.data[next_random() % b.len] ^= (uint8_t)(1u << (next_random() % 8));

        worker_zmtp_t *c = worker_zmtp_connect(f.endpoint, MAX_SIZE);
        assert_non_null(c);
        fake_accept(&f);
        /* Read what the client sent, so closing does not reset the connection. */
        uint8_t hello[94];
        fake_read(&f, c, hello, sizeof hello);
        fake_write(&f, b.data, b.len);
        shutdown(f.fd, SHUT_WR);
        int64_t deadline = syn_mono_ms() + WAIT_MS;
        while (worker_zmtp_state(c) != WORKER_ZMTP_CLOSED && syn_mono_ms() < deadline) {
            drive(c, NULL, 10);
            size_t size;
            uint8_t *msg;
            while ((msg = worker_zmtp_recv(c, &size)) != NULL) {
                assert_true(size <= MAX_SIZE);
                assert_int_equal(msg[size], '\0');
                free(msg);
                delivered++;
            }
        }
        if (worker_zmtp_state(c) != WORKER_ZMTP_CLOSED)
            fail_msg("case %d: the connection did not close after the server did", n);
        assert_true(worker_zmtp_error(c)[0] != '\0');
        frame_errors += strstr(worker_zmtp_error(c), "frame") != NULL;
        worker_zmtp_destroy(&c);
        close(f.fd);
        f.fd = -1;
    }
    print_message("fuzz: %d cases, %d messages delivered, %d closed for a bad frame\n", CASES,
                  delivered, frame_errors);
    /* The cases reach past the handshake: messages come out, bad frames are caught. */
    assert_true(delivered > 0);
    assert_true(frame_errors > 0);
    fake_close(&f);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tcp_handshake_and_sizes),
        cmocka_unit_test(test_ipc_handshake_and_sizes),
        cmocka_unit_test(test_name_resolved),
        cmocka_unit_test(test_bursts_keep_order),
        cmocka_unit_test(test_flush_writes_a_turn_at_once),
        cmocka_unit_test(test_peer_going_away),
        cmocka_unit_test(test_libzmq_heartbeats_answered),
        cmocka_unit_test(test_bad_greetings),
        cmocka_unit_test(test_bad_handshakes),
        cmocka_unit_test(test_bad_frames),
        cmocka_unit_test(test_ping_and_unknown_commands),
        cmocka_unit_test(test_partial_reads),
        cmocka_unit_test(test_queue_limits),
        cmocka_unit_test(test_bad_endpoints),
        cmocka_unit_test(test_connection_refused),
        cmocka_unit_test(test_unknown_name),
        cmocka_unit_test(test_lookup_does_not_hold_the_loop),
        cmocka_unit_test(test_destroyed_during_lookup),
        cmocka_unit_test(test_fuzz_frame_reader),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
