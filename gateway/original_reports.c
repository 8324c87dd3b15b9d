/* original_reports: the original's cost, metrics and export answers
 * (gateway/original_reports.h). */
#include "gateway/original_reports.h"
#include "gateway/validate.h"
#include "template/export.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const export_formats[] = {"package", "plugin", NULL};

static json_int_t int_of(const json_t *object, const char *key)
{
    return json_integer_value(json_object_get(object, key));
}

/* Money as the original writes it (a decimal in a string): "0.012345". */
static json_t *money(double usd)
{
    char text[48];
    snprintf(text, sizeof text, "%.6f", usd < 0 ? 0 : usd);
    size_t n = strlen(text);
    while (n > 3 && text[n - 1] == '0' && text[n - 2] != '.')
        text[--n] = '\0';
    return json_string(text);
}

static double number_of(const json_t *object, const char *key)
{
    return json_number_value(json_object_get(object, key));
}

static json_t *not_found(unsigned *status, const char *what, const char *id)
{
    char text[512];
    snprintf(text, sizeof text, "%s not found for session %s", what, id);
    *status = 404;
    return json_pack("{s:s}", "detail", text);
}

/* --- requests ----------------------------------------------------------------- */

static int query_limit(gateway_query_fn query, void *cls, json_t *args, json_t *errors)
{
    long limit;
    if (gateway_validate_query_int("limit", query(cls, "limit"), 1, 200, 50, &limit, errors) == 0)
        json_object_set_new(args, "limit", json_integer(limit));
    return 0;
}

static int finish(json_t *out, json_t *errors, json_t **args, json_t **error)
{
    if (json_array_size(errors) == 0) {
        json_decref(errors);
        *args = out;
        return 0;
    }
    json_decref(out);
    *error = gateway_validate_error_body(errors);
    return 422;
}

/* "<execution_id>:<phase_id>:<attempt>": ids never hold ':' (SYN_ID_PATTERN). */
static bool session_parts(const char *session, char *execution_id, size_t size,
                          json_t **keep)
{
    const char *first = strchr(session, ':');
    const char *last = strrchr(session, ':');
    if (!first || first == session || last - first < 2 || (size_t)(first - session) >= size)
        return false;
    char *end;
    long attempt = strtol(last + 1, &end, 10);
    if (*end || end == last + 1 || attempt < 1)
        return false;
    memcpy(execution_id, session, (size_t)(first - session));
    execution_id[first - session] = '\0';
    *keep = json_pack("{s:s, s:s%, s:i}", "session", session, "phase_id", first + 1,
                      (size_t)(last - first - 1), "attempt", (int)attempt);
    return *keep != NULL;
}

int gateway_reports_request(const gateway_route_t *route, bool original, gateway_query_fn query,
                            void *cls, syn_op_t *op, json_t **args, json_t **error,
                            json_t **keep)
{
    json_t *errors = json_array();
    json_t *out = json_object();
    switch (route->id) {
    case GATEWAY_ROUTE_WORKFLOW_EXPORT: {
        const char *format = NULL;
        if (!query(cls, "format")) {
            json_decref(errors);
            json_decref(out);
            return -1;
        }
        gateway_validate_query_choice("format", query(cls, "format"), export_formats, &format,
                                      errors);
        *op = SYN_OP_WORKFLOW_GET;
        json_object_set_new(out, "id", json_string(route->params[0]));
        if (format)
            *keep = json_pack("{s:s}", "format", format);
        return finish(out, errors, args, error);
    }
    case GATEWAY_ROUTE_METRICS:
        if (!original) {
            json_decref(errors);
            json_decref(out);
            return -1;
        }
        const char *workflow_id = query(cls, "workflow_id");
        if (gateway_validate_query_text("workflow_id", workflow_id, errors) == 0 &&
            workflow_id && workflow_id[0])
            json_object_set_new(out, "workflow_id", json_string(workflow_id));
        json_object_set_new(out, "limit", json_integer(1));
        break;
    case GATEWAY_ROUTE_COSTS_SUMMARY:
        json_object_set_new(out, "limit", json_integer(200));
        break;
    case GATEWAY_ROUTE_COSTS_EXECUTIONS:
        query_limit(query, cls, out, errors);
        break;
    case GATEWAY_ROUTE_COSTS_SESSIONS: {
        const char *execution_id = query(cls, "execution_id");
        if (gateway_validate_query_text("execution_id", execution_id, errors) == 0 &&
            execution_id && execution_id[0])
            json_object_set_new(out, "execution_id", json_string(execution_id));
        query_limit(query, cls, out, errors);
        break;
    }
    case GATEWAY_ROUTE_COSTS_EXECUTION:
        *op = SYN_OP_EXECUTION_GET;
        json_object_set_new(out, "execution_id", json_string(route->params[0]));
        return finish(out, errors, args, error);
    case GATEWAY_ROUTE_COSTS_SESSION: {
        char execution_id[GATEWAY_PARAM_MAX + 1];
        json_decref(errors);
        json_decref(out);
        if (!session_parts(route->params[0], execution_id, sizeof execution_id, keep)) {
            unsigned status;
            *error = not_found(&status, "Session cost", route->params[0]);
            return (int)status;
        }
        *op = SYN_OP_EXECUTION_GET;
        *args = json_pack("{s:s}", "execution_id", execution_id);
        return 0;
    }
    default:
        json_decref(errors);
        json_decref(out);
        return -1;
    }
    *op = SYN_OP_COSTS_REPORT;
    return finish(out, errors, args, error);
}

