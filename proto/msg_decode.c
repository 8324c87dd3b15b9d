/* msg_decode: msgpack bytes to a message, strictly (docs/protocol.md says what is
 * accepted). Hand-written, not msgpack-c's unpacker: the unpacker allocates what an
 * array or map header declares before the elements arrive, so a few bytes from a
 * peer could ask for gigabytes; this cursor reader checks every declared length
 * against the bytes that are left (reserve()) and the element budget, so no
 * peer-declared length drives an allocation, and it builds the jansson values the
 * rest of syn uses directly. */
#include "proto/msg.h"
#include "proto/msg_internal.h"

#include "common/utf8.h"

#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* --- decoder ------------------------------------------------------------ */

typedef struct {
    const uint8_t *data;
    size_t size;
    size_t pos;
    size_t elements;
    json_t *version;   /* the message map's "v", kept out of the fields */
    json_t *type_name; /* the message map's "t" */
    char *err;
    size_t errlen;
} cursor_t;

static bool need(cursor_t *cur, size_t n, size_t at)
{
    if (cur->size - cur->pos >= n)
        return true;
    msg_set_err(cur->err, cur->errlen,
            "truncated at offset %zu (value at offset %zu needs %zu bytes, %zu left)", cur->size,
            at, n, cur->size - cur->pos);
    return false;
}

static uint64_t read_be(const uint8_t *p, size_t n)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v = (v << 8) | p[i];
    return v;
}

/* Reads an n-byte big-endian length or integer after the type byte. */
static bool read_uint(cursor_t *cur, size_t n, size_t at, uint64_t *out)
{
    if (!need(cur, n, at))
        return false;
    *out = read_be(cur->data + cur->pos, n);
    cur->pos += n;
    return true;
}

static const char *unsupported_name(uint8_t byte)
{
    switch (byte) {
    case 0xc1: return "0xc1 (reserved)";
    case 0xc4: return "bin8";
    case 0xc5: return "bin16";
    case 0xc6: return "bin32";
    case 0xc7: return "ext8";
    case 0xc8: return "ext16";
    case 0xc9: return "ext32";
    case 0xd4: return "fixext1";
    case 0xd5: return "fixext2";
    case 0xd6: return "fixext4";
    case 0xd7: return "fixext8";
    case 0xd8: return "fixext16";
    }
    return NULL;
}

/* Reads a string body of len bytes at the cursor, checking bounds and UTF-8. */
static const char *read_str_body(cursor_t *cur, uint64_t len, size_t at)
{
    if (cur->size - cur->pos < len) {
        msg_set_err(cur->err, cur->errlen,
                "truncated at offset %zu (string at offset %zu declares %" PRIu64
                " bytes, %zu left)",
                cur->size, at, len, cur->size - cur->pos);
        return NULL;
    }
    const uint8_t *body = cur->data + cur->pos;
    size_t valid = syn_utf8_valid_prefix(body, (size_t) len);
    if (valid != len) {
        msg_set_err(cur->err, cur->errlen, "string %s at offset %zu",
                body[valid] == 0 ? "contains a NUL byte" : "is not valid UTF-8", cur->pos + valid);
        return NULL;
    }
    cur->pos += (size_t) len;
    return (const char *) body;
}

/* If the byte at the cursor starts a string, reads it: 1; 0 if it is not a
 * string (cursor unmoved); -1 on error. */
static int read_str(cursor_t *cur, const char **text, size_t *len)
{
    size_t at = cur->pos;
    uint8_t byte = cur->data[cur->pos];
    uint64_t n;
    if (byte >= 0xa0 && byte <= 0xbf) {
        cur->pos++;
        n = byte & 0x1f;
    } else if (byte >= 0xd9 && byte <= 0xdb) {
        cur->pos++;
        if (!read_uint(cur, (size_t) 1 << (byte - 0xd9), at, &n))
            return -1;
    } else
        return 0;
    *text = read_str_body(cur, n, at);
    *len = (size_t) n;
    return *text ? 1 : -1;
}

static const char *msgpack_kind_at(uint8_t byte)
{
    if (byte <= 0x7f || byte >= 0xe0 || (byte >= 0xcc && byte <= 0xd3))
        return "integer";
    if (byte <= 0x8f || byte == 0xde || byte == 0xdf)
        return "map";
    if (byte <= 0x9f || byte == 0xdc || byte == 0xdd)
        return "array";
    if (byte <= 0xbf || (byte >= 0xd9 && byte <= 0xdb))
        return "string";
    if (byte == 0xc0)
        return "nil";
    if (byte == 0xc2 || byte == 0xc3)
        return "boolean";
    if (byte == 0xca || byte == 0xcb)
        return "float";
    return "unsupported value";
}

static json_t *read_value(cursor_t *cur, int depth);

/* Reserves a container of n entries before anything is allocated for it: each
 * entry is min_bytes values (1 for an array item, 2 for a map key and value) and
 * each value takes at least one byte of the remaining input. */
