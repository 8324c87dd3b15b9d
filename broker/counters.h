/* counters: what the broker counts for GET /metrics and --metrics, taken from the
 * events it emits (one place every state change passes, so no decision file needs
 * to know about metrics): executions started and finished by workflow and status,
 * phases by outcome, a phase's run time and its wait in the ready queue, tokens and
 * cost by workflow and model, timed-out attempts. What is a state rather than a
 * history (queue depth, workers, slots, commit latency) is read from its owner when
 * the metrics are asked for (broker_counters_families). */
#ifndef SYN_BROKER_COUNTERS_H
#define SYN_BROKER_COUNTERS_H

#include "broker/execution.h"
#include "common/metrics.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct broker_counters_t broker_counters_t;

/* The broker's state at the moment the metrics are asked for. */
typedef struct {
    size_t ready_depth;       /* executions waiting for a slot */
    size_t workers_connected;
    size_t workers_healthy;
    int64_t slots_busy, slots_free;
    uint64_t attempts_lost, attempts_retried, attempts_timed_out;
    uint64_t commits;
    bool storage_full;        /* commits fail (broker/storage_full.h) */
    const syn_histogram_t *commit_seconds;
    const syn_histogram_t *dispatch_seconds; /* phase ready → ASSIGN sent */
} broker_gauges_t;

broker_counters_t *broker_counters_new(void);
void broker_counters_destroy(broker_counters_t **self_p);

/* Counts one event (events.h's types and data); status is the execution's status
 * after it (NULL: none), now_us its time. */
void broker_counters_event(broker_counters_t *self, const char *execution_id, const char *type,
                           const json_t *data, const broker_status_view_t *status,
                           int64_t now_us);

/* Every family (common/metrics.h's JSON shape), counters and gauges; NULL when out of
 * memory. */
json_t *broker_counters_families(const broker_counters_t *self, const broker_gauges_t *gauges);

#endif
