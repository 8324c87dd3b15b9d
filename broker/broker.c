/* broker: sockets, the loop turn, group commit and the after-commit flush. */
#include "broker/broker.h"

#include "broker/api.h"
#include "broker/engine.h"
#include "broker/events.h"
#include "broker/lease.h"
#include "broker/lost.h"
#include "broker/metrics_http.h"
#include "broker/outbox.h"
#include "broker/preload.h"
#include "broker/storage_full.h"
#include "broker/store.h"
#include "broker/workers.h"
#include "broker/zap.h"
#include "common/clock.h"
#include "common/endpoint.h"
#include "common/log.h"
#include "common/metrics.h"
#include "proto/curve.h"
#include "proto/msg.h"

#include <czmq.h>
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Messages handled per socket per turn: enough to amortize a commit over many
 * requests, small enough that timers and the other socket are never starved. */
#define BATCH_PER_SOCKET 512
/* Time a turn spends reading before its timers, heartbeats and commit, for both
 * sockets: one slow request (a big events.replay or execution.list) costs
 * milliseconds, and so does an artifact chunk (decoded, hashed, written as a
 * blob) — hundreds of them on a loaded machine. A flood of either must not delay
 * the heartbeats past the workers' liveness window (they would believe the broker
 * gone) nor keep a waiting execute past the gateway's request timeout (it answers
 * 503): bounded by bytes alone (BROKER_ARTIFACT_TURN_BYTES), a turn of chunks took
 * seconds there. Each socket still gives at least one message per turn, clients
 * first, so neither starves whatever the other costs; the rest wait in the
 * sockets for the next turn. */
#define TURN_BUDGET_MS 50
/* How often deadlines and silent workers are checked. */
#define TICK_MS 100
#define SOCKET_HWM 100000
/* Connections waiting to be accepted (the kernel caps it at net.core.somaxconn):
 * libzmq's default, 100, is overrun when a fleet connects at once — a broker
 * restarted under a thousand workers — and each connection beyond it has its SYN
 * dropped and retried by TCP after 1, 3, 7 … s, which held READYs back for tens
 * of seconds, past the adoption window (docs/benchmarks.md, "A thousand workers"). */
#define LISTEN_BACKLOG 4096
/* Events queued for a subscriber that lags (a gateway behind on a burst): each
 * holds its message, ~0.8 KiB, so at SOCKET_HWM a slow gateway cost the broker
 * up to ~80 MiB. Past this the subscriber sees a gap and reads it from the log. */
#define EVENTS_HWM 20000
/* Retention runs this often, and on every turn while it finds executions to
 * delete: under a steady load it must delete as fast as executions finish, a
 * batch of a few milliseconds per turn. */
#define RETAIN_INTERVAL_MS 1000
/* A batch's bounds: a few milliseconds of the loop at most. */
#define RETAIN_BATCH 200
#define RETAIN_BUDGET_US 3000
/* Finished executions since the last trim before an idle broker gives freed
 * memory back to the system. */
#define TRIM_AFTER_RETIRED 1000

struct broker_t {
    broker_config_t config;
    broker_store_t *store;
    broker_outbox_t *outbox;
    broker_events_t *events;
    broker_workers_t *workers;
    broker_engine_t *engine;
    broker_api_t *api;
    broker_counters_t *counters; /* for /metrics, fed by the events */
    broker_metrics_http_t *metrics_http; /* --metrics; NULL: none */
    syn_curve_t *curve;     /* NULL: no CURVE */
    broker_zap_t *zap;      /* with curve: who may connect */
    zsock_t *clients;
    zsock_t *worker_sock;
    zsock_t *pub;
    char *clients_ep, *workers_ep, *events_ep;
    int64_t next_heartbeat_ms;
    int64_t next_tick_ms;
    int64_t next_retain_ms;
    int64_t turn_budget_ms;    /* TURN_BUDGET_MS, or a test's */
    uint64_t retained_deleted; /* finished executions deleted by retention */
    uint64_t retired_at_trim; /* finished executions counted at the last trim */
    void (*allocator_collect)(bool force); /* mimalloc's mi_collect when linked in */
    broker_storage_t storage; /* whether commits fail (storage_full.h) */
    broker_lease_t lease; /* PostgreSQL: which broker is active (lease.h) */
    bool standby; /* waiting for the lease: no state, no sockets (only --metrics) */
    broker_stats_t stats;
};

/* The text of the broker's --metrics endpoint: metrics.get's families. */
static char *metrics_text(void *arg)
{
    broker_t *self = arg;
    if (self->standby)
        return strdup("# syn-broker: standby, no metrics until it is active\n");
    json_t *families = broker_api_metrics(self->api);
    char *text = families ? syn_metrics_render(families) : NULL;
    json_decref(families);
    return text;
}

