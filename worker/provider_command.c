/* provider_command: runs an agent as a child process. One process group per
 * attempt so a timeout or cancel reaches everything the agent started; pipes are
 * non-blocking and served by the worker's poll loop, so a large prompt and a
 * chatty child can never deadlock each other; a pidfd tells when the child exits
 * (with a short waitid poll where the kernel has no pidfd). */
#include "worker/provider.h"
#include "worker/argv.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/clock.h"

extern char **environ;

/* How often to check for the child's exit when there is no pidfd, and for the
 * death of what it left in its group after it exited. */
#define EXIT_CHECK_MS 20
/* After the child exits, how long to wait for its pipes to reach end of file (a
 * process outside its group may still hold them) before finishing anyway. */
#define PIPE_DRAIN_MS 1000
/* Bytes read per pipe per step, so one chatty child cannot starve the loop. */
#define READ_CHUNK 65536
#define READS_PER_STEP 16

typedef struct {
    char **argv;
    int64_t kill_grace_ms;
} command_config_t;

typedef struct {
    pid_t pid;            /* > 0 until reaped */
    pid_t pgid;           /* the group the child leads (its pid) */
    bool group_reaped;    /* no child of ours is left in the group */
    int in_fd, out_fd, err_fd, pid_fd; /* -1 once closed */
    char *prompt;
    size_t prompt_len, prompt_off;
    char tail[WORKER_STDERR_TAIL];
    size_t tail_len;
    bool tail_cut;        /* older stderr was dropped */
    bool exited;
    bool status_known;
    int wait_status;
    bool timed_out, cancelled;
    int64_t timeout_ms, grace_ms;
    int64_t timeout_at, kill_at, drain_until, next_check; /* -1 = not set */
} command_run_t;

static void close_fd(int *fd)
{
    if (*fd >= 0) {
        close(*fd);
        *fd = -1;
    }
}

/* Writes without letting SIGPIPE kill the worker: the signal is blocked for the
 * write and a SIGPIPE it raised is consumed, so a child that closes its stdin
 * early only gives EPIPE, whatever the process's SIGPIPE disposition. */
static ssize_t write_quietly(int fd, const void *buf, size_t len)
{
    sigset_t pipe_only, old, pending;
    sigemptyset(&pipe_only);
    sigaddset(&pipe_only, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_only, &old);
    sigpending(&pending);
    int was_pending = sigismember(&pending, SIGPIPE);
    ssize_t n = write(fd, buf, len);
    int saved = errno;
    if (n < 0 && saved == EPIPE && !was_pending) {
        struct timespec zero = {0, 0};
        while (sigtimedwait(&pipe_only, NULL, &zero) < 0 && errno == EINTR)
            ;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    errno = saved;
    return n;
}

static const char *const job_vars[] = {"SYN_EXECUTION_ID", "SYN_WORKFLOW_ID", "SYN_PHASE_ID",
                                       "SYN_ATTEMPT", "SYN_MODEL"};
#define JOB_VARS (sizeof job_vars / sizeof job_vars[0])

static bool is_job_var(const char *entry)
{
    for (size_t i = 0; i < JOB_VARS; i++) {
        size_t n = strlen(job_vars[i]);
        if (strncmp(entry, job_vars[i], n) == 0 && entry[n] == '=')
            return true;
    }
    return false;
}

/* The worker's environment with the job's SYN_* variables replacing any
 * inherited ones. The last JOB_VARS entries are malloc'd (see free_env). */
static char **build_env(const worker_job_t *job)
{
    size_t count = 0;
    for (char **e = environ; e && *e; e++)
        count++;
    char **env = calloc(count + JOB_VARS + 1, sizeof(char *));
    if (!env)
        return NULL;
    size_t n = 0;
    for (char **e = environ; e && *e; e++)
        if (!is_job_var(*e))
            env[n++] = *e;
    char attempt[32];
    snprintf(attempt, sizeof attempt, "%llu", (unsigned long long)job->attempt);
    const char *values[JOB_VARS] = {job->execution_id, job->workflow_id, job->phase_id, attempt,
                                    job->model ? job->model : ""};
    for (size_t i = 0; i < JOB_VARS; i++) {
        if (asprintf(&env[n], "%s=%s", job_vars[i], values[i]) < 0) {
            for (size_t j = n - i; j < n; j++)
                free(env[j]);
            free(env);
            return NULL;
        }
        n++;
    }
    env[n] = NULL;
    return env;
}

static void free_env(char **env)
{
    if (!env)
        return;
    size_t n = 0;
    while (env[n])
        n++;
    for (size_t i = n - JOB_VARS; i < n; i++)
        free(env[i]);
    free(env);
}

static int set_nonblocking(int fd)
{
    int flags = fcntl(fd, F_GETFL);
    return flags < 0 ? -1 : fcntl(fd, F_SETFL, flags | O_NONBLOCK);
}

/* Spawns the child in a new process group with the pipes as its stdio; its
 * signal mask is emptied and the signals the worker may ignore are reset, so
 * the agent behaves as if started from a shell. Returns posix_spawn's error. */
static int spawn_child(command_run_t *self, char **argv, char **env, const char *cwd,
                       int in_r, int out_w, int err_w)
{
    posix_spawn_file_actions_t actions;
    posix_spawnattr_t attr;
    posix_spawn_file_actions_init(&actions);
    posix_spawnattr_init(&attr);
    posix_spawn_file_actions_adddup2(&actions, in_r, STDIN_FILENO);
    posix_spawn_file_actions_adddup2(&actions, out_w, STDOUT_FILENO);
    posix_spawn_file_actions_adddup2(&actions, err_w, STDERR_FILENO);
    if (cwd)
        posix_spawn_file_actions_addchdir_np(&actions, cwd);
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 34))
    /* Our own descriptors are close-on-exec; this also keeps from the agent any
     * that whoever started the worker leaked to it. */
    posix_spawn_file_actions_addclosefrom_np(&actions, STDERR_FILENO + 1);
