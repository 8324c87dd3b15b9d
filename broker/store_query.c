/* store_query: the reads behind execution.list/get/output/state — id prefixes,
 * counts, filtered pages newest first, the detail of one execution. It stands
 * alone because it decides how a listing stays cheap: counts come from
 * execution_counts and pages seek through execution_pages, never a scan. */
#include "broker/store_internal.h"

#include "common/clock.h"
#include "common/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Ids with a given prefix are exactly those in [prefix, prefix with its last byte
 * incremented): a range the unique index answers without scanning the table, even
 * when nothing matches. Text compares bytewise, and valid UTF-8 never ends in
 * 0xFF, so the increment cannot overflow; an empty prefix matches everything. */
int broker_store_execution_match(broker_store_t *self, const char *prefix,
                                 char (*ids)[BROKER_EXEC_ID_SIZE], size_t max, size_t *count)
{
    *count = 0;
    size_t len = strlen(prefix);
    char *upper = malloc(len + 5);
    if (!upper)
        return -1;
    memcpy(upper, prefix, len + 1);
    /* An ASCII last character counts up; otherwise the prefix gets the highest
     * character (U+10FFFF): a bound every UTF-8 id with the prefix is below, and
     * valid text for PostgreSQL, which refuses the byte 0xFF. */
    if (len > 0 && (unsigned char)upper[len - 1] < 0x7F) {
        upper[len - 1] = (char)((unsigned char)upper[len - 1] + 1);
    } else {
        memcpy(upper + len, "\xF4\x8F\xBF\xBF", 5);
    }
    store_q_t *s = store_stmt(self, SQL_EXECUTION_MATCH);
    if (!s) {
        free(upper);
        return -1;
    }
    store_bind_text(s, 1, prefix);
    store_bind_text(s, 2, upper);
    store_bind_int(s, 3, (int64_t)max);
    int rc;
    while ((rc = store_step(s)) == STORE_ROW && *count < max) {
        const char *id = store_col_text(s, 0);
        snprintf(ids[*count], BROKER_EXEC_ID_SIZE, "%s", id ? id : "");
        (*count)++;
    }
    store_reset(s);
    if (rc != STORE_DONE && rc != STORE_ROW) {
        store_log_error(self, "match execution ids");
        free(upper);
        return -1;
    }
    free(upper);
    return 0;
}

int broker_store_execution_status(broker_store_t *self, const char *id, json_t **status_out)
{
    store_q_t *s = store_stmt(self, SQL_EXECUTION_STATUS);
    if (!s)
        return -1;
    store_bind_text(s, 1, id);
    int result = store_step_one(self, s, "get execution");
    if (result == 1) {
        broker_status_view_t view = {
            .execution_id = store_col_text(s, 0),
            .workflow_id = store_col_text(s, 1),
            .current_phase = store_col_text(s, 3),
            .completed_phases = store_col_int(s, 4),
            .total_phases = store_col_int(s, 5),
            .started_at = store_col_int(s, 6),
            .completed_at = store_col_int(s, 7),
            .error = store_col_text(s, 8),
        };
        if (broker_exec_status_parse(store_col_text(s, 2), &view.status) <
                0 ||
            !view.execution_id || !view.workflow_id) {
            syn_error("broker", "execution %s has an unreadable row", id);
            result = -1;
        } else {
            *status_out = broker_status_json(&view);
            result = *status_out ? 1 : -1;
        }
        store_reset(s);
    }
    return result;
}

/* The member of a filtered family (its _ALL given) that serves the filter:
 * workflow_id NULL = any, status NULL = any. Each member names the index that
 * answers it. */
static sql_id_t filtered(sql_id_t all, const char *workflow_id, const char *status)
{
    return (sql_id_t)(all + (status ? 1 : 0) + (workflow_id ? 2 : 0));
}

_Static_assert(SQL_COUNT_STATUS == SQL_COUNT_ALL + 1 && SQL_COUNT_WORKFLOW == SQL_COUNT_ALL + 2 &&
                   SQL_COUNT_WORKFLOW_STATUS == SQL_COUNT_ALL + 3,
               "the count family is out of order");
_Static_assert(SQL_LIST_STATUS == SQL_LIST_ALL + 1 && SQL_LIST_WORKFLOW == SQL_LIST_ALL + 2 &&
                   SQL_LIST_WORKFLOW_STATUS == SQL_LIST_ALL + 3,
               "the list family is out of order");
_Static_assert(SQL_SKIP_STATUS == SQL_SKIP_ALL + 1 && SQL_SKIP_WORKFLOW == SQL_SKIP_ALL + 2 &&
                   SQL_SKIP_WORKFLOW_STATUS == SQL_SKIP_ALL + 3,
               "the skip family is out of order");

