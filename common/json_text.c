#include "common/json_text.h"

#include "common/buffer.h"
#include "common/utf8.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char *data;
    size_t len;
    size_t cap;
    bool failed;
} text_t;

static bool reserve(text_t *t, size_t more)
{
    if (t->failed)
        return false;
    if (t->len + more > t->cap && !syn_buffer_reserve(&t->data, &t->cap, t->len + more, 256))
        t->failed = true;
    return !t->failed;
}

static void put(text_t *t, const char *bytes, size_t n)
{
    if (reserve(t, n)) {
        memcpy(t->data + t->len, bytes, n);
        t->len += n;
    }
}

static void put_char(text_t *t, char c)
{
    if (reserve(t, 1))
        t->data[t->len++] = c;
}

static void put_integer(text_t *t, json_int_t value)
{
    char digits[24];
    size_t n = 0;
    /* In unsigned arithmetic, so that the most negative value has a magnitude. */
    uint64_t magnitude = value < 0 ? 0 - (uint64_t)value : (uint64_t)value;
    do {
        digits[sizeof digits - 1 - n++] = (char)('0' + magnitude % 10);
        magnitude /= 10;
    } while (magnitude);
    if (value < 0)
        digits[sizeof digits - 1 - n++] = '-';
    put(t, digits + sizeof digits - n, n);
}

/* The fewest significant digits (15 to 17) that read back as the same double:
 * 0.1 and 0.043193, not 0.10000000000000001 and 0.043193000000000002 (jansson's
 * default of 17 always). jansson's own formatting otherwise (".0", exponent
 * form), without copying its rules. */
static void put_real(text_t *t, const json_t *real)
{
    double value = json_real_value(real);
    for (int precision = 15; precision <= 17; precision++) {
        char *text = json_dumps(real, JSON_COMPACT | JSON_ENCODE_ANY |
                                          JSON_REAL_PRECISION(precision));
        if (!text) {
            t->failed = true;
            return;
        }
        if (precision == 17 || strtod(text, NULL) == value) {
            put(t, text, strlen(text));
            free(text);
            return;
        }
        free(text);
    }
}

/* Escapes what JSON requires (quote, backslash, controls, as jansson writes
 * them) and copies the rest in runs, each checked to be UTF-8. */
static void put_string(text_t *t, const char *s, size_t len)
{
    static const char hex[] = "0123456789ABCDEF";
    /* Room for the usual case (few escapes) up front, in one step. */
    if (!reserve(t, len + 16))
        return;
    put_char(t, '"');
    size_t run = 0;
    unsigned char high = 0; /* any byte >= 0x80 in the current run */
    for (size_t i = 0; i <= len; i++) {
        unsigned char c = i < len ? (unsigned char)s[i] : 0;
        bool end = i == len;
        if (!end && c >= 0x20 && c != '"' && c != '\\') {
            high |= c;
            continue;
        }
        if ((high & 0x80) &&
            syn_utf8_valid_prefix((const uint8_t *)s + run, i - run) != i - run) {
            t->failed = true;
            return;
        }
        high = 0;
        put(t, s + run, i - run);
        run = i + 1;
        if (end)
            break;
        char escape[6] = {'\\', 0};
        size_t n = 2;
        switch (c) {
        case '"': escape[1] = '"'; break;
        case '\\': escape[1] = '\\'; break;
        case '\b': escape[1] = 'b'; break;
        case '\f': escape[1] = 'f'; break;
        case '\n': escape[1] = 'n'; break;
        case '\r': escape[1] = 'r'; break;
        case '\t': escape[1] = 't'; break;
        default:
            memcpy(escape + 1, "u00", 3);
            escape[4] = hex[c >> 4];
            escape[5] = hex[c & 0xf];
            n = 6;
        }
        put(t, escape, n);
    }
    put_char(t, '"');
}

static void put_value(text_t *t, const json_t *value, int depth)
{
    if (t->failed)
        return;
    if (depth > SYN_JSON_TEXT_MAX_DEPTH) {
        t->failed = true;
        return;
    }
    switch (json_typeof(value)) {
    case JSON_OBJECT: {
        put_char(t, '{');
        bool first = true;
        for (void *it = json_object_iter((json_t *)value); it;
             it = json_object_iter_next((json_t *)value, it)) {
            if (!first)
                put_char(t, ',');
            first = false;
            put_string(t, json_object_iter_key(it), json_object_iter_key_len(it));
            put_char(t, ':');
            put_value(t, json_object_iter_value(it), depth + 1);
        }
        put_char(t, '}');
        break;
    }
    case JSON_ARRAY: {
        put_char(t, '[');
        size_t n = json_array_size(value);
        for (size_t i = 0; i < n; i++) {
            if (i)
                put_char(t, ',');
            put_value(t, json_array_get(value, i), depth + 1);
        }
        put_char(t, ']');
        break;
    }
    case JSON_STRING:
        put_string(t, json_string_value(value), json_string_length(value));
        break;
    case JSON_INTEGER:
        put_integer(t, json_integer_value(value));
        break;
    case JSON_REAL:
        put_real(t, value);
        break;
    case JSON_TRUE:
        put(t, "true", 4);
        break;
    case JSON_FALSE:
        put(t, "false", 5);
        break;
    case JSON_NULL:
        put(t, "null", 4);
        break;
    }
}

char *syn_json_text(const json_t *value)
{
    if (!json_is_object(value) && !json_is_array(value))
        return NULL;
    text_t t = {0};
    put_value(&t, value, 0);
    put_char(&t, '\0');
    if (t.failed) {
        free(t.data);
        return NULL;
    }
    return t.data;
}
