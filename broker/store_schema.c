/* store_schema: the database's shape, version by version, and the upgrade that
 * brings an older file to BROKER_STORE_SCHEMA_VERSION. It stands alone because
 * the scripts are history: a version, once shipped, never changes, and the
 * next one is added here as one more script. */
#include "broker/store_internal.h"

#include "common/log.h"

#include <stdio.h>

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

/* Version 7: deletes (retention, store_retention.c) are counted by the store too,
 * through the tally: the paged delete trigger cost ~0.5 ms per execution, most of
 * a deletion, which under a steady load must keep up with the executions that
 * finish. */
static const char *const schema_v7_sql =
    "DROP TRIGGER IF EXISTS executions_counted_delete;"
    "DROP TRIGGER IF EXISTS executions_paged_delete;";

/* Version 8: the team controls (issue 19). idempotency_keys keeps the first
 * answer to an execute that carried an Idempotency-Key, so a retry after a lost
 * answer (a 503, a cut connection, a broker restart) gets the same execution;
 * keys older than the broker's window are deleted. An execution remembers the
 * one it reruns (rerun_of: its reruns are found by that index), its priority
 * (the ready queue's order after a restart) and its budget; a phase copied from
 * an earlier execution names it (reused_from). */
static const char *const schema_v8_sql =
    "CREATE TABLE idempotency_keys ("
    "  key TEXT PRIMARY KEY,"
    "  fingerprint TEXT NOT NULL,"
    "  execution_id TEXT NOT NULL,"
    "  answer TEXT NOT NULL,"
    "  created_at INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE INDEX idempotency_keys_created ON idempotency_keys(created_at);"
    "ALTER TABLE executions ADD COLUMN rerun_of TEXT;"
    "ALTER TABLE executions ADD COLUMN priority INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE executions ADD COLUMN max_budget_usd REAL;"
    "CREATE INDEX executions_rerun_of ON executions(rerun_of) WHERE rerun_of IS NOT NULL;"
    "ALTER TABLE phases ADD COLUMN reused_from TEXT;";

/* Version 9: artifacts (broker/store_artifacts.c). A file's bytes are blobs of
 * at most one wire chunk each, so none is ever read or written whole; `complete`
 * is 0 while the chunks of an attempt arrive and becomes 1 in the transaction
 * that records the attempt's completion, so a listing never shows half a set. */
static const char *const schema_v9_sql =
    "CREATE TABLE artifacts ("
    "  id INTEGER PRIMARY KEY,"
    "  exec_num INTEGER NOT NULL,"
    "  phase_id TEXT NOT NULL,"
    "  attempt INTEGER NOT NULL,"
    "  path TEXT NOT NULL,"
    "  size INTEGER NOT NULL,"
    "  sha256 TEXT NOT NULL,"
    "  media_type TEXT NOT NULL,"
    "  created_at INTEGER NOT NULL,"
    "  complete INTEGER NOT NULL DEFAULT 0,"
    "  UNIQUE (exec_num, phase_id, attempt, path));"
    "CREATE TABLE artifact_chunks ("
    "  artifact_id INTEGER NOT NULL,"
    "  offset INTEGER NOT NULL,"
    "  len INTEGER NOT NULL,"
    "  data BLOB NOT NULL,"
    "  PRIMARY KEY (artifact_id, offset));";

/* Version 10: a rerun's reused phases keep their artifacts without a copy of
 * their bytes (a rerun must not block the broker copying gigabytes): the rerun's
 * rows name the row whose chunks hold them (chunks_of, always a row with its own
 * chunks; NULL: its own). A named row whose execution retention deletes stays,
 * detached (exec_num = -id, listed under no execution), until the last row
 * naming it goes (store_retention.c). */
static const char *const schema_v10_sql =
    "ALTER TABLE artifacts ADD COLUMN chunks_of INTEGER;"
    "CREATE INDEX artifacts_chunks_of ON artifacts(chunks_of) WHERE chunks_of IS NOT NULL;";

/* Version 11: nothing on SQLite. PostgreSQL's version 11 adds the lease that
 * lets one of several brokers be active (store_pg_sql.c, broker/lease.h); a
 * SQLite file has one broker, which needs none. The number stays shared so
 * both stores name the same schema by the same version. */
static const char *const schema_v11_sql = "";

/* The script that takes a database from version i to i + 1. */
static const char *const upgrades[] = {schema_v1_sql, schema_v2_sql, schema_v3_sql,
                                       schema_v4_sql, schema_v5_sql, schema_v6_sql,
                                       schema_v7_sql, schema_v8_sql, schema_v9_sql,
                                       schema_v10_sql, schema_v11_sql};

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

/* Brings the file to BROKER_STORE_SCHEMA_VERSION in one transaction: a new
 * file runs every script, an older one the scripts it lacks. */
int store_migrate(broker_store_t *self, char *err, size_t errlen)
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
