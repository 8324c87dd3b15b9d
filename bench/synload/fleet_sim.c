#include "bench/synload/fleet_sim.h"

#include "common/clock.h"
#include "proto/curve.h"
#include "proto/msg.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <zmq.h>

/* Reconnect as syn-worker does (worker/broker_conn.c): soon, then up to 1 s. */
#define RECONNECT_IVL_MS 100
#define RECONNECT_IVL_MAX_MS 1000
/* The loop's longest sleep: due results are looked for this often at least. */
#define POLL_MAX_MS 5
/* A broker silent for LIVENESS heartbeats: the socket is dropped and a fresh one
 * made at once, READY first, which waits that long plus a back-off of
 * BACKOFF_FIRST_MS doubling to BACKOFF_MAX_MS for an answer before the next one,
 * as syn-worker does (worker/broker_conn.c). */
#define LIVENESS 3
#define BACKOFF_FIRST_MS 250
#define BACKOFF_MAX_MS 8000

typedef struct {
    char *execution_id, *phase_id;
    int64_t attempt;
    int64_t due_us;       /* when its result is sent */
    char *output;         /* the mock agent's output */
    bool done;            /* result sent (again after each READY) until acked */
} sim_attempt_t;

typedef struct {
    void *sock;
    char name[48];
    sim_attempt_t *att;
    size_t count, cap;
    int64_t last_send_ms;
    int64_t last_heard_ms;  /* the broker's last message (or the socket's making) */
    int64_t reconnect_at;   /* without a socket: when to make the next one */
    int64_t backoff_ms;
    int64_t extra_ms;       /* this socket waits this beyond the liveness window */
    int64_t ready_sent_ms;  /* the last READY */
    bool registered;        /* the broker said anything but DISCONNECT since it */
} sim_worker_t;

struct fleet_sim_t {
    fleet_sim_options_t opts;
    void *ctx;
    syn_curve_t *curve;
    sim_worker_t *w;
    zmq_pollitem_t *items;
    pthread_t thread;
    bool running;
    atomic_bool stop;
    atomic_bool finish_all;  /* from now on every attempt finishes at once */
    pthread_mutex_t lock;
    fleet_sim_stats_t stats;   /* the thread's, published under lock */
    fleet_sim_stats_t shown;
};

static void attempt_clear(sim_attempt_t *a)
{
    free(a->execution_id);
    free(a->phase_id);
    free(a->output);
}

static int send_fields(fleet_sim_t *self, sim_worker_t *w, syn_msg_type_t type, json_t *fields,
                       int64_t now_ms)
{
    syn_msg_t *msg = fields ? syn_msg_new_with(type, fields) : NULL;
    int rc = msg ? syn_msg_send(w->sock, NULL, 0, msg) : -1;
    syn_msg_destroy(&msg);
    if (rc < 0)
        self->stats.send_failures++;
    w->last_send_ms = now_ms;
    return rc;
}

static json_t *ref_of(const sim_attempt_t *a)
{
    return json_pack("{s:s, s:s, s:I}", "execution_id", a->execution_id, "phase_id", a->phase_id,
                     "attempt", (json_int_t)a->attempt);
}

static void send_result(fleet_sim_t *self, sim_worker_t *w, sim_attempt_t *a, const char *status,
                        int64_t now_ms)
{
    json_t *fields = ref_of(a);
    if (fields) {
        json_object_set_new(fields, "status", json_string(status));
        json_object_set_new(fields, "output", json_string(a->output ? a->output : ""));
        json_object_set_new(fields, "error", json_null());
        json_object_set_new(fields, "exit_code", json_null());
    }
    if (send_fields(self, w, SYN_MSG_RESULT, fields, now_ms) == 0)
        self->stats.results_sent++;
    a->done = true;
}

/* READY with what it runs, then the results not yet acknowledged (as syn-worker
 * does after a reconnect). */
static void send_ready(fleet_sim_t *self, sim_worker_t *w, int64_t now_ms)
{
    json_t *running = json_array();
    for (size_t i = 0; running && i < w->count; i++)
        if (!w->att[i].done)
            json_array_append_new(running, ref_of(&w->att[i]));
    json_t *fields = running ? json_pack("{s:s, s:i, s:[s], s:o, s:s}", "worker", w->name,
                                         "slots", self->opts.slots, "providers", "mock",
                                         "running", running, "host", "synload-fleet")
                             : NULL;
    if (send_fields(self, w, SYN_MSG_READY, fields, now_ms) == 0)
        self->stats.readys++;
    w->ready_sent_ms = now_ms;
    w->registered = false;
    for (size_t i = 0; i < w->count; i++)
        if (w->att[i].done)
            send_result(self, w, &w->att[i], "completed", now_ms);
}

