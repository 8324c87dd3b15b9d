/* syn: the command-line tool. `syn up` runs a whole local stack (broker, gateway,
 * workers) as one supervised process tree. */
#include "cli/supervisor.h"
#include "common/flags.h"
#include "common/log.h"

#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static volatile sig_atomic_t stop_requested = 0;

static void on_stop_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static void usage(FILE *out)
{
    fprintf(out, "usage: syn <command> [options]\n\n"
                 "commands:\n"
                 "  up    run a local stack: broker, gateway and workers, supervised\n\n"
                 "`syn <command> --help` shows a command's options.\n");
}

/* The programs live next to this one (build/bin/ or an install prefix). */
static int program_path(const char *name, char *out, size_t outsize)
{
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0)
        return -1;
    self[n] = '\0';
    int written = snprintf(out, outsize, "%s/%s", dirname(self), name);
    return written > 0 && (size_t)written < outsize && access(out, X_OK) == 0 ? 0 : -1;
}

static int cmd_up(int argc, char **argv)
{
    const char *http = "127.0.0.1:8137", *data = "./var", *provider = "mock", *command = NULL;
    const char *log_level = "info", *workflows = NULL;
    long workers = 2, slots = 4, prefetch = 0, base_port = 5555;
    syn_flag_t flags[] = {
        {"http", SYN_FLAG_STRING, "HOST:PORT", "gateway HTTP address", &http, 0, 0},
        {"data", SYN_FLAG_STRING, "DIR", "broker data directory (SQLite)", &data, 0, 0},
        {"workers", SYN_FLAG_INT, "N", "number of worker processes", &workers, 0, 64},
        {"slots", SYN_FLAG_INT, "N", "phases each worker runs at once", &slots, 1, 1024},
        {"prefetch", SYN_FLAG_INT, "N",
         "phases each worker holds beyond its slots, started as a slot frees (short phases)",
         &prefetch, 0, 1024},
        {"provider", SYN_FLAG_STRING, "NAME", "agent provider: mock|command|claude|anthropic (workers take their other flags as SYN_* variables)", &provider, 0, 0},
        {"command", SYN_FLAG_STRING, "ARGV", "program for the command provider", &command, 0, 0},
        {"base-port", SYN_FLAG_INT, "PORT",
         "broker ports: clients PORT, workers PORT+1, events PORT+2", &base_port, 1, 65533},
        {"workflows", SYN_FLAG_STRING, "DIR",
         "workflow files the broker installs at start (default ./workflows if it exists; "
         "\"\" for none)",
         &workflows, 0, 0},
        {"log-level", SYN_FLAG_LOG_LEVEL, "LEVEL", "debug|info|warn|error", &log_level, 0, 0},
        {NULL, 0, NULL, NULL, NULL, 0, 0},
    };
    syn_flags_result_t parsed =
        syn_flags_parse("syn up", "Runs broker, gateway and workers as one local stack.", flags,
                        argc, argv);
    if (parsed != SYN_FLAGS_OK)
        return parsed == SYN_FLAGS_EXIT ? 0 : 2;
    if (!strcmp(provider, "command") && !command) {
        fprintf(stderr, "error: --provider command needs --command ARGV\n");
        return 2;
    }

    char broker[PATH_MAX], gateway[PATH_MAX], worker[PATH_MAX];
    if (program_path("syn-broker", broker, sizeof broker) ||
        program_path("syn-gateway", gateway, sizeof gateway) ||
        program_path("syn-worker", worker, sizeof worker)) {
        fprintf(stderr, "error: syn-broker, syn-gateway and syn-worker must sit next to syn\n");
        return 1;
    }
    char clients_ep[64], workers_ep[64], events_ep[64];
    snprintf(clients_ep, sizeof clients_ep, "tcp://127.0.0.1:%ld", base_port);
    snprintf(workers_ep, sizeof workers_ep, "tcp://127.0.0.1:%ld", base_port + 1);
    snprintf(events_ep, sizeof events_ep, "tcp://127.0.0.1:%ld", base_port + 2);
    char slots_text[16], prefetch_text[16];
    snprintf(slots_text, sizeof slots_text, "%ld", slots);
    snprintf(prefetch_text, sizeof prefetch_text, "%ld", prefetch);

    supervisor_t *sup = supervisor_new();
    if (!sup)
        return 1;
    struct stat st;
    if (!workflows && stat("./workflows", &st) == 0 && S_ISDIR(st.st_mode))
        workflows = "./workflows";
    char *broker_argv[16] = {broker,     "--data",   (char *)data, "--clients", clients_ep,
                             "--workers", workers_ep, "--events",   events_ep,   "--log-level",
                             (char *)log_level};
    if (workflows && *workflows) {
        broker_argv[11] = "--workflows";
        broker_argv[12] = (char *)workflows;
    }
    char *gateway_argv[] = {gateway,  "--http",   (char *)http, "--broker", clients_ep,
                            "--events", events_ep, "--log-level", (char *)log_level, NULL};
    supervisor_add(sup, "broker", broker_argv);
    supervisor_add(sup, "gateway", gateway_argv);
    for (long i = 0; i < workers; i++) {
        char label[32], name[64];
        snprintf(label, sizeof label, "worker-%ld", i + 1);
        snprintf(name, sizeof name, "local-%ld", i + 1);
        char *worker_argv[16] = {worker, "--broker", workers_ep, "--slots", slots_text,
                                 "--provider", (char *)provider, "--name", name,
                                 "--log-level", (char *)log_level};
        int n = 11;
        if (command) {
            worker_argv[n++] = "--command";
            worker_argv[n++] = (char *)command;
        }
        if (prefetch > 0) {
            worker_argv[n++] = "--prefetch";
            worker_argv[n++] = prefetch_text;
        }
        worker_argv[n] = NULL;
        supervisor_add(sup, label, worker_argv);
    }

    struct sigaction sa = {.sa_handler = on_stop_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    fprintf(stderr,
            "\nsyn is starting: http://%s  (%ld workers x %ld slots, provider %s, data %s)\n"
            "%s%s%s"
            "try: curl http://%s/health     Ctrl-C stops everything.\n\n",
            http, workers, slots, provider, data, workflows && *workflows ? "workflows from " : "",
            workflows && *workflows ? workflows : "", workflows && *workflows ? "\n" : "", http);
    int rc = supervisor_run(sup, &stop_requested, 10000);
    supervisor_destroy(&sup);
    return rc == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("syn %s\n", SYN_VERSION);
        return 0;
    }
    if (!strcmp(argv[1], "up"))
        return cmd_up(argc - 1, argv + 1);
    fprintf(stderr, "error: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
