/* sse_routes: SSE routes as streams fed by the hub and by events.replay pages
 * (gateway/sse_routes.h says why it stands alone). */
#include "gateway/sse_routes.h"
#include "common/clock.h"
#include "common/log.h"
#include "gateway/api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define COMPONENT "gateway"
/* Live events held while a gap in seq is filled from the log (then read back), and
 * the bytes of their text. */
#define GAP_HOLD_LIMIT 10000
#define GAP_HOLD_BYTES (16u * 1024u * 1024u)
/* An SSE stream asks for its next replay page only with less than this queued. */
#define SSE_LOW_BYTES_DIVISOR 4
/* A client cut for being too slow is closed this long after, if it still reads nothing. */
#define SSE_CUT_TIMEOUT_S 1
#define SSE_BLOCK_SIZE 4096

struct gateway_sse_routes_t {
    gateway_hub_t *hub;
    gateway_broker_link_t *link;
    gateway_turn_t *turn;
    gateway_sse_limits_t limits;
    long keepalive_ms;
    long replay_timeout_ms;
    int64_t next_sweep_ms;
    uint64_t caught_up_to; /* the broker's last seq streams were last rewound for */
    char fill_marker;      /* its address stands for the gap fill in the pending table */
};

static void on_hub_wake(gateway_sse_client_t *client, void *cls);

gateway_sse_routes_t *gateway_sse_routes_new(gateway_broker_link_t *link, gateway_turn_t *turn,
                                             long keepalive_ms, long buffer_bytes,
                                             long replay_timeout_ms)
{
    gateway_sse_routes_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->link = link;
    self->turn = turn;
    self->keepalive_ms = keepalive_ms;
    self->replay_timeout_ms = replay_timeout_ms;
    self->limits.max_bytes = (size_t)buffer_bytes;
    self->limits.low_bytes = self->limits.max_bytes / SSE_LOW_BYTES_DIVISOR;
    self->hub = gateway_hub_new(GAP_HOLD_LIMIT, GAP_HOLD_BYTES, on_hub_wake, self);
    if (!self->hub)
        gateway_sse_routes_destroy(&self);
    return self;
}

void gateway_sse_routes_destroy(gateway_sse_routes_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    gateway_hub_destroy(&(*self_p)->hub);
    free(*self_p);
    *self_p = NULL;
}

gateway_hub_t *gateway_sse_routes_hub(gateway_sse_routes_t *self)
{
    return self->hub;
}

bool gateway_sse_original_stream(const char *url)
{
    bool original;
    const char *path = gateway_route_path(url, &original);
    return original || strncmp(path, "/watch/", strlen("/watch/")) == 0;
}

bool gateway_sse_page_valid(const json_t *body)
{
    return json_is_object(body) && json_is_array(json_object_get(body, "events")) &&
           json_is_boolean(json_object_get(body, "more"));
}

bool gateway_sse_catch_up_due(bool any, uint64_t seen, uint64_t broker_last,
                              uint64_t caught_up_to)
{
    return !(any && seen >= broker_last) && broker_last > caught_up_to;
}

/* Resumes a stream whose reader found its queue empty, now that it has something. */
static void wake(gateway_sse_routes_t *self, gateway_request_t *req)
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
    self->turn->sse_more = true;
    if (!req->sse_suspended || !gateway_sse_client_readable(req->sse))
        return;
    req->sse_suspended = false;
    MHD_resume_connection(req->connection);
    self->turn->resumed = true;
}

static void on_hub_wake(gateway_sse_client_t *client, void *cls)
{
    wake(cls, gateway_sse_client_user(client));
}

/* Sends one events.replay request whose reply goes to item (a request, or the gap
 * fill); 0, or -1 when the broker cannot take it. */
static int replay_send(gateway_sse_routes_t *self, void *item, const char *execution_id,
                       uint64_t after, unsigned limit, uint64_t *corr)
{
    json_t *args = gateway_api_replay_args(execution_id, after, limit);
    gateway_send_result_t sent =
        args ? gateway_broker_link_send(self->link, SYN_OP_EVENTS_REPLAY, args,
                                        self->replay_timeout_ms, item, corr)
             : GATEWAY_SEND_NO_MEMORY;
    json_decref(args);
    return sent == GATEWAY_SENT ? 0 : -1;
}

/* Asks for the stream's next replay page when it wants one (short queue, log not
 * done); a stream the broker cannot serve is cut (it may resume with Last-Event-ID). */
static void advance(gateway_sse_routes_t *self, gateway_request_t *req)
{
    uint64_t after;
    if (req->page_pending || !gateway_sse_client_next_page(req->sse, &after))
        return;
    if (replay_send(self, req, gateway_sse_client_execution_id(req->sse), after,
                    GATEWAY_REPLAY_PAGE, &req->corr) != 0) {
        gateway_sse_client_fail(req->sse);
        wake(self, req);
        return;
    }
    req->page_pending = true;
}

