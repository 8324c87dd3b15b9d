#include "cli/supervisor.h"
#include "common/clock.h"
#include "common/log.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_CHILDREN 64
#define MAX_ARGS 32
#define BACKOFF_MIN_MS 500
#define BACKOFF_MAX_MS 30000
/* A child that stayed up this long is healthy again: its back-off resets. */
#define HEALTHY_AFTER_MS 10000

typedef struct {
    char *label;
    char *argv[MAX_ARGS + 1];
    pid_t pid;
    int64_t started_ms;
    int64_t restart_at_ms; /* 0: not waiting to restart */
    int backoff_ms;
} child_t;

struct supervisor_t {
    child_t children[MAX_CHILDREN];
    int count;
};

supervisor_t *supervisor_new(void) { return calloc(1, sizeof(supervisor_t)); }

void supervisor_destroy(supervisor_t **self_p)
{
    supervisor_t *self = *self_p;
    if (!self)
        return;
    for (int i = 0; i < self->count; i++) {
        free(self->children[i].label);
        for (char **a = self->children[i].argv; *a; a++)
            free(*a);
    }
    free(self);
    *self_p = NULL;
}

int supervisor_add(supervisor_t *self, const char *label, char *const argv[])
{
    if (self->count >= MAX_CHILDREN)
        return -1;
    child_t *c = &self->children[self->count];
    memset(c, 0, sizeof *c);
    c->label = strdup(label);
    for (int i = 0; argv[i]; i++) {
        if (i >= MAX_ARGS)
            return -1;
        c->argv[i] = strdup(argv[i]);
    }
    c->backoff_ms = BACKOFF_MIN_MS;
    self->count++;
    return 0;
}

static void start_child(child_t *c)
{
    pid_t pid = fork();
    if (pid < 0) {
        syn_error("syn", "cannot start %s: %s", c->label, strerror(errno));
        c->restart_at_ms = syn_mono_ms() + c->backoff_ms;
        return;
    }
    if (pid == 0) {
        /* A group of its own keeps the terminal's Ctrl-C away from the child: the
         * supervisor decides when and in which order children stop. If the
         * supervisor itself dies, the child is told to stop rather than orphaned. */
        setpgid(0, 0);
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() == 1)
            _exit(1);
        execv(c->argv[0], c->argv);
        syn_error("syn", "cannot run %s: %s", c->argv[0], strerror(errno));
        _exit(127);
    }
    c->pid = pid;
    c->started_ms = syn_mono_ms();
    c->restart_at_ms = 0;
    syn_info("syn", "started %s pid=%d", c->label, (int)pid);
}

static child_t *find_child(supervisor_t *self, pid_t pid)
{
    for (int i = 0; i < self->count; i++)
        if (self->children[i].pid == pid)
            return &self->children[i];
    return NULL;
}

/* Reaps exited children and schedules their restart with a doubling back-off. */
static void reap(supervisor_t *self, bool restart)
{
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        child_t *c = find_child(self, pid);
        if (!c)
            continue;
        c->pid = 0;
        if (!restart)
            continue;
        int64_t now = syn_mono_ms();
        if (now - c->started_ms > HEALTHY_AFTER_MS)
            c->backoff_ms = BACKOFF_MIN_MS;
        if (WIFSIGNALED(status))
            syn_warn("syn", "%s died signal=%d restart_in_ms=%d", c->label, WTERMSIG(status),
                     c->backoff_ms);
        else
            syn_warn("syn", "%s exited code=%d restart_in_ms=%d", c->label, WEXITSTATUS(status),
                     c->backoff_ms);
        c->restart_at_ms = now + c->backoff_ms;
        c->backoff_ms = c->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : c->backoff_ms * 2;
    }
}

static int running_count(supervisor_t *self)
{
    int n = 0;
    for (int i = 0; i < self->count; i++)
        n += self->children[i].pid > 0;
    return n;
}

static void signal_all(supervisor_t *self, int sig)
{
    for (int i = 0; i < self->count; i++)
        if (self->children[i].pid > 0)
            kill(self->children[i].pid, sig);
}

int supervisor_run(supervisor_t *self, volatile sig_atomic_t *stop, int grace_ms)
{
    for (int i = 0; i < self->count; i++)
        start_child(&self->children[i]);
    while (!*stop) {
        reap(self, true);
        int64_t now = syn_mono_ms();
        for (int i = 0; i < self->count; i++) {
            child_t *c = &self->children[i];
            if (c->pid == 0 && c->restart_at_ms && now >= c->restart_at_ms && !*stop)
                start_child(c);
        }
        usleep(50 * 1000);
    }
    syn_info("syn", "stopping %d processes", running_count(self));
    signal_all(self, SIGTERM);
    int64_t deadline = syn_mono_ms() + grace_ms;
    while (running_count(self) > 0 && syn_mono_ms() < deadline) {
        reap(self, false);
        usleep(20 * 1000);
    }
    int clean = running_count(self) == 0;
    if (!clean) {
        syn_warn("syn", "killing %d processes that did not stop in %d ms", running_count(self),
                 grace_ms);
        signal_all(self, SIGKILL);
        while (running_count(self) > 0) {
            usleep(10 * 1000);
            reap(self, false);
        }
    }
    syn_info("syn", "stopped");
    return clean ? 0 : -1;
}
