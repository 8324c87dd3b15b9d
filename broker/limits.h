/* limits: whether a pending execution may start now — at most max_concurrent
 * executions of one workflow (its template) and at most --max-running of all
 * (the broker's flag) hold a place at once; the others wait as pending, in the
 * ready queue's order. Checked when the dispatch reaches the execution, never
 * by a timer: a place freed by an execution that ends is taken at the next
 * dispatch, which every turn of the loop runs. */
#ifndef SYN_BROKER_LIMITS_H
#define SYN_BROKER_LIMITS_H

#include "broker/engine_internal.h"

#include <stdbool.h>

/* True when exec holds a place already, or one is free for it. */
bool broker_limits_may_start(broker_engine_t *self, const broker_execution_t *exec);
/* exec takes a place (it left pending, or was reloaded running or paused). */
void broker_limits_take(broker_engine_t *self, broker_execution_t *exec);
/* exec gives its place back (it ended); nothing when it held none. */
void broker_limits_release(broker_engine_t *self, broker_execution_t *exec);

/* Queue positions (broker_engine_queue_position, engine.h): a pending execution
 * in the ready queue is numbered 1, 2, … in the order the queue will start it,
 * counting those ahead of it that wait for the same places: its own workflow's
 * when the workflow has max_concurrent and the broker no --max-running, else
 * every workflow's. The numbers are made in one walk of the queue, and only
 * when a read finds the queue changed since the last walk (queue_gen, bumped by
 * engine_enqueue and engine_dequeue): reads between two changes cost a lookup,
 * a listing of many executions one walk at most, and nothing is numbered when
 * nobody asks. Events do not carry it: each start moves every waiting
 * execution's place, and an event for each would cost that walk per start
 * and an event per waiting execution; readers ask the broker (the gateway's
 * view does not serve pending executions' statuses). */

#endif
