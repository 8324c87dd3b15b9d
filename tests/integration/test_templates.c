/* Workflow templates end to end (issue 6), with real processes: YAML uploads with
 * every media type and their errors (415, 413, 400 with line and column, 422), the
 * validate endpoint, export → from-yaml → the same workflow, archive rules, a phase
 * edited while an execution is paused between phases (it keeps the old prompt), and
 * the broker's --workflows preload: the shipped examples load and run, a restart with
 * the same files changes nothing, a changed file makes a new version, a bad file is
 * skipped while the rest load. */
#include "tests/support/execution.h"
#include "tests/support/expect.h"
#include "tests/support/http.h"
#include "tests/support/teststack.h"

#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

static teststack_t *stack;

static int setup(void **state)
{
    (void)state;
    teststack_options_t opts = {.workers = 2, .slots = 4};
    stack = teststack_start(&opts);
    return stack ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    teststack_destroy(&stack);
    return 0;
}

/* ---- helpers ---- */

#define SIMPLE_YAML                                                                               \
    "name: Simple\n"                                                                             \
    "type: review\n"                                                                             \
    "phases:\n"                                                                                  \
    "  - {id: only, name: Only, order: 1, prompt_template: hello}\n"

static void request(http_response_t *resp, const char *method, const char *path,
                    const char *body, const char *content_type)
{
    char url[1024];
    snprintf(url, sizeof url, "%s%s", teststack_url(stack), path);
    assert_int_equal(http_request(method, url, body, content_type, resp), 0);
}

/* POST /workflows/from-yaml{query}; fails the test unless the status is want. */
static json_t *upload(const char *query, const char *content_type, const char *yaml,
                      long want_status)
{
    char path[512];
    snprintf(path, sizeof path, "/workflows/from-yaml%s", query ? query : "");
    http_response_t resp;
    request(&resp, "POST", path, yaml, content_type);
    if (resp.status != want_status)
        fail_msg("from-yaml %s (%s): %ld %s, want %ld", path, content_type, resp.status,
                 resp.body ? resp.body : "", want_status);
    assert_string_equal(resp.content_type, "application/json");
    json_t *json = json_incref(resp.json);
    http_response_clear(&resp);
    return json;
}

static json_t *get_json(long want_status, const char *path)
{
    http_response_t resp;
    request(&resp, "GET", path, NULL, NULL);
    if (resp.status != want_status)
        fail_msg("GET %s: %ld %s", path, resp.status, resp.body ? resp.body : "");
    json_t *json = json_incref(resp.json);
    http_response_clear(&resp);
    return json;
}

static json_t *workflow(const char *id)
{
    char path[256];
    snprintf(path, sizeof path, "/workflows/%s", id);
    return get_json(200, path);
}

/* The workflow without what differs between two copies of it. */
static json_t *content_of(const char *id)
{
    json_t *wf = workflow(id);
    json_object_del(wf, "id");
    json_object_del(wf, "created_at");
    json_object_del(wf, "version");
    json_object_del(wf, "name");
    return wf;
}

static char *export_of(const char *id)
{
    char path[256];
    snprintf(path, sizeof path, "/workflows/%s/export", id);
    http_response_t resp;
    request(&resp, "GET", path, NULL, NULL);
    if (resp.status != 200)
        fail_msg("GET %s: %ld %s", path, resp.status, resp.body ? resp.body : "");
    assert_string_equal(resp.content_type, "application/yaml; charset=utf-8");
    char *text = strdup(resp.body);
    http_response_clear(&resp);
    return text;
}

static const char *first_error_field(const json_t *body, const char *key)
{
    const json_t *first = json_array_get(json_object_get(body, "errors"), 0);
    return json_str(first, key);
}

static json_int_t first_error_int(const json_t *body, const char *key)
{
    const json_t *first = json_array_get(json_object_get(body, "errors"), 0);
    return json_integer_value(json_object_get(first, key));
}

static void expect_status(const char *method, const char *path, const char *body, long status,
                          const char *want_json)
{
    http_response_t resp;
    request(&resp, method, path, body, NULL);
    expect_response(&resp, status, want_json);
    http_response_clear(&resp);
}

/* ---- uploads ---- */

static void test_from_yaml_media_types(void **state)
{
    (void)state;
    const char *types[] = {"application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml"};
    const char *params[] = {"", "; charset=utf-8", ";charset=UTF-8", "; Charset=\"utf-8\""};
    int n = 0;
    for (size_t t = 0; t < 4; t++) {
        for (size_t p = 0; p < 4; p++) {
            char type[128], query[64], id[32];
            snprintf(type, sizeof type, "%s%s", types[t], params[p]);
            if (p == 3) /* media types are case-insensitive */
                for (char *c = type; *c && *c != ';'; c++)
                    *c = (char)(*c >= 'a' && *c <= 'z' ? *c - 'a' + 'A' : *c);
            snprintf(id, sizeof id, "media-%d", n++);
            snprintf(query, sizeof query, "?id=%s", id);
            json_t *created = upload(query, type, SIMPLE_YAML, 201);
            char want[256];
            snprintf(want, sizeof want,
                     "{\"id\":\"%s\",\"name\":\"Simple\",\"workflow_type\":\"review\","
                     "\"classification\":\"standard\",\"status\":\"created\"}",
                     id);
            json_t *want_json = json_loads(want, 0, NULL);
            if (!json_equal(created, want_json))
                fail_msg("%s: unexpected reply", type);
            json_decref(want_json);
            json_decref(created);
        }
    }
    json_t *wf = workflow("media-15");
    assert_string_equal(json_str(wf, "name"), "Simple");
    assert_string_equal(json_str(json_array_get(json_object_get(wf, "phases"), 0),
                                 "prompt_template"),
                        "hello");
    json_decref(wf);
}

