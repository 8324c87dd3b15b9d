/* gateway: the loop (gateway_poll) and the HTTP request lifecycle: a request's headers
 * refused or let in, its body kept, its route answered at once, from the local view, or
 * by the broker through the broker link (gateway/broker_link.h), whose reply becomes
 * the HTTP answer. SSE routes are handed to gateway/sse_routes.h. Also here: the events
 * side that feeds the view and the streams (the SUB drained, its monitor watched, the
 * probe for events the PUB dropped). */
#include "common/metrics.h"
#include "gateway/gateway.h"
#include "gateway/http_metrics.h"
#include "common/clock.h"
#include "common/ids.h"
#include "common/log.h"
#include "gateway/access.h"
#include "gateway/api.h"
#include "gateway/broker_link.h"
#include "gateway/download.h"
#include "gateway/hub.h"
#include "gateway/listen.h"
#include "gateway/original_absent.h"
#include "gateway/original_compat.h"
#include "gateway/request.h"
#include "gateway/router.h"
#include "gateway/sse.h"
#include "gateway/sse_routes.h"
#include "gateway/timeline.h"
#include "gateway/ui.h"
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
/* Events handed to SSE streams between two runs of the HTTP side, so a burst is sent
 * as it comes rather than piled up in the clients' queues. */
#define EVENT_BATCH 32
/* Runs of the HTTP side in a row while streams still have queued frames to send. */
#define SSE_RUNS_PER_TURN 32
/* With events quiet this long and the view holding entries, the broker is asked for
 * its last seq; a seq it named that has not arrived by the next probe was lost. */
#define VIEW_PROBE_MS 1000

#define BODY_TOO_LARGE "{\"detail\":\"Request body too large\"}"
#define NOT_FOUND "{\"detail\":\"Not Found\"}"
#define METHOD_NOT_ALLOWED "{\"detail\":\"Method Not Allowed\"}"
#define GATEWAY_FULL "{\"detail\":\"Too many connections: try again shortly\"}"

struct gateway_t {
    gateway_config_t config;
    gateway_listen_t *listen;
    struct MHD_Daemon *daemon; /* the listener's */
    int epoll_fd;
    gateway_access_t *access;
    gateway_broker_link_t *link; /* the DEALER and the SUB */
    gateway_sse_routes_t *streams;
    gateway_hub_t *hub; /* the streams' */
    gateway_stats_t stats;
    gateway_view_t *view;
    zsock_t *monitor; /* the SUB's connect/disconnect events, for the view */
    bool events_up;   /* the SUB's handshake succeeded and it has not disconnected since */
    /* A ZeroMQ socket's descriptor only tells that its state may have changed, and not
     * again until the socket has been read to the end (or its events asked for): these
     * say a socket may hold messages its descriptor will not announce. */
    bool sub_check, monitor_check;
    int sub_fd, monitor_fd; /* those descriptors */
    char probe_marker;    /* its address stands for the view's probe in the pending table */
    bool probe_pending;
    bool probe_answered;      /* probe_last holds the broker's last seq at the last probe */
    uint64_t probe_last;
    int64_t next_probe_ms;
    int64_t last_event_ms;    /* when the SUB last gave an event */
    gateway_turn_t turn;      /* what this turn must still run */
    gateway_http_metrics_t *http_metrics; /* its own figures for GET /metrics */
};

