/* store: SQLite schema, prepared statements and the lazily opened transaction
 * that makes group commit work. */
#include "broker/store.h"
#include "broker/tally.h"

#include "common/buffer.h"
#include "common/clock.h"
#include "common/log.h"

#include <czmq.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Version 1, as it first shipped: a new database runs it, then every upgrade. */
static const char *const schema_v1_sql =
    "CREATE TABLE workflows ("
    "  num INTEGER PRIMARY KEY,"
    "  id TEXT NOT NULL UNIQUE,"
    "  name TEXT NOT NULL,"
    "  description TEXT,"
    "  workflow_type TEXT NOT NULL,"
    "  classification TEXT NOT NULL,"
    "  phase_count INTEGER NOT NULL,"
    "  version INTEGER NOT NULL,"
    "  archived INTEGER NOT NULL DEFAULT 0,"
    "  created_at INTEGER NOT NULL);"
    "CREATE TABLE workflow_versions ("
    "  workflow_id TEXT NOT NULL,"
    "  version INTEGER NOT NULL,"
    "  template TEXT NOT NULL,"
    "  created_at INTEGER NOT NULL,"
    "  PRIMARY KEY (workflow_id, version));"
    "CREATE TABLE executions ("
    "  num INTEGER PRIMARY KEY,"
    "  id TEXT NOT NULL UNIQUE,"
    "  workflow_id TEXT NOT NULL,"
    "  workflow_version INTEGER NOT NULL,"
    "  status TEXT NOT NULL,"
    "  inputs TEXT NOT NULL,"
    "  task TEXT,"
    "  repos TEXT NOT NULL,"
    "  total_phases INTEGER NOT NULL,"
    "  completed_phases INTEGER NOT NULL DEFAULT 0,"
    "  current_phase TEXT,"
    "  created_at INTEGER NOT NULL,"
    "  started_at INTEGER,"
    "  completed_at INTEGER,"
    "  error TEXT,"
    "  total_input_tokens INTEGER NOT NULL DEFAULT 0,"
    "  total_output_tokens INTEGER NOT NULL DEFAULT 0,"
    "  total_cost_usd REAL NOT NULL DEFAULT 0);"
    "CREATE INDEX executions_status ON executions(status, num);"
    "CREATE INDEX executions_workflow ON executions(workflow_id, num);"
    "CREATE INDEX executions_workflow_status ON executions(workflow_id, status, num);"
    "CREATE TABLE phases ("
    "  execution_id TEXT NOT NULL,"
    "  phase_id TEXT NOT NULL,"
    "  ord INTEGER NOT NULL,"
    "  name TEXT NOT NULL,"
    "  model TEXT,"
    "  status TEXT NOT NULL,"
    "  attempts INTEGER NOT NULL DEFAULT 0,"
    "  output TEXT,"
    "  error TEXT,"
    "  started_at INTEGER,"
    "  completed_at INTEGER,"
    "  input_tokens INTEGER NOT NULL DEFAULT 0,"
    "  output_tokens INTEGER NOT NULL DEFAULT 0,"
    "  cost_usd REAL NOT NULL DEFAULT 0,"
    "  PRIMARY KEY (execution_id, phase_id));"
    "CREATE TABLE attempts ("
    "  execution_id TEXT NOT NULL,"
    "  phase_id TEXT NOT NULL,"
    "  attempt INTEGER NOT NULL,"
    "  worker TEXT,"
    "  status TEXT NOT NULL,"
    "  started_at INTEGER,"
    "  completed_at INTEGER,"
    "  exit_code INTEGER,"
    "  error TEXT,"
    "  PRIMARY KEY (execution_id, phase_id, attempt)) WITHOUT ROWID;"
    "CREATE TABLE events ("
    "  seq INTEGER PRIMARY KEY,"
    "  time INTEGER NOT NULL,"
    "  execution_id TEXT,"
    "  type TEXT NOT NULL,"
    "  data TEXT NOT NULL);"
    "CREATE INDEX events_execution ON events(execution_id, seq);"
    "CREATE TABLE execution_counts ("
    "  workflow_id TEXT NOT NULL,"
    "  status TEXT NOT NULL,"
    "  n INTEGER NOT NULL,"
    "  PRIMARY KEY (workflow_id, status)) WITHOUT ROWID;"
    "CREATE TRIGGER executions_counted_insert AFTER INSERT ON executions BEGIN"
    "  INSERT INTO execution_counts(workflow_id, status, n) VALUES (new.workflow_id, new.status, 1)"
    "  ON CONFLICT(workflow_id, status) DO UPDATE SET n = n + 1;"
    "END;"
    "CREATE TRIGGER executions_counted_update AFTER UPDATE OF status ON executions"
    "  WHEN old.status IS NOT new.status BEGIN"
    "  UPDATE execution_counts SET n = n - 1"
    "    WHERE workflow_id = old.workflow_id AND status = old.status;"
    "  INSERT INTO execution_counts(workflow_id, status, n) VALUES (new.workflow_id, new.status, 1)"
    "  ON CONFLICT(workflow_id, status) DO UPDATE SET n = n + 1;"
    "END;"
    "CREATE TRIGGER executions_counted_delete AFTER DELETE ON executions BEGIN"
    "  UPDATE execution_counts SET n = n - 1"
    "    WHERE workflow_id = old.workflow_id AND status = old.status;"
    "END;";

/* Version 2: accounting columns, operator messages, and execution_pages — how
 * many executions each (workflow, status) has per block of 1024 insertion
 * numbers ('' standing for "any"), kept by triggers. A page deep in a listing
 * is found by summing blocks (a thousand small rows for a million executions)
 * and skipping at most one block's worth of index entries, instead of stepping
 * over every row before it. */
static const char *const schema_v2_sql =
    "ALTER TABLE executions ADD COLUMN total_cache_creation_tokens INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE executions ADD COLUMN total_cache_read_tokens INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE phases ADD COLUMN cache_creation_tokens INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE phases ADD COLUMN cache_read_tokens INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE phases ADD COLUMN num_turns INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE phases ADD COLUMN duration_ms INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE phases ADD COLUMN tool_call_count INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE attempts ADD COLUMN usage TEXT;"
    "CREATE TABLE operator_messages ("
    "  id INTEGER PRIMARY KEY,"
    "  execution_id TEXT NOT NULL,"
    "  role TEXT NOT NULL,"
    "  message TEXT NOT NULL,"
    "  created_at INTEGER NOT NULL,"
    "  phase_id TEXT);"
    "CREATE INDEX operator_messages_execution ON operator_messages(execution_id, id);"
    "CREATE TABLE execution_pages ("
    "  workflow_id TEXT NOT NULL,"
    "  status TEXT NOT NULL,"
    "  bucket INTEGER NOT NULL,"
    "  n INTEGER NOT NULL,"
    "  PRIMARY KEY (workflow_id, status, bucket)) WITHOUT ROWID;"
    "INSERT INTO execution_pages(workflow_id, status, bucket, n)"
    "  SELECT workflow_id, status, num >> 10, count(*) FROM executions GROUP BY 1, 2, 3"
    "  UNION ALL SELECT workflow_id, '', num >> 10, count(*) FROM executions GROUP BY 1, 3"
    "  UNION ALL SELECT '', status, num >> 10, count(*) FROM executions GROUP BY 2, 3"
    "  UNION ALL SELECT '', '', num >> 10, count(*) FROM executions GROUP BY 3;"
    "CREATE TRIGGER executions_paged_insert AFTER INSERT ON executions BEGIN"
    "  INSERT INTO execution_pages(workflow_id, status, bucket, n) VALUES"
    "    (new.workflow_id, new.status, new.num >> 10, 1),"
    "    (new.workflow_id, '', new.num >> 10, 1),"
    "    ('', new.status, new.num >> 10, 1),"
    "    ('', '', new.num >> 10, 1)"
    "  ON CONFLICT(workflow_id, status, bucket) DO UPDATE SET n = n + 1;"
    "END;"
    "CREATE TRIGGER executions_paged_update AFTER UPDATE OF status ON executions"
    "  WHEN old.status IS NOT new.status BEGIN"
    "  UPDATE execution_pages SET n = n - 1 WHERE workflow_id IN (old.workflow_id, '')"
    "    AND status = old.status AND bucket = old.num >> 10;"
    "  DELETE FROM execution_pages WHERE workflow_id IN (old.workflow_id, '')"
    "    AND status = old.status AND bucket = old.num >> 10 AND n <= 0;"
    "  INSERT INTO execution_pages(workflow_id, status, bucket, n) VALUES"
    "    (new.workflow_id, new.status, new.num >> 10, 1),"
    "    ('', new.status, new.num >> 10, 1)"
    "  ON CONFLICT(workflow_id, status, bucket) DO UPDATE SET n = n + 1;"
    "END;"
    "CREATE TRIGGER executions_paged_delete AFTER DELETE ON executions BEGIN"
    "  UPDATE execution_pages SET n = n - 1 WHERE workflow_id IN (old.workflow_id, '')"
    "    AND status IN (old.status, '') AND bucket = old.num >> 10;"
    "  DELETE FROM execution_pages WHERE workflow_id IN (old.workflow_id, '')"
    "    AND status IN (old.status, '') AND bucket = old.num >> 10 AND n <= 0;"
    "END;";

/* Version 3: workflow templates installed from files (syn-broker --workflows)
 * remember the content hash they were installed from, so a restart with the same
 * files writes nothing; NULL for workflows made through the API. */
static const char *const schema_v3_sql = "ALTER TABLE workflows ADD COLUMN source_hash TEXT;";

/* Version 4: the store keeps execution_counts and execution_pages itself when
 * it changes an execution's status (store_recount()): as row triggers those updates
 * cost several times the status update itself, twice per execution. Inserts and
 * deletes keep their triggers. */
static const char *const schema_v4_sql =
    "DROP TRIGGER IF EXISTS executions_counted_update;"
    "DROP TRIGGER IF EXISTS executions_paged_update;";

/* Version 5: inserts are counted by the store too, through the tally (tally.h),
 * which writes each transaction's net changes once instead of per row. */
static const char *const schema_v5_sql =
    "DROP TRIGGER IF EXISTS executions_counted_insert;"
    "DROP TRIGGER IF EXISTS executions_paged_insert;";

/* Version 6: phases, attempts and the events index are keyed by the
 * execution's insertion number instead of its random id. Executions in flight
 * are the newest, so their rows and index entries now sit together on a few
 * pages instead of one page each: under W1 the WAL page writes halved and the
 * broker's CPU per execution fell by a fifth. (phases keeps its rowid: a row
 * holds the phase's output, which may be large. Both keep execution_id, not
 * indexed, so the tables still read on their own.) */
static const char *const schema_v6_sql =
    "CREATE TABLE phases_v6 ("
    "  exec_num INTEGER NOT NULL,"
    "  execution_id TEXT NOT NULL,"
    "  phase_id TEXT NOT NULL,"
    "  ord INTEGER NOT NULL,"
    "  name TEXT NOT NULL,"
    "  model TEXT,"
    "  status TEXT NOT NULL,"
    "  attempts INTEGER NOT NULL DEFAULT 0,"
    "  output TEXT,"
    "  error TEXT,"
    "  started_at INTEGER,"
    "  completed_at INTEGER,"
    "  input_tokens INTEGER NOT NULL DEFAULT 0,"
    "  output_tokens INTEGER NOT NULL DEFAULT 0,"
    "  cost_usd REAL NOT NULL DEFAULT 0,"
    "  cache_creation_tokens INTEGER NOT NULL DEFAULT 0,"
    "  cache_read_tokens INTEGER NOT NULL DEFAULT 0,"
    "  num_turns INTEGER NOT NULL DEFAULT 0,"
    "  duration_ms INTEGER NOT NULL DEFAULT 0,"
    "  tool_call_count INTEGER NOT NULL DEFAULT 0,"
    "  UNIQUE (exec_num, phase_id));"
    "INSERT INTO phases_v6 SELECT e.num, e.id, p.phase_id, p.ord, p.name, p.model, p.status,"
    "  p.attempts, p.output, p.error, p.started_at, p.completed_at, p.input_tokens,"
    "  p.output_tokens, p.cost_usd, p.cache_creation_tokens, p.cache_read_tokens,"
    "  p.num_turns, p.duration_ms, p.tool_call_count"
    "  FROM phases p JOIN executions e ON e.id = p.execution_id ORDER BY e.num, p.ord;"
    "DROP TABLE phases;"
    "ALTER TABLE phases_v6 RENAME TO phases;"
    "CREATE TABLE attempts_v6 ("
    "  exec_num INTEGER NOT NULL,"
    "  execution_id TEXT NOT NULL,"
    "  phase_id TEXT NOT NULL,"
    "  attempt INTEGER NOT NULL,"
    "  worker TEXT,"
    "  status TEXT NOT NULL,"
    "  started_at INTEGER,"
    "  completed_at INTEGER,"
    "  exit_code INTEGER,"
    "  error TEXT,"
    "  usage TEXT,"
    "  PRIMARY KEY (exec_num, phase_id, attempt)) WITHOUT ROWID;"
    "INSERT INTO attempts_v6 SELECT e.num, e.id, a.phase_id, a.attempt, a.worker, a.status,"
    "  a.started_at, a.completed_at, a.exit_code, a.error, a.usage"
    "  FROM attempts a JOIN executions e ON e.id = a.execution_id;"
    "DROP TABLE attempts;"
    "ALTER TABLE attempts_v6 RENAME TO attempts;"
    "ALTER TABLE events ADD COLUMN exec_num INTEGER;"
    "UPDATE events SET exec_num = (SELECT num FROM executions WHERE id = events.execution_id)"
    "  WHERE execution_id IS NOT NULL;"
    "DROP INDEX events_execution;"
    "CREATE INDEX events_execution ON events(exec_num, seq);";

