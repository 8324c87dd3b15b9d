/* spec: the tables of a workflow, the walk over a JSON value, and the two JSON
 * wordings of what the walk finds (the YAML one is template/schema.c's). */
#include "template/spec.h"

#include "common/budget_usd.h"
#include "common/ids.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const spec_workflow_types[] = {"research", "planning", "implementation",
                                           "review",   "deployment", "custom", NULL};
const char *const spec_classifications[] = {"simple", "standard", "complex", "epic", NULL};
/* What a phase's sandboxed agent may reach (worker/sandbox.h). */
const char *const spec_networks[] = {"none", "proxy", "host", NULL};
const char *const spec_execution_types[] = {"sequential", "human_in_loop", NULL};
const char *const spec_approvals[] = {"none", "required", NULL};

/* The settings a phase edit may change are the phase's own: one definition each. */
#define MODEL_FIELD {.name = "model", .kind = SPEC_STRING, .fallback = "null"}
#define TIMEOUT_FIELD                                                                          \
    {.name = "timeout_seconds", .kind = SPEC_INT, .has_min = true, .min = SPEC_TIMEOUT_MIN,   \
     .has_max = true, .max = SPEC_TIMEOUT_MAX, .fallback = "300"}
#define ALLOWED_TOOLS_FIELD                                                                    \
    {.name = "allowed_tools", .kind = SPEC_STRING_LIST, .fallback = "[]", .alias = "tools"}

static const spec_field_t input_fields[] = {
    {.name = "name", .kind = SPEC_STRING, .required = true, .min_len = 1},
    {.name = "description", .kind = SPEC_STRING, .fallback = "null"},
    {.name = "required", .kind = SPEC_BOOL, .fallback = "true"},
    {.name = "default", .kind = SPEC_STRING, .fallback = "null"},
    {.name = NULL},
};
const spec_object_t spec_input = {input_fields};

/* The original's phase `agent`: which agent runs the phase (docs/templates.md, "The
 * original's keys"); extra keys refused, as its own model does. */
static const spec_field_t agent_fields[] = {
    {.name = "provider", .kind = SPEC_STRING, .min_len = 1},
    {.name = "model", .kind = SPEC_STRING},
    {.name = "agent_id", .kind = SPEC_STRING, .min_len = 1},
    {.name = "allow_delegation", .kind = SPEC_BOOL},
    /* its oldest format's agent: type is the provider, max_tokens the phase's cap,
     * temperature a sampling setting syn's providers do not take (a warning) */
    {.name = "type", .kind = SPEC_STRING, .min_len = 1},
    {.name = "max_tokens", .kind = SPEC_INT, .has_min = true, .min = 1, .has_max = true,
     .max = SPEC_MAX_TOKENS_MAX},
    {.name = "temperature", .kind = SPEC_NUMBER, .has_min = true, .min = 0, .has_max = true,
     .max = 2},
    {.name = NULL},
};
const spec_object_t spec_agent = {agent_fields};

/* The original's oldest format (template/oldest_format.c): a phase's inputs (a
 * workflow input, or an earlier phase's output by another name), its outputs, and
 * the workflow's deliverables. Kept as written. */
static const spec_field_t phase_input_fields[] = {
    {.name = "name", .kind = SPEC_STRING, .required = true, .min_len = 1},
    {.name = "type", .kind = SPEC_STRING},
    {.name = "required", .kind = SPEC_BOOL},
    {.name = "default", .kind = SPEC_STRING},
    {.name = "description", .kind = SPEC_STRING},
    {.name = "from_phase", .kind = SPEC_STRING, .min_len = 1},
    {.name = "from_output", .kind = SPEC_STRING, .min_len = 1},
    {.name = NULL},
};
static const spec_object_t spec_phase_input = {phase_input_fields};

static const spec_field_t phase_output_fields[] = {
    {.name = "name", .kind = SPEC_STRING, .required = true, .min_len = 1},
    {.name = "type", .kind = SPEC_STRING},
    {.name = "artifact_type", .kind = SPEC_STRING},
    {.name = "description", .kind = SPEC_STRING},
    {.name = NULL},
};
static const spec_object_t spec_phase_output = {phase_output_fields};

