/* prompt: what an attempt's prompt says.
 *
 * The phase's template rendered (render.h) with the execution's inputs, its task
 * and the outputs of the phases before it, then "## Operator messages" with each
 * operator message bound to the phase ("- [role] message"). Pure: no store, no
 * clock, the same prompt for every attempt of the phase. */
#ifndef SYN_BROKER_PROMPT_H
#define SYN_BROKER_PROMPT_H

#include "broker/engine.h"
#include "broker/execution.h"
#include "broker/render.h"

#include <stddef.h>

/* A rendered prompt plus one dispatch's worth of operator messages (each line
 * "- [role] message\n" is at most 16 bytes longer than its message). */
#define BROKER_PROMPT_MAX \
    (BROKER_RENDER_MAX_SIZE + BROKER_MESSAGES_WAITING_MAX * (BROKER_MESSAGE_MAX + 16))

/* The prompt of phase (one of exec's), a fresh string; NULL with the reason in
 * err (the template cannot be rendered, the messages make it too large, out of
 * memory). */
char *broker_prompt_render(broker_execution_t *exec, broker_phase_t *phase, char *err,
                           size_t errlen);

#endif
