/* claude_stream: the reading of Claude Code's stream-json lines (see
 * claude_stream.h), apart from the process that writes them. */
#include "worker/claude_stream.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int64_t int_field(const json_t *object, const char *name)
{
    json_t *v = json_object_get(object, name);
    if (json_is_integer(v))
        return json_integer_value(v) > 0 ? (int64_t)json_integer_value(v) : 0;
    if (json_is_real(v) && json_real_value(v) > 0 && json_real_value(v) < 9e18)
        return (int64_t)json_real_value(v);
    return 0;
}

/* True when id was counted already; remembers it otherwise. */
static bool seen_before(claude_stream_t *self, const char *id)
{
    for (size_t i = 0; i < CLAUDE_SEEN_IDS_MAX && self->seen_ids[i]; i++)
        if (strcmp(self->seen_ids[i], id) == 0)
            return true;
    size_t slot = self->seen_next++ % CLAUDE_SEEN_IDS_MAX;
    free(self->seen_ids[slot]);
    self->seen_ids[slot] = strdup(id);
    return false;
}

static void show_text(claude_stream_t *self, worker_run_t *run, const char *text, size_t len)
{
    if (self->shown_text)
        worker_run_append(run, "\n", 1);
    worker_run_append(run, text, len);
    self->shown_text = len > 0 && text[len - 1] != '\n';
}

static void on_assistant(claude_stream_t *self, worker_run_t *run, const json_t *line)
{
    const json_t *message = json_object_get(line, "message");
    if (!json_is_object(message))
        return;
    worker_usage_t *usage = worker_run_usage(run);
    const char *id = json_string_value(json_object_get(message, "id"));
    const json_t *counts = json_object_get(message, "usage");
    if (json_is_object(counts) && (!id || !seen_before(self, id))) {
        usage->input_tokens += int_field(counts, "input_tokens");
        usage->output_tokens += int_field(counts, "output_tokens");
        usage->cache_creation_tokens += int_field(counts, "cache_creation_input_tokens");
        usage->cache_read_tokens += int_field(counts, "cache_read_input_tokens");
    }
    const char *model = json_string_value(json_object_get(message, "model"));
    if (model && *model && strcmp(model, "<synthetic>") != 0)
        worker_copy_text(usage->model, sizeof usage->model, model);
    size_t i;
    json_t *block;
    json_array_foreach(json_object_get(message, "content"), i, block) {
        const char *type = json_string_value(json_object_get(block, "type"));
        if (!type)
            continue;
        if (strcmp(type, "text") == 0) {
            json_t *text = json_object_get(block, "text");
            if (json_is_string(text))
                show_text(self, run, json_string_value(text), json_string_length(text));
        } else if (strcmp(type, "tool_use") == 0) {
            char *input = json_dumps(json_object_get(block, "input"),
                                     JSON_COMPACT | JSON_ENCODE_ANY);
            worker_run_tool_use(run, json_string_value(json_object_get(block, "id")),
                                json_string_value(json_object_get(block, "name")), input);
            free(input);
        }
    }
}

static void on_user(worker_run_t *run, const json_t *line)
{
    size_t i;
    json_t *block;
    json_array_foreach(json_object_get(json_object_get(line, "message"), "content"), i, block) {
        const char *type = json_string_value(json_object_get(block, "type"));
        if (type && strcmp(type, "tool_result") == 0)
            worker_run_tool_result(run,
                                   json_string_value(json_object_get(block, "tool_use_id")),
                                   !json_is_true(json_object_get(block, "is_error")));
    }
}

static void on_result(claude_stream_t *self, worker_run_t *run, const json_t *line)
{
    worker_usage_t *usage = worker_run_usage(run);
    self->results_seen++;
    self->result_seen = true;
    self->result_is_error = json_is_true(json_object_get(line, "is_error"));
    const char *subtype = json_string_value(json_object_get(line, "subtype"));
    snprintf(self->result_subtype, sizeof self->result_subtype, "%s", subtype ? subtype : "");
    json_t *text = json_object_get(line, "result");
    free(self->result_text);
    self->result_text = json_is_string(text) ? strdup(json_string_value(text)) : NULL;
    const json_t *counts = json_object_get(line, "usage");
    if (json_is_object(counts)) {
        usage->input_tokens = int_field(counts, "input_tokens");
        usage->output_tokens = int_field(counts, "output_tokens");
        usage->cache_creation_tokens = int_field(counts, "cache_creation_input_tokens");
        usage->cache_read_tokens = int_field(counts, "cache_read_input_tokens");
    }
    json_t *cost = json_object_get(line, "total_cost_usd");
    if (json_is_number(cost) && json_number_value(cost) >= 0) {
        usage->cost_reported = true;
        usage->cost_usd = json_number_value(cost);
    }
    if (json_is_integer(json_object_get(line, "duration_ms")))
        usage->duration_ms = int_field(line, "duration_ms");
    if (json_is_integer(json_object_get(line, "num_turns")))
        usage->num_turns = int_field(line, "num_turns");
}

claude_line_t claude_stream_line(claude_stream_t *self, worker_run_t *run, const char *line,
                                 size_t len)
{
    if (len > 0 && line[len - 1] == '\r')
        len--;
    if (len == 0)
        return CLAUDE_LINE_EMPTY;
    json_error_t jerr;
    json_t *parsed = json_loadb(line, len, 0, &jerr);
    const char *type = json_string_value(json_object_get(parsed, "type"));
    if (!json_is_object(parsed) || !type) {
        json_decref(parsed);
        show_text(self, run, line, len);
        self->shown_text = true;
        return CLAUDE_LINE_OTHER;
    }
    claude_line_t kind = CLAUDE_LINE_OTHER;
    if (strcmp(type, "system") == 0) {
        const char *subtype = json_string_value(json_object_get(parsed, "subtype"));
        const char *model = json_string_value(json_object_get(parsed, "model"));
        if (subtype && strcmp(subtype, "init") == 0 && model && *model) {
            worker_usage_t *usage = worker_run_usage(run);
            worker_copy_text(usage->model, sizeof usage->model, model);
        }
    } else if (strcmp(type, "assistant") == 0) {
        on_assistant(self, run, parsed);
    } else if (strcmp(type, "user") == 0) {
        on_user(run, parsed);
    } else if (strcmp(type, "result") == 0) {
        on_result(self, run, parsed);
        kind = CLAUDE_LINE_RESULT;
    }
    json_decref(parsed);
    return kind;
}

void claude_stream_free(claude_stream_t *self)
{
    /* Slots are filled in order: only the first seen_next can hold an id. */
    for (size_t i = 0; i < CLAUDE_SEEN_IDS_MAX && i < self->seen_next; i++) {
        free(self->seen_ids[i]);
        self->seen_ids[i] = NULL;
    }
    self->seen_next = 0;
    free(self->result_text);
    self->result_text = NULL;
}
