/* hub: hands the broker's events to the SSE clients they concern, in seq order and
 * without gaps, whatever the PUB socket dropped.
 *
 * Clients are registered by execution id (a hash of lists, so an event costs only its
 * own execution's clients) or as activity clients (every event). Live events from the
 * SUB socket must come with seq = last + 1. A gap (PUB drops messages for a slow
 * subscriber) makes the hub hold later live events and ask the owner to fill the
 * missing range from the broker's log (events.replay for every execution); fill pages
 * are dispatched in order, then the held events, then live flow resumes. Events at or
 * below the last dispatched seq are dropped as duplicates.
 *
 * No I/O: the owner sends the fill requests and is told (wake) which clients have
 * something new to read or must be disconnected. */
#ifndef SYN_GATEWAY_HUB_H
#define SYN_GATEWAY_HUB_H

#include "gateway/sse.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct gateway_hub_t gateway_hub_t;

/* Called for a client whose queue got something, or that failed (overflow). */
typedef void (*gateway_hub_wake_fn)(gateway_sse_client_t *client, void *cls);

typedef struct {
    uint64_t dispatched; /* events handed to clients (each once, whatever their number) */
    uint64_t gaps;       /* gaps in seq found on the live feed */
    uint64_t filled;     /* events that came from fill pages */
    uint64_t duplicates; /* live events at or below the last seq, dropped */
    uint64_t overflows;  /* clients disconnected for being too far behind */
    size_t held_bytes;   /* text of the live events held right now */
    size_t clients;
} gateway_hub_stats_t;

/* hold_limit, hold_bytes: live events held while a gap is filled, and the bytes of
 * their text; past either they are dropped and read back from the log. hold_bytes 0
 * → no byte bound. */
gateway_hub_t *gateway_hub_new(size_t hold_limit, size_t hold_bytes, gateway_hub_wake_fn wake,
                               void *cls);
/* Forgets the clients (it never owns them). */
void gateway_hub_destroy(gateway_hub_t **self_p);

/* Registers under the client's execution id (activity when NULL; a client whose id is
 * not resolved yet sees every event of an execution its id is a prefix of). 0, or -1
 * when out of memory. */
int gateway_hub_add(gateway_hub_t *self, gateway_sse_client_t *client);
void gateway_hub_remove(gateway_hub_t *self, gateway_sse_client_t *client);
/* Resolves the client's id (the broker named the execution its prefix means) and
 * registers it under that id alone. */
int gateway_hub_resolve(gateway_hub_t *self, gateway_sse_client_t *client,
                        const char *execution_id);

/* The last seq dispatched; false when no event was seen yet. */
bool gateway_hub_last_seq(const gateway_hub_t *self, uint64_t *seq);

/* One live event. True when the owner must ask for a fill page after *fill_after (and
 * then call gateway_hub_fill or gateway_hub_fill_failed). */
bool gateway_hub_live(gateway_hub_t *self, gateway_sse_frame_t *frame, uint64_t *fill_after);
/* One fill page (events.replay with execution_id null). True when another page is
 * needed, after *fill_after. */
bool gateway_hub_fill(gateway_hub_t *self, const json_t *events, bool more,
                      uint64_t *fill_after);
/* The fill could not be had (broker silent): every client is failed, since it may
 * have missed events (it resumes with Last-Event-ID), and the next live event starts
 * the sequence afresh. */
void gateway_hub_fill_failed(gateway_hub_t *self);
bool gateway_hub_filling(const gateway_hub_t *self);

/* Calls fn for every client (fn must not add or remove clients). */
void gateway_hub_foreach(gateway_hub_t *self, void (*fn)(gateway_sse_client_t *, void *),
                         void *cls);
void gateway_hub_stats(const gateway_hub_t *self, gateway_hub_stats_t *stats);

#endif
