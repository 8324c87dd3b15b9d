/* The original service's clients against syn (issue 17, "The original's clients work
 * against syn"): requests shaped as its CLI (@syntropic137/cli, apps/syn-cli-node)
 * sends them, answers read the way it reads them, through real HTTP against a real
 * stack, under /api/v1 (where its CLI puts every path) and at the root. The bodies
 * and the keys read are taken from its source: commands/workflow/crud.ts (create,
 * validate), workflow/export.ts, workflow/install.ts with client/yaml-upload.ts,
 * execution.ts (list, show), health.ts, costs.ts, metrics.ts, watch.ts and client/sse.ts
 * (frames, its watch paths), and the commands for features syn does not have (org.ts,
 * system.ts, repo.ts, triggers.ts, insights.ts, sessions.ts, events.ts, observe.ts,
 * conversations.ts, artifacts.ts). Its CLI itself was run against syn too (docs/api.md,
 * "Its CLI, run for real"); these need neither it nor node. */
#include "tests/support/http.h"
#include "tests/support/sse.h"
#include "tests/support/teststack.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static teststack_t *stack;
static char *failed_id; /* the failed execution of run_two */
static void watch_completed(const char *id, const char *prefix);
static void watch_failed(const char *id, const char *prefix);
static void watch_syn(const char *id);

static int setup(void **state)
{
    (void)state;
    teststack_options_t opts = {.workers = 1, .slots = 2};
    stack = teststack_start(&opts);
    return stack ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    teststack_destroy(&stack);
    free(failed_id);
    failed_id = NULL;
    return 0;
}

/* Both spellings of a path: the original's (/api/v1 in front) and syn's. */
static const char *const prefixes[] = {"/api/v1", ""};

static json_t *call_as(const char *method, const char *path, const char *body,
                       const char *content_type, long want)
{
    char url[1024];
    snprintf(url, sizeof url, "%s%s", teststack_url(stack), path);
    http_response_t r;
    assert_int_equal(http_request(method, url, body, content_type, &r), 0);
    if (r.status != want)
        fail_msg("%s %s: %ld (wanted %ld): %s", method, path, r.status, want, r.body);
    json_t *json = json_incref(r.json);
    if (!json)
        json = json_string(r.body);
    http_response_clear(&r);
    return json;
}

static json_t *call(const char *method, const char *path, const char *body, long want)
{
    return call_as(method, path, body, NULL, want);
}

/* GET path under /api/v1 and at the root: the same answer both ways (returned). */
static json_t *get_both(const char *path, long want)
{
    char original[1024];
    snprintf(original, sizeof original, "/api/v1%s", path);
    json_t *theirs = call("GET", original, NULL, want);
    json_t *ours = call("GET", path, NULL, want);
    if (!json_equal(theirs, ours))
        fail_msg("GET %s differs under /api/v1: %s vs %s", path, json_dumps(theirs, JSON_COMPACT),
                 json_dumps(ours, JSON_COMPACT));
    json_decref(ours);
    return theirs;
}

static const char *str(const json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    if (!s)
        fail_msg("no string %s in %s", key, json_dumps(o, JSON_COMPACT));
    return s;
}

static long long num(const json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_integer(v))
        fail_msg("no integer %s in %s", key, json_dumps(o, JSON_COMPACT));
    return json_integer_value(v);
}

/* health.ts: status "healthy" and mode "full" is Healthy; degraded_reasons an array. */
static void test_health(void **state)
{
    (void)state;
    for (size_t i = 0; i < 2; i++) {
        char path[64];
        snprintf(path, sizeof path, "%s/health", prefixes[i]);
        json_t *h = call("GET", path, NULL, 200);
        assert_string_equal(str(h, "status"), "healthy");
        assert_string_equal(str(h, "mode"), "full");
        assert_int_equal(json_array_size(json_object_get(h, "degraded_reasons")), 0);
        assert_string_equal(str(h, "broker"), "up");
        assert_int_equal(num(h, "workers"), 1);
        json_decref(h);
    }
}

/* crud.ts create: the body it posts for `syn workflow create "Mini Flow" --type research
 * --repo https://github.com/acme/app.git`, and the keys it prints of the answer. */
