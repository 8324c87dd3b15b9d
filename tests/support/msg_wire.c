/* msg_wire: what the tests of proto/msg (test_msg, test_msg_encode, test_msg_decode,
 * test_zmq_io) share — messages from JSON, round trips, an unchecked msgpack writer for
 * the malformed inputs our encoder refuses to produce, the expectations on what the
 * decoder accepts or refuses, and one valid sample of every message type. Apart so
 * that the four files check one definition of each. */
#include "tests/support/msg_wire.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

json_t *parse(const char *text)
{
    json_error_t error;
    json_t *value = json_loads(text, JSON_DECODE_ANY, &error);
    if (value == NULL)
        fail_msg("bad test JSON: %s (%s)", error.text, text);
    return value;
}

syn_msg_t *make(syn_msg_type_t type, const char *fields_json)
{
    syn_msg_t *msg = syn_msg_new_with(type, parse(fields_json));
    assert_non_null(msg);
    return msg;
}

/* Encodes, decodes and checks the result equals the original; returns the size. */
size_t round_trip(const syn_msg_t *msg)
{
    char err[256] = "";
    char *data = NULL;
    size_t size = 0;
    if (syn_msg_encode(msg, &data, &size, err, sizeof err) != 0)
        fail_msg("encode %s failed: %s", syn_msg_type_name(syn_msg_type(msg)), err);
    syn_msg_t *back = syn_msg_decode(data, size, err, sizeof err);
    if (back == NULL)
        fail_msg("decode %s failed: %s", syn_msg_type_name(syn_msg_type(msg)), err);
    assert_int_equal(syn_msg_type(back), syn_msg_type(msg));
    assert_true(json_equal(syn_msg_fields(back), syn_msg_fields(msg)));
    syn_msg_destroy(&back);
    free(data);
    return size;
}

void raw_init(raw_t *raw)
{
    msgpack_sbuffer_init(&raw->buf);
    msgpack_packer_init(&raw->pk, &raw->buf, msgpack_sbuffer_write);
}

void raw_str(raw_t *raw, const char *text)
{
    msgpack_pack_str_with_body(&raw->pk, text, strlen(text));
}

void raw_strn(raw_t *raw, const char *text, size_t len)
{
    msgpack_pack_str_with_body(&raw->pk, text, len);
}

/* Packs any jansson value as msgpack, in the object's insertion order. */
void raw_json(raw_t *raw, const json_t *value)
{
    switch (json_typeof(value)) {
    case JSON_OBJECT: {
        msgpack_pack_map(&raw->pk, json_object_size(value));
        const char *key;
        size_t key_len;
        json_t *item;
        json_object_keylen_foreach((json_t *) value, key, key_len, item) {
            raw_strn(raw, key, key_len);
            raw_json(raw, item);
        }
        break;
    }
    case JSON_ARRAY: {
        msgpack_pack_array(&raw->pk, json_array_size(value));
        size_t index;
        json_t *item;
        json_array_foreach(value, index, item) raw_json(raw, item);
        break;
    }
    case JSON_STRING: raw_strn(raw, json_string_value(value), json_string_length(value)); break;
    case JSON_INTEGER: msgpack_pack_int64(&raw->pk, json_integer_value(value)); break;
    case JSON_REAL: msgpack_pack_double(&raw->pk, json_real_value(value)); break;
    case JSON_TRUE: msgpack_pack_true(&raw->pk); break;
    case JSON_FALSE: msgpack_pack_false(&raw->pk); break;
    case JSON_NULL: msgpack_pack_nil(&raw->pk); break;
    }
}

/* Decodes raw and checks it is rejected with a reason containing expect. */
void expect_reject_bytes(const void *data, size_t size, const char *expect)
{
    char err[256] = "";
    syn_msg_t *msg = syn_msg_decode(data, size, err, sizeof err);
    if (msg != NULL) {
        syn_msg_destroy(&msg);
        fail_msg("accepted, expected rejection with '%s'", expect);
    }
    if (strstr(err, expect) == NULL)
        fail_msg("reason '%s' does not contain '%s'", err, expect);
}