static const spec_field_t deliverable_fields[] = {
    {.name = "phase", .kind = SPEC_STRING, .required = true, .min_len = 1},
    {.name = "output", .kind = SPEC_STRING, .min_len = 1},
    {.name = "name", .kind = SPEC_STRING},
    {.name = NULL},
};
static const spec_object_t spec_deliverable = {deliverable_fields};

static const spec_field_t phase_fields[] = {
    {.name = "phase_id", .yaml = "id", .kind = SPEC_STRING, .required = true, .min_len = 1},
    {.name = "name", .kind = SPEC_STRING, .required = true},
    {.name = "order", .kind = SPEC_INT, .required = true, .has_min = true, .min = 0},
    {.name = "prompt_template", .kind = SPEC_STRING, .required = true, .yaml_or = "prompt_file"},
    {.name = "prompt_file", .kind = SPEC_FILE},
    MODEL_FIELD,
    TIMEOUT_FIELD,
    {.name = "max_attempts", .kind = SPEC_INT, .has_min = true, .min = 1, .has_max = true,
     .max = SPEC_MAX_ATTEMPTS_MAX, .fallback = "3"},
    {.name = "retries", .kind = SPEC_INT, .has_min = true, .min = 0, .has_max = true,
     .max = SPEC_RETRIES_MAX},
    {.name = "retry_backoff_seconds", .kind = SPEC_NUMBER, .has_min = true, .min = 0,
     .has_max = true, .max = SPEC_BACKOFF_MAX},
    {.name = "max_tokens", .kind = SPEC_INT, .has_min = true, .min = 1, .has_max = true,
     .max = SPEC_MAX_TOKENS_MAX},
    {.name = "provider", .kind = SPEC_STRING, .min_len = 1},
    {.name = "description", .kind = SPEC_STRING, .fallback = "null"},
    {.name = "argument_hint", .kind = SPEC_STRING, .fallback = "null"},
    ALLOWED_TOOLS_FIELD,
    {.name = "network", .kind = SPEC_ENUM, .choices = spec_networks, .fallback = "\"proxy\""},
    /* the original's keys: a gate, and the artifact names it declares (kept, shown,
     * told to the agent; never enforced, as there) */
    {.name = "execution_type", .kind = SPEC_ENUM, .choices = spec_execution_types},
    {.name = "approval", .kind = SPEC_ENUM, .choices = spec_approvals},
    {.name = "input_artifacts", .kind = SPEC_STRING_LIST, .fallback = "[]"},
    {.name = "output_artifacts", .kind = SPEC_STRING_LIST, .fallback = "[]"},
    {.name = "agent", .kind = SPEC_OBJECT, .items = &spec_agent},
    {.name = "inputs", .kind = SPEC_OBJECT_LIST, .items = &spec_phase_input},
    {.name = "outputs", .kind = SPEC_OBJECT_LIST, .items = &spec_phase_output},
    {.name = NULL},
};
const spec_object_t spec_phase = {phase_fields};

/* The original's interactive provider drives a terminal pane of the agent agent_id
 * names; syn runs agents headless only, so the pane's agent is the provider. */
#define INTERACTIVE_PROVIDER "claude-interactive"

static const char *text_of(const json_t *object, const char *key)
{
    const char *text = json_string_value(json_object_get(object, key));
    return text && *text ? text : NULL;
}

const char *spec_phase_provider(const json_t *phase)
{
    const char *own = text_of(phase, "provider");
    if (own)
        return own;
    const json_t *agent = json_object_get(phase, "agent");
    const char *provider = text_of(agent, "provider");
    if (!provider)
        provider = text_of(agent, "type"); /* the oldest format's name for it */
    if (provider && strcmp(provider, INTERACTIVE_PROVIDER) == 0) {
        const char *pane = text_of(agent, "agent_id");
        return pane ? pane : "claude";
    }
    return provider;
}

const char *spec_phase_model(const json_t *phase)
{
    const char *own = text_of(phase, "model");
    return own ? own : text_of(json_object_get(phase, "agent"), "model");
}

