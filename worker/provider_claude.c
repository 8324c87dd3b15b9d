/* provider_claude: Claude Code as an agent, run headless:
 *
 *   claude -p --output-format stream-json --input-format stream-json --verbose
 *          --model <id> [--max-budget-usd <usd>] [--claude-args...]
 *          [--allowedTools <tool>...]
 *
 * --max-budget-usd (Claude Code's own stop, -p mode only) is what is left of the
 * execution's budget when it has one; the worker stops the agent on the crossing
 * too (provider.c), from the usage the stream reports, whatever claude does.
 *
 * in the attempt's workspace, in its own process group. The prompt (after a
 * short preamble describing the workspace) is the first stream-json user
 * message on stdin, never on the command line; operator messages injected
 * while it runs follow as further user messages. Claude Code answers each user
 * message with a turn ending in a `result` line; stdin is closed once every
 * message sent has its result (or, should an injected message not get one,
 * INJECT_ANSWER_WAIT_MS after the last), and Claude Code then exits.
 *
 * The JSONL it writes on stdout is read line by line (claude_stream.h says
 * what each line does). The phase's output is the first file the agent wrote
 * to artifacts/output/, else the last result text, else what was shown while
 * it ran. Success is exit code 0 and a result without is_error. */
#include "worker/provider.h"
#include "worker/claude_stream.h"
#include "worker/agent_proc.h"
#include "worker/lines.h"
#include "worker/argv.h"
#include "worker/env.h"
#include "worker/proc.h"
#include "worker/workspace.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"

/* The longest JSONL line kept for parsing; a longer one is dropped whole. */
#define LINE_MAX_BYTES (4u * 1024u * 1024u)
/* How long after a result stdin stays open for the answer to an injected
 * message that has none yet. */
#define INJECT_ANSWER_WAIT_MS 60000
/* Longest error text taken from a result. */
#define ERROR_MAX 4096

typedef struct {
    char *bin;
    char **extra_args;    /* from --claude-args; NULL = none */
    int64_t kill_grace_ms;
} claude_config_t;

typedef struct {
    worker_agent_proc_t child; /* child.proc is NULL when claude could not be started */
    worker_run_t *run;
    char *cwd;
    worker_lines_t lines; /* stdout, split */
    claude_stream_t stream; /* what the lines said */
    int messages_sent;
    int64_t close_stdin_at; /* -1 = not planned */
} claude_run_t;

/* A turn ended: once every message sent has its answer, claude's input is
 * closed and it exits; otherwise it gets INJECT_ANSWER_WAIT_MS for the rest. */
static void after_result(claude_run_t *self, int64_t now)
{
    if (!self->child.proc || !worker_proc_stdin_open(self->child.proc))
        return;
    if (self->stream.results_seen >= self->messages_sent) {
        worker_proc_close_stdin(self->child.proc);
        self->close_stdin_at = -1;
    } else {
        self->close_stdin_at = now + INJECT_ANSWER_WAIT_MS;
    }
}

static void on_line(claude_run_t *self, char *line, size_t len, int64_t now)
{
    claude_line_t kind = claude_stream_line(&self->stream, self->run, line, len);
    if (kind == CLAUDE_LINE_EMPTY)
        return;
    if (self->close_stdin_at >= 0)
        self->close_stdin_at = now + INJECT_ANSWER_WAIT_MS;
    if (kind == CLAUDE_LINE_RESULT)
        after_result(self, now);
}

/* What on_line needs besides the run: the time the bytes arrived. */
typedef struct {
    claude_run_t *self;
    int64_t now;
} line_context_t;

static void on_line_cb(void *arg, char *line, size_t len)
{
    line_context_t *context = arg;
    on_line(context->self, line, len, context->now);
}

