/* hclient: a minimal HTTP/1.1 client over one keep-alive TCP connection, for the
 * load generator. Non-blocking underneath, so one thread can drive many
 * connections with poll(); hclient_request() is the blocking convenience.
 * Only what the syn gateway speaks: Content-Length bodies, no chunking, no TLS. */
#ifndef SYNLOAD_HCLIENT_H
#define SYNLOAD_HCLIENT_H

#include <stddef.h>

typedef struct hclient_t hclient_t;

/* A client for host:port (IPv4 dotted address); connects on first use. */
hclient_t *hclient_new(const char *host, int port);
void hclient_destroy(hclient_t **self_p);

/* Starts a request (body may be NULL). Fails (-1) when one is already in flight
 * or the connection cannot be made. */
int hclient_start(hclient_t *self, const char *method, const char *path, const char *body);
/* The descriptor and the poll events it waits for (0 when idle). */
int hclient_fd(const hclient_t *self);
short hclient_events(const hclient_t *self);
/* Makes progress after poll: 1 when the response is complete, 0 when not yet,
 * -1 on error (the reason in hclient_error). A connection the server closed
 * while idle is reopened and the request resent once. */
int hclient_step(hclient_t *self);
/* The last complete response: its status and body (NUL-terminated, owned by
 * the client, valid until the next request). */
int hclient_status(const hclient_t *self);
const char *hclient_body(const hclient_t *self, size_t *len);
const char *hclient_error(const hclient_t *self);
/* Whether a request is in flight. */
int hclient_busy(const hclient_t *self);

/* Blocking request with a timeout; returns the HTTP status or -1. */
int hclient_request(hclient_t *self, const char *method, const char *path, const char *body,
                    int timeout_ms);

/* Splits "http://HOST:PORT" into host (bufsize bytes) and port; 0 or -1. */
int hclient_parse_url(const char *url, char *host, size_t hostsize, int *port);

#endif
