/* proc: see proc.h. The child is made with fork + execve rather than
 * posix_spawn because resource limits and niceness must be in place before the
 * agent's first instruction runs, which posix_spawn cannot do; between fork and
 * exec the child calls only async-signal-safe functions, and a close-on-exec
 * pipe tells the parent whether the exec worked. */
#include "worker/proc.h"
#include "worker/provider.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/utf8.h"

/* How often to check for the child's exit when there is no pidfd, and for the
 * death of what it left in its group after it exited. */
#define EXIT_CHECK_MS 20
/* After the child exits, how long to wait for its pipes to reach end of file (a
 * process outside its group may still hold them) before finishing anyway. */
#define PIPE_DRAIN_MS 1000
/* Bytes read per pipe per step, so one chatty child cannot starve the loop. */
#define READ_CHUNK 65536
#define READS_PER_STEP 16

/* What failed in the child before exec, reported through the status pipe. */
enum { STAGE_EXEC, STAGE_CHDIR, STAGE_SETUP, STAGE_RLIMIT, STAGE_NICE };

struct worker_proc_t {
    pid_t pid;            /* > 0 until reaped */
    pid_t pgid;           /* the group the child leads (its pid) */
    bool group_reaped;    /* no child of ours is left in the group */
    int in_fd, out_fd, err_fd, pid_fd; /* -1 once closed */
    char *in_buf;
    size_t in_len, in_off;
    bool close_when_written;
    worker_proc_stdout_fn *on_stdout;
    void *arg;
    uint64_t max_stdout, stdout_total;
    bool overflowed;
    char tail[WORKER_STDERR_TAIL];
    size_t tail_len;
    bool tail_cut;        /* older stderr was dropped */
    bool exited;
    bool status_known;
    int wait_status;
    bool done;
    int64_t grace_ms;
    int64_t kill_at, drain_until, next_check; /* -1 = not set */
};

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

static int set_nonblocking(int fd)
{
    int flags = fcntl(fd, F_GETFL);
    return flags < 0 ? -1 : fcntl(fd, F_SETFL, flags | O_NONBLOCK);
}

/* The PATH the child will see (its environment's, else the worker's). */
static const char *child_path(char *const *env)
{
    for (char *const *e = env; e && *e; e++)
        if (strncmp(*e, "PATH=", 5) == 0)
            return *e + 5;
    const char *path = getenv("PATH");
    return path ? path : "/usr/local/bin:/usr/bin:/bin";
}

/* Finds name in path as execvp would, into out; an errno value on failure. */
static int find_program(const char *name, const char *path, char *out, size_t outlen)
{
    if (strchr(name, '/')) {
        if (snprintf(out, outlen, "%s", name) >= (int)outlen)
            return ENAMETOOLONG;
        return 0;
    }
    if (!*name)
        return ENOENT;
    int found_error = ENOENT;
    for (const char *p = path;;) {
        const char *colon = strchr(p, ':');
        size_t dlen = colon ? (size_t)(colon - p) : strlen(p);
        const char *dir = dlen ? p : ".";
        if (!dlen)
            dlen = 1;
        if (snprintf(out, outlen, "%.*s/%s", (int)dlen, dir, name) < (int)outlen) {
            struct stat st;
            if (stat(out, &st) == 0 && S_ISREG(st.st_mode)) {
                if (access(out, X_OK) == 0)
                    return 0;
                found_error = EACCES;
            }
        }
        if (!colon)
            break;
        p = colon + 1;
    }
    return found_error;
}

int worker_proc_check_program(const char *name, char *err, size_t errlen)
{
    char program[PATH_MAX];
    int error = find_program(name, child_path(NULL), program, sizeof program);
    struct stat st;
    if (!error && strchr(name, '/'))
        error = stat(program, &st) != 0     ? errno
                : !S_ISREG(st.st_mode)      ? EACCES
                : access(program, X_OK) != 0 ? errno
                                             : 0;
    if (error)
        snprintf(err, errlen, "cannot run %s: %s", name, strerror(error));
    return error ? -1 : 0;
}

