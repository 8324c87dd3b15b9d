/* store: everything the broker keeps in SQLite (one file, WAL, synchronous=FULL).
 *
 * Tables (schema version BROKER_STORE_SCHEMA_VERSION, in PRAGMA user_version):
 *   workflows          id, name, description, workflow_type, classification,
 *                      phase_count, version (the current one), archived, created_at,
 *                      source_hash (of the file it was installed from, or NULL)
 *   workflow_versions  (workflow_id, version) → template JSON: executions point at
 *                      the version they started with, so editing a workflow later
 *                      never changes a running execution
 *   executions         num (insertion order = newest last), id, workflow_id,
 *                      workflow_version, status, inputs, task, repos, total_phases,
 *                      completed_phases, current_phase, created/started/completed_at,
 *                      error, token (input, output, cache) and cost totals
 *   phases             (exec_num, phase_id): execution_id, ord, name, model, status, attempts,
 *                      output, error, started/completed_at, tokens, cost, turns,
 *                      duration_ms, tool_call_count (sums over all its attempts)
 *   attempts           (exec_num, phase_id, attempt): execution_id, worker, status,
 *                      started/completed_at, exit_code, error, usage JSON
 *   events             seq, time, execution_id, type, data JSON, exec_num
 *   artifacts          id, (exec_num, phase_id, attempt, path), size, sha256,
 *                      media_type, created_at, complete (0 while its chunks arrive),
 *                      chunks_of (a rerun's reused artifact: the row holding its bytes)
 *   artifact_chunks    (artifact_id, offset) → len, data: the bytes, a chunk a row
 * exec_num is the execution's num: the rows of executions in flight, the newest,
 * sit together on a few pages instead of scattered by their random ids.
 *   operator_messages  id, execution_id, role, message, created_at, phase_id (the
 *                      phase whose prompt carried it; NULL while waiting)
 *   execution_counts   (workflow_id, status) → n, kept by the store (its tally of
 *                      inserts, status changes and deletes, written once per
 *                      transaction), so "how many match" never counts a
 *                      million rows
 *   idempotency_keys   key → fingerprint (the request it came with), execution_id,
 *                      answer (the first reply's JSON), created_at (store_controls.c)
 *   execution_pages    (workflow_id | '', status | '', num >> 10) → n, kept the
 *                      same way, so page N of a listing seeks instead of skipping
 *                      N × page_size rows
 * Times are epoch microseconds (NULL = not yet).
 *
 * Group commit: every write opens a transaction if none is open; nothing is
 * durable until broker_store_commit, which the loop calls once per iteration.
 * Reads see the writes of the open transaction.
 *
 * Implemented by broker/store.c and broker/store_*.c, one concern a file (the
 * list is in store.c's first comment); every SQL text and SQLite call stays
 * inside them. */
#ifndef SYN_BROKER_STORE_H
#define SYN_BROKER_STORE_H

#include "broker/execution.h"
#include "broker/usage.h"
#include "common/metrics.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define BROKER_STORE_SCHEMA_VERSION 11

typedef struct broker_store_t broker_store_t;

typedef struct {
    const char *id;
    const char *name;
    const char *description;      /* NULL → null */
    const char *workflow_type;
    const char *classification;
    int64_t phase_count;
    const json_t *template_json;  /* stored as the new version */
    int64_t created_at;           /* when this version was made */
    const char *source_hash;      /* installed from a file: its content hash; NULL: none
                                     (insert) or unchanged (update) */
} broker_workflow_row_t;

#define BROKER_SOURCE_HASH_SIZE 72 /* a SHA-256 in hex and its NUL fit */

/* What workflow_get says about a workflow besides its template. */
typedef struct {
    int64_t version;              /* the current (newest) version */
    int64_t created_at;           /* when the workflow was first created */
    bool archived;
    char source_hash[BROKER_SOURCE_HASH_SIZE]; /* "" when made through the API */
} broker_workflow_meta_t;

