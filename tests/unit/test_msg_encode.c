/* Tests for proto/msg_encode.c: round trips of every type through syn_msg_encode,
 * and syn_pack, byte for byte what encoding the same fields gives. */
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


/* --- round trips --------------------------------------------------------- */

static void test_round_trip_every_type(void **state)
{
    (void) state;
    bool seen[SYN_MSG_ARTIFACT_DATA + 1] = {false};
    for (size_t i = 0; i < SAMPLE_COUNT; i++) {
        syn_msg_t *msg = make(samples[i].type, samples[i].fields);
        round_trip(msg);
        seen[samples[i].type] = true;
        syn_msg_destroy(&msg);
    }
    for (int t = SYN_MSG_REQUEST; t <= SYN_MSG_INJECT; t++)
        assert_true(seen[t]);
    assert_true(seen[SYN_MSG_ARTIFACT_GET] && seen[SYN_MSG_ARTIFACT_DATA]);
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
        cmocka_unit_test(test_round_trip_every_type),
        cmocka_unit_test(test_round_trip_wire_shape),
        cmocka_unit_test(test_round_trip_big_and_unicode),
        cmocka_unit_test(test_round_trip_numbers_and_containers),
        cmocka_unit_test(test_pack_matches_encode),
        cmocka_unit_test(test_pack_refuses),
    };
    return cmocka_run_group_tests_name("msg_encode", tests, NULL, NULL);
}
