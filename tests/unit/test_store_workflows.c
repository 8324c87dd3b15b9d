/* broker/store_workflows.c: workflows, their versions and archive, and the
 * cache of current templates execution.start reads. */
#include "tests/support/store_fixture.h"

#include "broker/usage.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

static void test_workflows(void **state)
{
    fixture_t *f = *state;
    add_workflow(f, "wf-a", 2, 1000);
    add_workflow(f, "wf-b", 3, 2000);
    add_workflow(f, "wf-c", 1, 3000);
    broker_workflow_row_t dup = {.id = "wf-b", .name = "x", .workflow_type = "custom",
                                 .classification = "standard", .phase_count = 1,
                                 .template_json = json_object(), .created_at = 1};
    assert_int_equal(broker_store_workflow_insert(f->store, &dup), 1);
    json_decref((json_t *)dup.template_json);
    assert_int_equal(broker_store_commit(f->store), 0);

    json_t *tpl = NULL;
    broker_workflow_meta_t meta;
    assert_int_equal(broker_store_workflow_get(f->store, "wf-b", &tpl, &meta), 1);
    assert_int_equal(meta.version, 1);
    assert_int_equal(meta.created_at, 2000);
    assert_false(meta.archived);
    assert_string_equal(meta.source_hash, "");
    assert_string_equal(json_string_value(json_object_get(tpl, "id")), "wf-b");
    assert_int_equal(json_array_size(json_object_get(tpl, "phases")), 3);
    json_decref(tpl);
    tpl = NULL;
    assert_int_equal(broker_store_workflow_get(f->store, "wf-zzz", &tpl, NULL), 0);
    assert_null(tpl);
    assert_int_equal(broker_store_workflow_template(f->store, "wf-a", 1, &tpl), 1);
    json_decref(tpl);
    assert_int_equal(broker_store_workflow_template(f->store, "wf-a", 2, &tpl), 0);

    json_t *items;
    int64_t total;
    assert_int_equal(broker_store_workflow_list(f->store, NULL, 1, 2, &items, &total), 0);
    assert_int_equal(total, 3);
    assert_int_equal(json_array_size(items), 2);
    json_t *first = json_array_get(items, 0);
    assert_string_equal(json_string_value(json_object_get(first, "id")), "wf-c");
    assert_true(json_is_null(json_object_get(first, "description")));
    assert_int_equal(json_integer_value(json_object_get(first, "phase_count")), 1);
    assert_string_equal(json_string_value(json_object_get(first, "created_at")),
                        "1970-01-01T00:00:00.003000Z");
    json_decref(items);
    assert_int_equal(broker_store_workflow_list(f->store, NULL, 2, 2, &items, &total), 0);
    assert_int_equal(json_array_size(items), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(items, 0), "id")),
                        "wf-a");
    json_decref(items);

    reopen(f);
    assert_int_equal(broker_store_workflow_get(f->store, "wf-a", &tpl, NULL), 1);
    json_decref(tpl);
}

static const char *phase_prompt(const json_t *tpl, size_t index)
{
    return json_string_value(
        json_object_get(json_array_get(json_object_get(tpl, "phases"), index), "prompt_template"));
}

/* Versions: an update stores the next version and keeps the old ones; the source
 * hash changes only when given; archive hides from the listing, not from get. */
