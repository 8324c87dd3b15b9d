#include "gateway/gateway.h"
#include "common/clock.h"
#include "common/ids.h"
#include "common/json_text.h"
#include "common/log.h"
#include "common/ratelog.h"
#include "gateway/access.h"
#include "gateway/api.h"
#include "gateway/hub.h"
#include "gateway/listen.h"
#include "gateway/pending.h"
#include "gateway/router.h"
#include "gateway/sse.h"
#include "gateway/timeline.h"
#include "gateway/view.h"
#include "gateway/yaml.h"
#include "proto/curve.h"
#include "proto/msg.h"
#include "proto/ops.h"

#include <czmq.h>
#include <errno.h>
#include <limits.h>
#include <microhttpd.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define COMPONENT "gateway"
/* Messages handled per socket per loop turn, so a flood on one side cannot starve
 * the others. */
#define DRAIN_BUDGET 1024
/* Events handed to SSE streams between two runs of the HTTP side, so a burst is sent
 * as it comes rather than piled up in the clients' queues. */
#define EVENT_BATCH 32
/* Runs of the HTTP side in a row while streams still have queued frames to send. */
#define SSE_RUNS_PER_TURN 32
/* Requests queued towards a connected broker before sends fail (→ 503 at once). */
#define BROKER_SNDHWM 1000
/* Replies queued towards us; we drain them every turn. */
#define BROKER_RCVHWM 100000
/* Events asked for per events.replay page (the protocol's maximum). */
#define REPLAY_PAGE SYN_OP_REPLAY_LIMIT_MAX
/* Live events held while a gap in seq is filled from the log (then read back), and
 * the bytes of their text. */
#define GAP_HOLD_LIMIT 10000
#define GAP_HOLD_BYTES (16u * 1024u * 1024u)
/* With events quiet this long and the view holding entries, the broker is asked for
 * its last seq; a seq it named that has not arrived by the next probe was lost. */
#define VIEW_PROBE_MS 1000
/* An SSE stream asks for its next replay page only with less than this queued. */
#define SSE_LOW_BYTES_DIVISOR 4
/* After a refused handshake, the broker links are dialled again this long after,
 * doubling up to the most (a refusal is not worth hammering the broker for). */
#define REDIAL_FIRST_MS 500
#define REDIAL_MAX_MS 30000
/* A client cut for being too slow is closed this long after, if it still reads nothing. */
#define SSE_CUT_TIMEOUT_S 1
#define SSE_BLOCK_SIZE 4096

#define BODY_TOO_LARGE "{\"detail\":\"Request body too large\"}"
#define BROKER_UNAVAILABLE "{\"detail\":\"broker unavailable\"}"
#define BROKER_DOWN_HEALTH "{\"status\":\"degraded\",\"broker\":\"down\",\"workers\":0}"
#define NOT_FOUND "{\"detail\":\"Not Found\"}"
#define METHOD_NOT_ALLOWED "{\"detail\":\"Method Not Allowed\"}"
#define BAD_REPLY "{\"detail\":\"invalid reply from broker\"}"
#define OUT_OF_MEMORY "{\"detail\":\"gateway out of memory\"}"
#define GATEWAY_FULL "{\"detail\":\"Too many connections: try again shortly\"}"

typedef enum {
    REQUEST_RECEIVING, /* headers in, body arriving */
    REQUEST_WAITING,   /* sent to the broker, connection suspended */
    REQUEST_ANSWERED,  /* status and body known, response to be queued */
    REQUEST_DONE,      /* response queued */
    REQUEST_STREAM,    /* SSE: stream ready, its response to be queued */
    REQUEST_STREAMING, /* SSE: response queued, frames flowing */
} request_state_t;

/* One HTTP request, from its headers to the completion callback (MHD's con_cls). */
typedef struct {
    gateway_t *gateway;
    struct MHD_Connection *connection;
    request_state_t state;
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
    bool retry_after;
    bool close;                /* the gateway is full: free the connection */
    gateway_sse_client_t *sse; /* SSE routes only */
    bool sse_suspended;        /* suspended by the stream reader: queue empty */
    bool page_pending;         /* an events.replay page is in flight (corr) */
    bool sse_cut;              /* failed stream: logged, closing */
    bool view_held;            /* a control op holding its execution in the view */
    uint64_t view_token;       /* gateway_view_hold's token, for the reply */
} request_t;

struct gateway_t {
    gateway_config_t config;
    gateway_listen_t *listen;
    struct MHD_Daemon *daemon; /* the listener's */
    int epoll_fd;
    gateway_access_t *access;
    zsock_t *dealer;
    zsock_t *sub;
    gateway_pending_t *pending;
    uint64_t next_corr;
    gateway_stats_t stats;
    bool broker_silent;       /* we logged that the broker stopped answering */
    int64_t broker_warned_ms; /* when */
    gateway_hub_t *hub;
    gateway_view_t *view;
    zsock_t *monitor; /* the SUB's connect/disconnect events, for the view */
    bool events_up;   /* the SUB's handshake succeeded and it has not disconnected since */
    syn_ratelog_t *ratelog; /* repeated warnings: one line per cause a minute */
    /* A ZeroMQ socket's descriptor only tells that its state may have changed, and not
     * again until the socket has been read to the end (or its events asked for): these
     * say a socket may hold messages its descriptor will not announce. */
    bool dealer_check, sub_check, monitor_check;
    int dealer_fd, sub_fd, monitor_fd; /* those descriptors */
    gateway_sse_limits_t sse_limits;
    char fill_marker;     /* its address stands for the gap fill in the pending table */
    char probe_marker;    /* ... and for the view's probe of the broker's last seq */
    bool probe_pending;
    bool probe_answered;      /* probe_last holds the broker's last seq at the last probe */
    uint64_t probe_last;
    uint64_t sse_caught_up_to; /* the broker's last seq streams were last rewound for */
    int64_t next_probe_ms;
    int64_t last_event_ms;    /* when the SUB last gave an event */
    bool resumed;         /* a connection was resumed: run MHD again this turn */
    bool stopping;        /* gateway_destroy: no connection may be suspended again */
    bool sse_more;        /* streams have frames queued: let MHD send them this turn */
    int64_t next_sweep_ms; /* next keepalive sweep */
    int64_t redial_at_ms;  /* when to dial the broker again after a refusal; -1: not due */
    int64_t redial_backoff_ms;
};

static void request_set_answer(request_t *req, unsigned status, char *json_text)
{
    free(req->answer);
    req->status = status;
    req->answer = json_text;
    req->content_type = "application/json";
    req->state = REQUEST_ANSWERED;
}

static void request_set_literal(request_t *req, unsigned status, const char *json_text)
{
    request_set_answer(req, status, strdup(json_text));
}