/* mkdir -p: the data directory may be several levels deep. */
static int make_dirs(const char *path, char *err, size_t errlen)
{
    char buf[PATH_MAX];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf) {
        snprintf(err, errlen, "data path too long");
        return -1;
    }
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0755) != 0 && errno != EEXIST) {
            snprintf(err, errlen, "cannot create %s: %s", buf, strerror(errno));
            return -1;
        }
        *p = '/';
    }
    if (mkdir(buf, 0755) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "cannot create %s: %s", buf, strerror(errno));
        return -1;
    }
    return 0;
}

int broker_config_check(const broker_config_t *config, char *err, size_t errlen)
{
    bool secret = config->curve_secret && config->curve_secret[0];
    bool keys = config->authorized_keys && config->authorized_keys[0];
    if (secret && !keys) {
        snprintf(err, errlen, "--curve-secret needs --authorized-keys DIR (the public keys of "
                              "the gateways and workers allowed in)");
        return -1;
    }
    if (keys && !secret) {
        snprintf(err, errlen, "--authorized-keys needs --curve-secret FILE (the broker's own "
                              "secret key)");
        return -1;
    }
    /* Metrics have no key of their own to hide behind, CURVE or not. */
    if (config->metrics && config->metrics[0] &&
        syn_endpoint_check("--metrics", config->metrics, true, config->insecure,
                           "its metrics have no authentication",
                           "scrape it from this host, or a gateway's /metrics (read scope), "
                           "or give --insecure",
                           err, errlen) < 0)
        return -1;
    if (secret)
        return 0;
    const char *flags[] = {"--clients", "--workers", "--events"};
    const char *endpoints[] = {config->clients, config->workers, config->events};
    for (int i = 0; i < 3; i++)
        if (syn_endpoint_check(flags[i], endpoints[i], false, config->insecure,
                               "the broker has no CURVE key",
                               "give --curve-secret FILE and --authorized-keys DIR, or "
                               "--insecure to leave the links open",
                               err, errlen) < 0)
            return -1;
    return 0;
}

/* domain: the socket's name, the ZAP domain of its handshakes under CURVE. */
static zsock_t *open_socket(broker_t *self, int type, const char *endpoint, const char *domain,
                            char **bound, char *err, size_t errlen)
{
    zsock_t *sock = zsock_new(type);
    if (!sock) {
        snprintf(err, errlen, "cannot create a socket");
        return NULL;
    }
    zsock_set_linger(sock, 0);
    zsock_set_maxmsgsize(sock, (int)SYN_MSG_MAX_SIZE);
    zsock_set_sndhwm(sock, type == ZMQ_PUB ? EVENTS_HWM : SOCKET_HWM);
    zsock_set_rcvhwm(sock, SOCKET_HWM);
    if (type == ZMQ_ROUTER)
        zsock_set_router_mandatory(sock, 1);
    zsock_set_backlog(sock, LISTEN_BACKLOG);
    if (self->curve) {
        if (syn_curve_apply_server(self->curve, sock, domain) < 0) {
            snprintf(err, errlen, "cannot make the %s socket a CURVE server: %s", domain,
                     zmq_strerror(zmq_errno()));
            zsock_destroy(&sock);
            return NULL;
        }
        if (broker_zap_watch(self->zap, sock, domain) < 0)
            syn_warn("broker", "cannot watch the %s socket for failed handshakes: plaintext "
                               "clients there go unlogged", domain);
    }
    if (zsock_bind(sock, "%s", endpoint) < 0) {
        snprintf(err, errlen, "cannot bind %s: %s", endpoint, zmq_strerror(zmq_errno()));
        zsock_destroy(&sock);
        return NULL;
    }
    int low = 0, high = 0;
    if (syn_endpoint_port_is_ephemeral(endpoint, &low, &high))
        syn_warn("broker",
                 "%s is in the kernel's ephemeral port range %d-%d: a worker or gateway "
                 "reconnecting while the broker is down can take this port as its own and keep "
                 "the broker from binding it; pick a port below %d (docs/operations.md)",
                 endpoint, low, high, low);
    char *last = zsock_last_endpoint(sock); /* freshly allocated: ours to keep */
    *bound = last ? last : strdup(endpoint);
    return sock;
}

/* Drops the state in memory that mirrors the store: the api, the engine with its
 * executions, the events' sequence, and the workers registry unless kept. */
