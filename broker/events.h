/* events: the execution history, as rows in the event log and messages on PUB.
 *
 * Each state change is one event {seq, time, execution_id, type, data}. emit
 * writes it into the open transaction and queues the PUB message in the outbox,
 * so subscribers only ever see committed events, in seq order; a subscriber that
 * missed some replays them from the log by seq (api: events.replay).
 *
 * Types and their data (every phase event also has phase_id and phase_name, the
 * phase's name; attempt events have attempt):
 *   ExecutionStarted    workflow_id, total_phases
 *   PhaseQueued         phase_id
 *   PhaseStarted        phase_id, attempt, worker
 *   PhaseOutput         phase_id, attempt, text, offset (bytes of this attempt's
 *                       stream before text), truncated:true on the last one when
 *                       the attempt passed 1 MiB (see output.h for the rate limit)
 *   PhaseToolCall       phase_id, attempt, name, detail (the worker's map, or
 *                       {truncated} when it is over 4 KiB)
 *   PhaseCompleted      phase_id, attempt, output_bytes, worker, and the attempt's
 *                       usage: input_tokens, output_tokens, cache_creation_tokens,
 *                       cache_read_tokens, total_tokens, cost_usd, num_turns,
 *                       duration_ms, model, tool_call_count, tool_calls
 *   PhaseFailed         phase_id, attempt, error (+ the same usage fields, without
 *                       tool_calls, when the failure came with a RESULT)
 *   PhaseRetrying       phase_id, attempt, next_attempt, reason, cause
 *                       (agent_failed | timeout | worker_lost | undelivered | refused |
 *                       worker_fault),
 *                       retry_in_seconds (+ usage fields for agent failures)
 *   ExecutionPaused     reason (or null), phase_id (the phase still running, or null)
 *   ExecutionResumed    status (running, or pending when nothing ran yet)
 *   MessageInjected     role, message, phase_id (the running phase told live, or
 *                       null), live
 *   ExecutionCompleted  completed_phases, total_phases
 *   ExecutionFailed     error, phase_id, completed_phases, total_phases
 *   ExecutionCancelled  error (the reason, or "Cancelled by user"), phase_id (the
 *                       phase that was cancelled, or null), completed_phases,
 *                       total_phases
 * The last three are terminal: nothing follows them for that execution.
 * Events about a worker (execution_id null, on the activity stream only):
 *   worker_joined       worker, id, host (its first READY)
 *   worker_lost         worker, id, host, reason (left, gone or silent)
 *   worker_unhealthy    worker, id, host, reason (a worker fault, or its READY)
 *   worker_healthy      worker, id, host (an unhealthy one takes work again)
 * And, with execution_id null too:
 *   ExecutionsDeleted   execution_ids (one retention batch; gateways drop their
 *                       cached statuses of them) */
#ifndef SYN_BROKER_EVENTS_H
#define SYN_BROKER_EVENTS_H

#include "broker/outbox.h"
#include "broker/store.h"

#include <jansson.h>
#include <stdint.h>

typedef struct broker_events_t broker_events_t;

/* Continues the sequence after the highest seq in the store; NULL on error. */
broker_events_t *broker_events_new(broker_store_t *store, broker_outbox_t *outbox);
void broker_events_destroy(broker_events_t **self_p);
struct broker_counters_t;
/* Every event emitted from now on is also counted there (broker/counters.h). */
void broker_events_count_into(broker_events_t *self, struct broker_counters_t *counters);

/* Appends one event (data stolen; NULL means {}); execution_id NULL for events
 * about no execution (topic "-"); exec_num its number in the store (0: looked
 * up). The PUB message also carries status (NULL:
 * none): the execution's status object as it is after this event. The log row
 * does not keep it (a replay rebuilds nothing from it), only subscribers see it.
 * Returns its seq, or -1. */
int64_t broker_events_emit_with_status(broker_events_t *self, const char *execution_id,
                                       int64_t exec_num, const char *type, json_t *data,
                                       const broker_status_view_t *status);
/* The seq of the last event emitted (committed or about to be). */
int64_t broker_events_last_seq(const broker_events_t *self);
/* After a failed commit the queued events are gone: rewind to the stored seq. */
int broker_events_resync(broker_events_t *self);

#endif
