/* cli/table: columns fitted to a width, cut cells, colours, human times. */
#include "cli/table.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

static table_t *sample(void)
{
    const char *headers[] = {"ID", "STATUS", "ERROR"};
    table_t *t = table_new(3, headers);
    assert_non_null(t);
    const char *r1[] = {"exec-1", "completed", NULL};
    const char *r2[] = {"exec-22", "failed", "Phase write failed: the model refused to answer"};
    assert_int_equal(table_add(t, r1, NULL), 0);
    assert_int_equal(table_add(t, r2, NULL), 0);
    return t;
}

/* The widest line of text, in characters. */
static size_t widest(const char *text)
{
    size_t best = 0;
    char *copy = strdup(text);
    for (char *line = strtok(copy, "\n"); line; line = strtok(NULL, "\n"))
        if (table_text_width(line) > best)
            best = table_text_width(line);
    free(copy);
    return best;
}

static void test_columns_align_without_a_limit(void **state)
{
    (void)state;
    table_t *t = sample();
    char *text = table_render(t, 0, false);
    assert_string_equal(text, "ID       STATUS     ERROR\n"
                              "exec-1   completed\n"
                              "exec-22  failed     Phase write failed: the model refused to answer\n");
    free(text);
    table_destroy(&t);
    table_destroy(&t); /* safe twice */
}

static void test_the_flexible_column_gives_way_first(void **state)
{
    (void)state;
    table_t *t = sample();
    table_set_flexible(t, 2);
    char *text = table_render(t, 40, false);
    assert_int_equal(widest(text), 40);
    assert_non_null(strstr(text, "exec-22  failed     Phase write failed:…"));
    assert_non_null(strstr(text, "completed")); /* untouched */
    free(text);
    /* a width nothing fits keeps every column at 3 characters at least */
    text = table_render(t, 5, false);
    assert_non_null(strstr(text, "ex…"));
    free(text);
    table_destroy(&t);
}

static void test_right_alignment_and_colours(void **state)
{
    (void)state;
    const char *headers[] = {"NAME", "N"};
    table_t *t = table_new(2, headers);
    table_set_right(t, 1);
    const char *row[] = {"a", "123"};
    const char *colors[] = {TABLE_GREEN, NULL};
    table_add(t, row, colors);
    char *plain = table_render(t, 0, false);
    assert_string_equal(plain, "NAME    N\na     123\n");
    free(plain);
    char *colored = table_render(t, 0, true);
    assert_non_null(strstr(colored, "\033[1mNAME\033[0m"));
    assert_non_null(strstr(colored, "\033[32ma\033[0m"));
    free(colored);
    table_destroy(&t);
}

static void test_cells_stay_on_one_line(void **state)
{
    (void)state;
    const char *headers[] = {"X"};
    table_t *t = table_new(1, headers);
    const char *row[] = {"two\nlines"};
    table_add(t, row, NULL);
    char *text = table_render(t, 0, false);
    assert_string_equal(text, "X\ntwo lines\n");
    free(text);
    table_destroy(&t);
}

static void test_text_fit_counts_characters(void **state)
{
    (void)state;
    char out[64];
    assert_int_equal(table_text_width("✓ ok"), 4);
    assert_string_equal(table_text_fit("héllo wörld", 5, out, sizeof out), "héll…");
    assert_string_equal(table_text_fit("short", 10, out, sizeof out), "short");
    assert_string_equal(table_text_fit("abcdef", 1, out, sizeof out), "…");
    /* a small buffer never splits a character */
    char small[6];
    table_text_fit("ééééé", 5, small, sizeof small);
    assert_true(strlen(small) % 2 == 0 || !strcmp(small + strlen(small) - 3, "…"));
}

static void test_durations(void **state)
{
    (void)state;
    char out[32];
    assert_string_equal(table_duration(0.42, out, sizeof out), "0.4s");
    assert_string_equal(table_duration(12.9, out, sizeof out), "12s");
    assert_string_equal(table_duration(72, out, sizeof out), "1m12s");
    assert_string_equal(table_duration(3600 * 2 + 180, out, sizeof out), "2h03m");
    assert_string_equal(table_duration(86400 * 3 + 3600 * 4, out, sizeof out), "3d04h");
    assert_string_equal(table_duration(-1, out, sizeof out), "-");
}

static void test_ago(void **state)
{
    (void)state;
    char out[32];
    int64_t now = 1000000000LL * 1000000;
    assert_string_equal(table_ago(now - 3000000, now, out, sizeof out), "3 s ago");
    assert_string_equal(table_ago(now - 300000, now, out, sizeof out), "just now");
    assert_string_equal(table_ago(now - 5 * 60000000LL, now, out, sizeof out), "5 min ago");
    assert_string_equal(table_ago(now - 2 * 3600000000LL, now, out, sizeof out), "2 h ago");
    assert_string_equal(table_ago(now - 4 * 86400000000LL, now, out, sizeof out), "4 d ago");
    assert_string_equal(table_ago(0, now, out, sizeof out), "-");
}

static void test_parse_time(void **state)
{
    (void)state;
    assert_int_equal(table_parse_time("1970-01-01T00:00:01.5Z"), 1500000);
    assert_int_equal(table_parse_time("2026-11-28T14:56:19.123456Z"), 1795877779123456LL);
    assert_int_equal(table_parse_time("2026-11-28T14:56:19Z"), 1795877779000000LL);
    const char *bad[] = {"", "yesterday", "2026-11-28 14:56:19Z", "2026-11-28T14:56:19.Z",
                         "2026-11-28T14:56:19+01:00"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(table_parse_time(bad[i]), 0);
    assert_int_equal(table_parse_time(NULL), 0);
}

static void test_counts_and_costs(void **state)
{
    (void)state;
    char out[32];
    assert_string_equal(table_count(34, out, sizeof out), "34");
    assert_string_equal(table_count(1234, out, sizeof out), "1.2k");
    assert_string_equal(table_count(5600000, out, sizeof out), "5.6M");
    assert_string_equal(table_bytes(512, out, sizeof out), "512 B");
    assert_string_equal(table_bytes(716804, out, sizeof out), "700.0 KiB");
    assert_string_equal(table_bytes(16777216, out, sizeof out), "16.0 MiB");
    assert_string_equal(table_bytes(4509715660LL, out, sizeof out), "4.2 GiB");
    assert_string_equal(table_cost(0.0123, out, sizeof out), "$0.0123");
    assert_string_equal(table_cost(12.5, out, sizeof out), "$12.50");
}

static void test_no_color_wins(void **state)
{
    (void)state;
    setenv("NO_COLOR", "1", 1);
    assert_false(table_use_color(0, false));
    unsetenv("NO_COLOR");
    assert_false(table_use_color(0, true));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_columns_align_without_a_limit),
        cmocka_unit_test(test_the_flexible_column_gives_way_first),
        cmocka_unit_test(test_right_alignment_and_colours),
        cmocka_unit_test(test_cells_stay_on_one_line),
        cmocka_unit_test(test_text_fit_counts_characters),
        cmocka_unit_test(test_durations),
        cmocka_unit_test(test_ago),
        cmocka_unit_test(test_parse_time),
        cmocka_unit_test(test_counts_and_costs),
        cmocka_unit_test(test_no_color_wins),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