void expect_reject_raw(raw_t *raw, const char *expect)
{
    expect_reject_bytes(raw->buf.data, raw->buf.size, expect);
    msgpack_sbuffer_destroy(&raw->buf);
}

/* The whole wire map given as JSON (including "v" and "t") must be rejected. */
void expect_reject_json(const char *wire_json, const char *expect)
{
    raw_t raw;
    raw_init(&raw);
    json_t *wire = parse(wire_json);
    raw_json(&raw, wire);
    json_decref(wire);
    expect_reject_raw(&raw, expect);
}

void expect_accept_bytes(const void *data, size_t size)
{
    char err[256] = "";
    syn_msg_t *msg = syn_msg_decode(data, size, err, sizeof err);
    if (msg == NULL)
        fail_msg("rejected: %s", err);
    syn_msg_destroy(&msg);
}

void expect_accept_json(const char *wire_json)
{
    raw_t raw;
    raw_init(&raw);
    json_t *wire = parse(wire_json);
    raw_json(&raw, wire);
    json_decref(wire);
    expect_accept_bytes(raw.buf.data, raw.buf.size);
    msgpack_sbuffer_destroy(&raw.buf);
}

/* Both sides must refuse a schema violation: encode (sender) and decode (receiver). */
void expect_schema_error(syn_msg_type_t type, const char *fields_json, const char *expect)
{
    syn_msg_t *msg = make(type, fields_json);
    char err[256] = "";
    char *data = NULL;
    size_t size = 0;
    if (syn_msg_encode(msg, &data, &size, err, sizeof err) == 0)
        fail_msg("encode accepted %s %s", syn_msg_type_name(type), fields_json);
    assert_null(data);
    if (strstr(err, expect) == NULL)
        fail_msg("encode reason '%s' does not contain '%s'", err, expect);
    assert_int_equal(syn_msg_validate(msg, err, sizeof err), -1);
    if (strstr(err, expect) == NULL)
        fail_msg("validate reason '%s' does not contain '%s'", err, expect);

    raw_t raw;
    raw_init(&raw);
    json_t *fields = syn_msg_fields(msg);
    msgpack_pack_map(&raw.pk, json_object_size(fields) + 2);
    raw_str(&raw, "v");
    msgpack_pack_int(&raw.pk, SYN_PROTOCOL_VERSION);
    raw_str(&raw, "t");
    raw_str(&raw, syn_msg_type_name(type));
    const char *key;
    json_t *value;
    json_object_foreach(fields, key, value) {
        raw_str(&raw, key);
        raw_json(&raw, value);
    }
    expect_reject_raw(&raw, expect);
    syn_msg_destroy(&msg);
}

char *big_unicode_string(size_t min_bytes)
{
    static const char *pieces[] = {"agent output line ", "é", "漢字", "🚀", "\n", "Ωmega ", "\t"};
    char *text = malloc(min_bytes + 64);
    assert_non_null(text);
    size_t len = 0;
    for (size_t i = 0; len < min_bytes; i++) {
        const char *piece = pieces[i % (sizeof pieces / sizeof pieces[0])];
        memcpy(text + len, piece, strlen(piece));
        len += strlen(piece);
    }
    text[len] = 0;
    return text;
}

