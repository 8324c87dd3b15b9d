/* cred_proxy: see cred_proxy.h. One connection of the agent is a small state
 * machine: read a request head, then its body (Content-Length only), then
 * either refuse it or forward it through libcurl and write the answer back as
 * it comes, chunk by chunk; then the next request on the same connection. The
 * answer waits in an output buffer; past OUT_MAX the transfer is paused, so an
 * agent that does not read cannot make the worker buffer without bound. */
#include "worker/cred_proxy.h"
#include "worker/anthropic_sse.h"
#include "worker/curl_loader.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/buffer.h"
#include "common/clock.h"
#include "common/log.h"

/* Answer bytes held for a connection before the transfer is paused, and the
 * level at which it resumes. */
#define OUT_MAX (1024u * 1024u)
#define OUT_RESUME (256u * 1024u)
/* A JSON (not streamed) answer is read for its usage up to this size. */
#define JSON_MAX (4u * 1024u * 1024u)
#define EVENTS_PER_STEP 32

static const char forwarded_paths[][32] = {"/v1/messages", "/v1/messages/count_tokens"};

typedef enum { C_HEAD, C_BODY, C_FORWARD } conn_state_t;

typedef struct {
    worker_cred_proxy_t *proxy;
    int fd;
    uint32_t interest;         /* the events registered for fd */
    conn_state_t state;
    bool close_after;          /* close once the output is written */
    char *in;                  /* the request (head, body, what follows) */
    size_t in_len, in_cap;
    size_t head_len, body_len; /* of the request being handled */
    bool holds_budget;         /* body_len counts in the proxy's buffered bytes */
    /* The forwarded request: */
    CURL *easy;
    struct curl_slist *headers;
    char *url;
    bool paused;
    bool counting;             /* a /v1/messages answer: its usage counts */
    bool counted;
    long status;
    bool head_sent;
    char *resp_head;           /* the answer's headers kept for the agent */
    size_t resp_head_len, resp_head_cap;
    bool sse;                  /* text/event-stream (else JSON) */
    anthropic_sse_t stream;
    char *json;
    size_t json_len, json_cap;
    /* The answer for the agent: */
    char *out;
    size_t out_len, out_off, out_cap;
} conn_t;

struct worker_cred_proxy_t {
    const worker_curl_t *curl;
    CURLM *multi;
    int epfd, listen_fd;
    char *upstream;            /* without a trailing '/' */
    char *auth_header;         /* "x-api-key: ..." or "authorization: Bearer ..."; or NULL */
    bool oauth;
    const worker_models_t *models;
    worker_models_t *own_models; /* the compiled-in table, when the config names none */
    conn_t *conns[WORKER_CRED_PROXY_MAX_CONNS];
    int nconns;
    int64_t timer_at;          /* -1 = none */
    size_t buffered;
    /* What it counted: */
    int64_t messages, refused;
    int64_t input, output, cache_write, cache_read;
    double cost;
    bool unpriced;
    char model[128];
};

/* --- connections ----------------------------------------------------------- */

/* Whether the connection may take its next request now: not while the
 * answers it has not read pile up. */
static bool takes_requests(const conn_t *c)
{
    return c->state != C_FORWARD && !c->close_after && c->out_len - c->out_off <= OUT_MAX;
}

static void set_interest(conn_t *c)
{
    uint32_t want = EPOLLRDHUP;
    if (takes_requests(c))
        want |= EPOLLIN;
    if (c->out_off < c->out_len)
        want |= EPOLLOUT;
    if (want == c->interest)
        return;
    struct epoll_event ev = {.events = want, .data.fd = c->fd};
    if (epoll_ctl(c->proxy->epfd, EPOLL_CTL_MOD, c->fd, &ev) == 0)
        c->interest = want;
}

static void release_budget(conn_t *c)
{
    if (c->holds_budget) {
        c->proxy->buffered -= c->body_len;
        c->holds_budget = false;
    }
}

static void end_transfer(conn_t *c)
{
    const worker_curl_t *curl = c->proxy->curl;
    if (c->easy) {
        curl->multi_remove_handle(c->proxy->multi, c->easy);
        curl->easy_cleanup(c->easy);
        c->easy = NULL;
    }
    curl->slist_free_all(c->headers);
    c->headers = NULL;
    free(c->url);
    c->url = NULL;
    c->paused = false;
}

static void count_answer(conn_t *c);