static void drop_state(broker_t *self, bool keep_workers)
{
    broker_api_destroy(&self->api);
    broker_engine_destroy(&self->engine);
    broker_events_destroy(&self->events);
    if (!keep_workers)
        broker_workers_destroy(&self->workers);
}

/* Builds that state from the store, as a start does: every execution that had
 * not finished is reloaded (broker_engine_recover), into the open transaction
 * the caller commits. workers: a registry to keep (NULL: a new, empty one; the
 * workers then re-register at their next message, as after a restart). 0, or -1
 * with the reason in err. */
static int build_state(broker_t *self, broker_workers_t *workers, char *err, size_t errlen)
{
    const broker_config_t *config = &self->config;
    self->workers = workers ? workers : broker_workers_new();
    self->events = broker_events_new(self->store, self->outbox);
    broker_engine_config_t engine_config = {
        .heartbeat_ms = config->heartbeat_ms,
        .liveness = config->liveness,
        .kill_grace_ms = config->kill_grace_ms,
        .quarantine = {config->quarantine_after, config->quarantine_window_ms},
        .max_running = config->max_running,
        .artifacts = config->artifacts,
    };
    self->engine = self->events && self->workers
                       ? broker_engine_new(self->store, self->events, self->outbox,
                                           self->workers, &engine_config)
                       : NULL;
    self->api = self->engine ? broker_api_new(self->store, self->engine, self->workers) : NULL;
    if (!self->api) {
        snprintf(err, errlen, "cannot set up the broker (out of memory or unreadable database)");
        return -1;
    }
    broker_api_set_idempotency_window(self->api, config->idempotency_window_s);
    broker_api_watch_storage(self->api, &self->storage);
    broker_api_watch_lease(self->api, &self->lease);
    broker_events_count_into(self->events, self->counters);
    broker_api_count_into(self->api, self->counters);
    self->retired_at_trim = 0;
    if (broker_engine_recover(self->engine, syn_mono_ms()) < 0) {
        snprintf(err, errlen, "cannot reload active executions from the database");
        return -1;
    }
    return 0;
}

/* Becomes the serving broker, as a start does: loads the state (every active
 * execution, the adoption window for the workers), installs the workflows of
 * --workflows, then binds the sockets. A standby comes here once it holds the
 * lease: until then it binds nothing, so gateways and workers find it closed
 * and try their next endpoint. 0, or -1 with the reason in err. */
static int activate(broker_t *self, char *err, size_t errlen)
{
    const broker_config_t *config = &self->config;
    if (build_state(self, NULL, err, errlen) < 0)
        return -1;
    if (broker_store_commit(self->store) < 0) {
        snprintf(err, errlen, "cannot reload active executions from the store");
        return -1;
    }
    if (config->workflows_dir && config->workflows_dir[0]) {
        broker_preload_stats_t loaded;
        char why[512];
        if (broker_preload(self->api, config->workflows_dir, &loaded, why, sizeof why) < 0) {
            snprintf(err, errlen, "cannot load workflows: %s", why);
            return -1;
        }
        if (broker_store_commit(self->store) < 0) {
            snprintf(err, errlen, "cannot store the workflows of %s", config->workflows_dir);
            return -1;
        }
    }
    if (config->curve_secret && config->curve_secret[0]) {
        char why[512];
        self->curve = syn_curve_new_server(config->curve_secret, why, sizeof why);
        if (!self->curve) {
            snprintf(err, errlen, "--curve-secret: %s", why);
            return -1;
        }
        self->zap = broker_zap_new(config->authorized_keys, BROKER_ZAP_LOG_INTERVAL_MS, why,
                                   sizeof why);
        if (!self->zap) {
            snprintf(err, errlen, "--authorized-keys: %s", why);
            return -1;
        }
        syn_info("broker", "CURVE on clients, workers and events key=%s authorized_keys=%zu "
                           "dir=%s",
                 syn_curve_public_txt(self->curve), broker_zap_key_count(self->zap),
                 config->authorized_keys);
    }
    /* Events produced by the reload are committed; they go out once PUB exists. */
    self->clients = open_socket(self, ZMQ_ROUTER, config->clients, "clients", &self->clients_ep,
                                err, errlen);
    if (!self->clients)
        return -1;
    self->worker_sock = open_socket(self, ZMQ_ROUTER, config->workers, SYN_CURVE_DOMAIN_WORKERS,
                                    &self->workers_ep, err, errlen);
    if (!self->worker_sock)
        return -1;
    self->pub = open_socket(self, ZMQ_PUB, config->events, "events", &self->events_ep, err,
                            errlen);
    if (!self->pub)
        return -1;
    int64_t now = syn_mono_ms();
    broker_engine_adoption_open(self->engine, now);
    self->next_heartbeat_ms = now;
    self->next_tick_ms = now + TICK_MS;
    /* (the URI is not logged: it may hold a password) */
    syn_info("broker", "listening clients=%s workers=%s events=%s store=%s%s",
             self->clients_ep, self->workers_ep, self->events_ep,
             config->postgresql ? "postgresql" : "sqlite:",
             config->postgresql ? "" : config->data_dir);
    return 0;
}

