/* broker_conn: the worker's DEALER to the broker — made, set up (CURVE, reconnect,
 * keepalive), closed, and made anew at once after the broker's silence, each fresh
 * socket waiting a little longer for an answer (worker_internal.h) — and the READY
 * it says on it. */
#include "worker/worker_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* libzmq's own reconnect of a socket whose connection broke or was refused (a
 * broker restarting, not up yet): first this soon, a restart being back in a
 * fraction of a second, then doubling up to the most below. The socket itself is
 * made anew after the broker's silence (worker_conn_check). */
#define RECONNECT_IVL_MS 100
#define RECONNECT_IVL_MAX_MS 1000
/* TCP keepalive: a connection idle this long is probed, so one to a host that
 * vanished is closed by the kernel in the end even if nothing is sent (the
 * heartbeats, every heartbeat_ms, are what notice it first). */
#define KEEPALIVE_IDLE_S 60
/* Several brokers: an endpoint with no TCP connection this long (refused: nobody
 * listens there, a standby or a dead broker) is left for the next. libzmq tries to
 * connect at 0, 100 and 300 ms meanwhile. */
#define UNLINKED_MS 500

void worker_conn_back_off(worker_t *self, int64_t now)
{
    self->reconnect_at = now + self->backoff_ms;
    self->backoff_ms = self->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS
                                                             : self->backoff_ms * 2;
}

/* Closes the broker socket; what it still holds (a goodbye) is sent for up to
 * linger_ms, the wait itself happening when the context ends (worker_destroy). */
void worker_conn_close(worker_t *self, int linger_ms)
{
    if (!self->conn)
        return;
    if (self->monitor) {
        zmq_socket_monitor(self->conn, NULL, 0);
        zmq_close(self->monitor);
        self->monitor = NULL;
    }
    zmq_setsockopt(self->conn, ZMQ_LINGER, &linger_ms, sizeof linger_ms);
    zmq_close(self->conn);
    self->conn = NULL;
}

/* How loud a failure to reach the broker is: info while the worker starts (within
 * the first liveness window, before any broker has spoken: workers started with their
 * broker find it not listening yet, the usual start, not a fault), else `otherwise`. */
syn_log_level_t worker_conn_trouble_level(const worker_t *self, int64_t now,
                                     syn_log_level_t otherwise)
{
    bool starting =
        !self->ever_heard && now - self->started_ms <= self->heartbeat_ms * self->liveness;
    return starting ? SYN_LOG_INFO : otherwise;
}

/* The DEALER's options. Linger 0: a socket dropped for silence throws away what
 * it holds (the new one starts with READY and resends the results). No
 * ZMQ_IMMEDIATE: READY is queued the moment the socket is made, before its
 * connection exists, and what is sent while libzmq reconnects waits in the pipe
 * (up to its high-water mark) instead of failing. A handshake refused (our key
 * not allowed in) takes the pipe with it: sends fail with EAGAIN, logged, until
 * the silence makes a new socket. No ZMTP heartbeats: the worker's own, every
 * heartbeat_ms both ways, decide that the broker is gone. IPv6 on: a broker at
 * [::1] or a name with only an IPv6 address is reached too (IPv4 as before). */
