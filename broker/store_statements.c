/* store_statements: the SQL text of every prepared statement and the helpers
 * that prepare, bind, step and read them. It stands alone because the other
 * parts name statements by id (sql_id_t) and never hold SQL text of their own,
 * so one file shows every query the store runs and the index each relies on. */
#include "broker/store_internal.h"

#include "common/log.h"

#include <stdlib.h>
#include <string.h>

/* The summary's columns, in the order summary_of() reads them. */
#define SUMMARY_COLUMNS                                                                          \
    "e.id, e.workflow_id, w.name, e.status, e.started_at, e.completed_at, e.completed_phases,"  \
    " e.total_phases, e.total_input_tokens, e.total_output_tokens, e.total_cost_usd, e.error,"  \
    " e.total_cache_creation_tokens, e.total_cache_read_tokens"
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
/* Detached artifact rows (retention, schema v10) that only execution ?1's rows
 * still name: deleted with it. */
#define RETAIN_DETACHED_UNNAMED                                                            \
    "SELECT o.id FROM artifacts o WHERE o.exec_num < 0 AND o.id IN (SELECT chunks_of"     \
    " FROM artifacts WHERE exec_num = ?1 AND chunks_of IS NOT NULL) AND NOT EXISTS"       \
    " (SELECT 1 FROM artifacts r WHERE r.chunks_of = o.id AND r.exec_num != ?1)"

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
        " error, priority, max_budget_usd) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10,"
        " ?11, ?12, ?13, ?14, ?15, ?16)",
    [SQL_EXECUTION_INSERT_KEYED] =
        "INSERT INTO executions(id, workflow_id, workflow_version, status, inputs, task, repos,"
        " total_phases, completed_phases, current_phase, created_at, started_at, completed_at,"
        " error, priority, max_budget_usd, num) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10,"
        " ?11, ?12, ?13, ?14, ?15, ?16, ?17)",
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
        " e.created_at, e.started_at, e.completed_at, e.error, v.template, e.num, e.priority,"
        " e.max_budget_usd, e.total_cost_usd - (SELECT coalesce(sum(cost_usd), 0) FROM phases"
        "   WHERE exec_num = e.num AND reused_from IS NOT NULL) FROM executions e LEFT JOIN workflow_versions v"
        "   ON v.workflow_id = e.workflow_id AND v.version = e.workflow_version"
        " WHERE e.status IN ('pending', 'running', 'paused') ORDER BY e.num",
    [SQL_EXECUTION_ONE] =
        "SELECT e.id, e.workflow_id, e.workflow_version, e.status, e.inputs, e.task, e.repos,"
        " e.created_at, e.started_at, e.completed_at, e.error, v.template, e.num, e.priority,"
        " e.max_budget_usd, e.total_cost_usd - (SELECT coalesce(sum(cost_usd), 0) FROM phases"
        "   WHERE exec_num = e.num AND reused_from IS NOT NULL) FROM executions e LEFT JOIN workflow_versions v"
        "   ON v.workflow_id = e.workflow_id AND v.version = e.workflow_version"
        " WHERE e.id = ?1",
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
    [SQL_COUNT_STATUS] = "SELECT coalesce(sum(n), 0) FROM execution_counts WHERE status = ?4",
    [SQL_COUNT_WORKFLOW] =
        "SELECT coalesce(sum(n), 0) FROM execution_counts WHERE workflow_id = ?5",
    [SQL_COUNT_WORKFLOW_STATUS] =
        "SELECT coalesce(sum(n), 0) FROM execution_counts WHERE workflow_id = ?5 AND status = ?4",
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
        "SELECT " SUMMARY_COLUMNS ", e.inputs, e.task, e.repos, e.current_phase" SUMMARY_FROM
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
    /* Retention (store_retention.c): the oldest executions of a finished status, by
     * insertion number on the status index; then one execution's rows, each child
     * table through its exec_num index. The newest event stays whatever it belongs
     * to: the next seq is counted from it when the broker starts. */
    [SQL_RETAIN_OLDEST] = "SELECT num, id, completed_at, workflow_id FROM executions"
                          " INDEXED BY executions_status WHERE status = ?1 ORDER BY num LIMIT ?2",
    [SQL_RETAIN_FINISHED_COUNT] = "SELECT coalesce(sum(n), 0) FROM execution_counts"
                                  " WHERE status IN ('completed', 'failed', 'cancelled')",
    [SQL_RETAIN_DELETE_PHASES] = "DELETE FROM phases WHERE exec_num = ?1",
    [SQL_RETAIN_DELETE_ATTEMPTS] = "DELETE FROM attempts WHERE exec_num = ?1",
    [SQL_RETAIN_DELETE_EVENTS] =
        "DELETE FROM events WHERE exec_num = ?1 AND seq < (SELECT max(seq) FROM events)",
    [SQL_RETAIN_DELETE_MESSAGES] = "DELETE FROM operator_messages WHERE execution_id = ?2",
    [SQL_RETAIN_DELETE_EXECUTION] = "DELETE FROM executions WHERE num = ?1",
    /* the team controls (issue 19): by the key, and the expiry by its index */
    [SQL_IDEMPOTENCY_FIND] =
        "SELECT fingerprint, answer FROM idempotency_keys WHERE key = ?1 AND created_at >= ?2",
    [SQL_IDEMPOTENCY_PUT] =
        "INSERT OR REPLACE INTO idempotency_keys(key, fingerprint, execution_id, answer,"
        " created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
    [SQL_IDEMPOTENCY_EXPIRE] = "DELETE FROM idempotency_keys WHERE created_at < ?1",
    /* A rerun's reused phase (?1 its execution's num, ?2 the phase) takes the
     * usage of the same phase of the execution it reruns (?3), and names it. */
    [SQL_RERUN_REUSE_PHASE] =
        "UPDATE phases SET (input_tokens, output_tokens, cache_creation_tokens,"
        " cache_read_tokens, cost_usd, num_turns, duration_ms, tool_call_count, model,"
        " reused_from) = (SELECT o.input_tokens, o.output_tokens, o.cache_creation_tokens,"
        " o.cache_read_tokens, o.cost_usd, o.num_turns, o.duration_ms, o.tool_call_count,"
        " o.model, ?3 FROM phases o WHERE o.exec_num = (SELECT num FROM executions WHERE id = ?3)"
        " AND o.phase_id = ?2) WHERE exec_num = ?1 AND phase_id = ?2",
    /* The rerun's link and its totals so far: the sums of what it reused. */
    [SQL_RERUN_MARK] =
        "UPDATE executions SET rerun_of = ?2,"
        " (total_input_tokens, total_output_tokens, total_cache_creation_tokens,"
        " total_cache_read_tokens, total_cost_usd) = (SELECT coalesce(sum(input_tokens), 0),"
        " coalesce(sum(output_tokens), 0), coalesce(sum(cache_creation_tokens), 0),"
        " coalesce(sum(cache_read_tokens), 0), coalesce(sum(cost_usd), 0) FROM phases"
        " WHERE exec_num = ?1) WHERE num = ?1",
    /* With the budget's numbers (broker/budget_usd.h): what it spent itself. */
    [SQL_RERUN_OF] =
        "SELECT rerun_of, max_budget_usd, total_cost_usd - (SELECT coalesce(sum(cost_usd), 0)"
        " FROM phases WHERE exec_num = e.num AND reused_from IS NOT NULL)"
        " FROM executions e WHERE id = ?1",
    [SQL_RERUNS] = "SELECT id FROM executions WHERE rerun_of = ?1 ORDER BY num",
    [SQL_REUSED_PHASES] =
        "SELECT phase_id, reused_from FROM phases"
        " WHERE exec_num = " EXEC_NUM_OF_ID " AND reused_from IS NOT NULL",
    /* The original's cost reads (store_costs.c): operator queries, not the hot path;
     * the sums walk every row, which retention keeps bounded. A session is an
     * attempt that started (an agent session). */
    /* ?1: a workflow's executions only (NULL: all); the workflows are all. */
    [SQL_COSTS_TOTALS] =
        "SELECT count(*), (SELECT count(*) FROM workflows WHERE archived = 0),"
        " (SELECT count(*) FROM attempts WHERE started_at IS NOT NULL AND (?1 IS NULL"
        " OR exec_num IN (SELECT num FROM executions WHERE workflow_id = ?1))),"
        " coalesce(sum(total_input_tokens), 0), coalesce(sum(total_output_tokens), 0),"
        " coalesce(sum(total_cache_creation_tokens), 0), coalesce(sum(total_cache_read_tokens), 0),"
        " coalesce(sum(total_cost_usd), 0),"
        " (SELECT coalesce(sum(tool_call_count), 0) FROM phases WHERE ?1 IS NULL"
        " OR exec_num IN (SELECT num FROM executions WHERE workflow_id = ?1)),"
        " (SELECT coalesce(sum(num_turns), 0) FROM phases WHERE ?1 IS NULL"
        " OR exec_num IN (SELECT num FROM executions WHERE workflow_id = ?1))"
        " FROM executions WHERE ?1 IS NULL OR workflow_id = ?1",
    [SQL_COSTS_STATUS] = "SELECT status, count(*) FROM executions WHERE ?1 IS NULL"
                         " OR workflow_id = ?1 GROUP BY status",
    /* The kept artifacts, every execution's (a rerun's reused ones count for it). */
    [SQL_COSTS_ARTIFACTS] = "SELECT count(*), coalesce(sum(size), 0) FROM artifacts"
                            " WHERE complete = 1 AND exec_num > 0",
    /* Workflow ?1's phases over its executions, by their order: tokens and cost
     * (summed over attempts by usage), its latest name, its kept artifacts. */
    [SQL_COSTS_PHASES] =
        "SELECT p.phase_id, min(p.ord), max(p.name), sum(p.input_tokens), sum(p.output_tokens),"
        " sum(p.cache_creation_tokens), sum(p.cache_read_tokens), sum(p.cost_usd),"
        " (SELECT count(*) FROM artifacts r JOIN executions e2 ON e2.num = r.exec_num"
        " WHERE e2.workflow_id = ?1 AND r.phase_id = p.phase_id AND r.complete = 1)"
        " FROM phases p JOIN executions e ON e.num = p.exec_num WHERE e.workflow_id = ?1"
        " GROUP BY p.phase_id ORDER BY 2, 1",
    /* Its phases' runs (attempts that started): how many run now, their time so
     * far in microseconds (a run in flight up to ?2, now), and how the run that
     * ended last ended. */
    [SQL_COSTS_RUNS] =
        "SELECT a.phase_id, sum(CASE WHEN a.status = 'running' THEN 1 ELSE 0 END),"
        " sum(CASE WHEN a.completed_at IS NOT NULL THEN a.completed_at - a.started_at"
        " WHEN a.status = 'running' THEN ?2 - a.started_at ELSE 0 END),"
        " (SELECT a2.status FROM attempts a2 JOIN executions e2 ON e2.num = a2.exec_num"
        " WHERE e2.workflow_id = ?1 AND a2.phase_id = a.phase_id AND a2.started_at IS NOT NULL"
        " AND a2.completed_at IS NOT NULL ORDER BY a2.completed_at DESC LIMIT 1)"
        " FROM attempts a JOIN executions e ON e.num = a.exec_num"
        " WHERE e.workflow_id = ?1 AND a.started_at IS NOT NULL GROUP BY a.phase_id",
    [SQL_COSTS_MODELS] =
        "SELECT model, sum(cost_usd) FROM phases WHERE model IS NOT NULL"
        " GROUP BY model ORDER BY 2 DESC LIMIT 10",
    [SQL_COSTS_EXECUTIONS] =
        "SELECT e.id, e.workflow_id, e.started_at, e.completed_at, e.total_input_tokens,"
        " e.total_output_tokens, e.total_cache_creation_tokens, e.total_cache_read_tokens,"
        " e.total_cost_usd,"
        " (SELECT count(*) FROM attempts a WHERE a.exec_num = e.num AND a.started_at IS NOT NULL),"
        " (SELECT coalesce(sum(tool_call_count), 0) FROM phases p WHERE p.exec_num = e.num),"
        " (SELECT coalesce(sum(num_turns), 0) FROM phases p WHERE p.exec_num = e.num),"
        " (SELECT coalesce(sum(duration_ms), 0) FROM phases p WHERE p.exec_num = e.num)"
        " FROM executions e WHERE (?1 IS NULL OR e.id = ?1) ORDER BY e.num DESC LIMIT ?2",
    [SQL_COSTS_SESSIONS] =
        "SELECT e.id, e.workflow_id, a.phase_id, p.name, a.attempt, a.status, a.started_at,"
        " a.completed_at, a.usage FROM executions e JOIN attempts a ON a.exec_num = e.num"
        " LEFT JOIN phases p ON p.exec_num = a.exec_num AND p.phase_id = a.phase_id"
        " WHERE (?1 IS NULL OR e.id = ?1) AND a.started_at IS NOT NULL"
        " ORDER BY e.num DESC, a.started_at DESC LIMIT ?2",
    /* An execution's artifacts go with it, but bytes a rerun's rows still name
     * (chunks_of, schema v10) stay: their row is detached (exec_num = -id) until
     * the last row naming it is deleted; each by the artifacts_chunks_of index. */
    [SQL_RETAIN_DELETE_ARTIFACT_CHUNKS] =
        "DELETE FROM artifact_chunks WHERE artifact_id IN"
        " (SELECT a.id FROM artifacts a WHERE a.exec_num = ?1 AND a.chunks_of IS NULL"
        " AND NOT EXISTS (SELECT 1 FROM artifacts r WHERE r.chunks_of = a.id))",
    [SQL_RETAIN_DETACH_NAMED_ARTIFACTS] =
        "UPDATE artifacts SET exec_num = -id WHERE exec_num = ?1 AND chunks_of IS NULL"
        " AND EXISTS (SELECT 1 FROM artifacts r WHERE r.chunks_of = artifacts.id)",
    [SQL_RETAIN_DELETE_DETACHED_CHUNKS] =
        "DELETE FROM artifact_chunks WHERE artifact_id IN (" RETAIN_DETACHED_UNNAMED ")",
    [SQL_RETAIN_DELETE_DETACHED] = "DELETE FROM artifacts WHERE id IN (" RETAIN_DETACHED_UNNAMED ")",
    [SQL_RETAIN_DELETE_ARTIFACTS] = "DELETE FROM artifacts WHERE exec_num = ?1",
    /* A rerun's reused phase ?2 takes the artifacts of execution ?3's by reference. */
    [SQL_RERUN_REUSE_ARTIFACTS] =
        "INSERT INTO artifacts(exec_num, phase_id, attempt, path, size, sha256, media_type,"
        " created_at, complete, chunks_of) SELECT ?1, phase_id, attempt, path, size, sha256,"
        " media_type, created_at, 1, coalesce(chunks_of, id) FROM artifacts"
        " WHERE exec_num = (SELECT num FROM executions WHERE id = ?3) AND phase_id = ?2"
        " AND complete = 1",
    /* Artifacts (store_artifacts.c): rows by (exec_num, phase_id, attempt, path)
     * on their unique index, chunks by (artifact_id, offset) on their key. */
    [SQL_ARTIFACT_INSERT] =
        "INSERT INTO artifacts(exec_num, phase_id, attempt, path, size, sha256, media_type,"
        " created_at) VALUES (" EXEC_NUM_OF_ID ", ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    [SQL_ARTIFACT_CHUNK_INSERT] =
        "INSERT INTO artifact_chunks(artifact_id, offset, len, data) VALUES (?1, ?2, ?3, ?4)",
    [SQL_ARTIFACT_DISCARD_CHUNKS] =
        "DELETE FROM artifact_chunks WHERE artifact_id IN (SELECT id FROM artifacts"
        " WHERE exec_num = " EXEC_NUM_OF_ID " AND phase_id = ?2 AND attempt = ?3"
        " AND complete = 0)",
    [SQL_ARTIFACT_DISCARD] =
        "DELETE FROM artifacts WHERE exec_num = " EXEC_NUM_OF_ID " AND phase_id = ?2"
        " AND attempt = ?3 AND complete = 0",
    [SQL_ARTIFACT_STAGING_CHUNKS] =
        "DELETE FROM artifact_chunks WHERE artifact_id IN (SELECT id FROM artifacts"
        " WHERE complete = 0)",
    [SQL_ARTIFACT_STAGING] = "DELETE FROM artifacts WHERE complete = 0",
    [SQL_ARTIFACT_COMPLETE] =
        "UPDATE artifacts SET complete = 1 WHERE exec_num = " EXEC_NUM_OF_ID
        " AND phase_id = ?2 AND attempt = ?3",
    [SQL_ARTIFACT_LIST] =
        "SELECT a.phase_id, a.attempt, a.path, a.size, a.sha256, a.media_type, a.created_at"
        " FROM artifacts a LEFT JOIN phases p ON p.exec_num = a.exec_num"
        " AND p.phase_id = a.phase_id WHERE a.exec_num = " EXEC_NUM_OF_ID
        " AND a.complete = 1 ORDER BY p.ord, a.phase_id, a.path",
    [SQL_ARTIFACT_FIND] =
        "SELECT coalesce(chunks_of, id), attempt, size, sha256, media_type FROM artifacts"
        " WHERE exec_num = " EXEC_NUM_OF_ID " AND phase_id = ?2 AND path = ?3"
        " AND complete = 1 ORDER BY attempt DESC LIMIT 1",
    [SQL_ARTIFACT_READ] =
        "SELECT offset, data FROM artifact_chunks WHERE artifact_id = ?1"
        " AND offset + len > ?2 AND offset < ?3 ORDER BY offset",
};

