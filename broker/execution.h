/* execution: the in-memory record of one execution and its phases.
 *
 * The engine keeps one of these for every execution that is not terminal (and
 * only those: finished ones live in SQLite alone). It is a plain data record,
 * written through to the store by the engine after each change. Status changes
 * go through broker_execution_set_status / broker_phase_set_status, which refuse
 * what lifecycle.h forbids. */
#ifndef SYN_BROKER_EXECUTION_H
#define SYN_BROKER_EXECUTION_H

#include "broker/lifecycle.h"
#include "proto/msg.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BROKER_EXEC_ID_SIZE 32      /* "exec-" + 12 hex + NUL fits with room */
#define BROKER_EXEC_ID_HEX 12
#define BROKER_DEFAULT_TIMEOUT_SECONDS 300
#define BROKER_DEFAULT_MAX_ATTEMPTS 3
#define BROKER_DEFAULT_RETRY_BACKOFF_SECONDS 2.0

typedef struct {
    char *phase_id;
    char *name;
    char *prompt_template;
    char *model;                  /* NULL: the worker's default */
    int64_t order;
    int64_t timeout_seconds;
    int64_t max_attempts;         /* attempts allowed when workers are lost */
    int64_t retries;              /* re-runs allowed after the agent failed (0) */
    double retry_backoff_seconds; /* first retry's delay, doubling (retry.h) */
    int64_t max_tokens;           /* 0: the provider's default */
    char *provider;               /* NULL: any worker, its default provider */
    json_t *allowed_tools;        /* array of strings */
    char *network;                /* none|proxy|host for a sandboxed agent; NULL: proxy */
    bool gate;                    /* an approval gate (approval.h), from the template */
    bool approved;                /* its gate was approved (in memory: it is queued then) */
    json_t *input_artifacts;      /* names the phase declares it reads / writes (strings) */
    json_t *output_artifacts;
    json_t *output_names;         /* the original's oldest format: {input name: phase_id}
                                     whose output the prompt reads by that name */
    broker_phase_status_t status;
    int64_t attempt;              /* number of the current (or last) attempt, 0 before any */
    int64_t lost;                 /* attempts that ended because their worker was lost */
    int64_t failures;             /* attempts the agent failed (or timed out): retries */
    int64_t undelivered;          /* attempts whose ASSIGN never reached a worker: they
                                     do not count against max_attempts (in memory only) */
    char *output;                 /* set once, when the phase completes */
    char *error;
    int64_t started_at;           /* epoch µs, 0 = null */
    int64_t completed_at;
    int64_t row;                  /* its row's rowid in SQLite (a hint for saves), 0 unknown */
    /* The current attempt while the phase is running (not stored as such: the
     * attempts table has the history). worker_key NULL while nobody holds it,
     * e.g. after a broker restart until its worker re-registers. */
    char *worker_key;
    char *worker_name;
    int64_t deadline_ms;          /* monotonic: backstop timeout, or the adoption deadline */
    int64_t not_before_ms;        /* monotonic: a queued retry waits until then (0: now) */
    /* Output streamed by the current attempt, waiting to become a PhaseOutput
     * event (coalesced and rate-limited; see output.h). */
    char *stream;
    size_t stream_len;
    int64_t streamed;             /* bytes of this attempt already sent as events */
    int64_t stream_sent_ms;       /* monotonic time of the last PhaseOutput, 0 = none */
    bool stream_capped;           /* the per-attempt bound was reached */
    int64_t tool_events;          /* PhaseToolCall events of this attempt */
    double cost_usd;              /* what the current attempt reported it spent so far
                                     (progress "cost"), until its result (budget_usd.h) */
} broker_phase_t;