/* Filters of workflow_list: type NULL = any; archived ones only when asked. */
typedef struct {
    const char *workflow_type;
    bool include_archived;
} broker_workflow_filter_t;

/* Opens (creating when missing) the database and its schema: the SQLite file
 * at path, or, when path is a PostgreSQL URI (broker_store_is_postgresql), that
 * database (store_pg.c). NULL with the reason in err. */
broker_store_t *broker_store_open(const char *path, char *err, size_t errlen);
/* Whether a store location names PostgreSQL: postgresql://... or postgres://... */
bool broker_store_is_postgresql(const char *location);
/* `syn-broker --migrate-from`: copies the SQLite store at sqlite_path (upgraded
 * in place to this version's schema first) into the empty PostgreSQL database
 * conninfo names, and verifies every table by row count and checksum
 * (store_migrate_from.c); progress and a summary go to out. 0, or -1 with the
 * reason in err (a mismatch names the table; nothing is then kept). */
int broker_store_migrate_from(const char *sqlite_path, const char *conninfo, FILE *out,
                              char *err, size_t errlen);
/* Commits what is pending, then closes. */
void broker_store_destroy(broker_store_t **self_p);

/* Commits the open transaction, if any: 0, or -1 when SQLite refused (the
 * transaction is rolled back: the caller's memory no longer matches the file). */
int broker_store_commit(broker_store_t *self);
/* Rolls the open transaction back (writes the broker must not keep). */
void broker_store_rollback(broker_store_t *self);
/* Whether the store is PostgreSQL and its connection is gone: the broker then
 * keeps its memory for reads until broker_store_probe has connected again
 * (with back-off) and the state is rebuilt (docs/reliability.md). The last
 * error then starts with BROKER_STORE_LOST. */
bool broker_store_connection_lost(const broker_store_t *self);
#define BROKER_STORE_LOST "connection to PostgreSQL lost"
/* While broker_store_probe is connecting again: the socket the attempt waits
 * on, and whether for writing (else reading), for the loop to poll with its
 * own and probe again when it is ready, never waiting for the server; else -1. */
int broker_store_reconnect_fd(const broker_store_t *self, bool *for_write);
/* Whether the disk takes a write now: a small transaction of its own, committed
 * (0) or rolled back (-1, SQLite's message in broker_store_last_error). Fails
 * while a transaction is open. Not logged: it is retried while storage is full. */
int broker_store_probe(broker_store_t *self);
/* SQLite's message of the last failed statement or probe ("" when none). */
const char *broker_store_last_error(const broker_store_t *self);
/* True while writes are waiting for a commit. */
bool broker_store_dirty(const broker_store_t *self);
/* How many transactions were committed since open (for tests and stats). */
uint64_t broker_store_commit_count(const broker_store_t *self);

/* The lease (PostgreSQL only, store_lease.c; broker/lease.h decides when each is
 * called). Take: when the lease has lapsed, this store takes it in one
 * statement (token + 1, holder, lease_ms from the server's clock) and fences
 * every later write transaction with the new token: 1. Otherwise 0, with the
 * holder's name, token and milliseconds left in *holder (may be NULL); -1 on
 * an error (logged). */
typedef struct {
    char name[256];
    int64_t token;
    int64_t left_ms;
} broker_store_holder_t;
int broker_store_lease_take(broker_store_t *self, const char *holder, int64_t lease_ms,
                            broker_store_holder_t *seen);
/* Extends the lease this store holds by lease_ms from now: 0, 1 when its token
 * is no longer the lease's (deposed), -1 on an error (logged). Outside a
 * transaction only. */
int broker_store_lease_renew(broker_store_t *self, int64_t lease_ms);
/* Lets the lease lapse at once (a graceful stop: a standby takes over without
 * waiting); nothing when the token is no longer ours. */
