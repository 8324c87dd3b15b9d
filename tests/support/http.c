#include "tests/support/http.h"

#include <curl/curl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Set by teststack for a whole test program (http_set_bearer). */
static char bearer[256];

void http_set_bearer(const char *token)
{
    snprintf(bearer, sizeof bearer, "%s", token ? token : "");
}

const char *http_bearer(void)
{
    return bearer[0] ? bearer : NULL;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *user)
{
    http_response_t *resp = user;
    size_t n = size * nmemb;
    /* Doubled, not grown by each piece: a realloc per piece copies the whole body
     * each time under ASan (its realloc always moves), which made a 40 MiB body
     * take minutes. */
    if (resp->body_len + n + 1 > resp->body_cap) {
        size_t cap = resp->body_cap ? resp->body_cap : 4096;
        while (cap < resp->body_len + n + 1)
            cap *= 2;
        char *grown = realloc(resp->body, cap);
        if (!grown)
            return 0;
        resp->body = grown;
        resp->body_cap = cap;
    }
    memcpy(resp->body + resp->body_len, data, n);
    resp->body_len += n;
    resp->body[resp->body_len] = '\0';
    return n;
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *user)
{
    http_response_t *resp = user;
    size_t n = size * nmemb;
    if (n > 12 && strncasecmp(data, "Retry-After:", 12) == 0)
        sscanf(data + 12, " %31[^\r\n]", resp->retry_after);
    if (n > 20 && strncasecmp(data, "Idempotent-Replayed:", 20) == 0)
        sscanf(data + 20, " %15[^\r\n]", resp->replayed);
    if (n > 11 && strncasecmp(data, "Connection:", 11) == 0)
        sscanf(data + 11, " %31[^\r\n]", resp->connection);
    if (n > 5 && strncasecmp(data, "ETag:", 5) == 0)
        sscanf(data + 5, " %79[^\r\n]", resp->etag);
    if (n > 20 && strncasecmp(data, "Content-Disposition:", 20) == 0)
        sscanf(data + 20, " %255[^\r\n]", resp->content_disposition);
    if (n > 17 && strncasecmp(data, "WWW-Authenticate:", 17) == 0) {
        char value[200] = "";
        sscanf(data + 17, " %199[^\r\n]", value);
        size_t used = strlen(resp->www_authenticate);
        snprintf(resp->www_authenticate + used, sizeof resp->www_authenticate - used, "%s%s",
                 used ? " | " : "", value);
    }
    return n;
}

int http_request(const char *method, const char *url, const char *body,
                 const char *content_type, http_response_t *resp)
{
    return http_request_ex(method, url, body, content_type, NULL, resp);
}

int http_request_ex(const char *method, const char *url, const char *body,
                    const char *content_type, const http_extra_t *extra, http_response_t *resp)
{
    static const http_extra_t none = {0};
    if (!extra)
        extra = &none;
    memset(resp, 0, sizeof *resp);
    CURL *curl = curl_easy_init();
    if (!curl)
        return -1;
    struct curl_slist *headers = NULL;
    char ctype[160];
    if (body) {
        snprintf(ctype, sizeof ctype, "Content-Type: %s",
                 content_type ? content_type : "application/json");
        headers = curl_slist_append(headers, ctype);
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    }
    headers = curl_slist_append(headers, "Expect:");
    char authorization[1100];
    if (extra->authorization || bearer[0]) {
        /* the request's own wins over the one teststack set for every request */
        if (extra->authorization)
            snprintf(authorization, sizeof authorization, "Authorization: %s",
                     extra->authorization);
        else
            snprintf(authorization, sizeof authorization, "Authorization: Bearer %s", bearer);
        headers = curl_slist_append(headers, authorization);
    }
    if (extra->header)
        headers = curl_slist_append(headers, extra->header);
    if (extra->cainfo) {
        curl_easy_setopt(curl, CURLOPT_CAINFO, extra->cainfo);
        curl_easy_setopt(curl, CURLOPT_CAPATH, NULL);
        curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 1L);
        curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 2L);
    }
    char source[80];
    if (extra->source) {
        snprintf(source, sizeof source, "host!%s", extra->source);
        curl_easy_setopt(curl, CURLOPT_INTERFACE, source);
    }
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
    if (!strcmp(method, "POST") && !body) {
        curl_easy_setopt(curl, CURLOPT_POST, 1L);
        curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, 0L);
    }
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, resp);
    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, resp);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, extra->timeout_ms > 0 ? extra->timeout_ms : 15000L);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    CURLcode rc = curl_easy_perform(curl);
    if (rc == CURLE_OPERATION_TIMEDOUT && extra->timeout_ms > 0) {
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &resp->status);
        if (resp->status > 0)
            rc = CURLE_OK; /* the headers came: a stream that goes on */
    }
    if (rc == CURLE_OK) {
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &resp->status);
        char *ct = NULL;
        curl_easy_getinfo(curl, CURLINFO_CONTENT_TYPE, &ct);
        if (ct)
            snprintf(resp->content_type, sizeof resp->content_type, "%s", ct);
        if (resp->body)
            resp->json = json_loadb(resp->body, resp->body_len, 0, NULL);
    }
    curl_slist_free_all(headers);
    curl_easy_cleanup(curl);
    return rc == CURLE_OK ? 0 : -1;
}

static int request_fmt(const char *method, http_response_t *resp, const char *body,
                       const char *fmt, va_list ap)
{
    char url[2048];
    vsnprintf(url, sizeof url, fmt, ap);
    return http_request(method, url, body, NULL, resp);
}

int http_get(http_response_t *resp, const char *url_fmt, ...)
{
    va_list ap;
    va_start(ap, url_fmt);
    int rc = request_fmt("GET", resp, NULL, url_fmt, ap);
    va_end(ap);
    return rc;
}

int http_post(http_response_t *resp, const char *body, const char *url_fmt, ...)
{
    va_list ap;
    va_start(ap, url_fmt);
    int rc = request_fmt("POST", resp, body, url_fmt, ap);
    va_end(ap);
    return rc;
}

void http_response_clear(http_response_t *resp)
{
    free(resp->body);
    json_decref(resp->json);
    memset(resp, 0, sizeof *resp);
}
