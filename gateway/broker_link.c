/* broker_link: requests out, replies matched back by id, deadlines, and the redial
 * after a refused handshake (gateway/broker_link.h says why it stands alone). */
#include "gateway/broker_link.h"
#include "common/clock.h"
#include "common/endpoint_list.h"
#include "common/log.h"
#include "common/ratelog.h"
#include "gateway/gateway.h"
#include "gateway/pending.h"
#include "proto/msg.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define COMPONENT "gateway"

struct gateway_broker_link_t {
    /* The clients ROUTERs' and events PUBs' endpoints, the i-th of each one broker's:
     * both sockets follow the same index (gateway_broker_link_follow_when_due). */
    syn_endpoint_list_t *brokers;
    syn_endpoint_list_t *events;
    const char *broker;   /* the current of each */
    const char *event_ep;
    bool events_up;       /* the SUB's handshake with the current broker succeeded */
    int64_t down_since_ms; /* since when it has not been up */
    bool curve;   /* keys given: named in the refusal's log line */
    zsock_t *dealer;
    zsock_t *sub;
    int dealer_fd;
    /* A ZeroMQ socket's descriptor only tells that its state may have changed, and not
     * again until the socket has been read to the end (or its events asked for): the
     * DEALER may hold replies its descriptor will not announce. */
    bool dealer_check;
    gateway_pending_t *pending;
    uint64_t next_corr;
    gateway_broker_link_stats_t stats;
    bool broker_silent;       /* we logged that the broker stopped answering */
    int64_t broker_warned_ms; /* when */
    syn_ratelog_t *ratelog;   /* the refusal's warning: one line a minute */
    int64_t redial_at_ms;     /* when to dial the broker again after a refusal; -1: not due */
    int64_t redial_backoff_ms;
};

/* A socket towards the broker, with the gateway's CURVE keys when it has them (a
 * broker that refuses them is simply never connected: /health says it is down). Not
 * connected yet: gateway_broker_link_connect does that. */
static zsock_t *broker_socket(int type, int rcvhwm, const syn_curve_t *curve, bool follow,
                              char *err, size_t errlen)
{
    zsock_t *sock = zsock_new(type);
    if (!sock) {
        snprintf(err, errlen, "cannot create socket: %s", zmq_strerror(errno));
        return NULL;
    }
    zsock_set_linger(sock, 0);
    zsock_set_maxmsgsize(sock, (int)SYN_MSG_MAX_SIZE);
    zsock_set_rcvhwm(sock, rcvhwm);
    if (follow) {
        /* Several brokers: one that stops answering (frozen, its host cut off) must
         * show as a lost connection, which ZMTP's own pings tell. */
        zsock_set_heartbeat_ivl(sock, GATEWAY_BROKER_PING_MS);
        zsock_set_heartbeat_timeout(sock, GATEWAY_BROKER_PING_TIMEOUT_MS);
    }
    if (type == ZMQ_DEALER) {
        zsock_set_sndhwm(sock, GATEWAY_BROKER_SNDHWM);
        /* No broker connected → sends fail at once (503) instead of queueing. */
        zsock_set_immediate(sock, 1);
    } else {
        zsock_set_subscribe(sock, "");
    }
    if (curve)
        syn_curve_apply(curve, sock);
    return sock;
}

gateway_broker_link_t *gateway_broker_link_new(const char *broker, const char *events,
                                               const syn_curve_t *curve, char *err,
                                               size_t errlen)
{
    gateway_broker_link_t *self = calloc(1, sizeof *self);
    if (!self) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (gateway_broker_link_check_pairs(broker, events, err, errlen) != 0) {
        free(self);
        return NULL;
    }
    self->brokers = syn_endpoint_list_new("--broker", broker, err, errlen);
    self->events = syn_endpoint_list_new("--events", events, err, errlen);
    self->curve = curve != NULL;
    self->pending = gateway_pending_new();
    self->ratelog = syn_ratelog_new(60000, 8);
    self->next_corr = 1;
    self->dealer_check = true;
    self->redial_at_ms = -1;
    self->redial_backoff_ms = GATEWAY_REDIAL_FIRST_MS;
    self->dealer_fd = -1;
    if (!self->brokers || !self->events || !self->pending || !self->ratelog) {
        snprintf(err, errlen, "out of memory");
        gateway_broker_link_destroy(&self);
        return NULL;
    }
    self->broker = syn_endpoint_list_current(self->brokers);
    self->event_ep = syn_endpoint_list_current(self->events);
    bool follow = syn_endpoint_list_size(self->brokers) > 1;
    self->dealer = broker_socket(ZMQ_DEALER, GATEWAY_BROKER_RCVHWM, curve, follow, err, errlen);
    if (self->dealer)
        self->sub =
            broker_socket(ZMQ_SUB, GATEWAY_EVENTS_BUFFERED, curve, follow, err, errlen);
    if (!self->sub) {
        gateway_broker_link_destroy(&self);
        return NULL;
    }
    return self;
}