static void conn_close(conn_t *c)
{
    worker_cred_proxy_t *p = c->proxy;
    count_answer(c);
    end_transfer(c);
    release_budget(c);
    epoll_ctl(p->epfd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    anthropic_sse_free(&c->stream);
    free(c->in);
    free(c->out);
    free(c->resp_head);
    free(c->json);
    for (int i = 0; i < p->nconns; i++)
        if (p->conns[i] == c) {
            p->conns[i] = p->conns[--p->nconns];
            break;
        }
    free(c);
}

static bool out_append(conn_t *c, const char *data, size_t len)
{
    if (c->out_off > 0 && c->out_off == c->out_len)
        c->out_off = c->out_len = 0;
    if (!syn_buffer_reserve(&c->out, &c->out_cap, c->out_len + len, 4096))
        return false;
    memcpy(c->out + c->out_len, data, len);
    c->out_len += len;
    return true;
}

static const char *reason_phrase(long status)
{
    switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 411: return "Length Required";
    case 413: return "Payload Too Large";
    case 431: return "Request Header Fields Too Large";
    case 429: return "Too Many Requests";
    case 500: return "Internal Server Error";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    case 529: return "Overloaded";
    default: return "Status";
    }
}

/* An answer of the proxy's own, shaped like the API's errors. */
static void answer_error(conn_t *c, long status, const char *type, const char *message,
                         bool close_after)
{
    json_t *body = json_pack("{s:s, s:{s:s, s:s}}", "type", "error", "error", "type", type,
                             "message", message);
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    char head[256];
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 %ld %s\r\ncontent-type: application/json\r\ncontent-length: "
                     "%zu\r\nconnection: %s\r\n\r\n",
                     status, reason_phrase(status), text ? strlen(text) : 0,
                     close_after ? "close" : "keep-alive");
    if (!out_append(c, head, (size_t)n) || (text && !out_append(c, text, strlen(text))))
        close_after = true;
    free(text);
    if (close_after)
        c->close_after = true;
}

/* --- requests -------------------------------------------------------------- */

