/* Workflow templates in the broker (issue 6), in-process with real SQLite
 * (tests/support/broker_fixture): install (created / unchanged without a write /
 * new version / archived left alone), the preload of a directory, archive rules,
 * a phase edited while an execution runs (it keeps its version, across a broker
 * restart too), and listing filters with a real total. */
#include "broker/engine.h"
#include "broker/preload.h"
#include "broker/store.h"
#include "tests/support/broker_fixture.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

/* A completed RESULT for an ASSIGN, its ack taken out of the log. */
static void complete(fx_t *f, const char *identity, const json_t *assign, const char *output)
{
    fx_result(f, identity, assign, "completed", output, NULL);
    json_decref(fx_take(f, "result_ack", identity));
}

/* A two-phase workflow as the template library gives it (id included). */
static json_t *workflow(const char *id, const char *type, const char *second_prompt)
{
    return json_pack("{s:s, s:s, s:s, s:[{s:s, s:s, s:i, s:s}, {s:s, s:s, s:i, s:s, s:s}]}",
                     "id", id, "name", "Two", "workflow_type", type, "phases", "phase_id", "p1",
                     "name", "One", "order", 1, "prompt_template", "first $ARGUMENTS",
                     "phase_id", "p2", "name", "Two", "order", 2, "prompt_template",
                     second_prompt, "model", "small");
}

static json_t *install_args(json_t *wf, const char *hash)
{
    return json_pack("{s:o, s:s}", "workflow", wf, "source_hash", hash);
}

/* Installs; returns the status with the reply's status word and version. */
static int install(fx_t *f, json_t *wf, const char *hash, char outcome[16], json_int_t *version)
{
    json_t *body = NULL;
    int status = fx_call(f, "workflow.install", install_args(wf, hash), &body);
    snprintf(outcome, 16, "%s", fx_str(body, "status") ? fx_str(body, "status") : "");
    *version = fx_num(body, "version");
    json_decref(body);
    return status;
}

static json_t *get(fx_t *f, const char *id)
{
    json_t *body = NULL;
    assert_int_equal(fx_call(f, "workflow.get", json_pack("{s:s}", "id", id), &body), 200);
    return body;
}

static const char *prompt_of(const json_t *tpl, size_t index)
{
    return fx_str(json_array_get(json_object_get(tpl, "phases"), index), "prompt_template");
}

static void start(fx_t *f, const char *workflow_id, char id[BROKER_EXEC_ID_SIZE])
{
    json_t *body = NULL;
    assert_int_equal(fx_call(f, "execution.start",
                             json_pack("{s:s, s:{}, s:s, s:[]}", "workflow_id", workflow_id,
                                       "inputs", "task", "T", "repos"),
                             &body),
                     200);
    snprintf(id, BROKER_EXEC_ID_SIZE, "%s", fx_str(body, "execution_id"));
    json_decref(body);
}

