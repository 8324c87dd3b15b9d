/* provider: how a worker runs one phase attempt with an agent.
 *
 * A provider (mock, command, claude, anthropic) is configured once at
 * start-up; each attempt is a worker_run_t started from it. The worker's single
 * event loop drives every run without threads: it asks each run which file
 * descriptors to watch and when its next deadline is, polls them together with
 * the broker socket, then calls worker_run_step. A run may own a child process
 * (pipes to watch, timers for SIGTERM/SIGKILL) or be purely in-process (a timer).
 *
 * Output is collected by the run, already made valid UTF-8 without NUL, and cut
 * at SYN_OUTPUT_MAX bytes with SYN_OUTPUT_MARKER appended (proto/limits.h: the
 * broker relies on both); the loop streams it from worker_run_output as it grows
 * and sends the whole of it in the result.
 *
 * Before a provider that runs processes starts, the run prepares the attempt's
 * workspace (see workspace.h): a fresh directory with the earlier phases'
 * outputs and the execution's repositories cloned, removed when the run is
 * destroyed. Providers report what the attempt used (tokens, cost, turns, tool
 * calls) into the run's usage, and tool events the loop sends as PROGRESS. */
#ifndef SYN_WORKER_PROVIDER_H
#define SYN_WORKER_PROVIDER_H

#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "proto/limits.h"
#include "worker/models.h"
#include "worker/sandbox.h"

#define WORKER_STDERR_TAIL 2048u
/* The most descriptors one run asks to be watched at a time. */
/* (a process's four, and its credential proxy's one) */
#define WORKER_RUN_MAX_FDS 5
/* Tool calls remembered per attempt for its usage (more are counted only). */
#define WORKER_TOOL_CALLS_MAX 1000
/* Characters of a tool's input shown in its progress event. */
#define WORKER_TOOL_PREVIEW 500

/* What to run: one attempt of one phase. Strings are copied by whatever needs
 * them after worker_run_start returns. */
typedef struct {
    const char *execution_id;
    const char *workflow_id;
    const char *phase_id;
    uint64_t attempt;
    const char *prompt;
    const char *model;   /* NULL when the phase names none */
    int64_t timeout_ms;  /* 0 = no limit */
    /* Run here instead of in a fresh workspace (inputs and repos are then not
     * laid out); NULL = a workspace, for providers that use one. */
    const char *cwd;
    const json_t *inputs;        /* earlier phases' outputs by phase id (strings); or NULL */
    const json_t *repos;         /* array of repository strings; or NULL */
    const json_t *allowed_tools; /* array of tool names; or NULL */
    uint64_t max_tokens;         /* 0 = the provider's default */
    worker_network_t network;    /* what a sandboxed agent may reach (default proxy) */
    /* The execution's budget in dollars (0: none) and what it spent before this
     * attempt: the run stops its agent when spent_usd plus its cost reaches it
     * (common/budget_usd.h) and fails with the budget's message. */
    double max_budget_usd;
    double spent_usd;
    /* earlier phases' files to pull into artifacts/input/<phase>/ before the
     * agent starts ([{phase_id, path, size, sha256}]), or NULL */
    const json_t *artifacts;
    /* the artifact names the phase declares it reads and writes ([str]), or NULL */
    const json_t *input_artifacts;
    const json_t *output_artifacts;
    /* Filled in by the run for the provider's start: */
    const char *model_id;        /* model resolved through the model table */
    int64_t started_us;          /* when the attempt began (syn_mono_us; 0 = now) */
} worker_job_t;