/* The script that takes a database from version i to i + 1. */
static const char *const upgrades[] = {schema_v1_sql, schema_v2_sql, schema_v3_sql,
                                       schema_v4_sql, schema_v5_sql, schema_v6_sql};

typedef enum {
    SQL_BEGIN,
    SQL_COMMIT,
    SQL_WORKFLOW_INSERT,
    SQL_WORKFLOW_VERSION_INSERT,
    SQL_WORKFLOW_GET,
    SQL_WORKFLOW_TEMPLATE,
    SQL_WORKFLOW_LIST,
    SQL_WORKFLOW_COUNT,
    SQL_WORKFLOW_BUMP,
    SQL_WORKFLOW_ARCHIVE,
    SQL_EXECUTION_INSERT,
    SQL_EXECUTION_SAVE,
    SQL_EXECUTION_SAVE_PROGRESS,
    SQL_EXECUTION_ROW,
    SQL_TALLY_COUNT,
    SQL_TALLY_PAGES,
    SQL_TALLY_DROP,
    SQL_PHASE_INSERT,
    SQL_PHASE_SAVE,
    SQL_PHASE_SAVE_ROW,
    SQL_PHASE_OUTPUT,
    SQL_PHASE_SAVE_OUTPUT,
    SQL_PHASE_SAVE_OUTPUT_ROW,
    SQL_ATTEMPT_INSERT,
    SQL_ATTEMPT_FINISH,
    SQL_EXECUTION_MATCH,
    SQL_EXECUTION_STATUS,
    SQL_EXECUTION_ACTIVE,
    SQL_EXECUTION_FAIL,
    SQL_PHASES_OF,
    SQL_ATTEMPTS_OF,
    SQL_EVENT_LAST,
    SQL_COUNT_ALL,
    SQL_COUNT_STATUS,
    SQL_COUNT_WORKFLOW,
    SQL_COUNT_WORKFLOW_STATUS,
    SQL_USAGE_ATTEMPT,
    SQL_USAGE_PHASE,
    SQL_USAGE_EXECUTION,
    SQL_MESSAGE_INSERT,
    SQL_MESSAGES_BIND,
    SQL_MESSAGES_OF,
    SQL_PAGES,
    SQL_LIST_ALL,
    SQL_LIST_STATUS,
    SQL_LIST_WORKFLOW,
    SQL_LIST_WORKFLOW_STATUS,
    SQL_SKIP_ALL,
    SQL_SKIP_STATUS,
    SQL_SKIP_WORKFLOW,
    SQL_SKIP_WORKFLOW_STATUS,
    SQL_SUMMARY,
    SQL_DETAIL_PHASES,
    SQL_DETAIL_ATTEMPTS,
    SQL_EXECUTION_STATE,
    SQL_PHASE_OUTPUT_GET,
    SQL_WORKFLOW_NAME,
    SQL_EVENTS_ALL,
    SQL_EVENTS_EXECUTION,
    SQL_COUNT
} sql_id_t;

/* The summary's columns, in the order summary_of() reads them. */
#define SUMMARY_COLUMNS                                                                          \
    "e.id, e.workflow_id, w.name, e.status, e.started_at, e.completed_at, e.completed_phases,"  \
    " e.total_phases, e.total_input_tokens, e.total_output_tokens, e.total_cost_usd, e.error"
#define SUMMARY_JOIN " LEFT JOIN workflows w ON w.id = e.workflow_id"
#define SUMMARY_FROM " FROM executions e" SUMMARY_JOIN
/* Each filter names its index: the planner could otherwise walk the primary key
 * backwards (it matches ORDER BY) and test every row for a rare status. */
#define LIST_FROM(index) " FROM executions e INDEXED BY " index SUMMARY_JOIN
/* A page: newest first from the insertion number where it starts. */
#define LIST_TAIL " AND e.num <= ?1 ORDER BY e.num DESC LIMIT ?2"
/* Where a page starts: skip rows below a block's bound on the filter's index,
 * which holds (filter columns, num) and so answers without touching rows. */
#define SKIP_TAIL " AND num < ?1 ORDER BY num DESC LIMIT 1 OFFSET ?2"

/* The number of the execution whose id is ?1, for statements given only the id
 * (API reads, usage): child rows are keyed by it (schema version 6). */
#define EXEC_NUM_OF_ID "(SELECT num FROM executions WHERE id = ?1)"

/* A phase's state columns, saved by its key or, cheaper, by the rowid its
 * insert or load found (?9): one b-tree seek instead of the key index's and
 * then the row's. The key still has to match, so a rowid that changed (a
 * VACUUM renumbers them) changes nothing and the save falls back to the key. */
#define PHASE_SAVE                                                                              \
    "UPDATE phases SET status = ?3, attempts = ?4, error = ?5, started_at = ?6,"                \
    " completed_at = ?7"
#define PHASE_BY_KEY " WHERE exec_num = ?1 AND phase_id = ?2"
#define PHASE_BY_ROW " WHERE rowid = ?9 AND exec_num = ?1 AND phase_id = ?2"

static const char *const sql_text[SQL_COUNT] = {
    [SQL_BEGIN] = "BEGIN IMMEDIATE",
    [SQL_COMMIT] = "COMMIT",
    [SQL_WORKFLOW_INSERT] =
        "INSERT INTO workflows(id, name, description, workflow_type, classification,"
        " phase_count, version, created_at, source_hash)"
        " VALUES (?1, ?2, ?3, ?4, ?5, ?6, 1, ?7, ?8)",
    [SQL_WORKFLOW_VERSION_INSERT] =
        "INSERT INTO workflow_versions(workflow_id, version, template, created_at)"
        " VALUES (?1, ?4, ?2, ?3)",
    [SQL_WORKFLOW_GET] =
        "SELECT w.version, w.created_at, v.template, w.archived, w.source_hash FROM workflows w"
        " JOIN workflow_versions v ON v.workflow_id = w.id AND v.version = w.version"
        " WHERE w.id = ?1",
    [SQL_WORKFLOW_TEMPLATE] =
        "SELECT template FROM workflow_versions WHERE workflow_id = ?1 AND version = ?2",
    /* (?3 NULL: any type; ?4 = 1: archived ones too.) A few hundred rows at most:
     * one statement serves every filter. */
    [SQL_WORKFLOW_LIST] =
        "SELECT id, name, description, workflow_type, classification, phase_count, created_at,"
        " version, archived FROM workflows"
        " WHERE (?3 IS NULL OR workflow_type = ?3) AND (?4 OR archived = 0)"
        " ORDER BY num DESC LIMIT ?1 OFFSET ?2",
    [SQL_WORKFLOW_COUNT] =
        "SELECT count(*) FROM workflows"
        " WHERE (?1 IS NULL OR workflow_type = ?1) AND (?2 OR archived = 0)",
    [SQL_WORKFLOW_BUMP] =
        "UPDATE workflows SET name = ?2, description = ?3, workflow_type = ?4,"
        " classification = ?5, phase_count = ?6, version = version + 1,"
        " source_hash = coalesce(?7, source_hash) WHERE id = ?1 RETURNING version",
    [SQL_WORKFLOW_ARCHIVE] = "UPDATE workflows SET archived = 1 WHERE id = ?1 AND archived = 0",
    [SQL_EXECUTION_INSERT] =
        "INSERT INTO executions(id, workflow_id, workflow_version, status, inputs, task, repos,"
        " total_phases, completed_phases, current_phase, created_at, started_at, completed_at,"
        " error) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
    /* By num, the row's key: by id would seek the id index first. */
    [SQL_EXECUTION_SAVE] =
        "UPDATE executions SET status = ?2, completed_phases = ?3, current_phase = ?4,"
        " started_at = ?5, completed_at = ?6, error = ?7 WHERE num = ?1",
    [SQL_EXECUTION_SAVE_PROGRESS] =
        "UPDATE executions SET completed_phases = ?3, current_phase = ?4,"
        " started_at = ?5, completed_at = ?6, error = ?7 WHERE num = ?1",
    [SQL_EXECUTION_ROW] = "SELECT workflow_id, status, num FROM executions WHERE id = ?1",
    /* A tally entry's net change (store_flush_tally()): what the count triggers of
     * versions 1-4 did row by row. */
    [SQL_TALLY_COUNT] =
        "INSERT INTO execution_counts(workflow_id, status, n) VALUES (?1, ?2, ?3)"
        " ON CONFLICT(workflow_id, status) DO UPDATE SET n = n + excluded.n",
    [SQL_TALLY_PAGES] =
        "INSERT INTO execution_pages(workflow_id, status, bucket, n) VALUES"
        " (?1, ?2, ?3, ?4), ('', ?2, ?3, ?4)"
        " ON CONFLICT(workflow_id, status, bucket) DO UPDATE SET n = n + excluded.n",
    /* Run once for the workflow and once for '' (any): two equality seeks are
     * cheaper than the temporary table SQLite builds for IN (?1, ''). */
    [SQL_TALLY_DROP] =
        "DELETE FROM execution_pages WHERE workflow_id = ?1"
        " AND status = ?2 AND bucket = ?3 AND n <= 0",
    [SQL_PHASE_INSERT] =
        "INSERT INTO phases(exec_num, phase_id, ord, name, model, status, execution_id)"
        " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    [SQL_PHASE_SAVE] = PHASE_SAVE PHASE_BY_KEY,
    [SQL_PHASE_SAVE_ROW] = PHASE_SAVE PHASE_BY_ROW,
    [SQL_PHASE_OUTPUT] =
        "UPDATE phases SET output = ?3 WHERE exec_num = ?1 AND phase_id = ?2",
    [SQL_PHASE_SAVE_OUTPUT] = PHASE_SAVE ", output = ?8" PHASE_BY_KEY,
    [SQL_PHASE_SAVE_OUTPUT_ROW] = PHASE_SAVE ", output = ?8" PHASE_BY_ROW,
    [SQL_ATTEMPT_INSERT] =
        "INSERT INTO attempts(exec_num, phase_id, attempt, worker, status, started_at,"
        " execution_id) VALUES (?1, ?2, ?3, ?4, 'running', ?5, ?6)",
    [SQL_ATTEMPT_FINISH] =
        "UPDATE attempts SET status = ?4, completed_at = ?5, exit_code = ?6, error = ?7"
        " WHERE exec_num = ?1 AND phase_id = ?2 AND attempt = ?3",
    [SQL_EXECUTION_MATCH] =
        "SELECT id FROM executions WHERE id >= ?1 AND id < ?2 ORDER BY id LIMIT ?3",
    [SQL_EXECUTION_STATUS] =
        "SELECT id, workflow_id, status, current_phase, completed_phases, total_phases,"
        " started_at, completed_at, error FROM executions WHERE id = ?1",
    [SQL_EXECUTION_ACTIVE] =
        "SELECT e.id, e.workflow_id, e.workflow_version, e.status, e.inputs, e.task, e.repos,"
        " e.created_at, e.started_at, e.completed_at, e.error, v.template, e.num"
        " FROM executions e LEFT JOIN workflow_versions v"
        "   ON v.workflow_id = e.workflow_id AND v.version = e.workflow_version"
        " WHERE e.status IN ('pending', 'running', 'paused') ORDER BY e.num",
    [SQL_EXECUTION_FAIL] =
        "UPDATE executions SET status = 'failed', current_phase = NULL, completed_at = ?2,"
        " error = ?3 WHERE id = ?1",
    [SQL_PHASES_OF] =
        "SELECT phase_id, status, attempts, output, error, started_at, completed_at, rowid"
        " FROM phases WHERE exec_num = ?1",
    [SQL_ATTEMPTS_OF] =
        "SELECT attempt, worker, status FROM attempts WHERE exec_num = ?1 AND phase_id = ?2"
        " ORDER BY attempt",
    [SQL_EVENT_LAST] = "SELECT max(seq) FROM events",
    [SQL_COUNT_ALL] = "SELECT coalesce(sum(n), 0) FROM execution_counts",
    [SQL_COUNT_STATUS] = "SELECT coalesce(sum(n), 0) FROM execution_counts WHERE status = ?1",
    [SQL_COUNT_WORKFLOW] =
        "SELECT coalesce(sum(n), 0) FROM execution_counts WHERE workflow_id = ?1",
    [SQL_COUNT_WORKFLOW_STATUS] =
        "SELECT coalesce(sum(n), 0) FROM execution_counts WHERE workflow_id = ?1 AND status = ?2",
    [SQL_USAGE_ATTEMPT] =
        "UPDATE attempts SET usage = ?4"
        " WHERE exec_num = " EXEC_NUM_OF_ID " AND phase_id = ?2 AND attempt = ?3"
        " AND usage IS NULL",
    [SQL_USAGE_PHASE] =
        "UPDATE phases SET input_tokens = input_tokens + ?3, output_tokens = output_tokens + ?4,"
        " cache_creation_tokens = cache_creation_tokens + ?5,"
        " cache_read_tokens = cache_read_tokens + ?6, cost_usd = cost_usd + ?7,"
        " num_turns = num_turns + ?8, duration_ms = duration_ms + ?9,"
        " tool_call_count = tool_call_count + ?10, model = coalesce(?11, model)"
        " WHERE exec_num = " EXEC_NUM_OF_ID " AND phase_id = ?2",
    [SQL_USAGE_EXECUTION] =
        "UPDATE executions SET total_input_tokens = total_input_tokens + ?2,"
        " total_output_tokens = total_output_tokens + ?3,"
        " total_cache_creation_tokens = total_cache_creation_tokens + ?4,"
        " total_cache_read_tokens = total_cache_read_tokens + ?5,"
        " total_cost_usd = total_cost_usd + ?6 WHERE id = ?1",
    [SQL_MESSAGE_INSERT] =
        "INSERT INTO operator_messages(execution_id, role, message, created_at)"
        " VALUES (?1, ?2, ?3, ?4)",
    [SQL_MESSAGES_BIND] =
        "UPDATE operator_messages SET phase_id = ?2 WHERE execution_id = ?1 AND phase_id IS NULL",
    [SQL_MESSAGES_OF] =
        "SELECT id, role, message, phase_id, created_at FROM operator_messages"
        " WHERE execution_id = ?1 ORDER BY id",
    [SQL_PAGES] =
        "SELECT bucket, n FROM execution_pages WHERE workflow_id = ?1 AND status = ?2"
        " ORDER BY bucket DESC",
    [SQL_LIST_ALL] = "SELECT " SUMMARY_COLUMNS SUMMARY_FROM " WHERE 1" LIST_TAIL,
    [SQL_LIST_STATUS] =
        "SELECT " SUMMARY_COLUMNS LIST_FROM("executions_status") " WHERE e.status = ?4" LIST_TAIL,
    [SQL_LIST_WORKFLOW] =
        "SELECT " SUMMARY_COLUMNS LIST_FROM("executions_workflow") " WHERE e.workflow_id = ?5"
        LIST_TAIL,
    [SQL_LIST_WORKFLOW_STATUS] =
        "SELECT " SUMMARY_COLUMNS LIST_FROM("executions_workflow_status")
        " WHERE e.workflow_id = ?5 AND e.status = ?4" LIST_TAIL,
    [SQL_SKIP_ALL] = "SELECT num FROM executions WHERE 1" SKIP_TAIL,
    [SQL_SKIP_STATUS] =
        "SELECT num FROM executions INDEXED BY executions_status WHERE status = ?4" SKIP_TAIL,
    [SQL_SKIP_WORKFLOW] =
        "SELECT num FROM executions INDEXED BY executions_workflow WHERE workflow_id = ?5"
        SKIP_TAIL,
    [SQL_SKIP_WORKFLOW_STATUS] =
        "SELECT num FROM executions INDEXED BY executions_workflow_status"
        " WHERE workflow_id = ?5 AND status = ?4" SKIP_TAIL,
    [SQL_SUMMARY] =
        "SELECT " SUMMARY_COLUMNS ", e.inputs, e.task, e.repos, e.current_phase,"
        " e.total_cache_creation_tokens, e.total_cache_read_tokens" SUMMARY_FROM
        " WHERE e.id = ?1",
    [SQL_DETAIL_PHASES] =
        "SELECT phase_id, name, ord, status, error, started_at, completed_at, input_tokens,"
        " output_tokens, cache_creation_tokens, cache_read_tokens, cost_usd, num_turns,"
        " duration_ms, tool_call_count, model, substr(output, 1, ?2)"
        " FROM phases WHERE exec_num = " EXEC_NUM_OF_ID " ORDER BY ord",
    [SQL_DETAIL_ATTEMPTS] =
        "SELECT phase_id, attempt, worker, status, started_at, completed_at, exit_code, error,"
        " usage FROM attempts WHERE exec_num = " EXEC_NUM_OF_ID " ORDER BY phase_id, attempt",
    [SQL_EXECUTION_STATE] = "SELECT status FROM executions WHERE id = ?1",
    [SQL_PHASE_OUTPUT_GET] =
        "SELECT coalesce(output, '') FROM phases WHERE exec_num = " EXEC_NUM_OF_ID
        " AND phase_id = ?2",
    [SQL_WORKFLOW_NAME] = "SELECT name FROM workflows WHERE id = ?1",
    [SQL_EVENTS_ALL] =
        "SELECT seq, time, execution_id, type, data FROM events WHERE seq > ?1"
        " ORDER BY seq LIMIT ?2",
    [SQL_EVENTS_EXECUTION] =
        "SELECT seq, time, execution_id, type, data FROM events"
        " WHERE exec_num = (SELECT num FROM executions WHERE id = ?3) AND seq > ?1"
        " ORDER BY seq LIMIT ?2",
};

