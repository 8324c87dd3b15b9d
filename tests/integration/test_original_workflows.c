/* Workflows written as the original's examples are (issue 17), end to end on the
 * mock agent: the broker's --workflows loads single files, a package and a plugin
 * folder (tests/fixtures/templates/original); the default repository is rendered
 * through inputs and reaches the prompt as {{repository}}, {{repo_url}} and
 * {{repo_ref}}; requires_repos refuses an execution without one, naming the input;
 * the human_in_loop phase waits for approval; a phase's `agent` picks the workers
 * (provider) and the model, with warnings for what syn runs differently; validate,
 * export → from-yaml give the same workflow over HTTP. */
#include "tests/support/execution.h"
#include "tests/support/expect.h"
#include "tests/support/http.h"
#include "tests/support/teststack.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#define ORIGINAL SYN_SOURCE_DIR "/tests/fixtures/templates/original"

static teststack_t *stack;

static int setup(void **state)
{
    (void)state;
    teststack_options_t opts = {.workers = 1, .slots = 4, .broker_args = "--workflows " ORIGINAL};
    stack = teststack_start(&opts);
    return stack ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    teststack_destroy(&stack);
    return 0;
}

static long request(const char *method, const char *path, const char *body,
                    const char *content_type, json_t **json, char **text)
{
    char url[512];
    snprintf(url, sizeof url, "%s%s", teststack_url(stack), path);
    http_response_t resp;
    assert_int_equal(http_request(method, url, body, content_type, &resp), 0);
    long status = resp.status;
    if (json)
        *json = json_incref(resp.json);
    if (text)
        *text = strdup(resp.body ? resp.body : "");
    http_response_clear(&resp);
    return status;
}

static char *read_file(const char *path)
{
    FILE *in = fopen(path, "rb");
    assert_non_null(in);
    char *text = calloc(1, 65536);
    size_t n = fread(text, 1, 65535, in);
    text[n] = '\0';
    fclose(in);
    return text;
}

static json_t *run_to_end(const char *workflow_id, const char *body)
{
    char *id = teststack_execute(stack, workflow_id, body);
    assert_non_null(id);
    json_t *final = teststack_wait_terminal(stack, workflow_id, id, 30000);
    if (!final || strcmp(json_str(final, "status"), "completed") != 0) {
        teststack_dump_logs(stack);
        fail_msg("%s did not complete", workflow_id);
    }
    json_object_set_new(final, "id", json_string(id));
    free(id);
    return final;
}

static void test_all_load_and_plugin_workflows_run(void **state)
{
    (void)state;
    const char *ids[] = {"feature-flow-v1", "notes-v2",      "review-package-v1",
                         "team-triage-v1",  "team-audit-v1", "handoff-v1",
                         "pane-handoff-v1", "brief-then-plan"};
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) {
        char path[256];
        snprintf(path, sizeof path, "/workflows/%s", ids[i]);
        json_t *workflow = NULL;
        if (request("GET", path, NULL, NULL, &workflow, NULL) != 200)
            fail_msg("%s was not loaded", ids[i]);
        json_decref(workflow);
    }
    json_t *feature = NULL;
    assert_int_equal(request("GET", "/workflows/feature-flow-v1", NULL, NULL, &feature, NULL),
                     200);
    assert_string_equal(json_str(feature, "project_name"), "tooling");
    json_t *plan = json_array_get(json_object_get(feature, "phases"), 1);
    assert_string_equal(json_str(plan, "execution_type"), "human_in_loop");
    assert_int_equal(json_array_size(json_object_get(plan, "input_artifacts")), 1);
    json_decref(feature);

    /* a plugin workflow with its shared phase, and the package with its default repo */
    json_t *final = run_to_end("team-audit-v1", "{\"task\": \"the billing module\"}");
    char *summary = execution_phase_output(stack, json_str(final, "id"), "summarize");
    assert_non_null(strstr(summary, "Summarize the work so far for execution exec-"));
    free(summary);
    json_decref(final);
    final = run_to_end("review-package-v1", "{\"task\": \"the parser\"}");
    char *look = execution_phase_output(stack, json_str(final, "id"), "look");
    assert_non_null(strstr(look, "Look at https://github.com/acme/widgets for: the parser"));
    free(look);
    char *report = execution_phase_output(stack, json_str(final, "id"), "report");
    assert_non_null(strstr(report, "mock output for phase look")); /* no front matter */
    free(report);
    json_decref(final);
}