/* --- helpers -------------------------------------------------------------- */

void store_log_error(broker_store_t *self, const char *what)
{
    if (self->db)
        snprintf(self->last_error, sizeof self->last_error, "%s", sqlite3_errmsg(self->db));
    else
        snprintf(self->last_error, sizeof self->last_error, "%s", store_pg_error(self->pg));
    syn_error("broker", "%s %s failed: %s", self->db ? "sqlite" : "postgresql", what,
              self->last_error);
}

/* Prepares lite (SQLite's text) on the store's database into *q: as it is on
 * SQLite, as store_pg_sql() makes it on PostgreSQL. */
int store_prepare(broker_store_t *self, store_q_t *q, const char *lite, int id)
{
    if (self->db)
        return sqlite3_prepare_v3(self->db, lite, -1, SQLITE_PREPARE_PERSISTENT, &q->lite,
                                  NULL) == SQLITE_OK
                   ? 0
                   : -1;
    int flags;
    char *sql = store_pg_sql(lite, id, &flags);
    q->pg = sql ? store_pg_q_new(self->pg, sql, flags) : NULL;
    free(sql);
    return q->pg ? 0 : -1;
}

/* The prepared statement for id, reset and with its bindings cleared, so every
 * caller starts from a clean slate. */
store_q_t *store_stmt(broker_store_t *self, sql_id_t id)
{
    store_q_t *s = &self->stmts[id];
    if (!s->lite && !s->pg && store_prepare(self, s, sql_text[id], (int)id) < 0) {
        store_log_error(self, "prepare");
        self->failed = self->in_transaction;
        return NULL;
    }
    store_reset(s);
    if (s->lite)
        sqlite3_clear_bindings(s->lite);
    return s;
}

