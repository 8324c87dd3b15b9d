/* outbox: messages waiting for the current transaction to commit.
 *
 * Nothing the broker says may get ahead of what it has written: a reply to
 * "execute" before the execution is durable, an ASSIGN for an attempt the
 * database does not know, a RESULT_ACK that lets a worker forget a result not yet
 * stored, an event that is not in the log. So the engine and the API put every
 * outgoing message here, and the loop sends them after broker_store_commit. */
#ifndef SYN_BROKER_OUTBOX_H
#define SYN_BROKER_OUTBOX_H

#include "proto/msg.h"

#include <stddef.h>

#define BROKER_IDENTITY_MAX 255

typedef enum {
    BROKER_TO_CLIENT,   /* a gateway, on the clients ROUTER */
    BROKER_TO_WORKER,   /* a worker, on the workers ROUTER */
    BROKER_TO_EVENTS,   /* the PUB socket; identity is the topic */
} broker_dest_t;

typedef struct broker_outbox_t broker_outbox_t;

broker_outbox_t *broker_outbox_new(void);
void broker_outbox_destroy(broker_outbox_t **self_p);

/* Queues msg (ownership taken, also on failure) for identity (≤ 255 bytes).
 * 0, or -1 when out of memory or the identity is too long. */
int broker_outbox_push(broker_outbox_t *self, broker_dest_t dest, const void *identity,
                       size_t identity_len, syn_msg_t *msg);
size_t broker_outbox_size(const broker_outbox_t *self);
/* Takes the oldest message (caller owns it), or NULL when empty; identity
 * needs BROKER_IDENTITY_MAX bytes. */
syn_msg_t *broker_outbox_pop(broker_outbox_t *self, broker_dest_t *dest, void *identity,
                             size_t *identity_len);
/* Drops everything (the transaction failed: none of it may be said). */
void broker_outbox_clear(broker_outbox_t *self);

#endif
