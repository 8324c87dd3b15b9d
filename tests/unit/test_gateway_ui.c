/* The dashboard's files as the gateway answers them (gateway/ui.h): every file of ui/
 * built in with its media type, index.html for /ui/, the redirect of / and /ui, the
 * ETag and its 304, the caching and security headers, and 404 for a name not there. */
#include "gateway/router.h"
#include "gateway/ui.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

static struct MHD_Response *answer(const char *path, const char *if_none_match,
                                   unsigned *status)
{
    gateway_route_t route;
    assert_int_equal(gateway_route_match("GET", path, &route), GATEWAY_MATCH_OK);
    struct MHD_Response *response = gateway_ui_response(&route, if_none_match, status);
    assert_non_null(response);
    return response;
}

static void expect_header(struct MHD_Response *response, const char *name, const char *want)
{
    const char *got = MHD_get_response_header(response, name);
    if (!got || strcmp(got, want) != 0)
        fail_msg("%s: %s, want %s", name, got ? got : "(none)", want);
}

static void test_every_file_is_built_in_with_its_type(void **state)
{
    (void)state;
    const char *files[][2] = {
        {"index.html", "text/html; charset=utf-8"}, {"style.css", "text/css; charset=utf-8"},
        {"app.js", "text/javascript; charset=utf-8"}, {"api.js", "text/javascript; charset=utf-8"},
        {"execution.js", "text/javascript; charset=utf-8"}};
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        const gateway_ui_asset_t *asset = gateway_ui_find(files[i][0]);
        if (!asset)
            fail_msg("ui/%s is not built in", files[i][0]);
        assert_string_equal(asset->media_type, files[i][1]);
        assert_true(asset->len > 0);
        assert_int_equal(asset->data[asset->len], 0); /* one byte past: the array's end */
        assert_int_equal(strlen(asset->etag), 18);    /* "…16 hex…" */
    }
    assert_ptr_equal(gateway_ui_find(""), gateway_ui_find("index.html"));
    assert_null(gateway_ui_find("nope.js"));
    assert_null(gateway_ui_find("../CMakeLists.txt"));
}

static void test_the_page_and_its_headers(void **state)
{
    (void)state;
    unsigned status;
    struct MHD_Response *r = answer("/ui/", NULL, &status);
    assert_int_equal(status, 200);
    const gateway_ui_asset_t *index = gateway_ui_find("index.html");
    expect_header(r, "Content-Type", "text/html; charset=utf-8");
    expect_header(r, "ETag", index->etag);
    expect_header(r, "Cache-Control", "no-cache");
    expect_header(r, "X-Content-Type-Options", "nosniff");
    expect_header(r, "Referrer-Policy", "no-referrer");
    const char *csp = MHD_get_response_header(r, "Content-Security-Policy");
    assert_non_null(csp);
    assert_non_null(strstr(csp, "default-src 'none'"));
    assert_non_null(strstr(csp, "script-src 'self'"));
    MHD_destroy_response(r);

    r = answer("/ui/app.js", NULL, &status);
    assert_int_equal(status, 200);
    expect_header(r, "Content-Type", "text/javascript; charset=utf-8");
    MHD_destroy_response(r);
}

static void test_unchanged_is_304(void **state)
{
    (void)state;
    const gateway_ui_asset_t *css = gateway_ui_find("style.css");
    unsigned status;
    struct MHD_Response *r = answer("/ui/style.css", css->etag, &status);
    assert_int_equal(status, 304);
    expect_header(r, "ETag", css->etag);
    assert_null(MHD_get_response_header(r, "Content-Type"));
    MHD_destroy_response(r);
    char list[128];
    snprintf(list, sizeof list, "\"0000000000000000\", %s", css->etag);
    r = answer("/ui/style.css", list, &status);
    assert_int_equal(status, 304);
    MHD_destroy_response(r);
    /* Another file's ETag is not this one's. */
    r = answer("/ui/style.css", gateway_ui_find("app.js")->etag, &status);
    assert_int_equal(status, 200);
    MHD_destroy_response(r);
}

static void test_redirects_and_missing_files(void **state)
{
    (void)state;
    const char *to_ui[] = {"/", "/ui"};
    for (size_t i = 0; i < 2; i++) {
        unsigned status;
        struct MHD_Response *r = answer(to_ui[i], NULL, &status);
        assert_int_equal(status, 302);
        expect_header(r, "Location", "/ui/");
        MHD_destroy_response(r);
    }
    unsigned status;
    struct MHD_Response *r = answer("/ui/missing.js", NULL, &status);
    assert_int_equal(status, 404);
    expect_header(r, "Content-Type", "application/json");
    MHD_destroy_response(r);
    /* Nothing below /ui/ but its files: no directories, no way out. */
    gateway_route_t route;
    assert_int_equal(gateway_route_match("GET", "/ui/a/b.js", &route), GATEWAY_MATCH_NOT_FOUND);
    assert_int_equal(gateway_route_match("GET", "/ui/../x", &route), GATEWAY_MATCH_NOT_FOUND);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_file_is_built_in_with_its_type),
        cmocka_unit_test(test_the_page_and_its_headers),
        cmocka_unit_test(test_unchanged_is_304),
        cmocka_unit_test(test_redirects_and_missing_files),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