int worker_proc_run_quietly(char *const argv[], int64_t timeout_ms, char *err, size_t errlen)
{
    if (worker_proc_check_program(argv[0], err, errlen) != 0)
        return -1;
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(err, errlen, "cannot fork: %s", strerror(errno));
        return -1;
    }
    if (pid == 0) {
        int null_fd = open("/dev/null", O_RDWR);
        if (null_fd >= 0) {
            dup2(null_fd, 0);
            dup2(null_fd, 1);
            dup2(null_fd, 2);
        }
        execvp(argv[0], argv);
        _exit(127);
    }
    int status = 0;
    /* Polled: a start-up check has no loop to wake, and 10 ms is nothing there. */
    for (int64_t waited = 0;; waited += 10) {
        pid_t done = waitpid(pid, &status, WNOHANG);
        if (done == pid)
            break;
        if (done < 0 && errno != EINTR) {
            snprintf(err, errlen, "cannot wait for %s: %s", argv[0], strerror(errno));
            return -1;
        }
        if (waited >= timeout_ms) {
            kill(pid, SIGKILL);
            while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
                ;
            snprintf(err, errlen, "%s %s did not answer within %lld ms", argv[0],
                     argv[1] ? argv[1] : "", (long long)timeout_ms);
            return -1;
        }
        struct timespec tick = {0, 10 * 1000 * 1000};
        nanosleep(&tick, NULL);
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return 0;
    if (WIFEXITED(status))
        snprintf(err, errlen, "%s %s exited with code %d", argv[0], argv[1] ? argv[1] : "",
                 WEXITSTATUS(status));
    else
        snprintf(err, errlen, "%s %s was killed by signal %d", argv[0], argv[1] ? argv[1] : "",
                 WTERMSIG(status));
    return -1;
}

/* In the child: "cannot prepare WHAT for PROGRAM: error N" on stderr, with
 * write(2) alone (no stdio, no strerror after fork). */
static void say_failure(const char *what, const char *program, int error)
{
    char digits[16];
    int n = (int)sizeof digits;
    unsigned value = error < 0 ? 0u : (unsigned)error;
    do
        digits[--n] = (char)('0' + value % 10);
    while ((value /= 10) > 0 && n > 0);
    const char *parts[] = {"cannot prepare ", what ? what : "the process", " for ", program,
                           ": error ", NULL};
    for (int i = 0; parts[i]; i++)
        if (write(STDERR_FILENO, parts[i], strlen(parts[i])) < 0)
            return;
    if (write(STDERR_FILENO, digits + n, sizeof digits - (size_t)n) < 0 ||
        write(STDERR_FILENO, "\n", 1) < 0)
        return;
}

/* In the child, after fork: only async-signal-safe calls. Reports a failure
 * as {stage, errno} on status_fd and exits 127. */
static void child_exec(const worker_proc_spec_t *spec, const char *program, int in_fd, int out_fd,
                       int err_fd, int status_fd)
{
    int report[2] = {STAGE_SETUP, 0};
    static const int reset[] = {SIGPIPE, SIGINT,  SIGTERM, SIGHUP, SIGQUIT,
                                SIGCHLD, SIGUSR1, SIGUSR2, SIGTSTP, SIGTTIN, SIGTTOU};
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    for (size_t i = 0; i < sizeof reset / sizeof reset[0]; i++)
        sigaction(reset[i], &dfl, NULL);
    if (setpgid(0, 0) != 0)
        goto fail;
    if (dup2(in_fd, STDIN_FILENO) < 0 || dup2(out_fd, STDOUT_FILENO) < 0 ||
        dup2(err_fd, STDERR_FILENO) < 0)
        goto fail;
    /* Our own descriptors are close-on-exec; this also keeps from the agent any
     * that whoever started the worker leaked to it (status_fd is close-on-exec
     * already, so it closes exactly when the exec succeeds). */
    if (close_range(STDERR_FILENO + 1, ~0U, CLOSE_RANGE_CLOEXEC) != 0) {
        struct rlimit nofile;
        int top = getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < 65536
                      ? (int)nofile.rlim_cur
                      : 65536;
        for (int fd = STDERR_FILENO + 1; fd < top; fd++)
            if (fd != status_fd)
                close(fd);
    }
    if (spec->cwd && chdir(spec->cwd) != 0) {
        report[0] = STAGE_CHDIR;
        goto fail;
    }
    if (spec->rlimit_as_mb > 0) {
        struct rlimit as = {(rlim_t)spec->rlimit_as_mb * 1024 * 1024,
                            (rlim_t)spec->rlimit_as_mb * 1024 * 1024};
        if (setrlimit(RLIMIT_AS, &as) != 0) {
            report[0] = STAGE_RLIMIT;
            goto fail;
        }
    }
    if (spec->nice != 0) {
        errno = 0;
        int current = getpriority(PRIO_PROCESS, 0);
        if ((current == -1 && errno != 0) ||
            setpriority(PRIO_PROCESS, 0, current + spec->nice) != 0) {
            report[0] = STAGE_NICE;
            goto fail;
        }
    }
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    if (spec->before_exec) {
        /* The parent is told "started" first, so a slow hook (a new network
         * namespace can take a tenth of a second on a busy host) never holds
         * up its loop; what fails from here on is said on stderr instead. */
        close(status_fd);
        int error = spec->before_exec(spec->before_exec_arg);
        if (error != 0) {
            say_failure(spec->before_exec_what, spec->argv[0], error);
        } else {
            execve(program, spec->argv, spec->env);
            say_failure("the exec", spec->argv[0], errno);
        }
        _exit(126);
    }
    execve(program, spec->argv, spec->env);
    report[0] = STAGE_EXEC;
fail:
    report[1] = errno;
    while (write(status_fd, report, sizeof report) < 0 && errno == EINTR)
        ;
    _exit(127);
}

