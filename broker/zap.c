/* zap: the broker's ZAP handler (see zap.h).
 *
 * Why not czmq's zauth, which decides the same way (a zcertstore of a directory):
 * it logs only in verbose mode, and then every request, the allowed ones too,
 * without a rate limit, and it offers no hook to log a refusal with the key and
 * the peer's address once per minute; refusals are what an operator must see, and
 * a rogue that reconnects in a loop must not fill the log. Its disk-backed
 * zcertstore also reloads by itself whenever the directory looks changed, so a
 * half-copied key directory would take effect before the operator said so, and
 * czmq asserts (aborts the broker) when two files hold one key. So the store here
 * is czmq's in memory, filled from the directory when asked. */
#include "broker/zap.h"

#include "common/clock.h"
#include "common/log.h"
#include "common/ratelog.h"
#include "proto/curve.h"

#include <czmq.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#define ZAP_ENDPOINT "inproc://zeromq.zap.01"
/* Distinct refusal causes remembered by the rate limiter. */
#define RATELOG_CAUSES 1024
#define WATCH_MAX 8
#define ERR_MAX 512

typedef struct {
    zsock_t *pair;
    char *name;
} watch_t;

/* Touched by the caller before the actor starts and after it stopped; in
 * between only by the actor's thread. */
typedef struct {
    char *dir;
    zcertstore_t *store;
    syn_ratelog_t *ratelog;
    zsock_t *handler;
    watch_t watches[WATCH_MAX];
    size_t watch_count;
    char start_err[ERR_MAX];
} zap_state_t;

struct broker_zap_t {
    zactor_t *actor;
    zap_state_t *state;
    size_t key_count;
    int watch_seq;
};

static bool ends_with(const char *text, const char *suffix)
{
    size_t n = strlen(text), m = strlen(suffix);
    return n >= m && strcmp(text + n - m, suffix) == 0;
}

/* A fresh in-memory store of the public certificates in dir (not its
 * subdirectories; secret files skipped). A file that is not a certificate is
 * skipped with a warning, so a README there does not stop the broker. */
