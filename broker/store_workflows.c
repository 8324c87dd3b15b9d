/* store_workflows: workflows and their versions — insert, a new version,
 * archive, reads, the list, and the cache of current templates execution.start
 * reads on every call. It stands alone because a workflow's rows never change
 * an execution's: executions point at the version they started with. */
#include "broker/store_internal.h"

#include "common/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A workflow's current version as workflow_get read it: execution.start needs
 * it on every call, and reading and parsing the template each time cost more
 * than the rest of the request. Dropped whenever the workflow is written. */
typedef struct {
    broker_workflow_meta_t meta;
    json_t *template_json;
} cached_workflow_t;

void store_cached_workflow_destroy(void **item)
{
    cached_workflow_t *cached = *item;
    if (!cached)
        return;
    json_decref(cached->template_json);
    free(cached);
    *item = NULL;
}

/* One row of workflow_versions: 0, or -1 (the transaction is then marked failed). */
static int insert_version(broker_store_t *self, const char *id, int64_t version,
                          const char *text, int64_t created_at)
{
    store_q_t *s = store_stmt(self, SQL_WORKFLOW_VERSION_INSERT);
    if (!s)
        return -1;
    store_bind_text(s, 1, id);
    store_bind_text(s, 2, text);
    store_bind_int(s, 3, created_at);
    store_bind_int(s, 4, version);
    int rc = store_run(self, s, "insert workflow version");
    if (rc == STORE_CONSTRAINT) {
        /* a version that exists already: the two tables disagree */
        syn_error("broker", "workflow %s already has a version %lld", id, (long long)version);
        self->failed = true;
    }
    return rc == STORE_DONE ? 0 : -1;
}

/* Columns 1-6 of both the insert and the version bump: what a workflow row says
 * about itself, in the order the two statements share. */
static void bind_workflow_columns(store_q_t *s, const broker_workflow_row_t *row)
{
    store_bind_text(s, 1, row->id);
    store_bind_text(s, 2, row->name);
    store_bind_text(s, 3, row->description);
    store_bind_text(s, 4, row->workflow_type);
    store_bind_text(s, 5, row->classification);
    store_bind_int(s, 6, row->phase_count);
}

/* What an insert and an update start with: the cached copy goes (the workflow
 * is about to change), the transaction begins, and the template's text is made
 * (malloc'd; NULL when it cannot be, or the transaction cannot begin). */
static char *begin_workflow_write(broker_store_t *self, const broker_workflow_row_t *row)
{
    zhashx_delete(self->workflows, row->id);
    return store_write_json(self, row->template_json);
}

int broker_store_workflow_insert(broker_store_t *self, const broker_workflow_row_t *row)
{
    char *text = begin_workflow_write(self, row);
    if (!text)
        return -1;
    int result = -1;
    store_q_t *s = store_stmt(self, SQL_WORKFLOW_INSERT);
    if (!s)
        goto done;
    bind_workflow_columns(s, row);
    store_bind_int(s, 7, row->created_at);
    store_bind_text(s, 8, row->source_hash);
    int rc = store_run(self, s, "insert workflow");
    if (rc == STORE_CONSTRAINT) {
        result = 1;
        goto done;
    }
    if (rc != STORE_DONE)
        goto done;
    if (insert_version(self, row->id, 1, text, row->created_at) == 0)
        result = 0;
done:
    free(text);
    return result;
}

int broker_store_workflow_update(broker_store_t *self, const broker_workflow_row_t *row,
                                 int64_t *version_out)
{
    char *text = begin_workflow_write(self, row);
    if (!text)
        return -1;
    int result = -1;
    store_q_t *s = store_stmt(self, SQL_WORKFLOW_BUMP);
    if (!s)
        goto done;
    bind_workflow_columns(s, row);
    store_bind_text(s, 7, row->source_hash);
    int rc = store_step(s);
    int64_t version = rc == STORE_ROW ? store_col_int(s, 0) : 0;
    if (rc == STORE_ROW)
        rc = store_step(s); /* finishes the statement: the update is done */
    store_reset(s);
    if (rc != STORE_DONE) {
        store_log_error(self, "update workflow");
        self->failed = true;
        goto done;
    }
    if (version == 0) {
        result = 1;
        goto done;
    }
    if (insert_version(self, row->id, version, text, row->created_at) == 0) {
        result = 0;
        if (version_out)
            *version_out = version;
    }
done:
    free(text);
    return result;
}

int broker_store_workflow_archive(broker_store_t *self, const char *id)
{
    zhashx_delete(self->workflows, id);
    store_q_t *s = store_write_stmt(self, SQL_WORKFLOW_ARCHIVE);
    if (!s)
        return -1;
    store_bind_text(s, 1, id);
    if (store_run(self, s, "archive workflow") != STORE_DONE)
        return -1;
    return store_changes(self) == 1 ? 0 : 1;
}

