#include "tests/support/teststack.h"
#include "tests/support/pg_cluster.h"
#include "tests/support/http.h"
#include "tests/support/wait.h"
#include "bench/synload/localproc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <libpq-fe.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct teststack_t {
    teststack_options_t opts;
    char dir[256];
    char store[200]; /* SYN_TEST_STORE=postgresql: the broker's database, kept over restarts */
    char url[LOCALPROC_ADDR_SIZE];
    char http_addr[LOCALPROC_ADDR_SIZE];
    /* Where a broker binds: site 0, and with opts.two_sites site 1 too. */
    char clients_ep[2][LOCALPROC_ADDR_SIZE], workers_ep[2][LOCALPROC_ADDR_SIZE];
    char events_ep[2][LOCALPROC_ADDR_SIZE];
    /* What the gateway and workers are given: site 0's endpoints, or both sites'. */
    char clients_list[2 * LOCALPROC_ADDR_SIZE], workers_list[2 * LOCALPROC_ADDR_SIZE];
    char events_list[2 * LOCALPROC_ADDR_SIZE];
    pid_t brokers[2]; /* the broker at each site */
    int site;         /* the site of the broker started last */
    pid_t gateway;
    pid_t workers[TESTSTACK_MAX_WORKERS];
    char worker_extra[TESTSTACK_MAX_WORKERS][256];
    int nworkers;
    bool secure;
    char keys[300], authorized[320], tokens[300]; /* secure stacks: dir/keys, … */
    char broker_secret[320], broker_public[320], gateway_secret[320];
};

/* A secure stack's admin token's line in its tokens file, made by `syn token new`
 * for a test program's first secure stack and written into every later one's, so
 * one token (http_set_bearer) opens every stack of the program. */
static char token_line[256];

long long teststack_now_ms(void)
{
    return wait_now_ms();
}

/* Appends space-separated words of extra to argv (modifies a private copy). */
static int add_words(char **argv, int argc, int max, char *extra)
{
    for (char *save = NULL, *w = extra ? strtok_r(extra, " ", &save) : NULL; w && argc < max - 1;
         w = strtok_r(NULL, " ", &save))
        argv[argc++] = w;
    return argc;
}

/* Runs one of the built programs with its output appended to dir/<log>.log. */
static pid_t spawn(teststack_t *self, const char *log, char **argv)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s.log", self->dir, log);
    pid_t pid = fork();
    if (pid == 0) {
        localproc_redirect_child(path);
        execv(argv[0], argv);
        fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    return pid;
}

bool teststack_secure_env(void)
{
    const char *value = getenv("SYN_TEST_SECURE");
    return value && strcmp(value, "1") == 0;
}

/* Runs one of the built programs (the syn tool) to its end: its stdout in out
 * (without the last newline), its stderr appended to dir/tools.log. Its exit
 * code, or -1. */
static int run_tool(teststack_t *self, char **argv, char *out, size_t outlen)
{
    char log[512];
    snprintf(log, sizeof log, "%s/tools.log", self->dir);
    int pipefd[2];
    if (pipe(pipefd) != 0)
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        localproc_redirect_child(log);
        dup2(pipefd[1], STDOUT_FILENO);
        close(pipefd[0]);
        close(pipefd[1]);
        execv(argv[0], argv);
        fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    close(pipefd[1]);
    size_t n = 0;
    ssize_t got;
    while (pid > 0 && (got = read(pipefd[0], out + n, outlen - 1 - n)) != 0) {
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0 || (n += (size_t)got) == outlen - 1)
            break;
    }
    out[n] = '\0';
    if (n > 0 && out[n - 1] == '\n')
        out[n - 1] = '\0';
    close(pipefd[0]);
    int status;
    if (pid < 0 || waitpid(pid, &status, 0) != pid)
        return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static int copy_file(const char *from, const char *to, mode_t mode)
{
    FILE *in = fopen(from, "r");
    int fd = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    FILE *out = fd >= 0 ? fdopen(fd, "w") : NULL;
    char buf[4096];
    size_t n;
    bool ok = in && out;
    while (ok && (n = fread(buf, 1, sizeof buf, in)) > 0)
        ok = fwrite(buf, 1, n, out) == n;
    ok = ok && !ferror(in);
    if (in)
        fclose(in);
    if (out)
        ok = fclose(out) == 0 && ok;
    else if (fd >= 0)
        close(fd);
    return ok ? 0 : -1;
}

