/* api_workflows: the workflow operations — create, list, get, install, archive and
 * phase_update — their checks (a workflow's rules: template/spec.c) and reply bodies. */
#include "broker/api_internal.h"

#include "common/clock.h"
#include "common/ids.h"
#include "common/log.h"
#include "template/spec.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* --- workflow.create -------------------------------------------------------- */

/* The first violation of the workflow specification, worded as the broker words
 * its refusals ("phases[0].order is required"). */
static void first_violation(void *ctx, const spec_violation_t *violation)
{
    reason_t *why = ctx;
    if (!why->text[0])
        spec_sentence(violation, why->text, sizeof why->text);
}

/* The stored form of args (defaults filled, template/spec.h), or NULL with the
 * reason when they break the workflow specification: the same rules the gateway
 * and the YAML loader apply, checked again because the broker trusts no client. */
static json_t *build_template(const json_t *args, reason_t *why)
{
    json_t *loc = json_array();
    json_t *checked = spec_check(&spec_workflow, (json_t *)args, loc, first_violation, why);
    json_decref(loc);
    if (!checked)
        return NULL;
    json_t *tpl = spec_with_defaults(&spec_workflow, checked);
    json_decref(checked);
    return tpl;
}

/* The template as stored: id first, as users write it. */
static json_t *stored_template(const char *id, const json_t *tpl)
{
    json_t *stored = json_pack("{s:s}", "id", id);
    json_object_update(stored, (json_t *)tpl);
    return stored;
}

/* The workflows row of a stored template (pointers borrowed from it). */
static broker_workflow_row_t row_of(const char *id, const json_t *stored,
                                    const char *source_hash)
{
    return (broker_workflow_row_t){
        .id = id,
        .name = json_string_value(json_object_get(stored, "name")),
        .description = json_string_value(json_object_get(stored, "description")),
        .workflow_type = json_string_value(json_object_get(stored, "workflow_type")),
        .classification = json_string_value(json_object_get(stored, "classification")),
        .phase_count = (int64_t)json_array_size(json_object_get(stored, "phases")),
        .template_json = stored,
        .created_at = syn_now_us(),
        .source_hash = source_hash,
    };
}

/* The stored template of a workflow's arguments, checked as workflow.create and
 * workflow.install both require: 0 with it in *tpl, or the error status (400, or
 * 422 for a repeated phase) with the reply in *body. */
static int checked_template(const json_t *args, json_t **tpl, json_t **body)
{
    reason_t why = {""};
    *tpl = build_template(args, &why);
    if (!*tpl)
        return api_bad_request(body, &why);
    json_t *duplicate = spec_duplicate_phase(json_object_get(*tpl, "phases"));
    if (duplicate) {
        json_decref(*tpl);
        *tpl = NULL;
        *body = duplicate;
        return 422;
    }
    return 0;
}

int broker_api_op_workflow_create(broker_api_t *self, const json_t *args, json_t **body)
{
    json_t *tpl;
    int checked = checked_template(args, &tpl, body);
    if (checked != 0)
        return checked;
    const char *given_id = json_string_value(json_object_get(tpl, "id"));

    char id[128];
    int rc = 1;
    for (int tries = 0; rc == 1 && tries < (given_id ? 1 : 8); tries++) {
        if (given_id)
            snprintf(id, sizeof id, "%s", given_id);
        else if (syn_id_make("wf-", 12, id, sizeof id) < 0)
            break;
        json_t *stored = stored_template(id, tpl);
        broker_workflow_row_t row = row_of(id, stored, NULL);
        rc = broker_store_workflow_insert(self->store, &row);
        json_decref(stored);
    }
    if (rc == 1 && given_id) {
        json_decref(tpl);
        *body = api_detail("Workflow %s already exists", given_id);
        return 409;
    }
    if (rc != 0) {
        json_decref(tpl);
        return api_internal_error(body, "cannot store the workflow");
    }
    *body = json_pack("{s:s, s:O, s:O, s:O, s:s}", "id", id, "name",
                      json_object_get(tpl, "name"), "workflow_type",
                      json_object_get(tpl, "workflow_type"), "classification",
                      json_object_get(tpl, "classification"), "status", "created");
    json_decref(tpl);
    syn_info("broker", "workflow created workflow=%s", id);
    return 201;
}

/* --- workflow.list / workflow.get ------------------------------------------ */