static void request_set_json(request_t *req, unsigned status, json_t *body)
{
    /* json_dumps' compact text, faster, with reals in their shortest form
     * (common/json_text.h); scalars (and anything it refuses) are left to jansson. */
    char *text = syn_json_text(body);
    if (!text)
        text = json_dumps(body, JSON_COMPACT | JSON_ENCODE_ANY);
    if (text)
        request_set_answer(req, status, text);
    else
        request_set_literal(req, 500, OUT_OF_MEMORY);
}

/* Queues the answer on the connection (only valid inside the access handler). */
static enum MHD_Result request_respond(request_t *req)
{
    char *text = req->answer;
    req->answer = NULL;
    if (!text) {
        req->status = 500;
        text = strdup(OUT_OF_MEMORY);
        if (!text)
            return MHD_NO;
    }
    struct MHD_Response *response =
        MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
    if (!response) {
        free(text);
        return MHD_NO;
    }
    MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE,
                            req->content_type ? req->content_type : "application/json");
    if (req->status == MHD_HTTP_METHOD_NOT_ALLOWED && req->route.allow[0])
        MHD_add_response_header(response, MHD_HTTP_HEADER_ALLOW, req->route.allow);
    if (req->retry_after)
        MHD_add_response_header(response, MHD_HTTP_HEADER_RETRY_AFTER, "1");
    if (req->status == MHD_HTTP_UNAUTHORIZED)
        gateway_access_challenge(req->gateway->access, response);
    if (req->close)
        MHD_add_response_header(response, MHD_HTTP_HEADER_CONNECTION, "close");
    enum MHD_Result rc = MHD_queue_response(req->connection, req->status, response);
    MHD_destroy_response(response);
    req->state = REQUEST_DONE;
    return rc;
}

static void request_free(request_t *req)
{
    gateway_sse_client_destroy(&req->sse);
    free(req->body);
    free(req->answer);
    free(req);
}

/* One log line when the broker stops answering and one when it is back, rather than
 * one per request while it is away. */
static void note_broker(gateway_t *self, bool answering, const char *why)
{
    if (answering) {
        if (self->broker_silent)
            syn_info(COMPONENT, "broker answering again endpoint=%s", self->config.broker);
        self->broker_silent = false;
        return;
    }
    /* A broker that answers some requests and not others would flip the state on
     * every request: at most one warning a second. */
    int64_t now = syn_mono_ms();
    if (!self->broker_silent && now - self->broker_warned_ms >= 1000) {
        syn_warn(COMPONENT, "broker unavailable endpoint=%s reason=%s: answering 503",
                 self->config.broker, why);
        self->broker_silent = true;
        self->broker_warned_ms = now;
    }
}

/* The broker did not answer (in time, or at all): 503, and the client may retry. */
static void request_set_unavailable(request_t *req)
{
    request_set_literal(req, 503, req->health ? BROKER_DOWN_HEALTH : BROKER_UNAVAILABLE);
    req->retry_after = true;
}

static const char *lookup_query(void *cls, const char *name)
{
    request_t *req = cls;
    return MHD_lookup_connection_value(req->connection, MHD_GET_ARGUMENT_KIND, name);
}

/* A send may take in the news of a reply waiting on the DEALER, leaving its descriptor
 * quiet: the DEALER is read on the next turn whatever its descriptor says. */
static int broker_send(gateway_t *self, const syn_msg_t *msg)
{
    self->dealer_check = true;
    return syn_msg_send(zsock_resolve(self->dealer), NULL, 0, msg);
}

/* Sends the request to the broker and suspends the connection until the reply or the
 * deadline. Sets an immediate answer instead when the broker cannot take it. */
static void request_send(gateway_t *self, request_t *req, syn_op_t op, json_t *args)
{
    if (self->stopping) {
        request_set_unavailable(req);
        return;
    }
    uint64_t corr = self->next_corr++;
    long timeout = req->health ? self->config.health_timeout_ms : self->config.request_timeout_ms;
    if (gateway_pending_add(self->pending, corr, syn_mono_ms() + timeout, req) != 0) {
        request_set_literal(req, 500, OUT_OF_MEMORY);
        return;
    }
    syn_msg_t *msg = syn_msg_new_with(SYN_MSG_REQUEST,
                                      json_pack("{s:I, s:s, s:O}", "id", (json_int_t)corr,
                                                "op", syn_op_name(op), "args", args));
    int rc = -1;
    errno = ENOMEM;
    if (msg)
        rc = broker_send(self, msg);
    int send_errno = errno;
    syn_msg_destroy(&msg);
    if (rc != 0) {
        gateway_pending_take(self->pending, corr);
        if (send_errno == EINVAL) {
            /* The shape was checked, so only the message's element budget (msg.h) can
             * refuse it: a body too big to pass on. */
            syn_warn(COMPONENT, "request too large to encode op=%s", syn_op_name(op));
            request_set_literal(req, 413, BODY_TOO_LARGE);
            return;
        }
        self->stats.send_failures++;
        syn_debug(COMPONENT, "broker send failed op=%s error=%s", syn_op_name(op),
                  strerror(send_errno));
        note_broker(self, false,
                    send_errno == EAGAIN ? "not connected or queue full" : strerror(send_errno));
        request_set_unavailable(req);
        return;
    }
    self->stats.requests_sent++;
    req->corr = corr;
    req->state = REQUEST_WAITING;
    MHD_suspend_connection(req->connection);
}

/* ---- Server-Sent Events ---- */

/* Resumes a stream whose reader found its queue empty, now that it has something. */
static void sse_wake(gateway_t *self, request_t *req)
{
    if (req->state != REQUEST_STREAMING)
        return;
    if (gateway_sse_client_state(req->sse) == GATEWAY_SSE_FAILED && !req->sse_cut) {
        req->sse_cut = true;
        syn_info(COMPONENT, "sse stream cut (too slow, or its events could not be had) path=%s",
                 req->path);
        /* A client that reads nothing never gets the reader called again: the
         * timeout closes it instead. */
        MHD_set_connection_option(req->connection, MHD_CONNECTION_OPTION_TIMEOUT,
                                  (unsigned)SSE_CUT_TIMEOUT_S);
    }
    /* Not suspended: MHD calls the reader when it has room; run it soon. */
    self->sse_more = true;
    if (!req->sse_suspended || !gateway_sse_client_readable(req->sse))
        return;
    req->sse_suspended = false;
    MHD_resume_connection(req->connection);
    self->resumed = true;
}

static void on_hub_wake(gateway_sse_client_t *client, void *cls)
{
    sse_wake(cls, gateway_sse_client_user(client));
}

/* Sends one events.replay request whose reply goes to item (a request, or the gap
 * fill); 0, or -1 when the broker cannot take it. */
