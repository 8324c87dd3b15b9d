/* provider_anthropic: the Anthropic Messages API, called directly.
 *
 * One POST to <base>/v1/messages per try, {"model", "max_tokens", "stream":
 * true, "messages": [{"role": "user", "content": preamble + prompt}]}, with
 * the x-api-key and anthropic-version headers. The transfer runs on a libcurl
 * multi handle per attempt driven by the worker's own poll loop through
 * curl's socket interface (the sockets curl wants watched become the run's
 * pollfds, curl's timer its deadline), so nothing blocks and no thread is made.
 *
 * The answer streams as server-sent events (anthropic_sse.h reads them):
 * message_start (model, input and cache token counts), content_block_delta text
 * (shown as output while it comes), message_delta (stop reason, output tokens),
 * message_stop, error.
 * 429, 529 and 5xx answers, transport errors, and an overloaded stream that
 * has shown nothing yet are tried again inside the attempt after the answer's
 * retry-after (else a back-off doubling from retry_base_ms), up to max_tries
 * requests and never past the attempt's timeout; any other answer fails the
 * attempt with the API's own error message.
 *
 * libcurl is loaded when the provider is made (worker/curl_loader.h): a worker
 * with another provider never maps it. */
#include "worker/provider.h"
#include "worker/anthropic_sse.h"
#include "worker/curl_loader.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/clock.h"
#include "common/log.h"

#define ANTHROPIC_VERSION "2023-06-01"
#define DEFAULT_MAX_TOKENS 4096
/* An error answer's body is read up to this much (its message is in there). */
#define ERROR_BODY_MAX 65536
/* The longest wait between tries, whatever retry-after says. */
#define RETRY_WAIT_MAX_MS (10 * 60 * 1000)
#define BACKOFF_MAX_MS 30000

typedef struct {
    const worker_curl_t *curl; /* libcurl, loaded with the provider */
    char *url;
    char *api_key;
    int64_t retry_base_ms;
    int max_tries;
} anthropic_config_t;

typedef struct {
    curl_socket_t fd;
    int what;                 /* CURL_POLL_IN / OUT / INOUT */
} watched_t;

typedef struct {
    const anthropic_config_t *cfg;
    worker_run_t *run;
    CURLM *multi;
    CURL *easy;
    struct curl_slist *headers;
    char *body;
    char curl_error[CURL_ERROR_SIZE];
    watched_t sockets[WORKER_RUN_MAX_FDS];
    int nsockets;
    int64_t curl_timer_at;    /* -1 = none */
    bool in_flight;
    int tries;
    int64_t next_try_at;      /* -1 = none */
    /* The current try: */
    bool status_known;
    long status;
    int64_t retry_after_ms;   /* -1 = the answer did not say */
    char *error_body;
    size_t error_len;
    anthropic_sse_t sse;      /* the answer, read */
    uint64_t received;
    bool overflowed;
    /* The attempt: */
    uint64_t max_output;
    int64_t timeout_ms, timeout_at;
} anthropic_run_t;

/* --- curl callbacks ------------------------------------------------------ */

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    anthropic_run_t *self = userdata;
    size_t n = size * nmemb;
    self->received += n;
    if (self->max_output > 0 && self->received > self->max_output) {
        self->overflowed = true;
        return 0; /* aborts the transfer */
    }
    if (!self->status_known) {
        self->cfg->curl->easy_getinfo(self->easy, CURLINFO_RESPONSE_CODE, &self->status);
        self->status_known = true;
    }
    if (self->status != 200) {
        size_t room = ERROR_BODY_MAX - self->error_len;
        size_t take = n < room ? n : room;
        if (take > 0) {
            char *grown = realloc(self->error_body, self->error_len + take + 1);
            if (grown) {
                memcpy(grown + self->error_len, ptr, take);
                self->error_len += take;
                grown[self->error_len] = '\0';
                self->error_body = grown;
            }
        }
        return n;
    }
    anthropic_sse_feed(&self->sse, self->run, ptr, n);
    return n;
}

