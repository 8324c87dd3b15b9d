/* broker/engine and broker/api in-process: real SQLite in a temporary directory,
 * fake workers (identities and hand-made messages), and the outbox read back to
 * see what the broker would have sent. Every message the broker produces is
 * checked against its protocol schema. */
#include "broker/api.h"
#include "broker/engine.h"
#include "broker/events.h"
#include "broker/outbox.h"
#include "broker/store.h"
#include "broker/workers.h"
#include "common/log.h"
#include "proto/msg.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#define HB 100
#define LIVENESS 3

typedef struct {
    char dir[64];
    char path[96];
    broker_store_t *store;
    broker_outbox_t *outbox;
    broker_events_t *events;
    broker_workers_t *workers;
    broker_engine_t *engine;
    broker_api_t *api;
    int64_t now;      /* fake monotonic clock */
    json_t *sent;     /* everything flushed so far: [{dest, identity, type, fields}] */
} fx_t;

static void open_all(fx_t *f)
{
    char err[256];
    f->store = broker_store_open(f->path, err, sizeof err);
    assert_non_null(f->store);
    f->outbox = broker_outbox_new();
    f->events = broker_events_new(f->store, f->outbox);
    f->workers = broker_workers_new();
    broker_engine_config_t config = {.heartbeat_ms = HB, .liveness = LIVENESS,
                                     .kill_grace_ms = 50};
    f->engine = broker_engine_new(f->store, f->events, f->outbox, f->workers, &config);
    f->api = broker_api_new(f->store, f->engine, f->workers);
    assert_non_null(f->api);
}

static void close_all(fx_t *f)
{
    broker_api_destroy(&f->api);
    broker_engine_destroy(&f->engine);
    broker_events_destroy(&f->events);
    broker_workers_destroy(&f->workers);
    broker_outbox_destroy(&f->outbox);
    broker_store_destroy(&f->store);
}

static int setup(void **state)
{
    syn_log_set_level(SYN_LOG_ERROR);
    fx_t *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/syn-test-engine-XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    snprintf(f->path, sizeof f->path, "%s/syn.db", f->dir);
    f->now = 1000000;
    f->sent = json_array();
    open_all(f);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx_t *f = *state;
    close_all(f);
    json_decref(f->sent);
    const char *suffixes[] = {"", "-wal", "-shm"};
    for (int i = 0; i < 3; i++) {
        char p[128];
        snprintf(p, sizeof p, "%s%s", f->path, suffixes[i]);
        unlink(p);
    }
    rmdir(f->dir);
    free(f);
    return 0;
}

/* One loop turn without sockets: dispatch, commit, then "send" the outbox. */
static void turn(fx_t *f)
{
    broker_engine_dispatch(f->engine, f->now);
    assert_int_equal(broker_store_commit(f->store), 0);
    broker_dest_t dest;
    unsigned char identity[BROKER_IDENTITY_MAX + 1];
    size_t len;
    syn_msg_t *msg;
    while ((msg = broker_outbox_pop(f->outbox, &dest, identity, &len))) {
        char err[256];
        if (syn_msg_validate(msg, err, sizeof err) != 0)
            fail_msg("broker produced an invalid %s: %s", syn_msg_type_name(syn_msg_type(msg)),
                     err);
        identity[len] = '\0';
        json_array_append_new(f->sent, json_pack("{s:i, s:s, s:s, s:O}", "dest", (int)dest,
                                                 "identity", (char *)identity, "type",
                                                 syn_msg_type_name(syn_msg_type(msg)), "fields",
                                                 syn_msg_fields(msg)));
        syn_msg_destroy(&msg);
    }
}

/* Takes the first sent message of a type (to identity, if given) out of the log. */
static json_t *take(fx_t *f, const char *type, const char *identity)
{
    size_t i;
    json_t *m;
    json_array_foreach(f->sent, i, m)
    {
        if (strcmp(json_string_value(json_object_get(m, "type")), type) != 0)
            continue;
        if (identity && strcmp(json_string_value(json_object_get(m, "identity")), identity) != 0)
            continue;
        json_t *fields = json_incref(json_object_get(m, "fields"));
        json_array_remove(f->sent, i);
        return fields;
    }
    return NULL;
}

static size_t count_sent(fx_t *f, const char *type)
{
    size_t i, n = 0;
    json_t *m;
    json_array_foreach(f->sent, i, m)
        n += strcmp(json_string_value(json_object_get(m, "type")), type) == 0;
    return n;
}

static int call(fx_t *f, const char *op, json_t *args, json_t **body)
{
    int status = broker_api_handle(f->api, op, args, body);
    json_decref(args);
    turn(f);
    return status;
}

static void expect_detail(json_t *body, const char *text)
{
    const char *got = json_string_value(json_object_get(body, "detail"));
    if (!got || strcmp(got, text) != 0)
        fail_msg("detail \"%s\" != \"%s\"", got ? got : "(none)", text);
}

static void worker_send(fx_t *f, const char *identity, syn_msg_type_t type, json_t *fields)
{
    syn_msg_t *msg = syn_msg_new_with(type, fields);
    char err[256];
    if (syn_msg_validate(msg, err, sizeof err) != 0)
        fail_msg("test built an invalid message: %s", err);
    broker_engine_on_worker(f->engine, identity, strlen(identity), msg, f->now);
    syn_msg_destroy(&msg);
    turn(f);
}

static void ready(fx_t *f, const char *identity, int slots, json_t *running)
{
    worker_send(f, identity, SYN_MSG_READY,
                json_pack("{s:s, s:i, s:[s], s:o}", "worker", identity, "slots", slots,
                          "providers", "mock", "running", running ? running : json_array()));
}

static void result(fx_t *f, const char *identity, const json_t *assign, const char *status,
                   const char *output, const char *error)
{
    worker_send(f, identity, SYN_MSG_RESULT,
                json_pack("{s:O, s:O, s:O, s:s, s:s, s:o, s:o}", "execution_id",
                          json_object_get(assign, "execution_id"), "phase_id",
                          json_object_get(assign, "phase_id"), "attempt",
                          json_object_get(assign, "attempt"), "status", status, "output", output,
                          "error", error ? json_string(error) : json_null(), "exit_code",
                          strcmp(status, "completed") == 0 ? json_integer(0) : json_integer(3)));
}

static json_t *ref_of(const json_t *assign)
{
    return json_pack("{s:O, s:O, s:O}", "execution_id", json_object_get(assign, "execution_id"),
                     "phase_id", json_object_get(assign, "phase_id"), "attempt",
                     json_object_get(assign, "attempt"));
}

static const char *str(const json_t *obj, const char *key)
{
    return json_string_value(json_object_get(obj, key));
}

static json_int_t num(const json_t *obj, const char *key)
{
    return json_integer_value(json_object_get(obj, key));
}

/* A 3-phase workflow (p1, p2, p3) whose prompts use every rendering rule. */
static void create_workflow(fx_t *f, const char *id, int max_attempts)
{
    json_t *body;
    json_t *args = json_pack(
        "{s:s, s:s, s:[{s:s, s:b}, {s:s, s:b, s:s}], s:["
        "{s:s, s:s, s:i, s:s, s:i},"
        "{s:s, s:s, s:i, s:s, s:i},"
        "{s:s, s:s, s:i, s:s, s:s, s:i, s:i}]}",
        "id", id, "name", "Demo",
        "input_declarations", "name", "topic", "required", 1, "name", "tone", "required", 1,
        "default", "dry",
        "phases",
        "phase_id", "p1", "name", "Plan", "order", 1, "prompt_template",
        "plan {{topic}} in a {{tone}} tone for $ARGUMENTS ({{execution_id}})", "max_attempts",
        max_attempts,
        "phase_id", "p2", "name", "Draft", "order", 2, "prompt_template",
        "draft from [{{p1}}] {{unknown}}", "max_attempts", max_attempts,
        "phase_id", "p3", "name", "Review", "order", 3, "prompt_template",
        "review [{{p1}}] [{{p2}}] {{workflow_id}} {{task}}", "model", "big", "timeout_seconds",
        7, "max_attempts", max_attempts);
    assert_int_equal(call(f, "workflow.create", args, &body), 201);
    json_decref(body);
}

static void start(fx_t *f, const char *workflow_id, char id[BROKER_EXEC_ID_SIZE])
{
    json_t *body;
    json_t *args = json_pack("{s:s, s:{s:s}, s:s, s:[]}", "workflow_id", workflow_id, "inputs",
                             "topic", "cats", "task", "the task", "repos");
    assert_int_equal(call(f, "execution.start", args, &body), 200);
    snprintf(id, BROKER_EXEC_ID_SIZE, "%s", str(body, "execution_id"));
    json_decref(body);
}

static json_t *status_of(fx_t *f, const char *workflow_id, const char *id)
{
    json_t *body;
    int status = call(f, "execution.status",
                      json_pack("{s:s, s:s}", "workflow_id", workflow_id, "execution_id", id),
                      &body);
    assert_int_equal(status, 200);
    return body;
}