/* The same workflow as YAML and as JSON: the same 201, the same stored template,
 * the same 409 for a taken id. */
static void test_from_yaml_agrees_with_post_workflows(void **state)
{
    (void)state;
    const char *yaml = "id: agree-yaml\n"
                       "name: Agree\n"
                       "description: both ways\n"
                       "type: planning\n"
                       "classification: complex\n"
                       "inputs:\n"
                       "  - {name: topic}\n"
                       "  - {name: tone, required: false, default: dry}\n"
                       "phases:\n"
                       "  - id: plan\n"
                       "    name: Plan\n"
                       "    order: 1\n"
                       "    model: sonnet\n"
                       "    provider: mock\n"
                       "    max_tokens: 2000\n"
                       "    retries: 1\n"
                       "    retry_backoff_seconds: 0.5\n"
                       "    allowed_tools: [Read, \"Bash(git log:*)\"]\n"
                       "    prompt_template: |\n"
                       "      Plan {{topic}} in a {{tone}} tone.\n"
                       "      $ARGUMENTS\n";
    json_t *created = upload(NULL, "application/yaml", yaml, 201);
    assert_string_equal(json_str(created, "id"), "agree-yaml");
    assert_string_equal(json_str(created, "workflow_type"), "planning");
    assert_string_equal(json_str(created, "classification"), "complex");
    json_decref(created);
    json_t *again = upload(NULL, "application/yaml", yaml, 409);
    assert_string_equal(json_str(again, "detail"), "Workflow agree-yaml already exists");
    json_decref(again);

    json_t *from_json = teststack_create_workflow(
        stack, "{\"id\":\"agree-json\",\"name\":\"Agree\",\"description\":\"both ways\","
               "\"workflow_type\":\"planning\",\"classification\":\"complex\","
               "\"input_declarations\":[{\"name\":\"topic\"},{\"name\":\"tone\",\"required\":false,"
               "\"default\":\"dry\"}],\"phases\":[{\"phase_id\":\"plan\",\"name\":\"Plan\","
               "\"order\":1,\"model\":\"sonnet\",\"provider\":\"mock\",\"max_tokens\":2000,"
               "\"retries\":1,\"retry_backoff_seconds\":0.5,\"allowed_tools\":[\"Read\","
               "\"Bash(git log:*)\"],\"prompt_template\":\"Plan {{topic}} in a {{tone}} tone.\\n"
               "$ARGUMENTS\\n\"}]}");
    assert_non_null(from_json);
    json_decref(from_json);
    json_t *a = content_of("agree-yaml"), *b = content_of("agree-json");
    if (!json_equal(a, b)) {
        char *ta = json_dumps(a, JSON_COMPACT), *tb = json_dumps(b, JSON_COMPACT);
        fail_msg("YAML and JSON differ:\n%s\n%s", ta, tb);
    }
    json_decref(a);
    json_decref(b);

    /* A JSON body is refused with the enum rule the YAML format has. */
    http_response_t resp;
    request(&resp, "POST", "/workflows",
            "{\"name\":\"x\",\"workflow_type\":\"reserch\",\"phases\":[{\"phase_id\":\"p\","
            "\"name\":\"P\",\"order\":1,\"prompt_template\":\"t\"}]}",
            NULL);
    expect_response(&resp, 422,
                    "{\"detail\":[{\"loc\":[\"body\",\"workflow_type\"],\"msg\":\"Input should be "
                    "'research', 'planning', 'implementation', 'review', 'deployment' or "
                    "'custom'\",\"type\":\"enum\"}]}");
    http_response_clear(&resp);
}

/* The phase of a boundary case as flow text (JSON is flow YAML): the base members,
 * one of them replaced by the setting under test; id_key is the phase id's key. */
static void phase_text(char *out, size_t size, const char *id_key, const char *key,
                       const char *value)
{
    const char *base[][2] = {{"name", "\"P\""}, {"order", "1"}, {"prompt_template", "\"x\""}};
    int used = snprintf(out, size, "{\"%s\": \"p\"", id_key);
    for (size_t i = 0; i < 3; i++)
        if (strcmp(base[i][0], key) != 0)
            used += snprintf(out + used, size - (size_t)used, ", \"%s\": %s", base[i][0],
                             base[i][1]);
    snprintf(out + used, size - (size_t)used, ", \"%s\": %s}", key, value);
}

/* A few of the specification's boundaries (tests/unit/test_template_spec.c walks all
 * of them) through the real gateway and broker: a JSON body and a YAML upload of the
 * same phase setting get the same status, 201 just inside, 422 just outside. */