broker_t *broker_new(const broker_config_t *config, char *err, size_t errlen)
{
    broker_t *self = calloc(1, sizeof *self);
    if (!self) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    self->config = *config;
    self->turn_budget_ms = TURN_BUDGET_MS;
    /* Programs may be linked with mimalloc (CMakeLists.txt), whose freed pages
     * glibc's malloc_trim cannot reach: found at run time, so this library does
     * not depend on the allocator its program chose. */
    *(void **)&self->allocator_collect = dlsym(RTLD_DEFAULT, "mi_collect");
    char path[PATH_MAX];
    if (config->postgresql) {
        snprintf(path, sizeof path, "%s", config->postgresql);
    } else if (make_dirs(config->data_dir, err, errlen) < 0) {
        goto fail;
    } else if (snprintf(path, sizeof path, "%s/syn.db", config->data_dir) >= (int)sizeof path) {
        snprintf(err, errlen, "data path too long");
        goto fail;
    }
    self->store = broker_store_open(path, err, errlen);
    if (!self->store)
        goto fail;
    self->outbox = broker_outbox_new();
    self->counters = broker_counters_new();
    if (!self->outbox || !self->counters) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    broker_lease_init(&self->lease, config->clients, config->lease_ms);
    if (config->metrics && config->metrics[0]) {
        self->metrics_http =
            broker_metrics_http_new(config->metrics, metrics_text, self, err, errlen);
        if (!self->metrics_http)
            goto fail;
        broker_metrics_http_watch_standby(self->metrics_http, &self->standby);
        syn_info("broker", "metrics on http address=%s port=%u", config->metrics,
                 broker_metrics_http_port(self->metrics_http));
    }
    /* PostgreSQL: active only with the lease; else a standby (broker_poll tries
     * again until it lapses). */
    if (config->postgresql) {
        int taken = broker_lease_try(&self->lease, self->store, syn_mono_ms());
        if (taken < 0) {
            snprintf(err, errlen, "cannot read the lease (broker_lease) from the database");
            goto fail;
        }
        self->standby = taken == 0;
        if (self->standby)
            return self;
    }
    if (activate(self, err, errlen) < 0)
        goto fail;
    return self;
fail:
    broker_destroy(&self);
    return NULL;
}

void broker_destroy(broker_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    broker_t *self = *self_p;
    if (self->store && broker_store_commit(self->store) < 0)
        syn_error("broker", "the last commit failed");
    /* A graceful stop hands over at once (a deposed broker's token is no
     * longer the lease's: nothing happens). */
    if (self->store && self->lease.token > 0 && !broker_store_deposed(self->store))
        broker_store_lease_release(self->store);
    broker_metrics_http_destroy(&self->metrics_http);
    drop_state(self, false);
    broker_counters_destroy(&self->counters);
    broker_outbox_destroy(&self->outbox);
    broker_store_destroy(&self->store);
    zsock_destroy(&self->clients);
    zsock_destroy(&self->worker_sock);
    zsock_destroy(&self->pub);
    broker_zap_destroy(&self->zap);
    syn_curve_destroy(&self->curve);
    free(self->clients_ep);
    free(self->workers_ep);
    free(self->events_ep);
    free(self);
    *self_p = NULL;
}

const char *broker_clients_endpoint(broker_t *self)
{
    return self->clients_ep;
}

const char *broker_workers_endpoint(broker_t *self)
{
    return self->workers_ep;
}

const char *broker_events_endpoint(broker_t *self)
{
    return self->events_ep;
}

int broker_reload_keys(broker_t *self)
{
    if (!self->zap) {
        syn_warn("broker", "asked to reload the authorized keys, but the broker runs without "
                           "CURVE (--curve-secret)");
        return -1;
    }
    char err[512];
    int count = broker_zap_reload(self->zap, err, sizeof err);
    if (count < 0)
        syn_error("broker", "authorized keys not reloaded (the %zu loaded before stay): %s",
                  broker_zap_key_count(self->zap), err);
    else
        syn_info("broker", "authorized keys reloaded keys=%d dir=%s", count,
                 self->config.authorized_keys);
    return count;
}

broker_stats_t broker_stats(const broker_t *self)
{
    broker_stats_t stats = self->stats;
    stats.commits = broker_store_commit_count(self->store);
    return stats;
}

