/* common/utf8: validity, cuts on character boundaries, positions and the sanitizer
 * that makes agent output acceptable to the protocol decoder, with the boundary
 * cases (a multi-byte character at the cut, invalid bytes, empty, exact length). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "common/utf8.h"

#define FFFD SYN_UTF8_REPLACEMENT

/* Sanitizes in (of length len) and checks the result equals want. */
static void check(const char *in, size_t len, const char *want)
{
    char *out = malloc(3 * len + 1);
    assert_non_null(out);
    size_t n = syn_utf8_sanitize(in, len, out);
    out[n] = '\0';
    assert_int_equal(n, strlen(want));
    assert_memory_equal(out, want, n);
    assert_true(syn_utf8_valid(out, n, NULL));
    free(out);
}

static void test_valid_text_unchanged(void **state)
{
    (void)state;
    check("", 0, "");
    check("hello\nworld", 11, "hello\nworld");
    const char *mixed = "caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80 \xEF\xBF\xBF";
    check(mixed, strlen(mixed), mixed);
    const char *edges = "\x7F\xC2\x80\xDF\xBF\xE0\xA0\x80\xED\x9F\xBF\xEE\x80\x80\xF4\x8F\xBF\xBF";
    check(edges, strlen(edges), edges);
}

static void test_nul_replaced(void **state)
{
    (void)state;
    check("a\0b", 3, "a" FFFD "b");
    check("\0\0", 2, FFFD FFFD);
}

static void test_invalid_bytes_replaced(void **state)
{
    (void)state;
    check("\xFF", 1, FFFD);
    check("a\x80z", 3, "a" FFFD "z");          /* lone continuation byte */
    check("\xC0\xAF", 2, FFFD FFFD);           /* overlong lead bytes are never valid */
    check("\xE0\x80\xAF", 3, FFFD FFFD FFFD);  /* overlong 3-byte form */
    check("\xED\xA0\x80", 3, FFFD FFFD FFFD);  /* surrogate U+D800 */
    check("\xF4\x90\x80\x80", 4, FFFD FFFD FFFD FFFD); /* above U+10FFFF */
    check("\xF5\x80", 2, FFFD FFFD);
}

static void test_truncated_sequences(void **state)
{
    (void)state;
    /* A maximal subpart of a valid sequence becomes one replacement. */
    check("\xE2\x82", 2, FFFD);
    check("\xE2\x82z", 3, FFFD "z");
    check("\xF0\x9F\x98", 3, FFFD);
    check("\xF0\x9F\x98\xF0\x9F\x98\x80", 7, FFFD "\xF0\x9F\x98\x80");
    check("\xC3", 1, FFFD);
}

static void test_incomplete_tail(void **state)
{
    (void)state;
    assert_int_equal(syn_utf8_incomplete_tail("abc", 3), 0);
    assert_int_equal(syn_utf8_incomplete_tail("ab\xC3", 3), 1);
    assert_int_equal(syn_utf8_incomplete_tail("ab\xE2\x82", 4), 2);
    assert_int_equal(syn_utf8_incomplete_tail("a\xF0\x9F\x98", 4), 3);
    assert_int_equal(syn_utf8_incomplete_tail("a\xF0\x9F\x98\x80", 5), 0);
    assert_int_equal(syn_utf8_incomplete_tail("a\xC3\xA9", 3), 0);
    /* Invalid bytes are not "incomplete": more input cannot make them valid. */
    assert_int_equal(syn_utf8_incomplete_tail("a\xFF", 2), 0);
    assert_int_equal(syn_utf8_incomplete_tail("a\xE2\x41", 3), 0);
    assert_int_equal(syn_utf8_incomplete_tail("", 0), 0);
}

static void test_cut(void **state)
{
    (void)state;
    const char *text = "a\xE2\x82\xAC" "b"; /* a € b */
    assert_int_equal(syn_utf8_cut(text, 5, 10), 5);
    assert_int_equal(syn_utf8_cut(text, 5, 4), 4);
    assert_int_equal(syn_utf8_cut(text, 5, 3), 1);
    assert_int_equal(syn_utf8_cut(text, 5, 2), 1);
    assert_int_equal(syn_utf8_cut(text, 5, 1), 1);
    assert_int_equal(syn_utf8_cut(text, 5, 0), 0);
}

static void test_valid(void **state)
{
    (void)state;
    assert_true(syn_utf8_valid("plain", 5, NULL));
    assert_false(syn_utf8_valid("a\0", 2, NULL));
    assert_false(syn_utf8_valid("\xC3", 1, NULL));
    assert_false(syn_utf8_valid("\xED\xB0\x80", 3, NULL));
}

/* The cut at every byte limit of a text with 1-, 2-, 3- and 4-byte characters: the
 * prefix is valid, and one byte more would either pass the limit or split a
 * character. Empty text and a limit of exactly the length are kept whole. */
