/* rawconn: plain TCP connections a test holds open on purpose: half-sent requests,
 * clients from another loopback address, and whether the server closed them. */
#ifndef SYN_TEST_RAWCONN_H
#define SYN_TEST_RAWCONN_H

#include <stdbool.h>
#include <stddef.h>

/* A request whose headers never end. */
#define RAWCONN_HALF_REQUEST "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "

/* Connects from source (a loopback address such as "127.0.0.2"; NULL: any) to
 * 127.0.0.1:port and sends text (may be NULL); the descriptor, non-blocking, or -1. */
int rawconn_open(const char *source, int port, const char *text);
/* Reads what is waiting without blocking: true when the server has closed the
 * connection (end of stream, or a reset). */
bool rawconn_closed(int fd);
/* Waits up to timeout_ms for rawconn_closed. */
bool rawconn_wait_closed(int fd, int timeout_ms);
/* Sends a whole request and reads until a whole response is in (Content-Length):
 * its status, or -1 on a closed connection or after timeout_ms. */
int rawconn_request(int fd, const char *request, int timeout_ms);

/* Raises this process's soft descriptor limit to at least want (up to the hard
 * limit); the limit now in force. */
long rawconn_raise_fd_limit(long want);

#endif