static int64_t db_int(fx_t *f, const char *sql)
{
    sqlite3 *db;
    assert_int_equal(sqlite3_open_v2(f->path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK)
        fail_msg("bad sql %s", sql);
    int64_t v = -1;
    if (sqlite3_step(s) == SQLITE_ROW)
        v = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    sqlite3_close(db);
    return v;
}

/* --- api ------------------------------------------------------------------- */

static void test_workflow_create_get_list(void **state)
{
    fx_t *f = *state;
    json_t *body;
    json_t *args = json_pack("{s:s, s:[{s:s, s:s, s:i, s:s}]}", "name", "Gen", "phases",
                             "phase_id", "a", "name", "A", "order", 1, "prompt_template", "x");
    assert_int_equal(call(f, "workflow.create", args, &body), 201);
    const char *id = str(body, "id");
    assert_int_equal(strlen(id), 15);
    assert_memory_equal(id, "wf-", 3);
    assert_string_equal(str(body, "workflow_type"), "custom");
    assert_string_equal(str(body, "classification"), "standard");
    assert_string_equal(str(body, "status"), "created");
    assert_int_equal(json_object_size(body), 5);
    char gen_id[32];
    snprintf(gen_id, sizeof gen_id, "%s", id);
    json_decref(body);

    create_workflow(f, "wf-demo", 3);
    assert_int_equal(call(f, "workflow.get", json_pack("{s:s}", "id", "wf-demo"), &body), 200);
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    /* created_at is the only moving part */
    char *created = strstr(text, ",\"created_at\":\"");
    assert_non_null(created);
    *created = '\0';
    assert_string_equal(
        text,
        "{\"id\":\"wf-demo\",\"name\":\"Demo\",\"description\":null,\"workflow_type\":\"custom\","
        "\"classification\":\"standard\",\"input_declarations\":["
        "{\"name\":\"topic\",\"description\":null,\"required\":true,\"default\":null},"
        "{\"name\":\"tone\",\"description\":null,\"required\":true,\"default\":\"dry\"}],"
        "\"phases\":["
        "{\"phase_id\":\"p1\",\"name\":\"Plan\",\"order\":1,\"prompt_template\":"
        "\"plan {{topic}} in a {{tone}} tone for $ARGUMENTS ({{execution_id}})\","
        "\"model\":null,\"timeout_seconds\":300,\"max_attempts\":3,\"description\":null,"
        "\"argument_hint\":null,\"allowed_tools\":[]},"
        "{\"phase_id\":\"p2\",\"name\":\"Draft\",\"order\":2,\"prompt_template\":"
        "\"draft from [{{p1}}] {{unknown}}\",\"model\":null,\"timeout_seconds\":300,"
        "\"max_attempts\":3,\"description\":null,\"argument_hint\":null,\"allowed_tools\":[]},"
        "{\"phase_id\":\"p3\",\"name\":\"Review\",\"order\":3,\"prompt_template\":"
        "\"review [{{p1}}] [{{p2}}] {{workflow_id}} {{task}}\",\"model\":\"big\","
        "\"timeout_seconds\":7,\"max_attempts\":3,\"description\":null,\"argument_hint\":null,"
        "\"allowed_tools\":[]}]");
    free(text);

    assert_int_equal(call(f, "workflow.create",
                          json_pack("{s:s, s:s, s:[{s:s, s:s, s:i, s:s}]}", "id", "wf-demo",
                                    "name", "again", "phases", "phase_id", "a", "name", "A",
                                    "order", 1, "prompt_template", "x"),
                          &body),
                     409);
    expect_detail(body, "Workflow wf-demo already exists");
    json_decref(body);

    assert_int_equal(call(f, "workflow.get", json_pack("{s:s}", "id", "nope"), &body), 404);
    expect_detail(body, "Workflow nope not found");
    json_decref(body);

    assert_int_equal(call(f, "workflow.list", json_pack("{s:i, s:i}", "page", 1, "page_size", 1),
                          &body),
                     200);
    assert_int_equal(num(body, "total"), 2);
    assert_int_equal(num(body, "page_size"), 1);
    json_t *first = json_array_get(json_object_get(body, "workflows"), 0);
    assert_string_equal(str(first, "id"), "wf-demo");
    assert_int_equal(num(first, "phase_count"), 3);
    json_decref(body);
    assert_int_equal(call(f, "workflow.list", json_pack("{s:i, s:i}", "page", 2, "page_size", 1),
                          &body),
                     200);
    assert_string_equal(str(json_array_get(json_object_get(body, "workflows"), 0), "id"), gen_id);
    json_decref(body);
}

static void test_workflow_create_rejects(void **state)
{
    fx_t *f = *state;
    json_t *body;
    assert_int_equal(call(f, "workflow.create",
                          json_pack("{s:s, s:[{s:s, s:s, s:i, s:s}, {s:s, s:s, s:i, s:s}]}",
                                    "name", "d", "phases", "phase_id", "a", "name", "A", "order",
                                    1, "prompt_template", "x", "phase_id", "a", "name", "B",
                                    "order", 2, "prompt_template", "y"),
                          &body),
                     422);
    expect_detail(body, "Duplicate phase_id 'a' in phases[0] and phases[1]");
    json_decref(body);
    assert_int_equal(call(f, "workflow.create",
                          json_pack("{s:s, s:[{s:s, s:s, s:i, s:s}, {s:s, s:s, s:i, s:s}]}",
                                    "name", "d", "phases", "phase_id", "a", "name", "A", "order",
                                    5, "prompt_template", "x", "phase_id", "b", "name", "B",
                                    "order", 5, "prompt_template", "y"),
                          &body),
                     422);
    expect_detail(body, "Duplicate order 5 in phases[0] and phases[1]");
    json_decref(body);

    /* shapes the gateway should have stopped: 400, never a crash */
    json_t *bad[] = {
        json_pack("{s:s, s:[]}", "name", "no phases", "phases"),
        json_pack("{s:[{s:s, s:s, s:i, s:s}]}", "phases", "phase_id", "a", "name", "A", "order",
                  1, "prompt_template", "x"),
        json_pack("{s:s, s:s, s:[{s:s, s:s, s:i, s:s}]}", "id", "-bad", "name", "n", "phases",
                  "phase_id", "a", "name", "A", "order", 1, "prompt_template", "x"),
        json_pack("{s:s, s:[{s:s, s:s, s:s, s:s}]}", "name", "n", "phases", "phase_id", "a",
                  "name", "A", "order", "1", "prompt_template", "x"),
        json_pack("{s:s, s:[{s:s, s:s, s:i, s:s, s:i}]}", "name", "n", "phases", "phase_id", "a",
                  "name", "A", "order", 1, "prompt_template", "x", "timeout_seconds", 0),
        json_pack("{s:s, s:[i]}", "name", "n", "phases", 4),
        json_pack("{s:s, s:i, s:[{s:s, s:s, s:i, s:s}]}", "name", "n", "input_declarations", 3,
                  "phases", "phase_id", "a", "name", "A", "order", 1, "prompt_template", "x"),
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(call(f, "workflow.create", bad[i], &body), 400);
        assert_memory_equal(str(body, "detail"), "bad request: ", 13);
        json_decref(body);
    }
    assert_int_equal(call(f, "no.such.op", json_object(), &body), 400);
    expect_detail(body, "unknown operation no.such.op");
    json_decref(body);
    assert_int_equal(call(f, "health", json_array(), &body), 400);
    json_decref(body);
    assert_int_equal(call(f, "health", json_object(), &body), 200);
    assert_string_equal(str(body, "broker"), "up");
    assert_int_equal(num(body, "workers"), 0);
    json_decref(body);
}

static void test_execution_start_errors(void **state)
{
    fx_t *f = *state;
    json_t *body;
    assert_int_equal(call(f, "execution.start",
                          json_pack("{s:s, s:{}, s:n, s:[]}", "workflow_id", "nope", "inputs",
                                    "task", "repos"),
                          &body),
                     404);
    expect_detail(body, "Workflow nope not found");
    json_decref(body);

    json_t *args = json_pack("{s:s, s:[{s:s}, {s:s, s:b}, {s:s}, {s:s, s:s}], s:[{s:s, s:s, "
                             "s:i, s:s}]}",
                             "name", "n", "input_declarations", "name", "zeta", "name", "opt",
                             "required", 0, "name", "alpha", "name", "dflt", "default", "v",
                             "phases", "phase_id", "a", "name", "A", "order", 1,
                             "prompt_template", "x");
    json_object_set_new(args, "id", json_string("wf-in"));
    assert_int_equal(call(f, "workflow.create", args, &body), 201);
    json_decref(body);
    assert_int_equal(call(f, "execution.start",
                          json_pack("{s:s, s:{}, s:n, s:[]}", "workflow_id", "wf-in", "inputs",
                                    "task", "repos"),
                          &body),
                     422);
    expect_detail(body, "Missing required inputs: alpha, zeta. Provide them via: "
                        "--input alpha=<value>, --input zeta=<value>");
    json_decref(body);
    /* what the request names is no longer missing */
    assert_int_equal(call(f, "execution.start",
                          json_pack("{s:s, s:{s:s}, s:n, s:[]}", "workflow_id", "wf-in",
                                    "inputs", "alpha", "a", "task", "repos"),
                          &body),
                     422);
    expect_detail(body, "Missing required inputs: zeta. Provide them via: --input zeta=<value>");
    json_decref(body);
    assert_int_equal(call(f, "execution.start",
                          json_pack("{s:s, s:{s:i}}", "workflow_id", "wf-in", "inputs", "alpha",
                                    3),
                          &body),
                     400);
    json_decref(body);
    /* a long multi-byte key in a reason is cut on a character boundary */
    char key[1201];
    for (int i = 0; i < 600; i++)
        memcpy(key + 2 * i, "\xc3\xa9", 2);
    key[1200] = '\0';
    json_t *inputs = json_object();
    json_object_set_new(inputs, key, json_integer(1));
    assert_int_equal(call(f, "execution.start",
                          json_pack("{s:s, s:o}", "workflow_id", "wf-in", "inputs", inputs),
                          &body),
                     400);
    assert_memory_equal(str(body, "detail"), "bad request: inputs.\xc3\xa9", 22);
    json_decref(body);
    assert_int_equal(call(f, "execution.start",
                          json_pack("{s:s, s:{s:s, s:s}, s:n, s:[]}", "workflow_id", "wf-in",
                                    "inputs", "alpha", "a", "zeta", "z", "task", "repos"),
                          &body),
                     200);
    assert_string_equal(str(body, "status"), "started");
    assert_string_equal(str(body, "message"), "Workflow execution started");
    assert_string_equal(str(body, "workflow_id"), "wf-in");
    const char *id = str(body, "execution_id");
    assert_int_equal(strlen(id), 17);
    assert_memory_equal(id, "exec-", 5);
    for (size_t i = 5; i < 17; i++)
        assert_non_null(strchr("0123456789abcdef", id[i]));
    json_decref(body);
}

/* --- the whole run --------------------------------------------------------- */

static void test_three_phases_complete(void **state)
{
    fx_t *f = *state;
    create_workflow(f, "wf-demo", 3);
    char id[BROKER_EXEC_ID_SIZE];
    start(f, "wf-demo", id);
    /* durable as soon as the reply could leave */
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM executions WHERE id='%s'", id);
    assert_int_equal(db_int(f, sql), 1);

    json_t *st = status_of(f, "wf-demo", id);
    assert_string_equal(str(st, "status"), "pending");
    assert_string_equal(str(st, "current_phase"), "p1");
    assert_int_equal(num(st, "total_phases"), 3);
    assert_true(json_is_null(json_object_get(st, "started_at")));
    assert_int_equal(json_object_size(st), 9);
    json_decref(st);
    assert_int_equal(count_sent(f, "assign"), 0);

    ready(f, "W1", 2, NULL);
    json_t *a1 = take(f, "assign", "W1");
    assert_non_null(a1);
    assert_string_equal(str(a1, "phase_id"), "p1");
    assert_int_equal(num(a1, "attempt"), 1);
    assert_int_equal(num(a1, "timeout_ms"), 300000);
    assert_true(json_is_null(json_object_get(a1, "model")));
    char expected[256];
    snprintf(expected, sizeof expected, "plan cats in a dry tone for the task (%s)", id);
    assert_string_equal(str(a1, "prompt"), expected);

    st = status_of(f, "wf-demo", id);
    assert_string_equal(str(st, "status"), "running");
    assert_false(json_is_null(json_object_get(st, "started_at")));
    json_decref(st);

    result(f, "W1", a1, "completed", "PLAN-OUT {{topic}}", NULL);
    json_t *ack = take(f, "result_ack", "W1");
    assert_non_null(ack);
    assert_int_equal(num(ack, "attempt"), 1);
    json_decref(ack);
    json_t *a2 = take(f, "assign", "W1");
    assert_non_null(a2);
    assert_string_equal(str(a2, "phase_id"), "p2");
    assert_string_equal(str(a2, "prompt"), "draft from [PLAN-OUT {{topic}}] {{unknown}}");

    /* a repeat of phase 1's result is acked and changes nothing */
    result(f, "W1", a1, "completed", "SOMETHING ELSE", NULL);
    ack = take(f, "result_ack", "W1");
    assert_non_null(ack);
    json_decref(ack);
    json_decref(a1);

    result(f, "W1", a2, "completed", "DRAFT", NULL);
    json_decref(take(f, "result_ack", "W1"));
    json_decref(a2);
    json_t *a3 = take(f, "assign", "W1");
    assert_non_null(a3);
    snprintf(expected, sizeof expected, "review [PLAN-OUT {{topic}}] [DRAFT] wf-demo the task");
    assert_string_equal(str(a3, "prompt"), expected);
    assert_string_equal(str(a3, "model"), "big");
    assert_int_equal(num(a3, "timeout_ms"), 7000);

    json_t *body;
    assert_int_equal(call(f, "execution.active", json_pack("{s:i}", "limit", 5), &body), 200);
    assert_int_equal(json_array_size(body), 1);
    assert_string_equal(str(json_array_get(body, 0), "current_phase"), "p3");
    json_decref(body);

    result(f, "W1", a3, "completed", "REVIEW", NULL);
    json_decref(a3);
    st = status_of(f, "wf-demo", id);
    assert_string_equal(str(st, "status"), "completed");
    assert_int_equal(num(st, "completed_phases"), 3);
    assert_true(json_is_null(json_object_get(st, "current_phase")));
    assert_true(json_is_null(json_object_get(st, "error")));
    assert_false(json_is_null(json_object_get(st, "completed_at")));
    json_decref(st);
    assert_int_equal(broker_engine_active_count(f->engine), 0);

    snprintf(sql, sizeof sql, "SELECT output = 'PLAN-OUT {{topic}}' FROM phases WHERE "
                              "execution_id='%s' AND phase_id='p1'", id);
    assert_int_equal(db_int(f, sql), 1);
    snprintf(sql, sizeof sql, "SELECT count(*) FROM attempts WHERE execution_id='%s'", id);
    assert_int_equal(db_int(f, sql), 3);

    /* the event history, in order, on PUB and in the log */
    const char *history[] = {"ExecutionStarted", "PhaseQueued",    "PhaseStarted",
                             "PhaseCompleted",   "PhaseQueued",    "PhaseStarted",
                             "PhaseCompleted",   "PhaseQueued",    "PhaseStarted",
                             "PhaseCompleted",   "ExecutionCompleted"};
    int64_t last_seq = 0;
    for (size_t i = 0; i < sizeof history / sizeof history[0]; i++) {
        json_t *ev = take(f, "event", id);
        assert_non_null(ev);
        if (strcmp(str(ev, "type"), history[i]) != 0)
            fail_msg("event %zu is %s, expected %s", i, str(ev, "type"), history[i]);
        assert_true(num(ev, "seq") > last_seq);
        last_seq = num(ev, "seq");
        json_decref(ev);
    }
    assert_null(take(f, "event", id));
    snprintf(sql, sizeof sql, "SELECT count(*) FROM events WHERE execution_id='%s'", id);
    assert_int_equal(db_int(f, sql), 11);
}

/* Every event on PUB carries the execution's status object as it is after the
 * event (the last one exactly what execution.status answers), the event log
 * does not keep it, and a finished execution leaves memory while every query
 * still answers it from SQLite. */
static void test_event_status_and_eviction(void **state)
{
    fx_t *f = *state;
    create_workflow(f, "wf-demo", 3);
    char id[BROKER_EXEC_ID_SIZE];
    start(f, "wf-demo", id);
    assert_non_null(broker_engine_find(f->engine, id));
    ready(f, "W1", 1, NULL);
    for (int i = 0; i < 3; i++) {
        json_t *a = take(f, "assign", "W1");
        assert_non_null(a);
        result(f, "W1", a, "completed", "OUT", NULL);
        json_decref(a);
    }
    /* evicted: no longer in memory, every query still answers */
    assert_null(broker_engine_find(f->engine, id));
    assert_int_equal(broker_engine_active_count(f->engine), 0);
    json_t *final = status_of(f, "wf-demo", id);
    assert_string_equal(str(final, "status"), "completed");
    json_t *body;
    assert_int_equal(call(f, "execution.get", json_pack("{s:s}", "execution_id", id), &body),
                     200);
    assert_string_equal(str(body, "status"), "completed");
    assert_int_equal(json_array_size(json_object_get(body, "phases")), 3);
    json_decref(body);
    assert_int_equal(call(f, "execution.state", json_pack("{s:s}", "execution_id", id), &body),
                     200);
    json_decref(body);
    assert_int_equal(call(f, "execution.output",
                          json_pack("{s:s, s:s}", "execution_id", id, "phase_id", "p2"), &body),
                     200);
    json_decref(body);
    assert_int_equal(call(f, "execution.list",
                          json_pack("{s:n, s:s, s:i, s:i}", "workflow_id", "status", "completed",
                                    "page", 1, "page_size", 10),
                          &body),
                     200);
    assert_int_equal(num(body, "total"), 1);
    json_decref(body);
    assert_int_equal(call(f, "execution.active", json_pack("{s:i}", "limit", 5), &body), 200);
    assert_int_equal(json_array_size(body), 0);
    json_decref(body);

    /* type, status, current_phase, completed_phases after each event */
    const struct {
        const char *type, *status, *current;
        int completed;
    } want[] = {
        {"ExecutionStarted", "pending", "p1", 0},   {"PhaseQueued", "pending", "p1", 0},
        {"PhaseStarted", "running", "p1", 0},       {"PhaseCompleted", "running", NULL, 1},
        {"PhaseQueued", "running", "p2", 1},        {"PhaseStarted", "running", "p2", 1},
        {"PhaseCompleted", "running", NULL, 2},     {"PhaseQueued", "running", "p3", 2},
        {"PhaseStarted", "running", "p3", 2},       {"PhaseCompleted", "running", NULL, 3},
        {"ExecutionCompleted", "completed", NULL, 3},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        json_t *ev = take(f, "event", id);
        assert_non_null(ev);
        assert_string_equal(str(ev, "type"), want[i].type);
        json_t *st = json_object_get(ev, "status");
        if (!json_is_object(st))
            fail_msg("event %zu (%s) has no status", i, want[i].type);
        assert_int_equal(json_object_size(st), 9);
        assert_string_equal(str(st, "execution_id"), id);
        assert_string_equal(str(st, "workflow_id"), "wf-demo");
        if (strcmp(str(st, "status"), want[i].status) != 0)
            fail_msg("event %zu (%s): status %s, expected %s", i, want[i].type, str(st, "status"),
                     want[i].status);
        if (want[i].current)
            assert_string_equal(str(st, "current_phase"), want[i].current);
        else
            assert_true(json_is_null(json_object_get(st, "current_phase")));
        assert_int_equal(num(st, "completed_phases"), want[i].completed);
        assert_int_equal(num(st, "total_phases"), 3);
        assert_int_equal(json_is_null(json_object_get(st, "started_at")), i < 2);
        if (i == sizeof want / sizeof want[0] - 1 && !json_equal(st, final))
            fail_msg("the last event's status differs from execution.status");
        json_decref(ev);
    }
    json_decref(final);

    /* the log keeps the event data alone */
    assert_int_equal(call(f, "events.replay",
                          json_pack("{s:s, s:i, s:i}", "execution_id", id, "after_seq", 0,
                                    "limit", 100),
                          &body),
                     200);
    size_t i;
    json_t *ev;
    json_array_foreach(json_object_get(body, "events"), i, ev)
    {
        assert_null(json_object_get(ev, "status"));
        assert_null(json_object_get(json_object_get(ev, "data"), "status"));
    }
    assert_int_equal(json_array_size(json_object_get(body, "events")), 11);
    json_decref(body);
}

/* A phase of an execution under way goes before the first phase of a newer
 * execution, whatever order they became ready in; new ones keep theirs. */
static void test_under_way_before_new(void **state)
{
    fx_t *f = *state;
    create_workflow(f, "wf-demo", 3);
    char a[BROKER_EXEC_ID_SIZE], b[BROKER_EXEC_ID_SIZE], c[BROKER_EXEC_ID_SIZE];
    start(f, "wf-demo", a);
    ready(f, "W1", 1, NULL);
    json_t *assign = take(f, "assign", "W1");
    assert_string_equal(str(assign, "execution_id"), a);
    start(f, "wf-demo", b);
    start(f, "wf-demo", c);
    const char *expected[][2] = {{a, "p2"}, {a, "p3"}, {b, "p1"}, {b, "p2"}, {b, "p3"},
                                 {c, "p1"}, {c, "p2"}, {c, "p3"}};
    for (size_t i = 0; i < sizeof expected / sizeof *expected; i++) {
        result(f, "W1", assign, "completed", "out", NULL);
        json_decref(assign);
        json_decref(take(f, "result_ack", "W1"));
        assign = take(f, "assign", "W1");
        assert_non_null(assign);
        assert_string_equal(str(assign, "execution_id"), expected[i][0]);
        assert_string_equal(str(assign, "phase_id"), expected[i][1]);
    }
    json_decref(assign);
}

static void test_failure_skips_later_phases(void **state)
{
    fx_t *f = *state;
    create_workflow(f, "wf-demo", 3);
    char id[BROKER_EXEC_ID_SIZE];
    start(f, "wf-demo", id);
    ready(f, "W1", 1, NULL);
    json_t *a1 = take(f, "assign", "W1");
    result(f, "W1", a1, "failed", "partial", "the agent gave up");
    json_decref(a1);
    json_t *st = status_of(f, "wf-demo", id);
    assert_string_equal(str(st, "status"), "failed");
    assert_string_equal(str(st, "error"), "Phase p1 failed: the agent gave up");
    assert_true(json_is_null(json_object_get(st, "current_phase")));
    json_decref(st);
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM phases WHERE execution_id='%s' AND "
                              "status='skipped'", id);
    assert_int_equal(db_int(f, sql), 2);
    snprintf(sql, sizeof sql, "SELECT count(*) FROM attempts WHERE execution_id='%s' AND "
                              "status='failed' AND exit_code=3", id);
    assert_int_equal(db_int(f, sql), 1);
    assert_int_equal(count_sent(f, "assign"), 0);
    /* the slot is free again: new work goes to W1 */
    char id2[BROKER_EXEC_ID_SIZE];
    start(f, "wf-demo", id2);
    json_t *next = take(f, "assign", "W1");
    assert_non_null(next);
    assert_string_equal(str(next, "execution_id"), id2);
    json_decref(next);
}