/* Reads retry-after (seconds, possibly fractional) from the answer's headers. */
static size_t on_header(char *buffer, size_t size, size_t nitems, void *userdata)
{
    anthropic_run_t *self = userdata;
    size_t n = size * nitems;
    static const char name[] = "retry-after:";
    if (n > sizeof name - 1 && strncasecmp(buffer, name, sizeof name - 1) == 0) {
        char value[64];
        size_t len = n - (sizeof name - 1);
        if (len >= sizeof value)
            len = sizeof value - 1;
        memcpy(value, buffer + sizeof name - 1, len);
        value[len] = '\0';
        char *end;
        errno = 0;
        double seconds = strtod(value, &end);
        while (*end && isspace((unsigned char)*end))
            end++;
        if (!errno && end != value && !*end && seconds >= 0 && isfinite(seconds))
            self->retry_after_ms =
                seconds * 1000 < RETRY_WAIT_MAX_MS ? (int64_t)(seconds * 1000) : RETRY_WAIT_MAX_MS;
    }
    return n;
}

static int on_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    (void)easy;
    (void)socketp;
    anthropic_run_t *self = userp;
    int i = 0;
    while (i < self->nsockets && self->sockets[i].fd != fd)
        i++;
    if (what == CURL_POLL_REMOVE) {
        if (i < self->nsockets) {
            self->sockets[i] = self->sockets[self->nsockets - 1];
            self->nsockets--;
        }
        return 0;
    }
    if (i == self->nsockets) {
        if (self->nsockets == WORKER_RUN_MAX_FDS) {
            syn_warn("worker", "anthropic: libcurl wants more than %d sockets watched",
                     WORKER_RUN_MAX_FDS);
            return 0;
        }
        self->nsockets++;
    }
    self->sockets[i] = (watched_t){.fd = fd, .what = what};
    return 0;
}

static int on_timer(CURLM *multi, long timeout_ms, void *userp)
{
    (void)multi;
    anthropic_run_t *self = userp;
    self->curl_timer_at = timeout_ms < 0 ? -1 : syn_mono_ms() + timeout_ms;
    return 0;
}

/* --- tries --------------------------------------------------------------- */

static void reset_try(anthropic_run_t *self)
{
    self->status_known = false;
    self->status = 0;
    self->retry_after_ms = -1;
    self->error_len = 0;
    anthropic_sse_reset(&self->sse);
    self->curl_error[0] = '\0';
}

static void start_try(anthropic_run_t *self)
{
    reset_try(self);
    self->tries++;
    self->next_try_at = -1;
    CURLMcode rc = self->cfg->curl->multi_add_handle(self->multi, self->easy);
    if (rc != CURLM_OK) {
        char reason[256];
        snprintf(reason, sizeof reason, "cannot start the request: %s",
                 self->cfg->curl->multi_strerror(rc));
        worker_run_finish(self->run, WORKER_RUN_FAILED, reason, false, 0);
        return;
    }
    self->in_flight = true;
}

static void end_try(anthropic_run_t *self)
{
    if (self->in_flight) {
        self->cfg->curl->multi_remove_handle(self->multi, self->easy);
        self->in_flight = false;
    }
    self->nsockets = 0;
    self->curl_timer_at = -1;
}

/* Tries again after retry-after (or the back-off) when tries and time allow;
 * otherwise fails the attempt with why. */
static void retry_or_fail(anthropic_run_t *self, const char *why, int64_t now)
{
    char reason[1024];
    if (self->tries >= self->cfg->max_tries) {
        snprintf(reason, sizeof reason, "%s (gave up after %d tr%s)", why, self->tries,
                 self->tries == 1 ? "y" : "ies");
        worker_run_finish(self->run, WORKER_RUN_FAILED, reason, false, 0);
        return;
    }
    int64_t wait = self->retry_after_ms;
    if (wait < 0) {
        wait = self->cfg->retry_base_ms;
        for (int i = 1; i < self->tries && wait < BACKOFF_MAX_MS; i++)
            wait *= 2;
        if (wait > BACKOFF_MAX_MS)
            wait = BACKOFF_MAX_MS;
    }
    if (self->timeout_at >= 0 && now + wait >= self->timeout_at) {
        snprintf(reason, sizeof reason, "%s (no time left to try again)", why);
        worker_run_finish(self->run, WORKER_RUN_FAILED, reason, false, 0);
        return;
    }
    syn_info("worker", "anthropic: %s; trying again in %lld ms (try %d of %d)", why,
             (long long)wait, self->tries + 1, self->cfg->max_tries);
    self->next_try_at = now + wait;
}

