#include "worker/zmtp.h"

#include "worker/resolve.h"

#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#define GREETING_SIZE 64
#define MECHANISM_OFFSET 12
#define MECHANISM_SIZE 20
/* Received bytes are worked through from here; a frame body this big or
 * bigger is read straight into its own buffer instead. */
#define IN_BUF_SIZE (64u * 1024u)
/* Reads per pump: a peer that floods with commands cannot hold the loop. */
#define MAX_READS_PER_PUMP 16
/* Queued frames handed to one sendmsg. */
#define MAX_IOV 64
/* Our own commands (PONGs) waiting to go out; past this a PONG is dropped,
 * which costs nothing: any traffic tells the peer we are alive. */
#define MAX_QUEUED_COMMANDS 64

#define FLAG_MORE 0x01u
#define FLAG_LONG 0x02u
#define FLAG_COMMAND 0x04u
#define FLAGS_RESERVED 0xF8u

/* One frame waiting to be written: header and body in one buffer. */
typedef struct {
    uint8_t *data;
    size_t len;
    bool is_msg; /* a caller's message (held back until the handshake is over) */
} out_frame_t;

/* What the next received bytes must be. */
typedef enum { IN_GREETING, IN_READY, IN_TRAFFIC } in_phase_t;

struct worker_zmtp_t {
    int fd;
    worker_zmtp_state_t state;
    worker_resolve_t *lookup; /* the broker's name being looked up (CONNECTING) */
    char host[256];           /* ... that name, for errors */
    uint16_t port;
    char error[256];
    size_t max_size;

    out_frame_t *out; /* a ring: out_count frames from out_head */
    size_t out_cap, out_head, out_count;
    size_t out_done;  /* bytes of the head frame already written */
    size_t queued_msgs, queued_bytes, queued_commands;

    uint8_t *in;      /* received, not yet worked through: in[in_start, in_end) */
    size_t in_start, in_end;
    in_phase_t phase;
    bool in_body;     /* a frame's header is read, its body is arriving */
    uint8_t body_flags;
    uint8_t *body;
    size_t body_size, body_got;

    uint8_t *message; /* a whole message waiting for worker_zmtp_recv */
    size_t message_size;
};

/* --- closing ------------------------------------------------------------ */

static void drop_output(worker_zmtp_t *self)
{
    for (size_t i = 0; i < self->out_count; i++)
        free(self->out[(self->out_head + i) % self->out_cap].data);
    free(self->out);
    self->out = NULL;
    self->out_cap = self->out_head = self->out_count = self->out_done = 0;
    self->queued_msgs = self->queued_bytes = self->queued_commands = 0;
}

/* Closes the connection for good with the reason; a message already received
 * whole stays for worker_zmtp_recv. */
__attribute__((format(printf, 2, 3))) static void fail(worker_zmtp_t *self, const char *fmt, ...)
{
    if (self->state == WORKER_ZMTP_CLOSED)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(self->error, sizeof self->error, fmt, ap);
    va_end(ap);
    self->state = WORKER_ZMTP_CLOSED;
    if (self->fd >= 0)
        close(self->fd);
    self->fd = -1;
    worker_resolve_destroy(&self->lookup);
    drop_output(self);
    free(self->in);
    self->in = NULL;
    free(self->body);
    self->body = NULL;
    self->in_body = false;
}

/* Peer-chosen text (a socket type, a mechanism, an ERROR reason) made safe for
 * a log line: printable ASCII only, cut to fit. */
static const char *printable(const uint8_t *text, size_t len, char *out, size_t outlen)
{
    size_t n = 0;
    for (size_t i = 0; i < len && n + 1 < outlen; i++)
        out[n++] = text[i] >= 0x20 && text[i] < 0x7F ? (char)text[i] : '?';
    out[n] = '\0';
    return out;
}

/* --- the outgoing queue ------------------------------------------------- */

static out_frame_t *out_at(worker_zmtp_t *self, size_t i)
{
    return &self->out[(self->out_head + i) % self->out_cap];
}