int broker_api_op_workflow_list(broker_api_t *self, const json_t *args, json_t **body)
{
    reason_t why = {""};
    json_int_t page = 1, page_size = 20;
    broker_workflow_filter_t filter = {NULL, false};
    const json_t *archived = json_object_get(args, "include_archived");
    if (!api_opt_int(args, "page", 1, 1000000000, &page, "", &why) ||
        !api_opt_int(args, "page_size", 1, 100, &page_size, "", &why) ||
        !api_opt_string(args, "workflow_type", &filter.workflow_type, "", &why))
        return api_bad_request(body, &why);
    if (archived && !json_is_null(archived) && !json_is_boolean(archived)) {
        api_fail(&why, "include_archived must be a boolean");
        return api_bad_request(body, &why);
    }
    filter.include_archived = json_is_true(archived);
    json_t *items;
    int64_t total;
    if (broker_store_workflow_list(self->store, &filter, page, page_size, &items, &total) < 0)
        return api_internal_error(body, "cannot list workflows");
    *body = json_pack("{s:o, s:I, s:I, s:I}", "workflows", items, "total", (json_int_t)total,
                      "page", page, "page_size", page_size);
    return 200;
}

/* A stored workflow: 200 with its template (a new reference) and meta, or
 * 404 / 500 with the reply in *body. */
static int read_workflow(broker_api_t *self, const char *id, json_t **tpl,
                         broker_workflow_meta_t *meta, json_t **body)
{
    *tpl = NULL;
    int rc = broker_store_workflow_get(self->store, id, tpl, meta);
    if (rc < 0)
        return api_internal_error(body, "cannot read the workflow");
    if (rc == 0) {
        *body = api_detail("Workflow %s not found", id);
        return 404;
    }
    return 200;
}

int broker_api_op_workflow_get(broker_api_t *self, const json_t *args, json_t **body)
{
    reason_t why = {""};
    const char *id;
    if (!api_req_string(args, "id", &id, "", &why))
        return api_bad_request(body, &why);
    json_t *tpl;
    broker_workflow_meta_t meta;
    int status = read_workflow(self, id, &tpl, &meta, body);
    if (status != 200)
        return status;
    json_object_set_new(tpl, "created_at", broker_time_json(meta.created_at));
    json_object_set_new(tpl, "version", json_integer(meta.version));
    json_object_set_new(tpl, "archived", json_boolean(meta.archived));
    *body = tpl;
    return 200;
}

/* --- workflow.install / workflow.archive / workflow.phase_update ----------- */

/* A workflow file loaded at start (syn-broker --workflows): created when new,
 * a new version when its content hash changed, nothing written when it did not;
 * an archived workflow stays archived and is left alone. */
int broker_api_op_workflow_install(broker_api_t *self, const json_t *args, json_t **body)
{
    reason_t why = {""};
    const char *hash, *id = NULL;
    const json_t *workflow = json_object_get(args, "workflow");
    if (!api_req_string(args, "source_hash", &hash, "", &why))
        return api_bad_request(body, &why);
    if (!*hash || strlen(hash) >= BROKER_SOURCE_HASH_SIZE) {
        api_fail(&why, "source_hash must have 1 to %d characters", BROKER_SOURCE_HASH_SIZE - 1);
        return api_bad_request(body, &why);
    }
    if (!json_is_object(workflow)) {
        api_fail(&why, "workflow must be an object");
        return api_bad_request(body, &why);
    }
    if (!api_req_string(workflow, "id", &id, "workflow.", &why))
        return api_bad_request(body, &why);
    if (!syn_id_is_valid(id)) {
        api_fail(&why, "workflow.id must match " SYN_ID_PATTERN);
        return api_bad_request(body, &why);
    }
    json_t *tpl;
    int checked = checked_template(workflow, &tpl, body);
    if (checked != 0)
        return checked;
    json_t *current = NULL;
    broker_workflow_meta_t meta;
    int rc = broker_store_workflow_get(self->store, id, &current, &meta);
    json_decref(current);
    if (rc < 0) {
        json_decref(tpl);
        return api_internal_error(body, "cannot read the workflow");
    }
    const char *outcome = NULL;
    int64_t version = rc == 1 ? meta.version : 1;
    if (rc == 1 && meta.archived)
        outcome = "archived";
    else if (rc == 1 && strcmp(meta.source_hash, hash) == 0)
        outcome = "unchanged";
    int status = 200;
    if (!outcome) {
        json_t *stored = stored_template(id, tpl);
        broker_workflow_row_t row = row_of(id, stored, hash);
        int written = rc == 0 ? broker_store_workflow_insert(self->store, &row)
                              : broker_store_workflow_update(self->store, &row, &version);
        json_decref(stored);
        if (written != 0) {
            json_decref(tpl);
            return api_internal_error(body, "cannot store the workflow");
        }
        outcome = rc == 0 ? "created" : "updated";
        status = rc == 0 ? 201 : 200;
    }
    json_decref(tpl);
    *body = json_pack("{s:s, s:I, s:s}", "id", id, "version", (json_int_t)version, "status",
                      outcome);
    return status;
}