/* Steps a statement that returns no rows and resets it (so borrowed bound memory
 * is no longer referenced). STORE_DONE, STORE_CONSTRAINT or the error code. */
int store_run(broker_store_t *self, store_q_t *s, const char *what)
{
    int rc = store_step(s);
    store_reset(s);
    if (rc == STORE_DONE)
        return STORE_DONE;
    if ((rc & 0xff) != STORE_CONSTRAINT) {
        store_log_error(self, what);
        self->failed = true;
    }
    return rc & 0xff;
}

/* Steps a statement that reads at most one row. 1: s is on the row (read it,
 * then reset s); 0: there is none; -1: an error, logged as what. s is reset
 * unless it is on a row. */
int store_step_one(broker_store_t *self, store_q_t *s, const char *what)
{
    int rc = store_step(s);
    if (rc == STORE_ROW)
        return 1;
    if (rc != STORE_DONE)
        store_log_error(self, what);
    store_reset(s);
    return rc == STORE_DONE ? 0 : -1;
}

/* store_step_one for a row of one text: 1 with a copy of it in *text
 * (malloc'd), 0 when there is no row, -1 on error. s is reset. */
int store_step_text(broker_store_t *self, store_q_t *s, const char *what, char **text)
{
    int found = store_step_one(self, s, what);
    if (found == 1) {
        *text = store_column_strdup(s, 0);
        found = *text ? 1 : -1;
        store_reset(s);
    }
    return found;
}

