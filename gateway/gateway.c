#include "gateway/gateway.h"
#include "common/clock.h"
#include "common/log.h"
#include "gateway/api.h"
#include "gateway/pending.h"
#include "gateway/router.h"
#include "proto/msg.h"

#include <czmq.h>
#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define COMPONENT "gateway"
/* Messages handled per socket per loop turn, so a flood on one side cannot starve
 * the others. */
#define DRAIN_BUDGET 1024
/* Requests queued towards a connected broker before sends fail (→ 503 at once). */
#define BROKER_SNDHWM 1000
/* Replies and events queued towards us; we drain them every turn. */
#define BROKER_RCVHWM 100000
#define EVENTS_RCVHWM 10000
/* Idle keep-alive connections are closed after this long. */
#define HTTP_IDLE_TIMEOUT_S 60
#define HTTP_LISTEN_BACKLOG 1024

#define BODY_TOO_LARGE "{\"detail\":\"Request body too large\"}"
#define BROKER_UNAVAILABLE "{\"detail\":\"broker unavailable\"}"
#define BROKER_DOWN_HEALTH "{\"status\":\"degraded\",\"broker\":\"down\",\"workers\":0}"
#define NOT_FOUND "{\"detail\":\"Not Found\"}"
#define METHOD_NOT_ALLOWED "{\"detail\":\"Method Not Allowed\"}"
#define BAD_REPLY "{\"detail\":\"invalid reply from broker\"}"
#define OUT_OF_MEMORY "{\"detail\":\"gateway out of memory\"}"

typedef enum {
    REQUEST_RECEIVING, /* headers in, body arriving */
    REQUEST_WAITING,   /* sent to the broker, connection suspended */
    REQUEST_ANSWERED,  /* status and body known, response to be queued */
    REQUEST_DONE,      /* response queued */
} request_state_t;

/* One HTTP request, from its headers to the completion callback (MHD's con_cls). */
typedef struct {
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
    uint64_t corr; /* correlation id while REQUEST_WAITING */
    unsigned status;
    char *answer; /* JSON text (malloc'd) */
    bool retry_after;
} request_t;

struct gateway_t {
    gateway_config_t config;
    struct MHD_Daemon *daemon;
    int epoll_fd;
    int port;
    zsock_t *dealer;
    zsock_t *sub;
    gateway_pending_t *pending;
    uint64_t next_corr;
    gateway_stats_t stats;
    bool broker_silent;       /* we logged that the broker stopped answering */
    int64_t broker_warned_ms; /* when */
    char mhd_error[256]; /* MHD's last complaint, to explain a failed start */
};

/* MHD's diagnostics go to our log; the last one also explains a failed start. */
static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    gateway_t *self = cls;
    vsnprintf(self->mhd_error, sizeof self->mhd_error, fmt, ap);
    size_t len = strlen(self->mhd_error);
    while (len && (self->mhd_error[len - 1] == '\n' || self->mhd_error[len - 1] == '\r'))
        self->mhd_error[--len] = '\0';
    syn_warn(COMPONENT, "http: %s", self->mhd_error);
}

static void request_set_answer(request_t *req, unsigned status, char *json_text)
{
    free(req->answer);
    req->status = status;
    req->answer = json_text;
    req->state = REQUEST_ANSWERED;
}

static void request_set_literal(request_t *req, unsigned status, const char *json_text)
{
    request_set_answer(req, status, strdup(json_text));
}

static void request_set_json(request_t *req, unsigned status, json_t *body)
{
    char *text = json_dumps(body, JSON_COMPACT | JSON_ENCODE_ANY);
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
    MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    if (req->status == MHD_HTTP_METHOD_NOT_ALLOWED && req->route.allow[0])
        MHD_add_response_header(response, MHD_HTTP_HEADER_ALLOW, req->route.allow);
    if (req->retry_after)
        MHD_add_response_header(response, MHD_HTTP_HEADER_RETRY_AFTER, "1");
    enum MHD_Result rc = MHD_queue_response(req->connection, req->status, response);
    MHD_destroy_response(response);
    req->state = REQUEST_DONE;
    return rc;
}