void broker_store_lease_release(broker_store_t *self);
/* The token this store fences its writes with (0: none, SQLite or standby). */
int64_t broker_store_lease_token(const broker_store_t *self);
/* Whether a write of this store was refused by the fence (another broker took
 * the lease): a commit that failed for this reason must not be retried. */
bool broker_store_deposed(const broker_store_t *self);
/* Retention (store_retention.c): deletes finished executions (completed, failed,
 * cancelled) with their phases, attempts, events, outputs and operator messages,
 * oldest insertion first, into the open transaction: those finished before
 * finished_before_us (0: none by age) and, with keep_finished >= 0, the oldest
 * beyond that many. At most max_count executions, and no more once budget_us of
 * work has passed, so a call never holds the broker's loop long; keep (may be
 * NULL) spares an execution the engine still holds. The counts (execution_counts,
 * execution_pages) follow through the tally. An execution that finished
 * late waits behind older ones of its status that are not yet expired. The ids
 * deleted are appended to deleted_ids (a JSON array; NULL: not wanted). Returns
 * the number deleted, or -1. */
typedef bool (*broker_store_keep_fn)(const char *execution_id, void *arg);
int broker_store_retention_batch(broker_store_t *self, int64_t finished_before_us,
                                 int64_t keep_finished, size_t max_count, int64_t budget_us,
                                 broker_store_keep_fn keep, void *arg, json_t *deleted_ids);
/* The time each commit took (common/metrics.h), for /metrics. */
const syn_histogram_t *broker_store_commit_latency(const broker_store_t *self);

/* Workflows. insert: version 1; 0, 1 when the id exists, -1 on error.
 * update: stores row's template as the next version and makes it the current one
 * (name, type, ... follow it; the source hash only when row gives one); older
 * versions stay, for the executions that run them. 0 with the new version in
 * *version_out, 1 when the id is unknown, -1 on error.
 * archive: 0, 1 when the id is unknown or already archived, -1 on error.
 * get (archived or not) / template: 1 found (new reference in *template_out), 0 not
 * found, -1 on error; meta may be NULL. */
int broker_store_workflow_insert(broker_store_t *self, const broker_workflow_row_t *row);
int broker_store_workflow_update(broker_store_t *self, const broker_workflow_row_t *row,
                                 int64_t *version_out);
int broker_store_workflow_archive(broker_store_t *self, const char *id);
int broker_store_workflow_get(broker_store_t *self, const char *id, json_t **template_out,
                              broker_workflow_meta_t *meta);
int broker_store_workflow_template(broker_store_t *self, const char *id, int64_t version,
                                   json_t **template_out);
/* workflow_get from a cache kept until the workflow is next written: the
 * template is borrowed and read-only, valid until the next workflow write or
 * failed commit. */
int broker_store_workflow_shared(broker_store_t *self, const char *id,
                                 const json_t **template_out, broker_workflow_meta_t *meta);
/* Page (from 1) of {id, name, description, workflow_type, classification,
 * phase_count, created_at, version, archived}, newest first, and the number of
 * matches over all pages; filter NULL: every workflow not archived. 0 or -1. */
int broker_store_workflow_list(broker_store_t *self, const broker_workflow_filter_t *filter,
                               int64_t page, int64_t page_size, json_t **items_out,
                               int64_t *total);

/* A new execution's id (BROKER_EXEC_ID_SIZE bytes): random; on PostgreSQL one of
 * a batch found free in one round trip, whose insert then waits for no answer.
 * 0, or -1. */
int broker_store_execution_id(broker_store_t *self, char *id);
/* Executions, written through by the engine after each change.
 * insert: 0, 1 when the id exists, -1 on error (row and its phase rows). */
int broker_store_execution_insert(broker_store_t *self, broker_execution_t *exec);
/* Saves the execution's mutable columns (status, counts, times, error). The
 * counts move from exec->stored_status when it is known (>= 0: the caller vouches
 * that the row says it), else from the status the row has. */
