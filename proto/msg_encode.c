/* msg_encode: a message to msgpack bytes — msgpack-c's packer over the fields'
 * jansson values (syn_msg_encode), and syn_pack, which writes a message's bytes
 * straight from C values for the hot paths (proto/msg.h says when to use which). */
#include "proto/msg.h"
#include "proto/msg_internal.h"

#include "common/buffer.h"
#include "common/utf8.h"

#include <msgpack.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* --- encoder ------------------------------------------------------------ */

typedef struct {
    msgpack_packer pk;
    msgpack_sbuffer buf;
    size_t elements;
    char *err;
    size_t errlen;
} encoder_t;

/* A string's header and bytes, written straight into the buffer: the packer's
 * two callbacks per string (header, then body) were a tenth of the broker's
 * packing, ~200 strings per W1 execution. The header is the one msgpack_pack_str
 * writes (fixstr, str8, str16 or str32 by length). */
static int put_string(encoder_t *enc, const char *text, size_t len)
{
    uint8_t header[5];
    size_t header_len;
    if (len < 32) {
        header[0] = (uint8_t)(0xa0 | len);
        header_len = 1;
    } else if (len < 256) {
        header[0] = 0xd9;
        header[1] = (uint8_t)len;
        header_len = 2;
    } else if (len < 65536) {
        header[0] = 0xda;
        header[1] = (uint8_t)(len >> 8);
        header[2] = (uint8_t)len;
        header_len = 3;
    } else if (len <= UINT32_MAX) {
        header[0] = 0xdb;
        for (int i = 0; i < 4; i++)
            header[1 + i] = (uint8_t)((uint64_t)len >> (24 - 8 * i));
        header_len = 5;
    } else {
        msg_set_err(enc->err, enc->errlen, "string longer than msgpack allows");
        return -1;
    }
    msgpack_sbuffer *buf = &enc->buf;
    size_t need = header_len + len;
    if (buf->alloc - buf->size < need &&
        !syn_buffer_reserve(&buf->data, &buf->alloc, buf->size + need, 256)) {
        msg_set_err(enc->err, enc->errlen, "out of memory");
        return -1;
    }
    memcpy(buf->data + buf->size, header, header_len);
    memcpy(buf->data + buf->size + header_len, text, len);
    buf->size += need;
    return 0;
}

static int pack_string(encoder_t *enc, const char *text, size_t len, const char *what)
{
    size_t valid = syn_utf8_valid_prefix((const uint8_t *) text, len);
    if (valid != len) {
        msg_set_err(enc->err, enc->errlen, "%s %s at byte %zu", what,
                text[valid] == 0 ? "contains a NUL byte" : "is not valid UTF-8", valid);
        return -1;
    }
    return put_string(enc, text, len);
}

/* Packs value, enforcing what the decoder enforces so that whatever we send the
 * peer accepts: depth, element count, size, UTF-8 without NUL. */
static int pack_value(encoder_t *enc, const json_t *value, int depth)
{
    int rc = 0;
    switch (json_typeof(value)) {
    case JSON_OBJECT:
    case JSON_ARRAY: {
        if (depth > SYN_MSG_MAX_DEPTH) {
            msg_set_err(enc->err, enc->errlen, "nesting deeper than %d", SYN_MSG_MAX_DEPTH);
            return -1;
        }
        bool is_object = json_is_object(value);
        size_t n = is_object ? json_object_size(value) : json_array_size(value);
        enc->elements += is_object ? 2 * n : n;
        if (enc->elements > MSG_MAX_ELEMENTS) {
            msg_set_err(enc->err, enc->errlen, "more than %u elements", MSG_MAX_ELEMENTS);
            return -1;
        }
        if (is_object) {
            rc = msgpack_pack_map(&enc->pk, n);
            const char *key;
            size_t key_len;
            json_t *item;
            json_object_keylen_foreach((json_t *) value, key, key_len, item) {
                if (rc != 0 || pack_string(enc, key, key_len, "map key") != 0 ||
                    pack_value(enc, item, depth + 1) != 0)
                    return -1;
            }
        } else {
            rc = msgpack_pack_array(&enc->pk, n);
            size_t index;
            json_t *item;
            json_array_foreach(value, index, item) {
                if (rc != 0 || pack_value(enc, item, depth + 1) != 0)
                    return -1;
            }
        }
        break;
    }
    case JSON_STRING:
        if (pack_string(enc, json_string_value(value), json_string_length(value), "string") != 0)
            return -1;
        break;
    case JSON_INTEGER: rc = msgpack_pack_int64(&enc->pk, json_integer_value(value)); break;
    case JSON_REAL: rc = msgpack_pack_double(&enc->pk, json_real_value(value)); break;
    case JSON_TRUE: rc = msgpack_pack_true(&enc->pk); break;
    case JSON_FALSE: rc = msgpack_pack_false(&enc->pk); break;
    case JSON_NULL: rc = msgpack_pack_nil(&enc->pk); break;
    }
    if (rc != 0) {
        msg_set_err(enc->err, enc->errlen, "out of memory");
        return -1;
    }
    if (enc->buf.size > SYN_MSG_MAX_SIZE) {
        msg_set_err(enc->err, enc->errlen, "message larger than %u bytes", SYN_MSG_MAX_SIZE);
        return -1;
    }
    return 0;
}

