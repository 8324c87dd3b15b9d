/* verify: the benchmark workflow (a chain of phases, each passing the previous
 * output on) and the check that every execution of a batch completed with
 * exactly the outputs the mock agent must have produced. */
#ifndef SYNLOAD_VERIFY_H
#define SYNLOAD_VERIFY_H

#include <stddef.h>
#include <stdint.h>

#include "bench/synload/batch.h"

#define VERIFY_MAX_PHASES 8

/* JSON body of POST /workflows for a workflow `id` of `phases` phases p1..pN:
 *   p1: "#mock sleep D\n$ARGUMENTS|p1"    pk: "#mock sleep D\n{{p(k-1)}}|pk"
 * so the final output carries the task and every phase in order. max_attempts
 * 0 keeps the default. malloc'd. */
char *verify_workflow_json(const char *id, int phases, int sleep_ms, int max_attempts);

/* The output the mock agent gives phase k (1-based) of an execution with this
 * task: "mock output for phase pk:\n" + the rendered prompt. malloc'd. */
char *verify_expected_output(const char *task, int phase, int sleep_ms);

typedef struct {
    int checked;
    int bad;                 /* executions with a wrong status or output */
    char first_problem[512];
    int64_t *completed_us;   /* per execution: executions.completed_at (the broker's clock) */
    int64_t last_completed_us;
} verify_result_t;

/* Reads the broker's SQLite file (read-only, concurrently with the broker) and
 * checks every execution of the batch: status completed, `phases` phases
 * completed with the expected outputs. Returns 0 when the database could be
 * read (look at result->bad), -1 otherwise with the reason in err. */
int verify_batch_db(const char *db_path, const batch_t *batch, int phases, int sleep_ms,
                    verify_result_t *result, char *err, size_t errlen);
void verify_result_clear(verify_result_t *result);

#endif
