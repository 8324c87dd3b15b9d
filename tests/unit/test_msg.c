/* Tests for proto/msg: round trips of every type, rejection of every malformed
 * class the decoder promises to catch, a deterministic mutation run, and
 * send/recv over real ZeroMQ sockets. */
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
                                  "event", "inject"};
    for (int t = SYN_MSG_REQUEST; t <= SYN_MSG_INJECT; t++)
        assert_string_equal(syn_msg_type_name((syn_msg_type_t) t), names[t]);
    assert_null(syn_msg_type_name((syn_msg_type_t) 0));
    assert_null(syn_msg_type_name((syn_msg_type_t) 99));
    assert_null(syn_msg_type_name((syn_msg_type_t) -1));

    assert_null(syn_msg_new((syn_msg_type_t) 0));
    assert_null(syn_msg_new((syn_msg_type_t) (SYN_MSG_INJECT + 1)));
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

/* --- round trips --------------------------------------------------------- */

static void test_round_trip_every_type(void **state)
{
    (void) state;
    bool seen[SYN_MSG_INJECT + 1] = {false};
    for (size_t i = 0; i < SAMPLE_COUNT; i++) {
        syn_msg_t *msg = make(samples[i].type, samples[i].fields);
        round_trip(msg);
        seen[samples[i].type] = true;
        syn_msg_destroy(&msg);
    }
    for (int t = SYN_MSG_REQUEST; t <= SYN_MSG_INJECT; t++)
        assert_true(seen[t]);
}

static void test_round_trip_wire_shape(void **state)
{
    (void) state;
    /* The exact bytes of a heartbeat: {"v":1,"t":"heartbeat"}. */
    syn_msg_t *msg = syn_msg_new(SYN_MSG_HEARTBEAT);
    char *data;
    size_t size;
    char err[256];
    assert_int_equal(syn_msg_encode(msg, &data, &size, err, sizeof err), 0);
    static const unsigned char expected[] = {0x82, 0xa1, 'v', 0x01, 0xa1, 't', 0xa9, 'h', 'e',
                                             'a', 'r', 't', 'b', 'e', 'a', 't'};
    assert_int_equal(size, sizeof expected);
    assert_memory_equal(data, expected, sizeof expected);
    free(data);
    syn_msg_destroy(&msg);

    /* "v" and "t" may come in any order and after the fields. */
    expect_accept_json("{\"attempt\":1,\"t\":\"cancel\",\"phase_id\":\"p\",\"execution_id\":\"e\","
                       "\"v\":1}");
}

static void test_round_trip_big_and_unicode(void **state)
{
    (void) state;
    char *output = big_unicode_string(1024 * 1024);
    json_t *fields = parse("{\"execution_id\":\"exec-\\u00e9\\u6f22\\ud83d\\ude80\","
                           "\"phase_id\":\"p\","
                           "\"attempt\":7,\"status\":\"completed\",\"error\":null,"
                           "\"exit_code\":0}");
    json_object_set_new(fields, "output", json_string(output));
    assert_non_null(json_object_get(fields, "output"));
    syn_msg_t *msg = syn_msg_new_with(SYN_MSG_RESULT, fields);
    size_t size = round_trip(msg);
    assert_true(size > 1024 * 1024);
    syn_msg_destroy(&msg);

    /* Boundary code points and every string length class (fix, 8, 16, 32). */
    static const char *const texts[] = {"\x7f", "\xc2\x80", "\xdf\xbf", "\xe0\xa0\x80",
                                        "\xed\x9f\xbf", "\xee\x80\x80", "\xef\xbf\xbf",
                                        "\xf0\x90\x80\x80", "\xf4\x8f\xbf\xbf"};
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        msg = make(SYN_MSG_PROGRESS, "{\"execution_id\":\"e\",\"phase_id\":\"p\",\"attempt\":1,"
                                     "\"kind\":\"output\",\"data\":\"\"}");
        json_object_set_new(syn_msg_fields(msg), "data", json_string(texts[i]));
        assert_non_null(json_object_get(syn_msg_fields(msg), "data"));
        round_trip(msg);
        syn_msg_destroy(&msg);
    }
    static const size_t lengths[] = {0, 31, 32, 255, 256, 65535, 65536, 100000};
    for (size_t i = 0; i < sizeof lengths / sizeof lengths[0]; i++) {
        char *text = malloc(lengths[i] + 1);
        memset(text, 'x', lengths[i]);
        text[lengths[i]] = 0;
        msg = make(SYN_MSG_REPLY, "{\"id\":1,\"status\":200,\"body\":null}");
        json_object_set_new(syn_msg_fields(msg), "body", json_string(text));
        round_trip(msg);
        syn_msg_destroy(&msg);
        free(text);
    }
    free(output);
}

static void test_round_trip_numbers_and_containers(void **state)
{
    (void) state;
    syn_msg_t *msg = make(SYN_MSG_REPLY, "{\"id\":1,\"status\":200,\"body\":[0,1,127,128,255,256,"
                                         "65535,65536,4294967295,4294967296,"
                                         "9223372036854775807,-1,-32,-33,-128,-129,-32768,"
                                         "-32769,-2147483648,-2147483649,"
                                         "-9223372036854775808,0.0,-0.5,1e-300,1.5e308]}");
    round_trip(msg);
    syn_msg_destroy(&msg);

    /* Containers of every size class: fix (15/16), 16-bit and 32-bit counts. */
    static const size_t counts[] = {0, 15, 16, 65535, 65536};
    for (size_t i = 0; i < sizeof counts / sizeof counts[0]; i++) {
        json_t *array = json_array();
        json_t *map = json_object();
        for (size_t k = 0; k < counts[i]; k++) {
            char key[32];
            snprintf(key, sizeof key, "k%zu", k);
            json_array_append_new(array, json_integer((json_int_t) k));
            json_object_set_new(map, key, json_true());
        }
        msg = make(SYN_MSG_REPLY, "{\"id\":1,\"status\":200,\"body\":null}");
        json_t *body = json_pack("{s:o,s:o}", "array", array, "map", map);
        json_object_set_new(syn_msg_fields(msg), "body", body);
        round_trip(msg);
        syn_msg_destroy(&msg);
    }

    /* float32 from another encoder decodes to a real. */
    raw_t raw;
    raw_init(&raw);
    msgpack_pack_map(&raw.pk, 5);
    raw_str(&raw, "v");
    msgpack_pack_int(&raw.pk, 1);
    raw_str(&raw, "t");
    raw_str(&raw, "reply");
    raw_str(&raw, "id");
    msgpack_pack_fix_uint8(&raw.pk, 5); /* not minimal: still accepted */
    raw_str(&raw, "status");
    msgpack_pack_fix_uint64(&raw.pk, 200);
    raw_str(&raw, "body");
    msgpack_pack_float(&raw.pk, 0.5f);
    char err[256];
    msg = syn_msg_decode(raw.buf.data, raw.buf.size, err, sizeof err);
    if (msg == NULL)
        fail_msg("%s", err);
    assert_true(json_is_real(json_object_get(syn_msg_fields(msg), "body")));
    assert_true(json_real_value(json_object_get(syn_msg_fields(msg), "body")) == 0.5);
    assert_int_equal(json_integer_value(json_object_get(syn_msg_fields(msg), "status")), 200);
    syn_msg_destroy(&msg);
    msgpack_sbuffer_destroy(&raw.buf);
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
                                     "waiting", "reason"};
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

