/* ready: a worker's READY (ready.h). It stands alone because it is where a
 * worker's identity is decided (its name, its key) and where work carries over
 * a reconnect or a broker restart. */
#include "broker/ready.h"

#include "broker/deadlines.h"
#include "broker/engine_internal.h"
#include "broker/fence.h"
#include "common/clock.h"
#include "common/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Takes over the attempts a READY lists: the current ones are adopted (their
 * backstop runs from now, or, for ones still waiting for a slot, from when the
 * worker reports them started); stale or unknown ones are cancelled. */
static void adopt_listed(broker_engine_t *self, broker_worker_t *worker, const json_t *list,
                         bool waiting, int64_t now_ms, size_t *adopted, size_t *stale)
{
    size_t i;
    json_t *r;
    json_array_foreach(list, i, r)
    {
        engine_ref_t ref;
        if (!engine_read_ref(r, &ref) ||
            broker_worker_find(worker, ref.execution_id, ref.phase_id, ref.attempt))
            continue;
        broker_execution_t *exec = NULL;
        bool refused; /* then cancelled like a stale one */
        broker_phase_t *phase = broker_fence_admit(self, worker, ref.execution_id, ref.phase_id,
                                                   ref.attempt, "adoption", &exec, &refused);
        if (phase) {
            if (phase->worker_key && strcmp(phase->worker_key, worker->key) != 0)
                broker_fence_release_holder(self, exec, phase);
            engine_bind_worker(phase, worker,
                               waiting ? 0 : now_ms + broker_deadlines_backstop_ms(self, phase));
            broker_worker_hold(worker, exec->id, phase->phase_id, phase->attempt, true);
            (*adopted)++;
            self->stats.adopted++;
            syn_info("broker", "adopted execution=%s phase=%s attempt=%lld worker=%s%s",
                     exec->id, phase->phase_id, (long long)phase->attempt, worker->name,
                     waiting ? " (waiting for a slot)" : "");
        } else {
            broker_worker_hold(worker, ref.execution_id, ref.phase_id, ref.attempt, false);
            engine_send_ref(self, worker, SYN_MSG_CANCEL, ref.execution_id, ref.phase_id,
                            ref.attempt);
            (*stale)++;
        }
    }
}

/* A draining worker starts nothing new, so of what it holds only what its
 * READY lists (running or waiting) may have run: the rest was assigned but had
 * not reached it when it wrote the READY, and is refused on arrival — or never
 * arrives, when the worker leaves first (lost.c hands those back uncounted). */
static void mark_drain_claims(broker_worker_t *worker, const json_t *running,
                              const json_t *waiting)
{
    for (size_t i = 0; i < worker->held_count; i++)
        worker->held[i].claimed = false;
    const json_t *lists[] = {running, waiting};
    for (size_t l = 0; l < 2; l++) {
        size_t i;
        json_t *r;
        json_array_foreach(lists[l], i, r)
        {
            engine_ref_t ref;
            broker_held_t *held = engine_read_ref(r, &ref)
                                      ? broker_worker_find(worker, ref.execution_id,
                                                           ref.phase_id, ref.attempt)
                                      : NULL;
            if (held)
                held->claimed = true;
        }
    }
}

/* A READY claiming a name another key holds: the claimant hears why, once (a
 * worker told `disconnect` says READY again, which would loop), and is ignored
 * from then on, so no phase ever goes to it. The holder keeps its name. */
static void refuse_claim(broker_engine_t *self, const void *identity, size_t identity_len,
                         const char *name, const char *peer_key, const broker_worker_t *holder)
{
    if (broker_workers_refused(self->workers, identity, identity_len))
        return;
    broker_workers_refuse(self->workers, identity, identity_len);
    char *reason = engine_strdupf("worker name %s is held by another key", name);
    engine_send_to_worker(self, identity, identity_len, SYN_MSG_DISCONNECT,
                          json_pack("{s:s}", "reason", reason ? reason : "worker name held"));
    free(reason);
    char cause[256];
    snprintf(cause, sizeof cause, "%.8s %s", peer_key, name);
    syn_ratelog_log(self->claims, cause, syn_mono_ms(), SYN_LOG_WARN, "broker",
                    "refused worker name=%s key=%.8s: the name is held by key=%.8s", name,
                    peer_key, holder->peer_key);
}