/* A silent worker is dead after liveness intervals; its attempt runs again on
 * another worker; when it wakes up, its stale result is acked and dropped. */
static void test_lost_worker_retry_and_fencing(void **state)
{
    fx_t *f = *state;
    create_workflow(f, "wf-demo", 3);
    char id[BROKER_EXEC_ID_SIZE];
    start(f, "wf-demo", id);
    ready(f, "W1", 1, NULL);
    json_t *a1 = take(f, "assign", "W1");
    assert_non_null(a1);
    ready(f, "W2", 1, NULL);
    assert_int_equal(count_sent(f, "assign"), 0);

    /* W2 keeps talking, W1 falls silent */
    f->now += HB * LIVENESS - 10;
    worker_send(f, "W2", SYN_MSG_HEARTBEAT, json_object());
    broker_engine_tick(f->engine, f->now);
    turn(f);
    assert_int_equal(count_sent(f, "assign"), 0);
    f->now += 20;
    broker_engine_tick(f->engine, f->now);
    turn(f);
    json_t *a2 = take(f, "assign", "W2");
    assert_non_null(a2);
    assert_string_equal(str(a2, "phase_id"), "p1");
    assert_int_equal(num(a2, "attempt"), 2);

    /* W1 wakes up: unknown now, told to register; it does, still running attempt 1 */
    worker_send(f, "W1", SYN_MSG_HEARTBEAT, json_object());
    json_t *bye = take(f, "disconnect", "W1");
    assert_non_null(bye);
    json_decref(bye);
    ready(f, "W1", 1, json_pack("[o]", ref_of(a1)));
    json_t *cancel = take(f, "cancel", "W1");
    assert_non_null(cancel);
    assert_int_equal(num(cancel, "attempt"), 1);
    json_decref(cancel);
    /* its slot is taken by the stale attempt until it answers */
    char other[BROKER_EXEC_ID_SIZE];
    start(f, "wf-demo", other);
    assert_null(take(f, "assign", "W1"));
    result(f, "W1", a1, "completed", "STALE OUTPUT", NULL);
    json_t *ack = take(f, "result_ack", "W1");
    assert_non_null(ack);
    json_decref(ack);
    json_t *a_other = take(f, "assign", "W1"); /* the slot came back */
    assert_non_null(a_other);
    assert_string_equal(str(a_other, "execution_id"), other);
    json_decref(a_other);

    result(f, "W2", a2, "completed", "REAL OUTPUT", NULL);
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT output FROM phases WHERE execution_id='%s' AND "
                              "phase_id='p1' AND output='REAL OUTPUT'", id);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    sqlite3_stmt *s;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    sqlite3_finalize(s);
    sqlite3_close(db);
    snprintf(sql, sizeof sql, "SELECT count(*) FROM attempts WHERE execution_id='%s' AND "
                              "phase_id='p1' AND status='lost'", id);
    assert_int_equal(db_int(f, sql), 1);
    json_t *a3 = take(f, "assign", "W2");
    assert_non_null(a3);
    assert_string_equal(str(a3, "prompt"), "draft from [REAL OUTPUT] {{unknown}}");
    json_decref(a3);
    json_decref(a1);
    json_decref(a2);
}

static void test_max_attempts_one_fails(void **state)
{
    fx_t *f = *state;
    create_workflow(f, "wf-once", 1);
    char id[BROKER_EXEC_ID_SIZE];
    start(f, "wf-once", id);
    ready(f, "W1", 1, NULL);
    json_t *a1 = take(f, "assign", "W1");
    assert_non_null(a1);
    json_decref(a1);
    worker_send(f, "W1", SYN_MSG_DISCONNECT, json_object());
    json_t *st = status_of(f, "wf-once", id);
    assert_string_equal(str(st, "status"), "failed");
    const char *error = str(st, "error");
    assert_non_null(strstr(error, "Phase p1 failed: worker lost 1 time (max_attempts 1)"));
    assert_non_null(strstr(error, "disconnected"));
    json_decref(st);
    ready(f, "W2", 1, NULL);
    assert_int_equal(count_sent(f, "assign"), 0); /* never run twice */
}

/* Stopping the broker mid-phase: the new one waits for the worker to come back
 * with its attempt and adopts it (no second run); an attempt whose worker does
 * not return within the liveness window runs again. */