/* Splits stdout into lines; a line longer than LINE_MAX_BYTES is dropped. */
static void on_stdout(void *arg, const char *data, size_t len, int64_t now)
{
    claude_run_t *self = arg;
    line_context_t context = {self, now};
    size_t dropped = worker_lines_feed(&self->lines, data, len, on_line_cb, &context);
    for (size_t i = 0; i < dropped; i++)
        syn_warn("worker", "claude wrote a line longer than %u bytes: dropped", LINE_MAX_BYTES);
}

/* ", a, b" of the names ([str]) at text + n (room cap - n); the new n. */
static size_t list_names(char *text, size_t n, size_t cap, const json_t *names)
{
    for (size_t i = 0; i < json_array_size(names); i++)
        n += (size_t)snprintf(text + n, cap - n, "%s %s", i ? "," : "",
                              json_string_value(json_array_get(names, i)));
    return n;
}

static size_t names_length(const json_t *names)
{
    size_t len = 0;
    for (size_t i = 0; i < json_array_size(names); i++)
        len += json_string_length(json_array_get(names, i)) + 2;
    return len;
}

/* The words before the prompt that tell the agent where it is. */
static char *preamble(const worker_run_t *run, const char *phase_id)
{
    const worker_workspace_t *ws = worker_run_workspace_handle(run);
    if (!ws)
        return strdup("");
    const worker_job_t *job = worker_run_job(run);
    size_t cap = 1024 + names_length(job->input_artifacts) + names_length(job->output_artifacts);
    for (size_t i = 0; i < json_array_size(job->artifacts); i++)
        cap += json_string_length(json_object_get(json_array_get(job->artifacts, i), "phase_id")) + 4;
    for (size_t i = 0; i < worker_workspace_input_count(ws); i++)
        cap += strlen(worker_workspace_input_name(ws, i)) + 4;
    for (size_t i = 0; i < worker_workspace_repo_count(ws); i++)
        cap += strlen(worker_workspace_repo_name(ws, i)) + 12;
    cap += strlen(phase_id);
    char *text = malloc(cap);
    if (!text)
        return NULL;
    size_t n = (size_t)snprintf(text, cap,
                                "You are running phase \"%s\" of a syn workflow. Your working "
                                "directory is this phase's workspace:\n",
                                phase_id);
    if (worker_workspace_input_count(ws) == 0) {
        n += (size_t)snprintf(text + n, cap - n,
                              "- artifacts/input/ is empty: no earlier phase has output.\n");
    } else {
        n += (size_t)snprintf(text + n, cap - n,
                              "- artifacts/input/ holds the full output of each earlier phase:");
        for (size_t i = 0; i < worker_workspace_input_count(ws); i++)
            n += (size_t)snprintf(text + n, cap - n, "%s %s", i ? "," : "",
                                  worker_workspace_input_name(ws, i));
        n += (size_t)snprintf(text + n, cap - n, ".\n");
    }
    if (json_array_size(job->artifacts) > 0)
        n += (size_t)snprintf(text + n, cap - n,
                              "- artifacts/input/<phase>/ holds the %zu files earlier phases left "
                              "in their artifacts/output/, a folder per phase.\n",
                              json_array_size(job->artifacts));
    if (json_array_size(job->input_artifacts) > 0) {
        n += (size_t)snprintf(text + n, cap - n, "- This phase reads the artifacts:");
        n = list_names(text, n, cap, job->input_artifacts);
        n += (size_t)snprintf(text + n, cap - n, ".\n");
    }
    n += (size_t)snprintf(text + n, cap - n,
                          "- artifacts/output/ is for deliverables: if you write files there, "
                          "the first one by name becomes this phase's output instead of your "
                          "final message.\n");
    if (json_array_size(job->output_artifacts) > 0) {
        n += (size_t)snprintf(text + n, cap - n,
                              "- This phase is expected to leave these artifacts there, a file "
                              "named after each (any extension):");
        n = list_names(text, n, cap, job->output_artifacts);
        n += (size_t)snprintf(text + n, cap - n, ".\n");
    }
    if (worker_workspace_repo_count(ws) > 0) {
        n += (size_t)snprintf(text + n, cap - n,
                              "- repos/ holds a shallow clone of each repository:");
        for (size_t i = 0; i < worker_workspace_repo_count(ws); i++)
            n += (size_t)snprintf(text + n, cap - n, "%s repos/%s/", i ? "," : "",
                                  worker_workspace_repo_name(ws, i));
        n += (size_t)snprintf(text + n, cap - n, ".\n");
    }
    snprintf(text + n, cap - n, "The task follows.\n\n---\n\n");
    return text;
}