/* --- sessions and executions -------------------------------------------------- */

/* SessionCostResponse of one attempt: {execution_id, workflow_id, phase_id,
 * phase_name, attempt, status, started_at, completed_at, usage}. */
static json_t *session_cost(const json_t *row)
{
    const json_t *usage = json_object_get(row, "usage");
    char id[512];
    snprintf(id, sizeof id, "%s:%s:%lld",
             json_string_value(json_object_get(row, "execution_id")),
             json_string_value(json_object_get(row, "phase_id")),
             (long long)int_of(row, "attempt"));
    const char *status = json_string_value(json_object_get(row, "status"));
    json_t *cost = money(number_of(usage, "cost_usd"));
    const char *model = json_string_value(json_object_get(usage, "model"));
    json_t *by_model = json_object();
    if (model)
        json_object_set(by_model, model, cost);
    json_int_t total = int_of(usage, "input_tokens") + int_of(usage, "output_tokens") +
                       int_of(usage, "cache_creation_tokens") + int_of(usage, "cache_read_tokens");
    json_t *out = json_pack(
        "{s:s, s:O, s:O, s:O, s:O, s:s?, s:O, s:O, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, "
        "s:f, s:o, s:{}, s:{}, s:{}, s:i, s:b, s:O, s:O}",
        "session_id", id, "execution_id", json_object_get(row, "execution_id"), "workflow_id",
        json_object_get(row, "workflow_id"), "phase_id", json_object_get(row, "phase_id"),
        "phase_name", json_object_get(row, "phase_name"), "workspace_id", NULL,
        "total_cost_usd", cost, "token_cost_usd", cost, "compute_cost_usd", "0",
        "input_tokens", int_of(usage, "input_tokens"), "output_tokens",
        int_of(usage, "output_tokens"), "total_tokens", total, "cache_creation_tokens",
        int_of(usage, "cache_creation_tokens"), "cache_read_tokens",
        int_of(usage, "cache_read_tokens"), "tool_calls", int_of(usage, "tool_call_count"),
        "turns", int_of(usage, "num_turns"), "duration_ms", number_of(usage, "duration_ms"),
        "cost_by_model", by_model, "cost_by_tool", "tokens_by_tool", "cost_by_tool_tokens",
        "unpriced_observation_count", 0, "is_finalized",
        status && strcmp(status, "running") != 0, "started_at",
        json_object_get(row, "started_at"), "completed_at",
        json_object_get(row, "completed_at"));
    json_decref(cost);
    if (out)
        json_object_set(out, "attempt", json_object_get(row, "attempt"));
    return out;
}

static json_t *execution_cost_row(const json_t *row)
{
    json_int_t total = int_of(row, "input_tokens") + int_of(row, "output_tokens") +
                       int_of(row, "cache_creation_tokens") + int_of(row, "cache_read_tokens");
    json_t *cost = money(number_of(row, "cost_usd"));
    json_t *out = json_pack(
        "{s:O, s:O, s:I, s:n, s:O, s:O, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:{}, "
        "s:{}, s:{}, s:b, s:i, s:O, s:O}",
        "execution_id", json_object_get(row, "execution_id"), "workflow_id",
        json_object_get(row, "workflow_id"), "session_count", int_of(row, "sessions"),
        "session_ids", "total_cost_usd", cost, "token_cost_usd", cost, "compute_cost_usd", "0",
        "input_tokens", int_of(row, "input_tokens"), "output_tokens",
        int_of(row, "output_tokens"), "total_tokens", total, "cache_creation_tokens",
        int_of(row, "cache_creation_tokens"), "cache_read_tokens",
        int_of(row, "cache_read_tokens"), "tool_calls", int_of(row, "tool_calls"), "turns",
        int_of(row, "turns"), "duration_ms", int_of(row, "duration_ms"), "cost_by_phase",
        "cost_by_model", "cost_by_tool", "is_complete",
        !json_is_null(json_object_get(row, "completed_at")), "unpriced_observation_count", 0,
        "started_at", json_object_get(row, "started_at"), "completed_at",
        json_object_get(row, "completed_at"));
    json_decref(cost);
    return out;
}

