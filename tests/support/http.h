/* http: a small blocking HTTP client for tests (libcurl), parsing JSON replies. */
#ifndef SYN_TEST_HTTP_H
#define SYN_TEST_HTTP_H

#include <jansson.h>

typedef struct {
    long status;           /* HTTP status, 0 when the request could not be made */
    char *body;            /* NUL-terminated body (malloc'd) */
    size_t body_len;
    size_t body_cap;       /* bytes allocated for body */
    json_t *json;          /* parsed body, or NULL when it is not JSON */
    char content_type[128];
    char retry_after[32];  /* the Retry-After header, "" when absent */
    char www_authenticate[256]; /* every WWW-Authenticate header, joined by " | " */
    char connection[32];   /* the Connection header, "" when absent */
    char replayed[16];     /* the Idempotent-Replayed header, "" when absent */
    char etag[80];         /* the ETag header, "" when absent */
    char content_disposition[256]; /* the Content-Disposition header, "" when absent */
} http_response_t;

/* What a request may add: all optional (zero for none). */
typedef struct {
    const char *authorization; /* the Authorization header's value: "Bearer TOKEN" */
    const char *cainfo;        /* HTTPS: trust only this CA file, and check the host name */
    const char *source;        /* local address to connect from ("127.0.0.2") */
    const char *header;        /* one more header line, "Name: value" */
    long timeout_ms;           /* 0: 15 s; a response whose headers came in time still
                                * has its status (an event stream that goes on) */
} http_extra_t;

/* Makes one request; body may be NULL (no body). content_type NULL means
 * application/json when a body is given. Returns 0 when a response arrived. */
int http_request(const char *method, const char *url, const char *body,
                 const char *content_type, http_response_t *resp);
/* Formats the URL as printf, then requests it. */
int http_get(http_response_t *resp, const char *url_fmt, ...)
    __attribute__((format(printf, 2, 3)));
int http_post(http_response_t *resp, const char *body, const char *url_fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* http_request with extra; 0 when a response (at least its headers) arrived. */
int http_request_ex(const char *method, const char *url, const char *body,
                    const char *content_type, const http_extra_t *extra, http_response_t *resp);
void http_response_clear(http_response_t *resp);

/* A token every request from now on carries as `Authorization: Bearer TOKEN`
 * (the SSE client's too) unless its http_extra_t gives an authorization of its
 * own; NULL for none, the default. teststack sets it for a
 * stack whose gateway checks tokens (SYN_TEST_SECURE=1), so every helper talks
 * to it as an admin caller would. The text is copied. */
void http_set_bearer(const char *token);
/* The token set, or NULL. */
const char *http_bearer(void);

#endif
