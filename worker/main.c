/* syn-worker: runs workflow phases for a syn broker with an agent provider. */
#include <czmq.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/flags.h"
#include "common/log.h"
#include "worker/provider.h"
#include "worker/worker.h"

/* How many stop signals arrived: 1 = drain and leave, 2 = leave now. */
static volatile sig_atomic_t stop_requests = 0;

static void on_stop_signal(int sig)
{
    (void)sig;
    if (stop_requests < 2)
        stop_requests = stop_requests + 1;
}

static void install_signal_handlers(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    /* A child that closes its stdin early must give EPIPE, not kill us. */
    signal(SIGPIPE, SIG_IGN);
}

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
    long slots = 4, mock_delay_ms = 20, heartbeat_ms = 1000, liveness = 3;
    long kill_grace_ms = 5000, drain_seconds = 30;
    syn_flag_t flags[] = {
        {"broker", SYN_FLAG_STRING, "EP", "broker endpoint for workers", &broker, 0, 0},
        {"slots", SYN_FLAG_INT, "N", "phases run at once", &slots, 1, 1024},
        {"provider", SYN_FLAG_STRING, "mock|command", "agent provider", &provider_name, 0, 0},
        {"command", SYN_FLAG_STRING, "\"ARGV\"",
         "agent command for the command provider (split without a shell)", &command, 0, 0},
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
        {"log-level", SYN_FLAG_STRING, "debug|info|warn|error", "log threshold", &log_level, 0,
         0},
        {NULL, 0, NULL, NULL, NULL, 0, 0},
    };
    const char *summary = "Runs workflow phases for a syn broker.";
    syn_flags_result_t parsed = syn_flags_parse("syn-worker", summary, flags, argc, argv);
    if (parsed == SYN_FLAGS_EXIT)
        return 0;
    if (parsed == SYN_FLAGS_ERROR)
        return 2;

    syn_log_level_t level;
    if (syn_log_parse_level(log_level, &level) != 0) {
        fprintf(stderr, "error: --log-level wants debug, info, warn or error, got '%s'\n",
                log_level);
        syn_flags_usage("syn-worker", summary, flags, stderr);
        return 2;
    }
    syn_log_set_level(level);

    worker_provider_t *provider = NULL;
    char err[256] = "";
    if (!strcmp(provider_name, "mock")) {
        provider = worker_provider_mock_new(mock_delay_ms);
    } else if (!strcmp(provider_name, "command")) {
        if (!command || !*command) {
            fprintf(stderr, "error: --provider command needs --command \"ARGV\"\n");
            syn_flags_usage("syn-worker", summary, flags, stderr);
            return 2;
        }
        provider = worker_provider_command_new(command, kill_grace_ms, err, sizeof err);
        if (!provider) {
            fprintf(stderr, "error: %s\n", err);
            syn_flags_usage("syn-worker", summary, flags, stderr);
            return 2;
        }
    } else {
        fprintf(stderr, "error: --provider wants mock or command, got '%s'\n", provider_name);
        syn_flags_usage("syn-worker", summary, flags, stderr);
        return 2;
    }
    if (!provider) {
        fprintf(stderr, "error: out of memory\n");
        return 1;
    }

    char default_name[320];
    if (!name || !*name) {
        char host[256] = "worker";
        gethostname(host, sizeof host - 1);
        host[sizeof host - 1] = '\0';
        snprintf(default_name, sizeof default_name, "%s-%ld", host, (long)getpid());
        name = default_name;
    }

    /* czmq must not install its own SIGINT/SIGTERM handling: ours drains. */
    zsys_handler_set(NULL);
    zsys_init();
    install_signal_handlers();

    worker_config_t config = {
        .broker = broker,
        .name = name,
        .slots = (int)slots,
        .heartbeat_ms = heartbeat_ms,
        .liveness = (int)liveness,
        .drain_ms = drain_seconds * 1000,
        .provider = provider,
    };
    worker_t *worker = worker_new(&config);
    if (!worker) {
        fprintf(stderr, "error: out of memory\n");
        worker_provider_destroy(&provider);
        return 1;
    }
    int rc = worker_run(worker, &stop_requests);
    worker_destroy(&worker);
    worker_provider_destroy(&provider);
    syn_info("worker", "stopped");
    return rc;
}
