/* faults: the soak's fault thread. At random moments (uniform in 0.5–1.5 × the
 * mean gap) it does one fault of an enabled kind — the first round goes through
 * every enabled kind once, in a seeded order, so even a short run meets each —
 * and logs it with its time:
 *   kill  kill -9 of one process (the broker one time in three, else a gateway or
 *         a worker), started again 0.2–3 s later;
 *   stop  SIGSTOP of a worker or the broker for longer than the liveness window
 *         (heartbeat 1 s × liveness 3), then SIGCONT;
 *   link  the proxy between the second gateway and the broker cuts every
 *         connection and refuses new ones for 2–6 s;
 *   disk  the broker's data directory (a tmpfs) filled up for 3–6 s, then freed;
 *         a submit made meanwhile gets 503 "storage full" (or 200 while SQLite
 *         still finds room in its WAL), and the broker must live on: an exit is
 *         a process that died without a fault.
 * Only this thread starts, stops and reaps the stack's processes during the soak,
 * so it is also the one that notices a process that died without being killed. */
#include "bench/chaos/chaos.h"
#include "bench/synload/hclient.h"
#include "bench/synload/localproc.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define LIVENESS_WINDOW_S 3.0 /* the broker's and workers' defaults: 1 s × 3 */

enum { R_KIND = 101, R_TARGET, R_LENGTH, R_GAP, R_ORDER };

const char *chaos_fault_name(chaos_fault_kind_t kind)
{
    static const char *const names[] = {"kill", "stop", "link", "disk"};
    return kind < FAULT_KINDS ? names[kind] : "?";
}

size_t chaos_log_fault(chaos_t *self, chaos_fault_kind_t kind, const char *target, double until,
                       const char *fmt, ...)
{
    chaos_fault_t f = {.t = chaos_now(self), .until = until, .kind = kind};
    snprintf(f.target, sizeof f.target, "%s", target);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(f.note, sizeof f.note, fmt, ap);
    va_end(ap);
    pthread_mutex_lock(&self->lock);
    size_t index = self->nfaults;
    if (self->nfaults == self->capfaults) {
        size_t cap = self->capfaults ? self->capfaults * 2 : 64;
        chaos_fault_t *grown = realloc(self->faults, cap * sizeof *grown);
        if (grown) {
            self->faults = grown;
            self->capfaults = cap;
        }
    }
    if (self->nfaults < self->capfaults)
        self->faults[self->nfaults++] = f;
    pthread_mutex_unlock(&self->lock);
    printf("[%7.1f s] %-4s %-9s %s\n", f.t, chaos_fault_name(kind), target, f.note);
    fflush(stdout);
    return index;
}

/* The fault's end time, once known. */
static void fault_ends(chaos_t *self, size_t index, double until)
{
    pthread_mutex_lock(&self->lock);
    if (index < self->nfaults)
        self->faults[index].until = until;
    pthread_mutex_unlock(&self->lock);
}

typedef struct {
    stack_role_t role;
    int index;
    char name[24];
} target_t;

static target_t target_of(stack_role_t role, int index)
{
    target_t t = {role, index, ""};
    if (role == STACK_BROKER)
        snprintf(t.name, sizeof t.name, "broker");
    else
        snprintf(t.name, sizeof t.name, "%s%d", role == STACK_GATEWAY ? "gateway" : "worker",
                 index + 1);
    return t;
}

/* Sleeps up to seconds, in short steps, returning early when the soak is
 * interrupted. */
static void nap(chaos_t *self, double seconds)
{
    double end = chaos_now(self) + seconds;
    while (!*self->interrupted && chaos_now(self) < end)
        localproc_sleep_ms(20);
}

/* How many lines of the broker's log (every broker of the run: it is appended
 * to) hold text. */
int chaos_broker_log_count(const chaos_t *self, const char *text)
{
    char path[PATH_MAX + 64], line[4096];
    snprintf(path, sizeof path, "%s/broker.log", stack_dir(self->stack));
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    int count = 0;
    while (fgets(line, sizeof line, f))
        count += strstr(line, text) != NULL;
    fclose(f);
    return count;
}