/* Settings every provider shares; set once with worker_provider_set_options. */
typedef struct {
    const char *workspace_dir;   /* where workspaces are made; NULL = $TMPDIR or /tmp */
    bool keep_workspaces;        /* leave them behind for debugging */
    uint64_t max_output_bytes;   /* most an agent may write to stdout; 0 = no limit */
    long rlimit_as_mb;           /* address-space limit for agents; 0 = none */
    int nice;                    /* niceness added for agents; 0 = none */
    const char *pass_env;        /* extra variable names agents get (comma-separated) */
    const worker_models_t *models; /* borrowed; NULL = the compiled-in table */
    int64_t kill_grace_ms;       /* SIGTERM → SIGKILL for git clones */
    /* Run command and claude agents inside bwrap (sandbox.h); false runs them
     * as the worker's own user with its view of the host. */
    bool sandbox;
    const char *sandbox_ro;      /* more read-only paths inside it (comma-separated) */
    /* Where a `proxy` attempt's credential proxy forwards (the Messages API's
     * base URL, --anthropic-url; NULL = https://api.anthropic.com). */
    const char *proxy_upstream;
} worker_options_t;

/* What an attempt used. Providers fill what they know; cost comes from the
 * model table unless the agent reported its own (cost_reported). */
typedef struct {
    bool reported;               /* this run accounts usage (result.usage is sent) */
    int64_t input_tokens;
    int64_t output_tokens;
    int64_t cache_creation_tokens;
    int64_t cache_read_tokens;
    bool cost_reported;
    double cost_usd;
    int64_t num_turns;
    int64_t duration_ms;         /* -1 = the run's wall time */
    char model[128];
    char stop_reason[64];
    /* When set, the cost's source as is ("proxy": counted by the credential
     * proxy from what it forwarded, "unknown"), cost_usd as given. */
    char cost_source[16];
} worker_usage_t;

typedef enum {
    WORKER_RUN_RUNNING,
    WORKER_RUN_COMPLETED,
    WORKER_RUN_FAILED,
    WORKER_RUN_CANCELLED,
    /* The agent could not be started here (its program missing or not
     * executable, its directory not made): the worker's fault, not the agent's,
     * so the broker gives the attempt to another worker (wire name "fault"). */
    WORKER_RUN_FAULT,
} worker_run_status_t;

typedef struct worker_provider_t worker_provider_t;
typedef struct worker_run_t worker_run_t;

/* In-process agent, no fork: after delay_ms (or a prompt line "#mock sleep <ms>")
 * the output is "mock output for phase <phase_id>:\n<prompt>"; a prompt line
 * "#mock fail <reason>" makes the attempt fail with that reason instead, and
 * "#mock tokens <in> <out>" makes it report that usage (costed at the model's
 * price from the model table). */
worker_provider_t *worker_provider_mock_new(int64_t delay_ms);

/* Runs command (split by worker_argv_split, no shell) in its own process group
 * for each attempt, prompt on stdin, SYN_* variables in its environment; stdout
 * is the output. A timeout or cancel sends SIGTERM to the group and SIGKILL
 * kill_grace_ms later. NULL with the reason in err when command does not split. */
worker_provider_t *worker_provider_command_new(const char *command, int64_t kill_grace_ms,
                                               char *err, size_t errlen);

/* Runs the Claude Code CLI headless (claude_bin, default "claude" in PATH):
 *   claude -p --output-format stream-json --input-format stream-json --verbose
 *          --model <id> [--max-budget-usd <left>] [extra_args...] [--allowedTools <tool>...]
 * in the workspace, the prompt (after a preamble describing the workspace) as
 * the first stream-json user message on stdin, injected messages as further
 * ones. See provider_claude.c for how its JSONL stream is read. extra_args is
 * split like --command (may be NULL). */
worker_provider_t *worker_provider_claude_new(const char *claude_bin, const char *extra_args,
                                              int64_t kill_grace_ms, char *err, size_t errlen);

/* Calls the Anthropic Messages API (base_url + "/v1/messages", streaming) with
 * libcurl inside the worker's loop. 429, 529 and 5xx answers and transport
 * errors are retried up to max_tries requests, waiting retry-after or
 * retry_base_ms doubling; other answers fail the attempt with the API's message.
 * libcurl is loaded here: NULL with the loader's reason in err when it cannot be. */
worker_provider_t *worker_provider_anthropic_new(const char *base_url, const char *api_key,
                                                 int64_t retry_base_ms, int max_tries, char *err,
                                                 size_t errlen);

