/* anthropic_sse: the reading of the Messages API's event stream (see
 * anthropic_sse.h), apart from the transfer that brings it. */
#include "worker/anthropic_sse.h"
#include "common/buffer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int64_t count_of(const json_t *object, const char *name, int64_t otherwise)
{
    json_t *v = json_object_get(object, name);
    return json_is_integer(v) && json_integer_value(v) >= 0 ? (int64_t)json_integer_value(v)
                                                            : otherwise;
}

static void on_event(anthropic_sse_t *self, worker_run_t *run, const char *data, size_t len)
{
    json_error_t jerr;
    json_t *event = json_loadb(data, len, 0, &jerr);
    if (!json_is_object(event)) {
        json_decref(event);
        return; /* not ours to judge: the API only sends JSON data */
    }
    worker_usage_t *usage = run ? worker_run_usage(run) : &self->usage;
    const char *type = json_string_value(json_object_get(event, "type"));
    if (!type)
        type = self->event;
    if (strcmp(type, "message_start") == 0) {
        json_t *message = json_object_get(event, "message");
        json_t *counts = json_object_get(message, "usage");
        const char *model = json_string_value(json_object_get(message, "model"));
        if (model && *model)
            worker_copy_text(usage->model, sizeof usage->model, model);
        usage->input_tokens = count_of(counts, "input_tokens", 0);
        usage->output_tokens = count_of(counts, "output_tokens", 0);
        usage->cache_creation_tokens = count_of(counts, "cache_creation_input_tokens", 0);
        usage->cache_read_tokens = count_of(counts, "cache_read_input_tokens", 0);
    } else if (strcmp(type, "content_block_delta") == 0) {
        json_t *delta = json_object_get(event, "delta");
        json_t *text = json_object_get(delta, "text");
        const char *delta_type = json_string_value(json_object_get(delta, "type"));
        if (run && delta_type && strcmp(delta_type, "text_delta") == 0 && json_is_string(text)) {
            worker_run_append(run, json_string_value(text), json_string_length(text));
            self->shown_text = self->shown_text || json_string_length(text) > 0;
        }
    } else if (strcmp(type, "message_delta") == 0) {
        json_t *counts = json_object_get(event, "usage");
        const char *stop = json_string_value(json_object_get(json_object_get(event, "delta"),
                                                             "stop_reason"));
        if (stop)
            worker_copy_text(usage->stop_reason, sizeof usage->stop_reason, stop);
        /* Counts here are totals so far (input ones only in newer API versions). */
        usage->output_tokens = count_of(counts, "output_tokens", usage->output_tokens);
        usage->input_tokens = count_of(counts, "input_tokens", usage->input_tokens);
        usage->cache_creation_tokens =
            count_of(counts, "cache_creation_input_tokens", usage->cache_creation_tokens);
        usage->cache_read_tokens =
            count_of(counts, "cache_read_input_tokens", usage->cache_read_tokens);
    } else if (strcmp(type, "message_stop") == 0) {
        self->message_stopped = true;
    } else if (strcmp(type, "error") == 0) {
        json_t *error = json_object_get(event, "error");
        const char *etype = json_string_value(json_object_get(error, "type"));
        const char *message = json_string_value(json_object_get(error, "message"));
        free(self->stream_error);
        if (asprintf(&self->stream_error, "%s: %s", etype ? etype : "error",
                     message ? message : "(no message)") < 0)
            self->stream_error = NULL;
        self->stream_error_retryable =
            etype && (strcmp(etype, "overloaded_error") == 0 || strcmp(etype, "api_error") == 0);
    }
    json_decref(event);
}

/* One SSE line: "field: value", a comment, or the blank line ending an event. */
static void on_line(anthropic_sse_t *self, worker_run_t *run, const char *line, size_t len)
{
    if (len > 0 && line[len - 1] == '\r')
        len--;
    if (len == 0) {
        if (self->data_len > 0)
            on_event(self, run, self->data, self->data_len);
        self->data_len = 0;
        self->event[0] = '\0';
        return;
    }
    if (line[0] == ':')
        return;
    const char *colon = memchr(line, ':', len);
    size_t name_len = colon ? (size_t)(colon - line) : len;
    const char *value = colon ? colon + 1 : line + len;
    size_t value_len = (size_t)(line + len - value);
    if (value_len > 0 && *value == ' ') {
        value++;
        value_len--;
    }
    if (name_len == 5 && strncmp(line, "event", 5) == 0) {
        snprintf(self->event, sizeof self->event, "%.*s", (int)value_len, value);
    } else if (name_len == 4 && strncmp(line, "data", 4) == 0) {
        size_t need = self->data_len + value_len + 2;
        if (need > ANTHROPIC_SSE_DATA_MAX)
            return;
        if (!syn_buffer_reserve(&self->data, &self->data_cap, need, 4096))
            return;
        if (self->data_len > 0)
            self->data[self->data_len++] = '\n';
        memcpy(self->data + self->data_len, value, value_len);
        self->data_len += value_len;
    }
}

/* What on_line needs besides the stream. */
typedef struct {
    anthropic_sse_t *self;
    worker_run_t *run;
} line_context_t;

static void on_line_cb(void *arg, char *line, size_t len)
{
    line_context_t *context = arg;
    on_line(context->self, context->run, line, len);
}

void anthropic_sse_init(anthropic_sse_t *self)
{
    memset(self, 0, sizeof *self);
    self->lines.max = ANTHROPIC_SSE_LINE_MAX;
}

void anthropic_sse_feed(anthropic_sse_t *self, worker_run_t *run, const char *data, size_t len)
{
    line_context_t context = {self, run};
    worker_lines_feed(&self->lines, data, len, on_line_cb, &context);
}

void anthropic_sse_end(anthropic_sse_t *self, worker_run_t *run)
{
    line_context_t context = {self, run};
    worker_lines_flush(&self->lines, on_line_cb, &context);
    on_line(self, run, "", 0); /* an event the stream did not end with a blank line */
}

void anthropic_sse_reset(anthropic_sse_t *self)
{
    worker_lines_reset(&self->lines);
    self->event[0] = '\0';
    self->data_len = 0;
    self->message_stopped = false;
    free(self->stream_error);
    self->stream_error = NULL;
    self->stream_error_retryable = false;
}

void anthropic_sse_free(anthropic_sse_t *self)
{
    worker_lines_free(&self->lines);
    free(self->data);
    self->data = NULL;
    self->data_len = self->data_cap = 0;
    free(self->stream_error);
    self->stream_error = NULL;
}
