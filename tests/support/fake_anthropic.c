/* fake_anthropic: a fake Messages API server for tests (see fake_anthropic.h). */
#include "tests/support/fake_anthropic.h"
#include "tests/support/wait.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

typedef struct {
    unsigned status;
    const char *retry_after;
    const char *body;
    int delay_ms;
    const char *hold_after; /* the stream stops after this text for hold_ms; NULL: never */
    int hold_ms;
} plan_t;

struct fake_anthropic_t {
    struct MHD_Daemon *daemon;
    int port;
    char url[64];
    atomic_int stopping;
    pthread_mutex_t lock; /* guards everything below */
    plan_t plans[FAKE_ANTHROPIC_MAX_PLANS];
    int nplans, next_plan;
    fake_anthropic_request_t requests[FAKE_ANTHROPIC_MAX_REQUESTS];
    int nrequests;
};

/* One 200 answer being streamed. */
typedef struct {
    fake_anthropic_t *server;
    const char *text;
    size_t len;
    int delay_ms;
    size_t hold_at;           /* 0: no hold */
    int hold_ms;
    int request;              /* its index in requests, -1 when not recorded */
    struct MHD_Connection *connection;
} stream_t;

/* A request body as it is uploaded. */
typedef struct {
    char *data;
    size_t len;
} upload_t;

const char fake_anthropic_sse_answer[] =
    "event: message_start\n"
    "data: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_01\",\"type\":\"message\","
    "\"role\":\"assistant\",\"content\":[],\"model\":\"claude-haiku-4-5-20251001\","
    "\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":1500,"
    "\"cache_creation_input_tokens\":200,\"cache_read_input_tokens\":1000,"
    "\"output_tokens\":1}}}\n\n"
    "event: content_block_start\n"
    "data: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\","
    "\"text\":\"\"}}\n\n"
    "event: ping\n"
    "data: {\"type\": \"ping\"}\n\n"
    ": a comment line\n"
    "event: content_block_delta\n"
    "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\","
    "\"text\":\"Hello\"}}\n\n"
    "event: content_block_delta\r\n"
    "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\","
    "\"text\":\", w\xC3\xB6rld!\"}}\r\n\r\n"
    "event: content_block_stop\n"
    "data: {\"type\":\"content_block_stop\",\"index\":0}\n\n"
    "event: message_delta\n"
    "data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\","
    "\"stop_sequence\":null},\"usage\":{\"output_tokens\":350}}\n\n"
    "event: message_stop\n"
    "data: {\"type\":\"message_stop\"}\n\n";

const char fake_anthropic_sse_overloaded[] =
    "event: message_start\n"
    "data: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_02\",\"model\":"
    "\"claude-haiku-4-5-20251001\",\"usage\":{\"input_tokens\":10,\"output_tokens\":1}}}\n\n"
    "event: content_block_delta\n"
    "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\","
    "\"text\":\"Partial\"}}\n\n"
    "event: error\n"
    "data: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":"
    "\"Overloaded\"}}\n\n";

const char fake_anthropic_overloaded_body[] =
    "{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}";
const char fake_anthropic_server_error_body[] =
    "{\"type\":\"error\",\"error\":{\"type\":\"api_error\",\"message\":\"Internal server "
    "error\"}}";
const char fake_anthropic_bad_request_body[] =
    "{\"type\":\"error\",\"error\":{\"type\":\"invalid_request_error\",\"message\":"
    "\"max_tokens: 999999 > 64000, which is the maximum allowed\"}}";

static const char no_plan_body[] =
    "{\"type\":\"error\",\"error\":{\"type\":\"not_found_error\",\"message\":\"no plan\"}}";

static void note_time(fake_anthropic_t *server, int request, bool hangup)
{
    pthread_mutex_lock(&server->lock);
    if (request >= 0) {
        if (hangup)
            server->requests[request].hangup_ms = wait_now_ms();
        else
            server->requests[request].held_ms = wait_now_ms();
    }
    pthread_mutex_unlock(&server->lock);
}

/* Everything before the hold is sent: the stream waits hold_ms (a server that
 * goes on thinking), watching its client; true when the client hung up. */