#endif
    sigset_t none, defaults;
    sigemptyset(&none);
    sigemptyset(&defaults);
    int reset[] = {SIGPIPE, SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGCHLD, SIGUSR1, SIGUSR2};
    for (size_t i = 0; i < sizeof reset / sizeof reset[0]; i++)
        sigaddset(&defaults, reset[i]);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
                                        POSIX_SPAWN_SETSIGDEF);
    posix_spawnattr_setpgroup(&attr, 0);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &defaults);
    int rc = posix_spawnp(&self->pid, argv[0], &actions, &attr, argv, env);
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
    if (rc != 0)
        self->pid = -1;
    return rc;
}

static void *command_start(void *config, worker_run_t *run, const worker_job_t *job, char *err,
                           size_t errlen)
{
    const command_config_t *cfg = config;
    command_run_t *self = calloc(1, sizeof *self);
    if (!self) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    self->pid = -1;
    self->in_fd = self->out_fd = self->err_fd = self->pid_fd = -1;
    self->timeout_at = self->kill_at = self->drain_until = self->next_check = -1;
    self->timeout_ms = job->timeout_ms;
    self->grace_ms = cfg->kill_grace_ms;
    self->prompt_len = strlen(job->prompt);
    self->prompt = strdup(job->prompt);
    char **env = build_env(job);
    int in[2] = {-1, -1}, out[2] = {-1, -1}, errp[2] = {-1, -1};
    if (!self->prompt || !env) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0 || pipe2(errp, O_CLOEXEC) != 0) {
        snprintf(err, errlen, "cannot make pipes: %s", strerror(errno));
        goto fail;
    }
    int rc = spawn_child(self, cfg->argv, env, job->cwd, in[0], out[1], errp[1]);
    free_env(env);
    env = NULL;
    close_fd(&in[0]);
    close_fd(&out[1]);
    close_fd(&errp[1]);
    self->pgid = self->pid;
    if (rc != 0) {
        char reason[512];
        snprintf(reason, sizeof reason, "cannot run %s: %s", cfg->argv[0], strerror(rc));
        close_fd(&in[1]);
        close_fd(&out[0]);
        close_fd(&errp[0]);
        worker_run_finish(run, WORKER_RUN_FAILED, reason, false, 0);
        return self;
    }
    self->in_fd = in[1];
    self->out_fd = out[0];
    self->err_fd = errp[0];
    set_nonblocking(self->in_fd);
    set_nonblocking(self->out_fd);
    set_nonblocking(self->err_fd);
    if (self->prompt_len == 0)
        close_fd(&self->in_fd);
    int64_t now = syn_mono_ms();