static sim_attempt_t *find(sim_worker_t *w, const char *execution_id, const char *phase_id,
                           int64_t attempt)
{
    for (size_t i = 0; i < w->count; i++)
        if (w->att[i].attempt == attempt && !strcmp(w->att[i].execution_id, execution_id) &&
            !strcmp(w->att[i].phase_id, phase_id))
            return &w->att[i];
    return NULL;
}

static void drop(sim_worker_t *w, sim_attempt_t *a)
{
    attempt_clear(a);
    *a = w->att[--w->count];
}

/* The phase's "#mock sleep MS" line, as the mock provider reads it. */
static long mock_sleep_ms(const char *prompt, long fallback)
{
    const char *p = strstr(prompt, "#mock sleep ");
    return p ? strtol(p + 12, NULL, 10) : fallback;
}

static void on_assign(fleet_sim_t *self, sim_worker_t *w, const json_t *f, int64_t now_us)
{
    const char *exec = json_string_value(json_object_get(f, "execution_id"));
    const char *phase = json_string_value(json_object_get(f, "phase_id"));
    const char *prompt = json_string_value(json_object_get(f, "prompt"));
    int64_t attempt = json_integer_value(json_object_get(f, "attempt"));
    self->stats.assigns++;
    if (!exec || !phase || !prompt || find(w, exec, phase, attempt))
        return;
    if (w->count == w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 8;
        sim_attempt_t *grown = realloc(w->att, cap * sizeof *grown);
        if (!grown)
            return;
        w->att = grown;
        w->cap = cap;
    }
    size_t size = strlen(phase) + strlen(prompt) + 32;
    int64_t due = atomic_load(&self->finish_all)
                      ? now_us
                      : now_us + mock_sleep_ms(prompt, self->opts.delay_ms) * 1000;
    sim_attempt_t a = {strdup(exec), strdup(phase), attempt, due, malloc(size), false};
    if (!a.execution_id || !a.phase_id || !a.output) {
        attempt_clear(&a);
        return;
    }
    snprintf(a.output, size, "mock output for phase %s:\n%s", phase, prompt);
    w->att[w->count++] = a;
    json_t *started = ref_of(&a);
    if (started) {
        json_object_set_new(started, "kind", json_string("started"));
        json_object_set_new(started, "data", json_string(""));
    }
    send_fields(self, w, SYN_MSG_PROGRESS, started, now_us / 1000);
}

static void receive(fleet_sim_t *self, sim_worker_t *w, int64_t now_us)
{
    for (int n = 0; n < 64; n++) {
        syn_msg_t *msg = NULL;
        char err[256];
        int rc = syn_msg_recv(w->sock, &msg, NULL, NULL, err, sizeof err);
        if (rc == -1)
            return;
        w->last_heard_ms = now_us / 1000;
        w->backoff_ms = BACKOFF_FIRST_MS;
        w->extra_ms = 0;
        if (rc == -2) {
            fprintf(stderr, "synload: fleet %s: invalid message: %s\n", w->name, err);
            continue;
        }
        if (syn_msg_type(msg) != SYN_MSG_DISCONNECT)
            w->registered = true;
        const json_t *f = syn_msg_fields(msg);
        const char *exec = json_string_value(json_object_get(f, "execution_id"));
        const char *phase = json_string_value(json_object_get(f, "phase_id"));
        int64_t attempt = json_integer_value(json_object_get(f, "attempt"));
        sim_attempt_t *a = exec && phase ? find(w, exec, phase, attempt) : NULL;
        switch (syn_msg_type(msg)) {
        case SYN_MSG_ASSIGN:
            on_assign(self, w, f, now_us);
            break;
        case SYN_MSG_RESULT_ACK:
            self->stats.acks++;
            if (a)
                drop(w, a);
            break;
        case SYN_MSG_CANCEL:
            self->stats.cancels++;
            if (a && !a->done)
                send_result(self, w, a, "cancelled", now_us / 1000);
            break;
        case SYN_MSG_DISCONNECT:
            /* One READY answers the DISCONNECTs of every heartbeat queued while
             * the broker was down, unless a heartbeat's time passed (syn-worker). */
            self->stats.disconnects++;
            if (w->registered || now_us / 1000 - w->ready_sent_ms >= self->opts.heartbeat_ms)
                send_ready(self, w, now_us / 1000);
            break;
        default: /* heartbeat, inject: nothing to do */
            break;
        }
        syn_msg_destroy(&msg);
    }
}