static void describe_stage(const worker_proc_spec_t *spec, int stage, int error, char *err,
                           size_t errlen)
{
    switch (stage) {
    case STAGE_EXEC:
        snprintf(err, errlen, "cannot run %s: %s", spec->argv[0], strerror(error));
        break;
    case STAGE_CHDIR:
        snprintf(err, errlen, "cannot enter %s: %s", spec->cwd, strerror(error));
        break;
    case STAGE_RLIMIT:
        snprintf(err, errlen, "cannot limit %s to %ld MiB: %s", spec->argv[0], spec->rlimit_as_mb,
                 strerror(error));
        break;
    case STAGE_NICE:
        snprintf(err, errlen, "cannot renice %s by %d: %s", spec->argv[0], spec->nice,
                 strerror(error));
        break;
    default:
        snprintf(err, errlen, "cannot set up %s: %s", spec->argv[0], strerror(error));
        break;
    }
}

/* Forks and execs; returns the pid, or -1 with err set. Every signal is blocked
 * across the fork so no handler of the worker's runs in the child. */
static pid_t spawn(const worker_proc_spec_t *spec, int in_fd, int out_fd, int err_fd, char *err,
                   size_t errlen)
{
    char program[PATH_MAX];
    int found = find_program(spec->argv[0], child_path(spec->env), program, sizeof program);
    if (found != 0) {
        describe_stage(spec, STAGE_EXEC, found, err, errlen);
        return -1;
    }
    int status[2];
    if (pipe2(status, O_CLOEXEC) != 0) {
        snprintf(err, errlen, "cannot make a pipe: %s", strerror(errno));
        return -1;
    }
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pid_t pid = fork();
    if (pid == 0) {
        close(status[0]);
        child_exec(spec, program, in_fd, out_fd, err_fd, status[1]);
    }
    int fork_errno = errno;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    close(status[1]);
    if (pid < 0) {
        close(status[0]);
        snprintf(err, errlen, "cannot fork: %s", strerror(fork_errno));
        return -1;
    }
    int report[2];
    ssize_t n;
    do
        n = read(status[0], report, sizeof report);
    while (n < 0 && errno == EINTR);
    close(status[0]);
    if (n == (ssize_t)sizeof report) {
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
            ;
        describe_stage(spec, report[0], report[1], err, errlen);
        return -1;
    }
    return pid;
}

worker_proc_t *worker_proc_start(const worker_proc_spec_t *spec, worker_proc_stdout_fn *on_stdout,
                                 void *arg, char *err, size_t errlen)
{
    worker_proc_t *self = calloc(1, sizeof *self);
    if (!self) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    self->pid = -1;
    self->in_fd = self->out_fd = self->err_fd = self->pid_fd = -1;
    self->kill_at = self->drain_until = self->next_check = -1;
    self->grace_ms = spec->kill_grace_ms < 0 ? 0 : spec->kill_grace_ms;
    self->on_stdout = on_stdout;
    self->arg = arg;
    self->max_stdout = spec->max_stdout;
    int in[2] = {-1, -1}, out[2] = {-1, -1}, errp[2] = {-1, -1}, null_fd = -1;
    null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null_fd < 0 || (spec->want_stdin && pipe2(in, O_CLOEXEC) != 0) ||
        (spec->want_stdout && pipe2(out, O_CLOEXEC) != 0) || pipe2(errp, O_CLOEXEC) != 0) {
        snprintf(err, errlen, "cannot make pipes: %s", strerror(errno));
        goto fail;
    }
    self->pid = spawn(spec, spec->want_stdin ? in[0] : null_fd,
                      spec->want_stdout ? out[1] : null_fd, errp[1], err, errlen);
    close_fd(&in[0]);
    close_fd(&out[1]);
    close_fd(&errp[1]);
    close_fd(&null_fd);
    if (self->pid < 0)
        goto fail;
    self->pgid = self->pid;
    self->in_fd = in[1];
    self->out_fd = out[0];
    self->err_fd = errp[0];
    if (self->in_fd >= 0)
        set_nonblocking(self->in_fd);
    if (self->out_fd >= 0)
        set_nonblocking(self->out_fd);
    set_nonblocking(self->err_fd);