static void test_restart_adopts_or_requeues(void **state)
{
    fx_t *f = *state;
    create_workflow(f, "wf-demo", 3);
    char kept[BROKER_EXEC_ID_SIZE], orphan[BROKER_EXEC_ID_SIZE], waiting[BROKER_EXEC_ID_SIZE];
    start(f, "wf-demo", kept);
    start(f, "wf-demo", orphan);
    ready(f, "W1", 1, NULL);
    ready(f, "W2", 1, NULL);
    json_t *ak = take(f, "assign", "W1");
    json_t *ao = take(f, "assign", "W2");
    assert_non_null(ak);
    assert_non_null(ao);
    assert_string_equal(str(ak, "execution_id"), kept);
    start(f, "wf-demo", waiting); /* no slot: stays queued */

    close_all(f);
    json_array_clear(f->sent);
    open_all(f);
    assert_int_equal(broker_engine_recover(f->engine, f->now), 3);
    turn(f);
    assert_int_equal(broker_engine_active_count(f->engine), 3);

    /* W1 comes back with its attempt: adopted, nothing re-sent */
    ready(f, "W1", 1, json_pack("[o]", ref_of(ak)));
    assert_int_equal(count_sent(f, "assign"), 0);
    assert_int_equal(count_sent(f, "cancel"), 0);
    json_t *st = status_of(f, "wf-demo", kept);
    assert_string_equal(str(st, "status"), "running");
    json_decref(st);

    /* W2 never returns: after the window its attempt is lost and requeued */
    f->now += HB * LIVENESS + 1;
    worker_send(f, "W1", SYN_MSG_HEARTBEAT, json_object());
    broker_engine_tick(f->engine, f->now);
    turn(f);
    ready(f, "W3", 2, NULL);
    json_t *retry = take(f, "assign", "W3");
    assert_non_null(retry);
    assert_string_equal(str(retry, "execution_id"), orphan);
    assert_int_equal(num(retry, "attempt"), 2);
    json_t *queued = take(f, "assign", "W3");
    assert_non_null(queued);
    assert_string_equal(str(queued, "execution_id"), waiting);
    assert_int_equal(num(queued, "attempt"), 1);

    result(f, "W1", ak, "completed", "adopted output", NULL);
    json_t *next = take(f, "assign", "W1");
    assert_non_null(next);
    assert_string_equal(str(next, "prompt"), "draft from [adopted output] {{unknown}}");
    json_decref(next);
    json_decref(ak);
    json_decref(ao);
    json_decref(retry);
    json_decref(queued);
}

static void test_status_lookup_by_prefix(void **state)
{
    fx_t *f = *state;
    create_workflow(f, "wf-demo", 3);
    create_workflow(f, "wf-other", 3);
    char ids[40][BROKER_EXEC_ID_SIZE];
    for (int i = 0; i < 40; i++)
        start(f, "wf-demo", ids[i]);
    json_t *body;
    /* unique prefix */
    char prefix[16];
    snprintf(prefix, sizeof prefix, "%.13s", ids[7]);
    int status = call(f, "execution.status",
                      json_pack("{s:s, s:s}", "workflow_id", "wf-demo", "execution_id", prefix),
                      &body);
    /* 12 random hex digits: 8 of them make a unique prefix among 40 */
    assert_int_equal(status, 200);
    assert_string_equal(str(body, "execution_id"), ids[7]);
    json_decref(body);
    /* none */
    assert_int_equal(call(f, "execution.status",
                          json_pack("{s:s, s:s}", "workflow_id", "wf-demo", "execution_id",
                                    "exec-zz"),
                          &body),
                     404);
    expect_detail(body, "Execution not found: exec-zz");
    json_decref(body);
    /* ambiguous */
    assert_int_equal(call(f, "execution.status",
                          json_pack("{s:s, s:s}", "workflow_id", "wf-demo", "execution_id",
                                    "exec-"),
                          &body),
                     409);
    const char *d = str(body, "detail");
    assert_memory_equal(d, "Ambiguous execution id exec-: matches exec-", 43);
    assert_non_null(strstr(d, "(more than 5 matches)"));
    json_decref(body);
    /* another workflow's execution */
    assert_int_equal(call(f, "execution.status",
                          json_pack("{s:s, s:s}", "workflow_id", "wf-other", "execution_id",
                                    ids[3]),
                          &body),
                     404);
    char expected[128];
    snprintf(expected, sizeof expected, "Execution %s not found for workflow wf-other", ids[3]);
    expect_detail(body, expected);
    json_decref(body);

    /* active: newest first, limit applied after the filter */
    assert_int_equal(call(f, "execution.active", json_pack("{s:i}", "limit", 3), &body), 200);
    assert_int_equal(json_array_size(body), 3);
    assert_string_equal(str(json_array_get(body, 0), "execution_id"), ids[39]);
    assert_string_equal(str(json_array_get(body, 2), "execution_id"), ids[37]);
    json_decref(body);
    assert_int_equal(call(f, "execution.active", json_pack("{s:i}", "limit", 0), &body), 400);
    json_decref(body);
}

/* Outputs above 1 MiB are cut with the marker; a render over the bound fails the
 * phase with the reason. */
static void test_output_cut_and_render_bound(void **state)
{
    fx_t *f = *state;
    json_t *body;
    json_t *args = json_pack("{s:s, s:s, s:[{s:s, s:s, s:i, s:s}, {s:s, s:s, s:i, s:s}]}", "id",
                             "wf-big", "name", "big", "phases", "phase_id", "p1", "name", "A",
                             "order", 1, "prompt_template", "x", "phase_id", "p2", "name", "B",
                             "order", 2, "prompt_template",
                             "{{p1}}{{p1}}{{p1}}{{p1}}{{p1}}{{p1}}{{p1}}{{p1}}{{p1}}");
    assert_int_equal(call(f, "workflow.create", args, &body), 201);
    json_decref(body);
    char id[BROKER_EXEC_ID_SIZE];
    start(f, "wf-big", id);
    ready(f, "W1", 1, NULL);
    json_t *a1 = take(f, "assign", "W1");
    size_t big = 2 * 1024 * 1024;
    char *output = malloc(big + 1);
    memset(output, 'a', big);
    output[big] = '\0';
    output[1024 * 1024 - 1] = '\xc3'; /* a 2-byte character across the cut */
    output[1024 * 1024] = '\xa9';
    result(f, "W1", a1, "completed", output, NULL);
    free(output);
    json_decref(a1);
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT length(CAST(output AS BLOB)) FROM phases WHERE "
                              "execution_id='%s' AND phase_id='p1'", id);
    assert_int_equal(db_int(f, sql),
                     1024 * 1024 - 1 + (int64_t)strlen(BROKER_OUTPUT_MARKER));
    snprintf(sql, sizeof sql, "SELECT output LIKE '%%[output truncated: more than 1 MiB]' FROM "
                              "phases WHERE execution_id='%s' AND phase_id='p1'", id);
    assert_int_equal(db_int(f, sql), 1);
    /* 9 × ~1 MiB > 8 MiB: phase 2 fails at render time, never dispatched */
    assert_int_equal(count_sent(f, "assign"), 0);
    json_t *st = status_of(f, "wf-big", id);
    assert_string_equal(str(st, "status"), "failed");
    assert_non_null(strstr(str(st, "error"), "Phase p2 failed: rendered prompt exceeds"));
    json_decref(st);
}

/* Messages before READY get a DISCONNECT; progress from a stale attempt gets a
 * CANCEL once; an attempt that never gets a result fails at the backstop. */
static void test_unregistered_stale_progress_and_backstop(void **state)
{
    fx_t *f = *state;
    worker_send(f, "WX", SYN_MSG_PROGRESS,
                json_pack("{s:s, s:s, s:i, s:s, s:s}", "execution_id", "exec-x", "phase_id",
                          "p", "attempt", 1, "kind", "output", "data", "hi"));
    json_t *bye = take(f, "disconnect", "WX");
    assert_non_null(bye);
    json_decref(bye);

    ready(f, "W1", 2, NULL);
    for (int i = 0; i < 2; i++)
        worker_send(f, "W1", SYN_MSG_PROGRESS,
                    json_pack("{s:s, s:s, s:i, s:s, s:s}", "execution_id", "exec-gone",
                              "phase_id", "p", "attempt", 4, "kind", "output", "data", "x"));
    assert_int_equal(count_sent(f, "cancel"), 1);

    create_workflow(f, "wf-demo", 3);
    char id[BROKER_EXEC_ID_SIZE];
    start(f, "wf-demo", id);
    json_t *a1 = take(f, "assign", "W1");
    assert_non_null(a1);
    /* still quiet long after timeout + grace + window, while heartbeating */
    for (int i = 0; i < 40; i++) {
        f->now += 10 * 1000;
        worker_send(f, "W1", SYN_MSG_HEARTBEAT, json_object());
        broker_engine_tick(f->engine, f->now);
        turn(f);
    }
    json_t *st = status_of(f, "wf-demo", id);
    assert_string_equal(str(st, "status"), "failed");
    assert_non_null(strstr(str(st, "error"), "no result within the timeout of 300 s"));
    json_decref(st);
    json_t *stale = take(f, "cancel", "W1");
    assert_non_null(stale);
    assert_string_equal(str(stale, "execution_id"), "exec-gone");
    json_decref(stale);
    json_t *cancel = take(f, "cancel", "W1");
    assert_non_null(cancel);
    assert_string_equal(str(cancel, "execution_id"), id);
    json_decref(cancel);
    json_decref(a1);
}

/* A second READY on the same connection (the worker was told twice to register)
 * must not lose an ASSIGN that was in flight when the worker wrote it. */
static void test_repeated_ready_keeps_attempts(void **state)
{
    fx_t *f = *state;
    create_workflow(f, "wf-once", 1);
    char id[BROKER_EXEC_ID_SIZE];
    start(f, "wf-once", id);
    ready(f, "W1", 1, NULL);
    json_t *a1 = take(f, "assign", "W1");
    assert_non_null(a1);
    ready(f, "W1", 1, NULL);
    json_t *st = status_of(f, "wf-once", id);
    assert_string_equal(str(st, "status"), "running");
    json_decref(st);
    result(f, "W1", a1, "completed", "done", NULL);
    json_decref(a1);
    st = status_of(f, "wf-once", id);
    assert_string_equal(str(st, "status"), "running"); /* p2 now */
    assert_int_equal(num(st, "completed_phases"), 1);
    json_decref(st);
}

/* An ASSIGN that could not be sent did not run anything: it does not use up
 * max_attempts, and EHOSTUNREACH drops the worker at once. */
static void test_undeliverable_assign(void **state)
{
    fx_t *f = *state;
    create_workflow(f, "wf-once", 1);
    char id[BROKER_EXEC_ID_SIZE];
    start(f, "wf-once", id);
    ready(f, "W1", 1, NULL);
    json_t *a1 = take(f, "assign", "W1");
    assert_non_null(a1);
    syn_msg_t *msg = syn_msg_new_with(SYN_MSG_ASSIGN, json_incref(a1));
    broker_engine_undeliverable(f->engine, "W1", 2, msg, EHOSTUNREACH, f->now);
    syn_msg_destroy(&msg);
    turn(f);
    json_decref(a1);
    json_t *body;
    assert_int_equal(call(f, "health", json_object(), &body), 200);
    assert_int_equal(num(body, "workers"), 0);
    json_decref(body);
    ready(f, "W2", 1, NULL);
    json_t *a2 = take(f, "assign", "W2");
    assert_non_null(a2);
    assert_int_equal(num(a2, "attempt"), 2);
    result(f, "W2", a2, "completed", "ok", NULL);
    json_decref(a2);
    json_t *st = status_of(f, "wf-once", id);
    assert_string_equal(str(st, "status"), "running");
    assert_int_equal(num(st, "completed_phases"), 1);
    json_decref(st);
}

/* --- issue 4: control, queries, events ------------------------------------- */

static void ready_with(fx_t *f, const char *identity, int slots, json_t *providers)
{
    worker_send(f, identity, SYN_MSG_READY,
                json_pack("{s:s, s:i, s:o, s:[]}", "worker", identity, "slots", slots,
                          "providers", providers, "running"));
}

static void progress(fx_t *f, const char *identity, const json_t *assign, const char *kind,
                     const char *data)
{
    worker_send(f, identity, SYN_MSG_PROGRESS,
                json_pack("{s:O, s:O, s:O, s:s, s:s}", "execution_id",
                          json_object_get(assign, "execution_id"), "phase_id",
                          json_object_get(assign, "phase_id"), "attempt",
                          json_object_get(assign, "attempt"), "kind", kind, "data", data));
}

/* A control op on an execution: the status, with the body in *body. */
static int control(fx_t *f, const char *op, const char *id, json_t *extra, json_t **body)
{
    json_t *args = json_pack("{s:s}", "execution_id", id);
    if (extra) {
        json_object_update(args, extra);
        json_decref(extra);
    }
    return call(f, op, args, body);
}

static void expect_400(fx_t *f, const char *op, const char *id, json_t *extra, const char *text)
{
    json_t *body;
    int status = control(f, op, id, extra, &body);
    if (status != 400)
        fail_msg("%s: status %d, expected 400", op, status);
    expect_detail(body, text);
    json_decref(body);
}

/* The types of the events sent so far for one execution (taken out of the log). */
static json_t *event_types(fx_t *f, const char *id)
{
    json_t *types = json_array(), *ev;
    while ((ev = take(f, "event", id))) {
        json_array_append_new(types, json_string(str(ev, "type")));
        json_decref(ev);
    }
    return types;
}

static bool has_type(const json_t *types, const char *type)
{
    size_t i;
    json_t *t;
    json_array_foreach(types, i, t)
        if (strcmp(json_string_value(t), type) == 0)
            return true;
    return false;
}

