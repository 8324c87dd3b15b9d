/* client: libcurl requests to the HTTP API, the answer → exit code rule, and the
 * event-stream reader that resumes with Last-Event-ID (see client.h). */
#include "cli/client.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Bodies larger than this are refused rather than held (a phase's output is
 * capped at 1 MiB by the workers; an export is smaller). */
#define CLIENT_MAX_BODY (64L * 1024 * 1024)
/* One SSE frame: the gateway's frames are far smaller (an output chunk is coalesced
 * below 64 KiB); a bigger one is a broken stream. */
#define CLIENT_MAX_FRAME (4L * 1024 * 1024)

struct client_t {
    CURL *curl;
    char *url;
    char *auth_header; /* "Authorization: Bearer …", or NULL */
    char *userpwd;     /* "user:password", or NULL */
    char *extra_header; /* client_set_header's line, or NULL */
    long connect_timeout_ms;
    volatile sig_atomic_t *interrupt;
    long idle_stop_ms;
};

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

client_t *client_new(const client_config_t *config)
{
    client_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    const char *url = config->url && *config->url ? config->url : CLI_DEFAULT_URL;
    self->url = strdup(url);
    size_t len = self->url ? strlen(self->url) : 0;
    while (len > 0 && self->url[len - 1] == '/')
        self->url[--len] = '\0';
    self->curl = curl_easy_init();
    self->connect_timeout_ms = config->connect_timeout_ms > 0 ? config->connect_timeout_ms : 1500;
    if (config->token && *config->token) {
        size_t n = strlen(config->token) + 32;
        self->auth_header = malloc(n);
        if (self->auth_header)
            snprintf(self->auth_header, n, "Authorization: Bearer %s", config->token);
    } else if (config->user && *config->user) {
        const char *password = config->password ? config->password : "";
        size_t n = strlen(config->user) + strlen(password) + 2;
        self->userpwd = malloc(n);
        if (self->userpwd)
            snprintf(self->userpwd, n, "%s:%s", config->user, password);
    }
    if (!self->url || !self->curl) {
        client_destroy(&self);
        return NULL;
    }
    return self;
}

int client_set_header(client_t *self, const char *line)
{
    char *copy = line ? strdup(line) : NULL;
    if (line && !copy)
        return -1;
    free(self->extra_header);
    self->extra_header = copy;
    return 0;
}

void client_destroy(client_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    client_t *self = *self_p;
    if (self->curl)
        curl_easy_cleanup(self->curl);
    free(self->extra_header);
    if (self->auth_header) {
        explicit_bzero(self->auth_header, strlen(self->auth_header));
        free(self->auth_header);
    }
    if (self->userpwd) {
        explicit_bzero(self->userpwd, strlen(self->userpwd));
        free(self->userpwd);
    }
    free(self->url);
    free(self);
    *self_p = NULL;
}

void client_set_interrupt(client_t *self, volatile sig_atomic_t *flag)
{
    self->interrupt = flag;
}

const char *client_url(const client_t *self)
{
    return self->url;
}

void client_stream_idle_stop(client_t *self, long idle_ms)
{
    self->idle_stop_ms = idle_ms;
}

int client_exit_code(long status, const char *detail)
{
    if (status == 0)
        return CLI_EXIT_UNREACHABLE;
    if (status >= 200 && status < 300)
        return CLI_EXIT_OK;
    if (status == 401 || status == 403 || status == 502 || status == 503 || status == 504)
        return CLI_EXIT_UNREACHABLE;
    if (status == 404)
        return CLI_EXIT_NOT_FOUND;
    /* An ambiguous id prefix is the caller's to make precise, like a usage error. */
    if (status == 409 && detail && !strncmp(detail, "Ambiguous", 9))
        return CLI_EXIT_USAGE;
    return CLI_EXIT_FAILED;
}

/* "body.inputs.k: Input should be a valid string" for one request-shape error. */
static void append_shape_error(const json_t *item, char *out, size_t size)
{
    size_t used = strlen(out);
    if (used && used + 2 < size)
        used += (size_t)snprintf(out + used, size - used, "; ");
    const json_t *loc = json_object_get(item, "loc");
    size_t i;
    const json_t *part;
    json_array_foreach(loc, i, part)
    {
        if (used + 1 >= size)
            return;
        if (json_is_string(part))
            used += (size_t)snprintf(out + used, size - used, "%s%s", i ? "." : "",
                                     json_string_value(part));
        else if (json_is_integer(part))
            used += (size_t)snprintf(out + used, size - used, "[%lld]",
                                     (long long)json_integer_value(part));
    }
    const char *msg = json_string_value(json_object_get(item, "msg"));
    if (used + 1 < size)
        snprintf(out + used, size - used, "%s%s", json_array_size(loc) ? ": " : "",
                 msg ? msg : "invalid");
}