static bool waiting(const char *path)
{
    json_t *detail = NULL;
    bool yes = request("GET", path, NULL, NULL, &detail, NULL) == 200 &&
               json_is_string(json_object_get(detail, "waiting_for"));
    json_decref(detail);
    return yes;
}

static void test_repository_inputs_gate_and_requires_repos(void **state)
{
    (void)state;
    /* requires_repos: without the input its repository uses, a 422 naming it */
    json_t *answer = NULL;
    assert_int_equal(request("POST", "/workflows/feature-flow-v1/execute",
                             "{\"task\": \"add --dry-run\"}", NULL, &answer, NULL),
                     422);
    assert_non_null(strstr(json_str(answer, "detail"), "requires a repository: give the input "
                                                       "'repo'"));
    json_decref(answer);

    char *id = teststack_execute(stack, "feature-flow-v1",
                                 "{\"task\": \"add --dry-run\", \"inputs\": {\"repo\": \"acme/app\"}}");
    assert_non_null(id);
    char path[256];
    snprintf(path, sizeof path, "/executions/%s", id);
    WAIT_FOR(waiting(path), 15000);
    json_t *detail = NULL;
    assert_int_equal(request("GET", path, NULL, NULL, &detail, NULL), 200);
    assert_string_equal(json_str(detail, "waiting_for"), "approval");
    assert_string_equal(json_str(detail, "waiting_phase"), "plan");
    /* the default repository, rendered through the inputs, is the execution's */
    json_t *repos = json_object_get(detail, "repos");
    assert_int_equal(json_array_size(repos), 1);
    assert_string_equal(json_string_value(json_array_get(repos, 0)),
                        "https://github.com/acme/app#main");
    json_decref(detail);
    char *research = execution_phase_output(stack, id, "research");
    assert_non_null(strstr(research, "Research https://github.com/acme/app "
                                     "(https://github.com/acme/app at main) for:\nadd --dry-run"));
    free(research);

    snprintf(path, sizeof path, "/executions/%s/approve", id);
    assert_int_equal(request("POST", path, "{\"comment\": \"keep the flag hidden\"}", NULL, NULL,
                             NULL),
                     200);
    json_t *final = teststack_wait_terminal(stack, "feature-flow-v1", id, 30000);
    assert_non_null(final);
    assert_string_equal(json_str(final, "status"), "completed");
    json_decref(final);
    char *plan = execution_phase_output(stack, id, "plan");
    assert_non_null(strstr(plan, "[user] keep the flag hidden"));
    free(plan);
    free(id);

    /* a request's repos win over the default */
    id = teststack_execute(stack, "notes-v2", "{\"task\": \"zeromq\", \"repos\": [\"o/r\"]}");
    json_t *end = teststack_wait_terminal(stack, "notes-v2", id, 30000);
    json_decref(end);
    char *notes = execution_phase_output(stack, id, "notes");
    assert_non_null(strstr(notes, "Write notes on: zeromq (repository: \"o/r\")"));
    free(notes);
    free(id);
}

/* A phase's agent: its provider picks the workers, its model is the phase's unless the
 * phase gives its own; an interactive pane runs headless on the pane's agent; what syn
 * cannot honour is a warning of validate. */