/* A workflow's current version as workflow_get read it: execution.start needs
 * it on every call, and reading and parsing the template each time cost more
 * than the rest of the request. Dropped whenever the workflow is written. */
typedef struct {
    broker_workflow_meta_t meta;
    json_t *template_json;
} cached_workflow_t;

/* Events wait here until the transaction commits or something reads the log,
 * then go in as multi-row inserts: one statement per event (eleven per
 * execution) spent a fifth of an event's cost on the statement itself. Batches
 * have power-of-two sizes up to EVENT_BATCH_MAX, so a handful of statements,
 * prepared once, serve every count. The strings are copied into one buffer (the
 * caller's are gone by then). */
#define EVENT_BATCH_SHIFT 5
#define EVENT_BATCH_MAX (1u << EVENT_BATCH_SHIFT)

typedef struct {
    int64_t seq;
    int64_t time;
    int64_t exec_num;        /* 0: looked up from execution_id */
    size_t execution_id;     /* offsets into text; NO_TEXT: NULL */
    size_t type;
    size_t data;
} pending_event_t;

#define NO_TEXT SIZE_MAX

typedef struct {
    pending_event_t rows[EVENT_BATCH_MAX];
    size_t count;
    char *text;
    size_t len, cap;
} pending_events_t;

struct broker_store_t {
    sqlite3 *db;
    sqlite3_stmt *stmts[SQL_COUNT];
    sqlite3_stmt *event_batch[EVENT_BATCH_SHIFT + 1]; /* [k]: the insert of 2^k events */
    pending_events_t events; /* events of the open transaction, not yet written */
    zhashx_t *workflows; /* id → cached_workflow_t */
    broker_tally_t *tally; /* count changes of the open transaction, not yet written */
    bool in_transaction;
    bool failed; /* a write of the open transaction failed: it must not commit */
    uint64_t commits;
};

/* --- helpers -------------------------------------------------------------- */

static void store_log_error(broker_store_t *self, const char *what)
{
    syn_error("broker", "sqlite %s failed: %s", what, sqlite3_errmsg(self->db));
}

/* The prepared statement for id, reset and with its bindings cleared, so every
 * caller starts from a clean slate. */
static sqlite3_stmt *store_stmt(broker_store_t *self, sql_id_t id)
{
    sqlite3_stmt *s = self->stmts[id];
    if (!s) {
        if (sqlite3_prepare_v3(self->db, sql_text[id], -1, SQLITE_PREPARE_PERSISTENT, &s,
                               NULL) != SQLITE_OK) {
            store_log_error(self, "prepare");
            self->failed = self->in_transaction;
            return NULL;
        }
        self->stmts[id] = s;
    }
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return s;
}

/* Steps a statement that returns no rows and resets it (so borrowed bound memory
 * is no longer referenced). SQLITE_DONE, SQLITE_CONSTRAINT or the error code. */
static int store_run(broker_store_t *self, sqlite3_stmt *s, const char *what)
{
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    if (rc == SQLITE_DONE)
        return SQLITE_DONE;
    if ((rc & 0xff) != SQLITE_CONSTRAINT) {
        store_log_error(self, what);
        self->failed = true;
    }
    return rc & 0xff;
}

