/* archive_query: how fast the broker answers queries over a large archive.
 *
 * Creates a broker database in a temporary directory, bulk-loads N finished
 * executions (default 1,000,000; one transaction, prepared statements, the
 * schema's own triggers keeping counts and page blocks), then times the
 * operations gateways ask for — execution.list (first and deep pages, with and
 * without filters), workflow.runs, execution.get, execution.status,
 * execution.state, execution.output — through broker_api_handle, the same code
 * path the broker's loop runs. Each time covers the handler, SQLite and
 * building the JSON body (not the socket hop). Prints median, p99 and max in
 * microseconds per operation.
 *
 *   archive_query [--executions N] [--phases P] [--iterations K] [--dir DIR]
 *                 [--keep]
 */
#include "broker/api.h"
#include "broker/engine.h"
#include "broker/events.h"
#include "broker/outbox.h"
#include "broker/store.h"
#include "broker/workers.h"
#include "common/flags.h"
#include "common/log.h"

#include <jansson.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define WORKFLOWS 10

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

/* A fixed pseudo-random permutation of 48-bit numbers: ids look random (as real
 * ones do, which matters for the id index) yet any index maps back to its id. */
static void id_of(long i, char out[BROKER_EXEC_ID_SIZE])
{
    uint64_t x = ((uint64_t)i * 0x9E3779B97F4Bull + 0x5DEECE66Dull) & 0xFFFFFFFFFFFFull;
    snprintf(out, BROKER_EXEC_ID_SIZE, "exec-%012llx", (unsigned long long)x);
}

static uint64_t rng_state = 88172645463325252ull;
static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static void die(const char *what, const char *why)
{
    fprintf(stderr, "archive_query: %s: %s\n", what, why);
    exit(1);
}

static void check(sqlite3 *db, int rc, const char *what)
{
    if (rc != SQLITE_OK && rc != SQLITE_DONE && rc != SQLITE_ROW)
        die(what, sqlite3_errmsg(db));
}

static json_t *template_json(const char *id, long phases)
{
    json_t *list = json_array();
    for (long p = 1; p <= phases; p++) {
        char phase_id[32], prompt[96];
        snprintf(phase_id, sizeof phase_id, "phase%ld", p);
        snprintf(prompt, sizeof prompt, "step %ld of {{task}} after {{phase%ld}}", p, p - 1);
        json_array_append_new(list, json_pack("{s:s, s:s, s:i, s:s, s:n, s:i, s:i}", "phase_id",
                                              phase_id, "name", phase_id, "order", (int)p,
                                              "prompt_template", prompt, "model",
                                              "timeout_seconds", 300, "max_attempts", 3));
    }
    return json_pack("{s:s, s:s, s:n, s:s, s:s, s:[], s:o}", "id", id, "name", "Archive demo",
                     "description", "workflow_type", "custom", "classification", "standard",
                     "input_declarations", "phases", list);
}

/* Workflows through the store (so they look as the API made them). */
static void create_workflows(const char *path, long phases)
{
    char err[256];
    broker_store_t *store = broker_store_open(path, err, sizeof err);
    if (!store)
        die("open store", err);
    for (int w = 0; w < WORKFLOWS; w++) {
        char id[32];
        snprintf(id, sizeof id, "wf-%d", w);
        json_t *tpl = template_json(id, phases);
        broker_workflow_row_t row = {
            .id = id, .name = "Archive demo", .workflow_type = "custom",
            .classification = "standard", .phase_count = phases, .template_json = tpl,
            .created_at = 1700000000000000LL,
        };
        if (broker_store_workflow_insert(store, &row) != 0)
            die("create workflow", id);
        json_decref(tpl);
    }
    if (broker_store_commit(store) != 0)
        die("commit", "workflows");
    broker_store_destroy(&store);
}

