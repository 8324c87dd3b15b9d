/* view: the gateway's local view of execution statuses (the zguide's Clone pattern),
 * so `GET /workflows/{wf}/executions/{id}` is answered without a broker round trip.
 *
 * Every PUB event may carry `status`, the execution's whole status object after that
 * event; the view keeps its serialized text (the exact reply body) per execution id,
 * with the seq it came from. The broker stays the only writer and the source of truth:
 * whatever the view cannot vouch for is a miss, and a miss asks the broker.
 *
 * It vouches for an entry only while the feed is known complete: the SUB connected and
 * seqs contiguous. A gap or a disconnect clears it (fresh events refill it: each carries
 * a whole status). A lost last event shows no gap until the next one: the owner asks
 * the broker for its last seq now and then when the feed is quiet, and clears the view
 * when that seq never arrives. Read-your-writes for control ops on this gateway: the ids a control
 * op names are held (not served) from the moment it is sent; after its reply an entry is
 * served again only once an event newer than the send shows the state the reply named
 * (or a terminal one); after a failed op, once any newer event arrives.
 *
 * Bounded by count and by bytes: past capacity, or past max_bytes of footprint (its
 * texts and their bookkeeping), the least recently updated finished execution is
 * forgotten first, then the least recently updated active one; a status whose text
 * alone would not fit is not kept (reads of it go to the broker). No I/O. */
#ifndef SYN_GATEWAY_VIEW_H
#define SYN_GATEWAY_VIEW_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GATEWAY_VIEW_CAPACITY 100000
/* 100,000 typical statuses (~500 bytes each with their bookkeeping) fit; long ones
 * (an error text, many phases) make the view keep fewer executions, not grow. */
#define GATEWAY_VIEW_MAX_BYTES (64u * 1024u * 1024u)

typedef struct gateway_view_t gateway_view_t;

typedef struct {
    size_t entries;
    size_t bytes;       /* footprint of the entries right now */
    uint64_t hits;      /* lookups answered from the view */
    uint64_t misses;    /* lookups left to the broker */
    uint64_t updates;   /* status objects applied */
    uint64_t clears;    /* the view dropped for a gap or a disconnect */
    uint64_t evictions; /* entries forgotten to stay within capacity or max_bytes */
    uint64_t rejected;  /* status objects unusable (bad shape) */
} gateway_view_stats_t;

/* capacity 0 → GATEWAY_VIEW_CAPACITY, max_bytes 0 → GATEWAY_VIEW_MAX_BYTES. Starts
 * disconnected: nothing is served until gateway_view_set_connected(self, true). */
gateway_view_t *gateway_view_new(size_t capacity, size_t max_bytes);
void gateway_view_destroy(gateway_view_t **self_p);

/* One live event from the SUB, in arrival order; status is its `status` field (NULL
 * when absent). A seq that does not follow the previous one clears the view first. */
void gateway_view_event(gateway_view_t *self, uint64_t seq, const json_t *status);

/* The SUB connected (true) or disconnected (false). A disconnect or a reconnect
 * starts the view over (events may have been missed); the first connect does not. */
void gateway_view_set_connected(gateway_view_t *self, bool connected);

/* The execution was deleted (the broker's ExecutionsDeleted): forgets its entry, so
 * reads of it go to the broker, which answers 404. */
void gateway_view_forget(gateway_view_t *self, const char *execution_id);

/* Forgets every entry not held by a control op (those keep blocking stale updates). */
void gateway_view_clear(gateway_view_t *self);

/* The reply body for a full execution id of that workflow, when the view can vouch
 * for it (never for a pending one: its queue_position is the broker's alone);
 * *text stays valid until the next call that changes the view. */
bool gateway_view_get(gateway_view_t *self, const char *workflow_id, const char *execution_id,
                      const char **text, size_t *len);

/* A control op naming `given` (a full id or a prefix) is about to be sent: holds every
 * entry it may mean. Returns the token to hand to gateway_view_release. */
uint64_t gateway_view_hold(gateway_view_t *self, const char *given);

/* The op's reply: execution_id is the resolved id from a 2xx body and state the status
 * it named; both NULL when the op failed or got no reply. */
void gateway_view_release(gateway_view_t *self, uint64_t token, const char *execution_id,
                          const char *state);

/* The last seq seen since the view (re)started; false when none. */
bool gateway_view_last_seq(const gateway_view_t *self, uint64_t *seq);

void gateway_view_stats(const gateway_view_t *self, gateway_view_stats_t *stats);

#endif