void gateway_broker_link_destroy(gateway_broker_link_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    gateway_broker_link_t *self = *self_p;
    zsock_destroy(&self->dealer);
    zsock_destroy(&self->sub);
    gateway_pending_destroy(&self->pending);
    syn_ratelog_destroy(&self->ratelog);
    syn_endpoint_list_destroy(&self->brokers);
    syn_endpoint_list_destroy(&self->events);
    free(self);
    *self_p = NULL;
}

static int connect_one(zsock_t *sock, const char *endpoint, char *err, size_t errlen)
{
    if (zsock_connect(sock, "%s", endpoint) != 0) {
        snprintf(err, errlen, "cannot connect to '%s': %s", endpoint, zmq_strerror(errno));
        return -1;
    }
    return 0;
}

int gateway_broker_link_connect(gateway_broker_link_t *self, char *err, size_t errlen)
{
    if (connect_one(self->dealer, self->broker, err, errlen) != 0 ||
        connect_one(self->sub, self->event_ep, err, errlen) != 0)
        return -1;
    self->dealer_fd = zsock_fd(self->dealer);
    self->down_since_ms = syn_mono_ms();
    return 0;
}

zsock_t *gateway_broker_link_events(gateway_broker_link_t *self)
{
    return self->sub;
}

int gateway_broker_link_fd(gateway_broker_link_t *self)
{
    return self->dealer_fd;
}

bool gateway_broker_link_may_read(gateway_broker_link_t *self)
{
    return self->dealer_check;
}

void gateway_broker_link_woken(gateway_broker_link_t *self)
{
    self->dealer_check = true;
}

/* One log line when the broker stops answering and one when it is back, rather than
 * one per request while it is away. */
static void note_broker(gateway_broker_link_t *self, bool answering, const char *why)
{
    if (answering) {
        if (self->broker_silent)
            syn_info(COMPONENT, "broker answering again endpoint=%s", self->broker);
        self->broker_silent = false;
        return;
    }
    /* A broker that answers some requests and not others would flip the state on
     * every request: at most one warning a second. */
    int64_t now = syn_mono_ms();
    if (!self->broker_silent && now - self->broker_warned_ms >= 1000) {
        syn_warn(COMPONENT, "broker unavailable endpoint=%s reason=%s: answering 503",
                 self->broker, why);
        self->broker_silent = true;
        self->broker_warned_ms = now;
    }
}

gateway_send_result_t gateway_broker_link_send(gateway_broker_link_t *self, syn_op_t op,
                                               json_t *args, long timeout_ms, void *item,
                                               uint64_t *corr_out)
{
    uint64_t corr = self->next_corr++;
    if (gateway_pending_add(self->pending, corr, syn_mono_ms() + timeout_ms, item) != 0)
        return GATEWAY_SEND_NO_MEMORY;
    syn_msg_t *msg = syn_msg_new_with(SYN_MSG_REQUEST,
                                      json_pack("{s:I, s:s, s:O}", "id", (json_int_t)corr,
                                                "op", syn_op_name(op), "args", args));
    int rc = -1;
    errno = ENOMEM;
    if (msg) {
        /* A send may take in the news of a reply waiting on the DEALER, leaving its
         * descriptor quiet: the DEALER is read on the next turn whatever it says. */
        self->dealer_check = true;
        rc = syn_msg_send(zsock_resolve(self->dealer), NULL, 0, msg);
    }
    int send_errno = errno;
    syn_msg_destroy(&msg);
    if (rc != 0) {
        gateway_pending_take(self->pending, corr);
        if (send_errno == EINVAL) {
            /* The shape was checked, so only the message's element budget (msg.h) can
             * refuse it: a body too big to pass on. */
            syn_warn(COMPONENT, "request too large to encode op=%s", syn_op_name(op));
            return GATEWAY_SEND_TOO_LARGE;
        }
        self->stats.send_failures++;
        syn_debug(COMPONENT, "broker send failed op=%s error=%s", syn_op_name(op),
                  strerror(send_errno));
        note_broker(self, false,
                    send_errno == EAGAIN ? "not connected or queue full" : strerror(send_errno));
        return GATEWAY_SEND_UNAVAILABLE;
    }
    self->stats.requests_sent++;
    if (corr_out)
        *corr_out = corr;
    return GATEWAY_SENT;
}

