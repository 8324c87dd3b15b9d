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

/* Numbers every waiting execution (limits.h): a running count of all, and one
 * per workflow in a hash made for the walk (without it, out of memory, all
 * are numbered in the one queue: a place too far back, never a failure). */
static void number_the_waiting(broker_engine_t *self)
{
    zhashx_t *ahead = zhashx_new();
    size_t all = 0;
    bool own_queues = self->config.max_running <= 0;
    for (broker_execution_t *e = zlistx_first(self->ready); e; e = zlistx_next(self->ready)) {
        if (e->status != BROKER_EXEC_PENDING)
            continue;
        all++;
        size_t mine = all;
        if (ahead && own_queues && e->max_concurrent > 0) {
            mine = (size_t)(uintptr_t)zhashx_lookup(ahead, e->workflow_id) + 1;
            zhashx_update(ahead, e->workflow_id, (void *)(uintptr_t)mine);
        }
        e->queue_position = (int64_t)mine;
    }
    zhashx_destroy(&ahead);
    self->positions_gen = self->queue_gen;
}

int64_t broker_engine_queue_position(broker_engine_t *self, const char *execution_id)
{
    broker_execution_t *exec = zhashx_lookup(self->active, execution_id);
    if (!exec || exec->status != BROKER_EXEC_PENDING || !exec->ready_handle)
        return 0;
    if (self->positions_gen != self->queue_gen)
        number_the_waiting(self);
    return exec->queue_position;
}
