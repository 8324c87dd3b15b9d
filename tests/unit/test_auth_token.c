/* auth/token: tokens made, hashed, kept in a file and checked. */
#include "auth/token.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

static char dir[64];
static char path[128];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/syn-test-token-XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/tokens", dir);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    unlink(path);
    rmdir(dir);
    return 0;
}

static void write_file(const char *text)
{
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
}

static void test_generate_is_43_base64url_characters_and_fresh(void **state)
{
    (void)state;
    char a[SYN_TOKEN_TEXT], b[SYN_TOKEN_TEXT];
    assert_int_equal(syn_token_generate(a), 0);
    assert_int_equal(syn_token_generate(b), 0);
    assert_int_equal(strlen(a), 43);
    assert_int_equal(strspn(a, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"),
                     43);
    assert_string_not_equal(a, b);
}

static void test_hash_is_sha256_hex(void **state)
{
    (void)state;
    char hex[SYN_TOKEN_HASH_HEX];
    syn_token_hash("abc", 3, hex);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

static void test_append_load_and_check(void **state)
{
    (void)state;
    char err[256], t1[SYN_TOKEN_TEXT], t2[SYN_TOKEN_TEXT], h[SYN_TOKEN_HASH_HEX];
    syn_token_generate(t1);
    syn_token_generate(t2);
    syn_token_hash(t1, strlen(t1), h);
    assert_int_equal(syn_tokens_append(path, "ci-bot", SYN_SCOPE_RUN, h, err, sizeof err), 0);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    syn_token_hash(t2, strlen(t2), h);
    assert_int_equal(syn_tokens_append(path, "ops", SYN_SCOPE_ADMIN, h, err, sizeof err), 0);
    assert_int_equal(syn_tokens_append(path, "ops", SYN_SCOPE_READ, h, err, sizeof err), -1);
    assert_non_null(strstr(err, "already has a token named ops"));
    assert_int_equal(syn_tokens_append(path, "bad name", SYN_SCOPE_READ, h, err, sizeof err), -1);
    /* A file whose last line has no newline (edited by hand) still gets a line of its own. */
    FILE *f = fopen(path, "a");
    fputs("# edited by hand, no newline", f);
    fclose(f);
    assert_int_equal(syn_tokens_append(path, "late", SYN_SCOPE_READ, h, err, sizeof err), 0);

    syn_tokens_t *tokens = syn_tokens_load(path, err, sizeof err);
    assert_non_null(tokens);
    assert_int_equal(syn_tokens_count(tokens), 3);
    const char *name = NULL;
    syn_scope_t scope = 0;
    assert_true(syn_tokens_check(tokens, t1, strlen(t1), &name, &scope));
    assert_string_equal(name, "ci-bot");
    assert_int_equal(scope, SYN_SCOPE_RUN);
    assert_true(syn_tokens_check(tokens, t2, strlen(t2), &name, &scope));
    assert_string_equal(name, "ops");
    assert_int_equal(scope, SYN_SCOPE_ADMIN);
    assert_false(syn_tokens_check(tokens, t1, strlen(t1) - 1, NULL, NULL));
    assert_false(syn_tokens_check(tokens, "", 0, NULL, NULL));
    syn_tokens_destroy(&tokens);
    syn_tokens_destroy(&tokens);
}

static void test_load_refuses_bad_lines_with_their_number(void **state)
{
    (void)state;
    const char *good = "a read sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\n";
    struct {
        const char *text, *error;
    } cases[] = {
        {"# c\n\nx read\n", ":3: expected NAME SCOPE sha256:HEX"},
        {"x write sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\n",
         ":1: scope must be read, run or admin"},
        {"x read sha1:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\n",
         ":1: hash must be"},
        {"x read sha256:BA7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\n",
         ":1: hash must be"},
        {"x read sha256:0000000000000000000000000000000000000000000000000000000000000000\n",
         ":1: an all-zero hash"},
        {"x! read sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\n",
         ":1: invalid name"},
        {"x read sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad extra\n",
         ":1: expected"},
    };
    char err[256];
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        write_file(cases[i].text);
        assert_null(syn_tokens_load(path, err, sizeof err));
        if (!strstr(err, cases[i].error))
            fail_msg("case %zu: got '%s'", i, err);
    }
    char twice[512];
    snprintf(twice, sizeof twice, "%s%s", good, good);
    write_file(twice);
    assert_null(syn_tokens_load(path, err, sizeof err));
    assert_non_null(strstr(err, ":2: name a is used twice"));
    write_file(good);
    syn_tokens_t *ok = syn_tokens_load(path, err, sizeof err);
    assert_non_null(ok);
    assert_true(syn_tokens_check(ok, "abc", 3, NULL, NULL));
    syn_tokens_destroy(&ok);
    unlink(path);
    assert_null(syn_tokens_load(path, err, sizeof err));
    assert_non_null(strstr(err, "No such file"));
}

static void test_scopes(void **state)
{
    (void)state;
    syn_scope_t s;
    assert_int_equal(syn_scope_parse("read", &s), 0);
    assert_int_equal(s, SYN_SCOPE_READ);
    assert_int_equal(syn_scope_parse("admin", &s), 0);
    assert_int_equal(s, SYN_SCOPE_ADMIN);
    assert_int_equal(syn_scope_parse("Admin", &s), -1);
    assert_int_equal(syn_scope_parse(NULL, &s), -1);
    assert_string_equal(syn_scope_name(SYN_SCOPE_RUN), "run");
    assert_true(SYN_SCOPE_READ < SYN_SCOPE_RUN && SYN_SCOPE_RUN < SYN_SCOPE_ADMIN);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_generate_is_43_base64url_characters_and_fresh),
        cmocka_unit_test(test_hash_is_sha256_hex),
        cmocka_unit_test_setup_teardown(test_append_load_and_check, setup, teardown),
        cmocka_unit_test_setup_teardown(test_load_refuses_bad_lines_with_their_number, setup,
                                        teardown),
        cmocka_unit_test(test_scopes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
