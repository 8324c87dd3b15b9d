/* sse_routes: how an SSE route (GET /sse/executions/{id}, /sse/activity) becomes a
 * stream fed by the hub: the first events.replay page decides its HTTP answer, later
 * pages are asked for while the client's queue is short, live events reach it through
 * the hub (gateway/hub.h), a gap on the live feed is filled from the broker's log,
 * silent streams get keepalives, and a stream the broker cannot serve is cut (the
 * client resumes with Last-Event-ID).
 *
 * It stands alone because it is the one part of the gateway that answers a request
 * with many writes over time: the lifecycle (gateway/gateway.c) hands it a request
 * on an SSE route and the replies and timeouts of its pages; it wakes the suspended
 * connections it feeds through the loop's turn flags. One stream's frames are in
 * gateway/sse.h, the fan-out in gateway/hub.h. */
#ifndef SYN_GATEWAY_SSE_ROUTES_H
#define SYN_GATEWAY_SSE_ROUTES_H

#include "gateway/broker_link.h"
#include "gateway/hub.h"
#include "gateway/request.h"

#include <jansson.h>
#include <microhttpd.h>
#include <stdbool.h>
#include <stdint.h>

/* Events asked for per events.replay page (the protocol's maximum). */
#define GATEWAY_REPLAY_PAGE SYN_OP_REPLAY_LIMIT_MAX

typedef struct gateway_sse_routes_t gateway_sse_routes_t;

/* Streams that send their pages over link with replay_timeout_ms each, and set turn's
 * flags when a connection must be run. keepalive_ms and buffer_bytes as in
 * gateway_config_t (already defaulted). */
gateway_sse_routes_t *gateway_sse_routes_new(gateway_broker_link_t *link, gateway_turn_t *turn,
                                             long keepalive_ms, long buffer_bytes,
                                             long replay_timeout_ms);
void gateway_sse_routes_destroy(gateway_sse_routes_t **self_p);

/* The hub the streams hang on (its last seq and clients, for the view's probe). */
gateway_hub_t *gateway_sse_routes_hub(gateway_sse_routes_t *self);

/* A complete request on an SSE route. Returns the events.replay args (new reference)
 * its first page is to be asked with, as the request's broker request; or NULL with
 * req answered (422 Last-Event-ID, 500) or ready to stream live (REQUEST_STREAM). */
json_t *gateway_sse_routes_begin(gateway_sse_routes_t *self, gateway_request_t *req);
/* Queues the stream's response (state REQUEST_STREAM, inside MHD's access handler). */
enum MHD_Result gateway_sse_routes_respond(gateway_sse_routes_t *self, gateway_request_t *req);

/* A reply to a page of req's stream (status already within 200..599, or 502 with no
 * body). The first decides the HTTP answer: an error as JSON, or the stream opens. */
void gateway_sse_routes_page(gateway_sse_routes_t *self, gateway_request_t *req,
                             json_int_t status, json_t *body);
/* No reply came for req's page: a request still waiting is the lifecycle's (503); a
 * stream is cut. */
void gateway_sse_routes_page_lost(gateway_sse_routes_t *self, gateway_request_t *req);

/* Whether item is the gap fill's (a pending item of the broker link), and its reply
 * or loss. */
bool gateway_sse_routes_is_fill(const gateway_sse_routes_t *self, const void *item);
void gateway_sse_routes_fill_reply(gateway_sse_routes_t *self, json_int_t status, json_t *body);
void gateway_sse_routes_fill_lost(gateway_sse_routes_t *self);

/* One live event from the SUB (frame borrowed): to the streams it concerns, or held
 * while the gap before it is filled. */
void gateway_sse_routes_live(gateway_sse_routes_t *self, gateway_sse_frame_t *frame);
/* The broker's log goes up to broker_last: streams waiting for events the SUB never
 * got read the log again. */
void gateway_sse_routes_catch_up(gateway_sse_routes_t *self, uint64_t broker_last);

/* Keepalives for silent streams, a few times per keepalive interval. */
void gateway_sse_routes_sweep(gateway_sse_routes_t *self, int64_t now_ms);
/* When the next sweep is due, or -1 with no stream open. */
int64_t gateway_sse_routes_next_due(gateway_sse_routes_t *self);

/* req's connection is gone: its stream leaves the hub. */
void gateway_sse_routes_closed(gateway_sse_routes_t *self, gateway_request_t *req);
/* Closing: every stream ends once its queue is sent. */
void gateway_sse_routes_finish_all(gateway_sse_routes_t *self);

/* The decisions above, pure, for tests. */

/* Whether a stream at url (the request's whole path) is the original's: under
 * /api/v1, or on its CLI's /watch/... paths; its frames then take the original's
 * event names (gateway/sse.h). */
bool gateway_sse_original_stream(const char *url);
/* An events.replay reply body: {events:[...], more, ...}. */
bool gateway_sse_page_valid(const json_t *body);
/* Whether streams must read the log again: the broker's log reaches broker_last, the
 * live feed brought seen (any: it brought something), and streams were last rewound
 * for caught_up_to. */
bool gateway_sse_catch_up_due(bool any, uint64_t seen, uint64_t broker_last,
                              uint64_t caught_up_to);

#endif
