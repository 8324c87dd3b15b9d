/* sse: a raw-socket Server-Sent Events client for tests (see sse.h). */
#include "tests/support/sse.h"
#include "tests/support/http.h"
#include "tests/support/wait.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

typedef struct {
    char *data;
    size_t len, cap;
} buf_t;

struct sse_client_t {
    int fd;
    int status;  /* 0 until the headers are in */
    buf_t head;  /* status line and headers */
    buf_t raw;   /* bytes after the headers, not yet decoded */
    buf_t body;  /* decoded body: the event stream */
    size_t parsed;
    bool chunked;
    bool ended;  /* the final chunk came */
    bool closed; /* the server closed (or reset) the connection */
    sse_frame_t *frames;
    size_t count, cap;
};

/* Test memory is not rationed: running out is a broken machine, not a result. */
static void *grow(void *ptr, size_t size)
{
    void *grown = realloc(ptr, size);
    if (!grown) {
        fprintf(stderr, "sse: out of memory\n");
        abort();
    }
    return grown;
}

static void buf_add(buf_t *b, const char *data, size_t len)
{
    if (b->len + len + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 1024;
        while (cap < b->len + len + 1)
            cap *= 2;
        b->data = grow(b->data, cap);
        b->cap = cap;
    }
    if (len)
        memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = '\0';
}

static void buf_drop(buf_t *b, size_t len)
{
    memmove(b->data, b->data + len, b->len - len);
    b->len -= len;
    b->data[b->len] = '\0';
}