static void test_boundaries_agree_over_http(void **state)
{
    (void)state;
    const struct {
        const char *key, *value;
        long status;
    } cases[] = {
        {"timeout_seconds", "86400", 201}, {"timeout_seconds", "86401", 422},
        {"max_attempts", "10", 201},       {"max_attempts", "11", 422},
        {"retries", "10", 201},            {"retries", "11", 422},
        {"max_tokens", "10000000", 201},   {"max_tokens", "10000001", 422},
        {"order", "0", 201},               {"order", "-1", 422},
        {"name", "\"\"", 201},             {"provider", "\"\"", 422},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char phase[256], json[512], yaml[512];
        phase_text(phase, sizeof phase, "phase_id", cases[i].key, cases[i].value);
        snprintf(json, sizeof json, "{\"id\": \"edge-json-%zu\", \"name\": \"E\", "
                                    "\"phases\": [%s]}", i, phase);
        phase_text(phase, sizeof phase, "id", cases[i].key, cases[i].value);
        snprintf(yaml, sizeof yaml, "{\"id\": \"edge-yaml-%zu\", \"name\": \"E\", "
                                    "\"phases\": [%s]}", i, phase);
        http_response_t resp;
        request(&resp, "POST", "/workflows", json, "application/json");
        long by_json = resp.status;
        http_response_clear(&resp);
        if (by_json != cases[i].status)
            fail_msg("%s: %s: POST /workflows %ld, want %ld", cases[i].key, cases[i].value,
                     by_json, cases[i].status);
        json_decref(upload(NULL, "application/yaml", yaml, cases[i].status));
    }
}

static void test_from_yaml_errors(void **state)
{
    (void)state;
    /* 415: anything but the YAML media types */
    const char *others[] = {"application/json", "text/plain; charset=utf-8",
                            "application/x-www-form-urlencoded"};
    for (size_t i = 0; i < 3; i++) {
        json_t *body = upload(NULL, others[i], SIMPLE_YAML, 415);
        char want[256];
        snprintf(want, sizeof want, "Unsupported Media Type: %s (send the workflow as "
                 "application/yaml, application/x-yaml, text/yaml or text/x-yaml)", others[i]);
        assert_string_equal(json_str(body, "detail"), want);
        json_decref(body);
    }

    /* 413: over 1 MiB (the gateway's body limit), or over a limit of the format */
    size_t big = 1024 * 1024 + 16;
    char *text = malloc(big + 1);
    memset(text, '#', big);
    text[big] = '\0';
    json_t *body = upload(NULL, "text/yaml", text, 413);
    assert_string_equal(json_str(body, "detail"), "Request body too large");
    json_decref(body);
    free(text);
    text = malloc(300 * 16 + 64);
    size_t len = (size_t)sprintf(text, "name: wide\nphases: []\nextra:\n");
    for (int i = 0; i < 300; i++)
        len += (size_t)sprintf(text + len, "  k%d: v\n", i);
    body = upload(NULL, "text/yaml", text, 413);
    assert_non_null(strstr(json_str(body, "detail"), "too many keys in one mapping"));
    json_decref(body);
    free(text);

    /* 400: not UTF-8, with where */
    body = upload(NULL, "text/yaml", "name: caf\xe9\nphases: []\n", 400);
    assert_string_equal(json_str(body, "detail"), "line 1, column 10: not valid UTF-8 (byte 0xE9)");
    assert_int_equal(first_error_int(body, "line"), 1);
    assert_int_equal(first_error_int(body, "column"), 10);
    json_decref(body);

    /* 400: not YAML, with line and column */
    body = upload(NULL, "text/yaml", "name: x\nphases:\n  - {id: a, name: A\n  - b\n", 400);
    print_message("bad YAML: %s\n", json_str(body, "detail"));
    assert_non_null(strstr(json_str(body, "detail"), "invalid YAML"));
    assert_true(first_error_int(body, "line") >= 3);
    assert_true(first_error_int(body, "column") >= 1);
    json_decref(body);

    /* 400: prompt_file in an upload, saying what to do instead */
    body = upload(NULL, "text/yaml",
                  "name: x\nphases:\n  - id: a\n    name: A\n    order: 1\n"
                  "    prompt_file: prompts/a.md\n",
                  400);
    assert_non_null(strstr(json_str(body, "detail"), "prompt_file cannot be used in an uploaded "
                                                     "document"));
    assert_non_null(strstr(json_str(body, "detail"), "CLI"));
    assert_string_equal(first_error_field(body, "field"), "phases[0].prompt_file");
    assert_int_equal(first_error_int(body, "line"), 6);
    json_decref(body);

    /* 422: valid YAML, invalid workflow — every error with its line and field */
    body = upload(NULL, "application/yaml",
                  "name: x\n"
                  "type: reserch\n"
                  "phases:\n"
                  "  - {id: a, name: A, order: 1, prompt_template: x}\n"
                  "  - {id: a, name: B, order: 2, promt_template: y}\n",
                  422);
    json_t *errors = json_object_get(body, "errors");
    assert_true(json_array_size(errors) >= 3);
    assert_string_equal(first_error_field(body, "field"), "type");
    assert_int_equal(first_error_int(body, "line"), 2);
    assert_int_equal(first_error_int(body, "column"), 7);
    assert_non_null(strstr(json_str(body, "detail"), "did you mean 'research'?"));
    bool duplicate = false, typo = false;
    size_t i;
    json_t *e;
    json_array_foreach(errors, i, e)
    {
        duplicate |= strstr(json_str(e, "message"), "duplicate phase id 'a'") != NULL;
        typo |= strstr(json_str(e, "message"), "did you mean 'prompt_template'?") != NULL;
    }
    assert_true(duplicate);
    assert_true(typo);
    json_decref(body);

    /* 422: bad overrides */
    body = upload("?id=not%20an%20id&name=", "text/yaml", SIMPLE_YAML, 422);
    char *got = json_dumps(body, JSON_COMPACT);
    assert_string_equal(got, "{\"detail\":[{\"loc\":[\"query\",\"id\"],\"msg\":\"String should "
                             "match pattern '^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$'\",\"type\":"
                             "\"string_pattern_mismatch\"},{\"loc\":[\"query\",\"name\"],\"msg\":"
                             "\"String should have at least 1 character\",\"type\":"
                             "\"string_too_short\"}]}");
    free(got);
    json_decref(body);
    /* nothing above was created */
    json_t *list = get_json(200, "/workflows?page_size=100");
    json_array_foreach(json_object_get(list, "workflows"), i, e)
        assert_string_not_equal(json_str(e, "name"), "x");
    json_decref(list);
}