static void test_install(void **state)
{
    fx_t *f = *state;
    char outcome[16];
    json_int_t version;
    assert_int_equal(install(f, workflow("wf-t", "review", "old {{p1}}"), "h1", outcome, &version),
                     201);
    assert_string_equal(outcome, "created");
    assert_int_equal(version, 1);
    json_t *tpl = get(f, "wf-t");
    assert_int_equal(fx_num(tpl, "version"), 1);
    assert_true(json_is_false(json_object_get(tpl, "archived")));
    assert_string_equal(fx_str(tpl, "workflow_type"), "review");
    /* defaults filled as for workflow.create */
    assert_int_equal(fx_num(json_array_get(json_object_get(tpl, "phases"), 0), "timeout_seconds"),
                     300);
    json_decref(tpl);

    /* The same hash: nothing is written at all. */
    uint64_t commits = broker_store_commit_count(f->store);
    json_t *body = NULL;
    json_t *again = install_args(workflow("wf-t", "review", "old {{p1}}"), "h1");
    assert_int_equal(broker_api_handle(f->api, "workflow.install", again, &body), 200);
    json_decref(again);
    assert_false(broker_store_dirty(f->store));
    assert_string_equal(fx_str(body, "status"), "unchanged");
    assert_int_equal(fx_num(body, "version"), 1);
    json_decref(body);
    fx_turn(f);
    assert_int_equal(broker_store_commit_count(f->store), commits);

    /* A new hash: a new version, with the new content. */
    assert_int_equal(install(f, workflow("wf-t", "planning", "new {{p1}}"), "h2", outcome, &version),
                     200);
    assert_string_equal(outcome, "updated");
    assert_int_equal(version, 2);
    tpl = get(f, "wf-t");
    assert_int_equal(fx_num(tpl, "version"), 2);
    assert_string_equal(prompt_of(tpl, 1), "new {{p1}}");
    assert_string_equal(fx_str(tpl, "workflow_type"), "planning");
    json_decref(tpl);
    assert_int_equal(fx_db_int(f, "SELECT count(*) FROM workflow_versions WHERE "
                                  "workflow_id='wf-t'"),
                     2);
    assert_int_equal(install(f, workflow("wf-t", "planning", "new {{p1}}"), "h2", outcome, &version),
                     200);
    assert_string_equal(outcome, "unchanged");
    assert_int_equal(version, 2);

    /* A workflow made through the API with the same id is replaced by a new version. */
    fx_expect(f, "workflow.create",
              json_pack("{s:s, s:s, s:[{s:s, s:s, s:i, s:s}]}", "id", "wf-api", "name", "A",
                        "phases", "phase_id", "a", "name", "A", "order", 1, "prompt_template", "x"),
              201, NULL);
    assert_int_equal(install(f, workflow("wf-api", "custom", "y"), "h3", outcome, &version), 200);
    assert_string_equal(outcome, "updated");
    assert_int_equal(version, 2);

    /* Archived: left alone, nothing written. */
    fx_expect(f, "workflow.archive", json_pack("{s:s}", "id", "wf-t"), 200, NULL);
    assert_int_equal(install(f, workflow("wf-t", "planning", "newer"), "h9", outcome, &version),
                     200);
    assert_string_equal(outcome, "archived");
    assert_int_equal(version, 2);
    tpl = get(f, "wf-t");
    assert_string_equal(prompt_of(tpl, 1), "new {{p1}}");
    json_decref(tpl);

    /* Arguments the workflow.create rules refuse. */
    json_t *no_id = workflow("x", "custom", "y");
    json_object_del(no_id, "id");
    fx_expect(f, "workflow.install", install_args(no_id, "h"), 400,
              "bad request: workflow.id is required");
    fx_expect(f, "workflow.install", install_args(workflow("bad id", "custom", "y"), "h"), 400,
              "bad request: workflow.id must match ^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$");
    fx_expect(f, "workflow.install", install_args(workflow("wf-u", "nonsense", "y"), "h"), 400,
              "bad request: workflow_type must be one of research, planning, implementation, "
              "review, deployment, custom");
    fx_expect(f, "workflow.install", install_args(workflow("wf-u", "custom", "y"), ""), 400,
              "bad request: source_hash must have 1 to 71 characters");
    json_t *dup = workflow("wf-u", "custom", "y");
    json_object_set_new(json_array_get(json_object_get(dup, "phases"), 1), "phase_id",
                        json_string("p1"));
    fx_expect(f, "workflow.install", install_args(dup, "h"), 422,
              "Duplicate phase_id 'p1' in phases[0] and phases[1]");
    fx_expect(f, "workflow.get", json_pack("{s:s}", "id", "wf-u"), 404, "Workflow wf-u not found");
}

/* Copies the shipped workflows/ into dir (cp -r: a test fixture, not product code). */
static void copy_tree(const char *from, const char *to)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "cp -r '%s' '%s'", from, to);
    assert_int_equal(system(cmd), 0);
}

static void write_file(const char *path, const char *text)
{
    FILE *out = fopen(path, "w");
    assert_non_null(out);
    fputs(text, out);
    fclose(out);
}