/* N finished executions with their phases and attempts, in one transaction. */
static void bulk_load(const char *path, long count, long phases)
{
    sqlite3 *db = NULL;
    if (sqlite3_open(path, &db) != SQLITE_OK)
        die("open", path);
    /* A scratch file: no journal, no fsync (the broker reopens it in WAL mode). */
    check(db, sqlite3_exec(db, "PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF;"
                               " PRAGMA cache_size=-262144; BEGIN", NULL, NULL, NULL),
          "begin");
    sqlite3_stmt *exec_s, *phase_s, *attempt_s;
    check(db, sqlite3_prepare_v2(db,
                                 "INSERT INTO executions(id, workflow_id, workflow_version, status,"
                                 " inputs, task, repos, total_phases, completed_phases,"
                                 " current_phase, created_at, started_at, completed_at, error,"
                                 " total_input_tokens, total_output_tokens, total_cost_usd)"
                                 " VALUES (?1, ?2, 1, ?3, '{\"task\":\"demo task\"}', 'demo task',"
                                 " '[]', ?4, ?5, NULL, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
                                 -1, &exec_s, NULL),
          "prepare executions");
    check(db, sqlite3_prepare_v2(db,
                                 "INSERT INTO phases(execution_id, phase_id, ord, name, model,"
                                 " status, attempts, output, error, started_at, completed_at,"
                                 " input_tokens, output_tokens, cost_usd, exec_num)"
                                 " VALUES (?1, ?2, ?3, ?2, 'sonnet', ?4, ?5, ?6, ?7, ?8, ?9,"
                                 " ?10, ?11, ?12, ?13)",
                                 -1, &phase_s, NULL),
          "prepare phases");
    check(db, sqlite3_prepare_v2(db,
                                 "INSERT INTO attempts(execution_id, phase_id, attempt, worker,"
                                 " status, started_at, completed_at, exit_code, error, exec_num)"
                                 " VALUES (?1, ?2, 1, 'worker-1', ?3, ?4, ?5, ?6, ?7, ?8)",
                                 -1, &attempt_s, NULL),
          "prepare attempts");
    static const char output[] =
        "mock output for the phase: a paragraph of text standing in for what an agent wrote, "
        "long enough to look like a real result but short enough to keep the file small.";
    double started = now_us();
    for (long i = 0; i < count; i++) {
        char id[BROKER_EXEC_ID_SIZE], wf[32];
        id_of(i, id);
        snprintf(wf, sizeof wf, "wf-%ld", i % WORKFLOWS);
        int kind = (int)(rnd() % 100); /* 90% completed, 7% failed, 3% cancelled */
        const char *status = kind < 90 ? "completed" : kind < 97 ? "failed" : "cancelled";
        long done = kind < 90 ? phases : (long)(rnd() % (uint64_t)phases);
        int64_t t0 = 1700000000000000LL + (int64_t)i * 1000000;
        int64_t t1 = t0 + 1000000 + (int64_t)(rnd() % 60000000);
        sqlite3_bind_text(exec_s, 1, id, -1, SQLITE_STATIC);
        sqlite3_bind_text(exec_s, 2, wf, -1, SQLITE_STATIC);
        sqlite3_bind_text(exec_s, 3, status, -1, SQLITE_STATIC);
        sqlite3_bind_int64(exec_s, 4, phases);
        sqlite3_bind_int64(exec_s, 5, done);
        sqlite3_bind_int64(exec_s, 6, t0);
        sqlite3_bind_int64(exec_s, 7, t0);
        sqlite3_bind_int64(exec_s, 8, t1);
        if (kind < 90)
            sqlite3_bind_null(exec_s, 9);
        else
            sqlite3_bind_text(exec_s, 9, kind < 97 ? "Phase phase1 failed: agent exited 1"
                                                   : "Cancelled by user",
                              -1, SQLITE_STATIC);
        sqlite3_bind_int64(exec_s, 10, 1200 * done);
        sqlite3_bind_int64(exec_s, 11, 300 * done);
        sqlite3_bind_double(exec_s, 12, 0.004 * (double)done);
        check(db, sqlite3_step(exec_s), "insert execution");
        sqlite3_reset(exec_s);
        /* Child rows are keyed by the execution's number (schema version 6). */
        int64_t num = sqlite3_last_insert_rowid(db);
        for (long p = 1; p <= phases; p++) {
            char phase_id[32];
            snprintf(phase_id, sizeof phase_id, "phase%ld", p);
            const char *phase_status = p <= done             ? "completed"
                                       : p == done + 1 && kind < 97 ? "failed"
                                       : p == done + 1              ? "cancelled"
                                                                    : "skipped";
            bool ran = p <= done + 1;
            sqlite3_bind_text(phase_s, 1, id, -1, SQLITE_STATIC);
            sqlite3_bind_text(phase_s, 2, phase_id, -1, SQLITE_STATIC);
            sqlite3_bind_int64(phase_s, 3, p);
            sqlite3_bind_text(phase_s, 4, phase_status, -1, SQLITE_STATIC);
            sqlite3_bind_int64(phase_s, 5, ran ? 1 : 0);
            if (p <= done)
                sqlite3_bind_text(phase_s, 6, output, -1, SQLITE_STATIC);
            else
                sqlite3_bind_null(phase_s, 6);
            if (ran && p > done)
                sqlite3_bind_text(phase_s, 7, "agent exited 1", -1, SQLITE_STATIC);
            else
                sqlite3_bind_null(phase_s, 7);
            if (ran) {
                sqlite3_bind_int64(phase_s, 8, t0);
                sqlite3_bind_int64(phase_s, 9, t1);
            } else {
                sqlite3_bind_null(phase_s, 8);
                sqlite3_bind_null(phase_s, 9);
            }
            sqlite3_bind_int64(phase_s, 10, ran ? 1200 : 0);
            sqlite3_bind_int64(phase_s, 11, ran ? 300 : 0);
            sqlite3_bind_double(phase_s, 12, ran ? 0.004 : 0);
            sqlite3_bind_int64(phase_s, 13, num);
            check(db, sqlite3_step(phase_s), "insert phase");
            sqlite3_reset(phase_s);
            if (!ran)
                continue;
            sqlite3_bind_text(attempt_s, 1, id, -1, SQLITE_STATIC);
            sqlite3_bind_text(attempt_s, 2, phase_id, -1, SQLITE_STATIC);
            sqlite3_bind_text(attempt_s, 3, p <= done ? "completed" : "failed", -1,
                              SQLITE_STATIC);
            sqlite3_bind_int64(attempt_s, 4, t0);
            sqlite3_bind_int64(attempt_s, 5, t1);
            sqlite3_bind_int64(attempt_s, 6, p <= done ? 0 : 1);
            if (p <= done)
                sqlite3_bind_null(attempt_s, 7);
            else
                sqlite3_bind_text(attempt_s, 7, "agent exited 1", -1, SQLITE_STATIC);
            sqlite3_bind_int64(attempt_s, 8, num);
            check(db, sqlite3_step(attempt_s), "insert attempt");
            sqlite3_reset(attempt_s);
        }
        if ((i + 1) % 100000 == 0)
            fprintf(stderr, "  loaded %ld executions (%.0f/s)\n", i + 1,
                    (double)(i + 1) / ((now_us() - started) / 1e6));
    }
    sqlite3_finalize(exec_s);
    sqlite3_finalize(phase_s);
    sqlite3_finalize(attempt_s);
    /* The counts and page blocks the store keeps itself since schema version 5
     * (no insert triggers any more): made here in one pass, as version 2's
     * upgrade made them, over executions that start from none. */
    check(db, sqlite3_exec(db,
                           "INSERT INTO execution_counts(workflow_id, status, n)"
                           "  SELECT workflow_id, status, count(*) FROM executions GROUP BY 1, 2;"
                           "INSERT INTO execution_pages(workflow_id, status, bucket, n)"
                           "  SELECT workflow_id, status, num >> 10, count(*) FROM executions"
                           "  GROUP BY 1, 2, 3"
                           "  UNION ALL SELECT workflow_id, '', num >> 10, count(*)"
                           "  FROM executions GROUP BY 1, 3"
                           "  UNION ALL SELECT '', status, num >> 10, count(*)"
                           "  FROM executions GROUP BY 2, 3"
                           "  UNION ALL SELECT '', '', num >> 10, count(*)"
                           "  FROM executions GROUP BY 3;",
                           NULL, NULL, NULL),
          "count executions");
    check(db, sqlite3_exec(db, "COMMIT; PRAGMA wal_checkpoint(TRUNCATE); ANALYZE", NULL, NULL,
                           NULL),
          "commit");
    sqlite3_close(db);
    printf("loaded %ld executions (%ld phases each) in %.1f s\n", count, phases,
           (now_us() - started) / 1e6);
}