static void test_validate_endpoint(void **state)
{
    (void)state;
    http_response_t resp;
    json_t *content = json_pack("{s:s}", "content", SIMPLE_YAML);
    char *body = json_dumps(content, 0);
    json_decref(content);
    request(&resp, "POST", "/workflows/validate", body, NULL);
    free(body);
    expect_response(&resp, 200, "{\"valid\":true,\"errors\":[],\"name\":\"Simple\","
                                "\"workflow_type\":\"review\",\"phase_count\":1,\"warnings\":[]}");
    http_response_clear(&resp);

    request(&resp, "POST", "/workflows/validate",
            "{\"content\":\"name: x\\ntype: reserch\\nphases: []\\n\"}", NULL);
    assert_int_equal(resp.status, 200);
    assert_true(json_is_false(json_object_get(resp.json, "valid")));
    json_t *errors = json_object_get(resp.json, "errors");
    assert_int_equal(json_array_size(errors), 2);
    json_t *first = json_array_get(errors, 0);
    assert_int_equal(json_integer_value(json_object_get(first, "line")), 2);
    assert_int_equal(json_integer_value(json_object_get(first, "column")), 7);
    assert_string_equal(json_str(first, "field"), "type");
    assert_non_null(strstr(json_str(first, "message"), "'reserch' is not one of"));
    json_t *second = json_array_get(errors, 1);
    assert_int_equal(json_integer_value(json_object_get(second, "line")), 3);
    assert_string_equal(json_str(second, "field"), "phases");
    http_response_clear(&resp);
    /* Validating never creates anything. */
    expect_status("GET", "/workflows/x", NULL, 404, "{\"detail\":\"Workflow x not found\"}");

    request(&resp, "POST", "/workflows/validate", "{\"content\":\"a: [b\"}", NULL);
    assert_int_equal(resp.status, 200);
    first = json_array_get(json_object_get(resp.json, "errors"), 0);
    assert_true(json_is_integer(json_object_get(first, "line")));
    assert_true(json_is_integer(json_object_get(first, "column")));
    assert_true(json_is_null(json_object_get(first, "field")));
    http_response_clear(&resp);

    request(&resp, "POST", "/workflows/validate", "{\"yaml\":\"x\"}", NULL);
    expect_response(&resp, 422,
                    "{\"detail\":[{\"loc\":[\"body\",\"content\"],\"msg\":\"Field required\","
                    "\"type\":\"missing\"},{\"loc\":[\"body\",\"yaml\"],\"msg\":\"Extra inputs are "
                    "not permitted\",\"type\":\"extra_forbidden\"}]}");
    http_response_clear(&resp);
}