static bool hold(stream_t *s)
{
    note_time(s->server, s->request, false);
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(s->connection, MHD_CONNECTION_INFO_CONNECTION_FD);
    for (int waited = 0; waited < s->hold_ms && !s->server->stopping; waited += 5) {
        struct pollfd p = {.fd = info ? info->connect_fd : -1, .events = POLLIN | POLLRDHUP};
        char byte;
        if (info && poll(&p, 1, 5) == 1 &&
            ((p.revents & (POLLRDHUP | POLLHUP | POLLERR)) ||
             recv(p.fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT) == 0)) {
            note_time(s->server, s->request, true);
            return true;
        }
        if (!info)
            wait_exactly_ms(5);
    }
    return false;
}

/* Sends the stream 7 bytes at a time, so events arrive cut anywhere. */
static ssize_t read_stream(void *cls, uint64_t pos, char *buf, size_t max)
{
    stream_t *s = cls;
    /* The plan's latency before the first byte: what the test puts the worker
     * through (a slow API, a timeout), not a wait for state; cut short on stop. */
    if (pos == 0 && s->delay_ms > 0) {
        for (int waited = 0; waited < s->delay_ms && !s->server->stopping; waited += 10)
            wait_exactly_ms(10);
    }
    if (s->hold_at > 0 && pos == s->hold_at && hold(s))
        return MHD_CONTENT_READER_END_WITH_ERROR;
    if (s->server->stopping)
        return MHD_CONTENT_READER_END_WITH_ERROR;
    if (pos >= s->len)
        return MHD_CONTENT_READER_END_OF_STREAM;
    size_t n = s->len - pos < 7 ? s->len - pos : 7;
    if (pos < s->hold_at && s->hold_at - pos < n)
        n = s->hold_at - pos; /* the hold starts exactly after its text */
    if (n > max)
        n = max;
    memcpy(buf, s->text + pos, n);
    /* A pause between pieces so they reach the parser as separate reads: what is
     * tested is events cut anywhere, not a wait. */
    usleep(200);
    return (ssize_t)n;
}

static char *header_copy(struct MHD_Connection *c, const char *name)
{
    const char *v = MHD_lookup_connection_value(c, MHD_HEADER_KIND, name);
    return v ? strdup(v) : NULL;
}

/* Records a whole request and takes the next plan for it. */
static plan_t take_plan(fake_anthropic_t *self, struct MHD_Connection *connection,
                        const char *url, const char *method, const upload_t *up, int *request)
{
    plan_t plan = {404, NULL, no_plan_body, 0, NULL, 0};
    *request = -1;
    pthread_mutex_lock(&self->lock);
    if (self->nrequests < FAKE_ANTHROPIC_MAX_REQUESTS && strcmp(url, "/v1/messages") == 0 &&
        strcmp(method, "POST") == 0) {
        *request = self->nrequests;
        fake_anthropic_request_t *r = &self->requests[self->nrequests++];
        r->body = strdup(up->data ? up->data : "");
        r->api_key = header_copy(connection, "x-api-key");
        r->version = header_copy(connection, "anthropic-version");
        r->content_type = header_copy(connection, "content-type");
        r->at_ms = wait_now_ms();
    }
    if (self->next_plan < self->nplans)
        plan = self->plans[self->next_plan++];
    pthread_mutex_unlock(&self->lock);
    return plan;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *connection, const char *url,
                              const char *method, const char *version, const char *upload_data,
                              size_t *upload_data_size, void **con_cls)
{
    (void)version;
    fake_anthropic_t *self = cls;
    upload_t *up = *con_cls;
    if (!up) {
        up = calloc(1, sizeof *up);
        *con_cls = up;
        return up ? MHD_YES : MHD_NO;
    }
    if (*upload_data_size > 0) {
        char *grown = realloc(up->data, up->len + *upload_data_size + 1);
        if (!grown)
            return MHD_NO;
        memcpy(grown + up->len, upload_data, *upload_data_size);
        up->len += *upload_data_size;
        grown[up->len] = '\0';
        up->data = grown;
        *upload_data_size = 0;
        return MHD_YES;
    }
    int request;
    plan_t plan = take_plan(self, connection, url, method, up, &request);
    struct MHD_Response *response;
    if (plan.status == 200) {
        stream_t *s = calloc(1, sizeof *s);
        if (!s)
            return MHD_NO;
        *s = (stream_t){self, plan.body, strlen(plan.body), plan.delay_ms, 0, plan.hold_ms,
                        request, connection};
        const char *mark = plan.hold_after ? strstr(plan.body, plan.hold_after) : NULL;
        if (mark)
            s->hold_at = (size_t)(mark - plan.body) + strlen(plan.hold_after);
        response = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 64, read_stream, s, free);
        if (!response) {
            free(s);
            return MHD_NO;
        }
        MHD_add_response_header(response, "content-type", "text/event-stream");
    } else {
        response = MHD_create_response_from_buffer(strlen(plan.body), (void *)plan.body,
                                                   MHD_RESPMEM_PERSISTENT);
        if (!response)
            return MHD_NO;
        MHD_add_response_header(response, "content-type", "application/json");
    }
    if (plan.retry_after)
        MHD_add_response_header(response, "retry-after", plan.retry_after);
    enum MHD_Result rc = MHD_queue_response(connection, plan.status, response);
    MHD_destroy_response(response);
    return rc;
}