/* Appends a frame (its buffer is taken, freed on failure). */
static int queue_frame(worker_zmtp_t *self, uint8_t *data, size_t len, bool is_msg)
{
    if (self->out_count == self->out_cap) {
        size_t cap = self->out_cap ? self->out_cap * 2 : 16;
        out_frame_t *grown = malloc(cap * sizeof *grown);
        if (!grown) {
            free(data);
            return -1;
        }
        for (size_t i = 0; i < self->out_count; i++)
            grown[i] = *out_at(self, i);
        free(self->out);
        self->out = grown;
        self->out_cap = cap;
        self->out_head = 0;
    }
    *out_at(self, self->out_count++) = (out_frame_t){.data = data, .len = len, .is_msg = is_msg};
    if (is_msg) {
        self->queued_msgs++;
        self->queued_bytes += len;
    } else
        self->queued_commands++;
    return 0;
}

static void pop_frame(worker_zmtp_t *self)
{
    out_frame_t *head = out_at(self, 0);
    if (head->is_msg) {
        self->queued_msgs--;
        self->queued_bytes -= head->len;
    } else
        self->queued_commands--;
    free(head->data);
    self->out_head = (self->out_head + 1) % self->out_cap;
    self->out_count--;
    self->out_done = 0;
}

/* Frames of the caller's wait behind the handshake; the handshake's own
 * (greeting, READY) and PONGs do not. */
static bool frame_may_go(const worker_zmtp_t *self, const out_frame_t *frame)
{
    return self->state == WORKER_ZMTP_READY ||
           (self->state == WORKER_ZMTP_HANDSHAKE && !frame->is_msg);
}

static bool can_write(const worker_zmtp_t *self)
{
    return self->out_count > 0 &&
           frame_may_go(self, &self->out[self->out_head % self->out_cap]);
}

static void consume_written(worker_zmtp_t *self, size_t written)
{
    while (written > 0) {
        size_t left = out_at(self, 0)->len - self->out_done;
        if (written < left) {
            self->out_done += written;
            return;
        }
        written -= left;
        pop_frame(self);
    }
}

/* Writes what may go until the socket would block (or fails). */
static void flush(worker_zmtp_t *self)
{
    while (can_write(self)) {
        struct iovec iov[MAX_IOV];
        int n = 0;
        for (size_t i = 0; i < self->out_count && n < MAX_IOV; i++) {
            out_frame_t *frame = out_at(self, i);
            if (!frame_may_go(self, frame))
                break;
            size_t skip = i == 0 ? self->out_done : 0;
            iov[n++] = (struct iovec){.iov_base = frame->data + skip, .iov_len = frame->len - skip};
        }
        struct msghdr header = {.msg_iov = iov, .msg_iovlen = (size_t)n};
        ssize_t written = sendmsg(self->fd, &header, MSG_NOSIGNAL);
        if (written < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                fail(self, "cannot send: %s", strerror(errno));
            return;
        }
        consume_written(self, (size_t)written);
    }
}

/* A frame's header (flags, then the size in one octet, or eight in network
 * order when it does not fit in one) and body in one new buffer. */
static uint8_t *encode_frame(uint8_t flags, const void *body, size_t size, size_t *len)
{
    uint8_t header[9];
    size_t header_len = 2;
    header[0] = flags;
    if (size <= 255)
        header[1] = (uint8_t)size;
    else {
        header[0] |= FLAG_LONG;
        for (int i = 0; i < 8; i++)
            header[1 + i] = (uint8_t)((uint64_t)size >> (56 - 8 * i));
        header_len = 9;
    }
    uint8_t *frame = malloc(header_len + size);
    if (!frame)
        return NULL;
    memcpy(frame, header, header_len);
    if (size > 0)
        memcpy(frame + header_len, body, size);
    *len = header_len + size;
    return frame;
}

static int queue_command(worker_zmtp_t *self, const uint8_t *body, size_t size)
{
    size_t len;
    uint8_t *frame = encode_frame(FLAG_COMMAND, body, size, &len);
    return frame ? queue_frame(self, frame, len, false) : -1;
}

/* Our greeting (ZMTP 3.0, NULL, not as server) and READY (Socket-Type DEALER,
 * no Identity), queued at once: a peer may read them as soon as it likes. */