/* The first event of a type for an execution (taken), or NULL. */
static json_t *take_event(fx_t *f, const char *id, const char *type)
{
    size_t i;
    json_t *m;
    json_array_foreach(f->sent, i, m)
    {
        json_t *fields = json_object_get(m, "fields");
        if (strcmp(str(m, "type"), "event") == 0 && strcmp(str(m, "identity"), id) == 0 &&
            strcmp(str(fields, "type"), type) == 0) {
            json_t *out = json_incref(fields);
            json_array_remove(f->sent, i);
            return out;
        }
    }
    return NULL;
}

static json_t *detail_of(fx_t *f, const char *id)
{
    json_t *body;
    assert_int_equal(call(f, "execution.get", json_pack("{s:s}", "execution_id", id), &body),
                     200);
    return body;
}

static json_t *phase_in(json_t *detail, const char *phase_id)
{
    size_t i;
    json_t *p;
    json_array_foreach(json_object_get(detail, "phases"), i, p)
        if (strcmp(str(p, "phase_id"), phase_id) == 0)
            return p;
    return NULL;
}

/* Every 400 rule of cancel/pause/resume/inject, word for word, and the reply of
 * a successful control call. */
static void test_control_rules(void **state)
{
    fx_t *f = *state;
    create_workflow(f, "wf-demo", 3);
    char id[BROKER_EXEC_ID_SIZE], done[BROKER_EXEC_ID_SIZE];
    start(f, "wf-demo", id);
    json_t *body;

    expect_400(f, "execution.resume", id, NULL, "Cannot resume execution in state pending");
    assert_int_equal(control(f, "execution.pause", id, NULL, &body), 200);
    char *text = json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS);
    char expected[256];
    snprintf(expected, sizeof expected,
             "{\"error\":null,\"execution_id\":\"%s\",\"message\":\"Execution paused\","
             "\"state\":\"paused\",\"success\":true}",
             id);
    assert_string_equal(text, expected);
    free(text);
    json_decref(body);
    expect_400(f, "execution.pause", id, NULL, "Cannot pause execution in state paused");
    assert_int_equal(control(f, "execution.state", id, NULL, &body), 200);
    assert_string_equal(str(body, "state"), "paused");
    assert_string_equal(str(body, "execution_id"), id);
    assert_int_equal(json_object_size(body), 2);
    json_decref(body);
    assert_int_equal(control(f, "execution.resume", id, NULL, &body), 200);
    assert_string_equal(str(body, "state"), "pending"); /* nothing had run yet */
    assert_string_equal(str(body, "message"), "Execution resumed");
    json_decref(body);

    assert_int_equal(control(f, "execution.inject", id,
                             json_pack("{s:s}", "message", "hello"), &body),
                     200);
    assert_string_equal(str(body, "message"), "Message queued");
    assert_string_equal(str(body, "state"), "pending");
    assert_true(json_is_true(json_object_get(body, "success")));
    json_decref(body);
    expect_400(f, "execution.inject", id, json_pack("{s:s}", "message", ""),
               "bad request: message must not be empty");
    expect_400(f, "execution.inject", id, json_pack("{s:s, s:s}", "message", "x", "role", "admin"),
               "bad request: role must be \"user\" or \"system\"");
    expect_400(f, "execution.inject", id, json_object(), "bad request: message is required");

    assert_int_equal(control(f, "execution.cancel", id, json_pack("{s:n}", "reason"), &body),
                     200);
    text = json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS);
    snprintf(expected, sizeof expected,
             "{\"error\":null,\"execution_id\":\"%s\",\"message\":\"Cancel signal queued\","
             "\"state\":\"cancelled\",\"success\":true}",
             id);
    assert_string_equal(text, expected);
    free(text);
    json_decref(body);
    json_t *st = status_of(f, "wf-demo", id);
    assert_string_equal(str(st, "status"), "cancelled");
    assert_string_equal(str(st, "error"), "Cancelled by user");
    assert_false(json_is_null(json_object_get(st, "completed_at")));
    json_decref(st);

    expect_400(f, "execution.cancel", id, NULL, "Cannot cancel execution in state cancelled");
    expect_400(f, "execution.pause", id, NULL, "Cannot pause execution in state cancelled");
    expect_400(f, "execution.resume", id, NULL, "Cannot resume execution in state cancelled");
    expect_400(f, "execution.inject", id, json_pack("{s:s}", "message", "late"),
               "Cannot inject into terminal execution");
    assert_int_equal(control(f, "execution.state", id, NULL, &body), 200);
    assert_string_equal(str(body, "state"), "cancelled");
    json_decref(body);

    /* a completed one */
    start(f, "wf-demo", done);
    ready(f, "W1", 1, NULL);
    for (int i = 0; i < 3; i++) {
        json_t *a = take(f, "assign", "W1");
        assert_non_null(a);
        result(f, "W1", a, "completed", "ok", NULL);
        json_decref(a);
    }
    expect_400(f, "execution.cancel", done, NULL, "Cannot cancel execution in state completed");
    expect_400(f, "execution.pause", done, NULL, "Cannot pause execution in state completed");
    expect_400(f, "execution.resume", done, NULL, "Cannot resume execution in state completed");
    expect_400(f, "execution.inject", done, json_pack("{s:s}", "message", "x"),
               "Cannot inject into terminal execution");

    /* prefixes: none → 404, several → 409, unique → found */
    assert_int_equal(control(f, "execution.cancel", "exec-zz", NULL, &body), 404);
    expect_detail(body, "Execution not found: exec-zz");
    json_decref(body);
    assert_int_equal(control(f, "execution.pause", "exec-", NULL, &body), 409);
    assert_memory_equal(str(body, "detail"), "Ambiguous execution id exec-", 28);
    json_decref(body);
    char prefix[20];
    snprintf(prefix, sizeof prefix, "%.16s", done);
    assert_int_equal(control(f, "execution.state", prefix, NULL, &body), 200);
    assert_string_equal(str(body, "execution_id"), done);
    assert_string_equal(str(body, "state"), "completed");
    json_decref(body);
    assert_int_equal(call(f, "execution.cancel", json_object(), &body), 400);
    expect_detail(body, "bad request: execution_id is required");
    json_decref(body);
}

/* Cancel while a phase runs: CANCEL to its worker at once, the execution is
 * cancelled with the reason, the phase cancelled, later phases skipped, nothing
 * more dispatched; the worker's slot frees when its (stale) result arrives. */
static void test_cancel_running(void **state)
{
    fx_t *f = *state;
    create_workflow(f, "wf-demo", 3);
    char id[BROKER_EXEC_ID_SIZE], other[BROKER_EXEC_ID_SIZE];
    start(f, "wf-demo", id);
    ready(f, "W1", 1, NULL);
    json_t *a1 = take(f, "assign", "W1");
    assert_non_null(a1);
    json_t *body;
    assert_int_equal(control(f, "execution.cancel", id,
                             json_pack("{s:s}", "reason", "wrong inputs"), &body),
                     200);
    assert_string_equal(str(body, "state"), "cancelled");
    json_decref(body);
    json_t *cancel = take(f, "cancel", "W1");
    assert_non_null(cancel);
    assert_string_equal(str(cancel, "execution_id"), id);
    assert_string_equal(str(cancel, "phase_id"), "p1");
    assert_int_equal(num(cancel, "attempt"), 1);
    json_decref(cancel);
    json_t *st = status_of(f, "wf-demo", id);
    assert_string_equal(str(st, "status"), "cancelled");
    assert_string_equal(str(st, "error"), "wrong inputs");
    assert_true(json_is_null(json_object_get(st, "current_phase")));
    json_decref(st);

    start(f, "wf-demo", other);
    assert_null(take(f, "assign", "W1")); /* the slot is still busy */
    result(f, "W1", a1, "cancelled", "", "cancelled");
    json_t *ack = take(f, "result_ack", "W1");
    assert_non_null(ack);
    json_decref(ack);
    json_t *next = take(f, "assign", "W1");
    assert_non_null(next);
    assert_string_equal(str(next, "execution_id"), other);
    json_decref(next);
    json_decref(a1);

    json_t *d = detail_of(f, id);
    assert_string_equal(str(phase_in(d, "p1"), "status"), "cancelled");
    assert_string_equal(str(phase_in(d, "p2"), "status"), "skipped");
    assert_string_equal(str(phase_in(d, "p3"), "status"), "skipped");
    json_t *attempt = json_array_get(json_object_get(phase_in(d, "p1"), "attempts"), 0);
    assert_string_equal(str(attempt, "status"), "cancelled");
    assert_string_equal(str(attempt, "worker"), "W1");
    json_decref(d);

    json_t *types = event_types(f, id);
    assert_string_equal(json_string_value(json_array_get(types, json_array_size(types) - 1)),
                        "ExecutionCancelled");
    json_decref(types);
    assert_int_equal(call(f, "events.replay",
                          json_pack("{s:s, s:i, s:i}", "execution_id", id, "after_seq", 0,
                                    "limit", 100),
                          &body),
                     200);
    assert_true(json_is_true(json_object_get(body, "terminal")));
    json_t *events = json_object_get(body, "events");
    json_t *last = json_array_get(events, json_array_size(events) - 1);
    assert_string_equal(str(last, "type"), "ExecutionCancelled");
    assert_string_equal(str(json_object_get(last, "data"), "error"), "wrong inputs");
    assert_string_equal(str(json_object_get(last, "data"), "phase_id"), "p1");
    json_decref(body);
}

/* Pause during phase 1 of 3: phase 1 finishes and keeps its result, phase 2 does
 * not start however long it waits; messages injected meanwhile land in phase 2's
 * prompt after resume, and only there. */
static void test_pause_inject_resume(void **state)
{
    fx_t *f = *state;
    create_workflow(f, "wf-demo", 3);
    char id[BROKER_EXEC_ID_SIZE];
    start(f, "wf-demo", id);
    ready(f, "W1", 2, NULL);
    json_t *a1 = take(f, "assign", "W1");
    json_t *body;
    assert_int_equal(control(f, "execution.pause", id, json_pack("{s:s}", "reason", "look"),
                             &body),
                     200);
    json_decref(body);
    json_t *paused = take_event(f, id, "ExecutionPaused");
    assert_non_null(paused);
    assert_string_equal(str(json_object_get(paused, "data"), "reason"), "look");
    assert_string_equal(str(json_object_get(paused, "data"), "phase_id"), "p1");
    json_decref(paused);
    result(f, "W1", a1, "completed", "OUT1", NULL);
    json_decref(a1);
    for (int i = 0; i < 50; i++) {
        f->now += 100;
        worker_send(f, "W1", SYN_MSG_HEARTBEAT, json_object());
        broker_engine_tick(f->engine, f->now);
        turn(f);
    }
    assert_int_equal(count_sent(f, "assign"), 0);
    json_t *st = status_of(f, "wf-demo", id);
    assert_string_equal(str(st, "status"), "paused");
    assert_int_equal(num(st, "completed_phases"), 1);
    json_decref(st);
    json_t *d = detail_of(f, id);
    assert_string_equal(str(phase_in(d, "p1"), "status"), "completed");
    assert_string_equal(str(phase_in(d, "p1"), "output_preview"), "OUT1");
    assert_string_equal(str(phase_in(d, "p2"), "status"), "pending");
    json_decref(d);

    assert_int_equal(control(f, "execution.inject", id,
                             json_pack("{s:s, s:s}", "message", "focus on tests", "role", "user"),
                             &body),
                     200);
    assert_string_equal(str(body, "state"), "paused");
    json_decref(body);
    assert_int_equal(control(f, "execution.inject", id,
                             json_pack("{s:s, s:s}", "message", "be terse", "role", "system"),
                             &body),
                     200);
    json_decref(body);
    assert_int_equal(count_sent(f, "inject"), 0); /* nothing runs: nobody to tell live */
    json_t *injected = take_event(f, id, "MessageInjected");
    assert_non_null(injected);
    assert_string_equal(str(json_object_get(injected, "data"), "message"), "focus on tests");
    assert_false(json_is_true(json_object_get(json_object_get(injected, "data"), "live")));
    json_decref(injected);

    assert_int_equal(control(f, "execution.resume", id, NULL, &body), 200);
    assert_string_equal(str(body, "state"), "running");
    json_decref(body);
    json_t *a2 = take(f, "assign", "W1");
    assert_non_null(a2);
    assert_string_equal(str(a2, "phase_id"), "p2");
    assert_string_equal(str(a2, "prompt"), "draft from [OUT1] {{unknown}}\n\n"
                                           "## Operator messages\n\n"
                                           "- [user] focus on tests\n"
                                           "- [system] be terse\n");
    result(f, "W1", a2, "completed", "OUT2", NULL);
    json_decref(a2);
    json_t *a3 = take(f, "assign", "W1");
    assert_non_null(a3);
    assert_null(strstr(str(a3, "prompt"), "Operator messages"));
    json_decref(a3);
    json_t *types = event_types(f, id);
    assert_true(has_type(types, "ExecutionResumed"));
    json_decref(types);
    d = detail_of(f, id);
    json_t *msgs = json_object_get(d, "operator_messages");
    assert_int_equal(json_array_size(msgs), 2);
    assert_string_equal(str(json_array_get(msgs, 1), "phase_id"), "p2");
    json_decref(d);

    /* paused before anything ran: a free worker gets nothing until resume */
    char filler[BROKER_EXEC_ID_SIZE], later[BROKER_EXEC_ID_SIZE];
    start(f, "wf-demo", filler); /* takes W1's second slot */
    json_decref(take(f, "assign", "W1"));
    start(f, "wf-demo", later);
    assert_int_equal(control(f, "execution.pause", later, NULL, &body), 200);
    json_decref(body);
    ready(f, "W9", 1, NULL);
    assert_null(take(f, "assign", "W9"));
    st = status_of(f, "wf-demo", later);
    assert_string_equal(str(st, "status"), "paused");
    assert_string_equal(str(st, "current_phase"), "p1");
    json_decref(st);
    assert_int_equal(control(f, "execution.resume", later, NULL, &body), 200);
    assert_string_equal(str(body, "state"), "pending");
    json_decref(body);
    json_t *first = take(f, "assign", "W9");
    assert_non_null(first);
    assert_string_equal(str(first, "execution_id"), later);
    json_decref(first);
    st = status_of(f, "wf-demo", later);
    assert_string_equal(str(st, "status"), "running");
    assert_false(json_is_null(json_object_get(st, "started_at")));
    json_decref(st);
}