#ifdef SYS_pidfd_open
    self->pid_fd = (int)syscall(SYS_pidfd_open, self->pid, 0);
    if (self->pid_fd >= 0)
        fcntl(self->pid_fd, F_SETFD, FD_CLOEXEC);
#endif
    if (self->pid_fd < 0)
        self->next_check = syn_mono_ms() + EXIT_CHECK_MS;
    return self;
fail:
    for (int i = 0; i < 2; i++) {
        close_fd(&in[i]);
        close_fd(&out[i]);
        close_fd(&errp[i]);
    }
    close_fd(&null_fd);
    free(self);
    return NULL;
}

/* Writes what is queued until the pipe is full; closes stdin when all is
 * written and a close was asked for, or when the child no longer reads. */
static void feed_stdin(worker_proc_t *self)
{
    while (self->in_fd >= 0 && self->in_off < self->in_len) {
        size_t left = self->in_len - self->in_off;
        ssize_t n = write_quietly(self->in_fd, self->in_buf + self->in_off,
                                  left < READ_CHUNK ? left : READ_CHUNK);
        if (n > 0)
            self->in_off += (size_t)n;
        else if (n < 0 && errno == EINTR)
            continue;
        else if (n < 0 && errno == EAGAIN)
            return;
        else {
            close_fd(&self->in_fd); /* EPIPE: the child does not want the rest */
            break;
        }
    }
    if (self->in_off == self->in_len) {
        self->in_off = self->in_len = 0;
        if (self->close_when_written)
            close_fd(&self->in_fd);
    }
}

int worker_proc_write(worker_proc_t *self, const char *data, size_t len)
{
    if (self->in_fd < 0 || self->close_when_written)
        return -1;
    size_t pending = self->in_len - self->in_off;
    if (len > WORKER_PROC_STDIN_MAX - pending)
        return -1;
    if (self->in_off > 0) {
        memmove(self->in_buf, self->in_buf + self->in_off, pending);
        self->in_len = pending;
        self->in_off = 0;
    }
    char *grown = realloc(self->in_buf, pending + len + 1);
    if (!grown)
        return -1;
    self->in_buf = grown;
    memcpy(self->in_buf + self->in_len, data, len);
    self->in_len += len;
    feed_stdin(self);
    return 0;
}

void worker_proc_close_stdin(worker_proc_t *self)
{
    self->close_when_written = true;
    if (self->in_fd >= 0)
        feed_stdin(self);
}

bool worker_proc_stdin_open(const worker_proc_t *self)
{
    return self->in_fd >= 0 && !self->close_when_written;
}

