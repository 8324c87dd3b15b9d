/* Tests for proto/msg.c: the message object, the schema of each type and the
 * envelope checks, refused on both sides (encode and decode). The bytes have their
 * own files: test_msg_encode.c, test_msg_decode.c; the sockets: test_zmq_io.c. */
#include "tests/support/msg_wire.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <msgpack.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>


/* --- API basics ---------------------------------------------------------- */

static void test_api_basics(void **state)
{
    (void) state;
    static const char *names[] = {NULL, "request", "reply", "ready", "heartbeat", "assign",
                                  "cancel", "progress", "result", "result_ack", "disconnect",
                                  "event", "inject", "artifact", "artifact_ack",
                                  "artifact_get", "artifact_data"};
    for (int t = SYN_MSG_REQUEST; t <= SYN_MSG_ARTIFACT_DATA; t++)
        assert_string_equal(syn_msg_type_name((syn_msg_type_t) t), names[t]);
    assert_null(syn_msg_type_name((syn_msg_type_t) 0));
    assert_null(syn_msg_type_name((syn_msg_type_t) 99));
    assert_null(syn_msg_type_name((syn_msg_type_t) -1));

    assert_null(syn_msg_new((syn_msg_type_t) 0));
    assert_null(syn_msg_new((syn_msg_type_t) (SYN_MSG_ARTIFACT_DATA + 1)));
    assert_null(syn_msg_new_with(SYN_MSG_HEARTBEAT, json_array()));
    assert_null(syn_msg_new_with(SYN_MSG_HEARTBEAT, NULL));

    syn_msg_t *msg = syn_msg_new(SYN_MSG_CANCEL);
    assert_non_null(msg);
    assert_int_equal(syn_msg_type(msg), SYN_MSG_CANCEL);
    assert_true(json_is_object(syn_msg_fields(msg)));
    assert_int_equal(json_object_size(syn_msg_fields(msg)), 0);
    char err[256];
    assert_int_equal(syn_msg_validate(msg, err, sizeof err), -1);
    assert_non_null(strstr(err, "missing field 'execution_id'"));
    json_object_set_new(syn_msg_fields(msg), "execution_id", json_string("exec-1"));
    json_object_set_new(syn_msg_fields(msg), "phase_id", json_string("plan"));
    json_object_set_new(syn_msg_fields(msg), "attempt", json_integer(1));
    assert_int_equal(syn_msg_validate(msg, err, sizeof err), 0);
    round_trip(msg);
    syn_msg_destroy(&msg);
    assert_null(msg);
    syn_msg_destroy(&msg);
    syn_msg_destroy(NULL);

    /* Validation and decoding with no room for a reason still work. */
    msg = syn_msg_new(SYN_MSG_RESULT);
    assert_int_equal(syn_msg_validate(msg, NULL, 0), -1);
    syn_msg_destroy(&msg);
    assert_null(syn_msg_decode("\x91\x01", 2, NULL, 0));
    char tiny[8];
    assert_null(syn_msg_decode("\x81\xa1x\xc1", 4, tiny, sizeof tiny));
    assert_string_equal(tiny, "unsuppo");
}

/* --- schema rejections --------------------------------------------------- */