static void store_bind_text(sqlite3_stmt *s, int index, const char *text)
{
    if (text)
        sqlite3_bind_text(s, index, text, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(s, index);
}

/* 0 binds NULL: timestamps that have not happened yet. */
static void store_bind_time(sqlite3_stmt *s, int index, int64_t value)
{
    if (value > 0)
        sqlite3_bind_int64(s, index, value);
    else
        sqlite3_bind_null(s, index);
}

/* Opens the group's transaction on the first write of an iteration. */
/* After a failed write nothing more is written until the commit rolls the
 * transaction back: SQLite may already have rolled it back by itself (full
 * disk, I/O error, out of memory), and later writes would then each commit on
 * their own, without the count changes the tally holds for them. */
static int store_begin_write(broker_store_t *self)
{
    if (self->failed)
        return -1;
    if (self->in_transaction)
        return 0;
    sqlite3_stmt *s = store_stmt(self, SQL_BEGIN);
    if (!s || store_run(self, s, "begin") != SQLITE_DONE) {
        self->failed = true;
        return -1;
    }
    self->in_transaction = true;
    return 0;
}

static char *store_column_strdup(sqlite3_stmt *s, int col)
{
    const unsigned char *text = sqlite3_column_text(s, col);
    return text ? strdup((const char *)text) : NULL;
}

static json_t *store_column_json(sqlite3_stmt *s, int col)
{
    const char *text = (const char *)sqlite3_column_text(s, col);
    if (!text)
        return NULL;
    return json_loads(text, JSON_DECODE_ANY, NULL);
}

static char *store_dump_json(const json_t *value)
{
    return json_dumps(value, JSON_COMPACT | JSON_ENCODE_ANY);
}

static int store_exec_sql(broker_store_t *self, const char *sql, const char *what)
{
    char *msg = NULL;
    if (sqlite3_exec(self->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        syn_error("broker", "sqlite %s failed: %s", what, msg ? msg : "?");
        sqlite3_free(msg);
        return -1;
    }
    return 0;
}

static int64_t query_int(broker_store_t *self, const char *sql, int64_t fallback)
{
    sqlite3_stmt *s;
    int64_t value = fallback;
    if (sqlite3_prepare_v2(self->db, sql, -1, &s, NULL) != SQLITE_OK)
        return fallback;
    if (sqlite3_step(s) == SQLITE_ROW)
        value = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    return value;
}

/* --- open / close / commit ------------------------------------------------- */

static int configure(broker_store_t *self, char *err, size_t errlen)
{
    sqlite3_busy_timeout(self->db, 5000);
    /* More lookaside slots: most of SQLite's small allocations per statement
     * then come from the connection's own pool instead of malloc. */
    sqlite3_db_config(self->db, SQLITE_DBCONFIG_LOOKASIDE, NULL, 512, 1024);
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(self->db, "PRAGMA journal_mode=WAL", -1, &s, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "cannot set WAL: %s", sqlite3_errmsg(self->db));
        return -1;
    }
    const char *mode = NULL;
    if (sqlite3_step(s) == SQLITE_ROW)
        mode = (const char *)sqlite3_column_text(s, 0);
    bool wal = mode && strcmp(mode, "wal") == 0;
    sqlite3_finalize(s);
    if (!wal) {
        snprintf(err, errlen, "the database refused WAL journaling");
        return -1;
    }
    if (store_exec_sql(self,
                       "PRAGMA synchronous=FULL; PRAGMA foreign_keys=OFF;"
                       " PRAGMA temp_store=MEMORY; PRAGMA cache_size=-16384;"
                       " PRAGMA wal_autocheckpoint=10000;",
                       "pragma") < 0) {
        snprintf(err, errlen, "cannot configure the database");
        return -1;
    }
    return 0;
}

/* Brings the file to BROKER_STORE_SCHEMA_VERSION in one transaction: a new
 * file runs every script, an older one the scripts it lacks. */
static int store_migrate(broker_store_t *self, char *err, size_t errlen)
{
    int64_t version = query_int(self, "PRAGMA user_version", -1);
    if (version == BROKER_STORE_SCHEMA_VERSION)
        return 0;
    if (version < 0 || version > BROKER_STORE_SCHEMA_VERSION) {
        snprintf(err, errlen, "database schema version %lld is not %d (made by another syn?)",
                 (long long)version, BROKER_STORE_SCHEMA_VERSION);
        return -1;
    }
    char pragma[64];
    snprintf(pragma, sizeof pragma, "PRAGMA user_version=%d;", BROKER_STORE_SCHEMA_VERSION);
    if (store_exec_sql(self, "BEGIN IMMEDIATE", "begin schema") < 0)
        goto fail;
    for (int64_t v = version; v < BROKER_STORE_SCHEMA_VERSION; v++)
        if (store_exec_sql(self, upgrades[v], "upgrade schema") < 0) {
            store_exec_sql(self, "ROLLBACK", "rollback schema");
            goto fail;
        }
    if (store_exec_sql(self, pragma, "set schema version") < 0) {
        store_exec_sql(self, "ROLLBACK", "rollback schema");
        goto fail;
    }
    if (store_exec_sql(self, "COMMIT", "commit schema") < 0)
        goto fail;
    if (version > 0)
        syn_info("broker", "database schema upgraded from=%lld to=%d", (long long)version,
                 BROKER_STORE_SCHEMA_VERSION);
    return 0;
fail:
    snprintf(err, errlen, "cannot create the schema: %s", sqlite3_errmsg(self->db));
    return -1;
}

static void store_cached_workflow_destroy(void **item)
{
    cached_workflow_t *cached = *item;
    if (!cached)
        return;
    json_decref(cached->template_json);
    free(cached);
    *item = NULL;
}

broker_store_t *broker_store_open(const char *path, char *err, size_t errlen)
{
    /* The broker uses SQLite from one thread: without memory statistics every
     * allocation inside SQLite (hundreds per execution) skips a global mutex.
     * Only possible before SQLite initializes; later calls fail harmlessly. */
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
    broker_store_t *self = calloc(1, sizeof *self);
    if (!self) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    self->workflows = zhashx_new();
    self->tally = broker_tally_new();
    if (!self->workflows || !self->tally) {
        snprintf(err, errlen, "out of memory");
        zhashx_destroy(&self->workflows);
        broker_tally_destroy(&self->tally);
        free(self);
        return NULL;
    }
    zhashx_set_destructor(self->workflows, store_cached_workflow_destroy);
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
    if (sqlite3_open_v2(path, &self->db, flags, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "cannot open %s: %s", path,
                 self->db ? sqlite3_errmsg(self->db) : "out of memory");
        broker_store_destroy(&self);
        return NULL;
    }
    if (configure(self, err, errlen) < 0 || store_migrate(self, err, errlen) < 0) {
        broker_store_destroy(&self);
        return NULL;
    }
    return self;
}

void broker_store_destroy(broker_store_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    broker_store_t *self = *self_p;
    if (self->db) {
        if (self->in_transaction)
            broker_store_commit(self);
        for (int i = 0; i < SQL_COUNT; i++)
            sqlite3_finalize(self->stmts[i]);
        for (int i = 0; i <= EVENT_BATCH_SHIFT; i++)
            sqlite3_finalize(self->event_batch[i]);
        sqlite3_close(self->db);
    }
    zhashx_destroy(&self->workflows);
    broker_tally_destroy(&self->tally);
    free(self->events.text);
    free(self);
    *self_p = NULL;
}

static int write_tally_entry(const broker_tally_entry_t *entry, void *arg)
{
    broker_store_t *self = arg;
    sqlite3_stmt *s;
    if (*entry->status) {
        s = store_stmt(self, SQL_TALLY_COUNT);
        if (!s)
            return -1;
        store_bind_text(s, 1, entry->workflow_id);
        store_bind_text(s, 2, entry->status);
        sqlite3_bind_int64(s, 3, entry->delta);
        if (store_run(self, s, "count executions") != SQLITE_DONE)
            return -1;
    }
    s = store_stmt(self, SQL_TALLY_PAGES);
    if (!s)
        return -1;
    store_bind_text(s, 1, entry->workflow_id);
    store_bind_text(s, 2, entry->status);
    sqlite3_bind_int64(s, 3, entry->block);
    sqlite3_bind_int64(s, 4, entry->delta);
    if (store_run(self, s, "count execution pages") != SQLITE_DONE)
        return -1;
    if (entry->delta > 0)
        return 0;
    const char *owners[] = {entry->workflow_id, ""};
    for (size_t i = 0; i < 2; i++) {
        s = store_stmt(self, SQL_TALLY_DROP);
        if (!s)
            return -1;
        store_bind_text(s, 1, owners[i]);
        store_bind_text(s, 2, entry->status);
        sqlite3_bind_int64(s, 3, entry->block);
        if (store_run(self, s, "drop empty execution pages") != SQLITE_DONE)
            return -1;
    }
    return 0;
}

/* Writes the open transaction's count changes: before it commits, and before
 * anything reads the counts. */
static int store_flush_tally(broker_store_t *self)
{
    int rc = 0;
    if (self->in_transaction && !self->failed &&
        broker_tally_each(self->tally, write_tally_entry, self) != 0) {
        self->failed = true;
        rc = -1;
    }
    broker_tally_clear(self->tally);
    return rc;
}

static int store_flush_events(broker_store_t *self);

/* A status change or insert of execution num of workflow_id: status "" is the
 * any-status key, which only inserts (and deletes) move. */
static int store_count_change(broker_store_t *self, const char *workflow_id, const char *status,
                              int64_t num, int64_t delta)
{
    if (broker_tally_add(self->tally, workflow_id, status, num, delta) < 0) {
        syn_error("broker", "out of memory counting executions");
        self->failed = true;
        return -1;
    }
    /* Many distinct keys in one transaction (a bulk change across workflows):
     * write them now rather than scan an ever longer list. */
    if (broker_tally_size(self->tally) >= 64)
        return store_flush_tally(self);
    return 0;
}

/* A transaction in which any write failed is rolled back whole: committing the
 * rest would store a state the broker never was in. */
int broker_store_commit(broker_store_t *self)
{
    store_flush_events(self);
    store_flush_tally(self);
    bool failed = self->failed;
    self->failed = false;
    if (!self->in_transaction)
        return failed ? -1 : 0;
    self->in_transaction = false;
    if (!failed) {
        sqlite3_stmt *s = store_stmt(self, SQL_COMMIT);
        if (s && store_run(self, s, "commit") == SQLITE_DONE) {
            self->failed = false;
            self->commits++;
            return 0;
        }
    }
    self->failed = false;
    if (!sqlite3_get_autocommit(self->db))
        store_exec_sql(self, "ROLLBACK", "rollback");
    zhashx_purge(self->workflows); /* it may hold what was just rolled back */
    return -1;
}

bool broker_store_dirty(const broker_store_t *self)
{
    return self->in_transaction;
}

uint64_t broker_store_commit_count(const broker_store_t *self)
{
    return self->commits;
}

/* --- workflows ------------------------------------------------------------- */

/* One row of workflow_versions: 0, or -1 (the transaction is then marked failed). */
static int insert_version(broker_store_t *self, const char *id, int64_t version,
                          const char *text, int64_t created_at)
{
    sqlite3_stmt *s = store_stmt(self, SQL_WORKFLOW_VERSION_INSERT);
    if (!s)
        return -1;
    store_bind_text(s, 1, id);
    store_bind_text(s, 2, text);
    sqlite3_bind_int64(s, 3, created_at);
    sqlite3_bind_int64(s, 4, version);
    int rc = store_run(self, s, "insert workflow version");
    if (rc == SQLITE_CONSTRAINT) {
        /* a version that exists already: the two tables disagree */
        syn_error("broker", "workflow %s already has a version %lld", id, (long long)version);
        self->failed = true;
    }
    return rc == SQLITE_DONE ? 0 : -1;
}

/* Columns 1-6 of both the insert and the version bump: what a workflow row says
 * about itself, in the order the two statements share. */
static void bind_workflow_columns(sqlite3_stmt *s, const broker_workflow_row_t *row)
{
    store_bind_text(s, 1, row->id);
    store_bind_text(s, 2, row->name);
    store_bind_text(s, 3, row->description);
    store_bind_text(s, 4, row->workflow_type);
    store_bind_text(s, 5, row->classification);
    sqlite3_bind_int64(s, 6, row->phase_count);
}

int broker_store_workflow_insert(broker_store_t *self, const broker_workflow_row_t *row)
{
    zhashx_delete(self->workflows, row->id);
    char *text = store_dump_json(row->template_json);
    if (!text || store_begin_write(self) < 0) {
        free(text);
        return -1;
    }
    int result = -1;
    sqlite3_stmt *s = store_stmt(self, SQL_WORKFLOW_INSERT);
    if (!s)
        goto done;
    bind_workflow_columns(s, row);
    sqlite3_bind_int64(s, 7, row->created_at);
    store_bind_text(s, 8, row->source_hash);
    int rc = store_run(self, s, "insert workflow");
    if (rc == SQLITE_CONSTRAINT) {
        result = 1;
        goto done;
    }
    if (rc != SQLITE_DONE)
        goto done;
    if (insert_version(self, row->id, 1, text, row->created_at) == 0)
        result = 0;
done:
    free(text);
    return result;
}

int broker_store_workflow_update(broker_store_t *self, const broker_workflow_row_t *row,
                                 int64_t *version_out)
{
    zhashx_delete(self->workflows, row->id);
    char *text = store_dump_json(row->template_json);
    if (!text || store_begin_write(self) < 0) {
        free(text);
        return -1;
    }
    int result = -1;
    sqlite3_stmt *s = store_stmt(self, SQL_WORKFLOW_BUMP);
    if (!s)
        goto done;
    bind_workflow_columns(s, row);
    store_bind_text(s, 7, row->source_hash);
    int rc = sqlite3_step(s);
    int64_t version = rc == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
    if (rc == SQLITE_ROW)
        rc = sqlite3_step(s); /* finishes the statement: the update is done */
    sqlite3_reset(s);
    if (rc != SQLITE_DONE) {
        store_log_error(self, "update workflow");
        self->failed = true;
        goto done;
    }
    if (version == 0) {
        result = 1;
        goto done;
    }
    if (insert_version(self, row->id, version, text, row->created_at) == 0) {
        result = 0;
        if (version_out)
            *version_out = version;
    }
done:
    free(text);
    return result;
}

int broker_store_workflow_archive(broker_store_t *self, const char *id)
{
    zhashx_delete(self->workflows, id);
    if (store_begin_write(self) < 0)
        return -1;
    sqlite3_stmt *s = store_stmt(self, SQL_WORKFLOW_ARCHIVE);
    if (!s)
        return -1;
    store_bind_text(s, 1, id);
    if (store_run(self, s, "archive workflow") != SQLITE_DONE)
        return -1;
    return sqlite3_changes(self->db) == 1 ? 0 : 1;
}

int broker_store_workflow_get(broker_store_t *self, const char *id, json_t **template_out,
                              broker_workflow_meta_t *meta)
{
    sqlite3_stmt *s = store_stmt(self, SQL_WORKFLOW_GET);
    if (!s)
        return -1;
    store_bind_text(s, 1, id);
    int rc = sqlite3_step(s);
    int result = 0;
    if (rc == SQLITE_ROW) {
        if (meta) {
            memset(meta, 0, sizeof *meta);
            meta->version = sqlite3_column_int64(s, 0);
            meta->created_at = sqlite3_column_int64(s, 1);
            meta->archived = sqlite3_column_int(s, 3) != 0;
            const char *hash = (const char *)sqlite3_column_text(s, 4);
            snprintf(meta->source_hash, sizeof meta->source_hash, "%s", hash ? hash : "");
        }
        json_t *template_json = store_column_json(s, 2);
        if (template_json) {
            *template_out = template_json;
            result = 1;
        } else {
            syn_error("broker", "workflow %s has an unreadable template", id);
            result = -1;
        }
    } else if (rc != SQLITE_DONE) {
        store_log_error(self, "get workflow");
        result = -1;
    }
    sqlite3_reset(s);
    return result;
}

int broker_store_workflow_shared(broker_store_t *self, const char *id,
                                 const json_t **template_out, broker_workflow_meta_t *meta)
{
    cached_workflow_t *cached = zhashx_lookup(self->workflows, id);
    if (!cached) {
        json_t *template_json = NULL;
        broker_workflow_meta_t read;
        int rc = broker_store_workflow_get(self, id, &template_json, &read);
        if (rc != 1)
            return rc;
        cached = calloc(1, sizeof *cached);
        if (!cached) {
            json_decref(template_json);
            return -1;
        }
        cached->meta = read;
        cached->template_json = template_json;
        if (zhashx_insert(self->workflows, id, cached) != 0) {
            void *item = cached;
            store_cached_workflow_destroy(&item);
            return -1;
        }
    }
    *template_out = cached->template_json;
    if (meta)
        *meta = cached->meta;
    return 1;
}

int broker_store_workflow_template(broker_store_t *self, const char *id, int64_t version,
                                   json_t **template_out)
{
    sqlite3_stmt *s = store_stmt(self, SQL_WORKFLOW_TEMPLATE);
    if (!s)
        return -1;
    store_bind_text(s, 1, id);
    sqlite3_bind_int64(s, 2, version);
    int rc = sqlite3_step(s);
    int result = 0;
    if (rc == SQLITE_ROW) {
        *template_out = store_column_json(s, 0);
        result = *template_out ? 1 : -1;
    } else if (rc != SQLITE_DONE) {
        store_log_error(self, "get workflow template");
        result = -1;
    }
    sqlite3_reset(s);
    return result;
}

static json_t *store_column_string_or_null(sqlite3_stmt *s, int col)
{
    const char *text = (const char *)sqlite3_column_text(s, col);
    json_t *value = text ? json_string(text) : NULL;
    return value ? value : json_null();
}

int broker_store_workflow_list(broker_store_t *self, const broker_workflow_filter_t *filter,
                               int64_t page, int64_t page_size, json_t **items_out,
                               int64_t *total)
{
    const char *type = filter ? filter->workflow_type : NULL;
    int archived = filter && filter->include_archived;
    sqlite3_stmt *s = store_stmt(self, SQL_WORKFLOW_COUNT);
    if (!s)
        return -1;
    store_bind_text(s, 1, type);
    sqlite3_bind_int(s, 2, archived);
    if (sqlite3_step(s) != SQLITE_ROW) {
        store_log_error(self, "count workflows");
        sqlite3_reset(s);
        return -1;
    }
    *total = sqlite3_column_int64(s, 0);
    sqlite3_reset(s);

    s = store_stmt(self, SQL_WORKFLOW_LIST);
    if (!s)
        return -1;
    sqlite3_bind_int64(s, 1, page_size);
    sqlite3_bind_int64(s, 2, (page - 1) * page_size);
    store_bind_text(s, 3, type);
    sqlite3_bind_int(s, 4, archived);
    json_t *items = json_array();
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        json_t *item = json_object();
        json_object_set_new(item, "id", store_column_string_or_null(s, 0));
        json_object_set_new(item, "name", store_column_string_or_null(s, 1));
        json_object_set_new(item, "description", store_column_string_or_null(s, 2));
        json_object_set_new(item, "workflow_type", store_column_string_or_null(s, 3));
        json_object_set_new(item, "classification", store_column_string_or_null(s, 4));
        json_object_set_new(item, "phase_count", json_integer(sqlite3_column_int64(s, 5)));
        json_object_set_new(item, "created_at", broker_time_json(sqlite3_column_int64(s, 6)));
        json_object_set_new(item, "version", json_integer(sqlite3_column_int64(s, 7)));
        json_object_set_new(item, "archived", json_boolean(sqlite3_column_int(s, 8) != 0));
        json_array_append_new(items, item);
    }
    sqlite3_reset(s);
    if (rc != SQLITE_DONE) {
        store_log_error(self, "list workflows");
        json_decref(items);
        return -1;
    }
    *items_out = items;
    return 0;
}