static void add_money(json_t *map, const char *key, double usd)
{
    if (!key)
        return;
    const char *had = json_string_value(json_object_get(map, key));
    json_object_set_new(map, key, money(usd + (had ? strtod(had, NULL) : 0)));
}

/* ExecutionCostResponse of one execution's detail (execution.get): its sessions are
 * its attempts; costs by phase and by model from its phases. */
static json_t *execution_cost_detail(const json_t *detail)
{
    json_t *row = json_pack(
        "{s:O, s:O, s:O, s:O, s:I, s:I, s:I, s:I, s:f, s:i, s:i, s:i, s:i}", "execution_id",
        json_object_get(detail, "execution_id"), "workflow_id",
        json_object_get(detail, "workflow_id"), "started_at", json_object_get(detail, "started_at"),
        "completed_at", json_object_get(detail, "completed_at"), "input_tokens",
        int_of(detail, "total_input_tokens"), "output_tokens", int_of(detail, "total_output_tokens"),
        "cache_creation_tokens", int_of(detail, "total_cache_creation_tokens"),
        "cache_read_tokens", int_of(detail, "total_cache_read_tokens"), "cost_usd",
        number_of(detail, "total_cost_usd"), "sessions", 0, "tool_calls", 0, "turns", 0,
        "duration_ms", 0);
    json_t *ids = json_array(), *by_phase = json_object(), *by_model = json_object();
    json_int_t tools = 0, turns = 0, ms = 0;
    size_t i, j;
    json_t *phase, *attempt;
    json_array_foreach(json_object_get(detail, "phases"), i, phase) {
        tools += int_of(phase, "tool_call_count");
        turns += int_of(phase, "num_turns");
        ms += int_of(phase, "duration_ms");
        const char *phase_id = json_string_value(json_object_get(phase, "phase_id"));
        if (json_array_size(json_object_get(phase, "attempts")) > 0)
            add_money(by_phase, phase_id, number_of(phase, "cost_usd"));
        add_money(by_model, json_string_value(json_object_get(phase, "model")),
                  number_of(phase, "cost_usd"));
        json_array_foreach(json_object_get(phase, "attempts"), j, attempt) {
            char id[512];
            snprintf(id, sizeof id, "%s:%s:%lld",
                     json_string_value(json_object_get(detail, "execution_id")), phase_id,
                     (long long)int_of(attempt, "attempt"));
            json_array_append_new(ids, json_string(id));
        }
    }
    json_object_set_new(row, "sessions", json_integer((json_int_t)json_array_size(ids)));
    json_object_set_new(row, "tool_calls", json_integer(tools));
    json_object_set_new(row, "turns", json_integer(turns));
    json_object_set_new(row, "duration_ms", json_integer(ms));
    json_t *out = execution_cost_row(row);
    json_decref(row);
    const char *status = json_string_value(json_object_get(detail, "status"));
    json_object_set_new(out, "session_ids", ids);
    json_object_set_new(out, "cost_by_phase", by_phase);
    json_object_set_new(out, "cost_by_model", by_model);
    json_object_set_new(out, "is_complete",
                        json_boolean(status && (strcmp(status, "completed") == 0 ||
                                                strcmp(status, "failed") == 0 ||
                                                strcmp(status, "cancelled") == 0)));
    return out;
}

/* One attempt of an execution's detail, as a costs.report session row; NULL when the
 * execution has no such phase or attempt. */