/* One valid message of every type, realistic fields. */
#define SHA_HEX "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
const msg_sample_t samples[] = {
    {SYN_MSG_REQUEST, "{\"id\":17,\"op\":\"execution.start\",\"args\":{\"workflow_id\":\"wf-abc\","
                      "\"inputs\":{\"topic\":\"caf\\u00e9 \\u6f22\\u5b57\"},\"task\":null,"
                      "\"repos\":[\"git@x:y.git\"]}}"},
    {SYN_MSG_REQUEST, "{\"id\":0,\"op\":\"health\",\"args\":{}}"},
    {SYN_MSG_REPLY, "{\"id\":17,\"status\":200,\"body\":{\"execution_id\":\"exec-0123456789ab\","
                    "\"status\":\"started\",\"ratio\":0.25,\"neg\":-5,\"ok\":true,\"no\":false,"
                    "\"list\":[1,\"two\",null,[3.5e300]]}}"},
    {SYN_MSG_REPLY, "{\"id\":9223372036854775807,\"status\":404,\"body\":[{\"a\":1}]}"},
    {SYN_MSG_REPLY, "{\"id\":3,\"status\":503,\"body\":null}"},
    {SYN_MSG_REPLY, "{\"id\":4,\"status\":100,\"body\":\"text\"}"},
    {SYN_MSG_READY, "{\"worker\":\"host-1/4242\",\"slots\":4,\"providers\":[\"mock\",\"command\"],"
                    "\"running\":[{\"execution_id\":\"exec-1\",\"phase_id\":\"plan\","
                    "\"attempt\":1},"
                    "{\"execution_id\":\"exec-2\",\"phase_id\":\"build\",\"attempt\":3}]}"},
    {SYN_MSG_READY, "{\"worker\":\"w\",\"slots\":1024,\"providers\":[],\"running\":[]}"},
    {SYN_MSG_HEARTBEAT, "{}"},
    {SYN_MSG_ASSIGN, "{\"execution_id\":\"exec-1\",\"workflow_id\":\"wf-1\",\"phase_id\":\"plan\","
                     "\"attempt\":1,\"prompt\":\"Plan \\u2603 the work for {{task}}\","
                     "\"model\":\"sonnet\","
                     "\"timeout_ms\":300000,\"provider\":null}"},
    {SYN_MSG_ASSIGN, "{\"execution_id\":\"e\",\"workflow_id\":\"w\",\"phase_id\":\"p\","
                     "\"attempt\":2,"
                     "\"prompt\":\"\",\"model\":null,\"timeout_ms\":0,\"provider\":\"mock\"}"},
    {SYN_MSG_CANCEL, "{\"execution_id\":\"exec-1\",\"phase_id\":\"plan\",\"attempt\":1}"},
    {SYN_MSG_PROGRESS, "{\"execution_id\":\"exec-1\",\"phase_id\":\"plan\",\"attempt\":1,"
                       "\"kind\":\"started\",\"data\":\"\"}"},
    {SYN_MSG_PROGRESS, "{\"execution_id\":\"exec-1\",\"phase_id\":\"plan\",\"attempt\":1,"
                       "\"kind\":\"output\",\"data\":\"line \\ud83d\\ude80\\n\"}"},
    {SYN_MSG_RESULT, "{\"execution_id\":\"exec-1\",\"phase_id\":\"plan\",\"attempt\":1,"
                     "\"status\":\"completed\",\"output\":\"done\",\"error\":null,"
                     "\"exit_code\":0}"},
    {SYN_MSG_RESULT, "{\"execution_id\":\"exec-1\",\"phase_id\":\"plan\",\"attempt\":2,"
                     "\"status\":\"failed\",\"output\":\"\",\"error\":\"boom\",\"exit_code\":-9}"},
    {SYN_MSG_RESULT, "{\"execution_id\":\"exec-1\",\"phase_id\":\"plan\",\"attempt\":2,"
                     "\"status\":\"cancelled\",\"output\":\"\",\"error\":null,\"exit_code\":null}"},
    {SYN_MSG_RESULT_ACK, "{\"execution_id\":\"exec-1\",\"phase_id\":\"plan\",\"attempt\":1}"},
    {SYN_MSG_DISCONNECT, "{}"},
    {SYN_MSG_EVENT, "{\"seq\":42,\"time\":1795000000123456,\"execution_id\":\"exec-1\","
                    "\"type\":\"phase.completed\",\"data\":{\"phase_id\":\"plan\",\"attempt\":1}}"},
    {SYN_MSG_EVENT, "{\"seq\":1,\"time\":-1,\"execution_id\":null,\"type\":\"worker.joined\","
                    "\"data\":{}}"},
    {SYN_MSG_READY, "{\"worker\":\"w\",\"slots\":2,\"providers\":[\"mock\"],\"running\":[],"
                    "\"draining\":true}"},
    {SYN_MSG_READY, "{\"worker\":\"w\",\"slots\":2,\"providers\":[\"mock\"],\"running\":[],"
                    "\"prefetch\":2,\"waiting\":[{\"execution_id\":\"e\",\"phase_id\":\"p\","
                    "\"attempt\":1}]}"},
    {SYN_MSG_RESULT, "{\"execution_id\":\"e\",\"phase_id\":\"p\",\"attempt\":3,"
                     "\"status\":\"refused\",\"output\":\"\",\"error\":\"worker is shutting down\","
                     "\"exit_code\":null}"},
    {SYN_MSG_EVENT, "{\"seq\":7,\"time\":1,\"execution_id\":\"exec-1\",\"type\":\"PhaseStarted\","
                    "\"data\":{},\"status\":{\"execution_id\":\"exec-1\",\"status\":\"running\"}}"},
    {SYN_MSG_INJECT, "{\"execution_id\":\"exec-1\",\"phase_id\":\"plan\",\"attempt\":1,"
                     "\"role\":\"user\",\"message\":\"focus on the tests\"}"},
    {SYN_MSG_ASSIGN, "{\"execution_id\":\"e\",\"workflow_id\":\"w\",\"phase_id\":\"p\","
                     "\"attempt\":1,\"prompt\":\"x\",\"model\":\"opus\",\"timeout_ms\":1,"
                     "\"provider\":\"claude\",\"inputs\":{\"research\":\"notes\"},"
                     "\"repos\":[\"owner/repo\"],\"allowed_tools\":[\"Read\"],"
                     "\"max_tokens\":4096}"},
    {SYN_MSG_PROGRESS, "{\"execution_id\":\"e\",\"phase_id\":\"p\",\"attempt\":1,"
                       "\"kind\":\"tool\",\"data\":\"Read\","
                       "\"detail\":{\"name\":\"Read\",\"input_preview\":\"{}\"}}"},
    {SYN_MSG_RESULT, "{\"execution_id\":\"e\",\"phase_id\":\"p\",\"attempt\":1,"
                     "\"status\":\"completed\",\"output\":\"ok\",\"error\":null,"
                     "\"exit_code\":0,\"usage\":{\"input_tokens\":10,\"output_tokens\":5,"
                     "\"cost_usd\":0.001}}"},
    {SYN_MSG_DISCONNECT, "{\"reason\":\"worker name w1 is held by another key\"}"},
    {SYN_MSG_ASSIGN, "{\"execution_id\":\"e\",\"workflow_id\":\"w\",\"phase_id\":\"use\","
                     "\"attempt\":1,\"prompt\":\"x\",\"model\":null,\"timeout_ms\":0,"
                     "\"provider\":null,\"artifacts\":[{\"phase_id\":\"make\","
                     "\"path\":\"sub/data.bin\",\"size\":716804,\"sha256\":\"" SHA_HEX "\"}],"
                     "\"input_artifacts\":[\"plan\"],\"output_artifacts\":[\"report\",\"patch\"]}"},
    {SYN_MSG_ARTIFACT_GET, "{\"execution_id\":\"e\",\"phase_id\":\"use\",\"attempt\":1,"
                           "\"from_phase\":\"make\",\"path\":\"sub/data.bin\",\"offset\":1048576}"},
    {SYN_MSG_ARTIFACT_DATA, "{\"execution_id\":\"e\",\"phase_id\":\"use\",\"attempt\":1,"
                            "\"from_phase\":\"make\",\"path\":\"sub/data.bin\",\"offset\":0,"
                            "\"size\":4,\"sha256\":\"" SHA_HEX "\",\"data\":\"AAEC/w==\"}"},
    {SYN_MSG_ARTIFACT_DATA, "{\"execution_id\":\"e\",\"phase_id\":\"use\",\"attempt\":1,"
                            "\"from_phase\":\"make\",\"path\":\"gone.txt\",\"offset\":0,"
                            "\"size\":0,\"sha256\":\"\",\"data\":\"\","
                            "\"error\":\"Artifact gone.txt of phase make not found\"}"},
};
const size_t sample_count = sizeof samples / sizeof samples[0];

void encode_sample(size_t i, char **data, size_t *size)
{
    syn_msg_t *msg = make(samples[i].type, samples[i].fields);
    char err[256];
    if (syn_msg_encode(msg, data, size, err, sizeof err) != 0)
        fail_msg("sample %zu: %s", i, err);
    syn_msg_destroy(&msg);
}
