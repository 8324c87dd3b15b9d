/* quarantine: whether a worker whose agents keep failing is a black hole, and
 * for how long it takes no work.
 *
 * A worker that fails `after` attempts in a row, each of a different execution,
 * within `window_ms`, while another worker offering one of its providers
 * completed an attempt in that window (broker_workers_peer_completed_ms),
 * is quarantined: unhealthy (broker/workers.h) for a while, then on probation
 * (healthy again, its streak forgotten). Each quarantine lasts twice the one
 * before (from window_ms, capped at BROKER_QUARANTINE_MAX_MS); a completed attempt
 * resets that. Faults the worker reports itself (result status "fault") are not
 * counted here: they make it unhealthy at once. after 0 turns quarantine off.
 * Pure: the engine feeds it outcomes and the clock. */
#ifndef SYN_BROKER_QUARANTINE_H
#define SYN_BROKER_QUARANTINE_H

#include <stdbool.h>
#include <stdint.h>

#define BROKER_QUARANTINE_AFTER 3
#define BROKER_QUARANTINE_WINDOW_MS 60000
#define BROKER_QUARANTINE_MAX_MS (10 * 60 * 1000)

typedef struct {
    int64_t after;     /* failures in a row (0: never quarantine) */
    int64_t window_ms; /* within which they count, and the first quarantine's length */
} broker_quarantine_config_t;

/* One worker's record. */
typedef struct {
    int64_t streak;             /* failures in a row, of different executions */
    int64_t streak_started_ms;  /* the first of them */
    char last_execution[64];    /* the last failed one's id */
    int64_t until_ms;           /* quarantined until then; 0: not quarantined */
    int64_t next_length_ms;     /* the next quarantine's length (0: window_ms) */
} broker_quarantine_t;

/* An attempt of execution_id failed on this worker at now_ms; the last time
 * another worker completed one (0: never). True when the worker is to be
 * quarantined now (until_ms is then set). */
bool broker_quarantine_failed(broker_quarantine_t *self, const broker_quarantine_config_t *config,
                              const char *execution_id, int64_t others_succeeded_ms,
                              int64_t now_ms);
/* An attempt completed on this worker: its streak and back-off are forgotten. */
void broker_quarantine_completed(broker_quarantine_t *self);
/* True once a quarantine is over (until_ms is then cleared, the streak forgotten). */
bool broker_quarantine_over(broker_quarantine_t *self, int64_t now_ms);

#endif