static int replay_send(gateway_t *self, void *item, const char *execution_id, uint64_t after,
                       unsigned limit, uint64_t *corr_out)
{
    uint64_t corr = self->next_corr++;
    if (gateway_pending_add(self->pending, corr,
                            syn_mono_ms() + self->config.request_timeout_ms, item) != 0)
        return -1;
    json_t *args = gateway_api_replay_args(execution_id, after, limit);
    syn_msg_t *msg = syn_msg_new_with(SYN_MSG_REQUEST,
                                      json_pack("{s:I, s:s, s:o}", "id", (json_int_t)corr, "op",
                                                syn_op_name(SYN_OP_EVENTS_REPLAY), "args", args));
    int rc = msg ? broker_send(self, msg) : -1;
    syn_msg_destroy(&msg);
    if (rc != 0) {
        gateway_pending_take(self->pending, corr);
        self->stats.send_failures++;
        note_broker(self, false, "not connected or queue full");
        return -1;
    }
    self->stats.requests_sent++;
    *corr_out = corr;
    return 0;
}

/* Asks for the stream's next replay page when it wants one (short queue, log not
 * done); a stream the broker cannot serve is cut (it may resume with Last-Event-ID). */
static void sse_advance(gateway_t *self, request_t *req)
{
    uint64_t after;
    if (req->page_pending || !gateway_sse_client_next_page(req->sse, &after))
        return;
    if (replay_send(self, req, gateway_sse_client_execution_id(req->sse), after, REPLAY_PAGE,
                    &req->corr) != 0) {
        gateway_sse_client_fail(req->sse);
        sse_wake(self, req);
        return;
    }
    req->page_pending = true;
}

static void rewind_one(gateway_sse_client_t *client, void *cls)
{
    if (gateway_sse_client_rewind(client))
        sse_advance(cls, gateway_sse_client_user(client));
}

/* Events the SUB never got (published before it connected, or while it was away, with
 * none after them to show a gap) would leave a stream waiting for them forever: when
 * the broker's log goes past what the live feed brought, every live stream reads the
 * log again from its own last seq (once per such seq). */
static void sse_catch_up(gateway_t *self, uint64_t broker_last)
{
    uint64_t seen;
    bool any = gateway_hub_last_seq(self->hub, &seen);
    if ((any && seen >= broker_last) || broker_last <= self->sse_caught_up_to)
        return;
    self->sse_caught_up_to = broker_last;
    gateway_hub_foreach(self->hub, rewind_one, self);
}

/* The gap fill: one events.replay page for every execution after `after`. */
static void fill_send(gateway_t *self, uint64_t after)
{
    uint64_t corr;
    if (replay_send(self, &self->fill_marker, NULL, after, REPLAY_PAGE, &corr) != 0) {
        syn_warn(COMPONENT, "cannot replay an event gap after seq=%llu: closing SSE streams",
                 (unsigned long long)after);
        gateway_hub_fill_failed(self->hub);
    }
}

/* An events.replay reply body: {events:[...], more, terminal, execution_id}. */
static bool page_valid(json_t *body)
{
    return json_is_object(body) && json_is_array(json_object_get(body, "events")) &&
           json_is_boolean(json_object_get(body, "more"));
}

static void fill_reply(gateway_t *self, json_int_t status, json_t *body)
{
    uint64_t after;
    if (status != 200 || !page_valid(body)) {
        syn_warn(COMPONENT, "event gap replay failed status=%lld: closing SSE streams",
                 (long long)status);
        gateway_hub_fill_failed(self->hub);
        return;
    }
    if (gateway_hub_fill(self->hub, json_object_get(body, "events"),
                         json_is_true(json_object_get(body, "more")), &after))
        fill_send(self, after);
}

/* A reply to a stream's replay page. The first one decides the HTTP answer: an error
 * is answered as JSON; a page opens the stream (connected frame, then the events). */
static void sse_reply(gateway_t *self, request_t *req, json_int_t status, json_t *body)
{
    gateway_sse_client_t *client = req->sse;
    json_t *events = json_object_get(body, "events");
    bool more = json_is_true(json_object_get(body, "more"));
    bool terminal = json_is_true(json_object_get(body, "terminal"));
    if (req->state == REQUEST_WAITING) {
        if (status != 200) {
            if (body)
                request_set_json(req, (unsigned)status, body);
            else
                request_set_literal(req, 502, BAD_REPLY);
        } else if (!page_valid(body)) {
            request_set_literal(req, 502, BAD_REPLY);
        } else {
            const char *resolved = json_string_value(json_object_get(body, "execution_id"));
            if (gateway_sse_client_execution_id(client) &&
                gateway_hub_resolve(self->hub, client,
                                    resolved ? resolved
                                             : gateway_sse_client_execution_id(client)) != 0) {
                request_set_literal(req, 500, OUT_OF_MEMORY);
            } else {
                gateway_sse_client_connect(client, true, syn_now_us());
                if (gateway_sse_client_page(client, events, more, terminal) != 0) {
                    request_set_literal(req, 502, BAD_REPLY);
                } else {
                    req->status = 200;
                    req->state = REQUEST_STREAM;
                    sse_advance(self, req);
                }
            }
        }
        MHD_resume_connection(req->connection);
        self->resumed = true;
        return;
    }
    if (status != 200 || !page_valid(body)) {
        syn_warn(COMPONENT, "replay page failed status=%lld: closing stream path=%s",
                 (long long)status, req->path);
        gateway_sse_client_fail(client);
    } else {
        gateway_sse_client_page(client, events, more, terminal);
    }
    sse_advance(self, req);
    sse_wake(self, req);
}

/* MHD asks for the next bytes of a stream. An empty queue suspends the connection
 * until the hub (or a replay page, or a keepalive) gives it something. */
static ssize_t sse_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    request_t *req = cls;
    gateway_t *self = req->gateway;
    ssize_t n = gateway_sse_client_read(req->sse, buf, max);
    sse_advance(self, req); /* reading may have made room for the next page */
    if (n == 0)
        n = gateway_sse_client_read(req->sse, buf, max);
    if (n == GATEWAY_SSE_END)
        return MHD_CONTENT_READER_END_OF_STREAM;
    if (n == GATEWAY_SSE_ERROR)
        return MHD_CONTENT_READER_END_WITH_ERROR;
    if (n == 0 && self->stopping)
        return MHD_CONTENT_READER_END_OF_STREAM;
    if (n == 0) {
        req->sse_suspended = true;
        MHD_suspend_connection(req->connection);
    }
    if (n > 0 && gateway_sse_client_queued(req->sse) > 0)
        self->sse_more = true;
    return n;
}

static enum MHD_Result sse_respond(gateway_t *self, request_t *req)
{
    (void)self;
    struct MHD_Response *response =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, SSE_BLOCK_SIZE, sse_read, req, NULL);
    if (!response)
        return MHD_NO;
    MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream");
    MHD_add_response_header(response, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
    MHD_add_response_header(response, "X-Accel-Buffering", "no");
    enum MHD_Result rc = MHD_queue_response(req->connection, MHD_HTTP_OK, response);
    MHD_destroy_response(response);
    req->status = 200;
    req->state = REQUEST_STREAMING;
    return rc;
}

/* GET /sse/...: an execution stream (and an activity stream given Last-Event-ID) first
 * reads the broker's log; a plain activity stream starts live at once. */