/* --- executions ------------------------------------------------------------ */

static const char *current_phase_id(const broker_execution_t *exec)
{
    return broker_execution_active_phase((broker_execution_t *)exec)
               ? exec->phases[exec->current].phase_id
               : NULL;
}

int broker_store_execution_insert(broker_store_t *self, broker_execution_t *exec)
{
    char *inputs = store_dump_json(exec->inputs);
    char *repos = store_dump_json(exec->repos);
    int result = -1;
    if (!inputs || !repos || store_begin_write(self) < 0)
        goto done;
    sqlite3_stmt *s = store_stmt(self, SQL_EXECUTION_INSERT);
    if (!s)
        goto done;
    store_bind_text(s, 1, exec->id);
    store_bind_text(s, 2, exec->workflow_id);
    sqlite3_bind_int64(s, 3, exec->workflow_version);
    store_bind_text(s, 4, broker_exec_status_name(exec->status));
    store_bind_text(s, 5, inputs);
    store_bind_text(s, 6, exec->task);
    store_bind_text(s, 7, repos);
    sqlite3_bind_int64(s, 8, (int64_t)exec->phase_count);
    sqlite3_bind_int64(s, 9, (int64_t)exec->completed_phases);
    store_bind_text(s, 10, current_phase_id(exec));
    sqlite3_bind_int64(s, 11, exec->created_at);
    store_bind_time(s, 12, exec->started_at);
    store_bind_time(s, 13, exec->completed_at);
    store_bind_text(s, 14, exec->error);
    int rc = store_run(self, s, "insert execution");
    if (rc != SQLITE_DONE) {
        result = rc == SQLITE_CONSTRAINT ? 1 : -1;
        goto done;
    }
    int64_t num = sqlite3_last_insert_rowid(self->db);
    exec->num = num;
    const char *status = broker_exec_status_name(exec->status);
    if (store_count_change(self, exec->workflow_id, status, num, 1) < 0 ||
        store_count_change(self, exec->workflow_id, "", num, 1) < 0)
        goto done;
    for (size_t i = 0; i < exec->phase_count; i++) {
        broker_phase_t *phase = &exec->phases[i];
        s = store_stmt(self, SQL_PHASE_INSERT);
        if (!s)
            goto done;
        sqlite3_bind_int64(s, 1, num);
        store_bind_text(s, 2, phase->phase_id);
        sqlite3_bind_int64(s, 3, phase->order);
        store_bind_text(s, 4, phase->name);
        store_bind_text(s, 5, phase->model);
        store_bind_text(s, 6, broker_phase_status_name(phase->status));
        store_bind_text(s, 7, exec->id);
        if (store_run(self, s, "insert phase") != SQLITE_DONE)
            goto done;
        phase->row = sqlite3_last_insert_rowid(self->db);
    }
    result = 0;
done:
    free(inputs);
    free(repos);
    return result;
}

/* An execution's row as the counts know it: workflow, status, insertion number. */
typedef struct {
    char *workflow_id;
    char status[16];
    int64_t num;
} counted_row_t;

/* 1 with the row, 0 when there is none, -1 on error (free workflow_id). */
static int store_counted_row(broker_store_t *self, const char *id, counted_row_t *row)
{
    sqlite3_stmt *s = store_stmt(self, SQL_EXECUTION_ROW);
    if (!s)
        return -1;
    store_bind_text(s, 1, id);
    int rc = sqlite3_step(s);
    int result = 0;
    if (rc == SQLITE_ROW) {
        row->workflow_id = store_column_strdup(s, 0);
        const char *status = (const char *)sqlite3_column_text(s, 1);
        snprintf(row->status, sizeof row->status, "%s", status ? status : "");
        row->num = sqlite3_column_int64(s, 2);
        result = row->workflow_id ? 1 : -1;
    } else if (rc != SQLITE_DONE) {
        store_log_error(self, "read execution row");
        self->failed = true;
        result = -1;
    }
    sqlite3_reset(s);
    return result;
}

/* One execution of row's workflow moved from row's status to status: the
 * counts and page blocks follow. */
static int store_recount(broker_store_t *self, const counted_row_t *row, const char *status)
{
    if (strcmp(row->status, status) == 0)
        return 0;
    if (store_count_change(self, row->workflow_id, row->status, row->num, -1) < 0 ||
        store_count_change(self, row->workflow_id, status, row->num, 1) < 0)
        return -1;
    return 0;
}

/* The row as the counts know it, from the execution when it knows what its row
 * says (stored_status), else read from the row. 1, 0 no row, -1 error (free
 * workflow_id). */
static int counted_row_of(broker_store_t *self, const broker_execution_t *exec,
                          counted_row_t *row)
{
    if (exec->stored_status < 0 || exec->num <= 0)
        return store_counted_row(self, exec->id, row);
    row->workflow_id = strdup(exec->workflow_id);
    snprintf(row->status, sizeof row->status, "%s",
             broker_exec_status_name((broker_exec_status_t)exec->stored_status));
    row->num = exec->num;
    return row->workflow_id ? 1 : -1;
}

static int save_execution(broker_store_t *self, const broker_execution_t *exec, bool status)
{
    counted_row_t row = {0};
    if (status) {
        if (store_begin_write(self) < 0)
            return -1;
        int found = counted_row_of(self, exec, &row);
        if (found <= 0)
            return found;
        const char *to = broker_exec_status_name(exec->status);
        int rc = store_recount(self, &row, to);
        bool same = strcmp(row.status, to) == 0;
        free(row.workflow_id);
        if (rc < 0)
            return -1;
        status = !same;
    }
    if (store_begin_write(self) < 0)
        return -1;
    sqlite3_stmt *s = store_stmt(self, status ? SQL_EXECUTION_SAVE : SQL_EXECUTION_SAVE_PROGRESS);
    if (!s)
        return -1;
    sqlite3_bind_int64(s, 1, row.num > 0 ? row.num : exec->num);
    if (status)
        store_bind_text(s, 2, broker_exec_status_name(exec->status));
    sqlite3_bind_int64(s, 3, (int64_t)exec->completed_phases);
    store_bind_text(s, 4, current_phase_id(exec));
    store_bind_time(s, 5, exec->started_at);
    store_bind_time(s, 6, exec->completed_at);
    store_bind_text(s, 7, exec->error);
    return store_run(self, s, "save execution") == SQLITE_DONE ? 0 : -1;
}

int broker_store_execution_save(broker_store_t *self, const broker_execution_t *exec)
{
    return save_execution(self, exec, true);
}

int broker_store_execution_save_progress(broker_store_t *self, const broker_execution_t *exec)
{
    return save_execution(self, exec, false);
}

static int save_phase_by(broker_store_t *self, const broker_execution_t *exec,
                         const broker_phase_t *phase, bool output, int64_t row);

/* By rowid when the phase knows it, then by key if that matched no row. */
static int save_phase(broker_store_t *self, const broker_execution_t *exec,
                      const broker_phase_t *phase, bool output)
{
    if (store_begin_write(self) < 0)
        return -1;
    if (phase->row > 0) {
        int rc = save_phase_by(self, exec, phase, output, phase->row);
        if (rc != 0 || sqlite3_changes(self->db) > 0)
            return rc;
    }
    return save_phase_by(self, exec, phase, output, 0);
}

/* One phase save, by rowid (row > 0) or by key. */
static int save_phase_by(broker_store_t *self, const broker_execution_t *exec,
                         const broker_phase_t *phase, bool output, int64_t row)
{
    sql_id_t id = output ? (row ? SQL_PHASE_SAVE_OUTPUT_ROW : SQL_PHASE_SAVE_OUTPUT)
                         : (row ? SQL_PHASE_SAVE_ROW : SQL_PHASE_SAVE);
    sqlite3_stmt *s = store_stmt(self, id);
    if (!s)
        return -1;
    if (row)
        sqlite3_bind_int64(s, 9, row);
    sqlite3_bind_int64(s, 1, exec->num);
    store_bind_text(s, 2, phase->phase_id);
    store_bind_text(s, 3, broker_phase_status_name(phase->status));
    sqlite3_bind_int64(s, 4, phase->attempt);
    store_bind_text(s, 5, phase->error);
    store_bind_time(s, 6, phase->started_at);
    store_bind_time(s, 7, phase->completed_at);
    if (output)
        store_bind_text(s, 8, phase->output);
    return store_run(self, s, "save phase") == SQLITE_DONE ? 0 : -1;
}

int broker_store_phase_save(broker_store_t *self, const broker_execution_t *exec,
                            const broker_phase_t *phase)
{
    return save_phase(self, exec, phase, false);
}

int broker_store_phase_save_with_output(broker_store_t *self, const broker_execution_t *exec,
                                        const broker_phase_t *phase)
{
    return save_phase(self, exec, phase, true);
}

int broker_store_phase_set_output(broker_store_t *self, const broker_execution_t *exec,
                                  const broker_phase_t *phase)
{
    if (store_begin_write(self) < 0)
        return -1;
    sqlite3_stmt *s = store_stmt(self, SQL_PHASE_OUTPUT);
    if (!s)
        return -1;
    sqlite3_bind_int64(s, 1, exec->num);
    store_bind_text(s, 2, phase->phase_id);
    store_bind_text(s, 3, phase->output);
    return store_run(self, s, "save phase output") == SQLITE_DONE ? 0 : -1;
}

int broker_store_attempt_insert(broker_store_t *self, const broker_execution_t *exec,
                                const char *phase_id, int64_t attempt, const char *worker,
                                int64_t started_at)
{
    if (store_begin_write(self) < 0)
        return -1;
    sqlite3_stmt *s = store_stmt(self, SQL_ATTEMPT_INSERT);
    if (!s)
        return -1;
    sqlite3_bind_int64(s, 1, exec->num);
    store_bind_text(s, 2, phase_id);
    sqlite3_bind_int64(s, 3, attempt);
    store_bind_text(s, 4, worker);
    store_bind_time(s, 5, started_at);
    store_bind_text(s, 6, exec->id);
    return store_run(self, s, "insert attempt") == SQLITE_DONE ? 0 : -1;
}

