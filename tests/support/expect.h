/* expect: cmocka assertions on HTTP responses and JSON, printing what differed. */
#ifndef SYN_TEST_EXPECT_H
#define SYN_TEST_EXPECT_H

#include "tests/support/http.h"

#include <jansson.h>

/* Fails the test unless the response has this status and a JSON body equal to
 * expected_json (compared as JSON values, key order ignored). */
#define expect_response(resp, status, expected_json) \
    expect_response_at((resp), (status), (expected_json), __FILE__, __LINE__)
void expect_response_at(const http_response_t *resp, long status, const char *expected_json,
                        const char *file, int line);

/* Fails unless the string at key is a RFC 3339 UTC timestamp with microseconds. */
#define expect_timestamp(obj, key) expect_timestamp_at((obj), (key), __FILE__, __LINE__)
void expect_timestamp_at(const json_t *obj, const char *key, const char *file, int line);

/* The string at key of obj, or "" (never NULL, for asserts). */
const char *json_str(const json_t *obj, const char *key);
/* The number (integer or real) at key of obj; fails the test when it is none. */
double json_num(const json_t *obj, const char *key);

#endif