int broker_store_execution_save(broker_store_t *self, const broker_execution_t *exec);
/* The same without the status column (the caller knows it did not change): the
 * status indexes and counting triggers are left alone. */
int broker_store_execution_save_progress(broker_store_t *self, const broker_execution_t *exec);
/* Saves a phase's status, attempt count, error and times (not its output). */
int broker_store_phase_save(broker_store_t *self, const broker_execution_t *exec,
                            const broker_phase_t *phase);
int broker_store_phase_set_output(broker_store_t *self, const broker_execution_t *exec,
                                  const broker_phase_t *phase);
/* phase_save and phase_set_output in one row update. */
int broker_store_phase_save_with_output(broker_store_t *self, const broker_execution_t *exec,
                                        const broker_phase_t *phase);
int broker_store_attempt_insert(broker_store_t *self, const broker_execution_t *exec,
                                const char *phase_id, int64_t attempt, const char *worker,
                                int64_t started_at);
/* exit_code NULL → null. */
int broker_store_attempt_finish(broker_store_t *self, const broker_execution_t *exec,
                                const char *phase_id, int64_t attempt,
                                broker_attempt_status_t status, int64_t completed_at,
                                const int64_t *exit_code, const char *error);

/* Idempotency keys (store_controls.c). find: 1 with the fingerprint of the request
 * a key first came with and that request's answer (JSON text; both malloc'd) when
 * the key was stored at or after since_us, 0 when it was not (or only before), -1
 * on error. put: stores (or replaces an expired) key with what it answered, after
 * deleting every key stored before expire_before_us; 0 or -1. */
int broker_store_idempotency_find(broker_store_t *self, const char *key, int64_t since_us,
                                  char **fingerprint, char **answer);
int broker_store_idempotency_put(broker_store_t *self, const char *key, const char *fingerprint,
                                 const char *execution_id, const char *answer,
                                 int64_t created_at, int64_t expire_before_us);

/* Reruns (store_controls.c): marks exec (inserted) as a rerun of rerun_of whose
 * first `reused` phases were copied from it: those phases take its tokens, cost
 * and model and name it as reused_from, and its artifacts, referenced (chunks_of:
 * their bytes are not copied; retention keeps them while a rerun names them);
 * the execution's totals start as their sums. 0 or -1. */
int broker_store_rerun_link(broker_store_t *self, const broker_execution_t *exec,
                            const char *rerun_of, size_t reused);
/* One execution, finished or not, rebuilt as the reload rebuilds the active ones
 * (store_reload.c): 1 with *out (the caller's), 0 when there is none, -1 with the
 * reason in err. */
int broker_store_execution_load(broker_store_t *self, const char *id, broker_execution_t **out,
                                char *err, size_t errlen);

/* Ids starting with prefix, at most max of them (sorted) in ids, how many in
 * *count (≤ max: ask for one more than you show to know there are more). */
int broker_store_execution_match(broker_store_t *self, const char *prefix,
                                 char (*ids)[BROKER_EXEC_ID_SIZE], size_t max, size_t *count);
/* 1 with the status object of that exact id, 0 not found, -1 error. */
int broker_store_execution_status(broker_store_t *self, const char *id, json_t **status_out);
/* How many executions match: workflow_id NULL = any; status -1 = any. */
int64_t broker_store_execution_count(broker_store_t *self, const char *workflow_id,
                                     int status);
/* Calls fn for every non-terminal execution, oldest first, rebuilt with its
 * phases, outputs, attempt numbers, lost and failure counts of the phase being
 * worked on, and operator messages; fn takes ownership of exec. An execution
 * that cannot be rebuilt (its template is gone) is marked failed instead.
 * Returns how many were handed over, or -1. */
typedef void (*broker_store_exec_fn)(broker_execution_t *exec, void *arg);
int broker_store_load_active(broker_store_t *self, broker_store_exec_fn fn, void *arg);

