/* uploading: the worker's side of ARTIFACT and ARTIFACT_ACK (docs/protocol.md,
 * `artifact`): an attempt's artifacts hashed a slice per loop turn, then sent a
 * chunk at a time before its result, one chunk in flight per connection.
 *
 * Hashing 64 MiB in one step kept the loop from heartbeating for seconds on a
 * loaded machine (the broker took the worker for gone, its attempts were lost);
 * resending a chunk on every silence queued copies in a slow broker's socket
 * (hundreds of MiB, docs/benchmarks.md "Artifacts"). It stands alone to keep the
 * loop (worker.c) about the loop, as pulling.c does for the way in. */
#include "worker/worker_internal.h"

#include "common/base64.h"
#include "worker/artifacts.h"

#include <stdlib.h>

/* An artifact travels in chunks of this many bytes (base64 in the message), one
 * at a time: the broker answers each, so it never holds more than one chunk per
 * sending worker, however large the files. */
#define ARTIFACT_CHUNK (1024u * 1024u)
/* Artifacts are hashed at most this much per attempt per loop turn (at least one
 * 64 KiB read): the loop keeps answering and heartbeating meanwhile. */
#define HASH_SLICE_BYTES (1024u * 1024u)
#define HASH_SLICE_US 10000

/* The chunk of a's artifacts at its cursor; 0 when sent. */
static int send_artifact_chunk(worker_t *self, attempt_t *a, int64_t now)
{
    size_t i = a->art_index;
    uint64_t size = worker_artifacts_size(a->artifacts, i);
    size_t want = size - a->art_offset < ARTIFACT_CHUNK ? (size_t)(size - a->art_offset)
                                                        : ARTIFACT_CHUNK;
    unsigned char *raw = malloc(want ? want : 1);
    char *text = malloc(syn_base64_encoded_len(want) + 1);
    long got = raw && text ? worker_artifacts_read(a->artifacts, i, a->art_offset, raw, want) : -1;
    json_t *fields = NULL;
    if (got == (long)want) {
        syn_base64_encode(raw, want, text);
        fields = worker_attempt_ref(a);
    }
    free(raw);
    if (!fields) {
        free(text);
        /* The file changed under us: the broker's hash check refuses it. */
        syn_warn("worker", "cannot read artifact %s execution=%s phase=%s",
                 worker_artifacts_path(a->artifacts, i), a->execution_id, a->phase_id);
        return -1;
    }
    json_object_set_new(fields, "index", json_integer((json_int_t)i));
    json_object_set_new(fields, "count",
                        json_integer((json_int_t)worker_artifacts_count(a->artifacts)));
    json_object_set_new(fields, "path", json_string(worker_artifacts_path(a->artifacts, i)));
    json_object_set_new(fields, "size", json_integer((json_int_t)size));
    json_object_set_new(fields, "sha256", json_string(worker_artifacts_sha256(a->artifacts, i)));
    json_object_set_new(fields, "offset", json_integer((json_int_t)a->art_offset));
    json_object_set_new(fields, "data", json_string(text));
    free(text);
    if (worker_send(self, SYN_MSG_ARTIFACT, fields, now) != 0)
        return -1;
    a->art_sent_conn = self->conn_gen;
    a->art_sent_index = a->art_index;
    a->art_sent_offset = a->art_offset;
    a->art_sent_ms = now;
    return 0;
}

/* A failed send is retried with the periodic resend, not at once (which would
 * spin while the pipe is full). Artifacts go first: the result only once the
 * broker has them all.
 *
 * One chunk is in flight per attempt and connection: a chunk sent on this
 * connection is not sent on it again, however late its answer (an ack of the
 * same position is the answer to something sent before it). Each copy is a
 * ~1.4 MB message the broker holds until it reads it, and a copy answered is
 * answered twice, so resending on a slow broker's every silence grew its
 * memory by hundreds of MiB (docs/benchmarks.md). Past the patience without an
 * answer the small RESULT goes instead: the broker answers a RESULT whose
 * artifacts are missing with the position it holds (ARTIFACT_ACK), after any
 * chunk still waiting before it on the connection. */
void worker_send_result(worker_t *self, attempt_t *a, int64_t now)
{
    if (a->art_index < worker_artifacts_count(a->artifacts)) {
        bool in_flight = a->art_sent_conn == self->conn_gen &&
                         a->art_sent_index == a->art_index && a->art_sent_offset == a->art_offset;
        if (!in_flight)
            send_artifact_chunk(self, a, now);
        else if (now - a->art_sent_ms >= self->heartbeat_ms * self->liveness)
            worker_send_msg(self, a->result, now);
        else
            return; /* its answer is on the way */
    } else
        worker_send_msg(self, a->result, now);
    a->result_sent_ms = now;
}

/* Hashes a slice of a's artifacts; once all are, its result is made with their
 * manifest (and any file that could not be read among its warnings) and sent. */
void worker_uploading_hash(worker_t *self, attempt_t *a, int64_t now_us)
{
    json_t *warnings = json_incref(json_object_get(a->pending, "warnings"));
    bool done = worker_artifacts_hash(a->artifacts, HASH_SLICE_BYTES, now_us + HASH_SLICE_US,
                                      &warnings);
    if (warnings)
        json_object_set(a->pending, "warnings", warnings);
    json_decref(warnings);
    if (!done)
        return;
    json_t *fields = a->pending;
    a->pending = NULL;
    json_object_set_new(fields, "artifacts", worker_artifacts_manifest(a->artifacts));
    a->result = syn_msg_new_with(SYN_MSG_RESULT, fields);
    if (a->result)
        worker_send_result(self, a, now_us / 1000);
    else
        syn_error("worker", "cannot build the result execution=%s phase=%s (out of memory?)",
                  a->execution_id, a->phase_id);
}

/* The broker stored a's artifacts up to (index, offset): the next chunk, or the
 * result once it has them all. An error (a limit, a stale attempt) ends the
 * sending: the result goes at once and the broker decides with it. */
void worker_uploading_ack(worker_t *self, const syn_msg_t *msg, int64_t now)
{
    const json_t *fields = syn_msg_fields(msg);
    json_int_t attempt = json_integer_value(json_object_get(fields, "attempt"));
    attempt_t *a = worker_attempt_find(
        self, json_string_value(json_object_get(fields, "execution_id")),
        json_string_value(json_object_get(fields, "phase_id")), (uint64_t)attempt, NULL);
    if (!a || !a->result || !a->artifacts)
        return;
    size_t count = worker_artifacts_count(a->artifacts);
    json_int_t at = json_integer_value(json_object_get(fields, "index"));
    json_int_t off = json_integer_value(json_object_get(fields, "offset"));
    uint64_t index = at > 0 ? (uint64_t)at : 0, offset = off > 0 ? (uint64_t)off : 0;
    const char *error = json_string_value(json_object_get(fields, "error"));
    if (error) {
        syn_warn("worker", "broker takes no more artifacts execution=%s phase=%s: %s",
                 a->execution_id, a->phase_id, error);
        a->art_index = count;
    } else if (index > count || (index < count && offset > worker_artifacts_size(a->artifacts, index))) {
        syn_warn("worker", "artifact ack out of range execution=%s phase=%s", a->execution_id,
                 a->phase_id);
        return;
    } else {
        a->art_index = (size_t)index;
        a->art_offset = offset;
    }
    worker_send_result(self, a, now);
}

