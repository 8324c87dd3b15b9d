/* preload: a directory of workflow files → workflow.install, one log line each. */
#include "broker/preload.h"

#include "common/log.h"
#include "template/library.h"
#include "template/spec.h"

#include <stdio.h>
#include <string.h>

/* Every error of a file that did not load, one line each ("file:line:column: field:
 * message"), so the operator can fix them all at once. */
static void log_errors(const template_entry_t *entry)
{
    size_t count = template_errors_count(entry->errors);
    syn_warn("broker", "workflow file skipped path=%s errors=%zu", entry->path,
             template_errors_total(entry->errors));
    for (size_t i = 0; i < count; i++) {
        const template_error_t *e = template_errors_get(entry->errors, i);
        char where[64] = "";
        if (e->line && e->column)
            snprintf(where, sizeof where, ":%d:%d", e->line, e->column);
        else if (e->line)
            snprintf(where, sizeof where, ":%d", e->line);
        syn_warn("broker", "  %s%s: %s%s%s", e->file ? e->file : entry->path, where,
                 e->field ? e->field : "", e->field ? ": " : "", e->message);
    }
    if (template_errors_total(entry->errors) > count)
        syn_warn("broker", "  (and %zu more errors)", template_errors_total(entry->errors) - count);
}

static void install(broker_api_t *api, const template_entry_t *entry,
                    broker_preload_stats_t *stats)
{
    json_t *args = json_pack("{s:O, s:s}", "workflow", entry->workflow, "source_hash",
                             entry->hash);
    json_t *body = NULL;
    int status =
        args ? broker_api_handle(api, syn_op_name(SYN_OP_WORKFLOW_INSTALL), args, &body) : 500;
    json_decref(args);
    const char *id = json_string_value(json_object_get(entry->workflow, "id"));
    const char *outcome = json_string_value(json_object_get(body, "status"));
    long long version = (long long)json_integer_value(json_object_get(body, "version"));
    if ((status == 200 || status == 201) && outcome) {
        if (strcmp(outcome, "created") == 0)
            stats->created++;
        else if (strcmp(outcome, "updated") == 0)
            stats->updated++;
        else if (strcmp(outcome, "unchanged") == 0)
            stats->unchanged++;
        else
            stats->archived++;
        if (strcmp(outcome, "archived") == 0)
            syn_info("broker", "workflow file skipped: the workflow is archived workflow=%s "
                     "path=%s", id, entry->path);
        else
            syn_info("broker", "workflow %s workflow=%s version=%lld path=%s", outcome, id,
                     version, entry->path);
    } else {
        stats->failed++;
        const char *reason = json_string_value(json_object_get(body, "detail"));
        syn_warn("broker", "workflow file skipped path=%s status=%d: %s", entry->path, status,
                 reason ? reason : "no reason given");
    }
    json_decref(body);
}

int broker_preload(broker_api_t *api, const char *dir, broker_preload_stats_t *stats,
                   char *why, size_t why_size)
{
    memset(stats, 0, sizeof *stats);
    template_library_t *library = template_library_new();
    if (!library) {
        snprintf(why, why_size, "out of memory");
        return -1;
    }
    if (template_library_load_dir(library, dir, why, why_size) < 0) {
        template_library_destroy(&library);
        return -1;
    }
    for (size_t i = 0; i < template_library_count(library); i++) {
        const template_entry_t *entry = template_library_entry(library, i);
        if (entry->workflow) {
            install(api, entry, stats);
            json_t *warnings = spec_workflow_warnings(entry->workflow);
            size_t w;
            json_t *warning;
            json_array_foreach(warnings, w, warning)
                syn_warn("broker", "workflow file path=%s: %s", entry->path,
                         json_string_value(warning));
            json_decref(warnings);
        } else {
            stats->failed++;
            log_errors(entry);
        }
    }
    template_library_destroy(&library);
    syn_info("broker", "workflows loaded dir=%s created=%zu updated=%zu unchanged=%zu "
             "archived=%zu failed=%zu", dir, stats->created, stats->updated, stats->unchanged,
             stats->archived, stats->failed);
    return 0;
}
