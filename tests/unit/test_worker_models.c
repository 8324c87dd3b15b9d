/* The model table: aliases, prices, costs, the file format and its errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "worker/models.h"

#define SHIPPED_TABLE SYN_SOURCE_DIR "/worker/models.json"

/* The compiled-in table is worker/models.json, byte for byte. */
static void test_default_is_the_shipped_file(void **state)
{
    (void)state;
    FILE *file = fopen(SHIPPED_TABLE, "r");
    assert_non_null(file);
    static char text[65536];
    size_t len = fread(text, 1, sizeof text - 1, file);
    fclose(file);
    text[len] = '\0';
    assert_string_equal(worker_models_default_text(), text);
    char err[256] = "";
    worker_models_t *loaded = worker_models_load(SHIPPED_TABLE, err, sizeof err);
    if (!loaded)
        fail_msg("%s", err);
    worker_models_destroy(&loaded);
}

static void test_aliases(void **state)
{
    (void)state;
    worker_models_t *m = worker_models_default();
    assert_non_null(m);
    assert_string_equal(worker_models_resolve(m, "haiku"), "claude-haiku-4-5-20251001");
    assert_string_equal(worker_models_resolve(m, "sonnet"), "claude-sonnet-4-5-20250929");
    assert_string_equal(worker_models_resolve(m, "opus"), "claude-opus-4-5-20251101");
    /* No model: the default, sonnet. */
    assert_string_equal(worker_models_resolve(m, NULL), "claude-sonnet-4-5-20250929");
    assert_string_equal(worker_models_resolve(m, ""), "claude-sonnet-4-5-20250929");
    /* Full ids and unknown names pass through. */
    assert_string_equal(worker_models_resolve(m, "claude-3-haiku-20240307"),
                        "claude-3-haiku-20240307");
    assert_string_equal(worker_models_resolve(m, "my-own-model"), "my-own-model");
    assert_string_equal(worker_models_prices_as_of(m), "2025-11-24");
    worker_models_destroy(&m);
    worker_models_destroy(&m);
    assert_null(m);
}

static void test_prices_and_cost(void **state)
{
    (void)state;
    worker_models_t *m = worker_models_default();
    worker_price_t p;
    assert_true(worker_models_price(m, "claude-sonnet-4-5-20250929", &p));
    assert_true(p.input == 3.0 && p.output == 15.0 && p.cache_write == 3.75 &&
                p.cache_read == 0.30);
    /* An id without its date names the newest dated entry. */
    assert_true(worker_models_price(m, "claude-opus-4", &p));
    assert_true(p.input == 15.0 && p.output == 75.0);
    assert_true(worker_models_price(m, "claude-haiku-4-5", &p));
    assert_true(p.input == 1.0 && p.output == 5.0);
    assert_false(worker_models_price(m, "claude-opus", &p));
    assert_false(worker_models_price(m, "gpt-4", &p));
    assert_false(worker_models_price(m, "", &p));

    double cost = -1;
    assert_true(worker_models_cost(m, "claude-opus-4-5-20251101", 1000000, 100000, 20000, 500000,
                                   &cost));
    /* 1M × $5 + 0.1M × $25 + 0.02M × $6.25 + 0.5M × $0.50 */
    assert_true(fabs(cost - (5.0 + 2.5 + 0.125 + 0.25)) < 1e-9);
    assert_false(worker_models_cost(m, "unknown", 1000, 1000, 0, 0, &cost));
    assert_true(cost == 0);
    worker_models_destroy(&m);
}

static void expect_error(const char *text, const char *needle)
{
    char err[256] = "";
    worker_models_t *m = worker_models_parse(text, err, sizeof err);
    if (m)
        fail_msg("accepted: %s", text);
    if (!strstr(err, needle))
        fail_msg("error '%s' does not say '%s'", err, needle);
}

static void test_bad_tables(void **state)
{
    (void)state;
    expect_error("[]", "must be a JSON object");
    expect_error("{", "invalid JSON");
    expect_error("{\"aliases\": {}}", "\"models\" must be an object");
    expect_error("{\"models\": {\"m\": {\"input\": 1, \"output\": 2, \"cache_write\": 3}}}",
                 "model \"m\" needs \"cache_read\"");
    expect_error("{\"models\": {\"m\": {\"input\": -1, \"output\": 2, \"cache_write\": 3, "
                 "\"cache_read\": 1}}}",
                 "model \"m\" needs \"input\"");
    expect_error("{\"models\": {}, \"aliases\": {\"a\": 3}}", "alias \"a\" must name");
    expect_error("{\"models\": {}, \"aliases\": []}", "\"aliases\" must be an object");
    expect_error("{\"models\": {}, \"default_model\": 1}", "\"default_model\" must be a string");
    expect_error("{\"models\": {}, \"models\": {}}", "duplicate");
    char err[256] = "";
    assert_null(worker_models_load("/nonexistent/models.json", err, sizeof err));
    assert_string_equal(err, "cannot open /nonexistent/models.json: No such file or directory");
}

static void test_custom_file(void **state)
{
    (void)state;
    char path[] = "/tmp/syn-models-test-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char *text = "{\"default_model\": \"fast\", \"aliases\": {\"fast\": \"local-1\"},"
                       " \"models\": {\"local-1\": {\"input\": 0.5, \"output\": 1,"
                       " \"cache_write\": 0, \"cache_read\": 0}}}";
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    char err[256] = "";
    worker_models_t *m = worker_models_load(path, err, sizeof err);
    unlink(path);
    if (!m)
        fail_msg("%s", err);
    assert_string_equal(worker_models_resolve(m, NULL), "local-1");
    assert_string_equal(worker_models_resolve(m, "sonnet"), "sonnet"); /* not in this table */
    assert_string_equal(worker_models_prices_as_of(m), "");
    double cost;
    assert_true(worker_models_cost(m, "local-1", 2000000, 1000000, 0, 0, &cost));
    assert_true(fabs(cost - 2.0) < 1e-9);
    worker_models_destroy(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_default_is_the_shipped_file),
        cmocka_unit_test(test_aliases),
        cmocka_unit_test(test_prices_and_cost),
        cmocka_unit_test(test_bad_tables),
        cmocka_unit_test(test_custom_file),
    };
    return cmocka_run_group_tests_name("worker_models", tests, NULL, NULL);
}