static void test_schema_wrong_types(void **state)
{
    (void) state;
    /* request */
    expect_schema_error(SYN_MSG_REQUEST, "{\"id\":-1,\"op\":\"x\",\"args\":{}}",
                        "field 'id' must be an unsigned integer");
    expect_schema_error(SYN_MSG_REQUEST, "{\"id\":1.0,\"op\":\"x\",\"args\":{}}",
                        "field 'id' must be an unsigned integer, got a float");
    expect_schema_error(SYN_MSG_REQUEST, "{\"id\":1,\"op\":7,\"args\":{}}",
                        "field 'op' must be a string, got an integer");
    expect_schema_error(SYN_MSG_REQUEST, "{\"id\":1,\"op\":\"x\",\"args\":[]}",
                        "field 'args' must be a map, got an array");
    expect_schema_error(SYN_MSG_REQUEST, "{\"id\":1,\"op\":\"x\",\"args\":null}",
                        "field 'args' must be a map, got nil");
    /* reply */
    expect_schema_error(SYN_MSG_REPLY, "{\"id\":1,\"status\":99,\"body\":null}",
                        "field 'status' must be within 100..599, got 99");
    expect_schema_error(SYN_MSG_REPLY, "{\"id\":1,\"status\":600,\"body\":null}",
                        "field 'status' must be within 100..599");
    expect_schema_error(SYN_MSG_REPLY, "{\"id\":1,\"status\":\"200\",\"body\":null}",
                        "field 'status' must be an unsigned integer, got a string");
    expect_schema_error(SYN_MSG_REPLY, "{\"id\":true,\"status\":200,\"body\":null}",
                        "field 'id' must be an unsigned integer, got a boolean");
    /* ready */
    expect_schema_error(SYN_MSG_READY,
                        "{\"worker\":\"w\",\"slots\":1,\"providers\":[],\"running\":[],"
                        "\"draining\":1}",
                        "field 'draining' must be a boolean, got an integer");
    expect_schema_error(SYN_MSG_READY,
                        "{\"worker\":\"w\",\"slots\":0,\"providers\":[],\"running\":[]}",
                        "field 'slots' must be within 1..1024");
    expect_schema_error(SYN_MSG_READY,
                        "{\"worker\":\"w\",\"slots\":1025,\"providers\":[],\"running\":[]}",
                        "field 'slots' must be within 1..1024");
    expect_schema_error(SYN_MSG_READY,
                        "{\"worker\":\"w\",\"slots\":1,\"providers\":[],\"running\":[],"
                        "\"prefetch\":1025}",
                        "field 'prefetch' must be within 0..1024");
    expect_schema_error(SYN_MSG_READY,
                        "{\"worker\":null,\"slots\":1,\"providers\":[],\"running\":[]}",
                        "field 'worker' must be a string, got nil");
    expect_schema_error(SYN_MSG_READY,
                        "{\"worker\":\"w\",\"slots\":1,\"providers\":\"mock\",\"running\":[]}",
                        "field 'providers' must be an array of strings");
    expect_schema_error(SYN_MSG_READY,
                        "{\"worker\":\"w\",\"slots\":1,\"providers\":[\"a\",1],\"running\":[]}",
                        "field 'providers'[1] must be a string, got an integer");
    expect_schema_error(SYN_MSG_READY,
                        "{\"worker\":\"w\",\"slots\":1,\"providers\":[],\"running\":{}}",
                        "field 'running' must be an array of maps");
    expect_schema_error(SYN_MSG_READY,
                        "{\"worker\":\"w\",\"slots\":1,\"providers\":[],\"running\":[\"e\"]}",
                        "field 'running'[0] must be a map, got a string");
    expect_schema_error(SYN_MSG_READY,
                        "{\"worker\":\"w\",\"slots\":1,\"providers\":[],\"running\":["
                        "{\"execution_id\":\"e\",\"phase_id\":\"p\",\"attempt\":1},"
                        "{\"execution_id\":\"e\",\"phase_id\":\"p\"}]}",
                        "field 'running'[1]: missing field 'attempt'");
    expect_schema_error(SYN_MSG_READY,
                        "{\"worker\":\"w\",\"slots\":1,\"providers\":[],\"running\":["
                        "{\"execution_id\":\"e\",\"phase_id\":\"p\",\"attempt\":-1}]}",
                        "field 'attempt' must be an unsigned integer");
    expect_schema_error(SYN_MSG_READY,
                        "{\"worker\":\"w\",\"slots\":1,\"providers\":[],\"running\":["
                        "{\"execution_id\":\"e\",\"phase_id\":\"p\",\"attempt\":1,\"x\":1}]}",
                        "field 'running'[0]: unknown field 'x'");
    /* heartbeat, disconnect */
    expect_schema_error(SYN_MSG_HEARTBEAT, "{\"x\":1}", "heartbeat: unknown field 'x'");
    expect_schema_error(SYN_MSG_DISCONNECT, "{\"reason\":1}",
                        "disconnect: field 'reason' must be a string, got an integer");
    expect_schema_error(SYN_MSG_DISCONNECT, "{\"reason\":null}",
                        "disconnect: field 'reason' must be a string, got nil");
    expect_schema_error(SYN_MSG_DISCONNECT, "{\"why\":\"bye\"}",
                        "disconnect: unknown field 'why'");
    /* assign */
    expect_schema_error(SYN_MSG_ASSIGN,
                        "{\"execution_id\":\"e\",\"workflow_id\":\"w\",\"phase_id\":\"p\","
                        "\"attempt\":1,\"prompt\":null,\"model\":null,\"timeout_ms\":1,"
                        "\"provider\":null}",
                        "assign: field 'prompt' must be a string, got nil");
    expect_schema_error(SYN_MSG_ASSIGN,
                        "{\"execution_id\":\"e\",\"workflow_id\":\"w\",\"phase_id\":\"p\","
                        "\"attempt\":1,\"prompt\":\"\",\"model\":3,\"timeout_ms\":1,"
                        "\"provider\":null}",
                        "field 'model' must be a string or nil, got an integer");
    expect_schema_error(SYN_MSG_ASSIGN,
                        "{\"execution_id\":\"e\",\"workflow_id\":\"w\",\"phase_id\":\"p\","
                        "\"attempt\":1,\"prompt\":\"\",\"model\":null,\"timeout_ms\":-5,"
                        "\"provider\":null}",
                        "field 'timeout_ms' must be an unsigned integer");
    expect_schema_error(SYN_MSG_ASSIGN,
                        "{\"execution_id\":\"e\",\"workflow_id\":\"w\",\"phase_id\":\"p\","
                        "\"attempt\":1,\"prompt\":\"\",\"model\":null,\"timeout_ms\":1,"
                        "\"provider\":[]}",
                        "field 'provider' must be a string or nil, got an array");
    /* cancel, result_ack */
    expect_schema_error(SYN_MSG_CANCEL,
                        "{\"execution_id\":\"e\",\"phase_id\":\"p\",\"attempt\":\"1\"}",
                        "cancel: field 'attempt' must be an unsigned integer, got a string");
    expect_schema_error(SYN_MSG_RESULT_ACK,
                        "{\"execution_id\":null,\"phase_id\":\"p\",\"attempt\":1}",
                        "result_ack: field 'execution_id' must be a string, got nil");
    /* progress */
    expect_schema_error(SYN_MSG_PROGRESS,
                        "{\"execution_id\":\"e\",\"phase_id\":\"p\",\"attempt\":1,"
                        "\"kind\":\"tokens\",\"data\":\"\"}",
                        "field 'kind' has unknown value 'tokens'");
    expect_schema_error(SYN_MSG_PROGRESS,
                        "{\"execution_id\":\"e\",\"phase_id\":\"p\",\"attempt\":1,"
                        "\"kind\":\"output\",\"data\":{}}",
                        "field 'data' must be a string, got a map");
    /* result */
    expect_schema_error(SYN_MSG_RESULT,
                        "{\"execution_id\":\"e\",\"phase_id\":\"p\",\"attempt\":1,"
                        "\"status\":\"running\",\"output\":\"\",\"error\":null,\"exit_code\":null}",
                        "field 'status' has unknown value 'running'");
    expect_schema_error(SYN_MSG_RESULT,
                        "{\"execution_id\":\"e\",\"phase_id\":\"p\",\"attempt\":1,"
                        "\"status\":\"failed\",\"output\":\"\",\"error\":null,\"exit_code\":1.5}",
                        "field 'exit_code' must be an integer or nil, got a float");
    expect_schema_error(SYN_MSG_RESULT,
                        "{\"execution_id\":\"e\",\"phase_id\":\"p\",\"attempt\":1,"
                        "\"status\":\"failed\",\"output\":null,\"error\":null,\"exit_code\":1}",
                        "field 'output' must be a string, got nil");
    expect_schema_error(SYN_MSG_RESULT,
                        "{\"execution_id\":\"e\",\"phase_id\":\"p\",\"attempt\":1,"
                        "\"status\":\"failed\",\"output\":\"\",\"error\":false,\"exit_code\":1}",
                        "field 'error' must be a string or nil, got a boolean");
    /* assign's listing of earlier phases' files, artifact_get, artifact_data */
    expect_schema_error(SYN_MSG_ASSIGN,
                        "{\"execution_id\":\"e\",\"workflow_id\":\"w\",\"phase_id\":\"p\","
                        "\"attempt\":1,\"prompt\":\"x\",\"model\":null,\"timeout_ms\":0,"
                        "\"provider\":null,\"artifacts\":[{\"phase_id\":\"a\",\"path\":\"f\","
                        "\"size\":-1,\"sha256\":\"x\"}]}",
                        "field 'artifacts'[0]: field 'size' must be an unsigned integer");
    expect_schema_error(SYN_MSG_ASSIGN,
                        "{\"execution_id\":\"e\",\"workflow_id\":\"w\",\"phase_id\":\"p\","
                        "\"attempt\":1,\"prompt\":\"x\",\"model\":null,\"timeout_ms\":0,"
                        "\"provider\":null,\"artifacts\":[{\"phase_id\":\"a\",\"path\":\"f\","
                        "\"size\":1}]}",
                        "field 'artifacts'[0]: missing field 'sha256'");
    expect_schema_error(SYN_MSG_ASSIGN,
                        "{\"execution_id\":\"e\",\"workflow_id\":\"w\",\"phase_id\":\"p\","
                        "\"attempt\":1,\"prompt\":\"x\",\"model\":null,\"timeout_ms\":0,"
                        "\"provider\":null,\"output_artifacts\":[\"a\",null]}",
                        "field 'output_artifacts'[1] must be a string, got nil");
    expect_schema_error(SYN_MSG_ARTIFACT_GET,
                        "{\"execution_id\":\"e\",\"phase_id\":\"p\",\"attempt\":1,"
                        "\"from_phase\":\"a\",\"path\":\"f\",\"offset\":-5}",
                        "field 'offset' must be an unsigned integer");
    expect_schema_error(SYN_MSG_ARTIFACT_GET,
                        "{\"execution_id\":\"e\",\"phase_id\":\"p\",\"attempt\":1,"
                        "\"from_phase\":null,\"path\":\"f\",\"offset\":0}",
                        "field 'from_phase' must be a string, got nil");
    expect_schema_error(SYN_MSG_ARTIFACT_DATA,
                        "{\"execution_id\":\"e\",\"phase_id\":\"p\",\"attempt\":1,"
                        "\"from_phase\":\"a\",\"path\":\"f\",\"offset\":0,\"size\":1,"
                        "\"sha256\":\"x\",\"data\":null}",
                        "field 'data' must be a string, got nil");
    expect_schema_error(SYN_MSG_ARTIFACT_DATA,
                        "{\"execution_id\":\"e\",\"phase_id\":\"p\",\"attempt\":1,"
                        "\"from_phase\":\"a\",\"path\":\"f\",\"offset\":0,\"size\":1,"
                        "\"sha256\":\"x\",\"data\":\"\",\"error\":null}",
                        "field 'error' must be a string, got nil");
    /* event */
    expect_schema_error(SYN_MSG_EVENT,
                        "{\"seq\":1,\"time\":1,\"execution_id\":null,\"type\":\"x\","
                        "\"data\":\"d\"}",
                        "field 'data' must be a map, got a string");
    expect_schema_error(SYN_MSG_EVENT,
                        "{\"seq\":1,\"time\":0.5,\"execution_id\":null,\"type\":\"x\",\"data\":{}}",
                        "field 'time' must be an integer, got a float");
    expect_schema_error(SYN_MSG_EVENT,
                        "{\"seq\":-1,\"time\":1,\"execution_id\":null,\"type\":\"x\",\"data\":{}}",
                        "field 'seq' must be an unsigned integer");
    expect_schema_error(SYN_MSG_EVENT,
                        "{\"seq\":1,\"time\":1,\"execution_id\":\"e\",\"type\":null,\"data\":{}}",
                        "field 'type' must be a string, got nil");
}