static void test_create_as_the_cli_does(void **state)
{
    (void)state;
    json_t *c = call("POST", "/api/v1/workflows",
                     "{\"name\":\"Mini Flow\",\"workflow_type\":\"research\","
                     "\"classification\":\"standard\","
                     "\"repository_url\":\"https://github.com/acme/app.git\","
                     "\"repository_ref\":\"main\",\"description\":null,"
                     "\"requires_repos\":true,\"force\":false}",
                     201);
    const char *id = str(c, "id");
    assert_string_equal(str(c, "name"), "Mini Flow");
    assert_string_equal(str(c, "workflow_type"), "research");
    assert_string_equal(str(c, "classification"), "standard");
    assert_string_equal(str(c, "repository_url"), "https://github.com/acme/app.git");
    assert_true(json_is_true(json_object_get(c, "requires_repos")));
    assert_string_equal(str(c, "status"), "created");
    assert_true(json_is_array(json_object_get(c, "warnings")));
    /* no phases: one, the way the original makes it */
    char path[256];
    snprintf(path, sizeof path, "/workflows/%s", id);
    json_t *w = call("GET", path, NULL, 200);
    json_t *phases = json_object_get(w, "phases");
    assert_int_equal(json_array_size(phases), 1);
    assert_string_equal(str(json_array_get(phases, 0), "name"), "Initial Phase");
    assert_int_equal(num(json_array_get(phases, 0), "order"), 1);
    json_decref(w);
    json_decref(c);

    /* --no-repos, at the root: requires_repos false, repository_url "" */
    c = call("POST", "/workflows",
             "{\"name\":\"No Repos\",\"workflow_type\":\"custom\",\"classification\":\"standard\","
             "\"repository_url\":\"\",\"repository_ref\":\"main\",\"description\":\"d\","
             "\"repos\":[\"https://github.com/acme/lib\"],\"requires_repos\":false,"
             "\"force\":false}",
             201);
    assert_false(json_is_true(json_object_get(c, "requires_repos")));
    assert_string_equal(str(c, "repository_url"), "");
    assert_true(json_array_size(json_object_get(c, "warnings")) >= 1); /* repos: not stored */
    json_decref(c);
}

/* A script's CreateWorkflowRequest: phases with `id`, no `order`, the model under
 * `agent` as its packaged YAML spells it. */
static void test_create_phases_the_original_way(void **state)
{
    (void)state;
    json_t *c = call("POST", "/api/v1/workflows",
                     "{\"id\":\"orig-phases\",\"name\":\"Orig\","
                     "\"phases\":[{\"id\":\"plan\",\"name\":\"Plan\",\"prompt_template\":\"p\"},"
                     "{\"id\":\"build\",\"name\":\"Build\",\"prompt_template\":\"b {{plan}}\","
                     "\"agent\":{\"model\":\"m-1\"}}]}",
                     201);
    json_decref(c);
    json_t *w = call("GET", "/api/v1/workflows/orig-phases", NULL, 200);
    json_t *phases = json_object_get(w, "phases");
    assert_string_equal(str(json_array_get(phases, 0), "phase_id"), "plan");
    assert_int_equal(num(json_array_get(phases, 0), "order"), 1);
    assert_string_equal(str(json_array_get(phases, 1), "phase_id"), "build");
    assert_int_equal(num(json_array_get(phases, 1), "order"), 2);
    assert_string_equal(str(json_array_get(phases, 1), "model"), "m-1");
    json_decref(w);

    /* keys neither API knows: refused, with what was meant */
    json_t *e = call("POST", "/api/v1/workflows",
                     "{\"name\":\"Typo\",\"repository_ur\":\"x\","
                     "\"phases\":[{\"id\":\"a\",\"name\":\"A\",\"promt_template\":\"p\"}]}",
                     422);
    char *text = json_dumps(e, JSON_COMPACT);
    assert_non_null(strstr(text, "did you mean 'repository_url'?"));
    assert_non_null(strstr(text, "did you mean 'prompt_template'?"));
    free(text);
    json_decref(e);
}

static const char *const good_yaml =
    "id: val-flow\nname: Val Flow\ntype: review\nphases:\n  - id: one\n    name: One\n"
    "    order: 1\n    prompt_template: hi\n  - id: two\n    name: Two\n    order: 2\n"
    "    prompt_template: there\n";

/* crud.ts validate: POST {content, filename}; reads valid, name, workflow_type,
 * phase_count, and errors as strings. */
static void test_validate(void **state)
{
    (void)state;
    json_t *body = json_pack("{s:s, s:s}", "content", good_yaml, "filename", "workflow.yaml");
    char *text = json_dumps(body, JSON_COMPACT);
    for (size_t i = 0; i < 2; i++) {
        char path[64];
        snprintf(path, sizeof path, "%s/workflows/validate", prefixes[i]);
        json_t *v = call("POST", path, text, 200);
        assert_true(json_is_true(json_object_get(v, "valid")));
        assert_string_equal(str(v, "name"), "Val Flow");
        assert_string_equal(str(v, "workflow_type"), "review");
        assert_int_equal(num(v, "phase_count"), 2);
        assert_int_equal(json_array_size(json_object_get(v, "errors")), 0);
        json_decref(v);
    }
    free(text);
    json_decref(body);

    body = json_pack("{s:s, s:s}", "content", "name: Bad\ntype: reserch\nphases: []\n",
                     "filename", "bad.yaml");
    text = json_dumps(body, JSON_COMPACT);
    json_t *v = call("POST", "/api/v1/workflows/validate", text, 200);
    assert_false(json_is_true(json_object_get(v, "valid")));
    json_t *errors = json_object_get(v, "errors");
    assert_true(json_array_size(errors) > 0);
    assert_true(json_is_string(json_array_get(errors, 0))); /* printed as is */
    assert_true(json_is_object(json_array_get(json_object_get(v, "error_details"), 0)));
    json_decref(v);
    free(text);
    json_decref(body);

    /* syn's own form at the root keeps syn's error objects */
    body = json_pack("{s:s}", "content", "name: Bad\ntype: reserch\nphases: []\n");
    text = json_dumps(body, JSON_COMPACT);
    v = call("POST", "/workflows/validate", text, 200);
    assert_true(json_is_object(json_array_get(json_object_get(v, "errors"), 0)));
    json_decref(v);
    free(text);
    json_decref(body);
}

