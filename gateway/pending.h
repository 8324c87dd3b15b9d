/* pending: the requests a gateway has sent to the broker and not yet answered,
 * keyed by correlation id, each with a deadline.
 *
 * A hash table finds the request a reply belongs to; a binary heap on deadlines
 * finds the ones that timed out. Both are O(1)/O(log n) so thousands of requests can
 * be in flight. The table stores the caller's pointer and never owns it. */
#ifndef SYN_GATEWAY_PENDING_H
#define SYN_GATEWAY_PENDING_H

#include <stddef.h>
#include <stdint.h>

typedef struct gateway_pending_t gateway_pending_t;

gateway_pending_t *gateway_pending_new(void);
void gateway_pending_destroy(gateway_pending_t **self_p);

/* Adds item under id (ids must be unique while pending). 0, or -1 when out of memory. */
int gateway_pending_add(gateway_pending_t *self, uint64_t id, int64_t deadline_ms, void *item);
/* Removes and returns the item of id, or NULL when id is not pending (answered,
 * timed out, or never sent). */
void *gateway_pending_take(gateway_pending_t *self, uint64_t id);
/* Removes and returns one item whose deadline is at or before now_ms, earliest
 * first, or NULL when none has expired. */
void *gateway_pending_expire(gateway_pending_t *self, int64_t now_ms);
/* The earliest deadline, or -1 when nothing is pending. */
int64_t gateway_pending_next_deadline(gateway_pending_t *self);
size_t gateway_pending_size(gateway_pending_t *self);

#endif