static void test_schema_missing_and_unknown(void **state)
{
    (void) state;
    /* Dropping any one required field of any sample must be reported as that field
     * missing; dropping an optional one leaves a valid message. */
    static const char *optional[] = {"inputs", "repos", "allowed_tools", "max_tokens",
                                     "detail", "usage", "draining", "prefetch",
                                     "waiting", "reason", "artifacts",
                                     "input_artifacts", "output_artifacts"};
    for (size_t i = 0; i < SAMPLE_COUNT; i++) {
        json_t *fields = parse(samples[i].fields);
        const char *key;
        json_t *value;
        json_object_foreach(fields, key, value) {
            json_t *copy = json_deep_copy(fields);
            json_object_del(copy, key);
            bool is_optional = false;
            for (size_t o = 0; o < sizeof optional / sizeof *optional; o++)
                is_optional |= strcmp(key, optional[o]) == 0;
            /* "status" is required in reply and result, optional only in event. */
            is_optional |= samples[i].type == SYN_MSG_EVENT && strcmp(key, "status") == 0;
            /* "error" is optional only in artifact_data (nil in result). */
            is_optional |= samples[i].type == SYN_MSG_ARTIFACT_DATA && strcmp(key, "error") == 0;
            if (is_optional) {
                syn_msg_t *msg = syn_msg_new_with(samples[i].type, copy);
                round_trip(msg);
                syn_msg_destroy(&msg);
                continue;
            }
            char *text = json_dumps(copy, JSON_COMPACT);
            char expect[128];
            snprintf(expect, sizeof expect, "%s: missing field '%s'",
                     syn_msg_type_name(samples[i].type), key);
            expect_schema_error(samples[i].type, text, expect);
            free(text);
            json_decref(copy);
        }
        /* And an extra field, whatever its value, is unknown. */
        json_t *copy = json_deep_copy(fields);
        json_object_set_new(copy, "extra_field", json_null());
        char *text = json_dumps(copy, JSON_COMPACT);
        expect_schema_error(samples[i].type, text, "unknown field 'extra_field'");
        free(text);
        json_decref(copy);
        json_decref(fields);
    }
}