static int set_options(worker_t *self, void *socket)
{
    int linger = 0, reconnect = RECONNECT_IVL_MS, reconnect_max = RECONNECT_IVL_MAX_MS;
    int keepalive = 1, keepalive_idle = KEEPALIVE_IDLE_S, ipv6 = 1;
    int64_t max_size = (int64_t)SYN_MSG_MAX_SIZE;
    if (zmq_setsockopt(socket, ZMQ_LINGER, &linger, sizeof linger) != 0 ||
        zmq_setsockopt(socket, ZMQ_MAXMSGSIZE, &max_size, sizeof max_size) != 0 ||
        zmq_setsockopt(socket, ZMQ_RECONNECT_IVL, &reconnect, sizeof reconnect) != 0 ||
        zmq_setsockopt(socket, ZMQ_RECONNECT_IVL_MAX, &reconnect_max, sizeof reconnect_max) !=
            0 ||
        zmq_setsockopt(socket, ZMQ_IPV6, &ipv6, sizeof ipv6) != 0 ||
        zmq_setsockopt(socket, ZMQ_TCP_KEEPALIVE, &keepalive, sizeof keepalive) != 0 ||
        zmq_setsockopt(socket, ZMQ_TCP_KEEPALIVE_IDLE, &keepalive_idle, sizeof keepalive_idle) !=
            0)
        return -1;
    if (self->curve)
        syn_curve_apply(self->curve, socket);
    return 0;
}

/* Several brokers: watches the fresh DEALER's connections before it connects (a
 * monitor's events before its reader exists are lost). Without one the worker falls
 * back on the broker's silence alone. */
static void watch_links(worker_t *self, int64_t now)
{
    self->linked = false;
    self->unlinked_since = now;
    if (syn_endpoint_list_size(self->brokers) < 2)
        return;
    char endpoint[96];
    snprintf(endpoint, sizeof endpoint, "inproc://syn-worker-conn-%p-%u", (void *)self,
             ++self->monitor_seq);
    if (zmq_socket_monitor(self->conn, endpoint, ZMQ_EVENT_CONNECTED | ZMQ_EVENT_DISCONNECTED) != 0)
        return;
    self->monitor = zmq_socket(self->ctx, ZMQ_PAIR);
    if (self->monitor && zmq_connect(self->monitor, endpoint) != 0) {
        zmq_close(self->monitor);
        self->monitor = NULL;
    }
    if (!self->monitor)
        zmq_socket_monitor(self->conn, NULL, 0);
}

/* Reads the monitor's events: whether a connection to the broker is up. */
static void read_links(worker_t *self, int64_t now)
{
    for (int i = 0; self->monitor && i < 64; i++) {
        zmq_msg_t frame;
        zmq_msg_init(&frame);
        if (zmq_msg_recv(&frame, self->monitor, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&frame);
            return;
        }
        uint16_t event = 0;
        if (zmq_msg_size(&frame) >= sizeof event)
            memcpy(&event, zmq_msg_data(&frame), sizeof event);
        bool more = zmq_msg_more(&frame);
        zmq_msg_close(&frame);
        while (more) { /* the endpoint frame */
            zmq_msg_init(&frame);
            more = zmq_msg_recv(&frame, self->monitor, ZMQ_DONTWAIT) >= 0 && zmq_msg_more(&frame);
            zmq_msg_close(&frame);
        }
        if (event == ZMQ_EVENT_CONNECTED) {
            self->linked = true;
        } else if (event == ZMQ_EVENT_DISCONNECTED && self->linked) {
            self->linked = false;
            self->unlinked_since = now;
        }
    }
}

/* A fresh DEALER to the broker. libzmq connects (and looks the name up) on its
 * I/O thread and reconnects by itself; the loop never waits for either. */
void worker_conn_open(worker_t *self, int64_t now)
{
    self->conn = zmq_socket(self->ctx, ZMQ_DEALER);
    if (!self->conn) {
        syn_error("worker", "cannot create a socket: %s", zmq_strerror(errno));
        worker_conn_back_off(self, now);
        return;
    }
    if (set_options(self, self->conn) != 0) {
        syn_error("worker", "cannot set up a socket: %s", zmq_strerror(errno));
        worker_conn_close(self, 0);
        worker_conn_back_off(self, now);
        return;
    }
    const char *broker = syn_endpoint_list_current(self->brokers);
    watch_links(self, now);
    if (zmq_connect(self->conn, broker) != 0) {
        syn_error("worker", "cannot connect to %s: %s", broker, zmq_strerror(errno));
        worker_conn_close(self, 0);
        worker_conn_back_off(self, now);
        return;
    }
    syn_info("worker", "connecting broker=%s%s", broker, self->curve ? " (CURVE)" : "");
    self->reconnect_at = -1;
    self->last_recv_ms = now;
    self->answered = false;
    self->conn_gen++;
    self->patience_extra_ms = 0;
    worker_send_ready(self, now);
    worker_resend_results(self, now);
}