/* export → from-yaml?id=copy → GET gives the same workflow (tricky text included). */
static void test_export_round_trip(void **state)
{
    (void)state;
    json_t *created = teststack_create_workflow(
        stack,
        "{\"id\":\"round\",\"name\":\"Round trip\",\"description\":\"yes\","
        "\"workflow_type\":\"deployment\",\"classification\":\"epic\","
        "\"input_declarations\":[{\"name\":\"env\",\"description\":\"where\",\"default\":\"0123\"},"
        "{\"name\":\"flag\",\"required\":false,\"default\":\"true\"}],"
        "\"phases\":[{\"phase_id\":\"build\",\"name\":\"Build: it\",\"order\":0,"
        "\"prompt_template\":\"  leading spaces\\n\\ttab\\ntrailing  \\n\\n\",\"model\":\"null\","
        "\"timeout_seconds\":90,\"max_attempts\":1,\"retries\":2,\"retry_backoff_seconds\":1.5,"
        "\"max_tokens\":100,\"provider\":\"mock\",\"argument_hint\":\"[env]\","
        "\"allowed_tools\":[\"Bash(make:*)\",\"#x\"]},"
        "{\"phase_id\":\"ship\",\"name\":\"Ship\",\"order\":10,\"prompt_template\":"
        "\"no newline at the end: {{build}} \\u00e9\\u2028\\r\",\"description\":\"- dash\"}]}");
    assert_non_null(created);
    json_decref(created);
    char *yaml = export_of("round");
    print_message("exported:\n%s", yaml);
    assert_null(strstr(yaml, "created_at"));

    json_t *copy = upload("?id=round-copy", "application/yaml; charset=utf-8", yaml, 201);
    assert_string_equal(json_str(copy, "id"), "round-copy");
    json_decref(copy);
    json_t *a = content_of("round"), *b = content_of("round-copy");
    if (!json_equal(a, b)) {
        char *ta = json_dumps(a, JSON_COMPACT), *tb = json_dumps(b, JSON_COMPACT);
        fail_msg("round trip changed the workflow:\n%s\n%s", ta, tb);
    }
    json_decref(a);
    json_decref(b);
    json_t *orig = workflow("round"), *copied = workflow("round-copy");
    assert_string_equal(json_str(copied, "name"), json_str(orig, "name"));
    json_decref(orig);
    json_decref(copied);
    /* ...and its export is the same text, but for the id. */
    char *again = export_of("round-copy");
    assert_int_equal(strncmp(again, "id: round-copy\n", 15), 0);
    assert_string_equal(again + 15, yaml + strlen("id: round\n"));
    free(again);
    free(yaml);

    /* a name given on the way in */
    yaml = export_of("round");
    json_t *renamed = upload("?id=round-2&name=Second%20copy", "text/yaml", yaml, 201);
    assert_string_equal(json_str(renamed, "name"), "Second copy");
    json_decref(renamed);
    free(yaml);

    expect_status("GET", "/workflows/nope/export", NULL, 404,
                  "{\"detail\":\"Workflow nope not found\"}");
}

/* ---- archive, phase edits, listing ---- */

static void test_archive_rules(void **state)
{
    (void)state;
    json_t *wf = teststack_create_workflow(
        stack, "{\"id\":\"old-one\",\"name\":\"Old\",\"workflow_type\":\"custom\",\"phases\":["
               "{\"phase_id\":\"p\",\"name\":\"P\",\"order\":1,"
               "\"prompt_template\":\"#mock sleep 1500\\nslow\"}]}");
    json_decref(wf);
    expect_status("DELETE", "/workflows/no-such", NULL, 404,
                  "{\"detail\":\"Workflow no-such not found\"}");
    char *id = teststack_execute(stack, "old-one", "{}");
    assert_non_null(id);
    expect_status("DELETE", "/workflows/old-one", NULL, 409,
                  "{\"detail\":\"Workflow old-one has active executions\"}");
    json_t *final = teststack_wait_terminal(stack, "old-one", id, 20000);
    assert_string_equal(json_str(final, "status"), "completed");
    json_decref(final);
    expect_status("DELETE", "/workflows/old-one", NULL, 200,
                  "{\"id\":\"old-one\",\"status\":\"archived\"}");
    expect_status("DELETE", "/workflows/old-one", NULL, 409,
                  "{\"detail\":\"Workflow old-one is already archived\"}");

    /* readable by id, marked archived; its runs still there */
    wf = workflow("old-one");
    assert_true(json_is_true(json_object_get(wf, "archived")));
    json_decref(wf);
    char path[256];
    snprintf(path, sizeof path, "/workflows/old-one/executions/%s", id);
    json_t *status = get_json(200, path);
    assert_string_equal(json_str(status, "status"), "completed");
    json_decref(status);
    free(id);
    /* not executable, unlike an unknown one (404) */
    expect_status("POST", "/workflows/old-one/execute", "{}", 409,
                  "{\"detail\":\"Workflow old-one is archived\"}");
    expect_status("POST", "/workflows/no-such/execute", "{}", 404,
                  "{\"detail\":\"Workflow no-such not found\"}");
    /* hidden from the listing unless asked for */
    json_t *list = get_json(200, "/workflows?page_size=100");
    size_t i;
    json_t *item;
    json_int_t visible = json_integer_value(json_object_get(list, "total"));
    json_array_foreach(json_object_get(list, "workflows"), i, item)
        assert_string_not_equal(json_str(item, "id"), "old-one");
    json_decref(list);
    list = get_json(200, "/workflows?include_archived=true&page_size=100");
    assert_int_equal(json_integer_value(json_object_get(list, "total")), visible + 1);
    bool found = false;
    json_array_foreach(json_object_get(list, "workflows"), i, item)
        if (!strcmp(json_str(item, "id"), "old-one"))
            found = json_is_true(json_object_get(item, "archived"));
    assert_true(found);
    json_decref(list);
    /* its id stays taken */
    json_t *taken = upload("?id=old-one", "text/yaml", SIMPLE_YAML, 409);
    json_decref(taken);
}