static void request_free(request_t *req)
{
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

/* Sends the request to the broker and suspends the connection until the reply or the
 * deadline. Sets an immediate answer instead when the broker cannot take it. */
static void request_send(gateway_t *self, request_t *req, const char *op, json_t *args)
{
    uint64_t corr = self->next_corr++;
    long timeout = req->health ? self->config.health_timeout_ms : self->config.request_timeout_ms;
    if (gateway_pending_add(self->pending, corr, syn_mono_ms() + timeout, req) != 0) {
        request_set_literal(req, 500, OUT_OF_MEMORY);
        return;
    }
    syn_msg_t *msg = syn_msg_new_with(SYN_MSG_REQUEST,
                                      json_pack("{s:I, s:s, s:O}", "id", (json_int_t)corr,
                                                "op", op, "args", args));
    int rc = -1;
    errno = ENOMEM;
    if (msg)
        rc = syn_msg_send(zsock_resolve(self->dealer), NULL, 0, msg);
    int send_errno = errno;
    syn_msg_destroy(&msg);
    if (rc != 0) {
        gateway_pending_take(self->pending, corr);
        if (send_errno == EINVAL) {
            /* The shape was checked, so only the message's element budget (msg.h) can
             * refuse it: a body too big to pass on. */
            syn_warn(COMPONENT, "request too large to encode op=%s", op);
            request_set_literal(req, 413, BODY_TOO_LARGE);
            return;
        }
        self->stats.send_failures++;
        syn_debug(COMPONENT, "broker send failed op=%s error=%s", op, strerror(send_errno));
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
    const char *op = NULL;
    json_t *args = NULL, *error = NULL;
    int status = gateway_api_request(&req->route, req->body ? req->body : "", req->body_len,
                                     lookup_query, req, &op, &args, &error);
    if (status != 0)
        request_set_json(req, (unsigned)status, error);
    else
        request_send(self, req, op, args);
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

static request_t *request_new(struct MHD_Connection *connection, const char *method,
                              const char *url)
{
    request_t *req = calloc(1, sizeof *req);
    if (!req)
        return NULL;
    req->connection = connection;
    req->started_ms = syn_mono_ms();
    snprintf(req->method, sizeof req->method, "%s", method);
    snprintf(req->path, sizeof req->path, "%s", url);
    req->match = gateway_route_match(method, url, &req->route);
    req->health = req->match == GATEWAY_MATCH_OK && req->route.id == GATEWAY_ROUTE_HEALTH;
    return req;
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
        req = request_new(connection, method, url);
        if (!req)
            return MHD_NO;
        *con_cls = req;
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
    if (req->state == REQUEST_RECEIVING)
        request_dispatch(self, req);
    if (req->state == REQUEST_ANSWERED)
        return request_respond(req);
    if (req->state == REQUEST_WAITING)
        return MHD_YES;
    syn_error(COMPONENT, "request called again after its response path=%s", req->path);
    return MHD_NO;
}

static void on_completed(void *cls, struct MHD_Connection *connection, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)connection;
    gateway_t *self = cls;
    request_t *req = *con_cls;
    if (!req)
        return;
    /* Still listed as waiting only when MHD gives up on it (shutdown): a late
     * reply must not find it. */
    if (req->state == REQUEST_WAITING)
        gateway_pending_take(self->pending, req->corr);
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
    request_t *req = gateway_pending_take(self->pending, corr);
    if (!req) {
        self->stats.late_replies++;
        syn_debug(COMPONENT, "dropped late reply id=%llu", (unsigned long long)corr);
        return false;
    }
    self->stats.replies++;
    note_broker(self, true, NULL);
    json_int_t status = json_integer_value(json_object_get(fields, "status"));
    if (status < 200 || status > 599) {
        syn_warn(COMPONENT, "broker replied with status=%lld", (long long)status);
        request_set_literal(req, 502, BAD_REPLY);
    } else {
        request_set_json(req, (unsigned)status, json_object_get(fields, "body"));
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
        if (rc == -1)
            break;
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

/* Events are only counted for now (SSE will stream them); reading them keeps the
 * SUB's queue, and so our memory, bounded. */
static void drain_events(gateway_t *self)
{
    void *socket = zsock_resolve(self->sub);
    for (int i = 0; i < DRAIN_BUDGET; i++) {
        zmq_msg_t frame;
        zmq_msg_init(&frame);
        if (zmq_msg_recv(&frame, socket, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&frame);
            return;
        }
        bool more = zmq_msg_more(&frame);
        zmq_msg_close(&frame);
        if (!more)
            self->stats.events++;
    }
}

static size_t expire_requests(gateway_t *self)
{
    size_t resumed = 0;
    int64_t now = syn_mono_ms();
    request_t *req;
    while ((req = gateway_pending_expire(self->pending, now))) {
        self->stats.timeouts++;
        syn_debug(COMPONENT, "broker timeout id=%llu path=%s", (unsigned long long)req->corr,
                  req->path);
        note_broker(self, false, "no reply in time");
        request_set_unavailable(req);
        MHD_resume_connection(req->connection);
        resumed++;
    }
    return resumed;
}

int gateway_poll(gateway_t *self, long max_wait_ms)
{
    long timeout = max_wait_ms < 0 ? 0 : max_wait_ms;
    MHD_UNSIGNED_LONG_LONG mhd_timeout;
    if (MHD_get_timeout(self->daemon, &mhd_timeout) == MHD_YES &&
        mhd_timeout < (MHD_UNSIGNED_LONG_LONG)timeout)
        timeout = (long)mhd_timeout;
    int64_t deadline = gateway_pending_next_deadline(self->pending);
    if (deadline >= 0) {
        int64_t until = deadline - syn_mono_ms();
        if (until < timeout)
            timeout = until < 0 ? 0 : (long)until;
    }
    zmq_pollitem_t items[] = {
        {zsock_resolve(self->dealer), 0, ZMQ_POLLIN, 0},
        {zsock_resolve(self->sub), 0, ZMQ_POLLIN, 0},
        {NULL, self->epoll_fd, ZMQ_POLLIN, 0},
    };
    if (zmq_poll(items, 3, timeout) < 0) {
        if (errno == EINTR)
            return 0;
        syn_error(COMPONENT, "poll failed: %s", zmq_strerror(errno));
        return -1;
    }
    MHD_run(self->daemon);
    size_t resumed = drain_replies(self) + expire_requests(self);
    drain_events(self);
    /* Resumed connections are handled now rather than on the next turn. */
    if (resumed)
        MHD_run(self->daemon);
    return 0;
}

/* Splits "HOST:PORT" ("[v6]:PORT", ":PORT" for all interfaces) into a socket address. */
static int parse_listen_address(const char *text, struct sockaddr_storage *addr, char *err,
                                size_t errlen)
{
    const char *colon = strrchr(text, ':');
    if (!colon || !colon[1]) {
        snprintf(err, errlen, "bad --http address '%s': want HOST:PORT", text);
        return -1;
    }
    char host[256];
    size_t host_len = (size_t)(colon - text);
    if (host_len >= sizeof host) {
        snprintf(err, errlen, "bad --http address '%s': host too long", text);
        return -1;
    }
    memcpy(host, text, host_len);
    host[host_len] = '\0';
    if (host_len >= 2 && host[0] == '[' && host[host_len - 1] == ']') {
        memmove(host, host + 1, host_len - 2);
        host[host_len - 2] = '\0';
    }
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (*end || port < 0 || port > 65535) {
        snprintf(err, errlen, "bad --http address '%s': port must be 0..65535", text);
        return -1;
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *found = NULL;
    int rc = getaddrinfo(host[0] ? host : NULL, colon + 1, &hints, &found);
    if (rc != 0) {
        snprintf(err, errlen, "bad --http address '%s': %s", text, gai_strerror(rc));
        return -1;
    }
    memcpy(addr, found->ai_addr, found->ai_addrlen);
    freeaddrinfo(found);
    return 0;
}

static zsock_t *broker_socket(int type, const char *endpoint, int rcvhwm, char *err,
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
    if (zsock_connect(sock, "%s", endpoint) != 0) {
        snprintf(err, errlen, "cannot connect to '%s': %s", endpoint, zmq_strerror(errno));
        zsock_destroy(&sock);
        return NULL;
    }
    return sock;
}

gateway_t *gateway_new(const gateway_config_t *config, char *err, size_t errlen)
{
    gateway_t *self = calloc(1, sizeof *self);
    if (!self) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    self->config = *config;
    self->next_corr = 1;
    self->epoll_fd = -1;
    struct sockaddr_storage addr;
    self->pending = gateway_pending_new();
    if (!self->pending) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    if (parse_listen_address(config->http, &addr, err, errlen) != 0)
        goto fail;
    self->dealer = broker_socket(ZMQ_DEALER, config->broker, BROKER_RCVHWM, err, errlen);
    if (!self->dealer)
        goto fail;
    self->sub = broker_socket(ZMQ_SUB, config->events, EVENTS_RCVHWM, err, errlen);
    if (!self->sub)
        goto fail;

    unsigned flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
    if (addr.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    self->daemon = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, self, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, self,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr, MHD_OPTION_NOTIFY_COMPLETED,
        on_completed, self, MHD_OPTION_CONNECTION_LIMIT, (unsigned)config->max_connections,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)HTTP_IDLE_TIMEOUT_S,
        MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned)HTTP_LISTEN_BACKLOG, MHD_OPTION_END);
    if (!self->daemon) {
        /* MHD says "Failed to bind to port 0: <reason>" (we bind by address): keep the
         * reason, which is what the user can act on. */
        const char *reason = strrchr(self->mhd_error, ':');
        if (reason && reason[1] == ' ' && reason[2])
            reason += 2;
        else
            reason = self->mhd_error[0] ? self->mhd_error : "libmicrohttpd refused to start";
        snprintf(err, errlen, "cannot listen on %s: %s", config->http, reason);
        goto fail;
    }
    const union MHD_DaemonInfo *info =
        MHD_get_daemon_info(self->daemon, MHD_DAEMON_INFO_EPOLL_FD);
    self->epoll_fd = info ? info->epoll_fd : -1;
    info = MHD_get_daemon_info(self->daemon, MHD_DAEMON_INFO_BIND_PORT);
    self->port = info ? info->port : 0;
    if (self->epoll_fd < 0) {
        snprintf(err, errlen, "libmicrohttpd gave no epoll descriptor");
        goto fail;
    }
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
    if (self->daemon) {
        /* MHD must not be stopped with suspended connections: answer them first. */
        request_t *req;
        bool resumed = false;
        while ((req = gateway_pending_expire(self->pending, INT64_MAX))) {
            request_set_unavailable(req);
            MHD_resume_connection(req->connection);
            resumed = true;
        }
        if (resumed)
            MHD_run(self->daemon);
        MHD_stop_daemon(self->daemon);
    }
    zsock_destroy(&self->dealer);
    zsock_destroy(&self->sub);
    gateway_pending_destroy(&self->pending);
    free(self);
    *self_p = NULL;
}

int gateway_port(const gateway_t *self)
{
    return self->port;
}

void gateway_stats(const gateway_t *self, gateway_stats_t *stats)
{
    *stats = self->stats;
    stats->in_flight = gateway_pending_size(self->pending);
}
