/* execution: building an execution from its workflow template and showing it. */
#include "broker/execution.h"

#include "common/clock.h"
#include "template/spec.h"
#include "common/utf8.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int broker_set_string(char **field, const char *value)
{
    char *copy = NULL;
    if (value && !(copy = strdup(value)))
        return -1;
    free(*field);
    *field = copy;
    return 0;
}

static int phase_order_cmp(const void *a, const void *b)
{
    const broker_phase_t *x = a, *y = b;
    return (x->order > y->order) - (x->order < y->order);
}

static void phase_clear(broker_phase_t *phase)
{
    free(phase->phase_id);
    free(phase->name);
    free(phase->prompt_template);
    free(phase->model);
    free(phase->output);
    free(phase->error);
    free(phase->worker_key);
    free(phase->worker_name);
    free(phase->provider);
    free(phase->network);
    free(phase->stream);
    json_decref(phase->allowed_tools);
    json_decref(phase->input_artifacts);
    json_decref(phase->output_artifacts);
    json_decref(phase->output_names);
}

static int64_t int_or(const json_t *object, const char *key, int64_t fallback)
{
    const json_t *v = json_object_get(object, key);
    return json_is_integer(v) ? (int64_t)json_integer_value(v) : fallback;
}

/* The strings of a template list (allowed_tools, artifact names), a new array. */
static json_t *strings_of(const json_t *list)
{
    json_t *out = json_array();
    size_t i;
    const json_t *item;
    json_array_foreach(list, i, item)
        if (out && json_is_string(item))
            json_array_append(out, (json_t *)item);
    return out;
}

/* Copies one template phase; -1 with the reason when a required field is missing. */
static int phase_from_json(broker_phase_t *phase, const json_t *spec, size_t index, char *err,
                           size_t errlen)
{
    const char *phase_id = json_string_value(json_object_get(spec, "phase_id"));
    const char *prompt = json_string_value(json_object_get(spec, "prompt_template"));
    const json_t *order = json_object_get(spec, "order");
    if (!json_is_object(spec) || !phase_id || !prompt || !json_is_integer(order)) {
        snprintf(err, errlen, "template phase %zu lacks phase_id, order or prompt_template",
                 index);
        return -1;
    }
    const char *name = json_string_value(json_object_get(spec, "name"));
    /* the phase's own model and provider, else its agent's (the original's `agent`) */
    const char *model = spec_phase_model(spec);
    phase->order = json_integer_value(order);
    phase->timeout_seconds = int_or(spec, "timeout_seconds", BROKER_DEFAULT_TIMEOUT_SECONDS);
    phase->max_attempts = int_or(spec, "max_attempts", BROKER_DEFAULT_MAX_ATTEMPTS);
    if (phase->timeout_seconds < 1)
        phase->timeout_seconds = BROKER_DEFAULT_TIMEOUT_SECONDS;
    if (phase->max_attempts < 1)
        phase->max_attempts = 1;
    phase->retries = int_or(spec, "retries", 0);
    if (phase->retries < 0)
        phase->retries = 0;
    const json_t *backoff = json_object_get(spec, "retry_backoff_seconds");
    phase->retry_backoff_seconds =
        json_is_number(backoff) ? json_number_value(backoff) : BROKER_DEFAULT_RETRY_BACKOFF_SECONDS;
    if (!(phase->retry_backoff_seconds >= 0)) /* also NaN */
        phase->retry_backoff_seconds = BROKER_DEFAULT_RETRY_BACKOFF_SECONDS;
    phase->max_tokens = int_or(spec, "max_tokens", 0);
    if (phase->max_tokens == 0) /* the oldest format gave it on the agent */
        phase->max_tokens = int_or(json_object_get(spec, "agent"), "max_tokens", 0);
    if (phase->max_tokens < 0)
        phase->max_tokens = 0;
    phase->allowed_tools = strings_of(json_object_get(spec, "allowed_tools"));
    phase->gate = spec_phase_is_gate(spec);
    phase->input_artifacts = strings_of(json_object_get(spec, "input_artifacts"));
    phase->output_artifacts = strings_of(json_object_get(spec, "output_artifacts"));
    phase->output_names = json_object();
    size_t k;
    const json_t *input;
    json_array_foreach(json_object_get(spec, "inputs"), k, input) {
        const json_t *from = json_object_get(input, "from_phase");
        const char *as = json_string_value(json_object_get(input, "name"));
        if (json_is_string(from) && as && phase->output_names)
            json_object_set(phase->output_names, as, (json_t *)from);
    }
    const char *provider = spec_phase_provider(spec);
    const char *network = json_string_value(json_object_get(spec, "network"));
    phase->status = BROKER_PHASE_PENDING;
    if (broker_set_string(&phase->phase_id, phase_id) < 0 ||
        broker_set_string(&phase->name, name ? name : phase_id) < 0 ||
        broker_set_string(&phase->prompt_template, prompt) < 0 ||
        broker_set_string(&phase->model, model) < 0 ||
        broker_set_string(&phase->provider, provider && *provider ? provider : NULL) < 0 ||
        broker_set_string(&phase->network, network && *network ? network : NULL) < 0 ||
        !phase->allowed_tools || !phase->input_artifacts || !phase->output_artifacts ||
        !phase->output_names) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}

