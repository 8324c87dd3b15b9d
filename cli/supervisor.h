/* supervisor: runs a set of child programs, restarts one that dies (with back-off),
 * and stops them all on request. Used by `syn up` to run a local stack. */
#ifndef SYN_CLI_SUPERVISOR_H
#define SYN_CLI_SUPERVISOR_H

#include <signal.h>

typedef struct supervisor_t supervisor_t;

supervisor_t *supervisor_new(void);
void supervisor_destroy(supervisor_t **self_p);

/* Registers a child: a label for the logs and its argv (copied). Returns 0 or -1. */
int supervisor_add(supervisor_t *self, const char *label, char *const argv[]);

/* Starts every child and supervises them until *stop becomes non-zero (set from a
 * signal handler), then stops them: SIGTERM, SIGKILL after grace_ms. Returns 0
 * when everything stopped cleanly. */
int supervisor_run(supervisor_t *self, volatile sig_atomic_t *stop, int grace_ms);

#endif
