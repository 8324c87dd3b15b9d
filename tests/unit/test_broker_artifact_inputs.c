/* What a later phase gets of earlier artifacts (broker/artifact_inputs.c): its
 * ASSIGN lists them, and ARTIFACT_GET is answered a chunk at a time, only for
 * the current attempt and only with its own execution's files. */
#include "tests/support/broker_fixture.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

/* SHA-256 of "hello". */
#define HELLO_SHA "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"

/* Runs p1 of a two-phase execution to completion, leaving sub/a.txt ("hello")
 * as its artifact; the ASSIGN of p2 that follows. */
static json_t *first_phase_leaves_a_file(fx_t *f, char *id, size_t idlen)
{
    fx_workflow(f, "wf-art", 2, 60);
    broker_execution_t *exec = fx_start(f, "wf-art");
    snprintf(id, idlen, "%s", exec->id);
    fx_ready(f, "W1", 2, NULL);
    json_t *a1 = fx_take(f, "assign", "W1");
    assert_non_null(a1);
    /* the first phase has nothing earlier to get */
    assert_null(json_object_get(a1, "artifacts"));
    fx_worker_send(f, "W1", SYN_MSG_ARTIFACT,
                   fx_attempt_fields(a1, json_pack("{s:i, s:i, s:s, s:i, s:s, s:i, s:s}", "index",
                                                   0, "count", 1, "path", "sub/a.txt", "size", 5,
                                                   "sha256", HELLO_SHA, "offset", 0, "data",
                                                   "aGVsbG8=")));
    json_t *ack = fx_take(f, "artifact_ack", "W1");
    assert_non_null(ack);
    assert_int_equal(fx_num(ack, "index"), 1);
    json_decref(ack);
    json_t *fields = fx_attempt_fields(
        a1, json_pack("{s:s, s:s, s:n, s:i, s:[{s:s, s:i, s:s}]}", "status", "completed",
                      "output", "done", "error", "exit_code", 0, "artifacts", "path",
                      "sub/a.txt", "size", 5, "sha256", HELLO_SHA));
    fx_worker_send(f, "W1", SYN_MSG_RESULT, fields);
    json_decref(a1);
    json_t *a2 = fx_take(f, "assign", "W1");
    assert_non_null(a2);
    assert_string_equal(fx_str(a2, "phase_id"), "p2");
    return a2;
}

static json_t *get(fx_t *f, const json_t *assign, json_int_t attempt, const char *from,
                   const char *path, json_int_t offset)
{
    json_t *fields = fx_attempt_fields(
        assign, json_pack("{s:s, s:s, s:I}", "from_phase", from, "path", path, "offset", offset));
    json_object_set_new(fields, "attempt", json_integer(attempt));
    fx_worker_send(f, "W1", SYN_MSG_ARTIFACT_GET, fields);
    json_t *data = fx_take(f, "artifact_data", "W1");
    assert_non_null(data);
    assert_string_equal(fx_str(data, "from_phase"), from);
    assert_string_equal(fx_str(data, "path"), path);
    assert_int_equal(fx_num(data, "offset"), offset);
    return data;
}

static void test_assign_lists_them_and_a_get_serves_them(void **state)
{
    fx_t *f = *state;
    char id[64];
    json_t *a2 = first_phase_leaves_a_file(f, id, sizeof id);
    json_t *list = json_object_get(a2, "artifacts");
    assert_int_equal(json_array_size(list), 1);
    json_t *entry = json_array_get(list, 0);
    assert_string_equal(fx_str(entry, "phase_id"), "p1");
    assert_string_equal(fx_str(entry, "path"), "sub/a.txt");
    assert_int_equal(fx_num(entry, "size"), 5);
    assert_string_equal(fx_str(entry, "sha256"), HELLO_SHA);
    assert_int_equal(json_object_size(entry), 4);
    /* no declared names, no fields for them */
    assert_null(json_object_get(a2, "input_artifacts"));
    assert_null(json_object_get(a2, "output_artifacts"));
    json_int_t attempt = fx_num(a2, "attempt");

    json_t *data = get(f, a2, attempt, "p1", "sub/a.txt", 0);
    assert_string_equal(fx_str(data, "data"), "aGVsbG8=");
    assert_int_equal(fx_num(data, "size"), 5);
    assert_string_equal(fx_str(data, "sha256"), HELLO_SHA);
    assert_null(json_object_get(data, "error"));
    json_decref(data);
    data = get(f, a2, attempt, "p1", "sub/a.txt", 3); /* "lo" */
    assert_string_equal(fx_str(data, "data"), "bG8=");
    json_decref(data);
    data = get(f, a2, attempt, "p1", "sub/a.txt", 5); /* the end: nothing */
    assert_string_equal(fx_str(data, "data"), "");
    assert_null(json_object_get(data, "error"));
    json_decref(data);

    data = get(f, a2, attempt, "p1", "nope.txt", 0);
    char want[160];
    snprintf(want, sizeof want, "Artifact nope.txt of phase p1 not found in execution %s", id);
    assert_string_equal(fx_str(data, "error"), want);
    assert_string_equal(fx_str(data, "data"), "");
    json_decref(data);
    data = get(f, a2, attempt, "p1", "sub/a.txt", 6);
    assert_non_null(strstr(fx_str(data, "error"), "past the end"));
    json_decref(data);
    /* only the current attempt may pull */
    data = get(f, a2, attempt + 1, "p1", "sub/a.txt", 0);
    assert_string_equal(fx_str(data, "error"), "not the current attempt");
    assert_string_equal(fx_str(data, "data"), "");
    json_decref(data);
    json_decref(a2);
}

static void test_another_execution_cannot_read_them(void **state)
{
    fx_t *f = *state;
    char id[64];
    json_t *a2 = first_phase_leaves_a_file(f, id, sizeof id);
    /* a second execution's p1 is current, but asks for the first one's file */
    broker_execution_t *other = fx_start(f, "wf-art");
    json_t *b1 = fx_take(f, "assign", "W1");
    assert_non_null(b1);
    assert_string_equal(fx_str(b1, "execution_id"), other->id);
    json_t *data = get(f, b1, fx_num(b1, "attempt"), "p1", "sub/a.txt", 0);
    assert_non_null(strstr(fx_str(data, "error"), "not found in execution"));
    json_decref(data);
    json_decref(b1);
    json_decref(a2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        fx_unit_test(test_assign_lists_them_and_a_get_serves_them),
        fx_unit_test(test_another_execution_cannot_read_them),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
