/* broker_link: the gateway's two sockets to the broker, and what is decided about
 * them: a DEALER for requests and a SUB for events, made with the same keys and
 * dialled again together after the broker refused a handshake.
 *
 * A request is sent under a fresh correlation id with a deadline and the caller's
 * item (a suspended connection, a stream's replay page, ...); the reply with that id
 * is handed back with the item, and an item whose deadline passes is handed back as
 * unanswered (the caller answers 503). A reply whose item is gone (timed out, or its
 * client left) is counted and dropped. One log line when the broker stops answering
 * and one when it is back, rather than one per request.
 *
 * Given several brokers (the active one and its standbys, common/endpoint_list.h),
 * both sockets follow one of them, the i-th --broker with the i-th --events, and move
 * on together when it is gone (gateway_broker_link_follow_when_due).
 *
 * It stands alone because none of it depends on HTTP: the loop (gateway/gateway.c)
 * polls its descriptor and calls it; tests drive it against a bare ROUTER. */
#ifndef SYN_GATEWAY_BROKER_LINK_H
#define SYN_GATEWAY_BROKER_LINK_H

#include "proto/curve.h"
#include "proto/ops.h"

#include <czmq.h>
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Requests queued towards a connected broker before sends fail (→ 503 at once). */
#define GATEWAY_BROKER_SNDHWM 1000
/* Replies queued towards us; they are drained every turn. */
#define GATEWAY_BROKER_RCVHWM 100000
/* After a refused handshake, the broker links are dialled again this long after,
 * doubling up to the most (a refusal is not worth hammering the broker for). */
#define GATEWAY_REDIAL_FIRST_MS 500
#define GATEWAY_REDIAL_MAX_MS 30000
/* Several brokers: how long the events link to the one followed may stay down before
 * the gateway moves to the next (libzmq tries to connect every 100 ms meanwhile; a
 * broker that is up lets it in at once), and the ZMTP pings that make a silent
 * broker's connection drop. One broker: none of it, as before (libzmq reconnects to
 * it by itself). */
#define GATEWAY_BROKER_DOWN_MS 1000
#define GATEWAY_BROKER_PING_MS 1000
#define GATEWAY_BROKER_PING_TIMEOUT_MS 3000
/* Messages read from one socket per loop turn, so a flood on one side cannot starve
 * the others. */
#define GATEWAY_DRAIN_BUDGET 1024

typedef struct gateway_broker_link_t gateway_broker_link_t;

typedef enum {
    GATEWAY_SENT,             /* sent: its reply or its deadline will come back */
    GATEWAY_SEND_NO_MEMORY,   /* not sent: it could not be listed as waiting */
    GATEWAY_SEND_TOO_LARGE,   /* not sent: over the message's element budget (msg.h) */
    GATEWAY_SEND_UNAVAILABLE, /* not sent: no broker connected or its queue full (logged) */
} gateway_send_result_t;

typedef struct {
    uint64_t requests_sent; /* broker requests sent */
    uint64_t replies;       /* replies matched to a waiting item */
    uint64_t timeouts;      /* items handed back because no reply came in time */
    uint64_t late_replies;  /* replies for items no longer waiting (dropped) */
    uint64_t send_failures; /* sends refused (no broker connected, pipe full) */
    uint64_t bad_messages;  /* undecodable or unexpected messages on the DEALER */
    size_t in_flight;       /* items waiting for a reply right now */
} gateway_broker_link_stats_t;

/* A reply for item: status (any integer the broker sent) and body (borrowed, may be
 * NULL). Returns true when it resumed a connection. */
typedef bool(gateway_reply_fn)(void *item, json_int_t status, json_t *body, void *cls);
/* No reply will come for item (deadline passed, or the link is closing). */
typedef void(gateway_no_reply_fn)(void *item, void *cls);

/* Makes both sockets (with the CURVE keys when curve is not NULL), connected to
 * nothing yet: gateway_broker_link_connect does that once whatever watches the SUB
 * is in place. broker and events are lists of as many endpoints (one each for a
 * single broker). NULL with the reason in err. */
