/* provider: the run life cycle every provider shares — the attempt's
 * workspace (made, cloned into, removed), the model resolved, the timeout
 * while repositories clone, output, usage and tool events — around the
 * provider-specific start/step/cancel. */
#include "worker/provider.h"
#include "common/utf8.h"
#include "worker/workspace.h"
#include "common/budget_usd.h"
#include "common/buffer.h"
#include "common/clock.h"
#include "common/log.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Progress events queued per run and not yet taken by the loop; past this
 * they are dropped (and counted), so a tool storm cannot grow the worker. */
#define EVENTS_MAX 1000

struct worker_provider_t {
    const worker_provider_ops_t *ops;
    void *config;
    worker_options_t options;
    char *workspace_dir;          /* owned copies of the options' strings */
    char *pass_env;
    char *sandbox_ro;
    char *proxy_upstream;
    worker_models_t *own_models;  /* the compiled-in table, when options name none */
};

typedef struct {
    char *id;
    char *name;
    int success;                  /* 1, 0, or -1 while unknown */
} tool_call_t;

struct worker_run_t {
    worker_provider_t *provider;
    void *state;                  /* NULL until the provider started */
    worker_job_t job;             /* owned copies of the caller's job */
    char *strings[6];             /* what job's strings point to */
    json_t *refs[6];              /* references held on the job's JSON (copy_job) */
    worker_workspace_t *workspace;
    int64_t started_us;
    int64_t started_ms;           /* started_us / 1000 */
    int64_t ended_ms;
    int64_t timeout_at;           /* -1 = none; for the time before the provider starts */
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
    worker_usage_t usage;
    tool_call_t *tools;
    size_t tool_count;
    size_t tools_omitted;
    json_t *events;
    size_t events_dropped;
    char *budget_error;           /* set when the budget stopped it: its failure */
};

worker_provider_t *worker_provider_new(const worker_provider_ops_t *ops, void *config)
{
    worker_provider_t *self = calloc(1, sizeof *self);
    if (self)
        self->own_models = worker_models_default();
    if (!self || !self->own_models) {
        free(self);
        if (ops->config_destroy)
            ops->config_destroy(config);
        return NULL;
    }
    self->ops = ops;
    self->config = config;
    self->options.models = self->own_models;
    self->options.kill_grace_ms = 5000;
    return self;
}

void worker_provider_destroy(worker_provider_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    worker_provider_t *self = *self_p;
    if (self->ops->config_destroy)
        self->ops->config_destroy(self->config);
    free(self->workspace_dir);
    free(self->pass_env);
    free(self->sandbox_ro);
    free(self->proxy_upstream);
    worker_models_destroy(&self->own_models);
    free(self);
    *self_p = NULL;
}

const char *worker_provider_name(const worker_provider_t *self)
{
    return self->ops->name;
}

int worker_provider_check(worker_provider_t *self, char *err, size_t errlen)
{
    return self->ops->check ? self->ops->check(self->config, err, errlen) : 0;
}

int worker_provider_set_options(worker_provider_t *self, const worker_options_t *options)
{
    char *dir = options->workspace_dir ? strdup(options->workspace_dir) : NULL;
    char *pass = options->pass_env ? strdup(options->pass_env) : NULL;
    char *ro = options->sandbox_ro ? strdup(options->sandbox_ro) : NULL;
    char *up = options->proxy_upstream ? strdup(options->proxy_upstream) : NULL;
    if ((options->workspace_dir && !dir) || (options->pass_env && !pass) ||
        (options->sandbox_ro && !ro) || (options->proxy_upstream && !up)) {
        free(dir);
        free(pass);
        free(ro);
        free(up);
        return -1;
    }
    free(self->workspace_dir);
    free(self->pass_env);
    free(self->sandbox_ro);
    free(self->proxy_upstream);
    self->workspace_dir = dir;
    self->pass_env = pass;
    self->sandbox_ro = ro;
    self->proxy_upstream = up;
    self->options = *options;
    self->options.workspace_dir = dir;
    self->options.pass_env = pass;
    self->options.sandbox_ro = ro;
    self->options.proxy_upstream = up;
    if (!self->options.models)
        self->options.models = self->own_models;
    return 0;
}