static void *make_socket(fleet_sim_t *self, sim_worker_t *w, char *err, size_t errlen);

/* The Paranoid Pirate recovery of syn-worker: a broker silent for LIVENESS
 * heartbeats (and the back-off, on a socket that followed a silence) loses the
 * socket; a fresh one says READY at once and waits a back-off longer. */
static void reconnect_when_silent(fleet_sim_t *self, int i, int64_t now_ms)
{
    sim_worker_t *w = &self->w[i];
    int64_t extra = w->extra_ms;
    if (w->sock &&
        now_ms - w->last_heard_ms > (int64_t)self->opts.heartbeat_ms * LIVENESS + w->extra_ms) {
        zmq_close(w->sock);
        w->sock = NULL;
        self->items[i] = (zmq_pollitem_t){NULL, -1, 0, 0};
        w->reconnect_at = now_ms;
        extra = w->backoff_ms;
        w->backoff_ms = w->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : w->backoff_ms * 2;
        self->stats.reconnects++;
    }
    if (!w->sock && now_ms >= w->reconnect_at) {
        char err[256];
        w->sock = make_socket(self, w, err, sizeof err);
        if (!w->sock) {
            w->reconnect_at = now_ms + w->backoff_ms;
            return;
        }
        self->items[i] = (zmq_pollitem_t){w->sock, 0, ZMQ_POLLIN, 0};
        w->last_heard_ms = now_ms;
        w->extra_ms = extra;
        send_ready(self, w, now_ms);
    }
}

static void *run(void *arg)
{
    fleet_sim_t *self = arg;
    int n = self->opts.workers;
    while (!self->stop) {
        int64_t now_us = syn_mono_us();
        int64_t wait_ms = POLL_MAX_MS;
        for (int i = 0; i < n; i++)
            for (size_t k = 0; k < self->w[i].count; k++) {
                sim_attempt_t *a = &self->w[i].att[k];
                if (!a->done && (a->due_us - now_us) / 1000 < wait_ms)
                    wait_ms = (a->due_us - now_us) / 1000;
            }
        if (zmq_poll(self->items, n, wait_ms < 0 ? 0 : (long)wait_ms) < 0 && zmq_errno() != EINTR)
            break;
        now_us = syn_mono_us();
        int64_t now_ms = now_us / 1000;
        if (atomic_load(&self->finish_all))
            for (int i = 0; i < n; i++)
                for (size_t k = 0; k < self->w[i].count; k++)
                    self->w[i].att[k].due_us = now_us;
        for (int i = 0; i < n; i++) {
            sim_worker_t *w = &self->w[i];
            if (w->sock && (self->items[i].revents & ZMQ_POLLIN))
                receive(self, w, now_us);
            reconnect_when_silent(self, i, now_ms);
            if (!w->sock)
                continue;
            for (size_t k = 0; k < w->count; k++)
                if (!w->att[k].done && w->att[k].due_us <= now_us)
                    send_result(self, w, &w->att[k], "completed", now_ms);
            if (now_ms - w->last_send_ms >= self->opts.heartbeat_ms &&
                send_fields(self, w, SYN_MSG_HEARTBEAT, json_object(), now_ms) == 0)
                self->stats.heartbeats_sent++;
        }
        int64_t held = 0;
        for (int i = 0; i < n; i++)
            held += (int64_t)self->w[i].count;
        self->stats.held = held;
        pthread_mutex_lock(&self->lock);
        self->shown = self->stats;
        pthread_mutex_unlock(&self->lock);
    }
    return NULL;
}

/* A thousand DEALERs hold a thousand descriptors and libzmq's own (a mailbox
 * each): far above the usual soft limit of 1024. */
static int raise_nofile(rlim_t want, char *err, size_t errlen)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return 0;
    if (rl.rlim_cur >= want)
        return 0;
    rl.rlim_cur = want < rl.rlim_max ? want : rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur < want) {
        snprintf(err, errlen, "RLIMIT_NOFILE %llu is below the %llu descriptors the fleet needs",
                 (unsigned long long)rl.rlim_cur, (unsigned long long)want);
        return -1;
    }
    return 0;
}

