/* sse: the Server-Sent Events stream of one client, without any I/O.
 *
 * A frame is the text of one SSE message, formatted once and shared (reference
 * counted) by every client it goes to:
 *
 *   id: <seq>
 *   data: {"type":"event","event_type":"PhaseStarted","execution_id":"exec-…",
 *          "data":{…},"timestamp":"2026-11-28T14:56:19.123456Z"}
 *   (blank line)
 *
 * `type` is "connected" for the first frame of a stream, "terminal" for
 * ExecutionCompleted, ExecutionFailed and ExecutionCancelled, "event" otherwise.
 *
 * A frame has two texts, each made once on first use: syn's (above, plus
 * original_event_type), and the original service's for the clients that came in
 * through its paths (/api/v1/..., /watch/...: its CLI reads event_type), where
 * event_type is the original's name and syn's is in syn_event_type.
 *
 * A client is a bounded queue of frames plus the rules that make its stream exact:
 * - it starts REPLAYING (pages of the broker's event log, asked for one at a time and
 *   only while the queue is short) or, for an activity stream without Last-Event-ID,
 *   LIVE;
 * - live events offered while it replays are held, and released once the replay is
 *   done; every frame at or below the last seq already queued is dropped, so nothing
 *   is repeated; holds that outgrow their budget are dropped and another replay round
 *   fetches them from the log, so nothing is missed;
 * - a live client whose queue would pass max_bytes is FAILED (disconnected: it is too
 *   slow, and may resume with Last-Event-ID);
 * - an execution stream ENDS after its terminal frame (or at once when the replay
 *   says the execution already finished); activity streams never end by themselves. */
#ifndef SYN_GATEWAY_SSE_H
#define SYN_GATEWAY_SSE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* gateway_sse_client_read's answers besides a byte count. */
#define GATEWAY_SSE_END (-1)   /* stream done: close it cleanly */
#define GATEWAY_SSE_ERROR (-2) /* client failed: drop the connection */

typedef struct gateway_sse_frame_t gateway_sse_frame_t;

/* A frame for one event {seq (≥ 1), time (µs since the epoch), execution_id (str|null),
 * type (non-empty str), data (object)}, as on PUB and in events.replay pages. NULL with
 * the reason in err when the event has another shape. The frame shares the event's
 * type and data until its text is made: they must not change after this call. */
gateway_sse_frame_t *gateway_sse_frame_event(const json_t *event, char *err, size_t errlen);
/* The first frame of a stream: "id: <seq>" only when has_id. */
gateway_sse_frame_t *gateway_sse_frame_connected(const char *execution_id, bool has_id,
                                                 uint64_t seq, int64_t now_us);
/* ": keepalive" (a comment: clients ignore it, proxies see traffic). */
gateway_sse_frame_t *gateway_sse_frame_keepalive(void);
gateway_sse_frame_t *gateway_sse_frame_ref(gateway_sse_frame_t *frame);
void gateway_sse_frame_unref(gateway_sse_frame_t **frame_p);

uint64_t gateway_sse_frame_seq(const gateway_sse_frame_t *frame); /* 0 for none */
bool gateway_sse_frame_terminal(const gateway_sse_frame_t *frame);
const char *gateway_sse_frame_execution_id(const gateway_sse_frame_t *frame); /* or NULL */
/* The text is made on first use (an event frame nobody reads is never formatted):
 * NULL (and len 0) only when that runs out of memory. */
const char *gateway_sse_frame_text(gateway_sse_frame_t *frame);
size_t gateway_sse_frame_len(gateway_sse_frame_t *frame);
/* The original's text of an event frame (made on first use); NULL for other frames. */
const char *gateway_sse_frame_text_original(gateway_sse_frame_t *frame);

/* ExecutionCompleted, ExecutionFailed, ExecutionCancelled. */
bool gateway_sse_is_terminal_type(const char *type);

typedef struct {
    size_t max_bytes; /* a live client with more queued than this is disconnected */
    size_t low_bytes; /* the next replay page is asked for only below this */
} gateway_sse_limits_t;

typedef enum {
    GATEWAY_SSE_REPLAYING,
    GATEWAY_SSE_LIVE,
    GATEWAY_SSE_ENDING, /* terminal frame queued: the stream ends once it is sent */
    GATEWAY_SSE_FAILED, /* to be disconnected now */
} gateway_sse_state_t;