/* Copies the job so a start that waits for clones still has it. */
static int copy_job(worker_run_t *self, const worker_job_t *job)
{
    self->job = *job;
    const char *src[6] = {job->execution_id, job->workflow_id, job->phase_id, job->prompt,
                          job->model, job->cwd};
    for (int i = 0; i < 6; i++) {
        if (!src[i])
            continue;
        self->strings[i] = strdup(src[i]);
        if (!self->strings[i])
            return -1;
    }
    self->job.execution_id = self->strings[0];
    self->job.workflow_id = self->strings[1] ? self->strings[1] : "";
    self->job.phase_id = self->strings[2];
    self->job.prompt = self->strings[3] ? self->strings[3] : "";
    self->job.model = self->strings[4];
    self->job.cwd = self->strings[5];
    const json_t *refs[6] = {job->inputs,    job->repos,           job->allowed_tools,
                             job->artifacts, job->input_artifacts, job->output_artifacts};
    for (int i = 0; i < 6; i++)
        self->refs[i] = refs[i] ? json_incref((json_t *)refs[i]) : NULL;
    self->job.model_id =
        worker_models_resolve(self->provider->options.models, self->job.model);
    self->job.started_us = self->started_us;
    return 0;
}

static void free_run(worker_run_t *self)
{
    for (int i = 0; i < 6; i++)
        free(self->strings[i]);
    for (int i = 0; i < 6; i++)
        json_decref(self->refs[i]);
    for (size_t i = 0; i < self->tool_count; i++) {
        free(self->tools[i].id);
        free(self->tools[i].name);
    }
    free(self->tools);
    json_decref(self->events);
    free(self->output);
    free(self->error);
    free(self->budget_error);
    free(self);
}

/* Hands the attempt to the provider: 0, or -1 with the reason in err. */
static int start_provider(worker_run_t *self, char *err, size_t errlen)
{
    self->state = self->provider->ops->start(self->provider->config, self, &self->job, err,
                                             errlen);
    return self->state ? 0 : -1;
}