static void completed(void *cls, struct MHD_Connection *connection, void **con_cls,
                      enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)connection;
    (void)toe;
    upload_t *up = *con_cls;
    if (up) {
        free(up->data);
        free(up);
    }
    *con_cls = NULL;
}

fake_anthropic_t *fake_anthropic_new(void)
{
    fake_anthropic_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    pthread_mutex_init(&self->lock, NULL);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = 0};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    self->daemon = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION, 0, NULL, NULL, handle,
        self, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr, MHD_OPTION_NOTIFY_COMPLETED,
        completed, NULL, MHD_OPTION_END);
    const union MHD_DaemonInfo *info =
        self->daemon ? MHD_get_daemon_info(self->daemon, MHD_DAEMON_INFO_BIND_PORT) : NULL;
    if (!info) {
        fake_anthropic_destroy(&self);
        return NULL;
    }
    self->port = info->port;
    snprintf(self->url, sizeof self->url, "http://127.0.0.1:%d", self->port);
    return self;
}

void fake_anthropic_destroy(fake_anthropic_t **self_p)
{
    fake_anthropic_t *self = self_p ? *self_p : NULL;
    if (!self)
        return;
    self->stopping = 1;
    if (self->daemon)
        MHD_stop_daemon(self->daemon);
    for (int i = 0; i < self->nrequests; i++) {
        free(self->requests[i].body);
        free(self->requests[i].api_key);
        free(self->requests[i].version);
        free(self->requests[i].content_type);
    }
    pthread_mutex_destroy(&self->lock);
    free(self);
    *self_p = NULL;
}

int fake_anthropic_port(fake_anthropic_t *self)
{
    return self->port;
}

const char *fake_anthropic_url(fake_anthropic_t *self)
{
    return self->url;
}

int fake_anthropic_plan(fake_anthropic_t *self, unsigned status, const char *retry_after,
                        const char *body, int delay_ms)
{
    pthread_mutex_lock(&self->lock);
    int rc = -1;
    if (self->nplans < FAKE_ANTHROPIC_MAX_PLANS) {
        self->plans[self->nplans++] = (plan_t){status, retry_after, body, delay_ms, NULL, 0};
        rc = 0;
    }
    pthread_mutex_unlock(&self->lock);
    return rc;
}

int fake_anthropic_plan_held(fake_anthropic_t *self, const char *body, const char *hold_after,
                             int hold_ms)
{
    pthread_mutex_lock(&self->lock);
    int rc = -1;
    if (self->nplans < FAKE_ANTHROPIC_MAX_PLANS) {
        self->plans[self->nplans++] = (plan_t){200, NULL, body, 0, hold_after, hold_ms};
        rc = 0;
    }
    pthread_mutex_unlock(&self->lock);
    return rc;
}

int fake_anthropic_request_count(fake_anthropic_t *self)
{
    pthread_mutex_lock(&self->lock);
    int n = self->nrequests;
    pthread_mutex_unlock(&self->lock);
    return n;
}

const fake_anthropic_request_t *fake_anthropic_request(fake_anthropic_t *self, int index)
{
    pthread_mutex_lock(&self->lock);
    const fake_anthropic_request_t *r =
        index >= 0 && index < self->nrequests ? &self->requests[index] : NULL;
    pthread_mutex_unlock(&self->lock);
    return r;
}