static void test_reject_truncation_at_every_byte(void **state)
{
    (void) state;
    for (size_t i = 0; i < SAMPLE_COUNT; i++) {
        char *data;
        size_t size;
        encode_sample(i, &data, &size);
        for (size_t cut = 0; cut < size; cut++) {
            /* A copy of exactly cut bytes, so ASan catches any read past the end. */
            char *prefix = malloc(cut ? cut : 1);
            memcpy(prefix, data, cut);
            char err[256] = "";
            syn_msg_t *msg = syn_msg_decode(prefix, cut, err, sizeof err);
            if (msg != NULL)
                fail_msg("sample %zu cut at %zu was accepted", i, cut);
            const char *expect = cut == 0 ? "empty message" : "truncated at offset";
            if (strstr(err, expect) == NULL)
                fail_msg("sample %zu cut at %zu: '%s'", i, cut, err);
            free(prefix);
        }
        expect_accept_bytes(data, size);
        free(data);
    }
    /* The offset names where the input ran out. */
    expect_reject_bytes("\x82\xa1v\x01\xa1t\xa9heart", 11, "truncated at offset 11");
}

/* Counts what jansson allocates, to prove peer-declared lengths allocate nothing. */
static size_t alloc_total, alloc_largest;

static void *counting_malloc(size_t size)
{
    alloc_total += size;
    if (size > alloc_largest)
        alloc_largest = size;
    return malloc(size);
}

static void test_reject_huge_declared_lengths(void **state)
{
    (void) state;
    static const rejected_bytes_t cases[] = {
        /* array32 of 2^32-1 elements in a 10-byte buffer */
        {"\x81\xa1x\xdd\xff\xff\xff\xff\x00\x00", 10, "declares 4294967295 elements"},
        /* map32 of 2^32-1 pairs */
        {"\x81\xa1x\xdf\xff\xff\xff\xff\x00\x00", 10, "declares 4294967295 elements"},
        /* top-level map32 */
        {"\xdf\xff\xff\xff\xff\xa1v\x01\xa1t", 10, "declares 4294967295 elements"},
        /* str32 claiming 4 GiB */
        {"\x81\xa1x\xdb\xff\xff\xff\xff\x61\x61", 10, "declares 4294967295 bytes"},
        /* str16, array16, map16 just beyond the buffer */
        {"\x81\xa1x\xda\x00\x05\x61\x61\x61\x61", 10, "declares 5 bytes"},
        {"\x81\xa1x\xdc\x00\x06\xc0\xc0\xc0\xc0", 10, "declares 6 elements"},
        {"\x81\xa1x\xde\x00\x03\xa0\xc0\xa0\xc0", 10, "declares 3 elements"},
        /* a length field itself cut short */
        {"\x81\xa1x\xdb\xff\xff", 6, "truncated at offset 6"},
        {"\x81\xa1x\xcf\x00\x00", 6, "truncated at offset 6"},
    };
    json_malloc_t old_malloc;
    json_free_t old_free;
    json_get_alloc_funcs(&old_malloc, &old_free);
    json_set_alloc_funcs(counting_malloc, free);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        alloc_total = alloc_largest = 0;
        char *copy = malloc(cases[i].size);
        memcpy(copy, cases[i].bytes, cases[i].size);
        char err[256] = "";
        syn_msg_t *msg = syn_msg_decode(copy, cases[i].size, err, sizeof err);
        free(copy);
        json_set_alloc_funcs(old_malloc, old_free);
        assert_null(msg);
        if (strstr(err, cases[i].expect) == NULL || strstr(err, "truncated") == NULL)
            fail_msg("case %zu: '%s' lacks '%s'", i, err, cases[i].expect);
        if (alloc_total > 4096)
            fail_msg("case %zu allocated %zu bytes (largest %zu)", i, alloc_total, alloc_largest);
        json_set_alloc_funcs(counting_malloc, free);
    }
    json_set_alloc_funcs(old_malloc, old_free);
}

