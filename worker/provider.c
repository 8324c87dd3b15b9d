#include "worker/provider.h"
#include "worker/utf8.h"
#include "common/clock.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct worker_provider_t {
    const worker_provider_ops_t *ops;
    void *config;
};

struct worker_run_t {
    worker_provider_t *provider;
    void *state;
    char *output;          /* sanitized, NUL-terminated */
    size_t output_len;
    size_t output_cap;
    char pending[4];       /* the start of a character split across two appends */
    size_t pending_len;
    bool truncated;
    worker_run_status_t status;
    char *error;
    bool has_exit_code;
    int exit_code;
};

worker_provider_t *worker_provider_new(const worker_provider_ops_t *ops, void *config)
{
    worker_provider_t *self = calloc(1, sizeof *self);
    if (!self) {
        if (ops->config_destroy)
            ops->config_destroy(config);
        return NULL;
    }
    self->ops = ops;
    self->config = config;
    return self;
}

void worker_provider_destroy(worker_provider_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    worker_provider_t *self = *self_p;
    if (self->ops->config_destroy)
        self->ops->config_destroy(self->config);
    free(self);
    *self_p = NULL;
}

const char *worker_provider_name(const worker_provider_t *self)
{
    return self->ops->name;
}

worker_run_t *worker_run_start(worker_provider_t *provider, const worker_job_t *job,
                               char *err, size_t errlen)
{
    worker_run_t *self = calloc(1, sizeof *self);
    if (self)
        self->output = calloc(1, 1);
    if (!self || !self->output) {
        if (self)
            free(self);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    self->provider = provider;
    self->status = WORKER_RUN_RUNNING;
    self->state = provider->ops->start(provider->config, self, job, err, errlen);
    if (!self->state) {
        free(self->output);
        free(self->error);
        free(self);
        return NULL;
    }
    return self;
}

void worker_run_destroy(worker_run_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    worker_run_t *self = *self_p;
    self->provider->ops->destroy(self->state);
    free(self->output);
    free(self->error);
    free(self);
    *self_p = NULL;
}

int worker_run_pollfds(worker_run_t *self, struct pollfd *fds, int max)
{
    assert(max >= WORKER_RUN_MAX_FDS);
    if (self->status != WORKER_RUN_RUNNING || !self->provider->ops->pollfds)
        return 0;
    return self->provider->ops->pollfds(self->state, fds, max);
}

int64_t worker_run_deadline(worker_run_t *self)
{
    if (self->status != WORKER_RUN_RUNNING || !self->provider->ops->deadline)
        return -1;
    return self->provider->ops->deadline(self->state);
}

void worker_run_step(worker_run_t *self, const struct pollfd *fds, int nfds, int64_t now_ms)
{
    if (self->status == WORKER_RUN_RUNNING)
        self->provider->ops->step(self->state, self, fds, nfds, now_ms);
}

void worker_run_cancel(worker_run_t *self, int64_t now_ms)
{
    if (self->status == WORKER_RUN_RUNNING)
        self->provider->ops->cancel(self->state, self, now_ms);
}

int worker_run_drive(worker_run_t *self, int64_t max_ms)
{
    int64_t give_up = syn_mono_ms() + max_ms;
    while (self->status == WORKER_RUN_RUNNING) {
        int64_t now = syn_mono_ms();
        if (now >= give_up)
            return -1;
        struct pollfd fds[WORKER_RUN_MAX_FDS];
        int nfds = worker_run_pollfds(self, fds, WORKER_RUN_MAX_FDS);
        int64_t wake = give_up;
        int64_t deadline = worker_run_deadline(self);
        if (deadline >= 0 && deadline < wake)
            wake = deadline;
        int timeout = wake > now ? (int)(wake - now) : 0;
        if (poll(fds, (nfds_t)nfds, timeout) < 0 && errno != EINTR)
            return -1;
        worker_run_step(self, fds, nfds, syn_mono_ms());
    }
    return 0;
}

worker_run_status_t worker_run_status(const worker_run_t *self) { return self->status; }

bool worker_run_finished(const worker_run_t *self)
{
    return self->status != WORKER_RUN_RUNNING;
}

const char *worker_run_output(const worker_run_t *self, size_t *len)
{
    if (len)
        *len = self->output_len;
    return self->output;
}

const char *worker_run_error(const worker_run_t *self) { return self->error; }

bool worker_run_exit_code(const worker_run_t *self, int *code)
{
    if (self->has_exit_code && code)
        *code = self->exit_code;
    return self->has_exit_code;
}

const char *worker_run_status_name(worker_run_status_t status)
{
    switch (status) {
    case WORKER_RUN_RUNNING: return "running";
    case WORKER_RUN_COMPLETED: return "completed";
    case WORKER_RUN_FAILED: return "failed";
    case WORKER_RUN_CANCELLED: return "cancelled";
    }
    return "failed";
}

/* Makes room for extra more bytes plus the terminator; false when out of memory. */
static bool reserve(worker_run_t *self, size_t extra)
{
    size_t need = self->output_len + extra + 1;
    if (need <= self->output_cap)
        return true;
    size_t cap = self->output_cap ? self->output_cap : 4096;
    while (cap < need)
        cap *= 2;
    char *grown = realloc(self->output, cap);
    if (!grown)
        return false;
    self->output = grown;
    self->output_cap = cap;
    return true;
}

/* Appends already-sanitized text, cutting it at the output limit on a character
 * boundary. */
static void append_clean(worker_run_t *self, const char *text, size_t len)
{
    size_t room = WORKER_OUTPUT_MAX - self->output_len;
    if (len > room) {
        len = worker_utf8_floor(text, len, room);
        self->truncated = true;
    }
    if (len == 0)
        return;
    if (!reserve(self, len)) {
        self->truncated = true;
        return;
    }
    memcpy(self->output + self->output_len, text, len);
    self->output_len += len;
    self->output[self->output_len] = '\0';
}

/* Sanitizes raw bytes in slices through a stack buffer, so memory stays bounded
 * however much a child prints. */
static void append_sanitized(worker_run_t *self, const char *data, size_t len)
{
    char clean[3 * 1024];
    while (len > 0 && !self->truncated) {
        size_t slice = len < 1024 ? len : 1024;
        if (slice < len) /* do not split a character between two slices */
            slice -= worker_utf8_incomplete_tail(data, slice);
        size_t n = worker_utf8_sanitize(data, slice, clean);
        append_clean(self, clean, n);
        data += slice;
        len -= slice;
    }
}

void worker_run_append(worker_run_t *self, const char *data, size_t len)
{
    if (self->status != WORKER_RUN_RUNNING || self->truncated || len == 0)
        return;
    /* Complete a character left over from the previous append first. */
    while (self->pending_len > 0 && len > 0) {
        self->pending[self->pending_len++] = *data++;
        len--;
        size_t tail = worker_utf8_incomplete_tail(self->pending, self->pending_len);
        if (tail == self->pending_len && self->pending_len < 4)
            continue; /* still unfinished */
        size_t done = self->pending_len - tail;
        append_sanitized(self, self->pending, done);
        memmove(self->pending, self->pending + done, tail);
        self->pending_len = tail;
        break;
    }
    if (len == 0)
        return;
    size_t tail = worker_utf8_incomplete_tail(data, len);
    append_sanitized(self, data, len - tail);
    if (!self->truncated) {
        memcpy(self->pending + self->pending_len, data + len - tail, tail);
        self->pending_len += tail;
    }
}

void worker_run_finish(worker_run_t *self, worker_run_status_t status, const char *error,
                       bool has_exit_code, int exit_code)
{
    if (self->status != WORKER_RUN_RUNNING)
        return;
    if (self->pending_len > 0 && !self->truncated)
        append_sanitized(self, self->pending, self->pending_len);
    self->pending_len = 0;
    if (self->truncated && reserve(self, sizeof WORKER_OUTPUT_MARKER)) {
        memcpy(self->output + self->output_len, WORKER_OUTPUT_MARKER,
               sizeof WORKER_OUTPUT_MARKER);
        self->output_len += sizeof WORKER_OUTPUT_MARKER - 1;
    }
    if (error) {
        size_t len = strlen(error);
        self->error = malloc(3 * len + 1);
        if (self->error)
            self->error[worker_utf8_sanitize(error, len, self->error)] = '\0';
    }
    self->has_exit_code = has_exit_code;
    self->exit_code = exit_code;
    self->status = status;
}

void worker_format_timeout(int64_t ms, char *buf, size_t buflen)
{
    if (ms % 1000 == 0)
        snprintf(buf, buflen, "timed out after %lld s", (long long)(ms / 1000));
    else
        snprintf(buf, buflen, "timed out after %.3g s", (double)ms / 1000.0);
}