/* Executions of the workflow that are not finished: archiving must wait for them. */
static int64_t active_executions(broker_api_t *self, const char *workflow_id)
{
    static const broker_exec_status_t active[] = {BROKER_EXEC_PENDING, BROKER_EXEC_RUNNING,
                                                  BROKER_EXEC_PAUSED};
    int64_t total = 0;
    for (size_t i = 0; i < sizeof active / sizeof active[0]; i++) {
        int64_t n = broker_store_execution_count(self->store, workflow_id, (int)active[i]);
        if (n < 0)
            return -1;
        total += n;
    }
    return total;
}

int broker_api_op_workflow_archive(broker_api_t *self, const json_t *args, json_t **body)
{
    reason_t why = {""};
    const char *id;
    if (!api_req_string(args, "id", &id, "", &why))
        return api_bad_request(body, &why);
    json_t *tpl;
    broker_workflow_meta_t meta;
    int status = read_workflow(self, id, &tpl, &meta, body);
    json_decref(tpl);
    if (status != 200)
        return status;
    if (meta.archived) {
        *body = api_detail("Workflow %s is already archived", id);
        return 409;
    }
    int64_t active = active_executions(self, id);
    if (active < 0)
        return api_internal_error(body, "cannot count the workflow's executions");
    if (active > 0) {
        *body = api_detail("Workflow %s has active executions", id);
        return 409;
    }
    if (broker_store_workflow_archive(self->store, id) != 0)
        return api_internal_error(body, "cannot archive the workflow");
    syn_info("broker", "workflow archived workflow=%s", id);
    *body = json_pack("{s:s, s:s}", "id", id, "status", "archived");
    return 200;
}

/* A new version of the workflow with one phase's prompt (and optionally model,
 * timeout, tools) changed. Executions keep the version they started with: those
 * running hold their phases in memory, and reload them by version after a restart. */
int broker_api_op_workflow_phase_update(broker_api_t *self, const json_t *args, json_t **body)
{
    reason_t why = {""};
    const char *workflow_id, *phase_id;
    if (!api_req_string(args, "workflow_id", &workflow_id, "", &why) ||
        !api_req_string(args, "phase_id", &phase_id, "", &why))
        return api_bad_request(body, &why);
    /* the rest is the edit, checked as the gateway checks PUT's body */
    json_t *edit = json_copy((json_t *)args);
    json_object_del(edit, "workflow_id");
    json_object_del(edit, "phase_id");
    json_t *loc = json_array();
    json_t *changes = spec_check(&spec_phase_update, edit, loc, first_violation, &why);
    json_decref(loc);
    json_decref(edit);
    if (!changes)
        return api_bad_request(body, &why);
    json_t *tpl;
    broker_workflow_meta_t meta;
    int status = read_workflow(self, workflow_id, &tpl, &meta, body);
    if (status != 200) {
        json_decref(changes);
        return status;
    }
    if (meta.archived) {
        json_decref(changes);
        json_decref(tpl);
        *body = api_detail("Workflow %s is archived", workflow_id);
        return 409;
    }
    json_t *phase = NULL;
    size_t i;
    json_t *item;
    json_array_foreach(json_object_get(tpl, "phases"), i, item)
    {
        const char *pid = json_string_value(json_object_get(item, "phase_id"));
        if (pid && strcmp(pid, phase_id) == 0)
            phase = item;
    }
    if (!phase) {
        json_decref(changes);
        json_decref(tpl);
        *body = api_detail("Phase %s not found in workflow %s", phase_id, workflow_id);
        return 404;
    }
    /* keys left out (or null) keep their values: spec_check dropped them */
    json_object_update(phase, changes);
    json_decref(changes);
    broker_workflow_row_t row = row_of(workflow_id, tpl, NULL);
    int64_t version = 0;
    int rc = broker_store_workflow_update(self->store, &row, &version);
    json_decref(tpl);
    if (rc != 0)
        return api_internal_error(body, "cannot store the workflow");
    syn_info("broker", "workflow phase updated workflow=%s phase=%s version=%lld", workflow_id,
             phase_id, (long long)version);
    *body = json_pack("{s:s, s:s, s:I, s:s}", "workflow_id", workflow_id, "phase_id", phase_id,
                      "version", (json_int_t)version, "status", "updated");
    return 200;
}