/* A message injected while a phase runs goes live to its worker and waits for
 * the next phase's prompt; a retry of that phase carries the same messages;
 * waiting messages are bounded. Injected messages survive a broker restart. */
static void test_inject_live_and_restart(void **state)
{
    fx_t *f = *state;
    create_workflow(f, "wf-demo", 3);
    char id[BROKER_EXEC_ID_SIZE];
    start(f, "wf-demo", id);
    ready(f, "W1", 1, NULL);
    json_t *a1 = take(f, "assign", "W1");
    json_t *body;
    assert_int_equal(control(f, "execution.inject", id,
                             json_pack("{s:s}", "message", "use the cache"), &body),
                     200);
    assert_string_equal(str(body, "state"), "running");
    json_decref(body);
    json_t *live = take(f, "inject", "W1");
    assert_non_null(live);
    assert_string_equal(str(live, "execution_id"), id);
    assert_string_equal(str(live, "phase_id"), "p1");
    assert_int_equal(num(live, "attempt"), 1);
    assert_string_equal(str(live, "role"), "user");
    assert_string_equal(str(live, "message"), "use the cache");
    json_decref(live);
    json_t *ev = take_event(f, id, "MessageInjected");
    assert_true(json_is_true(json_object_get(json_object_get(ev, "data"), "live")));
    json_decref(ev);

    /* restart: the waiting message is still there */
    close_all(f);
    json_array_clear(f->sent);
    open_all(f);
    assert_int_equal(broker_engine_recover(f->engine, f->now), 1);
    turn(f);
    ready(f, "W1", 1, json_pack("[o]", ref_of(a1)));
    result(f, "W1", a1, "completed", "OUT1", NULL);
    json_decref(a1);
    json_t *a2 = take(f, "assign", "W1");
    assert_non_null(a2);
    assert_non_null(strstr(str(a2, "prompt"), "## Operator messages\n\n- [user] use the cache\n"));
    /* its worker vanishes: the retry carries the same message */
    worker_send(f, "W1", SYN_MSG_DISCONNECT, json_object());
    ready(f, "W2", 1, NULL);
    json_t *again = take(f, "assign", "W2");
    assert_non_null(again);
    assert_int_equal(num(again, "attempt"), 2);
    assert_string_equal(str(again, "prompt"), str(a2, "prompt"));
    json_decref(a2);
    json_decref(again);

    for (int i = 0; i < BROKER_MESSAGES_WAITING_MAX; i++) {
        assert_int_equal(control(f, "execution.inject", id, json_pack("{s:s}", "message", "m"),
                                 &body),
                         200);
        json_decref(body);
    }
    char text[128];
    snprintf(text, sizeof text, "Too many operator messages waiting for execution %s (limit %d)",
             id, BROKER_MESSAGES_WAITING_MAX);
    expect_400(f, "execution.inject", id, json_pack("{s:s}", "message", "one more"), text);
    char *big = malloc(BROKER_MESSAGE_MAX + 2);
    memset(big, 'x', BROKER_MESSAGE_MAX + 1);
    big[BROKER_MESSAGE_MAX + 1] = '\0';
    expect_400(f, "execution.inject", id, json_pack("{s:s}", "message", big),
               "bad request: message is longer than 65536 bytes");
    free(big);
}

/* A workflow with one phase that may be retried. */
static void create_retry_workflow(fx_t *f, const char *id, int retries, double backoff,
                                  int max_attempts)
{
    json_t *body;
    json_t *args = json_pack("{s:s, s:s, s:[{s:s, s:s, s:i, s:s, s:i, s:f, s:i}, "
                             "{s:s, s:s, s:i, s:s}]}",
                             "id", id, "name", "Retry", "phases", "phase_id", "p1", "name", "A",
                             "order", 1, "prompt_template", "try", "retries", retries,
                             "retry_backoff_seconds", backoff, "max_attempts", max_attempts,
                             "phase_id", "p2", "name", "B", "order", 2, "prompt_template",
                             "after [{{p1}}]");
    assert_int_equal(call(f, "workflow.create", args, &body), 201);
    json_decref(body);
}

static void advance_to(fx_t *f, int64_t ms)
{
    f->now += ms;
    worker_send(f, "W1", SYN_MSG_HEARTBEAT, json_object());
    broker_engine_tick(f->engine, f->now);
    turn(f);
}

/* retries: 2 with a 1 s back-off: failed, failed, completed — three attempts in
 * the detail, the waits 1 s then 2 s, PhaseRetrying each time. */
static void test_retries_with_backoff(void **state)
{
    fx_t *f = *state;
    create_retry_workflow(f, "wf-retry", 2, 1.0, 3);
    char id[BROKER_EXEC_ID_SIZE];
    start(f, "wf-retry", id);
    ready(f, "W1", 1, NULL);
    json_t *a1 = take(f, "assign", "W1");
    result(f, "W1", a1, "failed", "", "boom 1");
    json_decref(a1);
    json_t *retrying = take_event(f, id, "PhaseRetrying");
    assert_non_null(retrying);
    json_t *data = json_object_get(retrying, "data");
    assert_int_equal(num(data, "attempt"), 1);
    assert_int_equal(num(data, "next_attempt"), 2);
    assert_string_equal(str(data, "cause"), "agent_failed");
    assert_string_equal(str(data, "reason"), "boom 1");
    assert_true(json_real_value(json_object_get(data, "retry_in_seconds")) == 1.0);
    json_decref(retrying);
    json_t *st = status_of(f, "wf-retry", id);
    assert_string_equal(str(st, "status"), "running");
    assert_string_equal(str(st, "current_phase"), "p1");
    json_decref(st);
    advance_to(f, 999);
    assert_int_equal(count_sent(f, "assign"), 0);
    advance_to(f, 1);
    json_t *a2 = take(f, "assign", "W1");
    assert_non_null(a2);
    assert_int_equal(num(a2, "attempt"), 2);
    result(f, "W1", a2, "failed", "", "timed out after 300 s");
    json_decref(a2);
    retrying = take_event(f, id, "PhaseRetrying");
    assert_string_equal(str(json_object_get(retrying, "data"), "cause"), "timeout");
    assert_true(json_real_value(json_object_get(json_object_get(retrying, "data"),
                                                "retry_in_seconds")) == 2.0);
    json_decref(retrying);
    advance_to(f, 1999);
    assert_int_equal(count_sent(f, "assign"), 0);
    advance_to(f, 1);
    json_t *a3 = take(f, "assign", "W1");
    assert_non_null(a3);
    assert_int_equal(num(a3, "attempt"), 3);
    result(f, "W1", a3, "completed", "finally", NULL);
    json_decref(a3);
    json_t *a4 = take(f, "assign", "W1");
    assert_string_equal(str(a4, "prompt"), "after [finally]");
    json_decref(a4);

    json_t *d = detail_of(f, id);
    json_t *attempts = json_object_get(phase_in(d, "p1"), "attempts");
    assert_int_equal(json_array_size(attempts), 3);
    assert_string_equal(str(json_array_get(attempts, 0), "status"), "failed");
    assert_string_equal(str(json_array_get(attempts, 0), "error"), "boom 1");
    assert_int_equal(num(json_array_get(attempts, 0), "exit_code"), 3);
    assert_string_equal(str(json_array_get(attempts, 1), "status"), "timeout");
    assert_string_equal(str(json_array_get(attempts, 1), "error"), "timed out after 300 s");
    assert_string_equal(str(json_array_get(attempts, 2), "status"), "completed");
    assert_string_equal(str(phase_in(d, "p1"), "status"), "completed");
    json_decref(d);
}

/* Retries run out: the error names the reason and the count. Agent failures and
 * lost workers are counted apart: with max_attempts 1 and retries 1, a failure
 * is retried, but losing the retry's worker fails the phase. The back-off
 * doubles up to 60 s. */
static void test_retries_exhausted_and_counted_apart(void **state)
{
    fx_t *f = *state;
    create_retry_workflow(f, "wf-r1", 1, 0, 3);
    char id[BROKER_EXEC_ID_SIZE];
    start(f, "wf-r1", id);
    ready(f, "W1", 1, NULL);
    for (int i = 0; i < 2; i++) {
        json_t *a = take(f, "assign", "W1"); /* back-off 0: at once */
        assert_non_null(a);
        result(f, "W1", a, "failed", "", "nope");
        json_decref(a);
    }
    json_t *st = status_of(f, "wf-r1", id);
    assert_string_equal(str(st, "status"), "failed");
    assert_string_equal(str(st, "error"), "Phase p1 failed: nope (failed 2 times; retries 1)");
    json_decref(st);

    create_retry_workflow(f, "wf-r2", 1, 0, 1);
    start(f, "wf-r2", id);
    json_t *a1 = take(f, "assign", "W1");
    result(f, "W1", a1, "failed", "", "flaky");
    json_decref(a1);
    json_t *a2 = take(f, "assign", "W1");
    assert_non_null(a2);
    assert_int_equal(num(a2, "attempt"), 2);
    json_decref(a2);
    worker_send(f, "W1", SYN_MSG_DISCONNECT, json_object());
    st = status_of(f, "wf-r2", id);
    assert_string_equal(str(st, "status"), "failed");
    assert_non_null(strstr(str(st, "error"), "worker lost 1 time (max_attempts 1)"));
    json_decref(st);

    create_retry_workflow(f, "wf-r3", 5, 40, 3);
    start(f, "wf-r3", id);
    ready(f, "W1", 1, NULL);
    json_t *a = take(f, "assign", "W1");
    result(f, "W1", a, "failed", "", "x");
    json_decref(a);
    json_t *ev = take_event(f, id, "PhaseRetrying");
    assert_true(json_real_value(json_object_get(json_object_get(ev, "data"),
                                                "retry_in_seconds")) == 40.0);
    json_decref(ev);
    advance_to(f, 40000);
    a = take(f, "assign", "W1");
    assert_non_null(a);
    result(f, "W1", a, "failed", "", "x");
    json_decref(a);
    ev = take_event(f, id, "PhaseRetrying");
    assert_true(json_real_value(json_object_get(json_object_get(ev, "data"),
                                                "retry_in_seconds")) == 60.0);
    json_decref(ev);
    /* cancel during the back-off: nothing is dispatched later */
    json_t *body;
    assert_int_equal(control(f, "execution.cancel", id, NULL, &body), 200);
    json_decref(body);
    advance_to(f, 61000);
    assert_int_equal(count_sent(f, "assign"), 0);
}

/* Listing: total over all pages, newest first, filters, pages; runs of a
 * workflow; the detail's attempts (lost included); output; bad arguments. */
