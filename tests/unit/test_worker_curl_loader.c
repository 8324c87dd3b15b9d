/* curl_loader: libcurl found and resolved at run time, or a clear reason why not. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "worker/curl_loader.h"

static void test_missing_library_says_which(void **state)
{
    (void)state;
    worker_curl_t table;
    char err[256] = "";
    assert_int_equal(worker_curl_open("libsyn-no-such-curl.so.4", &table, err, sizeof err), -1);
    assert_non_null(strstr(err, "libsyn-no-such-curl.so.4"));
}

static void test_library_without_curl_functions(void **state)
{
    (void)state;
    worker_curl_t table;
    char err[256] = "";
    assert_int_equal(worker_curl_open("libm.so.6", &table, err, sizeof err), -1);
    assert_string_equal(err, "libm.so.6 has no curl_global_init");
}

/* The resolved functions are libcurl's own: a request handle can be made and
 * configured, and the error texts are curl's. */
static void test_resolves_working_functions(void **state)
{
    (void)state;
    char err[256] = "";
    const worker_curl_t *curl = worker_curl_load(err, sizeof err);
    if (!curl)
        fail_msg("%s: %s", WORKER_CURL_LIBRARY, err);
    assert_ptr_equal(worker_curl_load(err, sizeof err), curl);
    assert_int_equal(curl->global_init(CURL_GLOBAL_DEFAULT), CURLE_OK);
    CURL *easy = curl->easy_init();
    CURLM *multi = curl->multi_init();
    assert_non_null(easy);
    assert_non_null(multi);
    assert_int_equal(curl->easy_setopt(easy, CURLOPT_URL, "http://127.0.0.1:9/"), CURLE_OK);
    assert_int_equal(curl->easy_setopt(easy, (CURLoption)999999, 1L), CURLE_UNKNOWN_OPTION);
    long code = -1;
    assert_int_equal(curl->easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &code), CURLE_OK);
    assert_int_equal(code, 0);
    assert_int_equal(curl->multi_add_handle(multi, easy), CURLM_OK);
    assert_int_equal(curl->multi_remove_handle(multi, easy), CURLM_OK);
    struct curl_slist *list = curl->slist_append(NULL, "accept: text/event-stream");
    assert_non_null(list);
    assert_string_equal(list->data, "accept: text/event-stream");
    curl->slist_free_all(list);
    assert_string_equal(curl->easy_strerror(CURLE_OK), "No error");
    assert_string_equal(curl->multi_strerror(CURLM_OK), "No error");
    curl->easy_cleanup(easy);
    assert_int_equal(curl->multi_cleanup(multi), CURLM_OK);
    curl->global_cleanup();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_missing_library_says_which),
        cmocka_unit_test(test_library_without_curl_functions),
        cmocka_unit_test(test_resolves_working_functions),
    };
    return cmocka_run_group_tests_name("worker_curl_loader", tests, NULL, NULL);
}
