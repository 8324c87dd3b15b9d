/* engine: runs executions — the active ones in memory, the queue of phases ready
 * to run, dispatch to workers, progress and results, lost workers, deadlines and
 * terminal states.
 *
 * Everything it decides is written through to the store (inside the loop's open
 * transaction) and everything it says goes to the outbox, which the loop sends
 * after the commit. It never touches a socket, so tests drive it with fake
 * worker messages and read what it would have sent from the outbox.
 *
 * Where each decision lives (engine_internal.h has the whole map):
 *   which queued phase goes to which worker, the ASSIGN   dispatch.c, prompt.c
 *   which reports about an attempt are taken (fencing)    fence.c
 *   whether a phase runs again, and when                  retry.c
 *   lost workers                                          lost.c
 *   a worker's READY: its name and key, adoption          ready.c
 *   PROGRESS and RESULT                                   reports.c
 *   the output stream (PhaseOutput, PhaseToolCall)        output.c
 *   cancel, pause, resume, inject                         control.c
 *   the backstop, adoption deadlines, back-offs ending    deadlines.c
 *   the active set and the outcomes of attempts           engine.c
 *
 * Attempts: each dispatch of a phase is a new attempt (execution, phase, number).
 * Only the current attempt of a running phase may report (fence.h). A lost
 * attempt (worker silent, disconnected, or gone across a broker restart) is
 * retried while the phase's max_attempts allows; then the execution fails. An
 * attempt the agent failed (an error, its timeout, or the broker's backstop) is
 * retried while the phase's `retries` allow, after a back-off (retry.h); agent
 * failures do not count against max_attempts, lost workers do not count
 * against retries. Control and output: control.h, output.h. */
#ifndef SYN_BROKER_ENGINE_H
#define SYN_BROKER_ENGINE_H

#include "broker/artifacts.h"
#include "broker/events.h"
#include "broker/execution.h"
#include "broker/outbox.h"
#include "broker/store.h"
#include "broker/workers.h"
#include "common/metrics.h"
#include "proto/msg.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* Operator messages: each at most this long, at most this many waiting. */
#define BROKER_MESSAGE_MAX (64u * 1024u)
#define BROKER_MESSAGES_WAITING_MAX 100

typedef struct {
    int64_t heartbeat_ms;     /* interval of heartbeats both ways (1000) */
    int64_t liveness;         /* intervals of silence before a worker is dead (3) */
    int64_t kill_grace_ms;    /* the worker's SIGTERM→SIGKILL grace, added to timeouts (5000) */
    broker_quarantine_config_t quarantine; /* black holes (quarantine.h); after 0: off */
    int64_t max_running;      /* executions running at once, all workflows (0: no limit) */
    broker_artifact_limits_t artifacts;    /* artifacts.h; 0 (unset): the default */
} broker_engine_config_t;

typedef struct {
    uint64_t started, dispatched, completed, failed, cancelled, lost, retried, stale, adopted,
        refused, timed_out, worker_faults, workers_unhealthy;
} broker_engine_stats_t;

typedef struct broker_engine_t broker_engine_t;

broker_engine_t *broker_engine_new(broker_store_t *store, broker_events_t *events,
                                   broker_outbox_t *outbox, broker_workers_t *workers,
                                   const broker_engine_config_t *config);
void broker_engine_destroy(broker_engine_t **self_p);

/* Reloads every non-terminal execution from the store. Phases that were running
 * wait for their worker to re-register (deadlines.h), then are retried.
 * Returns how many executions were reloaded, or -1. */
int broker_engine_recover(broker_engine_t *self, int64_t now_ms);

/* Creates a pending execution of the given workflow version with its first phase
 * queued (ahead of those of lower priority). inputs are the merged inputs (a
 * reference is taken). max_budget_usd > 0 replaces the template's default budget
 * (budget_usd.h). The id goes to id_out. 0, or -1 with the reason in err. */
int broker_engine_start(broker_engine_t *self, const char *workflow_id, int64_t version,
                        const json_t *template_json, json_t *inputs, const char *task,
                        json_t *repos, int64_t priority, double max_budget_usd,
                        char id_out[BROKER_EXEC_ID_SIZE], char *err, size_t errlen);
/* A rerun of earlier (a finished execution, loaded from the store) with the same
 * workflow version (template_json) and repos: its phases before index `from` are
 * copied as completed with their outputs (and, in the store, their usage, named
 * as reused_from), phase `from` is queued. inputs (merged; a reference is taken)
 * and task may differ from earlier's; priority is the new execution's (the
 * caller passes earlier's unless overridden). ExecutionStarted says rerun_of
 * and reused_phases. A reused phase's artifacts are referenced, not copied
 * (broker_store_rerun_link). 0, or -1 with the reason in err. */