json_t *spec_workflow_warnings(const json_t *workflow)
{
    json_t *out = json_array();
    size_t i;
    const json_t *phase;
    json_array_foreach(json_object_get(workflow, "phases"), i, phase) {
        const char *id = text_of(phase, "phase_id");
        const json_t *agent = json_object_get(phase, "agent");
        const char *provider = text_of(agent, "provider"), *pane = text_of(agent, "agent_id");
        const char *runs = spec_phase_provider(phase);
        bool interactive = provider && strcmp(provider, INTERACTIVE_PROVIDER) == 0;
        if (interactive)
            json_array_append_new(out, json_sprintf("phase '%s': agent.provider '%s' has no "
                                                    "terminal in syn: the phase runs headless "
                                                    "on workers of provider '%s'",
                                                    id, provider, runs));
        else if (pane && (!runs || strcmp(pane, runs) != 0))
            json_array_append_new(out, json_sprintf("phase '%s': agent.agent_id '%s' chooses "
                                                    "a terminal pane only with provider '%s'; "
                                                    "the phase runs on %s%s%s",
                                                    id, pane, INTERACTIVE_PROVIDER,
                                                    runs ? "provider '" : "any worker",
                                                    runs ? runs : "", runs ? "'" : ""));
        if (json_object_get(agent, "temperature"))
            json_array_append_new(out, json_sprintf("phase '%s': agent.temperature is not "
                                                    "honoured: syn's providers use their "
                                                    "agent's own sampling",
                                                    id));
        if (json_is_true(json_object_get(agent, "allow_delegation")))
            json_array_append_new(out, json_sprintf("phase '%s': agent.allow_delegation is not "
                                                    "honoured: syn gives an agent its own "
                                                    "provider's credentials only, so a CLI it "
                                                    "delegates to must bring its own",
                                                    id));
    }
    return out;
}

bool spec_phase_is_gate(const json_t *phase)
{
    const char *type = json_string_value(json_object_get(phase, "execution_type"));
    const char *approval = json_string_value(json_object_get(phase, "approval"));
    return (type && strcmp(type, "human_in_loop") == 0) ||
           (approval && strcmp(approval, "required") == 0);
}

static const spec_field_t workflow_fields[] = {
    {.name = "id", .kind = SPEC_ID},
    {.name = "name", .kind = SPEC_STRING, .required = true},
    {.name = "description", .kind = SPEC_STRING, .fallback = "null"},
    {.name = "workflow_type", .yaml = "type", .kind = SPEC_ENUM, .choices = spec_workflow_types,
     .fallback = "\"custom\""},
    {.name = "classification", .kind = SPEC_ENUM, .choices = spec_classifications,
     .fallback = "\"standard\""},
    /* the original's: the default repository of an execution ({{...}} inputs in it),
     * whether one is required, the project it belongs to */
    {.name = "repository", .kind = SPEC_REPOSITORY, .min_len = 1},
    {.name = "requires_repos", .kind = SPEC_BOOL},
    {.name = "project_name", .kind = SPEC_STRING},
    {.name = "input_declarations", .yaml = "inputs", .kind = SPEC_OBJECT_LIST,
     .items = &spec_input, .fallback = "[]"},
    {.name = "phases", .kind = SPEC_OBJECT_LIST, .required = true, .min_len = 1,
     .items = &spec_phase},
    /* the original's oldest format: its version text (syn numbers versions itself:
     * GET /workflows/{id} answers this as template_version) and deliverables */
    {.name = "template_version", .yaml = "version", .kind = SPEC_STRING},
    {.name = "deliverables", .kind = SPEC_OBJECT_LIST, .items = &spec_deliverable},
    /* the team controls (issue 19): at most this many of its executions run at once */
    {.name = "max_concurrent", .kind = SPEC_INT, .has_min = true, .min = 1, .has_max = true,
     .max = SPEC_MAX_CONCURRENT_MAX},
    /* the default budget of its executions, in dollars (an execute's overrides it) */
    {.name = "max_budget_usd", .kind = SPEC_NUMBER, .has_min = true, .min = 0,
     .min_exclusive = true, .has_max = true, .max = SYN_BUDGET_USD_MAX},
    {.name = NULL},
};
const spec_object_t spec_workflow = {workflow_fields};