typedef struct {
    char id[BROKER_EXEC_ID_SIZE];
    int64_t num;                  /* its row's insertion number in SQLite, 0 until stored */
    char *workflow_id;
    int64_t workflow_version;
    broker_exec_status_t status;
    int stored_status;            /* the status the row has in SQLite, -1 unknown: a save
                                     that leaves it alone skips its indexes and triggers */
    json_t *inputs;               /* merged: object of string → string */
    char *task;                   /* NULL when none */
    json_t *repos;                /* array of strings */
    int64_t created_at;           /* epoch µs */
    int64_t started_at;           /* 0 = null */
    int64_t completed_at;
    char *error;
    size_t phase_count;
    size_t completed_phases;
    size_t current;               /* index of the phase being worked on; phase_count when done */
    broker_phase_t *phases;       /* sorted by order */
    /* Operator messages: [{id, role, message, phase_id}], phase_id null while
     * waiting for the next dispatch, then the phase whose prompt carries them. */
    json_t *messages;
    /* The team controls (issue 19): at most max_concurrent executions of its
     * workflow run at once (0: no limit; from the template); priority orders
     * the ready queue (higher first); counted: it holds a place under those
     * limits (it left pending), until it ends. */
    int64_t max_concurrent;
    int64_t priority;
    bool counted;
    /* True while none of its phases can have artifacts in the store: a new
     * execution (a rerun reuses its source's) until a result's artifacts are
     * settled. A later phase's dispatch then skips the store's artifact list
     * (a round trip on PostgreSQL, two per W1 execution); false when not known. */
    bool no_artifacts;
    /* Its budget in dollars (0: none; the execute's, else the template's) and what
     * the results of its attempts cost (the store's total_cost_usd): with the
     * running attempt's cost_usd, what the budget is compared with. */
    double max_budget_usd;
    double spent_usd;
    int64_t queue_position;       /* its place while it waits to start, as last
                                     numbered (limits.c); 0 when not waiting */
    /* engine bookkeeping */
    void *list_handle;            /* position in the engine's creation-ordered list */
    void *ready_handle;           /* position in the ready queue, NULL when not in it */
    int64_t ready_us;             /* monotonic µs it entered the ready queue (dispatch latency) */
} broker_execution_t;

/* What the status reply shows, whether the execution is in memory or only in
 * SQLite; pointers are borrowed. */
typedef struct {
    const char *execution_id;
    const char *workflow_id;
    broker_exec_status_t status;
    const char *current_phase;    /* NULL → null */
    int64_t completed_phases;
    int64_t total_phases;
    int64_t started_at;           /* 0 → null */
    int64_t completed_at;
    const char *error;
    int64_t queue_position;       /* > 0: its place while it waits to start (the
                                     replies' queue_position; never in events) */
} broker_status_view_t;

/* A new pending execution whose phases come from template's "phases" array (each
 * {phase_id, name, order, prompt_template, model, timeout_seconds, max_attempts,
 * retries, retry_backoff_seconds, max_tokens, provider, allowed_tools, network}),
 * sorted by order; all phases pending. Takes its own references to inputs and
 * repos. NULL with the reason in err when the template is unusable. */
broker_execution_t *broker_execution_new(const char *id, const char *workflow_id,
                                         int64_t workflow_version, const json_t *template_json,
                                         json_t *inputs, const char *task, json_t *repos,
                                         int64_t created_at, char *err, size_t errlen);
void broker_execution_destroy(broker_execution_t **self_p);

/* The phase with that id, or NULL. */
broker_phase_t *broker_execution_find_phase(broker_execution_t *self, const char *phase_id);
/* The phase being worked on (queued or running), or NULL. */
broker_phase_t *broker_execution_active_phase(broker_execution_t *self);

/* Moves through the lifecycle tables: 0, or -1 when the move is forbidden
 * (nothing changes then). */
int broker_execution_set_status(broker_execution_t *self, broker_exec_status_t to);
int broker_phase_set_status(broker_phase_t *phase, broker_phase_status_t to);

/* How many operator messages wait for the next phase. */
size_t broker_execution_pending_messages(const broker_execution_t *self);

/* Replaces a string field (NULL allowed); -1 when out of memory. */
int broker_set_string(char **field, const char *value);

void broker_execution_status_view(broker_execution_t *self, broker_status_view_t *view);
/* {execution_id, workflow_id, status, current_phase, completed_phases, total_phases,
 *  started_at, completed_at, error}: every key always present; queue_position too
 *  when the view has one. */
json_t *broker_status_json(const broker_status_view_t *view);
/* The same object packed as entry key of the message being packed: the same
 * fields in the same order, so a subscriber decodes what the reply would say
 * (events' views have no queue_position: limits.h says why). */
void broker_status_pack(syn_pack_t *pack, const char *key, const broker_status_view_t *view);

/* Timestamps as RFC 3339 strings, or JSON null for 0. */
json_t *broker_time_json(int64_t epoch_us);

#endif