/* --- one turn --------------------------------------------------------------- */

static void handle_request(broker_t *self, const unsigned char *identity, size_t identity_len,
                           syn_msg_t *msg)
{
    const json_t *fields = syn_msg_fields(msg);
    json_int_t id = json_integer_value(json_object_get(fields, "id"));
    const char *op = json_string_value(json_object_get(fields, "op"));
    json_t *body = NULL;
    int status = broker_api_handle(self->api, op, json_object_get(fields, "args"), &body);
    self->stats.requests++;
    if (self->storage.full && status == 503)
        self->storage.refused++;
    json_t *reply = json_pack("{s:I, s:i, s:o}", "id", id, "status", status, "body",
                              body ? body : json_null());
    syn_msg_t *out = reply ? syn_msg_new_with(SYN_MSG_REPLY, reply) : NULL;
    if (!out || broker_outbox_push(self->outbox, BROKER_TO_CLIENT, identity, identity_len,
                                   out) < 0)
        syn_error("broker", "cannot queue the reply to request id=%lld op=%s", (long long)id,
                  op ? op : "?");
    syn_debug("broker", "request id=%lld op=%s status=%d", (long long)id, op ? op : "?",
              status);
}

/* Reads one message from a ROUTER: 1 handled, 0 nothing waiting. */
static int receive_one(broker_t *self, zsock_t *sock, bool from_clients)
{
    unsigned char identity[256];
    size_t identity_len = sizeof identity;
    syn_msg_t *msg = NULL;
    char err[256];
    /* Over CURVE a worker's key comes with each of its messages (its name is
     * bound to it), and its address with each one over TCP (shown in /workers);
     * clients need neither. */
    syn_msg_peer_t peer;
    int rc = syn_msg_recv_peer(zsock_resolve(sock), &msg, identity, &identity_len,
                               from_clients ? NULL : &peer, err, sizeof err);
    if (rc == -1)
        return 0;
    if (rc == -2) {
        self->stats.invalid_messages++;
        syn_warn("broker", "dropped an invalid message from a %s: %s",
                 from_clients ? "client" : "worker", err);
        return 1;
    }
    if (from_clients) {
        if (syn_msg_type(msg) == SYN_MSG_REQUEST)
            handle_request(self, identity, identity_len, msg);
        else
            syn_warn("broker", "unexpected %s from a client",
                     syn_msg_type_name(syn_msg_type(msg)));
    } else if (self->storage.full) {
        /* Not taken (a result stays unacknowledged, so its worker keeps it and
         * sends it again); the heartbeat tells the worker the broker lives. */
        self->storage.held++;
        syn_msg_t *beat = syn_msg_new_with(SYN_MSG_HEARTBEAT, json_object());
        if (!beat || broker_outbox_push(self->outbox, BROKER_TO_WORKER, identity, identity_len,
                                        beat) < 0)
            syn_error("broker", "cannot queue a heartbeat for a worker");
    } else {
        self->stats.worker_messages++;
        broker_engine_on_worker_from(self->engine, identity, identity_len,
                                     self->curve ? peer.user_id : NULL, peer.address, msg,
                                     syn_mono_ms());
    }
    syn_msg_destroy(&msg);
    return 1;
}

/* Sends what was queued before this call (anything queued while sending — e.g.
 * by an undeliverable ASSIGN — waits for the next commit). */
static void flush_outbox(broker_t *self)
{
    size_t pending = broker_outbox_size(self->outbox);
    unsigned char identity[BROKER_IDENTITY_MAX];
    for (size_t i = 0; i < pending; i++) {
        broker_dest_t dest;
        size_t identity_len;
        syn_msg_t *msg = broker_outbox_pop(self->outbox, &dest, identity, &identity_len);
        if (!msg)
            break;
        zsock_t *sock = dest == BROKER_TO_CLIENT   ? self->clients
                        : dest == BROKER_TO_WORKER ? self->worker_sock
                                                   : self->pub;
        if (syn_msg_send(zsock_resolve(sock), identity, identity_len, msg) < 0) {
            int e = errno;
            self->stats.send_failures++;
            syn_warn("broker", "send failed to a %s type=%s error=%s",
                     dest == BROKER_TO_CLIENT   ? "client"
                     : dest == BROKER_TO_WORKER ? "worker"
                                                : "subscriber",
                     syn_msg_type_name(syn_msg_type(msg)), zmq_strerror(e));
            /* While storage is full nothing is decided (a worker gone is noticed
             * again after the resume). */
            if (dest == BROKER_TO_WORKER && !self->storage.full)
                broker_engine_undeliverable(self->engine, identity, identity_len, msg, e,
                                            syn_mono_ms());
        } else if (dest == BROKER_TO_CLIENT) {
            self->stats.replies++;
        }
        syn_msg_destroy(&msg);
    }
}