/* Records an attempt's usage once: the attempt row keeps it, and the phase's and
 * execution's sums grow by it. 1 recorded, 0 when the attempt is unknown or
 * already has its usage (a repeated RESULT), -1 on error. */
int broker_store_usage_record(broker_store_t *self, const char *execution_id,
                              const char *phase_id, int64_t attempt,
                              const broker_usage_t *usage);

/* Operator messages. insert: the new message's id, or -1. bind: every waiting
 * message of the execution now belongs to phase_id. load: the execution's
 * messages, oldest first, as [{id, role, message, phase_id}] (new reference). */
int64_t broker_store_message_insert(broker_store_t *self, const char *execution_id,
                                    const char *role, const char *message, int64_t created_at);
int broker_store_messages_bind(broker_store_t *self, const char *execution_id,
                               const char *phase_id);
json_t *broker_store_messages_load(broker_store_t *self, const char *execution_id);

/* Queries behind execution.list/get/output/state and workflow.runs; each reads
 * through indexes only (never a scan of all executions).
 *
 * summary = {execution_id, workflow_id, workflow_name, status, started_at,
 * completed_at, completed_phases, total_phases, duration_seconds,
 * total_input_tokens, total_output_tokens, total_cost_usd, error}.
 * list: a page (from 1) of summaries, newest first, filtered by workflow_id
 * (NULL = any) and status (-1 = any), and the number of matches over all pages. */
int broker_store_execution_list(broker_store_t *self, const char *workflow_id, int status,
                                int64_t page, int64_t page_size, json_t **items_out,
                                int64_t *total);
/* The summary plus inputs, task, repos, current_phase, cache token totals,
 * operator_messages and phases [{phase_id, name, order, status, attempts:[{attempt,
 * worker, status, started_at, completed_at, exit_code, error, usage}], error,
 * started_at, completed_at, duration_seconds, input_tokens, output_tokens,
 * cache_creation_tokens, cache_read_tokens, total_tokens, cost_usd, num_turns,
 * duration_ms, tool_call_count, tool_calls, model, output_preview}]
 * (output_preview = the first BROKER_OUTPUT_PREVIEW_CHARS characters).
 * 1 found, 0 not found, -1 error. */
#define BROKER_OUTPUT_PREVIEW_CHARS 2000
int broker_store_execution_detail(broker_store_t *self, const char *id, json_t **detail_out);
/* 1 with the execution's status, 0 not found, -1 error. */
int broker_store_execution_state(broker_store_t *self, const char *id,
                                 broker_exec_status_t *status);
/* 1 with the phase's whole output in *output (malloc'd; "" when none yet), 0 when
 * the execution has no such phase, -1 error. */
int broker_store_phase_output(broker_store_t *self, const char *execution_id,
                              const char *phase_id, char **output);
/* What the original's cost and metrics routes read (broker/store_costs.c), for every
 * execution or the one named: {totals:{executions, workflows, sessions, input_tokens,
 * output_tokens, cache_creation_tokens, cache_read_tokens, cost_usd, tool_calls,
 * turns}, status_counts:{status: n}, models:[{model, cost_usd}] (the ten costliest),
 * executions:[{execution_id, workflow_id, started_at, completed_at, *_tokens,
 * cost_usd, sessions, tool_calls, turns, duration_ms}] and sessions:[{execution_id,
 * workflow_id, phase_id, phase_name, attempt, status, started_at, completed_at,
 * usage}], each newest first and at most limit long}. 0, or -1 on error. */
/* workflow_id (may be NULL) narrows totals and status_counts to that workflow's
 * executions (the workflows count stays all of them) and adds phases:[{phase_id,
 * name, input_tokens, output_tokens, cache_creation_tokens, cache_read_tokens,
 * cost_usd, artifacts, running (runs in flight), run_us (every run's time, those
 * in flight up to now_us), last_status (of the run that ended last, or null)}], in
 * their order, those that ever started; artifacts:{count, bytes} are all kept
 * ones. */
