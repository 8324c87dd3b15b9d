/* pulling: the worker's side of ARTIFACT_GET and ARTIFACT_DATA (docs/protocol.md).
 *
 * An attempt whose earlier phases left files starts its agent only once they are
 * in its workspace (artifact_pull.h). For each such attempt the loop asks the
 * broker for the chunk its pull wants, one request in flight: the answer is
 * written out and the next asked for at once; a request unanswered for the
 * broker's patience (heartbeat × liveness), or lost with a connection, is asked
 * again. Requests wait while the broker has not answered our READY (it may not
 * know us yet). A failed pull fails the attempt through its run, with the
 * reason; the attempt's time limit covers the pull as it covers the clones. It
 * stands alone to keep the loop (worker.c) about the loop. */
#include "worker/worker_internal.h"

#include "worker/artifact_pull.h"

#include <inttypes.h>

/* The pull of a's run while it still wants chunks, else NULL. */
static worker_pull_t *wanting(attempt_t *a)
{
    worker_pull_t *pull = a->run ? worker_run_pull(a->run) : NULL;
    return pull && !worker_pull_done(pull) && !worker_pull_error(pull) ? pull : NULL;
}

static void ask(worker_t *self, attempt_t *a, worker_pull_t *pull, int64_t now)
{
    json_t *fields = worker_pull_request(pull);
    if (fields) {
        json_object_set_new(fields, "execution_id", json_string(a->execution_id));
        json_object_set_new(fields, "phase_id", json_string(a->phase_id));
        json_object_set_new(fields, "attempt", json_integer((json_int_t)a->attempt));
    }
    worker_send(self, SYN_MSG_ARTIFACT_GET, fields, now);
    a->pull_sent_ms = now; /* even when it failed: asked again after the patience */
}

void worker_pulling_step(worker_t *self, attempt_t *a, int64_t now)
{
    worker_pull_t *pull = wanting(a);
    if (!pull || !self->conn || !self->registered)
        return;
    int64_t patience = self->heartbeat_ms * self->liveness;
    if (a->pull_sent_ms < 0 || now - a->pull_sent_ms >= patience)
        ask(self, a, pull, now);
}

int64_t worker_pulling_wakeup(worker_t *self, attempt_t *a)
{
    if (!wanting(a) || !self->conn || !self->registered)
        return -1;
    return a->pull_sent_ms < 0 ? 0 : a->pull_sent_ms + self->heartbeat_ms * self->liveness;
}

void worker_pulling_data(worker_t *self, const syn_msg_t *msg, int64_t now)
{
    const json_t *fields = syn_msg_fields(msg);
    json_int_t attempt = json_integer_value(json_object_get(fields, "attempt"));
    attempt_t *a = worker_attempt_find(
        self, json_string_value(json_object_get(fields, "execution_id")),
        json_string_value(json_object_get(fields, "phase_id")), (uint64_t)attempt, NULL);
    worker_pull_t *pull = a ? wanting(a) : NULL;
    if (!pull || !worker_pull_take(pull, fields))
        return; /* a late repeat, or for an attempt that ended: nothing waits for it */
    if (worker_pull_error(pull)) {
        syn_warn("worker", "cannot pull artifacts execution=%s phase=%s attempt=%" PRIu64 ": %s",
                 a->execution_id, a->phase_id, a->attempt, worker_pull_error(pull));
        a->pull_sent_ms = -1;
    } else if (worker_pull_done(pull)) {
        syn_info("worker", "pulled %zu artifacts of earlier phases execution=%s phase=%s",
                 worker_pull_file_count(pull), a->execution_id, a->phase_id);
        a->pull_sent_ms = -1;
    } else {
        ask(self, a, pull, now);
    }
}