static void test_reject_unsupported_types(void **state)
{
    (void) state;
    static const rejected_bytes_t cases[] = {
        {"\x81\xa1x\xc4\x01\x00", 6, "unsupported msgpack type bin8 at offset 3"},
        {"\x81\xa1x\xc5\x00\x01\x00", 7, "unsupported msgpack type bin16 at offset 3"},
        {"\x81\xa1x\xc6\x00\x00\x00\x01\x00", 9, "unsupported msgpack type bin32 at offset 3"},
        {"\x81\xa1x\xc7\x01\x01\x00", 7, "unsupported msgpack type ext8 at offset 3"},
        {"\x81\xa1x\xc8\x00\x01\x01\x00", 8, "unsupported msgpack type ext16 at offset 3"},
        {"\x81\xa1x\xc9\x00\x00\x00\x01\x01\x00", 10, "unsupported msgpack type ext32"},
        {"\x81\xa1x\xd4\x01\x00", 6, "unsupported msgpack type fixext1 at offset 3"},
        {"\x81\xa1x\xd5\x01\x00\x00", 7, "unsupported msgpack type fixext2"},
        {"\x81\xa1x\xd6\x01\x00\x00\x00\x00", 9, "unsupported msgpack type fixext4"},
        {"\x81\xa1x\xd7\x01\x00\x00\x00\x00\x00\x00\x00\x00", 13, "fixext8"},
        {"\x81\xa1x\xd8\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00", 21,
         "fixext16"},
        {"\x81\xa1x\xc1", 4, "unsupported msgpack type 0xc1 (reserved) at offset 3"},
        {"\x81\xa1x\x91\xc1", 5, "unsupported msgpack type 0xc1 (reserved) at offset 4"},
        /* timestamp ext (-1) too: no ext at all */
        {"\x81\xa1x\xd6\xff\x00\x00\x00\x00", 9, "fixext4"},
        /* uint64 above INT64_MAX */
        {"\x81\xa1x\xcf\x80\x00\x00\x00\x00\x00\x00\x00", 12,
         "integer at offset 3 is above INT64_MAX"},
        {"\x81\xa1x\xcf\xff\xff\xff\xff\xff\xff\xff\xff", 12, "above INT64_MAX"},
        /* non-finite floats have no JSON value */
        {"\x81\xa1x\xcb\x7f\xf8\x00\x00\x00\x00\x00\x00", 12, "float at offset 3 is not finite"},
        {"\x81\xa1x\xcb\xff\xf0\x00\x00\x00\x00\x00\x00", 12, "is not finite"},
        {"\x81\xa1x\xca\x7f\x80\x00\x00", 8, "is not finite"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        expect_reject_bytes(cases[i].bytes, cases[i].size, cases[i].expect);

    /* INT64_MAX and INT64_MIN themselves are fine. */
    raw_t raw;
    raw_init(&raw);
    msgpack_pack_map(&raw.pk, 7);
    raw_str(&raw, "v");
    msgpack_pack_int(&raw.pk, 1);
    raw_str(&raw, "t");
    raw_str(&raw, "event");
    raw_str(&raw, "seq");
    msgpack_pack_uint64(&raw.pk, INT64_MAX);
    raw_str(&raw, "time");
    msgpack_pack_int64(&raw.pk, INT64_MIN);
    raw_str(&raw, "execution_id");
    msgpack_pack_nil(&raw.pk);
    raw_str(&raw, "type");
    raw_str(&raw, "x");
    raw_str(&raw, "data");
    msgpack_pack_map(&raw.pk, 0);
    expect_accept_bytes(raw.buf.data, raw.buf.size);
    msgpack_sbuffer_destroy(&raw.buf);
}

/* A request whose "op" holds the given bytes, packed without any checking. */
static void expect_op_bytes(const char *bytes, size_t len, const char *expect)
{
    raw_t raw;
    raw_init(&raw);
    msgpack_pack_map(&raw.pk, 5);
    raw_str(&raw, "v");
    msgpack_pack_int(&raw.pk, 1);
    raw_str(&raw, "t");
    raw_str(&raw, "request");
    raw_str(&raw, "id");
    msgpack_pack_int(&raw.pk, 1);
    raw_str(&raw, "args");
    msgpack_pack_map(&raw.pk, 0);
    raw_str(&raw, "op");
    raw_strn(&raw, bytes, len);
    if (expect)
        expect_reject_raw(&raw, expect);
    else {
        expect_accept_bytes(raw.buf.data, raw.buf.size);
        msgpack_sbuffer_destroy(&raw.buf);
    }
}

static void test_reject_invalid_utf8(void **state)
{
    (void) state;
    static const struct {
        const char *bytes;
        size_t len;
        size_t bad_at; /* offset of the bad byte within the string */
    } bad[] = {
        {"\x80", 1, 0},                 /* lone continuation byte */
        {"ab\xbf", 3, 2},
        {"\xc0\x80", 2, 0},             /* overlong NUL */
        {"\xc1\xbf", 2, 0},             /* overlong 2-byte */
        {"\xe0\x80\x80", 3, 0},         /* overlong 3-byte */
        {"\xe0\x9f\xbf", 3, 0},
        {"\xf0\x80\x80\x80", 4, 0},     /* overlong 4-byte */
        {"\xf0\x8f\xbf\xbf", 4, 0},
        {"\xed\xa0\x80", 3, 0},         /* surrogate U+D800 */
        {"\xed\xbf\xbf", 3, 0},         /* surrogate U+DFFF */
        {"\xf4\x90\x80\x80", 4, 0},     /* U+110000 */
        {"\xf5\x80\x80\x80", 4, 0},
        {"\xff", 1, 0},
        {"\xfe", 1, 0},
        {"x\xe2\x82", 3, 1},            /* sequence cut by the end of the string */
        {"\xe2\x28\xa1", 3, 0},         /* bad continuation */
        {"\xc3", 1, 0},
        {"0123456789abcdef\xc3(", 18, 16}, /* after the 8-byte fast path */
    };
    /* The string body starts at offset 28 in the message expect_op_bytes builds. */
    const size_t body = 28;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char expect[96];
        snprintf(expect, sizeof expect, "string is not valid UTF-8 at offset %zu",
                 body + bad[i].bad_at);
        expect_op_bytes(bad[i].bytes, bad[i].len, expect);
    }
    expect_op_bytes("ok", 2, NULL);
    expect_op_bytes("\xf4\x8f\xbf\xbf\xe0\xa0\x80\xed\x9f\xbf", 10, NULL);

    /* NUL bytes anywhere in a string. */
    expect_op_bytes("a\0b", 3, "string contains a NUL byte at offset 29");
    expect_op_bytes("\0", 1, "string contains a NUL byte at offset 28");
    expect_op_bytes("01234567\0abcdefg", 16, "string contains a NUL byte at offset 36");

    /* In keys and in nested values too. */
    expect_reject_bytes("\x81\xa2\xc3\x28\xc0", 5, "string is not valid UTF-8 at offset 2");
    expect_reject_bytes("\x81\xa2x\0\xc0", 5, "string contains a NUL byte at offset 3");
    expect_reject_bytes("\x81\xa1x\x91\x92\xc0\xa1\xff", 8, "not valid UTF-8 at offset 7");

    /* The encoder refuses to produce what the decoder would refuse. */
    syn_msg_t *msg = make(SYN_MSG_REQUEST, "{\"id\":1,\"op\":\"x\",\"args\":{}}");
    char err[256];
    char *data;
    size_t size;
    json_object_set_new(syn_msg_fields(msg), "op", json_stringn("a\0b", 3));
    assert_int_equal(syn_msg_encode(msg, &data, &size, err, sizeof err), -1);
    assert_non_null(strstr(err, "string contains a NUL byte at byte 1"));
    json_object_set_new(syn_msg_fields(msg), "op", json_stringn_nocheck("\xed\xa0\x80", 3));
    assert_int_equal(syn_msg_encode(msg, &data, &size, err, sizeof err), -1);
    assert_non_null(strstr(err, "not valid UTF-8"));
    json_object_set_new(syn_msg_fields(msg), "op", json_string("x"));
    json_object_setn_new(json_object_get(syn_msg_fields(msg), "args"), "k\0ey", 4, json_null());
    assert_int_equal(syn_msg_encode(msg, &data, &size, err, sizeof err), -1);
    assert_non_null(strstr(err, "map key contains a NUL byte"));
    syn_msg_destroy(&msg);
}

static void test_reject_keys(void **state)
{
    (void) state;
    /* Non-string keys, at the top and nested. */
    expect_reject_bytes("\x81\x01\xc0", 3, "map key at offset 1 is integer, not a string");
    expect_reject_bytes("\x81\xc0\xc0", 3, "map key at offset 1 is nil, not a string");
    expect_reject_bytes("\x81\xa1x\x81\x90\xc0", 6, "map key at offset 4 is array, not a string");
    expect_reject_bytes("\x81\xc4\x00\xc0", 4, "unsupported msgpack type bin8 at offset 1");

    /* Duplicate keys: a field, "v", "t", and inside a nested map. */
    raw_t raw;
    raw_init(&raw);
    msgpack_pack_map(&raw.pk, 5);
    raw_str(&raw, "v");
    msgpack_pack_int(&raw.pk, 1);
    raw_str(&raw, "t");
    raw_str(&raw, "cancel");
    raw_str(&raw, "execution_id");
    raw_str(&raw, "e");
    raw_str(&raw, "execution_id");
    raw_str(&raw, "e");
    raw_str(&raw, "attempt");
    msgpack_pack_int(&raw.pk, 1);
    expect_reject_raw(&raw, "duplicate key 'execution_id'");

    expect_reject_bytes("\x83\xa1v\x01\xa1t\xa1x\xa1v\x01", 11, "duplicate key 'v' at offset 8");
    expect_reject_bytes("\x83\xa1t\xa1x\xa1v\x01\xa1t\xa1y", 12, "duplicate key 't'");
    expect_reject_bytes("\x81\xa2op\x82\xa1k\x01\xa1k\x02", 11, "duplicate key 'k' at offset 8");
}

/* A request whose args nest `arrays` arrays below {"a": ...}. */
static void nested_request(raw_t *raw, int arrays)
{
    raw_init(raw);
    msgpack_pack_map(&raw->pk, 5);
    raw_str(raw, "v");
    msgpack_pack_int(&raw->pk, 1);
    raw_str(raw, "t");
    raw_str(raw, "request");
    raw_str(raw, "id");
    msgpack_pack_int(&raw->pk, 1);
    raw_str(raw, "op");
    raw_str(raw, "x");
    raw_str(raw, "args");
    msgpack_pack_map(&raw->pk, 1);
    raw_str(raw, "a");
    for (int i = 0; i < arrays; i++)
        msgpack_pack_array(&raw->pk, i + 1 < arrays ? 1 : 0);
}

static void test_reject_depth(void **state)
{
    (void) state;
    /* The message map is level 1, args level 2, so 30 arrays reach level 32. */
    raw_t raw;
    nested_request(&raw, SYN_MSG_MAX_DEPTH - 2);
    char err[256];
    syn_msg_t *msg = syn_msg_decode(raw.buf.data, raw.buf.size, err, sizeof err);
    if (msg == NULL)
        fail_msg("depth 32 rejected: %s", err);
    msgpack_sbuffer_destroy(&raw.buf);
    round_trip(msg);

    /* One more level, on either side, is refused. */
    json_t *deepest = json_object_get(json_object_get(syn_msg_fields(msg), "args"), "a");
    while (json_array_size(deepest) > 0)
        deepest = json_array_get(deepest, 0);
    json_array_append_new(deepest, json_object());
    char *data;
    size_t size;
    assert_int_equal(syn_msg_encode(msg, &data, &size, err, sizeof err), -1);
    assert_non_null(strstr(err, "nesting deeper than 32"));
    syn_msg_destroy(&msg);

    nested_request(&raw, SYN_MSG_MAX_DEPTH - 1);
    expect_reject_raw(&raw, "nesting deeper than 32");

    /* A deeply nested bomb is rejected at the limit, not by running out of stack. */
    char *bomb = malloc(100000);
    bomb[0] = (char) 0x81;
    bomb[1] = (char) 0xa1;
    bomb[2] = 'x';
    memset(bomb + 3, 0x91, 100000 - 3);
    expect_reject_bytes(bomb, 100000, "nesting deeper than 32 at offset 34");
    free(bomb);
}

static void test_reject_limits(void **state)
{
    (void) state;
    char err[256];
    /* Size: the decoder refuses anything above SYN_MSG_MAX_SIZE before parsing. */
    size_t over = SYN_MSG_MAX_SIZE + 1;
    char *big = calloc(1, over);
    big[0] = (char) 0x80;
    assert_null(syn_msg_decode(big, over, err, sizeof err));
    assert_non_null(strstr(err, "exceeds the limit"));
    free(big);

    /* The encoder refuses a message that would exceed it. */
    char *output = malloc(SYN_MSG_MAX_SIZE + 1);
    memset(output, 'o', SYN_MSG_MAX_SIZE);
    output[SYN_MSG_MAX_SIZE] = 0;
    syn_msg_t *msg = make(SYN_MSG_RESULT, "{\"execution_id\":\"e\",\"phase_id\":\"p\","
                                          "\"attempt\":1,\"status\":\"completed\","
                                          "\"output\":\"\",\"error\":null,\"exit_code\":0}");
    json_object_set_new(syn_msg_fields(msg), "output", json_string(output));
    char *data = NULL;
    size_t size;
    assert_int_equal(syn_msg_encode(msg, &data, &size, err, sizeof err), -1);
    assert_null(data);
    assert_non_null(strstr(err, "message larger than"));
    /* Just below the limit is fine. */
    output[SYN_MSG_MAX_SIZE - 200] = 0;
    json_object_set_new(syn_msg_fields(msg), "output", json_string(output));
    round_trip(msg);
    syn_msg_destroy(&msg);
    free(output);

    /* Element count: a message of 300k nils is refused on both sides. */
    size_t count = 300000;
    raw_t raw;
    raw_init(&raw);
    msgpack_pack_map(&raw.pk, 5);
    raw_str(&raw, "v");
    msgpack_pack_int(&raw.pk, 1);
    raw_str(&raw, "t");
    raw_str(&raw, "reply");
    raw_str(&raw, "id");
    msgpack_pack_int(&raw.pk, 1);
    raw_str(&raw, "status");
    msgpack_pack_int(&raw.pk, 200);
    raw_str(&raw, "body");
    msgpack_pack_array(&raw.pk, count);
    for (size_t i = 0; i < count; i++)
        msgpack_pack_nil(&raw.pk);
    expect_reject_raw(&raw, "more than 262144 elements");

    msg = make(SYN_MSG_REPLY, "{\"id\":1,\"status\":200,\"body\":null}");
    json_t *body = json_array();
    for (size_t i = 0; i < count; i++)
        json_array_append_new(body, json_null());
    json_object_set_new(syn_msg_fields(msg), "body", body);
    assert_int_equal(syn_msg_encode(msg, &data, &size, err, sizeof err), -1);
    assert_non_null(strstr(err, "more than 262144 elements"));
    syn_msg_destroy(&msg);
}

/* --- mutation run -------------------------------------------------------- */

static uint64_t rng_next(uint64_t *s)
{
    /* xorshift64*: deterministic, so a failure reproduces. */
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ull;
}

static void test_mutations(void **state)
{
    (void) state;
    char *encodings[SAMPLE_COUNT];
    size_t sizes[SAMPLE_COUNT];
    size_t largest = 0;
    for (size_t i = 0; i < SAMPLE_COUNT; i++) {
        encode_sample(i, &encodings[i], &sizes[i]);
        if (sizes[i] > largest)
            largest = sizes[i];
    }
    static const uint8_t interesting[] = {0x00, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf,
                                          0xc0, 0xc1, 0xc4, 0xca, 0xcb, 0xcf, 0xd3, 0xd4,
                                          0xd9, 0xdb, 0xdc, 0xdd, 0xde, 0xdf, 0xe0, 0xff};
    long iterations = 200000;
    const char *env = getenv("SYN_TEST_MUTATIONS");
    if (env != NULL && atol(env) > 0)
        iterations = atol(env);
    uint8_t *buf = malloc(largest + 64);
    uint64_t seed = 0x5eed1234abcdull;
    long accepted = 0;
    for (long n = 0; n < iterations; n++) {
        size_t pick = rng_next(&seed) % SAMPLE_COUNT;
        size_t size = sizes[pick];
        memcpy(buf, encodings[pick], size);
        int edits = 1 + (int) (rng_next(&seed) % 4);
        for (int e = 0; e < edits && size > 0; e++) {
            size_t at = rng_next(&seed) % size;
            switch (rng_next(&seed) % 6) {
            case 0: buf[at] = (uint8_t) rng_next(&seed); break;
            case 1: buf[at] ^= (uint8_t) (1u << (rng_next(&seed) % 8)); break;
            case 2: buf[at] = interesting[rng_next(&seed) % sizeof interesting]; break;
            case 3: size = at; break; /* truncate */
            case 4:                   /* insert a byte */
                if (size < largest + 60) {
                    memmove(buf + at + 1, buf + at, size - at);
                    buf[at] = (uint8_t) rng_next(&seed);
                    size++;
                }
                break;
            case 5: /* delete a byte */
                memmove(buf + at, buf + at + 1, size - at - 1);
                size--;
                break;
            }
        }
        /* Decode from an exact-size copy so an over-read is an ASan error. */
        uint8_t *input = malloc(size ? size : 1);
        memcpy(input, buf, size);
        char err[256] = "";
        syn_msg_t *msg = syn_msg_decode(input, size, err, sizeof err);
        free(input);
        if (msg == NULL) {
            if (err[0] == 0 || strcmp(err, "no error") == 0)
                fail_msg("iteration %ld rejected without a reason", n);
            continue;
        }
        accepted++;
        char *data;
        size_t data_size;
        if (syn_msg_encode(msg, &data, &data_size, err, sizeof err) != 0)
            fail_msg("iteration %ld: decoded message does not re-encode: %s", n, err);
        assert_int_equal(syn_msg_validate(msg, err, sizeof err), 0);
        syn_msg_t *again = syn_msg_decode(data, data_size, err, sizeof err);
        if (again == NULL)
            fail_msg("iteration %ld: re-encoding does not decode: %s", n, err);
        assert_int_equal(syn_msg_type(again), syn_msg_type(msg));
        assert_true(json_equal(syn_msg_fields(again), syn_msg_fields(msg)));
        syn_msg_destroy(&again);
        syn_msg_destroy(&msg);
        free(data);
    }
    /* Some mutations (e.g. inside string bodies) keep messages valid: both paths ran. */
    print_message("mutations: %ld decoded of %ld\n", accepted, iterations);
    assert_true(accepted > 0);
    assert_true(accepted < iterations);
    free(buf);
    for (size_t i = 0; i < SAMPLE_COUNT; i++)
        free(encodings[i]);
}

/* --- ZeroMQ -------------------------------------------------------------- */

typedef struct {
    void *ctx;
    void *router;
    void *dealer;
} pair_t;

static void *socket_new(void *ctx, int type)
{
    void *sock = zmq_socket(ctx, type);
    assert_non_null(sock);
    int zero = 0;
    int64_t max = SYN_MSG_MAX_SIZE;
    zmq_setsockopt(sock, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt(sock, ZMQ_MAXMSGSIZE, &max, sizeof max);
    return sock;
}

/* A ROUTER bound and a DEALER with routing id "worker-1" connected to it. */
static void pair_open(pair_t *pair, const char *endpoint)
{
    pair->ctx = zmq_ctx_new();
    pair->router = socket_new(pair->ctx, ZMQ_ROUTER);
    int one = 1;
    zmq_setsockopt(pair->router, ZMQ_ROUTER_MANDATORY, &one, sizeof one);
    assert_int_equal(zmq_bind(pair->router, endpoint), 0);
    char bound[256];
    size_t bound_len = sizeof bound;
    zmq_getsockopt(pair->router, ZMQ_LAST_ENDPOINT, bound, &bound_len);
    pair->dealer = socket_new(pair->ctx, ZMQ_DEALER);
    zmq_setsockopt(pair->dealer, ZMQ_ROUTING_ID, "worker-1", 8);
    assert_int_equal(zmq_connect(pair->dealer, bound), 0);
}

static void pair_close(pair_t *pair)
{
    zmq_close(pair->dealer);
    zmq_close(pair->router);
    zmq_ctx_term(pair->ctx);
}

/* Waits for a message then receives it (recv itself never blocks). */
static int recv_wait(void *sock, syn_msg_t **msg, void *identity, size_t *identity_len,
                     char *err, size_t errlen)
{
    zmq_pollitem_t item = {sock, 0, ZMQ_POLLIN, 0};
    if (zmq_poll(&item, 1, 5000) != 1)
        fail_msg("nothing arrived within 5 s");
    return syn_msg_recv(sock, msg, identity, identity_len, err, errlen);
}

static void test_zmq_dealer_router(void **state)
{
    (void) state;
    pair_t pair;
    pair_open(&pair, "inproc://msg-test-1");
    char err[256];
    char identity[256];
    size_t identity_len = sizeof identity;
    syn_msg_t *msg = NULL;

    /* Nothing waiting: -1 with EAGAIN, nothing filled. */
    assert_int_equal(syn_msg_recv(pair.router, &msg, identity, &identity_len, err, sizeof err),
                     -1);
    assert_int_equal(errno, EAGAIN);
    assert_null(msg);

    /* DEALER → ROUTER: the identity comes with it. */
    syn_msg_t *ready = make(SYN_MSG_READY, samples[6].fields);
    assert_int_equal(syn_msg_send(pair.dealer, NULL, 0, ready), 0);
    identity_len = sizeof identity;
    assert_int_equal(recv_wait(pair.router, &msg, identity, &identity_len, err, sizeof err), 0);
    assert_int_equal(identity_len, 8);
    assert_memory_equal(identity, "worker-1", 8);
    assert_int_equal(syn_msg_type(msg), SYN_MSG_READY);
    assert_true(json_equal(syn_msg_fields(msg), syn_msg_fields(ready)));
    syn_msg_destroy(&msg);
    syn_msg_destroy(&ready);

    /* ROUTER → DEALER, addressed by that identity. */
    syn_msg_t *assign = make(SYN_MSG_ASSIGN, samples[9].fields);
    assert_int_equal(syn_msg_send(pair.router, identity, identity_len, assign), 0);
    assert_int_equal(recv_wait(pair.dealer, &msg, NULL, NULL, err, sizeof err), 0);
    assert_int_equal(syn_msg_type(msg), SYN_MSG_ASSIGN);
    assert_true(json_equal(syn_msg_fields(msg), syn_msg_fields(assign)));
    syn_msg_destroy(&msg);

    /* An unknown peer on a ROUTER_MANDATORY socket is an error, not a silent drop. */
    errno = 0;
    assert_int_equal(syn_msg_send(pair.router, "nobody", 6, assign), -1);
    assert_int_equal(errno, EHOSTUNREACH);
    syn_msg_destroy(&assign);

    /* A message breaking its schema is not sent. */
    syn_msg_t *broken = syn_msg_new(SYN_MSG_RESULT);
    errno = 0;
    assert_int_equal(syn_msg_send(pair.dealer, NULL, 0, broken), -1);
    assert_int_equal(errno, EINVAL);
    syn_msg_destroy(&broken);
    pair_close(&pair);
}

static void test_zmq_invalid_then_valid(void **state)
{
    (void) state;
    pair_t pair;
    pair_open(&pair, "inproc://msg-test-2");
    char err[256];
    char identity[256];
    size_t identity_len;
    syn_msg_t *msg = NULL;
    syn_msg_t *heartbeat = syn_msg_new(SYN_MSG_HEARTBEAT);

    /* Garbage payload: -2, reason given, identity filled, and the next message reads. */
    assert_int_equal(zmq_send(pair.dealer, "\x92\x01\x02", 3, 0), 3);
    assert_int_equal(syn_msg_send(pair.dealer, NULL, 0, heartbeat), 0);
    identity_len = sizeof identity;
    assert_int_equal(recv_wait(pair.router, &msg, identity, &identity_len, err, sizeof err), -2);
    assert_null(msg);
    assert_non_null(strstr(err, "top level is array"));
    assert_int_equal(identity_len, 8);
    assert_memory_equal(identity, "worker-1", 8);
    identity_len = sizeof identity;
    assert_int_equal(recv_wait(pair.router, &msg, identity, &identity_len, err, sizeof err), 0);
    assert_int_equal(syn_msg_type(msg), SYN_MSG_HEARTBEAT);
    syn_msg_destroy(&msg);

    /* Too many frames (a REQ-style empty delimiter, say): all consumed, -2. */
    assert_int_equal(zmq_send(pair.dealer, "", 0, ZMQ_SNDMORE), 0);
    assert_int_equal(syn_msg_send(pair.dealer, NULL, 0, heartbeat), 0);
    assert_int_equal(zmq_send(pair.dealer, "a", 1, ZMQ_SNDMORE), 1);
    assert_int_equal(zmq_send(pair.dealer, "b", 1, ZMQ_SNDMORE), 1);
    assert_int_equal(zmq_send(pair.dealer, "c", 1, 0), 1);
    assert_int_equal(syn_msg_send(pair.dealer, NULL, 0, heartbeat), 0);
    identity_len = sizeof identity;
    assert_int_equal(recv_wait(pair.router, &msg, identity, &identity_len, err, sizeof err), -2);
    assert_non_null(strstr(err, "expected 2 frames, got 3"));
    assert_int_equal(identity_len, 8);
    identity_len = sizeof identity;
    assert_int_equal(recv_wait(pair.router, &msg, identity, &identity_len, err, sizeof err), -2);
    assert_non_null(strstr(err, "expected 2 frames, got 4"));
    identity_len = sizeof identity;
    assert_int_equal(recv_wait(pair.router, &msg, identity, &identity_len, err, sizeof err), 0);
    assert_int_equal(syn_msg_type(msg), SYN_MSG_HEARTBEAT);
    syn_msg_destroy(&msg);

    /* A DEALER given two frames: -2, then the next one is fine. */
    assert_int_equal(zmq_send(pair.router, "worker-1", 8, ZMQ_SNDMORE), 8);
    assert_int_equal(zmq_send(pair.router, "x", 1, ZMQ_SNDMORE), 1);
    assert_int_equal(zmq_send(pair.router, "y", 1, 0), 1);
    assert_int_equal(syn_msg_send(pair.router, "worker-1", 8, heartbeat), 0);
    assert_int_equal(recv_wait(pair.dealer, &msg, NULL, NULL, err, sizeof err), -2);
    assert_non_null(strstr(err, "expected 1 frame, got 2"));
    assert_int_equal(recv_wait(pair.dealer, &msg, NULL, NULL, err, sizeof err), 0);
    syn_msg_destroy(&msg);

    /* An identity larger than the caller's buffer: -2, truncated copy. */
    assert_int_equal(syn_msg_send(pair.dealer, NULL, 0, heartbeat), 0);
    identity_len = 4;
    assert_int_equal(recv_wait(pair.router, &msg, identity, &identity_len, err, sizeof err), -2);
    assert_int_equal(identity_len, 4);
    assert_non_null(strstr(err, "identity of 8 bytes does not fit in 4"));

    /* An empty frame is an empty message. */
    assert_int_equal(zmq_send(pair.dealer, "", 0, 0), 0);
    identity_len = sizeof identity;
    assert_int_equal(recv_wait(pair.router, &msg, identity, &identity_len, err, sizeof err), -2);
    assert_non_null(strstr(err, "empty message"));

    syn_msg_destroy(&heartbeat);
    pair_close(&pair);
}

static void test_zmq_tcp_big(void **state)
{
    (void) state;
    pair_t pair;
    pair_open(&pair, "tcp://127.0.0.1:*");
    char *output = big_unicode_string(1024 * 1024);
    syn_msg_t *result = make(SYN_MSG_RESULT, samples[14].fields);
    json_object_set_new(syn_msg_fields(result), "output", json_string(output));
    /* The connection is made asynchronously: retry until the pipe exists. */
    int rc = -1;
    for (int i = 0; i < 500 && rc != 0; i++) {
        rc = syn_msg_send(pair.dealer, NULL, 0, result);
        if (rc != 0) {
            assert_int_equal(errno, EAGAIN);
            zmq_poll(NULL, 0, 10);
        }
    }
    assert_int_equal(rc, 0);
    char err[256];
    char identity[256];
    size_t identity_len = sizeof identity;
    syn_msg_t *msg = NULL;
    assert_int_equal(recv_wait(pair.router, &msg, identity, &identity_len, err, sizeof err), 0);
    assert_true(json_equal(syn_msg_fields(msg), syn_msg_fields(result)));
    syn_msg_destroy(&msg);
    syn_msg_destroy(&result);
    free(output);
    pair_close(&pair);
}

static void test_zmq_pub_sub(void **state)
{
    (void) state;
    void *ctx = zmq_ctx_new();
    void *pub = socket_new(ctx, ZMQ_PUB);
    void *sub = socket_new(ctx, ZMQ_SUB);
    assert_int_equal(zmq_bind(pub, "inproc://msg-test-events"), 0);
    assert_int_equal(zmq_connect(sub, "inproc://msg-test-events"), 0);
    assert_int_equal(zmq_setsockopt(sub, ZMQ_SUBSCRIBE, "exec-1", 6), 0);

    syn_msg_t *event = make(SYN_MSG_EVENT, samples[19].fields);
    syn_msg_t *other = make(SYN_MSG_EVENT, samples[20].fields);
    char err[256];
    char topic[64];
    size_t topic_len = 0;
    syn_msg_t *msg = NULL;
    /* Subscriptions travel asynchronously: publish until one gets through. */
    int rc = -1;
    for (int i = 0; i < 500 && rc != 0; i++) {
        assert_int_equal(syn_msg_send(pub, "-", 1, other), 0);
        assert_int_equal(syn_msg_send(pub, "exec-1", 6, event), 0);
        zmq_pollitem_t item = {sub, 0, ZMQ_POLLIN, 0};
        if (zmq_poll(&item, 1, 10) == 1) {
            topic_len = sizeof topic;
            rc = syn_msg_recv(sub, &msg, topic, &topic_len, err, sizeof err);
            assert_int_equal(rc, 0);
        }
    }
    assert_int_equal(rc, 0);
    /* Only the subscribed topic arrives, with the topic as identity. */
    assert_int_equal(topic_len, 6);
    assert_memory_equal(topic, "exec-1", 6);
    assert_true(json_equal(syn_msg_fields(msg), syn_msg_fields(event)));
    syn_msg_destroy(&msg);
    for (;;) {
        topic_len = sizeof topic;
        rc = syn_msg_recv(sub, &msg, topic, &topic_len, err, sizeof err);
        if (rc == -1)
            break;
        assert_int_equal(rc, 0);
        assert_memory_equal(topic, "exec-1", 6);
        syn_msg_destroy(&msg);
    }
    assert_int_equal(errno, EAGAIN);

    /* A publisher that sends no topic frame: -2, and the next event still reads. */
    assert_int_equal(zmq_send(pub, "exec-1-no-topic", 15, 0), 15);
    assert_int_equal(syn_msg_send(pub, "exec-1", 6, event), 0);
    topic_len = sizeof topic;
    assert_int_equal(recv_wait(sub, &msg, topic, &topic_len, err, sizeof err), -2);
    assert_non_null(strstr(err, "expected 2 frames, got 1"));
    assert_int_equal(topic_len, 15);
    topic_len = sizeof topic;
    assert_int_equal(recv_wait(sub, &msg, topic, &topic_len, err, sizeof err), 0);
    assert_int_equal(syn_msg_type(msg), SYN_MSG_EVENT);
    syn_msg_destroy(&msg);

    syn_msg_destroy(&event);
    syn_msg_destroy(&other);
    zmq_close(sub);
    zmq_close(pub);
    zmq_ctx_term(ctx);
}

/* A packed message is byte for byte what encoding the same field object gives,
 * reads back as those fields, and refuses what the encoder refuses. */
static void test_pack_matches_encode(void **state)
{
    (void)state;
    json_t *data = json_pack("{s:s, s:I, s:[s, n, b], s:f}", "phase_id", "p1", "attempt",
                             (json_int_t)2, "list", "x", 1, "cost", 0.25);
    json_t *fields = json_pack(
        "{s:I, s:I, s:s, s:n, s:O, s:{s:s, s:n, s:I}}", "seq", (json_int_t)7, "time",
        (json_int_t)-5, "type", "PhaseStarted", "execution_id", "data", data, "status",
        "status", "running", "error", "completed_phases", (json_int_t)INT64_MAX);
    syn_msg_t *built = syn_msg_new_with(SYN_MSG_EVENT, fields);
    char err[256];
    char *want, *got;
    size_t want_size, got_size;
    assert_int_equal(syn_msg_encode(built, &want, &want_size, err, sizeof err), 0);

    syn_pack_t *pack = syn_pack_new(SYN_MSG_EVENT, 6);
    syn_pack_int(pack, "seq", 7);
    syn_pack_int(pack, "time", -5);
    syn_pack_str(pack, "type", "PhaseStarted");
    syn_pack_str(pack, "execution_id", NULL);
    syn_pack_json(pack, "data", data);
    syn_pack_map(pack, "status", 3);
    syn_pack_str(pack, "status", "running");
    syn_pack_str(pack, "error", NULL);
    syn_pack_int(pack, "completed_phases", INT64_MAX);
    syn_msg_t *packed = syn_pack_finish(&pack, err, sizeof err);
    assert_null(pack);
    if (!packed)
        fail_msg("%s", err);
    assert_int_equal(syn_msg_type(packed), SYN_MSG_EVENT);
    assert_int_equal(syn_msg_validate(packed, err, sizeof err), 0);
    assert_int_equal(syn_msg_encode(packed, &got, &got_size, err, sizeof err), 0);
    assert_int_equal(got_size, want_size);
    assert_memory_equal(got, want, want_size);
    assert_true(json_equal(syn_msg_fields(packed), syn_msg_fields(built)));
    /* once its fields are out, they are what it encodes (a caller may change them) */
    json_object_set_new(syn_msg_fields(packed), "seq", json_integer(8));
    free(got);
    assert_int_equal(syn_msg_encode(packed, &got, &got_size, err, sizeof err), 0);
    assert_memory_not_equal(got, want, want_size);
    free(got);
    free(want);
    syn_msg_destroy(&packed);
    syn_msg_destroy(&built);
    json_decref(data);
}

static void test_pack_refuses(void **state)
{
    (void)state;
    char err[256];
    /* too many entries, too few, bad text, a field the schema lacks */
    syn_pack_t *pack = syn_pack_new(SYN_MSG_RESULT_ACK, 1);
    syn_pack_str(pack, "execution_id", "e");
    syn_pack_str(pack, "phase_id", "p");
    assert_null(syn_pack_finish(&pack, err, sizeof err));
    assert_non_null(strstr(err, "more entries"));
    pack = syn_pack_new(SYN_MSG_EVENT, 2);
    syn_pack_map(pack, "status", 2);
    syn_pack_str(pack, "status", "running");
    assert_null(syn_pack_finish(&pack, err, sizeof err));
    assert_non_null(strstr(err, "fewer entries"));
    pack = syn_pack_new(SYN_MSG_EVENT, 1);
    syn_pack_str(pack, "type", "bad \xff text");
    assert_null(syn_pack_finish(&pack, err, sizeof err));
    assert_non_null(strstr(err, "not valid UTF-8"));
    pack = syn_pack_new(SYN_MSG_EVENT, 1);
    syn_pack_str(pack, "type", NULL);
    syn_pack_json(pack, "data", NULL); /* one too many, and no value: the first error stays */
    assert_null(syn_pack_finish(&pack, err, sizeof err));
    assert_non_null(strstr(err, "more entries"));
    assert_null(syn_pack_new((syn_msg_type_t)999, 0));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_api_basics),
        cmocka_unit_test(test_round_trip_every_type),
        cmocka_unit_test(test_round_trip_wire_shape),
        cmocka_unit_test(test_round_trip_big_and_unicode),
        cmocka_unit_test(test_round_trip_numbers_and_containers),
        cmocka_unit_test(test_schema_wrong_types),
        cmocka_unit_test(test_schema_missing_and_unknown),
        cmocka_unit_test(test_reject_envelope),
        cmocka_unit_test(test_reject_truncation_at_every_byte),
        cmocka_unit_test(test_reject_huge_declared_lengths),
        cmocka_unit_test(test_reject_unsupported_types),
        cmocka_unit_test(test_reject_invalid_utf8),
        cmocka_unit_test(test_reject_keys),
        cmocka_unit_test(test_reject_depth),
        cmocka_unit_test(test_reject_limits),
        cmocka_unit_test(test_mutations),
        cmocka_unit_test(test_zmq_dealer_router),
        cmocka_unit_test(test_zmq_invalid_then_valid),
        cmocka_unit_test(test_zmq_tcp_big),
        cmocka_unit_test(test_zmq_pub_sub),
        cmocka_unit_test(test_pack_matches_encode),
        cmocka_unit_test(test_pack_refuses),
    };
    return cmocka_run_group_tests_name("msg", tests, NULL, NULL);
}