/* "HTTP 400 invalid_request_error: <the API's message>" from an error answer. */
static void describe_error_answer(anthropic_run_t *self, char *buf, size_t buflen)
{
    json_error_t jerr;
    json_t *body = self->error_body ? json_loadb(self->error_body, self->error_len, 0, &jerr)
                                    : NULL;
    json_t *error = json_object_get(body, "error");
    const char *type = json_string_value(json_object_get(error, "type"));
    const char *message = json_string_value(json_object_get(error, "message"));
    if (message)
        snprintf(buf, buflen, "HTTP %ld %s: %s", self->status, type ? type : "error", message);
    else if (self->error_len > 0)
        snprintf(buf, buflen, "HTTP %ld: %.300s", self->status, self->error_body);
    else
        snprintf(buf, buflen, "HTTP %ld", self->status);
    json_decref(body);
}

static void on_done(anthropic_run_t *self, CURLcode result, int64_t now)
{
    if (self->status_known == false)
        self->cfg->curl->easy_getinfo(self->easy, CURLINFO_RESPONSE_CODE, &self->status);
    end_try(self);
    char reason[1024];
    if (self->overflowed) {
        worker_format_output_limit(self->max_output, reason, sizeof reason);
        worker_run_finish(self->run, WORKER_RUN_FAILED, reason, false, 0);
        return;
    }
    if (result != CURLE_OK) {
        snprintf(reason, sizeof reason, "cannot complete the request to %s: %s", self->cfg->url,
                 *self->curl_error ? self->curl_error : self->cfg->curl->easy_strerror(result));
        if (self->sse.shown_text)
            worker_run_finish(self->run, WORKER_RUN_FAILED, reason, false, 0);
        else
            retry_or_fail(self, reason, now);
        return;
    }
    if (self->status != 200) {
        describe_error_answer(self, reason, sizeof reason);
        if (self->status == 429 || self->status == 529 || self->status >= 500)
            retry_or_fail(self, reason, now);
        else
            worker_run_finish(self->run, WORKER_RUN_FAILED, reason, false, 0);
        return;
    }
    anthropic_sse_end(&self->sse, self->run);
    if (self->sse.stream_error) {
        snprintf(reason, sizeof reason, "the API stream failed: %s", self->sse.stream_error);
        if (self->sse.stream_error_retryable && !self->sse.shown_text)
            retry_or_fail(self, reason, now);
        else
            worker_run_finish(self->run, WORKER_RUN_FAILED, reason, false, 0);
    } else if (!self->sse.message_stopped) {
        snprintf(reason, sizeof reason, "the API stream ended before the message did");
        if (self->sse.shown_text)
            worker_run_finish(self->run, WORKER_RUN_FAILED, reason, false, 0);
        else
            retry_or_fail(self, reason, now);
    } else {
        worker_usage_t *usage = worker_run_usage(self->run);
        usage->num_turns = 1;
        worker_run_finish(self->run, WORKER_RUN_COMPLETED, NULL, false, 0);
    }
}

/* --- the provider -------------------------------------------------------- */

/* A short preamble: this provider has no workspace and no tools, so it says
 * where the agent stands rather than where files are. */
