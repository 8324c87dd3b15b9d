#include "bench/synload/hclient.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* A response larger than this is refused: the gateway never sends one. */
#define HCLIENT_MAX_RESPONSE (64u << 20)

typedef enum { HC_IDLE, HC_SENDING, HC_RECEIVING } hc_state_t;

struct hclient_t {
    char host[64];
    int port;
    int fd;
    hc_state_t state;
    int served;          /* responses read on this connection (a reused one may be stale) */
    int resent;          /* the current request was already resent once */
    char *out;
    size_t out_len, out_sent, out_cap;
    char *in;
    size_t in_len, in_cap;
    size_t header_len;   /* 0 until the blank line is seen */
    long content_length; /* -1 = until the server closes */
    int close_after;
    int status;
    const char *body;
    size_t body_len;
    char error[160];
};

hclient_t *hclient_new(const char *host, int port)
{
    hclient_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    snprintf(self->host, sizeof self->host, "%s", host);
    self->port = port;
    self->fd = -1;
    return self;
}

static void close_fd(hclient_t *self)
{
    if (self->fd >= 0)
        close(self->fd);
    self->fd = -1;
    self->served = 0;
}

void hclient_destroy(hclient_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    hclient_t *self = *self_p;
    close_fd(self);
    free(self->out);
    free(self->in);
    free(self);
    *self_p = NULL;
}

/* Loopback connects complete at once, so a blocking connect keeps this simple;
 * the socket is non-blocking afterwards. */
static int open_connection(hclient_t *self)
{
    close_fd(self);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(self->error, sizeof self->error, "socket: %s", strerror(errno));
        return -1;
    }
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)self->port)};
    if (inet_pton(AF_INET, self->host, &addr.sin_addr) != 1) {
        snprintf(self->error, sizeof self->error, "not an IPv4 address: %s", self->host);
        close(fd);
        return -1;
    }
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
        snprintf(self->error, sizeof self->error, "connect %s:%d: %s", self->host, self->port,
                 strerror(errno));
        close(fd);
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    self->fd = fd;
    return 0;
}

static int reserve(char **buf, size_t *cap, size_t need)
{
    if (need <= *cap)
        return 0;
    size_t cap2 = *cap ? *cap : 4096;
    while (cap2 < need)
        cap2 *= 2;
    char *p = realloc(*buf, cap2);
    if (!p)
        return -1;
    *buf = p;
    *cap = cap2;
    return 0;
}

int hclient_start(hclient_t *self, const char *method, const char *path, const char *body)
{
    if (self->state != HC_IDLE) {
        snprintf(self->error, sizeof self->error, "a request is already in flight");
        return -1;
    }
    size_t body_len = body ? strlen(body) : 0;
    size_t need = strlen(method) + strlen(path) + strlen(self->host) + body_len + 160;
    if (reserve(&self->out, &self->out_cap, need) != 0) {
        snprintf(self->error, sizeof self->error, "out of memory");
        return -1;
    }
    int n;
    if (body)
        n = snprintf(self->out, self->out_cap,
                     "%s %s HTTP/1.1\r\nHost: %s:%d\r\nContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\n\r\n",
                     method, path, self->host, self->port, body_len);
    else
        n = snprintf(self->out, self->out_cap, "%s %s HTTP/1.1\r\nHost: %s:%d\r\n\r\n", method,
                     path, self->host, self->port);
    if (body)
        memcpy(self->out + n, body, body_len);
    self->out_len = (size_t)n + body_len;
    self->out_sent = 0;
    self->in_len = 0;
    self->header_len = 0;
    self->resent = 0;
    if (self->fd < 0 && open_connection(self) != 0)
        return -1;
    self->state = HC_SENDING;
    return 0;
}

int hclient_fd(const hclient_t *self) { return self->fd; }

short hclient_events(const hclient_t *self)
{
    return self->state == HC_SENDING ? POLLOUT : self->state == HC_RECEIVING ? POLLIN : 0;
}

int hclient_busy(const hclient_t *self) { return self->state != HC_IDLE; }
int hclient_status(const hclient_t *self) { return self->status; }
const char *hclient_error(const hclient_t *self) { return self->error; }

const char *hclient_body(const hclient_t *self, size_t *len)
{
    if (len)
        *len = self->body_len;
    return self->body;
}

/* A kept-alive connection may have been closed by the server while idle: the
 * first failure of a request on a reused connection reopens it and resends. */
static int retry_or_fail(hclient_t *self, const char *what)
{
    if (self->served > 0 && !self->resent && self->in_len == 0) {
        if (open_connection(self) == 0) {
            self->resent = 1;
            self->out_sent = 0;
            self->state = HC_SENDING;
            return 0;
        }
    } else {
        snprintf(self->error, sizeof self->error, "%s", what);
    }
    close_fd(self);
    self->state = HC_IDLE;
    return -1;
}