/* How long the broker may stay silent on the current socket: the liveness
 * window, and for a fresh socket that followed a silence, the back-off on top.
 * With several brokers listed, an endpoint that has not answered at all since the
 * worker came to it gets two heartbeat intervals (worker_conn_check says why). */
int64_t worker_conn_patience(const worker_t *self)
{
    int64_t patience = self->heartbeat_ms * self->liveness + self->patience_extra_ms;
    if (syn_endpoint_list_size(self->brokers) > 1 && !self->answered &&
        2 * self->heartbeat_ms < patience)
        patience = 2 * self->heartbeat_ms;
    return patience;
}

void worker_conn_heard(worker_t *self, int64_t now)
{
    self->last_recv_ms = now;
    self->ever_heard = true;
    self->answered = true;
    self->patience_extra_ms = 0;
    int index = (int)syn_endpoint_list_index(self->brokers);
    if (index != self->heard_index && self->heard_index >= 0)
        syn_info("worker", "following broker=%s (was %s)",
                 syn_endpoint_list_current(self->brokers),
                 syn_endpoint_list_at(self->brokers, (size_t)self->heard_index));
    self->heard_index = index;
}

/* The Paranoid Pirate recovery: a broker silent for liveness heartbeats is
 * gone (it died, restarts slowly, the link broke without a word, or it refused
 * our key): a fresh socket at once, with READY queued on it, so that the
 * moment a broker listens again (libzmq retries the connection every
 * RECONNECT_IVL_MS to RECONNECT_IVL_MAX_MS) it hears from us. What grows is how
 * long each fresh socket waits for an answer before the next one (the
 * back-off), so a broker that is up but slow gets a READY from us every few
 * seconds at most. Before, the back-off was a pause without any socket: a
 * broker back during that pause (up to BACKOFF_MAX_MS) waited for it, and its
 * restart's adoption window ran out first (docs/reliability.md).
 *
 * With several brokers listed (an active one and its standbys, which do not bind),
 * the silent one is left for the next in the list, at once: the liveness window
 * spent on each endpoint is pause enough between tries, and a growing pause (up to
 * 8 s) would only delay finding the broker that took over. The fresh socket starts
 * libzmq's own reconnect over at 100 ms. An endpoint that has not answered at all
 * since the worker came to it gets two heartbeat intervals, not the whole window:
 * the active broker answers a READY within one (its heartbeat), a standby never. So
 * a broker that takes over is found within about two heartbeats of its binding
 * (docs/operations.md), inside the window in which it waits for the workers to
 * re-register the attempts they run (its adoption window, at least two liveness windows):
 * they are adopted, not run again. Sooner still: an endpoint with no TCP connection
 * for UNLINKED_MS (a zmq monitor on the DEALER says so) is left then, so a broker
 * killed is left in half a second and one that binds is reached within about half a
 * second per other endpoint listed. */
