/* ready: what a worker's READY does.
 *
 * READY registers the worker (or updates a known identity: slots, providers,
 * prefetch, draining) and lists the attempts it runs and the ones it keeps for
 * a free slot. Over CURVE a worker's name is bound to its key while the broker
 * knows it: a READY claiming that name with another key is answered
 * `disconnect` with a reason once, logged, and the claimant ignored from then on.
 * Listed attempts that are current are adopted (fence.h decides whether this
 * worker may take them; their backstop runs from now, or from their start for
 * the waiting ones); stale or unknown ones are cancelled. */
#ifndef SYN_BROKER_READY_H
#define SYN_BROKER_READY_H

#include "broker/engine.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* A READY (fields) from the ROUTER identity with this CURVE key and remote
 * address (NULL or "": none). */
void broker_ready_handle(broker_engine_t *engine, const void *identity, size_t identity_len,
                         const char *peer_key, const char *peer_address, const json_t *fields,
                         int64_t now_ms);

#endif