int syn_msg_validate(const syn_msg_t *self, char *err, size_t errlen)
{
    if (self->raw) {
        syn_msg_t *decoded = syn_msg_decode(self->raw, self->raw_size, err, errlen);
        int rc = decoded ? 0 : -1;
        syn_msg_destroy(&decoded);
        return rc;
    }
    char *data = NULL;
    size_t size = 0;
    /* The schema alone is not enough: depth, size and string contents are only
     * known by walking everything, which is what encoding does. */
    if (syn_msg_encode(self, &data, &size, err, errlen) != 0)
        return -1;
    free(data);
    return 0;
}

int syn_msg_encode(const syn_msg_t *self, char **data, size_t *size, char *err, size_t errlen)
{
    *data = NULL;
    *size = 0;
    if (self->raw) {
        *data = malloc(self->raw_size);
        if (*data == NULL) {
            msg_set_err(err, errlen, "out of memory");
            return -1;
        }
        memcpy(*data, self->raw, self->raw_size);
        *size = self->raw_size;
        return 0;
    }
    if (msg_check_schema(self->type, self->fields, err, errlen) != 0)
        return -1;
    const char *name = syn_msg_type_name(self->type);
    encoder_t enc = {.elements = 0, .err = err, .errlen = errlen};
    msgpack_sbuffer_init(&enc.buf);
    /* Most messages are small: start small rather than at msgpack's 8 KiB. */
    enc.buf.data = malloc(256);
    if (enc.buf.data == NULL) {
        msg_set_err(err, errlen, "out of memory");
        return -1;
    }
    enc.buf.alloc = 256;
    msgpack_packer_init(&enc.pk, &enc.buf, msgpack_sbuffer_write);
    size_t n = json_object_size(self->fields);
    enc.elements = 2 * (n + 2);
    if (msgpack_pack_map(&enc.pk, n + 2) != 0 ||
        msgpack_pack_str_with_body(&enc.pk, "v", 1) != 0 ||
        msgpack_pack_int64(&enc.pk, SYN_PROTOCOL_VERSION) != 0 ||
        msgpack_pack_str_with_body(&enc.pk, "t", 1) != 0 ||
        msgpack_pack_str_with_body(&enc.pk, name, strlen(name)) != 0) {
        msg_set_err(err, errlen, "out of memory");
        msgpack_sbuffer_destroy(&enc.buf);
        return -1;
    }
    const char *key;
    size_t key_len;
    json_t *value;
    json_object_keylen_foreach(self->fields, key, key_len, value) {
        if (pack_string(&enc, key, key_len, "map key") != 0 || pack_value(&enc, value, 2) != 0) {
            msgpack_sbuffer_destroy(&enc.buf);
            return -1;
        }
    }
    *size = enc.buf.size;
    *data = msgpack_sbuffer_release(&enc.buf);
    return 0;
}

/* --- packer ------------------------------------------------------------- */

/* Maps open while packing, each with how many entries it still expects. */
#define PACK_MAX_OPEN SYN_MSG_MAX_DEPTH

struct syn_pack_t {
    encoder_t enc;
    syn_msg_type_t type;
    size_t remaining[PACK_MAX_OPEN];
    int open; /* maps open: 1 = only the message's own */
    bool failed;
    char err[256];
};

static bool pack_failed(syn_pack_t *self, const char *what)
{
    if (!self->failed) {
        self->failed = true;
        if (what != self->err) /* the encoder may have written the reason there */
            snprintf(self->err, sizeof self->err, "%s", what);
    }
    return false;
}

/* Starts the next entry of the innermost open map: its key. */
static bool pack_key(syn_pack_t *self, const char *key)
{
    if (self->failed)
        return false;
    if (self->open == 0 || self->remaining[self->open - 1] == 0)
        return pack_failed(self, "more entries than the map was opened with");
    self->remaining[self->open - 1]--;
    self->enc.elements += 2;
    if (self->enc.elements > MSG_MAX_ELEMENTS)
        return pack_failed(self, "too many elements");
    /* Keys of the packer are names in our code, not data: checked in builds with
     * assertions (which also check every finished message against its schema). */
    size_t len = strlen(key);
    assert(syn_utf8_valid_prefix((const uint8_t *)key, len) == len);
    if (put_string(&self->enc, key, len) != 0)
        return pack_failed(self, self->enc.err);
    return true;
}

