/* syn: the command-line tool. `syn up` runs a whole local stack (broker, gateway,
 * workers) as one supervised process tree; `syn keygen` and `syn token new` make
 * the CURVE keys and API tokens a stack across hosts needs. Every other command is
 * a client of the HTTP API (cli/cli.h), dispatched from here to its own file. */
#include "auth/token.h"
#include "cli/cli.h"
#include "cli/keys.h"
#include "cli/supervisor.h"
#include "common/flags.h"
#include "common/log.h"
#include "common/signals.h"
#include "proto/curve.h"

#include <curl/curl.h>
#include <libgen.h>
#include <signal.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void usage(FILE *out)
{
    fprintf(out,
            "usage: syn [--url URL] [--token TOKEN] [--json] [-q] [--no-color] <command> ...\n\n"
            "workflows and executions (a client of the HTTP API):\n"
            "  workflow    list | show ID | create -f FILE | validate FILE | export ID | archive ID\n"
            "  run         start an execution of a workflow (and watch it on a terminal)\n"
            "  ls          list executions\n"
            "  show        an execution's phases: status, attempts, worker, time, tokens, cost\n"
            "  output      a phase's whole output\n"
            "  watch       follow an execution live to its end\n"
            "  logs        an execution's events as lines (-f: follow)\n"
            "  pause       pause an execution after its running phase\n"
            "  resume      resume a paused execution\n"
            "  cancel      cancel an execution (asks first on a terminal; -y does not)\n"
            "  inject      give an execution's agents a message\n"
            "  rerun       run a finished execution again from a phase (--from), reusing\n"
            "              the earlier phases' outputs\n"
            "  approve     approve the gate an execution waits at (-m COMMENT)\n"
            "  reject      reject it: the execution ends cancelled (--reason R)\n"
            "  exec        approve ID | reject ID (the same, grouped); artifacts ID: list an\n"
            "              execution's artifacts, save one (--get) or all (--all)\n"
            "  status      the gateway, the broker and the workers\n"
            "  health      exit 0 when ready to run work (for health checks)\n\n"
            "running a stack:\n"
            "  up          run a local stack: broker, gateway and workers, supervised\n"
            "              (--curve: over CURVE, with keys made in its data directory)\n"
            "  keygen      make a CURVE key pair: NAME.key (public), NAME.key_secret\n"
            "  token new   make an API token, print it once, add its hash to a tokens file\n\n"
            "The gateway is --url, else $SYN_API_URL, else " CLI_DEFAULT_URL "; credentials\n"
            "--token or $SYN_API_TOKEN, or $SYN_API_USER and $SYN_API_PASSWORD. Ids may be\n"
            "unique prefixes. Exit codes: 0 success, 1 failed, 2 usage, 3 cancelled,\n"
            "4 not found, 5 server unreachable or unauthorized. `syn <command> --help` shows\n"
            "a command's options; `man syn` says more.\n");
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

/* Takes the one positional argument (a NAME) out of argv so that syn_flags_parse
 * sees options only, and turns -q into --quiet. A value that follows an option
 * taking one is not a NAME. 0; -1 (with a line on stderr) for a second one. */
static int take_name(int *argc, char **argv, const syn_flag_t *flags, const char **name)
{
    *name = NULL;
    int out = 1;
    for (int i = 1; i < *argc; i++) {
        char *arg = argv[i];
        if (!strcmp(arg, "-q"))
            arg = "--quiet";
        argv[out++] = arg;
        if (!strncmp(arg, "--", 2)) {
            size_t len = strcspn(arg + 2, "=");
            for (const syn_flag_t *f = flags; f->name; f++)
                if (strlen(f->name) == len && !strncmp(f->name, arg + 2, len) &&
                    f->kind != SYN_FLAG_BOOL && !arg[2 + len] && i + 1 < *argc)
                    argv[out++] = argv[++i];
            continue;
        }
        if (arg[0] == '-')
            continue; /* syn_flags_parse says what is wrong with it */
        if (*name) {
            fprintf(stderr, "error: unexpected argument '%s'\n", arg);
            return -1;
        }
        *name = arg;
        out--;
    }
    *argc = out;
    argv[out] = NULL;
    return 0;
}

static int cmd_keygen(int argc, char **argv)
{
    const char *dir = ".", *role = NULL;
    syn_flag_t flags[] = {
        {"dir", SYN_FLAG_STRING, "DIR", "directory the two files go to", &dir, 0, 0},
        {"role", SYN_FLAG_STRING, "gateway|worker",
         "what the broker lets the key do: a gateway key only the clients and events "
         "sockets, a worker key only the workers socket (default: any, all three)",
         &role, 0, 0},
        {NULL, 0, NULL, NULL, NULL, 0, 0},
    };
    const char *summary =
        "Makes a CURVE key pair: DIR/NAME.key, the public certificate (give it to the\n"
        "broker's --authorized-keys directory, or as --broker-key for the broker's own),\n"
        "and DIR/NAME.key_secret (mode 0600, for --curve-secret; it stays on this host).\n"
        "Never overwrites a file.";
    const char *name = NULL;
    if (take_name(&argc, argv, flags, &name) != 0)
        return 2;
    syn_flags_result_t parsed = syn_flags_parse("syn keygen NAME", summary, flags, argc, argv);
    if (parsed != SYN_FLAGS_OK)
        return parsed == SYN_FLAGS_EXIT ? 0 : 2;
    if (!name) {
        fprintf(stderr, "error: syn keygen needs a NAME (syn keygen --help)\n");
        return 2;
    }
    if (!keys_name_is_valid(name)) {
        fprintf(stderr, "error: invalid key name '%s': " KEYS_NAME_RULE "\n", name);
        return 2;
    }
    syn_curve_role_t parsed_role = SYN_CURVE_ROLE_ANY;
    if (role && syn_curve_role_parse(role, &parsed_role) != 0) {
        fprintf(stderr, "error: --role must be gateway, worker or any (got '%s')\n", role);
        return 2;
    }
    char public_txt[KEYS_PUBLIC_TXT], err[PATH_MAX + 128];
    /* "any" is a certificate without a role, as other tools make them */
    if (keys_generate(dir, name,
                      parsed_role == SYN_CURVE_ROLE_ANY ? NULL : syn_curve_role_name(parsed_role),
                      public_txt, err, sizeof err) != 0) {
        fprintf(stderr, "error: %s\n", err);
        return 1;
    }
    printf("public key: %s (role %s)\n"
           "public certificate: %s/%s.key\n"
           "secret certificate: %s/%s.key_secret (mode 0600)\n",
           public_txt, syn_curve_role_name(parsed_role), dir, name, dir, name);
    return 0;
}

/* The tokens file `syn token new` appends to: the one the gateway reads when
 * started from the same environment (SYN_API_TOKENS is its --api-tokens). */
static const char *default_tokens_file(void)
{
    const char *env = getenv("SYN_API_TOKENS");
    return env && *env ? env : "./api-tokens";
}

static int cmd_token_new(int argc, char **argv)
{
    const char *file = default_tokens_file(), *scope_text = NULL;
    bool quiet = false;
    syn_flag_t flags[] = {
        {"scope", SYN_FLAG_STRING, "read|run|admin",
         "what the token may do: read (GETs, event streams), run (also execute and control), "
         "admin (also change workflows)",
         &scope_text, 0, 0},
        {"file", SYN_FLAG_STRING, "FILE",
         "tokens file the hash is added to: $SYN_API_TOKENS when set, the gateway's "
         "--api-tokens",
         &file, 0, 0},
        {"quiet", SYN_FLAG_BOOL, NULL, "print the token only (also -q)", &quiet, 0, 0},
        {NULL, 0, NULL, NULL, NULL, 0, 0},
    };
    const char *summary =
        "Prints a fresh API token once and adds `NAME SCOPE sha256:<hash>` to the tokens\n"
        "file a gateway reads with --api-tokens (it reloads the file on SIGHUP). The token\n"
        "itself is kept nowhere: store it where its user will find it.";
    const char *name = NULL;
    if (take_name(&argc, argv, flags, &name) != 0)
        return 2;
    syn_flags_result_t parsed = syn_flags_parse("syn token new NAME", summary, flags, argc, argv);
    if (parsed != SYN_FLAGS_OK)
        return parsed == SYN_FLAGS_EXIT ? 0 : 2;
    syn_scope_t scope;
    if (!name) {
        fprintf(stderr, "error: syn token new needs a NAME (syn token new --help)\n");
        return 2;
    }
    if (!syn_token_name_is_valid(name)) {
        fprintf(stderr, "error: invalid token name '%s': 1-64 of A-Z a-z 0-9 . _ -\n", name);
        return 2;
    }
    if (!scope_text || syn_scope_parse(scope_text, &scope) != 0) {
        fprintf(stderr, "error: --scope must be read, run or admin%s%s%s\n",
                scope_text ? " (got '" : "", scope_text ? scope_text : "", scope_text ? "')" : "");
        return 2;
    }
    char token[SYN_TOKEN_TEXT], hash[SYN_TOKEN_HASH_HEX], err[PATH_MAX + 128];
    if (syn_token_generate(token) != 0) {
        fprintf(stderr, "error: no randomness to make a token from\n");
        return 1;
    }
    syn_token_hash(token, strlen(token), hash);
    /* Printed only once its hash is in the file: a token shown is a token that works. */
    if (syn_tokens_append(file, name, scope, hash, err, sizeof err) != 0) {
        explicit_bzero(token, sizeof token);
        fprintf(stderr, "error: %s\n", err);
        return 1;
    }
    printf("%s\n", token);
    fflush(stdout);
    explicit_bzero(token, sizeof token);
    if (!quiet)
        fprintf(stderr,
                "token %s (scope %s) added to %s; it is shown only this once.\n"
                "A gateway started with --api-tokens %s reads it on SIGHUP "
                "(kill -HUP <gateway pid>).\n",
                name, syn_scope_name(scope), file, file);
    return 0;
}

static int cmd_token(int argc, char **argv)
{
    if (argc >= 2 && !strcmp(argv[1], "new"))
        return cmd_token_new(argc - 1, argv + 1);
    FILE *out = argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) ? stdout
                                                                                     : stderr;
    fprintf(out, "usage: syn token new NAME --scope read|run|admin [--file FILE] [-q]\n"
                 "`syn token new --help` says more.\n");
    return out == stdout ? 0 : 2;
}