/* Queues the answer on the connection (only valid inside the access handler). */
static enum MHD_Result request_respond(gateway_request_t *req)
{
    if (req->prepared) {
        enum MHD_Result rc = MHD_queue_response(req->connection, req->status, req->prepared);
        MHD_destroy_response(req->prepared);
        req->prepared = NULL;
        req->state = REQUEST_DONE;
        return rc;
    }
    char *text = req->answer;
    req->answer = NULL;
    if (!text) {
        req->status = 500;
        text = strdup(GATEWAY_OUT_OF_MEMORY);
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
    if (req->replayed)
        MHD_add_response_header(response, "Idempotent-Replayed", "true");
    if (req->status == MHD_HTTP_UNAUTHORIZED)
        gateway_access_challenge(req->gateway->access, response);
    if (req->close)
        MHD_add_response_header(response, MHD_HTTP_HEADER_CONNECTION, "close");
    enum MHD_Result rc = MHD_queue_response(req->connection, req->status, response);
    MHD_destroy_response(response);
    req->state = REQUEST_DONE;
    return rc;
}

static const char *lookup_query(void *cls, const char *name)
{
    gateway_request_t *req = cls;
    return MHD_lookup_connection_value(req->connection, MHD_GET_ARGUMENT_KIND, name);
}

/* Sends the request to the broker and suspends the connection until the reply or the
 * deadline. Sets an immediate answer instead when the broker cannot take it. */
static void request_send(gateway_t *self, gateway_request_t *req, syn_op_t op, json_t *args)
{
    if (self->turn.stopping) {
        gateway_request_set_unavailable(req);
        return;
    }
    long timeout = req->health ? self->config.health_timeout_ms : self->config.request_timeout_ms;
    switch (gateway_broker_link_send(self->link, op, args, timeout, req, &req->corr)) {
    case GATEWAY_SENT:
        req->state = REQUEST_WAITING;
        MHD_suspend_connection(req->connection);
        return;
    case GATEWAY_SEND_NO_MEMORY:
        gateway_request_set_literal(req, 500, GATEWAY_OUT_OF_MEMORY);
        return;
    case GATEWAY_SEND_TOO_LARGE:
        gateway_request_set_literal(req, 413, BODY_TOO_LARGE);
        return;
    case GATEWAY_SEND_UNAVAILABLE:
        gateway_request_set_unavailable(req);
        return;
    }
}

static bool is_control(gateway_route_id_t id)
{
    return id == GATEWAY_ROUTE_EXECUTION_CANCEL || id == GATEWAY_ROUTE_EXECUTION_PAUSE ||
           id == GATEWAY_ROUTE_EXECUTION_RESUME || id == GATEWAY_ROUTE_EXECUTION_INJECT ||
           id == GATEWAY_ROUTE_EXECUTION_APPROVE || id == GATEWAY_ROUTE_EXECUTION_REJECT;
}

/* A status read the local view can vouch for is answered from its ready text (a full
 * id of that workflow); anything else, errors included, is the broker's to answer. */
static bool view_answer(gateway_t *self, gateway_request_t *req)
{
    const char *text;
    size_t len;
    if (!gateway_view_get(self->view, req->route.params[0], req->route.params[1], &text, &len))
        return false;
    char *copy = malloc(len + 1);
    if (!copy)
        return false;
    memcpy(copy, text, len + 1);
    gateway_request_set_answer(req, 200, copy);
    return true;
}

/* The whole request is in: answer it at once, or hand it to the broker. */
static void request_dispatch(gateway_t *self, gateway_request_t *req)
{
    if (req->body_too_large) {
        gateway_request_set_literal(req, 413, BODY_TOO_LARGE);
        return;
    }
    if (req->match == GATEWAY_MATCH_NOT_FOUND) {
        bool original;
        json_t *absent = gateway_absent_answer(gateway_route_path(req->path, &original));
        if (absent)
            gateway_request_set_json(req, 501, absent);
        else
            gateway_request_set_literal(req, 404, NOT_FOUND);
        json_decref(absent);
        return;
    }
    if (req->match == GATEWAY_MATCH_METHOD_NOT_ALLOWED) {
        gateway_request_set_literal(req, 405, METHOD_NOT_ALLOWED);
        return;
    }
    if (req->route.id == GATEWAY_ROUTE_UI_REDIRECT || req->route.id == GATEWAY_ROUTE_UI_FILE) {
        req->prepared = gateway_ui_response(
            &req->route,
            MHD_lookup_connection_value(req->connection, MHD_HEADER_KIND,
                                        MHD_HTTP_HEADER_IF_NONE_MATCH),
            &req->status);
        if (req->prepared)
            req->state = REQUEST_ANSWERED;
        else
            gateway_request_set_literal(req, 500, GATEWAY_OUT_OF_MEMORY);
        return;
    }
    if (req->route.id == GATEWAY_ROUTE_WHOAMI) {
        json_t *caller = gateway_access_whoami(self->access, req->connection, &req->route);
        if (caller)
            gateway_request_set_json(req, 200, caller);
        else
            gateway_request_set_literal(req, 500, GATEWAY_OUT_OF_MEMORY);
        json_decref(caller);
        return;
    }
    if (req->route.id == GATEWAY_ROUTE_SSE_EXECUTION ||
        req->route.id == GATEWAY_ROUTE_SSE_ACTIVITY) {
        /* The stream's first replay page is the request's broker request. */
        json_t *first_page = gateway_sse_routes_begin(self->streams, req);
        if (first_page)
            request_send(self, req, SYN_OP_EVENTS_REPLAY, first_page);
        json_decref(first_page);
        return;
    }
    syn_op_t op;
    json_t *args = NULL, *error = NULL;
    const char *content_type = MHD_lookup_connection_value(req->connection, MHD_HEADER_KIND,
                                                           MHD_HTTP_HEADER_CONTENT_TYPE);
    if (req->route.id == GATEWAY_ROUTE_EXECUTION_STATUS && view_answer(self, req))
        return;
    /* The original's request shapes first (gateway/original_compat.h), then syn's. */
    int status = gateway_compat_request(&req->route, req->original, content_type,
                                        req->body ? req->body : "", req->body_len, lookup_query,
                                        req, &op, &args, &error, &req->compat);
    if (status < 0)
        status = gateway_api_request(&req->route, content_type, req->body ? req->body : "",
                                     req->body_len, lookup_query, req, &op, &args, &error);
    if (status == 0 && req->route.id == GATEWAY_ROUTE_EXECUTION_START)
        status = gateway_api_idempotency_key(
            MHD_lookup_connection_value(req->connection, MHD_HEADER_KIND, "Idempotency-Key"),
            args, &error);
    if (status != 0) {
        gateway_request_set_json(req, (unsigned)status, error);
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


static gateway_request_t *request_new(gateway_t *self, struct MHD_Connection *connection,
                              const char *method, const char *url)
{
    gateway_request_t *req = calloc(1, sizeof *req);
    if (!req)
        return NULL;
    req->gateway = self;
    req->connection = connection;
    req->started_ms = syn_mono_ms();
    snprintf(req->method, sizeof req->method, "%s", method);
    snprintf(req->path, sizeof req->path, "%s", url);
    req->match = gateway_route_match(method, gateway_route_path(url, &req->original), &req->route);
    req->health = req->match == GATEWAY_MATCH_OK && req->route.id == GATEWAY_ROUTE_HEALTH;
    return req;
}
/* The headers are in: a request past the connection limit, or from a caller who may
 * not make it, is answered at once, before any body is read (MHD then closes the
 * connection). True when it was. */

static bool request_refused(gateway_t *self, gateway_request_t *req)
{
    if (gateway_listen_full(self->listen)) {
        self->stats.refused_full++;
        gateway_request_set_literal(req, 503, GATEWAY_FULL);
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
    gateway_request_set_json(req, status, body);
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
    gateway_request_t *req = *con_cls;
    if (!req) {
        req = request_new(self, connection, method, url);
        if (!req)
            return MHD_NO;
        *con_cls = req;
        if (request_refused(self, req))
            return request_respond(req);
        if (content_length_too_large(connection)) {
            /* Refuse before reading it; MHD then closes the connection. */
            gateway_request_set_literal(req, 413, BODY_TOO_LARGE);
            return request_respond(req);
        }
        return MHD_YES;
    }
    if (*upload_data_size) {
        gateway_request_append(req, upload_data, *upload_data_size);
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
        return gateway_sse_routes_respond(self->streams, req);
    if (req->state == REQUEST_DOWNLOAD)
        return gateway_download_respond(req);
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
    gateway_request_t *req = *con_cls;
    if (!req)
        return;
    /* Still listed as waiting only when MHD gives up on it (shutdown): a late
     * reply must not find it. */
    if (req->state == REQUEST_WAITING || req->page_pending || gateway_download_pending(req))
        gateway_broker_link_forget(self->link, req->corr);
    gateway_sse_routes_closed(self->streams, req);
    if (req->status && self->http_metrics)
        gateway_http_metrics_observe(
            self->http_metrics, req->method,
            req->match == GATEWAY_MATCH_OK ? gateway_route_pattern(req->route.id) : "unmatched",
            req->status, (double)(syn_mono_ms() - req->started_ms) / 1000.0);
    syn_debug(COMPONENT, "http method=%s path=%s status=%u ms=%lld%s", req->method, req->path,
              req->status, (long long)(syn_mono_ms() - req->started_ms),
              toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "" : " aborted=1");
    gateway_request_free(req);
    *con_cls = NULL;
}


/* The answer of a route whose reply is not passed on as JSON (a text, an SVG, a
 * YAML file), or the reply as it came. */
static void answer_from_reply(gateway_request_t *req, json_int_t status, json_t *body)
{
    unsigned shaped_status = (unsigned)status;
    json_t *shaped = body ? gateway_compat_answer(&req->route, req->original, req->compat,
                                                  &shaped_status, body)
                          : NULL;
    if (shaped) {
        gateway_request_set_json(req, shaped_status, shaped);
        json_decref(shaped);
    } else if (status == 502 && !body) {
        gateway_request_set_literal(req, 502, GATEWAY_BAD_REPLY);
    } else if (req->route.id == GATEWAY_ROUTE_EXECUTION_START && status == 200 &&
               json_is_true(json_object_get(body, SYN_OP_REPLAYED))) {
        /* The broker's mark of a replay becomes a header: the body is the first one. */
        json_object_del(body, SYN_OP_REPLAYED);
        req->replayed = true;
        gateway_request_set_json(req, 200, body);
    } else if (req->route.id == GATEWAY_ROUTE_PHASE_OUTPUT && status == 200) {
        /* The one text answer: the phase's whole output as it was produced. */
        const char *output = json_string_value(json_object_get(body, "output"));
        char *text = output ? strdup(output) : NULL;
        if (!output)
            gateway_request_set_literal(req, 502, GATEWAY_BAD_REPLY);
        else if (!text)
            gateway_request_set_literal(req, 500, GATEWAY_OUT_OF_MEMORY);
        else {
            gateway_request_set_answer(req, 200, text);
            req->content_type = "text/plain; charset=utf-8";
        }
    } else if (req->route.id == GATEWAY_ROUTE_EXECUTION_TIMELINE && status == 200) {
        char why[128];
        char *svg = timeline_render_svg(body, syn_now_us(), why, sizeof why);
        if (svg) {
            gateway_request_set_answer(req, 200, svg);
            req->content_type = "image/svg+xml";
        } else {
            json_t *detail = json_pack("{s:s}", "detail", why);
            gateway_request_set_json(req, 409, detail);
            json_decref(detail);
        }
    } else if (req->route.id == GATEWAY_ROUTE_METRICS && status == 200) {
        gateway_t *self = req->gateway;
        gateway_hub_stats_t hub;
        gateway_hub_stats(self->hub, &hub);
        char *text = self->http_metrics
                         ? gateway_http_metrics_render(self->http_metrics,
                                                       json_object_get(body, "families"),
                                                       hub.clients)
                         : NULL;
        if (text) {
            gateway_request_set_answer(req, 200, text);
            req->content_type = SYN_METRICS_CONTENT_TYPE;
        } else {
            gateway_request_set_literal(req, 500, GATEWAY_OUT_OF_MEMORY);
        }
    } else if (req->route.id == GATEWAY_ROUTE_WORKFLOW_EXPORT && status == 200) {
        char *yaml = NULL;
        json_t *error = NULL;
        int export_status = gateway_yaml_export(body, &yaml, &error);
        if (export_status == 200) {
            gateway_request_set_answer(req, 200, yaml);
            req->content_type = GATEWAY_YAML_CONTENT_TYPE;
        } else {
            syn_warn(COMPONENT, "cannot export a workflow as YAML path=%s", req->path);
            gateway_request_set_json(req, (unsigned)export_status, error);
        }
        json_decref(error);
    } else {
        gateway_request_set_json(req, (unsigned)status, body);
        /* The broker's 503s (storage full, not ready) pass: try again shortly. */
        req->retry_after = status == 503;
    }
}

/* The view's probe answered: the broker's log goes up to last_seq. */
static void probe_reply(gateway_t *self, json_int_t status, json_t *body)
{
    json_t *last = json_object_get(body, "last_seq");
    self->probe_pending = false;
    self->probe_answered = status == 200 && json_is_integer(last);
    self->probe_last = (uint64_t)json_integer_value(last);
    if (self->probe_answered)
        gateway_sse_routes_catch_up(self->streams, self->probe_last);
}

/* Applies one broker reply to what waits for it (the broker link matched it by id).
 * Returns true when a connection was resumed. */
static bool on_reply(void *item, json_int_t status, json_t *body, void *cls)
{
    gateway_t *self = cls;
    if (gateway_sse_routes_is_fill(self->streams, item)) {
        gateway_sse_routes_fill_reply(self->streams, status, body);
        return false;
    }
    if (item == &self->probe_marker) {
        probe_reply(self, status, body);
        return false;
    }
    gateway_request_t *req = item;
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
        gateway_sse_routes_page(self->streams, req, status, body);
        return false; /* it resumes what it must */
    }
    if (req->download) {
        gateway_download_range(req, status, body);
        return false; /* it resumes what it must */
    }
    if (status == 200 && (req->route.id == GATEWAY_ROUTE_ARTIFACT_GET ||
                          req->route.id == GATEWAY_ROUTE_ARTIFACT_TAR ||
                          req->route.id == GATEWAY_ROUTE_ARTIFACT_ZIP))
        gateway_download_begin(req, body, self->link, self->config.request_timeout_ms,
                               &self->turn);
    else
        answer_from_reply(req, status, body);
    MHD_resume_connection(req->connection);
    return true;
}

/* No reply will come for item: a waiting request is answered 503, a stream waiting
 * for a replay page is cut (it may resume with Last-Event-ID), a gap fill gives up. */
static void on_no_reply(void *item, void *cls)
{
    gateway_t *self = cls;
    if (item == &self->probe_marker) {
        self->probe_pending = false;
        return;
    }
    if (gateway_sse_routes_is_fill(self->streams, item)) {
        gateway_sse_routes_fill_lost(self->streams);
        return;
    }
    gateway_request_t *req = item;
    if (req->download) {
        gateway_download_range(req, 0, NULL);
        return;
    }
    if (req->state != REQUEST_WAITING) {
        gateway_sse_routes_page_lost(self->streams, req);
        return;
    }
    gateway_request_set_unavailable(req);
    MHD_resume_connection(req->connection);
    self->turn.resumed = true;
}

/* MHD sends at most one buffer per connection per run: run it again while streams
 * have more to send (or connections were resumed), a bounded number of times. */
static void run_http(gateway_t *self)
{
    for (int i = 0; i < SSE_RUNS_PER_TURN && (self->turn.resumed || self->turn.sse_more); i++) {
        self->turn.resumed = false;
        self->turn.sse_more = false;
        MHD_run(self->daemon);
    }
}

/* Retention deleted these executions: the view must not answer for them. */
static void forget_deleted(gateway_t *self, const json_t *fields)
{
    const char *type = json_string_value(json_object_get(fields, "type"));
    if (!type || strcmp(type, "ExecutionsDeleted") != 0)
        return;
    size_t i;
    const json_t *id;
    json_array_foreach(json_object_get(json_object_get(fields, "data"), "execution_ids"), i, id)
        gateway_view_forget(self->view, json_string_value(id));
}

/* Hands every event from the SUB to the local view and to the SSE streams it
 * concerns (or asks for the range the PUB dropped). */
static void drain_events(gateway_t *self)
{
    void *socket = zsock_resolve(gateway_broker_link_events(self->link));
    for (int i = 0; i < GATEWAY_DRAIN_BUDGET; i++) {
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
        if (frame) {
            gateway_view_event(self->view, gateway_sse_frame_seq(frame),
                               json_object_get(syn_msg_fields(msg), "status"));
            forget_deleted(self, syn_msg_fields(msg));
        }
        syn_msg_destroy(&msg);
        if (!frame) {
            self->stats.bad_messages++;
            syn_warn(COMPONENT, "unusable event from broker: %s", err);
            continue;
        }
        self->stats.events++;
        self->last_event_ms = syn_mono_ms();
        gateway_sse_routes_live(self->streams, frame);
        gateway_sse_frame_unref(&frame);
    }
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
        char endpoint[256] = "";
        while (more) { /* the endpoint frame */
            zmq_msg_init(&frame);
            int n = zmq_msg_recv(&frame, socket, ZMQ_DONTWAIT);
            more = n >= 0 && zmq_msg_more(&frame);
            if (n > 0 && (size_t)n < sizeof endpoint && !endpoint[0]) {
                memcpy(endpoint, zmq_msg_data(&frame), (size_t)n);
                endpoint[n] = '\0';
            }
            zmq_msg_close(&frame);
        }
        /* With several brokers, news of one the gateway left is stale. */
        if (!first || !gateway_broker_link_concerns(self->link, endpoint))
            continue;
        if (event == ZMQ_EVENT_CONNECTED) {
            syn_debug(COMPONENT, "events connected: local view starts over");
            gateway_view_set_connected(self->view, true);
        } else if (event == ZMQ_EVENT_HANDSHAKE_SUCCEEDED) {
            self->events_up = true;
            gateway_broker_link_admitted(self->link);
        } else if (event == ZMQ_EVENT_DISCONNECTED) {
            if (self->events_up)
                syn_info(COMPONENT, "events disconnected: status reads go to the broker");
            self->events_up = false;
            gateway_broker_link_lost(self->link);
            gateway_view_set_connected(self->view, false);
        } else {
            gateway_broker_link_refused(self->link, event);
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
    if (zmq_socket_monitor(zsock_resolve(gateway_broker_link_events(self->link)), endpoint,
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
 * SSE streams catch up at once (gateway_sse_routes_catch_up). */
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
    json_t *args = gateway_api_replay_args(NULL, last, 1);
    if (args && gateway_broker_link_send(self->link, SYN_OP_EVENTS_REPLAY, args,
                                         self->config.request_timeout_ms, &self->probe_marker,
                                         NULL) == GATEWAY_SENT)
        self->probe_pending = true;
    json_decref(args);
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

/* The earlier of two moments, -1 standing for never. */
static int64_t earliest(int64_t a, int64_t b)
{
    return a < 0 || (b >= 0 && b < a) ? b : a;
}

int gateway_poll(gateway_t *self, long max_wait_ms)
{
    long timeout = max_wait_ms < 0 ? 0 : max_wait_ms;
    int64_t now = syn_mono_ms();
    int64_t http_due = http_due_ms(self, now);
    if (http_due - now < timeout)
        timeout = (long)(http_due - now);
    int64_t deadline = earliest(gateway_broker_link_next_due(self->link),
                                gateway_sse_routes_next_due(self->streams));
    gateway_hub_stats_t hub;
    gateway_hub_stats(self->hub, &hub);
    gateway_view_stats_t view;
    gateway_view_stats(self->view, &view);
    if (view.entries > 0 || hub.clients > 0)
        deadline = earliest(deadline, self->next_probe_ms);
    if (deadline >= 0) {
        int64_t until = deadline - syn_mono_ms();
        if (until < timeout)
            timeout = until < 0 ? 0 : (long)until;
    }
    /* zmq_poll would ask each socket for its events before and after waiting, a few
     * system calls each; the descriptors and the check flags say the same for less. */
    struct pollfd fds[] = {
        {gateway_broker_link_fd(self->link), POLLIN, 0},
        {self->sub_fd, POLLIN, 0},
        {self->epoll_fd, POLLIN, 0},
        {self->monitor_fd, POLLIN, 0},
    };
    if (gateway_broker_link_may_read(self->link) || self->sub_check ||
        (self->monitor && self->monitor_check))
        timeout = 0;
    if (poll(fds, self->monitor ? 4 : 3, timeout > INT_MAX ? INT_MAX : (int)timeout) < 0) {
        if (errno == EINTR)
            return 0;
        syn_error(COMPONENT, "poll failed: %s", strerror(errno));
        return -1;
    }
    if (fds[0].revents != 0)
        gateway_broker_link_woken(self->link);
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
        self->turn.resumed = true;
    run_http(self);
    if (gateway_broker_link_drain(self->link, on_reply, self) > 0)
        self->turn.resumed = true;
    gateway_broker_link_expire(self->link, syn_mono_ms(), on_no_reply, self);
    if (self->sub_check)
        drain_events(self);
    view_probe(self);
    gateway_sse_routes_sweep(self->streams, syn_mono_ms());
    gateway_broker_link_redial_when_due(self->link, syn_mono_ms());
    gateway_broker_link_follow_when_due(self->link, syn_mono_ms());
    /* Resumed connections are handled now rather than on the next turn. */
    run_http(self);
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
    self->epoll_fd = -1;
    self->sub_check = self->monitor_check = true;
    self->view = gateway_view_new(GATEWAY_VIEW_CAPACITY, GATEWAY_VIEW_MAX_BYTES);
    self->http_metrics = gateway_http_metrics_new();
    if (!self->view || !self->http_metrics) {
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
        self->link = gateway_broker_link_new(config->broker, config->events, curve, err, errlen);
    }
    syn_curve_destroy(&curve);
    if (!self->link)
        goto fail;
    self->streams = gateway_sse_routes_new(self->link, &self->turn, self->config.sse_keepalive_ms,
                                           self->config.sse_buffer_bytes,
                                           self->config.request_timeout_ms);
    if (!self->streams) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    self->hub = gateway_sse_routes_hub(self->streams);
    /* The monitor, and its reader, before the SUB connects: zmq drops the events of a
     * socket nobody monitors yet, and a missed CONNECTED would leave the view
     * disconnected (every status read to the broker) until the next reconnect. A
     * loaded machine finishes a loopback connect before the next line often enough. */
    monitor_start(self);
    if (gateway_broker_link_connect(self->link, err, errlen) != 0)
        goto fail;
    self->sub_fd = zsock_fd(gateway_broker_link_events(self->link));
    self->monitor_fd = self->monitor ? zsock_fd(self->monitor) : -1;
    return self;
fail:
    gateway_destroy(&self);
    return NULL;
}

void gateway_destroy(gateway_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    gateway_t *self = *self_p;
    if (self->daemon && self->link && self->streams) {
        /* MHD must not be stopped with suspended connections (it aborts the process):
         * answer every waiting request, end every stream, and let MHD send what that
         * resumed. From here on nothing suspends a connection again: a request MHD
         * reads only now gets 503 at once, and a stream with nothing left ends. */
        self->turn.stopping = true;
        gateway_broker_link_abandon(self->link, on_no_reply, self);
        gateway_sse_routes_finish_all(self->streams);
        MHD_run(self->daemon);
    }
    gateway_listen_destroy(&self->listen);
    gateway_access_destroy(&self->access);
    if (self->monitor) {
        zmq_socket_monitor(zsock_resolve(gateway_broker_link_events(self->link)), NULL, 0);
        zsock_destroy(&self->monitor);
    }
    gateway_broker_link_destroy(&self->link);
    gateway_sse_routes_destroy(&self->streams);
    gateway_view_destroy(&self->view);
    gateway_http_metrics_destroy(&self->http_metrics);
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
    gateway_broker_link_stats_t link;
    gateway_broker_link_stats(self->link, &link);
    stats->requests_sent = link.requests_sent;
    stats->replies = link.replies;
    stats->timeouts = link.timeouts;
    stats->late_replies = link.late_replies;
    stats->send_failures = link.send_failures;
    stats->bad_messages += link.bad_messages;
    stats->in_flight = link.in_flight;
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
