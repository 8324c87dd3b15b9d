/* sse: a test client for the gateway's Server-Sent Events streams.
 *
 * A raw socket rather than libcurl, so a test sees exactly what went over the
 * wire (status line, headers, chunked framing, a clean final chunk versus a cut
 * connection). Nothing blocks and there is no thread per client:
 * sse_clients_wait() drives any number of clients with one poll() loop, so a
 * test can hold 1,000 streams at once.
 *
 *     sse_client_t *c = sse_client_new(port, "/sse/executions/exec-1", NULL, 0);
 *     if (!sse_client_wait(c, sse_client_has_closed, 0, 10000)) ...;
 *     for (size_t i = 0; i < sse_client_frame_count(c); i++)
 *         ... sse_client_frame(c, i)->id, sse_frame_str(sse_client_frame(c, i), "type")
 *     sse_client_destroy(&c);
 */
#ifndef SYN_TEST_SSE_H
#define SYN_TEST_SSE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* One frame of the stream: the text between two blank lines. */
typedef struct {
    long long id;   /* the id: line, -1 when the frame has none */
    bool keepalive; /* the ": keepalive" comment */
    json_t *data;   /* the data: line parsed as JSON; NULL for comments or bad JSON */
} sse_frame_t;

typedef struct sse_client_t sse_client_t;

/* Connects to 127.0.0.1:port and sends GET path (with Last-Event-ID when
 * last_event_id is not NULL). rcvbuf > 0 shrinks the socket's receive buffer,
 * so a client that reads slowly fills up sooner. NULL when the connection or the
 * request fails. Nothing is read until the client is pumped. */
sse_client_t *sse_client_new(int port, const char *path, const char *last_event_id, int rcvbuf);
/* Closes the socket and frees every frame (sets *self_p NULL; safe twice). */
void sse_client_destroy(sse_client_t **self_p);

/* Reads whatever is waiting on the socket, without blocking, and parses it. */
void sse_client_pump(sse_client_t *self);

/* The HTTP status, 0 until the headers are in. */
int sse_client_status(const sse_client_t *self);
/* The status line and headers, each ending in CRLF ("" until they are in). */
const char *sse_client_headers(const sse_client_t *self);
/* The response uses Transfer-Encoding: chunked. */
bool sse_client_chunked(const sse_client_t *self);
/* The final (zero-size) chunk came: the server ended the stream cleanly. */
bool sse_client_ended(const sse_client_t *self);
/* The server closed (or reset) the connection, cleanly or not. */
bool sse_client_closed(const sse_client_t *self);
/* The decoded body so far (the event stream, or an error's JSON), "" when none. */
const char *sse_client_body(const sse_client_t *self);

/* Frames parsed so far, in arrival order (keepalive comments included). */
size_t sse_client_frame_count(const sse_client_t *self);
/* The index-th frame, NULL past the end. Valid until the client is destroyed. */
const sse_frame_t *sse_client_frame(const sse_client_t *self, size_t index);
/* The string at key of the frame's data object, or "" (never NULL, for asserts). */
const char *sse_frame_str(const sse_frame_t *frame, const char *key);

/* A condition on a client that sse_clients_wait() waits for. */
typedef bool (*sse_done_fn)(const sse_client_t *client, long want);
/* At least `want` frames. */
bool sse_client_has_frames(const sse_client_t *client, long want);
/* The connection is closed (want is ignored). */
bool sse_client_has_closed(const sse_client_t *client, long want);
/* At least `want` keepalive comments. */
bool sse_client_has_keepalives(const sse_client_t *client, long want);

/* Pumps the n clients with one poll() loop until done(client, want) holds for
 * every one of them, or timeout_ms passes; true when it holds for all. A client
 * whose connection closed before its condition held is not waited for (the
 * result is then false). */
bool sse_clients_wait(sse_client_t **clients, size_t n, sse_done_fn done, long want,
                      int timeout_ms);
/* The same for one client. */
bool sse_client_wait(sse_client_t *self, sse_done_fn done, long want, int timeout_ms);

#endif