/* out (PATH_MAX bytes) = dir/name; -1 when it does not fit. */
static int join_path(char *out, const char *dir, const char *name)
{
    int n = snprintf(out, PATH_MAX, "%s/%s", dir, name);
    return n > 0 && n < PATH_MAX ? 0 : -1;
}

/* syn up --curve: a key pair for the broker, the gateway (role gateway) and each
 * worker (role worker, named as the worker: local-N) in keys/, reused when there;
 * the gateway's and the workers' public certificates copied into authorized/,
 * which is all the broker lets in. 0, or -1 with the reason on stderr. */
static int prepare_curve_keys(const char *keys, const char *authorized, long workers)
{
    char err[PATH_MAX + 128];
    if (keys_mkdir(keys, 0700, err, sizeof err) != 0 ||
        keys_mkdir(authorized, 0700, err, sizeof err) != 0) {
        fprintf(stderr, "error: %s\n", err);
        return -1;
    }
    int made = 0;
    for (long i = -2; i < workers; i++) {
        char name[32];
        if (i < 0)
            snprintf(name, sizeof name, "%s", i == -2 ? "broker" : "gateway");
        else
            snprintf(name, sizeof name, "local-%ld", i + 1);
        bool fresh = false;
        const char *role = i == -2 ? NULL : i == -1 ? "gateway" : "worker";
        if (keys_ensure(keys, name, role, &fresh, err, sizeof err) != 0 ||
            (i >= -1 && keys_authorize(keys, name, authorized, err, sizeof err) != 0)) {
            fprintf(stderr, "error: %s\n", err);
            return -1;
        }
        made += fresh;
    }
    syn_info("syn", "curve keys dir=%s made=%d reused=%ld", keys, made, workers + 2 - made);
    return 0;
}