static void rewind_one(gateway_sse_client_t *client, void *cls)
{
    if (gateway_sse_client_rewind(client))
        advance(cls, gateway_sse_client_user(client));
}

/* Events the SUB never got (published before it connected, or while it was away, with
 * none after them to show a gap) would leave a stream waiting for them forever: when
 * the broker's log goes past what the live feed brought, every live stream reads the
 * log again from its own last seq (once per such seq). */
void gateway_sse_routes_catch_up(gateway_sse_routes_t *self, uint64_t broker_last)
{
    uint64_t seen;
    bool any = gateway_hub_last_seq(self->hub, &seen);
    if (!gateway_sse_catch_up_due(any, seen, broker_last, self->caught_up_to))
        return;
    self->caught_up_to = broker_last;
    gateway_hub_foreach(self->hub, rewind_one, self);
}

/* The gap fill: one events.replay page for every execution after `after`. */
static void fill_send(gateway_sse_routes_t *self, uint64_t after)
{
    uint64_t corr;
    if (replay_send(self, &self->fill_marker, NULL, after, GATEWAY_REPLAY_PAGE, &corr) != 0) {
        syn_warn(COMPONENT, "cannot replay an event gap after seq=%llu: closing SSE streams",
                 (unsigned long long)after);
        gateway_hub_fill_failed(self->hub);
    }
}

bool gateway_sse_routes_is_fill(const gateway_sse_routes_t *self, const void *item)
{
    return item == &self->fill_marker;
}

void gateway_sse_routes_fill_reply(gateway_sse_routes_t *self, json_int_t status, json_t *body)
{
    uint64_t after;
    if (status != 200 || !gateway_sse_page_valid(body)) {
        syn_warn(COMPONENT, "event gap replay failed status=%lld: closing SSE streams",
                 (long long)status);
        gateway_hub_fill_failed(self->hub);
        return;
    }
    if (gateway_hub_fill(self->hub, json_object_get(body, "events"),
                         json_is_true(json_object_get(body, "more")), &after))
        fill_send(self, after);
}

void gateway_sse_routes_fill_lost(gateway_sse_routes_t *self)
{
    syn_warn(COMPONENT, "event gap replay got no reply: closing SSE streams");
    gateway_hub_fill_failed(self->hub);
}

void gateway_sse_routes_live(gateway_sse_routes_t *self, gateway_sse_frame_t *frame)
{
    uint64_t after;
    if (gateway_hub_live(self->hub, frame, &after))
        fill_send(self, after);
}

/* The first page opens the stream: its execution id resolved (a prefix names one),
 * the connected frame, then the page's events. */
static void open_stream(gateway_sse_routes_t *self, gateway_request_t *req, json_t *body)
{
    gateway_sse_client_t *client = req->sse;
    const char *resolved = json_string_value(json_object_get(body, "execution_id"));
    if (gateway_sse_client_execution_id(client) &&
        gateway_hub_resolve(self->hub, client,
                            resolved ? resolved : gateway_sse_client_execution_id(client)) !=
            0) {
        gateway_request_set_literal(req, 500, GATEWAY_OUT_OF_MEMORY);
        return;
    }
    gateway_sse_client_connect(client, true, syn_now_us());
    if (gateway_sse_client_page(client, json_object_get(body, "events"),
                                json_is_true(json_object_get(body, "more")),
                                json_is_true(json_object_get(body, "terminal"))) != 0) {
        gateway_request_set_literal(req, 502, GATEWAY_BAD_REPLY);
        return;
    }
    req->status = 200;
    req->state = REQUEST_STREAM;
    advance(self, req);
}

void gateway_sse_routes_page(gateway_sse_routes_t *self, gateway_request_t *req,
                             json_int_t status, json_t *body)
{
    req->page_pending = false;
    if (req->state == REQUEST_WAITING) {
        if (status != 200) {
            if (body)
                gateway_request_set_json(req, (unsigned)status, body);
            else
                gateway_request_set_literal(req, 502, GATEWAY_BAD_REPLY);
        } else if (!gateway_sse_page_valid(body)) {
            gateway_request_set_literal(req, 502, GATEWAY_BAD_REPLY);
        } else {
            open_stream(self, req, body);
        }
        MHD_resume_connection(req->connection);
        self->turn->resumed = true;
        return;
    }
    if (status != 200 || !gateway_sse_page_valid(body)) {
        syn_warn(COMPONENT, "replay page failed status=%lld: closing stream path=%s",
                 (long long)status, req->path);
        gateway_sse_client_fail(req->sse);
    } else {
        gateway_sse_client_page(req->sse, json_object_get(body, "events"),
                                json_is_true(json_object_get(body, "more")),
                                json_is_true(json_object_get(body, "terminal")));
    }
    advance(self, req);
    wake(self, req);
}