static int queue_handshake(worker_zmtp_t *self)
{
    uint8_t *greeting = calloc(1, GREETING_SIZE);
    if (!greeting)
        return -1;
    greeting[0] = 0xFF;
    greeting[9] = 0x7F;
    greeting[10] = 3;
    memcpy(greeting + MECHANISM_OFFSET, "NULL", 4);
    if (queue_frame(self, greeting, GREETING_SIZE, false) != 0)
        return -1;
    static const uint8_t ready[] = {5,   'R', 'E', 'A', 'D', 'Y', 11,  'S', 'o', 'c',
                                    'k', 'e', 't', '-', 'T', 'y', 'p', 'e', 0,   0,
                                    0,   6,   'D', 'E', 'A', 'L', 'E', 'R'};
    return queue_command(self, ready, sizeof ready);
}

/* --- connecting --------------------------------------------------------- */

static bool parse_port(const char *text, uint16_t *port)
{
    unsigned long value = 0;
    size_t n = 0;
    for (; text[n] >= '0' && text[n] <= '9' && n < 6; n++)
        value = value * 10 + (unsigned long)(text[n] - '0');
    if (n == 0 || text[n] != '\0' || value == 0 || value > 65535)
        return false;
    *port = (uint16_t)value;
    return true;
}

static void set_port(struct sockaddr_storage *sa, uint16_t port)
{
    if (sa->ss_family == AF_INET)
        ((struct sockaddr_in *)sa)->sin_port = htons(port);
    else
        ((struct sockaddr_in6 *)sa)->sin6_port = htons(port);
}

/* HOST:PORT or [IPV6]:PORT into an address (0), or a lookup of the name started
 * (1; worker/resolve.h). */
static int resolve_tcp(worker_zmtp_t *self, const char *address, struct sockaddr_storage *sa,
                       socklen_t *sa_len)
{
    const char *host = address, *host_end, *port_text;
    bool bracketed = address[0] == '[';
    if (bracketed) {
        host++;
        host_end = strchr(host, ']');
        if (!host_end || host_end[1] != ':') {
            fail(self, "bad endpoint: expected tcp://[IPV6]:PORT");
            return -1;
        }
        port_text = host_end + 2;
    } else {
        host_end = strrchr(address, ':');
        if (!host_end) {
            fail(self, "bad endpoint: no port");
            return -1;
        }
        if (memchr(host, ':', (size_t)(host_end - host))) {
            fail(self, "bad endpoint: an IPv6 address goes in brackets");
            return -1;
        }
        port_text = host_end + 1;
    }
    size_t name_len = (size_t)(host_end - host);
    uint16_t port;
    if (name_len == 0 || name_len >= sizeof self->host || !strncmp(host, "*", name_len)) {
        fail(self, "bad endpoint: no host to connect to");
        return -1;
    }
    if (!parse_port(port_text, &port)) {
        fail(self, "bad endpoint: the port must be 1..65535");
        return -1;
    }
    memcpy(self->host, host, name_len);
    self->host[name_len] = '\0';
    self->port = port;
    int rc = worker_resolve_numeric(self->host, bracketed, sa, sa_len);
    if (rc == EAI_NONAME && !bracketed) {
        char why[256];
        self->lookup = worker_resolve_start(self->host, why, sizeof why);
        if (self->lookup)
            return 1;
        fail(self, "cannot resolve %s: %s", self->host, why);
        return -1;
    }
    if (rc != 0) {
        fail(self, "cannot resolve %s: %s", self->host,
             rc == EAI_SYSTEM ? strerror(errno) : gai_strerror(rc));
        return -1;
    }
    set_port(sa, port);
    return 0;
}

static int resolve_ipc(worker_zmtp_t *self, const char *path, struct sockaddr_storage *sa,
                       socklen_t *sa_len)
{
    struct sockaddr_un *un = (struct sockaddr_un *)sa;
    size_t len = strlen(path);
    if (len == 0 || path[0] == '@' || len >= sizeof un->sun_path) {
        fail(self, "bad endpoint: expected ipc:///PATH (shorter than %zu bytes)",
             sizeof un->sun_path);
        return -1;
    }
    memset(un, 0, sizeof *un);
    un->sun_family = AF_UNIX;
    memcpy(un->sun_path, path, len + 1);
    *sa_len = (socklen_t)sizeof *un;
    return 0;
}