/* Cuts every complete frame (ended by a blank line) off the decoded body. */
static void parse_frames(sse_client_t *self)
{
    const char *end;
    while (self->body.data && (end = strstr(self->body.data + self->parsed, "\n\n"))) {
        const char *start = self->body.data + self->parsed;
        size_t block_len = (size_t)(end - start);
        char *block = strndup(start, block_len);
        if (!block)
            abort();
        sse_frame_t frame = {.id = -1};
        char *save = NULL;
        for (char *line = strtok_r(block, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
            if (!strncmp(line, "id: ", 4)) {
                frame.id = atoll(line + 4);
            } else if (!strncmp(line, "data: ", 6)) {
                json_decref(frame.data);
                frame.data = json_loads(line + 6, 0, NULL);
            } else if (!strcmp(line, ": keepalive")) {
                frame.keepalive = true;
            }
        }
        free(block);
        self->parsed += block_len + 2;
        if (self->count == self->cap) {
            self->cap = self->cap ? self->cap * 2 : 16;
            self->frames = grow(self->frames, self->cap * sizeof *self->frames);
        }
        self->frames[self->count++] = frame;
    }
}

/* Splits the headers off, undoes the chunked encoding, then parses frames. */
static void decode(sse_client_t *self)
{
    if (!self->status) {
        char *end = strstr(self->head.data ? self->head.data : "", "\r\n\r\n");
        if (!end)
            return;
        size_t head_len = (size_t)(end + 4 - self->head.data);
        buf_add(&self->raw, self->head.data + head_len, self->head.len - head_len);
        self->head.len = head_len;
        self->head.data[head_len] = '\0';
        self->status = self->head.len > 9 ? atoi(self->head.data + 9) : -1;
        self->chunked =
            strcasestr(self->head.data, "\r\nTransfer-Encoding: chunked\r\n") != NULL;
    }
    if (!self->chunked) {
        buf_add(&self->body, self->raw.data ? self->raw.data : "", self->raw.len);
        if (self->raw.len)
            buf_drop(&self->raw, self->raw.len);
    }
    while (self->chunked && !self->ended && self->raw.len > 0) {
        char *line_end = strstr(self->raw.data, "\r\n");
        if (!line_end)
            break;
        size_t size = strtoul(self->raw.data, NULL, 16);
        size_t line_len = (size_t)(line_end + 2 - self->raw.data);
        if (size == 0) {
            self->ended = true;
            break;
        }
        if (self->raw.len < line_len + size + 2)
            break;
        buf_add(&self->body, self->raw.data + line_len, size);
        buf_drop(&self->raw, line_len + size + 2);
    }
    parse_frames(self);
}

sse_client_t *sse_client_new(int port, const char *path, const char *last_event_id, int rcvbuf)
{
    sse_client_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->fd = socket(AF_INET, SOCK_STREAM, 0);
    if (self->fd < 0) {
        free(self);
        return NULL;
    }
    if (rcvbuf > 0)
        setsockopt(self->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    char request[1024];
    const char *token = http_bearer();
    int len = snprintf(request, sizeof request,
                       "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n"
                       "%s%s%s%s%s%sConnection: close\r\n\r\n",
                       path, last_event_id ? "Last-Event-ID: " : "",
                       last_event_id ? last_event_id : "", last_event_id ? "\r\n" : "",
                       token ? "Authorization: Bearer " : "", token ? token : "",
                       token ? "\r\n" : "");
    if (len < 0 || (size_t)len >= sizeof request ||
        connect(self->fd, (struct sockaddr *)&addr, sizeof addr) != 0 ||
        send(self->fd, request, (size_t)len, MSG_NOSIGNAL) != len) {
        close(self->fd);
        free(self);
        return NULL;
    }
    return self;
}

void sse_client_destroy(sse_client_t **self_p)
{
    sse_client_t *self = self_p ? *self_p : NULL;
    if (!self)
        return;
    close(self->fd);
    for (size_t i = 0; i < self->count; i++)
        json_decref(self->frames[i].data);
    free(self->frames);
    free(self->head.data);
    free(self->raw.data);
    free(self->body.data);
    free(self);
    *self_p = NULL;
}

void sse_client_pump(sse_client_t *self)
{
    char buf[65536];
    while (!self->closed) {
        ssize_t n = recv(self->fd, buf, sizeof buf, MSG_DONTWAIT);
        if (n > 0) {
            buf_add(self->status ? &self->raw : &self->head, buf, (size_t)n);
            decode(self);
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        self->closed = true;
    }
}

int sse_client_status(const sse_client_t *self)
{
    return self->status;
}

const char *sse_client_headers(const sse_client_t *self)
{
    return self->status && self->head.data ? self->head.data : "";
}

bool sse_client_chunked(const sse_client_t *self)
{
    return self->chunked;
}

bool sse_client_ended(const sse_client_t *self)
{
    return self->ended;
}

bool sse_client_closed(const sse_client_t *self)
{
    return self->closed;
}

const char *sse_client_body(const sse_client_t *self)
{
    return self->body.data ? self->body.data : "";
}

size_t sse_client_frame_count(const sse_client_t *self)
{
    return self->count;
}

const sse_frame_t *sse_client_frame(const sse_client_t *self, size_t index)
{
    return index < self->count ? &self->frames[index] : NULL;
}

const char *sse_frame_str(const sse_frame_t *frame, const char *key)
{
    const char *text = frame ? json_string_value(json_object_get(frame->data, key)) : NULL;
    return text ? text : "";
}

bool sse_client_has_frames(const sse_client_t *client, long want)
{
    return want <= 0 || client->count >= (size_t)want;
}

bool sse_client_has_closed(const sse_client_t *client, long want)
{
    (void)want;
    return client->closed;
}

bool sse_client_has_keepalives(const sse_client_t *client, long want)
{
    long count = 0;
    for (size_t i = 0; i < client->count; i++)
        count += client->frames[i].keepalive;
    return count >= want;
}

bool sse_clients_wait(sse_client_t **clients, size_t n, sse_done_fn done, long want,
                      int timeout_ms)
{
    struct pollfd *fds = n ? calloc(n, sizeof *fds) : NULL;
    if (n && !fds)
        return false;
    wait_t w = wait_begin(timeout_ms);
    bool all = false;
    while (!all && wait_now_ms() < w.deadline_ms) {
        size_t active = 0;
        all = true;
        for (size_t i = 0; i < n; i++) {
            if (done(clients[i], want))
                continue;
            all = false;
            if (!clients[i]->closed)
                fds[active++] = (struct pollfd){.fd = clients[i]->fd, .events = POLLIN};
        }
        if (all || active == 0)
            break;
        poll(fds, active, 50);
        for (size_t i = 0; i < n; i++)
            if (!done(clients[i], want))
                sse_client_pump(clients[i]);
    }
    free(fds);
    for (size_t i = 0; i < n; i++)
        if (!done(clients[i], want))
            return false;
    return true;
}

bool sse_client_wait(sse_client_t *self, sse_done_fn done, long want, int timeout_ms)
{
    return sse_clients_wait(&self, 1, done, want, timeout_ms);
}