/* export.ts: GET /workflows/{id}/export?format=package|plugin → {format, workflow_id,
 * workflow_name, files}; the package's workflow.yaml loads back as the same workflow. */
static void test_export(void **state)
{
    (void)state;
    char url[512];
    snprintf(url, sizeof url, "%s/workflows/from-yaml", teststack_url(stack));
    http_response_t r;
    assert_int_equal(http_request("POST", url, good_yaml, "application/yaml", &r), 0);
    assert_int_equal(r.status, 201);
    http_response_clear(&r);

    json_t *m = call("GET", "/api/v1/workflows/val-flow/export?format=package", NULL, 200);
    assert_string_equal(str(m, "format"), "package");
    assert_string_equal(str(m, "workflow_id"), "val-flow");
    assert_string_equal(str(m, "workflow_name"), "Val Flow");
    json_t *files = json_object_get(m, "files");
    const char *yaml = str(files, "workflow.yaml");
    assert_non_null(strstr(str(files, "README.md"), "# Val Flow"));
    snprintf(url, sizeof url, "%s/workflows/from-yaml?id=val-copy", teststack_url(stack));
    assert_int_equal(http_request("POST", url, yaml, "application/yaml", &r), 0);
    assert_int_equal(r.status, 201);
    http_response_clear(&r);
    json_t *a = call("GET", "/workflows/val-flow", NULL, 200);
    json_t *b = call("GET", "/workflows/val-copy", NULL, 200);
    assert_true(json_equal(json_object_get(a, "phases"), json_object_get(b, "phases")));
    json_decref(a);
    json_decref(b);
    json_decref(m);

    m = call("GET", "/workflows/val-flow/export?format=plugin", NULL, 200);
    files = json_object_get(m, "files");
    assert_non_null(json_object_get(files, "syntropic137-plugin.json"));
    assert_non_null(json_object_get(files, "commands/syn-val-flow.md"));
    assert_non_null(json_object_get(files, "workflows/val-flow/workflow.yaml"));
    json_decref(m);

    json_decref(call("GET", "/api/v1/workflows/val-flow/export?format=zip", NULL, 422));
    json_t *y = call("GET", "/workflows/val-flow/export", NULL, 200); /* syn's YAML */
    assert_true(json_is_string(y));
    json_decref(y);
}

/* Runs one execution of a two-phase workflow with tokens on the mock provider and one
 * that fails; returns the completed one's id. */

static char *run_two(void)
{
    json_decref(call("POST", "/api/v1/workflows",
                     "{\"id\":\"tok\",\"name\":\"Tok\",\"phases\":["
                     "{\"id\":\"a\",\"name\":\"Alpha\",\"prompt_template\":\"#mock tokens 100 20\"},"
                     "{\"id\":\"b\",\"name\":\"Beta\",\"prompt_template\":\"#mock tokens 5 7\"}]}",
                     201));
    json_decref(call("POST", "/api/v1/workflows",
                     "{\"id\":\"bad\",\"name\":\"Bad\",\"phases\":[{\"id\":\"x\",\"name\":\"X\","
                     "\"prompt_template\":\"#mock fail broken\",\"max_attempts\":1}]}",
                     201));
    char *ok = teststack_execute(stack, "tok", "{}");
    char *bad = teststack_execute(stack, "bad", "{}");
    assert_non_null(ok);
    assert_non_null(bad);
    json_decref(teststack_wait_terminal(stack, "tok", ok, 30000));
    json_decref(teststack_wait_terminal(stack, "bad", bad, 30000));
    free(failed_id);
    failed_id = bad;
    return ok;
}

static void check_summary(const json_t *e)
{
    assert_string_equal(str(e, "workflow_execution_id"), str(e, "execution_id"));
    assert_int_equal(num(e, "total_tokens"),
                     num(e, "total_input_tokens") + num(e, "total_output_tokens") +
                         num(e, "total_cache_creation_tokens") + num(e, "total_cache_read_tokens"));
    assert_true(json_is_string(json_object_get(e, "total_tokens_display")));
    assert_true(json_is_string(json_object_get(e, "total_cost_display")));
    assert_true(json_is_string(json_object_get(e, "duration_display")));
    assert_non_null(json_object_get(e, "error_message"));
    assert_true(json_equal(json_object_get(e, "error_message"), json_object_get(e, "error")));
}