int broker_store_attempt_finish(broker_store_t *self, const broker_execution_t *exec,
                                const char *phase_id, int64_t attempt,
                                broker_attempt_status_t status, int64_t completed_at,
                                const int64_t *exit_code, const char *error)
{
    if (store_begin_write(self) < 0)
        return -1;
    sqlite3_stmt *s = store_stmt(self, SQL_ATTEMPT_FINISH);
    if (!s)
        return -1;
    sqlite3_bind_int64(s, 1, exec->num);
    store_bind_text(s, 2, phase_id);
    sqlite3_bind_int64(s, 3, attempt);
    store_bind_text(s, 4, broker_attempt_status_name(status));
    store_bind_time(s, 5, completed_at);
    if (exit_code)
        sqlite3_bind_int64(s, 6, *exit_code);
    else
        sqlite3_bind_null(s, 6);
    store_bind_text(s, 7, error);
    return store_run(self, s, "finish attempt") == SQLITE_DONE ? 0 : -1;
}

/* Ids with a given prefix are exactly those in [prefix, prefix with its last byte
 * incremented): a range the unique index answers without scanning the table, even
 * when nothing matches. Text compares bytewise, and valid UTF-8 never ends in
 * 0xFF, so the increment cannot overflow; an empty prefix matches everything. */
int broker_store_execution_match(broker_store_t *self, const char *prefix,
                                 char (*ids)[BROKER_EXEC_ID_SIZE], size_t max, size_t *count)
{
    *count = 0;
    size_t len = strlen(prefix);
    char *upper = malloc(len + 2);
    if (!upper)
        return -1;
    memcpy(upper, prefix, len + 1);
    if (len == 0 || (unsigned char)upper[len - 1] == 0xFF) {
        upper[len] = (char)0xFF;
        upper[len + 1] = '\0';
    } else {
        upper[len - 1] = (char)((unsigned char)upper[len - 1] + 1);
    }
    sqlite3_stmt *s = store_stmt(self, SQL_EXECUTION_MATCH);
    if (!s) {
        free(upper);
        return -1;
    }
    store_bind_text(s, 1, prefix);
    sqlite3_bind_text(s, 2, upper, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 3, (int64_t)max);
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW && *count < max) {
        const char *id = (const char *)sqlite3_column_text(s, 0);
        snprintf(ids[*count], BROKER_EXEC_ID_SIZE, "%s", id ? id : "");
        (*count)++;
    }
    sqlite3_reset(s);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
        store_log_error(self, "match execution ids");
        free(upper);
        return -1;
    }
    free(upper);
    return 0;
}

int broker_store_execution_status(broker_store_t *self, const char *id, json_t **status_out)
{
    sqlite3_stmt *s = store_stmt(self, SQL_EXECUTION_STATUS);
    if (!s)
        return -1;
    store_bind_text(s, 1, id);
    int rc = sqlite3_step(s);
    int result = 0;
    if (rc == SQLITE_ROW) {
        broker_status_view_t view = {
            .execution_id = (const char *)sqlite3_column_text(s, 0),
            .workflow_id = (const char *)sqlite3_column_text(s, 1),
            .current_phase = (const char *)sqlite3_column_text(s, 3),
            .completed_phases = sqlite3_column_int64(s, 4),
            .total_phases = sqlite3_column_int64(s, 5),
            .started_at = sqlite3_column_int64(s, 6),
            .completed_at = sqlite3_column_int64(s, 7),
            .error = (const char *)sqlite3_column_text(s, 8),
        };
        if (broker_exec_status_parse((const char *)sqlite3_column_text(s, 2), &view.status) <
                0 ||
            !view.execution_id || !view.workflow_id) {
            syn_error("broker", "execution %s has an unreadable row", id);
            result = -1;
        } else {
            *status_out = broker_status_json(&view);
            result = *status_out ? 1 : -1;
        }
    } else if (rc != SQLITE_DONE) {
        store_log_error(self, "get execution");
        result = -1;
    }
    sqlite3_reset(s);
    return result;
}

int64_t broker_store_execution_count(broker_store_t *self, const char *workflow_id, int status)
{
    if (store_flush_tally(self) < 0)
        return -1;
    const char *status_name =
        status >= 0 ? broker_exec_status_name((broker_exec_status_t)status) : NULL;
    sqlite3_stmt *s;
    if (workflow_id && status_name) {
        s = store_stmt(self, SQL_COUNT_WORKFLOW_STATUS);
        if (s) {
            store_bind_text(s, 1, workflow_id);
            store_bind_text(s, 2, status_name);
        }
    } else if (workflow_id) {
        s = store_stmt(self, SQL_COUNT_WORKFLOW);
        if (s)
            store_bind_text(s, 1, workflow_id);
    } else if (status_name) {
        s = store_stmt(self, SQL_COUNT_STATUS);
        if (s)
            store_bind_text(s, 1, status_name);
    } else {
        s = store_stmt(self, SQL_COUNT_ALL);
    }
    if (!s)
        return -1;
    int64_t n = -1;
    if (sqlite3_step(s) == SQLITE_ROW)
        n = sqlite3_column_int64(s, 0);
    else
        store_log_error(self, "count executions");
    sqlite3_reset(s);
    return n;
}

/* --- accounting and operator messages -------------------------------------- */

int broker_store_usage_record(broker_store_t *self, const char *execution_id,
                              const char *phase_id, int64_t attempt,
                              const broker_usage_t *usage)
{
    json_t *doc = json_object();
    broker_usage_put(usage, doc, NULL, true);
    char *text = store_dump_json(doc);
    json_decref(doc);
    if (!text || store_begin_write(self) < 0) {
        free(text);
        return -1;
    }
    int result = -1;
    sqlite3_stmt *s = store_stmt(self, SQL_USAGE_ATTEMPT);
    if (!s)
        goto done;
    store_bind_text(s, 1, execution_id);
    store_bind_text(s, 2, phase_id);
    sqlite3_bind_int64(s, 3, attempt);
    store_bind_text(s, 4, text);
    if (store_run(self, s, "record attempt usage") != SQLITE_DONE)
        goto done;
    if (sqlite3_changes(self->db) == 0) {
        result = 0;
        goto done;
    }
    s = store_stmt(self, SQL_USAGE_PHASE);
    if (!s)
        goto done;
    store_bind_text(s, 1, execution_id);
    store_bind_text(s, 2, phase_id);
    sqlite3_bind_int64(s, 3, usage->input_tokens);
    sqlite3_bind_int64(s, 4, usage->output_tokens);
    sqlite3_bind_int64(s, 5, usage->cache_creation_tokens);
    sqlite3_bind_int64(s, 6, usage->cache_read_tokens);
    sqlite3_bind_double(s, 7, usage->cost_usd);
    sqlite3_bind_int64(s, 8, usage->num_turns);
    sqlite3_bind_int64(s, 9, usage->duration_ms);
    sqlite3_bind_int64(s, 10, usage->tool_call_count);
    store_bind_text(s, 11, usage->model);
    if (store_run(self, s, "add phase usage") != SQLITE_DONE)
        goto done;
    s = store_stmt(self, SQL_USAGE_EXECUTION);
    if (!s)
        goto done;
    store_bind_text(s, 1, execution_id);
    sqlite3_bind_int64(s, 2, usage->input_tokens);
    sqlite3_bind_int64(s, 3, usage->output_tokens);
    sqlite3_bind_int64(s, 4, usage->cache_creation_tokens);
    sqlite3_bind_int64(s, 5, usage->cache_read_tokens);
    sqlite3_bind_double(s, 6, usage->cost_usd);
    if (store_run(self, s, "add execution usage") == SQLITE_DONE)
        result = 1;
done:
    free(text);
    return result;
}

int64_t broker_store_message_insert(broker_store_t *self, const char *execution_id,
                                    const char *role, const char *message, int64_t created_at)
{
    if (store_begin_write(self) < 0)
        return -1;
    sqlite3_stmt *s = store_stmt(self, SQL_MESSAGE_INSERT);
    if (!s)
        return -1;
    store_bind_text(s, 1, execution_id);
    store_bind_text(s, 2, role);
    store_bind_text(s, 3, message);
    sqlite3_bind_int64(s, 4, created_at);
    if (store_run(self, s, "insert operator message") != SQLITE_DONE)
        return -1;
    return sqlite3_last_insert_rowid(self->db);
}

int broker_store_messages_bind(broker_store_t *self, const char *execution_id,
                               const char *phase_id)
{
    if (store_begin_write(self) < 0)
        return -1;
    sqlite3_stmt *s = store_stmt(self, SQL_MESSAGES_BIND);
    if (!s)
        return -1;
    store_bind_text(s, 1, execution_id);
    store_bind_text(s, 2, phase_id);
    return store_run(self, s, "bind operator messages") == SQLITE_DONE ? 0 : -1;
}

static json_t *store_column_string_or_null(sqlite3_stmt *s, int col);

/* [{id, role, message, phase_id, created_at}] of one execution, oldest first. */
static json_t *store_messages_of(broker_store_t *self, const char *execution_id, bool with_time)
{
    sqlite3_stmt *s = store_stmt(self, SQL_MESSAGES_OF);
    if (!s)
        return NULL;
    store_bind_text(s, 1, execution_id);
    json_t *list = json_array();
    int rc = SQLITE_ERROR;
    while (list && (rc = sqlite3_step(s)) == SQLITE_ROW) {
        json_t *m = json_pack("{s:I, s:o, s:o, s:o}", "id",
                              (json_int_t)sqlite3_column_int64(s, 0), "role",
                              store_column_string_or_null(s, 1), "message",
                              store_column_string_or_null(s, 2), "phase_id",
                              store_column_string_or_null(s, 3));
        if (m && with_time)
            json_object_set_new(m, "created_at", broker_time_json(sqlite3_column_int64(s, 4)));
        json_array_append_new(list, m);
    }
    sqlite3_reset(s);
    if (!list || rc != SQLITE_DONE) {
        store_log_error(self, "load operator messages");
        json_decref(list);
        return NULL;
    }
    return list;
}

json_t *broker_store_messages_load(broker_store_t *self, const char *execution_id)
{
    return store_messages_of(self, execution_id, false);
}

/* --- queries ----------------------------------------------------------------- */

static json_t *time_or_null(sqlite3_stmt *s, int col)
{
    return broker_time_json(sqlite3_column_type(s, col) == SQLITE_NULL
                                ? 0
                                : sqlite3_column_int64(s, col));
}

/* Seconds from started to completed (or to now while it runs); null before it
 * started. */
static json_t *duration_json(sqlite3_stmt *s, int started_col, int completed_col, int64_t now)
{
    int64_t started = sqlite3_column_int64(s, started_col);
    if (sqlite3_column_type(s, started_col) == SQLITE_NULL || started <= 0)
        return json_null();
    int64_t end = sqlite3_column_type(s, completed_col) == SQLITE_NULL
                      ? now
                      : sqlite3_column_int64(s, completed_col);
    return json_real(end > started ? (double)(end - started) / 1e6 : 0.0);
}

/* The summary from a row that starts with SUMMARY_COLUMNS. */
static json_t *summary_of(sqlite3_stmt *s, int64_t now)
{
    json_t *summary = json_object();
    if (!summary)
        return NULL;
    json_object_set_new(summary, "execution_id", store_column_string_or_null(s, 0));
    json_object_set_new(summary, "workflow_id", store_column_string_or_null(s, 1));
    json_object_set_new(summary, "workflow_name", store_column_string_or_null(s, 2));
    json_object_set_new(summary, "status", store_column_string_or_null(s, 3));
    json_object_set_new(summary, "started_at", time_or_null(s, 4));
    json_object_set_new(summary, "completed_at", time_or_null(s, 5));
    json_object_set_new(summary, "completed_phases", json_integer(sqlite3_column_int64(s, 6)));
    json_object_set_new(summary, "total_phases", json_integer(sqlite3_column_int64(s, 7)));
    json_object_set_new(summary, "duration_seconds", duration_json(s, 4, 5, now));
    json_object_set_new(summary, "total_input_tokens", json_integer(sqlite3_column_int64(s, 8)));
    json_object_set_new(summary, "total_output_tokens",
                        json_integer(sqlite3_column_int64(s, 9)));
    json_object_set_new(summary, "total_cost_usd", json_real(sqlite3_column_double(s, 10)));
    json_object_set_new(summary, "error", store_column_string_or_null(s, 11));
    return summary;
}

/* Binds the filter of a list or skip statement (?4 status, ?5 workflow). */
static void bind_filter(sqlite3_stmt *s, const char *workflow_id, const char *status)
{
    if (status)
        store_bind_text(s, 4, status);
    if (workflow_id)
        store_bind_text(s, 5, workflow_id);
}

/* The insertion number of the first row of a page that starts offset rows in
 * (newest first): the per-block counts, summed from the newest block down, name
 * the block holding it; the filter's index skips to it inside the block. 1 with
 * *start, 0 when the offset is past the end, -1 on error. */
