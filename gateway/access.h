/* access: who may do what through the gateway's HTTP API (docs/api.md,
 * "Authentication").
 *
 * With an API tokens file (auth/token.h) or a basic-auth user, every request but
 * GET /health needs a caller, named by
 *   - `Authorization: Bearer TOKEN`, a token of the file, with its scope;
 *   - `Authorization: Basic ...`, the one --api-user, with admin scope (the original
 *     service's SYN_API_USER / SYN_API_PASSWORD);
 *   - `?access_token=TOKEN` on the /sse/ routes only, since a browser's EventSource
 *     cannot set headers; anywhere else a token in the query counts for nothing.
 * Scopes include each other: read (every GET, the event streams, and validating a
 * workflow, which changes and reveals nothing) ⊂ run (starting and steering
 * executions) ⊂ admin (creating, changing and archiving workflows). A path no route
 * has (404, 405) needs read, so that nobody learns anything without a token.
 *
 * No caller, or an unknown one: 401 {"detail":"Not authenticated"} with
 * `WWW-Authenticate: Bearer realm="syn"`. A known caller without the scope: 403
 * {"detail":"Token NAME may not <action>"}. Tokens and passwords are compared by
 * their SHA-256 in constant time and never logged; the caller is checked as soon as
 * the headers are in, before any body is read.
 *
 * With neither configured, everything stays open, as it was before tokens existed;
 * gateway_config_check then keeps the gateway on loopback unless --insecure. */
#ifndef SYN_GATEWAY_ACCESS_H
#define SYN_GATEWAY_ACCESS_H

#include "auth/token.h"
#include "gateway/router.h"

#include <jansson.h>
#include <microhttpd.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct gateway_access_t gateway_access_t;

/* tokens_file and user/password may each be NULL (both NULL: everything open).
 * NULL with "file:line: reason" in err when the tokens file cannot be read. */
gateway_access_t *gateway_access_new(const char *tokens_file, const char *user,
                                     const char *password, char *err, size_t errlen);
void gateway_access_destroy(gateway_access_t **self_p);

/* True when callers must say who they are. */
bool gateway_access_enabled(const gateway_access_t *self);

/* Reads the tokens file again: 0 with the new tokens in force and their number in
 * *count; -1 with the reason in err and the tokens loaded before kept. 0 and count 0
 * when there is no tokens file. */
int gateway_access_reload(gateway_access_t *self, size_t *count, char *err, size_t errlen);

/* The scope a request needs; 0 when it is open to anyone (GET /health). */
int gateway_access_scope(gateway_match_t match, gateway_route_id_t id);

/* What a caller without the scope a route needs may not do, as in "Token NAME may
 * not <action>". */
const char *gateway_access_action(gateway_route_id_t id);

/* 0 when the request may go on; else 401 or 403 with the "detail" text in detail. */
unsigned gateway_access_decide(const gateway_access_t *self, struct MHD_Connection *connection,
                               gateway_match_t match, const gateway_route_t *route,
                               char *detail, size_t detail_len);

/* GET /whoami (open to all): {"name","scope","auth"} of the caller, so a dashboard
 * asks for a token when it needs one and shows only the buttons its token may press:
 * the token's name and scope, the basic-auth user (name null, admin), nobody known
 * ({"name":null,"scope":null,"auth":true}), or with no tokens configured
 * {"name":null,"scope":"admin","auth":false}. NULL when out of memory. */
json_t *gateway_access_whoami(const gateway_access_t *self, struct MHD_Connection *connection,
                              const gateway_route_t *route);

/* Adds the WWW-Authenticate challenge(s) to a 401 response. */
void gateway_access_challenge(const gateway_access_t *self, struct MHD_Response *response);

#endif
