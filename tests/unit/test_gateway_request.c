/* One request's answer and body (gateway/request.h): the body kept up to
 * GATEWAY_BODY_LIMIT and dropped whole past it (a 413 follows), nothing kept for a
 * route that did not match, answers set as JSON text, and the broker's absence
 * answered 503 with Retry-After (in /health's own shape for /health). */
#include "gateway/request.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static gateway_request_t *request(gateway_match_t match)
{
    gateway_request_t *req = calloc(1, sizeof *req);
    assert_non_null(req);
    req->match = match;
    return req;
}

static void test_body_within_and_past_the_limit(void **state)
{
    (void)state;
    gateway_request_t *req = request(GATEWAY_MATCH_OK);
    gateway_request_append(req, "{\"a\":", 5);
    gateway_request_append(req, "1}", 2);
    assert_int_equal(req->body_len, 7);
    assert_string_equal(req->body, "{\"a\":1}");
    assert_false(req->body_too_large);

    size_t chunk = 64 * 1024;
    char *data = malloc(chunk);
    memset(data, 'x', chunk);
    while (req->body_len + chunk <= GATEWAY_BODY_LIMIT)
        gateway_request_append(req, data, chunk);
    gateway_request_append(req, data, GATEWAY_BODY_LIMIT - req->body_len);
    assert_int_equal(req->body_len, GATEWAY_BODY_LIMIT);
    assert_false(req->body_too_large);
    gateway_request_append(req, "y", 1);
    assert_true(req->body_too_large);
    assert_null(req->body);
    assert_int_equal(req->body_len, 0);
    gateway_request_append(req, data, chunk); /* the rest is read and dropped */
    assert_null(req->body);
    free(data);
    gateway_request_free(req);

    req = request(GATEWAY_MATCH_NOT_FOUND);
    gateway_request_append(req, "abc", 3);
    assert_null(req->body);
    assert_false(req->body_too_large);
    gateway_request_free(req);
}

static void test_answers(void **state)
{
    (void)state;
    gateway_request_t *req = request(GATEWAY_MATCH_OK);
    json_t *body = json_pack("{s:s, s:f}", "detail", "x", "cost", 0.1);
    gateway_request_set_json(req, 404, body);
    json_decref(body);
    assert_int_equal(req->state, REQUEST_ANSWERED);
    assert_int_equal(req->status, 404);
    assert_string_equal(req->content_type, "application/json");
    assert_string_equal(req->answer, "{\"detail\":\"x\",\"cost\":0.1}");
    gateway_request_set_unavailable(req);
    assert_int_equal(req->status, 503);
    assert_true(req->retry_after);
    assert_string_equal(req->answer, "{\"detail\":\"broker unavailable\"}");
    gateway_request_free(req);

    req = request(GATEWAY_MATCH_OK);
    req->health = true;
    gateway_request_set_unavailable(req);
    assert_int_equal(req->status, 503);
    assert_string_equal(req->answer,
                        "{\"status\":\"degraded\",\"broker\":\"down\",\"workers\":0,"
                        "\"mode\":\"degraded\",\"degraded_reasons\":[\"broker unavailable\"]}");
    gateway_request_set_literal(req, 502, GATEWAY_BAD_REPLY);
    assert_int_equal(req->status, 502);
    assert_string_equal(req->answer, GATEWAY_BAD_REPLY);
    gateway_request_free(req);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_body_within_and_past_the_limit),
        cmocka_unit_test(test_answers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