gateway_broker_link_t *gateway_broker_link_new(const char *broker, const char *events,
                                               const syn_curve_t *curve, char *err,
                                               size_t errlen);
void gateway_broker_link_destroy(gateway_broker_link_t **self_p);

/* Starts connecting both (zmq finishes it, and reconnects, in its I/O thread). */
int gateway_broker_link_connect(gateway_broker_link_t *self, char *err, size_t errlen);

/* The SUB the events arrive on (subscribed to everything); the link keeps it. */
zsock_t *gateway_broker_link_events(gateway_broker_link_t *self);

/* The DEALER's descriptor for the loop's poll. It only tells that the socket's state
 * may have changed: gateway_broker_link_may_read says when the DEALER must be read
 * whatever the descriptor says; gateway_broker_link_woken when poll saw it ready. */
int gateway_broker_link_fd(gateway_broker_link_t *self);
bool gateway_broker_link_may_read(gateway_broker_link_t *self);
void gateway_broker_link_woken(gateway_broker_link_t *self);

/* Sends {id, op, args} (args borrowed) with item waiting for its reply until
 * timeout_ms from now. *corr (may be NULL) gets the id when sent. */
gateway_send_result_t gateway_broker_link_send(gateway_broker_link_t *self, syn_op_t op,
                                               json_t *args, long timeout_ms, void *item,
                                               uint64_t *corr);
/* The item of corr no longer waits (its client left): a late reply finds nothing. */
void gateway_broker_link_forget(gateway_broker_link_t *self, uint64_t corr);

/* Reads up to a budget of replies and hands each matched one to on_reply. Returns how
 * many on_reply calls returned true. */
size_t gateway_broker_link_drain(gateway_broker_link_t *self, gateway_reply_fn *on_reply,
                                 void *cls);
/* Hands back every item whose deadline is at or before now_ms: each a timeout. */
void gateway_broker_link_expire(gateway_broker_link_t *self, int64_t now_ms,
                                gateway_no_reply_fn *no_reply, void *cls);

/* Hands back every item still waiting, uncounted: the gateway is closing. */
void gateway_broker_link_abandon(gateway_broker_link_t *self, gateway_no_reply_fn *no_reply,
                                 void *cls);

/* 0 when broker and events are good lists of as many endpoints, else -1 and one line
 * in err ("--broker lists 2 endpoints and --events 1: ..."). */
int gateway_broker_link_check_pairs(const char *broker, const char *events, char *err,
                                    size_t errlen);

/* The SUB's handshake succeeded: the broker followed is up, and a later refusal
 * waits the shortest pause again. */
void gateway_broker_link_admitted(gateway_broker_link_t *self);
/* The SUB's connection to the broker followed was lost. */
void gateway_broker_link_lost(gateway_broker_link_t *self);
/* Whether a monitor event about endpoint is about the broker followed now (an event
 * about another listed broker, one left, is stale; one about an endpoint not
 * listed as such, libzmq's spelling of it, is taken to be). */
bool gateway_broker_link_concerns(const gateway_broker_link_t *self, const char *endpoint);
/* Moves both sockets to the next broker when the one followed is gone (several
 * brokers only; see broker_link.c). */
void gateway_broker_link_follow_when_due(gateway_broker_link_t *self, int64_t now_ms);
/* The SUB's handshake failed (a zmq monitor event): a refusal (AUTH, PROTOCOL) has
 * both sockets dialled again after a growing pause, since libzmq takes it as final;
 * one warning a minute says so. */
void gateway_broker_link_refused(gateway_broker_link_t *self, uint16_t event);
/* Dials again when a pause set by a refusal is over. */
void gateway_broker_link_redial_when_due(gateway_broker_link_t *self, int64_t now_ms);

/* The earliest moment the link needs the loop (a deadline, a redial, a move to the
 * next broker), or -1. */
int64_t gateway_broker_link_next_due(gateway_broker_link_t *self);

void gateway_broker_link_stats(const gateway_broker_link_t *self,
                               gateway_broker_link_stats_t *stats);

#endif