static zcertstore_t *load_dir(const char *dir, size_t *count, char *err, size_t errlen)
{
    DIR *d = opendir(dir);
    if (!d) {
        snprintf(err, errlen, "cannot read the authorized keys directory %s: %s", dir,
                 strerror(errno));
        return NULL;
    }
    zcertstore_t *store = zcertstore_new(NULL);
    if (!store) {
        closedir(d);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    static const uint8_t no_secret[32] = {0};
    *count = 0;
    struct dirent *entry;
    while ((entry = readdir(d))) {
        if (entry->d_name[0] == '.' || ends_with(entry->d_name, "_secret"))
            continue;
        char path[4096], why[ERR_MAX];
        struct stat st;
        if (snprintf(path, sizeof path, "%s/%s", dir, entry->d_name) >= (int)sizeof path ||
            stat(path, &st) != 0 || !S_ISREG(st.st_mode))
            continue;
        uint8_t key[32];
        syn_curve_role_t role;
        if (syn_curve_read_public(path, key, &role, why, sizeof why) < 0) {
            syn_warn("broker", "authorized keys: skipped, %s", why);
            continue;
        }
        zcert_t *cert = zcert_new_from(key, no_secret);
        if (!cert || zcertstore_lookup(store, zcert_public_txt(cert))) {
            zcert_destroy(&cert); /* the same key in two files counts once */
            continue;
        }
        if (role != SYN_CURVE_ROLE_ANY)
            zcert_set_meta(cert, "role", "%s", syn_curve_role_name(role));
        zcertstore_insert(store, &cert);
        (*count)++;
    }
    closedir(d);
    return store;
}

static const char *socket_label(const char *domain)
{
    return domain && domain[0] ? domain : "(no domain)";
}

/* RFC 27: [version, request id, domain, address, identity, mechanism,
 * credentials...] in; [version, request id, status, text, user id, metadata]
 * out. Only CURVE is spoken on the broker's sockets. */
static void handle_request(zap_state_t *st)
{
    zmsg_t *request = zmsg_recv(st->handler);
    if (!request)
        return;
    char *version = zmsg_popstr(request);
    zframe_t *request_id = zmsg_pop(request);
    char *domain = zmsg_popstr(request);
    char *address = zmsg_popstr(request);
    zframe_t *identity = zmsg_pop(request);
    char *mechanism = zmsg_popstr(request);
    zframe_t *credentials = zmsg_pop(request);
    const char *status = "400", *text = "no key", *user_id = "";
    char key[SYN_CURVE_KEY_TXT] = "";
    if (!version || strcmp(version, "1.0") != 0 || !request_id || !mechanism) {
        status = "500";
        text = "malformed ZAP request";
    } else if (strcmp(mechanism, "CURVE") != 0 || !credentials ||
               zframe_size(credentials) != 32) {
        text = "CURVE only";
        char cause[64];
        snprintf(cause, sizeof cause, "%.16s %.32s", mechanism, socket_label(domain));
        syn_ratelog_log(st->ratelog, cause, syn_mono_ms(), SYN_LOG_WARN, "broker",
                        "connection refused socket=%s address=%s: mechanism %s, not CURVE",
                        socket_label(domain), address ? address : "?", mechanism);
    } else {
        zmq_z85_encode(key, zframe_data(credentials), 32);
        zcert_t *cert = zcertstore_lookup(st->store, key);
        syn_curve_role_t role = SYN_CURVE_ROLE_ANY;
        if (cert && zcert_meta(cert, "role"))
            syn_curve_role_parse(zcert_meta(cert, "role"), &role);
        char cause[256];
        snprintf(cause, sizeof cause, "%s %s %s", key, address ? address : "?",
                 socket_label(domain));
        if (cert && syn_curve_role_allows(role, domain)) {
            status = "200";
            text = "OK";
            user_id = key;
        } else if (cert) {
            text = "key not for this socket";
            syn_ratelog_log(st->ratelog, cause, syn_mono_ms(), SYN_LOG_WARN, "broker",
                            "connection refused socket=%s address=%s key=%s: a %s key may not "
                            "use this socket",
                            socket_label(domain), address ? address : "?", key,
                    syn_curve_role_name(role));
        } else {
            text = "key not authorized";
            syn_ratelog_log(st->ratelog, cause, syn_mono_ms(), SYN_LOG_WARN, "broker",
                            "connection refused socket=%s address=%s key=%s: not among the "
                            "authorized keys",
                            socket_label(domain), address ? address : "?", key);
        }
    }
    zmsg_t *reply = zmsg_new();
    zmsg_addstr(reply, "1.0");
    if (request_id)
        zmsg_append(reply, &request_id);
    else
        zmsg_addstr(reply, "");
    zmsg_addstr(reply, status);
    zmsg_addstr(reply, text);
    zmsg_addstr(reply, user_id);
    zmsg_addmem(reply, NULL, 0);
    zmsg_send(&reply, st->handler);
    free(version);
    free(domain);
    free(address);
    free(mechanism);
    zframe_destroy(&request_id);
    zframe_destroy(&identity);
    zframe_destroy(&credentials);
    zmsg_destroy(&request);
}

/* A monitor event of a watched socket: [event u16, value u32][endpoint]. For a
 * socket that binds, libzmq names the listening endpoint, not the peer. */
static void handle_event(zap_state_t *st, watch_t *w)
{
    zmsg_t *msg = zmsg_recv(w->pair);
    zframe_t *head = msg ? zmsg_first(msg) : NULL;
    if (!head || zframe_size(head) != 6) {
        zmsg_destroy(&msg);
        return;
    }
    uint16_t event;
    uint32_t value;
    memcpy(&event, zframe_data(head), 2);
    memcpy(&value, zframe_data(head) + 2, 4);
    zframe_t *where = zmsg_next(msg);
    char *endpoint = where ? zframe_strdup(where) : NULL;
    const char *what =
        event == ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL
            ? "the peer left during the handshake (a client without CURVE, plaintext, or one "
              "that speaks no ZMTP)"
        : value == ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH
            ? "a client without CURVE (plaintext) on a CURVE socket"
        : value == ZMQ_PROTOCOL_ERROR_ZMTP_CRYPTOGRAPHIC
            ? "a CURVE handshake that does not decrypt (a client with another broker key?)"
            : "a malformed handshake";
    char cause[128];
    snprintf(cause, sizeof cause, "handshake %u %u %s", event, value, w->name);
    syn_ratelog_log(st->ratelog, cause, syn_mono_ms(), SYN_LOG_WARN, "broker",
                    "connection refused socket=%s listening=%s: %s (libzmq names no peer for a "
                    "failed handshake)",
                    w->name, endpoint ? endpoint : "?", what);
    free(endpoint);
    zmsg_destroy(&msg);
}

/* Commands on the pipe: RELOAD → [OK][n] | [ERROR][reason]; WATCH endpoint name
 * → OK | ERROR; $TERM. */
static void handle_command(zap_state_t *st, zsock_t *pipe, bool *stop)
{
    zmsg_t *cmd = zmsg_recv(pipe);
    char *verb = cmd ? zmsg_popstr(cmd) : NULL;
    if (!verb || strcmp(verb, "$TERM") == 0) {
        *stop = true;
    } else if (strcmp(verb, "RELOAD") == 0) {
        char err[ERR_MAX];
        size_t count = 0;
        zcertstore_t *store = load_dir(st->dir, &count, err, sizeof err);
        if (store) {
            zcertstore_destroy(&st->store);
            st->store = store;
            zstr_sendm(pipe, "OK");
            zstr_sendf(pipe, "%zu", count);
        } else {
            zstr_sendm(pipe, "ERROR");
            zstr_send(pipe, err);
        }
    } else if (strcmp(verb, "WATCH") == 0) {
        char *endpoint = zmsg_popstr(cmd), *name = zmsg_popstr(cmd);
        zsock_t *pair = NULL;
        if (endpoint && name && st->watch_count < WATCH_MAX &&
            (pair = zsock_new(ZMQ_PAIR)) && zsock_connect(pair, "%s", endpoint) != 0)
            zsock_destroy(&pair);
        if (pair) {
            st->watches[st->watch_count++] = (watch_t){pair, name};
            name = NULL;
        }
        zstr_send(pipe, pair ? "OK" : "ERROR");
        free(endpoint);
        free(name);
    }
    free(verb);
    zmsg_destroy(&cmd);
}

static void zap_actor(zsock_t *pipe, void *args)
{
    zap_state_t *st = args;
    st->handler = zsock_new(ZMQ_REP);
    if (!st->handler || zsock_bind(st->handler, ZAP_ENDPOINT) != 0) {
        snprintf(st->start_err, sizeof st->start_err,
                 "cannot bind the ZAP handler at %s: %s (one per process)", ZAP_ENDPOINT,
                 zmq_strerror(zmq_errno()));
        zsock_destroy(&st->handler);
        zsock_signal(pipe, 0);
        return;
    }
    zsock_signal(pipe, 0);
    bool stop = false;
    while (!stop) {
        zmq_pollitem_t items[2 + WATCH_MAX];
        items[0] = (zmq_pollitem_t){zsock_resolve(pipe), 0, ZMQ_POLLIN, 0};
        items[1] = (zmq_pollitem_t){zsock_resolve(st->handler), 0, ZMQ_POLLIN, 0};
        size_t n = 2;
        for (size_t i = 0; i < st->watch_count; i++)
            items[n++] = (zmq_pollitem_t){zsock_resolve(st->watches[i].pair), 0, ZMQ_POLLIN, 0};
        /* A signal meant for the main thread may land here: EINTR is no reason to stop. */
        if (zmq_poll(items, (int)n, -1) < 0) {
            if (zmq_errno() == EINTR)
                continue;
            break;
        }
        if (items[1].revents & ZMQ_POLLIN)
            handle_request(st);
        for (size_t i = 0; i < st->watch_count; i++)
            if (items[2 + i].revents & ZMQ_POLLIN)
                handle_event(st, &st->watches[i]);
        if (items[0].revents & ZMQ_POLLIN)
            handle_command(st, pipe, &stop);
    }
    for (size_t i = 0; i < st->watch_count; i++) {
        zsock_destroy(&st->watches[i].pair);
        free(st->watches[i].name);
    }
    st->watch_count = 0;
    zsock_destroy(&st->handler);
}

static void state_free(zap_state_t *st)
{
    if (!st)
        return;
    zcertstore_destroy(&st->store);
    syn_ratelog_destroy(&st->ratelog);
    free(st->dir);
    free(st);
}

broker_zap_t *broker_zap_new(const char *keys_dir, int64_t log_interval_ms, char *err,
                             size_t errlen)
{
    if (!keys_dir || !keys_dir[0]) {
        snprintf(err, errlen, "no authorized keys directory given (--authorized-keys DIR)");
        return NULL;
    }
    broker_zap_t *self = calloc(1, sizeof *self);
    zap_state_t *st = calloc(1, sizeof *st);
    if (!self || !st || !(st->dir = strdup(keys_dir)) ||
        !(st->ratelog = syn_ratelog_new(log_interval_ms, RATELOG_CAUSES))) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    st->store = load_dir(keys_dir, &self->key_count, err, errlen);
    if (!st->store)
        goto fail;
    self->state = st;
    self->actor = zactor_new(zap_actor, st);
    if (!self->actor || st->start_err[0]) {
        snprintf(err, errlen, "%s", st->start_err[0] ? st->start_err : "cannot start the ZAP handler");
        broker_zap_destroy(&self);
        return NULL;
    }
    return self;
fail:
    state_free(st);
    free(self);
    return NULL;
}

void broker_zap_destroy(broker_zap_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    broker_zap_t *self = *self_p;
    zactor_destroy(&self->actor);
    state_free(self->state);
    free(self);
    *self_p = NULL;
}

size_t broker_zap_key_count(broker_zap_t *self)
{
    return self->key_count;
}

int broker_zap_reload(broker_zap_t *self, char *err, size_t errlen)
{
    char *status = NULL, *detail = NULL;
    if (zstr_send(self->actor, "RELOAD") != 0 || zstr_recvx(self->actor, &status, &detail, NULL) < 2) {
        snprintf(err, errlen, "the ZAP handler did not answer");
        free(status);
        free(detail);
        return -1;
    }
    int rc = -1;
    if (strcmp(status, "OK") == 0) {
        self->key_count = strtoul(detail, NULL, 10);
        rc = (int)self->key_count;
    } else {
        snprintf(err, errlen, "%s", detail);
    }
    free(status);
    free(detail);
    return rc;
}

int broker_zap_watch(broker_zap_t *self, void *socket, const char *socket_name)
{
    char endpoint[64];
    snprintf(endpoint, sizeof endpoint, "inproc://syn-zap-monitor-%p-%d", (void *)self,
             ++self->watch_seq);
    if (zmq_socket_monitor(zsock_resolve(socket), endpoint,
                           ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
                               ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL) != 0)
        return -1;
    char *status = NULL;
    if (zstr_sendx(self->actor, "WATCH", endpoint, socket_name, NULL) != 0 ||
        !(status = zstr_recv(self->actor))) {
        zmq_socket_monitor(zsock_resolve(socket), NULL, 0);
        return -1;
    }
    bool ok = strcmp(status, "OK") == 0;
    free(status);
    if (!ok)
        zmq_socket_monitor(zsock_resolve(socket), NULL, 0);
    return ok ? 0 : -1;
}