void worker_conn_check(worker_t *self, int64_t now)
{
    int64_t silent = now - self->last_recv_ms;
    bool several = syn_endpoint_list_size(self->brokers) > 1;
    read_links(self, now);
    bool unlinked = several && self->monitor && !self->linked &&
                    now - self->unlinked_since > UNLINKED_MS;
    if (silent <= worker_conn_patience(self) && !unlinked)
        return;
    worker_conn_close(self, 0);
    syn_log_level_t level = worker_conn_trouble_level(self, now, SYN_LOG_WARN);
    if (several) {
        const char *left = syn_endpoint_list_current(self->brokers);
        const char *next = syn_endpoint_list_next(self->brokers);
        /* Leaving an endpoint nobody listens on is routine with standbys: info. */
        syn_log(unlinked ? SYN_LOG_INFO : level, "worker", "broker=%s %s for %" PRId64 " ms: trying broker=%s", left,
                unlinked ? "not connected" : "silent",
                unlinked ? now - self->unlinked_since : silent, next);
        self->reconnect_at = now;
        return;
    }
    int64_t extra = self->backoff_ms;
    self->backoff_ms = self->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS
                                                             : self->backoff_ms * 2;
    syn_log(level, "worker", "broker silent for %" PRId64 " ms, %s (waiting up to %" PRId64
            " ms more this time)", silent,
            level == SYN_LOG_INFO ? "not up yet: trying again" : "reconnecting",
            self->heartbeat_ms * self->liveness + extra);
    worker_conn_open(self, now);
    if (self->conn)
        self->patience_extra_ms = extra;
}

/* reregister: after a (re)connect, when the broker may have given away what we
 * hold; without it (a new prefetch told on the same connection) nothing held
 * has to wait for the broker's answer. */
static void send_ready(worker_t *self, int64_t now, bool reregister)
{
    json_t *running = json_array();
    /* One whose artifacts are being hashed has no result yet: still running. */
    for (size_t i = 0; running && i < self->count; i++)
        if (self->attempts[i]->run || self->attempts[i]->pending)
            json_array_append_new(running, worker_attempt_ref(self->attempts[i]));
    /* Attempts waiting for a slot are held too (the broker must not give them
     * to anyone else), but their time limit has not begun. */
    json_t *waiting = self->waiting > 0 ? json_array() : NULL;
    for (size_t i = 0; waiting && i < self->count; i++)
        if (self->attempts[i]->assign)
            json_array_append_new(waiting, worker_attempt_ref(self->attempts[i]));
    json_t *fields = running ? json_pack("{s:s, s:i, s:[s], s:o}", "worker", self->name, "slots",
                                         self->slots, "providers",
                                         worker_provider_name(self->provider), "running", running)
                             : NULL;
    if (fields && self->draining)
        json_object_set_new(fields, "draining", json_true());
    if (fields && self->prefetch > 0)
        json_object_set_new(fields, "prefetch", json_integer(self->prefetch));
    if (fields && waiting)
        json_object_set(fields, "waiting", waiting);
    /* Who it is, for GET /workers (an operator looking for a host). */
    char host[256];
    if (fields && gethostname(host, sizeof host) == 0) {
        host[sizeof host - 1] = '\0';
        json_object_set_new(fields, "host", json_string(host));
    }
    if (fields)
        json_object_set_new(fields, "version", json_string(SYN_VERSION));
    if (fields && self->unhealthy) {
        json_object_set_new(fields, "healthy", json_false());
        json_object_set_new(fields, "unhealthy_reason", json_string(self->unhealthy));
    }
    json_decref(waiting);
    /* Held attempts wait until the broker answers: its CANCELs for any it gave
     * away meanwhile come before anything else it sends. */
    for (size_t i = 0; reregister && i < self->count; i++) {
        self->attempts[i]->started_unsent = false; /* READY lists them as running */
        self->attempts[i]->pull_sent_ms = -1;      /* asked again once it answers */
    }
    if (reregister) {
        self->registered = false;
        self->ready_sent_ms = now;
    }
    if (worker_send(self, SYN_MSG_READY, fields, now) == 0)
        syn_info("worker", "ready worker=%s slots=%d prefetch=%d provider=%s running=%d waiting=%d",
                 self->name, self->slots, self->prefetch, worker_provider_name(self->provider),
                 self->running, self->waiting);
}

void worker_send_ready(worker_t *self, int64_t now)
{
    send_ready(self, now, true);
}

void worker_send_prefetch(worker_t *self, int64_t now)
{
    send_ready(self, now, false);
}