/* The files a stack over CURVE and tokens needs, made by the syn tool as a
 * person would (see teststack.h). 0, or -1 with the reason on stderr. */
static int prepare_secure(teststack_t *self)
{
    snprintf(self->keys, sizeof self->keys, "%s/keys", self->dir);
    snprintf(self->authorized, sizeof self->authorized, "%s/authorized", self->keys);
    snprintf(self->tokens, sizeof self->tokens, "%s/api-tokens", self->dir);
    snprintf(self->broker_secret, sizeof self->broker_secret, "%s/broker.key_secret",
             self->keys);
    snprintf(self->broker_public, sizeof self->broker_public, "%s/broker.key", self->keys);
    snprintf(self->gateway_secret, sizeof self->gateway_secret, "%s/gateway.key_secret",
             self->keys);
    if (mkdir(self->keys, 0700) != 0 || mkdir(self->authorized, 0700) != 0) {
        fprintf(stderr, "teststack: mkdir %s: %s\n", self->authorized, strerror(errno));
        return -1;
    }
    /* A key for every worker index a test may add, made now: a key authorized
     * later would need the broker's SIGHUP, and a wait for it, in every test that
     * adds a worker. */
    char out[512];
    for (int i = -2; i < TESTSTACK_MAX_WORKERS; i++) {
        char name[16], from[400], to[400];
        if (i < 0)
            snprintf(name, sizeof name, "%s", i == -2 ? "broker" : "gateway");
        else
            snprintf(name, sizeof name, "w%d", i);
        char *argv[] = {SYN_BIN_DIR "/syn", "keygen", name, "--dir", self->keys, "--role",
                        i == -1 ? "gateway" : "worker", NULL};
        if (i == -2)
            argv[5] = NULL; /* the broker's: a server key, no role */
        if (run_tool(self, argv, out, sizeof out) != 0) {
            fprintf(stderr, "teststack: syn keygen %s failed\n", name);
            return -1;
        }
        snprintf(from, sizeof from, "%s/%s.key", self->keys, name);
        snprintf(to, sizeof to, "%s/%s.key", self->authorized, name);
        if (i >= -1 && copy_file(from, to, 0644) != 0) {
            fprintf(stderr, "teststack: cannot copy %s to %s\n", from, to);
            return -1;
        }
    }
    if (token_line[0]) {
        int fd = open(self->tokens, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        size_t len = strlen(token_line);
        bool ok = fd >= 0 && write(fd, token_line, len) == (ssize_t)len;
        if (fd >= 0)
            close(fd);
        if (!ok)
            fprintf(stderr, "teststack: cannot write %s\n", self->tokens);
        return ok ? 0 : -1;
    }
    char *argv[] = {SYN_BIN_DIR "/syn", "token", "new", "teststack", "--scope", "admin",
                    "--file", self->tokens, "-q", NULL};
    FILE *line = NULL;
    if (run_tool(self, argv, out, sizeof out) != 0 || strlen(out) != 43 ||
        !(line = fopen(self->tokens, "r")) || !fgets(token_line, sizeof token_line, line)) {
        fprintf(stderr, "teststack: syn token new failed\n");
        token_line[0] = '\0';
        if (line)
            fclose(line);
        return -1;
    }
    fclose(line);
    http_set_bearer(out);
    return 0;
}

/* A broker over the stack's store, with these endpoints, logging to dir/<log>.log. */
static pid_t spawn_broker(teststack_t *self, const char *log, const char *clients,
                          const char *workers, const char *events, const char *extra_args)
{
    char data[300], extra[512];
    snprintf(data, sizeof data, "%s/var", self->dir);
    snprintf(extra, sizeof extra, "%s", extra_args ? extra_args : "");
    char *argv[40] = {SYN_BIN_DIR "/syn-broker", "--data",  data,    "--clients",
                      (char *)clients,           "--workers", (char *)workers, "--events",
                      (char *)events};
    int argc = 9;
    if (pg_cluster_wanted() || *self->store) { /* the stack over PostgreSQL (issue 21) */
        char err[256];
        if (!*self->store &&
            pg_cluster_new_database(self->store, sizeof self->store, err, sizeof err) < 0) {
            fprintf(stderr, "teststack: postgresql: %s\n", err);
            return -1;
        }
        argv[argc++] = "--store";
        argv[argc++] = self->store;
    }
    if (self->secure) {
        argv[argc++] = "--curve-secret";
        argv[argc++] = self->broker_secret;
        argv[argc++] = "--authorized-keys";
        argv[argc++] = self->authorized;
    }
    add_words(argv, argc, 40, extra);
    return spawn(self, log, argv);
}

int teststack_start_broker(teststack_t *self)
{
    return teststack_start_broker_at(self, self->site);
}

int teststack_start_broker_at(teststack_t *self, int site)
{
    if (site < 0 || site > (self->opts.two_sites ? 1 : 0))
        return -1;
    self->site = site;
    self->brokers[site] =
        spawn_broker(self, site == 0 ? "broker" : "broker-b", self->clients_ep[site],
                     self->workers_ep[site], self->events_ep[site], self->opts.broker_args);
    return self->brokers[site] > 0 ? 0 : -1;
}

pid_t teststack_spawn_broker(teststack_t *self, const char *log, const char *clients,
                             const char *workers, const char *events, const char *extra_args)
{
    return spawn_broker(self, log, clients ? clients : self->clients_ep[0],
                        workers ? workers : self->workers_ep[0],
                        events ? events : self->events_ep[0], extra_args);
}

void teststack_adopt_broker(teststack_t *self, pid_t pid)
{
    self->brokers[self->site] = pid;
}

int teststack_start_gateway(teststack_t *self)
{
    char extra[512];
    snprintf(extra, sizeof extra, "%s", self->opts.gateway_args ? self->opts.gateway_args : "");
    char *argv[40] = {SYN_BIN_DIR "/syn-gateway", "--http", self->http_addr, "--broker",
                      self->clients_list, "--events", self->events_list};
    int argc = 7;
    if (self->secure) {
        char *secure[] = {"--curve-secret", self->gateway_secret, "--broker-key",
                          self->broker_public, "--api-tokens", self->tokens};
        memcpy(argv + argc, secure, sizeof secure);
        argc += 6;
    }
    add_words(argv, argc, 40, extra);
    self->gateway = spawn(self, "gateway", argv);
    return self->gateway > 0 ? 0 : -1;
}

static pid_t spawn_worker(teststack_t *self, int index)
{
    char name[32], slots[16], delay[16], log[32];
    snprintf(name, sizeof name, "w%d", index);
    snprintf(log, sizeof log, "worker%d", index);
    snprintf(slots, sizeof slots, "%d", self->opts.slots);
    snprintf(delay, sizeof delay, "%d", self->opts.mock_delay_ms);
    char extra[512];
    snprintf(extra, sizeof extra, "%s %s", self->opts.worker_args ? self->opts.worker_args : "",
             self->worker_extra[index]);
    char *argv[40] = {SYN_BIN_DIR "/syn-worker", "--broker", self->workers_list, "--slots", slots,
                      "--name", name, "--provider", (char *)self->opts.provider};
    int argc = 9;
    char secret[400];
    if (self->secure) {
        snprintf(secret, sizeof secret, "%s/w%d.key_secret", self->keys, index);
        argv[argc++] = "--curve-secret";
        argv[argc++] = secret;
        argv[argc++] = "--broker-key";
        argv[argc++] = self->broker_public;
    }
    if (self->opts.command) {
        argv[argc++] = "--command";
        argv[argc++] = (char *)self->opts.command;
    }
    if (self->opts.mock_delay_ms > 0) {
        argv[argc++] = "--mock-delay-ms";
        argv[argc++] = delay;
    }
    argc = add_words(argv, argc, 40, extra);
    argv[argc] = NULL;
    return spawn(self, log, argv);
}

int teststack_add_worker(teststack_t *self, const char *extra_args)
{
    if (self->nworkers >= TESTSTACK_MAX_WORKERS)
        return -1;
    int index = self->nworkers++;
    snprintf(self->worker_extra[index], sizeof self->worker_extra[index], "%s",
             extra_args ? extra_args : "");
    self->workers[index] = spawn_worker(self, index);
    return self->workers[index] > 0 ? index : -1;
}

/* Site 1's endpoints, none of them one of site 0's, and the lists the gateway and
 * workers are given (both sites, site 0 first). */
static int second_site(teststack_t *self)
{
    int ports[3];
    for (int tries = 0; tries < 10; tries++) {
        if (localproc_free_ports(ports, 3) != 0)
            return -1;
        snprintf(self->clients_ep[1], LOCALPROC_ADDR_SIZE, "tcp://127.0.0.1:%d", ports[0]);
        snprintf(self->workers_ep[1], LOCALPROC_ADDR_SIZE, "tcp://127.0.0.1:%d", ports[1]);
        snprintf(self->events_ep[1], LOCALPROC_ADDR_SIZE, "tcp://127.0.0.1:%d", ports[2]);
        bool clash = false;
        for (int i = 0; i < 3; i++) {
            const char *b[] = {self->clients_ep[1], self->workers_ep[1], self->events_ep[1]};
            clash |= !strcmp(b[i], self->clients_ep[0]) || !strcmp(b[i], self->workers_ep[0]) ||
                     !strcmp(b[i], self->events_ep[0]) || strstr(self->http_addr, b[i] + 6);
        }
        if (!clash)
            return 0;
    }
    return -1;
}

/* The endpoint lists the gateway and workers are given. */
static void client_lists(teststack_t *self)
{
    char (*eps[3])[LOCALPROC_ADDR_SIZE] = {self->clients_ep, self->workers_ep, self->events_ep};
    char *lists[3] = {self->clients_list, self->workers_list, self->events_list};
    for (int i = 0; i < 3; i++) {
        if (self->opts.two_sites)
            snprintf(lists[i], 2 * LOCALPROC_ADDR_SIZE, "%s,%s", eps[i][0], eps[i][1]);
        else
            snprintf(lists[i], 2 * LOCALPROC_ADDR_SIZE, "%s", eps[i][0]);
    }
}

int teststack_wait_health(teststack_t *self, int workers, int timeout_ms)
{
    for (wait_t w = wait_begin(timeout_ms);;) {
        http_response_t r;
        if (http_get(&r, "%s/health", self->url) == 0 && r.status == 200 && r.json) {
            json_int_t n = json_integer_value(json_object_get(r.json, "workers"));
            http_response_clear(&r);
            if (n >= workers)
                return 0;
        } else {
            http_response_clear(&r);
        }
        if (!wait_next(&w))
            return -1;
    }
}

teststack_t *teststack_start(const teststack_options_t *opts)
{
    teststack_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    if (opts)
        self->opts = *opts;
    if (self->opts.workers == 0 && !opts)
        self->opts.workers = 2;
    if (self->opts.slots <= 0)
        self->opts.slots = 4;
    if (!self->opts.provider)
        self->opts.provider = "mock";
    snprintf(self->dir, sizeof self->dir, "/tmp/syn-test-XXXXXX");
    if (!mkdtemp(self->dir)) {
        free(self);
        return NULL;
    }
    if (localproc_stack_addresses(self->http_addr, self->url, self->clients_ep[0],
                                  self->workers_ep[0], self->events_ep[0]) != 0 ||
        (self->opts.two_sites && second_site(self) != 0)) {
        teststack_remove_dir(self->dir);
        free(self);
        return NULL;
    }

    client_lists(self);
    self->secure = self->opts.secure || teststack_secure_env();
    if (self->secure && prepare_secure(self) != 0) {
        teststack_dump_logs(self);
        teststack_destroy(&self);
        return NULL;
    }
    teststack_start_broker(self);
    teststack_start_gateway(self);
    for (int i = 0; i < self->opts.workers; i++)
        teststack_add_worker(self, NULL);
    if (teststack_wait_health(self, self->opts.workers, 20000) != 0) {
        fprintf(stderr, "teststack: the stack did not become healthy\n");
        teststack_dump_logs(self);
        teststack_destroy(&self);
        return NULL;
    }
    return self;
}

/* Stops one process: SIGTERM, then SIGKILL if it has not exited in 5 s. */
static void stop_process(pid_t *pid)
{
    if (*pid <= 0)
        return;
    kill(*pid, SIGTERM);
    for (wait_t w = wait_begin(5000); wait_next(&w);) {
        if (waitpid(*pid, NULL, WNOHANG) == *pid) {
            *pid = 0;
            return;
        }
    }
    kill(*pid, SIGKILL);
    waitpid(*pid, NULL, 0);
    *pid = 0;
}

static void kill_process(pid_t *pid, int sig)
{
    if (*pid <= 0)
        return;
    kill(*pid, sig);
    if (sig == SIGKILL || sig == SIGTERM || sig == SIGINT) {
        waitpid(*pid, NULL, 0);
        *pid = 0;
    }
}

/* Signals a process and reaps it, keeping how it ended (see teststack_stop_worker). */
static int stop_with_status(pid_t *pid, int sig, int timeout_ms)
{
    if (*pid <= 0)
        return -1;
    kill(*pid, sig);
    wait_t w = wait_begin(timeout_ms);
    int status = 0;
    for (;;) {
        pid_t got = waitpid(*pid, &status, WNOHANG);
        if (got == *pid)
            break;
        if (got < 0) {
            *pid = 0;
            return -1;
        }
        if (!wait_next(&w)) {
            kill(*pid, SIGKILL);
            waitpid(*pid, NULL, 0);
            *pid = 0;
            return -1;
        }
    }
    *pid = 0;
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    return WIFSIGNALED(status) ? 128 + WTERMSIG(status) : -1;
}

int teststack_stop_worker(teststack_t *self, int index, int sig, int timeout_ms)
{
    if (index < 0 || index >= self->nworkers)
        return -1;
    return stop_with_status(&self->workers[index], sig, timeout_ms);
}

int teststack_stop_broker(teststack_t *self, int sig, int timeout_ms)
{
    return stop_with_status(&self->brokers[self->site], sig, timeout_ms);
}

void teststack_kill_broker(teststack_t *self, int sig)
{
    kill_process(&self->brokers[self->site], sig);
}
void teststack_kill_broker_at(teststack_t *self, int site, int sig)
{
    if (site == 0 || (site == 1 && self->opts.two_sites))
        kill_process(&self->brokers[site], sig);
}
void teststack_kill_gateway(teststack_t *self, int sig) { kill_process(&self->gateway, sig); }
void teststack_kill_worker(teststack_t *self, int index, int sig)
{
    if (index >= 0 && index < self->nworkers)
        kill_process(&self->workers[index], sig);
}

pid_t teststack_worker_pid(teststack_t *self, int index)
{
    return index >= 0 && index < self->nworkers ? self->workers[index] : 0;
}
pid_t teststack_broker_pid(teststack_t *self) { return self->brokers[self->site]; }
pid_t teststack_broker_pid_at(teststack_t *self, int site)
{
    return site == 0 || site == 1 ? self->brokers[site] : 0;
}
pid_t teststack_gateway_pid(teststack_t *self) { return self->gateway; }
void teststack_use_store(teststack_t *self, const char *uri)
{
    snprintf(self->store, sizeof self->store, "%s", uri);
}
const char *teststack_store(teststack_t *self) { return self->store; }
const char *teststack_url(teststack_t *self) { return self->url; }
const char *teststack_dir(teststack_t *self) { return self->dir; }

bool teststack_log_has(teststack_t *self, const char *log, const char *text)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s.log", self->dir, log);
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    char line[4096];
    bool found = false;
    while (!found && fgets(line, sizeof line, f))
        found = strstr(line, text) != NULL;
    fclose(f);
    return found;
}
bool teststack_secure(teststack_t *self) { return self->secure; }

