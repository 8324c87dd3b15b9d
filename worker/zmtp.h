/* zmtp: the worker's one connection to the broker, a ZeroMQ DEALER spoken by hand.
 *
 * All a worker needs from ZeroMQ is a single DEALER connected out to the
 * broker's ROUTER. libzmq and what it drags in were most of an idle worker's
 * memory (issue 7) and put an I/O thread between the worker and every message,
 * so the worker speaks the wire protocol itself: ZMTP 3.0 (rfc.zeromq.org
 * 23/ZMTP) with the NULL mechanism, plus PING → PONG from 3.1 (37/ZMTP). The
 * broker keeps libzmq; on the wire nothing changes.
 *
 * One connection, non-blocking, single-threaded, driven by the caller's poll():
 *   - endpoints tcp://HOST:PORT (HOST an IPv4 address, [an IPv6 address], or a
 *     name, looked up off the loop by worker/resolve.h while the connection is
 *     CONNECTING; a name's IPv4 address is preferred, as libzmq does) and
 *     ipc:///path; anything else is an error;
 *   - we send the whole greeting (3.0, NULL, as-server 0) and READY with
 *     Socket-Type DEALER and no Identity (the ROUTER makes one up); the peer
 *     must answer with a ZMTP 3.x NULL greeting and a READY from a ROUTER;
 *   - then PING is answered with PONG, ERROR closes with its reason, other
 *     commands are ignored;
 *   - a message is one frame. A frame with MORE set (a multi-frame message) is
 *     a protocol error that closes the connection: syn sends none to a worker,
 *     and joining frames would only hide a peer speaking something else;
 *   - a frame larger than max_size closes the connection before it is allocated.
 *
 * Messages sent before the handshake ends wait in the outgoing queue (at most
 * WORKER_ZMTP_QUEUE_MSGS messages or WORKER_ZMTP_QUEUE_BYTES bytes, like a
 * libzmq pipe's high-water mark) and go out once the peer's READY has been
 * checked. Any failure — refused, reset, closed by the peer, a protocol
 * violation — closes the connection for good, with the reason kept for the
 * caller; reconnecting (with whatever back-off) is the caller's decision. */
#ifndef SYN_WORKER_ZMTP_H
#define SYN_WORKER_ZMTP_H

#include <poll.h>
#include <stdbool.h>
#include <stddef.h>

#define WORKER_ZMTP_QUEUE_MSGS 1000
#define WORKER_ZMTP_QUEUE_BYTES (64u * 1024u * 1024u)

typedef enum {
    WORKER_ZMTP_CONNECTING, /* the TCP/IPC connect has not completed */
    WORKER_ZMTP_HANDSHAKE,  /* connected; greetings and READYs under way */
    WORKER_ZMTP_READY,      /* messages flow both ways */
    WORKER_ZMTP_CLOSED,     /* for good: worker_zmtp_error says why */
} worker_zmtp_state_t;

typedef struct worker_zmtp_t worker_zmtp_t;

/* Starts connecting to endpoint; never waits for the peer or for DNS. NULL only
 * when out of memory: a bad endpoint or a connect that fails at once give a
 * connection already closed, with the reason; a name that does not resolve
 * closes it once the lookup answers. */
worker_zmtp_t *worker_zmtp_connect(const char *endpoint, size_t max_size);
/* Closes the socket (whatever is still queued is dropped) and frees all. */
void worker_zmtp_destroy(worker_zmtp_t **self_p);

worker_zmtp_state_t worker_zmtp_state(const worker_zmtp_t *self);
/* True while the broker's name is being looked up (the state is CONNECTING). */
bool worker_zmtp_resolving(const worker_zmtp_t *self);
/* Why the connection closed ("" while it is open). */
const char *worker_zmtp_error(const worker_zmtp_t *self);

/* What to poll: the socket (-1 once closed; the lookup's socket while a name is
 * looked up, so ask again every turn) and the events wanted now — POLLIN while
 * looking up, POLLOUT while connecting or while output waits, POLLIN once
 * connected. */
int worker_zmtp_fd(const worker_zmtp_t *self);
short worker_zmtp_events(const worker_zmtp_t *self);
/* Does the I/O that revents (from poll) allows: completes the connect, writes
 * what is queued, reads and works through the handshake and commands. */
void worker_zmtp_handle(worker_zmtp_t *self, short revents);
/* True when a received message is waiting: worker_zmtp_recv returns it without
 * the socket being readable, so the caller must not sleep in poll. */
bool worker_zmtp_has_message(const worker_zmtp_t *self);
/* True while anything waits to be written, messages held back for the
 * handshake included (a closed connection holds nothing). */
bool worker_zmtp_has_output(const worker_zmtp_t *self);

/* Queues one message (copied); it is written by the next worker_zmtp_flush
 * (or worker_zmtp_handle with POLLOUT), so the messages of one loop turn go
 * out together in one system call, as libzmq's I/O thread would batch them.
 * 0, or -1 with errno: EAGAIN (the queue is full), EMSGSIZE (larger than
 * max_size), ENOTCONN (closed), ENOMEM. */
int worker_zmtp_send(worker_zmtp_t *self, const void *data, size_t size);
/* Writes what is queued, as far as the socket takes it without blocking (the
 * rest waits for POLLOUT); nothing before the handshake is over. */
void worker_zmtp_flush(worker_zmtp_t *self);
/* The next whole message (malloc'd, *size bytes, followed by a NUL the size
 * does not count; the caller frees it), or NULL when none is complete yet.
 * Reads from the socket as needed, never blocking. A message received before
 * the connection closed is still returned. */
void *worker_zmtp_recv(worker_zmtp_t *self, size_t *size);

#endif