/* The number a statement of one row computes (a count, a maximum; NULL reads
 * as 0), or -1 when it yields no row (the error logged as what). s is reset. */
int64_t store_step_int(broker_store_t *self, store_q_t *s, const char *what)
{
    int64_t n = -1;
    if (store_step(s) == STORE_ROW)
        n = store_col_int(s, 0);
    else
        store_log_error(self, what);
    store_reset(s);
    return n;
}

/* The end of a loop that built rows (a JSON array or object) from s, rc the
 * last step's result: s is reset, and the rows returned, or NULL when they
 * could not be made or the step failed (logged as what; the rows freed). */
json_t *store_rows_end(broker_store_t *self, store_q_t *s, json_t *rows, int rc,
                       const char *what)
{
    store_reset(s);
    if (!rows || rc != STORE_DONE) {
        store_log_error(self, what);
        json_decref(rows);
        return NULL;
    }
    return rows;
}

/* A timestamp column as the API writes it (broker_time_json); NULL reads as null. */
json_t *store_column_time(store_q_t *s, int col)
{
    return broker_time_json(store_col_null(s, col)
                                ? 0
                                : store_col_int(s, col));
}

/* 0 binds NULL: timestamps that have not happened yet. */
void store_bind_time(store_q_t *s, int index, int64_t value)
{
    if (value > 0)
        store_bind_int(s, index, value);
    else
        store_bind_null(s, index);
}