void gateway_broker_link_forget(gateway_broker_link_t *self, uint64_t corr)
{
    gateway_pending_take(self->pending, corr);
}

/* Hands one reply to the item waiting for it. True when on_reply resumed a
 * connection. */
static bool take_reply(gateway_broker_link_t *self, syn_msg_t *msg, gateway_reply_fn *on_reply,
                       void *cls)
{
    if (syn_msg_type(msg) != SYN_MSG_REPLY) {
        self->stats.bad_messages++;
        syn_warn(COMPONENT, "unexpected message from broker type=%s",
                 syn_msg_type_name(syn_msg_type(msg)));
        return false;
    }
    json_t *fields = syn_msg_fields(msg);
    uint64_t corr = (uint64_t)json_integer_value(json_object_get(fields, "id"));
    void *item = gateway_pending_take(self->pending, corr);
    if (!item) {
        self->stats.late_replies++;
        syn_debug(COMPONENT, "dropped late reply id=%llu", (unsigned long long)corr);
        return false;
    }
    self->stats.replies++;
    note_broker(self, true, NULL);
    return on_reply(item, json_integer_value(json_object_get(fields, "status")),
                    json_object_get(fields, "body"), cls);
}

size_t gateway_broker_link_drain(gateway_broker_link_t *self, gateway_reply_fn *on_reply,
                                 void *cls)
{
    size_t resumed = 0;
    for (int i = 0; self->dealer_check && i < GATEWAY_DRAIN_BUDGET; i++) {
        syn_msg_t *msg = NULL;
        char err[256];
        int rc = syn_msg_recv(zsock_resolve(self->dealer), &msg, NULL, NULL, err, sizeof err);
        if (rc == -1) {
            self->dealer_check = false;
            break;
        }
        if (rc == -2) {
            self->stats.bad_messages++;
            syn_warn(COMPONENT, "invalid message from broker: %s", err);
            continue;
        }
        if (take_reply(self, msg, on_reply, cls))
            resumed++;
        syn_msg_destroy(&msg);
    }
    return resumed;
}

void gateway_broker_link_expire(gateway_broker_link_t *self, int64_t now_ms,
                                gateway_no_reply_fn *no_reply, void *cls)
{
    void *item;
    while ((item = gateway_pending_expire(self->pending, now_ms))) {
        self->stats.timeouts++;
        syn_debug(COMPONENT, "broker timeout");
        note_broker(self, false, "no reply in time");
        no_reply(item, cls);
    }
}

void gateway_broker_link_abandon(gateway_broker_link_t *self, gateway_no_reply_fn *no_reply,
                                 void *cls)
{
    void *item;
    while ((item = gateway_pending_expire(self->pending, INT64_MAX)))
        no_reply(item, cls);
}

void gateway_broker_link_admitted(gateway_broker_link_t *self)
{
    self->redial_backoff_ms = GATEWAY_REDIAL_FIRST_MS;
    if (!self->events_up && syn_endpoint_list_size(self->brokers) > 1)
        syn_info(COMPONENT, "following broker=%s events=%s", self->broker, self->event_ep);
    self->events_up = true;
}

void gateway_broker_link_lost(gateway_broker_link_t *self)
{
    if (self->events_up)
        self->down_since_ms = syn_mono_ms();
    self->events_up = false;
}

bool gateway_broker_link_concerns(const gateway_broker_link_t *self, const char *endpoint)
{
    int index = syn_endpoint_list_find(self->events, endpoint);
    return index < 0 || (size_t)index == syn_endpoint_list_index(self->events);
}

/* A broker that refuses our keys (or wants keys we do not have): libzmq (4.3) takes
 * a failed handshake as final and never dials that endpoint again, so the gateway
 * does, after a growing pause, until the broker lets it in (its key authorized and
 * the broker told so with SIGHUP, or the right keys given). One line a minute says
 * so, with how often. Only the SUB is watched: both sockets reach the same broker
 * with the same key, which its ZAP handler admits on both or on neither, so the
 * DEALER (whose requests meanwhile get 503, and /health "down") is dialled again
 * with it. */
void gateway_broker_link_refused(gateway_broker_link_t *self, uint16_t event)
{
    int64_t now = syn_mono_ms();
    /* A handshake cut short (NO_DETAIL: a broker restarting mid-way) is a broken
     * connection, which libzmq dials again by itself. */
    bool refused = event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH ||
                   event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL;
    if (refused && self->redial_at_ms < 0) {
        self->redial_at_ms = now + self->redial_backoff_ms;
        self->redial_backoff_ms = self->redial_backoff_ms * 2 > GATEWAY_REDIAL_MAX_MS
                                      ? GATEWAY_REDIAL_MAX_MS
                                      : self->redial_backoff_ms * 2;
    }
    uint64_t held;
    if (!syn_ratelog_allow(self->ratelog, "handshake", now, &held))
        return;
    syn_warn(COMPONENT,
             "broker handshake failed endpoint=%s curve=%s failures_since_last=%llu: check "
             "--curve-secret and --broker-key against the broker's keys",
             self->event_ep, self->curve ? "on" : "off", (unsigned long long)held);
}