static void *make_socket(fleet_sim_t *self, sim_worker_t *w, char *err, size_t errlen)
{
    void *s = zmq_socket(self->ctx, ZMQ_DEALER);
    if (!s) {
        snprintf(err, errlen, "zmq_socket: %s", zmq_strerror(zmq_errno()));
        return NULL;
    }
    int linger = 0, ivl = RECONNECT_IVL_MS, ivl_max = RECONNECT_IVL_MAX_MS;
    int64_t max = SYN_MSG_MAX_SIZE;
    zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(s, ZMQ_RECONNECT_IVL, &ivl, sizeof ivl);
    zmq_setsockopt(s, ZMQ_RECONNECT_IVL_MAX, &ivl_max, sizeof ivl_max);
    zmq_setsockopt(s, ZMQ_MAXMSGSIZE, &max, sizeof max);
    if (self->curve)
        syn_curve_apply(self->curve, s);
    if (zmq_connect(s, self->opts.endpoint) != 0) {
        snprintf(err, errlen, "connect %s: %s (%s)", self->opts.endpoint,
                 zmq_strerror(zmq_errno()), w->name);
        zmq_close(s);
        return NULL;
    }
    return s;
}

fleet_sim_t *fleet_sim_start(const fleet_sim_options_t *opts, char *err, size_t errlen)
{
    int n = opts->workers;
    /* Per socket: its own descriptor, its mailbox's, the connection's. */
    if (n < 1 || raise_nofile((rlim_t)n * 3 + 256, err, errlen) != 0) {
        if (n < 1)
            snprintf(err, errlen, "a fleet needs at least one worker");
        return NULL;
    }
    fleet_sim_t *self = calloc(1, sizeof *self);
    if (!self) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    self->opts = *opts;
    pthread_mutex_init(&self->lock, NULL);
    self->w = calloc((size_t)n, sizeof *self->w);
    self->items = calloc((size_t)n, sizeof *self->items);
    self->ctx = zmq_ctx_new();
    if (!self->w || !self->items || !self->ctx) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    /* libzmq's default (1023) is below a fleet of a thousand plus its reapers. */
    if (zmq_ctx_set(self->ctx, ZMQ_MAX_SOCKETS, n + 64) != 0) {
        snprintf(err, errlen, "ZMQ_MAX_SOCKETS %d: %s", n + 64, zmq_strerror(zmq_errno()));
        goto fail;
    }
    if (opts->curve_secret && opts->broker_key) {
        self->curve = syn_curve_new_client(opts->curve_secret, opts->broker_key, err, errlen);
        if (!self->curve)
            goto fail;
    }
    int64_t now_ms = syn_mono_ms();
    for (int i = 0; i < n; i++) {
        sim_worker_t *w = &self->w[i];
        snprintf(w->name, sizeof w->name, "%s-%d", opts->name_prefix ? opts->name_prefix : "fleet",
                 i + 1);
        w->sock = make_socket(self, w, err, errlen);
        if (!w->sock)
            goto fail;
        self->items[i] = (zmq_pollitem_t){w->sock, 0, ZMQ_POLLIN, 0};
        w->last_heard_ms = now_ms;
        w->backoff_ms = BACKOFF_FIRST_MS;
        send_ready(self, w, now_ms);
        /* Heartbeats spread over the interval, as independent workers' are. */
        w->last_send_ms = now_ms - (int64_t)i * opts->heartbeat_ms / n;
    }
    if (pthread_create(&self->thread, NULL, run, self) != 0) {
        snprintf(err, errlen, "cannot start the fleet's thread");
        goto fail;
    }
    self->running = true;
    return self;
fail:
    fleet_sim_stop(&self);
    return NULL;
}

void fleet_sim_stop(fleet_sim_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    fleet_sim_t *self = *self_p;
    self->stop = true;
    if (self->running)
        pthread_join(self->thread, NULL);
    for (int i = 0; self->w && i < self->opts.workers; i++) {
        for (size_t k = 0; k < self->w[i].count; k++)
            attempt_clear(&self->w[i].att[k]);
        free(self->w[i].att);
        if (self->w[i].sock)
            zmq_close(self->w[i].sock);
    }
    if (self->ctx)
        zmq_ctx_term(self->ctx);
    syn_curve_destroy(&self->curve);
    pthread_mutex_destroy(&self->lock);
    free(self->w);
    free(self->items);
    free(self);
    *self_p = NULL;
}

void fleet_sim_finish_all(fleet_sim_t *self)
{
    atomic_store(&self->finish_all, true);
}

fleet_sim_stats_t fleet_sim_stats(fleet_sim_t *self)
{
    pthread_mutex_lock(&self->lock);
    fleet_sim_stats_t s = self->shown;
    pthread_mutex_unlock(&self->lock);
    return s;
}