/* The endpoint's address (0), a lookup started (1), or closed with why (-1). */
static int resolve(worker_zmtp_t *self, const char *endpoint, struct sockaddr_storage *sa,
                   socklen_t *sa_len)
{
    if (!strncmp(endpoint, "tcp://", 6))
        return resolve_tcp(self, endpoint + 6, sa, sa_len);
    if (!strncmp(endpoint, "ipc://", 6))
        return resolve_ipc(self, endpoint + 6, sa, sa_len);
    fail(self, "bad endpoint: expected tcp://HOST:PORT or ipc:///PATH");
    return -1;
}

static void connected(worker_zmtp_t *self)
{
    self->state = WORKER_ZMTP_HANDSHAKE;
    flush(self);
}

static void open_socket(worker_zmtp_t *self, const struct sockaddr_storage *sa, socklen_t sa_len)
{
    self->fd = socket(sa->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (self->fd < 0) {
        fail(self, "cannot create a socket: %s", strerror(errno));
        return;
    }
    /* Messages are small and waited for: never hold one back to fill a packet. */
    int one = 1;
    if (sa->ss_family != AF_UNIX)
        setsockopt(self->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(self->fd, (const struct sockaddr *)sa, sa_len) == 0)
        connected(self);
    else if (errno != EINPROGRESS)
        fail(self, "cannot connect: %s", strerror(errno));
}

/* The name's lookup answered: connect to its address, or close with why not. */
static void finish_lookup(worker_zmtp_t *self)
{
    struct sockaddr_storage sa;
    socklen_t sa_len = 0;
    char why[256];
    int rc = worker_resolve_collect(self->lookup, &sa, &sa_len, why, sizeof why);
    if (rc == 0)
        return;
    worker_resolve_destroy(&self->lookup);
    if (rc < 0) {
        fail(self, "cannot resolve %s: %s", self->host, why);
        return;
    }
    set_port(&sa, self->port);
    open_socket(self, &sa, sa_len);
}

static void finish_connect(worker_zmtp_t *self)
{
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(self->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
        err = errno;
    if (err != 0)
        fail(self, "cannot connect: %s", strerror(err));
    else
        connected(self);
}

worker_zmtp_t *worker_zmtp_connect(const char *endpoint, size_t max_size)
{
    worker_zmtp_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->fd = -1;
    self->max_size = max_size;
    self->state = WORKER_ZMTP_CONNECTING;
    self->in = malloc(IN_BUF_SIZE);
    if (!self->in || queue_handshake(self) != 0) {
        worker_zmtp_destroy(&self);
        return NULL;
    }
    struct sockaddr_storage sa;
    socklen_t sa_len = 0;
    if (resolve(self, endpoint, &sa, &sa_len) == 0)
        open_socket(self, &sa, sa_len);
    return self;
}

void worker_zmtp_destroy(worker_zmtp_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    worker_zmtp_t *self = *self_p;
    if (self->fd >= 0)
        close(self->fd);
    worker_resolve_destroy(&self->lookup);
    drop_output(self);
    free(self->in);
    free(self->body);
    free(self->message);
    free(self);
    *self_p = NULL;
}

/* --- commands ----------------------------------------------------------- */

static bool is_name(const uint8_t *name, size_t len, const char *expected)
{
    return len == strlen(expected) && !memcmp(name, expected, len);
}

static uint32_t read_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static bool is_property_name(const uint8_t *name, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        uint8_t c = name[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              memchr("-_.+", c, 4) != NULL))
            return false;
    }
    return true;
}

/* The peer's READY: well-formed properties, and a Socket-Type of ROUTER (the
 * one socket a DEALER's messages mean anything to). */