static void test_cut_boundaries(void **state)
{
    (void)state;
    const char *text = "a\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80z"; /* a é € 😀 z */
    size_t len = strlen(text);
    const size_t want[] = {0, 1, 1, 3, 3, 3, 6, 6, 6, 6, 10, 11};
    for (size_t max = 0; max <= len; max++) {
        size_t n = syn_utf8_cut(text, len, max);
        assert_int_equal(n, want[max]);
        assert_true(syn_utf8_valid(text, n, NULL));
    }
    assert_int_equal(syn_utf8_cut(text, len, len + 5), len);
    assert_int_equal(syn_utf8_cut("", 0, 0), 0);
    assert_int_equal(syn_utf8_cut("", 0, 9), 0);
    assert_int_equal(syn_utf8_cut("ab", 2, 2), 2);
}

static void test_boundary_after(void **state)
{
    (void)state;
    const char *tail = "\x82\xAC" "b\xC3\xA9"; /* the end of € cut off, then b é */
    assert_int_equal(syn_utf8_boundary_after(tail, 5, 0), 2);
    assert_int_equal(syn_utf8_boundary_after(tail, 5, 2), 2);
    assert_int_equal(syn_utf8_boundary_after(tail, 5, 4), 5);
    assert_int_equal(syn_utf8_boundary_after("\x80\x80", 2, 0), 2);
    assert_int_equal(syn_utf8_boundary_after("", 0, 0), 0);
}

static void test_valid_offset_and_problem(void **state)
{
    (void)state;
    size_t bad = 99;
    char buf[32];
    assert_true(syn_utf8_valid("", 0, &bad));
    assert_int_equal(bad, 99);
    assert_false(syn_utf8_valid("ab\xE9z", 4, &bad));
    assert_int_equal(bad, 2);
    assert_string_equal(syn_utf8_problem("ab\xE9z", bad, buf), "not valid UTF-8 (byte 0xE9)");
    assert_false(syn_utf8_valid("ab\0z", 4, &bad));
    assert_int_equal(bad, 2);
    assert_string_equal(syn_utf8_problem("ab\0z", bad, buf), "not text: a NUL byte");
    /* a character cut at the end of the input is invalid where it starts */
    assert_false(syn_utf8_valid("abc\xE2\x82", 5, &bad));
    assert_int_equal(bad, 3);
}

static void test_positions(void **state)
{
    (void)state;
    const char *text = "\xC3\xA9t\xC3\xA9\nab"; /* été \n ab */
    size_t len = strlen(text);
    int line, column;
    syn_utf8_position(text, len, 0, &line, &column);
    assert_int_equal(line, 1);
    assert_int_equal(column, 1);
    syn_utf8_position(text, len, 3, &line, &column);
    assert_int_equal(column, 3);
    syn_utf8_position(text, len, 6, &line, &column);
    assert_int_equal(line, 2);
    assert_int_equal(column, 1);
    syn_utf8_position(text, len, 100, &line, &column);
    assert_int_equal(line, 2);
    assert_int_equal(column, 3);
    assert_int_equal(syn_utf8_byte_offset(text, len, 0), 0);
    assert_int_equal(syn_utf8_byte_offset(text, len, 1), 2);
    assert_int_equal(syn_utf8_byte_offset(text, len, 3), 5);
    assert_int_equal(syn_utf8_byte_offset(text, len, 50), len);
    assert_int_equal(syn_utf8_byte_offset("", 0, 3), 0);
    assert_int_equal(syn_utf8_bom_length("\xEF\xBB\xBFx", 4), 3);
    assert_int_equal(syn_utf8_bom_length("\xEF\xBB", 2), 0);
    assert_int_equal(syn_utf8_bom_length("", 0), 0);
}

/* Every byte string of length up to 3 sanitizes to valid UTF-8. */
static void test_exhaustive_short(void **state)
{
    (void)state;
    unsigned char in[3];
    char out[10];
    for (unsigned a = 0; a < 256; a++)
        for (unsigned b = 0; b < 256; b += 3)
            for (unsigned c = 0; c < 256; c += 7) {
                in[0] = (unsigned char)a;
                in[1] = (unsigned char)b;
                in[2] = (unsigned char)c;
                size_t n = syn_utf8_sanitize((const char *)in, 3, out);
                assert_true(n <= 9);
                assert_true(syn_utf8_valid(out, n, NULL));
                if (syn_utf8_valid((const char *)in, 3, NULL)) {
                    assert_int_equal(n, 3);
                    assert_memory_equal(out, in, 3);
                }
            }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_text_unchanged), cmocka_unit_test(test_nul_replaced),
        cmocka_unit_test(test_invalid_bytes_replaced), cmocka_unit_test(test_truncated_sequences),
        cmocka_unit_test(test_incomplete_tail),      cmocka_unit_test(test_cut),
        cmocka_unit_test(test_valid),                cmocka_unit_test(test_exhaustive_short),
        cmocka_unit_test(test_cut_boundaries), cmocka_unit_test(test_boundary_after),
        cmocka_unit_test(test_valid_offset_and_problem), cmocka_unit_test(test_positions),
    };
    return cmocka_run_group_tests_name("common_utf8", tests, NULL, NULL);
}
