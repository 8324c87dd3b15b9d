/* ui: which built-in file a /ui/ path names and how it is answered (gateway/ui.h). */
#include "gateway/ui.h"

#include <stdbool.h>
#include <string.h>

#define NOT_FOUND "{\"detail\":\"Not Found\"}"
/* Everything from this origin only: no inline script, no remote font, image or
 * script. connect-src 'self' covers fetch and EventSource. */
#define CSP                                                                                 \
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "       \
    "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

const gateway_ui_asset_t *gateway_ui_find(const char *name)
{
    if (!name[0])
        name = "index.html";
    for (size_t i = 0; i < gateway_ui_asset_count; i++)
        if (strcmp(gateway_ui_assets[i].name, name) == 0)
            return &gateway_ui_assets[i];
    return NULL;
}

/* If-None-Match holds one ETag, a list of them, or "*". */
static bool etag_matches(const char *if_none_match, const char *etag)
{
    if (!if_none_match)
        return false;
    return strcmp(if_none_match, "*") == 0 || strstr(if_none_match, etag) != NULL;
}

static struct MHD_Response *text(const char *body)
{
    return MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_PERSISTENT);
}

struct MHD_Response *gateway_ui_response(const gateway_route_t *route,
                                         const char *if_none_match, unsigned *status)
{
    struct MHD_Response *response;
    if (route->id == GATEWAY_ROUTE_UI_REDIRECT) {
        *status = MHD_HTTP_FOUND;
        response = text("");
        if (response)
            MHD_add_response_header(response, MHD_HTTP_HEADER_LOCATION, "/ui/");
        return response;
    }
    const gateway_ui_asset_t *asset = gateway_ui_find(route->param_count ? route->params[0] : "");
    if (!asset) {
        *status = MHD_HTTP_NOT_FOUND;
        response = text(NOT_FOUND);
        if (response)
            MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
        return response;
    }
    bool unchanged = etag_matches(if_none_match, asset->etag);
    *status = unchanged ? MHD_HTTP_NOT_MODIFIED : MHD_HTTP_OK;
    response = unchanged ? text("")
                         : MHD_create_response_from_buffer(asset->len, (void *)asset->data,
                                                           MHD_RESPMEM_PERSISTENT);
    if (!response)
        return NULL;
    if (!unchanged)
        MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE, asset->media_type);
    MHD_add_response_header(response, MHD_HTTP_HEADER_ETAG, asset->etag);
    MHD_add_response_header(response, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
    MHD_add_response_header(response, "X-Content-Type-Options", "nosniff");
    /* The event stream's URL carries the token: never hand it to another site. */
    MHD_add_response_header(response, "Referrer-Policy", "no-referrer");
    MHD_add_response_header(response, "Content-Security-Policy", CSP);
    return response;
}
