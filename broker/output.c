/* output: the output stream of an attempt (output.h). It stands alone because
 * its rules (coalescing, the rate limit, the per-attempt bound, tool events in
 * order with the text) concern the bytes an agent writes, not the attempt's
 * fate: the engine only feeds it and flushes it when an attempt ends. */
#include "broker/output.h"

#include "broker/engine_internal.h"
#include "common/json_text.h"
#include "common/log.h"
#include "common/utf8.h"

#include <stdlib.h>
#include <string.h>

/* A tool's detail map larger than this (as JSON text) is sent as {truncated}. */
#define TOOL_DETAIL_MAX 4096

/* One PhaseOutput event with the first len bytes of the phase's stream buffer. */
static void stream_emit(broker_engine_t *self, broker_execution_t *exec, broker_phase_t *phase,
                        size_t len, int64_t now_ms)
{
    json_t *data = engine_phase_event(phase);
    json_object_set_new(data, "text", json_stringn(phase->stream, len));
    json_object_set_new(data, "offset", json_integer(phase->streamed));
    engine_emit(self, exec, "PhaseOutput", data);
    memmove(phase->stream, phase->stream + len, phase->stream_len - len);
    phase->stream_len -= len;
    phase->streamed += (int64_t)len;
    phase->stream_sent_ms = now_ms;
}

/* Turns buffered output into events: the first chunk of an attempt at once,
 * then at most one event per interval unless a full event's worth is waiting;
 * force (the attempt ends, a tool event must come after the text before it)
 * sends everything. */
void broker_output_flush(broker_engine_t *self, broker_execution_t *exec, broker_phase_t *phase,
                         int64_t now_ms, bool force)
{
    while (phase->stream_len > 0) {
        bool due = force || phase->stream_len >= BROKER_STREAM_EVENT_MAX ||
                   phase->streamed == 0 ||
                   now_ms - phase->stream_sent_ms >= BROKER_STREAM_INTERVAL_MS;
        if (!due)
            return;
        size_t len = syn_utf8_cut(phase->stream, phase->stream_len, BROKER_STREAM_EVENT_MAX);
        if (len == 0)
            len = phase->stream_len; /* cannot happen with valid UTF-8 */
        stream_emit(self, exec, phase, len, now_ms);
    }
}

void broker_output_reset(broker_phase_t *phase)
{
    free(phase->stream);
    phase->stream = NULL;
    phase->stream_len = 0;
    phase->streamed = 0;
    phase->stream_sent_ms = 0;
    phase->stream_capped = false;
    phase->tool_events = 0;
}

void broker_output_append(broker_engine_t *self, broker_execution_t *exec, broker_phase_t *phase,
                          const char *text, int64_t now_ms)
{
    if (phase->stream_capped || !text || !*text)
        return;
    size_t len = strlen(text);
    size_t used = (size_t)phase->streamed + phase->stream_len;
    size_t room = used < SYN_OUTPUT_MAX ? SYN_OUTPUT_MAX - used : 0;
    size_t take = syn_utf8_cut(text, len, room);
    if (take > 0) {
        char *grown = realloc(phase->stream, phase->stream_len + take);
        if (!grown) {
            syn_error("broker", "out of memory buffering output execution=%s", exec->id);
            return;
        }
        phase->stream = grown;
        memcpy(phase->stream + phase->stream_len, text, take);
        phase->stream_len += take;
    }
    if (take == len) {
        broker_output_flush(self, exec, phase, now_ms, false);
        return;
    }
    broker_output_flush(self, exec, phase, now_ms, true);
    phase->stream_capped = true;
    json_t *data = engine_phase_event(phase);
    json_object_set_new(data, "text", json_string(""));
    json_object_set_new(data, "offset", json_integer(phase->streamed));
    json_object_set_new(data, "truncated", json_true());
    engine_emit(self, exec, "PhaseOutput", data);
}

/* Cuts an output above the limit on a character boundary, with the worker's
 * marker; an output the worker already cut (limit + marker) passes unchanged. */
char *broker_output_bounded(const char *output)
{
    size_t len = strlen(output);
    if (len <= SYN_OUTPUT_MAX + sizeof SYN_OUTPUT_MARKER - 1)
        return strdup(output);
    size_t cut = syn_utf8_cut(output, len, SYN_OUTPUT_MAX);
    char *out = malloc(cut + sizeof SYN_OUTPUT_MARKER);
    if (!out)
        return NULL;
    memcpy(out, output, cut);
    memcpy(out + cut, SYN_OUTPUT_MARKER, sizeof SYN_OUTPUT_MARKER);
    return out;
}

/* A tool the agent used: one PhaseToolCall event (bounded per attempt), after the
 * text the agent wrote before it. */
void broker_output_tool(broker_engine_t *self, broker_execution_t *exec, broker_phase_t *phase,
                        const json_t *fields, int64_t now_ms)
{
    if (phase->tool_events >= BROKER_TOOL_EVENTS_MAX)
        return;
    phase->tool_events++;
    broker_output_flush(self, exec, phase, now_ms, true);
    const char *name = json_string_value(json_object_get(fields, "data"));
    const json_t *detail = json_object_get(fields, "detail");
    json_t *data = engine_phase_event(phase);
    size_t len = name ? syn_utf8_cut(name, strlen(name), BROKER_USAGE_NAME_MAX) : 0;
    json_object_set_new(data, "name", json_stringn(name ? name : "", len));
    char *text = json_is_object(detail) ? syn_json_text(detail) : NULL;
    bool fits = text && strlen(text) <= TOOL_DETAIL_MAX;
    json_object_set_new(data, "detail",
                        fits ? json_deep_copy(detail)
                             : json_pack("{s:b}", "truncated", text != NULL));
    free(text);
    engine_emit(self, exec, "PhaseToolCall", data);
}