broker_execution_t *broker_execution_new(const char *id, const char *workflow_id,
                                         int64_t workflow_version, const json_t *template_json,
                                         json_t *inputs, const char *task, json_t *repos,
                                         int64_t created_at, char *err, size_t errlen)
{
    const json_t *phases = json_object_get(template_json, "phases");
    if (!json_is_array(phases) || json_array_size(phases) == 0) {
        snprintf(err, errlen, "template has no phases");
        return NULL;
    }
    if (strlen(id) >= BROKER_EXEC_ID_SIZE) {
        snprintf(err, errlen, "execution id too long");
        return NULL;
    }
    broker_execution_t *self = calloc(1, sizeof *self);
    if (!self) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    snprintf(self->id, sizeof self->id, "%s", id);
    self->workflow_version = workflow_version;
    self->status = BROKER_EXEC_PENDING;
    self->stored_status = -1;
    self->created_at = created_at;
    const json_t *limit = json_object_get(template_json, "max_concurrent");
    self->max_concurrent = json_is_integer(limit) ? (int64_t)json_integer_value(limit) : 0;
    const json_t *budget = json_object_get(template_json, "max_budget_usd");
    self->max_budget_usd = json_is_number(budget) ? json_number_value(budget) : 0;
    self->inputs = inputs ? json_incref(inputs) : json_object();
    self->repos = repos ? json_incref(repos) : json_array();
    self->messages = json_array();
    self->phase_count = json_array_size(phases);
    self->phases = calloc(self->phase_count, sizeof *self->phases);
    if (!self->phases || broker_set_string(&self->workflow_id, workflow_id) < 0 ||
        broker_set_string(&self->task, task) < 0 || !self->inputs || !self->repos ||
        !self->messages) {
        snprintf(err, errlen, "out of memory");
        broker_execution_destroy(&self);
        return NULL;
    }
    for (size_t i = 0; i < self->phase_count; i++)
        if (phase_from_json(&self->phases[i], json_array_get(phases, i), i, err, errlen) < 0) {
            broker_execution_destroy(&self);
            return NULL;
        }
    qsort(self->phases, self->phase_count, sizeof *self->phases, phase_order_cmp);
    return self;
}

void broker_execution_destroy(broker_execution_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    broker_execution_t *self = *self_p;
    if (self->phases)
        for (size_t i = 0; i < self->phase_count; i++)
            phase_clear(&self->phases[i]);
    free(self->phases);
    free(self->workflow_id);
    free(self->task);
    free(self->error);
    json_decref(self->inputs);
    json_decref(self->repos);
    json_decref(self->messages);
    free(self);
    *self_p = NULL;
}

broker_phase_t *broker_execution_find_phase(broker_execution_t *self, const char *phase_id)
{
    for (size_t i = 0; i < self->phase_count; i++)
        if (strcmp(self->phases[i].phase_id, phase_id) == 0)
            return &self->phases[i];
    return NULL;
}

size_t broker_execution_pending_messages(const broker_execution_t *self)
{
    size_t i, n = 0;
    const json_t *m;
    json_array_foreach(self->messages, i, m)
        n += json_is_null(json_object_get(m, "phase_id"));
    return n;
}

broker_phase_t *broker_execution_active_phase(broker_execution_t *self)
{
    if (self->current >= self->phase_count)
        return NULL;
    broker_phase_t *phase = &self->phases[self->current];
    if (phase->status == BROKER_PHASE_QUEUED || phase->status == BROKER_PHASE_RUNNING)
        return phase;
    return NULL;
}