/* --- envelope rejections ------------------------------------------------- */

static void test_reject_envelope(void **state)
{
    (void) state;
    expect_reject_bytes("", 0, "empty message");
    expect_reject_bytes(NULL, 0, "empty message");
    expect_reject_json("{\"v\":1,\"t\":\"foo\"}", "unknown message type 'foo'");
    expect_reject_json("{\"v\":1,\"t\":\"\"}", "unknown message type ''");
    expect_reject_json("{\"v\":1,\"t\":\"HEARTBEAT\"}", "unknown message type 'HEARTBEAT'");
    expect_reject_json("{\"v\":1,\"t\":3}", "message type 't' must be a string");
    expect_reject_json("{\"v\":1}", "missing message type 't'");
    expect_reject_json("{\"t\":\"heartbeat\"}", "missing protocol version 'v'");
    expect_reject_json("{}", "missing protocol version 'v'");
    expect_reject_json("{\"v\":2,\"t\":\"heartbeat\"}", "unsupported protocol version 2");
    expect_reject_json("{\"v\":0,\"t\":\"heartbeat\"}", "unsupported protocol version 0");
    expect_reject_json("{\"v\":\"1\",\"t\":\"heartbeat\"}", "'v' must be an integer");
    expect_reject_json("{\"v\":1.0,\"t\":\"heartbeat\"}", "'v' must be an integer");
    expect_accept_json("{\"v\":1,\"t\":\"heartbeat\"}");

    /* Top level must be a map. */
    expect_reject_json("[1,\"heartbeat\"]", "top level is array, not a map");
    expect_reject_json("\"heartbeat\"", "top level is string, not a map");
    expect_reject_json("7", "top level is integer, not a map");
    expect_reject_json("null", "top level is nil, not a map");
    expect_reject_bytes("\xc4\x00", 2, "unsupported msgpack type bin8 at offset 0");

    /* Trailing bytes after a valid message. */
    for (size_t i = 0; i < SAMPLE_COUNT; i++) {
        char *data;
        size_t size;
        encode_sample(i, &data, &size);
        char *longer = malloc(size + 3);
        memcpy(longer, data, size);
        memcpy(longer + size, "\xc0\xc0\xc0", 3);
        expect_reject_bytes(longer, size + 1, "trailing bytes after message");
        expect_reject_bytes(longer, size + 3, "trailing bytes after message (3 bytes");
        free(longer);
        free(data);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_api_basics),
        cmocka_unit_test(test_schema_wrong_types),
        cmocka_unit_test(test_schema_missing_and_unknown),
        cmocka_unit_test(test_reject_envelope),
    };
    return cmocka_run_group_tests_name("msg", tests, NULL, NULL);
}