/* An edit sets a new prompt (never an empty one) and may change these settings. */
static const spec_field_t phase_update_fields[] = {
    {.name = "prompt_template", .kind = SPEC_STRING, .required = true, .min_len = 1},
    MODEL_FIELD,
    TIMEOUT_FIELD,
    ALLOWED_TOOLS_FIELD,
    {.name = NULL},
};
const spec_object_t spec_phase_update = {phase_update_fields};

const spec_field_t *spec_field(const spec_object_t *object, const char *name)
{
    for (const spec_field_t *f = object->fields; f->name; f++)
        if (strcmp(f->name, name) == 0)
            return f;
    return NULL;
}

const char *spec_yaml_key(const spec_field_t *field)
{
    return field->yaml ? field->yaml : field->name;
}

/* --- the walk ------------------------------------------------------------------ */

typedef struct {
    spec_report_fn report;
    void *ctx;
} sink_t;

static void report(const sink_t *sink, const json_t *loc, spec_problem_t problem,
                   const spec_field_t *field, size_t count)
{
    spec_violation_t v = {.loc = loc, .problem = problem, .field = field, .count = count};
    sink->report(sink->ctx, &v);
}

static json_t *loc_key(const json_t *loc, const char *key)
{
    json_t *child = json_copy((json_t *)loc);
    json_array_append_new(child, json_string(key));
    return child;
}

static json_t *loc_index(const json_t *loc, size_t index)
{
    json_t *child = json_copy((json_t *)loc);
    json_array_append_new(child, json_integer((json_int_t)index));
    return child;
}

static bool is_choice(const char *const *choices, const char *text)
{
    for (; *choices; choices++)
        if (strcmp(*choices, text) == 0)
            return true;
    return false;
}

/* true when value lies within the field's bounds, else false with the violation. */
static bool in_range(const spec_field_t *field, double value, const json_t *loc,
                     const sink_t *sink)
{
    if (field->has_min && (value < (double)field->min ||
                           (field->min_exclusive && value == (double)field->min))) {
        report(sink, loc, SPEC_TOO_SMALL, field, 0);
        return false;
    }
    if (field->has_max && value > (double)field->max) {
        report(sink, loc, SPEC_TOO_LARGE, field, 0);
        return false;
    }
    return true;
}

static json_t *check_fields(const spec_object_t *object, json_t *value, const json_t *loc,
                            const sink_t *sink);

static json_t *check_string(const spec_field_t *field, json_t *value, const json_t *loc,
                            const sink_t *sink)
{
    if (!json_is_string(value)) {
        report(sink, loc, SPEC_WRONG_TYPE, field, 0);
        return NULL;
    }
    if (field->kind == SPEC_ID && !syn_id_is_valid(json_string_value(value))) {
        report(sink, loc, SPEC_PATTERN, field, 0);
        return NULL;
    }
    if (json_string_length(value) < field->min_len) {
        report(sink, loc, SPEC_TOO_SHORT, field, json_string_length(value));
        return NULL;
    }
    return json_incref(value);
}

/* Reports an item that is not a string at at (which it releases); false. */
static bool bad_item(const sink_t *sink, json_t *at, const spec_field_t *field)
{
    report(sink, at, SPEC_ITEM_NOT_STRING, field, 0);
    json_decref(at);
    return false;
}

/* A list of strings (SPEC_STRING_LIST) or an object of strings (SPEC_STRING_MAP). */
static json_t *check_strings(const spec_field_t *field, json_t *value, const json_t *loc,
                             const sink_t *sink)
{
    bool is_list = field->kind == SPEC_STRING_LIST;
    if (is_list ? !json_is_array(value) : !json_is_object(value)) {
        report(sink, loc, SPEC_WRONG_TYPE, field, 0);
        return NULL;
    }
    bool ok = true;
    json_t *item;
    if (is_list) {
        size_t i;
        json_array_foreach(value, i, item)
            if (!json_is_string(item))
                ok = bad_item(sink, loc_index(loc, i), field);
    } else {
        const char *key;
        json_object_foreach(value, key, item)
            if (!json_is_string(item))
                ok = bad_item(sink, loc_key(loc, key), field);
    }
    return ok ? json_incref(value) : NULL;
}