static void test_preload(void **state)
{
    fx_t *f = *state;
    char dir[160];
    snprintf(dir, sizeof dir, "%s/workflows", f->dir);
    copy_tree(SYN_SOURCE_DIR "/workflows", dir);

    broker_preload_stats_t stats;
    char why[256];
    assert_int_equal(broker_preload(f->api, dir, &stats, why, sizeof why), 0);
    fx_turn(f);
    assert_int_equal(stats.created, 3);
    assert_int_equal(stats.failed, 0);
    const char *ids[] = {"research", "implement-and-review", "pr-review"};
    for (size_t i = 0; i < 3; i++) {
        json_t *tpl = get(f, ids[i]);
        assert_int_equal(fx_num(tpl, "version"), 1);
        json_decref(tpl);
    }
    /* The package's prompt files are in, with their front matter applied. */
    json_t *tpl = get(f, "implement-and-review");
    json_t *implement = json_array_get(json_object_get(tpl, "phases"), 1);
    assert_non_null(strstr(fx_str(implement, "prompt_template"), "Implement this change"));
    assert_int_equal(fx_num(implement, "max_tokens"), 32000);
    assert_int_equal(fx_num(implement, "timeout_seconds"), 1800);
    json_decref(tpl);

    /* Again with the same files: nothing changes, nothing is written. */
    uint64_t commits = broker_store_commit_count(f->store);
    assert_int_equal(broker_preload(f->api, dir, &stats, why, sizeof why), 0);
    assert_false(broker_store_dirty(f->store));
    assert_int_equal(stats.unchanged, 3);
    assert_int_equal(stats.created + stats.updated + stats.failed, 0);
    fx_turn(f);
    assert_int_equal(broker_store_commit_count(f->store), commits);

    /* A changed prompt file → a new version of that workflow only; a broken file is
     * skipped while the rest load. */
    char path[256];
    snprintf(path, sizeof path, "%s/implement-and-review/prompts/review.md", dir);
    write_file(path, "---\nmodel: opus\n---\nReview it again: $ARGUMENTS\n");
    snprintf(path, sizeof path, "%s/broken.yaml", dir);
    write_file(path, "name: Broken\ntype: reserch\nphases: []\n");
    assert_int_equal(broker_preload(f->api, dir, &stats, why, sizeof why), 0);
    fx_turn(f);
    assert_int_equal(stats.updated, 1);
    assert_int_equal(stats.unchanged, 2);
    assert_int_equal(stats.failed, 1);
    tpl = get(f, "implement-and-review");
    assert_int_equal(fx_num(tpl, "version"), 2);
    assert_string_equal(prompt_of(tpl, 2), "Review it again: $ARGUMENTS\n");
    json_decref(tpl);
    tpl = get(f, "research");
    assert_int_equal(fx_num(tpl, "version"), 1);
    json_decref(tpl);
    fx_expect(f, "workflow.get", json_pack("{s:s}", "id", "broken"), 404, NULL);

    /* A directory that cannot be read is an error of its own. */
    assert_int_equal(broker_preload(f->api, "/nonexistent/syn-workflows", &stats, why, sizeof why),
                     -1);
    assert_true(strlen(why) > 0);
}