/* execution.ts list and show, workflow runs, the cost routes, metrics and the event
 * stream, over one completed and one failed execution. */
static void test_executions_costs_metrics_events(void **state)
{
    (void)state;
    char *id = run_two();
    char path[512];
    for (size_t i = 0; i < 2; i++) {
        snprintf(path, sizeof path, "%s/executions?page=1&page_size=50", prefixes[i]);
        json_t *list = call("GET", path, NULL, 200);
        size_t k;
        json_t *e;
        bool failed_seen = false;
        json_array_foreach(json_object_get(list, "executions"), k, e) {
            check_summary(e);
            if (strcmp(str(e, "status"), "failed") == 0) {
                failed_seen = true;
                assert_non_null(strstr(str(e, "error_message"), "broken"));
            }
        }
        assert_true(failed_seen);
        json_decref(list);

        snprintf(path, sizeof path, "%s/executions/%s", prefixes[i], id);
        json_t *ex = call("GET", path, NULL, 200);
        check_summary(ex);
        assert_int_equal(num(ex, "total_tokens"), 132);
        json_t *phase = json_array_get(json_object_get(ex, "phases"), 0);
        assert_string_equal(str(phase, "name"), "Alpha");
        assert_true(json_is_string(json_object_get(phase, "model_display")));
        assert_int_equal(num(phase, "total_tokens"), 120);
        assert_true(json_is_null(json_object_get(phase, "error_message")));
        json_decref(ex);

        snprintf(path, sizeof path, "%s/workflows/tok/runs", prefixes[i]);
        json_t *runs = call("GET", path, NULL, 200);
        check_summary(json_array_get(json_object_get(runs, "runs"), 0));
        json_decref(runs);
    }

    /* costs.ts */
    json_t *s = get_both("/costs/summary", 200);
    assert_true(json_is_string(json_object_get(s, "total_cost_usd")));
    assert_true(num(s, "total_sessions") >= 3);
    assert_true(num(s, "total_executions") >= 2);
    assert_true(num(s, "total_tokens") >= 132);
    assert_true(num(s, "total_tool_calls") >= 0);
    assert_true(json_is_array(json_object_get(s, "top_models")));
    json_t *top = json_array_get(json_object_get(s, "top_sessions"), 0);
    assert_non_null(top);
    assert_true(json_is_string(json_object_get(top, "session_id")));
    assert_true(json_is_string(json_object_get(top, "cost")));
    json_decref(s);

    json_t *list = get_both("/costs/executions?limit=50", 200);
    assert_true(json_array_size(list) >= 2);
    json_decref(list);
    snprintf(path, sizeof path, "/costs/executions/%s", id);
    json_t *ec = get_both(path, 200);
    assert_string_equal(str(ec, "execution_id"), id);
    assert_int_equal(num(ec, "session_count"), 2);
    assert_int_equal(num(ec, "total_tokens"), 132);
    assert_int_equal(num(ec, "input_tokens"), 105);
    assert_true(json_is_string(json_object_get(ec, "total_cost_usd")));
    assert_int_equal(json_object_size(json_object_get(ec, "cost_by_phase")), 2);
    assert_true(json_is_true(json_object_get(ec, "is_complete")));
    const char *session = json_string_value(json_array_get(json_object_get(ec, "session_ids"), 0));
    assert_non_null(session);

    snprintf(path, sizeof path, "/costs/sessions?execution_id=%s&limit=50", id);
    json_t *sessions = get_both(path, 200);
    assert_int_equal(json_array_size(sessions), 2);
    json_decref(sessions);
    snprintf(path, sizeof path, "/costs/sessions/%s", session);
    json_t *one = get_both(path, 200);
    assert_string_equal(str(one, "session_id"), session);
    assert_string_equal(str(one, "execution_id"), id);
    assert_true(num(one, "total_tokens") > 0);
    assert_int_equal(num(one, "turns"), 1);
    assert_true(json_is_string(json_object_get(one, "total_cost_usd")));
    json_decref(one);
    json_decref(get_both("/costs/sessions/nope:a:1", 404));
    json_decref(get_both("/costs/sessions/garbage", 404));
    json_decref(ec);

    /* metrics.ts: JSON under /api/v1, Prometheus text at the root */
    json_t *mr = call("GET", "/api/v1/metrics", NULL, 200);
    assert_true(num(mr, "total_workflows") >= 2);
    assert_true(num(mr, "completed_workflows") >= 1);
    assert_true(num(mr, "failed_workflows") >= 1);
    assert_true(num(mr, "total_input_tokens") >= 105);
    assert_true(json_is_string(json_object_get(mr, "total_cost_usd")));
    assert_true(json_is_object(json_object_get(mr, "execution_status_counts")));
    /* without a workflow, no phases (as there) */
    assert_int_equal(json_array_size(json_object_get(mr, "phases")), 0);
    json_decref(mr);
    /* metrics show --workflow: that workflow's counts, tokens and phases, in order */
    json_t *mw = call("GET", "/api/v1/metrics?workflow_id=tok", NULL, 200);
    assert_true(num(mw, "total_workflows") >= 2); /* every workflow, as there */
    json_t *counts = json_object_get(mw, "execution_status_counts");
    assert_int_equal(num(counts, "completed"), 1);
    assert_int_equal(num(counts, "failed"), 0);
    assert_int_equal(num(mw, "total_sessions"), 2);
    assert_int_equal(num(mw, "total_input_tokens"), 105);
    assert_int_equal(num(mw, "total_output_tokens"), 27);
    assert_int_equal(num(mw, "total_tokens"), 132);
    json_t *phases = json_object_get(mw, "phases");
    assert_int_equal(json_array_size(phases), 2);
    static const char *const names[] = {"Alpha", "Beta"};
    static const long long tokens[] = {120, 12};
    for (size_t k = 0; k < 2; k++) {
        json_t *ph = json_array_get(phases, k);
        assert_string_equal(str(ph, "phase_name"), names[k]);
        assert_string_equal(str(ph, "status"), "completed");
        assert_int_equal(num(ph, "total_tokens"), tokens[k]);
        assert_int_equal(num(ph, "input_tokens") + num(ph, "output_tokens"), tokens[k]);
        assert_true(json_is_string(json_object_get(ph, "cost_usd")));
        assert_true(json_is_real(json_object_get(ph, "duration_seconds")));
        assert_true(json_real_value(json_object_get(ph, "duration_seconds")) >= 0);
        assert_int_equal(num(ph, "artifact_count"), 0);
        assert_true(json_is_false(json_object_get(ph, "cost_in_progress")));
    }
    assert_string_equal(str(json_array_get(phases, 0), "phase_id"), "a");
    json_decref(mw);
    mw = call("GET", "/api/v1/metrics?workflow_id=bad", NULL, 200);
    assert_int_equal(num(json_object_get(mw, "execution_status_counts"), "failed"), 1);
    assert_int_equal(num(json_object_get(mw, "execution_status_counts"), "completed"), 0);
    assert_string_equal(str(json_array_get(json_object_get(mw, "phases"), 0), "status"),
                        "failed");
    json_decref(mw);
    mw = call("GET", "/api/v1/metrics?workflow_id=nobody", NULL, 200);
    assert_int_equal(num(mw, "total_sessions"), 0);
    assert_int_equal(json_array_size(json_object_get(mw, "phases")), 0);
    json_decref(mw);
    char url[512];
    snprintf(url, sizeof url, "%s/metrics", teststack_url(stack));
    http_response_t r;
    assert_int_equal(http_get(&r, "%s", url), 0);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.content_type, "text/plain"));
    http_response_clear(&r);

    /* watch.ts through client/sse.ts: /api/v1/sse/executions/{id} (and the root
     * /watch/... paths), read as its renderEvent reads them */
    watch_completed(id, "/api/v1/sse/executions/");
    watch_completed(id, "/watch/executions/");
    watch_failed(failed_id, "/api/v1/sse/executions/");
    watch_failed(failed_id, "/watch/executions/");
    watch_syn(id);
    free(id);
}

