/* broker_fixture: the broker's modules (store, outbox, events, workers, engine,
 * api) wired as syn-broker wires them, in-process for unit tests: real SQLite in
 * a fresh temp dir, a fake clock and no sockets. A turn does what one loop of the
 * broker does and keeps what it would have sent in a log the test takes messages
 * out of. Every message the broker produces, and every one a test sends as a
 * worker, is checked against its protocol schema. Failures fail the running test. */
#ifndef SYN_TEST_BROKER_FIXTURE_H
#define SYN_TEST_BROKER_FIXTURE_H

#include "broker/api.h"
#include "broker/engine.h"
#include "broker/events.h"
#include "broker/outbox.h"
#include "broker/store.h"
#include "broker/workers.h"
#include "proto/msg.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* The engine's heartbeat interval and liveness (a worker silent for
 * FX_HEARTBEAT_MS * FX_LIVENESS is dead). */
#define FX_HEARTBEAT_MS 100
#define FX_LIVENESS 3

typedef struct {
    char dir[64];
    char path[96]; /* the database, dir/syn.db */
    broker_store_t *store;
    broker_outbox_t *outbox;
    broker_events_t *events;
    broker_workers_t *workers;
    broker_engine_t *engine;
    broker_api_t *api;
    int64_t now;  /* the fake monotonic clock, ms */
    json_t *sent; /* everything flushed so far: [{dest, identity, type, fields}] */
} fx_t;

/* cmocka setup and teardown: *state is an fx_t with everything open; teardown
 * closes it and removes the temp dir with all in it. */
int fx_setup(void **state);
int fx_teardown(void **state);
/* A cmocka test that runs with fx_setup and fx_teardown. */
#define fx_unit_test(test) cmocka_unit_test_setup_teardown(test, fx_setup, fx_teardown)
/* A broker restart: every module closed and opened again on the same database,
 * the log emptied. Recovery is the test's to call. */
void fx_restart(fx_t *f);

/* One loop turn without sockets: dispatch, commit, then "send" the outbox. */
void fx_turn(fx_t *f);
/* Takes the first sent message of a type (to identity, if not NULL) out of the
 * log: its fields (a new reference), or NULL when there is none. */
json_t *fx_take(fx_t *f, const char *type, const char *identity);
size_t fx_count_sent(fx_t *f, const char *type);

/* Handles op with args (stolen), then runs a turn: the status, the reply in *body. */
int fx_call(fx_t *f, const char *op, json_t *args, json_t **body);
/* fx_call, then fails unless the status is want_status and, when want_detail is
 * not NULL, the reply's detail is that text; frees the reply. */
void fx_expect(fx_t *f, const char *op, json_t *args, int want_status, const char *want_detail);

/* A message from a worker (fields stolen), then a turn. */
void fx_worker_send(fx_t *f, const char *identity, syn_msg_type_t type, json_t *fields);
/* READY offering the mock provider; running (stolen) lists the attempts it still
 * runs, NULL for none. */
void fx_ready(fx_t *f, const char *identity, int slots, json_t *running);
/* RESULT for an ASSIGN's attempt; exit code 0 when completed, else 3. */
void fx_result(fx_t *f, const char *identity, const json_t *assign, const char *status,
               const char *output, const char *error);
/* The attempt an ASSIGN names, as READY's running lists it. */
json_t *fx_ref_of(const json_t *assign);
/* The fields of a message about an ASSIGN's attempt: the attempt's reference,
 * then fields (stolen). */
json_t *fx_attempt_fields(const json_t *assign, json_t *fields);

/* Takes the first event of that type about execution id out of the log: its
 * fields (a new reference), or NULL. */
json_t *fx_take_event(fx_t *f, const char *id, const char *type);
/* Lets ms pass, with a heartbeat from heartbeat_from unless it is NULL, then
 * ticks the engine and turns. */
void fx_advance(fx_t *f, int64_t ms, const char *heartbeat_from);
/* A workflow of `phases` phases p1, p2, … (prompt "do {{topic}}", each with this
 * timeout), created through the api. */
void fx_workflow(fx_t *f, const char *id, int phases, int timeout_seconds);
/* Starts an execution of it (topic "cats"), then a turn: the engine's record. */
broker_execution_t *fx_start(fx_t *f, const char *workflow_id);

/* The first column of the first row of the query (printf format), read from
 * the database on the side; -1 when there is no row. */
int64_t fx_db_int(fx_t *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* obj[key] as a string (NULL when it is none) or an integer (0). */
const char *fx_str(const json_t *obj, const char *key);
json_int_t fx_num(const json_t *obj, const char *key);

#endif
