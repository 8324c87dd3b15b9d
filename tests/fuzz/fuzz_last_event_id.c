/* fuzz_last_event_id: the Last-Event-ID header of a resumed event stream
 * (gateway_api_last_event_id, gateway/api.c).
 *
 * Checked against a second, plainly written reading of the rule: optional
 * blanks (space, tab), one or more ASCII digits, optional blanks, a value of at
 * most INT64_MAX. Accepted exactly then, with that value; refused otherwise
 * with the pydantic-style 422 body (loc ["header", "last-event-id"]). */
#include "gateway/api.h"
#include "tests/fuzz/fuzz_check.h"

#include <stdbool.h>

/* The rule, written out again: true with *value when text is an event id. */
static bool reference(const char *text, uint64_t *value)
{
    const char *p = text;
    while (*p == ' ' || *p == '\t')
        p++;
    uint64_t v = 0;
    size_t digits = 0;
    for (; *p >= '0' && *p <= '9'; p++, digits++) {
        unsigned d = (unsigned)(*p - '0');
        if (v > ((uint64_t)INT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    while (*p == ' ' || *p == '\t')
        p++;
    *value = v;
    return digits > 0 && *p == '\0';
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = fuzz_text(data, size);
    uint64_t seq = 1, expected = 0;
    json_t *error = NULL;
    int status = gateway_api_last_event_id(text, &seq, &error);
    if (reference(text, &expected)) {
        FUZZ_CHECK(status == 0 && error == NULL && seq == expected);
    } else {
        FUZZ_CHECK(status == 422 && seq == 0);
        json_t *item = json_array_get(json_object_get(error, "detail"), 0);
        json_t *loc = json_object_get(item, "loc");
        FUZZ_CHECK(json_is_string(json_array_get(loc, 1)));
        FUZZ_CHECK(strcmp(json_string_value(json_array_get(loc, 1)), "last-event-id") == 0);
    }
    json_decref(error);
    free(text);
    return 0;
}
