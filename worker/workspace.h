/* workspace: the directory one attempt runs in.
 *
 *   <base>/syn-<execution>-<phase>-<attempt>-XXXXXX/   (mode 0700)
 *     artifacts/input/<phase_id>.md   every earlier phase's full output
 *     artifacts/output/                where the agent may write deliverables
 *     repos/<name>/                    each of the execution's repositories
 *
 * Repositories are "owner/repo" (https://github.com/owner/repo), a URL
 * (https, http, ssh, git, file) or an absolute local path, cloned with
 * `git clone --depth 1` one after the other as child processes the worker's
 * loop drives, so a slow clone never blocks other attempts. With GITHUB_TOKEN
 * set, clones from https://github.com/ authenticate with it through git's
 * environment configuration (never on a command line). The directory is
 * removed with everything in it when the workspace is destroyed. */
#ifndef SYN_WORKER_WORKSPACE_H
#define SYN_WORKER_WORKSPACE_H

#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "worker/provider.h"

typedef struct worker_workspace_t worker_workspace_t;

/* Makes the directory under base (NULL = $TMPDIR or /tmp; created if missing)
 * with the inputs written, and plans a clone for each of job->repos. NULL with
 * the reason in err (a repository that is not one of the forms above, a
 * directory or file that cannot be made). */
worker_workspace_t *worker_workspace_new(const char *base, const worker_job_t *job,
                                         const worker_options_t *options, char *err,
                                         size_t errlen);
/* Stops a clone still running and, unless keep, removes the directory. Safe
 * with NULL and twice. */
void worker_workspace_destroy(worker_workspace_t **self_p, bool keep);

const char *worker_workspace_path(const worker_workspace_t *self);

/* Driving the clones (as a run's pollfds/deadline/step). */
int worker_workspace_pollfds(worker_workspace_t *self, struct pollfd *fds, int max);
int64_t worker_workspace_deadline(const worker_workspace_t *self);
void worker_workspace_step(worker_workspace_t *self, const struct pollfd *fds, int nfds,
                           int64_t now_ms);
/* Every repository is cloned and every earlier phase's file pulled. */
bool worker_workspace_ready(const worker_workspace_t *self);
/* The pull of earlier phases' files (job->artifacts; the worker's loop feeds it
 * the broker's chunks), or NULL when there is none. */
struct worker_pull_t;
struct worker_pull_t *worker_workspace_pull(worker_workspace_t *self);
/* Why a clone or the pull failed ("cannot clone owner/repo: <git's complaint>"), or NULL. */
const char *worker_workspace_error(const worker_workspace_t *self);
/* Kills a running clone at once; the workspace then never becomes ready. */
void worker_workspace_stop(worker_workspace_t *self);

/* The names in artifacts/input ("plan.md") and repos ("app"), in the order given. */
size_t worker_workspace_input_count(const worker_workspace_t *self);
const char *worker_workspace_input_name(const worker_workspace_t *self, size_t i);
size_t worker_workspace_repo_count(const worker_workspace_t *self);
const char *worker_workspace_repo_name(const worker_workspace_t *self, size_t i);

/* Reads the first regular file (by name, hidden files skipped, symlinks not
 * followed) in dir/artifacts/output, at most max bytes: 1 with *data (malloc'd,
 * NUL-terminated) and *len set, 0 when there is none, -1 on an error. */
int worker_workspace_first_output(const char *dir, size_t max, char **data, size_t *len,
                                  char *name, size_t namelen);

/* Copies the characters of text that are safe in a file name, others as '_', at
 * most max of them (out has room for max + 1); never "", "." or "..". How a
 * phase's id names its <phase>.md and <phase>/ under artifacts/input. */
#define WORKER_WORKSPACE_NAME_MAX 96
void worker_workspace_safe_name(const char *text, size_t max, char *out);

/* Removes path and everything under it without following symlinks; 0 or -1. */
int worker_workspace_remove_tree(const char *path);

#endif