/* A whole execution stream, as watch.ts reads it: `event.event_type ?? event.type`,
 * `event.data`. The frames' data objects, in order, with the CLI's event type beside
 * each (type[i]). */
static sse_client_t *watch(const char *prefix, const char *id)
{
    char path[512];
    snprintf(path, sizeof path, "%s%s", prefix, id);
    int port = atoi(strrchr(teststack_url(stack), ':') + 1);
    sse_client_t *c = sse_client_new(port, path, NULL, 0);
    assert_true(sse_client_wait(c, sse_client_has_closed, 0, 30000));
    assert_int_equal(sse_client_status(c), 200);
    return c;
}

static const char *cli_event_type(const sse_frame_t *frame)
{
    const char *type = json_string_value(json_object_get(frame->data, "event_type"));
    return type ? type : sse_frame_str(frame, "type");
}

/* The first frame: its own connected handshake, {type, event_type: "connected"}. */
static void check_connected(sse_client_t *c, const char *id)
{
    const sse_frame_t *first = sse_client_frame(c, 0);
    assert_string_equal(sse_frame_str(first, "type"), "connected");
    assert_string_equal(sse_frame_str(first, "event_type"), "connected");
    assert_string_equal(sse_frame_str(first, "execution_id"), id);
}

/* Its names (WorkflowExecutionStarted … WorkflowCompleted, the terminal frame last),
 * syn's in syn_event_type, and what renderEventData prints: the execution id, the
 * phase's name, the tokens. None of syn's own names for what the original names
 * otherwise. */