static bool reserve(cursor_t *cur, uint64_t n, size_t values_per_entry, size_t at,
                    const char *what)
{
    if (n > (cur->size - cur->pos) / values_per_entry) {
        msg_set_err(cur->err, cur->errlen,
                "truncated at offset %zu (%s at offset %zu declares %" PRIu64
                " elements, %zu bytes left)",
                cur->size, what, at, n, cur->size - cur->pos);
        return false;
    }
    cur->elements += (size_t) n * values_per_entry;
    if (cur->elements > MSG_MAX_ELEMENTS) {
        msg_set_err(cur->err, cur->errlen, "more than %u elements (at offset %zu)",
                MSG_MAX_ELEMENTS, at);
        return false;
    }
    return true;
}

static json_t *read_map_body(cursor_t *cur, uint64_t n, size_t at, int depth)
{
    if (!reserve(cur, n, 2, at, "map"))
        return NULL;
    json_t *map = json_object();
    if (map == NULL) {
        msg_set_err(cur->err, cur->errlen, "out of memory");
        return NULL;
    }
    for (uint64_t i = 0; i < n; i++) {
        if (!need(cur, 1, cur->pos))
            goto fail;
        size_t key_at = cur->pos;
        const char *key;
        size_t key_len;
        int is_str = read_str(cur, &key, &key_len);
        if (is_str == 0 && unsupported_name(cur->data[key_at]) != NULL)
            msg_set_err(cur->err, cur->errlen, "unsupported msgpack type %s at offset %zu",
                    unsupported_name(cur->data[key_at]), key_at);
        else if (is_str == 0)
            msg_set_err(cur->err, cur->errlen, "map key at offset %zu is %s, not a string", key_at,
                    msgpack_kind_at(cur->data[key_at]));
        if (is_str != 1)
            goto fail;
        /* The envelope's "v" and "t" go aside: the map becomes the fields. */
        json_t **envelope = NULL;
        if (depth == 1 && key_len == 1 && (key[0] == 'v' || key[0] == 't'))
            envelope = key[0] == 'v' ? &cur->version : &cur->type_name;
        if (envelope ? *envelope != NULL : json_object_getn(map, key, key_len) != NULL) {
            msg_set_err(cur->err, cur->errlen, "duplicate key '%.*s' at offset %zu",
                    (int) (key_len > 64 ? 64 : key_len), key, key_at);
            goto fail;
        }
        if (!need(cur, 1, cur->pos))
            goto fail;
        json_t *value = read_value(cur, depth + 1);
        if (value == NULL)
            goto fail;
        if (envelope != NULL)
            *envelope = value;
        else if (json_object_setn_new_nocheck(map, key, key_len, value) != 0) {
            msg_set_err(cur->err, cur->errlen, "out of memory");
            goto fail;
        }
    }
    return map;
fail:
    json_decref(map);
    return NULL;
}

static json_t *read_array_body(cursor_t *cur, uint64_t n, size_t at, int depth)
{
    if (!reserve(cur, n, 1, at, "array"))
        return NULL;
    json_t *array = json_array();
    if (array == NULL) {
        msg_set_err(cur->err, cur->errlen, "out of memory");
        return NULL;
    }
    for (uint64_t i = 0; i < n; i++) {
        json_t *value = need(cur, 1, cur->pos) ? read_value(cur, depth + 1) : NULL;
        if (value == NULL || json_array_append_new(array, value) != 0) {
            if (value != NULL)
                msg_set_err(cur->err, cur->errlen, "out of memory");
            json_decref(array);
            return NULL;
        }
    }
    return array;
}

static json_t *make_real(cursor_t *cur, double d, size_t at)
{
    if (!isfinite(d)) {
        msg_set_err(cur->err, cur->errlen, "float at offset %zu is not finite", at);
        return NULL;
    }
    json_t *value = json_real(d);
    if (value == NULL)
        msg_set_err(cur->err, cur->errlen, "out of memory");
    return value;
}

static json_t *make_integer(cursor_t *cur, json_int_t n)
{
    json_t *value = json_integer(n);
    if (value == NULL)
        msg_set_err(cur->err, cur->errlen, "out of memory");
    return value;
}

/* Reads one value at depth (the depth it has if it is a container). The caller
 * guarantees at least one byte is left. */