static bool is_tchar(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

/* Request headers the proxy drops: hop-by-hop ones, the framing it redoes, the
 * agent's key (the real one replaces it) and compression (the proxy reads the
 * answer for its usage). */
static bool dropped_request_header(const char *name, size_t len)
{
    static const char *const names[] = {
        "host", "content-length", "connection", "keep-alive", "proxy-connection",
        "proxy-authorization", "te", "trailer", "transfer-encoding", "upgrade", "expect",
        "x-api-key", "authorization", "accept-encoding"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strlen(names[i]) == len && strncasecmp(name, names[i], len) == 0)
            return true;
    return false;
}

typedef struct {
    const char *method, *target;
    size_t method_len, target_len;
    long long content_length; /* -1 = none */
    bool chunked, close;
} request_t;

/* Parses the head in c->in[0..head_len) strictly: 0, or an HTTP status (with
 * why) for a head that is not a well-formed HTTP/1.1 request. */
static long parse_head(conn_t *c, request_t *r, const char **why)
{
    const char *p = c->in, *end = c->in + c->head_len - 2; /* the final CRLF */
    memset(r, 0, sizeof *r);
    r->content_length = -1;
    const char *eol = memchr(p, '\r', (size_t)(end - p));
    if (!eol || eol[1] != '\n') {
        *why = "malformed request line";
        return 400;
    }
    const char *sp1 = memchr(p, ' ', (size_t)(eol - p));
    const char *sp2 = sp1 ? memchr(sp1 + 1, ' ', (size_t)(eol - sp1 - 1)) : NULL;
    if (!sp1 || !sp2 || sp1 == p || sp2 == sp1 + 1) {
        *why = "malformed request line";
        return 400;
    }
    for (const char *q = p; q < sp1; q++)
        if (!is_tchar(*q)) {
            *why = "malformed method";
            return 400;
        }
    for (const char *q = sp1 + 1; q < sp2; q++)
        if ((unsigned char)*q <= 0x20 || *q == 0x7f) {
            *why = "malformed target";
            return 400;
        }
    if ((size_t)(eol - sp2 - 1) != 8 || strncmp(sp2 + 1, "HTTP/1.1", 8) != 0) {
        *why = "only HTTP/1.1 is spoken here";
        return 505;
    }
    r->method = p;
    r->method_len = (size_t)(sp1 - p);
    r->target = sp1 + 1;
    r->target_len = (size_t)(sp2 - sp1 - 1);
    for (p = eol + 2; p < end;) {
        eol = memchr(p, '\r', (size_t)(end + 2 - p));
        if (!eol || eol[1] != '\n' || memchr(p, '\n', (size_t)(eol - p))) {
            *why = "malformed header line";
            return 400;
        }
        const char *colon = memchr(p, ':', (size_t)(eol - p));
        if (!colon || colon == p) {
            *why = "malformed header line";
            return 400;
        }
        for (const char *q = p; q < colon; q++)
            if (!is_tchar(*q)) {
                *why = "malformed header name";
                return 400;
            }
        const char *v = colon + 1;
        for (const char *q = v; q < eol; q++)
            if (((unsigned char)*q < 0x20 && *q != '\t') || *q == 0x7f) {
                *why = "control character in a header value";
                return 400;
            }
        while (v < eol && (*v == ' ' || *v == '\t'))
            v++;
        size_t name_len = (size_t)(colon - p), value_len = (size_t)(eol - v);
        while (value_len > 0 && (v[value_len - 1] == ' ' || v[value_len - 1] == '\t'))
            value_len--;
        if (name_len == 14 && strncasecmp(p, "content-length", 14) == 0) {
            long long n = 0;
            if (value_len == 0 || value_len > 12) {
                *why = "bad content-length";
                return 400;
            }
            for (size_t i = 0; i < value_len; i++) {
                if (v[i] < '0' || v[i] > '9') {
                    *why = "bad content-length";
                    return 400;
                }
                n = n * 10 + (v[i] - '0');
            }
            if (r->content_length >= 0 && r->content_length != n) {
                *why = "conflicting content-length";
                return 400;
            }
            r->content_length = n;
        } else if (name_len == 17 && strncasecmp(p, "transfer-encoding", 17) == 0) {
            r->chunked = true;
        } else if (name_len == 10 && strncasecmp(p, "connection", 10) == 0 && value_len == 5 &&
                   strncasecmp(v, "close", 5) == 0) {
            r->close = true;
        }
        p = eol + 2;
    }
    if (r->chunked) {
        *why = "a request body must have a content-length (no transfer-encoding)";
        return 411;
    }
    return 0;
}

/* Whether the request is one the proxy forwards: POST to a Messages path. */
static bool forwardable(const request_t *r, bool *counting)
{
    if (r->method_len != 4 || strncmp(r->method, "POST", 4) != 0)
        return false;
    size_t path_len = strcspn(r->target, "? ");
    if (path_len > r->target_len)
        path_len = r->target_len;
    for (size_t i = 0; i < sizeof forwarded_paths / sizeof forwarded_paths[0]; i++)
        if (strlen(forwarded_paths[i]) == path_len &&
            strncmp(r->target, forwarded_paths[i], path_len) == 0) {
            *counting = i == 0;
            return true;
        }
    return false;
}

/* --- the forwarded answer -------------------------------------------------- */

static size_t on_header(char *buffer, size_t size, size_t nitems, void *userdata)
{
    conn_t *c = userdata;
    size_t n = size * nitems;
    if (c->head_sent)
        return n; /* trailers */
    if (n >= 5 && strncmp(buffer, "HTTP/", 5) == 0) {
        const char *sp = memchr(buffer, ' ', n);
        c->status = sp ? strtol(sp + 1, NULL, 10) : 0;
        c->resp_head_len = 0;
        c->sse = false;
        return n;
    }
    if (n <= 2 && (n == 0 || buffer[0] == '\r' || buffer[0] == '\n')) {
        if (c->status >= 100 && c->status < 200)
            return n; /* an interim answer: the real one follows */
        char line[128];
        int len = snprintf(line, sizeof line, "HTTP/1.1 %ld %s\r\n", c->status,
                           reason_phrase(c->status));
        static const char tail[] = "transfer-encoding: chunked\r\n\r\n";
        if (!out_append(c, line, (size_t)len) ||
            (c->resp_head_len && !out_append(c, c->resp_head, c->resp_head_len)) ||
            !out_append(c, tail, sizeof tail - 1))
            return 0;
        c->head_sent = true;
        return n;
    }
    const char *colon = memchr(buffer, ':', n);
    if (!colon)
        return n;
    size_t name_len = (size_t)(colon - buffer);
    static const char *const hop[] = {"connection", "keep-alive", "proxy-connection",
                                      "transfer-encoding", "te", "trailer", "upgrade",
                                      "content-length"};
    for (size_t i = 0; i < sizeof hop / sizeof hop[0]; i++)
        if (strlen(hop[i]) == name_len && strncasecmp(buffer, hop[i], name_len) == 0)
            return n;
    if (name_len == 12 && strncasecmp(buffer, "content-type", 12) == 0)
        c->sse = strstr(colon, "text/event-stream") != NULL;
    size_t len = n;
    while (len > 0 && (buffer[len - 1] == '\r' || buffer[len - 1] == '\n'))
        len--;
    /* Kept with CRLF whatever the upstream's HTTP version ended it with. */
    if (!syn_buffer_reserve(&c->resp_head, &c->resp_head_cap, c->resp_head_len + len + 2, 1024))
        return 0;
    memcpy(c->resp_head + c->resp_head_len, buffer, len);
    memcpy(c->resp_head + c->resp_head_len + len, "\r\n", 2);
    c->resp_head_len += len + 2;
    return n;
}

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    conn_t *c = userdata;
    size_t n = size * nmemb;
    if (n == 0)
        return 0;
    if (c->out_len - c->out_off > OUT_MAX) {
        c->paused = true;
        return CURL_WRITEFUNC_PAUSE;
    }
    char frame[32];
    int len = snprintf(frame, sizeof frame, "%zx\r\n", n);
    if (!out_append(c, frame, (size_t)len) || !out_append(c, ptr, n) ||
        !out_append(c, "\r\n", 2))
        return 0;
    if (c->counting && c->status == 200) {
        if (c->sse) {
            anthropic_sse_feed(&c->stream, NULL, ptr, n);
        } else if (c->json_len + n <= JSON_MAX &&
                   syn_buffer_reserve(&c->json, &c->json_cap, c->json_len + n, 4096)) {
            memcpy(c->json + c->json_len, ptr, n);
            c->json_len += n;
        }
    }
    return n;
}

