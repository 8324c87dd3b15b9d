/* exactly_once: the checks that every accepted execution ran to completion once, no
 * more, whatever was killed on the way (tests/support/exactly_once.h). */
#include "tests/support/exactly_once.h"

#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

/* Rows of a consistency query over one workflow's executions (?1 = workflow id):
 * each query lists what must not exist, so a healthy database gives 0. */
static long violations(teststack_t *stack, const char *what, const char *sql,
                       const char *workflow_id)
{
    long rows = teststack_db_count(stack, sql, workflow_id, NULL);
    if (rows != 0)
        fprintf(stderr, "consistency: %ld rows with %s\n", rows, what);
    return rows;
}

void exactly_once_expect(teststack_t *stack, const char *workflow_id, long executions,
                         long phases)
{
    assert_int_equal(teststack_db_count(stack, "SELECT 1 FROM executions WHERE workflow_id=?1",
                                        workflow_id, NULL),
                     executions);
    assert_int_equal(
        teststack_db_count(stack,
                           "SELECT 1 FROM phases p JOIN executions e ON e.id=p.execution_id"
                           " WHERE e.workflow_id=?1",
                           workflow_id, NULL),
        executions * phases);
    assert_int_equal(violations(stack, "an execution not completed",
                                "SELECT 1 FROM executions WHERE workflow_id=?1"
                                " AND (status<>'completed' OR completed_phases<>total_phases)",
                                workflow_id),
                     0);
    assert_int_equal(
        violations(stack, "a phase not completed or without its own output",
                   "SELECT 1 FROM phases p JOIN executions e ON e.id=p.execution_id"
                   " WHERE e.workflow_id=?1 AND (p.status<>'completed' OR p.output IS NULL"
                   " OR instr(p.output, 'mock output for phase ' || p.phase_id || ':')<>1)",
                   workflow_id),
        0);
    assert_int_equal(
        violations(stack, "a phase without exactly one completed attempt",
                   "SELECT 1 FROM phases p JOIN executions e ON e.id=p.execution_id"
                   " WHERE e.workflow_id=?1 AND (SELECT count(*) FROM attempts a"
                   "  WHERE a.execution_id=p.execution_id AND a.phase_id=p.phase_id"
                   "  AND a.status='completed')<>1",
                   workflow_id),
        0);
    assert_int_equal(
        violations(stack, "attempt numbers that do not match the phase's count",
                   "SELECT 1 FROM phases p JOIN executions e ON e.id=p.execution_id"
                   " WHERE e.workflow_id=?1 AND (p.attempts <> (SELECT count(*) FROM attempts a"
                   "  WHERE a.execution_id=p.execution_id AND a.phase_id=p.phase_id)"
                   " OR p.attempts <> (SELECT max(attempt) FROM attempts a"
                   "  WHERE a.execution_id=p.execution_id AND a.phase_id=p.phase_id))",
                   workflow_id),
        0);
    assert_int_equal(violations(stack, "an attempt still running",
                                "SELECT 1 FROM attempts a JOIN executions e ON e.id=a.execution_id"
                                " WHERE e.workflow_id=?1 AND a.status NOT IN"
                                " ('completed','lost','failed','cancelled','timeout')",
                                workflow_id),
                     0);
    assert_int_equal(
        violations(stack, "a phase whose completion was recorded more than once",
                   "SELECT 1 FROM events ev JOIN executions e ON e.id=ev.execution_id"
                   " WHERE e.workflow_id=?1 AND ev.type='PhaseCompleted'"
                   " GROUP BY ev.execution_id, json_extract(ev.data, '$.phase_id')"
                   " HAVING count(*)<>1",
                   workflow_id),
        0);
    assert_int_equal(
        teststack_db_count(stack,
                           "SELECT 1 FROM events ev JOIN executions e ON e.id=ev.execution_id"
                           " WHERE e.workflow_id=?1 AND ev.type='PhaseCompleted'",
                           workflow_id, NULL),
        executions * phases);
    assert_int_equal(
        violations(stack, "an execution completed more than once",
                   "SELECT 1 FROM events ev JOIN executions e ON e.id=ev.execution_id"
                   " WHERE e.workflow_id=?1 AND ev.type='ExecutionCompleted'"
                   " GROUP BY ev.execution_id HAVING count(*)<>1",
                   workflow_id),
        0);
}

long exactly_once_log_lines(teststack_t *stack, const char *log, const char *needle)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", teststack_dir(stack), log);
    FILE *f = fopen(path, "r");
    long n = 0;
    char line[4096];
    while (f && fgets(line, sizeof line, f))
        n += strstr(line, needle) != NULL;
    if (f)
        fclose(f);
    return n;
}

/* From every worker's log ("assigned execution=... phase=..."). A second attempt row
 * alone proves no second run: a broker killed between committing an ASSIGN and sending
 * it leaves an attempt no worker ever got, which it rightly dispatches again. */
long exactly_once_started_twice(teststack_t *stack, int workers, size_t *started)
{
    json_t *seen = json_object();
    long twice = 0;
    for (int i = 0; i < workers; i++) {
        char path[512];
        snprintf(path, sizeof path, "%s/worker%d.log", teststack_dir(stack), i);
        FILE *f = fopen(path, "r");
        char line[4096];
        while (f && fgets(line, sizeof line, f)) {
            const char *exec = strstr(line, " assigned execution=");
            const char *phase = exec ? strstr(exec, " phase=") : NULL;
            if (!phase)
                continue;
            exec += strlen(" assigned execution=");
            phase += strlen(" phase=");
            char key[256];
            snprintf(key, sizeof key, "%.*s/%.*s", (int)strcspn(exec, " "), exec,
                     (int)strcspn(phase, " \n"), phase);
            json_int_t n = json_integer_value(json_object_get(seen, key)) + 1;
            json_object_set_new(seen, key, json_integer(n));
            if (n == 2) {
                fprintf(stderr, "consistency: phase %s started twice\n", key);
                twice++;
            }
        }
        if (f)
            fclose(f);
    }
    *started = json_object_size(seen);
    json_decref(seen);
    return twice;
}