static void redial(zsock_t *sock, const char *endpoint)
{
    zmq_disconnect(zsock_resolve(sock), endpoint); /* ENOENT once libzmq gave up: fine */
    if (zmq_connect(zsock_resolve(sock), endpoint) != 0)
        syn_warn(COMPONENT, "cannot connect to %s again: %s", endpoint,
                 zmq_strerror(zmq_errno()));
}

void gateway_broker_link_redial_when_due(gateway_broker_link_t *self, int64_t now_ms)
{
    if (self->redial_at_ms < 0 || now_ms < self->redial_at_ms)
        return;
    self->redial_at_ms = -1;
    redial(self->dealer, self->broker);
    redial(self->sub, self->event_ep);
}

/* The Binary Star client's rule: the broker followed is gone when the events link to
 * it has been down for GATEWAY_BROKER_DOWN_MS (a broker killed drops it at once,
 * one frozen or cut off once its ZMTP pings go unanswered, a standby that does not
 * bind never makes it); then both sockets move to the next broker of the list, and
 * on round robin until one lets them in. Requests sent to the one left get what they
 * got on a broker restart: no reply, and 503 at their deadline. */
void gateway_broker_link_follow_when_due(gateway_broker_link_t *self, int64_t now_ms)
{
    if (syn_endpoint_list_size(self->brokers) < 2 || self->events_up ||
        now_ms - self->down_since_ms < GATEWAY_BROKER_DOWN_MS)
        return;
    const char *left = self->broker;
    zmq_disconnect(zsock_resolve(self->dealer), self->broker);
    zmq_disconnect(zsock_resolve(self->sub), self->event_ep);
    self->broker = syn_endpoint_list_next(self->brokers);
    self->event_ep = syn_endpoint_list_next(self->events);
    syn_info(COMPONENT, "broker=%s silent for %lld ms: trying broker=%s events=%s", left,
             (long long)(now_ms - self->down_since_ms), self->broker, self->event_ep);
    char err[256];
    if (connect_one(self->dealer, self->broker, err, sizeof err) != 0 ||
        connect_one(self->sub, self->event_ep, err, sizeof err) != 0)
        syn_warn(COMPONENT, "%s", err);
    /* A refusal's pending redial was for the endpoint left. */
    self->redial_at_ms = -1;
    self->redial_backoff_ms = GATEWAY_REDIAL_FIRST_MS;
    self->down_since_ms = now_ms;
    self->dealer_check = true;
}

int gateway_broker_link_check_pairs(const char *broker, const char *events, char *err,
                                    size_t errlen)
{
    syn_endpoint_list_t *brokers = syn_endpoint_list_new("--broker", broker, err, errlen);
    syn_endpoint_list_t *subs = brokers ? syn_endpoint_list_new("--events", events, err, errlen)
                                        : NULL;
    int rc = brokers && subs ? 0 : -1;
    if (rc == 0 && syn_endpoint_list_size(brokers) != syn_endpoint_list_size(subs)) {
        snprintf(err, errlen, "--broker lists %zu endpoints and --events %zu: give the events "
                 "endpoint of each broker, in the same order",
                 syn_endpoint_list_size(brokers), syn_endpoint_list_size(subs));
        rc = -1;
    }
    syn_endpoint_list_destroy(&brokers);
    syn_endpoint_list_destroy(&subs);
    return rc;
}

int64_t gateway_broker_link_next_due(gateway_broker_link_t *self)
{
    int64_t due = gateway_pending_next_deadline(self->pending);
    if (self->redial_at_ms >= 0 && (due < 0 || self->redial_at_ms < due))
        due = self->redial_at_ms;
    int64_t follow_at = self->down_since_ms + GATEWAY_BROKER_DOWN_MS;
    if (syn_endpoint_list_size(self->brokers) > 1 && !self->events_up &&
        (due < 0 || follow_at < due))
        due = follow_at;
    return due;
}

void gateway_broker_link_stats(const gateway_broker_link_t *self,
                               gateway_broker_link_stats_t *stats)
{
    *stats = self->stats;
    stats->in_flight = gateway_pending_size(self->pending);
}