void chaos_faults_check_alive(chaos_t *self)
{
    const stack_role_t roles[] = {STACK_BROKER, STACK_GATEWAY, STACK_WORKER};
    const int counts[] = {1, CHAOS_GATEWAYS, CHAOS_WORKERS};
    for (int r = 0; r < 3; r++)
        for (int i = 0; i < counts[r]; i++) {
            pid_t pid = stack_pid(self->stack, roles[r], i);
            int status;
            if (pid <= 0 || waitpid(pid, &status, WNOHANG) != pid)
                continue;
            target_t t = target_of(roles[r], i);
            char how[64];
            if (WIFSIGNALED(status))
                snprintf(how, sizeof how, "killed by signal %d", WTERMSIG(status));
            else
                snprintf(how, sizeof how, "exit code %d", WEXITSTATUS(status));
            pthread_mutex_lock(&self->lock);
            self->unexpected_exits++;
            size_t len = strlen(self->unexpected);
            snprintf(self->unexpected + len, sizeof self->unexpected - len, "%s%s at %.1f s (%s)",
                     len ? "; " : "", t.name, chaos_now(self), how);
            pthread_mutex_unlock(&self->lock);
            printf("[%7.1f s] UNEXPECTED: %s exited by itself (%s); restarting it\n",
                   chaos_now(self), t.name, how);
            fflush(stdout);
            stack_restart(self->stack, roles[r], i);
        }
}

static target_t pick_kill_target(chaos_t *self, uint64_t r)
{
    double x = chaos_uniform(r, 0, 1);
    if (x < 1.0 / 3)
        return target_of(STACK_BROKER, 0);
    int others = CHAOS_GATEWAYS + CHAOS_WORKERS;
    int k = (int)chaos_uniform(chaos_rand(self->cfg.seed, R_TARGET, r), 0, others);
    return k < CHAOS_GATEWAYS ? target_of(STACK_GATEWAY, k)
                              : target_of(STACK_WORKER, k - CHAOS_GATEWAYS);
}

/* The first kill hits the broker, so even a short run restarts it once. */
static void fault_kill(chaos_t *self, uint64_t n)
{
    target_t t = self->kills++ == 0 ? target_of(STACK_BROKER, 0)
                              : pick_kill_target(self, chaos_rand(self->cfg.seed, R_TARGET, n));
    double down = chaos_uniform(chaos_rand(self->cfg.seed, R_LENGTH, n), 0.2, 3.0);
    pid_t pid = stack_pid(self->stack, t.role, t.index);
    size_t f = chaos_log_fault(self, FAULT_KILL, t.name, 0, "kill -9 pid %d, down %.1f s",
                               (int)pid, down);
    stack_signal(self->stack, t.role, t.index, SIGKILL);
    nap(self, down);
    if (stack_restart(self->stack, t.role, t.index) != 0)
        printf("chaos: could not restart %s\n", t.name);
    fault_ends(self, f, chaos_now(self));
}

static void fault_stop(chaos_t *self, uint64_t n)
{
    uint64_t r = chaos_rand(self->cfg.seed, R_TARGET, n);
    target_t t = chaos_uniform(r, 0, 1) < 1.0 / 3
                     ? target_of(STACK_BROKER, 0)
                     : target_of(STACK_WORKER, (int)chaos_uniform(chaos_rand(self->cfg.seed,
                                                                               R_TARGET, r),
                                                                   0, CHAOS_WORKERS));
    double length = LIVENESS_WINDOW_S +
                    chaos_uniform(chaos_rand(self->cfg.seed, R_LENGTH, n), 1.0, 3.0);
    size_t f = chaos_log_fault(self, FAULT_STOP, t.name, 0, "SIGSTOP for %.1f s, then SIGCONT",
                               length);
    stack_signal(self->stack, t.role, t.index, SIGSTOP);
    nap(self, length);
    stack_signal(self->stack, t.role, t.index, SIGCONT);
    fault_ends(self, f, chaos_now(self));
}

static void fault_link(chaos_t *self, uint64_t n)
{
    double length = chaos_uniform(chaos_rand(self->cfg.seed, R_LENGTH, n), 2.0, 6.0);
    size_t f = chaos_log_fault(self, FAULT_LINK, "gateway2", 0,
                               "link to the broker cut (proxy drops and refuses) for %.1f s",
                               length);
    kill(self->proxy, SIGUSR1);
    nap(self, length);
    kill(self->proxy, SIGUSR2);
    fault_ends(self, f, chaos_now(self));
}