void broker_ready_handle(broker_engine_t *self, const void *identity, size_t identity_len,
                         const char *peer_key, const char *peer_address, const json_t *fields,
                         int64_t now_ms)
{
    const char *name = json_string_value(json_object_get(fields, "worker"));
    const json_t *slots = json_object_get(fields, "slots");
    const json_t *providers = json_object_get(fields, "providers");
    const json_t *running = json_object_get(fields, "running");
    const json_t *waiting = json_object_get(fields, "waiting");
    if (!name || !json_is_integer(slots) || json_integer_value(slots) < 1 ||
        !json_is_array(running)) {
        syn_warn("broker", "ignoring a malformed READY");
        return;
    }
    const broker_worker_t *holder =
        broker_workers_name_holder(self->workers, name, peer_key, identity, identity_len);
    if (holder) {
        refuse_claim(self, identity, identity_len, name, peer_key, holder);
        return;
    }
    broker_workers_unrefuse(self->workers, identity, identity_len);
    bool joined = broker_workers_lookup(self->workers, identity, identity_len) == NULL;
    /* A READY from a registered identity (the same process and socket, e.g. told
     * twice to re-register) keeps what it holds: an ASSIGN may be in flight that
     * its running list could not show yet. */
    broker_worker_t *worker = broker_workers_register(
        self->workers, identity, identity_len, name, json_integer_value(slots),
        json_is_array(providers) ? providers : NULL, now_ms);
    if (!worker || broker_worker_set_peer_key(worker, peer_key) < 0) {
        syn_error("broker", "out of memory registering worker %s", name);
        return;
    }
    worker->last_heartbeat_at = syn_now_us();
    if (broker_worker_set_about(worker, json_string_value(json_object_get(fields, "host")),
                                json_string_value(json_object_get(fields, "version")),
                                peer_address) < 0)
        syn_error("broker", "out of memory recording worker %s's host", name);
    if (joined)
        engine_emit_worker(self, "worker_joined", worker, NULL);
    const json_t *prefetch = json_object_get(fields, "prefetch");
    worker->prefetch = json_is_integer(prefetch) ? json_integer_value(prefetch) : 0;
    /* A worker that cannot run its agents says so (healthy: false) and says
     * again when its check passes. */
    const json_t *healthy = json_object_get(fields, "healthy");
    const char *why = json_string_value(json_object_get(fields, "unhealthy_reason"));
    if (json_is_false(healthy))
        broker_engine_worker_unhealthy(self, worker, why ? why : "unhealthy");
    else if (worker->quarantine.until_ms == 0) /* a quarantine ends on its own clock */
        broker_engine_worker_unhealthy(self, worker, NULL);
    bool was_draining = worker->draining;
    worker->draining = json_is_true(json_object_get(fields, "draining"));
    broker_workers_reindex(self->workers, worker);
    if (worker->draining && !was_draining)
        syn_info("broker", "worker draining worker=%s held=%zu", worker->name,
                 worker->held_count);
    size_t adopted = 0, stale = 0;
    adopt_listed(self, worker, running, false, now_ms, &adopted, &stale);
    adopt_listed(self, worker, waiting, true, now_ms, &adopted, &stale);
    if (worker->draining)
        mark_drain_claims(worker, running, waiting);
    if (adopted > 0)
        broker_deadlines_adoption_progress(self, now_ms);
    syn_info("broker",
             "worker ready worker=%s slots=%lld prefetch=%lld running=%zu waiting=%zu "
             "adopted=%zu stale=%zu",
             worker->name, (long long)worker->slots, (long long)worker->prefetch,
             json_array_size(running), json_array_size(waiting), adopted, stale);
}