static void sse_begin(gateway_t *self, request_t *req)
{
    const char *header = MHD_lookup_connection_value(req->connection, MHD_HEADER_KIND,
                                                     "Last-Event-ID");
    uint64_t after = 0;
    json_t *error = NULL;
    int status = gateway_api_last_event_id(header, &after, &error);
    if (status != 0) {
        request_set_json(req, (unsigned)status, error);
        json_decref(error);
        return;
    }
    bool execution = req->route.id == GATEWAY_ROUTE_SSE_EXECUTION;
    bool replay = execution || header;
    bool has_id = true;
    if (!replay)
        has_id = gateway_hub_last_seq(self->hub, &after);
    req->sse = gateway_sse_client_new(execution ? req->route.params[0] : NULL, after, replay,
                                      &self->sse_limits);
    if (!req->sse || gateway_hub_add(self->hub, req->sse) != 0) {
        request_set_literal(req, 500, OUT_OF_MEMORY);
        return;
    }
    gateway_sse_client_set_user(req->sse, req);
    if (!replay) {
        gateway_sse_client_connect(req->sse, has_id, syn_now_us());
        req->state = REQUEST_STREAM;
        return;
    }
    uint64_t page_after;
    if (!gateway_sse_client_next_page(req->sse, &page_after))
        page_after = after;
    json_t *args = gateway_api_replay_args(execution ? req->route.params[0] : NULL, page_after,
                                           REPLAY_PAGE);
    request_send(self, req, SYN_OP_EVENTS_REPLAY, args);
    json_decref(args);
}

static void keepalive_one(gateway_sse_client_t *client, void *cls)
{
    gateway_t *self = cls;
    if (gateway_sse_client_keepalive(client, syn_mono_ms(), self->config.sse_keepalive_ms))
        sse_wake(self, gateway_sse_client_user(client));
}

/* Sweeps for silent streams a few times per keepalive interval. */
static void sweep_keepalives(gateway_t *self)
{
    int64_t now = syn_mono_ms();
    if (now < self->next_sweep_ms)
        return;
    long step = self->config.sse_keepalive_ms / 4;
    self->next_sweep_ms = now + (step < 10 ? 10 : step > 1000 ? 1000 : step);
    gateway_hub_foreach(self->hub, keepalive_one, self);
}

static bool is_control(gateway_route_id_t id)
{
    return id == GATEWAY_ROUTE_EXECUTION_CANCEL || id == GATEWAY_ROUTE_EXECUTION_PAUSE ||
           id == GATEWAY_ROUTE_EXECUTION_RESUME || id == GATEWAY_ROUTE_EXECUTION_INJECT;
}

/* A status read the local view can vouch for is answered from its ready text (a full
 * id of that workflow); anything else, errors included, is the broker's to answer. */
static bool view_answer(gateway_t *self, request_t *req)
{
    const char *text;
    size_t len;
    if (!gateway_view_get(self->view, req->route.params[0], req->route.params[1], &text, &len))
        return false;
    char *copy = malloc(len + 1);
    if (!copy)
        return false;
    memcpy(copy, text, len + 1);
    request_set_answer(req, 200, copy);
    return true;
}

/* The whole request is in: answer it at once, or hand it to the broker. */
static void request_dispatch(gateway_t *self, request_t *req)
{
    if (req->body_too_large) {
        request_set_literal(req, 413, BODY_TOO_LARGE);
        return;
    }
    if (req->match == GATEWAY_MATCH_NOT_FOUND) {
        request_set_literal(req, 404, NOT_FOUND);
        return;
    }
    if (req->match == GATEWAY_MATCH_METHOD_NOT_ALLOWED) {
        request_set_literal(req, 405, METHOD_NOT_ALLOWED);
        return;
    }
    if (req->route.id == GATEWAY_ROUTE_SSE_EXECUTION ||
        req->route.id == GATEWAY_ROUTE_SSE_ACTIVITY) {
        sse_begin(self, req);
        return;
    }
    syn_op_t op;
    json_t *args = NULL, *error = NULL;
    const char *content_type = MHD_lookup_connection_value(req->connection, MHD_HEADER_KIND,
                                                           MHD_HTTP_HEADER_CONTENT_TYPE);
    if (req->route.id == GATEWAY_ROUTE_EXECUTION_STATUS && view_answer(self, req))
        return;
    int status = gateway_api_request(&req->route, content_type, req->body ? req->body : "",
                                     req->body_len, lookup_query, req, &op, &args, &error);
    if (status != 0) {
        request_set_json(req, (unsigned)status, error);
    } else {
        if (is_control(req->route.id)) {
            /* Read-your-writes: what the view holds may predate this op. */
            req->view_token = gateway_view_hold(self->view, req->route.params[0]);
            req->view_held = true;
        }
        request_send(self, req, op, args);
    }
    json_decref(args);
    json_decref(error);
}

/* Keeps at most GATEWAY_BODY_LIMIT bytes; past that the rest is read and dropped so
 * the 413 can be sent once the request is complete. */
static void request_append(request_t *req, const char *data, size_t len)
{
    if (req->body_too_large || req->match != GATEWAY_MATCH_OK)
        return;
    if (len > GATEWAY_BODY_LIMIT - req->body_len) {
        req->body_too_large = true;
        free(req->body);
        req->body = NULL;
        req->body_len = req->body_cap = 0;
        return;
    }
    if (req->body_len + len + 1 > req->body_cap) {
        size_t cap = req->body_cap ? req->body_cap : 1024;
        while (cap < req->body_len + len + 1)
            cap *= 2;
        if (cap > GATEWAY_BODY_LIMIT + 1)
            cap = GATEWAY_BODY_LIMIT + 1;
        char *grown = realloc(req->body, cap);
        if (!grown) {
            req->body_too_large = true; /* the honest answer when we cannot hold it */
            return;
        }
        req->body = grown;
        req->body_cap = cap;
    }
    memcpy(req->body + req->body_len, data, len);
    req->body_len += len;
    req->body[req->body_len] = '\0';
}