char *store_column_strdup(store_q_t *s, int col)
{
    const char *text = store_col_text(s, col);
    return text ? strdup(text) : NULL;
}

json_t *store_column_json(store_q_t *s, int col)
{
    const char *text = store_col_text(s, col);
    if (!text)
        return NULL;
    return json_loads(text, JSON_DECODE_ANY, NULL);
}

char *store_dump_json(const json_t *value)
{
    return json_dumps(value, JSON_COMPACT | JSON_ENCODE_ANY);
}

int store_exec_sql(broker_store_t *self, const char *sql, const char *what)
{
    if (self->pg) {
        char err[256];
        store_pg_sync(self->pg);
        if (store_pg_exec_plain(self->pg, sql, err, sizeof err) == 0)
            return 0;
        syn_error("broker", "postgresql %s failed: %s", what, err);
        return -1;
    }
    char *msg = NULL;
    if (sqlite3_exec(self->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        syn_error("broker", "sqlite %s failed: %s", what, msg ? msg : "?");
        sqlite3_free(msg);
        return -1;
    }
    return 0;
}

json_t *store_column_string_or_null(store_q_t *s, int col)
{
    const char *text = store_col_text(s, col);
    json_t *value = text ? json_string(text) : NULL;
    return value ? value : json_null();
}