int broker_engine_rerun(broker_engine_t *self, const broker_execution_t *earlier,
                        const json_t *template_json, size_t from, json_t *inputs,
                        const char *task, int64_t priority, char id_out[BROKER_EXEC_ID_SIZE],
                        char *err, size_t errlen);

/* The active (non-terminal) execution with exactly this id, or NULL. */
broker_execution_t *broker_engine_find(broker_engine_t *self, const char *id);
size_t broker_engine_active_count(const broker_engine_t *self);
/* Status objects of up to limit active executions, newest first. */
json_t *broker_engine_active_json(broker_engine_t *self, size_t limit);

/* One message from the worker with this ROUTER identity. */
void broker_engine_on_worker(broker_engine_t *self, const void *identity, size_t identity_len,
                             const syn_msg_t *msg, int64_t now_ms);
/* The same with the User-Id of the connection it came over (over CURVE, the
 * worker's public key in Z85; NULL or "" without CURVE) and its remote address
 * (NULL or "": unknown, as for IPC; a READY records it). A worker's name is bound
 * to its key while the broker knows it (until it is lost or says disconnect): a
 * READY claiming that name with another key is answered `disconnect` with a
 * reason, logged, and the claimant ignored from then on. */
void broker_engine_on_worker_from(broker_engine_t *self, const void *identity,
                                  size_t identity_len, const char *peer_key,
                                  const char *peer_address, const syn_msg_t *msg,
                                  int64_t now_ms);
/* The loop could not deliver msg to a worker (error = errno of the send). An
 * ASSIGN that never left is requeued without counting as an attempt; EHOSTUNREACH
 * means the worker's connection is gone, so the worker gets nothing new and is
 * dropped, its attempts lost, once what it sent before has been read (lost.h;
 * no need to wait for the liveness window). */
void broker_engine_undeliverable(broker_engine_t *self, const void *identity,
                                 size_t identity_len, const syn_msg_t *msg, int error,
                                 int64_t now_ms);
/* Time-driven work (deadlines.c): silent workers, adoption deadlines, timeout
 * backstops, retry back-offs that ended, PhaseOutput that waited for the rate
 * limit. */
void broker_engine_tick(broker_engine_t *self, int64_t now_ms);
/* The adoption window of the attempts a restart found running starts now, when
 * the workers can reach the broker again (deadlines.c): reloading many
 * executions takes seconds that their READYs could not use. */
void broker_engine_adoption_open(broker_engine_t *self, int64_t now_ms);
/* Queues a HEARTBEAT for each registered worker the broker has queued nothing
 * for in a heartbeat interval (docs/protocol.md, Liveness); returns when the
 * next one falls due (monotonic ms). */
int64_t broker_engine_heartbeat(broker_engine_t *self, int64_t now_ms);
/* Assigns queued phases to free worker slots, oldest first (dispatch.c). */
void broker_engine_dispatch(broker_engine_t *self, int64_t now_ms);
/* The ASSIGNs queued so far were handed to the socket at now_us (monotonic):
 * each one's wait since its phase became ready goes into the dispatch latency. */
void broker_engine_assignments_sent(broker_engine_t *self, int64_t now_us);
/* Phase ready → its ASSIGN sent, in seconds (syn_dispatch_seconds). */
const syn_histogram_t *broker_engine_dispatch_latency(const broker_engine_t *self);

/* Control of an active execution (id exact; control.c). 0 with the new status in *status;
 * -1 when the rules forbid it in the current status (in *status); -2 when no
 * active execution has that id (it is finished, or unknown). */
int broker_engine_cancel(broker_engine_t *self, const char *id, const char *reason,
                         broker_exec_status_t *status);
int broker_engine_pause(broker_engine_t *self, const char *id, const char *reason,
                        broker_exec_status_t *status);
/* -3: the execution waits at an approval gate, which resume does not pass. */
int broker_engine_resume(broker_engine_t *self, const char *id, int64_t now_ms,
                         broker_exec_status_t *status);
/* Queues an operator message (role "user" or "system") for the next phase's
 * prompt and sends it live to the worker of a running phase. -3 with the reason
 * in err when too many messages are already waiting. */
int broker_engine_inject(broker_engine_t *self, const char *id, const char *role,
                         const char *message, broker_exec_status_t *status, char *err,
                         size_t errlen);

broker_engine_stats_t broker_engine_stats(const broker_engine_t *self);
/* The artifacts being received (artifacts.h), for the loop's per-turn budget. */
broker_artifacts_t *broker_engine_artifacts(broker_engine_t *self);
/* Executions whose current phase waits for a worker slot (the ready queue). */
size_t broker_engine_ready_depth(const broker_engine_t *self);
/* A pending execution's place among those waiting to start (1 first), 0 when
 * it is not waiting (limits.h decides the numbering). */
int64_t broker_engine_queue_position(broker_engine_t *self, const char *execution_id);

#endif