typedef struct {
    broker_store_t *store;
    broker_outbox_t *outbox;
    broker_events_t *events;
    broker_workers_t *workers;
    broker_engine_t *engine;
    broker_api_t *api;
} broker_parts_t;

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

typedef json_t *(*args_fn)(long count, long phases);

static json_t *list_first(long count, long phases)
{
    (void)count, (void)phases;
    return json_pack("{s:i, s:i}", "page", 1, "page_size", 50);
}

static json_t *list_deep(long count, long phases)
{
    (void)phases;
    long pages = count / 50;
    return json_pack("{s:I, s:i}", "page",
                     (json_int_t)(1 + rnd() % (uint64_t)(pages > 0 ? pages : 1)),
                     "page_size", 50);
}

static json_t *list_failed(long count, long phases)
{
    (void)count, (void)phases;
    return json_pack("{s:s, s:i, s:i}", "status", "failed", "page", 1, "page_size", 50);
}

static json_t *list_failed_deep(long count, long phases)
{
    (void)phases;
    long pages = count * 7 / 100 / 50;
    return json_pack("{s:s, s:I, s:i}", "status", "failed", "page",
                     (json_int_t)(1 + rnd() % (uint64_t)(pages > 0 ? pages : 1)), "page_size",
                     50);
}

static json_t *list_workflow_status(long count, long phases)
{
    (void)count, (void)phases;
    return json_pack("{s:s, s:s, s:i, s:i}", "workflow_id", "wf-3", "status", "cancelled",
                     "page", 2, "page_size", 20);
}

