/* template/library: loading a directory of workflows and packages, one bad file
 * among good ones, ids from file names, content hashes (and SHA-256 itself). */
#include "template/export.h"
#include "template/library.h"
#include "template/sha256.h"
#include "template/spec.h"
#include "template/workflow.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#define LIBRARY SYN_SOURCE_DIR "/tests/fixtures/templates/library"
#define ORIGINAL SYN_SOURCE_DIR "/tests/fixtures/templates/original"

static void print_entry_errors(const template_entry_t *entry)
{
    for (size_t i = 0; i < template_errors_count(entry->errors); i++) {
        const template_error_t *e = template_errors_get(entry->errors, i);
        print_error("  %s:%d %s: %s\n", e->file ? e->file : "-", e->line,
                    e->field ? e->field : "-", e->message);
    }
}

static const template_entry_t *entry_of(const template_library_t *lib, const char *id)
{
    for (size_t i = 0; i < template_library_count(lib); i++) {
        const template_entry_t *e = template_library_entry(lib, i);
        if (e->workflow && !strcmp(json_string_value(json_object_get(e->workflow, "id")), id))
            return e;
    }
    fail_msg("no workflow %s", id);
    return NULL;
}

/* Workflows written as the original's examples are (its keys, a package with prompt
 * files with and without front matter, a plugin folder of two workflows sharing a
 * phase-library prompt and a manifest) load; each exports to YAML that parses back
 * to the same stored workflow. */
static void test_original_keys_load_and_round_trip(void **state)
{
    (void)state;
    template_library_t *lib = template_library_new();
    char why[256];
    int loaded = template_library_load_dir(lib, ORIGINAL, why, sizeof why);
    for (size_t i = 0; i < template_library_count(lib); i++)
        print_entry_errors(template_library_entry(lib, i));
    assert_int_equal(loaded, 8);
    assert_int_equal(template_library_failures(lib), 0);

    const json_t *feature = entry_of(lib, "feature-flow-v1")->workflow;
    const json_t *repo = json_object_get(feature, "repository");
    assert_string_equal(json_string_value(json_object_get(repo, "url")),
                        "https://github.com/{{repo}}");
    assert_string_equal(json_string_value(json_object_get(repo, "ref")), "{{branch}}");
    assert_true(json_is_true(json_object_get(feature, "requires_repos")));
    assert_string_equal(json_string_value(json_object_get(feature, "project_name")), "tooling");
    const json_t *phases = json_object_get(feature, "phases");
    const json_t *research = json_array_get(phases, 0), *plan = json_array_get(phases, 1);
    /* tools is allowed_tools by its other name */
    assert_int_equal(json_array_size(json_object_get(research, "allowed_tools")), 2);
    assert_null(json_object_get(research, "tools"));
    assert_true(spec_phase_is_gate(plan) && !spec_phase_is_gate(research));
    assert_int_equal(json_array_size(json_object_get(plan, "output_artifacts")), 2);
    /* null keys are absent, as anywhere */
    const json_t *notes = entry_of(lib, "notes-v2")->workflow;
    assert_null(json_object_get(notes, "repository"));
    assert_null(json_object_get(notes, "project_name"));
    /* the shared phase came from the plugin's phase-library */
    const json_t *audit = entry_of(lib, "team-audit-v1")->workflow;
    const json_t *summary = json_array_get(json_object_get(audit, "phases"), 1);
    assert_non_null(strstr(json_string_value(json_object_get(summary, "prompt_template")),
                           "Summarize the work so far"));
    assert_string_equal(json_string_value(json_object_get(summary, "model")), "haiku");
    entry_of(lib, "team-triage-v1");
    const json_t *look =
        json_array_get(json_object_get(entry_of(lib, "review-package-v1")->workflow, "phases"), 0);
    assert_string_equal(json_string_value(json_object_get(look, "model")), "sonnet");

    /* a phase's agent: kept as written; the provider and model it means */
    const json_t *handoff = json_object_get(entry_of(lib, "handoff-v1")->workflow, "phases");
    const json_t *outline = json_array_get(handoff, 0), *build = json_array_get(handoff, 1);
    assert_string_equal(spec_phase_provider(outline), "mock");
    assert_string_equal(spec_phase_model(outline), "mock-large");
    assert_string_equal(spec_phase_model(build), "mock-small"); /* the phase's own wins */
    assert_true(json_is_false(json_object_get(json_object_get(build, "agent"),
                                              "allow_delegation")));
    const json_t *panes =
        json_object_get(entry_of(lib, "pane-handoff-v1")->workflow, "phases");
    assert_string_equal(spec_phase_provider(json_array_get(panes, 0)), "claude");
    assert_string_equal(spec_phase_provider(json_array_get(panes, 1)), "codex");
    assert_string_equal(spec_phase_provider(json_array_get(panes, 2)), "claude");
    json_t *warnings = spec_workflow_warnings(entry_of(lib, "pane-handoff-v1")->workflow);
    assert_int_equal(json_array_size(warnings), 3);
    json_decref(warnings);
    warnings = spec_workflow_warnings(entry_of(lib, "handoff-v1")->workflow);
    assert_int_equal(json_array_size(warnings), 0);
    json_decref(warnings);

    /* the oldest format: ids and orders from names and places, the phases' string
     * inputs declared once, outputs named, the agent's type its provider */
    const json_t *oldest = entry_of(lib, "brief-then-plan")->workflow;
    const json_t *oldest_phases = json_object_get(oldest, "phases");
    assert_string_equal(json_string_value(json_object_get(json_array_get(oldest_phases, 1),
                                                          "phase_id")),
                        "plan");
    assert_int_equal(json_integer_value(json_object_get(json_array_get(oldest_phases, 1),
                                                        "order")),
                     2);
    const json_t *declared = json_object_get(oldest, "input_declarations");
    assert_int_equal(json_array_size(declared), 3); /* subject, audience, deadline */
    assert_string_equal(json_string_value(json_object_get(json_array_get(declared, 2),
                                                          "default")),
                        "next week");
    assert_string_equal(json_string_value(json_array_get(
                            json_object_get(json_array_get(oldest_phases, 0), "output_artifacts"),
                            0)),
                        "brief_text");
    assert_string_equal(spec_phase_provider(json_array_get(oldest_phases, 0)), "mock");
    assert_string_equal(json_string_value(json_object_get(oldest, "template_version")), "0.3.0");
    assert_int_equal(json_array_size(json_object_get(oldest, "deliverables")), 2);
    warnings = spec_workflow_warnings(oldest);
    assert_int_equal(json_array_size(warnings), 1); /* temperature */
    json_decref(warnings);

    for (size_t i = 0; i < template_library_count(lib); i++) {
        const json_t *workflow = template_library_entry(lib, i)->workflow;
        json_t *stored = spec_with_defaults(&spec_workflow, workflow);
        char *yaml = template_export_yaml(stored, NULL, why, sizeof why);
        assert_non_null(yaml);
        template_errors_t *errors = template_errors_new();
        json_t *again = template_workflow_parse(yaml, strlen(yaml), "export.yaml", NULL, errors);
        if (!again)
            fail_msg("the export of %s does not parse:\n%s", template_library_entry(lib, i)->path,
                     yaml);
        json_t *restored = spec_with_defaults(&spec_workflow, again);
        if (!json_equal(stored, restored)) {
            char *a = json_dumps(stored, JSON_SORT_KEYS), *b = json_dumps(restored, JSON_SORT_KEYS);
            fail_msg("round trip changed %s:\n%s\n%s\n%s", template_library_entry(lib, i)->path,
                     yaml, a, b);
        }
        json_decref(again);
        json_decref(restored);
        json_decref(stored);
        template_errors_destroy(&errors);
        free(yaml);
    }
    template_library_destroy(&lib);
}