/* Binds the filter of a filtered statement (?4 status, ?5 workflow). */
static void bind_filter(store_q_t *s, const char *workflow_id, const char *status)
{
    if (status)
        store_bind_text(s, 4, status);
    if (workflow_id)
        store_bind_text(s, 5, workflow_id);
}

int64_t broker_store_execution_count(broker_store_t *self, const char *workflow_id, int status)
{
    if (store_flush_tally(self) < 0)
        return -1;
    const char *status_name =
        status >= 0 ? broker_exec_status_name((broker_exec_status_t)status) : NULL;
    store_q_t *s = store_stmt(self, filtered(SQL_COUNT_ALL, workflow_id, status_name));
    if (!s)
        return -1;
    bind_filter(s, workflow_id, status_name);
    return store_step_int(self, s, "count executions");
}

/* Seconds from started to completed (or to now while it runs); null before it
 * started. */
static json_t *duration_json(store_q_t *s, int started_col, int completed_col, int64_t now)
{
    int64_t started = store_col_int(s, started_col);
    if (store_col_null(s, started_col) || started <= 0)
        return json_null();
    int64_t end = store_col_null(s, completed_col)
                      ? now
                      : store_col_int(s, completed_col);
    return json_real(end > started ? (double)(end - started) / 1e6 : 0.0);
}

/* The summary from a row that starts with SUMMARY_COLUMNS. */
static json_t *summary_of(store_q_t *s, int64_t now)
{
    json_t *summary = json_object();
    if (!summary)
        return NULL;
    json_object_set_new(summary, "execution_id", store_column_string_or_null(s, 0));
    json_object_set_new(summary, "workflow_id", store_column_string_or_null(s, 1));
    json_object_set_new(summary, "workflow_name", store_column_string_or_null(s, 2));
    json_object_set_new(summary, "status", store_column_string_or_null(s, 3));
    json_object_set_new(summary, "started_at", store_column_time(s, 4));
    json_object_set_new(summary, "completed_at", store_column_time(s, 5));
    json_object_set_new(summary, "completed_phases", json_integer(store_col_int(s, 6)));
    json_object_set_new(summary, "total_phases", json_integer(store_col_int(s, 7)));
    json_object_set_new(summary, "duration_seconds", duration_json(s, 4, 5, now));
    json_object_set_new(summary, "total_input_tokens", json_integer(store_col_int(s, 8)));
    json_object_set_new(summary, "total_output_tokens",
                        json_integer(store_col_int(s, 9)));
    json_object_set_new(summary, "total_cost_usd", json_real(store_col_double(s, 10)));
    json_object_set_new(summary, "error", store_column_string_or_null(s, 11));
    json_object_set_new(summary, "total_cache_creation_tokens",
                        json_integer(store_col_int(s, 12)));
    json_object_set_new(summary, "total_cache_read_tokens",
                        json_integer(store_col_int(s, 13)));
    return summary;
}

/* The insertion number of the first row of a page that starts offset rows in
 * (newest first): the per-block counts, summed from the newest block down, name
 * the block holding it; the filter's index skips to it inside the block. 1 with
 * *start, 0 when the offset is past the end, -1 on error. */
static int seek_page(broker_store_t *self, const char *workflow_id, const char *status,
                     int64_t offset, int64_t *start)
{
    *start = INT64_MAX;
    if (offset == 0)
        return 1;
    if (store_flush_tally(self) < 0)
        return -1;
    store_q_t *s = store_stmt(self, SQL_PAGES);
    if (!s)
        return -1;
    store_bind_text(s, 1, workflow_id ? workflow_id : "");
    store_bind_text(s, 2, status ? status : "");
    int64_t seen = 0, bound = 0, skip = 0;
    int found = 0, rc;
    while ((rc = store_step(s)) == STORE_ROW) {
        int64_t n = store_col_int(s, 1);
        if (seen + n > offset) {
            bound = (store_col_int(s, 0) + 1) << 10;
            skip = offset - seen;
            found = 1;
            break;
        }
        seen += n;
    }
    store_reset(s);
    if (rc != STORE_DONE && rc != STORE_ROW) {
        store_log_error(self, "seek page");
        return -1;
    }
    if (!found)
        return 0;
    s = store_stmt(self, filtered(SQL_SKIP_ALL, workflow_id, status));
    if (!s)
        return -1;
    store_bind_int(s, 1, bound);
    store_bind_int(s, 2, skip);
    bind_filter(s, workflow_id, status);
    rc = store_step(s);
    if (rc == STORE_ROW)
        *start = store_col_int(s, 0);
    store_reset(s);
    if (rc != STORE_ROW && rc != STORE_DONE) {
        store_log_error(self, "skip to page");
        return -1;
    }
    return rc == STORE_ROW;
}

