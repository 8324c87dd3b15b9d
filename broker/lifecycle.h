/* lifecycle: the execution, phase and attempt state machines as data.
 *
 * Every status change in the broker goes through these tables, so a forbidden
 * move (a completed execution set running again, a skipped phase dispatched) is
 * caught where it is attempted instead of being written to the database.
 *
 * Execution: pending → running → completed | failed | cancelled; running ⇄ paused.
 *            pending may also go straight to failed (its first prompt could not be
 *            rendered), cancelled or paused; paused goes back to pending when it was
 *            paused before anything ran; a paused execution whose running phase
 *            finishes may complete or fail, and any of them may be cancelled.
 * Phase:     pending → queued → running → completed | failed | cancelled;
 *            running → queued when its worker was lost and it is retried;
 *            queued → failed when its prompt cannot be rendered;
 *            pending | queued → skipped | cancelled when the execution ends first.
 * Attempt:   running → completed | failed | cancelled | lost | timeout. */
#ifndef SYN_BROKER_LIFECYCLE_H
#define SYN_BROKER_LIFECYCLE_H

#include <stdbool.h>

typedef enum {
    BROKER_EXEC_PENDING,
    BROKER_EXEC_RUNNING,
    BROKER_EXEC_PAUSED,
    BROKER_EXEC_COMPLETED,
    BROKER_EXEC_FAILED,
    BROKER_EXEC_CANCELLED,
    BROKER_EXEC_STATUS_COUNT
} broker_exec_status_t;

typedef enum {
    BROKER_PHASE_PENDING,
    BROKER_PHASE_QUEUED,
    BROKER_PHASE_RUNNING,
    BROKER_PHASE_COMPLETED,
    BROKER_PHASE_FAILED,
    BROKER_PHASE_CANCELLED,
    BROKER_PHASE_SKIPPED,
    BROKER_PHASE_STATUS_COUNT
} broker_phase_status_t;

typedef enum {
    BROKER_ATTEMPT_RUNNING,
    BROKER_ATTEMPT_COMPLETED,
    BROKER_ATTEMPT_FAILED,
    BROKER_ATTEMPT_CANCELLED,
    BROKER_ATTEMPT_LOST,
    BROKER_ATTEMPT_TIMEOUT,
    BROKER_ATTEMPT_STATUS_COUNT
} broker_attempt_status_t;

/* Names as stored and shown ("pending", "running", ...); NULL for out of range. */
const char *broker_exec_status_name(broker_exec_status_t status);
const char *broker_phase_status_name(broker_phase_status_t status);
const char *broker_attempt_status_name(broker_attempt_status_t status);

/* Parse a name back; 0, or -1 for an unknown name. */
int broker_exec_status_parse(const char *name, broker_exec_status_t *status);
int broker_phase_status_parse(const char *name, broker_phase_status_t *status);
int broker_attempt_status_parse(const char *name, broker_attempt_status_t *status);

/* True when the table allows from → to (never for from == to). */
bool broker_exec_can_transition(broker_exec_status_t from, broker_exec_status_t to);
bool broker_phase_can_transition(broker_phase_status_t from, broker_phase_status_t to);
bool broker_attempt_can_transition(broker_attempt_status_t from, broker_attempt_status_t to);

/* Terminal states have no way out. */
bool broker_exec_is_terminal(broker_exec_status_t status);
bool broker_phase_is_terminal(broker_phase_status_t status);
bool broker_attempt_is_terminal(broker_attempt_status_t status);

#endif