int broker_store_workflow_get(broker_store_t *self, const char *id, json_t **template_out,
                              broker_workflow_meta_t *meta)
{
    store_q_t *s = store_stmt(self, SQL_WORKFLOW_GET);
    if (!s)
        return -1;
    store_bind_text(s, 1, id);
    int result = store_step_one(self, s, "get workflow");
    if (result == 1) {
        if (meta) {
            memset(meta, 0, sizeof *meta);
            meta->version = store_col_int(s, 0);
            meta->created_at = store_col_int(s, 1);
            meta->archived = store_col_int(s, 3) != 0;
            const char *hash = store_col_text(s, 4);
            snprintf(meta->source_hash, sizeof meta->source_hash, "%s", hash ? hash : "");
        }
        json_t *template_json = store_column_json(s, 2);
        if (template_json) {
            *template_out = template_json;
            result = 1;
        } else {
            syn_error("broker", "workflow %s has an unreadable template", id);
            result = -1;
        }
        store_reset(s);
    }
    return result;
}

int broker_store_workflow_shared(broker_store_t *self, const char *id,
                                 const json_t **template_out, broker_workflow_meta_t *meta)
{
    cached_workflow_t *cached = zhashx_lookup(self->workflows, id);
    if (!cached) {
        json_t *template_json = NULL;
        broker_workflow_meta_t read;
        int rc = broker_store_workflow_get(self, id, &template_json, &read);
        if (rc != 1)
            return rc;
        cached = calloc(1, sizeof *cached);
        if (!cached) {
            json_decref(template_json);
            return -1;
        }
        cached->meta = read;
        cached->template_json = template_json;
        if (zhashx_insert(self->workflows, id, cached) != 0) {
            void *item = cached;
            store_cached_workflow_destroy(&item);
            return -1;
        }
    }
    *template_out = cached->template_json;
    if (meta)
        *meta = cached->meta;
    return 1;
}

int broker_store_workflow_template(broker_store_t *self, const char *id, int64_t version,
                                   json_t **template_out)
{
    store_q_t *s = store_stmt(self, SQL_WORKFLOW_TEMPLATE);
    if (!s)
        return -1;
    store_bind_text(s, 1, id);
    store_bind_int(s, 2, version);
    int result = store_step_one(self, s, "get workflow template");
    if (result == 1) {
        *template_out = store_column_json(s, 0);
        result = *template_out ? 1 : -1;
        store_reset(s);
    }
    return result;
}

int broker_store_workflow_list(broker_store_t *self, const broker_workflow_filter_t *filter,
                               int64_t page, int64_t page_size, json_t **items_out,
                               int64_t *total)
{
    const char *type = filter ? filter->workflow_type : NULL;
    int archived = filter && filter->include_archived;
    store_q_t *s = store_stmt(self, SQL_WORKFLOW_COUNT);
    if (!s)
        return -1;
    store_bind_text(s, 1, type);
    store_bind_int(s, 2, archived);
    int64_t count = store_step_int(self, s, "count workflows");
    if (count < 0)
        return -1;
    *total = count;

    s = store_stmt(self, SQL_WORKFLOW_LIST);
    if (!s)
        return -1;
    store_bind_int(s, 1, page_size);
    store_bind_int(s, 2, (page - 1) * page_size);
    store_bind_text(s, 3, type);
    store_bind_int(s, 4, archived);
    json_t *items = json_array();
    int rc;
    while ((rc = store_step(s)) == STORE_ROW) {
        json_t *item = json_object();
        json_object_set_new(item, "id", store_column_string_or_null(s, 0));
        json_object_set_new(item, "name", store_column_string_or_null(s, 1));
        json_object_set_new(item, "description", store_column_string_or_null(s, 2));
        json_object_set_new(item, "workflow_type", store_column_string_or_null(s, 3));
        json_object_set_new(item, "classification", store_column_string_or_null(s, 4));
        json_object_set_new(item, "phase_count", json_integer(store_col_int(s, 5)));
        json_object_set_new(item, "created_at", broker_time_json(store_col_int(s, 6)));
        json_object_set_new(item, "version", json_integer(store_col_int(s, 7)));
        json_object_set_new(item, "archived", json_boolean(store_col_int(s, 8) != 0));
        json_array_append_new(items, item);
    }
    store_reset(s);
    if (rc != STORE_DONE) {
        store_log_error(self, "list workflows");
        json_decref(items);
        return -1;
    }
    *items_out = items;
    return 0;
}

int broker_store_workflow_name(broker_store_t *self, const char *id, char **name)
{
    store_q_t *s = store_stmt(self, SQL_WORKFLOW_NAME);
    if (!s)
        return -1;
    store_bind_text(s, 1, id);
    return store_step_text(self, s, "get workflow name", name);
}