/* After a value: maps whose last entry it was are complete. */
static void pack_close(syn_pack_t *self)
{
    while (self->open > 1 && self->remaining[self->open - 1] == 0)
        self->open--;
    if (self->enc.buf.size > SYN_MSG_MAX_SIZE)
        pack_failed(self, "message larger than the limit");
}

syn_pack_t *syn_pack_new(syn_msg_type_t type, size_t fields)
{
    const char *name = syn_msg_type_name(type);
    syn_pack_t *self = name ? calloc(1, sizeof *self) : NULL;
    if (self == NULL)
        return NULL;
    self->type = type;
    self->enc.err = self->err;
    self->enc.errlen = sizeof self->err;
    msgpack_sbuffer_init(&self->enc.buf);
    self->enc.buf.data = malloc(512);
    if (self->enc.buf.data == NULL) {
        free(self);
        return NULL;
    }
    self->enc.buf.alloc = 512;
    msgpack_packer_init(&self->enc.pk, &self->enc.buf, msgpack_sbuffer_write);
    self->enc.elements = 2 * (fields + 2);
    if (msgpack_pack_map(&self->enc.pk, fields + 2) != 0 ||
        msgpack_pack_str_with_body(&self->enc.pk, "v", 1) != 0 ||
        msgpack_pack_int64(&self->enc.pk, SYN_PROTOCOL_VERSION) != 0 ||
        msgpack_pack_str_with_body(&self->enc.pk, "t", 1) != 0 ||
        msgpack_pack_str_with_body(&self->enc.pk, name, strlen(name)) != 0)
        pack_failed(self, "out of memory");
    self->remaining[0] = fields;
    self->open = 1;
    return self;
}

void syn_pack_str(syn_pack_t *self, const char *key, const char *value)
{
    if (!pack_key(self, key))
        return;
    int rc = value ? pack_string(&self->enc, value, strlen(value), "string")
                   : msgpack_pack_nil(&self->enc.pk);
    if (rc != 0)
        pack_failed(self, value ? self->enc.err : "out of memory");
    pack_close(self);
}

void syn_pack_int(syn_pack_t *self, const char *key, int64_t value)
{
    if (!pack_key(self, key))
        return;
    if (msgpack_pack_int64(&self->enc.pk, value) != 0)
        pack_failed(self, "out of memory");
    pack_close(self);
}

void syn_pack_json(syn_pack_t *self, const char *key, const json_t *value)
{
    if (!pack_key(self, key))
        return;
    if (value == NULL)
        pack_failed(self, "no value");
    else if (pack_value(&self->enc, value, self->open + 1) != 0)
        pack_failed(self, self->enc.err);
    pack_close(self);
}

void syn_pack_map(syn_pack_t *self, const char *key, size_t entries)
{
    if (!pack_key(self, key))
        return;
    if (self->open + 1 > PACK_MAX_OPEN || self->open + 1 > SYN_MSG_MAX_DEPTH) {
        pack_failed(self, "maps nested too deep");
        return;
    }
    self->enc.elements += 2 * entries;
    if (msgpack_pack_map(&self->enc.pk, entries) != 0) {
        pack_failed(self, "out of memory");
        return;
    }
    self->remaining[self->open++] = entries;
    pack_close(self);
}

syn_msg_t *syn_pack_finish(syn_pack_t **self_p, char *err, size_t errlen)
{
    syn_pack_t *self = *self_p;
    *self_p = NULL;
    syn_msg_t *msg = NULL;
    if (!self->failed && (self->open != 1 || self->remaining[0] != 0))
        pack_failed(self, "fewer entries than a map was opened with");
    if (!self->failed && (msg = malloc(sizeof *msg)) == NULL)
        pack_failed(self, "out of memory");
    if (self->failed) {
        msg_set_err(err, errlen, "cannot pack %s: %s", syn_msg_type_name(self->type), self->err);
        msgpack_sbuffer_destroy(&self->enc.buf);
        free(self);
        return NULL;
    }
    msg->type = self->type;
    msg->fields = NULL;
    msg->raw_size = self->enc.buf.size;
    msg->raw = msgpack_sbuffer_release(&self->enc.buf);
    free(self);
#ifndef NDEBUG
    /* Builds with assertions prove every packed message against the schema
     * (the tests run such a build): a mistake in a packing function is a bug. */
    char why[256];
    if (syn_msg_validate(msg, why, sizeof why) != 0) {
        fprintf(stderr, "syn_pack_finish: packed an invalid message: %s\n", why);
        abort();
    }
#endif
    return msg;
}