/* Appends a CURVE client's two flags and the terminating NULL at argv. */
static void add_curve_client(char **argv, char *secret, char *broker_public)
{
    argv[0] = "--curve-secret";
    argv[1] = secret;
    argv[2] = "--broker-key";
    argv[3] = broker_public;
    argv[4] = NULL;
}

static int cmd_up(int argc, char **argv)
{
    const char *http = "127.0.0.1:8137", *data = "./var", *provider = "mock", *command = NULL;
    const char *log_level = "info", *workflows = NULL, *prefetch = NULL;
    long workers = 2, slots = 4, base_port = 5555;
    bool curve = false;
    syn_flag_t flags[] = {
        {"http", SYN_FLAG_STRING, "HOST:PORT", "gateway HTTP address", &http, 0, 0},
        {"data", SYN_FLAG_STRING, "DIR", "broker data directory (SQLite)", &data, 0, 0},
        {"workers", SYN_FLAG_INT, "N", "number of worker processes", &workers, 0, 64},
        {"slots", SYN_FLAG_INT, "N", "phases each worker runs at once", &slots, 1, 1024},
        {"prefetch", SYN_FLAG_STRING, "N|auto",
         "phases each worker holds beyond its slots, started as a slot frees (default auto: "
         "while phases are short)",
         &prefetch, 0, 0},
        {"provider", SYN_FLAG_STRING, "NAME", "agent provider: mock|command|claude|anthropic (workers take their other flags as SYN_* variables)", &provider, 0, 0},
        {"command", SYN_FLAG_STRING, "ARGV", "program for the command provider", &command, 0, 0},
        {"base-port", SYN_FLAG_INT, "PORT",
         "broker ports: clients PORT, workers PORT+1, events PORT+2", &base_port, 1, 65533},
        {"workflows", SYN_FLAG_STRING, "DIR",
         "workflow files the broker installs at start (default ./workflows if it exists; "
         "\"\" for none)",
         &workflows, 0, 0},
        {"curve", SYN_FLAG_BOOL, NULL,
         "every ZeroMQ link over CURVE: key pairs in DATA/keys (made on the first start, "
         "reused after), the gateway's and workers' public keys in DATA/keys/authorized",
         &curve, 0, 0},
        {"log-level", SYN_FLAG_LOG_LEVEL, "LEVEL", "debug|info|warn|error", &log_level, 0, 0},
        {NULL, 0, NULL, NULL, NULL, 0, 0},
    };
    syn_flags_result_t parsed =
        syn_flags_parse("syn up",
                        "Runs broker, gateway and workers as one local stack; the ZeroMQ links "
                        "stay on 127.0.0.1.",
                        flags, argc, argv);
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
    char slots_text[16];
    snprintf(slots_text, sizeof slots_text, "%ld", slots);

    char keys[PATH_MAX], authorized[PATH_MAX], broker_secret[PATH_MAX], broker_public[PATH_MAX];
    char gateway_secret[PATH_MAX];
    /* Room for every file name under DATA/keys/authorized/. */
    if (strlen(data) > PATH_MAX - 128 || join_path(keys, data, "keys") ||
        join_path(authorized, keys, "authorized") ||
        join_path(broker_secret, keys, "broker.key_secret") ||
        join_path(broker_public, keys, "broker.key") ||
        join_path(gateway_secret, keys, "gateway.key_secret")) {
        fprintf(stderr, "error: --data %s: path too long\n", data);
        return 2;
    }
    if (curve && prepare_curve_keys(keys, authorized, workers) != 0)
        return 1;

    supervisor_t *sup = supervisor_new();
    if (!sup)
        return 1;
    struct stat st;
    if (!workflows && stat("./workflows", &st) == 0 && S_ISDIR(st.st_mode))
        workflows = "./workflows";
    char *broker_argv[24] = {broker,     "--data",   (char *)data, "--clients", clients_ep,
                             "--workers", workers_ep, "--events",   events_ep,   "--log-level",
                             (char *)log_level};
    int nb = 11;
    if (workflows && *workflows) {
        broker_argv[nb++] = "--workflows";
        broker_argv[nb++] = (char *)workflows;
    }
    if (curve) {
        broker_argv[nb++] = "--curve-secret";
        broker_argv[nb++] = broker_secret;
        broker_argv[nb++] = "--authorized-keys";
        broker_argv[nb++] = authorized;
    }
    char *gateway_argv[16] = {gateway,  "--http",   (char *)http, "--broker", clients_ep,
                              "--events", events_ep, "--log-level", (char *)log_level};
    if (curve)
        add_curve_client(gateway_argv + 9, gateway_secret, broker_public);
    supervisor_add(sup, "broker", broker_argv);
    supervisor_add(sup, "gateway", gateway_argv);
    for (long i = 0; i < workers; i++) {
        char label[32], name[64], file[80], secret[PATH_MAX];
        snprintf(label, sizeof label, "worker-%ld", i + 1);
        snprintf(name, sizeof name, "local-%ld", i + 1);
        snprintf(file, sizeof file, "%s.key_secret", name);
        join_path(secret, keys, file); /* fits: data was checked above */
        char *worker_argv[24] = {worker, "--broker", workers_ep, "--slots", slots_text,
                                 "--provider", (char *)provider, "--name", name,
                                 "--log-level", (char *)log_level};
        int n = 11;
        if (command) {
            worker_argv[n++] = "--command";
            worker_argv[n++] = (char *)command;
        }
        if (prefetch) { /* the worker checks it */
            worker_argv[n++] = "--prefetch";
            worker_argv[n++] = (char *)prefetch;
        }
        if (curve)
            add_curve_client(worker_argv + n, secret, broker_public);
        supervisor_add(sup, label, worker_argv);
    }

    syn_signals_install(false);

    fprintf(stderr,
            "\nsyn is starting: http://%s  (%ld workers x %ld slots, provider %s, data %s)\n"
            "%s%s%s%s%s%s"
            "try: curl http://%s/health     Ctrl-C stops everything.\n\n",
            http, workers, slots, provider, data, workflows && *workflows ? "workflows from " : "",
            workflows && *workflows ? workflows : "", workflows && *workflows ? "\n" : "",
            curve ? "ZeroMQ links over CURVE, keys in " : "", curve ? keys : "",
            curve ? "\n" : "", http);
    int rc = supervisor_run(sup, syn_signals_stop_requests(), 10000);
    supervisor_destroy(&sup);
    return rc == 0 ? 0 : 1;
}