static void test_agent_picks_provider_and_model(void **state)
{
    (void)state;
    json_t *final = run_to_end("handoff-v1", "{\"task\": \"palindromes\"}");
    char path[256];
    snprintf(path, sizeof path, "/executions/%s", json_str(final, "id"));
    json_t *detail = NULL;
    assert_int_equal(request("GET", path, NULL, NULL, &detail, NULL), 200);
    json_t *phases = json_object_get(detail, "phases");
    assert_string_equal(json_str(json_array_get(phases, 0), "model"), "mock-large");
    assert_string_equal(json_str(json_array_get(phases, 1), "model"), "mock-small");
    json_decref(detail);
    char *build = execution_phase_output(stack, json_str(final, "id"), "build");
    assert_non_null(strstr(build, "Build from the outline: mock output for phase outline"));
    free(build);
    json_decref(final);

    /* the agent is kept as written and shown */
    json_t *workflow = NULL;
    assert_int_equal(request("GET", "/workflows/pane-handoff-v1", NULL, NULL, &workflow, NULL),
                     200);
    json_t *second = json_array_get(json_object_get(workflow, "phases"), 1);
    assert_string_equal(json_str(json_object_get(second, "agent"), "provider"),
                        "claude-interactive");
    assert_string_equal(json_str(json_object_get(second, "agent"), "agent_id"), "codex");
    json_decref(workflow);

    /* its first phase needs a claude worker: the mock worker never takes it, while a
     * workflow started after it runs to the end */
    char *waiting_id = teststack_execute(stack, "pane-handoff-v1", "{}");
    assert_non_null(waiting_id);
    json_t *other = run_to_end("notes-v2", "{\"task\": \"queues\"}");
    json_decref(other);
    snprintf(path, sizeof path, "/executions/%s", waiting_id);
    assert_int_equal(request("GET", path, NULL, NULL, &detail, NULL), 200);
    json_t *first = json_array_get(json_object_get(detail, "phases"), 0);
    assert_string_equal(json_str(first, "status"), "queued"); /* waits for its provider */
    assert_int_equal(json_array_size(json_object_get(first, "attempts")), 0);
    json_decref(detail);
    snprintf(path, sizeof path, "/executions/%s/cancel", waiting_id);
    assert_int_equal(request("POST", path, "{}", NULL, NULL, NULL), 200);
    free(waiting_id);

    /* validate says what syn does differently, phase by phase */
    char *yaml = read_file(ORIGINAL "/pane-handoff.yaml");
    json_t *answer = NULL;
    assert_int_equal(request("POST", "/workflows/validate", yaml, "application/yaml", &answer,
                             NULL),
                     200);
    free(yaml);
    assert_true(json_is_true(json_object_get(answer, "valid")));
    json_t *warnings = json_object_get(answer, "warnings");
    assert_int_equal(json_array_size(warnings), 3);
    assert_non_null(strstr(json_string_value(json_array_get(warnings, 0)),
                           "phase 'first_pane': agent.provider 'claude-interactive' has no "
                           "terminal in syn: the phase runs headless on workers of provider "
                           "'claude'"));
    assert_non_null(strstr(json_string_value(json_array_get(warnings, 1)),
                           "on workers of provider 'codex'"));
    assert_non_null(strstr(json_string_value(json_array_get(warnings, 2)),
                           "phase 'delegate': agent.allow_delegation is not honoured"));
    json_decref(answer);

    /* an agent key the original does not have either: refused, naming it */
    assert_int_equal(request("POST", "/workflows/validate",
                             "name: X\nphases:\n  - id: a\n    name: A\n    order: 1\n"
                             "    prompt_template: p\n    agent:\n      provider: mock\n"
                             "      sandbox: strict\n",
                             "application/yaml", &answer, NULL),
                     200);
    assert_false(json_is_true(json_object_get(answer, "valid")));
    char *text = json_dumps(answer, 0);
    assert_non_null(strstr(text, "unknown key 'sandbox'"));
    free(text);
    json_decref(answer);
}

/* The oldest format runs as it ran there: its phase inputs are the workflow's, an
 * artifact input is the earlier phase's output by its name, {% if %} blocks decide
 * on the inputs given (an empty one is false, as in Jinja). */
static void test_oldest_format_runs(void **state)
{
    (void)state;
    json_t *answer = NULL;
    assert_int_equal(request("POST", "/workflows/brief-then-plan/execute", "{}", NULL, &answer,
                             NULL),
                     422); /* subject is required */
    char *text = json_dumps(answer, 0);
    assert_non_null(strstr(text, "subject"));
    free(text);
    json_decref(answer);
    json_t *final = run_to_end("brief-then-plan", "{\"inputs\": {\"subject\": \"bees\"}}");
    char *brief = execution_phase_output(stack, json_str(final, "id"), "brief");
    assert_non_null(strstr(brief, "Write a brief on: bees\n\nKeep it short."));
    assert_null(strstr(brief, "For:"));
    free(brief);
    char *plan = execution_phase_output(stack, json_str(final, "id"), "plan");
    assert_non_null(strstr(plan, "Plan from this brief:\nmock output for phase brief"));
    assert_non_null(strstr(plan, "Due: next week"));
    free(plan);
    json_decref(final);
    final = run_to_end("brief-then-plan",
                       "{\"inputs\": {\"subject\": \"bees\", \"audience\": \"keepers\", "
                       "\"deadline\": \"\"}}");
    brief = execution_phase_output(stack, json_str(final, "id"), "brief");
    assert_non_null(strstr(brief, "For: keepers"));
    free(brief);
    plan = execution_phase_output(stack, json_str(final, "id"), "plan");
    assert_non_null(strstr(plan, "No date."));
    free(plan);
    json_decref(final);
}