bool teststack_cmdline_has(pid_t pid, const char *arg, const char *value)
{
    char path[64], buf[8192];
    snprintf(path, sizeof path, "/proc/%d/cmdline", (int)pid);
    int fd = pid > 0 ? open(path, O_RDONLY | O_CLOEXEC) : -1;
    ssize_t n = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
    if (fd >= 0)
        close(fd);
    if (n <= 0)
        return false;
    buf[n] = '\0';
    for (char *p = buf; p < buf + n; p += strlen(p) + 1) {
        char *next = p + strlen(p) + 1;
        if (!strcmp(p, arg) && next < buf + n && !strcmp(next, value))
            return true;
    }
    return false;
}

static void dump_file(const char *dir, const char *name)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    fprintf(stderr, "----- %s -----\n", name);
    char line[4096];
    while (fgets(line, sizeof line, f))
        fputs(line, stderr);
    fclose(f);
}

void teststack_dump_logs(teststack_t *self)
{
    dump_file(self->dir, "tools.log");
    dump_file(self->dir, "broker.log");
    dump_file(self->dir, "broker-b.log"); /* the broker at site 1 (opts.two_sites) */
    dump_file(self->dir, "standby.log"); /* a second broker (teststack_spawn_broker) */
    dump_file(self->dir, "gateway.log");
    for (int i = 0; i < self->nworkers; i++) {
        char name[32];
        snprintf(name, sizeof name, "worker%d.log", i);
        dump_file(self->dir, name);
    }
}

