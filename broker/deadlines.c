/* deadlines: time-driven decisions (deadlines.h). They stand alone because each
 * is a rule about a clock (the backstop, the adoption window, the back-off's
 * end), read and changed without the message handling around them. */
#include "broker/deadlines.h"

#include "broker/control.h"
#include "broker/engine_internal.h"
#include "broker/fence.h"
#include "broker/lost.h"
#include "broker/output.h"

#include <stdlib.h>

int64_t broker_deadlines_window_ms(const broker_engine_t *self)
{
    return self->config.heartbeat_ms * self->config.liveness;
}

/* However slowly the READYs come, the window closes this many adoption windows
 * after it opened: a worker that never returns holds its attempts that long. */
#define ADOPTION_CAP 3

int64_t broker_deadlines_adoption_ms(const broker_engine_t *self)
{
    return 2 * broker_deadlines_window_ms(self);
}

/* How long after dispatch the broker gives up on a result: the phase timeout,
 * the worker's kill grace and one liveness window for the result to travel. */
int64_t broker_deadlines_backstop_ms(const broker_engine_t *self, const broker_phase_t *phase)
{
    return phase->timeout_seconds * 1000 + self->config.kill_grace_ms +
           broker_deadlines_window_ms(self);
}

/* The deadlines of exec's current phase that have passed. */
static void check_deadline(broker_engine_t *self, broker_execution_t *exec, int64_t now_ms)
{
    broker_phase_t *phase = broker_execution_active_phase(exec);
    if (!phase)
        return;
    if (phase->status == BROKER_PHASE_QUEUED) {
        if (phase->not_before_ms && now_ms >= phase->not_before_ms) {
            phase->not_before_ms = 0;
            engine_enqueue(self, exec, true);
        }
        return;
    }
    if (phase->stream_len > 0)
        broker_output_flush(self, exec, phase, now_ms, false);
    if (!phase->deadline_ms || now_ms < phase->deadline_ms)
        return;
    if (!phase->worker_key) {
        if (now_ms < self->adoption_until_ms)
            return; /* READYs still coming: its worker may be among them */
        char *why = engine_strdupf("worker %s did not come back after a broker restart",
                                   phase->worker_name ? phase->worker_name : "(unknown)");
        engine_attempt_lost(self, exec, phase, BROKER_ATTEMPT_LOST, why ? why : "worker gone",
                            now_ms);
        free(why);
        return;
    }
    broker_control_cancel_holder(self, exec, phase);
    self->stats.timed_out++;
    char *why = engine_strdupf("no result within the timeout of %lld s (worker %s)",
                               (long long)phase->timeout_seconds,
                               phase->worker_name ? phase->worker_name : "?");
    engine_attempt_failed(self, exec, phase, BROKER_ATTEMPT_TIMEOUT, NULL, why ? why : "timeout",
                          NULL, now_ms);
    free(why);
}

void broker_deadlines_adoption_progress(broker_engine_t *self, int64_t now_ms)
{
    if (now_ms >= self->adoption_until_ms)
        return;
    int64_t until = now_ms + broker_deadlines_window_ms(self);
    if (until > self->adoption_cap_ms)
        until = self->adoption_cap_ms;
    if (until > self->adoption_until_ms)
        self->adoption_until_ms = until;
}

void broker_engine_adoption_open(broker_engine_t *self, int64_t now_ms)
{
    bool waiting = false;
    for (broker_execution_t *exec = zlistx_first(self->by_creation); exec;
         exec = zlistx_next(self->by_creation)) {
        broker_phase_t *phase = broker_execution_active_phase(exec);
        if (phase && phase->status == BROKER_PHASE_RUNNING && !phase->worker_key &&
            phase->deadline_ms) {
            phase->deadline_ms = now_ms + broker_deadlines_adoption_ms(self);
            waiting = true;
        }
    }
    /* Nothing to adopt (a first start): a worker lost now loses its attempts at
     * once, as at any other time. */
    if (!waiting)
        return;
    self->adoption_until_ms = now_ms + broker_deadlines_adoption_ms(self);
    self->adoption_cap_ms = now_ms + ADOPTION_CAP * broker_deadlines_adoption_ms(self);
}

/* A set of artifacts silent this long is given up (its worker resends it whole). */
#define ARTIFACT_IDLE_MS (10 * 60 * 1000)

static bool artifact_attempt_current(void *arg, const char *execution_id, const char *phase_id,
                                     int64_t attempt)
{
    broker_execution_t *exec = NULL;
    return broker_fence_current(arg, execution_id, phase_id, attempt, &exec) != NULL;
}

void broker_engine_tick(broker_engine_t *self, int64_t now_ms)
{
    engine_clock(self, now_ms);
    broker_lost_silent(self, now_ms);
    /* Quarantines that are over: the worker is on probation (healthy again). */
    for (size_t i = 0; i < broker_workers_count(self->workers); i++) {
        broker_worker_t *w = broker_workers_at(self->workers, i);
        if (broker_quarantine_over(&w->quarantine, now_ms))
            broker_engine_worker_unhealthy(self, w, NULL);
    }
    for (broker_execution_t *exec = zlistx_first(self->by_creation); exec;
         exec = zlistx_next(self->by_creation))
        check_deadline(self, exec, now_ms);
    /* Sets of artifacts whose attempt is over without completing (its worker died
     * while sending, say), or silent a long while, are discarded. */
    if (broker_artifacts_receiving(self->artifacts) > 0)
        broker_artifacts_sweep(self->artifacts, artifact_attempt_current, self, now_ms,
                               ARTIFACT_IDLE_MS);
    engine_bury(self);
}