static void test_list_runs_detail_output(void **state)
{
    fx_t *f = *state;
    create_workflow(f, "wf-demo", 3);
    create_workflow(f, "wf-other", 3);
    char ids[7][BROKER_EXEC_ID_SIZE];
    for (int i = 0; i < 7; i++)
        start(f, i < 5 ? "wf-demo" : "wf-other", ids[i]);
    ready(f, "W1", 1, NULL);
    json_t *a = take(f, "assign", "W1"); /* ids[0], p1 */
    assert_string_equal(str(a, "execution_id"), ids[0]);
    worker_send(f, "W1", SYN_MSG_DISCONNECT, json_object()); /* lost: requeued */
    ready(f, "W2", 1, NULL);
    json_decref(a);
    a = take(f, "assign", "W2");
    assert_int_equal(num(a, "attempt"), 2);
    result(f, "W2", a, "failed", "partial", "bad thing");
    json_decref(a);
    json_t *body;
    assert_int_equal(control(f, "execution.cancel", ids[6], NULL, &body), 200);
    json_decref(body);

    assert_int_equal(call(f, "execution.list",
                          json_pack("{s:n, s:n, s:i, s:i}", "status", "workflow_id", "page", 1,
                                    "page_size", 3),
                          &body),
                     200);
    assert_int_equal(num(body, "total"), 7);
    assert_int_equal(num(body, "page"), 1);
    assert_int_equal(num(body, "page_size"), 3);
    json_t *list = json_object_get(body, "executions");
    assert_int_equal(json_array_size(list), 3);
    assert_string_equal(str(json_array_get(list, 0), "execution_id"), ids[6]);
    assert_string_equal(str(json_array_get(list, 0), "status"), "cancelled");
    assert_string_equal(str(json_array_get(list, 0), "workflow_name"), "Demo");
    assert_string_equal(str(json_array_get(list, 2), "execution_id"), ids[4]);
    json_decref(body);
    assert_int_equal(call(f, "execution.list",
                          json_pack("{s:i, s:i}", "page", 3, "page_size", 3), &body),
                     200);
    assert_int_equal(json_array_size(json_object_get(body, "executions")), 1);
    assert_string_equal(str(json_array_get(json_object_get(body, "executions"), 0),
                            "execution_id"),
                        ids[0]);
    json_decref(body);
    assert_int_equal(call(f, "execution.list",
                          json_pack("{s:s, s:s}", "status", "pending", "workflow_id", "wf-demo"),
                          &body),
                     200);
    /* ids[1] took W2's slot after ids[0] failed */
    assert_int_equal(num(body, "total"), 3);
    assert_int_equal(num(body, "page_size"), 50);
    assert_int_equal(json_array_size(json_object_get(body, "executions")), 3);
    json_decref(body);
    assert_int_equal(call(f, "execution.list", json_pack("{s:s}", "status", "running"), &body),
                     200);
    assert_int_equal(num(body, "total"), 1);
    assert_string_equal(str(json_array_get(json_object_get(body, "executions"), 0),
                            "execution_id"),
                        ids[1]);
    json_decref(body);
    assert_int_equal(call(f, "execution.list", json_pack("{s:s}", "status", "failed"), &body),
                     200);
    assert_int_equal(num(body, "total"), 1);
    json_t *failed = json_array_get(json_object_get(body, "executions"), 0);
    assert_string_equal(str(failed, "execution_id"), ids[0]);
    assert_string_equal(str(failed, "error"), "Phase p1 failed: bad thing");
    assert_true(json_is_real(json_object_get(failed, "duration_seconds")));
    json_decref(body);
    assert_int_equal(call(f, "execution.list", json_pack("{s:s}", "status", "done"), &body), 400);
    expect_detail(body, "bad request: status must be one of pending, running, paused, "
                        "completed, failed, cancelled");
    json_decref(body);
    assert_int_equal(call(f, "execution.list", json_pack("{s:i}", "page_size", 101), &body), 400);
    json_decref(body);

    assert_int_equal(call(f, "workflow.runs",
                          json_pack("{s:s, s:i, s:i}", "workflow_id", "wf-other", "page", 1,
                                    "page_size", 10),
                          &body),
                     200);
    assert_int_equal(num(body, "total"), 2);
    assert_string_equal(str(body, "workflow_id"), "wf-other");
    assert_string_equal(str(body, "workflow_name"), "Demo");
    assert_string_equal(str(json_array_get(json_object_get(body, "runs"), 0), "execution_id"),
                        ids[6]);
    json_decref(body);
    assert_int_equal(call(f, "workflow.runs", json_pack("{s:s}", "workflow_id", "wf-x"), &body),
                     404);
    expect_detail(body, "Workflow wf-x not found");
    json_decref(body);

    json_t *d = detail_of(f, ids[0]);
    assert_string_equal(str(d, "status"), "failed");
    assert_string_equal(str(d, "task"), "the task");
    assert_string_equal(str(json_object_get(d, "inputs"), "topic"), "cats");
    assert_string_equal(str(json_object_get(d, "inputs"), "tone"), "dry");
    json_t *p1 = phase_in(d, "p1");
    assert_string_equal(str(p1, "status"), "failed");
    assert_string_equal(str(p1, "name"), "Plan");
    assert_string_equal(str(p1, "output_preview"), "partial");
    json_t *attempts = json_object_get(p1, "attempts");
    assert_int_equal(json_array_size(attempts), 2);
    assert_string_equal(str(json_array_get(attempts, 0), "status"), "lost");
    assert_string_equal(str(json_array_get(attempts, 0), "worker"), "W1");
    assert_non_null(strstr(str(json_array_get(attempts, 0), "error"), "disconnected"));
    assert_string_equal(str(json_array_get(attempts, 1), "status"), "failed");
    assert_string_equal(str(json_array_get(attempts, 1), "worker"), "W2");
    assert_false(json_is_null(json_object_get(json_array_get(attempts, 1), "completed_at")));
    assert_string_equal(str(phase_in(d, "p3"), "status"), "skipped");
    assert_string_equal(str(phase_in(d, "p3"), "model"), "big");
    json_decref(d);

    assert_int_equal(call(f, "execution.output",
                          json_pack("{s:s, s:s}", "execution_id", ids[0], "phase_id", "p1"),
                          &body),
                     200);
    assert_string_equal(str(body, "output"), "partial");
    json_decref(body);
    assert_int_equal(call(f, "execution.output",
                          json_pack("{s:s, s:s}", "execution_id", ids[0], "phase_id", "zz"),
                          &body),
                     404);
    char text[128];
    snprintf(text, sizeof text, "Phase zz not found in execution %s", ids[0]);
    expect_detail(body, text);
    json_decref(body);
    assert_int_equal(call(f, "execution.get", json_pack("{s:s}", "execution_id", "exec-zz"),
                          &body),
                     404);
    json_decref(body);
}

/* The event log replays by execution or globally, after a seq, in pages;
 * terminal says whether the execution finished. */
static void test_events_replay(void **state)
{
    fx_t *f = *state;
    create_workflow(f, "wf-demo", 3);
    char id[BROKER_EXEC_ID_SIZE], other[BROKER_EXEC_ID_SIZE];
    start(f, "wf-demo", id);
    start(f, "wf-demo", other);
    ready(f, "W1", 1, NULL);
    json_t *body;
    assert_int_equal(call(f, "events.replay",
                          json_pack("{s:s, s:i, s:i}", "execution_id", id, "after_seq", 0,
                                    "limit", 2),
                          &body),
                     200);
    json_t *events = json_object_get(body, "events");
    assert_int_equal(json_array_size(events), 2);
    assert_true(json_is_true(json_object_get(body, "more")));
    assert_false(json_is_true(json_object_get(body, "terminal")));
    assert_string_equal(str(body, "execution_id"), id);
    assert_string_equal(str(json_array_get(events, 0), "type"), "ExecutionStarted");
    assert_string_equal(str(json_array_get(events, 1), "type"), "PhaseQueued");
    json_t *first = json_array_get(events, 0);
    assert_int_equal(json_object_size(first), 5);
    assert_string_equal(str(first, "execution_id"), id);
    assert_true(num(first, "time") > 0);
    assert_int_equal(num(json_object_get(first, "data"), "total_phases"), 3);
    json_int_t last = num(body, "last_seq");
    assert_int_equal(last, num(json_array_get(events, 1), "seq"));
    json_decref(body);
    /* the rest, after last_seq: PhaseStarted only (the other execution's events
     * in between are not this one's) */
    assert_int_equal(call(f, "events.replay",
                          json_pack("{s:s, s:I, s:i}", "execution_id", id, "after_seq", last,
                                    "limit", 100),
                          &body),
                     200);
    events = json_object_get(body, "events");
    assert_int_equal(json_array_size(events), 1);
    assert_string_equal(str(json_array_get(events, 0), "type"), "PhaseStarted");
    assert_false(json_is_true(json_object_get(body, "more")));
    json_int_t after = num(body, "last_seq");
    json_decref(body);
    assert_int_equal(call(f, "events.replay",
                          json_pack("{s:s, s:I, s:i}", "execution_id", id, "after_seq", after,
                                    "limit", 100),
                          &body),
                     200);
    assert_int_equal(json_array_size(json_object_get(body, "events")), 0);
    assert_int_equal(num(body, "last_seq"), after);
    json_decref(body);
    /* all executions */
    assert_int_equal(call(f, "events.replay",
                          json_pack("{s:n, s:i, s:i}", "execution_id", "after_seq", 0, "limit",
                                    1000),
                          &body),
                     200);
    events = json_object_get(body, "events");
    assert_int_equal(json_array_size(events), 5);
    for (size_t i = 0; i < 5; i++)
        assert_int_equal(num(json_array_get(events, i), "seq"), (json_int_t)i + 1);
    assert_true(json_is_null(json_object_get(body, "execution_id")));
    json_decref(body);
    /* finish it (and the other one, which shares the worker): terminal */
    json_t *a;
    while ((a = take(f, "assign", "W1"))) {
        result(f, "W1", a, "completed", "x", NULL);
        json_decref(a);
    }
    json_t *st = status_of(f, "wf-demo", id);
    assert_string_equal(str(st, "status"), "completed");
    json_decref(st);
    assert_int_equal(call(f, "events.replay",
                          json_pack("{s:s, s:i, s:i}", "execution_id", id, "after_seq", 0,
                                    "limit", 1000),
                          &body),
                     200);
    events = json_object_get(body, "events");
    assert_true(json_is_true(json_object_get(body, "terminal")));
    assert_string_equal(str(json_array_get(events, json_array_size(events) - 1), "type"),
                        "ExecutionCompleted");
    json_decref(body);
    assert_int_equal(call(f, "events.replay",
                          json_pack("{s:s, s:i, s:i}", "execution_id", "exec-zz", "after_seq", 0,
                                    "limit", 10),
                          &body),
                     404);
    json_decref(body);
    assert_int_equal(call(f, "events.replay", json_pack("{s:i}", "limit", 1001), &body), 400);
    json_decref(body);
}

/* Output chunks become PhaseOutput events: the first at once, then at most one
 * per 250 ms with everything that arrived, never more than 64 KiB, at most
 * 1 MiB per attempt; the rest is flushed before the phase's end event. */
