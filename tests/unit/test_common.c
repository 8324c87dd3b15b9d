/* common/: flags, clock formatting, ids. */
#include "common/buffer.h"
#include "common/clock.h"
#include "common/flags.h"
#include "common/ids.h"
#include "common/log.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

static void test_time_format_is_rfc3339_utc_micro(void **state)
{
    (void)state;
    char buf[SYN_TIME_BUFSIZE];
    assert_string_equal(syn_time_format(1764341779123456LL, buf), "2025-11-28T14:56:19.123456Z");
    assert_string_equal(syn_time_format(0, buf), "1970-01-01T00:00:00.000000Z");
    assert_string_equal(syn_time_format(-1, buf), "1969-12-31T23:59:59.999999Z");
    assert_string_equal(syn_time_format(1798761599000001LL, buf), "2026-12-31T23:59:59.000001Z");
    assert_string_equal(syn_time_format(951782400987654LL, buf), "2000-02-29T00:00:00.987654Z");
}

static void test_ids_have_prefix_and_lowercase_hex(void **state)
{
    (void)state;
    char a[32], b[32];
    assert_int_equal(syn_id_make("exec-", 12, a, sizeof a), 0);
    assert_int_equal(syn_id_make("exec-", 12, b, sizeof b), 0);
    assert_int_equal(strlen(a), 17);
    assert_memory_equal(a, "exec-", 5);
    for (int i = 5; i < 17; i++)
        assert_non_null(strchr("0123456789abcdef", a[i]));
    assert_string_not_equal(a, b);
    char small[8];
    assert_int_equal(syn_id_make("exec-", 12, small, sizeof small), -1);
}

/* SYN_ID_PATTERN, which the API and the template files both enforce. */
static void test_id_rule(void **state)
{
    (void)state;
    char id[128];
    memset(id, 'a', 101);
    id[101] = '\0';
    assert_false(syn_id_is_valid(id)); /* 101 characters */
    id[100] = '\0';
    assert_true(syn_id_is_valid(id));
    assert_true(syn_id_is_valid("A"));
    assert_true(syn_id_is_valid("9.x_y-z"));
    assert_false(syn_id_is_valid(""));
    assert_false(syn_id_is_valid("_x"));
    assert_false(syn_id_is_valid(".x"));
    assert_false(syn_id_is_valid("a b"));
    assert_false(syn_id_is_valid("a/b"));
    assert_false(syn_id_is_valid("caf\xc3\xa9"));
}

typedef struct {
    const char *http;
    long slots;
    bool verbose;
} opts_t;

static syn_flags_result_t parse(opts_t *o, int argc, char **argv)
{
    syn_flag_t flags[] = {
        {"http", SYN_FLAG_STRING, "ADDR", "address", &o->http, 0, 0},
        {"slots", SYN_FLAG_INT, "N", "slots", &o->slots, 1, 64},
        {"verbose", SYN_FLAG_BOOL, NULL, "chatty", &o->verbose, 0, 0},
        {NULL, 0, NULL, NULL, NULL, 0, 0},
    };
    return syn_flags_parse("t", "test", flags, argc, argv);
}

static void test_flags_parse_forms_and_environment(void **state)
{
    (void)state;
    opts_t o = {"127.0.0.1:1", 4, false};
    char *argv[] = {"t", "--http", "0.0.0.0:9", "--slots=8", "--verbose", NULL};
    assert_int_equal(parse(&o, 5, argv), SYN_FLAGS_OK);
    assert_string_equal(o.http, "0.0.0.0:9");
    assert_int_equal(o.slots, 8);
    assert_true(o.verbose);

    setenv("SYN_SLOTS", "16", 1);
    opts_t e = {"x", 4, false};
    char *none[] = {"t", NULL};
    assert_int_equal(parse(&e, 1, none), SYN_FLAGS_OK);
    assert_int_equal(e.slots, 16);
    char *override[] = {"t", "--slots", "2", NULL};
    assert_int_equal(parse(&e, 3, override), SYN_FLAGS_OK);
    assert_int_equal(e.slots, 2); /* the command line wins */
    unsetenv("SYN_SLOTS");
}

