/* Tests for proto/msg_decode.c: rejection of every malformed class the decoder
 * promises to catch (truncation, declared lengths, types, UTF-8, keys, depth,
 * limits) and a deterministic mutation run. */
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reject_truncation_at_every_byte),
        cmocka_unit_test(test_reject_huge_declared_lengths),
        cmocka_unit_test(test_reject_unsupported_types),
        cmocka_unit_test(test_reject_invalid_utf8),
        cmocka_unit_test(test_reject_keys),
        cmocka_unit_test(test_reject_depth),
        cmocka_unit_test(test_reject_limits),
        cmocka_unit_test(test_mutations),
    };
    return cmocka_run_group_tests_name("msg_decode", tests, NULL, NULL);
}
