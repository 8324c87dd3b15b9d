/* ops: the table of request operations and their argument schemas (proto/ops.h). */
#include "proto/ops.h"
#include "common/budget_usd.h"

#include <stdio.h>
#include <string.h>

#define STR(n, req) {n, SYN_ARG_STRING, req, 0, 0}
#define INT(n, lo, hi) {n, SYN_ARG_INTEGER, false, lo, hi}
#define PAGE INT("page", 1, 1000000000)
#define PAGE_SIZE INT("page_size", 1, 100)
#define EXECUTION_ID STR("execution_id", true)

/* In syn_op_t's order (checked by syn_op_spec's static assertion on the count). */
static const syn_op_spec_t specs[] = {
    [SYN_OP_HEALTH] = {"health", {{0}}, 0, NULL},
    [SYN_OP_WORKFLOW_CREATE] = {"workflow.create", {STR("id", false)}, 1,
                                "the workflow: name, description, workflow_type, "
                                "classification, input_declarations, phases (template/)"},
    [SYN_OP_WORKFLOW_LIST] = {"workflow.list",
                              {PAGE, PAGE_SIZE, STR("workflow_type", false),
                               {"include_archived", SYN_ARG_BOOLEAN, false, 0, 0}},
                              4, NULL},
    [SYN_OP_WORKFLOW_GET] = {"workflow.get", {STR("id", true)}, 1, NULL},
    [SYN_OP_WORKFLOW_INSTALL] = {"workflow.install",
                                 {STR("source_hash", true),
                                  {"workflow", SYN_ARG_OBJECT, true, 0, 0}},
                                 2, "the workflow's own fields, as workflow.create's"},
    [SYN_OP_WORKFLOW_ARCHIVE] = {"workflow.archive", {STR("id", true)}, 1, NULL},
    [SYN_OP_WORKFLOW_PHASE_UPDATE] = {"workflow.phase_update",
                                      {STR("workflow_id", true), STR("phase_id", true)}, 2,
                                      "the phase's new settings: prompt_template, model, "
                                      "timeout_seconds, allowed_tools (template/spec.c)"},
    [SYN_OP_EXECUTION_START] = {"execution.start",
                                {STR("workflow_id", true), STR("task", false),
                                 {"inputs", SYN_ARG_STRING_MAP, false, 0, 0},
                                 {"repos", SYN_ARG_STRINGS, false, 0, 0},
                                 STR("idempotency_key", false),
                                 INT("priority", SYN_OP_PRIORITY_MIN, SYN_OP_PRIORITY_MAX),
                                 {"max_budget_usd", SYN_ARG_NUMBER, false, 0, SYN_BUDGET_USD_MAX}},
                                7, NULL},
    [SYN_OP_EXECUTION_STATUS] = {"execution.status",
                                 {STR("workflow_id", true), EXECUTION_ID}, 2, NULL},
    [SYN_OP_EXECUTION_ACTIVE] = {"execution.active", {INT("limit", 1, 100)}, 1, NULL},
    [SYN_OP_EXECUTION_CANCEL] = {"execution.cancel", {STR("reason", false), EXECUTION_ID}, 2,
                                 NULL},
    [SYN_OP_EXECUTION_PAUSE] = {"execution.pause", {STR("reason", false), EXECUTION_ID}, 2,
                                NULL},
    [SYN_OP_EXECUTION_RESUME] = {"execution.resume", {EXECUTION_ID}, 1, NULL},
    [SYN_OP_EXECUTION_INJECT] = {"execution.inject",
                                 {STR("message", true), STR("role", false), EXECUTION_ID}, 3,
                                 NULL},
    [SYN_OP_EXECUTION_STATE] = {"execution.state", {EXECUTION_ID}, 1, NULL},
    [SYN_OP_EXECUTION_LIST] = {"execution.list",
                               {STR("status", false), STR("workflow_id", false), PAGE,
                                PAGE_SIZE},
                               4, NULL},
    [SYN_OP_EXECUTION_GET] = {"execution.get", {EXECUTION_ID}, 1, NULL},
    [SYN_OP_EXECUTION_OUTPUT] = {"execution.output", {STR("phase_id", true), EXECUTION_ID}, 2,
                                 NULL},
    [SYN_OP_WORKFLOW_RUNS] = {"workflow.runs", {STR("workflow_id", true), PAGE, PAGE_SIZE}, 3,
                              NULL},
    [SYN_OP_EVENTS_REPLAY] = {"events.replay",
                              {STR("execution_id", false), INT("after_seq", 0, INT64_MAX),
                               INT("limit", 1, SYN_OP_REPLAY_LIMIT_MAX)},
                              3, NULL},
    [SYN_OP_METRICS_GET] = {"metrics.get", {{0}}, 0, NULL},
    /* the fleet (issue 18) */
    [SYN_OP_WORKERS_LIST] = {"workers.list", {{0}}, 0, NULL},
    [SYN_OP_READY] = {"ready", {{0}}, 0, NULL},
    /* the team controls (issue 19) */
    [SYN_OP_EXECUTION_RERUN] = {"execution.rerun",
                                {STR("from_phase", false), STR("task", false),
                                 {"inputs", SYN_ARG_STRING_MAP, false, 0, 0}, EXECUTION_ID,
                                 INT("priority", SYN_OP_PRIORITY_MIN, SYN_OP_PRIORITY_MAX)},
                                5, NULL},
    /* the original's clients (issue 17) */
    [SYN_OP_COSTS_REPORT] = {"costs.report",
                             {STR("execution_id", false), INT("limit", 1, 200),
                              STR("workflow_id", false)},
                             3, NULL},
    /* approval gates (issue 17) */
    [SYN_OP_EXECUTION_APPROVE] = {"execution.approve", {STR("comment", false), EXECUTION_ID}, 2,
                                  NULL},
    [SYN_OP_EXECUTION_REJECT] = {"execution.reject", {STR("reason", false), EXECUTION_ID}, 2,
                                 NULL},
    [SYN_OP_EXECUTION_ARTIFACTS] = {"execution.artifacts", {EXECUTION_ID}, 1, NULL},
    [SYN_OP_EXECUTION_ARTIFACT] = {"execution.artifact",
                                   {EXECUTION_ID, STR("phase_id", true), STR("path", true),
                                    INT("offset", 0, INT64_MAX),
                                    INT("length", 0, SYN_OP_ARTIFACT_READ_MAX)},
                                   5, NULL},
};