static void test_flags_reject_bad_input(void **state)
{
    (void)state;
    opts_t o = {"x", 4, false};
    char *unknown[] = {"t", "--nope", NULL};
    char *range[] = {"t", "--slots", "65", NULL};
    char *notint[] = {"t", "--slots", "4x", NULL};
    char *missing[] = {"t", "--http", NULL};
    char *positional[] = {"t", "extra", NULL};
    assert_int_equal(parse(&o, 2, unknown), SYN_FLAGS_ERROR);
    assert_int_equal(parse(&o, 3, range), SYN_FLAGS_ERROR);
    assert_int_equal(parse(&o, 3, notint), SYN_FLAGS_ERROR);
    assert_int_equal(parse(&o, 2, missing), SYN_FLAGS_ERROR);
    assert_int_equal(parse(&o, 2, positional), SYN_FLAGS_ERROR);
    assert_int_equal(o.slots, 4);
    setenv("SYN_SLOTS", "lots", 1);
    char *none[] = {"t", NULL};
    assert_int_equal(parse(&o, 1, none), SYN_FLAGS_ERROR);
    unsetenv("SYN_SLOTS");
}

/* A password read from the environment is never shown by the usage, which
 * --help and every flag error print. */
static void test_flags_secret_never_shown(void **state)
{
    (void)state;
    const char *user = NULL, *password = NULL;
    syn_flag_t flags[] = {
        {"api-user", SYN_FLAG_STRING, "USER", "user", &user, 0, 0},
        {"api-password", SYN_FLAG_SECRET, "PASS", "password", &password, 0, 0},
        {NULL, 0, NULL, NULL, NULL, 0, 0},
    };
    setenv("SYN_API_USER", "alice", 1);
    setenv("SYN_API_PASSWORD", "hunter2-secret", 1);
    char *none[] = {"t", NULL};
    assert_int_equal(syn_flags_parse("t", "test", flags, 1, none), SYN_FLAGS_OK);
    assert_string_equal(password, "hunter2-secret");
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    syn_flags_usage("t", "test", flags, out);
    fclose(out);
    assert_non_null(strstr(text, "(default alice)"));
    assert_null(strstr(text, "hunter2"));
    free(text);
    unsetenv("SYN_API_USER");
    unsetenv("SYN_API_PASSWORD");
}

/* A log-level flag is checked while parsing and sets the threshold when all is well. */
static void test_flags_log_level_kind(void **state)
{
    (void)state;
    const char *level = "info";
    syn_flag_t flags[] = {
        {"log-level", SYN_FLAG_LOG_LEVEL, "LEVEL", "threshold", &level, 0, 0},
        {NULL, 0, NULL, NULL, NULL, 0, 0},
    };
    char *bad[] = {"t", "--log-level", "loud", NULL};
    assert_int_equal(syn_flags_parse("t", "test", flags, 3, bad), SYN_FLAGS_ERROR);
    assert_string_equal(level, "info");
    char *good[] = {"t", "--log-level=error", NULL};
    assert_int_equal(syn_flags_parse("t", "test", flags, 2, good), SYN_FLAGS_OK);
    assert_string_equal(level, "error");
    syn_log_set_level(SYN_LOG_INFO);
}

/* --log-format json: one JSON object a line with ts, level, program, component and
 * msg, the message's key=value pairs as fields; text keeps the old line. */