static int seek_page(broker_store_t *self, const char *workflow_id, const char *status,
                     int64_t offset, int64_t *start)
{
    *start = INT64_MAX;
    if (offset == 0)
        return 1;
    if (store_flush_tally(self) < 0)
        return -1;
    sqlite3_stmt *s = store_stmt(self, SQL_PAGES);
    if (!s)
        return -1;
    sqlite3_bind_text(s, 1, workflow_id ? workflow_id : "", -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, status ? status : "", -1, SQLITE_STATIC);
    int64_t seen = 0, bound = 0, skip = 0;
    int found = 0, rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        int64_t n = sqlite3_column_int64(s, 1);
        if (seen + n > offset) {
            bound = (sqlite3_column_int64(s, 0) + 1) << 10;
            skip = offset - seen;
            found = 1;
            break;
        }
        seen += n;
    }
    sqlite3_reset(s);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
        store_log_error(self, "seek page");
        return -1;
    }
    if (!found)
        return 0;
    s = store_stmt(self, workflow_id && status ? SQL_SKIP_WORKFLOW_STATUS
                   : workflow_id         ? SQL_SKIP_WORKFLOW
                   : status              ? SQL_SKIP_STATUS
                                         : SQL_SKIP_ALL);
    if (!s)
        return -1;
    sqlite3_bind_int64(s, 1, bound);
    sqlite3_bind_int64(s, 2, skip);
    bind_filter(s, workflow_id, status);
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        *start = sqlite3_column_int64(s, 0);
    sqlite3_reset(s);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        store_log_error(self, "skip to page");
        return -1;
    }
    return rc == SQLITE_ROW;
}

int broker_store_execution_list(broker_store_t *self, const char *workflow_id, int status,
                                int64_t page, int64_t page_size, json_t **items_out,
                                int64_t *total)
{
    const char *status_name =
        status >= 0 ? broker_exec_status_name((broker_exec_status_t)status) : NULL;
    *total = broker_store_execution_count(self, workflow_id, status);
    if (*total < 0)
        return -1;
    json_t *items = json_array();
    if (!items)
        return -1;
    *items_out = items;
    if (page < 1 || page_size < 1 || (page - 1) > INT64_MAX / page_size)
        return 0;
    int64_t offset = (page - 1) * page_size, start;
    if (offset >= *total)
        return 0;
    int found = seek_page(self, workflow_id, status_name, offset, &start);
    if (found <= 0) {
        if (found < 0) {
            json_decref(items);
            *items_out = NULL;
        }
        return found;
    }
    sql_id_t which = workflow_id && status_name ? SQL_LIST_WORKFLOW_STATUS
                     : workflow_id              ? SQL_LIST_WORKFLOW
                     : status_name              ? SQL_LIST_STATUS
                                                : SQL_LIST_ALL;
    sqlite3_stmt *s = store_stmt(self, which);
    if (!s) {
        json_decref(items);
        *items_out = NULL;
        return -1;
    }
    sqlite3_bind_int64(s, 1, start);
    sqlite3_bind_int64(s, 2, page_size);
    bind_filter(s, workflow_id, status_name);
    int64_t now = syn_now_us();
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW)
        json_array_append_new(items, summary_of(s, now));
    sqlite3_reset(s);
    if (rc != SQLITE_DONE) {
        store_log_error(self, "list executions");
        json_decref(items);
        *items_out = NULL;
        return -1;
    }
    return 0;
}

/* Attempts of every phase of an execution: {phase_id: [attempt, ...]}. */
static json_t *attempts_by_phase(broker_store_t *self, const char *id)
{
    sqlite3_stmt *s = store_stmt(self, SQL_DETAIL_ATTEMPTS);
    if (!s)
        return NULL;
    store_bind_text(s, 1, id);
    json_t *by_phase = json_object();
    int rc = SQLITE_ERROR;
    while (by_phase && (rc = sqlite3_step(s)) == SQLITE_ROW) {
        const char *phase_id = (const char *)sqlite3_column_text(s, 0);
        if (!phase_id)
            continue;
        json_t *list = json_object_get(by_phase, phase_id);
        if (!list) {
            list = json_array();
            json_object_set_new(by_phase, phase_id, list);
        }
        json_t *usage = store_column_json(s, 8);
        json_t *attempt = json_pack(
            "{s:I, s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "attempt",
            (json_int_t)sqlite3_column_int64(s, 1), "worker", store_column_string_or_null(s, 2),
            "status", store_column_string_or_null(s, 3), "started_at", time_or_null(s, 4),
            "completed_at", time_or_null(s, 5), "exit_code",
            sqlite3_column_type(s, 6) == SQLITE_NULL ? json_null()
                                                     : json_integer(sqlite3_column_int64(s, 6)),
            "error", store_column_string_or_null(s, 7), "usage",
            json_is_object(usage) ? json_incref(usage) : json_null());
        json_decref(usage);
        json_array_append_new(list, attempt);
    }
    sqlite3_reset(s);
    if (!by_phase || rc != SQLITE_DONE) {
        store_log_error(self, "load attempts");
        json_decref(by_phase);
        return NULL;
    }
    return by_phase;
}

/* Tool calls of a phase: its attempts' lists, in order, up to a bound. */
static json_t *phase_tool_calls(const json_t *attempts)
{
    json_t *tools = json_array();
    size_t i, j;
    const json_t *attempt, *call;
    json_array_foreach(attempts, i, attempt)
    {
        const json_t *list = json_object_get(json_object_get(attempt, "usage"), "tool_calls");
        json_array_foreach(list, j, call)
            if (json_array_size(tools) < 5 * BROKER_USAGE_TOOLS_MAX)
                json_array_append(tools, (json_t *)call);
    }
    return tools;
}

static json_t *phases_of(broker_store_t *self, const char *id, int64_t now)
{
    json_t *attempts = attempts_by_phase(self, id);
    sqlite3_stmt *s = attempts ? store_stmt(self, SQL_DETAIL_PHASES) : NULL;
    if (!s) {
        json_decref(attempts);
        return NULL;
    }
    store_bind_text(s, 1, id);
    sqlite3_bind_int(s, 2, BROKER_OUTPUT_PREVIEW_CHARS);
    json_t *phases = json_array();
    int rc = SQLITE_ERROR;
    while (phases && (rc = sqlite3_step(s)) == SQLITE_ROW) {
        const char *phase_id = (const char *)sqlite3_column_text(s, 0);
        json_t *tried = json_object_get(attempts, phase_id ? phase_id : "");
        int64_t in = sqlite3_column_int64(s, 7), out = sqlite3_column_int64(s, 8);
        int64_t cache_w = sqlite3_column_int64(s, 9), cache_r = sqlite3_column_int64(s, 10);
        json_t *phase = json_object();
        json_object_set_new(phase, "phase_id", store_column_string_or_null(s, 0));
        json_object_set_new(phase, "name", store_column_string_or_null(s, 1));
        json_object_set_new(phase, "order", json_integer(sqlite3_column_int64(s, 2)));
        json_object_set_new(phase, "status", store_column_string_or_null(s, 3));
        json_object_set_new(phase, "attempts", tried ? json_incref(tried) : json_array());
        json_object_set_new(phase, "error", store_column_string_or_null(s, 4));
        json_object_set_new(phase, "started_at", time_or_null(s, 5));
        json_object_set_new(phase, "completed_at", time_or_null(s, 6));
        json_object_set_new(phase, "duration_seconds", duration_json(s, 5, 6, now));
        json_object_set_new(phase, "input_tokens", json_integer(in));
        json_object_set_new(phase, "output_tokens", json_integer(out));
        json_object_set_new(phase, "cache_creation_tokens", json_integer(cache_w));
        json_object_set_new(phase, "cache_read_tokens", json_integer(cache_r));
        json_object_set_new(phase, "total_tokens", json_integer(in + out + cache_w + cache_r));
        json_object_set_new(phase, "cost_usd", json_real(sqlite3_column_double(s, 11)));
        json_object_set_new(phase, "num_turns", json_integer(sqlite3_column_int64(s, 12)));
        json_object_set_new(phase, "duration_ms", json_integer(sqlite3_column_int64(s, 13)));
        json_object_set_new(phase, "tool_call_count", json_integer(sqlite3_column_int64(s, 14)));
        json_object_set_new(phase, "tool_calls", phase_tool_calls(tried));
        json_object_set_new(phase, "model", store_column_string_or_null(s, 15));
        json_object_set_new(phase, "output_preview", store_column_string_or_null(s, 16));
        json_array_append_new(phases, phase);
    }
    sqlite3_reset(s);
    json_decref(attempts);
    if (!phases || rc != SQLITE_DONE) {
        store_log_error(self, "load phases");
        json_decref(phases);
        return NULL;
    }
    return phases;
}

int broker_store_execution_detail(broker_store_t *self, const char *id, json_t **detail_out)
{
    sqlite3_stmt *s = store_stmt(self, SQL_SUMMARY);
    if (!s)
        return -1;
    store_bind_text(s, 1, id);
    int64_t now = syn_now_us();
    int rc = sqlite3_step(s);
    if (rc != SQLITE_ROW) {
        sqlite3_reset(s);
        if (rc == SQLITE_DONE)
            return 0;
        store_log_error(self, "get execution");
        return -1;
    }
    json_t *detail = summary_of(s, now);
    json_t *inputs = store_column_json(s, 12), *repos = store_column_json(s, 14);
    if (detail) {
        json_object_set_new(detail, "inputs", json_is_object(inputs) ? json_incref(inputs)
                                                                     : json_object());
        json_object_set_new(detail, "task", store_column_string_or_null(s, 13));
        json_object_set_new(detail, "repos", json_is_array(repos) ? json_incref(repos)
                                                                  : json_array());
        json_object_set_new(detail, "current_phase", store_column_string_or_null(s, 15));
        json_object_set_new(detail, "total_cache_creation_tokens",
                            json_integer(sqlite3_column_int64(s, 16)));
        json_object_set_new(detail, "total_cache_read_tokens",
                            json_integer(sqlite3_column_int64(s, 17)));
    }
    json_decref(inputs);
    json_decref(repos);
    sqlite3_reset(s);
    json_t *messages = detail ? store_messages_of(self, id, true) : NULL;
    json_t *phases = messages ? phases_of(self, id, now) : NULL;
    if (!phases) {
        json_decref(detail);
        json_decref(messages);
        return -1;
    }
    json_object_set_new(detail, "operator_messages", messages);
    json_object_set_new(detail, "phases", phases);
    *detail_out = detail;
    return 1;
}

int broker_store_execution_state(broker_store_t *self, const char *id,
                                 broker_exec_status_t *status)
{
    sqlite3_stmt *s = store_stmt(self, SQL_EXECUTION_STATE);
    if (!s)
        return -1;
    store_bind_text(s, 1, id);
    int rc = sqlite3_step(s), result = 0;
    if (rc == SQLITE_ROW)
        result = broker_exec_status_parse((const char *)sqlite3_column_text(s, 0), status) == 0
                     ? 1
                     : -1;
    else if (rc != SQLITE_DONE)
        result = -1;
    sqlite3_reset(s);
    if (result < 0)
        store_log_error(self, "get execution state");
    return result;
}

int broker_store_phase_output(broker_store_t *self, const char *execution_id,
                              const char *phase_id, char **output)
{
    sqlite3_stmt *s = store_stmt(self, SQL_PHASE_OUTPUT_GET);
    if (!s)
        return -1;
    store_bind_text(s, 1, execution_id);
    store_bind_text(s, 2, phase_id);
    int rc = sqlite3_step(s), result = 0;
    if (rc == SQLITE_ROW) {
        *output = store_column_strdup(s, 0);
        result = *output ? 1 : -1;
    } else if (rc != SQLITE_DONE) {
        store_log_error(self, "get phase output");
        result = -1;
    }
    sqlite3_reset(s);
    return result;
}

int broker_store_workflow_name(broker_store_t *self, const char *id, char **name)
{
    sqlite3_stmt *s = store_stmt(self, SQL_WORKFLOW_NAME);
    if (!s)
        return -1;
    store_bind_text(s, 1, id);
    int rc = sqlite3_step(s), result = 0;
    if (rc == SQLITE_ROW) {
        *name = store_column_strdup(s, 0);
        result = *name ? 1 : -1;
    } else if (rc != SQLITE_DONE) {
        store_log_error(self, "get workflow name");
        result = -1;
    }
    sqlite3_reset(s);
    return result;
}

/* --- reload ---------------------------------------------------------------- */

/* Overlays the stored phase rows (status, attempts, outputs) on an execution
 * rebuilt from its template, then recovers the lost and failure counts and the
 * worker name of each phase still queued or running, and the operator messages. */
