/* fake_broker: a stand-in for the broker's client side in tests. A ROUTER (the
 * gateways' DEALERs connect to it) and a PUB (their SUBs connect to it), both bound
 * on random loopback ports, served by a thread of their own.
 *
 * Each request is answered by a canned reply set for its operation, or else handed
 * to the test's handler, which answers at once (fake_broker_answer) or keeps the
 * request's identity to answer later from its tick. Events queued with
 * fake_broker_publish go out on the PUB, topic = execution_id or "-". The broker
 * counts the requests it gets, per operation. Handler and tick run on the broker's
 * thread: state they share with the test needs a lock or atomics. */
#ifndef SYN_TEST_FAKE_BROKER_H
#define SYN_TEST_FAKE_BROKER_H

#include "proto/msg.h"

#include <jansson.h>
#include <stddef.h>

typedef struct fake_broker_t fake_broker_t;

/* One request as received. op and args live only during the handler call; copy
 * the struct (and json_incref args) to answer later. */
typedef struct {
    unsigned char identity[256];
    size_t identity_len;
    json_int_t id;
    const char *op;
    json_t *args;
} fake_request_t;

typedef void(fake_broker_handler_t)(fake_broker_t *broker, const fake_request_t *request,
                                    void *user);
typedef void(fake_broker_tick_t)(fake_broker_t *broker, void *user);

typedef struct {
    fake_broker_handler_t *handler; /* NULL: requests without a canned reply go unanswered */
    fake_broker_tick_t *tick;       /* called every turn after the requests (may be NULL) */
    void *user;                     /* passed to handler and tick */
    int poll_ms;                    /* how long a turn waits for requests (0: 5 ms) */
    int events_sndhwm;              /* the PUB's send high-water mark (0: zmq's default) */
    const char *curve_secret;       /* a secret certificate: both sockets are CURVE servers
                                     * (any client key with the right server key gets in) */
} fake_broker_config_t;

/* Binds both sockets and starts the thread; fails the test when it cannot. */
fake_broker_t *fake_broker_start(const fake_broker_config_t *config);
/* Stops the thread and closes everything; safe on NULL. */
void fake_broker_stop(fake_broker_t **self_p);

const char *fake_broker_endpoint(fake_broker_t *self);        /* the ROUTER */
const char *fake_broker_events_endpoint(fake_broker_t *self); /* the PUB */

/* Every later request for op is answered status + a copy of body (stolen), without
 * reaching the handler. */
void fake_broker_set_reply(fake_broker_t *self, const char *op, int status, json_t *body);

/* The canned health reply of a broker that is up: 200 {"status":"ok","broker":"up",
 * "workers":workers}. */
void fake_broker_set_healthy(fake_broker_t *self, int workers);

/* Sends a REPLY {id, status, body} (body stolen) to the peer with this identity. */
void fake_broker_reply(fake_broker_t *self, const unsigned char *identity, size_t identity_len,
                       json_int_t id, int status, json_t *body);
/* fake_broker_reply to the sender of request. */
void fake_broker_answer(fake_broker_t *self, const fake_request_t *request, int status,
                        json_t *body);
/* Sends a ready-made message (not taken) to the peer with this identity. */
void fake_broker_send(fake_broker_t *self, const unsigned char *identity, size_t identity_len,
                      syn_msg_t *msg);

/* Queues an event (a reference is taken) for the PUB; sent on the next turn. */
void fake_broker_publish(fake_broker_t *self, json_t *event);
/* Closes the PUB on the next turn (the events connection goes down); queued and later
 * events are dropped. */
void fake_broker_close_events(fake_broker_t *self);

/* Events handed to the PUB since start: sent, or dropped by a full queue (ZeroMQ
 * does not say which). Queued events not yet handed over are not counted. */
int fake_broker_published(fake_broker_t *self);

/* Connections to the PUB whose handshake succeeded since start (a SUB that got this
 * far has finished its connect: its own CONNECTED event is behind it). */
int fake_broker_events_handshakes(fake_broker_t *self);

/* Requests received for op (NULL: for every operation) since start or the last reset. */
int fake_broker_requests(fake_broker_t *self, const char *op);
void fake_broker_reset_requests(fake_broker_t *self);

#endif
