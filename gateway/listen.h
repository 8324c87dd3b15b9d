/* listen: how the gateway's HTTP side listens, and how much one client may hold.
 *
 * libmicrohttpd in external-polling epoll mode on one address (gateway/gateway.h has
 * the loop), over TLS when a certificate and key are given: libmicrohttpd's own TLS
 * (GnuTLS), the PEM files read once at start.
 *
 * Slow and greedy clients (docs/api.md, "Limits") must not keep others out:
 *   - one client address holds at most max_per_ip connections; libmicrohttpd closes
 *     any more as soon as it has accepted them;
 *   - a connection whose request is not complete yet is closed after
 *     header_timeout_ms without a byte (libmicrohttpd counts whole seconds, so it is
 *     rounded up); once a request is complete (gateway_listen_request_in) the
 *     connection gets the long idle timeout while it is answered, which event
 *     streams and slow answers need, and the short one again once the answer is
 *     out (gateway_listen_request_done): a keep-alive connection waiting for its
 *     next request cannot be told from a client that is slow to send one;
 *   - past max_connections a request is answered 503 with Retry-After
 *     (gateway_listen_full) rather than left hanging: libmicrohttpd would close a
 *     connection over its own limit unanswered, so that limit sits LISTEN_HEADROOM
 *     above max_connections, room to read such requests and answer them;
 *   - libmicrohttpd's own log lines (one per refused connection, say) go through
 *     common/ratelog.h: one line per kind per interval, with the count held back.
 *     Any access_token=... in them is blanked first. */
#ifndef SYN_GATEWAY_LISTEN_H
#define SYN_GATEWAY_LISTEN_H

#include "gateway/gateway.h"

#include <microhttpd.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

/* Connections beyond max_connections that libmicrohttpd still accepts, so that they
 * can be answered 503. Within the 256 descriptors main.c adds to max_connections. */
#define LISTEN_HEADROOM 64
/* Streams that send nothing, and requests answered slowly, are closed after this. */
#define LISTEN_IDLE_TIMEOUT_S 60
/* Largest certificate or key file read. */
#define LISTEN_PEM_MAX (1024 * 1024)

typedef struct gateway_listen_t gateway_listen_t;

/* Decodes a path or a query key or value in place, as libmicrohttpd's unescape
 * callback (set here) does for every request; returns the decoded length. MHD hands
 * each on as a C string, so a decoded %00 would end it early:
 * "/workflows/research%00x" would act on workflow research. Each escaped NUL becomes
 * the overlong pair C0 80 before MHD's own decoding; that is not UTF-8, so the path
 * fails the router's text check (404) and a query value its parameter's check (422),
 * as any other bad byte does. Never longer than the text it is given. */
size_t gateway_listen_unescape(char *text);

/* Reads the TLS files (when given) and starts libmicrohttpd on config->http with
 * on_request and on_completed (cls for both); NULL with the reason in err: the
 * address and the system's reason for a failed bind, the file and the reason for an
 * unreadable certificate or key. */
gateway_listen_t *gateway_listen_new(const gateway_config_t *config,
                                     MHD_AccessHandlerCallback on_request,
                                     MHD_RequestCompletedCallback on_completed, void *cls,
                                     char *err, size_t errlen);
/* Stops libmicrohttpd (no connection may be suspended by then). */
void gateway_listen_destroy(gateway_listen_t **self_p);

struct MHD_Daemon *gateway_listen_daemon(const gateway_listen_t *self);
int gateway_listen_port(const gateway_listen_t *self);
/* libmicrohttpd's epoll descriptor, for the gateway's poll. */
int gateway_listen_epoll_fd(const gateway_listen_t *self);

/* True when more than max_connections connections are open (the caller's included):
 * the request should be answered 503 and its connection closed. */
bool gateway_listen_full(const gateway_listen_t *self);
/* Connections open right now. */
size_t gateway_listen_connections(const gateway_listen_t *self);

/* The request on connection is complete: from now on it may be idle for as long as
 * any complete request (a stream, a keep-alive connection). */
void gateway_listen_request_in(struct MHD_Connection *connection);
/* The request on connection was answered: the connection, kept alive for the next
 * one, has the header timeout again. */
void gateway_listen_request_done(const gateway_listen_t *self,
                                 struct MHD_Connection *connection);

#endif
