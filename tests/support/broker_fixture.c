#include "tests/support/broker_fixture.h"

#include "broker/lost.h"
#include "common/log.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sqlite3.h>

static void open_all(fx_t *f)
{
    char err[256];
    f->store = broker_store_open(f->path, err, sizeof err);
    assert_non_null(f->store);
    f->outbox = broker_outbox_new();
    f->events = broker_events_new(f->store, f->outbox);
    f->workers = broker_workers_new();
    broker_engine_config_t config = {.heartbeat_ms = FX_HEARTBEAT_MS, .liveness = FX_LIVENESS,
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

int fx_setup(void **state)
{
    syn_log_set_level(getenv("SYN_TEST_DEBUG") ? SYN_LOG_DEBUG : SYN_LOG_ERROR);
    fx_t *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    snprintf(f->dir, sizeof f->dir, "/tmp/syn-test-broker-XXXXXX");
    if (!mkdtemp(f->dir)) {
        free(f);
        return -1;
    }
    snprintf(f->path, sizeof f->path, "%s/syn.db", f->dir);
    f->now = 1000000;
    f->sent = json_array();
    open_all(f);
    *state = f;
    return 0;
}

int fx_teardown(void **state)
{
    fx_t *f = *state;
    close_all(f);
    json_decref(f->sent);
    /* the database with its -wal and -shm, and whatever a test put next to it */
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", f->dir);
    free(f);
    return 0;
}

void fx_restart(fx_t *f)
{
    close_all(f);
    json_array_clear(f->sent);
    open_all(f);
}

void fx_turn(fx_t *f)
{
    /* What the loop does once it has read every message (broker.c). */
    broker_lost_unreachable_now(f->engine, f->now);
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

json_t *fx_take(fx_t *f, const char *type, const char *identity)
{
    size_t i;
    json_t *m;
    json_array_foreach(f->sent, i, m)
    {
        if (strcmp(fx_str(m, "type"), type) != 0)
            continue;
        if (identity && strcmp(fx_str(m, "identity"), identity) != 0)
            continue;
        json_t *fields = json_incref(json_object_get(m, "fields"));
        json_array_remove(f->sent, i);
        return fields;
    }
    return NULL;
}

size_t fx_count_sent(fx_t *f, const char *type)
{
    size_t i, n = 0;
    json_t *m;
    json_array_foreach(f->sent, i, m)
        n += strcmp(fx_str(m, "type"), type) == 0;
    return n;
}

int fx_call(fx_t *f, const char *op, json_t *args, json_t **body)
{
    int status = broker_api_handle(f->api, op, args, body);
    json_decref(args);
    fx_turn(f);
    return status;
}

void fx_expect(fx_t *f, const char *op, json_t *args, int want_status, const char *want_detail)
{
    json_t *body = NULL;
    int status = fx_call(f, op, args, &body);
    const char *got = fx_str(body, "detail");
    if (status != want_status || (want_detail && (!got || strcmp(got, want_detail) != 0)))
        fail_msg("%s: %d \"%s\", want %d \"%s\"", op, status, got ? got : "", want_status,
                 want_detail ? want_detail : "");
    json_decref(body);
}

void fx_worker_send(fx_t *f, const char *identity, syn_msg_type_t type, json_t *fields)
{
    syn_msg_t *msg = syn_msg_new_with(type, fields);
    char err[256];
    if (syn_msg_validate(msg, err, sizeof err) != 0)
        fail_msg("test built an invalid message: %s", err);
    broker_engine_on_worker(f->engine, identity, strlen(identity), msg, f->now);
    syn_msg_destroy(&msg);
    fx_turn(f);
}

void fx_ready(fx_t *f, const char *identity, int slots, json_t *running)
{
    fx_worker_send(f, identity, SYN_MSG_READY,
                   json_pack("{s:s, s:i, s:[s], s:o}", "worker", identity, "slots", slots,
                             "providers", "mock", "running", running ? running : json_array()));
}

void fx_result(fx_t *f, const char *identity, const json_t *assign, const char *status,
               const char *output, const char *error)
{
    json_t *exit_code = json_integer(strcmp(status, "completed") == 0 ? 0 : 3);
    fx_worker_send(f, identity, SYN_MSG_RESULT,
                   fx_attempt_fields(assign, json_pack("{s:s, s:s, s:o, s:o}", "status", status,
                                                       "output", output, "error",
                                                       error ? json_string(error) : json_null(),
                                                       "exit_code", exit_code)));
}

json_t *fx_ref_of(const json_t *assign)
{
    return json_pack("{s:O, s:O, s:O}", "execution_id", json_object_get(assign, "execution_id"),
                     "phase_id", json_object_get(assign, "phase_id"), "attempt",
                     json_object_get(assign, "attempt"));
}

json_t *fx_attempt_fields(const json_t *assign, json_t *fields)
{
    json_t *out = fx_ref_of(assign);
    json_object_update(out, fields);
    json_decref(fields);
    return out;
}

int64_t fx_db_int(fx_t *f, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *sql = sqlite3_vmprintf(fmt, ap);
    va_end(ap);
    assert_non_null(sql);
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
    sqlite3_free(sql);
    return v;
}

const char *fx_str(const json_t *obj, const char *key)
{
    return json_string_value(json_object_get(obj, key));
}

json_int_t fx_num(const json_t *obj, const char *key)
{
    return json_integer_value(json_object_get(obj, key));
}

void fx_workflow(fx_t *f, const char *id, int phases, int timeout_seconds)
{
    json_t *list = json_array();
    for (int i = 1; i <= phases; i++) {
        char phase_id[16];
        snprintf(phase_id, sizeof phase_id, "p%d", i);
        json_array_append_new(list, json_pack("{s:s, s:s, s:i, s:s, s:i}", "phase_id", phase_id,
                                              "name", phase_id, "order", i, "prompt_template",
                                              "do {{topic}}", "timeout_seconds",
                                              timeout_seconds));
    }
    fx_expect(f, "workflow.create",
              json_pack("{s:s, s:s, s:[{s:s}], s:o}", "id", id, "name", id,
                        "input_declarations", "name", "topic", "phases", list),
              201, NULL);
}

broker_execution_t *fx_start(fx_t *f, const char *workflow_id)
{
    json_t *body = NULL;
    json_t *args = json_pack("{s:s, s:{s:s}}", "workflow_id", workflow_id, "inputs", "topic",
                             "cats");
    assert_int_equal(fx_call(f, "execution.start", args, &body), 200);
    broker_execution_t *exec = broker_engine_find(f->engine, fx_str(body, "execution_id"));
    json_decref(body);
    assert_non_null(exec);
    return exec;
}

json_t *fx_take_event(fx_t *f, const char *id, const char *type)
{
    size_t i;
    json_t *m;
    json_array_foreach(f->sent, i, m)
    {
        json_t *fields = json_object_get(m, "fields");
        if (strcmp(fx_str(m, "type"), "event") == 0 && strcmp(fx_str(m, "identity"), id) == 0 &&
            strcmp(fx_str(fields, "type"), type) == 0) {
            json_t *out = json_incref(fields);
            json_array_remove(f->sent, i);
            return out;
        }
    }
    return NULL;
}

void fx_advance(fx_t *f, int64_t ms, const char *heartbeat_from)
{
    f->now += ms;
    if (heartbeat_from)
        fx_worker_send(f, heartbeat_from, SYN_MSG_HEARTBEAT, json_object());
    broker_engine_tick(f->engine, f->now);
    fx_turn(f);
}