static json_t *read_value(cursor_t *cur, int depth)
{
    size_t at = cur->pos;
    uint8_t byte = cur->data[cur->pos];
    uint64_t n;

    bool is_container = (byte >= 0x80 && byte <= 0x9f) || (byte >= 0xdc && byte <= 0xdf);
    if (is_container && depth > SYN_MSG_MAX_DEPTH) {
        msg_set_err(cur->err, cur->errlen, "nesting deeper than %d at offset %zu", SYN_MSG_MAX_DEPTH,
                at);
        return NULL;
    }
    if (byte <= 0x7f) {
        cur->pos++;
        return make_integer(cur, byte);
    }
    if (byte >= 0xe0) {
        cur->pos++;
        return make_integer(cur, (int8_t) byte);
    }
    if (byte <= 0x8f) {
        cur->pos++;
        return read_map_body(cur, byte & 0x0f, at, depth);
    }
    if (byte <= 0x9f) {
        cur->pos++;
        return read_array_body(cur, byte & 0x0f, at, depth);
    }
    if (byte <= 0xbf || (byte >= 0xd9 && byte <= 0xdb)) {
        const char *text;
        size_t len;
        if (read_str(cur, &text, &len) != 1)
            return NULL;
        json_t *value = json_stringn_nocheck(text, len);
        if (value == NULL)
            msg_set_err(cur->err, cur->errlen, "out of memory");
        return value;
    }
    const char *unsupported = unsupported_name(byte);
    if (unsupported != NULL) {
        msg_set_err(cur->err, cur->errlen, "unsupported msgpack type %s at offset %zu", unsupported,
                at);
        return NULL;
    }
    cur->pos++;
    switch (byte) {
    case 0xc0: return json_null();
    case 0xc2: return json_false();
    case 0xc3: return json_true();
    case 0xca: {
        if (!read_uint(cur, 4, at, &n))
            return NULL;
        uint32_t bits = (uint32_t) n;
        float f;
        memcpy(&f, &bits, sizeof f);
        return make_real(cur, f, at);
    }
    case 0xcb: {
        if (!read_uint(cur, 8, at, &n))
            return NULL;
        double d;
        memcpy(&d, &n, sizeof d);
        return make_real(cur, d, at);
    }
    case 0xcc:
    case 0xcd:
    case 0xce:
    case 0xcf:
        if (!read_uint(cur, (size_t) 1 << (byte - 0xcc), at, &n))
            return NULL;
        if (n > INT64_MAX) {
            msg_set_err(cur->err, cur->errlen, "integer at offset %zu is above INT64_MAX", at);
            return NULL;
        }
        return make_integer(cur, (json_int_t) n);
    case 0xd0:
    case 0xd1:
    case 0xd2:
    case 0xd3: {
        size_t width = (size_t) 1 << (byte - 0xd0);
        if (!read_uint(cur, width, at, &n))
            return NULL;
        /* Sign-extend from width bytes. */
        unsigned shift = (unsigned) (64 - 8 * width);
        int64_t v = (int64_t) (n << shift) >> shift;
        return make_integer(cur, v);
    }
    case 0xdc:
    case 0xdd:
        if (!read_uint(cur, byte == 0xdc ? 2 : 4, at, &n))
            return NULL;
        return read_array_body(cur, n, at, depth);
    case 0xde:
    case 0xdf:
        if (!read_uint(cur, byte == 0xde ? 2 : 4, at, &n))
            return NULL;
        return read_map_body(cur, n, at, depth);
    }
    msg_set_err(cur->err, cur->errlen, "unsupported msgpack byte 0x%02x at offset %zu", byte, at);
    return NULL;
}

syn_msg_t *syn_msg_decode(const void *data, size_t size, char *err, size_t errlen)
{
    /* Empty until a reason is set: formatting "no error" for every message cost
     * more than some of them take to decode. */
    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if (size == 0 || data == NULL) {
        msg_set_err(err, errlen, "empty message");
        return NULL;
    }
    if (size > SYN_MSG_MAX_SIZE) {
        msg_set_err(err, errlen, "message of %zu bytes exceeds the limit of %u", size,
                SYN_MSG_MAX_SIZE);
        return NULL;
    }
    cursor_t cur = {.data = data, .size = size, .err = err, .errlen = errlen};
    const char *top = msgpack_kind_at(cur.data[0]);
    if (strcmp(top, "map") != 0) {
        if (unsupported_name(cur.data[0]))
            msg_set_err(err, errlen, "unsupported msgpack type %s at offset 0",
                    unsupported_name(cur.data[0]));
        else
            msg_set_err(err, errlen, "top level is %s, not a map", top);
        return NULL;
    }
    syn_msg_t *msg = NULL;
    syn_msg_type_t type;
    json_t *fields = read_value(&cur, 1);
    if (fields != NULL && cur.pos != size) {
        msg_set_err(err, errlen, "trailing bytes after message (%zu bytes at offset %zu)",
                size - cur.pos, cur.pos);
        json_decref(fields);
    } else if (fields != NULL) {
        if (msg_check_envelope(cur.version, cur.type_name, fields, &type, err, errlen) == 0) {
            msg = syn_msg_new_with(type, fields);
            if (msg == NULL)
                msg_set_err(err, errlen, "out of memory");
        } else
            json_decref(fields);
    }
    json_decref(cur.version);
    json_decref(cur.type_name);
    return msg;
}