static int check_ready(worker_zmtp_t *self, const uint8_t *data, size_t len)
{
    bool typed = false;
    char shown[64];
    for (size_t pos = 0; pos < len;) {
        size_t name_len = data[pos];
        size_t after_name = len - pos - 1;
        if (name_len == 0 || name_len > after_name || after_name - name_len < 4 ||
            !is_property_name(data + pos + 1, name_len)) {
            fail(self, "the peer sent a malformed READY");
            return -1;
        }
        const uint8_t *name = data + pos + 1;
        uint32_t value_len = read_be32(name + name_len);
        if (value_len > after_name - name_len - 4) {
            fail(self, "the peer sent a malformed READY");
            return -1;
        }
        const uint8_t *value = name + name_len + 4;
        if (name_len == 11 && !strncasecmp((const char *)name, "Socket-Type", 11)) {
            if (typed) {
                fail(self, "the peer named its socket type twice");
                return -1;
            }
            typed = true;
            if (!(value_len == 6 && !memcmp(value, "ROUTER", 6))) {
                fail(self, "the peer is a %s socket, not a ROUTER",
                     printable(value, value_len, shown, sizeof shown));
                return -1;
            }
        }
        pos += 1 + name_len + 4 + value_len;
    }
    if (!typed) {
        fail(self, "the peer did not say its socket type");
        return -1;
    }
    return 0;
}

/* ERROR ends the connection whatever it says; its reason is the error. */
static void peer_error(worker_zmtp_t *self, const uint8_t *data, size_t len)
{
    char reason[256];
    if (len < 1 || data[0] != len - 1)
        fail(self, "the peer sent a malformed ERROR");
    else
        fail(self, "the peer sent ERROR: %s",
             printable(data + 1, len - 1, reason, sizeof reason));
}

/* PING (2-octet TTL, up to 16 octets of context) is answered with PONG and
 * the same context. */
static void answer_ping(worker_zmtp_t *self, const uint8_t *data, size_t len)
{
    if (len < 2 || len - 2 > 16) {
        fail(self, "the peer sent a malformed PING");
        return;
    }
    if (self->queued_commands >= MAX_QUEUED_COMMANDS)
        return;
    uint8_t pong[1 + 4 + 16] = {4, 'P', 'O', 'N', 'G'};
    memcpy(pong + 5, data + 2, len - 2);
    if (queue_command(self, pong, 5 + len - 2) != 0)
        fail(self, "out of memory");
    else
        flush(self);
}

static void handle_command(worker_zmtp_t *self, const uint8_t *body, size_t size)
{
    size_t name_len = size > 0 ? body[0] : 0;
    if (name_len == 0 || name_len > size - 1) {
        fail(self, "the peer sent a malformed command");
        return;
    }
    const uint8_t *name = body + 1, *data = body + 1 + name_len;
    size_t data_len = size - 1 - name_len;
    char shown[64];
    if (is_name(name, name_len, "ERROR"))
        peer_error(self, data, data_len);
    else if (self->phase == IN_READY) {
        if (!is_name(name, name_len, "READY"))
            fail(self, "the peer sent %s before READY",
                 printable(name, name_len, shown, sizeof shown));
        else if (check_ready(self, data, data_len) == 0) {
            self->phase = IN_TRAFFIC;
            self->state = WORKER_ZMTP_READY;
            flush(self);
        }
    } else if (is_name(name, name_len, "PING"))
        answer_ping(self, data, data_len);
    else if (is_name(name, name_len, "READY"))
        fail(self, "the peer sent READY again");
    /* Anything else (PONG, SUBSCRIBE, a later version's commands) is not for us. */
}

/* --- receiving ---------------------------------------------------------- */

/* Checks as much of the peer's greeting as has arrived, so a peer that speaks
 * something else is told apart at its first octets, not after 64. */
static int check_greeting(worker_zmtp_t *self, const uint8_t *g, size_t len)
{
    static const uint8_t null_mechanism[MECHANISM_SIZE] = "NULL";
    char shown[MECHANISM_SIZE + 1];
    if ((len >= 1 && g[0] != 0xFF) || (len >= 10 && g[9] != 0x7F))
        fail(self, "the peer does not speak ZMTP (bad greeting)");
    else if (len > 10 && g[10] < 3)
        fail(self, "the peer speaks ZMTP %u; 3.0 or later is needed", g[10]);
    else if (len >= MECHANISM_OFFSET + MECHANISM_SIZE &&
             memcmp(g + MECHANISM_OFFSET, null_mechanism, MECHANISM_SIZE) != 0)
        fail(self, "the peer wants the %s security mechanism; only NULL is supported",
             printable(g + MECHANISM_OFFSET, strnlen((const char *)g + MECHANISM_OFFSET,
                                                     MECHANISM_SIZE), shown, sizeof shown));
    return self->state == WORKER_ZMTP_CLOSED ? -1 : 0;
}

