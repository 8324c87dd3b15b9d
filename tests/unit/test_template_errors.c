/* template/errors: the error list, its JSON and summary, the cap, and the UTF-8
 * checks (common/utf8) everything else relies on. */
#include "template/errors.h"
#include "common/utf8.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static void assert_json_text(json_t *value, const char *want)
{
    char *got = json_dumps(value, JSON_COMPACT);
    if (strcmp(got, want) != 0)
        fail_msg("got  %s\nwant %s", got, want);
    free(got);
}

static void test_list_json_and_summary(void **state)
{
    (void)state;
    template_errors_t *errors = template_errors_new();
    char *summary = template_errors_summary(errors);
    assert_string_equal(summary, "");
    free(summary);
    assert_int_equal(template_errors_worst(errors), TEMPLATE_ERROR_INVALID);
    template_errors_add(errors, TEMPLATE_ERROR_INVALID, "w.yaml", 3, 5, "phases[0].name",
                        "missing %s", "name");
    template_errors_add(errors, TEMPLATE_ERROR_SYNTAX, NULL, 0, 0, NULL, "bad");
    assert_int_equal(template_errors_count(errors), 2);
    assert_int_equal(template_errors_worst(errors), TEMPLATE_ERROR_SYNTAX);
    json_t *list = template_errors_json(errors);
    assert_json_text(list, "[{\"line\":3,\"column\":5,\"field\":\"phases[0].name\","
                           "\"message\":\"missing name\"},{\"line\":null,\"column\":null,"
                           "\"field\":null,\"message\":\"bad\"}]");
    json_decref(list);
    summary = template_errors_summary(errors);
    assert_string_equal(summary, "w.yaml:3:5: phases[0].name: missing name (and 1 more error)");
    free(summary);

    /* without a file: the place in words (an HTTP upload has no file name) */
    template_errors_t *upload = template_errors_new();
    template_errors_add(upload, TEMPLATE_ERROR_SYNTAX, NULL, 4, 2, NULL, "invalid YAML");
    summary = template_errors_summary(upload);
    assert_string_equal(summary, "line 4, column 2: invalid YAML");
    free(summary);
    template_errors_add(upload, TEMPLATE_ERROR_TOO_LARGE, NULL, 0, 0, NULL, "big");
    assert_int_equal(template_errors_worst(upload), TEMPLATE_ERROR_TOO_LARGE);

    /* take moves everything over */
    template_errors_take(errors, upload);
    assert_int_equal(template_errors_count(errors), 4);
    assert_int_equal(template_errors_count(upload), 0);
    assert_string_equal(template_errors_get(errors, 3)->message, "big");
    assert_null(template_errors_get(errors, 4));
    template_errors_clear(errors);
    assert_int_equal(template_errors_total(errors), 0);
    template_errors_destroy(&upload);
    template_errors_destroy(&errors);
    template_errors_destroy(&errors);
}

static void test_cap_and_bad_bytes(void **state)
{
    (void)state;
    template_errors_t *errors = template_errors_new();
    for (int i = 0; i < TEMPLATE_MAX_ERRORS + 5; i++)
        template_errors_add(errors, TEMPLATE_ERROR_INVALID, NULL, i + 1, 0, NULL, "e%d", i);
    assert_int_equal(template_errors_count(errors), TEMPLATE_MAX_ERRORS);
    assert_int_equal(template_errors_total(errors), TEMPLATE_MAX_ERRORS + 5);
    json_t *list = template_errors_json(errors);
    assert_json_text(json_array_get(list, TEMPLATE_MAX_ERRORS),
                     "{\"line\":null,\"column\":null,\"field\":null,\"message\":\"5 more "
                     "errors not shown\"}");
    json_decref(list);
    template_errors_clear(errors);
    /* bytes that are not UTF-8 (a cut key, a file name from disk) become '?' */
    template_errors_add(errors, TEMPLATE_ERROR_IO, "f\xff.yaml", 1, 0, "k\xc3", "key '%s'",
                        "caf\xc3");
    const template_error_t *e = template_errors_get(errors, 0);
    assert_string_equal(e->file, "f?.yaml");
    assert_string_equal(e->field, "k?");
    assert_string_equal(e->message, "key 'caf?'");
    list = template_errors_json(errors);
    assert_int_equal(json_array_size(list), 1);
    json_decref(list);
    template_errors_destroy(&errors);
}

static void test_utf8(void **state)
{
    (void)state;
    struct {
        const char *text;
        bool valid;
        size_t bad;
    } cases[] = {
        {"plain", true, 0},
        {"caf\xc3\xa9 \xe2\x9c\x93 \xf0\x9f\x98\x80", true, 0},
        {"\xc3", false, 0},
        {"ab\xc0\xaf", false, 2},             /* overlong */
        {"\xe0\x80\xaf", false, 0},           /* overlong, 3 bytes */
        {"x\xed\xa0\x80", false, 1},          /* surrogate */
        {"\xf4\x90\x80\x80", false, 0},       /* above U+10FFFF */
        {"\xf0\x90\x80", false, 0},           /* cut short */
        {"ok\x80", false, 2},                 /* lone continuation */
        {"\xef\xbf\xbf", true, 0},            /* U+FFFF is well-formed */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t bad = 99;
        bool valid = syn_utf8_valid(cases[i].text, strlen(cases[i].text), &bad);
        if (valid != cases[i].valid)
            fail_msg("case %zu", i);
        if (!valid)
            assert_int_equal(bad, cases[i].bad);
    }
    int line, column;
    const char *text = "ab\ncd\xc3\xa9" "ef\n";
    syn_utf8_position(text, strlen(text), 7, &line, &column);
    assert_int_equal(line, 2);
    assert_int_equal(column, 4); /* c, d, é: the 4th character */
    syn_utf8_position(text, strlen(text), 1000, &line, &column);
    assert_int_equal(line, 3);
    assert_int_equal(column, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_list_json_and_summary),
        cmocka_unit_test(test_cap_and_bad_bytes),
        cmocka_unit_test(test_utf8),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
