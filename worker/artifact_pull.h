/* artifact_pull: the earlier phases' files an attempt fetches into its workspace
 * before its agent starts (docs/protocol.md, `artifact_get`).
 *
 * The ASSIGN lists them ({phase_id, path, size, sha256}); each lands at
 * artifacts/input/<phase>/<path> (the phase's id made safe for a file name, as
 * for <phase>.md), sub-folders made as needed. They come one chunk at a time:
 * the pull says which chunk it wants next, the worker's loop asks the broker
 * for it (ARTIFACT_GET) and hands back the answer (ARTIFACT_DATA), which is
 * written straight to the file, so no file is ever held whole in memory. A file
 * whose bytes do not match its size and SHA-256, a path that is not plain, or a
 * broker that has no such file fails the pull, and with it the attempt, with
 * the reason. It stands alone because it is the one place the worker writes
 * bytes it did not make into an agent's workspace. */
#ifndef SYN_WORKER_ARTIFACT_PULL_H
#define SYN_WORKER_ARTIFACT_PULL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* An ARTIFACT_DATA's data is at most this many bytes (the broker sends 1 MiB). */
#define WORKER_PULL_CHUNK_MAX (1024u * 1024u)

typedef struct worker_pull_t worker_pull_t;

/* A pull of the files listed (the ASSIGN's `artifacts`) into input_dir (the
 * workspace's artifacts/input, which exists); an entry that is not acceptable
 * makes it failed at once (worker_pull_error). NULL (reason in err) only when
 * out of memory. */
worker_pull_t *worker_pull_new(const json_t *list, const char *input_dir, char *err,
                               size_t errlen);
void worker_pull_destroy(worker_pull_t **self_p);

/* Every file is in place (and matched its SHA-256). */
bool worker_pull_done(const worker_pull_t *self);
/* Why the pull failed, or NULL. */
const char *worker_pull_error(const worker_pull_t *self);
/* The chunk wanted next, {from_phase, path, offset} (a new object), or NULL when
 * done or failed. */
json_t *worker_pull_request(const worker_pull_t *self);
/* Takes an ARTIFACT_DATA's fields: true when it answered the chunk wanted (its
 * bytes written, or the pull failed on it), false when it did not (a repeat, or
 * an answer to an earlier request: ignored). */
bool worker_pull_take(worker_pull_t *self, const json_t *fields);

/* How many files, and the folder names under artifacts/input they go to
 * (distinct, in the order of the list), for the agent's preamble. */
size_t worker_pull_file_count(const worker_pull_t *self);
size_t worker_pull_dir_count(const worker_pull_t *self);
const char *worker_pull_dir_name(const worker_pull_t *self, size_t i);

#endif