void teststack_destroy(teststack_t **self_p)
{
    teststack_t *self = *self_p;
    if (!self)
        return;
    /* Workers first so that they do not reconnect-loop while the broker stops. */
    for (int i = 0; i < self->nworkers; i++)
        if (self->workers[i] > 0)
            kill(self->workers[i], SIGCONT);
    for (int i = 0; i < self->nworkers; i++)
        stop_process(&self->workers[i]);
    for (int site = 0; site < 2; site++)
        if (self->brokers[site] > 0)
            kill(self->brokers[site], SIGCONT);
    stop_process(&self->gateway);
    stop_process(&self->brokers[0]);
    stop_process(&self->brokers[1]);
    const char *keep = getenv("SYN_TEST_LOGS");
    if (keep && *keep == '1')
        teststack_dump_logs(self);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", self->dir);
    if (system(cmd) != 0)
        fprintf(stderr, "teststack: could not remove %s\n", self->dir);
    free(self);
    *self_p = NULL;
}

json_t *teststack_create_workflow(teststack_t *self, const char *json_body)
{
    http_response_t r;
    json_t *out = NULL;
    if (http_post(&r, json_body, "%s/workflows", self->url) == 0 && r.status == 201)
        out = json_incref(r.json);
    else
        fprintf(stderr, "create workflow: %ld %s\n", r.status, r.body ? r.body : "");
    http_response_clear(&r);
    return out;
}