static json_t *runs_first(long count, long phases)
{
    (void)count, (void)phases;
    return json_pack("{s:s, s:i, s:i}", "workflow_id", "wf-7", "page", 1, "page_size", 50);
}

static json_t *runs_deep(long count, long phases)
{
    (void)phases;
    long pages = count / WORKFLOWS / 50;
    return json_pack("{s:s, s:I, s:i}", "workflow_id", "wf-7", "page",
                     (json_int_t)(1 + rnd() % (uint64_t)(pages > 0 ? pages : 1)), "page_size",
                     50);
}

static json_t *random_id_args(long count, int prefix_len, const char *extra_key,
                              const char *extra_value)
{
    char id[BROKER_EXEC_ID_SIZE];
    id_of((long)(rnd() % (uint64_t)count), id);
    if (prefix_len > 0)
        id[prefix_len] = '\0';
    json_t *args = json_pack("{s:s}", "execution_id", id);
    if (extra_key)
        json_object_set_new(args, extra_key, json_string(extra_value));
    return args;
}

static json_t *get_full(long count, long phases)
{
    (void)phases;
    return random_id_args(count, 0, NULL, NULL);
}

static json_t *get_prefix(long count, long phases)
{
    (void)phases;
    return random_id_args(count, 13, NULL, NULL); /* "exec-" + 8 hex digits */
}

static json_t *status_full(long count, long phases)
{
    (void)phases;
    char wf[32];
    long i = (long)(rnd() % (uint64_t)count);
    char id[BROKER_EXEC_ID_SIZE];
    id_of(i, id);
    snprintf(wf, sizeof wf, "wf-%ld", i % WORKFLOWS);
    return json_pack("{s:s, s:s}", "workflow_id", wf, "execution_id", id);
}

static json_t *state_full(long count, long phases)
{
    (void)phases;
    return random_id_args(count, 0, NULL, NULL);
}

static json_t *output_full(long count, long phases)
{
    (void)phases;
    return random_id_args(count, 0, "phase_id", "phase1");
}

static const struct {
    const char *name;
    const char *op;
    args_fn args;
} cases[] = {
    {"list page 1 (50, no filter)", "execution.list", list_first},
    {"list random page (50, no filter)", "execution.list", list_deep},
    {"list status=failed page 1", "execution.list", list_failed},
    {"list status=failed random page", "execution.list", list_failed_deep},
    {"list workflow+status page 2 (20)", "execution.list", list_workflow_status},
    {"workflow.runs page 1 (50)", "workflow.runs", runs_first},
    {"workflow.runs random page (50)", "workflow.runs", runs_deep},
    {"get (full id)", "execution.get", get_full},
    {"get (13-char prefix)", "execution.get", get_prefix},
    {"status (full id)", "execution.status", status_full},
    {"state (full id)", "execution.state", state_full},
    {"output (phase1)", "execution.output", output_full},
};

static void run_case(broker_parts_t *b, size_t c, long count, long phases, long iterations)
{
    double *times = malloc((size_t)iterations * sizeof *times);
    int errors = 0;
    for (long i = -iterations / 10; i < iterations; i++) { /* the first tenth warms up */
        json_t *args = cases[c].args(count, phases);
        json_t *body = NULL;
        double t0 = now_us();
        int status = broker_api_handle(b->api, cases[c].op, args, &body);
        json_decref(body);
        double t1 = now_us();
        json_decref(args);
        if (status != 200)
            errors++;
        if (i >= 0)
            times[i] = t1 - t0;
    }
    qsort(times, (size_t)iterations, sizeof *times, cmp_double);
    printf("%-36s %10.1f %10.1f %10.1f%s\n", cases[c].name, times[iterations / 2],
           times[iterations * 99 / 100], times[iterations - 1], errors ? "  (errors!)" : "");
    free(times);
}

