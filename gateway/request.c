/* request: how one HTTP request's answer is set, and its body kept within the limit
 * (gateway/request.h). */
#include "gateway/request.h"
#include "gateway/download.h"
#include "common/json_text.h"

#include <stdlib.h>
#include <string.h>

#define BROKER_UNAVAILABLE "{\"detail\":\"broker unavailable\"}"
#define BROKER_DOWN_HEALTH                                                                    \
    "{\"status\":\"degraded\",\"broker\":\"down\",\"workers\":0,\"mode\":\"degraded\","           \
    "\"degraded_reasons\":[\"broker unavailable\"]}"

void gateway_request_set_answer(gateway_request_t *req, unsigned status, char *text)
{
    free(req->answer);
    req->status = status;
    req->answer = text;
    req->content_type = "application/json";
    req->state = REQUEST_ANSWERED;
}

void gateway_request_set_literal(gateway_request_t *req, unsigned status, const char *json_text)
{
    gateway_request_set_answer(req, status, strdup(json_text));
}

void gateway_request_set_json(gateway_request_t *req, unsigned status, json_t *body)
{
    /* json_dumps' compact text, faster, with reals in their shortest form
     * (common/json_text.h); scalars (and anything it refuses) are left to jansson. */
    char *text = syn_json_text(body);
    if (!text)
        text = json_dumps(body, JSON_COMPACT | JSON_ENCODE_ANY);
    if (text)
        gateway_request_set_answer(req, status, text);
    else
        gateway_request_set_literal(req, 500, GATEWAY_OUT_OF_MEMORY);
}

void gateway_request_set_unavailable(gateway_request_t *req)
{
    gateway_request_set_literal(req, 503, req->health ? BROKER_DOWN_HEALTH : BROKER_UNAVAILABLE);
    req->retry_after = true;
}

void gateway_request_append(gateway_request_t *req, const char *data, size_t len)
{
    if (req->body_too_large || req->match != GATEWAY_MATCH_OK)
        return;
    if (len > GATEWAY_BODY_LIMIT - req->body_len) {
        req->body_too_large = true;
        free(req->body);
        req->body = NULL;
        req->body_len = req->body_cap = 0;
        return;
    }
    if (req->body_len + len + 1 > req->body_cap) {
        size_t cap = req->body_cap ? req->body_cap : 1024;
        while (cap < req->body_len + len + 1)
            cap *= 2;
        if (cap > GATEWAY_BODY_LIMIT + 1)
            cap = GATEWAY_BODY_LIMIT + 1;
        char *grown = realloc(req->body, cap);
        if (!grown) {
            req->body_too_large = true; /* the honest answer when we cannot hold it */
            return;
        }
        req->body = grown;
        req->body_cap = cap;
    }
    memcpy(req->body + req->body_len, data, len);
    req->body_len += len;
    req->body[req->body_len] = '\0';
}

void gateway_request_free(gateway_request_t *req)
{
    gateway_sse_client_destroy(&req->sse);
    if (req->prepared)
        MHD_destroy_response(req->prepared);
    json_decref(req->compat);
    gateway_download_destroy(&req->download);
    free(req->body);
    free(req->answer);
    free(req);
}