static int64_t count_of(const json_t *object, const char *name)
{
    json_t *v = json_object_get(object, name);
    return json_is_integer(v) && json_integer_value(v) >= 0 ? (int64_t)json_integer_value(v) : 0;
}

/* Adds a /v1/messages answer's usage to the proxy's counts (once; a stream cut
 * short still counts what its message_start said: those tokens were billed). */
static void count_answer(conn_t *c)
{
    if (!c->counting || c->counted || c->status != 200)
        return;
    c->counted = true;
    worker_usage_t u = {0};
    if (c->sse) {
        anthropic_sse_end(&c->stream, NULL);
        u = c->stream.usage;
    } else if (c->json_len > 0) {
        json_error_t jerr;
        json_t *body = json_loadb(c->json, c->json_len, 0, &jerr);
        json_t *counts = json_object_get(body, "usage");
        u.input_tokens = count_of(counts, "input_tokens");
        u.output_tokens = count_of(counts, "output_tokens");
        u.cache_creation_tokens = count_of(counts, "cache_creation_input_tokens");
        u.cache_read_tokens = count_of(counts, "cache_read_input_tokens");
        worker_copy_text(u.model, sizeof u.model,
                         json_string_value(json_object_get(body, "model")));
        json_decref(body);
    }
    if (!*u.model && u.input_tokens + u.output_tokens + u.cache_creation_tokens +
                             u.cache_read_tokens == 0)
        return;
    worker_cred_proxy_t *p = c->proxy;
    p->messages++;
    p->input += u.input_tokens;
    p->output += u.output_tokens;
    p->cache_write += u.cache_creation_tokens;
    p->cache_read += u.cache_read_tokens;
    double cost = 0;
    if (worker_models_cost(p->models, u.model, u.input_tokens, u.output_tokens,
                           u.cache_creation_tokens, u.cache_read_tokens, &cost))
        p->cost += cost;
    else
        p->unpriced = true;
    if (*u.model)
        memcpy(p->model, u.model, sizeof p->model);
}

static void handle_request(conn_t *c);

/* The request in hand is answered: its bytes go, and the next one (already
 * read, pipelined) is handled. */
static void next_request(conn_t *c)
{
    release_budget(c);
    size_t used = c->head_len + c->body_len;
    memmove(c->in, c->in + used, c->in_len - used);
    c->in_len -= used;
    if (c->in)
        c->in[c->in_len] = '\0';
    c->head_len = c->body_len = 0;
    c->counting = false;
    c->state = C_HEAD;
}

/* The transfer ended: the answer's end (or the proxy's error) is queued, and
 * the connection goes on to its next request. */