static char *preamble(const worker_job_t *job)
{
    size_t cap = 512 + strlen(job->phase_id);
    const char *key;
    json_t *value;
    size_t i;
    json_object_foreach((json_t *)job->inputs, key, value)
        cap += strlen(key) + 2;
    json_array_foreach(job->repos, i, value)
        cap += json_string_length(value) + 2;
    char *text = malloc(cap);
    if (!text)
        return NULL;
    size_t n = (size_t)snprintf(text, cap,
                                "You are running phase \"%s\" of a syn workflow through the API: "
                                "you have no tools and no files, and your reply is this phase's "
                                "output.\n",
                                job->phase_id);
    if (json_object_size(job->inputs) > 0) {
        n += (size_t)snprintf(text + n, cap - n, "Earlier phases of this workflow:");
        bool first = true;
        json_object_foreach((json_t *)job->inputs, key, value) {
            n += (size_t)snprintf(text + n, cap - n, "%s %s", first ? "" : ",", key);
            first = false;
        }
        n += (size_t)snprintf(text + n, cap - n, ".\n");
    }
    if (json_array_size(job->repos) > 0) {
        n += (size_t)snprintf(text + n, cap - n, "Repositories of this execution:");
        json_array_foreach(job->repos, i, value)
            n += (size_t)snprintf(text + n, cap - n, "%s %s", i ? "," : "",
                                  json_string_value(value) ? json_string_value(value) : "");
        n += (size_t)snprintf(text + n, cap - n, ".\n");
    }
    snprintf(text + n, cap - n, "The task follows.\n\n---\n\n");
    return text;
}

static char *request_body(const worker_job_t *job)
{
    char *intro = preamble(job);
    char *content = NULL;
    if (!intro || asprintf(&content, "%s%s", intro, job->prompt) < 0)
        content = NULL;
    free(intro);
    if (!content)
        return NULL;
    json_t *body = json_pack("{s:s, s:I, s:b, s:[{s:s, s:s}]}", "model", job->model_id,
                             "max_tokens",
                             (json_int_t)(job->max_tokens > 0 ? job->max_tokens
                                                              : DEFAULT_MAX_TOKENS),
                             "stream", 1, "messages", "role", "user", "content", content);
    free(content);
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    return text;
}

static void anthropic_destroy(void *state);