_Static_assert(sizeof specs / sizeof specs[0] == SYN_OP_COUNT, "one spec per op");

bool syn_op_idempotency_key_ok(const char *key)
{
    size_t len = strlen(key);
    bool printable = len >= 1 && len <= SYN_OP_IDEMPOTENCY_KEY_MAX;
    for (size_t i = 0; printable && i < len; i++)
        printable = key[i] >= 0x20 && key[i] < 0x7f;
    return printable;
}

const syn_op_spec_t *syn_op_spec(syn_op_t op)
{
    return &specs[op];
}

const char *syn_op_name(syn_op_t op)
{
    return specs[op].name;
}

int syn_op_find(const char *name, syn_op_t *op)
{
    for (size_t i = 0; name && i < SYN_OP_COUNT; i++)
        if (strcmp(specs[i].name, name) == 0) {
            *op = (syn_op_t)i;
            return 0;
        }
    return -1;
}

/* The value's fault against its argument's type, in why; true when it has none. */
static bool arg_ok(const syn_op_arg_t *arg, const json_t *v, char *why, size_t whylen)
{
    const char *name = arg->name;
    switch (arg->type) {
    case SYN_ARG_STRING:
        if (json_is_string(v))
            return true;
        snprintf(why, whylen, "%s must be a string", name);
        return false;
    case SYN_ARG_INTEGER:
        if (json_is_integer(v) && json_integer_value(v) >= arg->min &&
            json_integer_value(v) <= arg->max)
            return true;
        snprintf(why, whylen, "%s must be an integer from %lld to %lld", name,
                 (long long)arg->min, (long long)arg->max);
        return false;
    case SYN_ARG_NUMBER:
        if (json_is_number(v) && json_number_value(v) > (double)arg->min &&
            json_number_value(v) <= (double)arg->max)
            return true;
        snprintf(why, whylen, "%s must be a number greater than %lld, at most %lld", name,
                 (long long)arg->min, (long long)arg->max);
        return false;
    case SYN_ARG_BOOLEAN:
        if (json_is_boolean(v))
            return true;
        snprintf(why, whylen, "%s must be a boolean", name);
        return false;
    case SYN_ARG_OBJECT:
        if (json_is_object(v))
            return true;
        snprintf(why, whylen, "%s must be an object", name);
        return false;
    case SYN_ARG_STRINGS: {
        if (!json_is_array(v)) {
            snprintf(why, whylen, "%s must be an array of strings", name);
            return false;
        }
        size_t i;
        const json_t *item;
        json_array_foreach(v, i, item)
            if (!json_is_string(item)) {
                snprintf(why, whylen, "%s[%zu] must be a string", name, i);
                return false;
            }
        return true;
    }
    case SYN_ARG_STRING_MAP: {
        if (!json_is_object(v)) {
            snprintf(why, whylen, "%s must be an object of strings", name);
            return false;
        }
        const char *key;
        const json_t *item;
        json_object_foreach((json_t *)v, key, item)
            if (!json_is_string(item)) {
                snprintf(why, whylen, "%s.%s must be a string", name, key);
                return false;
            }
        return true;
    }
    }
    snprintf(why, whylen, "%s has no known type", name);
    return false;
}

int syn_op_check_args(syn_op_t op, const json_t *args, char *why, size_t whylen)
{
    if (!json_is_object(args)) {
        snprintf(why, whylen, "args must be an object");
        return -1;
    }
    const syn_op_spec_t *spec = &specs[op];
    for (size_t i = 0; i < spec->arg_count; i++) {
        const syn_op_arg_t *arg = &spec->args[i];
        const json_t *v = json_object_get(args, arg->name);
        if (!v || json_is_null(v)) {
            if (!arg->required)
                continue;
            snprintf(why, whylen, "%s is required", arg->name);
            return -1;
        }
        if (!arg_ok(arg, v, why, whylen))
            return -1;
    }
    return 0;
}