char *teststack_execute(teststack_t *self, const char *workflow_id, const char *json_body)
{
    http_response_t r;
    char *id = NULL;
    if (http_post(&r, json_body ? json_body : "{}", "%s/workflows/%s/execute", self->url,
                  workflow_id) == 0 &&
        r.status == 200) {
        const char *eid = json_string_value(json_object_get(r.json, "execution_id"));
        id = eid ? strdup(eid) : NULL;
    } else {
        fprintf(stderr, "execute: %ld %s\n", r.status, r.body ? r.body : "");
    }
    http_response_clear(&r);
    return id;
}

static bool is_terminal(const char *status)
{
    return status && (!strcmp(status, "completed") || !strcmp(status, "failed") ||
                      !strcmp(status, "cancelled"));
}

json_t *teststack_wait_terminal(teststack_t *self, const char *workflow_id,
                                const char *execution_id, int timeout_ms)
{
    for (wait_t w = wait_begin(timeout_ms); wait_next(&w);) {
        http_response_t r;
        if (http_get(&r, "%s/workflows/%s/executions/%s", self->url, workflow_id,
                     execution_id) == 0 &&
            r.status == 200 &&
            is_terminal(json_string_value(json_object_get(r.json, "status")))) {
            json_t *out = json_incref(r.json);
            http_response_clear(&r);
            return out;
        }
        http_response_clear(&r);
    }
    return NULL;
}

