/* provider_mock: an in-process agent for tests and local demos; no fork, just a
 * timer per attempt, so thousands of phases cost nothing but the protocol. */
#include "worker/provider.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"

/* About 30 years: keeps deadline arithmetic far from overflow. */
#define MOCK_MAX_DELAY_MS 1000000000000LL

typedef struct {
    int64_t delay_ms;
} mock_config_t;

typedef struct {
    int64_t due_us;      /* when the attempt ends (syn_mono_us) */
    bool timed_out;      /* it ends at the timeout, before its delay */
    int64_t timeout_ms;
    char *fail_reason;   /* NULL = it succeeds */
    char *output;
    bool has_tokens;     /* "#mock tokens <in> <out>" */
    long long tokens_in, tokens_out;
} mock_run_t;

/* Finds a prompt line "#mock <word> <rest>" (leading blanks allowed) and copies
 * the rest of its first occurrence, trimmed, into a malloc'd string. NULL when
 * there is no such line. */
static char *directive(const char *prompt, const char *word)
{
    size_t wlen = strlen(word);
    for (const char *line = prompt; line && *line;) {
        const char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        const char *p = line;
        while (p < line + len && (*p == ' ' || *p == '\t'))
            p++;
        if ((size_t)(line + len - p) >= 6 + wlen && strncmp(p, "#mock ", 6) == 0 &&
            strncmp(p + 6, word, wlen) == 0 &&
            (p + 6 + wlen == line + len || isspace((unsigned char)p[6 + wlen]))) {
            const char *rest = p + 6 + wlen;
            const char *stop = line + len;
            while (rest < stop && isspace((unsigned char)*rest))
                rest++;
            while (stop > rest && isspace((unsigned char)stop[-1]))
                stop--;
            return strndup(rest, (size_t)(stop - rest));
        }
        line = end ? end + 1 : NULL;
    }
    return NULL;
}

static void *mock_start(void *config, worker_run_t *run, const worker_job_t *job, char *err,
                        size_t errlen)
{
    (void)run;
    const mock_config_t *cfg = config;
    mock_run_t *self = calloc(1, sizeof *self);
    if (!self)
        goto oom;
    int64_t delay = cfg->delay_ms;
    char *sleep_arg = directive(job->prompt, "sleep");
    if (sleep_arg) {
        char *end;
        errno = 0;
        long long ms = strtoll(sleep_arg, &end, 10);
        if (!errno && end != sleep_arg && !*end && ms >= 0)
            delay = ms < MOCK_MAX_DELAY_MS ? ms : MOCK_MAX_DELAY_MS;
        free(sleep_arg);
    }
    char *fail = directive(job->prompt, "fail");
    if (fail && !*fail) {
        free(fail);
        fail = strdup("mock failure");
    }
    self->fail_reason = fail;
    char *tokens = directive(job->prompt, "tokens");
    if (tokens) {
        char *end;
        errno = 0;
        long long in = strtoll(tokens, &end, 10);
        long long out = errno || end == tokens ? -1 : strtoll(end, &end, 10);
        while (isspace((unsigned char)*end))
            end++;
        if (!errno && !*end && in >= 0 && out >= 0) {
            self->has_tokens = true;
            self->tokens_in = in;
            self->tokens_out = out;
        }
        free(tokens);
    }
    self->timeout_ms = job->timeout_ms;
    if (job->timeout_ms > 0 && delay > job->timeout_ms) {
        self->timed_out = true;
        delay = job->timeout_ms;
    }
    /* Counted in microseconds from when the worker took the attempt: a whole
     * millisecond clock would end phases up to 1 ms early or late, and the
     * attempts of one ASSIGN burst keep ending (and reporting) together. */
    self->due_us = job->started_us + delay * 1000;
    size_t size = strlen(job->phase_id) + strlen(job->prompt) + 64;
    self->output = malloc(size);
    if (!self->output)
        goto oom;
    snprintf(self->output, size, "mock output for phase %s:\n%s", job->phase_id, job->prompt);
    return self;
oom:
    if (self) {
        free(self->fail_reason);
        free(self);
    }
    snprintf(err, errlen, "out of memory");
    return NULL;
}

/* Rounded up: a caller that sleeps in milliseconds then never steps early. */
static int64_t mock_deadline(void *state)
{
    return (((mock_run_t *)state)->due_us + 999) / 1000;
}

static int64_t mock_deadline_us(void *state)
{
    return ((mock_run_t *)state)->due_us;
}

static void mock_step(void *state, worker_run_t *run, const struct pollfd *fds, int nfds,
                      int64_t now_ms)
{
    (void)fds;
    (void)nfds;
    mock_run_t *self = state;
    /* now_ms cannot tell whether a deadline inside this millisecond has
     * passed; only then is the finer clock read. */
    if (now_ms < self->due_us / 1000 || syn_mono_us() < self->due_us)
        return;
    if (self->has_tokens) {
        worker_usage_t *usage = worker_run_usage(run);
        usage->reported = true;
        usage->input_tokens = self->tokens_in;
        usage->output_tokens = self->tokens_out;
        usage->num_turns = 1;
    }
    if (self->timed_out) {
        char reason[64];
        worker_format_timeout(self->timeout_ms, reason, sizeof reason);
        worker_run_finish(run, WORKER_RUN_FAILED, reason, false, 0);
    } else if (self->fail_reason)
        worker_run_finish(run, WORKER_RUN_FAILED, self->fail_reason, false, 0);
    else {
        worker_run_append(run, self->output, strlen(self->output));
        worker_run_finish(run, WORKER_RUN_COMPLETED, NULL, false, 0);
    }
}

static void mock_cancel(void *state, worker_run_t *run, int64_t now_ms)
{
    (void)state;
    (void)now_ms;
    worker_run_finish(run, WORKER_RUN_CANCELLED, "cancelled", false, 0);
}

static void mock_destroy(void *state)
{
    mock_run_t *self = state;
    free(self->fail_reason);
    free(self->output);
    free(self);
}

static const worker_provider_ops_t mock_ops = {
    .name = "mock",
    .start = mock_start,
    .pollfds = NULL,
    .deadline = mock_deadline,
    .deadline_us = mock_deadline_us,
    .step = mock_step,
    .cancel = mock_cancel,
    .destroy = mock_destroy,
    .config_destroy = free,
};

worker_provider_t *worker_provider_mock_new(int64_t delay_ms)
{
    mock_config_t *config = calloc(1, sizeof *config);
    if (!config)
        return NULL;
    if (delay_ms < 0)
        delay_ms = 0;
    config->delay_ms = delay_ms < MOCK_MAX_DELAY_MS ? delay_ms : MOCK_MAX_DELAY_MS;
    return worker_provider_new(&mock_ops, config);
}
