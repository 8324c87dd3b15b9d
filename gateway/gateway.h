/* gateway: the HTTP front of syn. Translates each HTTP request into a broker
 * `request` over a ZeroMQ DEALER and answers with the broker's `reply`. Its one state
 * beyond the requests in flight is a local view of execution statuses fed by the events
 * (gateway/view.h): status reads it can vouch for are answered without the broker.
 *
 * One thread, one loop: libmicrohttpd runs in external-polling epoll mode and its
 * epoll fd is polled together with the descriptors of the DEALER (replies) and the SUB
 * (events); each side is run only when it may have work. A request waiting for the
 * broker suspends its connection (no thread, no busy wait), so thousands can be in
 * flight; the reply, or the request timeout, resumes it.
 *
 * Server-Sent Events (GET /sse/executions/{id}, /sse/activity) use the same loop: each
 * stream is a response from a content callback that reads the client's frame queue
 * (gateway/sse.h) and suspends the connection when the queue is empty; events from
 * the SUB go through the hub (gateway/hub.h), which wakes the clients they concern.
 * Replays of the broker's event log are ordinary requests (events.replay).
 *
 * Its files: gateway.c (the loop, the request lifecycle, the events side),
 * broker_link.c (requests out, replies back by id, timeouts, redial), sse_routes.c
 * (an SSE route as a stream), request.c (one request's answer). */
#ifndef SYN_GATEWAY_H
#define SYN_GATEWAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Largest request body accepted; bigger → 413. */
#define GATEWAY_BODY_LIMIT (1024u * 1024u)

typedef struct {
    const char *http;        /* "HOST:PORT" to listen on; port 0 picks a free port */
    const char *broker;      /* broker's clients ROUTER endpoint */
    const char *events;      /* broker's events PUB endpoint */
    long request_timeout_ms; /* no reply by then → 503 {"detail":"broker unavailable"} */
    long health_timeout_ms;  /* GET /health waits this long before saying "down" */
    long max_connections;    /* concurrent HTTP connections */
    long sse_keepalive_ms;   /* ": keepalive" after this much silence; 0 → 15000 */
    long sse_buffer_bytes;   /* frames queued per SSE client before it is cut; 0 → 1 MiB */
    /* Who may reach it (gateway/access.h); NULL/false/0 leave the gateway as open as it
     * was before any of them existed, on loopback only. */
    const char *curve_secret; /* its own secret certificate: CURVE to the broker */
    const char *broker_key;   /* the broker's public certificate */
    bool insecure;            /* non-loopback --http/--broker/--events without auth/keys */
    const char *api_tokens;   /* tokens file (auth/token.h), read again by gateway_reload */
    const char *api_user;     /* with api_password: HTTP basic auth, admin scope */
    const char *api_password;
    const char *tls_cert;     /* with tls_key: HTTPS (PEM files, read once at start) */
    const char *tls_key;
    /* What one client may hold (gateway/listen.h). */
    long max_per_ip;          /* connections per client address; 0 → no limit */
    long header_timeout_ms;   /* silence allowed before a request is complete; 0 → the
                               * idle timeout of complete requests */
} gateway_config_t;

/* Events the SUB socket takes in ahead of the loop. ZeroMQ bounds that queue by count,
 * not bytes, and an event read from TCP on its own keeps the whole receive buffer it
 * was decoded into (~18 KiB for a ~1 KiB event): 10,000 queued while the loop lagged
 * behind the broker held ~180 MiB. Further events wait in the broker's PUB queue (its
 * own high-water mark), so a smaller queue here costs little slack against gaps. */
#define GATEWAY_EVENTS_BUFFERED 1000

#define GATEWAY_SSE_KEEPALIVE_MS 15000
#define GATEWAY_SSE_BUFFER_BYTES (1024L * 1024L)

/* Counters, for logs and tests. */
typedef struct {
    uint64_t requests_sent;   /* broker requests sent */
    uint64_t replies;         /* replies matched to a waiting request */
    uint64_t timeouts;        /* requests answered 503 because no reply came in time */
    uint64_t late_replies;    /* replies for requests no longer waiting (dropped) */
    uint64_t send_failures;   /* sends refused (no broker connected, pipe full) */
    uint64_t bad_messages;    /* undecodable or unexpected messages from the broker */
    uint64_t events;          /* valid events received on the events SUB */
    size_t in_flight;         /* requests waiting for the broker right now */
    size_t sse_clients;       /* SSE streams open (or being set up) right now */
    uint64_t sse_overflows;   /* SSE clients cut for falling too far behind */
    uint64_t event_gaps;      /* gaps in seq on the SUB, filled from the broker's log */
    uint64_t events_dispatched; /* events handed to SSE streams (once each) */
    uint64_t view_hits;         /* status reads answered from the local view */
    uint64_t view_updates;      /* status objects from events applied to the view */
    size_t view_entries;        /* executions in the local view right now */
    uint64_t view_clears;       /* times the view started over (gap, (dis)connect) */
    uint64_t view_evictions;    /* entries the view forgot to stay within its bounds */
    size_t view_bytes;          /* the view's footprint right now (gateway/view.h) */
    uint64_t refused_full;      /* requests answered 503 because the gateway was full */
    uint64_t refused_auth;      /* requests answered 401 or 403 */
    size_t http_connections;    /* HTTP connections open right now */
} gateway_stats_t;

typedef struct gateway_t gateway_t;

/* 0 when config may be started; else -1 and one line in err: half of a pair of flags
 * (--tls-cert/--tls-key, --api-user/--api-password, --curve-secret/--broker-key), or a
 * non-loopback address without keys or authentication and without --insecure
 * (common/endpoint.h). Nothing is read, bound or connected. */
int gateway_config_check(const gateway_config_t *config, char *err, size_t errlen);

/* Checks config (gateway_config_check), reads the keys, tokens and certificates, binds
 * the HTTP port and connects to the broker; NULL with the reason in err (a bind
 * failure names the address and the system's reason). */
gateway_t *gateway_new(const gateway_config_t *config, char *err, size_t errlen);
/* Answers every request still waiting with 503, then closes everything. */
void gateway_destroy(gateway_t **self_p);

/* The HTTP port actually bound (useful with port 0). */
int gateway_port(const gateway_t *self);

/* Runs one turn of the loop: waits up to max_wait_ms for HTTP traffic, broker replies,
 * events or a request deadline, and handles whatever is ready. Returns 0, or -1 when
 * polling failed for good. An interrupting signal returns 0 early, so the caller can
 * check its stop flag between turns. */
int gateway_poll(gateway_t *self, long max_wait_ms);

void gateway_stats(const gateway_t *self, gateway_stats_t *stats);

/* SIGHUP: reads the API tokens file again. A file that cannot be read or parsed is
 * logged as an ERROR with its file:line and the tokens loaded before stay in force.
 * 0 when the new tokens are in force (or there is no tokens file), else -1. */
int gateway_reload(gateway_t *self);

#endif
