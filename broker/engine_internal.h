/* engine_internal: what the engine's files share, and nothing outside them uses.
 *
 * The engine is one object (broker_engine_t, engine.h) whose decisions live in
 * files named for them: retry.c (whether a phase runs again), dispatch.c and
 * prompt.c (what goes to which worker), fence.c (which reports are taken),
 * output.c (the output stream), lost.c (lost workers), ready.c (a worker's
 * READY), reports.c (PROGRESS and RESULT), control.c (pause, resume, cancel,
 * inject), deadlines.c (time). engine.c keeps the active set and the outcomes
 * every one of them leads to (a phase completed, failed, requeued; an execution
 * finished), so each state change is written in one place.
 *
 * Every function here follows the engine's rules: it changes the in-memory
 * state through the lifecycle tables, writes it through to the store in the
 * open transaction and puts what it says in the outbox; an execution it ends is
 * retired, and freed by engine_bury() when the entry point returns. */
#ifndef SYN_BROKER_ENGINE_INTERNAL_H
#define SYN_BROKER_ENGINE_INTERNAL_H

#include "broker/engine.h"
#include "broker/usage.h"
#include "common/metrics.h"
#include "common/ratelog.h"

#include <czmq.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

struct broker_engine_t {
    broker_store_t *store;
    broker_events_t *events;
    broker_outbox_t *outbox;
    broker_workers_t *workers;
    broker_engine_config_t config;
    zhashx_t *active;       /* id → broker_execution_t (not owned here) */
    zlistx_t *by_creation;  /* owns the executions, oldest first */
    zlistx_t *ready;        /* executions whose current phase waits for a slot */
    zlistx_t *graveyard;    /* retired during this entry point, freed at its end */
    syn_ratelog_t *claims;  /* refused name claims and take-overs: one line per cause a minute */
    zhashx_t *running_by_workflow; /* workflow id → executions holding a place (limits.c) */
    size_t running;         /* executions holding a place, all workflows */
    uint64_t queue_gen;     /* bumped by every change of the ready queue (limits.c) */
    uint64_t positions_gen; /* queue_gen when the waiting were last numbered */
    broker_artifacts_t *artifacts; /* sets of artifacts being received (artifacts.h) */
    int64_t adoption_until_ms; /* a restart's adoption window ends then (deadlines.h) */
    bool unreachable_marked;   /* some worker is marked unreachable (lost.h) */
    int64_t adoption_cap_ms;   /* and however long READYs keep coming, by then */
    /* The latest now_ms an entry point was given (engine_clock): what a message
     * queued for a worker is stamped with (heartbeats go to the workers sent
     * nothing for an interval). Never later than the real time of the send, so
     * a heartbeat may come early, never late. */
    int64_t clock_ms;
    broker_engine_stats_t stats;
    /* Dispatch latency: when each phase assigned since the last flush became
     * ready, observed once its ASSIGN is sent (broker_engine_assignments_sent). */
    int64_t *assigned_ready_us;
    size_t assigned_count, assigned_cap;
    syn_histogram_t dispatch_seconds;
};

/* An attempt as the worker messages name it. */
typedef struct {
    const char *execution_id;
    const char *phase_id;
    int64_t attempt;
} engine_ref_t;

/* The reference in fields; false when one of its three parts is missing. */
bool engine_read_ref(const json_t *fields, engine_ref_t *ref);

/* printf into a fresh string; never cuts a message (a cut could split a UTF-8
 * character and make the text unusable as JSON). NULL when out of memory. */
char *engine_strdupf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The worker holding a running phase's current attempt, and its deadline. */
/* Moves clock_ms on to now_ms (never back). */
void engine_clock(broker_engine_t *self, int64_t now_ms);
void engine_bind_worker(broker_phase_t *phase, const broker_worker_t *worker, int64_t deadline);
void engine_clear_binding(broker_phase_t *phase);

/* Write-through to the store (failures are logged). */
void engine_save_execution(broker_engine_t *self, broker_execution_t *exec);
void engine_save_phase(broker_engine_t *self, broker_execution_t *exec, broker_phase_t *phase);
/* Status changes through the lifecycle tables: false (logged loudly, nothing
 * changed) when the tables forbid it. */