/* Reads a frame's header from in (len bytes); returns the header's size, 0
 * when more bytes are needed, -1 when it broke the protocol. The body's buffer
 * is allocated only once its size is known to be within max_size. */
static int start_frame(worker_zmtp_t *self, const uint8_t *in, size_t len)
{
    uint8_t flags = in[0];
    if (flags & FLAGS_RESERVED) {
        fail(self, "the peer sent a frame with reserved flags 0x%02x", flags);
        return -1;
    }
    if ((flags & FLAG_COMMAND) && (flags & FLAG_MORE)) {
        fail(self, "the peer sent a command marked MORE");
        return -1;
    }
    if (!(flags & FLAG_COMMAND) && self->phase == IN_READY) {
        fail(self, "the peer sent a message before READY");
        return -1;
    }
    if (!(flags & FLAG_COMMAND) && (flags & FLAG_MORE)) {
        fail(self, "the peer sent a multi-frame message (a worker takes single frames only)");
        return -1;
    }
    size_t header_len = flags & FLAG_LONG ? 9 : 2;
    if (len < header_len)
        return 0;
    uint64_t size = in[1];
    if (flags & FLAG_LONG)
        for (int i = 2; i < 9; i++)
            size = size << 8 | in[i];
    if (size > self->max_size) {
        fail(self, "the peer sent a frame of %" PRIu64 " bytes (the limit is %zu)", size,
             self->max_size);
        return -1;
    }
    self->body = malloc((size_t)size + 1);
    if (!self->body) {
        fail(self, "out of memory for a frame of %" PRIu64 " bytes", size);
        return -1;
    }
    self->body_size = (size_t)size;
    self->body_got = 0;
    self->body_flags = flags;
    self->in_body = true;
    return (int)header_len;
}

static void finish_frame(worker_zmtp_t *self)
{
    uint8_t *body = self->body;
    self->body = NULL;
    self->in_body = false;
    body[self->body_size] = '\0';
    if (self->body_flags & FLAG_COMMAND) {
        handle_command(self, body, self->body_size);
        free(body);
    } else {
        self->message = body;
        self->message_size = self->body_size;
    }
}

/* Works through the bytes received so far, up to the next whole message (or
 * until more bytes are needed, or the connection closed). */
static void parse(worker_zmtp_t *self)
{
    while (self->state != WORKER_ZMTP_CLOSED && !self->message) {
        const uint8_t *at = self->in + self->in_start;
        size_t len = self->in_end - self->in_start;
        if (self->phase == IN_GREETING) {
            if (check_greeting(self, at, len) != 0 || len < GREETING_SIZE)
                return;
            self->in_start += GREETING_SIZE;
            self->phase = IN_READY;
        } else if (!self->in_body) {
            int used = len > 0 ? start_frame(self, at, len) : 0;
            if (used <= 0)
                return;
            self->in_start += (size_t)used;
        } else {
            size_t take = self->body_size - self->body_got;
            if (take > len)
                take = len;
            memcpy(self->body + self->body_got, at, take);
            self->body_got += take;
            self->in_start += take;
            if (self->body_got < self->body_size)
                return;
            finish_frame(self);
        }
    }
}

/* Reads what the socket has: straight into a big frame's body when nothing
 * else is buffered, else into the input buffer. Returns false when nothing
 * came (it would block, or the connection closed). */
static bool read_more(worker_zmtp_t *self)
{
    uint8_t *into;
    size_t room;
    bool direct = self->in_body && self->in_start == self->in_end &&
                  self->body_size - self->body_got >= IN_BUF_SIZE;
    if (direct) {
        into = self->body + self->body_got;
        room = self->body_size - self->body_got;
    } else {
        /* parse() leaves less than a greeting or a frame header behind, so
         * there is always room. */
        memmove(self->in, self->in + self->in_start, self->in_end - self->in_start);
        self->in_end -= self->in_start;
        self->in_start = 0;
        into = self->in + self->in_end;
        room = IN_BUF_SIZE - self->in_end;
    }
    for (;;) {
        ssize_t got = read(self->fd, into, room);
        if (got > 0) {
            if (direct)
                self->body_got += (size_t)got;
            else
                self->in_end += (size_t)got;
            return true;
        }
        if (got == 0)
            fail(self, "the peer closed the connection");
        else if (errno == EINTR)
            continue;
        else if (errno != EAGAIN && errno != EWOULDBLOCK)
            fail(self, "cannot receive: %s", strerror(errno));
        return false;
    }
}