int broker_store_execution_list(broker_store_t *self, const char *workflow_id, int status,
                                int64_t page, int64_t page_size, json_t **items_out,
                                int64_t *total)
{
    const char *status_name =
        status >= 0 ? broker_exec_status_name((broker_exec_status_t)status) : NULL;
    *total = broker_store_execution_count(self, workflow_id, status);
    if (*total < 0)
        return -1;
    json_t *items = json_array();
    if (!items)
        return -1;
    *items_out = items;
    if (page < 1 || page_size < 1 || (page - 1) > INT64_MAX / page_size)
        return 0;
    int64_t offset = (page - 1) * page_size, start;
    if (offset >= *total)
        return 0;
    int found = seek_page(self, workflow_id, status_name, offset, &start);
    if (found <= 0) {
        if (found < 0) {
            json_decref(items);
            *items_out = NULL;
        }
        return found;
    }
    store_q_t *s = store_stmt(self, filtered(SQL_LIST_ALL, workflow_id, status_name));
    if (!s) {
        json_decref(items);
        *items_out = NULL;
        return -1;
    }
    store_bind_int(s, 1, start);
    store_bind_int(s, 2, page_size);
    bind_filter(s, workflow_id, status_name);
    int64_t now = syn_now_us();
    int rc;
    while ((rc = store_step(s)) == STORE_ROW)
        json_array_append_new(items, summary_of(s, now));
    store_reset(s);
    if (rc != STORE_DONE) {
        store_log_error(self, "list executions");
        json_decref(items);
        *items_out = NULL;
        return -1;
    }
    return 0;
}

/* Attempts of every phase of an execution: {phase_id: [attempt, ...]}. */
static json_t *attempts_by_phase(broker_store_t *self, const char *id)
{
    store_q_t *s = store_stmt(self, SQL_DETAIL_ATTEMPTS);
    if (!s)
        return NULL;
    store_bind_text(s, 1, id);
    json_t *by_phase = json_object();
    int rc = STORE_ERROR;
    while (by_phase && (rc = store_step(s)) == STORE_ROW) {
        const char *phase_id = store_col_text(s, 0);
        if (!phase_id)
            continue;
        json_t *list = json_object_get(by_phase, phase_id);
        if (!list) {
            list = json_array();
            json_object_set_new(by_phase, phase_id, list);
        }
        json_t *usage = store_column_json(s, 8);
        json_t *attempt = json_pack(
            "{s:I, s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "attempt",
            (json_int_t)store_col_int(s, 1), "worker", store_column_string_or_null(s, 2),
            "status", store_column_string_or_null(s, 3), "started_at", store_column_time(s, 4),
            "completed_at", store_column_time(s, 5), "exit_code",
            store_col_null(s, 6) ? json_null()
                                                     : json_integer(store_col_int(s, 6)),
            "error", store_column_string_or_null(s, 7), "usage",
            json_is_object(usage) ? json_incref(usage) : json_null());
        json_decref(usage);
        json_array_append_new(list, attempt);
    }
    return store_rows_end(self, s, by_phase, rc, "load attempts");
}

/* Tool calls of a phase: its attempts' lists, in order, up to a bound. */
static json_t *phase_tool_calls(const json_t *attempts)
{
    json_t *tools = json_array();
    size_t i, j;
    const json_t *attempt, *call;
    json_array_foreach(attempts, i, attempt)
    {
        const json_t *list = json_object_get(json_object_get(attempt, "usage"), "tool_calls");
        json_array_foreach(list, j, call)
            if (json_array_size(tools) < 5 * BROKER_USAGE_TOOLS_MAX)
                json_array_append(tools, (json_t *)call);
    }
    return tools;
}

