/* synchaos: the fault-injection soak of issue 23 (see chaos.h). The run's
 * phases: set up (a tmpfs for the broker's data, ports, the proxy, the stack,
 * the workflows), soak (submitters and the fault thread for --minutes), heal
 * (every fault undone), settle (the controls still due, then every execution
 * terminal or the deadline), check, report. Exit 0 when every promise held, 1
 * when one broke, 2 on a setup failure. */
#include "bench/chaos/chaos.h"
#include "bench/synload/hclient.h"
#include "bench/synload/localproc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <netinet/in.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/flags.h"

#ifndef CHAOS_AGENT
#define CHAOS_AGENT "bench/chaos/chaos_agent.sh"
#endif

static volatile sig_atomic_t interrupted = 0;

static void on_signal(int sig)
{
    (void)sig;
    interrupted = 1;
}

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

double chaos_now(const chaos_t *self)
{
    return mono_s() - self->t0;
}

uint64_t chaos_rand(uint64_t seed, uint64_t stream, uint64_t n)
{
    uint64_t z = seed ^ (stream * 0x9E3779B97F4A7C15ull) ^ (n * 0xBF58476D1CE4E5B9ull);
    z += 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

double chaos_uniform(uint64_t r, double lo, double hi)
{
    return lo + (hi - lo) * ((double)(r >> 11) / (double)(1ull << 53));
}

/* Whether all n ports from base can be bound on loopback right now. */
static bool ports_free(int base, int n)
{
    bool ok = true;
    int fds[CHAOS_PORTS];
    int opened = 0;
    for (; opened < n && ok; opened++) {
        fds[opened] = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in addr = {.sin_family = AF_INET,
                                   .sin_port = htons((uint16_t)(base + opened))};
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        ok = fds[opened] >= 0 && bind(fds[opened], (struct sockaddr *)&addr, sizeof addr) == 0;
    }
    for (int i = 0; i < opened; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    return ok;
}

/* A run of free ports below the kernel's ephemeral range: a ZeroMQ socket that
 * reconnects to a port in that range while nothing listens there can connect to
 * itself (TCP simultaneous open) and hold the port, and this soak takes its
 * listeners down on purpose all the time. */
static int pick_base_port(void)
{
    int low = localproc_ephemeral_low();
    int lo = 10000, hi = low - CHAOS_PORTS;
    if (hi <= lo)
        return -1;
    uint64_t r = chaos_rand((uint64_t)getpid(), (uint64_t)time(NULL), 0);
    for (int i = 0; i < 200; i++) {
        int base = lo + (int)(chaos_rand(r, 7, (uint64_t)i) % (uint64_t)(hi - lo));
        if (ports_free(base, CHAOS_PORTS))
            return base;
    }
    return -1;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* The broker's data directory, on a tmpfs of its own when we can mount one. */
static void prepare_data_dir(chaos_t *self)
{
    snprintf(self->data_dir, sizeof self->data_dir, "%s/data", self->dir);
    mkdir(self->data_dir, 0700);
    if (!self->cfg.faults[FAULT_DISK])
        return;
    char opts[64];
    snprintf(opts, sizeof opts, "size=%ldm,mode=0700", self->cfg.tmpfs_mib);
    if (mount("tmpfs", self->data_dir, "tmpfs", 0, opts) == 0) {
        self->tmpfs = true;
        return;
    }
    snprintf(self->tmpfs_error, sizeof self->tmpfs_error,
             "cannot mount a tmpfs on %s (%s; it needs root or CAP_SYS_ADMIN)", self->data_dir,
             strerror(errno));
    printf("\n*** DISK FAULT SKIPPED: %s ***\n\n", self->tmpfs_error);
}

static long count_sql(const char *db_path, const char *sql)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *s = NULL;
    long n = -1;
    if (sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
        sqlite3_prepare_v2(db, sql, -1, &s, NULL) == SQLITE_OK && sqlite3_step(s) == SQLITE_ROW)
        n = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    sqlite3_close(db);
    return n;
}

/* Undoes whatever a fault may have left (the fault thread heals as it ends;
 * this is for an interrupted one). */
static void heal(chaos_t *self)
{
    char filler[400];
    snprintf(filler, sizeof filler, "%s/chaos-filler", self->data_dir);
    unlink(filler);
    if (self->proxy > 0)
        kill(self->proxy, SIGUSR2);
    stack_signal(self->stack, STACK_BROKER, 0, SIGCONT);
    for (int i = 0; i < CHAOS_WORKERS; i++)
        stack_signal(self->stack, STACK_WORKER, i, SIGCONT);
    for (int i = 0; i < CHAOS_GATEWAYS; i++)
        stack_signal(self->stack, STACK_GATEWAY, i, SIGCONT);
}

/* Resumes every paused execution: only the soak's clients pause, and each
 * pause is followed by a resume, but a pause whose answer was lost can still
 * commit after its resume was refused (400, not paused yet). Counted, so the
 * report says how often. */
static void resume_paused(chaos_t *self)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *s = NULL;
    char host[64];
    int port;
    if (hclient_parse_url(stack_gateway_url(self->stack, 0), host, sizeof host, &port) != 0)
        return;
    hclient_t *hc = hclient_new(host, port);
    if (hc && sqlite3_open_v2(stack_db_path(self->stack), &db, SQLITE_OPEN_READONLY, NULL) ==
                  SQLITE_OK &&
        sqlite3_prepare_v2(db, "SELECT id FROM executions WHERE status = 'paused'", -1, &s,
                           NULL) == SQLITE_OK)
        while (sqlite3_step(s) == SQLITE_ROW) {
            char path[160];
            snprintf(path, sizeof path, "/executions/%s/resume",
                     (const char *)sqlite3_column_text(s, 0));
            if (hclient_request(hc, "POST", path, "{}", 5000) == 200) {
                self->resumed_at_settle++;
                printf("[%7.1f s] settle: resumed %s, left paused\n", chaos_now(self),
                       path + 12);
            }
        }
    sqlite3_finalize(s);
    sqlite3_close(db);
    hclient_destroy(&hc);
}

/* Waits until the clients have done every control still due and every
 * execution in the store is terminal. A backlog left by the faults drains at
 * the stack's pace, so the wait goes on as long as executions keep ending;
 * it stops after SETTLE_IDLE_S without one ending (what is open then is
 * stuck), or at the deadline. */
#define SETTLE_IDLE_S 60.0
static void settle(chaos_t *self, double deadline)
{
    const char *db = stack_db_path(self->stack);
    long open = -1, least = -1;
    double next_report = chaos_now(self), next_resume = chaos_now(self) + 10;
    double last_progress = chaos_now(self);
    while (!interrupted && chaos_now(self) < deadline &&
           chaos_now(self) - last_progress < SETTLE_IDLE_S) {
        open = count_sql(db, "SELECT count(*) FROM executions"
                             " WHERE status NOT IN ('completed', 'failed', 'cancelled')");
        if (least < 0 || open < least) {
            least = open;
            last_progress = chaos_now(self);
        }
        pthread_mutex_lock(&self->lock);
        bool clients_done = self->clients_done == CHAOS_GATEWAYS;
        pthread_mutex_unlock(&self->lock);
        if (open == 0 && clients_done)
            break;
        if (clients_done && chaos_now(self) >= next_resume) {
            resume_paused(self);
            next_resume += 10;
        }
        if (chaos_now(self) >= next_report) {
            printf("[%7.1f s] settling: %ld executions not terminal yet\n", chaos_now(self),
                   open);
            fflush(stdout);
            next_report += 10;
        }
        localproc_sleep_ms(500);
    }
}

/* Whether an enabled fault kind never happened (printed). */
static bool missing_kinds(const chaos_t *self)
{
    bool missing = false;
    for (int k = 0; k < FAULT_KINDS; k++) {
        if (!self->cfg.faults[k] || (k == FAULT_DISK && !self->tmpfs))
            continue;
        bool seen = false;
        for (size_t i = 0; i < self->nfaults; i++)
            seen |= self->faults[i].kind == (chaos_fault_kind_t)k;
        if (!seen) {
            printf("chaos: FAILED: no %s fault happened (a longer run or a shorter "
                   "--fault-every)\n",
                   chaos_fault_name(k));
            missing = true;
        }
    }
    return missing;
}

typedef struct {
    long minutes, seconds, seed, rate_x10, fault_every, settle_s, tmpfs_mib;
    bool kill, stop, link, disk, keep, every_kind;
    const char *out_dir, *bin_dir, *log_level, *agent;
} cli_t;

static int parse_cli(int argc, char **argv, cli_t *cli)
{
    syn_flag_t flags[] = {
        {"minutes", SYN_FLAG_INT, "N", "length of the soak", &cli->minutes, 1, 1440},
        {"seconds", SYN_FLAG_INT, "N", "length in seconds instead (the ctest version: 60)",
         &cli->seconds, 0, 86400},
        {"seed", SYN_FLAG_INT, "N", "what to do, in which order (default: from the clock)",
         &cli->seed, 0, LONG_MAX},
        {"rate", SYN_FLAG_INT, "N10", "submits per 10 s over both gateways", &cli->rate_x10, 1,
         10000},
        {"fault-every", SYN_FLAG_INT, "S", "mean seconds between faults", &cli->fault_every, 1,
         3600},
        {"kill", SYN_FLAG_BOOL, NULL, "fault: kill -9 and restart a process (broker included)",
         &cli->kill, 0, 0},
        {"stop", SYN_FLAG_BOOL, NULL,
         "fault: SIGSTOP a worker or the broker past the liveness window, then SIGCONT",
         &cli->stop, 0, 0},
        {"link", SYN_FLAG_BOOL, NULL, "fault: cut the second gateway's link to the broker",
         &cli->link, 0, 0},
        {"disk", SYN_FLAG_BOOL, NULL, "fault: fill the broker's disk (a tmpfs), then free it",
         &cli->disk, 0, 0},
        {"settle-s", SYN_FLAG_INT, "S",
         "after the soak: how long the backlog may take to end (it stops earlier when "
         "nothing ends for 60 s)",
         &cli->settle_s, 10, 3600},
        {"tmpfs-mib", SYN_FLAG_INT, "MIB", "size of the broker's tmpfs", &cli->tmpfs_mib, 16,
         65536},
        {"out", SYN_FLAG_STRING, "DIR", "where the report and the chart go", &cli->out_dir, 0,
         0},
        {"agent", SYN_FLAG_STRING, "PATH", "the command workers' agent script", &cli->agent, 0,
         0},
        {"bin-dir", SYN_FLAG_STRING, "DIR", "where syn-broker etc. are (default: next to me)",
         &cli->bin_dir, 0, 0},
        {"log-level", SYN_FLAG_STRING, "LEVEL", "log level of the stack", &cli->log_level, 0, 0},
        {"require-every-kind", SYN_FLAG_BOOL, NULL,
         "fail unless each enabled fault kind happened (a disk fault without a tmpfs is "
         "skipped, loudly)",
         &cli->every_kind, 0, 0},
        {"keep", SYN_FLAG_BOOL, NULL, "keep the temp dir (logs, database) even when it passed",
         &cli->keep, 0, 0},
        {NULL, 0, NULL, NULL, NULL, 0, 0},
    };
    syn_flags_result_t r = syn_flags_parse(
        "synchaos",
        "Fault-injection soak with an exactly-once checker (issue 23). Without --kill, --stop, "
        "--link or --disk every fault kind is on.",
        flags, argc, argv);
    return r == SYN_FLAGS_OK ? 0 : r == SYN_FLAGS_EXIT ? 1 : -1;
}

static int setup(chaos_t *self, const char *agent)
{
    const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    snprintf(self->dir, sizeof self->dir, "%s/synchaos-XXXXXX", tmp);
    if (!mkdtemp(self->dir)) {
        fprintf(stderr, "chaos: mkdtemp: %s\n", strerror(errno));
        return -1;
    }
    prepare_data_dir(self);
    snprintf(self->records, sizeof self->records, "%s/agents.log", self->dir);
    setenv("SYN_CHAOS_RECORDS", self->records, 1);
    setenv("SYN_CHAOS_DIR", self->dir, 1);
    self->base_port = pick_base_port();
    if (self->base_port < 0) {
        fprintf(stderr, "chaos: no free ports below the ephemeral range\n");
        return -1;
    }
    /* base+0..2 the broker, +3 +4 the gateways, +5 +6 the proxy. */
    int listen[2] = {self->base_port + 5, self->base_port + 6};
    int target[2] = {self->base_port, self->base_port + 2};
    char proxy_log[320];
    snprintf(proxy_log, sizeof proxy_log, "%s/proxy.log", self->dir);
    self->proxy = chaos_proxy_start(listen, target, 2, proxy_log);
    if (self->proxy < 0)
        return -1;
    /* The stack keeps these pointers for restarts: they live in self. */
    snprintf(self->via_broker, sizeof self->via_broker, "tcp://127.0.0.1:%d", listen[0]);
    snprintf(self->via_events, sizeof self->via_events, "tcp://127.0.0.1:%d", listen[1]);
    snprintf(self->command, sizeof self->command, "sh %s", agent);
    synstack_options_t opts = {
        .bin_dir = self->cfg.bin_dir,
        .workers = CHAOS_WORKERS,
        .slots = 4,
        .mock_delay_ms = 20,
        .log_level = self->cfg.log_level,
        .keep = true, /* the logs of a stack that does not come up */
        .gateways = CHAOS_GATEWAYS,
        .command_workers = CHAOS_WORKERS / 2,
        .command = self->command,
        .data_dir = self->data_dir,
        .base_port = self->base_port,
        .last_gateway_broker = self->via_broker,
        .last_gateway_events = self->via_events,
    };
    self->stack = stack_start(&opts, 30000);
    if (!self->stack)
        return -1;
    if (stack_wait_health(stack_gateway_url(self->stack, 1), CHAOS_WORKERS, 30000) != 0) {
        fprintf(stderr, "chaos: the second gateway (through the proxy) is not healthy\n");
        return -1;
    }
    return chaos_register_workflows(self);
}

static void teardown(chaos_t *self, bool keep)
{
    if (self->stack) {
        stack_set_keep(self->stack, keep);
        stack_destroy(&self->stack);
    }
    if (self->proxy > 0) {
        kill(self->proxy, SIGKILL);
        waitpid(self->proxy, NULL, 0);
    }
    /* The database lives on the tmpfs: copied out before it goes. */
    char cmd[700];
    snprintf(cmd, sizeof cmd, "cp -a '%s' '%s/data-copy'", self->data_dir, self->dir);
    if (keep && self->tmpfs && system(cmd) != 0)
        fprintf(stderr, "chaos: could not copy the database out of %s\n", self->data_dir);
    if (self->tmpfs && umount(self->data_dir) != 0)
        fprintf(stderr, "chaos: umount %s: %s\n", self->data_dir, strerror(errno));
    if (keep)
        printf("kept: %s (logs, agents.log, %s/syn.db)\n", self->dir,
               self->tmpfs ? "data-copy" : "data");
    else if (self->dir[0])
        nftw(self->dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

int main(int argc, char **argv)
{
    cli_t cli = {.minutes = 10, .seed = -1, .rate_x10 = 20, .fault_every = 20,
                 .settle_s = 900, .tmpfs_mib = 128, .out_dir = "bench/results",
                 .log_level = "info", .agent = CHAOS_AGENT};
    int parsed = parse_cli(argc, argv, &cli);
    if (parsed != 0)
        return parsed > 0 ? 0 : 2;
    static chaos_t chaos;
    chaos_t *self = &chaos;
    bool any = cli.kill || cli.stop || cli.link || cli.disk;
    self->cfg = (chaos_config_t){
        .minutes = cli.minutes,
        .seconds = cli.seconds,
        .seed = cli.seed >= 0 ? (uint64_t)cli.seed : (uint64_t)time(NULL) % 1000000,
        .rate = cli.rate_x10 / 10.0,
        .fault_every = (double)cli.fault_every,
        .faults = {!any || cli.kill, !any || cli.stop, !any || cli.link, !any || cli.disk},
        .settle_s = cli.settle_s,
        .tmpfs_mib = cli.tmpfs_mib,
        .out_dir = cli.out_dir,
        .bin_dir = cli.bin_dir,
        .log_level = cli.log_level,
        .keep = cli.keep,
    };
    char self_bin[PATH_MAX];
    if (!self->cfg.bin_dir) {
        if (self_dir(self_bin, sizeof self_bin) != 0)
            return 2;
        self->cfg.bin_dir = self_bin;
    }
    pthread_mutex_init(&self->lock, NULL);
    self->interrupted = &interrupted;
    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    setvbuf(stdout, NULL, _IOLBF, 0);

    double length = cli.seconds > 0 ? (double)cli.seconds : cli.minutes * 60.0;
    printf("chaos: seed %llu (reproduce with --seed %llu); %.0f s, %.1f submits/s, a fault every "
           "%.0f s on average; faults:%s%s%s%s\n",
           (unsigned long long)self->cfg.seed, (unsigned long long)self->cfg.seed, length,
           self->cfg.rate, self->cfg.fault_every, self->cfg.faults[FAULT_KILL] ? " kill" : "",
           self->cfg.faults[FAULT_STOP] ? " stop" : "", self->cfg.faults[FAULT_LINK] ? " link" : "",
           self->cfg.faults[FAULT_DISK] ? " disk" : "");
    if (setup(self, cli.agent) != 0) {
        fprintf(stderr, "chaos: setup failed\n");
        teardown(self, true);
        return 2;
    }
    printf("chaos: stack up in %s, ports %d-%d (gateway2 through the proxy)\n", self->dir,
           self->base_port, self->base_port + CHAOS_PORTS - 1);

    self->t0 = mono_s();
    struct timespec wall;
    clock_gettime(CLOCK_REALTIME, &wall);
    self->t0_wall_us = (int64_t)wall.tv_sec * 1000000 + wall.tv_nsec / 1000;
    pthread_t clients[CHAOS_GATEWAYS], faults;
    chaos_client_arg_t args[CHAOS_GATEWAYS];
    for (int g = 0; g < CHAOS_GATEWAYS; g++) {
        args[g] = (chaos_client_arg_t){self, g};
        pthread_create(&clients[g], NULL, chaos_client_main, &args[g]);
    }
    pthread_create(&faults, NULL, chaos_faults_main, self);
    double next_report = 30;
    while (!interrupted && chaos_now(self) < length) {
        localproc_sleep_ms(200);
        if (chaos_now(self) >= next_report) {
            pthread_mutex_lock(&self->lock);
            printf("[%7.1f s] %zu submits, %zu faults so far\n", chaos_now(self), self->nsubs,
                   self->nfaults);
            pthread_mutex_unlock(&self->lock);
            next_report += 30;
        }
    }
    self->stop_submits = 1;
    self->stop_faults = 1;
    /* The fault thread ends its fault (up to a few seconds), then watches. */
    while (self->stop_faults && !interrupted) {
        pthread_mutex_lock(&self->lock);
        bool busy = self->nfaults && self->faults[self->nfaults - 1].until == 0;
        pthread_mutex_unlock(&self->lock);
        if (!busy)
            break;
        localproc_sleep_ms(50);
    }
    heal(self);
    printf("[%7.1f s] soak over, faults healed; settling (up to %ld s)\n", chaos_now(self),
           cli.settle_s);
    double deadline = chaos_now(self) + (double)cli.settle_s;
    /* The clients' remaining controls first (a resume may be due), then the
     * store until nothing is open. */
    settle(self, deadline);
    self->settle_s = chaos_now(self) - (deadline - (double)cli.settle_s);
    self->stop_clients = 1;
    for (int g = 0; g < CHAOS_GATEWAYS; g++)
        pthread_join(clients[g], NULL);
    self->stop_watch = 1;
    pthread_join(faults, NULL);

    chaos_findings_t findings;
    char err[256];
    int rc = 0;
    if (chaos_check(self, &findings, err, sizeof err) != 0) {
        fprintf(stderr, "chaos: check failed: %s\n", err);
        rc = 2;
    } else {
        chaos_report(self, &findings);
        rc = chaos_findings_fail(&findings, self->unexpected_exits) ? 1 : 0;
        if (cli.every_kind && missing_kinds(self))
            rc = 1;
        free(findings.end_t);
    }
    if (interrupted) {
        printf("chaos: interrupted\n");
        rc = rc ? rc : 1;
    }
    teardown(self, rc != 0 || cli.keep);
    free(self->subs);
    free(self->faults);
    return rc;
}
