/* resolve: a broker's host name to an address without holding up the worker's loop.
 *
 * getaddrinfo blocks for as long as DNS takes: seconds, or the resolver's whole
 * timeout when a name server is down. The worker's one loop also reads its agents'
 * output, keeps their deadlines and handles signals, so a name is looked up on a
 * thread of its own that hands the address back over a socket the loop polls.
 * Numeric addresses need no lookup and are converted at once.
 *
 * Of the addresses a name has, the first IPv4 one is taken (a broker bound to all
 * interfaces by libzmq listens on IPv4 only), else the first. */
#ifndef SYN_WORKER_RESOLVE_H
#define SYN_WORKER_RESOLVE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

typedef struct worker_resolve_t worker_resolve_t;

/* text as a numeric address (IPv6 only when ipv6 is set), never blocking: 0 and the
 * address (port 0), EAI_NONAME when text is not numeric (a name to look up), or
 * another EAI_* code. */
int worker_resolve_numeric(const char *text, bool ipv6, struct sockaddr_storage *sa,
                           socklen_t *sa_len);

/* Starts looking name up. NULL (and why in err) when it could not be started: no
 * thread, no socket pair, or no memory. */
worker_resolve_t *worker_resolve_start(const char *name, char *err, size_t errlen);

/* Readable once the answer is in. */
int worker_resolve_fd(const worker_resolve_t *self);

/* 1: the address is in *sa (port 0); 0: not yet; -1: the name did not resolve, and
 * err says why. */
int worker_resolve_collect(worker_resolve_t *self, struct sockaddr_storage *sa,
                           socklen_t *sa_len, char *err, size_t errlen);

/* Frees the caller's side at once; a lookup still under way ends on its own and its
 * answer is dropped. */
void worker_resolve_destroy(worker_resolve_t **self_p);

#endif
