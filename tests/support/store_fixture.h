/* store_fixture: a broker store over a fresh SQLite file in a temporary directory
 * (a cmocka setup/teardown pair), a read-only second connection to check what was
 * committed, and the workflows and executions tests put in the store. */
#ifndef SYN_TEST_STORE_FIXTURE_H
#define SYN_TEST_STORE_FIXTURE_H

#include "broker/execution.h"
#include "broker/store.h"

#include <jansson.h>
#include <libpq-fe.h>
#include <stdint.h>

typedef struct {
    char dir[64];
    char path[160]; /* the SQLite file, or PostgreSQL's URI (SYN_TEST_STORE=postgresql) */
    broker_store_t *store;
} fixture_t;

/* cmocka setup: a temporary directory and the store opened in it (*state). */
int store_fixture_setup(void **state);
/* cmocka teardown: closes the store, removes its files and the directory. */
int store_fixture_teardown(void **state);
/* A cmocka test run over a fresh store. */
#define store_test(fn) cmocka_unit_test_setup_teardown(fn, store_fixture_setup, store_fixture_teardown)
/* Closes the store (twice, which must be safe) and opens the same file again. */
void reopen(fixture_t *f);
/* A second connection sees only what was committed: the first column of the first
 * row sql gives, or -1 without a row. */
int64_t peek_int(const fixture_t *f, const char *sql);
/* That second connection on PostgreSQL (SYN_TEST_STORE=postgresql): opened at
 * first use, closed by the teardown. */
PGconn *store_fixture_peer(const fixture_t *f);
/* A template "wf-1" of nphases phases p1..pn, given out of order. */
json_t *template_of(int nphases);
/* Inserts workflow id with template_of(nphases). */
void add_workflow(fixture_t *f, const char *id, int nphases, int64_t created_at);
/* A new execution of workflow_id over template_of(nphases); never NULL. */
broker_execution_t *make_exec(const char *id, const char *workflow_id, int nphases,
                              int64_t created_at);

#endif
