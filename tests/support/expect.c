#include "tests/support/expect.h"

#include <regex.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <cmocka.h>

void expect_response_at(const http_response_t *resp, long status, const char *expected_json,
                        const char *file, int line)
{
    json_error_t err;
    json_t *expected = json_loads(expected_json, 0, &err);
    if (!expected) {
        fprintf(stderr, "%s:%d: bad expected JSON: %s\n", file, line, err.text);
        fail();
    }
    int ok = resp->status == status && resp->json && json_equal(resp->json, expected);
    if (!ok) {
        fprintf(stderr, "%s:%d: expected %ld %s\n%*s got %ld %s\n", file, line, status,
                expected_json, (int)0, "", resp->status, resp->body ? resp->body : "(no body)");
    }
    json_decref(expected);
    if (!ok)
        _fail(file, line);
}

void expect_timestamp_at(const json_t *obj, const char *key, const char *file, int line)
{
    const char *value = json_string_value(json_object_get(obj, key));
    regex_t re;
    regcomp(&re, "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{6}Z$",
            REG_EXTENDED | REG_NOSUB);
    int ok = value && regexec(&re, value, 0, NULL, 0) == 0;
    regfree(&re);
    if (!ok) {
        fprintf(stderr, "%s:%d: %s is not an RFC 3339 UTC microsecond timestamp: %s\n", file,
                line, key, value ? value : "(missing)");
        _fail(file, line);
    }
}

const char *json_str(const json_t *obj, const char *key)
{
    const char *s = json_string_value(json_object_get(obj, key));
    return s ? s : "";
}

double json_num(const json_t *obj, const char *key)
{
    const json_t *v = json_object_get(obj, key);
    if (!json_is_number(v))
        fail_msg("%s is not a number", key);
    return json_number_value(v);
}