static void test_sha256_vectors(void **state)
{
    (void)state;
    char hex[TEMPLATE_SHA256_HEX];
    template_sha256_hex("", 0, hex);
    assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    template_sha256_hex("abc", 3, hex);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    const char *two_blocks = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    template_sha256_hex(two_blocks, strlen(two_blocks), hex);
    assert_string_equal(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    char *million = malloc(1000000);
    memset(million, 'a', 1000000);
    template_sha256_hex(million, 1000000, hex);
    free(million);
    assert_string_equal(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
    /* 55 and 64 bytes: the padding edge cases */
    char buf[64];
    memset(buf, 'a', sizeof buf);
    template_sha256_hex(buf, 55, hex);
    assert_string_equal(hex, "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318");
    template_sha256_hex(buf, 64, hex);
    assert_string_equal(hex, "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb");
}

static void test_hash_ignores_key_order(void **state)
{
    (void)state;
    json_t *a = json_pack("{s:s, s:i}", "name", "x", "n", 1);
    json_t *b = json_pack("{s:i, s:s}", "n", 1, "name", "x");
    json_t *c = json_pack("{s:i, s:s}", "n", 2, "name", "x");
    char ha[TEMPLATE_SHA256_HEX], hb[TEMPLATE_SHA256_HEX], hc[TEMPLATE_SHA256_HEX];
    assert_int_equal(template_workflow_hash(a, ha), 0);
    assert_int_equal(template_workflow_hash(b, hb), 0);
    assert_int_equal(template_workflow_hash(c, hc), 0);
    assert_string_equal(ha, hb);
    assert_string_not_equal(ha, hc);
    json_decref(a);
    json_decref(b);
    json_decref(c);
}

static const template_entry_t *find(const template_library_t *lib, const char *suffix)
{
    for (size_t i = 0; i < template_library_count(lib); i++) {
        const template_entry_t *e = template_library_entry(lib, i);
        size_t n = strlen(e->path), m = strlen(suffix);
        if (n >= m && strcmp(e->path + n - m, suffix) == 0)
            return e;
    }
    fail_msg("no entry for %s", suffix);
    return NULL;
}

static void test_one_bad_file_among_good_ones(void **state)
{
    (void)state;
    template_library_t *lib = template_library_new();
    char why[256] = "";
    assert_int_equal(template_library_load_dir(lib, LIBRARY, why, sizeof why), 3);
    /* notes.txt, .hidden.yaml and a directory without workflow.yaml are not entries */
    assert_int_equal(template_library_count(lib), 5);
    assert_int_equal(template_library_failures(lib), 2);
    const char *order[] = {"/a-research.yaml", "/b-broken.yaml", "/c-explicit.yaml",
                           "/d-not-yaml.yaml", "/pkg/workflow.yaml"};
    for (size_t i = 0; i < 5; i++) {
        const template_entry_t *e = template_library_entry(lib, i);
        assert_non_null(strstr(e->path, order[i]));
    }

    const template_entry_t *a = find(lib, "/a-research.yaml");
    assert_non_null(a->workflow);
    assert_int_equal(template_errors_count(a->errors), 0);
    assert_string_equal(json_string_value(json_object_get(a->workflow, "id")), "a-research");
    assert_int_equal(strlen(a->hash), 64);

    const template_entry_t *b = find(lib, "/b-broken.yaml");
    assert_null(b->workflow);
    assert_string_equal(b->hash, "");
    assert_int_equal(template_errors_count(b->errors), 2);
    const template_error_t *e0 = template_errors_get(b->errors, 0);
    assert_string_equal(e0->file, LIBRARY "/b-broken.yaml");
    assert_int_equal(e0->line, 2);
    assert_string_equal(e0->field, "type");
    assert_int_equal(template_errors_get(b->errors, 1)->line, 7);
    char *summary = template_errors_summary(b->errors);
    assert_string_equal(summary, LIBRARY "/b-broken.yaml:2:7: type: 'reserch' is not one of: "
                                         "research, planning, implementation, review, "
                                         "deployment, custom; did you mean 'research'? (and 1 "
                                         "more error)");
    free(summary);

    const template_entry_t *c = find(lib, "/c-explicit.yaml");
    assert_string_equal(json_string_value(json_object_get(c->workflow, "id")), "explicit-id");

    const template_entry_t *d = find(lib, "/d-not-yaml.yaml");
    assert_null(d->workflow);
    assert_int_equal(template_errors_worst(d->errors), TEMPLATE_ERROR_SYNTAX);

    const template_entry_t *pkg = find(lib, "/pkg/workflow.yaml");
    print_entry_errors(pkg);
    assert_non_null(pkg->workflow);
    assert_string_equal(json_string_value(json_object_get(pkg->workflow, "id")), "pkg");
    json_t *phase = json_array_get(json_object_get(pkg->workflow, "phases"), 0);
    assert_string_equal(json_string_value(json_object_get(phase, "prompt_template")),
                        "Plan $ARGUMENTS\n");
    assert_string_equal(json_string_value(json_object_get(phase, "model")), "sonnet");
    template_library_destroy(&lib);
    template_library_destroy(&lib);
}

static void test_shipped_examples_load(void **state)
{
    (void)state;
    template_library_t *lib = template_library_new();
    char why[256] = "";
    int loaded = template_library_load_dir(lib, SYN_SOURCE_DIR "/workflows", why, sizeof why);
    for (size_t i = 0; i < template_library_count(lib); i++)
        print_entry_errors(template_library_entry(lib, i));
    assert_int_equal(loaded, 3);
    assert_int_equal(template_library_failures(lib), 0);
    const char *ids[] = {"implement-and-review", "pr-review", "research"};
    for (size_t i = 0; i < 3; i++)
        assert_string_equal(json_string_value(json_object_get(
                                template_library_entry(lib, i)->workflow, "id")),
                            ids[i]);
    template_library_destroy(&lib);
}

static char *make_dir(void)
{
    char *dir = strdup("/tmp/syn-template-lib-XXXXXX");
    assert_non_null(mkdtemp(dir));
    return dir;
}

static void write_file(const char *dir, const char *name, const char *text)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    char *slash = strrchr(path, '/');
    *slash = '\0';
    mkdir(path, 0755);
    *slash = '/';
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void remove_tree(const char *dir)
{
    char command[1100];
    snprintf(command, sizeof command, "rm -rf '%s'", dir);
    assert_int_equal(system(command), 0);
}

/* Hashes of each entry, by path. */
static json_t *hashes_of(const char *dir)
{
    template_library_t *lib = template_library_new();
    char why[256];
    assert_true(template_library_load_dir(lib, dir, why, sizeof why) >= 0);
    json_t *out = json_object();
    for (size_t i = 0; i < template_library_count(lib); i++) {
        const template_entry_t *e = template_library_entry(lib, i);
        json_object_set_new(out, e->path, json_string(e->hash));
    }
    template_library_destroy(&lib);
    return out;
}

static void test_same_files_same_hash_changed_file_new_hash(void **state)
{
    (void)state;
    char *dir = make_dir();
    const char *yaml = "name: x\nphases:\n  - {id: a, name: A, order: 1, prompt_file: p/a.md}\n";
    write_file(dir, "one.yaml", yaml);
    write_file(dir, "p/a.md", "---\nmodel: m\n---\nPrompt A\n");
    write_file(dir, "two.yaml", "name: y\nphases:\n  - {id: a, name: A, order: 1, "
                                "prompt_template: B}\n");
    json_t *first = hashes_of(dir);
    json_t *second = hashes_of(dir);
    assert_true(json_equal(first, second));
    /* a comment changes the text, not the workflow: same hash */
    write_file(dir, "two.yaml", "# note\nname: y\nphases:\n  - {id: a, name: A, order: 1, "
                                "prompt_template: B}\n");
    json_t *third = hashes_of(dir);
    assert_true(json_equal(first, third));
    /* a changed prompt file changes only its workflow's hash */
    write_file(dir, "p/a.md", "---\nmodel: m\n---\nPrompt A, revised\n");
    json_t *fourth = hashes_of(dir);
    char one[1024], two[1024];
    snprintf(one, sizeof one, "%s/one.yaml", dir);
    snprintf(two, sizeof two, "%s/two.yaml", dir);
    assert_string_not_equal(json_string_value(json_object_get(first, one)),
                            json_string_value(json_object_get(fourth, one)));
    assert_string_equal(json_string_value(json_object_get(first, two)),
                        json_string_value(json_object_get(fourth, two)));
    json_decref(first);
    json_decref(second);
    json_decref(third);
    json_decref(fourth);
    remove_tree(dir);
    free(dir);
}

static void test_ids_and_conflicts(void **state)
{
    (void)state;
    char *dir = make_dir();
    const char *body = "phases:\n  - {id: a, name: A, order: 1, prompt_template: x}\n";
    char text[256];
    snprintf(text, sizeof text, "id: shared\nname: first\n%s", body);
    write_file(dir, "a.yaml", text);
    snprintf(text, sizeof text, "id: shared\nname: second\n%s", body);
    write_file(dir, "b.yaml", text);
    snprintf(text, sizeof text, "name: bad name\n%s", body);
    write_file(dir, "bad name.yaml", text);
    write_file(dir, "fifo-like.yaml.txt", "ignored");
    template_library_t *lib = template_library_new();
    char why[256];
    assert_int_equal(template_library_load_dir(lib, dir, why, sizeof why), 1);
    assert_int_equal(template_library_count(lib), 3);
    char path[1024];
    snprintf(path, sizeof path, "%s/a.yaml", dir);
    const template_entry_t *b = find(lib, "/b.yaml");
    assert_null(b->workflow);
    char want[1200];
    snprintf(want, sizeof want, "workflow id 'shared' is already used by %s", path);
    assert_string_equal(template_errors_get(b->errors, 0)->message, want);
    const template_entry_t *bad = find(lib, "/bad name.yaml");
    assert_null(bad->workflow);
    assert_string_equal(template_errors_get(bad->errors, 0)->message,
                        "no id, and the file name 'bad name' is not a valid id "
                        "(^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$): add an id key");
    template_library_destroy(&lib);

    lib = template_library_new();
    assert_int_equal(template_library_load_dir(lib, "/nonexistent/syn", why, sizeof why), -1);
    assert_string_equal(why, "cannot open /nonexistent/syn: No such file or directory");
    assert_int_equal(template_library_count(lib), 0);
    template_library_destroy(&lib);
    remove_tree(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sha256_vectors),
        cmocka_unit_test(test_original_keys_load_and_round_trip),
        cmocka_unit_test(test_hash_ignores_key_order),
        cmocka_unit_test(test_one_bad_file_among_good_ones),
        cmocka_unit_test(test_shipped_examples_load),
        cmocka_unit_test(test_same_files_same_hash_changed_file_new_hash),
        cmocka_unit_test(test_ids_and_conflicts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
