/* artifacts: what of an attempt's artifacts/output the worker keeps and sends
 * (docs/protocol.md, `artifact`).
 *
 * When a phase ends successfully its workspace's artifacts/output directory is
 * moved out of the workspace (a rename beside it: the workspace is removed at
 * once, but the files must stay until the broker has stored them, which may take
 * a broker restart) and every regular file under it is listed with its path
 * relative to artifacts/output, sorted by path. Their sizes and SHA-256 come
 * after, a bounded slice per turn of the worker's loop (worker_artifacts_hash):
 * hashing 64 MiB in one go on a loaded machine took the loop seconds, long
 * enough for its heartbeats to stop and the broker to take it for gone. Anything
 * else (symbolic links, whose target may be outside the folder, devices, FIFOs,
 * sockets) is skipped with a warning the broker records as an event. The files
 * are then read back a chunk at a time, from the moved copy; destroying the set
 * removes it. It stands alone because it is the one place the worker decides
 * which of an agent's files leave the host. */
#ifndef SYN_WORKER_ARTIFACTS_H
#define SYN_WORKER_ARTIFACTS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct worker_artifacts_t worker_artifacts_t;

/* Moves <workspace>/artifacts/output away and lists it. NULL with nothing in err
 * when there is no such directory or it holds nothing to send (warnings may still
 * be set: *warnings is a new array of strings, or NULL); NULL with the reason in
 * err when it cannot be read. */
worker_artifacts_t *worker_artifacts_collect(const char *workspace, json_t **warnings, char *err,
                                             size_t errlen);
/* The phase's declared output names (its `output_artifacts`, [str]; may be NULL)
 * that no collected file answers to, each a warning line appended to *warnings
 * (made when NULL): a file answers to a name when its path or file name, with
 * or without its extension, is that name. self may be NULL (nothing was left).
 * The original keeps these names without enforcing them: a warning, never a
 * failure. */
void worker_artifacts_check_declared(const worker_artifacts_t *self, const json_t *declared,
                                     json_t **warnings);
/* Hashes the next bytes of the listed files, until max_bytes are read (opening
 * a file counts as 4 KiB) or the monotonic clock (syn_mono_us) reaches until_us,
 * at least one step (an open or a read of 64 KiB): true once
 * every file has its size and SHA-256. A file that cannot be read (any more) is
 * dropped from the set with a warning line appended to *warnings (made when
 * NULL); the set may end up empty. */
bool worker_artifacts_hash(worker_artifacts_t *self, size_t max_bytes, int64_t until_us,
                           json_t **warnings);
/* Removes the moved directory. Safe with NULL and twice. */
void worker_artifacts_destroy(worker_artifacts_t **self_p);

size_t worker_artifacts_count(const worker_artifacts_t *self);
/* File i's path (relative, '/'-separated), size and SHA-256 (hex): the latter
 * two once worker_artifacts_hash said true. */
const char *worker_artifacts_path(const worker_artifacts_t *self, size_t i);
uint64_t worker_artifacts_size(const worker_artifacts_t *self, size_t i);
const char *worker_artifacts_sha256(const worker_artifacts_t *self, size_t i);
/* [{path, size, sha256}] for the result (once hashed). */
json_t *worker_artifacts_manifest(const worker_artifacts_t *self);
/* Reads up to max bytes of file i from offset into buf: the count (0 at its end),
 * or -1 when it cannot (changed or gone since it was listed). */
long worker_artifacts_read(const worker_artifacts_t *self, size_t i, uint64_t offset,
                           unsigned char *buf, size_t max);

#endif