static void transfer_done(conn_t *c, CURLcode result)
{
    const worker_curl_t *curl = c->proxy->curl;
    if (result != CURLE_OK && !c->head_sent) {
        char message[CURL_ERROR_SIZE + 128];
        snprintf(message, sizeof message,
                 "syn credential proxy: cannot complete the request to the Messages API: %s",
                 curl->easy_strerror(result));
        syn_warn("worker", "credential proxy: %s", message);
        c->status = 0;
        answer_error(c, 502, "api_error", message, false);
    } else if (result != CURLE_OK) {
        c->close_after = true; /* a cut chunked body tells the agent it failed */
    } else if (!c->head_sent) {
        c->close_after = true;
    } else if (!out_append(c, "0\r\n\r\n", 5)) {
        c->close_after = true;
    }
    count_answer(c);
    end_transfer(c);
    next_request(c);
    handle_request(c);
}

static bool start_transfer(conn_t *c, const request_t *r)
{
    worker_cred_proxy_t *p = c->proxy;
    const worker_curl_t *curl = p->curl;
    c->status = 0;
    c->head_sent = c->counted = false;
    c->resp_head_len = c->json_len = 0;
    anthropic_sse_free(&c->stream);
    anthropic_sse_init(&c->stream);
    if (asprintf(&c->url, "%s%.*s", p->upstream, (int)r->target_len, r->target) < 0) {
        c->url = NULL;
        return false;
    }
    /* The agent's headers, but those dropped_request_header names. */
    bool ok = true;
    for (const char *line = strstr(c->in, "\r\n") + 2; ok && line < c->in + c->head_len - 2;) {
        const char *eol = strstr(line, "\r\n");
        size_t name_len = strcspn(line, ":");
        if (!dropped_request_header(line, name_len)) {
            char *text = strndup(line, (size_t)(eol - line));
            struct curl_slist *more = text ? curl->slist_append(c->headers, text) : NULL;
            free(text);
            ok = more != NULL;
            if (more)
                c->headers = more;
        }
        line = eol + 2;
    }
    const char *added[] = {"Expect:", p->auth_header,
                           p->oauth ? "anthropic-beta: oauth-2025-04-20" : NULL};
    for (size_t i = 0; ok && i < sizeof added / sizeof added[0]; i++)
        if (added[i]) {
            struct curl_slist *more = curl->slist_append(c->headers, added[i]);
            ok = more != NULL;
            if (more)
                c->headers = more;
        }
    c->easy = ok ? curl->easy_init() : NULL;
    if (!c->easy)
        return false;
    CURL *e = c->easy;
    curl->easy_setopt(e, CURLOPT_PRIVATE, c);
    curl->easy_setopt(e, CURLOPT_URL, c->url);
    curl->easy_setopt(e, CURLOPT_POST, 1L);
    curl->easy_setopt(e, CURLOPT_POSTFIELDS, c->in + c->head_len);
    curl->easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)c->body_len);
    curl->easy_setopt(e, CURLOPT_HTTPHEADER, c->headers);
    curl->easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl->easy_setopt(e, CURLOPT_HEADERDATA, c);
    curl->easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl->easy_setopt(e, CURLOPT_WRITEDATA, c);
    curl->easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl->easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl->easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, 30000L);
    curl->easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl->easy_setopt(e, CURLOPT_LOW_SPEED_TIME, 300L);
    if (curl->multi_add_handle(p->multi, e) != CURLM_OK) {
        curl->easy_cleanup(e);
        c->easy = NULL;
        return false;
    }
    c->state = C_FORWARD;
    return true;
}

/* A whole request is in: refused, or forwarded. */
static void dispatch(conn_t *c, const request_t *r)
{
    bool counting = false;
    if (!forwardable(r, &counting)) {
        worker_cred_proxy_t *p = c->proxy;
        if (p->refused++ == 0)
            syn_warn("worker", "credential proxy: refused %.*s %.*s (only POST /v1/messages "
                               "and /v1/messages/count_tokens are forwarded)",
                     (int)(r->method_len > 16 ? 16 : r->method_len), r->method,
                     (int)(r->target_len > 200 ? 200 : r->target_len), r->target);
        char message[512];
        snprintf(message, sizeof message,
                 "syn credential proxy: %.*s %.*s is not forwarded; only POST /v1/messages "
                 "and POST /v1/messages/count_tokens reach the Messages API",
                 (int)(r->method_len > 16 ? 16 : r->method_len), r->method,
                 (int)(r->target_len > 200 ? 200 : r->target_len), r->target);
        answer_error(c, 403, "permission_error", message, r->close);
        next_request(c);
        return;
    }
    c->counting = counting;
    c->close_after = r->close; /* after this answer */
    if (!start_transfer(c, r)) {
        end_transfer(c);
        answer_error(c, 503, "api_error", "syn credential proxy: out of memory", true);
        next_request(c);
    }
}