/* One submit through the first gateway while the disk is full: its status. */
static int probe_submit(chaos_t *self, char *body, size_t bodysize)
{
    char host[64];
    int port;
    if (hclient_parse_url(stack_gateway_url(self->stack, 0), host, sizeof host, &port) != 0)
        return -1;
    hclient_t *hc = hclient_new(host, port);
    if (!hc)
        return -1;
    int status = hclient_request(hc, "POST", "/workflows/chaos-chain/execute",
                                 "{\"task\":\"chaos-disk-probe\",\"inputs\":{\"s1\":\"0\","
                                 "\"s2\":\"0\",\"s3\":\"0\",\"f\":\"0\"}}",
                                 5000);
    snprintf(body, bodysize, "%s", status > 0 ? hclient_body(hc, NULL) : hclient_error(hc));
    body[strcspn(body, "\r\n")] = '\0';
    hclient_destroy(&hc);
    return status;
}

static void fault_disk(chaos_t *self, uint64_t n)
{
    double length = chaos_uniform(chaos_rand(self->cfg.seed, R_LENGTH, n), 3.0, 6.0);
    char filler[400];
    snprintf(filler, sizeof filler, "%s/chaos-filler", self->data_dir);
    double start = chaos_now(self);
    if (localproc_fill_disk(filler) != 0) {
        chaos_log_fault(self, FAULT_DISK, "disk", start, "cannot fill %s: %s", filler,
                        strerror(errno));
        return;
    }
    /* Let the broker's next write meet the full disk before asking it. */
    nap(self, 0.5);
    pid_t before = stack_pid(self->stack, STACK_BROKER, 0);
    char body[128];
    int status = probe_submit(self, body, sizeof body);
    size_t f = chaos_log_fault(self, FAULT_DISK, "disk", 0,
                               "data dir full for %.1f s; a submit meanwhile: %d %.80s", length,
                               status, body);
    /* The broker stays up (broker/storage_full.h): an exit meanwhile is a
     * process that died without a fault. */
    for (double end = start + length; !*self->interrupted && chaos_now(self) < end;) {
        chaos_faults_check_alive(self);
        nap(self, 1.0 < end - chaos_now(self) ? 1.0 : end - chaos_now(self));
    }
    unlink(filler);
    if (stack_pid(self->stack, STACK_BROKER, 0) != before)
        printf("[%7.1f s] UNEXPECTED: the broker was restarted during the disk fault\n",
               chaos_now(self));
    fault_ends(self, f, chaos_now(self));
}

/* The kinds in the order the faults come: first each enabled kind once (seeded
 * shuffle), then a seeded random enabled kind each time. */
static int next_kind(chaos_t *self, uint64_t n)
{
    int enabled[FAULT_KINDS], k = 0;
    for (int i = 0; i < FAULT_KINDS; i++)
        if (self->cfg.faults[i] && (i != FAULT_DISK || self->tmpfs))
            enabled[k++] = i;
    if (!k)
        return -1;
    if (n < (uint64_t)k) {
        for (int i = k - 1; i > 0; i--) {
            int j = (int)chaos_uniform(chaos_rand(self->cfg.seed, R_ORDER, (uint64_t)i), 0,
                                       i + 1);
            int tmp = enabled[i];
            enabled[i] = enabled[j];
            enabled[j] = tmp;
        }
        return enabled[n];
    }
    return enabled[(int)chaos_uniform(chaos_rand(self->cfg.seed, R_KIND, n), 0, k)];
}

void *chaos_faults_main(void *arg)
{
    chaos_t *self = arg;
    void (*const run[FAULT_KINDS])(chaos_t *, uint64_t) = {fault_kill, fault_stop, fault_link,
                                                            fault_disk};
    for (uint64_t n = 0; !self->stop_faults && !*self->interrupted; n++) {
        double gap = self->cfg.fault_every *
                     chaos_uniform(chaos_rand(self->cfg.seed, R_GAP, n), 0.5, 1.5);
        double until = chaos_now(self) + gap;
        while (!self->stop_faults && !*self->interrupted && chaos_now(self) < until) {
            chaos_faults_check_alive(self);
            localproc_sleep_ms(50);
        }
        int kind = next_kind(self, n);
        if (kind < 0 || self->stop_faults || *self->interrupted)
            break;
        run[kind](self, n);
        chaos_faults_check_alive(self);
    }
    /* Every fault healed itself as it ended; now only restart what dies. */
    while (!self->stop_watch && !*self->interrupted) {
        chaos_faults_check_alive(self);
        localproc_sleep_ms(100);
    }
    return NULL;
}
