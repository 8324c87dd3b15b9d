#include "bench/synload/lookup.h"
#include "bench/synload/hclient.h"
#include "bench/synload/stats.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

typedef struct {
    char *data;
    size_t len, cap;
} curl_buf_t;

static size_t curl_collect(char *ptr, size_t size, size_t nmemb, void *arg)
{
    curl_buf_t *b = arg;
    size_t n = size * nmemb;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = realloc(b->data, cap);
        if (!p)
            return 0;
        b->data = p;
        b->cap = cap;
    }
    memcpy(b->data + b->len, ptr, n);
    b->len += n;
    b->data[b->len] = '\0';
    return n;
}

/* One request with whichever client; returns the status or -1. */
typedef struct {
    bool use_curl;
    hclient_t *hc;
    CURL *curl;
    curl_buf_t buf;
    char base[128];
    char url[512];
    const char *body;
} client_t;

static int client_get(client_t *c, const char *path, char *err, size_t errlen)
{
    if (!c->use_curl) {
        int status = hclient_request(c->hc, "GET", path, NULL, 10000);
        if (status < 0)
            snprintf(err, errlen, "GET %s: %s", path, hclient_error(c->hc));
        c->body = status < 0 ? "" : hclient_body(c->hc, NULL);
        return status;
    }
    snprintf(c->url, sizeof c->url, "%s%s", c->base, path);
    c->buf.len = 0;
    if (c->buf.data)
        c->buf.data[0] = '\0';
    curl_easy_setopt(c->curl, CURLOPT_URL, c->url);
    CURLcode rc = curl_easy_perform(c->curl);
    if (rc != CURLE_OK) {
        snprintf(err, errlen, "GET %s: %s", c->url, curl_easy_strerror(rc));
        return -1;
    }
    long status = 0;
    curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &status);
    c->body = c->buf.data ? c->buf.data : "";
    return (int)status;
}

int lookup_run(const char *url, bool use_curl, int count, lookup_path_fn path,
               lookup_check_fn check, void *arg, lookup_result_t *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    client_t c = {.use_curl = use_curl};
    char host[64];
    int port;
    if (hclient_parse_url(url, host, sizeof host, &port) != 0) {
        snprintf(err, errlen, "bad URL %s", url);
        return -1;
    }
    snprintf(c.base, sizeof c.base, "http://%s:%d", host, port);
    double *lat = malloc((size_t)(count > 0 ? count : 1) * sizeof *lat);
    int rc = -1;
    if (!lat)
        goto done;
    if (use_curl) {
        c.curl = curl_easy_init();
        if (!c.curl)
            goto done;
        curl_easy_setopt(c.curl, CURLOPT_WRITEFUNCTION, curl_collect);
        curl_easy_setopt(c.curl, CURLOPT_WRITEDATA, &c.buf);
        curl_easy_setopt(c.curl, CURLOPT_TCP_NODELAY, 1L);
        curl_easy_setopt(c.curl, CURLOPT_NOSIGNAL, 1L);
    } else if (!(c.hc = hclient_new(host, port))) {
        goto done;
    }
    char p[512], why[256];
    path(arg, 0, p, sizeof p);
    if (client_get(&c, p, err, errlen) < 0)
        goto done;
    double t0 = now_us();
    for (int k = 0; k < count; k++) {
        path(arg, k, p, sizeof p);
        double a = now_us();
        int status = client_get(&c, p, err, errlen);
        lat[k] = now_us() - a;
        if (status < 0)
            goto done;
        if (check(arg, k, status, c.body, why, sizeof why) != 0) {
            if (!out->bad++)
                snprintf(out->first_problem, sizeof out->first_problem, "%.60s: %.250s", p, why);
        }
    }
    out->count = count;
    out->secs = (now_us() - t0) / 1e6;
    out->per_s = out->secs > 0 ? count / out->secs : 0;
    out->p50_us = stats_percentile(lat, (size_t)count, 50);
    out->p99_us = stats_percentile(lat, (size_t)count, 99);
    rc = 0;
done:
    if (rc != 0 && !err[0])
        snprintf(err, errlen, "out of memory");
    free(lat);
    hclient_destroy(&c.hc);
    if (c.curl)
        curl_easy_cleanup(c.curl);
    free(c.buf.data);
    return rc;
}
