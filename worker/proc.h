/* proc: one child process driven by the worker's poll loop.
 *
 * The agent providers (command, claude) and the workspace's git clones all run
 * children the same way: in a new process group (so a stop reaches everything
 * the child started), with a clean environment, optional resource limits, and
 * non-blocking pipes served by the loop, so neither a big stdin nor a chatty
 * stdout can block the worker. A pidfd tells when the child exits (a short
 * waitid poll where the kernel has none); what it left in its group is killed
 * and reaped before the process counts as done. */
#ifndef SYN_WORKER_PROC_H
#define SYN_WORKER_PROC_H

#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The most descriptors one process asks to be watched: stdin, stdout, stderr, pidfd. */
#define WORKER_PROC_MAX_FDS 4
/* Bytes of stdin a process may have queued and not yet taken. */
#define WORKER_PROC_STDIN_MAX (64u * 1024u * 1024u)

typedef struct {
    char *const *argv;     /* argv[0] is looked up in PATH when it has no '/' */
    char *const *env;      /* the whole environment of the child */
    const char *cwd;       /* NULL = the worker's */
    bool want_stdin;       /* a pipe to its stdin (else /dev/null) */
    bool want_stdout;      /* a pipe from its stdout (else /dev/null) */
    int64_t kill_grace_ms; /* SIGTERM → SIGKILL */
    uint64_t max_stdout;   /* bytes; past it the group is stopped; 0 = no limit */
    long rlimit_as_mb;     /* address-space limit; 0 = none */
    int nice;              /* added to the worker's niceness; 0 = unchanged */
    /* Called in the child last before exec, after it has told the parent it
     * started (so a slow hook never holds up the caller): only
     * async-signal-safe work. 0, or an errno value, which the child writes to
     * its stderr as "cannot prepare <before_exec_what> for <argv[0]>: error N"
     * before exiting 126. NULL = nothing to do. */
    int (*before_exec)(void *arg);
    void *before_exec_arg;
    const char *before_exec_what;
} worker_proc_spec_t;

/* Receives every chunk the child writes to stdout (not past max_stdout). */
typedef void(worker_proc_stdout_fn)(void *arg, const char *data, size_t len, int64_t now_ms);

typedef struct worker_proc_t worker_proc_t;

/* Starts the child. NULL with the reason in err ("cannot run X: No such file or
 * directory", "cannot enter DIR: ...") when it could not be started at all. */
/* Whether name (a path, or found in PATH as execvp would) is a program this
 * process may run: 0, or -1 with "cannot run NAME: why" in err. */
int worker_proc_check_program(const char *name, char *err, size_t errlen);
/* Runs argv (found in PATH) with /dev/null for its input and outputs and waits
 * for it up to timeout_ms (then SIGKILL): 0 when it exited 0, else -1 with a
 * one-line reason in err. Blocks: for start-up checks only. */
int worker_proc_run_quietly(char *const argv[], int64_t timeout_ms, char *err, size_t errlen);

worker_proc_t *worker_proc_start(const worker_proc_spec_t *spec, worker_proc_stdout_fn *on_stdout,
                                 void *arg, char *err, size_t errlen);
/* Kills the group (SIGKILL) if it still runs, reaps it, closes everything.
 * Safe with NULL and twice. */
void worker_proc_destroy(worker_proc_t **self_p);

/* Queues data for the child's stdin; -1 when stdin is closed (or was never
 * open, or the child closed its end) or the queue would pass WORKER_PROC_STDIN_MAX. */
int worker_proc_write(worker_proc_t *self, const char *data, size_t len);
/* Closes stdin once everything queued has been written. */
void worker_proc_close_stdin(worker_proc_t *self);
/* True while more can be written to stdin. */
bool worker_proc_stdin_open(const worker_proc_t *self);

int worker_proc_pollfds(worker_proc_t *self, struct pollfd *fds, int max);
/* When worker_proc_step must run again without input; -1 for none. */
int64_t worker_proc_deadline(const worker_proc_t *self);
void worker_proc_step(worker_proc_t *self, const struct pollfd *fds, int nfds, int64_t now_ms);

/* SIGTERM (and SIGCONT) to the group now, SIGKILL after the grace. A second
 * call keeps the first one's SIGKILL time. */
void worker_proc_terminate(worker_proc_t *self, int64_t now_ms);

/* The child exited, its group is gone (or could not be waited for) and its
 * pipes are drained: the outcome below is final. */
bool worker_proc_done(const worker_proc_t *self);
/* True when it stopped because stdout passed max_stdout. */
bool worker_proc_overflowed(const worker_proc_t *self);
/* True with *code set when the child exited normally. */
bool worker_proc_exit_code(const worker_proc_t *self, int *code);
/* True when it exited with code 0; otherwise writes why into buf: "exit code 3:
 * <stderr tail>", "killed by signal 9: <tail>", "exit status lost". */
bool worker_proc_succeeded(const worker_proc_t *self, char *buf, size_t buflen);
/* The last WORKER_STDERR_TAIL bytes of stderr, trimmed, into buf. */
void worker_proc_stderr_tail(const worker_proc_t *self, char *buf, size_t buflen);

#endif
