/* endpoint_list: a client's list of broker endpoints ("tcp://a:5555,tcp://b:5555"),
 * parsed strictly, and which of them it follows now.
 *
 * Several brokers may share one store; exactly one is active and binds, the others
 * stand by without binding (docs/operations.md, "A standby broker"). A client
 * (gateway, worker) talks to one endpoint at a time and, when the broker there has
 * been silent past the client's liveness window, moves to the next one in the list,
 * round robin, until one answers: the Binary Star pattern. A list of one endpoint is
 * the single broker of before, followed exactly as before.
 *
 * It stands alone because two programs parse the same flag the same way and follow
 * the same order; what "silent" means is each client's own (worker/broker_conn.c,
 * gateway/broker_link.c). */
#ifndef SYN_ENDPOINT_LIST_H
#define SYN_ENDPOINT_LIST_H

#include <stdbool.h>
#include <stddef.h>

/* Endpoints one list may name: brokers of one cluster, a handful. */
#define SYN_ENDPOINT_LIST_MAX 16

typedef struct syn_endpoint_list_t syn_endpoint_list_t;

/* Parses text, endpoints separated by commas (spaces around them ignored). NULL
 * with one line in err naming flag: an empty list or item, an endpoint listed twice,
 * more than SYN_ENDPOINT_LIST_MAX. The first endpoint is the current one. */
syn_endpoint_list_t *syn_endpoint_list_new(const char *flag, const char *text, char *err,
                                           size_t errlen);
void syn_endpoint_list_destroy(syn_endpoint_list_t **self_p);

size_t syn_endpoint_list_size(const syn_endpoint_list_t *self);
/* The index-th endpoint (index < size). */
const char *syn_endpoint_list_at(const syn_endpoint_list_t *self, size_t index);
/* The endpoint followed now, and its index. */
const char *syn_endpoint_list_current(const syn_endpoint_list_t *self);
size_t syn_endpoint_list_index(const syn_endpoint_list_t *self);
/* Moves on to the next endpoint (after the last, the first) and returns it. */
const char *syn_endpoint_list_next(syn_endpoint_list_t *self);
/* The index of endpoint in the list, or -1 when it is not listed. */
int syn_endpoint_list_find(const syn_endpoint_list_t *self, const char *endpoint);

/* syn_endpoint_check (common/endpoint.h) on every endpoint of text, a list as above:
 * 0, or -1 with the first problem (a bad list, or an endpoint off this host) in err. */
int syn_endpoint_list_check(const char *what, const char *text, bool allowed, const char *why,
                            const char *remedy, char *err, size_t errlen);

#endif
