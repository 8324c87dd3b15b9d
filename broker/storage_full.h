/* storage_full: what the broker does while SQLite refuses its commits (a full
 * disk, a write I/O error), so that it stays up instead of exiting.
 *
 * A commit that fails is rolled back, and nothing the turn would have said goes
 * out (outbox.h: nothing is acknowledged before its commit): the turn's client
 * replies become 503 "storage full: …", everything else is dropped. The loop then
 * rebuilds its memory from the store as a restart would (broker/broker.c,
 * rebuild_state) and stays in this mode:
 *   - requests that change state (execute, workflow creation, controls) get 503
 *     with the reason; reads are served; /health says degraded and /ready not
 *     ready, with the reason;
 *   - workers' messages are not taken: a result is not acknowledged, so its
 *     worker keeps it and sends it again; each message is answered with a
 *     heartbeat so that the worker keeps its connection;
 *   - no timers, no dispatch, no retention: nothing is decided that could not be
 *     written;
 *   - every BROKER_STORAGE_RETRY_MS a small write tries the disk; when it
 *     commits, the memory is rebuilt from the store once more (workers told to
 *     re-register, as after a restart: they say what they run and resend their
 *     results) and the broker resumes.
 * It stands alone because it is the one place that decides what the broker may do
 * without writing; the mode is logged when it starts and when it ends, not per
 * turn. */
#ifndef SYN_BROKER_STORAGE_FULL_H
#define SYN_BROKER_STORAGE_FULL_H

#include "broker/outbox.h"
#include "proto/ops.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

/* How often the broker tries to write again while storage is full. */
#define BROKER_STORAGE_RETRY_MS 1000

typedef struct {
    bool full;                /* commits fail: the mode above */
    char reason[256];         /* "storage full: <SQLite's message>" */
    int64_t since_ms;         /* monotonic, when the mode began */
    int64_t next_try_ms;      /* monotonic, the next write attempt */
    uint64_t episodes;        /* times the mode began since start */
    uint64_t refused;         /* requests answered 503 in the mode */
    uint64_t held;            /* worker messages not taken in the mode */
} broker_storage_t;

/* Starts the mode (or keeps it, with the newer reason) after a failed commit;
 * logs once per episode. why: SQLite's message (NULL or "": unknown). */
void broker_storage_fail(broker_storage_t *self, const char *why, int64_t now_ms);
/* Ends the mode after a commit succeeded again; logs how long it lasted. */
void broker_storage_resume(broker_storage_t *self, int64_t now_ms);
/* Whether op may be served while storage is full (it only reads). */
bool broker_storage_allows(syn_op_t op);
/* The 503 body of a refused request: {"detail": reason + what it means}. */
json_t *broker_storage_refusal(const broker_storage_t *self);
/* The failed turn's outbox: each client reply becomes a 503 refusal with its
 * request id, everything else (events, ASSIGNs, acks) is dropped. */
void broker_storage_refuse_outbox(broker_storage_t *self, broker_outbox_t *outbox);

#endif