#ifdef SYS_pidfd_open
    self->pid_fd = (int)syscall(SYS_pidfd_open, self->pid, 0);
    if (self->pid_fd >= 0)
        fcntl(self->pid_fd, F_SETFD, FD_CLOEXEC);
#endif
    if (self->pid_fd < 0)
        self->next_check = now + EXIT_CHECK_MS;
    if (job->timeout_ms > 0)
        self->timeout_at = now + job->timeout_ms;
    return self;
fail:
    free_env(env);
    for (int i = 0; i < 2; i++) {
        close_fd(&in[i]);
        close_fd(&out[i]);
        close_fd(&errp[i]);
    }
    free(self->prompt);
    free(self);
    return NULL;
}

static int command_pollfds(void *state, struct pollfd *fds, int max)
{
    command_run_t *self = state;
    int n = 0;
    if (self->in_fd >= 0 && n < max)
        fds[n++] = (struct pollfd){.fd = self->in_fd, .events = POLLOUT};
    if (self->out_fd >= 0 && n < max)
        fds[n++] = (struct pollfd){.fd = self->out_fd, .events = POLLIN};
    if (self->err_fd >= 0 && n < max)
        fds[n++] = (struct pollfd){.fd = self->err_fd, .events = POLLIN};
    if (self->pid_fd >= 0 && !self->exited && n < max)
        fds[n++] = (struct pollfd){.fd = self->pid_fd, .events = POLLIN};
    return n;
}

static void consider(int64_t *best, int64_t when)
{
    if (when >= 0 && (*best < 0 || when < *best))
        *best = when;
}

static int64_t command_deadline(void *state)
{
    command_run_t *self = state;
    int64_t best = -1;
    if (self->exited) {
        consider(&best, self->drain_until);
        if (!self->group_reaped)
            consider(&best, self->next_check);
    } else {
        consider(&best, self->timeout_at);
        consider(&best, self->kill_at);
        consider(&best, self->next_check);
    }
    return best;
}

static short revents_of(const struct pollfd *fds, int nfds, int fd)
{
    for (int i = 0; i < nfds; i++)
        if (fds[i].fd == fd)
            return fds[i].revents;
    return 0;
}

static void feed_stdin(command_run_t *self)
{
    while (self->in_fd >= 0 && self->prompt_off < self->prompt_len) {
        size_t left = self->prompt_len - self->prompt_off;
        ssize_t n = write_quietly(self->in_fd, self->prompt + self->prompt_off,
                                  left < READ_CHUNK ? left : READ_CHUNK);
        if (n > 0)
            self->prompt_off += (size_t)n;
        else if (n < 0 && errno == EINTR)
            continue;
        else if (n < 0 && errno == EAGAIN)
            return;
        else
            break; /* EPIPE: the child does not want the rest of its prompt */
    }
    close_fd(&self->in_fd);
}

static void keep_tail(command_run_t *self, const char *buf, size_t n)
{
    if (n >= WORKER_STDERR_TAIL) {
        memcpy(self->tail, buf + n - WORKER_STDERR_TAIL, WORKER_STDERR_TAIL);
        self->tail_cut = self->tail_cut || self->tail_len > 0 || n > WORKER_STDERR_TAIL;
        self->tail_len = WORKER_STDERR_TAIL;
        return;
    }
    size_t keep = self->tail_len;
    if (keep > WORKER_STDERR_TAIL - n) {
        keep = WORKER_STDERR_TAIL - n;
        self->tail_cut = true;
    }
    memmove(self->tail, self->tail + self->tail_len - keep, keep);
    memcpy(self->tail + keep, buf, n);
    self->tail_len = keep + n;
}

/* Reads what a pipe has (bounded per step); stdout goes to the run's output,
 * which keeps draining past the output limit so the child never blocks. */
