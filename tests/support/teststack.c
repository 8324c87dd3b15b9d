#include "tests/support/teststack.h"
#include "tests/support/http.h"
#include "bench/synload/localproc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
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
    char url[LOCALPROC_ADDR_SIZE];
    char http_addr[LOCALPROC_ADDR_SIZE];
    char clients_ep[LOCALPROC_ADDR_SIZE], workers_ep[LOCALPROC_ADDR_SIZE];
    char events_ep[LOCALPROC_ADDR_SIZE];
    pid_t broker, gateway;
    pid_t workers[TESTSTACK_MAX_WORKERS];
    char worker_extra[TESTSTACK_MAX_WORKERS][256];
    int nworkers;
};

long long teststack_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void teststack_sleep_ms(int ms)
{
    localproc_sleep_ms(ms);
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

int teststack_start_broker(teststack_t *self)
{
    char data[300], extra[512];
    snprintf(data, sizeof data, "%s/var", self->dir);
    snprintf(extra, sizeof extra, "%s", self->opts.broker_args ? self->opts.broker_args : "");
    char *argv[32] = {SYN_BIN_DIR "/syn-broker", "--data", data,      "--clients",
                      self->clients_ep,          "--workers", self->workers_ep, "--events",
                      self->events_ep};
    add_words(argv, 9, 32, extra);
    self->broker = spawn(self, "broker", argv);
    return self->broker > 0 ? 0 : -1;
}

int teststack_start_gateway(teststack_t *self)
{
    char extra[512];
    snprintf(extra, sizeof extra, "%s", self->opts.gateway_args ? self->opts.gateway_args : "");
    char *argv[32] = {SYN_BIN_DIR "/syn-gateway", "--http", self->http_addr, "--broker",
                      self->clients_ep, "--events", self->events_ep};
    add_words(argv, 7, 32, extra);
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
    char *argv[40] = {SYN_BIN_DIR "/syn-worker", "--broker", self->workers_ep, "--slots", slots,
                      "--name", name, "--provider", (char *)self->opts.provider};
    int argc = 9;
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

int teststack_wait_health(teststack_t *self, int workers, int timeout_ms)
{
    long long deadline = teststack_now_ms() + timeout_ms;
    while (teststack_now_ms() < deadline) {
        http_response_t r;
        if (http_get(&r, "%s/health", self->url) == 0 && r.status == 200 && r.json) {
            json_int_t n = json_integer_value(json_object_get(r.json, "workers"));
            http_response_clear(&r);
            if (n >= workers)
                return 0;
        } else {
            http_response_clear(&r);
        }
        teststack_sleep_ms(50);
    }
    return -1;
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
    if (localproc_stack_addresses(self->http_addr, self->url, self->clients_ep,
                                  self->workers_ep, self->events_ep) != 0) {
        teststack_remove_dir(self->dir);
        free(self);
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
    for (int i = 0; i < 500; i++) {
        if (waitpid(*pid, NULL, WNOHANG) == *pid) {
            *pid = 0;
            return;
        }
        teststack_sleep_ms(10);
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
    long long deadline = teststack_now_ms() + timeout_ms;
    int status = 0;
    for (;;) {
        pid_t got = waitpid(*pid, &status, WNOHANG);
        if (got == *pid)
            break;
        if (got < 0) {
            *pid = 0;
            return -1;
        }
        if (teststack_now_ms() >= deadline) {
            kill(*pid, SIGKILL);
            waitpid(*pid, NULL, 0);
            *pid = 0;
            return -1;
        }
        teststack_sleep_ms(5);
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
    return stop_with_status(&self->broker, sig, timeout_ms);
}

void teststack_kill_broker(teststack_t *self, int sig) { kill_process(&self->broker, sig); }
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
pid_t teststack_broker_pid(teststack_t *self) { return self->broker; }
pid_t teststack_gateway_pid(teststack_t *self) { return self->gateway; }
const char *teststack_url(teststack_t *self) { return self->url; }
const char *teststack_dir(teststack_t *self) { return self->dir; }

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
    dump_file(self->dir, "broker.log");
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
    if (self->broker > 0)
        kill(self->broker, SIGCONT);
    stop_process(&self->gateway);
    stop_process(&self->broker);
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
    long long deadline = teststack_now_ms() + timeout_ms;
    while (teststack_now_ms() < deadline) {
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
        teststack_sleep_ms(20);
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

char *teststack_db_text(teststack_t *self, const char *sql, ...)
{
    sqlite3 *db = NULL;
    va_list ap;
    va_start(ap, sql);
    sqlite3_stmt *stmt = db_prepare(self, &db, sql, ap);
    va_end(ap);
    char *out = NULL;
    if (stmt && sqlite3_step(stmt) == SQLITE_ROW && sqlite3_column_text(stmt, 0))
        out = strdup((const char *)sqlite3_column_text(stmt, 0));
    sqlite3_finalize(stmt);
    sqlite3_close(db);
    return out;
}

long teststack_db_count(teststack_t *self, const char *sql, ...)
{
    sqlite3 *db = NULL;
    va_list ap;
    va_start(ap, sql);
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
        .worker_args = "--kill-grace-ms 500",
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