static void test_phase_update_while_paused(void **state)
{
    (void)state;
    json_t *wf = teststack_create_workflow(
        stack, "{\"id\":\"editable\",\"name\":\"Editable\",\"phases\":["
               "{\"phase_id\":\"p1\",\"name\":\"One\",\"order\":1,"
               " \"prompt_template\":\"#mock sleep 1000\\nfirst\"},"
               "{\"phase_id\":\"p2\",\"name\":\"Two\",\"order\":2,"
               " \"prompt_template\":\"OLD second for $ARGUMENTS\",\"model\":\"m-old\"}]}");
    json_decref(wf);
    char *id = teststack_execute(stack, "editable", "{\"task\":\"T1\"}");
    assert_non_null(id);
    execution_wait_phase(stack, id, "p1", "running", 10000);
    char path[256];
    snprintf(path, sizeof path, "/executions/%s/pause", id);
    http_response_t resp;
    request(&resp, "POST", path, NULL, NULL);
    assert_int_equal(resp.status, 200);
    http_response_clear(&resp);
    execution_wait_phase(stack, id, "p1", "completed", 10000);
    snprintf(path, sizeof path, "/executions/%s/state", id);
    json_t *state_json = get_json(200, path);
    assert_string_equal(json_str(state_json, "state"), "paused");
    json_decref(state_json);

    /* Between phases, the workflow's next phase is edited. */
    request(&resp, "PUT", "/workflows/editable/phases/p2",
            "{\"prompt_template\":\"NEW second for $ARGUMENTS\",\"model\":\"m-new\","
            "\"timeout_seconds\":30,\"allowed_tools\":[\"Read\"]}",
            NULL);
    expect_response(&resp, 200,
                    "{\"workflow_id\":\"editable\",\"phase_id\":\"p2\",\"version\":2,"
                    "\"status\":\"updated\"}");
    http_response_clear(&resp);
    wf = workflow("editable");
    assert_int_equal(json_integer_value(json_object_get(wf, "version")), 2);
    json_t *p2 = json_array_get(json_object_get(wf, "phases"), 1);
    assert_string_equal(json_str(p2, "prompt_template"), "NEW second for $ARGUMENTS");
    assert_string_equal(json_str(p2, "model"), "m-new");
    json_decref(wf);

    snprintf(path, sizeof path, "/executions/%s/resume", id);
    request(&resp, "POST", path, NULL, NULL);
    assert_int_equal(resp.status, 200);
    http_response_clear(&resp);
    json_t *final = teststack_wait_terminal(stack, "editable", id, 20000);
    assert_string_equal(json_str(final, "status"), "completed");
    json_decref(final);
    char *out = execution_phase_output(stack, id, "p2");
    print_message("p2 of the paused execution: %s\n", out);
    assert_non_null(strstr(out, "OLD second for T1"));
    assert_null(strstr(out, "NEW"));
    free(out);
    free(id);

    /* An execution started after the edit runs the new prompt. */
    id = teststack_execute(stack, "editable", "{\"task\":\"T2\"}");
    assert_non_null(id);
    final = teststack_wait_terminal(stack, "editable", id, 20000);
    assert_string_equal(json_str(final, "status"), "completed");
    json_decref(final);
    out = execution_phase_output(stack, id, "p2");
    assert_non_null(strstr(out, "NEW second for T2"));
    free(out);
    free(id);

    expect_status("PUT", "/workflows/editable/phases/p9", "{\"prompt_template\":\"x\"}", 404,
                  "{\"detail\":\"Phase p9 not found in workflow editable\"}");
    expect_status("PUT", "/workflows/nope/phases/p1", "{\"prompt_template\":\"x\"}", 404,
                  "{\"detail\":\"Workflow nope not found\"}");
    expect_status("PUT", "/workflows/editable/phases/p2", "{\"prompt_template\":\"\"}", 422,
                  "{\"detail\":[{\"loc\":[\"body\",\"prompt_template\"],\"msg\":\"String should "
                  "have at least 1 character\",\"type\":\"string_too_short\"}]}");
    expect_status("PUT", "/workflows/editable/phases/p2", "{\"model\":\"x\"}", 422,
                  "{\"detail\":[{\"loc\":[\"body\",\"prompt_template\"],\"msg\":\"Field "
                  "required\",\"type\":\"missing\"}]}");
}

static void test_list_filters(void **state)
{
    (void)state;
    const char *types[] = {"research", "research", "review"};
    for (int i = 0; i < 3; i++) {
        char yaml[256], query[64];
        snprintf(yaml, sizeof yaml,
                 "name: Listed %d\ntype: %s\nphases: [{id: a, name: A, order: 1, "
                 "prompt_template: x}]\n",
                 i, i == 2 ? "deployment" : types[i]);
        snprintf(query, sizeof query, "?id=listed-%d", i);
        json_decref(upload(query, "text/yaml", yaml, 201));
    }
    json_t *list = get_json(200, "/workflows?workflow_type=research&page_size=1");
    json_int_t research = json_integer_value(json_object_get(list, "total"));
    assert_true(research >= 2);
    assert_int_equal(json_array_size(json_object_get(list, "workflows")), 1);
    assert_string_equal(json_str(json_array_get(json_object_get(list, "workflows"), 0),
                                 "workflow_type"),
                        "research");
    json_decref(list);
    char path[128];
    snprintf(path, sizeof path, "/workflows?workflow_type=research&page=%lld&page_size=1",
             (long long)research);
    list = get_json(200, path);
    assert_int_equal(json_array_size(json_object_get(list, "workflows")), 1);
    json_decref(list);
    snprintf(path, sizeof path, "/workflows?workflow_type=research&page=%lld&page_size=1",
             (long long)research + 1);
    list = get_json(200, path);
    assert_int_equal(json_array_size(json_object_get(list, "workflows")), 0);
    assert_int_equal(json_integer_value(json_object_get(list, "total")), research);
    json_decref(list);
    list = get_json(422, "/workflows?workflow_type=nonsense&include_archived=perhaps");
    char *text = json_dumps(list, JSON_COMPACT);
    assert_string_equal(text, "{\"detail\":[{\"loc\":[\"query\",\"workflow_type\"],\"msg\":"
                              "\"Input should be 'research', 'planning', 'implementation', "
                              "'review', 'deployment' or 'custom'\",\"type\":\"enum\"},{\"loc\":"
                              "[\"query\",\"include_archived\"],\"msg\":\"Input should be a valid "
                              "boolean, unable to interpret input\",\"type\":\"bool_parsing\"}]}");
    free(text);
    json_decref(list);
}

