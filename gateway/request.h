/* request: one HTTP request as the gateway's own files see it (gateway.c drives its
 * lifecycle, sse_routes.c turns it into a stream), and how its answer is set.
 *
 * Not a public module: its fields are shared by those two files only, which is why it
 * is a struct and not an opaque class. The rule that holds it together: a request's
 * answer is set with gateway_request_set_* (state REQUEST_ANSWERED) and queued by the
 * lifecycle, which alone calls MHD's queue functions for non-stream answers. */
#ifndef SYN_GATEWAY_REQUEST_H
#define SYN_GATEWAY_REQUEST_H

#include "gateway/gateway.h"
#include "gateway/router.h"
#include "gateway/sse.h"

#include <jansson.h>
#include <microhttpd.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GATEWAY_OUT_OF_MEMORY "{\"detail\":\"gateway out of memory\"}"
#define GATEWAY_BAD_REPLY "{\"detail\":\"invalid reply from broker\"}"

typedef enum {
    REQUEST_RECEIVING, /* headers in, body arriving */
    REQUEST_WAITING,   /* sent to the broker, connection suspended */
    REQUEST_ANSWERED,  /* status and body known, response to be queued */
    REQUEST_DONE,      /* response queued */
    REQUEST_STREAM,    /* SSE: stream ready, its response to be queued */
    REQUEST_STREAMING, /* SSE: response queued, frames flowing */
    REQUEST_DOWNLOAD,    /* artifacts: first range in, its response to be queued */
    REQUEST_DOWNLOADING, /* artifacts: response queued, ranges flowing (download.h) */
} gateway_request_state_t;

/* What one turn of the loop must still do, set by whoever resumed a connection or
 * queued frames, read by the loop (gateway_poll). */
typedef struct {
    bool resumed;  /* a connection was resumed: run MHD again this turn */
    bool sse_more; /* streams have frames queued: let MHD send them this turn */
    bool stopping; /* gateway_destroy: no connection may be suspended again */
} gateway_turn_t;

struct gateway_sse_routes_t;
struct gateway_download_t;

/* One HTTP request, from its headers to the completion callback (MHD's con_cls). */
typedef struct {
    gateway_t *gateway;
    struct MHD_Connection *connection;
    gateway_request_state_t state;
    gateway_match_t match;
    gateway_route_t route;
    char method[16];
    char path[256]; /* for the log line only; may be truncated */
    int64_t started_ms;
    char *body;
    size_t body_len, body_cap;
    bool body_too_large;
    bool health;
    uint64_t corr; /* correlation id while REQUEST_WAITING (or page_pending) */
    unsigned status;
    char *answer; /* response text (malloc'd), JSON unless content_type says otherwise */
    const char *content_type;
    struct MHD_Response *prepared; /* made whole by its answerer (gateway/ui.h): queued as is */
    bool retry_after;
    bool replayed;             /* an execute's first answer again (Idempotency-Key) */
    bool close;                /* the gateway is full: free the connection */
    gateway_sse_client_t *sse; /* SSE routes only */
    struct gateway_sse_routes_t *streams; /* SSE routes only: who feeds it */
    bool sse_suspended;        /* suspended by the stream reader: queue empty */
    bool page_pending;         /* an events.replay page is in flight (corr) */
    bool sse_cut;              /* failed stream: logged, closing */
    bool view_held;            /* a control op holding its execution in the view */
    uint64_t view_token;       /* gateway_view_hold's token, for the reply */
    bool original;             /* came through /api/v1: the original's shapes */
    json_t *compat;            /* what gateway/original_compat.c keeps for the answer */
    struct gateway_download_t *download; /* artifact routes (download.h) */
} gateway_request_t;

/* The answer is text (taken, malloc'd; NULL → 500 when queued), JSON by default. */
void gateway_request_set_answer(gateway_request_t *req, unsigned status, char *text);
void gateway_request_set_literal(gateway_request_t *req, unsigned status, const char *json_text);
/* body as compact JSON text; 500 when it cannot be written. */
void gateway_request_set_json(gateway_request_t *req, unsigned status, json_t *body);
/* The broker did not answer (in time, or at all): 503, and the client may retry. */
void gateway_request_set_unavailable(gateway_request_t *req);

/* Keeps at most GATEWAY_BODY_LIMIT bytes of body; past that the rest is dropped and
 * body_too_large set, so a 413 can be sent once the request is complete. */
void gateway_request_append(gateway_request_t *req, const char *data, size_t len);

void gateway_request_free(gateway_request_t *req);

#endif