/* Prepares sql on a read-only connection with the variadic strings bound. */
static sqlite3_stmt *db_prepare(teststack_t *self, sqlite3 **db, const char *sql, va_list ap)
{
    char path[512];
    snprintf(path, sizeof path, "%s/var/syn.db", self->dir);
    if (sqlite3_open_v2(path, db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        fprintf(stderr, "teststack: open %s: %s\n", path, sqlite3_errmsg(*db));
        return NULL;
    }
    sqlite3_busy_timeout(*db, 5000);
    sqlite3_stmt *stmt = NULL;
    if (sqlite3_prepare_v2(*db, sql, -1, &stmt, NULL) != SQLITE_OK) {
        fprintf(stderr, "teststack: %s: %s\n", sql, sqlite3_errmsg(*db));
        return NULL;
    }
    int i = 1;
    for (const char *arg = va_arg(ap, const char *); arg; arg = va_arg(ap, const char *))
        sqlite3_bind_text(stmt, i++, arg, -1, SQLITE_TRANSIENT);
    return stmt;
}

/* The broker's store on PostgreSQL: the same query, its SQLite spelling made
 * PostgreSQL's (?N is $N; group_concat(x, sep) string_agg; instr strpos;
 * json_extract(x, '$.key') x::json ->> 'key'), the arguments
 * bound as text. The rows, or NULL with the reason on stderr. */
static PGresult *pg_db_query(teststack_t *self, const char *sql, va_list ap)
{
    char text[2048], *o = text;
    for (const char *in = sql; *in && o < text + sizeof text - 16;) {
        if (strncmp(in, "group_concat(", 13) == 0) {
            o += sprintf(o, "string_agg(");
            in += 13;
        } else if (strncmp(in, "json_extract(", 13) == 0 && strstr(in, ", '$.")) {
            /* json_extract(x, '$.key') is (x::json ->> 'key') */
            const char *comma = strstr(in, ", '$."), *key = comma + 5;
            const char *end = strchr(key, '\'');
            if (!end || end[1] != ')')
                break;
            o += sprintf(o, "(%.*s::json ->> '%.*s')", (int)(comma - in - 13), in + 13,
                         (int)(end - key), key);
            in = end + 2;
        } else if (strncmp(in, "instr(", 6) == 0) {
            o += sprintf(o, "strpos(");
            in += 6;
        } else if (*in == '?') {
            *o++ = '$';
            in++;
        } else {
            *o++ = *in++;
        }
    }
    *o = '\0';
    const char *args[16];
    int n = 0;
    for (const char *arg = va_arg(ap, const char *); arg && n < 16; arg = va_arg(ap, const char *))
        args[n++] = arg;
    PGconn *conn = PQconnectdb(self->store);
    PGresult *r = PQexecParams(conn, text, n, NULL, args, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        fprintf(stderr, "teststack: %s: %s\n", text, PQerrorMessage(conn));
        PQclear(r);
        r = NULL;
    }
    PQfinish(conn);
    return r;
}

static char *db_text(teststack_t *self, const char *sql, va_list ap)
{
    if (*self->store) {
        PGresult *r = pg_db_query(self, sql, ap);
        char *out = r && PQntuples(r) > 0 && !PQgetisnull(r, 0, 0) ? strdup(PQgetvalue(r, 0, 0))
                                                                   : NULL;
        PQclear(r);
        return out;
    }
    sqlite3 *db = NULL;
    sqlite3_stmt *stmt = db_prepare(self, &db, sql, ap);
    char *out = NULL;
    if (stmt && sqlite3_step(stmt) == SQLITE_ROW && sqlite3_column_text(stmt, 0))
        out = strdup((const char *)sqlite3_column_text(stmt, 0));
    sqlite3_finalize(stmt);
    sqlite3_close(db);
    return out;
}

char *teststack_db_text(teststack_t *self, const char *sql, ...)
{
    va_list ap;
    va_start(ap, sql);
    char *out = db_text(self, sql, ap);
    va_end(ap);
    return out;
}

long long teststack_db_int(teststack_t *self, const char *sql, ...)
{
    va_list ap;
    va_start(ap, sql);
    char *text = db_text(self, sql, ap);
    va_end(ap);
    long long n = text ? strtoll(text, NULL, 10) : -1;
    free(text);
    return n;
}

long teststack_db_count(teststack_t *self, const char *sql, ...)
{
    sqlite3 *db = NULL;
    va_list ap;
    va_start(ap, sql);
    if (*self->store) {
        PGresult *r = pg_db_query(self, sql, ap);
        va_end(ap);
        long rows = r ? PQntuples(r) : -1;
        PQclear(r);
        return rows;
    }
    sqlite3_stmt *stmt = db_prepare(self, &db, sql, ap);
    va_end(ap);
    long rows = stmt ? 0 : -1;
    while (stmt && sqlite3_step(stmt) == SQLITE_ROW)
        rows++;
    sqlite3_finalize(stmt);
    sqlite3_close(db);
    return rows;
}

teststack_t *teststack_start_command(char *scratch, int workers, const char *script)
{
    if (!mkdtemp(scratch))
        return NULL;
    setenv("SYN_TEST_DIR", scratch, 1);
    teststack_options_t opts = {
        .workers = workers,
        .slots = 2,
        .provider = "command",
        .command = script,
        /* The scripts keep their state in SYN_TEST_DIR, outside any workspace,
         * which a sandboxed agent cannot write: these stacks test the broker
         * and the worker, and tests/unit/test_worker_sandbox the sandbox. */
        .worker_args = "--kill-grace-ms 500 --sandbox none",
    };
    teststack_t *self = teststack_start(&opts);
    if (!self)
        teststack_remove_dir(scratch);
    return self;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

int teststack_remove_dir(const char *dir)
{
    return nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS) == 0 ? 0 : -1;
}