char *client_error_text(long status, const json_t *body, char *out, size_t size)
{
    out[0] = '\0';
    const json_t *detail = json_object_get(body, "detail");
    if (json_is_string(detail))
        snprintf(out, size, "%s", json_string_value(detail));
    else if (json_is_array(detail)) {
        size_t i;
        const json_t *item;
        json_array_foreach(detail, i, item) append_shape_error(item, out, size);
    }
    if (!out[0])
        snprintf(out, size, "HTTP %ld", status);
    return out;
}

int client_escape(const char *text, char *out, size_t size)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)text; *p; p++) {
        bool plain = (*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
                     (*p >= '0' && *p <= '9') || *p == '-' || *p == '_' || *p == '.' ||
                     *p == '~';
        if (o + (plain ? 1 : 3) >= size)
            return -1;
        if (plain)
            out[o++] = (char)*p;
        else {
            out[o++] = '%';
            out[o++] = hex[*p >> 4];
            out[o++] = hex[*p & 15];
        }
    }
    if (o >= size)
        return -1;
    out[o] = '\0';
    return 0;
}

/* ---- plain requests ---- */

typedef struct {
    char *data;
    size_t len, cap;
} body_t;

static size_t collect_body(char *ptr, size_t size, size_t nmemb, void *arg)
{
    body_t *body = arg;
    size_t n = size * nmemb;
    if (body->len + n + 1 > (size_t)CLIENT_MAX_BODY)
        return 0;
    if (body->len + n + 1 > body->cap) {
        size_t cap = body->cap ? body->cap : 4096;
        while (cap < body->len + n + 1)
            cap *= 2;
        char *grown = realloc(body->data, cap);
        if (!grown)
            return 0;
        body->data = grown;
        body->cap = cap;
    }
    memcpy(body->data + body->len, ptr, n);
    body->len += n;
    body->data[body->len] = '\0';
    return n;
}

static int check_interrupt(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                           curl_off_t ulnow)
{
    (void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
    client_t *self = arg;
    return self->interrupt && *self->interrupt ? 1 : 0;
}

/* The options every request shares: URL, auth, timeouts, the interrupt check. */
static struct curl_slist *prepare(client_t *self, const char *path, const char *accept)
{
    CURL *curl = self->curl;
    curl_easy_reset(curl);
    size_t n = strlen(self->url) + strlen(path) + 1;
    char *url = malloc(n);
    if (!url)
        return NULL;
    snprintf(url, n, "%s%s", self->url, path);
    curl_easy_setopt(curl, CURLOPT_URL, url);
    free(url); /* curl copies it */
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, self->connect_timeout_ms);
    curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, check_interrupt);
    curl_easy_setopt(curl, CURLOPT_XFERINFODATA, self);
    curl_easy_setopt(curl, CURLOPT_USERAGENT, "syn/" SYN_VERSION);
    if (self->userpwd) {
        curl_easy_setopt(curl, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
        curl_easy_setopt(curl, CURLOPT_USERPWD, self->userpwd);
    }
    struct curl_slist *headers = NULL, *next;
    char line[128];
    snprintf(line, sizeof line, "Accept: %s", accept);
    headers = curl_slist_append(headers, line);
    if (headers && self->auth_header && (next = curl_slist_append(headers, self->auth_header)))
        headers = next;
    if (headers && self->extra_header && (next = curl_slist_append(headers, self->extra_header)))
        headers = next;
    return headers;
}

/* The line for a request that got no answer, or the server's reason. */
static void describe_failure(client_t *self, CURLcode rc, const char *curl_error,
                             client_response_t *resp)
{
    if (rc != CURLE_OK) {
        snprintf(resp->error, sizeof resp->error, "cannot reach %s: %s", self->url,
                 curl_error[0] ? curl_error : curl_easy_strerror(rc));
        return;
    }
    char detail[400];
    client_error_text(resp->status, resp->json, detail, sizeof detail);
    if (resp->status == 401)
        snprintf(resp->error, sizeof resp->error,
                 "unauthorized: %s (give --token or SYN_API_TOKEN, or SYN_API_USER and "
                 "SYN_API_PASSWORD)",
                 detail);
    else if (resp->status == 403)
        snprintf(resp->error, sizeof resp->error, "forbidden: %s", detail);
    else
        snprintf(resp->error, sizeof resp->error, "%s", detail);
}