/* Queues one stream-json user message; -1 when it cannot be sent. */
static int send_user_message(claude_run_t *self, const char *text)
{
    json_t *message = json_pack("{s:s, s:{s:s, s:[{s:s, s:s}]}}", "type", "user", "message",
                                "role", "user", "content", "type", "text", "text", text);
    char *line = message ? json_dumps(message, JSON_COMPACT) : NULL;
    json_decref(message);
    if (!line)
        return -1;
    size_t len = strlen(line);
    line[len] = '\n'; /* replaces the terminator; the length says where it ends */
    int rc = worker_proc_write(self->child.proc, line, len + 1);
    free(line);
    if (rc == 0)
        self->messages_sent++;
    return rc;
}

static void *claude_start(void *config, worker_run_t *run, const worker_job_t *job, char *err,
                          size_t errlen)
{
    const claude_config_t *cfg = config;
    const worker_options_t *options = worker_run_options(run);
    claude_run_t *self = calloc(1, sizeof *self);
    if (!self) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    self->run = run;
    self->lines.max = LINE_MAX_BYTES;
    self->close_stdin_at = -1;
    worker_agent_proc_init(&self->child, job, options);
    self->cwd = job->cwd ? strdup(job->cwd) : NULL;
    worker_usage_t *usage = worker_run_usage(run);
    usage->reported = true;
    worker_copy_text(usage->model, sizeof usage->model, job->model_id);

    size_t extra = 0, tools = json_array_size(job->allowed_tools);
    while (cfg->extra_args && cfg->extra_args[extra])
        extra++;
    char **argv = calloc(14 + extra + tools, sizeof(char *));
    const char *secrets[] = {"ANTHROPIC_API_KEY", "CLAUDE_CODE_OAUTH_TOKEN",
                             json_array_size(job->repos) > 0 ? "GITHUB_TOKEN" : NULL, NULL};
    /* a phase's max_tokens (the original's key) caps each reply: claude has no flag for
     * it, only this variable */
    char cap[64];
    snprintf(cap, sizeof cap, "CLAUDE_CODE_MAX_OUTPUT_TOKENS=%" PRIu64, (uint64_t)job->max_tokens);
    const char *cap_env[] = {job->max_tokens > 0 ? cap : NULL, NULL};
    char **env = worker_agent_proc_env(options, job, secrets, cap_env);
    char *intro = preamble(run, job->phase_id);
    char *first = NULL;
    if (intro && asprintf(&first, "%s%s", intro, job->prompt) < 0)
        first = NULL;
    free(intro);
    if (!argv || !env || !first || (job->cwd && !self->cwd)) {
        free(argv);
        worker_env_free(env);
        free(first);
        free(self->cwd);
        free(self);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    int argc = 0;
    const char *fixed[] = {cfg->bin, "-p", "--output-format", "stream-json", "--input-format",
                           "stream-json", "--verbose", "--model", job->model_id};
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        argv[argc++] = (char *)fixed[i];
    char left[32];
    if (job->max_budget_usd > job->spent_usd) {
        snprintf(left, sizeof left, "%.4f", job->max_budget_usd - job->spent_usd);
        argv[argc++] = "--max-budget-usd";
        argv[argc++] = left;
    }
    for (size_t i = 0; i < extra; i++)
        argv[argc++] = cfg->extra_args[i];
    if (tools > 0) {
        argv[argc++] = "--allowedTools";
        for (size_t i = 0; i < tools; i++) {
            const char *tool = json_string_value(json_array_get(job->allowed_tools, i));
            if (tool && *tool)
                argv[argc++] = (char *)tool;
        }
        if (strcmp(argv[argc - 1], "--allowedTools") == 0)
            argc--;
    }
    argv[argc] = NULL;
    worker_proc_spec_t spec = {
        .argv = argv,
        .env = env,
        .want_stdin = true,
        .want_stdout = true,
        .kill_grace_ms = cfg->kill_grace_ms,
    };
    char reason[512];
    worker_agent_proc_start(&self->child, job, options, &spec, on_stdout, self, reason,
                            sizeof reason);
    free(argv);
    worker_env_free(env);
    if (!self->child.proc)
        worker_run_finish(run, WORKER_RUN_FAULT, reason, false, 0);
    else if (send_user_message(self, first) != 0)
        worker_run_finish(run, WORKER_RUN_FAILED, "cannot send the prompt to claude", false, 0);
    free(first);
    return self;
}

static int claude_pollfds(void *state, struct pollfd *fds, int max)
{
    claude_run_t *self = state;
    return worker_agent_proc_pollfds(&self->child, fds, max);
}

static void consider(int64_t *best, int64_t when)
{
    if (when >= 0 && (*best < 0 || when < *best))
        *best = when;
}

static int64_t claude_deadline(void *state)
{
    claude_run_t *self = state;
    if (!self->child.proc)
        return -1;
    int64_t best = worker_agent_proc_deadline(&self->child);
    consider(&best, self->close_stdin_at);
    return best;
}

/* The phase's output on success: a file in artifacts/output/, else the last
 * result text, else (nothing to replace) what was shown while it ran. */
static void final_output(claude_run_t *self)
{
    if (self->cwd) {
        char *data = NULL;
        size_t len = 0;
        char name[256];
        int found = worker_workspace_first_output(self->cwd, SYN_OUTPUT_MAX + 1, &data, &len,
                                                  name, sizeof name);
        if (found == 1) {
            worker_run_replace_output(self->run, data, len);
            free(data);
            return;
        }
    }
    if (self->stream.result_text)
        worker_run_replace_output(self->run, self->stream.result_text, strlen(self->stream.result_text));
}

static void complete(claude_run_t *self)
{
    worker_run_t *run = self->run;
    line_context_t context = {self, 0};
    worker_lines_flush(&self->lines, on_line_cb, &context);
    if (worker_agent_proc_finish_stopped(&self->child, run))
        return;
    char reason[WORKER_STDERR_TAIL + 128];
    int code = 0;
    bool has_code = worker_proc_exit_code(self->child.proc, &code);
    if (self->stream.result_seen && self->stream.result_is_error) {
        char error[ERROR_MAX + 64];
        if (self->stream.result_text && *self->stream.result_text)
            snprintf(error, sizeof error, "%.*s", ERROR_MAX, self->stream.result_text);
        else
            snprintf(error, sizeof error, "claude reported an error (%s)",
                     *self->stream.result_subtype ? self->stream.result_subtype : "no details");
        worker_run_finish(run, WORKER_RUN_FAILED, error, has_code, code);
    } else if (!worker_proc_succeeded(self->child.proc, reason, sizeof reason)) {
        worker_run_finish(run, WORKER_RUN_FAILED, reason, has_code, code);
    } else {
        final_output(self);
        worker_run_finish(run, WORKER_RUN_COMPLETED, NULL, true, 0);
    }
}

static void claude_step(void *state, worker_run_t *run, const struct pollfd *fds, int nfds,
                        int64_t now)
{
    (void)run;
    claude_run_t *self = state;
    if (!self->child.proc)
        return;
    worker_agent_proc_step(&self->child, fds, nfds, now);
    if (self->close_stdin_at >= 0 && now >= self->close_stdin_at) {
        syn_warn("worker", "claude answered %d of %d messages: closing its input",
                 self->stream.results_seen, self->messages_sent);
        worker_proc_close_stdin(self->child.proc);
        self->close_stdin_at = -1;
    }
    worker_agent_proc_check_timeout(&self->child, now);
    if (worker_proc_done(self->child.proc))
        complete(self);
}

static void claude_cancel(void *state, worker_run_t *run, int64_t now)
{
    (void)run;
    claude_run_t *self = state;
    worker_agent_proc_cancel(&self->child, now);
}

static int claude_inject(void *state, worker_run_t *run, const char *role, const char *message,
                         char *err, size_t errlen)
{
    (void)run;
    claude_run_t *self = state;
    if (!self->child.proc || !worker_proc_stdin_open(self->child.proc) || self->child.cancelled ||
        self->child.timed_out) {
        snprintf(err, errlen, "claude no longer takes messages (its last turn has ended)");
        return -1;
    }
    char *text = NULL;
    bool system = role && strcmp(role, "system") == 0;
    if (asprintf(&text, "%s%s", system ? "[System message from the operator]\n" : "",
                 message) < 0) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    int rc = send_user_message(self, text);
    free(text);
    if (rc != 0) {
        snprintf(err, errlen, "cannot write to claude's input");
        return -1;
    }
    self->close_stdin_at = -1;
    return 0;
}

static void claude_destroy(void *state)
{
    claude_run_t *self = state;
    worker_agent_proc_destroy(&self->child);
    claude_stream_free(&self->stream);
    worker_lines_free(&self->lines);
    free(self->cwd);
    free(self);
}

static void claude_config_destroy(void *config)
{
    claude_config_t *cfg = config;
    if (!cfg)
        return;
    free(cfg->bin);
    worker_argv_free(cfg->extra_args);
    free(cfg);
}

/* How long `claude --version` may take at start (it is a Node program). */
#define CLAUDE_CHECK_MS 15000

static int claude_check(void *config, char *err, size_t errlen)
{
    const claude_config_t *cfg = config;
    char *argv[] = {cfg->bin, "--version", NULL};
    return worker_proc_run_quietly(argv, CLAUDE_CHECK_MS, err, errlen);
}

static const worker_provider_ops_t claude_ops = {
    .check = claude_check,
    .name = "claude",
    .start = claude_start,
    .pollfds = claude_pollfds,
    .deadline = claude_deadline,
    .step = claude_step,
    .cancel = claude_cancel,
    .destroy = claude_destroy,
    .config_destroy = claude_config_destroy,
    .inject = claude_inject,
    .uses_workspace = true,
};

worker_provider_t *worker_provider_claude_new(const char *claude_bin, const char *extra_args,
                                              int64_t kill_grace_ms, char *err, size_t errlen)
{
    claude_config_t *cfg = calloc(1, sizeof *cfg);
    if (!cfg) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    cfg->bin = strdup(claude_bin && *claude_bin ? claude_bin : "claude");
    cfg->kill_grace_ms = kill_grace_ms < 0 ? 0 : kill_grace_ms;
    if (extra_args && *extra_args) {
        char why[128];
        cfg->extra_args = worker_argv_split(extra_args, NULL, why, sizeof why);
        if (!cfg->extra_args) {
            snprintf(err, errlen, "bad --claude-args: %s", why);
            claude_config_destroy(cfg);
            return NULL;
        }
    }
    if (!cfg->bin) {
        snprintf(err, errlen, "out of memory");
        claude_config_destroy(cfg);
        return NULL;
    }
    worker_provider_t *self = worker_provider_new(&claude_ops, cfg);
    if (!self)
        snprintf(err, errlen, "out of memory");
    return self;
}