static void test_archive_rules(void **state)
{
    fx_t *f = *state;
    fx_expect(f, "workflow.archive", json_pack("{s:s}", "id", "nope"), 404,
              "Workflow nope not found");
    fx_expect(f, "workflow.archive", json_pack("{}"), 400, "bad request: id is required");
    char outcome[16];
    json_int_t version;
    install(f, workflow("wf-a", "custom", "second"), "h", outcome, &version);
    install(f, workflow("wf-b", "custom", "second"), "h", outcome, &version);

    /* pending, running and paused executions all block archiving */
    char pending[BROKER_EXEC_ID_SIZE], running[BROKER_EXEC_ID_SIZE];
    start(f, "wf-a", pending);
    fx_expect(f, "workflow.archive", json_pack("{s:s}", "id", "wf-a"), 409,
              "Workflow wf-a has active executions");
    fx_ready(f, "W1", 1, NULL);
    json_t *a1 = fx_take(f, "assign", "W1");
    assert_non_null(a1);
    snprintf(running, sizeof running, "%s", fx_str(a1, "execution_id"));
    assert_string_equal(running, pending);
    fx_expect(f, "workflow.archive", json_pack("{s:s}", "id", "wf-a"), 409,
              "Workflow wf-a has active executions");
    fx_expect(f, "execution.pause", json_pack("{s:s, s:n}", "execution_id", running, "reason"), 200,
              NULL);
    complete(f, "W1", a1, "out");
    json_decref(a1);
    json_t *state_body = NULL;
    fx_call(f, "execution.state", json_pack("{s:s}", "execution_id", running), &state_body);
    assert_string_equal(fx_str(state_body, "state"), "paused");
    json_decref(state_body);
    fx_expect(f, "workflow.archive", json_pack("{s:s}", "id", "wf-a"), 409,
              "Workflow wf-a has active executions");
    fx_expect(f, "execution.cancel", json_pack("{s:s, s:n}", "execution_id", running, "reason"),
              200, NULL);

    json_t *body = NULL;
    assert_int_equal(fx_call(f, "workflow.archive", json_pack("{s:s}", "id", "wf-a"), &body), 200);
    assert_string_equal(fx_str(body, "id"), "wf-a");
    assert_string_equal(fx_str(body, "status"), "archived");
    json_decref(body);
    fx_expect(f, "workflow.archive", json_pack("{s:s}", "id", "wf-a"), 409,
              "Workflow wf-a is already archived");

    /* still readable, marked; not executable; not editable; hidden from the list */
    json_t *tpl = get(f, "wf-a");
    assert_true(json_is_true(json_object_get(tpl, "archived")));
    json_decref(tpl);
    fx_expect(f, "execution.start",
              json_pack("{s:s, s:{}, s:n, s:[]}", "workflow_id", "wf-a", "inputs", "task", "repos"),
              409, "Workflow wf-a is archived");
    fx_expect(f, "workflow.phase_update",
              json_pack("{s:s, s:s, s:s}", "workflow_id", "wf-a", "phase_id", "p1",
                        "prompt_template", "x"),
              409, "Workflow wf-a is archived");
    assert_int_equal(fx_call(f, "workflow.list", json_pack("{}"), &body), 200);
    assert_int_equal(fx_num(body, "total"), 1);
    assert_string_equal(fx_str(json_array_get(json_object_get(body, "workflows"), 0), "id"),
                        "wf-b");
    json_decref(body);
    assert_int_equal(fx_call(f, "workflow.list", json_pack("{s:b}", "include_archived", 1), &body),
                     200);
    assert_int_equal(fx_num(body, "total"), 2);
    json_t *first = json_array_get(json_object_get(body, "workflows"), 1);
    assert_string_equal(fx_str(first, "id"), "wf-a");
    assert_true(json_is_true(json_object_get(first, "archived")));
    json_decref(body);
    /* Its past runs are still there. */
    assert_int_equal(fx_call(f, "workflow.runs",
                             json_pack("{s:s, s:i, s:i}", "workflow_id", "wf-a", "page", 1,
                                       "page_size", 10),
                             &body),
                     200);
    assert_int_equal(fx_num(body, "total"), 1);
    json_decref(body);
}

/* An execution started before a phase edit renders the old prompt for its next
 * phase — from memory, and after a broker restart from its stored version; one
 * started after renders the new. */