worker_run_t *worker_run_start(worker_provider_t *provider, const worker_job_t *job,
                               char *err, size_t errlen)
{
    worker_run_t *self = calloc(1, sizeof *self);
    if (self) {
        self->output = calloc(1, 1);
        self->events = json_array();
    }
    if (!self || !self->output || !self->events) {
        if (self) {
            free(self->output);
            json_decref(self->events);
            free(self);
        }
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    self->provider = provider;
    self->status = WORKER_RUN_RUNNING;
    self->started_us = job->started_us > 0 ? job->started_us : syn_mono_us();
    self->started_ms = self->started_us / 1000;
    self->timeout_at = job->timeout_ms > 0 ? self->started_ms + job->timeout_ms : -1;
    self->usage.duration_ms = -1;
    if (copy_job(self, job) != 0) {
        snprintf(err, errlen, "out of memory");
        free_run(self);
        return NULL;
    }
    if (provider->ops->uses_workspace && !self->job.cwd) {
        self->workspace = worker_workspace_new(provider->options.workspace_dir, &self->job,
                                               &provider->options, err, errlen);
        if (!self->workspace) {
            free_run(self);
            return NULL;
        }
        self->job.cwd = worker_workspace_path(self->workspace);
        if (!worker_workspace_ready(self->workspace))
            return self; /* the provider starts once the repositories are cloned */
    }
    if (start_provider(self, err, errlen) != 0) {
        worker_workspace_destroy(&self->workspace, provider->options.keep_workspaces);
        free_run(self);
        return NULL;
    }
    return self;
}

void worker_run_destroy(worker_run_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    worker_run_t *self = *self_p;
    if (self->state)
        self->provider->ops->destroy(self->state);
    worker_workspace_destroy(&self->workspace, self->provider->options.keep_workspaces);
    free_run(self);
    *self_p = NULL;
}

int worker_run_pollfds(worker_run_t *self, struct pollfd *fds, int max)
{
    assert(max >= WORKER_RUN_MAX_FDS);
    if (self->status != WORKER_RUN_RUNNING)
        return 0;
    if (!self->state)
        return self->workspace ? worker_workspace_pollfds(self->workspace, fds, max) : 0;
    if (!self->provider->ops->pollfds)
        return 0;
    return self->provider->ops->pollfds(self->state, fds, max);
}

static void consider(int64_t *best, int64_t when)
{
    if (when >= 0 && (*best < 0 || when < *best))
        *best = when;
}

int64_t worker_run_deadline(worker_run_t *self)
{
    if (self->status != WORKER_RUN_RUNNING)
        return -1;
    if (!self->state) {
        int64_t best = self->timeout_at;
        if (self->workspace)
            consider(&best, worker_workspace_deadline(self->workspace));
        return best;
    }
    if (!self->provider->ops->deadline)
        return -1;
    return self->provider->ops->deadline(self->state);
}

int64_t worker_run_deadline_us(worker_run_t *self)
{
    if (self->status == WORKER_RUN_RUNNING && self->state && self->provider->ops->deadline_us)
        return self->provider->ops->deadline_us(self->state);
    int64_t ms = worker_run_deadline(self);
    return ms < 0 ? -1 : ms * 1000;
}

/* Before the provider starts: drives the clones, then starts it. */
static void prepare(worker_run_t *self, const struct pollfd *fds, int nfds, int64_t now_ms)
{
    if (self->timeout_at >= 0 && now_ms >= self->timeout_at) {
        worker_workspace_stop(self->workspace);
        char reason[64];
        worker_format_timeout(self->job.timeout_ms, reason, sizeof reason);
        worker_run_finish(self, WORKER_RUN_FAILED, reason, false, 0);
        return;
    }
    worker_workspace_step(self->workspace, fds, nfds, now_ms);
    if (worker_workspace_error(self->workspace)) {
        worker_run_finish(self, WORKER_RUN_FAILED, worker_workspace_error(self->workspace),
                          false, 0);
        return;
    }
    if (!worker_workspace_ready(self->workspace))
        return;
    char err[512];
    if (start_provider(self, err, sizeof err) != 0)
        worker_run_finish(self, WORKER_RUN_FAILED, err, false, 0);
}

/* The agent is stopped in the step that read the cost crossing the budget, as a
 * cancel stops it; it then ends as failed with the budget's message. */
static void stop_if_over_budget(worker_run_t *self, int64_t now_ms)
{
    if (self->budget_error || self->status != WORKER_RUN_RUNNING)
        return;
    double spent = self->job.spent_usd + worker_run_cost(self);
    if (!syn_budget_reached(self->job.max_budget_usd, spent))
        return;
    char why[160];
    syn_budget_message(self->job.max_budget_usd, spent, why, sizeof why);
    self->budget_error = strdup(why);
    if (!self->budget_error)
        return;
    syn_info("worker", "stopping execution=%s phase=%s attempt=%" PRIu64 ": %s",
             self->job.execution_id, self->job.phase_id, self->job.attempt, why);
    worker_run_cancel(self, now_ms);
}

bool worker_run_over_budget(const worker_run_t *self)
{
    return self->budget_error != NULL;
}

void worker_run_step(worker_run_t *self, const struct pollfd *fds, int nfds, int64_t now_ms)
{
    if (self->status != WORKER_RUN_RUNNING)
        return;
    if (!self->state) {
        if (self->workspace)
            prepare(self, fds, nfds, now_ms);
        return;
    }
    self->provider->ops->step(self->state, self, fds, nfds, now_ms);
    stop_if_over_budget(self, now_ms);
}

void worker_run_cancel(worker_run_t *self, int64_t now_ms)
{
    if (self->status != WORKER_RUN_RUNNING)
        return;
    if (!self->state) {
        if (self->workspace)
            worker_workspace_stop(self->workspace);
        worker_run_finish(self, WORKER_RUN_CANCELLED, "cancelled", false, 0);
        return;
    }
    self->provider->ops->cancel(self->state, self, now_ms);
}

int worker_run_inject(worker_run_t *self, const char *role, const char *message, char *err,
                      size_t errlen)
{
    if (self->status != WORKER_RUN_RUNNING) {
        snprintf(err, errlen, "the attempt has finished");
        return -1;
    }
    if (!self->provider->ops->inject) {
        snprintf(err, errlen, "provider %s does not take messages while it runs",
                 self->provider->ops->name);
        return -1;
    }
    if (!self->state) {
        snprintf(err, errlen, "the agent has not started yet (repositories are being cloned)");
        return -1;
    }
    return self->provider->ops->inject(self->state, self, role, message, err, errlen);
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

const char *worker_run_workspace(const worker_run_t *self)
{
    return self->workspace ? worker_workspace_path(self->workspace) : NULL;
}

const struct worker_workspace_t *worker_run_workspace_handle(const worker_run_t *self)
{
    return self->workspace;
}

struct worker_pull_t *worker_run_pull(worker_run_t *self)
{
    if (self->status != WORKER_RUN_RUNNING || self->state || !self->workspace)
        return NULL;
    return worker_workspace_pull(self->workspace);
}

const worker_job_t *worker_run_job(const worker_run_t *self)
{
    return &self->job;
}

worker_usage_t *worker_run_usage(worker_run_t *self) { return &self->usage; }

const worker_options_t *worker_run_options(const worker_run_t *self)
{
    return &self->provider->options;
}

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
    case WORKER_RUN_FAULT: return "fault";
    }
    return "failed";
}