static void test_log_render_json_fields(void **state)
{
    (void)state;
    char line[512];
    size_t n = syn_log_render(line, sizeof line, SYN_LOG_JSON, 0, SYN_LOG_WARN, "syn-broker",
                              "broker",
                              "execution cancelled execution=exec-1 reason=\"too slow now\" "
                              "status=3: gone msg=x");
    assert_int_equal(line[n - 1], '\n');
    assert_string_equal(line, "{\"ts\":\"1970-01-01T00:00:00.000000Z\",\"level\":\"warn\","
                              "\"program\":\"syn-broker\",\"component\":\"broker\","
                              "\"msg\":\"execution cancelled gone msg=x\",\"execution\":"
                              "\"exec-1\",\"reason\":\"too slow now\",\"status\":\"3\"}\n");
    /* Bytes that are not UTF-8 do not make the line unprintable. */
    n = syn_log_render(line, sizeof line, SYN_LOG_JSON, 0, SYN_LOG_INFO, "w", "c", "bad=\xff");
    assert_non_null(strstr(line, "\"bad\":\"\xef\xbf\xbd\"}"));
    n = syn_log_render(line, sizeof line, SYN_LOG_TEXT, 0, SYN_LOG_INFO, "w", "broker", "hi a=b");
    assert_string_equal(line, "1970-01-01T00:00:00.000000Z INFO  broker  hi a=b\n");
}

/* --log-format is every program's flag: parsed from argv or SYN_LOG_FORMAT, refused
 * when it is neither text nor json, and shown in the usage. */
static void test_flags_log_format_builtin(void **state)
{
    (void)state;
    syn_flag_t flags[] = {{NULL, 0, NULL, NULL, NULL, 0, 0}};
    char *bad[] = {"t", "--log-format", "xml", NULL};
    assert_int_equal(syn_flags_parse("t", "test", flags, 3, bad), SYN_FLAGS_ERROR);
    char *good[] = {"t", "--log-format=json", NULL};
    assert_int_equal(syn_flags_parse("t", "test", flags, 2, good), SYN_FLAGS_OK);
    assert_string_equal(getenv("SYN_LOG_FORMAT"), "json");
    setenv("SYN_LOG_FORMAT", "yaml", 1);
    char *none[] = {"t", NULL};
    assert_int_equal(syn_flags_parse("t", "test", flags, 1, none), SYN_FLAGS_ERROR);
    unsetenv("SYN_LOG_FORMAT");
    assert_int_equal(syn_flags_parse("t", "test", flags, 1, none), SYN_FLAGS_OK);
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    syn_flags_usage("t", "test", flags, out);
    fclose(out);
    assert_non_null(strstr(text, "--log-format text|json"));
    free(text);
}

static void test_log_levels_parse(void **state)
{
    (void)state;
    syn_log_level_t level;
    assert_int_equal(syn_log_parse_level("warn", &level), 0);
    assert_int_equal(level, SYN_LOG_WARN);
    assert_int_equal(syn_log_parse_level("loud", &level), -1);
}

/* A buffer starts at `first`, doubles to what is needed, keeps its bytes, and a need
 * it cannot meet changes nothing. */
static void test_buffer_reserve(void **state)
{
    (void)state;
    char *data = NULL;
    size_t cap = 0;
    assert_true(syn_buffer_reserve(&data, &cap, 10, 16));
    assert_int_equal(cap, 16);
    memcpy(data, "0123456789", 10);
    char *before = data;
    assert_true(syn_buffer_reserve(&data, &cap, 16, 16)); /* fits: untouched */
    assert_ptr_equal(data, before);
    assert_int_equal(cap, 16);
    assert_true(syn_buffer_reserve(&data, &cap, 100, 16));
    assert_int_equal(cap, 128);
    assert_memory_equal(data, "0123456789", 10);
    before = data;
    assert_false(syn_buffer_reserve(&data, &cap, SIZE_MAX, 16));
    assert_ptr_equal(data, before);
    assert_int_equal(cap, 128);
    free(data);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_time_format_is_rfc3339_utc_micro),
        cmocka_unit_test(test_ids_have_prefix_and_lowercase_hex),
        cmocka_unit_test(test_id_rule),
        cmocka_unit_test(test_flags_parse_forms_and_environment),
        cmocka_unit_test(test_log_render_json_fields),
        cmocka_unit_test(test_flags_log_format_builtin),
        cmocka_unit_test(test_flags_reject_bad_input),
        cmocka_unit_test(test_flags_log_level_kind),
        cmocka_unit_test(test_flags_secret_never_shown),
        cmocka_unit_test(test_log_levels_parse),
        cmocka_unit_test(test_buffer_reserve),
    };
    return cmocka_run_group_tests_name("common", tests, NULL, NULL);
}