static void test_phase_update_keeps_running_version(void **state)
{
    fx_t *f = *state;
    char outcome[16];
    json_int_t version;
    install(f, workflow("wf-p", "custom", "OLD after [{{p1}}]"), "h", outcome, &version);
    char before[BROKER_EXEC_ID_SIZE], before_restart[BROKER_EXEC_ID_SIZE];
    start(f, "wf-p", before);
    start(f, "wf-p", before_restart);
    fx_ready(f, "W1", 2, NULL);
    json_t *a1 = fx_take(f, "assign", "W1");
    json_t *b1 = fx_take(f, "assign", "W1");
    assert_non_null(a1);
    assert_non_null(b1);
    if (strcmp(fx_str(a1, "execution_id"), before) != 0) {
        json_t *swap = a1;
        a1 = b1;
        b1 = swap;
    }

    json_t *body = NULL;
    assert_int_equal(fx_call(f, "workflow.phase_update",
                             json_pack("{s:s, s:s, s:s, s:s, s:i, s:[s]}", "workflow_id", "wf-p",
                                       "phase_id", "p2", "prompt_template", "NEW after [{{p1}}]",
                                       "model", "big", "timeout_seconds", 42, "allowed_tools",
                                       "Read"),
                             &body),
                     200);
    assert_string_equal(fx_str(body, "workflow_id"), "wf-p");
    assert_string_equal(fx_str(body, "phase_id"), "p2");
    assert_int_equal(fx_num(body, "version"), 2);
    assert_string_equal(fx_str(body, "status"), "updated");
    json_decref(body);
    json_t *tpl = get(f, "wf-p");
    assert_int_equal(fx_num(tpl, "version"), 2);
    json_t *p2 = json_array_get(json_object_get(tpl, "phases"), 1);
    assert_string_equal(fx_str(p2, "prompt_template"), "NEW after [{{p1}}]");
    assert_string_equal(fx_str(p2, "model"), "big");
    assert_int_equal(fx_num(p2, "timeout_seconds"), 42);
    assert_string_equal(json_string_value(json_array_get(json_object_get(p2, "allowed_tools"), 0)),
                        "Read");
    assert_string_equal(prompt_of(tpl, 0), "first $ARGUMENTS"); /* the other phase untouched */
    json_decref(tpl);

    /* Started before the edit: the old prompt and settings. */
    complete(f, "W1", a1, "ONE");
    json_decref(a1);
    json_t *a2 = fx_take(f, "assign", "W1");
    assert_non_null(a2);
    assert_string_equal(fx_str(a2, "prompt"), "OLD after [ONE]");
    assert_string_equal(fx_str(a2, "model"), "small");
    json_decref(a2);

    /* ...also when the broker restarts in between. */
    fx_restart(f);
    assert_true(broker_engine_recover(f->engine, f->now) >= 1);
    fx_turn(f);
    fx_ready(f, "W1", 2, json_pack("[o]", fx_ref_of(b1)));
    complete(f, "W1", b1, "TWO");
    json_decref(b1);
    json_t *b2 = fx_take(f, "assign", "W1");
    assert_non_null(b2);
    assert_string_equal(fx_str(b2, "execution_id"), before_restart);
    assert_string_equal(fx_str(b2, "prompt"), "OLD after [TWO]");
    json_decref(b2);

    /* Started after: the new ones. */
    char after[BROKER_EXEC_ID_SIZE];
    start(f, "wf-p", after);
    json_t *c1 = fx_take(f, "assign", "W1");
    assert_non_null(c1);
    complete(f, "W1", c1, "THREE");
    json_decref(c1);
    json_t *c2 = fx_take(f, "assign", "W1");
    assert_non_null(c2);
    assert_string_equal(fx_str(c2, "prompt"), "NEW after [THREE]");
    assert_string_equal(fx_str(c2, "model"), "big");
    assert_int_equal(fx_num(c2, "timeout_ms"), 42000);
    json_decref(c2);
    assert_int_equal(fx_db_int(f, "SELECT workflow_version FROM executions WHERE id='%s'", before),
                     1);
    assert_int_equal(fx_db_int(f, "SELECT workflow_version FROM executions WHERE id='%s'", after),
                     2);

    /* Keys left out keep their values. */
    fx_expect(f, "workflow.phase_update",
              json_pack("{s:s, s:s, s:s}", "workflow_id", "wf-p", "phase_id", "p2",
                        "prompt_template", "third"),
              200, NULL);
    tpl = get(f, "wf-p");
    assert_int_equal(fx_num(tpl, "version"), 3);
    p2 = json_array_get(json_object_get(tpl, "phases"), 1);
    assert_string_equal(fx_str(p2, "model"), "big");
    assert_int_equal(fx_num(p2, "timeout_seconds"), 42);
    json_decref(tpl);

    fx_expect(f, "workflow.phase_update",
              json_pack("{s:s, s:s, s:s}", "workflow_id", "nope", "phase_id", "p2",
                        "prompt_template", "x"),
              404, "Workflow nope not found");
    fx_expect(f, "workflow.phase_update",
              json_pack("{s:s, s:s, s:s}", "workflow_id", "wf-p", "phase_id", "p9",
                        "prompt_template", "x"),
              404, "Phase p9 not found in workflow wf-p");
    fx_expect(f, "workflow.phase_update",
              json_pack("{s:s, s:s, s:s}", "workflow_id", "wf-p", "phase_id", "p2",
                        "prompt_template", ""),
              400, "bad request: prompt_template must not be empty");
    fx_expect(f, "workflow.phase_update",
              json_pack("{s:s, s:s, s:s, s:i}", "workflow_id", "wf-p", "phase_id", "p2",
                        "prompt_template", "x", "timeout_seconds", 0),
              400, "bad request: timeout_seconds must be an integer from 1 to 86400");
    fx_expect(f, "workflow.phase_update",
              json_pack("{s:s, s:s, s:s, s:[i]}", "workflow_id", "wf-p", "phase_id", "p2",
                        "prompt_template", "x", "allowed_tools", 3),
              400, "bad request: allowed_tools[0] must be a string");
}