/* Executions the engine holds are not deleted, finished or not: it may still
 * answer for them from memory. */
static bool held_by_engine(const char *execution_id, void *arg)
{
    broker_t *self = arg;
    return broker_engine_find(self->engine, execution_id) != NULL;
}

/* One batch of expired executions, into this turn's transaction, and one
 * ExecutionsDeleted event naming them (gateways forget their cached statuses).
 * One event per batch rather than per execution: the event log keeps a row per
 * event, and an event about a deleted execution would outlive it there. */
static void run_retention(broker_t *self, int64_t now_ms)
{
    if (now_ms < self->next_retain_ms ||
        (self->config.retain_seconds <= 0 && self->config.retain_max_executions <= 0))
        return;
    int64_t before_us = self->config.retain_seconds > 0
                            ? syn_now_us() - self->config.retain_seconds * 1000000
                            : 0;
    json_t *ids = json_array();
    int deleted = !ids ? -1
                       : broker_store_retention_batch(self->store, before_us,
                                                      self->config.retain_max_executions > 0
                                                          ? self->config.retain_max_executions
                                                          : -1,
                                                      RETAIN_BATCH, RETAIN_BUDGET_US,
                                                      held_by_engine, self, ids);
    if (deleted < 0)
        syn_error("broker", "retention: cannot delete expired executions");
    else
        self->retained_deleted += (uint64_t)deleted;
    if (deleted > 0 &&
        broker_events_emit_with_status(self->events, NULL, 0, "ExecutionsDeleted",
                                       json_pack("{s:O}", "execution_ids", ids), NULL) < 0)
        syn_error("broker", "retention: cannot record ExecutionsDeleted");
    json_decref(ids);
    if (deleted > 0)
        syn_debug("broker", "retention deleted=%d total=%llu", deleted,
                  (unsigned long long)self->retained_deleted);
    self->next_retain_ms = deleted > 0 ? now_ms : now_ms + RETAIN_INTERVAL_MS;
}

static void run_timers(broker_t *self)
{
    int64_t now = syn_mono_ms();
    /* Only the workers whose heartbeat is due: a few per turn, not the fleet. */
    if (now >= self->next_heartbeat_ms)
        self->next_heartbeat_ms = broker_engine_heartbeat(self->engine, now);
    if (now >= self->next_tick_ms) {
        broker_engine_tick(self->engine, now);
        self->next_tick_ms = now + TICK_MS;
    }
    run_retention(self, now);
}

static uint64_t retired_count(const broker_t *self)
{
    broker_engine_stats_t stats = broker_engine_stats(self->engine);
    return stats.completed + stats.failed + stats.cancelled;
}

/* A backlog of many active executions grows the heap, and once they finish
 * (they leave memory as soon as they are terminal) malloc keeps the pages: when
 * nothing is active any more after a good number finished, hand them back. */
static void trim_when_idle(broker_t *self)
{
    if (broker_engine_active_count(self->engine) > 0)
        return;
    uint64_t retired = retired_count(self);
    if (retired - self->retired_at_trim < TRIM_AFTER_RETIRED)
        return;
    self->retired_at_trim = retired;
    if (self->allocator_collect)
        self->allocator_collect(true);
    else
        malloc_trim(0);
}

void broker_set_turn_budget(broker_t *self, int64_t ms)
{
    self->turn_budget_ms = ms;
}

/* The turn's commit failed (the store rolled it back): nothing of it is said but
 * 503s for its requests, the memory is rebuilt from what is committed, and the
 * broker stays up in the storage-full mode (storage_full.h). 0, or -1 when the
 * store cannot even be read. */
static int storage_failed(broker_t *self)
{
    broker_storage_fail(&self->storage, broker_store_last_error(self->store), syn_mono_ms());
    broker_storage_refuse_outbox(&self->storage, self->outbox);
    flush_outbox(self);
    if (broker_store_connection_lost(self->store)) {
        /* PostgreSQL is away: nothing to rebuild from until the retry has
         * connected again; reads are served from memory meanwhile (which may
         * still show the turn just refused), and the resume rebuilds it. */
        broker_store_rollback(self->store);
        broker_outbox_clear(self->outbox);
        return 0;
    }
    /* The registry stays (GET /workers, and the workers keep their connections);
     * the rebuild on resume replaces it. */
    broker_workers_t *workers = self->workers;
    drop_state(self, true);
    char err[256];
    if (build_state(self, workers, err, sizeof err) < 0) {
        syn_error("broker", "%s: stopping", err);
        return -1;
    }
    /* What the reload itself writes (rarely anything) waits for the resume,
     * which reloads again. */
    broker_store_rollback(self->store);
    broker_outbox_clear(self->outbox);
    return 0;
}

