/* attempts: the attempts a worker holds — waiting for a slot, running, or done
 * with a result kept until the broker acknowledges it (worker_internal.h). */
#include "worker/worker_internal.h"
#include "worker/artifacts.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* Results kept for acknowledgement; past this the oldest is dropped (logged):
 * a broker that never acknowledges must not grow the worker without bound. */
#define MAX_UNACKED 1024

void worker_attempt_destroy(attempt_t **a_p)
{
    attempt_t *a = *a_p;
    if (!a)
        return;
    worker_run_destroy(&a->run);
    syn_msg_destroy(&a->result);
    syn_msg_destroy(&a->assign);
    worker_artifacts_destroy(&a->artifacts);
    json_decref(a->pending);
    json_decref(a->injects);
    free(a->execution_id);
    free(a->workflow_id);
    free(a->phase_id);
    free(a);
    *a_p = NULL;
}

json_t *worker_attempt_ref(const attempt_t *a)
{
    return json_pack("{s:s, s:s, s:I}", "execution_id", a->execution_id, "phase_id", a->phase_id,
                     "attempt", (json_int_t)a->attempt);
}

attempt_t *worker_attempt_new(const char *execution_id, const char *workflow_id,
                              const char *phase_id, uint64_t attempt)
{
    attempt_t *a = calloc(1, sizeof *a);
    if (!a)
        return NULL;
    a->execution_id = strdup(execution_id);
    a->workflow_id = strdup(workflow_id ? workflow_id : "");
    a->phase_id = strdup(phase_id);
    a->attempt = attempt;
    a->output_sent_ms = -1;
    a->result_sent_ms = -1;
    a->pull_sent_ms = -1;
    if (!a->execution_id || !a->workflow_id || !a->phase_id)
        worker_attempt_destroy(&a);
    return a;
}

attempt_t *worker_attempt_find(worker_t *self, const char *execution_id, const char *phase_id,
                               uint64_t attempt, size_t *index)
{
    for (size_t i = 0; i < self->count; i++) {
        attempt_t *a = self->attempts[i];
        if (a->attempt == attempt && !strcmp(a->execution_id, execution_id) &&
            !strcmp(a->phase_id, phase_id)) {
            if (index)
                *index = i;
            return a;
        }
    }
    return NULL;
}

void worker_attempt_remove(worker_t *self, size_t index)
{
    attempt_t *a = self->attempts[index];
    if (a->run)
        self->running--;
    if (a->assign)
        self->waiting--;
    worker_attempt_destroy(&a);
    memmove(&self->attempts[index], &self->attempts[index + 1],
            (self->count - index - 1) * sizeof(attempt_t *));
    self->count--;
}

/* Keeps the number of unacknowledged results bounded by dropping the oldest. */
void worker_attempts_bound_unacked(worker_t *self)
{
    size_t unacked = 0;
    for (size_t i = 0; i < self->count; i++)
        unacked += self->attempts[i]->result != NULL;
    for (size_t i = 0; i < self->count && unacked > MAX_UNACKED;) {
        attempt_t *a = self->attempts[i];
        if (!a->result) {
            i++;
            continue;
        }
        syn_warn("worker", "dropping unacknowledged result execution=%s phase=%s attempt=%" PRIu64
                 " (more than %d waiting)", a->execution_id, a->phase_id, a->attempt,
                 MAX_UNACKED);
        worker_attempt_remove(self, i);
        unacked--;
    }
}

int worker_attempt_add(worker_t *self, attempt_t *a)
{
    if (self->count == self->cap) {
        size_t cap = self->cap ? self->cap * 2 : 16;
        attempt_t **grown = realloc(self->attempts, cap * sizeof *grown);
        if (!grown)
            return -1;
        self->attempts = grown;
        self->cap = cap;
    }
    self->attempts[self->count++] = a;
    return 0;
}
