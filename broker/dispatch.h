/* dispatch: which queued phase goes to which worker, and what the ASSIGN carries.
 *
 * Phases wait in one queue in the order they became ready (a retry goes to its
 * front). broker_engine_dispatch (engine.h) walks it oldest first while any
 * worker has room: a phase that names a provider waits, keeping its place,
 * until a worker offering it has a free slot (workers.h picks the least busy),
 * without holding up the others. Each dispatch is a new attempt: the operator
 * messages waiting for "the next phase" are bound to it, its prompt is rendered
 * (prompt.h; a prompt that cannot be rendered fails the phase), the attempt is
 * recorded and the ASSIGN queued with the earlier phases' outputs that fit its
 * budget. The backstop (deadlines.h) runs from now, or, when the worker has no
 * free slot and keeps the attempt as prefetch, from when it reports the start. */
#ifndef SYN_BROKER_DISPATCH_H
#define SYN_BROKER_DISPATCH_H

#include "broker/engine.h"

#include <jansson.h>
#include <stddef.h>

/* An ASSIGN must fit in one message (SYN_MSG_MAX_SIZE): the prompt is bounded by
 * the renderer, and the earlier outputs sent along as `inputs` share what is left
 * of this budget. */
#define BROKER_ASSIGN_BUDGET (14u * 1024u * 1024u)
#define BROKER_ASSIGN_INPUTS_MAX (6u * 1024u * 1024u)

/* Earlier phases' outputs by phase id, newest first while they fit budget bytes
 * (an agent provider writes them to artifacts/input/); a fresh object. */
json_t *broker_dispatch_earlier_outputs(broker_execution_t *exec, broker_phase_t *phase,
                                        size_t budget);

#endif