static void drain(command_run_t *self, worker_run_t *run, int *fd, bool is_stdout)
{
    char buf[READ_CHUNK];
    for (int i = 0; i < READS_PER_STEP && *fd >= 0; i++) {
        ssize_t n = read(*fd, buf, sizeof buf);
        if (n > 0) {
            if (is_stdout)
                worker_run_append(run, buf, (size_t)n);
            else
                keep_tail(self, buf, (size_t)n);
        } else if (n < 0 && errno == EINTR)
            continue;
        else if (n < 0 && errno == EAGAIN)
            return;
        else
            close_fd(fd); /* end of file or a broken pipe */
    }
}

/* Reaps members of the child's group that became our children: they do when
 * the worker is a child subreaper or PID 1 (in a container), and nobody else
 * would collect them. Sets group_reaped when none of our children is left in
 * the group (always at once when we are neither). */
static void reap_group(command_run_t *self)
{
    for (;;) {
        pid_t got = waitpid(-self->pgid, NULL, WNOHANG);
        if (got > 0 || (got < 0 && errno == EINTR))
            continue;
        self->group_reaped = got < 0;
        return;
    }
}

/* Notices the child's exit without reaping it first, so its pid (and with it
 * the process group id) cannot be reused while we kill what it left behind in
 * its group; then reaps it. */
static void check_exit(command_run_t *self, int64_t now)
{
    siginfo_t info;
    memset(&info, 0, sizeof info);
    int rc = waitid(P_PID, (id_t)self->pid, &info, WEXITED | WNOHANG | WNOWAIT);
    if (rc == 0 && info.si_pid != self->pid)
        return; /* still running */
    kill(-self->pid, SIGKILL);
    int status = 0;
    pid_t got;
    do
        got = waitpid(self->pid, &status, 0);
    while (got < 0 && errno == EINTR);
    self->status_known = got == self->pid;
    self->wait_status = status;
    self->pid = -1;
    self->exited = true;
    self->drain_until = now + PIPE_DRAIN_MS;
    self->next_check = now + EXIT_CHECK_MS;
    close_fd(&self->pid_fd);
    close_fd(&self->in_fd);
    reap_group(self);
}

static void terminate(command_run_t *self, int64_t now)
{
    kill(-self->pid, SIGTERM);
    kill(-self->pid, SIGCONT); /* a stopped agent must run to act on SIGTERM */
    self->kill_at = now + self->grace_ms;
}

/* Trims the stderr tail for an error message: no partial first character, no
 * trailing blank lines. */
static void tail_text(command_run_t *self, char *out, size_t outlen)
{
    size_t start = 0, end = self->tail_len;
    if (self->tail_cut)
        while (start < end && ((unsigned char)self->tail[start] & 0xC0) == 0x80)
            start++;
    while (end > start && strchr(" \t\r\n", self->tail[end - 1]))
        end--;
    snprintf(out, outlen, "%.*s", (int)(end - start), self->tail + start);
}

static void complete(command_run_t *self, worker_run_t *run)
{
    close_fd(&self->out_fd);
    close_fd(&self->err_fd);
    char tail[WORKER_STDERR_TAIL + 1];
    tail_text(self, tail, sizeof tail);
    char reason[WORKER_STDERR_TAIL + 128];
    const char *sep = *tail ? ": " : "";
    if (self->cancelled) {
        worker_run_finish(run, WORKER_RUN_CANCELLED, "cancelled", false, 0);
    } else if (self->timed_out) {
        worker_format_timeout(self->timeout_ms, reason, sizeof reason);
        worker_run_finish(run, WORKER_RUN_FAILED, reason, false, 0);
    } else if (!self->status_known) {
        snprintf(reason, sizeof reason, "exit status lost%s%s", sep, tail);
        worker_run_finish(run, WORKER_RUN_FAILED, reason, false, 0);
    } else if (WIFEXITED(self->wait_status) && WEXITSTATUS(self->wait_status) == 0) {
        worker_run_finish(run, WORKER_RUN_COMPLETED, NULL, true, 0);
    } else if (WIFEXITED(self->wait_status)) {
        int code = WEXITSTATUS(self->wait_status);
        snprintf(reason, sizeof reason, "exit code %d%s%s", code, sep, tail);
        worker_run_finish(run, WORKER_RUN_FAILED, reason, true, code);
    } else {
        int sig = WIFSIGNALED(self->wait_status) ? WTERMSIG(self->wait_status) : 0;
        snprintf(reason, sizeof reason, "killed by signal %d%s%s", sig, sep, tail);
        worker_run_finish(run, WORKER_RUN_FAILED, reason, false, 0);
    }
}