typedef enum {
    GATEWAY_SSE_IGNORED,  /* not for this client, or already sent */
    GATEWAY_SSE_HELD,     /* kept until the replay is done */
    GATEWAY_SSE_QUEUED,   /* ready to be read */
    GATEWAY_SSE_OVERFLOW, /* the client is too far behind: it is now FAILED */
} gateway_sse_offer_t;

typedef struct gateway_sse_client_t gateway_sse_client_t;

/* A stream of one execution (execution_id, possibly a prefix until the broker resolves
 * it: until then every execution it is a prefix of matches) or of every execution
 * (NULL). It continues after after_seq; replay says whether
 * the broker's log must be read first (always for an execution, with Last-Event-ID for
 * activity). */
gateway_sse_client_t *gateway_sse_client_new(const char *execution_id, uint64_t after_seq,
                                             bool replay, const gateway_sse_limits_t *limits);
void gateway_sse_client_destroy(gateway_sse_client_t **self_p);

const char *gateway_sse_client_execution_id(const gateway_sse_client_t *self);
/* The full id, once the broker resolved the prefix; -1 when out of memory. */
int gateway_sse_client_resolve(gateway_sse_client_t *self, const char *execution_id);
bool gateway_sse_client_resolved(const gateway_sse_client_t *self);
/* Whether a frame belongs to this stream (by execution id, or a prefix of it). */
bool gateway_sse_client_matches(const gateway_sse_client_t *self,
                                const gateway_sse_frame_t *frame);
gateway_sse_state_t gateway_sse_client_state(const gateway_sse_client_t *self);
/* A live client goes back to reading the broker's log after its last seq (live events
 * are held meanwhile, as in its first replay): for events the live feed may have
 * missed without a gap to show it. True when it was live and now replays. */
bool gateway_sse_client_rewind(gateway_sse_client_t *self);
uint64_t gateway_sse_client_last_seq(const gateway_sse_client_t *self);
size_t gateway_sse_client_queued(const gateway_sse_client_t *self);
/* True when read would return something other than 0 (data, end, or error). */
bool gateway_sse_client_readable(const gateway_sse_client_t *self);

/* The client reads the original's texts (gateway/original_compat.h): set before
 * anything is queued. */
void gateway_sse_client_set_original(gateway_sse_client_t *self);
bool gateway_sse_client_original(const gateway_sse_client_t *self);

/* Opaque pointers for the owner (the HTTP connection) and for the hub's bookkeeping. */
void gateway_sse_client_set_user(gateway_sse_client_t *self, void *user);
void *gateway_sse_client_user(const gateway_sse_client_t *self);
void gateway_sse_client_set_slot(gateway_sse_client_t *self, void *slot);
void *gateway_sse_client_slot(const gateway_sse_client_t *self);

/* Queues the "connected" frame (id: the seq the stream continues after, when has_id).
 * Must come before anything else is queued. */
void gateway_sse_client_connect(gateway_sse_client_t *self, bool has_id, int64_t now_us);

/* True when a replay page should be asked for now, after *after_seq; the page is then
 * in flight until gateway_sse_client_page (or _fail). */
bool gateway_sse_client_next_page(gateway_sse_client_t *self, uint64_t *after_seq);
/* Applies one events.replay page: events (array), more (the log has more after this
 * page), terminal (the execution has finished). -1 (and FAILED) when an event is
 * malformed. */
int gateway_sse_client_page(gateway_sse_client_t *self, const json_t *events, bool more,
                            bool terminal);
/* A live event (the hub matched its execution). */
gateway_sse_offer_t gateway_sse_client_offer(gateway_sse_client_t *self,
                                             gateway_sse_frame_t *frame);
/* Queues a keepalive when nothing was queued for interval_ms and the queue is empty;
 * true when it did. */
bool gateway_sse_client_keepalive(gateway_sse_client_t *self, int64_t now_ms,
                                  int64_t interval_ms);
/* Copies up to max queued bytes into buf: the count, 0 when nothing is queued yet,
 * GATEWAY_SSE_END once an ended stream is all sent, GATEWAY_SSE_ERROR when FAILED. */
ssize_t gateway_sse_client_read(gateway_sse_client_t *self, char *buf, size_t max);
/* Disconnect: drops the queue; read answers GATEWAY_SSE_ERROR from now on. */
void gateway_sse_client_fail(gateway_sse_client_t *self);
/* End the stream cleanly at once (the gateway stops): drops the queue; read answers
 * GATEWAY_SSE_END. */
void gateway_sse_client_finish(gateway_sse_client_t *self);

#endif