static void watch_completed(const char *id, const char *prefix)
{
    sse_client_t *c = watch(prefix, id);
    check_connected(c, id);
    bool started = false, phase = false, tokens = false;
    size_t n = sse_client_frame_count(c);
    for (size_t i = 1; i < n; i++) {
        const sse_frame_t *f = sse_client_frame(c, i);
        const char *type = cli_event_type(f);
        const json_t *d = json_object_get(f->data, "data");
        assert_string_equal(str(d, "execution_id"), id);
        assert_string_not_equal(type, "ExecutionStarted");
        assert_string_not_equal(type, "ExecutionCompleted");
        assert_non_null(json_object_get(f->data, "syn_event_type"));
        if (strcmp(type, "WorkflowExecutionStarted") == 0) {
            started = true;
            assert_string_equal(sse_frame_str(f, "syn_event_type"), "ExecutionStarted");
        }
        if (strcmp(type, "PhaseStarted") == 0)
            phase = strcmp(str(d, "phase_name"), "Alpha") == 0 || phase;
        if (strcmp(type, "PhaseCompleted") == 0 && strcmp(str(d, "phase_name"), "Alpha") == 0)
            tokens = num(d, "total_tokens") == 120;
    }
    const sse_frame_t *last = sse_client_frame(c, n - 1);
    assert_string_equal(sse_frame_str(last, "type"), "terminal");
    assert_string_equal(cli_event_type(last), "WorkflowCompleted");
    assert_string_equal(sse_frame_str(last, "syn_event_type"), "ExecutionCompleted");
    assert_true(started && phase && tokens);
    assert_true(sse_client_ended(c));
    sse_client_destroy(&c);
}

/* A failure as it prints it: WorkflowFailed (terminal) and PhaseFailed, each with the
 * error in data.error_message. */
static void watch_failed(const char *id, const char *prefix)
{
    sse_client_t *c = watch(prefix, id);
    check_connected(c, id);
    bool phase_failed = false;
    size_t n = sse_client_frame_count(c);
    for (size_t i = 1; i < n; i++) {
        const sse_frame_t *f = sse_client_frame(c, i);
        if (strcmp(cli_event_type(f), "PhaseFailed") == 0) {
            phase_failed = true;
            assert_non_null(strstr(str(json_object_get(f->data, "data"), "error_message"),
                                   "broken"));
        }
    }
    const sse_frame_t *last = sse_client_frame(c, n - 1);
    assert_string_equal(sse_frame_str(last, "type"), "terminal");
    assert_string_equal(cli_event_type(last), "WorkflowFailed");
    assert_non_null(strstr(str(json_object_get(last->data, "data"), "error_message"), "broken"));
    assert_true(phase_failed);
    sse_client_destroy(&c);
}

/* syn's own stream at the root is as it was: syn's names, the original's beside. */
static void watch_syn(const char *id)
{
    sse_client_t *c = watch("/sse/executions/", id);
    const sse_frame_t *first = sse_client_frame(c, 0);
    assert_string_equal(sse_frame_str(first, "type"), "connected");
    assert_true(json_is_null(json_object_get(first->data, "event_type")));
    bool started = false;
    size_t n = sse_client_frame_count(c);
    for (size_t i = 1; i < n; i++) {
        const sse_frame_t *f = sse_client_frame(c, i);
        assert_null(json_object_get(f->data, "syn_event_type"));
        if (strcmp(sse_frame_str(f, "event_type"), "ExecutionStarted") == 0)
            started = strcmp(sse_frame_str(f, "original_event_type"),
                             "WorkflowExecutionStarted") == 0;
    }
    assert_string_equal(sse_frame_str(sse_client_frame(c, n - 1), "event_type"),
                        "ExecutionCompleted");
    assert_true(started);
    sse_client_destroy(&c);
}

/* workflow/install.ts through client/yaml-upload.ts: each resolved workflow goes up as
 * JSON ("a YAML subset") with its stable id in ?workflow_id= and the package version in
 * ?version=; it reads `id` and `status` back ("unchanged" would say it was there). */
