/* synrun: runs the built `syn` as a person or a script would, for the CLI's
 * integration tests: with its arguments, optional stdin text and environment, and
 * the stack's API token (http_bearer(), on secure stacks) as SYN_API_TOKEN; what it
 * printed on stdout and stderr, its exit code and how long it took come back. */
#ifndef SYN_TEST_SYNRUN_H
#define SYN_TEST_SYNRUN_H

#include <sys/types.h>

typedef struct {
    int code;     /* exit code; -1 when it did not exit normally */
    char *out;    /* stdout (malloc'd, never NULL) */
    char *err;    /* stderr (malloc'd, never NULL) */
    long long ms; /* how long it ran */
} synrun_t;

/* Runs syn with the NULL-ended argv (without "syn"), SYN_API_URL=url (when url is
 * not NULL), the NAME=VALUE strings of env (NULL-ended, may be NULL) and stdin_text
 * on its stdin (NULL: /dev/null). Waits for it to exit. */
synrun_t synrun(const char *url, const char *const *env, const char *stdin_text,
                const char *const *argv);
void synrun_clear(synrun_t *r);

/* Starts syn in the background, stdout and stderr to out_path; returns its pid. */
pid_t synrun_spawn(const char *url, const char *const *argv, const char *out_path);
/* Waits up to timeout_ms for pid: its exit code, or -1 (killed with SIGKILL). */
int synrun_wait(pid_t pid, int timeout_ms);

/* The whole file as a malloc'd string ("" when it cannot be read). */
char *synrun_slurp(const char *path);

#endif
