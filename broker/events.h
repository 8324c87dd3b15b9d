/* events: the execution history, as rows in the event log and messages on PUB.
 *
 * Each state change is one event {seq, time, execution_id, type, data}. emit
 * writes it into the open transaction and queues the PUB message in the outbox,
 * so subscribers only ever see committed events, in seq order; a subscriber that
 * missed some replays them from the log by seq. Types: ExecutionStarted,
 * PhaseQueued, PhaseStarted, PhaseCompleted, PhaseFailed, PhaseRetrying,
 * ExecutionCompleted, ExecutionFailed (more come with pause/cancel). */
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

/* Appends one event (data stolen; NULL means {}); execution_id NULL for events
 * about no execution (topic "-"). Returns its seq, or -1. */
int64_t broker_events_emit(broker_events_t *self, const char *execution_id, const char *type,
                           json_t *data);
/* The seq of the last event emitted (committed or about to be). */
int64_t broker_events_last_seq(const broker_events_t *self);
/* After a failed commit the queued events are gone: rewind to the stored seq. */
int broker_events_resync(broker_events_t *self);

#endif