/* A turn while storage is full: every BROKER_STORAGE_RETRY_MS, a write; once
 * one commits, the memory is rebuilt from the store with a new registry (the
 * workers re-register and resend their results, as after a restart) and the
 * broker resumes. 0, or -1 when the store cannot be read. */
static int storage_retry(broker_t *self)
{
    int64_t now = syn_mono_ms();
    /* Nothing may be written meanwhile: a write here is a bug, not kept. */
    if (broker_store_dirty(self->store)) {
        syn_error("broker", "a write while storage is full: rolled back");
        broker_store_rollback(self->store);
    }
    bool for_write;
    bool connecting = broker_store_reconnect_fd(self->store, &for_write) >= 0;
    if (now < self->storage.next_try_ms && !connecting)
        return 0;
    if (broker_store_probe(self->store) < 0) {
        broker_storage_fail(&self->storage, broker_store_last_error(self->store), now);
        return 0;
    }
    broker_outbox_clear(self->outbox);
    /* The workers it is about to forget re-register at once (and resend what they
     * hold), not only at their next message: the reloaded running phases wait one
     * liveness window for them. */
    for (size_t i = 0; i < broker_workers_count(self->workers); i++) {
        broker_worker_t *w = broker_workers_at(self->workers, i);
        syn_msg_t *again = syn_msg_new_with(SYN_MSG_DISCONNECT, json_object());
        if (!again || broker_outbox_push(self->outbox, BROKER_TO_WORKER, w->identity,
                                         w->identity_len, again) < 0)
            syn_error("broker", "cannot queue a re-registration for worker=%s", w->name);
    }
    drop_state(self, false);
    char err[256];
    if (build_state(self, NULL, err, sizeof err) < 0) {
        syn_error("broker", "%s: stopping", err);
        return -1;
    }
    if (broker_store_commit(self->store) < 0) {
        broker_outbox_clear(self->outbox);
        broker_storage_fail(&self->storage, broker_store_last_error(self->store), now);
        return 0;
    }
    broker_storage_resume(&self->storage, now);
    self->next_heartbeat_ms = now;
    self->next_tick_ms = now + TICK_MS;
    return 0;
}

/* A standby's turn: serves --metrics (its /ready says 503) and, when it is
 * time, tries the lease; once it holds it, becomes active (activate). 0, or -1
 * when the database fails or the broker cannot become active. */
static int standby_poll(broker_t *self, int64_t max_wait_ms)
{
    int64_t wait = broker_lease_wait_ms(&self->lease, syn_mono_ms());
    if (wait > max_wait_ms)
        wait = max_wait_ms;
    zmq_pollitem_t item = {NULL, self->metrics_http ? broker_metrics_http_fd(self->metrics_http)
                                                    : -1,
                           ZMQ_POLLIN, 0};
    if (zmq_poll(&item, self->metrics_http ? 1 : 0, (long)wait) < 0 && zmq_errno() != EINTR) {
        syn_error("broker", "poll failed: %s", zmq_strerror(zmq_errno()));
        return -1;
    }
    if (self->metrics_http)
        broker_metrics_http_run(self->metrics_http);
    int taken = broker_lease_try(&self->lease, self->store, syn_mono_ms());
    if (taken <= 0)
        return taken;
    self->standby = false;
    char err[512];
    if (activate(self, err, sizeof err) < 0) {
        syn_error("broker", "cannot become active: %s", err);
        return -1;
    }
    return 0;
}

/* A commit the fence refused: another broker took the lease, and this one's
 * memory and outbox describe a turn the database never took. Nothing of it is
 * sent (no reply, no ASSIGN, no acknowledgement, no event) and the broker
 * stops: its restart, by a supervisor, is a standby. Stopping rather than
 * becoming a standby in place: the gateways and workers connected here must
 * see the sockets close to go to the active one, and a fresh process carries
 * nothing of the deposed state. */
static int deposed(broker_t *self)
{
    broker_outbox_clear(self->outbox);
    syn_error("broker", "deposed: a commit was refused by the fence (another broker holds the "
                        "lease; this broker's token=%lld): nothing of this turn is sent; "
                        "stopping",
              (long long)self->lease.token);
    return -1;
}