int main(int argc, char **argv)
{
    static const char summary[] =
        "Loads an archive of finished executions and times the broker's queries over it.";
    long count = 1000000, phases = 3, iterations = 2000;
    const char *dir = NULL;
    bool keep = false;
    syn_flag_t flags[] = {
        {"executions", SYN_FLAG_INT, "N", "finished executions to load", &count, 1, 100000000},
        {"phases", SYN_FLAG_INT, "P", "phases per execution", &phases, 1, 20},
        {"iterations", SYN_FLAG_INT, "K", "timed calls per query", &iterations, 10, 10000000},
        {"dir", SYN_FLAG_STRING, "DIR",
         "load into DIR instead of a temp dir; if DIR/syn.db exists (made by an earlier run "
         "with --keep), query it without loading",
         &dir, 0, 0},
        {"keep", SYN_FLAG_BOOL, NULL, "keep the database afterwards", &keep, 0, 0},
        {NULL, 0, NULL, NULL, NULL, 0, 0},
    };
    syn_flags_result_t parsed = syn_flags_parse("archive_query", summary, flags, argc, argv);
    if (parsed == SYN_FLAGS_EXIT)
        return 0;
    if (parsed == SYN_FLAGS_ERROR)
        return 2;
    syn_log_set_level(SYN_LOG_WARN);

    char tmp[] = "/tmp/syn-archive-XXXXXX";
    if (!dir) {
        if (!mkdtemp(tmp))
            die("mkdtemp", "cannot create a temporary directory");
        dir = tmp;
    } else {
        mkdir(dir, 0755);
    }
    char path[512];
    snprintf(path, sizeof path, "%s/syn.db", dir);
    struct stat st;
    bool reuse = stat(path, &st) == 0;
    if (!reuse) {
        create_workflows(path, phases);
        bulk_load(path, count, phases);
    } else {
        printf("reusing %s\n", path);
    }
    if (stat(path, &st) == 0)
        printf("database %s: %.0f MiB\n", path, (double)st.st_size / (1024.0 * 1024.0));

    char err[256];
    broker_parts_t b = {0};
    b.store = broker_store_open(path, err, sizeof err);
    if (!b.store)
        die("open store", err);
    b.outbox = broker_outbox_new();
    b.events = broker_events_new(b.store, b.outbox);
    b.workers = broker_workers_new();
    broker_engine_config_t config = {.heartbeat_ms = 1000, .liveness = 3, .kill_grace_ms = 5000};
    b.engine = broker_engine_new(b.store, b.events, b.outbox, b.workers, &config);
    b.api = b.engine ? broker_api_new(b.store, b.engine, b.workers) : NULL;
    if (!b.api || broker_engine_recover(b.engine, 0) < 0)
        die("set up", "broker parts");
    json_t *body = NULL;
    json_t *args = json_object();
    broker_api_handle(b.api, "execution.list", args, &body);
    long listed = (long)json_integer_value(json_object_get(body, "total"));
    printf("archive: %ld executions; %ld timed calls per query (after %ld warm-up)\n\n", listed,
           iterations, iterations / 10);
    json_decref(body);
    /* The listing's total comes from the counts the load made: a load the store
     * cannot read would otherwise be timed as an empty archive. */
    if (!reuse && listed != count)
        die("execution.list", "its total is not the number of executions loaded");
    json_decref(args);
    if (reuse) {
        /* the archive's size decides the random pages and ids */
        json_t *a = json_pack("{s:i}", "page_size", 1);
        broker_api_handle(b.api, "execution.list", a, &body);
        count = (long)json_integer_value(json_object_get(body, "total"));
        json_decref(body);
        json_decref(a);
        if (count < 1)
            die(path, "no executions to query");
    }

    printf("%-36s %10s %10s %10s\n", "query (broker time, µs)", "median", "p99", "max");
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++)
        run_case(&b, c, count, phases, iterations);

    broker_api_destroy(&b.api);
    broker_engine_destroy(&b.engine);
    broker_events_destroy(&b.events);
    broker_workers_destroy(&b.workers);
    broker_outbox_destroy(&b.outbox);
    broker_store_destroy(&b.store);
    if (!keep && dir == tmp) {
        const char *suffixes[] = {"", "-wal", "-shm"};
        for (int i = 0; i < 3; i++) {
            char p[600];
            snprintf(p, sizeof p, "%s%s", path, suffixes[i]);
            unlink(p);
        }
        rmdir(tmp);
    }
    return 0;
}