/* Handles the whole requests in c->in, one after the other (refused ones are
 * answered at once; a forwarded one waits for its transfer). */
static void handle_request(conn_t *c)
{
    worker_cred_proxy_t *p = c->proxy;
    while (takes_requests(c) && c->in_len > 0) {
        if (c->state == C_HEAD) {
            char *end = NULL;
            for (size_t i = 0; i + 4 <= c->in_len; i++)
                if (memcmp(c->in + i, "\r\n\r\n", 4) == 0) {
                    end = c->in + i + 4;
                    break;
                }
            if (!end) {
                if (c->in_len >= WORKER_CRED_PROXY_HEAD_MAX)
                    answer_error(c, 431, "invalid_request_error",
                                 "syn credential proxy: request head too large", true);
                return;
            }
            c->head_len = (size_t)(end - c->in);
            request_t r;
            const char *why = NULL;
            long bad = parse_head(c, &r, &why);
            if (bad) {
                char message[256];
                snprintf(message, sizeof message, "syn credential proxy: %s", why);
                answer_error(c, bad, "invalid_request_error", message, true);
                return;
            }
            size_t body = r.content_length > 0 ? (size_t)r.content_length : 0;
            if (body > WORKER_CRED_PROXY_BODY_MAX ||
                p->buffered + body > WORKER_CRED_PROXY_BUFFER_MAX) {
                answer_error(c, 413, "request_too_large",
                             "syn credential proxy: request body too large", true);
                return;
            }
            c->body_len = body;
            c->holds_budget = true;
            p->buffered += body;
            c->state = C_BODY;
        }
        if (c->in_len < c->head_len + c->body_len)
            return; /* the rest of the body is still to come */
        /* The head is parsed again (cheap, and nothing of it is kept meanwhile). */
        request_t r;
        const char *why;
        parse_head(c, &r, &why);
        dispatch(c, &r);
    }
}