/* Ctrl-C while a client command runs: it stops waiting, never the execution. */
static volatile sig_atomic_t interrupted;

static void on_interrupt(int sig)
{
    (void)sig;
    interrupted = 1;
}

static const struct {
    const char *name;
    int (*run)(cli_t *, int, char **);
} client_commands[] = {
    {"workflow", cmd_workflow}, {"workflows", cmd_workflow}, {"run", cmd_run},
    {"ls", cmd_ls},             {"show", cmd_show},          {"output", cmd_output},
    {"logs", cmd_logs},         {"watch", cmd_watch},        {"pause", cmd_pause},
    {"resume", cmd_resume},     {"cancel", cmd_cancel},      {"inject", cmd_inject},
    {"status", cmd_status},     {"health", cmd_health},      {"rerun", cmd_rerun},
    {"approve", cmd_approve},   {"reject", cmd_reject},      {"exec", cmd_exec_group},
};

/* Global options may come before the command (`syn --url U ls`): they are moved
 * after it, where the command's parser reads them with its own. argv is rewritten
 * in place; returns the index of the command word, or argc when there is none. */
static int move_global_options(int argc, char **argv)
{
    int first = 1;
    while (first < argc && argv[first][0] == '-' && strcmp(argv[first], "--help") &&
           strcmp(argv[first], "-h") && strcmp(argv[first], "--version"))
        first += (!strcmp(argv[first], "--url") || !strcmp(argv[first], "--token")) ? 2 : 1;
    if (first >= argc || first == 1)
        return first >= argc ? argc : 1;
    char *moved[64];
    int n = first - 1 < 64 ? first - 1 : 64;
    memcpy(moved, argv + 1, (size_t)n * sizeof *moved);
    memmove(argv + 1, argv + first, (size_t)(argc - first) * sizeof *argv);
    memcpy(argv + 1 + (argc - first), moved, (size_t)n * sizeof *moved);
    return 1;
}

static int run_client_command(int (*run)(cli_t *, int, char **), int argc, char **argv)
{
    struct sigaction sa = {.sa_handler = on_interrupt};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf(stderr, "error: libcurl cannot start\n");
        return CLI_EXIT_FAILED;
    }
    cli_t cli;
    cli_init(&cli, &interrupted);
    int code = run(&cli, argc, argv);
    cli_end(&cli);
    curl_global_cleanup();
    return code;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && move_global_options(argc, argv) >= argc) {
        usage(stderr);
        return 2;
    }
    for (size_t i = 0; argc >= 2 && i < sizeof client_commands / sizeof client_commands[0]; i++)
        if (!strcmp(argv[1], client_commands[i].name))
            return run_client_command(client_commands[i].run, argc - 1, argv + 1);
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
    if (!strcmp(argv[1], "keygen"))
        return cmd_keygen(argc - 1, argv + 1);
    if (!strcmp(argv[1], "token"))
        return cmd_token(argc - 1, argv + 1);
    fprintf(stderr, "error: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