static void test_phase_output_coalescing(void **state)
{
    fx_t *f = *state;
    create_workflow(f, "wf-demo", 3);
    char id[BROKER_EXEC_ID_SIZE];
    start(f, "wf-demo", id);
    ready(f, "W1", 1, NULL);
    json_t *a1 = take(f, "assign", "W1");
    json_array_clear(f->sent);
    progress(f, "W1", a1, "started", "");
    progress(f, "W1", a1, "output", "a");
    json_t *ev = take_event(f, id, "PhaseOutput");
    assert_non_null(ev);
    json_t *data = json_object_get(ev, "data");
    assert_string_equal(str(data, "text"), "a");
    assert_int_equal(num(data, "offset"), 0);
    assert_string_equal(str(data, "phase_id"), "p1");
    assert_int_equal(num(data, "attempt"), 1);
    json_decref(ev);
    const char *chunks[] = {"b", "c", "d\n", "\xc3\xa9", "f"};
    for (int i = 0; i < 5; i++) {
        f->now += 40;
        progress(f, "W1", a1, "output", chunks[i]);
    }
    broker_engine_tick(f->engine, f->now); /* 200 ms after the first: not yet */
    turn(f);
    assert_null(take_event(f, id, "PhaseOutput"));
    f->now += 50;
    broker_engine_tick(f->engine, f->now);
    turn(f);
    ev = take_event(f, id, "PhaseOutput");
    assert_non_null(ev);
    assert_string_equal(str(json_object_get(ev, "data"), "text"), "bcd\n\xc3\xa9" "f");
    assert_int_equal(num(json_object_get(ev, "data"), "offset"), 1);
    json_decref(ev);
    /* 150 KiB at once: two full events now, the rest waits */
    size_t big = 150 * 1024;
    char *text = malloc(big + 1);
    memset(text, 'z', big);
    text[big] = '\0';
    f->now += 10;
    progress(f, "W1", a1, "output", text);
    for (int i = 0; i < 2; i++) {
        ev = take_event(f, id, "PhaseOutput");
        assert_non_null(ev);
        assert_int_equal(strlen(str(json_object_get(ev, "data"), "text")), 64 * 1024);
        json_decref(ev);
    }
    assert_null(take_event(f, id, "PhaseOutput"));
    /* a tool call flushes the text before it */
    json_t *tool = json_pack("{s:O, s:O, s:O, s:s, s:s, s:{s:s, s:s}}", "execution_id",
                             json_object_get(a1, "execution_id"), "phase_id",
                             json_object_get(a1, "phase_id"), "attempt",
                             json_object_get(a1, "attempt"), "kind", "tool", "data", "Read",
                             "detail", "name", "Read", "input_preview", "{\"path\":\"x\"}");
    worker_send(f, "W1", SYN_MSG_PROGRESS, tool);
    ev = take_event(f, id, "PhaseOutput");
    assert_non_null(ev);
    assert_int_equal(strlen(str(json_object_get(ev, "data"), "text")), 22 * 1024);
    assert_int_equal(num(json_object_get(ev, "data"), "offset"), 8 + 128 * 1024);
    json_decref(ev);
    ev = take_event(f, id, "PhaseToolCall");
    assert_non_null(ev);
    assert_string_equal(str(json_object_get(ev, "data"), "name"), "Read");
    assert_string_equal(str(json_object_get(json_object_get(ev, "data"), "detail"),
                            "input_preview"),
                        "{\"path\":\"x\"}");
    json_decref(ev);
    /* past 1 MiB per attempt: cut, one truncated marker, then silence */
    for (int i = 0; i < 8; i++) {
        f->now += 300;
        progress(f, "W1", a1, "output", text);
    }
    size_t streamed = 8 + 150 * 1024, events = 0;
    bool truncated = false;
    while ((ev = take_event(f, id, "PhaseOutput"))) {
        json_t *d = json_object_get(ev, "data");
        assert_int_equal(num(d, "offset"), (json_int_t)streamed);
        assert_true(strlen(str(d, "text")) <= 64 * 1024);
        streamed += strlen(str(d, "text"));
        truncated = json_is_true(json_object_get(d, "truncated"));
        events++;
        json_decref(ev);
    }
    assert_true(truncated);
    assert_int_equal(streamed, BROKER_OUTPUT_MAX);
    f->now += 300;
    progress(f, "W1", a1, "output", "more");
    assert_null(take_event(f, id, "PhaseOutput"));
    free(text);
    /* the next attempt starts a fresh stream; pending text precedes PhaseCompleted */
    result(f, "W1", a1, "completed", "done", NULL);
    json_decref(a1);
    json_t *a2 = take(f, "assign", "W1");
    progress(f, "W1", a2, "output", "one");
    progress(f, "W1", a2, "output", "two");
    result(f, "W1", a2, "completed", "onetwo", NULL);
    json_decref(a2);
    json_t *types = event_types(f, id);
    const char *order[] = {"PhaseCompleted", "PhaseQueued", "PhaseStarted", "PhaseOutput",
                           "PhaseOutput", "PhaseCompleted"};
    assert_true(json_array_size(types) >= 6);
    for (size_t i = 0; i < 6; i++)
        assert_string_equal(json_string_value(json_array_get(types, i)), order[i]);
    json_decref(types);
    /* in the log as well, so a replay misses nothing */
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM events WHERE execution_id='%s' AND "
                              "type='PhaseOutput'", id);
    assert_int_equal(db_int(f, sql), (int64_t)(2 + 2 + 1 + events + 2));
}

/* A RESULT's usage lands in the phase, the execution totals, the attempt and the
 * PhaseCompleted event, once even if the RESULT is repeated. */
static void test_usage_accounting(void **state)
{
    fx_t *f = *state;
    create_workflow(f, "wf-demo", 3);
    char id[BROKER_EXEC_ID_SIZE];
    start(f, "wf-demo", id);
    ready(f, "W1", 1, NULL);
    json_t *a1 = take(f, "assign", "W1");
    json_t *fields = json_pack(
        "{s:O, s:O, s:O, s:s, s:s, s:n, s:i, s:{s:i, s:i, s:i, s:i, s:f, s:i, s:i, s:s, "
        "s:[{s:s, s:b}]}}",
        "execution_id", json_object_get(a1, "execution_id"), "phase_id",
        json_object_get(a1, "phase_id"), "attempt", json_object_get(a1, "attempt"), "status",
        "completed", "output", "out", "error", "exit_code", 0, "usage", "input_tokens", 1000,
        "output_tokens", 200, "cache_creation_tokens", 30, "cache_read_tokens", 40, "cost_usd",
        0.125, "num_turns", 4, "duration_ms", 1500, "model", "claude-sonnet-x", "tool_calls",
        "name", "Bash", "success", 0);
    worker_send(f, "W1", SYN_MSG_RESULT, json_deep_copy(fields));
    worker_send(f, "W1", SYN_MSG_RESULT, fields); /* repeated after a reconnect */
    json_decref(a1);
    json_t *ev = take_event(f, id, "PhaseCompleted");
    json_t *data = json_object_get(ev, "data");
    assert_int_equal(num(data, "input_tokens"), 1000);
    assert_int_equal(num(data, "output_tokens"), 200);
    assert_int_equal(num(data, "cache_creation_tokens"), 30);
    assert_int_equal(num(data, "cache_read_tokens"), 40);
    assert_int_equal(num(data, "total_tokens"), 1270);
    assert_true(json_real_value(json_object_get(data, "cost_usd")) == 0.125);
    assert_int_equal(num(data, "num_turns"), 4);
    assert_int_equal(num(data, "duration_ms"), 1500);
    assert_string_equal(str(data, "model"), "claude-sonnet-x");
    assert_int_equal(num(data, "tool_call_count"), 1);
    assert_false(json_is_true(json_object_get(json_array_get(json_object_get(data,
                                                                             "tool_calls"),
                                                             0),
                                              "success")));
    assert_int_equal(num(data, "output_bytes"), 3);
    assert_string_equal(str(data, "worker"), "W1");
    json_decref(ev);
    json_t *d = detail_of(f, id);
    assert_int_equal(num(d, "total_input_tokens"), 1000);
    assert_int_equal(num(d, "total_output_tokens"), 200);
    assert_true(json_real_value(json_object_get(d, "total_cost_usd")) == 0.125);
    json_t *p1 = phase_in(d, "p1");
    assert_int_equal(num(p1, "input_tokens"), 1000);
    assert_string_equal(str(p1, "model"), "claude-sonnet-x");
    assert_int_equal(num(p1, "tool_call_count"), 1);
    assert_string_equal(str(json_array_get(json_object_get(p1, "tool_calls"), 0), "name"),
                        "Bash");
    json_t *usage = json_object_get(json_array_get(json_object_get(p1, "attempts"), 0), "usage");
    assert_int_equal(num(usage, "num_turns"), 4);
    json_t *p2 = phase_in(d, "p2");
    assert_int_equal(num(p2, "input_tokens"), 0);
    assert_true(json_is_null(json_object_get(p2, "model")));
    json_decref(d);
    json_t *body;
    assert_int_equal(call(f, "execution.list", json_object(), &body), 200);
    json_t *summary = json_array_get(json_object_get(body, "executions"), 0);
    assert_int_equal(num(summary, "total_input_tokens"), 1000);
    assert_int_equal(num(summary, "total_output_tokens"), 200);
    json_decref(body);
}

/* ASSIGN's optional fields: earlier outputs, repos, allowed tools, max_tokens
 * and the phase's provider, which only a worker offering it gets. */
static void test_assign_optional_fields(void **state)
{
    fx_t *f = *state;
    json_t *body;
    json_t *args = json_pack(
        "{s:s, s:s, s:[{s:s, s:s, s:i, s:s}, {s:s, s:s, s:i, s:s, s:s, s:i, s:[s, s]}]}", "id",
        "wf-agent", "name", "Agent", "phases", "phase_id", "research", "name", "R", "order", 1,
        "prompt_template", "research", "phase_id", "write", "name", "W", "order", 2,
        "prompt_template", "write from {{research}}", "provider", "claude", "max_tokens", 2048,
        "allowed_tools", "Read", "Bash");
    assert_int_equal(call(f, "workflow.create", args, &body), 201);
    json_decref(body);
    assert_int_equal(call(f, "workflow.get", json_pack("{s:s}", "id", "wf-agent"), &body), 200);
    json_t *write = json_array_get(json_object_get(body, "phases"), 1);
    assert_string_equal(str(write, "provider"), "claude");
    assert_int_equal(num(write, "max_tokens"), 2048);
    assert_null(json_object_get(write, "retries")); /* only what was given */
    json_decref(body);
    assert_int_equal(call(f, "workflow.create",
                          json_pack("{s:s, s:[{s:s, s:s, s:i, s:s, s:i}]}", "name", "x", "phases",
                                    "phase_id", "a", "name", "A", "order", 1, "prompt_template",
                                    "x", "retries", -1),
                          &body),
                     400);
    json_decref(body);

    assert_int_equal(call(f, "execution.start",
                          json_pack("{s:s, s:{}, s:n, s:[s, s]}", "workflow_id", "wf-agent",
                                    "inputs", "task", "repos", "acme/app", "/srv/lib"),
                          &body),
                     200);
    char id[BROKER_EXEC_ID_SIZE];
    snprintf(id, sizeof id, "%s", str(body, "execution_id"));
    json_decref(body);
    ready(f, "W1", 2, NULL); /* offers mock only */
    json_t *a1 = take(f, "assign", "W1");
    assert_non_null(a1);
    assert_true(json_is_null(json_object_get(a1, "provider")));
    assert_int_equal(json_object_size(json_object_get(a1, "inputs")), 0);
    assert_int_equal(json_array_size(json_object_get(a1, "repos")), 2);
    assert_string_equal(json_string_value(json_array_get(json_object_get(a1, "repos"), 0)),
                        "acme/app");
    assert_int_equal(json_array_size(json_object_get(a1, "allowed_tools")), 0);
    assert_null(json_object_get(a1, "max_tokens"));
    result(f, "W1", a1, "completed", "FINDINGS", NULL);
    json_decref(a1);
    assert_null(take(f, "assign", "W1")); /* needs claude */
    ready_with(f, "W2", 1, json_pack("[s, s]", "mock", "claude"));
    json_t *a2 = take(f, "assign", "W2");
    assert_non_null(a2);
    assert_string_equal(str(a2, "phase_id"), "write");
    assert_string_equal(str(a2, "provider"), "claude");
    assert_int_equal(num(a2, "max_tokens"), 2048);
    assert_string_equal(str(json_object_get(a2, "inputs"), "research"), "FINDINGS");
    assert_string_equal(json_string_value(json_array_get(json_object_get(a2, "allowed_tools"),
                                                         1)),
                        "Bash");
    assert_string_equal(str(a2, "prompt"), "write from FINDINGS");
    json_decref(a2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_workflow_create_get_list, setup, teardown),
        cmocka_unit_test_setup_teardown(test_workflow_create_rejects, setup, teardown),
        cmocka_unit_test_setup_teardown(test_execution_start_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_three_phases_complete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_event_status_and_eviction, setup, teardown),
        cmocka_unit_test_setup_teardown(test_under_way_before_new, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failure_skips_later_phases, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lost_worker_retry_and_fencing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_max_attempts_one_fails, setup, teardown),
        cmocka_unit_test_setup_teardown(test_restart_adopts_or_requeues, setup, teardown),
        cmocka_unit_test_setup_teardown(test_status_lookup_by_prefix, setup, teardown),
        cmocka_unit_test_setup_teardown(test_output_cut_and_render_bound, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unregistered_stale_progress_and_backstop, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_repeated_ready_keeps_attempts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_undeliverable_assign, setup, teardown),
        cmocka_unit_test_setup_teardown(test_control_rules, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel_running, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pause_inject_resume, setup, teardown),
        cmocka_unit_test_setup_teardown(test_inject_live_and_restart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retries_with_backoff, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retries_exhausted_and_counted_apart, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_list_runs_detail_output, setup, teardown),
        cmocka_unit_test_setup_teardown(test_events_replay, setup, teardown),
        cmocka_unit_test_setup_teardown(test_phase_output_coalescing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_usage_accounting, setup, teardown),
        cmocka_unit_test_setup_teardown(test_assign_optional_fields, setup, teardown),
    };
    return cmocka_run_group_tests_name("broker_engine", tests, NULL, NULL);
}