int client_request(client_t *self, const char *method, const char *path, const char *content_type,
                   const char *body, size_t len, client_response_t *resp)
{
    memset(resp, 0, sizeof *resp);
    struct curl_slist *headers = prepare(self, path, "application/json, */*");
    if (!headers) {
        snprintf(resp->error, sizeof resp->error, "out of memory");
        resp->body = strdup("");
        return -1;
    }
    CURL *curl = self->curl;
    char type_line[128], curl_error[CURL_ERROR_SIZE] = "";
    if (body) {
        snprintf(type_line, sizeof type_line, "Content-Type: %s",
                 content_type ? content_type : "application/json");
        struct curl_slist *next = curl_slist_append(headers, type_line);
        if (next)
            headers = next;
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    }
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
    if (!strcmp(method, "GET"))
        curl_easy_setopt(curl, CURLOPT_HTTPGET, 1L);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 60000L);
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, curl_error);
    body_t got = {0};
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, collect_body);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &got);
    CURLcode rc = curl_easy_perform(curl);
    curl_slist_free_all(headers);
    if (rc == CURLE_OK)
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &resp->status);
    resp->body = got.data ? got.data : strdup("");
    resp->len = got.len;
    if (rc == CURLE_OK && resp->len)
        resp->json = json_loadb(resp->body, resp->len, JSON_DECODE_ANY, NULL);
    if (rc != CURLE_OK || resp->status < 200 || resp->status >= 300)
        describe_failure(self, rc, curl_error, resp);
    return rc == CURLE_OK ? 0 : -1;
}

/* A download's body: into the file while the answer is a 2xx, collected
 * otherwise (an error's detail). */
typedef struct {
    CURL *curl;
    FILE *file;
    body_t error;
    int failed; /* the file refused a write: its errno */
} download_t;

static size_t download_body(char *ptr, size_t size, size_t nmemb, void *arg)
{
    download_t *d = arg;
    long status = 0;
    curl_easy_getinfo(d->curl, CURLINFO_RESPONSE_CODE, &status);
    if (status < 200 || status >= 300)
        return collect_body(ptr, size, nmemb, &d->error);
    size_t n = size * nmemb;
    if (fwrite(ptr, 1, n, d->file) != n) {
        d->failed = errno ? errno : EIO;
        return 0;
    }
    return n;
}

int client_download(client_t *self, const char *path, FILE *file, client_response_t *resp)
{
    memset(resp, 0, sizeof *resp);
    struct curl_slist *headers = prepare(self, path, "*/*");
    if (!headers) {
        snprintf(resp->error, sizeof resp->error, "out of memory");
        resp->body = strdup("");
        return -1;
    }
    CURL *curl = self->curl;
    char curl_error[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(curl, CURLOPT_HTTPGET, 1L);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    /* no time limit for the whole body (an archive may be large), but one for a
     * stall */
    curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, 60L);
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, curl_error);
    download_t d = {.curl = curl, .file = file};
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, download_body);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &d);
    CURLcode rc = curl_easy_perform(curl);
    curl_slist_free_all(headers);
    if (rc == CURLE_OK)
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &resp->status);
    curl_off_t got = 0;
    curl_easy_getinfo(curl, CURLINFO_SIZE_DOWNLOAD_T, &got);
    resp->len = (size_t)got;
    resp->body = d.error.data ? d.error.data : strdup("");
    if (d.error.len)
        resp->json = json_loadb(resp->body, d.error.len, JSON_DECODE_ANY, NULL);
    if (d.failed)
        snprintf(resp->error, sizeof resp->error, "cannot write the file: %s", strerror(d.failed));
    else if (rc != CURLE_OK || resp->status < 200 || resp->status >= 300)
        describe_failure(self, rc, curl_error, resp);
    return rc == CURLE_OK ? 0 : -1;
}

void client_response_clear(client_response_t *resp)
{
    free(resp->body);
    json_decref(resp->json);
    memset(resp, 0, sizeof *resp);
}