int broker_poll(broker_t *self, int64_t max_wait_ms)
{
    if (self->standby)
        return standby_poll(self, max_wait_ms);
    int64_t now = syn_mono_ms();
    int64_t wait = self->next_tick_ms < self->next_heartbeat_ms ? self->next_tick_ms
                                                                : self->next_heartbeat_ms;
    if (self->next_retain_ms < wait)
        wait = self->next_retain_ms; /* retention is catching up */
    if (self->storage.full)
        wait = self->storage.next_try_ms; /* no timer runs but the retry */
    wait -= now;
    if (wait > max_wait_ms)
        wait = max_wait_ms;
    if (wait < 0 || broker_outbox_size(self->outbox) > 0 || broker_store_dirty(self->store))
        wait = 0;
    /* A PostgreSQL reconnection under way waits with the sockets, never in
     * libpq (broker_store_reconnect_fd): its socket ready ends the wait. */
    bool for_write = false;
    int pg_fd = self->storage.full ? broker_store_reconnect_fd(self->store, &for_write) : -1;
    zmq_pollitem_t items[] = {
        {zsock_resolve(self->clients), 0, ZMQ_POLLIN, 0},
        {zsock_resolve(self->worker_sock), 0, ZMQ_POLLIN, 0},
        {NULL, self->metrics_http ? broker_metrics_http_fd(self->metrics_http) : -1, ZMQ_POLLIN,
         0},
        {NULL, pg_fd, for_write ? ZMQ_POLLOUT : ZMQ_POLLIN, 0},
    };
    int nitems = self->metrics_http ? 3 : 2;
    if (pg_fd >= 0)
        items[nitems++] = items[3];
    if (zmq_poll(items, nitems, (long)wait) < 0 && zmq_errno() != EINTR) {
        syn_error("broker", "poll failed: %s", zmq_strerror(zmq_errno()));
        return -1;
    }
    /* Drain both sockets alternately, clients first, up to a batch each and
     * within the turn's budget (the first message of each whatever the time).
     * A socket found empty is not asked again in this turn: each empty read
     * costs libzmq two system calls (getpid, poll), and asking the empty side
     * once per message of the other was ~7 of them per W1 execution; what
     * arrives meanwhile waits for the next turn, which the commit starts at once.
     * So are clients when the poll found none (workers are read until a read
     * finds none: that is what broker_lost_unreachable_now waits for). */
    int from_clients = 0, from_workers = 0;
    int64_t until = syn_mono_ms() + self->turn_budget_ms;
    bool more = true, over = false, workers_drained = false;
    bool clients_drained = !(items[0].revents & ZMQ_POLLIN);
    broker_artifacts_t *artifacts = broker_engine_artifacts(self->engine);
    broker_artifacts_new_turn(artifacts);
    while (more) {
        more = false;
        over = syn_mono_ms() >= until;
        if (!clients_drained && from_clients < BATCH_PER_SOCKET &&
            (from_clients == 0 || !over)) {
            if (receive_one(self, self->clients, true)) {
                from_clients++;
                more = true;
            } else {
                clients_drained = true;
            }
        }
        over = syn_mono_ms() >= until;
        if (!workers_drained && from_workers < BATCH_PER_SOCKET &&
            (from_workers == 0 || !over) && !broker_artifacts_turn_full(artifacts)) {
            if (receive_one(self, self->worker_sock, false)) {
                from_workers++;
                more = true;
            } else {
                workers_drained = true;
            }
        }
    }
    /* A worker a send found gone is lost only now that everything it sent
     * before is read: its DISCONNECT, if it said goodbye (lost.h). */
    if (workers_drained && !self->storage.full)
        broker_lost_unreachable_now(self->engine, syn_mono_ms());
    if (syn_mono_ms() >= until)
        self->stats.budget_turns++;
    /* Ready, or at least once a tick for its connection timeouts. */
    if (self->metrics_http && (items[2].revents || syn_mono_ms() >= self->next_tick_ms))
        broker_metrics_http_run(self->metrics_http);
    if (self->storage.full) {
        flush_outbox(self); /* answers to reads, heartbeats: nothing was written */
        if (storage_retry(self) < 0)
            return -1;
        flush_outbox(self);
        return broker_lease_keep(&self->lease, self->store, syn_mono_ms());
    }
    run_timers(self);
    broker_engine_dispatch(self->engine, syn_mono_ms());
    if (broker_store_commit(self->store) < 0)
        return broker_store_deposed(self->store) ? deposed(self) : storage_failed(self);
    flush_outbox(self);
    if (broker_lease_keep(&self->lease, self->store, syn_mono_ms()) < 0)
        return -1;
    broker_engine_assignments_sent(self->engine, syn_mono_us());
    trim_when_idle(self);
    return 0;
}