static void conn_read(conn_t *c)
{
    for (;;) {
        size_t limit = c->state == C_HEAD ? WORKER_CRED_PROXY_HEAD_MAX
                                          : c->head_len + c->body_len;
        if (c->in_len >= limit)
            break;
        if (!syn_buffer_reserve(&c->in, &c->in_cap, limit + 1, 16384)) {
            c->close_after = true;
            return;
        }
        ssize_t n = read(c->fd, c->in + c->in_len, limit - c->in_len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            break;
        if (n <= 0) {
            c->close_after = true;
            c->out_off = c->out_len; /* nobody left to read it */
            return;
        }
        c->in_len += (size_t)n;
        c->in[c->in_len] = '\0';
        if (c->state == C_HEAD || c->in_len >= c->head_len + c->body_len)
            break;
    }
    handle_request(c);
}

static void conn_write(conn_t *c)
{
    while (c->out_off < c->out_len) {
        ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            break;
        if (n < 0) {
            c->close_after = true;
            c->out_off = c->out_len;
            break;
        }
        c->out_off += (size_t)n;
    }
    if (c->paused && c->out_len - c->out_off < OUT_RESUME) {
        c->paused = false;
        c->proxy->curl->easy_pause(c->easy, CURLPAUSE_CONT);
    }
}

/* Returns false when the connection was closed. */
static bool conn_event(conn_t *c, uint32_t events)
{
    if (events & (EPOLLERR | EPOLLHUP)) {
        conn_close(c);
        return false;
    }
    if ((events & EPOLLRDHUP) && c->state == C_FORWARD) {
        conn_close(c); /* the agent gave up on the answer */
        return false;
    }
    if (events & (EPOLLIN | EPOLLRDHUP))
        conn_read(c);
    if (events & EPOLLOUT)
        conn_write(c);
    return true;
}

static void conn_settle(conn_t *c)
{
    if (c->out_off < c->out_len)
        conn_write(c);
    if (c->state == C_HEAD && takes_requests(c) && c->in_len > 0)
        handle_request(c); /* requests held back while answers piled up */
    if (c->close_after && c->state != C_FORWARD && c->out_off >= c->out_len)
        conn_close(c);
    else
        set_interest(c);
}

static void accept_all(worker_cred_proxy_t *p)
{
    for (;;) {
        int fd = accept4(p->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return;
        conn_t *c = p->nconns < WORKER_CRED_PROXY_MAX_CONNS ? calloc(1, sizeof *c) : NULL;
        struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.fd = fd};
        if (!c || epoll_ctl(p->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
            static const char busy[] =
                "HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";
            if (send(fd, busy, sizeof busy - 1, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
                (void)0; /* the agent sees the connection close either way */
            close(fd);
            free(c);
            continue;
        }
        c->proxy = p;
        c->fd = fd;
        c->interest = ev.events;
        anthropic_sse_init(&c->stream);
        p->conns[p->nconns++] = c;
    }
}

/* --- libcurl's side --------------------------------------------------------- */

static int on_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    (void)easy;
    (void)socketp;
    worker_cred_proxy_t *p = userp;
    if (what == CURL_POLL_REMOVE) {
        epoll_ctl(p->epfd, EPOLL_CTL_DEL, fd, NULL);
        return 0;
    }
    struct epoll_event ev = {.events = (what & CURL_POLL_IN ? EPOLLIN : 0u) |
                                       (what & CURL_POLL_OUT ? EPOLLOUT : 0u),
                             .data.fd = fd};
    if (epoll_ctl(p->epfd, EPOLL_CTL_MOD, fd, &ev) != 0 && errno == ENOENT)
        epoll_ctl(p->epfd, EPOLL_CTL_ADD, fd, &ev);
    return 0;
}

static int on_timer(CURLM *multi, long timeout_ms, void *userp)
{
    (void)multi;
    worker_cred_proxy_t *p = userp;
    p->timer_at = timeout_ms < 0 ? -1 : syn_mono_ms() + timeout_ms;
    return 0;
}

static void collect_done(worker_cred_proxy_t *p)
{
    CURLMsg *msg;
    int left;
    while ((msg = p->curl->multi_info_read(p->multi, &left)) != NULL) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        conn_t *c = NULL;
        CURLcode result = msg->data.result;
        p->curl->easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&c);
        if (c) {
            transfer_done(c, result);
            conn_settle(c);
        }
    }
}

/* --- the proxy -------------------------------------------------------------- */

static conn_t *find_conn(worker_cred_proxy_t *p, int fd)
{
    for (int i = 0; i < p->nconns; i++)
        if (p->conns[i]->fd == fd)
            return p->conns[i];
    return NULL;
}

void worker_cred_proxy_step(worker_cred_proxy_t *self, int64_t now_ms)
{
    struct epoll_event events[EVENTS_PER_STEP];
    int n = epoll_wait(self->epfd, events, EVENTS_PER_STEP, 0);
    int running = 0;
    for (int i = 0; i < n; i++) {
        int fd = events[i].data.fd;
        if (fd == self->listen_fd) {
            accept_all(self);
            continue;
        }
        conn_t *c = find_conn(self, fd);
        if (c) {
            if (conn_event(c, events[i].events))
                conn_settle(c);
            continue;
        }
        int action = (events[i].events & (EPOLLIN | EPOLLHUP) ? CURL_CSELECT_IN : 0) |
                     (events[i].events & EPOLLOUT ? CURL_CSELECT_OUT : 0);
        if (!action && (events[i].events & EPOLLERR))
            action = CURL_CSELECT_ERR;
        self->curl->multi_socket_action(self->multi, fd, action, &running);
        collect_done(self);
    }
    if (self->timer_at >= 0 && now_ms >= self->timer_at) {
        self->timer_at = -1;
        self->curl->multi_socket_action(self->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    }
    collect_done(self);
    /* A transfer may have queued answer bytes without its connection's event. */
    for (int i = self->nconns - 1; i >= 0; i--)
        if (i < self->nconns)
            conn_settle(self->conns[i]);
    collect_done(self); /* a resumed transfer may have ended while it wrote */
}

int worker_cred_proxy_prepare(char *err, size_t errlen)
{
    static bool ready = false;
    char why[256];
    const worker_curl_t *curl = ready ? NULL : worker_curl_load(why, sizeof why);
    if (ready)
        return 0;
    if (!curl) {
        snprintf(err, errlen, "the credential proxy needs libcurl (package libcurl4): %s", why);
        return -1;
    }
    if (curl->global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        snprintf(err, errlen, "cannot initialise libcurl");
        return -1;
    }
    ready = true;
    return 0;
}

worker_cred_proxy_t *worker_cred_proxy_new(int listen_fd, const worker_cred_proxy_config_t *config,
                                           char *err, size_t errlen)
{
    char why[256];
    const worker_curl_t *curl =
        worker_cred_proxy_prepare(err, errlen) == 0 ? worker_curl_load(why, sizeof why) : NULL;
    if (!curl) {
        close(listen_fd);
        return NULL;
    }
    worker_cred_proxy_t *self = calloc(1, sizeof *self);
    if (!self) {
        snprintf(err, errlen, "out of memory");
        close(listen_fd);
        return NULL;
    }
    self->curl = curl;
    self->listen_fd = listen_fd;
    /* accept4 below must never wait, whatever the socket was made with. */
    int flags = fcntl(listen_fd, F_GETFL);
    if (flags >= 0)
        fcntl(listen_fd, F_SETFL, flags | O_NONBLOCK);
    self->timer_at = -1;
    self->models = config->models;
    if (!self->models)
        self->models = self->own_models = worker_models_default();
    self->epfd = epoll_create1(EPOLL_CLOEXEC);
    const char *upstream = config->upstream && *config->upstream ? config->upstream
                                                                 : "https://api.anthropic.com";
    size_t len = strlen(upstream);
    while (len > 0 && upstream[len - 1] == '/')
        len--;
    self->upstream = strndup(upstream, len);
    int rc = 0;
    if (config->api_key && *config->api_key)
        rc = asprintf(&self->auth_header, "x-api-key: %s", config->api_key);
    else if (config->oauth_token && *config->oauth_token) {
        rc = asprintf(&self->auth_header, "authorization: Bearer %s", config->oauth_token);
        self->oauth = true;
    }
    if (rc < 0)
        self->auth_header = NULL;
    self->multi = curl->multi_init();
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = listen_fd};
    if (self->epfd < 0 || !self->upstream || rc < 0 || !self->multi || !self->models ||
        epoll_ctl(self->epfd, EPOLL_CTL_ADD, listen_fd, &ev) != 0) {
        snprintf(err, errlen, "cannot start the credential proxy: %s",
                 errno ? strerror(errno) : "out of memory");
        worker_cred_proxy_destroy(&self);
        return NULL;
    }
    curl->multi_setopt(self->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
    curl->multi_setopt(self->multi, CURLMOPT_SOCKETDATA, self);
    curl->multi_setopt(self->multi, CURLMOPT_TIMERFUNCTION, on_timer);
    curl->multi_setopt(self->multi, CURLMOPT_TIMERDATA, self);
    return self;
}

void worker_cred_proxy_destroy(worker_cred_proxy_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    worker_cred_proxy_t *self = *self_p;
    while (self->nconns > 0)
        conn_close(self->conns[self->nconns - 1]);
    if (self->multi)
        self->curl->multi_cleanup(self->multi);
    if (self->epfd >= 0)
        close(self->epfd);
    close(self->listen_fd);
    worker_models_destroy(&self->own_models);
    free(self->upstream);
    if (self->auth_header) {
        memset(self->auth_header, 0, strlen(self->auth_header));
        free(self->auth_header);
    }
    free(self);
    *self_p = NULL;
}

int worker_cred_proxy_fd(const worker_cred_proxy_t *self)
{
    return self->epfd;
}

int64_t worker_cred_proxy_deadline(const worker_cred_proxy_t *self)
{
    return self->timer_at;
}

int64_t worker_cred_proxy_messages(const worker_cred_proxy_t *self)
{
    return self->messages;
}

int64_t worker_cred_proxy_refused(const worker_cred_proxy_t *self)
{
    return self->refused;
}

void worker_cred_proxy_account(const worker_cred_proxy_t *self, worker_usage_t *usage)
{
    if (!self || self->messages == 0)
        return;
    usage->reported = true;
    usage->input_tokens = self->input;
    usage->output_tokens = self->output;
    usage->cache_creation_tokens = self->cache_write;
    usage->cache_read_tokens = self->cache_read;
    usage->cost_reported = true;
    usage->cost_usd = self->cost;
    snprintf(usage->cost_source, sizeof usage->cost_source, "%s",
             self->unpriced ? "unknown" : "proxy");
    if (!*usage->model)
        memcpy(usage->model, self->model, sizeof usage->model);
    if (usage->num_turns == 0)
        usage->num_turns = self->messages;
}