static json_t *check_object_list(const spec_field_t *field, json_t *value, const json_t *loc,
                                 const sink_t *sink)
{
    if (!json_is_array(value)) {
        report(sink, loc, SPEC_WRONG_TYPE, field, 0);
        return NULL;
    }
    size_t count = json_array_size(value);
    if (count < field->min_len) {
        report(sink, loc, SPEC_TOO_SHORT, field, count);
        return NULL;
    }
    json_t *out = json_array();
    bool ok = true;
    size_t i;
    json_t *item;
    json_array_foreach(value, i, item) {
        json_t *at = loc_index(loc, i);
        json_t *checked = check_fields(field->items, item, at, sink);
        json_decref(at);
        if (checked)
            json_array_append_new(out, checked);
        else
            ok = false;
    }
    if (!ok)
        json_decref(out);
    return ok ? out : NULL;
}

/* A repository: "url" or {url, ref?}, stored as {url, ref?} so readers meet one shape. */
static json_t *check_repository(const spec_field_t *field, json_t *value, const json_t *loc,
                                const sink_t *sink)
{
    if (json_is_string(value)) {
        if (json_string_length(value) == 0) {
            report(sink, loc, SPEC_TOO_SHORT, field, 0);
            return NULL;
        }
        return json_pack("{s:O}", "url", value);
    }
    if (!json_is_object(value)) {
        report(sink, loc, SPEC_WRONG_TYPE, field, 0);
        return NULL;
    }
    bool ok = true;
    const char *key;
    json_t *item;
    json_object_foreach(value, key, item) {
        json_t *at = loc_key(loc, key);
        bool known = strcmp(key, "url") == 0 || strcmp(key, "ref") == 0;
        bool optional_null = strcmp(key, "ref") == 0 && json_is_null(item);
        if (!known)
            report(sink, at, SPEC_EXTRA, NULL, 0);
        else if (!optional_null && (!json_is_string(item) || json_string_length(item) == 0))
            report(sink, at, json_is_string(item) ? SPEC_TOO_SHORT : SPEC_WRONG_TYPE, field, 0);
        ok = ok && known && (optional_null || (json_is_string(item) && json_string_length(item)));
        json_decref(at);
    }
    if (!json_object_get(value, "url")) {
        json_t *at = loc_key(loc, "url");
        report(sink, at, SPEC_MISSING, field, 0);
        json_decref(at);
        ok = false;
    }
    if (!ok)
        return NULL;
    json_t *ref = json_object_get(value, "ref");
    json_t *out = json_pack("{s:O}", "url", json_object_get(value, "url"));
    if (json_is_string(ref))
        json_object_set(out, "ref", ref);
    return out;
}

/* The checked value (a new reference) or NULL with the violations reported. */
static json_t *check_value(const spec_field_t *field, json_t *value, const json_t *loc,
                           const sink_t *sink)
{
    switch (field->kind) {
    case SPEC_STRING:
    case SPEC_ID:
        return check_string(field, value, loc, sink);
    case SPEC_INT:
        if (!json_is_integer(value)) {
            report(sink, loc, SPEC_WRONG_TYPE, field, 0);
            return NULL;
        }
        return in_range(field, (double)json_integer_value(value), loc, sink) ? json_incref(value)
                                                                            : NULL;
    case SPEC_NUMBER:
        if (!json_is_number(value)) {
            report(sink, loc, SPEC_WRONG_TYPE, field, 0);
            return NULL;
        }
        return in_range(field, json_number_value(value), loc, sink) ? json_incref(value) : NULL;
    case SPEC_BOOL:
        if (!json_is_boolean(value)) {
            report(sink, loc, SPEC_WRONG_TYPE, field, 0);
            return NULL;
        }
        return json_incref(value);
    case SPEC_STRING_LIST:
    case SPEC_STRING_MAP:
        return check_strings(field, value, loc, sink);
    case SPEC_OBJECT_LIST:
        return check_object_list(field, value, loc, sink);
    case SPEC_OBJECT:
        return check_fields(field->items, value, loc, sink);
    case SPEC_LITERAL:
        if (!json_is_string(value) || !is_choice(field->choices, json_string_value(value))) {
            report(sink, loc, SPEC_NOT_CHOICE, field, 0);
            return NULL;
        }
        return json_incref(value);
    case SPEC_ENUM:
        if (!json_is_string(value)) {
            report(sink, loc, SPEC_WRONG_TYPE, field, 0);
            return NULL;
        }
        if (!is_choice(field->choices, json_string_value(value))) {
            report(sink, loc, SPEC_NOT_CHOICE, field, 0);
            return NULL;
        }
        return json_incref(value);
    case SPEC_REPOSITORY:
        return check_repository(field, value, loc, sink);
    case SPEC_FILE:
        break;
    }
    return NULL;
}