bool engine_move_phase(broker_execution_t *exec, broker_phase_t *phase, broker_phase_status_t to);
bool engine_move_execution(broker_execution_t *exec, broker_exec_status_t to);

/* {phase_id, attempt}: the start of every attempt event's data. */
json_t *engine_phase_event(const broker_phase_t *phase);
/* An event about exec (data stolen), with its status as it is now. */
void engine_emit(broker_engine_t *self, broker_execution_t *exec, const char *type, json_t *data);

/* Messages for a worker, sent after the commit. msg and fields are taken; NULL
 * (could not be made) is logged. */
void engine_queue_for_worker(broker_engine_t *self, const void *identity, size_t identity_len,
                             syn_msg_type_t type, syn_msg_t *msg);
void engine_send_to_worker(broker_engine_t *self, const void *identity, size_t identity_len,
                           syn_msg_type_t type, json_t *fields);
/* A message whose fields are an attempt's reference (CANCEL, RESULT_ACK). */
void engine_send_ref(broker_engine_t *self, const broker_worker_t *worker, syn_msg_type_t type,
                     const char *execution_id, const char *phase_id, int64_t attempt);

/* The active set: the ready queue (front: a retry keeps its place), retiring
 * an execution that reached a terminal state, freeing the retired ones. */
void engine_enqueue(broker_engine_t *self, broker_execution_t *exec, bool front);
void engine_dequeue(broker_engine_t *self, broker_execution_t *exec);
void engine_retire(broker_engine_t *self, broker_execution_t *exec);
void engine_bury(broker_engine_t *self);

/* Outcomes. */
void engine_queue_phase(broker_engine_t *self, broker_execution_t *exec, broker_phase_t *phase);
/* Records the end of the current attempt (after the output it streamed). */
void engine_finish_attempt(broker_engine_t *self, broker_execution_t *exec,
                           broker_phase_t *phase, broker_attempt_status_t status,
                           const int64_t *exit_code, const char *error);
void engine_complete_phase(broker_engine_t *self, broker_execution_t *exec,
                           broker_phase_t *phase, const char *output, const int64_t *exit_code,
                           const broker_usage_t *usage);
void engine_fail_phase(broker_engine_t *self, broker_execution_t *exec, broker_phase_t *phase,
                       const char *reason, const broker_usage_t *usage);
/* The execution fails with error as it is (PhaseFailed with reason for phase, when
 * it is given: queued or running; later phases skipped, ExecutionFailed). */
void engine_fail_execution(broker_engine_t *self, broker_execution_t *exec,
                           broker_phase_t *phase, const char *reason, const char *error,
                           const broker_usage_t *usage);
/* The current attempt ended without a result; retry.h decides what follows. */
void engine_attempt_lost(broker_engine_t *self, broker_execution_t *exec, broker_phase_t *phase,
                         broker_attempt_status_t how, const char *reason, int64_t now_ms);
void engine_attempt_refused(broker_engine_t *self, broker_execution_t *exec,
                            broker_phase_t *phase, const broker_worker_t *worker,
                            const char *why, int64_t now_ms);
/* An event about a worker, on no execution (the activity stream): type
 * worker_joined, worker_lost or worker_unhealthy, data {worker, id, host, reason}. */
void engine_emit_worker(broker_engine_t *self, const char *type, const broker_worker_t *worker,
                        const char *reason);
/* Marks a worker unhealthy for why (it takes no work until a READY of its says
 * healthy again), or healthy again (why NULL); logs the change. */
void broker_engine_worker_unhealthy(broker_engine_t *self, broker_worker_t *worker,
                                    const char *why);
/* The worker could not start the agent: requeued without counting, the worker
 * made unhealthy. */
void engine_attempt_worker_fault(broker_engine_t *self, broker_execution_t *exec,
                                 broker_phase_t *phase, broker_worker_t *worker, const char *why,
                                 int64_t now_ms);
void engine_attempt_failed(broker_engine_t *self, broker_execution_t *exec, broker_phase_t *phase,
                           broker_attempt_status_t how, const int64_t *exit_code,
                           const char *reason, const broker_usage_t *usage, int64_t now_ms);

#endif