static json_t *session_row(const json_t *detail, const json_t *keep)
{
    const char *phase_id = json_string_value(json_object_get(keep, "phase_id"));
    size_t i, j;
    json_t *phase, *attempt;
    json_array_foreach(json_object_get(detail, "phases"), i, phase) {
        const char *id = json_string_value(json_object_get(phase, "phase_id"));
        if (!id || !phase_id || strcmp(id, phase_id) != 0)
            continue;
        json_array_foreach(json_object_get(phase, "attempts"), j, attempt) {
            if (int_of(attempt, "attempt") != int_of(keep, "attempt") ||
                json_is_null(json_object_get(attempt, "started_at")))
                continue;
            return json_pack("{s:O, s:O, s:O, s:O, s:O, s:O, s:O, s:O, s:O}", "execution_id",
                             json_object_get(detail, "execution_id"), "workflow_id",
                             json_object_get(detail, "workflow_id"), "phase_id",
                             json_object_get(phase, "phase_id"), "phase_name",
                             json_object_get(phase, "name"), "attempt",
                             json_object_get(attempt, "attempt"), "status",
                             json_object_get(attempt, "status"), "started_at",
                             json_object_get(attempt, "started_at"), "completed_at",
                             json_object_get(attempt, "completed_at"), "usage",
                             json_object_get(attempt, "usage"));
        }
    }
    return NULL;
}

static json_t *mapped(const json_t *rows, json_t *(*map)(const json_t *))
{
    json_t *out = json_array();
    size_t i;
    json_t *row;
    json_array_foreach(rows, i, row) json_array_append_new(out, map(row));
    return out;
}

/* --- summary and metrics -------------------------------------------------------- */

static int by_cost(const void *a, const void *b)
{
    double x = number_of(json_object_get(*(json_t *const *)a, "usage"), "cost_usd");
    double y = number_of(json_object_get(*(json_t *const *)b, "usage"), "cost_usd");
    return (x < y) - (x > y);
}

/* CostSummaryResponse; top_sessions are the costliest of the newest 200 sessions. */
static json_t *cost_summary(const json_t *report)
{
    const json_t *totals = json_object_get(report, "totals");
    json_t *models = json_array(), *top = json_array();
    size_t i;
    json_t *m;
    json_array_foreach(json_object_get(report, "models"), i, m) {
        json_t *cost = money(number_of(m, "cost_usd"));
        json_array_append_new(models, json_pack("{s:O, s:o}", "model", json_object_get(m, "model"),
                                                "cost_usd", cost));
    }
    const json_t *sessions = json_object_get(report, "sessions");
    size_t n = json_array_size(sessions);
    json_t **sorted = n ? calloc(n, sizeof *sorted) : NULL;
    for (i = 0; sorted && i < n; i++)
        sorted[i] = json_array_get(sessions, i);
    if (sorted)
        qsort(sorted, n, sizeof *sorted, by_cost);
    for (i = 0; sorted && i < n && i < 10; i++) {
        json_t *cost = session_cost(sorted[i]);
        char text[64];
        snprintf(text, sizeof text, "$%.4f", number_of(json_object_get(sorted[i], "usage"), "cost_usd"));
        json_array_append_new(top, json_pack("{s:O, s:s, s:O}", "session_id",
                                             json_object_get(cost, "session_id"), "cost", text,
                                             "cost_usd", json_object_get(cost, "total_cost_usd")));
        json_decref(cost);
    }
    free(sorted);
    json_int_t tokens = int_of(totals, "input_tokens") + int_of(totals, "output_tokens") +
                        int_of(totals, "cache_creation_tokens") +
                        int_of(totals, "cache_read_tokens");
    return json_pack("{s:o, s:I, s:I, s:I, s:I, s:o, s:o}", "total_cost_usd",
                     money(number_of(totals, "cost_usd")), "total_sessions",
                     int_of(totals, "sessions"), "total_executions", int_of(totals, "executions"),
                     "total_tokens", tokens, "total_tool_calls", int_of(totals, "tool_calls"),
                     "top_models", models, "top_sessions", top);
}

/* The original's word for how a phase's last run ended (PhaseMetrics.status). */
static const char *run_status(const json_t *run)
{
    const char *last = json_string_value(json_object_get(run, "last_status"));
    if (int_of(run, "running") > 0)
        return "running";
    if (!last || strcmp(last, "completed") == 0 || strcmp(last, "cancelled") == 0)
        return last ? last : "failed"; /* no verdict is no pass, as there */
    return "failed"; /* failed, timeout, lost */
}

/* PhaseMetrics: a phase over every execution of the workflow; its time is every
 * run's, those in flight so far (null when none started is not possible here:
 * only phases that ran are listed). */
