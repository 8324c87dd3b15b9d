/* env: the clean environment an agent (or a git clone) runs with.
 *
 * A worker's own environment holds secrets for every provider and whatever the
 * operator's shell had; an agent gets only what it needs: PATH, HOME (its
 * workspace), LANG, every SYN_* variable (the job's own, set here, win over
 * inherited ones), the secrets its provider names when the worker has them,
 * the operator's --pass-env names, and extra entries the caller adds. */
#ifndef SYN_WORKER_ENV_H
#define SYN_WORKER_ENV_H

#include "worker/provider.h"

/* A NULL-terminated, malloc'd vector of "NAME=value" (free with worker_env_free).
 * job may be NULL (no job variables); secrets is a NULL-terminated list of
 * names (or NULL); pass_env a comma- or space-separated list of names (or
 * NULL); extra a NULL-terminated list of "NAME=value" added last (or NULL).
 * NULL when out of memory. */
char **worker_env_build(const worker_job_t *job, const char *home, const char *const *secrets,
                        const char *pass_env, const char *const *extra);
void worker_env_free(char **env);
/* The value of name in env, or NULL. */
const char *worker_env_get(char *const *env, const char *name);

#endif
