/* original_absent: the original's routes for features syn does not have, answered with
 * what a user of its CLI needs to read (issue 17, docs/api.md "Coming from the
 * original"): 501 and a detail naming the feature and, where there is one, syn's way
 * to the same information, instead of a bare {"detail":"Not Found"}.
 *
 * Its CLI prints an error body's `detail` and nothing else, so `syn org list` against
 * syn said only "Error: Not Found", as if the server were wrong. This stands alone so
 * the list of what syn does not have is one table, consulted only for paths no route
 * matched: a route added later (sessions, say) wins over its entry here. */
#ifndef SYN_GATEWAY_ORIGINAL_ABSENT_H
#define SYN_GATEWAY_ORIGINAL_ABSENT_H

#include <jansson.h>

/* For a path (without /api/v1) no route matched: the 501 body naming the original's
 * feature it belongs to (new reference), or NULL when it is none of them. */
json_t *gateway_absent_answer(const char *path);

#endif