static void test_workflow_versions_and_archive(void **state)
{
    fixture_t *f = *state;
    json_t *tpl = template_of(2);
    broker_workflow_row_t row = {.id = "wf-1", .name = "demo", .workflow_type = "research",
                                 .classification = "standard", .phase_count = 2,
                                 .template_json = tpl, .created_at = 10, .source_hash = "h1"};
    assert_int_equal(broker_store_workflow_insert(f->store, &row), 0);
    add_workflow(f, "wf-2", 1, 20);
    add_workflow(f, "wf-3", 1, 30);

    json_object_set_new(json_array_get(json_object_get(tpl, "phases"), 0), "prompt_template",
                        json_string("changed"));
    row.name = "demo 2";
    row.source_hash = "h2";
    row.created_at = 40;
    int64_t version = 0;
    assert_int_equal(broker_store_workflow_update(f->store, &row, &version), 0);
    assert_int_equal(version, 2);
    row.source_hash = NULL;
    assert_int_equal(broker_store_workflow_update(f->store, &row, &version), 0);
    assert_int_equal(version, 3);
    broker_workflow_row_t unknown = row;
    unknown.id = "wf-nope";
    assert_int_equal(broker_store_workflow_update(f->store, &unknown, &version), 1);
    assert_int_equal(version, 3);
    json_decref(tpl);
    assert_int_equal(broker_store_commit(f->store), 0);
    reopen(f);

    broker_workflow_meta_t meta;
    assert_int_equal(broker_store_workflow_get(f->store, "wf-1", &tpl, &meta), 1);
    assert_int_equal(meta.version, 3);
    assert_int_equal(meta.created_at, 10); /* the workflow's, not the version's */
    assert_string_equal(meta.source_hash, "h2");
    assert_string_equal(phase_prompt(tpl, 0), "changed");
    json_decref(tpl);
    assert_int_equal(broker_store_workflow_template(f->store, "wf-1", 1, &tpl), 1);
    assert_string_equal(phase_prompt(tpl, 0), "phase 2 of {{workflow_id}}");
    json_decref(tpl);
    assert_int_equal(peek_int(f, "SELECT count(*) FROM workflow_versions WHERE workflow_id = "
                                 "'wf-1'"),
                     3);

    assert_int_equal(broker_store_workflow_archive(f->store, "wf-2"), 0);
    assert_int_equal(broker_store_workflow_archive(f->store, "wf-2"), 1);
    assert_int_equal(broker_store_workflow_archive(f->store, "wf-nope"), 1);
    assert_int_equal(broker_store_commit(f->store), 0);
    assert_int_equal(broker_store_workflow_get(f->store, "wf-2", &tpl, &meta), 1);
    assert_true(meta.archived);
    json_decref(tpl);

    json_t *items;
    int64_t total;
    assert_int_equal(broker_store_workflow_list(f->store, NULL, 1, 10, &items, &total), 0);
    assert_int_equal(total, 2);
    assert_int_equal(json_array_size(items), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(items, 0), "id")),
                        "wf-3");
    json_t *first_made = json_array_get(items, 1);
    assert_string_equal(json_string_value(json_object_get(first_made, "name")), "demo 2");
    assert_int_equal(json_integer_value(json_object_get(first_made, "version")), 3);
    assert_true(json_is_false(json_object_get(first_made, "archived")));
    json_decref(items);
    broker_workflow_filter_t all = {NULL, true};
    assert_int_equal(broker_store_workflow_list(f->store, &all, 1, 1, &items, &total), 0);
    assert_int_equal(total, 3);
    assert_int_equal(json_array_size(items), 1);
    json_decref(items);
    assert_int_equal(broker_store_workflow_list(f->store, &all, 2, 1, &items, &total), 0);
    json_t *archived = json_array_get(items, 0);
    assert_string_equal(json_string_value(json_object_get(archived, "id")), "wf-2");
    assert_true(json_is_true(json_object_get(archived, "archived")));
    json_decref(items);
    broker_workflow_filter_t research = {"research", true};
    assert_int_equal(broker_store_workflow_list(f->store, &research, 1, 10, &items, &total), 0);
    assert_int_equal(total, 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(items, 0), "id")),
                        "wf-1");
    json_decref(items);
    broker_workflow_filter_t review = {"review", false};
    assert_int_equal(broker_store_workflow_list(f->store, &review, 1, 10, &items, &total), 0);
    assert_int_equal(total, 0);
    assert_int_equal(json_array_size(items), 0);
    json_decref(items);
}

/* workflow_shared: read once, then from memory; every write to the workflow
 * (new version, archive) and a failed commit drop what it remembered. */
static void test_workflow_shared_cache(void **state)
{
    fixture_t *f = *state;
    const json_t *shared = NULL;
    broker_workflow_meta_t meta;
    assert_int_equal(broker_store_workflow_shared(f->store, "wf-1", &shared, &meta), 0);
    add_workflow(f, "wf-1", 2, 10);
    assert_int_equal(broker_store_commit(f->store), 0);
    assert_int_equal(broker_store_workflow_shared(f->store, "wf-1", &shared, &meta), 1);
    assert_int_equal(meta.version, 1);
    assert_false(meta.archived);
    assert_string_equal(phase_prompt(shared, 0), "phase 2 of {{workflow_id}}");
    const json_t *again = NULL;
    assert_int_equal(broker_store_workflow_shared(f->store, "wf-1", &again, NULL), 1);
    assert_ptr_equal(again, shared); /* from memory */

    json_t *tpl = template_of(2);
    json_object_set_new(json_array_get(json_object_get(tpl, "phases"), 0), "prompt_template",
                        json_string("changed"));
    broker_workflow_row_t row = {.id = "wf-1", .name = "demo", .workflow_type = "custom",
                                 .classification = "standard", .phase_count = 2,
                                 .template_json = tpl, .created_at = 20};
    int64_t version = 0;
    assert_int_equal(broker_store_workflow_update(f->store, &row, &version), 0);
    json_decref(tpl);
    assert_int_equal(broker_store_workflow_shared(f->store, "wf-1", &shared, &meta), 1);
    assert_int_equal(meta.version, 2);
    assert_string_equal(phase_prompt(shared, 0), "changed");
    assert_int_equal(broker_store_workflow_archive(f->store, "wf-1"), 0);
    assert_int_equal(broker_store_workflow_shared(f->store, "wf-1", &shared, &meta), 1);
    assert_true(meta.archived);
    assert_int_equal(broker_store_commit(f->store), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        store_test(test_workflows),
        store_test(test_workflow_versions_and_archive),
        store_test(test_workflow_shared_cache),
    };
    return cmocka_run_group_tests_name("store_workflows", tests, NULL, NULL);
}