static void command_step(void *state, worker_run_t *run, const struct pollfd *fds, int nfds,
                         int64_t now)
{
    command_run_t *self = state;
    if (self->in_fd >= 0 && revents_of(fds, nfds, self->in_fd))
        feed_stdin(self);
    if (self->out_fd >= 0 && revents_of(fds, nfds, self->out_fd))
        drain(self, run, &self->out_fd, true);
    if (self->err_fd >= 0 && revents_of(fds, nfds, self->err_fd))
        drain(self, run, &self->err_fd, false);
    if (!self->exited) {
        bool check = self->pid_fd >= 0 ? revents_of(fds, nfds, self->pid_fd) != 0
                                       : now >= self->next_check;
        if (check)
            check_exit(self, now);
        if (!self->exited && self->pid_fd < 0 && check)
            self->next_check = now + EXIT_CHECK_MS;
    }
    if (!self->exited) {
        if (self->timeout_at >= 0 && now >= self->timeout_at && !self->cancelled) {
            self->timed_out = true;
            self->timeout_at = -1;
            terminate(self, now);
        }
        if (self->kill_at >= 0 && now >= self->kill_at) {
            kill(-self->pid, SIGKILL);
            self->kill_at = -1;
        }
        return;
    }
    /* Exited: take what the pipes still hold and collect the group, then finish. */
    drain(self, run, &self->out_fd, true);
    drain(self, run, &self->err_fd, false);
    if (!self->group_reaped && now >= self->next_check) {
        reap_group(self);
        self->next_check = now + EXIT_CHECK_MS;
    }
    if ((self->out_fd < 0 && self->err_fd < 0 && self->group_reaped) ||
        now >= self->drain_until)
        complete(self, run);
}

static void command_cancel(void *state, worker_run_t *run, int64_t now)
{
    (void)run;
    command_run_t *self = state;
    if (self->exited || self->cancelled)
        return;
    self->cancelled = true;
    self->timeout_at = -1;
    if (!self->timed_out) /* else it is being stopped already: keep its SIGKILL time */
        terminate(self, now);
}

static void command_destroy(void *state)
{
    command_run_t *self = state;
    if (self->pid > 0) {
        kill(-self->pid, SIGKILL);
        while (waitpid(self->pid, NULL, 0) < 0 && errno == EINTR)
            ;
    }
    /* The group was killed above or when the child exited (after which its id
     * may belong to someone else: never signal it again). SIGKILLed members
     * die within moments; do not hang on one that won't. */
    if (self->pgid > 0 && !self->group_reaped) {
        for (int i = 0; i < 200; i++) {
            reap_group(self);
            if (self->group_reaped)
                break;
            usleep(1000);
        }
    }
    close_fd(&self->in_fd);
    close_fd(&self->out_fd);
    close_fd(&self->err_fd);
    close_fd(&self->pid_fd);
    free(self->prompt);
    free(self);
}

static void command_config_destroy(void *config)
{
    command_config_t *cfg = config;
    if (!cfg)
        return;
    worker_argv_free(cfg->argv);
    free(cfg);
}

static const worker_provider_ops_t command_ops = {
    .name = "command",
    .start = command_start,
    .pollfds = command_pollfds,
    .deadline = command_deadline,
    .step = command_step,
    .cancel = command_cancel,
    .destroy = command_destroy,
    .config_destroy = command_config_destroy,
};

worker_provider_t *worker_provider_command_new(const char *command, int64_t kill_grace_ms,
                                               char *err, size_t errlen)
{
    char why[128];
    char **argv = worker_argv_split(command, NULL, why, sizeof why);
    if (!argv) {
        snprintf(err, errlen, "bad --command: %s", why);
        return NULL;
    }
    command_config_t *cfg = calloc(1, sizeof *cfg);
    if (!cfg) {
        worker_argv_free(argv);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    cfg->argv = argv;
    cfg->kill_grace_ms = kill_grace_ms < 0 ? 0 : kill_grace_ms;
    worker_provider_t *self = worker_provider_new(&command_ops, cfg);
    if (!self)
        snprintf(err, errlen, "out of memory");
    return self;
}