/* ---- preload (own stacks) ---- */

static json_int_t version_of(teststack_t *s, const char *id)
{
    http_response_t resp;
    char url[256];
    snprintf(url, sizeof url, "%s/workflows/%s", teststack_url(s), id);
    assert_int_equal(http_request("GET", url, NULL, NULL, &resp), 0);
    if (resp.status != 200)
        fail_msg("GET %s: %ld %s", url, resp.status, resp.body ? resp.body : "");
    json_int_t v = json_integer_value(json_object_get(resp.json, "version"));
    http_response_clear(&resp);
    return v;
}

static void restart_broker(teststack_t *s)
{
    assert_int_equal(teststack_stop_broker(s, SIGTERM, 10000), 0);
    assert_int_equal(teststack_start_broker(s), 0);
    if (teststack_wait_health(s, 1, 20000) != 0) {
        teststack_dump_logs(s);
        fail_msg("the broker did not come back");
    }
}

static bool broker_log_has(teststack_t *s, const char *needle)
{
    return teststack_log_has(s, "broker", needle);
}

static const char *const shipped[] = {"research", "implement-and-review", "pr-review"};

/* The preload tests' own stack and workflow copy, cleaned up by teardown even when a
 * check fails half-way. */
static teststack_t *own_stack;
static char own_dir[64];

static int teardown_own(void **state)
{
    (void)state;
    teststack_destroy(&own_stack);
    if (own_dir[0]) {
        char cmd[128];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", own_dir);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", own_dir);
        own_dir[0] = '\0';
    }
    return 0;
}

/* The shipped examples load from the source tree, one of them runs to the end with the
 * mock agent, and a restart with the same directory changes nothing. */
static void test_preload_shipped_examples(void **state)
{
    (void)state;
    teststack_options_t opts = {.workers = 1, .slots = 4,
                                .broker_args = "--workflows " SYN_SOURCE_DIR "/workflows"};
    own_stack = teststack_start(&opts);
    teststack_t *s = own_stack;
    assert_non_null(s);
    for (size_t i = 0; i < 3; i++)
        assert_int_equal(version_of(s, shipped[i]), 1);
    assert_true(broker_log_has(s, "workflows loaded dir=" SYN_SOURCE_DIR "/workflows created=3 "
                                  "updated=0 unchanged=0 archived=0 failed=0"));

    /* the package: prompt files and front matter made it in */
    char url[256];
    snprintf(url, sizeof url, "%s/workflows/implement-and-review", teststack_url(s));
    http_response_t resp;
    assert_int_equal(http_request("GET", url, NULL, NULL, &resp), 0);
    json_t *plan = json_array_get(json_object_get(resp.json, "phases"), 0);
    assert_non_null(strstr(json_str(plan, "prompt_template"), "You are planning a change"));
    assert_string_equal(json_str(plan, "model"), "sonnet");
    json_t *review = json_array_get(json_object_get(resp.json, "phases"), 2);
    assert_string_equal(json_str(review, "model"), "opus"); /* the YAML wins */
    http_response_clear(&resp);

    /* run it end to end */
    snprintf(url, sizeof url, "%s/workflows/implement-and-review/execute", teststack_url(s));
    assert_int_equal(http_request("POST", url,
                                  "{\"task\":\"Add a --dry-run flag\",\"repos\":[\"acme/app\"]}",
                                  NULL, &resp),
                     0);
    assert_int_equal(resp.status, 200);
    char *id = strdup(json_str(resp.json, "execution_id"));
    http_response_clear(&resp);
    json_t *final = teststack_wait_terminal(s, "implement-and-review", id, 30000);
    if (!final || strcmp(json_str(final, "status"), "completed") != 0) {
        teststack_dump_logs(s);
        fail_msg("the shipped example did not complete");
    }
    assert_int_equal(json_integer_value(json_object_get(final, "completed_phases")), 3);
    json_decref(final);
    snprintf(url, sizeof url, "%s/executions/%s/phases/review/output", teststack_url(s), id);
    assert_int_equal(http_request("GET", url, NULL, NULL, &resp), 0);
    assert_non_null(strstr(resp.body, "Review the change just made for: Add a --dry-run flag"));
    assert_non_null(strstr(resp.body, "mock output for phase plan")); /* {{plan}} rendered */
    http_response_clear(&resp);
    free(id);

    /* same files again: nothing changes */
    restart_broker(s);
    for (size_t i = 0; i < 3; i++)
        assert_int_equal(version_of(s, shipped[i]), 1);
    assert_int_equal(teststack_db_count(s, "SELECT 1 FROM workflow_versions", NULL), 3);
    assert_true(broker_log_has(s, "created=0 updated=0 unchanged=3 archived=0 failed=0"));
}

