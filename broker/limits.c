/* limits: the places executions hold under max_concurrent and --max-running
 * (limits.h). It stands alone because how many run at once is a decision of
 * its own, made at dispatch, apart from which worker takes a phase. */
#include "broker/limits.h"

#include <stdint.h>

static size_t running_of(broker_engine_t *self, const char *workflow_id)
{
    return (size_t)(uintptr_t)zhashx_lookup(self->running_by_workflow, workflow_id);
}

/* Counts live in the hash as pointer-sized integers; a count of 0 is no entry. */
static void set_running(broker_engine_t *self, const char *workflow_id, size_t n)
{
    if (n == 0)
        zhashx_delete(self->running_by_workflow, workflow_id);
    else
        zhashx_update(self->running_by_workflow, workflow_id, (void *)(uintptr_t)n);
}

bool broker_limits_may_start(broker_engine_t *self, const broker_execution_t *exec)
{
    if (exec->counted)
        return true;
    if (self->config.max_running > 0 && self->running >= (size_t)self->config.max_running)
        return false;
    return exec->max_concurrent <= 0 ||
           running_of(self, exec->workflow_id) < (size_t)exec->max_concurrent;
}

void broker_limits_take(broker_engine_t *self, broker_execution_t *exec)
{
    if (exec->counted)
        return;
    exec->counted = true;
    self->running++;
    set_running(self, exec->workflow_id, running_of(self, exec->workflow_id) + 1);
}

void broker_limits_release(broker_engine_t *self, broker_execution_t *exec)
{
    if (!exec->counted)
        return;
    exec->counted = false;
    self->running--;
    set_running(self, exec->workflow_id, running_of(self, exec->workflow_id) - 1);
}
