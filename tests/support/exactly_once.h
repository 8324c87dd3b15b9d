/* exactly_once: what "every accepted execution completes exactly once" means, checked
 * from the outside of a teststack after processes were killed: the broker's database
 * (executions, phases, attempts, the event log) and the workers' own logs of the
 * phases they started. Shared by the tests that kill brokers (a restart in place, a
 * takeover at another address); each check fails the running cmocka test. */
#ifndef SYN_TEST_EXACTLY_ONCE_H
#define SYN_TEST_EXACTLY_ONCE_H

#include "tests/support/teststack.h"

#include <stddef.h>

/* Every one of the executions of workflow_id (there are exactly that many) completed
 * each of its phases once: one completed attempt, one PhaseCompleted and one
 * ExecutionCompleted event each, its mock output its own, nothing left running. */
void exactly_once_expect(teststack_t *stack, const char *workflow_id, long executions,
                         long phases);
/* Phases some worker started more than once, from the logs of workers 0..workers-1
 * ("assigned execution=... phase=..."); *started gets how many phases were started. */
long exactly_once_started_twice(teststack_t *stack, int workers, size_t *started);
/* Lines of the stack's log file (e.g. "broker.log") containing needle. */
long exactly_once_log_lines(teststack_t *stack, const char *log, const char *needle);

#endif
