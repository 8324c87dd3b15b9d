/* execution: cmocka helpers the integration tests share for looking at one
 * execution on a teststack — its phases through the API or the database, and
 * the agent processes it ran. Each fails the running test when the stack does
 * not answer as expected. */
#ifndef SYN_TEST_EXECUTION_H
#define SYN_TEST_EXECUTION_H

#include "tests/support/teststack.h"

#include <jansson.h>
#include <stdbool.h>
#include <sys/types.h>

/* POST /workflows with json; fails unless it was created. */
void execution_create_workflow(teststack_t *stack, const char *json);

/* The phase_id entry of an execution detail's "phases" (borrowed); fails when absent. */
json_t *execution_phase_in(json_t *execution, const char *phase_id);
/* The phase's status from GET /executions/{id} (malloc'd). */
char *execution_phase_status(teststack_t *stack, const char *id, const char *phase_id);
/* Waits until the phase has the status want; fails after timeout_ms. */
void execution_wait_phase(teststack_t *stack, const char *id, const char *phase_id,
                          const char *want, int timeout_ms);
/* GET /executions/{id}/phases/{phase_id}/output as text (malloc'd); fails
 * unless it answers 200 with text/plain. */
char *execution_phase_output(teststack_t *stack, const char *id, const char *phase_id);

/* The phase's row in the broker's database (malloc'd, NULL when there is none):
 * for tests that look past the API. */
char *execution_db_phase_output(teststack_t *stack, const char *id, const char *phase_id);
char *execution_db_phase_status(teststack_t *stack, const char *id, const char *phase_id);

/* The pid an agent script wrote to dir/<execution_id>.<suffix>; 0 when absent. */
pid_t execution_read_pid(const char *dir, const char *execution_id, const char *suffix);
/* Gone means no such process, or a zombie waiting for whoever adopted it:
 * either way it runs no more code. */
bool execution_process_gone(pid_t pid);

#endif
