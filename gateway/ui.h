/* ui: the dashboard's files (ui/ in the source tree), built into the gateway and
 * served at /ui/ (docs/dashboard.md). Stands alone because it is the one part of the
 * gateway that answers with files rather than the broker's replies: which file a path
 * names, its media type, and how a browser may cache it.
 *
 * The files are turned into C arrays at build time (cmake/embed_ui.cmake writes
 * ui_assets.c into the build tree), each with an ETag made from its SHA-256: nothing
 * is read from disk at run time, and nothing outside the gateway is needed. Every
 * answer says `Cache-Control: no-cache` with its ETag, so a browser asks again each
 * time and gets a bodiless 304 while the file is unchanged; a new gateway binary is
 * seen at the next load. The page's Content-Security-Policy allows nothing from
 * another origin: the dashboard works on a cluster with no way out. */
#ifndef SYN_GATEWAY_UI_H
#define SYN_GATEWAY_UI_H

#include "gateway/router.h"

#include <microhttpd.h>
#include <stddef.h>

typedef struct {
    const char *name;         /* "app.js" */
    const char *media_type;   /* "text/javascript; charset=utf-8" */
    const unsigned char *data;
    size_t len;
    const char *etag;         /* "\"<16 hex digits>\"" */
} gateway_ui_asset_t;

/* The generated table (ui_assets.c). */
extern const gateway_ui_asset_t gateway_ui_assets[];
extern const size_t gateway_ui_asset_count;

/* The file a /ui/ route names ("" is index.html); NULL when none. */
const gateway_ui_asset_t *gateway_ui_find(const char *name);

/* The answer to a UI route (GATEWAY_ROUTE_UI_REDIRECT or _FILE), with its status in
 * *status: a 302 to /ui/, the file, a 304 when if_none_match (may be NULL) names its
 * ETag, or a 404. NULL when out of memory. The caller queues and destroys it. */
struct MHD_Response *gateway_ui_response(const gateway_route_t *route,
                                         const char *if_none_match, unsigned *status);

#endif