/* A key a JSON object may hold: declared, and not one of YAML's own. */
static const spec_field_t *json_field(const spec_object_t *object, const char *key)
{
    const spec_field_t *field = spec_field(object, key);
    return field && field->kind != SPEC_FILE ? field : NULL;
}

static json_t *check_fields(const spec_object_t *object, json_t *value, const json_t *loc,
                            const sink_t *sink)
{
    if (!json_is_object(value)) {
        report(sink, loc, SPEC_NOT_OBJECT, NULL, 0);
        return NULL;
    }
    bool ok = true;
    json_t *out = json_object();
    for (const spec_field_t *f = object->fields; f->name; f++) {
        if (f->kind == SPEC_FILE)
            continue;
        json_t *given = json_object_get(value, f->name);
        if (!given || (json_is_null(given) && !f->required)) {
            if (!given && f->required) {
                json_t *at = loc_key(loc, f->name);
                report(sink, at, SPEC_MISSING, f, 0);
                json_decref(at);
                ok = false;
            }
            continue;
        }
        json_t *at = loc_key(loc, f->name);
        json_t *checked = check_value(f, given, at, sink);
        json_decref(at);
        if (checked)
            json_object_set_new(out, f->name, checked);
        else
            ok = false;
    }
    const char *key;
    json_t *given;
    json_object_foreach(value, key, given) {
        if (!json_field(object, key)) {
            json_t *at = loc_key(loc, key);
            report(sink, at, SPEC_EXTRA, NULL, 0);
            json_decref(at);
            ok = false;
        }
    }
    if (ok)
        return out;
    json_decref(out);
    return NULL;
}

json_t *spec_check(const spec_object_t *object, json_t *value, const json_t *loc,
                   spec_report_fn report_fn, void *ctx)
{
    sink_t sink = {report_fn, ctx};
    return check_fields(object, value, loc, &sink);
}

/* --- the wordings ------------------------------------------------------------- */

void spec_choices_message(const char *const *choices, char *msg, size_t size)
{
    size_t count = 0;
    while (choices[count])
        count++;
    size_t used = (size_t)snprintf(msg, size, "Input should be ");
    for (size_t i = 0; i < count && used < size; i++) {
        const char *sep = i == 0 ? "" : i + 1 == count ? " or " : ", ";
        used += (size_t)snprintf(msg + used, size - used, "%s'%s'", sep, choices[i]);
    }
}

static const char *type_message(const spec_field_t *field, const char **type)
{
    switch (field->kind) {
    case SPEC_INT:
        *type = "int_type";
        return "Input should be a valid integer";
    case SPEC_NUMBER:
        *type = "float_type";
        return "Input should be a valid number";
    case SPEC_BOOL:
        *type = "bool_type";
        return "Input should be a valid boolean";
    case SPEC_STRING_LIST:
    case SPEC_OBJECT_LIST:
        *type = "list_type";
        return "Input should be a valid list";
    case SPEC_STRING_MAP:
    case SPEC_OBJECT:
        *type = "dict_type";
        return "Input should be a valid dictionary";
    case SPEC_REPOSITORY:
        *type = "repository_type";
        return "Input should be a repository URL or {url, ref}";
    default:
        *type = "string_type";
        return "Input should be a valid string";
    }
}