static void test_list_filters_and_total(void **state)
{
    fx_t *f = *state;
    const char *types[] = {"research", "review", "research", "custom", "research"};
    char outcome[16];
    json_int_t version;
    for (int i = 0; i < 5; i++) {
        char id[16];
        snprintf(id, sizeof id, "wf-%d", i);
        install(f, workflow(id, types[i], "x"), "h", outcome, &version);
    }
    fx_expect(f, "workflow.archive", json_pack("{s:s}", "id", "wf-4"), 200, NULL);

    json_t *body = NULL;
    assert_int_equal(fx_call(f, "workflow.list",
                             json_pack("{s:s, s:i, s:i}", "workflow_type", "research", "page", 1,
                                       "page_size", 1),
                             &body),
                     200);
    assert_int_equal(fx_num(body, "total"), 2);
    assert_int_equal(fx_num(body, "page"), 1);
    assert_int_equal(fx_num(body, "page_size"), 1);
    json_t *items = json_object_get(body, "workflows");
    assert_int_equal(json_array_size(items), 1);
    assert_string_equal(fx_str(json_array_get(items, 0), "id"), "wf-2");
    json_decref(body);
    assert_int_equal(fx_call(f, "workflow.list",
                             json_pack("{s:s, s:i, s:i}", "workflow_type", "research", "page", 2,
                                       "page_size", 1),
                             &body),
                     200);
    assert_string_equal(fx_str(json_array_get(json_object_get(body, "workflows"), 0), "id"),
                        "wf-0");
    json_decref(body);
    assert_int_equal(fx_call(f, "workflow.list",
                             json_pack("{s:s, s:b, s:i, s:i}", "workflow_type", "research",
                                       "include_archived", 1, "page", 3, "page_size", 1),
                             &body),
                     200);
    assert_int_equal(fx_num(body, "total"), 3);
    assert_int_equal(json_array_size(json_object_get(body, "workflows")), 1);
    json_decref(body);
    assert_int_equal(fx_call(f, "workflow.list", json_pack("{s:s}", "workflow_type", "planning"),
                             &body),
                     200);
    assert_int_equal(fx_num(body, "total"), 0);
    assert_int_equal(json_array_size(json_object_get(body, "workflows")), 0);
    json_decref(body);
    assert_int_equal(fx_call(f, "workflow.list", json_pack("{s:n, s:n}", "workflow_type",
                                                           "include_archived"),
                             &body),
                     200);
    assert_int_equal(fx_num(body, "total"), 4);
    json_decref(body);
    fx_expect(f, "workflow.list", json_pack("{s:s}", "include_archived", "yes"), 400,
              "bad request: include_archived must be a boolean");
    fx_expect(f, "workflow.list", json_pack("{s:i}", "workflow_type", 3), 400,
              "bad request: workflow_type must be a string");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        fx_unit_test(test_install),
        fx_unit_test(test_preload),
        fx_unit_test(test_archive_rules),
        fx_unit_test(test_phase_update_keeps_running_version),
        fx_unit_test(test_list_filters_and_total),
    };
    return cmocka_run_group_tests_name("broker_templates", tests, NULL, NULL);
}