static void *anthropic_start(void *config, worker_run_t *run, const worker_job_t *job, char *err,
                             size_t errlen)
{
    const anthropic_config_t *cfg = config;
    const worker_curl_t *curl = cfg->curl;
    anthropic_run_t *self = calloc(1, sizeof *self);
    if (!self) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    self->cfg = cfg;
    self->run = run;
    anthropic_sse_init(&self->sse);
    self->curl_timer_at = -1;
    self->next_try_at = -1;
    self->retry_after_ms = -1;
    self->timeout_ms = job->timeout_ms;
    self->timeout_at = job->timeout_ms > 0 ? job->started_us / 1000 + job->timeout_ms : -1;
    self->max_output = worker_run_options(run)->max_output_bytes;
    worker_usage_t *usage = worker_run_usage(run);
    usage->reported = true;
    worker_copy_text(usage->model, sizeof usage->model, job->model_id);

    char *key_header = NULL;
    self->body = request_body(job);
    self->multi = curl->multi_init();
    self->easy = curl->easy_init();
    if (asprintf(&key_header, "x-api-key: %s", cfg->api_key) < 0)
        key_header = NULL;
    const char *lines[] = {"content-type: application/json", "accept: text/event-stream",
                           "anthropic-version: " ANTHROPIC_VERSION, key_header};
    bool ok = self->body && self->multi && self->easy && key_header;
    for (size_t i = 0; ok && i < sizeof lines / sizeof lines[0]; i++) {
        struct curl_slist *more = curl->slist_append(self->headers, lines[i]);
        ok = more != NULL;
        if (more)
            self->headers = more;
    }
    if (key_header) {
        memset(key_header, 0, strlen(key_header));
        free(key_header);
    }
    if (!ok) {
        anthropic_destroy(self);
        snprintf(err, errlen, "cannot prepare the API request (out of memory?)");
        return NULL;
    }
    curl->multi_setopt(self->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
    curl->multi_setopt(self->multi, CURLMOPT_SOCKETDATA, self);
    curl->multi_setopt(self->multi, CURLMOPT_TIMERFUNCTION, on_timer);
    curl->multi_setopt(self->multi, CURLMOPT_TIMERDATA, self);
    curl->easy_setopt(self->easy, CURLOPT_URL, cfg->url);
    curl->easy_setopt(self->easy, CURLOPT_POSTFIELDS, self->body);
    curl->easy_setopt(self->easy, CURLOPT_POSTFIELDSIZE, (long)strlen(self->body));
    curl->easy_setopt(self->easy, CURLOPT_HTTPHEADER, self->headers);
    curl->easy_setopt(self->easy, CURLOPT_WRITEFUNCTION, on_body);
    curl->easy_setopt(self->easy, CURLOPT_WRITEDATA, self);
    curl->easy_setopt(self->easy, CURLOPT_HEADERFUNCTION, on_header);
    curl->easy_setopt(self->easy, CURLOPT_HEADERDATA, self);
    curl->easy_setopt(self->easy, CURLOPT_ERRORBUFFER, self->curl_error);
    curl->easy_setopt(self->easy, CURLOPT_NOSIGNAL, 1L);
    curl->easy_setopt(self->easy, CURLOPT_PROTOCOLS_STR, "http,https");
    curl->easy_setopt(self->easy, CURLOPT_CONNECTTIMEOUT_MS, 30000L);
    /* A stream silent for five minutes is dead (the API pings while it thinks). */
    curl->easy_setopt(self->easy, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl->easy_setopt(self->easy, CURLOPT_LOW_SPEED_TIME, 300L);
    curl->easy_setopt(self->easy, CURLOPT_USERAGENT, "syn-worker/" SYN_VERSION);
    start_try(self);
    return self;
}

static int anthropic_pollfds(void *state, struct pollfd *fds, int max)
{
    anthropic_run_t *self = state;
    int n = 0;
    for (int i = 0; self->in_flight && i < self->nsockets && n < max; i++) {
        short events = 0;
        if (self->sockets[i].what & CURL_POLL_IN)
            events |= POLLIN;
        if (self->sockets[i].what & CURL_POLL_OUT)
            events |= POLLOUT;
        fds[n++] = (struct pollfd){.fd = self->sockets[i].fd, .events = events};
    }
    return n;
}

static void consider(int64_t *best, int64_t when)
{
    if (when >= 0 && (*best < 0 || when < *best))
        *best = when;
}

static int64_t anthropic_deadline(void *state)
{
    anthropic_run_t *self = state;
    int64_t best = -1;
    if (self->in_flight)
        consider(&best, self->curl_timer_at);
    consider(&best, self->next_try_at);
    consider(&best, self->timeout_at);
    return best;
}

static void anthropic_step(void *state, worker_run_t *run, const struct pollfd *fds, int nfds,
                           int64_t now)
{
    anthropic_run_t *self = state;
    if (self->timeout_at >= 0 && now >= self->timeout_at) {
        end_try(self);
        char reason[64];
        worker_format_timeout(self->timeout_ms, reason, sizeof reason);
        worker_run_finish(run, WORKER_RUN_FAILED, reason, false, 0);
        return;
    }
    if (!self->in_flight) {
        if (self->next_try_at >= 0 && now >= self->next_try_at)
            start_try(self);
        return;
    }
    int running = 0;
    for (int i = 0; i < nfds; i++) {
        if (!fds[i].revents)
            continue;
        int events = 0;
        if (fds[i].revents & (POLLIN | POLLHUP))
            events |= CURL_CSELECT_IN;
        if (fds[i].revents & POLLOUT)
            events |= CURL_CSELECT_OUT;
        if (!events && (fds[i].revents & POLLERR))
            events = CURL_CSELECT_ERR;
        self->cfg->curl->multi_socket_action(self->multi, fds[i].fd, events, &running);
    }
    if (self->curl_timer_at >= 0 && now >= self->curl_timer_at) {
        self->curl_timer_at = -1;
        self->cfg->curl->multi_socket_action(self->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    }
    int left;
    CURLMsg *msg;
    while (self->in_flight && (msg = self->cfg->curl->multi_info_read(self->multi, &left)) != NULL)
        if (msg->msg == CURLMSG_DONE)
            on_done(self, msg->data.result, syn_mono_ms());
}

static void anthropic_cancel(void *state, worker_run_t *run, int64_t now)
{
    (void)now;
    anthropic_run_t *self = state;
    end_try(self);
    self->next_try_at = -1;
    worker_run_finish(run, WORKER_RUN_CANCELLED, "cancelled", false, 0);
}

static void anthropic_destroy(void *state)
{
    anthropic_run_t *self = state;
    end_try(self);
    if (self->easy)
        self->cfg->curl->easy_cleanup(self->easy);
    if (self->multi)
        self->cfg->curl->multi_cleanup(self->multi);
    self->cfg->curl->slist_free_all(self->headers);
    free(self->body);
    free(self->error_body);
    anthropic_sse_free(&self->sse);
    free(self);
}

static void anthropic_config_destroy(void *config)
{
    anthropic_config_t *cfg = config;
    if (!cfg)
        return;
    const worker_curl_t *curl = cfg->curl;
    free(cfg->url);
    if (cfg->api_key) {
        memset(cfg->api_key, 0, strlen(cfg->api_key));
        free(cfg->api_key);
    }
    free(cfg);
    curl->global_cleanup();
}

static int anthropic_check(void *config, char *err, size_t errlen)
{
    const anthropic_config_t *cfg = config;
    if (cfg->api_key && cfg->api_key[0])
        return 0;
    snprintf(err, errlen, "no Anthropic API key is set (ANTHROPIC_API_KEY)");
    return -1;
}

static const worker_provider_ops_t anthropic_ops = {
    .check = anthropic_check,
    .name = "anthropic",
    .start = anthropic_start,
    .pollfds = anthropic_pollfds,
    .deadline = anthropic_deadline,
    .step = anthropic_step,
    .cancel = anthropic_cancel,
    .destroy = anthropic_destroy,
    .config_destroy = anthropic_config_destroy,
    .uses_workspace = false,
};

worker_provider_t *worker_provider_anthropic_new(const char *base_url, const char *api_key,
                                                 int64_t retry_base_ms, int max_tries, char *err,
                                                 size_t errlen)
{
    if (!api_key || !*api_key) {
        snprintf(err, errlen, "the anthropic provider needs ANTHROPIC_API_KEY");
        return NULL;
    }
    if (!base_url || !*base_url)
        base_url = "https://api.anthropic.com";
    if (strncmp(base_url, "https://", 8) != 0 && strncmp(base_url, "http://", 7) != 0) {
        snprintf(err, errlen, "bad --anthropic-url '%s': want http:// or https://", base_url);
        return NULL;
    }
    if (strpbrk(api_key, "\r\n")) {
        snprintf(err, errlen, "ANTHROPIC_API_KEY holds a line break");
        return NULL;
    }
    char why[256];
    const worker_curl_t *curl = worker_curl_load(why, sizeof why);
    if (!curl) {
        snprintf(err, errlen, "the anthropic provider needs libcurl (package libcurl4): %s", why);
        return NULL;
    }
    if (curl->global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        snprintf(err, errlen, "cannot initialise libcurl");
        return NULL;
    }
    anthropic_config_t *cfg = calloc(1, sizeof *cfg);
    size_t len = strlen(base_url);
    while (len > 0 && base_url[len - 1] == '/')
        len--;
    if (cfg && asprintf(&cfg->url, "%.*s/v1/messages", (int)len, base_url) < 0)
        cfg->url = NULL;
    if (cfg)
        cfg->api_key = strdup(api_key);
    if (!cfg || !cfg->url || !cfg->api_key) {
        if (cfg) {
            free(cfg->url);
            free(cfg->api_key);
            free(cfg);
        }
        curl->global_cleanup();
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    cfg->curl = curl;
    cfg->retry_base_ms = retry_base_ms > 0 ? retry_base_ms : 1;
    cfg->max_tries = max_tries > 0 ? max_tries : 1;
    worker_provider_t *self = worker_provider_new(&anthropic_ops, cfg);
    if (!self)
        snprintf(err, errlen, "out of memory");
    return self;
}
