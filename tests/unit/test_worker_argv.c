/* The --command splitter: quoting without a shell. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "worker/argv.h"

/* Splits line and checks it gives exactly the words in want (NULL-terminated). */
static void check_split(const char *line, const char *const *want)
{
    char err[128] = "";
    int argc = -1;
    char **argv = worker_argv_split(line, &argc, err, sizeof err);
    assert_non_null(argv);
    int n = 0;
    while (want[n])
        n++;
    assert_int_equal(argc, n);
    for (int i = 0; i < n; i++)
        assert_string_equal(argv[i], want[i]);
    assert_null(argv[n]);
    worker_argv_free(argv);
}

static void check_error(const char *line, const char *reason)
{
    char err[128] = "";
    int argc = -1;
    assert_null(worker_argv_split(line, &argc, err, sizeof err));
    assert_string_equal(err, reason);
}

static void test_plain_words(void **state)
{
    (void)state;
    check_split("agent", (const char *[]){"agent", NULL});
    check_split("  agent  --model   x ", (const char *[]){"agent", "--model", "x", NULL});
    check_split("a\tb\nc\r d", (const char *[]){"a", "b", "c", "d", NULL});
}

static void test_single_quotes(void **state)
{
    (void)state;
    check_split("sh -c 'echo hi; exit 3'", (const char *[]){"sh", "-c", "echo hi; exit 3", NULL});
    check_split("'a\\b\"c'", (const char *[]){"a\\b\"c", NULL});
    check_split("''", (const char *[]){"", NULL});
    check_split("x '' y", (const char *[]){"x", "", "y", NULL});
}

static void test_double_quotes(void **state)
{
    (void)state;
    check_split("\"hello world\"", (const char *[]){"hello world", NULL});
    check_split("\"say \\\"hi\\\"\"", (const char *[]){"say \"hi\"", NULL});
    check_split("\"a\\\\b\"", (const char *[]){"a\\b", NULL});
    check_split("\"\\$HOME \\n\"", (const char *[]){"$HOME \\n", NULL});
    check_split("\"it's\"", (const char *[]){"it's", NULL});
    check_split("\"\"", (const char *[]){"", NULL});
}

static void test_backslash_outside_quotes(void **state)
{
    (void)state;
    check_split("a\\ b c", (const char *[]){"a b", "c", NULL});
    check_split("\\'x\\\"", (const char *[]){"'x\"", NULL});
    check_split("\\\\", (const char *[]){"\\", NULL});
}

static void test_adjacent_parts_join(void **state)
{
    (void)state;
    check_split("a'b'\"c\"d", (const char *[]){"abcd", NULL});
    check_split("--prompt='x y'", (const char *[]){"--prompt=x y", NULL});
}

static void test_errors(void **state)
{
    (void)state;
    check_error("echo 'oops", "unbalanced single quote");
    check_error("echo \"oops", "unbalanced double quote");
    check_error("echo \"a\\\"", "unbalanced double quote");
    check_error("echo a\\", "trailing backslash");
    check_error("", "empty command");
    check_error("   \t ", "empty command");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_words),         cmocka_unit_test(test_single_quotes),
        cmocka_unit_test(test_double_quotes),       cmocka_unit_test(test_backslash_outside_quotes),
        cmocka_unit_test(test_adjacent_parts_join), cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests_name("worker_argv", tests, NULL, NULL);
}