/* Reads and works through input until a message is whole or the socket has
 * nothing more for now. */
static void pump(worker_zmtp_t *self)
{
    for (int reads = 0;; reads++) {
        if (self->state == WORKER_ZMTP_CONNECTING || self->state == WORKER_ZMTP_CLOSED)
            return;
        parse(self);
        if (self->message || self->state == WORKER_ZMTP_CLOSED ||
            reads == MAX_READS_PER_PUMP || !read_more(self))
            return;
    }
}

/* --- the caller's side -------------------------------------------------- */

worker_zmtp_state_t worker_zmtp_state(const worker_zmtp_t *self)
{
    return self->state;
}

bool worker_zmtp_resolving(const worker_zmtp_t *self)
{
    return self->lookup != NULL;
}

const char *worker_zmtp_error(const worker_zmtp_t *self)
{
    return self->error;
}

int worker_zmtp_fd(const worker_zmtp_t *self)
{
    return self->lookup ? worker_resolve_fd(self->lookup) : self->fd;
}

short worker_zmtp_events(const worker_zmtp_t *self)
{
    switch (self->state) {
    case WORKER_ZMTP_CONNECTING:
        return self->lookup ? POLLIN : POLLOUT;
    case WORKER_ZMTP_HANDSHAKE:
    case WORKER_ZMTP_READY:
        return (short)(POLLIN | (can_write(self) ? POLLOUT : 0));
    default:
        return 0;
    }
}

void worker_zmtp_handle(worker_zmtp_t *self, short revents)
{
    if (self->lookup) {
        if (revents & (POLLIN | POLLERR | POLLHUP))
            finish_lookup(self);
        return;
    }
    if (self->state == WORKER_ZMTP_CONNECTING && (revents & (POLLOUT | POLLERR | POLLHUP)))
        finish_connect(self);
    if (self->state != WORKER_ZMTP_HANDSHAKE && self->state != WORKER_ZMTP_READY)
        return;
    /* Input first: a peer that sent ERROR and closed is reported by its reason,
     * not by the failed write that would follow. */
    if (revents & (POLLIN | POLLERR | POLLHUP))
        pump(self);
    flush(self);
}

bool worker_zmtp_has_message(const worker_zmtp_t *self)
{
    return self->message != NULL;
}

bool worker_zmtp_has_output(const worker_zmtp_t *self)
{
    return self->out_count > 0;
}

int worker_zmtp_send(worker_zmtp_t *self, const void *data, size_t size)
{
    if (self->state == WORKER_ZMTP_CLOSED) {
        errno = ENOTCONN;
        return -1;
    }
    if (size > self->max_size) {
        errno = EMSGSIZE;
        return -1;
    }
    /* queued_bytes counts headers too (at most 9 bytes a frame). */
    if (self->queued_msgs >= WORKER_ZMTP_QUEUE_MSGS || size > WORKER_ZMTP_QUEUE_BYTES ||
        size + 9 > WORKER_ZMTP_QUEUE_BYTES - self->queued_bytes) {
        errno = EAGAIN;
        return -1;
    }
    size_t len;
    uint8_t *frame = encode_frame(0, data, size, &len);
    if (!frame || queue_frame(self, frame, len, true) != 0) {
        errno = ENOMEM;
        return -1;
    }
    return 0;
}

void worker_zmtp_flush(worker_zmtp_t *self)
{
    if (self->state == WORKER_ZMTP_READY || self->state == WORKER_ZMTP_HANDSHAKE)
        flush(self);
}

void *worker_zmtp_recv(worker_zmtp_t *self, size_t *size)
{
    if (!self->message)
        pump(self);
    uint8_t *message = self->message;
    if (!message)
        return NULL;
    *size = self->message_size;
    self->message = NULL;
    /* The next message may already be here: found now, worker_zmtp_has_message
     * says so and the caller does not wait in poll for bytes already read. */
    if (self->state != WORKER_ZMTP_CLOSED)
        parse(self);
    return message;
}