void worker_provider_destroy(worker_provider_t **self_p);
/* "mock", "command", "claude", "anthropic": what READY announces and what
 * ASSIGN may ask for. */
const char *worker_provider_name(const worker_provider_t *self);
/* Whether this worker can run the provider's agents at all (claude: the program
 * answers --version; command: its program exists and is executable; anthropic:
 * a key is set; mock: always): 0, or -1 with a one-line reason in err. Run at
 * start and again, with back-off, after a worker fault. */
int worker_provider_check(worker_provider_t *self, char *err, size_t errlen);
/* Copies options (strings included) into the provider; 0, or -1 when out of memory. */
int worker_provider_set_options(worker_provider_t *self, const worker_options_t *options);

/* Starts one attempt. NULL with the reason in err when it cannot start at all;
 * a command that fails to execute still gives a run, which fails with the reason. */
worker_run_t *worker_run_start(worker_provider_t *provider, const worker_job_t *job,
                               char *err, size_t errlen);
/* Stops whatever still runs at once (SIGKILL to a child's group, then reaps it)
 * and frees the run. Safe with NULL and twice. */
void worker_run_destroy(worker_run_t **self_p);

/* Fills fds (room for max, at least WORKER_RUN_MAX_FDS) with the descriptors to
 * watch and the events wanted; returns how many. */
int worker_run_pollfds(worker_run_t *self, struct pollfd *fds, int max);
/* The monotonic time (ms) by which worker_run_step must be called again even
 * if no descriptor is ready; -1 for none. A deadline finer than a millisecond
 * is rounded up, so a caller that waits in milliseconds never wakes early. */
int64_t worker_run_deadline(worker_run_t *self);
/* The same in microseconds (syn_mono_us), exact for a provider that keeps its
 * timers in microseconds (mock): for a loop that can wake that precisely. */
int64_t worker_run_deadline_us(worker_run_t *self);
/* Does the run's work: fds/nfds are what worker_run_pollfds returned, with
 * revents filled in (zero when nothing happened). Call it every loop turn. */
void worker_run_step(worker_run_t *self, const struct pollfd *fds, int nfds, int64_t now_ms);
/* Asks the run to stop: an in-process run ends at once, a child gets SIGTERM to
 * its group and SIGKILL after the grace. It finishes as cancelled. */
void worker_run_cancel(worker_run_t *self, int64_t now_ms);
/* What the attempt has cost so far: the agent's own figure once it gave one, else
 * its tokens at the model table's price (0 when the provider does not account). */
double worker_run_cost(const worker_run_t *self);
/* Whether the run was stopped because its cost reached the job's budget. */
bool worker_run_over_budget(const worker_run_t *self);
/* Gives the running agent an operator's message (role "user" or "system"); -1
 * with the reason in err when this provider or this moment cannot take one. */
int worker_run_inject(worker_run_t *self, const char *role, const char *message, char *err,
                      size_t errlen);

/* Blocks, stepping the run alone until it finishes or max_ms passes; 0 when it
 * finished. For tests and one-shot tools; the worker uses its own loop. */
int worker_run_drive(worker_run_t *self, int64_t max_ms);

worker_run_status_t worker_run_status(const worker_run_t *self);
bool worker_run_finished(const worker_run_t *self);
/* The output so far (NUL-terminated, valid UTF-8; grows while the run runs; the
 * pointer may change after a step). */
const char *worker_run_output(const worker_run_t *self, size_t *len);
/* The reason a run failed or was cancelled, or NULL. */
const char *worker_run_error(const worker_run_t *self);
/* True with *code set when the run ended with a process exit code. */
bool worker_run_exit_code(const worker_run_t *self, int *code);
/* "completed", "failed", "cancelled", "fault" (or "running"): the wire names. */
const char *worker_run_status_name(worker_run_status_t status);
/* The usage as result.usage sends it ({input_tokens, output_tokens,
 * cache_creation_tokens, cache_read_tokens, total_tokens, cost_usd, cost_source,
 * num_turns, duration_ms, model, tool_calls: [{name, success}], ...}), or NULL
 * when the provider does not account usage. A new reference. */
