/* fence: which reports the broker takes (fence.h). It stands alone because it
 * is the one rule between a worker and another's work: every path that acts on
 * a worker's word about an attempt (READY, PROGRESS, RESULT, an ASSIGN that
 * could not be sent) asks here first. */
#include "broker/fence.h"

#include "broker/engine_internal.h"
#include "common/clock.h"
#include "common/log.h"

#include <stdio.h>
#include <string.h>

/* The phase (execution_id, phase_id) if attempt is its current, running one. */
broker_phase_t *broker_fence_current(broker_engine_t *self, const char *execution_id,
                                     const char *phase_id, int64_t attempt,
                                     broker_execution_t **exec_out)
{
    broker_execution_t *exec = execution_id ? zhashx_lookup(self->active, execution_id) : NULL;
    broker_phase_t *phase = exec && phase_id ? broker_execution_find_phase(exec, phase_id) : NULL;
    if (!phase || phase->status != BROKER_PHASE_RUNNING || phase->attempt != attempt)
        return NULL;
    *exec_out = exec;
    return phase;
}

/* The worker that holds phase's current attempt lets go of it (if any). */
void broker_fence_release_holder(broker_engine_t *self, broker_execution_t *exec,
                                 broker_phase_t *phase)
{
    broker_worker_t *holder = broker_workers_lookup_key(self->workers, phase->worker_key);
    if (holder)
        broker_worker_release(holder, exec->id, phase->phase_id, phase->attempt);
}

/* Whether worker may take over or report phase's current attempt, which another
 * worker holds. Without CURVE any worker may (a restarted process says READY from a
 * new identity). With it, only one with the holder's key, so a worker key, stolen or
 * not, cannot take or end the attempts of another host's worker by naming them (ids
 * are no secret: a worker learns them from its own phases). A holder the broker does
 * not know (after a restart, until it says READY) leaves the attempt to any worker. */
bool broker_fence_may_take_over(broker_workers_t *workers, const broker_phase_t *phase,
                                const broker_worker_t *worker)
{
    if (!phase->worker_key || strcmp(phase->worker_key, worker->key) == 0 || !worker->peer_key)
        return true;
    const broker_worker_t *holder = broker_workers_lookup_key(workers, phase->worker_key);
    return !holder || !holder->peer_key || strcmp(holder->peer_key, worker->peer_key) == 0;
}

/* Counts and logs (once a minute per key) a report refused by the fence. */
static void refuse(broker_engine_t *self, const broker_execution_t *exec,
                   const broker_phase_t *phase, const broker_worker_t *worker, const char *what)
{
    self->stats.stale++;
    char cause[64];
    snprintf(cause, sizeof cause, "take-over %.8s", worker->peer_key);
    syn_ratelog_log(self->claims, cause, syn_mono_ms(), SYN_LOG_WARN, "broker",
                    "refused %s execution=%s phase=%s attempt=%lld from worker=%s key=%.8s: "
                    "another key's worker holds it",
                    what, exec->id, phase->phase_id, (long long)phase->attempt, worker->name,
                    worker->peer_key);
}

broker_phase_t *broker_fence_admit(broker_engine_t *self, const broker_worker_t *worker,
                                   const char *execution_id, const char *phase_id,
                                   int64_t attempt, const char *what,
                                   broker_execution_t **exec_out, bool *refused)
{
    *refused = false;
    broker_phase_t *phase = broker_fence_current(self, execution_id, phase_id, attempt, exec_out);
    if (phase && !broker_fence_may_take_over(self->workers, phase, worker)) {
        refuse(self, *exec_out, phase, worker, what);
        *refused = true;
        return NULL;
    }
    return phase;
}