static json_t *phase_metrics(const json_t *phase)
{
    json_int_t tokens = int_of(phase, "input_tokens") + int_of(phase, "output_tokens") +
                        int_of(phase, "cache_creation_tokens") +
                        int_of(phase, "cache_read_tokens");
    return json_pack("{s:O, s:O, s:s, s:I, s:I, s:I, s:o, s:i, s:b, s:f, s:I}", "phase_id",
                     json_object_get(phase, "phase_id"), "phase_name",
                     json_object_get(phase, "name"), "status", run_status(phase),
                     "input_tokens", int_of(phase, "input_tokens"), "output_tokens",
                     int_of(phase, "output_tokens"), "total_tokens", tokens, "cost_usd",
                     money(number_of(phase, "cost_usd")), "unpriced_observation_count", 0,
                     "cost_in_progress", int_of(phase, "running") > 0, "duration_seconds",
                     (double)int_of(phase, "run_us") / 1e6, "artifact_count",
                     int_of(phase, "artifacts"));
}

/* MetricsResponse: syn's statuses in the original's slices (pending is its
 * not_started, paused is running; nothing is interrupted: a broker restart resumes).
 * With ?workflow_id= the counts, sessions, tokens and cost are that workflow's and
 * its phases are listed; the workflow and artifact counts stay everyone's, as there. */
static json_t *metrics(const json_t *report)
{
    const json_t *totals = json_object_get(report, "totals");
    const json_t *counts = json_object_get(report, "status_counts");
    json_int_t tokens = int_of(totals, "input_tokens") + int_of(totals, "output_tokens") +
                        int_of(totals, "cache_creation_tokens") +
                        int_of(totals, "cache_read_tokens");
    return json_pack(
        "{s:I, s:I, s:I, s:{s:I, s:I, s:I, s:I, s:I, s:i}, s:I, s:I, s:I, s:I, s:I, s:I, "
        "s:o, s:I, s:I, s:o}",
        "total_workflows", int_of(totals, "workflows"), "completed_workflows",
        int_of(counts, "completed"), "failed_workflows", int_of(counts, "failed"),
        "execution_status_counts", "not_started", int_of(counts, "pending"), "running",
        int_of(counts, "running") + int_of(counts, "paused"), "completed",
        int_of(counts, "completed"), "failed", int_of(counts, "failed"), "cancelled",
        int_of(counts, "cancelled"), "interrupted", 0, "total_sessions",
        int_of(totals, "sessions"), "total_input_tokens", int_of(totals, "input_tokens"),
        "total_output_tokens", int_of(totals, "output_tokens"), "total_cache_creation_tokens",
        int_of(totals, "cache_creation_tokens"), "total_cache_read_tokens",
        int_of(totals, "cache_read_tokens"), "total_tokens", tokens, "total_cost_usd",
        money(number_of(totals, "cost_usd")), "total_artifacts",
        int_of(json_object_get(report, "artifacts"), "count"), "total_artifact_bytes",
        int_of(json_object_get(report, "artifacts"), "bytes"), "phases",
        mapped(json_object_get(report, "phases"), phase_metrics));
}

/* --- export: the original's file manifest --------------------------------------- */

/* The original's slug of a name: lower case, spaces as '-', only [a-z0-9._-]. */
static void slug_of(const char *name, char *slug, size_t size)
{
    size_t n = 0;
    for (const char *p = name ? name : ""; *p && n + 1 < size; p++) {
        char c = (char)tolower((unsigned char)*p);
        if (c == ' ')
            c = '-';
        if (isalnum((unsigned char)c) || c == '.' || c == '_' || c == '-')
            slug[n++] = c;
    }
    slug[n] = '\0';
    size_t start = strspn(slug, ".-");
    memmove(slug, slug + start, n - start + 1);
    n = strlen(slug);
    while (n > 0 && (slug[n - 1] == '.' || slug[n - 1] == '-'))
        slug[--n] = '\0';
    if (!slug[0])
        snprintf(slug, size, "workflow");
}