int worker_proc_pollfds(worker_proc_t *self, struct pollfd *fds, int max)
{
    int n = 0;
    if (self->done)
        return 0;
    if (self->in_fd >= 0 && self->in_off < self->in_len && n < max)
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

int64_t worker_proc_deadline(const worker_proc_t *self)
{
    int64_t best = -1;
    if (self->done)
        return -1;
    if (self->exited) {
        consider(&best, self->drain_until);
        if (!self->group_reaped)
            consider(&best, self->next_check);
    } else {
        consider(&best, self->kill_at);
        if (self->pid_fd < 0)
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

static void keep_tail(worker_proc_t *self, const char *buf, size_t n)
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

void worker_proc_terminate(worker_proc_t *self, int64_t now)
{
    if (self->exited || self->pid <= 0 || self->kill_at >= 0)
        return;
    kill(-self->pid, SIGTERM);
    kill(-self->pid, SIGCONT); /* a stopped agent must run to act on SIGTERM */
    self->kill_at = now + self->grace_ms;
}

/* Hands stdout to the owner up to the limit; past it the rest is read and
 * dropped (so the child never blocks on a full pipe) and the group stopped. */
static void deliver(worker_proc_t *self, const char *buf, size_t n, int64_t now)
{
    if (self->overflowed)
        return;
    if (self->max_stdout > 0 && self->stdout_total + n > self->max_stdout) {
        n = (size_t)(self->max_stdout - self->stdout_total);
        self->overflowed = true;
        worker_proc_terminate(self, now);
    }
    self->stdout_total += n;
    if (n > 0 && self->on_stdout)
        self->on_stdout(self->arg, buf, n, now);
}

/* Reads what a pipe has (bounded per step). */
static void drain(worker_proc_t *self, int *fd, bool is_stdout, int64_t now)
{
    char buf[READ_CHUNK];
    for (int i = 0; i < READS_PER_STEP && *fd >= 0; i++) {
        ssize_t n = read(*fd, buf, sizeof buf);
        if (n > 0) {
            if (is_stdout)
                deliver(self, buf, (size_t)n, now);
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
static void reap_group(worker_proc_t *self)
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
static void check_exit(worker_proc_t *self, int64_t now)
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
    self->kill_at = -1;
    self->drain_until = now + PIPE_DRAIN_MS;
    self->next_check = now + EXIT_CHECK_MS;
    close_fd(&self->pid_fd);
    close_fd(&self->in_fd);
    reap_group(self);
}

void worker_proc_step(worker_proc_t *self, const struct pollfd *fds, int nfds, int64_t now)
{
    if (self->done)
        return;
    if (self->in_fd >= 0 && revents_of(fds, nfds, self->in_fd))
        feed_stdin(self);
    if (self->out_fd >= 0 && revents_of(fds, nfds, self->out_fd))
        drain(self, &self->out_fd, true, now);
    if (self->err_fd >= 0 && revents_of(fds, nfds, self->err_fd))
        drain(self, &self->err_fd, false, now);
    if (!self->exited) {
        bool check = self->pid_fd >= 0 ? revents_of(fds, nfds, self->pid_fd) != 0
                                       : now >= self->next_check;
        if (check)
            check_exit(self, now);
        if (!self->exited && self->pid_fd < 0 && check)
            self->next_check = now + EXIT_CHECK_MS;
    }
    if (!self->exited) {
        if (self->kill_at >= 0 && now >= self->kill_at) {
            kill(-self->pid, SIGKILL);
            self->kill_at = -1;
        }
        return;
    }
    /* Exited: take what the pipes still hold and collect the group, then finish. */
    if (self->out_fd >= 0)
        drain(self, &self->out_fd, true, now);
    drain(self, &self->err_fd, false, now);
    if (!self->group_reaped && now >= self->next_check) {
        reap_group(self);
        self->next_check = now + EXIT_CHECK_MS;
    }
    if ((self->out_fd < 0 && self->err_fd < 0 && self->group_reaped) ||
        now >= self->drain_until) {
        close_fd(&self->out_fd);
        close_fd(&self->err_fd);
        self->done = true;
    }
}

bool worker_proc_done(const worker_proc_t *self) { return self->done; }

bool worker_proc_overflowed(const worker_proc_t *self) { return self->overflowed; }

bool worker_proc_exit_code(const worker_proc_t *self, int *code)
{
    if (!self->exited || !self->status_known || !WIFEXITED(self->wait_status))
        return false;
    if (code)
        *code = WEXITSTATUS(self->wait_status);
    return true;
}

/* Trims the stderr tail for an error message: no partial first character, no
 * trailing blank lines. */
void worker_proc_stderr_tail(const worker_proc_t *self, char *out, size_t outlen)
{
    size_t end = self->tail_len;
    size_t start = self->tail_cut ? syn_utf8_boundary_after(self->tail, end, 0) : 0;
    while (end > start && strchr(" \t\r\n", self->tail[end - 1]))
        end--;
    snprintf(out, outlen, "%.*s", (int)(end - start), self->tail + start);
}

bool worker_proc_succeeded(const worker_proc_t *self, char *buf, size_t buflen)
{
    char tail[WORKER_STDERR_TAIL + 1];
    worker_proc_stderr_tail(self, tail, sizeof tail);
    const char *sep = *tail ? ": " : "";
    if (!self->exited || !self->status_known) {
        snprintf(buf, buflen, "exit status lost%s%s", sep, tail);
        return false;
    }
    if (WIFEXITED(self->wait_status) && WEXITSTATUS(self->wait_status) == 0)
        return true;
    if (WIFEXITED(self->wait_status))
        snprintf(buf, buflen, "exit code %d%s%s", WEXITSTATUS(self->wait_status), sep, tail);
    else
        snprintf(buf, buflen, "killed by signal %d%s%s",
                 WIFSIGNALED(self->wait_status) ? WTERMSIG(self->wait_status) : 0, sep, tail);
    return false;
}

void worker_proc_destroy(worker_proc_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    worker_proc_t *self = *self_p;
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
    free(self->in_buf);
    free(self);
    *self_p = NULL;
}