int client_call(client_t *self, const char *method, const char *path, const json_t *body,
                json_t **out)
{
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    client_response_t resp;
    client_request(self, method, path, NULL, text, text ? strlen(text) : 0, &resp);
    free(text);
    int code = client_exit_code(resp.status, json_string_value(json_object_get(resp.json,
                                                                                "detail")));
    if (code == CLI_EXIT_OK) {
        if (out) {
            *out = resp.json ? json_incref(resp.json) : json_string(resp.body);
        }
    } else {
        fprintf(stderr, "error: %s\n", resp.error);
    }
    client_response_clear(&resp);
    return code;
}

/* ---- event streams ---- */

typedef struct {
    client_t *client;
    client_frame_fn on_frame;
    client_tick_fn on_tick;
    void *arg;
    long long *last_id;
    long status;          /* of the current connection, 0 until the headers are in */
    body_t error_body;    /* a non-200 answer's body */
    body_t line;          /* the line being read */
    body_t data;          /* the frame's data lines */
    long long frame_id;   /* -1: none yet in this frame */
    bool stopped;         /* on_frame said stop */
    bool idle_stopped;    /* quiet for idle_stop_ms after the first frame */
    bool got_frame;
    int64_t last_frame_ms, last_tick_ms;
} stream_t;

static void dispatch_frame(stream_t *s)
{
    if (s->data.len) {
        json_t *frame = json_loadb(s->data.data, s->data.len, 0, NULL);
        if (frame) {
            if (s->frame_id >= 0)
                *s->last_id = s->frame_id;
            s->got_frame = true;
            s->last_frame_ms = mono_ms();
            if (s->on_frame(s->arg, s->frame_id, frame) != 0)
                s->stopped = true;
            json_decref(frame);
        }
    }
    s->data.len = 0;
    s->frame_id = -1;
}

/* One line of the stream (without its end): a field, a comment or a frame's end. */
static void stream_line(stream_t *s, char *line, size_t len)
{
    if (len && line[len - 1] == '\r')
        line[--len] = '\0';
    if (len == 0) {
        dispatch_frame(s);
        return;
    }
    if (line[0] == ':')
        return; /* keepalive */
    char *value = memchr(line, ':', len);
    size_t name_len = value ? (size_t)(value - line) : len;
    value = value ? value + 1 : line + len;
    if (*value == ' ')
        value++;
    if (name_len == 2 && !strncmp(line, "id", 2)) {
        char *end;
        long long id = strtoll(value, &end, 10);
        if (end != value && *end == '\0' && id >= 0)
            s->frame_id = id;
    } else if (name_len == 4 && !strncmp(line, "data", 4)) {
        if (s->data.len && collect_body("\n", 1, 1, &s->data) != 1)
            return;
        collect_body(value, 1, strlen(value), &s->data);
    }
}

static size_t stream_body(char *ptr, size_t size, size_t nmemb, void *arg)
{
    stream_t *s = arg;
    size_t n = size * nmemb;
    if (!s->status)
        curl_easy_getinfo(s->client->curl, CURLINFO_RESPONSE_CODE, &s->status);
    if (s->status != 200)
        return collect_body(ptr, size, nmemb, &s->error_body);
    for (size_t i = 0; i < n && !s->stopped; i++) {
        if (ptr[i] == '\n') {
            /* collect_body keeps the text NUL-terminated */
            stream_line(s, s->line.len ? s->line.data : (char[1]){'\0'}, s->line.len);
            s->line.len = 0;
        } else {
            if (s->line.len >= (size_t)CLIENT_MAX_FRAME || collect_body(ptr + i, 1, 1, &s->line) != 1)
                return 0;
        }
    }
    return s->stopped ? 0 : n;
}