static json_t *phases_of(broker_store_t *self, const char *id, int64_t now)
{
    json_t *attempts = attempts_by_phase(self, id);
    store_q_t *s = attempts ? store_stmt(self, SQL_DETAIL_PHASES) : NULL;
    if (!s) {
        json_decref(attempts);
        return NULL;
    }
    store_bind_text(s, 1, id);
    store_bind_int(s, 2, BROKER_OUTPUT_PREVIEW_CHARS);
    json_t *phases = json_array();
    int rc = STORE_ERROR;
    while (phases && (rc = store_step(s)) == STORE_ROW) {
        const char *phase_id = store_col_text(s, 0);
        json_t *tried = json_object_get(attempts, phase_id ? phase_id : "");
        int64_t in = store_col_int(s, 7), out = store_col_int(s, 8);
        int64_t cache_w = store_col_int(s, 9), cache_r = store_col_int(s, 10);
        json_t *phase = json_object();
        json_object_set_new(phase, "phase_id", store_column_string_or_null(s, 0));
        json_object_set_new(phase, "name", store_column_string_or_null(s, 1));
        json_object_set_new(phase, "order", json_integer(store_col_int(s, 2)));
        json_object_set_new(phase, "status", store_column_string_or_null(s, 3));
        json_object_set_new(phase, "attempts", tried ? json_incref(tried) : json_array());
        json_object_set_new(phase, "error", store_column_string_or_null(s, 4));
        json_object_set_new(phase, "started_at", store_column_time(s, 5));
        json_object_set_new(phase, "completed_at", store_column_time(s, 6));
        json_object_set_new(phase, "duration_seconds", duration_json(s, 5, 6, now));
        json_object_set_new(phase, "input_tokens", json_integer(in));
        json_object_set_new(phase, "output_tokens", json_integer(out));
        json_object_set_new(phase, "cache_creation_tokens", json_integer(cache_w));
        json_object_set_new(phase, "cache_read_tokens", json_integer(cache_r));
        json_object_set_new(phase, "total_tokens", json_integer(in + out + cache_w + cache_r));
        json_object_set_new(phase, "cost_usd", json_real(store_col_double(s, 11)));
        json_object_set_new(phase, "num_turns", json_integer(store_col_int(s, 12)));
        json_object_set_new(phase, "duration_ms", json_integer(store_col_int(s, 13)));
        json_object_set_new(phase, "tool_call_count", json_integer(store_col_int(s, 14)));
        json_object_set_new(phase, "tool_calls", phase_tool_calls(tried));
        json_object_set_new(phase, "model", store_column_string_or_null(s, 15));
        json_object_set_new(phase, "output_preview", store_column_string_or_null(s, 16));
        json_array_append_new(phases, phase);
    }
    json_decref(attempts);
    return store_rows_end(self, s, phases, rc, "load phases");
}

int broker_store_execution_detail(broker_store_t *self, const char *id, json_t **detail_out)
{
    store_q_t *s = store_stmt(self, SQL_SUMMARY);
    if (!s)
        return -1;
    store_bind_text(s, 1, id);
    int64_t now = syn_now_us();
    int found = store_step_one(self, s, "get execution");
    if (found != 1)
        return found;
    json_t *detail = summary_of(s, now);
    json_t *inputs = store_column_json(s, 14), *repos = store_column_json(s, 16);
    if (detail) {
        json_object_set_new(detail, "inputs", json_is_object(inputs) ? json_incref(inputs)
                                                                     : json_object());
        json_object_set_new(detail, "task", store_column_string_or_null(s, 15));
        json_object_set_new(detail, "repos", json_is_array(repos) ? json_incref(repos)
                                                                  : json_array());
        json_object_set_new(detail, "current_phase", store_column_string_or_null(s, 17));
    }
    json_decref(inputs);
    json_decref(repos);
    store_reset(s);
    json_t *messages = detail ? store_messages_of(self, id, true) : NULL;
    json_t *phases = messages ? phases_of(self, id, now) : NULL;
    if (!phases) {
        json_decref(detail);
        json_decref(messages);
        return -1;
    }
    json_object_set_new(detail, "operator_messages", messages);
    json_object_set_new(detail, "phases", phases);
    if (store_controls_detail(self, id, detail) < 0) {
        json_decref(detail);
        return -1;
    }
    *detail_out = detail;
    return 1;
}

int broker_store_execution_state(broker_store_t *self, const char *id,
                                 broker_exec_status_t *status)
{
    store_q_t *s = store_stmt(self, SQL_EXECUTION_STATE);
    if (!s)
        return -1;
    store_bind_text(s, 1, id);
    int result = store_step_one(self, s, "get execution state");
    if (result == 1) {
        if (broker_exec_status_parse(store_col_text(s, 0), status) < 0) {
            store_log_error(self, "get execution state");
            result = -1;
        }
        store_reset(s);
    }
    return result;
}

int broker_store_phase_output(broker_store_t *self, const char *execution_id,
                              const char *phase_id, char **output)
{
    store_q_t *s = store_stmt(self, SQL_PHASE_OUTPUT_GET);
    if (!s)
        return -1;
    store_bind_text(s, 1, execution_id);
    store_bind_text(s, 2, phase_id);
    return store_step_text(self, s, "get phase output", output);
}
