#include "tests/support/execution.h"
#include "tests/support/expect.h"
#include "tests/support/http.h"
#include "tests/support/wait.h"

#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

void execution_create_workflow(teststack_t *stack, const char *json)
{
    json_t *wf = teststack_create_workflow(stack, json);
    assert_non_null(wf);
    json_decref(wf);
}

json_t *execution_phase_in(json_t *execution, const char *phase_id)
{
    size_t i;
    json_t *phase;
    json_array_foreach(json_object_get(execution, "phases"), i, phase)
        if (!strcmp(json_str(phase, "phase_id"), phase_id))
            return phase;
    fail_msg("no phase %s in the detail", phase_id);
    return NULL;
}

char *execution_phase_status(teststack_t *stack, const char *id, const char *phase_id)
{
    http_response_t resp;
    assert_int_equal(http_get(&resp, "%s/executions/%s", teststack_url(stack), id), 0);
    if (resp.status != 200)
        fail_msg("GET /executions/%s: %ld %s", id, resp.status, resp.body ? resp.body : "");
    char *status = strdup(json_str(execution_phase_in(resp.json, phase_id), "status"));
    http_response_clear(&resp);
    return status;
}

void execution_wait_phase(teststack_t *stack, const char *id, const char *phase_id,
                          const char *want, int timeout_ms)
{
    for (wait_t w = wait_begin(timeout_ms);;) {
        char *status = execution_phase_status(stack, id, phase_id);
        bool done = !strcmp(status, want);
        if (!done && !wait_next(&w))
            fail_msg("phase %s of %s is %s, not %s", phase_id, id, status, want);
        free(status);
        if (done)
            return;
    }
}

char *execution_phase_output(teststack_t *stack, const char *id, const char *phase_id)
{
    http_response_t resp;
    assert_int_equal(http_get(&resp, "%s/executions/%s/phases/%s/output", teststack_url(stack),
                              id, phase_id),
                     0);
    assert_int_equal(resp.status, 200);
    assert_string_equal(resp.content_type, "text/plain; charset=utf-8");
    char *text = strdup(resp.body ? resp.body : "");
    http_response_clear(&resp);
    return text;
}

char *execution_db_phase_output(teststack_t *stack, const char *id, const char *phase_id)
{
    return teststack_db_text(stack,
                             "SELECT output FROM phases WHERE execution_id=?1 AND phase_id=?2",
                             id, phase_id, NULL);
}

char *execution_db_phase_status(teststack_t *stack, const char *id, const char *phase_id)
{
    return teststack_db_text(stack,
                             "SELECT status FROM phases WHERE execution_id=?1 AND phase_id=?2",
                             id, phase_id, NULL);
}

pid_t execution_read_pid(const char *dir, const char *execution_id, const char *suffix)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s.%s", dir, execution_id, suffix);
    FILE *f = fopen(path, "r");
    int pid = 0;
    if (f) {
        if (fscanf(f, "%d", &pid) != 1)
            pid = 0;
        fclose(f);
    }
    return pid;
}

bool execution_process_gone(pid_t pid)
{
    if (kill(pid, 0) == -1 && errno == ESRCH)
        return true;
    char path[64], stat[256];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return true;
    size_t n = fread(stat, 1, sizeof stat - 1, f);
    fclose(f);
    stat[n] = '\0';
    const char *close_paren = strrchr(stat, ')');
    return close_paren && close_paren[1] == ' ' && close_paren[2] == 'Z';
}
