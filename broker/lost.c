/* lost: lost workers (lost.h). It stands alone so the three ways a worker is
 * lost end the same way: its attempts lost, the worker forgotten. */
#include "broker/lost.h"

#include "broker/deadlines.h"
#include "broker/engine_internal.h"
#include "broker/fence.h"
#include "common/clock.h"
#include "common/log.h"

#include <stdlib.h>
#include <string.h>

/* Every current attempt the worker holds is lost (it died or left) — or, for a
 * worker that may come back (its connection went or it fell silent) while a
 * restart's adoption window is open, waits for it until the window closes: a
 * thousand workers reconnecting to a broker that just started replace sockets
 * the broker had barely registered, and their fresh READYs list these
 * attempts (deadlines.h). */
static void lose_worker_attempts(broker_engine_t *self, broker_worker_t *worker,
                                 const char *reason, bool may_return, int64_t now_ms)
{
    bool wait = may_return && now_ms < self->adoption_until_ms;
    /* A drained worker leaving: what its draining READY did not list never ran
     * (ready.c), so it goes back as refused, not counted as an attempt. */
    bool drained = worker->draining && !may_return;
    while (worker->held_count > 0) {
        broker_held_t *held = &worker->held[worker->held_count - 1];
        broker_execution_t *exec = NULL;
        broker_phase_t *phase = held->current
                                    ? broker_fence_current(self, held->execution_id, held->phase_id,
                                                           held->attempt, &exec)
                                    : NULL;
        bool bound_here =
            phase && phase->worker_key && strcmp(phase->worker_key, worker->key) == 0;
        bool never_ran = drained && !held->claimed;
        broker_worker_release(worker, held->execution_id, held->phase_id, held->attempt);
        if (bound_here && never_ran) {
            engine_attempt_refused(self, exec, phase, worker, "worker is shutting down", now_ms);
        } else if (bound_here && wait) {
            engine_clear_binding(phase);
            phase->deadline_ms = self->adoption_until_ms;
        } else if (bound_here) {
            engine_attempt_lost(self, exec, phase, BROKER_ATTEMPT_LOST, reason, now_ms);
        }
    }
}

/* Logs why (at level), loses what the worker held and forgets it. reason NULL
 * (out of memory) gives way to fallback. */
static void lose_worker(broker_engine_t *self, broker_worker_t *worker, syn_log_level_t level,
                        const char *what, char *reason, const char *fallback, bool may_return,
                        int64_t now_ms)
{
    syn_log(level, "broker", "%s worker=%s held=%zu", what, worker->name, worker->held_count);
    engine_emit_worker(self, "worker_lost", worker, reason ? reason : fallback);
    lose_worker_attempts(self, worker, reason ? reason : fallback, may_return, now_ms);
    broker_workers_remove_lost(self->workers, worker, reason ? reason : fallback, syn_now_us());
    free(reason);
}

void broker_lost_disconnected(broker_engine_t *self, broker_worker_t *worker, int64_t now_ms)
{
    lose_worker(self, worker, SYN_LOG_INFO, "worker left",
                engine_strdupf("worker %s disconnected", worker->name), "worker disconnected",
                false, now_ms);
}

void broker_lost_unreachable(broker_engine_t *self, broker_worker_t *worker)
{
    if (worker->unreachable)
        return;
    worker->unreachable = true;
    broker_workers_reindex(self->workers, worker);
    self->unreachable_marked = true;
}

void broker_lost_unreachable_now(broker_engine_t *self, int64_t now_ms)
{
    if (!self->unreachable_marked)
        return;
    self->unreachable_marked = false;
    /* Removing one reorders the registry: start over after each. */
    for (size_t i = 0; i < broker_workers_count(self->workers);) {
        broker_worker_t *worker = broker_workers_at(self->workers, i);
        if (!worker->unreachable) {
            i++;
            continue;
        }
        /* A draining worker's connection closing is its leaving: its goodbye
         * can be lost on the way (a socket closed with unread data in it ends
         * with a reset, which drops what the broker's side had not read). */
        if (worker->draining)
            broker_lost_disconnected(self, worker, now_ms);
        else
            lose_worker(self, worker, SYN_LOG_WARN, "worker gone",
                        engine_strdupf("the connection to worker %s is gone", worker->name),
                        "worker gone", true, now_ms);
        i = 0;
    }
    engine_bury(self);
}

void broker_lost_silent(broker_engine_t *self, int64_t now_ms)
{
    int64_t window = broker_deadlines_window_ms(self);
    broker_worker_t *dead;
    while ((dead = broker_workers_expired(self->workers, now_ms, window)))
        lose_worker(self, dead, SYN_LOG_WARN, "worker lost",
                    engine_strdupf("worker %s stopped responding (silent for more than %lld ms)",
                                   dead->name, (long long)window),
                    "worker lost", true, now_ms);
}