/* Ticks about once a second, stops on the interrupt flag, and on a quiet replay. */
static int stream_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                           curl_off_t ulnow)
{
    (void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
    stream_t *s = arg;
    if (s->client->interrupt && *s->client->interrupt)
        return 1;
    int64_t now = mono_ms();
    if (s->on_tick && now - s->last_tick_ms >= 1000) {
        s->last_tick_ms = now;
        s->on_tick(s->arg);
    }
    if (s->client->idle_stop_ms > 0 && s->got_frame &&
        now - s->last_frame_ms >= s->client->idle_stop_ms) {
        s->idle_stopped = true;
        return 1;
    }
    return 0;
}

/* Sleeps ms, ticking and watching the interrupt flag; false when interrupted. */
static bool stream_pause(stream_t *s, long ms)
{
    int64_t until = mono_ms() + ms;
    while (mono_ms() < until) {
        if (s->client->interrupt && *s->client->interrupt)
            return false;
        stream_progress(s, 0, 0, 0, 0);
        sleep_ms(50);
    }
    return true;
}

int client_stream(client_t *self, const char *path, long long *last_id, client_frame_fn on_frame,
                  client_tick_fn on_tick, void *arg, long give_up_ms)
{
    stream_t s = {.client = self, .on_frame = on_frame, .on_tick = on_tick, .arg = arg,
                  .last_id = last_id, .frame_id = -1, .last_tick_ms = mono_ms()};
    int64_t deadline = mono_ms() + give_up_ms;
    long backoff = 100;
    char last_error[512] = "";
    int result = CLI_EXIT_UNREACHABLE;
    for (;;) {
        struct curl_slist *headers = prepare(self, path, "text/event-stream");
        if (!headers) {
            snprintf(last_error, sizeof last_error, "out of memory");
            break;
        }
        char resume[64];
        if (*last_id >= 0) {
            snprintf(resume, sizeof resume, "Last-Event-ID: %lld", *last_id);
            struct curl_slist *next = curl_slist_append(headers, resume);
            if (next)
                headers = next;
        }
        char curl_error[CURL_ERROR_SIZE] = "";
        curl_easy_setopt(self->curl, CURLOPT_HTTPGET, 1L);
        curl_easy_setopt(self->curl, CURLOPT_HTTPHEADER, headers);
        curl_easy_setopt(self->curl, CURLOPT_ERRORBUFFER, curl_error);
        curl_easy_setopt(self->curl, CURLOPT_WRITEFUNCTION, stream_body);
        curl_easy_setopt(self->curl, CURLOPT_WRITEDATA, &s);
        curl_easy_setopt(self->curl, CURLOPT_XFERINFOFUNCTION, stream_progress);
        curl_easy_setopt(self->curl, CURLOPT_XFERINFODATA, &s);
        /* Keepalives come every 15 s: a minute of silence is a dead connection. */
        curl_easy_setopt(self->curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
        curl_easy_setopt(self->curl, CURLOPT_LOW_SPEED_TIME, 60L);
        s.status = 0;
        s.error_body.len = 0;
        s.line.len = 0;
        s.data.len = 0;
        s.frame_id = -1;
        CURLcode rc = curl_easy_perform(self->curl);
        curl_slist_free_all(headers);
        if (!s.status)
            curl_easy_getinfo(self->curl, CURLINFO_RESPONSE_CODE, &s.status);
        if (s.stopped || s.idle_stopped) {
            result = CLI_EXIT_OK;
            goto done;
        }
        if (self->interrupt && *self->interrupt) {
            result = CLI_EXIT_INTERRUPTED;
            goto done;
        }
        if (s.status == 200) {
            /* The stream was up: a drop now is a restart to wait out, from now. */
            deadline = mono_ms() + give_up_ms;
            backoff = 100;
            snprintf(last_error, sizeof last_error, "the event stream of %s ended", self->url);
        } else if (s.status != 0 && s.status != 502 && s.status != 503) {
            json_t *body = s.error_body.len ? json_loadb(s.error_body.data, s.error_body.len, 0,
                                                         NULL)
                                            : NULL;
            client_response_t resp = {.status = s.status, .json = body};
            describe_failure(self, CURLE_OK, "", &resp);
            result = client_exit_code(
                s.status, json_string_value(json_object_get(body, "detail")));
            fprintf(stderr, "error: %s\n", resp.error);
            json_decref(body);
            goto done;
        } else if (rc != CURLE_OK) {
            snprintf(last_error, sizeof last_error, "cannot reach %s: %s", self->url,
                     curl_error[0] ? curl_error : curl_easy_strerror(rc));
        } else {
            snprintf(last_error, sizeof last_error, "%s: broker unavailable (HTTP %ld)", self->url,
                     s.status);
        }
        if (mono_ms() >= deadline)
            break;
        if (!stream_pause(&s, backoff)) {
            result = CLI_EXIT_INTERRUPTED;
            goto done;
        }
        backoff = backoff * 2 > 1000 ? 1000 : backoff * 2;
    }
    fprintf(stderr, "error: %s\n", last_error);
    result = CLI_EXIT_UNREACHABLE;
done:
    free(s.error_body.data);
    free(s.line.data);
    free(s.data.data);
    return result;
}