static char *readme(const json_t *workflow)
{
    const char *id = json_string_value(json_object_get(workflow, "id"));
    const char *name = json_string_value(json_object_get(workflow, "name"));
    const char *description = json_string_value(json_object_get(workflow, "description"));
    size_t cap = 1024;
    size_t i;
    json_t *phase;
    json_array_foreach(json_object_get(workflow, "phases"), i, phase)
        cap += 32 + json_string_length(json_object_get(phase, "name"));
    cap += strlen(name ? name : "") + strlen(description ? description : "") + 2 * strlen(id);
    char *text = malloc(cap);
    if (!text)
        return NULL;
    int used = snprintf(text, cap,
                        "# %s\n\n%s\n\n## Usage\n\n```bash\nsyn workflow install .\nsyn workflow "
                        "run %s --task \"Your task here\"\n```\n\n## Phases\n\n",
                        name ? name : "", description ? description : "", id);
    json_array_foreach(json_object_get(workflow, "phases"), i, phase)
        used += snprintf(text + used, cap - (size_t)used, "- **Phase %lld:** %s\n",
                         (long long)int_of(phase, "order"),
                         json_string_value(json_object_get(phase, "name")));
    return text;
}

/* ExportManifestResponse: package = workflow.yaml (syn's export, prompts inline) and
 * README.md; plugin = its manifest, README, a Claude Code command and the package
 * under workflows/<slug>/. */
static json_t *manifest(const char *format, const json_t *workflow, unsigned *status)
{
    char why[256], slug[128];
    char *yaml = template_export_yaml(workflow, NULL, why, sizeof why);
    char *about = readme(workflow);
    if (!yaml || !about) {
        free(yaml);
        free(about);
        *status = 502;
        return json_pack("{s:s}", "detail", "invalid reply from broker: not a workflow");
    }
    const char *id = json_string_value(json_object_get(workflow, "id"));
    const char *name = json_string_value(json_object_get(workflow, "name"));
    slug_of(name, slug, sizeof slug);
    json_t *files = json_pack("{s:s}", "README.md", about);
    if (strcmp(format, "package") == 0) {
        json_object_set_new(files, "workflow.yaml", json_string(yaml));
    } else {
        char path[256], text[2048];
        const char *description = json_string_value(json_object_get(workflow, "description"));
        json_t *plugin = json_pack("{s:i, s:s, s:s, s:s}", "manifest_version", 1, "name", slug,
                                   "version", "0.1.0", "description",
                                   description ? description : name);
        char *plugin_text = json_dumps(plugin, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        json_decref(plugin);
        size_t len = plugin_text ? strlen(plugin_text) : 0;
        json_object_set_new(files, "syntropic137-plugin.json",
                            json_sprintf("%s\n", plugin_text ? plugin_text : "{}"));
        (void)len;
        free(plugin_text);
        snprintf(path, sizeof path, "commands/syn-%s.md", slug);
        snprintf(text, sizeof text,
                 "---\nmodel: sonnet\nargument-hint: \"<task>\"\nallowed-tools: Bash\n---\n\n"
                 "# /syn-%s \xe2\x80\x94 Run %s Workflow\n\nExecute the %s workflow via syn:\n\n"
                 "```bash\nsyn workflow run %s --task \"$ARGUMENTS\"\n```\n",
                 slug, name, slug, id);
        json_object_set_new(files, path, json_string(text));
        snprintf(path, sizeof path, "workflows/%s/workflow.yaml", slug);
        json_object_set_new(files, path, json_string(yaml));
    }
    free(yaml);
    free(about);
    return json_pack("{s:s, s:s, s:s, s:o}", "format", format, "workflow_id", id, "workflow_name",
                     name, "files", files);
}

json_t *gateway_reports_answer(const gateway_route_t *route, bool original, const json_t *keep,
                               unsigned *status, const json_t *body)
{
    switch (route->id) {
    case GATEWAY_ROUTE_WORKFLOW_EXPORT: {
        const char *format = json_string_value(json_object_get(keep, "format"));
        return format ? manifest(format, body, status) : NULL;
    }
    case GATEWAY_ROUTE_METRICS:
        return original ? metrics(body) : NULL;
    case GATEWAY_ROUTE_COSTS_SUMMARY:
        return cost_summary(body);
    case GATEWAY_ROUTE_COSTS_EXECUTIONS:
        return mapped(json_object_get(body, "executions"), execution_cost_row);
    case GATEWAY_ROUTE_COSTS_SESSIONS:
        return mapped(json_object_get(body, "sessions"), session_cost);
    case GATEWAY_ROUTE_COSTS_EXECUTION:
        return execution_cost_detail(body);
    case GATEWAY_ROUTE_COSTS_SESSION: {
        json_t *row = session_row(body, keep);
        if (!row)
            return not_found(status, "Session cost",
                             json_string_value(json_object_get(keep, "session")));
        json_t *out = session_cost(row);
        json_decref(row);
        return out;
    }
    default:
        return NULL;
    }
}