void gateway_sse_routes_page_lost(gateway_sse_routes_t *self, gateway_request_t *req)
{
    req->page_pending = false;
    gateway_sse_client_fail(req->sse);
    wake(self, req);
}

/* MHD asks for the next bytes of a stream. An empty queue suspends the connection
 * until the hub (or a replay page, or a keepalive) gives it something. */
static ssize_t read_stream(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    gateway_request_t *req = cls;
    gateway_sse_routes_t *self = req->streams;
    ssize_t n = gateway_sse_client_read(req->sse, buf, max);
    advance(self, req); /* reading may have made room for the next page */
    if (n == 0)
        n = gateway_sse_client_read(req->sse, buf, max);
    if (n == GATEWAY_SSE_END)
        return MHD_CONTENT_READER_END_OF_STREAM;
    if (n == GATEWAY_SSE_ERROR)
        return MHD_CONTENT_READER_END_WITH_ERROR;
    if (n == 0 && self->turn->stopping)
        return MHD_CONTENT_READER_END_OF_STREAM;
    if (n == 0) {
        req->sse_suspended = true;
        MHD_suspend_connection(req->connection);
    }
    if (n > 0 && gateway_sse_client_queued(req->sse) > 0)
        self->turn->sse_more = true;
    return n;
}

enum MHD_Result gateway_sse_routes_respond(gateway_sse_routes_t *self, gateway_request_t *req)
{
    (void)self;
    struct MHD_Response *response = MHD_create_response_from_callback(
        MHD_SIZE_UNKNOWN, SSE_BLOCK_SIZE, read_stream, req, NULL);
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

/* An execution stream (and an activity stream given Last-Event-ID) first reads the
 * broker's log; a plain activity stream starts live at once. */
json_t *gateway_sse_routes_begin(gateway_sse_routes_t *self, gateway_request_t *req)
{
    const char *header = MHD_lookup_connection_value(req->connection, MHD_HEADER_KIND,
                                                     "Last-Event-ID");
    uint64_t after = 0;
    json_t *error = NULL;
    int status = gateway_api_last_event_id(header, &after, &error);
    if (status != 0) {
        gateway_request_set_json(req, (unsigned)status, error);
        json_decref(error);
        return NULL;
    }
    bool execution = req->route.id == GATEWAY_ROUTE_SSE_EXECUTION;
    bool replay = execution || header;
    bool has_id = true;
    if (!replay)
        has_id = gateway_hub_last_seq(self->hub, &after);
    req->streams = self;
    req->sse = gateway_sse_client_new(execution ? req->route.params[0] : NULL, after, replay,
                                      &self->limits);
    if (!req->sse || gateway_hub_add(self->hub, req->sse) != 0) {
        gateway_request_set_literal(req, 500, GATEWAY_OUT_OF_MEMORY);
        return NULL;
    }
    gateway_sse_client_set_user(req->sse, req);
    if (gateway_sse_original_stream(req->path))
        gateway_sse_client_set_original(req->sse);
    if (!replay) {
        gateway_sse_client_connect(req->sse, has_id, syn_now_us());
        req->state = REQUEST_STREAM;
        return NULL;
    }
    uint64_t page_after;
    if (!gateway_sse_client_next_page(req->sse, &page_after))
        page_after = after;
    return gateway_api_replay_args(execution ? req->route.params[0] : NULL, page_after,
                                   GATEWAY_REPLAY_PAGE);
}

static void keepalive_one(gateway_sse_client_t *client, void *cls)
{
    gateway_sse_routes_t *self = cls;
    if (gateway_sse_client_keepalive(client, syn_mono_ms(), self->keepalive_ms))
        wake(self, gateway_sse_client_user(client));
}

void gateway_sse_routes_sweep(gateway_sse_routes_t *self, int64_t now_ms)
{
    if (now_ms < self->next_sweep_ms)
        return;
    long step = self->keepalive_ms / 4;
    self->next_sweep_ms = now_ms + (step < 10 ? 10 : step > 1000 ? 1000 : step);
    gateway_hub_foreach(self->hub, keepalive_one, self);
}

int64_t gateway_sse_routes_next_due(gateway_sse_routes_t *self)
{
    gateway_hub_stats_t hub;
    gateway_hub_stats(self->hub, &hub);
    return hub.clients > 0 ? self->next_sweep_ms : -1;
}

void gateway_sse_routes_closed(gateway_sse_routes_t *self, gateway_request_t *req)
{
    if (req->sse)
        gateway_hub_remove(self->hub, req->sse);
}

static void finish_one(gateway_sse_client_t *client, void *cls)
{
    gateway_sse_client_finish(client);
    wake(cls, gateway_sse_client_user(client));
}

void gateway_sse_routes_finish_all(gateway_sse_routes_t *self)
{
    gateway_hub_foreach(self->hub, finish_one, self);
}