static void run_cmd(const char *fmt, const char *a, const char *b)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, fmt, a, b);
    assert_int_equal(system(cmd), 0);
}

/* A temp copy of the examples: a changed file becomes a new version (that one only),
 * a bad file is skipped while the rest load, an archived workflow stays archived. */
static void test_preload_changes(void **state)
{
    (void)state;
    snprintf(own_dir, sizeof own_dir, "/tmp/syn-test-workflows-XXXXXX");
    assert_non_null(mkdtemp(own_dir));
    const char *dir = own_dir;
    run_cmd("cp -r '%s/.' '%s'", SYN_SOURCE_DIR "/workflows", dir);
    char args[512];
    snprintf(args, sizeof args, "--workflows %s", dir);
    teststack_options_t opts = {.workers = 1, .slots = 2, .broker_args = args};
    own_stack = teststack_start(&opts);
    teststack_t *s = own_stack;
    assert_non_null(s);
    for (size_t i = 0; i < 3; i++)
        assert_int_equal(version_of(s, shipped[i]), 1);

    /* change one prompt file of the package and one YAML file's comment only */
    char path[512];
    snprintf(path, sizeof path, "%s/implement-and-review/prompts/review.md", dir);
    FILE *out = fopen(path, "a");
    assert_non_null(out);
    fputs("\nAlso check the changelog.\n", out);
    fclose(out);
    snprintf(path, sizeof path, "%s/research.yaml", dir);
    out = fopen(path, "a");
    assert_non_null(out);
    fputs("# a comment changes nothing\n", out);
    fclose(out);
    /* and add a broken file */
    snprintf(path, sizeof path, "%s/broken.yaml", dir);
    out = fopen(path, "w");
    assert_non_null(out);
    fputs("name: Broken\ntype: reserch\nphases:\n  - {id: a, name: A, order: 1}\n", out);
    fclose(out);

    restart_broker(s);
    assert_int_equal(version_of(s, "implement-and-review"), 2);
    assert_int_equal(version_of(s, "research"), 1);
    assert_int_equal(version_of(s, "pr-review"), 1);
    snprintf(path, sizeof path, "%s/workflows/implement-and-review", teststack_url(s));
    http_response_t resp;
    assert_int_equal(http_request("GET", path, NULL, NULL, &resp), 0);
    json_t *review = json_array_get(json_object_get(resp.json, "phases"), 2);
    assert_non_null(strstr(json_str(review, "prompt_template"), "Also check the changelog."));
    http_response_clear(&resp);
    snprintf(path, sizeof path, "%s/workflows/broken", teststack_url(s));
    assert_int_equal(http_request("GET", path, NULL, NULL, &resp), 0);
    assert_int_equal(resp.status, 404);
    http_response_clear(&resp);
    char needle[600];
    snprintf(needle, sizeof needle, "workflow file skipped path=%s/broken.yaml", dir);
    assert_true(broker_log_has(s, needle));
    assert_true(broker_log_has(s, "broken.yaml:2:7: type: 'reserch' is not one of"));
    assert_true(broker_log_has(s, "created=0 updated=1 unchanged=2 archived=0 failed=1"));

    /* archived: the file no longer brings it back or changes it */
    snprintf(path, sizeof path, "%s/workflows/pr-review", teststack_url(s));
    assert_int_equal(http_request("DELETE", path, NULL, NULL, &resp), 0);
    assert_int_equal(resp.status, 200);
    http_response_clear(&resp);
    run_cmd("sed -i 's/^name: Pull request review$/name: Renamed after archiving/' "
            "'%s/pr-review.yaml'%s", dir, "");
    restart_broker(s);
    assert_int_equal(version_of(s, "pr-review"), 1);
    snprintf(path, sizeof path, "%s/workflows/pr-review", teststack_url(s));
    assert_int_equal(http_request("GET", path, NULL, NULL, &resp), 0);
    assert_string_equal(json_str(resp.json, "name"), "Pull request review");
    assert_true(json_is_true(json_object_get(resp.json, "archived")));
    http_response_clear(&resp);
    assert_true(
        broker_log_has(s, "workflow file skipped: the workflow is archived workflow=pr-review"));
}

int main(void)
{
    const struct CMUnitTest shared[] = {
        cmocka_unit_test(test_from_yaml_media_types),
        cmocka_unit_test(test_from_yaml_agrees_with_post_workflows),
        cmocka_unit_test(test_from_yaml_errors),
        cmocka_unit_test(test_boundaries_agree_over_http),
        cmocka_unit_test(test_validate_endpoint),
        cmocka_unit_test(test_export_round_trip),
        cmocka_unit_test(test_archive_rules),
        cmocka_unit_test(test_phase_update_while_paused),
        cmocka_unit_test(test_list_filters),
    };
    const struct CMUnitTest own_stacks[] = {
        cmocka_unit_test_teardown(test_preload_shipped_examples, teardown_own),
        cmocka_unit_test_teardown(test_preload_changes, teardown_own),
    };
    int failed = cmocka_run_group_tests_name("templates", shared, setup, teardown);
    failed += cmocka_run_group_tests_name("templates_preload", own_stacks, NULL, NULL);
    return failed;
}
