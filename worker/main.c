/* syn-worker: runs workflow phases for a syn broker with an agent provider. */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/endpoint_list.h"
#include "common/flags.h"
#include "common/log.h"
#include "common/signals.h"
#include "proto/curve.h"
#include "worker/cred_proxy.h"
#include "worker/models.h"
#include "worker/prefetch.h"
#include "worker/provider.h"
#include "worker/sandbox.h"
#include "worker/worker.h"

/* Started with stdin, stdout or stderr closed, the worker's own pipes could get
 * descriptors 0..2 and be overwritten while an agent's stdio is set up. */
static void occupy_stdio(void)
{
    for (int fd = 0; fd <= 2; fd++)
        if (fcntl(fd, F_GETFD) < 0 && open("/dev/null", O_RDWR) < 0)
            return;
}

int main(int argc, char **argv)
{
    occupy_stdio();
    const char *broker = "tcp://127.0.0.1:5556";
    const char *provider_name = "mock";
    const char *command = NULL;
    const char *name = NULL;
    const char *log_level = "info";
    const char *claude_bin = "claude";
    const char *claude_args = NULL;
    const char *anthropic_url = "https://api.anthropic.com";
    const char *models_file = NULL;
    const char *workspace = NULL;
    const char *pass_env = NULL;
    const char *curve_secret = NULL;
    const char *broker_key = NULL;
    bool insecure = false;
    bool keep_workspaces = false;
    bool allow_unavailable = false;
    long slots = 4, mock_delay_ms = 20, heartbeat_ms = 1000, liveness = 3;
    long kill_grace_ms = 5000, drain_seconds = 30;
    long max_output_mb = 8, rlimit_as_mb = 0, nice_value = 0;
    long anthropic_retry_ms = 1000, anthropic_tries = 5;
    const char *sandbox = "bwrap";
    const char *prefetch_text = "auto";
    const char *sandbox_ro = NULL;
    syn_flag_t flags[] = {
        {"broker", SYN_FLAG_STRING, "EP[,EP...]",
         "broker endpoint for workers; several: the active broker and its standbys, followed "
         "in turn (one --broker-key for all)",
         &broker, 0, 0},
        {"curve-secret", SYN_FLAG_STRING, "FILE",
         "this worker's secret certificate (syn keygen): talk CURVE to the broker",
         &curve_secret, 0, 0},
        {"broker-key", SYN_FLAG_STRING, "FILE", "the broker's public certificate (with --curve-secret)",
         &broker_key, 0, 0},
        {"insecure", SYN_FLAG_BOOL, NULL,
         "allow a non-loopback --broker without --curve-secret (traffic in the clear)",
         &insecure, 0, 0},
        {"slots", SYN_FLAG_INT, "N", "phases run at once", &slots, 1, 1024},
        {"prefetch", SYN_FLAG_STRING, "N|auto",
         "phases held beyond the slots, each started as a slot frees (auto: as many as the "
         "slots while phases are short, none while they are long; 0: never)",
         &prefetch_text, 0, 0},
        {"provider", SYN_FLAG_STRING, "mock|command|claude|anthropic", "agent provider",
         &provider_name, 0, 0},
        {"command", SYN_FLAG_STRING, "\"ARGV\"",
         "agent command for the command provider (split without a shell)", &command, 0, 0},
        {"claude-bin", SYN_FLAG_STRING, "PATH", "Claude Code executable for the claude provider",
         &claude_bin, 0, 0},
        {"claude-args", SYN_FLAG_STRING, "\"ARGS\"",
         "extra arguments for claude, e.g. \"--permission-mode acceptEdits\"", &claude_args, 0,
         0},
        {"anthropic-url", SYN_FLAG_STRING, "URL",
         "Messages API base URL for the anthropic provider and the sandbox's credential proxy "
         "(key: ANTHROPIC_API_KEY, else CLAUDE_CODE_OAUTH_TOKEN for the proxy)",
         &anthropic_url, 0, 0},
        {"anthropic-retry-ms", SYN_FLAG_INT, "MS",
         "anthropic: first back-off after a 429/529/5xx without retry-after", &anthropic_retry_ms,
         1, 600000},
        {"anthropic-tries", SYN_FLAG_INT, "N", "anthropic: requests per attempt at most",
         &anthropic_tries, 1, 100},
        {"models", SYN_FLAG_STRING, "FILE",
         "model aliases and prices (JSON; default: the compiled-in table)", &models_file, 0, 0},
        {"workspace", SYN_FLAG_STRING, "DIR",
         "where attempts' workspaces are made (default $TMPDIR or /tmp)", &workspace, 0, 0},
        {"keep-workspaces", SYN_FLAG_BOOL, NULL, "leave workspaces behind (debugging)",
         &keep_workspaces, 0, 0},
        {"max-output-mb", SYN_FLAG_INT, "MB",
         "most an agent may write to stdout per attempt (0 = no limit)", &max_output_mb, 0,
         1048576},
        {"rlimit-as-mb", SYN_FLAG_INT, "MB", "address-space limit for agents (0 = none)",
         &rlimit_as_mb, 0, 1048576},
        {"nice", SYN_FLAG_INT, "N", "niceness added for agents", &nice_value, 0, 19},
        {"pass-env", SYN_FLAG_STRING, "NAMES",
         "more variables agents get from the worker's environment (comma-separated)", &pass_env,
         0, 0},
        {"sandbox", SYN_FLAG_STRING, "bwrap|none",
         "run command and claude agents in bubblewrap (none: as this worker's user, seeing "
         "what it sees)", &sandbox, 0, 0},
        {"sandbox-ro", SYN_FLAG_STRING, "PATH,...",
         "more read-only paths inside the sandbox (e.g. a toolchain)", &sandbox_ro, 0, 0},
        {"name", SYN_FLAG_STRING, "NAME", "worker name (default <hostname>-<pid>)", &name, 0, 0},
        {"mock-delay-ms", SYN_FLAG_INT, "MS", "mock provider: time per phase", &mock_delay_ms, 0,
         86400000},
        {"heartbeat-ms", SYN_FLAG_INT, "MS", "heartbeat interval", &heartbeat_ms, 10, 3600000},
        {"liveness", SYN_FLAG_INT, "N", "silent heartbeat intervals before the broker is gone",
         &liveness, 1, 1000},
        {"kill-grace-ms", SYN_FLAG_INT, "MS", "time between SIGTERM and SIGKILL for an agent",
         &kill_grace_ms, 0, 3600000},
        {"drain-seconds", SYN_FLAG_INT, "S", "on SIGTERM, how long running phases may finish",
         &drain_seconds, 0, 86400},
        {"allow-unavailable", SYN_FLAG_BOOL, NULL,
         "start even when the provider's check fails (taking no work until it passes)",
         &allow_unavailable, 0, 0},
        {"log-level", SYN_FLAG_LOG_LEVEL, "debug|info|warn|error", "log threshold", &log_level, 0,
         0},
        {NULL, 0, NULL, NULL, NULL, 0, 0},
    };
    const char *summary = "Runs workflow phases for a syn broker.";
    syn_flags_result_t parsed = syn_flags_parse("syn-worker", summary, flags, argc, argv);
    if (parsed == SYN_FLAGS_EXIT)
        return 0;
    if (parsed == SYN_FLAGS_ERROR)
        return 2;

    char err[512] = "";
    long prefetch = PREFETCH_AUTO;
    if (strcmp(prefetch_text, "auto") != 0) {
        char *end = NULL;
        errno = 0;
        prefetch = strtol(prefetch_text, &end, 10);
        if (errno || prefetch_text[0] < '0' || prefetch_text[0] > '9' || *end || prefetch > 1024) {
            fprintf(stderr, "error: --prefetch wants auto or a number within 0..1024, got '%s'\n",
                    prefetch_text);
            return 2;
        }
    }
    /* Without keys, only a broker on this host (unless --insecure); the keys
     * themselves are read below, once the rest of the configuration is good. */
    bool use_curve = curve_secret && *curve_secret;
    if (!use_curve && broker_key && *broker_key) {
        fprintf(stderr, "error: --broker-key needs --curve-secret FILE (this worker's own "
                        "secret certificate)\n");
        return 2;
    }
    if (syn_endpoint_list_check("--broker", broker, use_curve || insecure,
                                "no CURVE key is given",
                                "give --curve-secret FILE and --broker-key FILE, or "
                                "--insecure to send work and results in the clear",
                                err, sizeof err) != 0) {
        fprintf(stderr, "error: %s\n", err);
        return 2;
    }
    worker_models_t *models = NULL;
    if (models_file && *models_file) {
        models = worker_models_load(models_file, err, sizeof err);
        if (!models) {
            fprintf(stderr, "error: --models: %s\n", err);
            return 2;
        }
    }

    worker_provider_t *provider = NULL;
    if (!strcmp(provider_name, "mock")) {
        provider = worker_provider_mock_new(mock_delay_ms);
    } else if (!strcmp(provider_name, "command")) {
        if (!command || !*command) {
            fprintf(stderr, "error: --provider command needs --command \"ARGV\"\n");
            syn_flags_usage("syn-worker", summary, flags, stderr);
            worker_models_destroy(&models);
            return 2;
        }
        provider = worker_provider_command_new(command, kill_grace_ms, err, sizeof err);
    } else if (!strcmp(provider_name, "claude")) {
        provider = worker_provider_claude_new(claude_bin, claude_args, kill_grace_ms, err,
                                              sizeof err);
    } else if (!strcmp(provider_name, "anthropic")) {
        provider = worker_provider_anthropic_new(anthropic_url, getenv("ANTHROPIC_API_KEY"),
                                                 anthropic_retry_ms, (int)anthropic_tries, err,
                                                 sizeof err);
    } else {
        fprintf(stderr, "error: --provider wants mock, command, claude or anthropic, got '%s'\n",
                provider_name);
        syn_flags_usage("syn-worker", summary, flags, stderr);
        worker_models_destroy(&models);
        return 2;
    }
    if (!provider) {
        /* A bad --command/--claude-args/--anthropic-url or a missing key: the
         * configuration is wrong (2); else memory ran out (1). */
        fprintf(stderr, "error: %s\n", *err ? err : "out of memory");
        worker_models_destroy(&models);
        return *err ? 2 : 1;
    }
    /* The sandbox: only for providers that run agents as processes (mock and
     * anthropic run in-process). A worker told to sandbox that cannot must not
     * run agents unconfined as if it could. */
    bool agents_are_processes = !strcmp(provider_name, "command") || !strcmp(provider_name, "claude");
    bool use_sandbox = strcmp(sandbox, "none") != 0;
    if (use_sandbox && strcmp(sandbox, "bwrap") != 0) {
        fprintf(stderr, "error: --sandbox wants bwrap or none, got '%s'\n", sandbox);
        worker_provider_destroy(&provider);
        worker_models_destroy(&models);
        return 2;
    }
    if (use_sandbox && agents_are_processes &&
        worker_sandbox_probe(NULL, sandbox_ro, err, sizeof err) != 0) {
        fprintf(stderr, "error: cannot sandbox agents (%s); install bubblewrap and allow user "
                        "namespaces, or give --sandbox none\n", err);
        worker_provider_destroy(&provider);
        worker_models_destroy(&models);
        return 2;
    }
    /* `proxy` attempts (the default network) need libcurl for their credential
     * proxy: loaded now, so no attempt's start pauses the loop for it. */
    if (use_sandbox && agents_are_processes && worker_cred_proxy_prepare(err, sizeof err) != 0) {
        fprintf(stderr, "error: %s (or give --sandbox none)\n", err);
        worker_provider_destroy(&provider);
        worker_models_destroy(&models);
        return 2;
    }
    worker_options_t options = {
        .sandbox = use_sandbox && agents_are_processes,
        .sandbox_ro = sandbox_ro,
        .proxy_upstream = anthropic_url,
        .workspace_dir = workspace,
        .keep_workspaces = keep_workspaces,
        .max_output_bytes = (uint64_t)max_output_mb * 1024 * 1024,
        .rlimit_as_mb = rlimit_as_mb,
        .nice = (int)nice_value,
        .pass_env = pass_env,
        .models = models,
        .kill_grace_ms = kill_grace_ms,
    };
    if (worker_provider_set_options(provider, &options) != 0) {
        fprintf(stderr, "error: out of memory\n");
        worker_provider_destroy(&provider);
        worker_models_destroy(&models);
        return 1;
    }

    /* Issue 18: a worker that cannot run its provider's agents must not take
     * work (it would fail every phase at once: a black hole). */
    char unavailable[256] = "";
    if (worker_provider_check(provider, unavailable, sizeof unavailable) != 0) {
        if (!allow_unavailable) {
            fprintf(stderr, "error: provider %s unavailable: %s (--allow-unavailable starts "
                            "anyway, taking no work until the check passes)\n",
                    provider_name, unavailable);
            worker_provider_destroy(&provider);
            worker_models_destroy(&models);
            return 2;
        }
        syn_warn("worker", "provider %s unavailable: %s (taking no work until the check passes)",
                 provider_name, unavailable);
    }

    char default_name[320];
    if (!name || !*name) {
        char host[256] = "worker";
        gethostname(host, sizeof host - 1);
        host[sizeof host - 1] = '\0';
        snprintf(default_name, sizeof default_name, "%s-%ld", host, (long)getpid());
        name = default_name;
    }

    /* The keys are read once, at start: a worker that cannot read them must
     * not run (and connect in the clear) as if none were given. */
    syn_curve_t *curve = NULL;
    if (use_curve && !(curve = syn_curve_new_client(curve_secret, broker_key, err, sizeof err))) {
        fprintf(stderr, "error: --curve-secret: %s\n", err);
        worker_provider_destroy(&provider);
        worker_models_destroy(&models);
        return 2;
    }

    syn_signals_install(false); /* one stop: drain and leave; two: leave now */

    worker_config_t config = {
        .broker = broker,
        .name = name,
        .slots = (int)slots,
        .prefetch = (int)prefetch,
        .heartbeat_ms = heartbeat_ms,
        .liveness = (int)liveness,
        .drain_ms = drain_seconds * 1000,
        .provider = provider,
        .unhealthy = unavailable[0] ? unavailable : NULL,
        .curve = curve,
    };
    worker_t *worker = worker_new(&config);
    if (!worker) {
        fprintf(stderr, "error: out of memory\n");
        syn_curve_destroy(&curve);
        worker_provider_destroy(&provider);
        worker_models_destroy(&models);
        return 1;
    }
    int rc = worker_run(worker, syn_signals_stop_requests());
    worker_destroy(&worker);
    syn_curve_destroy(&curve);
    worker_provider_destroy(&provider);
    worker_models_destroy(&models);
    syn_info("worker", "stopped");
    return rc;
}