static void test_install_as_the_cli_does(void **state)
{
    (void)state;
    static const char definition[] =
        "{\"id\":\"pkg-wf\",\"name\":\"Packaged\",\"type\":\"research\","
        "\"inputs\":[{\"name\":\"topic\",\"required\":true}],"
        "\"phases\":[{\"id\":\"plan\",\"name\":\"Plan\",\"order\":1,"
        "\"prompt_template\":\"Plan {{topic}}\"}]}";
    json_t *w = call_as("POST",
                        "/api/v1/workflows/from-yaml?name=Packaged&workflow_id=pkg-wf&version=0.0.0",
                        definition, "application/json", 201);
    assert_string_equal(str(w, "id"), "pkg-wf");
    assert_string_equal(str(w, "name"), "Packaged");
    assert_string_equal(str(w, "workflow_type"), "research");
    assert_string_equal(str(w, "status"), "created");
    assert_string_equal(str(w, "repository_url"), "");
    assert_true(json_is_false(json_object_get(w, "requires_repos")));
    assert_int_equal(json_array_size(json_object_get(w, "warnings")), 1);
    json_decref(w);
    /* installed again unchanged (with --force too): left as it is; its CLI prints "unchanged" */
    json_t *again = call_as(
        "POST", "/api/v1/workflows/from-yaml?name=Packaged&workflow_id=pkg-wf&version=0.0.0&force=true",
        definition, "application/json", 200);
    assert_string_equal(str(again, "status"), "unchanged");
    assert_int_equal(json_integer_value(json_object_get(again, "version")), 1);
    assert_string_equal(str(again, "name"), "Packaged");
    json_decref(again);
    /* a changed package: installed over it as a new version, as its original overwrites */
    static const char changed[] =
        "{\"id\":\"pkg-wf\",\"name\":\"Packaged\",\"type\":\"research\","
        "\"inputs\":[{\"name\":\"topic\",\"required\":true}],"
        "\"phases\":[{\"id\":\"plan\",\"name\":\"Plan\",\"order\":1,"
        "\"prompt_template\":\"Plan {{topic}} again\"}]}";
    json_t *updated = call_as(
        "POST", "/api/v1/workflows/from-yaml?name=Packaged&workflow_id=pkg-wf&version=0.0.1",
        changed, "application/json", 200);
    assert_string_equal(str(updated, "status"), "updated");
    assert_int_equal(json_integer_value(json_object_get(updated, "version")), 2);
    assert_string_equal(str(updated, "workflow_type"), "research");
    json_decref(updated);
    json_t *got = call("GET", "/api/v1/workflows/pkg-wf", NULL, 200);
    assert_string_equal(str(json_array_get(json_object_get(got, "phases"), 0), "prompt_template"),
                        "Plan {{topic}} again");
    json_decref(got);
    /* an archived workflow keeps its id: installing it again is refused */
    json_decref(call("DELETE", "/api/v1/workflows/pkg-wf", NULL, 200));
    json_t *archived = call_as(
        "POST", "/api/v1/workflows/from-yaml?name=Packaged&workflow_id=pkg-wf&version=0.0.2",
        definition, "application/json", 409);
    assert_string_equal(str(archived, "detail"), "Workflow pkg-wf is archived");
    json_decref(archived);

    /* crud.ts `create NAME --from FILE`: the file as YAML, ?name= over its name; it prints
     * requires_repos ("Repos required"), inferred from `repository` as the original does */
    static const char file[] = "id: from-file\nname: In The File\n"
                               "repository:\n  url: https://github.com/o/r\n  ref: main\n"
                               "phases:\n  - id: p\n    name: P\n    order: 1\n"
                               "    prompt_template: go\n";
    json_t *f = call_as("POST", "/api/v1/workflows/from-yaml?name=Given", file, "application/yaml",
                        201);
    assert_string_equal(str(f, "name"), "Given");
    assert_string_equal(str(f, "repository_url"), "https://github.com/o/r");
    assert_true(json_is_true(json_object_get(f, "requires_repos")));
    assert_int_equal(json_array_size(json_object_get(f, "warnings")), 0);
    json_decref(f);

    /* syn's own upload at the root keeps its answers: YAML only (JSON is the original's,
     * under /api/v1 or with its query keys) */
    json_t *own = call_as("POST", "/workflows/from-yaml?id=own-yaml", file, "application/yaml", 201);
    assert_null(json_object_get(own, "repository_url"));
    json_decref(own);
    json_decref(call_as("POST", "/workflows/from-yaml?id=own-json", definition, "application/json",
                        415));
    json_decref(call_as("POST", "/workflows/from-yaml?id=own-text", file, "text/plain", 415));
}

/* Its commands for features syn does not have get a detail naming the feature (its CLI
 * prints `detail` and nothing else), not a bare "Not Found"; other paths stay 404. */
