#include "bench/synload/stack.h"
#include "bench/synload/hclient.h"
#include "bench/synload/localproc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <libgen.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "tests/support/pg_cluster.h"

struct synstack_t {
    synstack_options_t opts;
    char dir[PATH_MAX];
    char db[PATH_MAX + 16];   /* the SQLite file, or the PostgreSQL URI */
    char url[LOCALPROC_ADDR_SIZE], http_addr[LOCALPROC_ADDR_SIZE];
    char clients_ep[LOCALPROC_ADDR_SIZE], workers_ep[LOCALPROC_ADDR_SIZE];
    char events_ep[LOCALPROC_ADDR_SIZE];
    pid_t broker;
    pid_t gateways[STACK_MAX_GATEWAYS];
    char gw_http[STACK_MAX_GATEWAYS][LOCALPROC_ADDR_SIZE], gw_url[STACK_MAX_GATEWAYS][LOCALPROC_ADDR_SIZE];
    int ngateways;
    pid_t workers[STACK_MAX_WORKERS];
    char names[STACK_MAX_WORKERS][32];
    int nworkers;
};

int self_dir(char *out, size_t outsize)
{
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0)
        return -1;
    self[n] = '\0';
    int w = snprintf(out, outsize, "%s", dirname(self));
    return w > 0 && (size_t)w < outsize ? 0 : -1;
}

int stack_free_port(void)
{
    return localproc_free_port();
}

/* Runs argv with stdout and stderr appended to dir/<log>.log. The child dies
 * with synload (PR_SET_PDEATHSIG), so an interrupted benchmark leaves nothing
 * behind (short of a wrapper's grandchild if synload itself is SIGKILLed). */