static int load_phases(broker_store_t *self, broker_execution_t *exec)
{
    sqlite3_stmt *s = store_stmt(self, SQL_PHASES_OF);
    if (!s)
        return -1;
    sqlite3_bind_int64(s, 1, exec->num);
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        const char *phase_id = (const char *)sqlite3_column_text(s, 0);
        broker_phase_t *phase = phase_id ? broker_execution_find_phase(exec, phase_id) : NULL;
        if (!phase)
            continue;
        if (broker_phase_status_parse((const char *)sqlite3_column_text(s, 1),
                                      &phase->status) < 0)
            phase->status = BROKER_PHASE_PENDING;
        phase->attempt = sqlite3_column_int64(s, 2);
        phase->output = store_column_strdup(s, 3);
        phase->error = store_column_strdup(s, 4);
        phase->started_at = sqlite3_column_int64(s, 5);
        phase->completed_at = sqlite3_column_int64(s, 6);
        phase->row = sqlite3_column_int64(s, 7);
    }
    sqlite3_reset(s);
    if (rc != SQLITE_DONE) {
        store_log_error(self, "load phases");
        return -1;
    }

    exec->completed_phases = 0;
    exec->current = exec->phase_count;
    for (size_t i = 0; i < exec->phase_count; i++) {
        broker_phase_t *phase = &exec->phases[i];
        if (phase->status == BROKER_PHASE_COMPLETED)
            exec->completed_phases++;
        else if (exec->current == exec->phase_count)
            exec->current = i;
        if (phase->status != BROKER_PHASE_QUEUED && phase->status != BROKER_PHASE_RUNNING)
            continue;
        s = store_stmt(self, SQL_ATTEMPTS_OF);
        if (!s)
            return -1;
        sqlite3_bind_int64(s, 1, exec->num);
        store_bind_text(s, 2, phase->phase_id);
        while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
            const char *status = (const char *)sqlite3_column_text(s, 2);
            if (status && strcmp(status, "lost") == 0)
                phase->lost++;
            if (status && (strcmp(status, "failed") == 0 || strcmp(status, "timeout") == 0))
                phase->failures++;
            if (sqlite3_column_int64(s, 0) == phase->attempt) {
                free(phase->worker_name);
                phase->worker_name = store_column_strdup(s, 1);
            }
        }
        sqlite3_reset(s);
    }
    json_t *messages = broker_store_messages_load(self, exec->id);
    if (!messages)
        return -1;
    json_decref(exec->messages);
    exec->messages = messages;
    return 0;
}

static void fail_unloadable(broker_store_t *self, const char *id, const char *reason,
                            int64_t now)
{
    syn_error("broker", "cannot reload execution=%s: %s; marking it failed", id, reason);
    if (store_begin_write(self) < 0)
        return;
    counted_row_t row = {0};
    if (store_counted_row(self, id, &row) <= 0)
        return;
    int counted = store_recount(self, &row, "failed");
    free(row.workflow_id);
    sqlite3_stmt *s = counted == 0 ? store_stmt(self, SQL_EXECUTION_FAIL) : NULL;
    if (!s)
        return;
    char error[256];
    snprintf(error, sizeof error, "Execution could not be reloaded after a restart: %s", reason);
    store_bind_text(s, 1, id);
    sqlite3_bind_int64(s, 2, now);
    store_bind_text(s, 3, error);
    store_run(self, s, "fail execution");
}

typedef struct {
    char *id;
    char *reason;
} unloadable_t;

int broker_store_load_active(broker_store_t *self, broker_store_exec_fn fn, void *arg)
{
    sqlite3_stmt *s = store_stmt(self, SQL_EXECUTION_ACTIVE);
    if (!s)
        return -1;
    /* Loading phases reuses other statements, so rows are collected first. */
    size_t count = 0, cap = 0;
    broker_execution_t **loaded = NULL;
    unloadable_t *bad = NULL;
    size_t bad_count = 0, bad_cap = 0;
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        const char *id = (const char *)sqlite3_column_text(s, 0);
        const char *workflow_id = (const char *)sqlite3_column_text(s, 1);
        json_t *inputs = store_column_json(s, 4);
        json_t *repos = store_column_json(s, 6);
        json_t *template_json = store_column_json(s, 11);
        char err[256] = "";
        broker_execution_t *exec = NULL;
        if (!id || !workflow_id)
            snprintf(err, sizeof err, "row without id");
        else if (!template_json)
            snprintf(err, sizeof err, "workflow %s version %lld is missing", workflow_id,
                     (long long)sqlite3_column_int64(s, 2));
        else if (!json_is_object(inputs) || !json_is_array(repos))
            snprintf(err, sizeof err, "unreadable inputs or repos");
        else
            exec = broker_execution_new(id, workflow_id, sqlite3_column_int64(s, 2),
                                        template_json, inputs, (const char *)
                                        sqlite3_column_text(s, 5), repos,
                                        sqlite3_column_int64(s, 7), err, sizeof err);
        json_decref(inputs);
        json_decref(repos);
        json_decref(template_json);
        if (exec) {
            broker_exec_status_parse((const char *)sqlite3_column_text(s, 3), &exec->status);
            exec->started_at = sqlite3_column_int64(s, 8);
            exec->completed_at = sqlite3_column_int64(s, 9);
            exec->error = store_column_strdup(s, 10);
            exec->num = sqlite3_column_int64(s, 12);
            if (count == cap) {
                cap = cap ? cap * 2 : 64;
                broker_execution_t **grown = realloc(loaded, cap * sizeof *loaded);
                if (!grown) {
                    broker_execution_destroy(&exec);
                    rc = SQLITE_NOMEM;
                    break;
                }
                loaded = grown;
            }
            loaded[count++] = exec;
        } else if (id) {
            if (bad_count == bad_cap) {
                bad_cap = bad_cap ? bad_cap * 2 : 8;
                unloadable_t *grown = realloc(bad, bad_cap * sizeof *bad);
                if (!grown) {
                    rc = SQLITE_NOMEM;
                    break;
                }
                bad = grown;
            }
            bad[bad_count++] = (unloadable_t){strdup(id), strdup(err)};
        }
    }
    sqlite3_reset(s);
    int result = rc == SQLITE_DONE ? 0 : -1;
    if (result < 0)
        store_log_error(self, "load active executions");

    for (size_t i = 0; i < bad_count; i++) {
        if (result == 0 && bad[i].id)
            fail_unloadable(self, bad[i].id, bad[i].reason ? bad[i].reason : "?", syn_now_us());
        free(bad[i].id);
        free(bad[i].reason);
    }
    free(bad);
    int handed = 0;
    for (size_t i = 0; i < count; i++) {
        if (result == 0 && load_phases(self, loaded[i]) < 0)
            result = -1;
        if (result == 0) {
            fn(loaded[i], arg);
            handed++;
        } else {
            broker_execution_destroy(&loaded[i]);
        }
    }
    free(loaded);
    return result == 0 ? handed : -1;
}

/* --- events ---------------------------------------------------------------- */

/* The insert of 2^shift events: "VALUES (...), (...)" with six parameters a row. */
static sqlite3_stmt *event_batch_stmt(broker_store_t *self, unsigned shift)
{
    sqlite3_stmt *s = self->event_batch[shift];
    if (s)
        return s;
    static const char head[] =
        "INSERT INTO events(seq, time, execution_id, type, data, exec_num) VALUES ";
    enum { ROW_MAX = 128 };
    char sql[sizeof head + EVENT_BATCH_MAX * ROW_MAX];
    size_t len = snprintf(sql, sizeof sql, "%s", head);
    for (size_t i = 0; i < (1u << shift) && len < sizeof sql; i++) {
        int b = (int)(6 * i);
        len += snprintf(sql + len, sizeof sql - len,
                        "%s(?%d, ?%d, ?%d, ?%d, ?%d,"
                        " coalesce(?%d, (SELECT num FROM executions WHERE id = ?%d)))",
                        i ? ", " : "", b + 1, b + 2, b + 3, b + 4, b + 5, b + 6, b + 3);
    }
    if (len >= sizeof sql) { /* cannot happen: ROW_MAX is above a row's length */
        syn_error("broker", "the insert of %u events does not fit its buffer", 1u << shift);
        return NULL;
    }
    if (sqlite3_prepare_v3(self->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &s, NULL) !=
        SQLITE_OK) {
        store_log_error(self, "prepare event insert");
        return NULL;
    }
    self->event_batch[shift] = s;
    return s;
}

static void bind_pending_text(sqlite3_stmt *s, int index, const pending_events_t *events,
                              size_t offset)
{
    store_bind_text(s, index, offset == NO_TEXT ? NULL : events->text + offset);
}

/* Inserts the 2^shift waiting events from rows[first]. */
static int insert_events(broker_store_t *self, size_t first, unsigned shift)
{
    const pending_events_t *events = &self->events;
    sqlite3_stmt *s = event_batch_stmt(self, shift);
    if (!s)
        return -1;
    for (size_t i = 0; i < (1u << shift); i++) {
        const pending_event_t *row = &events->rows[first + i];
        int b = (int)(6 * i);
        sqlite3_bind_int64(s, b + 1, row->seq);
        sqlite3_bind_int64(s, b + 2, row->time);
        bind_pending_text(s, b + 3, events, row->execution_id);
        bind_pending_text(s, b + 4, events, row->type);
        bind_pending_text(s, b + 5, events, row->data);
        if (row->exec_num > 0)
            sqlite3_bind_int64(s, b + 6, row->exec_num);
        else
            sqlite3_bind_null(s, b + 6);
    }
    return store_run(self, s, "insert events") == SQLITE_DONE ? 0 : -1;
}

/* Writes the waiting events, largest batches first (whatever the outcome, none
 * wait afterwards). */
static int store_flush_events(broker_store_t *self)
{
    pending_events_t *events = &self->events;
    size_t n = events->count, first = 0;
    int rc = n > 0 && (self->failed || !self->in_transaction) ? -1 : 0;
    for (unsigned shift = EVENT_BATCH_SHIFT + 1; rc == 0 && shift-- > 0;)
        if (n - first >= (1u << shift)) {
            rc = insert_events(self, first, shift);
            first += 1u << shift;
        }
    events->count = 0;
    events->len = 0;
    if (rc < 0)
        self->failed = true; /* a seq taken twice is a bug, not a retry */
    return rc;
}

/* Copies text (NULL allowed) into the pending buffer: its offset, or NO_TEXT. */
static int keep_text(pending_events_t *events, const char *text, size_t *offset)
{
    *offset = NO_TEXT;
    if (!text)
        return 0;
    size_t len = strlen(text) + 1;
    if (!syn_buffer_reserve(&events->text, &events->cap, events->len + len, 4096))
        return -1;
    memcpy(events->text + events->len, text, len);
    *offset = events->len;
    events->len += len;
    return 0;
}

int broker_store_event_insert(broker_store_t *self, int64_t seq, int64_t time,
                              const char *execution_id, int64_t exec_num, const char *type,
                              const char *data)
{
    if (store_begin_write(self) < 0)
        return -1;
    if (self->events.count == EVENT_BATCH_MAX && store_flush_events(self) < 0)
        return -1;
    pending_events_t *events = &self->events;
    pending_event_t *row = &events->rows[events->count];
    row->seq = seq;
    row->time = time;
    row->exec_num = exec_num;
    if (keep_text(events, execution_id, &row->execution_id) < 0 ||
        keep_text(events, type, &row->type) < 0 || keep_text(events, data, &row->data) < 0) {
        syn_error("broker", "out of memory keeping event seq=%lld", (long long)seq);
        self->failed = true;
        return -1;
    }
    events->count++;
    return 0;
}

int64_t broker_store_last_event_seq(broker_store_t *self)
{
    if (self->events.count > 0)
        return self->events.rows[self->events.count - 1].seq;
    sqlite3_stmt *s = store_stmt(self, SQL_EVENT_LAST);
    if (!s)
        return -1;
    int64_t seq = -1;
    if (sqlite3_step(s) == SQLITE_ROW)
        seq = sqlite3_column_int64(s, 0);
    else
        store_log_error(self, "last event");
    sqlite3_reset(s);
    return seq;
}

int broker_store_events_after(broker_store_t *self, const char *execution_id,
                              int64_t after_seq, int64_t limit, size_t max_bytes,
                              json_t **events_out, bool *more)
{
    *more = false;
    if (store_flush_events(self) < 0)
        return -1;
    sqlite3_stmt *s = store_stmt(self, execution_id ? SQL_EVENTS_EXECUTION : SQL_EVENTS_ALL);
    if (!s)
        return -1;
    sqlite3_bind_int64(s, 1, after_seq);
    sqlite3_bind_int64(s, 2, limit + 1);
    if (execution_id)
        store_bind_text(s, 3, execution_id);
    json_t *events = json_array();
    size_t bytes = 0;
    int rc = SQLITE_ERROR;
    while (events && (rc = sqlite3_step(s)) == SQLITE_ROW) {
        size_t size = (size_t)sqlite3_column_bytes(s, 4);
        if ((int64_t)json_array_size(events) == limit ||
            (json_array_size(events) > 0 && bytes + size > max_bytes)) {
            *more = true;
            break;
        }
        bytes += size;
        json_t *data = store_column_json(s, 4);
        json_array_append_new(
            events, json_pack("{s:I, s:I, s:o, s:o, s:o}", "seq",
                              (json_int_t)sqlite3_column_int64(s, 0), "time",
                              (json_int_t)sqlite3_column_int64(s, 1), "execution_id",
                              store_column_string_or_null(s, 2), "type",
                              store_column_string_or_null(s, 3),
                              "data", json_is_object(data) ? data : json_object()));
        if (!json_is_object(data))
            json_decref(data);
    }
    sqlite3_reset(s);
    if (!events || (rc != SQLITE_DONE && rc != SQLITE_ROW)) {
        store_log_error(self, "replay events");
        json_decref(events);
        return -1;
    }
    *events_out = events;
    return 0;
}