static void test_absent_features(void **state)
{
    (void)state;
    static const char *const paths[] = {
        "/organizations",                       /* org.ts list */
        "/systems",                             /* system.ts list */
        "/repos",                               /* repo.ts list */
        "/repos/repo-abc",                      /* workflow/run.ts resolveRepoRefs */
        "/triggers",                            /* triggers.ts list */
        "/insights/overview",                   /* insights.ts */
        "/observability/latency?window=24h",    /* insights.ts latency */
        "/sessions?limit=50",                   /* sessions.ts list */
        "/sessions/exec-1:plan:1",              /* sessions.ts show */
        "/events/recent?limit=50",              /* events.ts recent */
        "/events/sessions/s-1/timeline",        /* events.ts timeline */
        "/observe/sessions/s-1/tokens",         /* observe.ts tokens */
        "/conversations/s-1?offset=0&limit=100", /* conversations.ts show */
        "/artifacts?page=1&page_size=50",       /* artifacts.ts list */
        "/artifacts/a-1/content",               /* artifacts.ts content */
        "/executions/exec-1/session-inventory", /* execution.ts show, newer */
        "/session-inventory-jobs/j-1",          /* execution-sessions.ts --refresh */
        "/executions/exec-1/session-transcripts/ab12?harness=claude&native_id=n",
        /* execution-transcript.ts */
        "/sse/health",                          /* its sse.py, for scripts */
    };
    for (size_t p = 0; p < 2; p++)
        for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
            char path[256];
            snprintf(path, sizeof path, "%s%s", prefixes[p], paths[i]);
            json_t *a = call("GET", path, NULL, 501);
            assert_non_null(strstr(str(a, "detail"), "syn has no "));
            json_decref(a);
        }
    json_t *org = call("POST", "/api/v1/organizations", "{\"name\":\"x\"}", 501);
    assert_string_equal(str(org, "detail"),
                        "syn has no organizations (the original's /organizations routes)");
    json_decref(org);
    static const char *const unknown[] = {"/api/v1/nothing", "/organizationsx", "/api/v2/repos",
                                          "/executions/x/y/session-inventory"};
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
        json_t *n = call("GET", unknown[i], NULL, 404);
        assert_string_equal(str(n, "detail"), "Not Found");
        json_decref(n);
    }
}

/* watch.ts: `watch activity` streams /api/v1/watch/activity, and its newer version
 * watches /api/v1/watch/executions/{id}; syn's streams answer both. */
static void test_watch_paths(void **state)
{
    (void)state;
    json_decref(call("POST", "/api/v1/workflows",
                     "{\"id\":\"watched\",\"name\":\"Watched\",\"phases\":[{\"id\":\"w\","
                     "\"name\":\"W\",\"prompt_template\":\"#mock sleep 300\"}]}",
                     201));
    int port = atoi(strrchr(teststack_url(stack), ':') + 1);
    sse_client_t *activity = sse_client_new(port, "/api/v1/watch/activity", NULL, 0);
    assert_true(sse_client_wait(activity, sse_client_has_frames, 1, 30000));
    assert_int_equal(sse_client_status(activity), 200);
    const sse_frame_t *hello = sse_client_frame(activity, 0);
    assert_string_equal(cli_event_type(hello), "connected");
    assert_string_equal(str(json_object_get(hello->data, "data"), "channel"), "activity");
    char *id = teststack_execute(stack, "watched", "{}");
    assert_non_null(id);
    json_decref(teststack_wait_terminal(stack, "watched", id, 30000));
    bool seen = false;
    for (int tries = 0; !seen && tries < 300; tries++) {
        sse_client_wait(activity, sse_client_has_frames,
                        (long)sse_client_frame_count(activity) + 1, 100);
        for (size_t i = 0; i < sse_client_frame_count(activity); i++) {
            const json_t *d = json_object_get(sse_client_frame(activity, i)->data, "data");
            seen = seen || (strcmp(cli_event_type(sse_client_frame(activity, i)),
                                   "WorkflowCompleted") == 0 &&
                            json_is_string(json_object_get(d, "execution_id")) &&
                            strcmp(json_string_value(json_object_get(d, "execution_id")), id) == 0);
        }
    }
    assert_true(seen);
    sse_client_destroy(&activity);

    char path[256];
    snprintf(path, sizeof path, "/api/v1/watch/executions/%s", id);
    sse_client_t *one = sse_client_new(port, path, NULL, 0);
    assert_true(sse_client_wait(one, sse_client_has_closed, 0, 30000));
    bool completed = false;
    for (size_t i = 0; i < sse_client_frame_count(one); i++)
        completed = completed ||
                    strcmp(cli_event_type(sse_client_frame(one, i)), "WorkflowCompleted") == 0;
    assert_true(completed);
    sse_client_destroy(&one);
    free(id);
}

/* health.ts with the broker gone: not healthy (the gateway answers alone). */
static void test_health_without_broker(void **state)
{
    (void)state;
    teststack_kill_broker(stack, 9);
    json_t *h = call("GET", "/api/v1/health", NULL, 503);
    assert_string_equal(str(h, "status"), "degraded");
    assert_string_equal(str(h, "mode"), "degraded");
    assert_int_equal(json_array_size(json_object_get(h, "degraded_reasons")), 1);
    json_decref(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_health),
        cmocka_unit_test(test_create_as_the_cli_does),
        cmocka_unit_test(test_create_phases_the_original_way),
        cmocka_unit_test(test_validate),
        cmocka_unit_test(test_export),
        cmocka_unit_test(test_executions_costs_metrics_events),
        cmocka_unit_test(test_install_as_the_cli_does),
        cmocka_unit_test(test_absent_features),
        cmocka_unit_test(test_watch_paths),
        cmocka_unit_test(test_health_without_broker),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