json_t *spec_pydantic_error(const spec_violation_t *v)
{
    char msg[256];
    const char *type = "value_error";
    const spec_field_t *f = v->field;
    switch (v->problem) {
    case SPEC_MISSING:
        snprintf(msg, sizeof msg, "Field required");
        type = "missing";
        break;
    case SPEC_EXTRA:
        snprintf(msg, sizeof msg, "Extra inputs are not permitted");
        type = "extra_forbidden";
        break;
    case SPEC_NOT_OBJECT:
        snprintf(msg, sizeof msg, "Input should be a valid dictionary");
        type = "dict_type";
        break;
    case SPEC_WRONG_TYPE:
        snprintf(msg, sizeof msg, "%s", type_message(f, &type));
        break;
    case SPEC_ITEM_NOT_STRING:
        snprintf(msg, sizeof msg, "Input should be a valid string");
        type = "string_type";
        break;
    case SPEC_TOO_SMALL:
        snprintf(msg, sizeof msg, "Input should be greater than %s%lld",
                 f->min_exclusive ? "" : "or equal to ", f->min);
        type = f->min_exclusive ? "greater_than" : "greater_than_equal";
        break;
    case SPEC_TOO_LARGE:
        snprintf(msg, sizeof msg, "Input should be less than or equal to %lld", f->max);
        type = "less_than_equal";
        break;
    case SPEC_TOO_SHORT:
        if (f->kind == SPEC_OBJECT_LIST) {
            snprintf(msg, sizeof msg, "List should have at least %zu item%s after validation, not %zu",
                     f->min_len, f->min_len == 1 ? "" : "s", v->count);
            type = "too_short";
        } else {
            snprintf(msg, sizeof msg, "String should have at least %zu character%s", f->min_len,
                     f->min_len == 1 ? "" : "s");
            type = "string_too_short";
        }
        break;
    case SPEC_PATTERN:
        snprintf(msg, sizeof msg, "String should match pattern '" SYN_ID_PATTERN "'");
        type = "string_pattern_mismatch";
        break;
    case SPEC_NOT_CHOICE:
        spec_choices_message(f->choices, msg, sizeof msg);
        type = f->kind == SPEC_ENUM ? "enum" : "literal_error";
        break;
    }
    return json_pack("{s:O, s:s, s:s}", "loc", v->loc, "msg", msg, "type", type);
}

/* "phases[0].timeout_seconds" of ["phases", 0, "timeout_seconds"]. */
static void path_of(const json_t *loc, char *buf, size_t size)
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < json_array_size(loc) && used < size; i++) {
        const json_t *part = json_array_get(loc, i);
        int n = json_is_integer(part)
                    ? snprintf(buf + used, size - used, "[%lld]",
                               (long long)json_integer_value(part))
                    : snprintf(buf + used, size - used, "%s%s", used ? "." : "",
                               json_string_value(part));
        if (n < 0)
            break;
        used += (size_t)n;
    }
}

/* "an integer from 1 to 10", "an integer of at least 0", "a number from 0 to 86400". */
static void bounds_text(const spec_field_t *f, char *buf, size_t size)
{
    const char *what = f->kind == SPEC_INT ? "an integer" : "a number";
    if (f->has_min && f->min_exclusive && f->has_max)
        snprintf(buf, size, "%s greater than %lld, at most %lld", what, f->min, f->max);
    else if (f->has_min && f->has_max)
        snprintf(buf, size, "%s from %lld to %lld", what, f->min, f->max);
    else if (f->has_min)
        snprintf(buf, size, "%s of at least %lld", what, f->min);
    else
        snprintf(buf, size, "%s", what);
}

static void list_text(const char *const *choices, char *buf, size_t size)
{
    size_t used = 0;
    buf[0] = '\0';
    for (; *choices && used < size; choices++) {
        int n = snprintf(buf + used, size - used, "%s%s", used ? ", " : "", *choices);
        if (n < 0)
            break;
        used += (size_t)n;
    }
}

/* What a field of this kind must be, when its value is of the wrong type. */
static const char *kind_text(const spec_field_t *f)
{
    switch (f->kind) {
    case SPEC_BOOL:
        return "must be a boolean";
    case SPEC_STRING_LIST:
        return "must be an array of strings";
    case SPEC_OBJECT_LIST:
        return "must be an array";
    case SPEC_STRING_MAP:
        return "must be an object of strings";
    case SPEC_OBJECT:
        return "must be an object";
    case SPEC_REPOSITORY:
        return "must be a repository URL or {url, ref} with non-empty strings";
    default:
        return "must be a string";
    }
}