static void test_validate_upload_export_reimport(void **state)
{
    (void)state;
    char *yaml = read_file(ORIGINAL "/notes.yaml");
    json_t *answer = NULL;
    assert_int_equal(request("POST", "/workflows/validate", yaml, "application/yaml", &answer,
                             NULL),
                     200);
    assert_true(json_is_true(json_object_get(answer, "valid")));
    json_decref(answer);
    /* an unknown execution_type: the phase and the allowed values named */
    char *bad = strdup(yaml);
    char *at = strstr(bad, "execution_type: sequential");
    assert_non_null(at);
    memcpy(at, "execution_type: parallel  ", strlen("execution_type: parallel  "));
    assert_int_equal(request("POST", "/workflows/validate", bad, "application/yaml", &answer,
                             NULL),
                     200);
    assert_false(json_is_true(json_object_get(answer, "valid")));
    char *text = json_dumps(answer, 0);
    assert_non_null(strstr(text, "phases[0].execution_type"));
    assert_non_null(strstr(text, "sequential, human_in_loop"));
    free(text);
    free(bad);
    json_decref(answer);
    assert_int_equal(request("POST", "/workflows/from-yaml?id=notes-upload", yaml,
                             "application/yaml", NULL, NULL),
                     201);
    free(yaml);

    /* export → from-yaml → the same workflow, for each kind loaded */
    const char *ids[] = {"feature-flow-v1", "review-package-v1", "team-triage-v1", "notes-upload",
                         "handoff-v1",      "pane-handoff-v1",   "brief-then-plan"};
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) {
        char path[256], *exported = NULL;
        snprintf(path, sizeof path, "/workflows/%s/export", ids[i]);
        assert_int_equal(request("GET", path, NULL, NULL, NULL, &exported), 200);
        snprintf(path, sizeof path, "/workflows/from-yaml?id=%s-rt", ids[i]);
        long status = request("POST", path, exported, "application/yaml", &answer, NULL);
        if (status != 201)
            fail_msg("re-import of %s: %ld\n%s", ids[i], status, exported);
        json_decref(answer);
        free(exported);
        json_t *a = NULL, *b = NULL;
        snprintf(path, sizeof path, "/workflows/%s", ids[i]);
        assert_int_equal(request("GET", path, NULL, NULL, &a, NULL), 200);
        snprintf(path, sizeof path, "/workflows/%s-rt", ids[i]);
        assert_int_equal(request("GET", path, NULL, NULL, &b, NULL), 200);
        const char *own[] = {"id", "created_at", "updated_at", "version", "runs", "source",
                             "source_hash", "archived", "runs_count", "is_archived"};
        for (size_t k = 0; k < sizeof own / sizeof own[0]; k++) {
            json_object_del(a, own[k]);
            json_object_del(b, own[k]);
        }
        if (!json_equal(a, b)) {
            fprintf(stderr, "%s changed in the round trip:\n%s\n%s\n", ids[i],
                    json_dumps(a, JSON_SORT_KEYS | JSON_COMPACT),
                    json_dumps(b, JSON_SORT_KEYS | JSON_COMPACT));
            fail();
        }
        json_decref(a);
        json_decref(b);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_all_load_and_plugin_workflows_run),
        cmocka_unit_test(test_repository_inputs_gate_and_requires_repos),
        cmocka_unit_test(test_agent_picks_provider_and_model),
        cmocka_unit_test(test_oldest_format_runs),
        cmocka_unit_test(test_validate_upload_export_reimport),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