/* Parses the status line and the headers once the blank line has arrived. */
static int parse_head(hclient_t *self)
{
    char *end = memmem(self->in, self->in_len, "\r\n\r\n", 4);
    if (!end)
        return 0;
    self->header_len = (size_t)(end - self->in) + 4;
    if (self->in_len < 12 || strncmp(self->in, "HTTP/1.", 7) != 0) {
        snprintf(self->error, sizeof self->error, "not an HTTP response");
        return -1;
    }
    self->status = atoi(self->in + 9);
    self->content_length = -1;
    self->close_after = 0;
    for (char *line = memchr(self->in, '\n', self->header_len); line && line < end;
         line = memchr(line + 1, '\n', (size_t)(end - line))) {
        char *h = line + 1;
        if (!strncasecmp(h, "Content-Length:", 15))
            self->content_length = strtol(h + 15, NULL, 10);
        else if (!strncasecmp(h, "Connection:", 11) && strstr(h, "close") &&
                 strstr(h, "close") < strchr(h, '\r'))
            self->close_after = 1;
        else if (!strncasecmp(h, "Transfer-Encoding:", 18)) {
            snprintf(self->error, sizeof self->error, "chunked responses are not supported");
            return -1;
        }
    }
    if (self->content_length > (long)HCLIENT_MAX_RESPONSE) {
        snprintf(self->error, sizeof self->error, "response too large");
        return -1;
    }
    return 0;
}

static int finish(hclient_t *self)
{
    size_t body_len = self->content_length >= 0 ? (size_t)self->content_length
                                                 : self->in_len - self->header_len;
    if (reserve(&self->in, &self->in_cap, self->header_len + body_len + 1) != 0)
        return -1;
    self->in[self->header_len + body_len] = '\0';
    self->body = self->in + self->header_len;
    self->body_len = body_len;
    self->served++;
    self->state = HC_IDLE;
    if (self->close_after || self->content_length < 0)
        close_fd(self);
    return 1;
}

int hclient_step(hclient_t *self)
{
    if (self->state == HC_SENDING) {
        while (self->out_sent < self->out_len) {
            ssize_t n = send(self->fd, self->out + self->out_sent, self->out_len - self->out_sent,
                             MSG_NOSIGNAL);
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
                return 0;
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0)
                return retry_or_fail(self, strerror(errno));
            self->out_sent += (size_t)n;
        }
        self->state = HC_RECEIVING;
    }
    if (self->state != HC_RECEIVING)
        return 0;
    for (;;) {
        if (reserve(&self->in, &self->in_cap, self->in_len + 8192) != 0) {
            snprintf(self->error, sizeof self->error, "out of memory");
            close_fd(self);
            self->state = HC_IDLE;
            return -1;
        }
        ssize_t n = recv(self->fd, self->in + self->in_len, self->in_cap - self->in_len - 1, 0);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 0;
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return retry_or_fail(self, strerror(errno));
        if (n == 0) {
            if (self->header_len && self->content_length < 0)
                return finish(self);
            return retry_or_fail(self, "the server closed the connection");
        }
        self->in_len += (size_t)n;
        if (self->in_len > HCLIENT_MAX_RESPONSE + 65536u) {
            snprintf(self->error, sizeof self->error, "response too large");
            close_fd(self);
            self->state = HC_IDLE;
            return -1;
        }
        if (!self->header_len && parse_head(self) != 0) {
            close_fd(self);
            self->state = HC_IDLE;
            return -1;
        }
        if (self->header_len && self->content_length >= 0 &&
            self->in_len >= self->header_len + (size_t)self->content_length)
            return finish(self);
    }
}

static long long mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int hclient_request(hclient_t *self, const char *method, const char *path, const char *body,
                    int timeout_ms)
{
    if (hclient_start(self, method, path, body) != 0)
        return -1;
    long long deadline = mono_ms() + timeout_ms;
    for (;;) {
        int r = hclient_step(self);
        if (r == 1)
            return self->status;
        if (r < 0)
            return -1;
        long long left = deadline - mono_ms();
        if (left <= 0) {
            snprintf(self->error, sizeof self->error, "timed out after %d ms", timeout_ms);
            close_fd(self);
            self->state = HC_IDLE;
            return -1;
        }
        struct pollfd p = {.fd = self->fd, .events = hclient_events(self)};
        if (poll(&p, 1, (int)left) < 0 && errno != EINTR) {
            snprintf(self->error, sizeof self->error, "poll: %s", strerror(errno));
            return -1;
        }
    }
}

int hclient_parse_url(const char *url, char *host, size_t hostsize, int *port)
{
    const char *p = strncmp(url, "http://", 7) == 0 ? url + 7 : url;
    const char *colon = strchr(p, ':');
    if (!colon || (size_t)(colon - p) >= hostsize)
        return -1;
    memcpy(host, p, (size_t)(colon - p));
    host[colon - p] = '\0';
    char *end;
    long v = strtol(colon + 1, &end, 10);
    if (end == colon + 1 || (*end && *end != '/') || v <= 0 || v > 65535)
        return -1;
    *port = (int)v;
    if (!strcmp(host, "localhost"))
        snprintf(host, hostsize, "127.0.0.1");
    return 0;
}