void spec_sentence(const spec_violation_t *v, char *buf, size_t size)
{
    static const char *const fixed[] = {
        [SPEC_MISSING] = "is required",
        [SPEC_EXTRA] = "is not a known key",
        [SPEC_NOT_OBJECT] = "must be an object",
        [SPEC_ITEM_NOT_STRING] = "must be a string",
        [SPEC_PATTERN] = "must match " SYN_ID_PATTERN,
    };
    char path[256], what[256];
    path_of(v->loc, path, sizeof path);
    const spec_field_t *f = v->field;
    const char *text = v->problem < sizeof fixed / sizeof fixed[0] ? fixed[v->problem] : NULL;
    if (text) {
        snprintf(what, sizeof what, "%s", text);
    } else if (v->problem == SPEC_TOO_SHORT) {
        snprintf(what, sizeof what, "%s", f->kind == SPEC_OBJECT_LIST ? "must be a non-empty array"
                                                                      : "must not be empty");
    } else if (v->problem == SPEC_NOT_CHOICE) {
        char list[200];
        list_text(f->choices, list, sizeof list);
        snprintf(what, sizeof what, "must be one of %s", list);
    } else if (f->kind == SPEC_INT || f->kind == SPEC_NUMBER) {
        char bounds[96];
        bounds_text(f, bounds, sizeof bounds);
        snprintf(what, sizeof what, "must be %s", bounds);
    } else {
        snprintf(what, sizeof what, "%s", kind_text(f));
    }
    snprintf(buf, size, "%s %s", path[0] ? path : "the value", what);
}

/* --- the stored form and the content rule ------------------------------------- */

static json_t *filled(const spec_field_t *field, json_t *given)
{
    if (field->kind == SPEC_OBJECT)
        return spec_with_defaults(field->items, given);
    if (field->kind != SPEC_OBJECT_LIST)
        return json_incref(given);
    json_t *out = json_array();
    size_t i;
    json_t *item;
    json_array_foreach(given, i, item)
        json_array_append_new(out, spec_with_defaults(field->items, item));
    return out;
}

json_t *spec_with_defaults(const spec_object_t *object, const json_t *checked)
{
    json_t *out = json_object();
    for (const spec_field_t *f = object->fields; f->name; f++) {
        if (f->kind == SPEC_FILE || (!f->required && !f->fallback))
            continue;
        json_t *given = json_object_get(checked, f->name);
        if (given)
            json_object_set_new(out, f->name, filled(f, given));
        else if (f->fallback)
            json_object_set_new(out, f->name, json_loads(f->fallback, JSON_DECODE_ANY, NULL));
    }
    for (const spec_field_t *f = object->fields; f->name; f++) {
        json_t *given = json_object_get(checked, f->name);
        if (given && f->kind != SPEC_FILE && !f->required && !f->fallback)
            json_object_set_new(out, f->name, filled(f, given));
    }
    return out;
}

json_t *spec_duplicate_phase(const json_t *phases)
{
    size_t count = json_array_size(phases);
    for (size_t j = 1; j < count; j++) {
        const char *id = json_string_value(json_object_get(json_array_get(phases, j), "phase_id"));
        for (size_t i = 0; i < j; i++) {
            const json_t *other = json_object_get(json_array_get(phases, i), "phase_id");
            if (strcmp(json_string_value(other), id) == 0)
                return json_pack("{s:o}", "detail",
                                 json_sprintf("Duplicate phase_id '%s' in phases[%zu] and "
                                              "phases[%zu]",
                                              id, i, j));
        }
    }
    for (size_t j = 1; j < count; j++) {
        json_int_t order = json_integer_value(json_object_get(json_array_get(phases, j), "order"));
        for (size_t i = 0; i < j; i++)
            if (json_integer_value(json_object_get(json_array_get(phases, i), "order")) == order)
                return json_pack("{s:o}", "detail",
                                 json_sprintf("Duplicate order %lld in phases[%zu] and "
                                              "phases[%zu]",
                                              (long long)order, i, j));
    }
    return NULL;
}
