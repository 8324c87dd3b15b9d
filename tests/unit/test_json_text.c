/* common/json_text: byte-identical to json_dumps(JSON_COMPACT) but for reals,
 * checked on hand-picked edge cases and on thousands of random values; reals in
 * the fewest digits that read back the same, checked by hand-picked texts and
 * on random doubles. */
#include "common/json_text.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static void assert_same_as_jansson(const json_t *value)
{
    char *ours = syn_json_text(value);
    char *theirs = json_dumps(value, JSON_COMPACT);
    if (!theirs) {
        assert_null(ours);
        return;
    }
    if (!ours)
        fail_msg("NULL where jansson gives %s", theirs);
    if (strcmp(ours, theirs) != 0)
        fail_msg("ours:    %s\njansson: %s", ours, theirs);
    free(ours);
    free(theirs);
}

static void test_edge_cases(void **state)
{
    (void)state;
    const char *texts[] = {
        "{}", "[]", "[[],{},[{}]]", "{\"a\":null,\"b\":true,\"c\":false}",
        "[0,-1,1,9223372036854775807,-9223372036854775808,1234567890]",
        "[\"\",\"plain\",\"q\\\"b\\\\s/\",\"\\b\\f\\n\\r\\t\\u0001\\u001f\\u007f\"]",
        "[\"caf\\u00e9\",\"\\u20ac\",\"\\ud83d\\ude00\",\"\\u0000x\"]",
        "{\"key\":1,\"\\u00e9\":[1,{\"x\":\"y\"}]}",
    };
    for (size_t i = 0; i < sizeof texts / sizeof *texts; i++) {
        json_error_t error;
        json_t *value = json_loads(texts[i], JSON_ALLOW_NUL, &error);
        if (!value)
            fail_msg("%s: %s", texts[i], error.text);
        assert_same_as_jansson(value);
        json_decref(value);
    }
    json_t *nul_key = json_object();
    json_object_setn_new(nul_key, "k\0ey", 4, json_integer(1));
    assert_same_as_jansson(nul_key);
    json_decref(nul_key);
}

static void expect_text(const char *input, const char *expected)
{
    json_t *value = json_loads(input, 0, NULL);
    assert_non_null(value);
    char *text = syn_json_text(value);
    assert_non_null(text);
    if (strcmp(text, expected) != 0)
        fail_msg("%s: \"%s\", expected \"%s\"", input, text, expected);
    free(text);
    json_decref(value);
}

static void test_reals_shortest(void **state)
{
    (void)state;
    expect_text("[0.0,-0.0,1.5,-2.25,1e300,1e-300,123456789.125,3.141592653589793]",
                "[0.0,-0.0,1.5,-2.25,1e300,1e-300,123456789.125,3.141592653589793]");
    /* jansson alone writes 0.10000000000000001 and 0.043193000000000002 */
    expect_text("[0.1,0.043193,0.0123,2.675]", "[0.1,0.043193,0.0123,2.675]");
    /* 0.1 + 0.2 and the doubles next to 1 need 16 or 17 digits */
    expect_text("[0.30000000000000004,1.0000000000000002,0.99999999999999989]",
                "[0.30000000000000004,1.0000000000000002,0.9999999999999999]");
    expect_text("{\"cost_usd\":1e-7,\"big\":1.7976931348623157e308}",
                "{\"cost_usd\":1e-7,\"big\":1.7976931348623157e308}");
}

static void test_refuses_what_jansson_refuses(void **state)
{
    (void)state;
    json_t *scalar = json_integer(1);
    assert_null(syn_json_text(scalar));
    json_decref(scalar);
    /* strings jansson was told not to check */
    const char *bad[] = {"\xff", "a\xc3", "\xed\xa0\x80", "\xc0\xaf", "\xf4\x90\x80\x80"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        json_t *array = json_pack("[o]", json_stringn_nocheck(bad[i], strlen(bad[i])));
        assert_same_as_jansson(array);
        assert_null(syn_json_text(array));
        json_decref(array);
    }
    json_t *deep = json_array();
    json_t *inner = deep;
    for (int i = 0; i < SYN_JSON_TEXT_MAX_DEPTH + 5; i++) {
        json_t *next = json_array();
        json_array_append_new(inner, next);
        inner = next;
    }
    assert_null(syn_json_text(deep));
    json_decref(deep);
}

static uint32_t next_random(uint32_t *seed)
{
    *seed ^= *seed << 13;
    *seed ^= *seed >> 17;
    *seed ^= *seed << 5;
    return *seed;
}

static json_t *random_string(uint32_t *seed)
{
    static const char *pieces[] = {"a", "Z", " ", "\"", "\\", "/", "\n", "\t", "\x01", "\x1f",
                                   "\x7f", "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80",
                                   "phase", "{{x}}", "\0"};
    char buf[128];
    size_t len = 0, n = next_random(seed) % 12;
    for (size_t i = 0; i < n; i++) {
        size_t which = next_random(seed) % (sizeof pieces / sizeof *pieces);
        size_t plen = which == 16 ? 1 : strlen(pieces[which]);
        memcpy(buf + len, pieces[which], plen);
        len += plen;
    }
    return json_stringn(buf, len);
}

static json_t *random_value(uint32_t *seed, int depth)
{
    uint32_t kind = next_random(seed) % (depth > 4 ? 6 : 8);
    switch (kind) {
    case 0: return json_null();
    case 1: return json_boolean(next_random(seed) & 1);
    case 2: return json_integer((json_int_t)(((uint64_t)next_random(seed) << 32) |
                                             next_random(seed)) >> (next_random(seed) % 64));
    case 3: /* reals are test_random_reals_read_back's */
    case 4:
    case 5: return random_string(seed);
    case 6: {
        json_t *array = json_array();
        for (uint32_t i = next_random(seed) % 5; i > 0; i--)
            json_array_append_new(array, random_value(seed, depth + 1));
        return array;
    }
    default: {
        json_t *object = json_object();
        for (uint32_t i = next_random(seed) % 5; i > 0; i--) {
            json_t *key = random_string(seed);
            json_object_setn_new(object, json_string_value(key), json_string_length(key),
                                 random_value(seed, depth + 1));
            json_decref(key);
        }
        return object;
    }
    }
}

/* Every double (random bit patterns, NaN and infinity aside) reads back as
 * itself. */
static void test_random_reals_read_back(void **state)
{
    (void)state;
    uint32_t seed = 0x2545f491u;
    for (int i = 0; i < 20000; i++) {
        uint64_t bits = ((uint64_t)next_random(&seed) << 32) | next_random(&seed);
        double value;
        memcpy(&value, &bits, sizeof value);
        json_t *array = json_pack("[f]", value);
        if (!array) /* NaN or infinity: jansson makes no real of them */
            continue;
        char *ours = syn_json_text(array);
        assert_non_null(ours);
        json_t *back = json_loads(ours, 0, NULL);
        if (!back || !json_equal(back, array))
            fail_msg("%s does not read back as %.17g", ours, value);
        json_decref(back);
        free(ours);
        json_decref(array);
    }
}

static void test_random_values_match_jansson(void **state)
{
    (void)state;
    uint32_t seed = 0x9e3779b9u;
    for (int i = 0; i < 20000; i++) {
        json_t *value = json_pack("[o]", random_value(&seed, 0));
        assert_same_as_jansson(value);
        json_decref(value);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_edge_cases),
        cmocka_unit_test(test_reals_shortest),
        cmocka_unit_test(test_random_reals_read_back),
        cmocka_unit_test(test_refuses_what_jansson_refuses),
        cmocka_unit_test(test_random_values_match_jansson),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