static bool content_length_too_large(struct MHD_Connection *connection)
{
    const char *text = MHD_lookup_connection_value(connection, MHD_HEADER_KIND,
                                                   MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (!text)
        return false;
    char *end;
    errno = 0;
    unsigned long long length = strtoull(text, &end, 10);
    return errno == ERANGE || (end != text && length > GATEWAY_BODY_LIMIT);
}

static request_t *request_new(gateway_t *self, struct MHD_Connection *connection,
                              const char *method, const char *url)
{
    request_t *req = calloc(1, sizeof *req);
    if (!req)
        return NULL;
    req->gateway = self;
    req->connection = connection;
    req->started_ms = syn_mono_ms();
    snprintf(req->method, sizeof req->method, "%s", method);
    snprintf(req->path, sizeof req->path, "%s", url);
    req->match = gateway_route_match(method, url, &req->route);
    req->health = req->match == GATEWAY_MATCH_OK && req->route.id == GATEWAY_ROUTE_HEALTH;
    return req;
}

/* The headers are in: a request past the connection limit, or from a caller who may
 * not make it, is answered at once, before any body is read (MHD then closes the
 * connection). True when it was. */
static bool request_refused(gateway_t *self, request_t *req)
{
    if (gateway_listen_full(self->listen)) {
        self->stats.refused_full++;
        request_set_literal(req, 503, GATEWAY_FULL);
        req->retry_after = true;
        req->close = true;
        return true;
    }
    char detail[160];
    unsigned status = gateway_access_decide(self->access, req->connection, req->match,
                                            &req->route, detail, sizeof detail);
    if (status == 0)
        return false;
    self->stats.refused_auth++;
    json_t *body = json_pack("{s:s}", "detail", detail);
    request_set_json(req, status, body);
    json_decref(body);
    return true;
}

/* MHD calls this once when the headers are in, once per chunk of body, once when
 * the body is complete, and once more after a suspended connection is resumed. */
static enum MHD_Result on_request(void *cls, struct MHD_Connection *connection, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    (void)version;
    gateway_t *self = cls;
    request_t *req = *con_cls;
    if (!req) {
        req = request_new(self, connection, method, url);
        if (!req)
            return MHD_NO;
        *con_cls = req;
        if (request_refused(self, req))
            return request_respond(req);
        if (content_length_too_large(connection)) {
            /* Refuse before reading it; MHD then closes the connection. */
            request_set_literal(req, 413, BODY_TOO_LARGE);
            return request_respond(req);
        }
        return MHD_YES;
    }
    if (*upload_data_size) {
        request_append(req, upload_data, *upload_data_size);
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (req->state == REQUEST_RECEIVING) {
        /* Complete: no longer held to the deadline of incomplete requests. */
        gateway_listen_request_in(connection);
        request_dispatch(self, req);
    }
    if (req->state == REQUEST_ANSWERED)
        return request_respond(req);
    if (req->state == REQUEST_STREAM)
        return sse_respond(self, req);
    if (req->state == REQUEST_WAITING)
        return MHD_YES;
    syn_error(COMPONENT, "request called again after its response path=%s", req->path);
    return MHD_NO;
}

static void on_completed(void *cls, struct MHD_Connection *connection, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    gateway_t *self = cls;
    if (toe == MHD_REQUEST_TERMINATED_COMPLETED_OK)
        gateway_listen_request_done(self->listen, connection);
    request_t *req = *con_cls;
    if (!req)
        return;
    /* Still listed as waiting only when MHD gives up on it (shutdown): a late
     * reply must not find it. */
    if (req->state == REQUEST_WAITING || req->page_pending)
        gateway_pending_take(self->pending, req->corr);
    if (req->sse)
        gateway_hub_remove(self->hub, req->sse);
    syn_debug(COMPONENT, "http method=%s path=%s status=%u ms=%lld%s", req->method, req->path,
              req->status, (long long)(syn_mono_ms() - req->started_ms),
              toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "" : " aborted=1");
    request_free(req);
    *con_cls = NULL;
}

/* Applies one broker reply to its waiting request. Returns true when a connection
 * was resumed. */
static bool handle_reply(gateway_t *self, syn_msg_t *msg)
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
    json_int_t status = json_integer_value(json_object_get(fields, "status"));
    json_t *body = json_object_get(fields, "body");
    if (item == &self->fill_marker) {
        fill_reply(self, status, body);
        return false;
    }
    if (item == &self->probe_marker) {
        json_t *last = json_object_get(body, "last_seq");
        self->probe_pending = false;
        self->probe_answered = status == 200 && json_is_integer(last);
        self->probe_last = (uint64_t)json_integer_value(last);
        if (self->probe_answered)
            sse_catch_up(self, self->probe_last);
        return false;
    }
    request_t *req = item;
    if (req->view_held) {
        bool ok = status >= 200 && status < 300;
        gateway_view_release(self->view, req->view_token,
                             ok ? json_string_value(json_object_get(body, "execution_id")) : NULL,
                             ok ? json_string_value(json_object_get(body, "state")) : NULL);
        req->view_held = false;
    }
    if (status < 200 || status > 599) {
        syn_warn(COMPONENT, "broker replied with status=%lld", (long long)status);
        status = 502;
        body = NULL;
    }
    if (req->sse) {
        req->page_pending = false;
        sse_reply(self, req, status, body);
        return false; /* sse_reply resumes what it must */
    }
    if (status == 502 && !body) {
        request_set_literal(req, 502, BAD_REPLY);
    } else if (req->route.id == GATEWAY_ROUTE_PHASE_OUTPUT && status == 200) {
        /* The one text answer: the phase's whole output as it was produced. */
        const char *output = json_string_value(json_object_get(body, "output"));
        char *text = output ? strdup(output) : NULL;
        if (!output)
            request_set_literal(req, 502, BAD_REPLY);
        else if (!text)
            request_set_literal(req, 500, OUT_OF_MEMORY);
        else {
            request_set_answer(req, 200, text);
            req->content_type = "text/plain; charset=utf-8";
        }
    } else if (req->route.id == GATEWAY_ROUTE_EXECUTION_TIMELINE && status == 200) {
        char why[128];
        char *svg = timeline_render_svg(body, syn_now_us(), why, sizeof why);
        if (svg) {
            request_set_answer(req, 200, svg);
            req->content_type = "image/svg+xml";
        } else {
            json_t *detail = json_pack("{s:s}", "detail", why);
            request_set_json(req, 409, detail);
            json_decref(detail);
        }
    } else if (req->route.id == GATEWAY_ROUTE_WORKFLOW_EXPORT && status == 200) {
        char *yaml = NULL;
        json_t *error = NULL;
        int export_status = gateway_yaml_export(body, &yaml, &error);
        if (export_status == 200) {
            request_set_answer(req, 200, yaml);
            req->content_type = GATEWAY_YAML_CONTENT_TYPE;
        } else {
            syn_warn(COMPONENT, "cannot export a workflow as YAML path=%s", req->path);
            request_set_json(req, (unsigned)export_status, error);
        }
        json_decref(error);
    } else {
        request_set_json(req, (unsigned)status, body);
    }
    MHD_resume_connection(req->connection);
    return true;
}

static size_t drain_replies(gateway_t *self)
{
    size_t resumed = 0;
    for (int i = 0; i < DRAIN_BUDGET; i++) {
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
        if (handle_reply(self, msg))
            resumed++;
        syn_msg_destroy(&msg);
    }
    return resumed;
}

/* MHD sends at most one buffer per connection per run: run it again while streams
 * have more to send (or connections were resumed), a bounded number of times. */
static void run_http(gateway_t *self)
{
    for (int i = 0; i < SSE_RUNS_PER_TURN && (self->resumed || self->sse_more); i++) {
        self->resumed = false;
        self->sse_more = false;
        MHD_run(self->daemon);
    }
}

/* Hands every event from the SUB to the hub, which sends it to the SSE streams it
 * concerns (or asks for the range the PUB dropped). */
static void drain_events(gateway_t *self)
{
    void *socket = zsock_resolve(self->sub);
    for (int i = 0; i < DRAIN_BUDGET; i++) {
        if (i > 0 && i % EVENT_BATCH == 0)
            run_http(self);
        syn_msg_t *msg = NULL;
        char topic[256];
        size_t topic_len = sizeof topic;
        char err[256];
        int rc = syn_msg_recv(socket, &msg, topic, &topic_len, err, sizeof err);
        if (rc == -1) {
            self->sub_check = false;
            return;
        }
        if (rc == -2) {
            self->stats.bad_messages++;
            syn_warn(COMPONENT, "invalid event from broker: %s", err);
            continue;
        }
        gateway_sse_frame_t *frame = NULL;
        if (syn_msg_type(msg) == SYN_MSG_EVENT)
            frame = gateway_sse_frame_event(syn_msg_fields(msg), err, sizeof err);
        else
            snprintf(err, sizeof err, "unexpected message type=%s",
                     syn_msg_type_name(syn_msg_type(msg)));
        if (frame)
            gateway_view_event(self->view, gateway_sse_frame_seq(frame),
                               json_object_get(syn_msg_fields(msg), "status"));
        syn_msg_destroy(&msg);
        if (!frame) {
            self->stats.bad_messages++;
            syn_warn(COMPONENT, "unusable event from broker: %s", err);
            continue;
        }
        self->stats.events++;
        self->last_event_ms = syn_mono_ms();
        uint64_t after;
        if (gateway_hub_live(self->hub, frame, &after))
            fill_send(self, after);
        gateway_sse_frame_unref(&frame);
    }
}

/* A broker that refuses our keys (or wants keys we do not have): libzmq (4.3) takes
 * a failed handshake as final and never dials that endpoint again, so the gateway
 * does, after a growing pause, until the broker lets it in (its key authorized and
 * the broker told so with SIGHUP, or the right keys given). One line a minute says
 * so, with how often. Only the SUB is watched: both sockets reach the same broker
 * with the same key, which its ZAP handler admits on both or on neither, so the
 * DEALER (whose requests meanwhile get 503, and /health "down") is dialled again
 * with it. */
static void handshake_failed(gateway_t *self, uint16_t event)
{
    int64_t now = syn_mono_ms();
    /* A handshake cut short (NO_DETAIL: a broker restarting mid-way) is a broken
     * connection, which libzmq dials again by itself. */
    bool refused = event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH ||
                   event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL;
    if (refused && self->redial_at_ms < 0) {
        self->redial_at_ms = now + self->redial_backoff_ms;
        self->redial_backoff_ms = self->redial_backoff_ms * 2 > REDIAL_MAX_MS
                                      ? REDIAL_MAX_MS
                                      : self->redial_backoff_ms * 2;
    }
    uint64_t held;
    if (!syn_ratelog_allow(self->ratelog, "handshake", now, &held))
        return;
    syn_warn(COMPONENT,
             "broker handshake failed endpoint=%s curve=%s failures_since_last=%llu: check "
             "--curve-secret and --broker-key against the broker's keys",
             self->config.events,
             self->config.curve_secret && self->config.curve_secret[0] ? "on" : "off",
             (unsigned long long)held);
}

static void redial(zsock_t *sock, const char *endpoint)
{
    zmq_disconnect(zsock_resolve(sock), endpoint); /* ENOENT once libzmq gave up: fine */
    if (zmq_connect(zsock_resolve(sock), endpoint) != 0)
        syn_warn(COMPONENT, "cannot connect to %s again: %s", endpoint,
                 zmq_strerror(zmq_errno()));
}

static void redial_when_due(gateway_t *self)
{
    if (self->redial_at_ms < 0 || syn_mono_ms() < self->redial_at_ms)
        return;
    self->redial_at_ms = -1;
    redial(self->dealer, self->config.broker);
    redial(self->sub, self->config.events);
}

/* The SUB connected or lost its connection: either way events may have been missed,
 * so the view starts over (and serves nothing while disconnected). */
static void drain_monitor(gateway_t *self)
{
    if (!self->monitor)
        return;
    void *socket = zsock_resolve(self->monitor);
    for (;;) {
        zmq_msg_t frame;
        zmq_msg_init(&frame);
        if (zmq_msg_recv(&frame, socket, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&frame);
            self->monitor_check = false;
            return;
        }
        uint16_t event = 0;
        bool first = zmq_msg_size(&frame) >= sizeof event;
        if (first)
            memcpy(&event, zmq_msg_data(&frame), sizeof event);
        bool more = zmq_msg_more(&frame);
        zmq_msg_close(&frame);
        while (more) { /* the endpoint frame */
            zmq_msg_init(&frame);
            more = zmq_msg_recv(&frame, socket, ZMQ_DONTWAIT) >= 0 && zmq_msg_more(&frame);
            zmq_msg_close(&frame);
        }
        if (!first)
            continue;
        if (event == ZMQ_EVENT_CONNECTED) {
            syn_debug(COMPONENT, "events connected: local view starts over");
            gateway_view_set_connected(self->view, true);
        } else if (event == ZMQ_EVENT_HANDSHAKE_SUCCEEDED) {
            self->events_up = true;
            self->redial_backoff_ms = REDIAL_FIRST_MS;
        } else if (event == ZMQ_EVENT_DISCONNECTED) {
            if (self->events_up)
                syn_info(COMPONENT, "events disconnected: status reads go to the broker");
            self->events_up = false;
            gateway_view_set_connected(self->view, false);
        } else {
            handshake_failed(self, event);
        }
    }
}

/* Watches the SUB's connection so the view is never trusted while it is down. Without
 * a monitor the view stays disconnected: every read goes to the broker. */
static void monitor_start(gateway_t *self)
{
    /* A random name, not the object's address: a freed gateway's monitor endpoint
     * is let go of only when zmq gets round to it, and a new gateway in the same
     * process (the tests) may get the same address. */
    char endpoint[64], id[24];
    if (syn_id_make("", 16, id, sizeof id) != 0)
        snprintf(id, sizeof id, "%p", (void *)self);
    snprintf(endpoint, sizeof endpoint, "inproc://gateway-sub-monitor-%s", id);
    if (zmq_socket_monitor(zsock_resolve(self->sub), endpoint,
                           ZMQ_EVENT_CONNECTED | ZMQ_EVENT_DISCONNECTED |
                               ZMQ_EVENT_HANDSHAKE_SUCCEEDED |
                               ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL |
                               ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
                               ZMQ_EVENT_HANDSHAKE_FAILED_AUTH) != 0) {
        syn_warn(COMPONENT, "cannot monitor the events socket (%s): no local view",
                 zmq_strerror(errno));
        return;
    }
    self->monitor = zsock_new(ZMQ_PAIR);
    if (self->monitor && zsock_connect(self->monitor, "%s", endpoint) != 0)
        zsock_destroy(&self->monitor);
    if (!self->monitor)
        syn_warn(COMPONENT, "cannot read the events socket's monitor: no local view");
}

/* PUB may drop the last event of a burst, and no gap shows until the next one: when
 * the feed has been quiet, ask the broker how far its log goes (events.replay, one
 * event); if that seq has still not arrived by the next probe, the view lost it, and
 * SSE streams catch up at once (sse_catch_up). */
static void view_probe(gateway_t *self)
{
    int64_t now = syn_mono_ms();
    if (self->probe_pending || now < self->next_probe_ms)
        return;
    self->next_probe_ms = now + VIEW_PROBE_MS;
    uint64_t last;
    bool known = gateway_view_last_seq(self->view, &last);
    if (self->probe_answered && known && last < self->probe_last) {
        syn_info(COMPONENT, "events up to seq=%llu never arrived (last seq=%llu): local view "
                 "starts over", (unsigned long long)self->probe_last, (unsigned long long)last);
        gateway_view_clear(self->view);
    }
    self->probe_answered = false;
    gateway_view_stats_t view;
    gateway_view_stats(self->view, &view);
    gateway_hub_stats_t hub;
    gateway_hub_stats(self->hub, &hub);
    bool view_wants = known && view.entries > 0;
    if ((!view_wants && hub.clients == 0) || now - self->last_event_ms < VIEW_PROBE_MS)
        return;
    if (!known)
        last = 0;
    uint64_t corr;
    if (replay_send(self, &self->probe_marker, NULL, last, 1, &corr) == 0)
        self->probe_pending = true;
}

/* No reply will come for item: a waiting request is answered 503, a stream waiting
 * for a replay page is cut (it may resume with Last-Event-ID), a gap fill gives up. */
static void give_up(gateway_t *self, void *item)
{
    if (item == &self->probe_marker) {
        self->probe_pending = false;
        return;
    }
    if (item == &self->fill_marker) {
        syn_warn(COMPONENT, "event gap replay got no reply: closing SSE streams");
        gateway_hub_fill_failed(self->hub);
        return;
    }
    request_t *req = item;
    if (req->state != REQUEST_WAITING) {
        req->page_pending = false;
        gateway_sse_client_fail(req->sse);
        sse_wake(self, req);
        return;
    }
    request_set_unavailable(req);
    MHD_resume_connection(req->connection);
    self->resumed = true;
}

static void expire_requests(gateway_t *self)
{
    int64_t now = syn_mono_ms();
    void *item;
    while ((item = gateway_pending_expire(self->pending, now))) {
        self->stats.timeouts++;
        syn_debug(COMPONENT, "broker timeout");
        note_broker(self, false, "no reply in time");
        give_up(self, item);
    }
}

/* When MHD must run even if its descriptor stays quiet (a connection timeout, or work
 * it already has in hand); INT64_MAX when never. */
static int64_t http_due_ms(gateway_t *self, int64_t now)
{
    MHD_UNSIGNED_LONG_LONG wait;
    if (MHD_get_timeout(self->daemon, &wait) != MHD_YES)
        return INT64_MAX;
    return now + (wait < (MHD_UNSIGNED_LONG_LONG)INT32_MAX ? (int64_t)wait : INT32_MAX);
}

int gateway_poll(gateway_t *self, long max_wait_ms)
{
    long timeout = max_wait_ms < 0 ? 0 : max_wait_ms;
    int64_t now = syn_mono_ms();
    int64_t http_due = http_due_ms(self, now);
    if (http_due - now < timeout)
        timeout = (long)(http_due - now);
    int64_t deadline = gateway_pending_next_deadline(self->pending);
    gateway_hub_stats_t hub;
    gateway_hub_stats(self->hub, &hub);
    if (hub.clients > 0 && (deadline < 0 || self->next_sweep_ms < deadline))
        deadline = self->next_sweep_ms;
    gateway_view_stats_t view;
    gateway_view_stats(self->view, &view);
    if ((view.entries > 0 || hub.clients > 0) &&
        (deadline < 0 || self->next_probe_ms < deadline))
        deadline = self->next_probe_ms;
    if (self->redial_at_ms >= 0 && (deadline < 0 || self->redial_at_ms < deadline))
        deadline = self->redial_at_ms;
    if (deadline >= 0) {
        int64_t until = deadline - syn_mono_ms();
        if (until < timeout)
            timeout = until < 0 ? 0 : (long)until;
    }
    /* zmq_poll would ask each socket for its events before and after waiting, a few
     * system calls each; the descriptors and the check flags say the same for less. */
    struct pollfd fds[] = {
        {self->dealer_fd, POLLIN, 0},
        {self->sub_fd, POLLIN, 0},
        {self->epoll_fd, POLLIN, 0},
        {self->monitor_fd, POLLIN, 0},
    };
    if (self->dealer_check || self->sub_check || (self->monitor && self->monitor_check))
        timeout = 0;
    if (poll(fds, self->monitor ? 4 : 3, timeout > INT_MAX ? INT_MAX : (int)timeout) < 0) {
        if (errno == EINTR)
            return 0;
        syn_error(COMPONENT, "poll failed: %s", strerror(errno));
        return -1;
    }
    self->dealer_check |= fds[0].revents != 0;
    self->sub_check |= fds[1].revents != 0;
    self->monitor_check |= fds[3].revents != 0;
    /* A socket is read only when it may hold something: a read that finds nothing still
     * costs system calls. MHD runs when its descriptor is ready, a connection was
     * resumed, or its timeout has come. */
    bool http_ready = fds[2].revents != 0 || syn_mono_ms() >= http_due;
    /* A lost events connection is known before any status read of this turn. */
    if (self->monitor && self->monitor_check)
        drain_monitor(self);
    if (http_ready)
        self->resumed = true;
    run_http(self);
    if (self->dealer_check && drain_replies(self) > 0)
        self->resumed = true;
    expire_requests(self);
    if (self->sub_check)
        drain_events(self);
    view_probe(self);
    sweep_keepalives(self);
    redial_when_due(self);
    /* Resumed connections are handled now rather than on the next turn. */
    run_http(self);
    return 0;
}

/* A socket towards the broker, with the gateway's CURVE keys when it has them (a
 * broker that refuses them is simply never connected: /health says it is down). Not
 * connected yet: broker_connect does that, once whatever must watch it is in place. */
static zsock_t *broker_socket(int type, int rcvhwm, const syn_curve_t *curve, char *err,
                              size_t errlen)
{
    zsock_t *sock = zsock_new(type);
    if (!sock) {
        snprintf(err, errlen, "cannot create socket: %s", zmq_strerror(errno));
        return NULL;
    }
    zsock_set_linger(sock, 0);
    zsock_set_maxmsgsize(sock, (int)SYN_MSG_MAX_SIZE);
    zsock_set_rcvhwm(sock, rcvhwm);
    if (type == ZMQ_DEALER) {
        zsock_set_sndhwm(sock, BROKER_SNDHWM);
        /* No broker connected → sends fail at once (503) instead of queueing. */
        zsock_set_immediate(sock, 1);
    } else {
        zsock_set_subscribe(sock, "");
    }
    if (curve)
        syn_curve_apply(curve, sock);
    return sock;
}

/* Starts connecting (zmq finishes it, and reconnects, in its I/O thread). */
static int broker_connect(zsock_t *sock, const char *endpoint, char *err, size_t errlen)
{
    if (zsock_connect(sock, "%s", endpoint) != 0) {
        snprintf(err, errlen, "cannot connect to '%s': %s", endpoint, zmq_strerror(errno));
        return -1;
    }
    return 0;
}

gateway_t *gateway_new(const gateway_config_t *config, char *err, size_t errlen)
{
    gateway_t *self = calloc(1, sizeof *self);
    if (!self) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    self->config = *config;
    if (self->config.sse_keepalive_ms <= 0)
        self->config.sse_keepalive_ms = GATEWAY_SSE_KEEPALIVE_MS;
    if (self->config.sse_buffer_bytes <= 0)
        self->config.sse_buffer_bytes = GATEWAY_SSE_BUFFER_BYTES;
    self->sse_limits.max_bytes = (size_t)self->config.sse_buffer_bytes;
    self->sse_limits.low_bytes = self->sse_limits.max_bytes / SSE_LOW_BYTES_DIVISOR;
    self->next_corr = 1;
    self->epoll_fd = -1;
    self->dealer_check = self->sub_check = self->monitor_check = true;
    self->pending = gateway_pending_new();
    self->hub = gateway_hub_new(GAP_HOLD_LIMIT, GAP_HOLD_BYTES, on_hub_wake, self);
    self->view = gateway_view_new(GATEWAY_VIEW_CAPACITY, GATEWAY_VIEW_MAX_BYTES);
    self->ratelog = syn_ratelog_new(60000, 8);
    self->redial_at_ms = -1;
    self->redial_backoff_ms = REDIAL_FIRST_MS;
    if (!self->pending || !self->hub || !self->view || !self->ratelog) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    /* Everything is read and checked before anything is bound or connected. */
    if (gateway_config_check(config, err, errlen) != 0)
        goto fail;
    self->access = gateway_access_new(config->api_tokens, config->api_user,
                                      config->api_password, err, errlen);
    if (!self->access)
        goto fail;
    syn_curve_t *curve = NULL;
    if (config->curve_secret && config->curve_secret[0] &&
        !(curve = syn_curve_new_client(config->curve_secret, config->broker_key, err, errlen)))
        goto fail;
    self->listen = gateway_listen_new(config, on_request, on_completed, self, err, errlen);
    if (self->listen) {
        self->daemon = gateway_listen_daemon(self->listen);
        self->epoll_fd = gateway_listen_epoll_fd(self->listen);
        self->dealer = broker_socket(ZMQ_DEALER, BROKER_RCVHWM, curve, err, errlen);
    }
    if (self->dealer)
        self->sub = broker_socket(ZMQ_SUB, GATEWAY_EVENTS_BUFFERED, curve, err, errlen);
    syn_curve_destroy(&curve);
    if (!self->sub)
        goto fail;
    /* The monitor, and its reader, before the SUB connects: zmq drops the events of a
     * socket nobody monitors yet, and a missed CONNECTED would leave the view
     * disconnected (every status read to the broker) until the next reconnect. A
     * loaded machine finishes a loopback connect before the next line often enough. */
    monitor_start(self);
    if (broker_connect(self->dealer, config->broker, err, errlen) != 0 ||
        broker_connect(self->sub, config->events, err, errlen) != 0)
        goto fail;
    self->dealer_fd = zsock_fd(self->dealer);
    self->sub_fd = zsock_fd(self->sub);
    self->monitor_fd = self->monitor ? zsock_fd(self->monitor) : -1;
    return self;
fail:
    gateway_destroy(&self);
    return NULL;
}

static void finish_one(gateway_sse_client_t *client, void *cls)
{
    gateway_sse_client_finish(client);
    sse_wake(cls, gateway_sse_client_user(client));
}

void gateway_destroy(gateway_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    gateway_t *self = *self_p;
    if (self->daemon) {
        /* MHD must not be stopped with suspended connections (it aborts the process):
         * answer every waiting request, end every stream, and let MHD send what that
         * resumed. From here on nothing suspends a connection again: a request MHD
         * reads only now gets 503 at once, and a stream with nothing left ends. */
        self->stopping = true;
        void *item;
        while ((item = gateway_pending_expire(self->pending, INT64_MAX)))
            give_up(self, item);
        gateway_hub_foreach(self->hub, finish_one, self);
        MHD_run(self->daemon);
    }
    gateway_listen_destroy(&self->listen);
    gateway_access_destroy(&self->access);
    zsock_destroy(&self->dealer);
    if (self->monitor) {
        zmq_socket_monitor(zsock_resolve(self->sub), NULL, 0);
        zsock_destroy(&self->monitor);
    }
    zsock_destroy(&self->sub);
    gateway_pending_destroy(&self->pending);
    gateway_hub_destroy(&self->hub);
    gateway_view_destroy(&self->view);
    syn_ratelog_destroy(&self->ratelog);
    free(self);
    *self_p = NULL;
}

int gateway_port(const gateway_t *self)
{
    return gateway_listen_port(self->listen);
}

int gateway_reload(gateway_t *self)
{
    size_t count;
    char err[512];
    if (gateway_access_reload(self->access, &count, err, sizeof err) != 0) {
        syn_error(COMPONENT, "cannot reload the API tokens: %s: keeping the tokens loaded before",
                  err);
        return -1;
    }
    if (self->config.api_tokens && self->config.api_tokens[0])
        syn_info(COMPONENT, "API tokens reloaded file=%s tokens=%zu", self->config.api_tokens,
                 count);
    else
        syn_info(COMPONENT, "reload: no --api-tokens file to read");
    return 0;
}

void gateway_stats(const gateway_t *self, gateway_stats_t *stats)
{
    *stats = self->stats;
    stats->in_flight = gateway_pending_size(self->pending);
    gateway_hub_stats_t hub;
    gateway_hub_stats(self->hub, &hub);
    stats->sse_clients = hub.clients;
    stats->sse_overflows = hub.overflows;
    stats->event_gaps = hub.gaps;
    stats->events_dispatched = hub.dispatched;
    gateway_view_stats_t view;
    gateway_view_stats(self->view, &view);
    stats->view_hits = view.hits;
    stats->view_updates = view.updates;
    stats->view_entries = view.entries;
    stats->view_clears = view.clears;
    stats->view_evictions = view.evictions;
    stats->view_bytes = view.bytes;
    stats->http_connections = gateway_listen_connections(self->listen);
}