int broker_store_costs(broker_store_t *self, const char *execution_id, const char *workflow_id,
                       int64_t limit, int64_t now_us, json_t **report);
/* 1 with the workflow's name (malloc'd), archived or not; 0 not found; -1 error. */
int broker_store_workflow_name(broker_store_t *self, const char *id, char **name);

/* Events. data is JSON text. exec_num is the execution's number when the
 * caller has it (the engine does); 0 looks it up from execution_id. The row
 * waits (copied) for the commit or the next read of the log, then goes in with
 * the others of the transaction in a few multi-row inserts; a failed insert
 * fails the transaction then. */
int broker_store_event_insert(broker_store_t *self, int64_t seq, int64_t time,
                              const char *execution_id, int64_t exec_num, const char *type,
                              const char *data);
/* The highest seq stored, 0 when there is none, -1 on error. */
int64_t broker_store_last_event_seq(broker_store_t *self);
/* Events with seq > after_seq, in seq order, of one execution (NULL: all), as
 * [{seq, time, execution_id, type, data}]: at most limit of them and, past the
 * first, no more than max_bytes of data text. *more tells whether further events
 * exist. 0 or -1. */
int broker_store_events_after(broker_store_t *self, const char *execution_id,
                              int64_t after_seq, int64_t limit, size_t max_bytes,
                              json_t **events_out, bool *more);

/* --- artifacts (store_artifacts.c; why SQLite: its first comment) --------- */

/* A stored artifact, as one file's read needs it. */
typedef struct {
    int64_t id;          /* the row whose chunks hold its bytes (chunks_of or its own) */
    int64_t attempt;
    int64_t size;
    char sha256[65];
    char media_type[128];
} broker_artifact_row_t;

/* A new, not yet complete, artifact of an attempt: its id, or -1 (also when the
 * attempt already has one at path). */
int64_t broker_store_artifact_begin(broker_store_t *self, const char *execution_id,
                                    const char *phase_id, int64_t attempt, const char *path,
                                    int64_t size, const char *sha256, const char *media_type);
/* The bytes [offset, offset + len) of an artifact; 0 or -1. */
int broker_store_artifact_chunk(broker_store_t *self, int64_t artifact_id, int64_t offset,
                                const void *data, size_t len);
/* Deletes the incomplete artifacts of an attempt (every attempt's with
 * execution_id NULL, as at start); 0 or -1. */
int broker_store_artifacts_discard(broker_store_t *self, const char *execution_id,
                                   const char *phase_id, int64_t attempt);
/* The attempt's artifacts become visible (in the transaction that completes it). */
int broker_store_artifacts_complete(broker_store_t *self, const char *execution_id,
                                    const char *phase_id, int64_t attempt);
/* [{phase_id, attempt, path, size, sha256, media_type, created_at}] of an
 * execution's complete artifacts, in phase order then path; NULL on error. */
json_t *broker_store_artifacts_list(broker_store_t *self, const char *execution_id);
/* The complete artifact (newest attempt) of the phase at path: 1 in *row, 0 none,
 * -1 error. */
int broker_store_artifact_find(broker_store_t *self, const char *execution_id,
                               const char *phase_id, const char *path,
                               broker_artifact_row_t *row);
/* Up to max bytes of an artifact from offset into buf: the count, or -1. */
long broker_store_artifact_read(broker_store_t *self, int64_t artifact_id, int64_t offset,
                                unsigned char *buf, size_t max);
/* Bytes [offset, offset + max) of the artifact (cut at its end; none past it) as
 * base64 text (malloc'd), their count in *len; NULL when they cannot be read.
 * What both a download range and a worker's pull send. */
char *broker_store_artifact_read_base64(broker_store_t *self, const broker_artifact_row_t *row,
                                        int64_t offset, size_t max, size_t *len);

#endif
