/* output: the output stream of an attempt, as events.
 *
 * PROGRESS output chunks of the current attempt become PhaseOutput events,
 * coalesced: at most one per phase per BROKER_STREAM_INTERVAL_MS (the first at
 * once), none larger than BROKER_STREAM_EVENT_MAX bytes, and at most
 * SYN_OUTPUT_MAX bytes per attempt (then one event with truncated:true and no
 * more). A tool the agent used is one PhaseToolCall event (at most
 * BROKER_TOOL_EVENTS_MAX per attempt), after the text written before it. The
 * output a RESULT brings is kept within SYN_OUTPUT_MAX the way the worker cuts
 * it (proto/limits.h). */
#ifndef SYN_BROKER_OUTPUT_H
#define SYN_BROKER_OUTPUT_H

#include "broker/engine.h"
#include "proto/limits.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#define BROKER_STREAM_EVENT_MAX (64u * 1024u)
#define BROKER_STREAM_INTERVAL_MS 250
#define BROKER_TOOL_EVENTS_MAX 1000

/* Adds an output chunk of phase's current attempt (text may be NULL or ""). */
void broker_output_append(broker_engine_t *engine, broker_execution_t *exec,
                          broker_phase_t *phase, const char *text, int64_t now_ms);
/* Sends what the rate limit allows of the buffered output; force: all of it. */
void broker_output_flush(broker_engine_t *engine, broker_execution_t *exec, broker_phase_t *phase,
                         int64_t now_ms, bool force);
/* Forgets the stream (a new attempt starts, or the last one ended). */
void broker_output_reset(broker_phase_t *phase);
/* A PROGRESS of kind "tool" (fields: data = the tool's name, detail). */
void broker_output_tool(broker_engine_t *engine, broker_execution_t *exec, broker_phase_t *phase,
                        const json_t *fields, int64_t now_ms);
/* A copy of a RESULT's output within the limit; NULL when out of memory. */
char *broker_output_bounded(const char *output);

#endif