int broker_execution_set_status(broker_execution_t *self, broker_exec_status_t to)
{
    if (!broker_exec_can_transition(self->status, to))
        return -1;
    self->status = to;
    return 0;
}

int broker_phase_set_status(broker_phase_t *phase, broker_phase_status_t to)
{
    if (!broker_phase_can_transition(phase->status, to))
        return -1;
    phase->status = to;
    return 0;
}

void broker_execution_status_view(broker_execution_t *self, broker_status_view_t *view)
{
    broker_phase_t *active = broker_execution_active_phase(self);
    *view = (broker_status_view_t){
        .execution_id = self->id,
        .workflow_id = self->workflow_id,
        .status = self->status,
        .current_phase = active ? active->phase_id : NULL,
        .completed_phases = (int64_t)self->completed_phases,
        .total_phases = (int64_t)self->phase_count,
        .started_at = self->started_at,
        .completed_at = self->completed_at,
        .error = self->error,
    };
}

json_t *broker_time_json(int64_t epoch_us)
{
    if (epoch_us <= 0)
        return json_null();
    char buf[SYN_TIME_BUFSIZE];
    return json_string_nocheck(syn_time_format(epoch_us, buf));
}

/* A string that is not valid UTF-8 cannot become JSON; it never should reach here
 * (the decoder checks what peers send), but a reply must still be produced. */
static json_t *string_or_null(const char *text)
{
    if (!text)
        return json_null();
    json_t *value = json_string(text);
    return value ? value : json_string("(not valid UTF-8)");
}

/* Built key by key rather than with json_pack: every event carries one, and
 * parsing the format string cost more than building the object. The keys are
 * literals (no UTF-8 check needed); the ids were checked when they came in. */
json_t *broker_status_json(const broker_status_view_t *view)
{
    json_t *status = json_object();
    if (!status)
        return NULL;
    json_object_set_new_nocheck(status, "execution_id", string_or_null(view->execution_id));
    json_object_set_new_nocheck(status, "workflow_id", string_or_null(view->workflow_id));
    json_object_set_new_nocheck(status, "status",
                                json_string_nocheck(broker_exec_status_name(view->status)));
    json_object_set_new_nocheck(status, "current_phase", string_or_null(view->current_phase));
    json_object_set_new_nocheck(status, "completed_phases",
                                json_integer((json_int_t)view->completed_phases));
    json_object_set_new_nocheck(status, "total_phases",
                                json_integer((json_int_t)view->total_phases));
    json_object_set_new_nocheck(status, "started_at", broker_time_json(view->started_at));
    json_object_set_new_nocheck(status, "completed_at", broker_time_json(view->completed_at));
    json_object_set_new_nocheck(status, "error", string_or_null(view->error));
    if (view->queue_position > 0)
        json_object_set_new_nocheck(status, "queue_position",
                                    json_integer((json_int_t)view->queue_position));
    if (json_object_size(status) != 9 + (view->queue_position > 0)) {
        json_decref(status);
        return NULL;
    }
    return status;
}

/* A string a peer will accept as text; as string_or_null does for the JSON form. */
static const char *text_or_placeholder(const char *text)
{
    if (!text)
        return NULL;
    size_t len = strlen(text);
    return syn_utf8_valid_prefix((const uint8_t *)text, len) == len ? text : "(not valid UTF-8)";
}

static void pack_time(syn_pack_t *pack, const char *key, int64_t epoch_us)
{
    char buf[SYN_TIME_BUFSIZE];
    syn_pack_str(pack, key, epoch_us > 0 ? syn_time_format(epoch_us, buf) : NULL);
}

void broker_status_pack(syn_pack_t *pack, const char *key, const broker_status_view_t *view)
{
    syn_pack_map(pack, key, 9);
    syn_pack_str(pack, "execution_id", text_or_placeholder(view->execution_id));
    syn_pack_str(pack, "workflow_id", text_or_placeholder(view->workflow_id));
    syn_pack_str(pack, "status", broker_exec_status_name(view->status));
    syn_pack_str(pack, "current_phase", text_or_placeholder(view->current_phase));
    syn_pack_int(pack, "completed_phases", view->completed_phases);
    syn_pack_int(pack, "total_phases", view->total_phases);
    pack_time(pack, "started_at", view->started_at);
    pack_time(pack, "completed_at", view->completed_at);
    syn_pack_str(pack, "error", text_or_placeholder(view->error));
}