json_t *worker_run_usage_json(const worker_run_t *self);
/* Takes the oldest queued progress event as {kind, data, detail} (a new
 * reference), or NULL when there is none. */
json_t *worker_run_take_event(worker_run_t *self);
/* The workspace directory while the run has one, else NULL. */
const char *worker_run_workspace(const worker_run_t *self);
/* The workspace itself (see workspace.h), or NULL. */
struct worker_workspace_t;
const struct worker_workspace_t *worker_run_workspace_handle(const worker_run_t *self);
/* The pull of earlier phases' files while the run waits for it (artifact_pull.h),
 * or NULL: the worker's loop asks the broker for its chunks. */
struct worker_pull_t;
struct worker_pull_t *worker_run_pull(worker_run_t *self);
/* The job as the run keeps it (its copies). */
const worker_job_t *worker_run_job(const worker_run_t *self);

/* For provider implementations ------------------------------------------------ */

typedef struct {
    const char *name;
    /* Starts job, returning the run's private state, or NULL with err set. */
    void *(*start)(void *config, worker_run_t *run, const worker_job_t *job, char *err,
                   size_t errlen);
    int (*pollfds)(void *state, struct pollfd *fds, int max);
    int64_t (*deadline)(void *state);
    /* Optional: the deadline in microseconds, for a provider whose timers are
     * finer than deadline can say; deadline must then round it up. */
    int64_t (*deadline_us)(void *state);
    void (*step)(void *state, worker_run_t *run, const struct pollfd *fds, int nfds,
                 int64_t now_ms);
    void (*cancel)(void *state, worker_run_t *run, int64_t now_ms);
    /* Stops anything left at once, reaps it and frees state. */
    void (*destroy)(void *state);
    void (*config_destroy)(void *config);
    /* Optional: an operator's message for the running agent. */
    int (*inject)(void *state, worker_run_t *run, const char *role, const char *message,
                  char *err, size_t errlen);
    /* Whether attempts get a workspace directory (processes run in it). */
    bool uses_workspace;
    /* Optional (NULL: always fine): worker_provider_check's test. */
    int (*check)(void *config, char *err, size_t errlen);
} worker_provider_ops_t;

/* Wraps an implementation; takes ownership of config (freed by config_destroy). */
worker_provider_t *worker_provider_new(const worker_provider_ops_t *ops, void *config);

/* Adds raw bytes to the run's output: sanitized, cut at SYN_OUTPUT_MAX. */
void worker_run_append(worker_run_t *self, const char *data, size_t len);
/* Replaces the output gathered so far (what was streamed stays streamed): for
 * a provider whose final answer differs from what it showed while running. */
void worker_run_replace_output(worker_run_t *self, const char *data, size_t len);
/* The run's usage, for its provider to fill. */
worker_usage_t *worker_run_usage(worker_run_t *self);
/* The provider's shared settings, for its implementation. */
const worker_options_t *worker_run_options(const worker_run_t *self);
/* Records a tool call (input_json is its input, shown cut to
 * WORKER_TOOL_PREVIEW characters) and queues a "tool" progress event. */
void worker_run_tool_use(worker_run_t *self, const char *id, const char *name,
                         const char *input_json);
/* Records the outcome of the tool call with that id and queues an event. */
void worker_run_tool_result(worker_run_t *self, const char *id, bool success);
/* Ends the run (only the first call counts). error may be NULL; it is sanitized. */
void worker_run_finish(worker_run_t *self, worker_run_status_t status, const char *error,
                       bool has_exit_code, int exit_code);

/* Copies src into dst (cap bytes with the terminator), cut on a character
 * boundary and sanitized, for the fixed text fields of worker_usage_t. */
void worker_copy_text(char *dst, size_t cap, const char *src);

/* "output limit exceeded: more than 8 MiB" for a limit of bytes. */
void worker_format_output_limit(uint64_t bytes, char *buf, size_t buflen);

/* "timed out after 2 s" (or "after 1.5 s") for a timeout of ms milliseconds. */
void worker_format_timeout(int64_t ms, char *buf, size_t buflen);

#endif
