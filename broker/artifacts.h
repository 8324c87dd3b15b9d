/* artifacts: the broker's side of ARTIFACT chunks (docs/protocol.md, `artifact`):
 * which chunks it takes, the limits, and when an attempt's set is whole.
 *
 * A worker sends each file of an attempt's artifacts/output in order, one chunk at
 * a time, and the broker answers each with the position it has stored up to, so it
 * holds at most one chunk per sending worker in memory whatever the files' sizes.
 * Chunks go straight into the store as incomplete rows (store_artifacts.c); the
 * RESULT that follows makes them complete in the transaction that completes the
 * attempt, or, when the set is not whole (the broker restarted, chunks were lost),
 * is not acknowledged: the worker is told where to resume and sends it again after.
 * A set that breaks a limit, names a bad path or does not match its SHA-256 is
 * refused with a reason the phase then fails with. A set whose attempt stops being
 * current (its worker died while sending, the attempt was requeued) is discarded
 * by the sweep, so nothing half-stored is ever listed. It stands alone because it
 * is the one place bytes from an agent enter the broker's state. */
#ifndef SYN_BROKER_ARTIFACTS_H
#define SYN_BROKER_ARTIFACTS_H

#include "broker/store.h"
#include "common/artifact_path.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A chunk's data is at most this many bytes (the worker sends 256 KiB). */
#define BROKER_ARTIFACT_CHUNK_MAX (1024u * 1024u)
/* A path under artifacts/output, at most this long (common/artifact_path.h). */
#define BROKER_ARTIFACT_PATH_MAX SYN_ARTIFACT_PATH_MAX

typedef struct {
    int64_t max_file_bytes;  /* --artifact-max-file-bytes (16 MiB) */
    int64_t max_phase_bytes; /* --artifact-max-phase-bytes (64 MiB) */
    int64_t max_files;       /* --artifact-max-files (256) */
} broker_artifact_limits_t;

#define BROKER_ARTIFACT_LIMITS_DEFAULT                                                          \
    {16ll * 1024 * 1024, 64ll * 1024 * 1024, 256}

typedef struct broker_artifacts_t broker_artifacts_t;

broker_artifacts_t *broker_artifacts_new(broker_store_t *store,
                                         const broker_artifact_limits_t *limits);
void broker_artifacts_destroy(broker_artifacts_t **self_p);

/* Takes one ARTIFACT chunk of a current attempt (fields as received) and returns
 * the fields of the ARTIFACT_ACK to send back (NULL when out of memory). */
json_t *broker_artifacts_chunk(broker_artifacts_t *self, const json_t *fields, int64_t now_ms);
/* The ack for an attempt the broker takes no chunks from (stale): its incomplete
 * rows are discarded. */
json_t *broker_artifacts_refuse(broker_artifacts_t *self, const json_t *fields, const char *why);

typedef enum {
    BROKER_ARTIFACTS_WHOLE,   /* stored and now complete (or there were none) */
    BROKER_ARTIFACTS_MISSING, /* not all arrived: *ack_out says where to resume */
    BROKER_ARTIFACTS_REFUSED, /* a limit or a check failed: why says which */
} broker_artifacts_outcome_t;

/* A completed RESULT of a current attempt lists `artifacts` (manifest, may be
 * NULL): whether its set is whole. WHOLE marks the rows complete (the caller
 * then completes the phase in the same transaction). */
broker_artifacts_outcome_t broker_artifacts_settle(broker_artifacts_t *self,
                                                   const char *execution_id,
                                                   const char *phase_id, int64_t attempt,
                                                   const json_t *manifest, json_t **ack_out,
                                                   char *why, size_t whylen);
/* Forgets an attempt's set (it failed, was cancelled or lost) and its rows. */
void broker_artifacts_drop(broker_artifacts_t *self, const char *execution_id,
                           const char *phase_id, int64_t attempt);
/* Drops the sets of attempts that are no longer current (is_current decides)
 * or silent for idle_ms; returns how many. */
typedef bool (*broker_artifacts_current_fn)(void *arg, const char *execution_id,
                                            const char *phase_id, int64_t attempt);
size_t broker_artifacts_sweep(broker_artifacts_t *self, broker_artifacts_current_fn is_current,
                              void *arg, int64_t now_ms, int64_t idle_ms);
/* Chunk bytes taken since the last call of broker_artifacts_new_turn: the loop
 * stops reading the workers' socket for the turn past BROKER_ARTIFACT_TURN_BYTES
 * (or past the turn's time budget, broker.c), so a flood of artifacts makes
 * commits no larger than that and client requests are still answered every turn
 * (the rest waits in the socket). */
#define BROKER_ARTIFACT_TURN_BYTES (4u * 1024u * 1024u)
bool broker_artifacts_turn_full(const broker_artifacts_t *self);
void broker_artifacts_new_turn(broker_artifacts_t *self);
/* Bytes served to a worker's pull (artifact_inputs.h) count against the turn too. */
void broker_artifacts_turn_add(broker_artifacts_t *self, size_t bytes);
/* Sets being received (for tests and /metrics). */
size_t broker_artifacts_receiving(const broker_artifacts_t *self);

/* The media type of a path, by its extension ("application/octet-stream"
 * otherwise). */
const char *broker_artifact_media_type(const char *path);
/* Whether path is a relative path of plain components (syn_artifact_path_ok). */
bool broker_artifact_path_ok(const char *path);

#endif