/* Makes room for extra more bytes plus the terminator; false when out of memory. */
static bool reserve(worker_run_t *self, size_t extra)
{
    return syn_buffer_reserve(&self->output, &self->output_cap, self->output_len + extra + 1,
                              4096);
}

/* Appends already-sanitized text, cutting it at the output limit on a character
 * boundary. */
static void append_clean(worker_run_t *self, const char *text, size_t len)
{
    size_t room = SYN_OUTPUT_MAX - self->output_len;
    if (len > room) {
        len = syn_utf8_cut(text, len, room);
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
            slice -= syn_utf8_incomplete_tail(data, slice);
        size_t n = syn_utf8_sanitize(data, slice, clean);
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
        size_t tail = syn_utf8_incomplete_tail(self->pending, self->pending_len);
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
    size_t tail = syn_utf8_incomplete_tail(data, len);
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
    if (self->truncated && reserve(self, sizeof SYN_OUTPUT_MARKER)) {
        memcpy(self->output + self->output_len, SYN_OUTPUT_MARKER,
               sizeof SYN_OUTPUT_MARKER);
        self->output_len += sizeof SYN_OUTPUT_MARKER - 1;
    }
    if (status == WORKER_RUN_CANCELLED && self->budget_error) {
        status = WORKER_RUN_FAILED; /* stopped for its budget: a failure, with its words */
        error = self->budget_error;
    }
    if (error) {
        size_t len = strlen(error);
        self->error = malloc(3 * len + 1);
        if (self->error)
            self->error[syn_utf8_sanitize(error, len, self->error)] = '\0';
    }
    self->has_exit_code = has_exit_code;
    self->exit_code = exit_code;
    self->status = status;
    self->ended_ms = syn_mono_ms();
}

void worker_run_replace_output(worker_run_t *self, const char *data, size_t len)
{
    if (self->status != WORKER_RUN_RUNNING)
        return;
    self->output_len = 0;
    self->output[0] = '\0';
    self->pending_len = 0;
    self->truncated = false;
    worker_run_append(self, data, len);
}

/* --- usage and tool events ------------------------------------------------ */

static void queue_event(worker_run_t *self, const char *kind, const char *data, json_t *detail)
{
    if (self->status != WORKER_RUN_RUNNING || json_array_size(self->events) >= EVENTS_MAX) {
        if (self->status == WORKER_RUN_RUNNING && self->events_dropped++ == 0)
            syn_warn("worker", "execution=%s phase=%s: more than %d tool events waiting, "
                     "dropping some", self->job.execution_id, self->job.phase_id, EVENTS_MAX);
        json_decref(detail);
        return;
    }
    json_t *event = json_pack("{s:s, s:s, s:o}", "kind", kind, "data", data ? data : "",
                              "detail", detail ? detail : json_object());
    if (event)
        json_array_append_new(self->events, event);
}

json_t *worker_run_take_event(worker_run_t *self)
{
    if (json_array_size(self->events) == 0)
        return NULL;
    json_t *event = json_incref(json_array_get(self->events, 0));
    json_array_remove(self->events, 0);
    return event;
}

/* A valid UTF-8 string cut to at most chars characters. */
static json_t *preview(const char *text, size_t chars)
{
    return json_stringn_nocheck(text, syn_utf8_byte_offset(text, strlen(text), chars));
}

void worker_run_tool_use(worker_run_t *self, const char *id, const char *name,
                         const char *input_json)
{
    if (self->status != WORKER_RUN_RUNNING)
        return;
    name = name && *name ? name : "unknown";
    id = id ? id : "";
    if (self->tool_count < WORKER_TOOL_CALLS_MAX) {
        tool_call_t *grown = self->tool_count % 64 == 0
                                 ? realloc(self->tools, (self->tool_count + 64) * sizeof *grown)
                                 : self->tools;
        if (grown) {
            self->tools = grown;
            tool_call_t *call = &self->tools[self->tool_count];
            call->id = strdup(id);
            call->name = strdup(name);
            call->success = -1;
            if (call->id && call->name)
                self->tool_count++;
            else {
                free(call->id);
                free(call->name);
                self->tools_omitted++;
            }
        } else
            self->tools_omitted++;
    } else
        self->tools_omitted++;
    char *clean = NULL;
    if (input_json && !syn_utf8_valid(input_json, strlen(input_json), NULL)) {
        size_t len = strlen(input_json);
        clean = malloc(3 * len + 1);
        if (clean)
            clean[syn_utf8_sanitize(input_json, len, clean)] = '\0';
    }
    json_t *detail = json_pack("{s:s, s:s, s:s, s:o}", "event", "use", "id", id, "name", name,
                               "input_preview",
                               preview(clean ? clean : input_json ? input_json : "",
                                       WORKER_TOOL_PREVIEW));
    free(clean);
    queue_event(self, "tool", name, detail);
}

void worker_run_tool_result(worker_run_t *self, const char *id, bool success)
{
    if (self->status != WORKER_RUN_RUNNING)
        return;
    const char *name = "unknown";
    for (size_t i = self->tool_count; id && i-- > 0;)
        if (strcmp(self->tools[i].id, id) == 0) {
            self->tools[i].success = success;
            name = self->tools[i].name;
            break;
        }
    queue_event(self, "tool", name,
                json_pack("{s:s, s:s, s:s, s:b}", "event", "result", "id", id ? id : "", "name",
                          name, "success", success));
}

/* The attempt's cost so far and where it comes from ("agent", "price_table",
 * "unknown", or the provider's cost_source). */
static double cost_of(const worker_run_t *self, const char **source)
{
    const worker_usage_t *u = &self->usage;
    const char *model = *u->model ? u->model : self->job.model_id ? self->job.model_id : "";
    double cost = u->cost_usd;
    *source = *u->cost_source ? u->cost_source : "agent";
    if (!u->cost_reported)
        *source = worker_models_cost(self->provider->options.models, model, u->input_tokens,
                                     u->output_tokens, u->cache_creation_tokens,
                                     u->cache_read_tokens, &cost)
                      ? "price_table"
                      : "unknown";
    return cost;
}

double worker_run_cost(const worker_run_t *self)
{
    const char *source;
    return self->usage.reported ? cost_of(self, &source) : 0;
}

json_t *worker_run_usage_json(const worker_run_t *self)
{
    const worker_usage_t *u = &self->usage;
    if (!u->reported)
        return NULL;
    const char *model = *u->model ? u->model : self->job.model_id ? self->job.model_id : "";
    const char *source;
    double cost = cost_of(self, &source);
    int64_t duration = u->duration_ms >= 0 ? u->duration_ms
                       : self->ended_ms > 0 ? self->ended_ms - self->started_ms
                                            : syn_mono_ms() - self->started_ms;
    json_t *calls = json_array();
    for (size_t i = 0; calls && i < self->tool_count; i++)
        json_array_append_new(calls, json_pack("{s:s, s:b}", "name", self->tools[i].name,
                                               "success", self->tools[i].success == 1));
    json_t *usage = json_pack(
        "{s:I, s:I, s:I, s:I, s:I, s:f, s:s, s:I, s:I, s:s, s:o*}", "input_tokens",
        (json_int_t)u->input_tokens, "output_tokens", (json_int_t)u->output_tokens,
        "cache_creation_tokens", (json_int_t)u->cache_creation_tokens, "cache_read_tokens",
        (json_int_t)u->cache_read_tokens, "total_tokens",
        (json_int_t)(u->input_tokens + u->output_tokens + u->cache_creation_tokens +
                     u->cache_read_tokens),
        "cost_usd", cost, "cost_source", source, "num_turns", (json_int_t)u->num_turns,
        "duration_ms", (json_int_t)duration, "model", model, "tool_calls", calls);
    if (usage && self->tools_omitted > 0)
        json_object_set_new(usage, "tool_calls_omitted",
                            json_integer((json_int_t)self->tools_omitted));
    if (usage && *u->stop_reason)
        json_object_set_new(usage, "stop_reason", json_string(u->stop_reason));
    return usage;
}

void worker_copy_text(char *dst, size_t cap, const char *src)
{
    if (cap == 0)
        return;
    size_t len = src ? strlen(src) : 0;
    char clean[3 * 256 + 1];
    if (len > 256)
        len = 256;
    size_t n = src ? syn_utf8_sanitize(src, len, clean) : 0;
    n = syn_utf8_cut(clean, n, cap - 1);
    memcpy(dst, clean, n);
    dst[n] = '\0';
}

void worker_format_timeout(int64_t ms, char *buf, size_t buflen)
{
    if (ms % 1000 == 0)
        snprintf(buf, buflen, "timed out after %lld s", (long long)(ms / 1000));
    else
        snprintf(buf, buflen, "timed out after %.3g s", (double)ms / 1000.0);
}