static pid_t spawn(synstack_t *self, const char *log, char **argv)
{
    char path[PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/%s.log", self->dir, log);
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0) {
        /* Its own process group, so a --broker-prefix (or --gateway-prefix) wrapper
         * and the program it runs are stopped together. */
        setpgid(0, 0);
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(1);
        localproc_redirect_child(path);
        execvp(argv[0], argv);
        fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    if (pid > 0)
        setpgid(pid, pid);
    return pid;
}

/* Appends the space-separated words of text (copied into store) to argv. */
static int add_words(char **argv, int argc, int max, const char *text, char *store,
                     size_t storesize)
{
    if (!text)
        return argc;
    snprintf(store, storesize, "%s", text);
    char *save = NULL;
    for (char *w = strtok_r(store, " ", &save); w && argc < max - 1; w = strtok_r(NULL, " ", &save))
        argv[argc++] = w;
    return argc;
}

static pid_t start_broker(synstack_t *self)
{
    char prog[PATH_MAX + 16], data[PATH_MAX + 8], prefix[512], extra[512];
    snprintf(prog, sizeof prog, "%s/syn-broker", self->opts.bin_dir);
    if (self->opts.data_dir)
        snprintf(data, sizeof data, "%s", self->opts.data_dir);
    else
        snprintf(data, sizeof data, "%s/var", self->dir);
    char *argv[64];
    int argc = add_words(argv, 0, 32, self->opts.broker_prefix, prefix, sizeof prefix);
    char *fixed[] = {prog,         "--data",   data,       "--clients",
                     self->clients_ep, "--workers", self->workers_ep, "--events",
                     self->events_ep,  "--log-level", (char *)self->opts.log_level};
    for (size_t i = 0; i < sizeof fixed / sizeof *fixed; i++)
        argv[argc++] = fixed[i];
    if (self->opts.postgresql) {
        argv[argc++] = "--store";
        argv[argc++] = self->db;
    }
    argc = add_words(argv, argc, 64, self->opts.broker_args, extra, sizeof extra);
    argv[argc] = NULL;
    return spawn(self, "broker", argv);
}

/* Gateway index: its log is "gateway" for the first, "gatewayN" for the others;
 * the last one may reach the broker through other endpoints (a proxy). */
static pid_t start_gateway(synstack_t *self, int index)
{
    char prog[PATH_MAX + 16], prefix[512], extra[512], log[32];
    snprintf(prog, sizeof prog, "%s/syn-gateway", self->opts.bin_dir);
    if (index == 0)
        snprintf(log, sizeof log, "gateway");
    else
        snprintf(log, sizeof log, "gateway%d", index + 1);
    bool last = index > 0 && index == self->ngateways - 1;
    const char *broker = last && self->opts.last_gateway_broker ? self->opts.last_gateway_broker
                                                                : self->clients_ep;
    const char *events = last && self->opts.last_gateway_events ? self->opts.last_gateway_events
                                                                : self->events_ep;
    char *argv[64];
    int argc = add_words(argv, 0, 32, self->opts.gateway_prefix, prefix, sizeof prefix);
    char *fixed[] = {prog,     "--http",   self->gw_http[index], "--broker",
                     (char *)broker, "--events", (char *)events, "--log-level",
                     (char *)self->opts.log_level};
    for (size_t i = 0; i < sizeof fixed / sizeof *fixed; i++)
        argv[argc++] = fixed[i];
    argc = add_words(argv, argc, 64, self->opts.gateway_args, extra, sizeof extra);
    argv[argc] = NULL;
    return spawn(self, log, argv);
}

static pid_t start_worker(synstack_t *self, int index)
{
    char prog[PATH_MAX + 16], slots[16], delay[16], log[32], prefetch[16], extra[512];
    snprintf(prog, sizeof prog, "%s/syn-worker", self->opts.bin_dir);
    snprintf(self->names[index], sizeof self->names[index], "bench-w%d", index + 1);
    snprintf(log, sizeof log, "worker%d", index + 1);
    snprintf(slots, sizeof slots, "%d", self->opts.slots);
    snprintf(delay, sizeof delay, "%d", self->opts.mock_delay_ms);
    snprintf(prefetch, sizeof prefetch, "%d", self->opts.prefetch);
    bool command = index >= self->opts.workers - self->opts.command_workers;
    char *fixed[] = {prog,          "--broker", self->workers_ep, "--slots", slots,
                     "--provider",  command ? "command" : "mock", "--name", self->names[index],
                     "--log-level", (char *)self->opts.log_level, "--mock-delay-ms", delay};
    char *argv[64];
    int argc = 0;
    for (size_t i = 0; i < sizeof fixed / sizeof *fixed; i++)
        argv[argc++] = fixed[i];
    /* The soak's command agent writes its own records outside any sandbox. */
    if (command) {
        argv[argc++] = "--command";
        argv[argc++] = (char *)self->opts.command;
        argv[argc++] = "--sandbox";
        argv[argc++] = "none";
    }
    /* --prefetch only when asked for, so builds from before it can be compared. */
    if (self->opts.prefetch > 0) {
        argv[argc++] = "--prefetch";
        argv[argc++] = prefetch;
    }
    argc = add_words(argv, argc, 64, self->opts.worker_args, extra, sizeof extra);
    argv[argc] = NULL;
    return spawn(self, log, argv);
}

int stack_wait_health(const char *url, int workers, int timeout_ms)
{
    char host[64];
    int port;
    if (hclient_parse_url(url, host, sizeof host, &port) != 0)
        return -1;
    hclient_t *hc = hclient_new(host, port);
    if (!hc)
        return -1;
    int64_t deadline = syn_mono_ms() + timeout_ms;
    int rc = -1;
    while (syn_mono_ms() < deadline) {
        if (hclient_request(hc, "GET", "/health", NULL, 2000) == 200) {
            const char *w = strstr(hclient_body(hc, NULL), "\"workers\":");
            if (w && atoi(w + 10) >= workers) {
                rc = 0;
                break;
            }
        }
        localproc_sleep_ms(50);
    }
    hclient_destroy(&hc);
    return rc;
}

/* Prints the last lines of every log (for a stack that did not come up). */
static void dump_logs(synstack_t *self)
{
    const char *logs[] = {"broker", "gateway", "gateway2", "worker1", "worker2"};
    for (size_t i = 0; i < sizeof logs / sizeof *logs; i++) {
        char path[PATH_MAX + 64];
        snprintf(path, sizeof path, "%s/%s.log", self->dir, logs[i]);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        fprintf(stderr, "---- %s (last 4 KiB)\n", path);
        fseek(f, 0, SEEK_END);
        long size = ftell(f);
        fseek(f, size > 4096 ? size - 4096 : 0, SEEK_SET);
        char buf[4097];
        size_t n = fread(buf, 1, 4096, f);
        buf[n] = '\0';
        fputs(buf, stderr);
        fclose(f);
    }
}

/* The broker's endpoints and each gateway's HTTP address: from base_port on
 * when given, else on ports the system picks. */
static int assign_addresses(synstack_t *self)
{
    if (self->opts.base_port <= 0) {
        if (localproc_stack_addresses(self->http_addr, self->url, self->clients_ep,
                                      self->workers_ep, self->events_ep) != 0)
            return -1;
        snprintf(self->gw_http[0], LOCALPROC_ADDR_SIZE, "%s", self->http_addr);
        snprintf(self->gw_url[0], LOCALPROC_ADDR_SIZE, "%s", self->url);
        for (int g = 1; g < self->ngateways; g++) {
            int port = localproc_free_port();
            if (port < 0)
                return -1;
            snprintf(self->gw_http[g], LOCALPROC_ADDR_SIZE, "127.0.0.1:%d", port);
            snprintf(self->gw_url[g], LOCALPROC_ADDR_SIZE, "http://127.0.0.1:%d", port);
        }
        return 0;
    }
    int base = self->opts.base_port;
    snprintf(self->clients_ep, LOCALPROC_ADDR_SIZE, "tcp://127.0.0.1:%d", base);
    snprintf(self->workers_ep, LOCALPROC_ADDR_SIZE, "tcp://127.0.0.1:%d", base + 1);
    snprintf(self->events_ep, LOCALPROC_ADDR_SIZE, "tcp://127.0.0.1:%d", base + 2);
    for (int g = 0; g < self->ngateways; g++) {
        snprintf(self->gw_http[g], LOCALPROC_ADDR_SIZE, "127.0.0.1:%d", base + 3 + g);
        snprintf(self->gw_url[g], LOCALPROC_ADDR_SIZE, "http://127.0.0.1:%d", base + 3 + g);
    }
    snprintf(self->http_addr, sizeof self->http_addr, "%s", self->gw_http[0]);
    snprintf(self->url, sizeof self->url, "%s", self->gw_url[0]);
    return 0;
}

synstack_t *stack_start(const synstack_options_t *opts, int timeout_ms)
{
    if (opts->workers < 0 || opts->workers > STACK_MAX_WORKERS ||
        opts->gateways < 0 || opts->gateways > STACK_MAX_GATEWAYS ||
        opts->command_workers < 0 || opts->command_workers > opts->workers ||
        (opts->command_workers && !opts->command))
        return NULL;
    synstack_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->opts = *opts;
    if (!self->opts.log_level)
        self->opts.log_level = "warn";
    const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    snprintf(self->dir, sizeof self->dir, "%s/synload-XXXXXX", tmp);
    if (!mkdtemp(self->dir)) {
        fprintf(stderr, "synload: mkdtemp %s: %s\n", self->dir, strerror(errno));
        free(self);
        return NULL;
    }
    if (opts->data_dir)
        snprintf(self->db, sizeof self->db, "%s/syn.db", opts->data_dir);
    else
        snprintf(self->db, sizeof self->db, "%s/var/syn.db", self->dir);
    if (opts->postgresql) {
        char why[256];
        pg_cluster_durable();
        if (pg_cluster_new_database(self->db, sizeof self->db, why, sizeof why) != 0) {
            fprintf(stderr, "synload: --store postgresql: %s\n", why);
            rmdir(self->dir);
            free(self);
            return NULL;
        }
    }
    self->ngateways = opts->gateways ? opts->gateways : 1;
    if (assign_addresses(self) != 0) {
        fprintf(stderr, "synload: no free loopback ports\n");
        rmdir(self->dir);
        free(self);
        return NULL;
    }

    self->broker = start_broker(self);
    for (int g = 0; g < self->ngateways; g++)
        self->gateways[g] = start_gateway(self, g);
    for (int i = 0; i < opts->workers; i++)
        self->workers[self->nworkers++] = start_worker(self, i);
    if (stack_wait_health(self->url, opts->workers, timeout_ms) != 0) {
        fprintf(stderr, "synload: the stack in %s did not report %d workers within %d ms\n",
                self->dir, opts->workers, timeout_ms);
        dump_logs(self);
        self->opts.keep = true;
        stack_destroy(&self);
        return NULL;
    }
    return self;
}

/* Signals the process's group (the program and any wrapper around it). */
static void signal_group(pid_t pid, int sig)
{
    if (kill(-pid, sig) != 0)
        kill(pid, sig);
}

static void stop_process(pid_t *pid)
{
    if (*pid <= 0)
        return;
    signal_group(*pid, SIGTERM);
    for (int i = 0; i < 500; i++) {
        if (waitpid(*pid, NULL, WNOHANG) == *pid) {
            *pid = 0;
            return;
        }
        localproc_sleep_ms(10);
    }
    signal_group(*pid, SIGKILL);
    waitpid(*pid, NULL, 0);
    *pid = 0;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

void stack_destroy(synstack_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    synstack_t *self = *self_p;
    /* Workers first, so none of them logs a lost broker while it stops. */
    for (int i = 0; i < self->nworkers; i++)
        if (self->workers[i] > 0)
            signal_group(self->workers[i], SIGTERM);
    for (int i = 0; i < self->nworkers; i++)
        stop_process(&self->workers[i]);
    for (int g = 0; g < self->ngateways; g++)
        stop_process(&self->gateways[g]);
    stop_process(&self->broker);
    if (self->opts.keep)
        fprintf(stderr, "synload: kept %s\n", self->dir);
    else
        nftw(self->dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(self);
    *self_p = NULL;
}

/* Adds every "name=N" word after `after` in line to counters; other words are
 * skipped. */
static void parse_counters(const char *line, const char *after, json_t *counters)
{
    const char *p = strstr(line, after);
    if (!p)
        return;
    p += strlen(after);
    while (*p) {
        while (*p == ' ')
            p++;
        size_t word = strcspn(p, " \n");
        const char *eq = memchr(p, '=', word);
        if (eq && eq > p && (size_t)(eq - p) < 64 && eq + 1 < p + word) {
            char name[64];
            memcpy(name, p, (size_t)(eq - p));
            name[eq - p] = '\0';
            char *end;
            errno = 0;
            unsigned long long value = strtoull(eq + 1, &end, 10);
            if (end == p + word && errno == 0 && eq[1] != '-' && value <= INT64_MAX)
                json_object_set_new(counters, name, json_integer((json_int_t)value));
        }
        p += word;
        if (*p == '\n')
            break;
    }
}

json_t *stack_stop_gateway(synstack_t *self)
{
    json_t *counters = json_object();
    stop_process(&self->gateways[0]);
    char path[PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/gateway.log", self->dir);
    FILE *f = fopen(path, "r");
    if (!f || !counters)
        return counters;
    char *line = NULL, *last = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, f) > 0)
        if (strstr(line, " gateway stopping ")) {
            free(last);
            last = strdup(line);
        }
    fclose(f);
    free(line);
    if (last)
        parse_counters(last, " gateway stopping ", counters);
    free(last);
    return counters;
}

const char *stack_url(const synstack_t *self) { return self->url; }
const char *stack_workers_endpoint(const synstack_t *self) { return self->workers_ep; }
const char *stack_dir(const synstack_t *self) { return self->dir; }
const char *stack_db_path(const synstack_t *self) { return self->db; }
pid_t stack_broker_pid(const synstack_t *self) { return self->broker; }
pid_t stack_gateway_pid(const synstack_t *self) { return self->gateways[0]; }
int stack_gateway_count(const synstack_t *self) { return self->ngateways; }
void stack_set_keep(synstack_t *self, bool keep) { self->opts.keep = keep; }

const char *stack_gateway_url(const synstack_t *self, int index)
{
    return index >= 0 && index < self->ngateways ? self->gw_url[index] : "";
}

static pid_t *pid_slot(synstack_t *self, stack_role_t role, int index)
{
    if (role == STACK_BROKER)
        return index == 0 ? &self->broker : NULL;
    if (role == STACK_GATEWAY)
        return index >= 0 && index < self->ngateways ? &self->gateways[index] : NULL;
    return index >= 0 && index < self->nworkers ? &self->workers[index] : NULL;
}

pid_t stack_pid(const synstack_t *self, stack_role_t role, int index)
{
    pid_t *slot = pid_slot((synstack_t *)self, role, index);
    return slot ? *slot : 0;
}

int stack_signal(synstack_t *self, stack_role_t role, int index, int sig)
{
    pid_t *slot = pid_slot(self, role, index);
    if (!slot || *slot <= 0)
        return -1;
    signal_group(*slot, sig);
    return 0;
}

int stack_restart(synstack_t *self, stack_role_t role, int index)
{
    pid_t *slot = pid_slot(self, role, index);
    if (!slot)
        return -1;
    if (*slot > 0) {
        signal_group(*slot, SIGKILL);
        waitpid(*slot, NULL, 0);
    }
    *slot = role == STACK_BROKER    ? start_broker(self)
            : role == STACK_GATEWAY ? start_gateway(self, index)
                                    : start_worker(self, index);
    return *slot > 0 ? 0 : -1;
}
int stack_worker_count(const synstack_t *self) { return self->nworkers; }

pid_t stack_worker_pid(const synstack_t *self, int index)
{
    return index >= 0 && index < self->nworkers ? self->workers[index] : 0;
}

const char *stack_worker_name(const synstack_t *self, int index)
{
    return index >= 0 && index < self->nworkers ? self->names[index] : "";
}

void stack_kill_worker(synstack_t *self, int index)
{
    if (index < 0 || index >= self->nworkers || self->workers[index] <= 0)
        return;
    signal_group(self->workers[index], SIGKILL);
    waitpid(self->workers[index], NULL, 0);
    self->workers[index] = 0;
}

/* One "Name:   N kB" field of /proc/PID/status; -1 when absent or gone. */
static long proc_status_kib(pid_t pid, const char *field)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    long kib = -1;
    size_t len = strlen(field);
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, field, len) && line[len] == ':') {
            kib = strtol(line + len + 1, NULL, 10);
            break;
        }
    fclose(f);
    return kib;
}

long proc_rss_kib(pid_t pid)
{
    return proc_status_kib(pid, "VmRSS");
}

long proc_peak_rss_kib(pid_t pid)
{
    return proc_status_kib(pid, "VmHWM");
}

int proc_pss_uss_kib(pid_t pid, long *pss, long *uss)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/smaps_rollup", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    *pss = 0;
    *uss = 0;
    while (fgets(line, sizeof line, f)) {
        if (!strncmp(line, "Pss:", 4))
            *pss = strtol(line + 4, NULL, 10);
        else if (!strncmp(line, "Private_Clean:", 14))
            *uss += strtol(line + 14, NULL, 10);
        else if (!strncmp(line, "Private_Dirty:", 14))
            *uss += strtol(line + 14, NULL, 10);
    }
    fclose(f);
    return 0;
}

double proc_cpu_s(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')');
    if (!p)
        return 0;
    unsigned long utime = 0, stime = 0;
    /* Fields after the command: state(3) ... utime(14) stime(15). */
    if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &utime, &stime) != 2)
        return 0;
    return (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK);
}
