/* http: a small blocking HTTP client for tests (libcurl), parsing JSON replies. */
#ifndef SYN_TEST_HTTP_H
#define SYN_TEST_HTTP_H

#include <jansson.h>

typedef struct {
    long status;           /* HTTP status, 0 when the request could not be made */
    char *body;            /* NUL-terminated body (malloc'd) */
    size_t body_len;
    json_t *json;          /* parsed body, or NULL when it is not JSON */
    char content_type[128];
    char retry_after[32];  /* the Retry-After header, "" when absent */
} http_response_t;

/* Makes one request; body may be NULL (no body). content_type NULL means
 * application/json when a body is given. Returns 0 when a response arrived. */
int http_request(const char *method, const char *url, const char *body,
                 const char *content_type, http_response_t *resp);
/* Formats the URL as printf, then requests it. */
int http_get(http_response_t *resp, const char *url_fmt, ...)
    __attribute__((format(printf, 2, 3)));
int http_post(http_response_t *resp, const char *body, const char *url_fmt, ...)
    __attribute__((format(printf, 3, 4)));
void http_response_clear(http_response_t *resp);

/* A token every request from now on carries as `Authorization: Bearer TOKEN`
 * (the SSE client's too); NULL for none, the default. teststack sets it for a
 * stack whose gateway checks tokens (SYN_TEST_SECURE=1), so every helper talks
 * to it as an admin caller would. The text is copied. */
void http_set_bearer(const char *token);
/* The token set, or NULL. */
const char *http_bearer(void);

#endif
