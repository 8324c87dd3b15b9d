/* msg: schema table, msgpack encoder (msgpack-c packer) and strict msgpack decoder
 * (our own cursor reader that builds jansson values); the ZeroMQ framing is in
 * proto/zmq_io.c.
 * docs/protocol.md is the normative description of what is accepted. */
#include "proto/msg.h"

#include "common/buffer.h"
#include "common/log.h"
#include "common/utf8.h"

#include <assert.h>
#include <inttypes.h>
#include <math.h>
#include <msgpack.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Bounds the memory one message can make us allocate: a jansson value costs
 * tens to hundreds of bytes however few bytes it took on the wire. Real
 * messages hold a few thousand elements at most. */
#define MSG_MAX_ELEMENTS (1u << 18)

/* A message is its field object, or (made by syn_pack) its encoding until
 * someone asks for the fields: then they are decoded once and the encoding is
 * dropped, since the caller may change them. */
struct syn_msg_t {
    syn_msg_type_t type;
    json_t *fields;
    char *raw;
    size_t raw_size;
};

/* --- schemas ------------------------------------------------------------ */

typedef enum {
    KIND_STR,       /* UTF-8 string */
    KIND_UINT,      /* integer >= 0, optionally within [min, max] */
    KIND_INT,       /* any integer */
    KIND_BOOL,      /* true or false */
    KIND_ANY,       /* any value */
    KIND_MAP,       /* object */
    KIND_STR_ARRAY, /* array of strings */
    KIND_MAP_ARRAY, /* array of objects, each checked against a sub-schema */
} field_kind_t;

enum { FIELD_REQUIRED = 1, FIELD_NULLABLE = 2 };

typedef struct field_spec_t field_spec_t;
struct field_spec_t {
    const char *name;
    field_kind_t kind;
    int flags;
    json_int_t min, max;          /* KIND_UINT range when max > 0 */
    const char *const *one_of;    /* KIND_STR allowed values, NULL-terminated */
    const field_spec_t *item;     /* KIND_MAP_ARRAY: schema of each element */
};

#define REQ FIELD_REQUIRED
#define NUL_OK (FIELD_REQUIRED | FIELD_NULLABLE)
#define END {NULL, 0, 0, 0, 0, NULL, NULL}

static const char *const progress_kinds[] = {"started", "output", "tool", NULL};
static const char *const inject_roles[] = {"user", "system", NULL};
/* "refused": the worker could not start the attempt (draining, no free slot): the
 * broker hands it to another worker without counting it as an attempt.
 * "fault": the agent could not be started there (program missing, workspace not
 * made): handed on the same way, and the worker is unhealthy until it says
 * otherwise in a READY. */
static const char *const result_statuses[] = {"completed", "failed", "cancelled", "refused",
                                              "fault", NULL};

/* One line per field: name, kind, flags, range, allowed values, element schema. */
static const field_spec_t ref_fields[] = {
    {"execution_id", KIND_STR, REQ, 0, 0, NULL, NULL},
    {"phase_id", KIND_STR, REQ, 0, 0, NULL, NULL},
    {"attempt", KIND_UINT, REQ, 0, 0, NULL, NULL},
    END,
};
static const field_spec_t request_fields[] = {
    {"id", KIND_UINT, REQ, 0, 0, NULL, NULL},
    {"op", KIND_STR, REQ, 0, 0, NULL, NULL},
    {"args", KIND_MAP, REQ, 0, 0, NULL, NULL},
    END,
};
static const field_spec_t reply_fields[] = {
    {"id", KIND_UINT, REQ, 0, 0, NULL, NULL},
    {"status", KIND_UINT, REQ, 100, 599, NULL, NULL},
    {"body", KIND_ANY, NUL_OK, 0, 0, NULL, NULL},
    END,
};
static const field_spec_t ready_fields[] = {
    {"worker", KIND_STR, REQ, 0, 0, NULL, NULL},
    {"slots", KIND_UINT, REQ, 1, 1024, NULL, NULL},
    {"providers", KIND_STR_ARRAY, REQ, 0, 0, NULL, NULL},
    {"running", KIND_MAP_ARRAY, REQ, 0, 0, NULL, ref_fields},
    /* true once the worker is stopping: it finishes what it runs, takes nothing new. */
    {"draining", KIND_BOOL, 0, 0, 0, NULL, NULL},
    /* assignments it takes beyond its slots, each started as a slot frees (absent: 0). */
    {"prefetch", KIND_UINT, 0, 0, 1024, NULL, NULL},
    /* the ones it holds that have not started yet (absent: none). */
    {"waiting", KIND_MAP_ARRAY, 0, 0, 0, NULL, ref_fields},
    /* about the worker, for GET /workers: its host name and syn version. */
    {"host", KIND_STR, 0, 0, 0, NULL, NULL},
    {"version", KIND_STR, 0, 0, 0, NULL, NULL},
    /* false: it cannot run its agents now (absent: true), and why. */
    {"healthy", KIND_BOOL, 0, 0, 0, NULL, NULL},
    {"unhealthy_reason", KIND_STR, 0, 0, 0, NULL, NULL},
    END,
};
static const field_spec_t no_fields[] = {END};
static const field_spec_t disconnect_fields[] = {
    /* broker → worker: why it is refused (its name is held by another key). */
    {"reason", KIND_STR, 0, 0, 0, NULL, NULL},
    END,
};
static const field_spec_t assign_fields[] = {
    {"execution_id", KIND_STR, REQ, 0, 0, NULL, NULL},
    {"workflow_id", KIND_STR, REQ, 0, 0, NULL, NULL},
    {"phase_id", KIND_STR, REQ, 0, 0, NULL, NULL},
    {"attempt", KIND_UINT, REQ, 0, 0, NULL, NULL},
    {"prompt", KIND_STR, REQ, 0, 0, NULL, NULL},
    {"model", KIND_STR, NUL_OK, 0, 0, NULL, NULL},
    {"timeout_ms", KIND_UINT, REQ, 0, 0, NULL, NULL},
    {"provider", KIND_STR, NUL_OK, 0, 0, NULL, NULL},
    /* Optional, for agent providers: earlier phases' outputs by phase id, the
     * execution's repositories, tool allow-list and output token limit. */
    {"inputs", KIND_MAP, 0, 0, 0, NULL, NULL},
    {"repos", KIND_STR_ARRAY, 0, 0, 0, NULL, NULL},
    {"allowed_tools", KIND_STR_ARRAY, 0, 0, 0, NULL, NULL},
    {"max_tokens", KIND_UINT, 0, 0, 0, NULL, NULL},
    END,
};
static const field_spec_t progress_fields[] = {
    {"execution_id", KIND_STR, REQ, 0, 0, NULL, NULL},
    {"phase_id", KIND_STR, REQ, 0, 0, NULL, NULL},
    {"attempt", KIND_UINT, REQ, 0, 0, NULL, NULL},
    {"kind", KIND_STR, REQ, 0, 0, progress_kinds, NULL},
    {"data", KIND_STR, REQ, 0, 0, NULL, NULL},
    {"detail", KIND_MAP, 0, 0, 0, NULL, NULL}, /* kind "tool": name, input_preview, ... */
    END,
};
static const field_spec_t inject_fields[] = {
    {"execution_id", KIND_STR, REQ, 0, 0, NULL, NULL},
    {"phase_id", KIND_STR, REQ, 0, 0, NULL, NULL},
    {"attempt", KIND_UINT, REQ, 0, 0, NULL, NULL},
    {"role", KIND_STR, REQ, 0, 0, inject_roles, NULL},
    {"message", KIND_STR, REQ, 0, 0, NULL, NULL},
    END,
};
static const field_spec_t result_fields[] = {
    {"execution_id", KIND_STR, REQ, 0, 0, NULL, NULL},
    {"phase_id", KIND_STR, REQ, 0, 0, NULL, NULL},
    {"attempt", KIND_UINT, REQ, 0, 0, NULL, NULL},
    {"status", KIND_STR, REQ, 0, 0, result_statuses, NULL},
    {"output", KIND_STR, REQ, 0, 0, NULL, NULL},
    {"error", KIND_STR, NUL_OK, 0, 0, NULL, NULL},
    {"exit_code", KIND_INT, NUL_OK, 0, 0, NULL, NULL},
    /* Optional accounting: input/output/cache tokens, cost_usd, num_turns, model,
     * duration_ms, tool_calls. */
    {"usage", KIND_MAP, 0, 0, 0, NULL, NULL},
    END,
};
static const field_spec_t event_fields[] = {
    {"seq", KIND_UINT, REQ, 0, 0, NULL, NULL},
    {"time", KIND_INT, REQ, 0, 0, NULL, NULL},
    {"execution_id", KIND_STR, NUL_OK, 0, 0, NULL, NULL},
    {"type", KIND_STR, REQ, 0, 0, NULL, NULL},
    {"data", KIND_MAP, REQ, 0, 0, NULL, NULL},
    /* On PUB only (not in the log): the execution's status object after this event,
     * so gateways can answer status reads from their local view. */
    {"status", KIND_MAP, 0, 0, 0, NULL, NULL},
    END,
};

typedef struct {
    const char *name;
    const field_spec_t *fields;
} type_spec_t;

/* Indexed by syn_msg_type_t. */
static const type_spec_t type_specs[] = {
    [SYN_MSG_REQUEST] = {"request", request_fields},
    [SYN_MSG_REPLY] = {"reply", reply_fields},
    [SYN_MSG_READY] = {"ready", ready_fields},
    [SYN_MSG_HEARTBEAT] = {"heartbeat", no_fields},
    [SYN_MSG_ASSIGN] = {"assign", assign_fields},
    [SYN_MSG_CANCEL] = {"cancel", ref_fields},
    [SYN_MSG_PROGRESS] = {"progress", progress_fields},
    [SYN_MSG_RESULT] = {"result", result_fields},
    [SYN_MSG_RESULT_ACK] = {"result_ack", ref_fields},
    [SYN_MSG_DISCONNECT] = {"disconnect", disconnect_fields},
    [SYN_MSG_EVENT] = {"event", event_fields},
    [SYN_MSG_INJECT] = {"inject", inject_fields},
};
#define TYPE_COUNT (sizeof type_specs / sizeof type_specs[0])

static const type_spec_t *type_spec(syn_msg_type_t type)
{
    if ((unsigned) type >= TYPE_COUNT || type_specs[type].name == NULL)
        return NULL;
    return &type_specs[type];
}

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (err == NULL || errlen == 0)
        return;
    va_list args;
    va_start(args, fmt);
    vsnprintf(err, errlen, fmt, args);
    va_end(args);
}

static const char *json_kind_name(const json_t *value)
{
    switch (json_typeof(value)) {
    case JSON_OBJECT: return "a map";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a float";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    case JSON_NULL: return "nil";
    }
    return "?";
}

static const char *kind_name(field_kind_t kind, bool nullable)
{
    switch (kind) {
    case KIND_STR: return nullable ? "a string or nil" : "a string";
    case KIND_UINT: return nullable ? "an unsigned integer or nil" : "an unsigned integer";
    case KIND_INT: return nullable ? "an integer or nil" : "an integer";
    case KIND_BOOL: return "a boolean";
    case KIND_ANY: return "any value";
    case KIND_MAP: return nullable ? "a map or nil" : "a map";
    case KIND_STR_ARRAY: return "an array of strings";
    case KIND_MAP_ARRAY: return "an array of maps";
    }
    return "?";
}

static int check_fields(const char *where, const field_spec_t *specs, const json_t *fields,
                        char *err, size_t errlen);

/* Checks one present field's value; where names the message type (or element). */
static int check_field(const char *where, const field_spec_t *spec, const json_t *value,
                       char *err, size_t errlen)
{
    bool nullable = (spec->flags & FIELD_NULLABLE) != 0;
    if (json_is_null(value) && nullable)
        return 0;
    bool ok = false;
    switch (spec->kind) {
    case KIND_STR: ok = json_is_string(value); break;
    case KIND_UINT: ok = json_is_integer(value) && json_integer_value(value) >= 0; break;
    case KIND_INT: ok = json_is_integer(value); break;
    case KIND_BOOL: ok = json_is_boolean(value); break;
    case KIND_ANY: ok = value != NULL; break;
    case KIND_MAP: ok = json_is_object(value); break;
    case KIND_STR_ARRAY:
    case KIND_MAP_ARRAY: ok = json_is_array(value); break;
    }
    if (!ok) {
        set_err(err, errlen, "%s: field '%s' must be %s, got %s", where, spec->name,
                kind_name(spec->kind, nullable), json_kind_name(value));
        return -1;
    }
    if (spec->kind == KIND_UINT && spec->max > 0) {
        json_int_t n = json_integer_value(value);
        if (n < spec->min || n > spec->max) {
            set_err(err, errlen, "%s: field '%s' must be within %lld..%lld, got %lld", where,
                    spec->name, (long long) spec->min, (long long) spec->max, (long long) n);
            return -1;
        }
    }
    if (spec->kind == KIND_STR && spec->one_of != NULL) {
        const char *text = json_string_value(value);
        size_t len = json_string_length(value);
        for (const char *const *allowed = spec->one_of; *allowed; allowed++)
            if (strlen(*allowed) == len && memcmp(*allowed, text, len) == 0)
                return 0;
        set_err(err, errlen, "%s: field '%s' has unknown value '%.64s'", where, spec->name,
                text);
        return -1;
    }
    if (spec->kind == KIND_STR_ARRAY || spec->kind == KIND_MAP_ARRAY) {
        size_t index;
        json_t *item;
        json_array_foreach(value, index, item) {
            if (spec->kind == KIND_STR_ARRAY && !json_is_string(item)) {
                set_err(err, errlen, "%s: field '%s'[%zu] must be a string, got %s", where,
                        spec->name, index, json_kind_name(item));
                return -1;
            }
            if (spec->kind == KIND_MAP_ARRAY) {
                char inner[96];
                snprintf(inner, sizeof inner, "%s: field '%s'[%zu]", where, spec->name, index);
                if (!json_is_object(item)) {
                    set_err(err, errlen, "%s must be a map, got %s", inner, json_kind_name(item));
                    return -1;
                }
                if (check_fields(inner, spec->item, item, err, errlen) != 0)
                    return -1;
            }
        }
    }
    return 0;
}

/* Every required field present and well-typed; nothing the schema does not name. */
static int check_fields(const char *where, const field_spec_t *specs, const json_t *fields,
                        char *err, size_t errlen)
{
    size_t known = 0;
    for (const field_spec_t *spec = specs; spec->name; spec++) {
        json_t *value = json_object_get(fields, spec->name);
        if (value == NULL) {
            if (spec->flags & FIELD_REQUIRED) {
                set_err(err, errlen, "%s: missing field '%s'", where, spec->name);
                return -1;
            }
            continue;
        }
        known++;
        if (check_field(where, spec, value, err, errlen) != 0)
            return -1;
    }
    if (json_object_size(fields) == known)
        return 0;
    const char *key;
    size_t key_len;
    json_t *value;
    json_object_keylen_foreach((json_t *) fields, key, key_len, value) {
        bool found = false;
        for (const field_spec_t *spec = specs; spec->name && !found; spec++)
            found = strlen(spec->name) == key_len && memcmp(spec->name, key, key_len) == 0;
        if (!found) {
            set_err(err, errlen, "%s: unknown field '%.64s'", where, key);
            return -1;
        }
    }
    return 0;
}

static int check_schema(syn_msg_type_t type, const json_t *fields, char *err, size_t errlen)
{
    const type_spec_t *spec = type_spec(type);
    if (spec == NULL) {
        set_err(err, errlen, "unknown message type %d", (int) type);
        return -1;
    }
    if (!json_is_object(fields)) {
        set_err(err, errlen, "%s: fields must be a map", spec->name);
        return -1;
    }
    return check_fields(spec->name, spec->fields, fields, err, errlen);
}

/* --- message object ----------------------------------------------------- */

syn_msg_t *syn_msg_new(syn_msg_type_t type)
{
    return syn_msg_new_with(type, json_object());
}

syn_msg_t *syn_msg_new_with(syn_msg_type_t type, json_t *fields)
{
    if (type_spec(type) == NULL || !json_is_object(fields)) {
        json_decref(fields);
        return NULL;
    }
    syn_msg_t *self = malloc(sizeof *self);
    if (self == NULL) {
        json_decref(fields);
        return NULL;
    }
    self->type = type;
    self->fields = fields;
    self->raw = NULL;
    self->raw_size = 0;
    return self;
}

void syn_msg_destroy(syn_msg_t **self_p)
{
    if (self_p == NULL || *self_p == NULL)
        return;
    json_decref((*self_p)->fields);
    free((*self_p)->raw);
    free(*self_p);
    *self_p = NULL;
}

syn_msg_type_t syn_msg_type(const syn_msg_t *self)
{
    return self->type;
}

/* Logically const: decoding a packed message's own bytes changes only how it
 * is held. The bytes passed the strict decoder's rules when they were packed. */
json_t *syn_msg_fields(const syn_msg_t *self)
{
    if (self->raw) {
        syn_msg_t *held = (syn_msg_t *)self;
        syn_msg_t *decoded = syn_msg_decode(held->raw, held->raw_size, NULL, 0);
        if (decoded) {
            json_decref(held->fields);
            held->fields = decoded->fields;
            decoded->fields = NULL;
            syn_msg_destroy(&decoded);
        }
        free(held->raw);
        held->raw = NULL;
        held->raw_size = 0;
    }
    return self->fields;
}

const char *syn_msg_type_name(syn_msg_type_t type)
{
    const type_spec_t *spec = type_spec(type);
    return spec ? spec->name : NULL;
}

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
        set_err(enc->err, enc->errlen, "string longer than msgpack allows");
        return -1;
    }
    msgpack_sbuffer *buf = &enc->buf;
    size_t need = header_len + len;
    if (buf->alloc - buf->size < need &&
        !syn_buffer_reserve(&buf->data, &buf->alloc, buf->size + need, 256)) {
        set_err(enc->err, enc->errlen, "out of memory");
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
        set_err(enc->err, enc->errlen, "%s %s at byte %zu", what,
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
            set_err(enc->err, enc->errlen, "nesting deeper than %d", SYN_MSG_MAX_DEPTH);
            return -1;
        }
        bool is_object = json_is_object(value);
        size_t n = is_object ? json_object_size(value) : json_array_size(value);
        enc->elements += is_object ? 2 * n : n;
        if (enc->elements > MSG_MAX_ELEMENTS) {
            set_err(enc->err, enc->errlen, "more than %u elements", MSG_MAX_ELEMENTS);
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
        set_err(enc->err, enc->errlen, "out of memory");
        return -1;
    }
    if (enc->buf.size > SYN_MSG_MAX_SIZE) {
        set_err(enc->err, enc->errlen, "message larger than %u bytes", SYN_MSG_MAX_SIZE);
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
            set_err(err, errlen, "out of memory");
            return -1;
        }
        memcpy(*data, self->raw, self->raw_size);
        *size = self->raw_size;
        return 0;
    }
    if (check_schema(self->type, self->fields, err, errlen) != 0)
        return -1;
    const char *name = type_specs[self->type].name;
    encoder_t enc = {.elements = 0, .err = err, .errlen = errlen};
    msgpack_sbuffer_init(&enc.buf);
    /* Most messages are small: start small rather than at msgpack's 8 KiB. */
    enc.buf.data = malloc(256);
    if (enc.buf.data == NULL) {
        set_err(err, errlen, "out of memory");
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
        set_err(err, errlen, "out of memory");
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
    const type_spec_t *spec = type_spec(type);
    syn_pack_t *self = spec ? calloc(1, sizeof *self) : NULL;
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
        msgpack_pack_str_with_body(&self->enc.pk, spec->name, strlen(spec->name)) != 0)
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
        set_err(err, errlen, "cannot pack %s: %s", type_specs[self->type].name, self->err);
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
    set_err(cur->err, cur->errlen,
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
        set_err(cur->err, cur->errlen,
                "truncated at offset %zu (string at offset %zu declares %" PRIu64
                " bytes, %zu left)",
                cur->size, at, len, cur->size - cur->pos);
        return NULL;
    }
    const uint8_t *body = cur->data + cur->pos;
    size_t valid = syn_utf8_valid_prefix(body, (size_t) len);
    if (valid != len) {
        set_err(cur->err, cur->errlen, "string %s at offset %zu",
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
        set_err(cur->err, cur->errlen,
                "truncated at offset %zu (%s at offset %zu declares %" PRIu64
                " elements, %zu bytes left)",
                cur->size, what, at, n, cur->size - cur->pos);
        return false;
    }
    cur->elements += (size_t) n * values_per_entry;
    if (cur->elements > MSG_MAX_ELEMENTS) {
        set_err(cur->err, cur->errlen, "more than %u elements (at offset %zu)",
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
        set_err(cur->err, cur->errlen, "out of memory");
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
            set_err(cur->err, cur->errlen, "unsupported msgpack type %s at offset %zu",
                    unsupported_name(cur->data[key_at]), key_at);
        else if (is_str == 0)
            set_err(cur->err, cur->errlen, "map key at offset %zu is %s, not a string", key_at,
                    msgpack_kind_at(cur->data[key_at]));
        if (is_str != 1)
            goto fail;
        /* The envelope's "v" and "t" go aside: the map becomes the fields. */
        json_t **envelope = NULL;
        if (depth == 1 && key_len == 1 && (key[0] == 'v' || key[0] == 't'))
            envelope = key[0] == 'v' ? &cur->version : &cur->type_name;
        if (envelope ? *envelope != NULL : json_object_getn(map, key, key_len) != NULL) {
            set_err(cur->err, cur->errlen, "duplicate key '%.*s' at offset %zu",
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
            set_err(cur->err, cur->errlen, "out of memory");
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
        set_err(cur->err, cur->errlen, "out of memory");
        return NULL;
    }
    for (uint64_t i = 0; i < n; i++) {
        json_t *value = need(cur, 1, cur->pos) ? read_value(cur, depth + 1) : NULL;
        if (value == NULL || json_array_append_new(array, value) != 0) {
            if (value != NULL)
                set_err(cur->err, cur->errlen, "out of memory");
            json_decref(array);
            return NULL;
        }
    }
    return array;
}

static json_t *make_real(cursor_t *cur, double d, size_t at)
{
    if (!isfinite(d)) {
        set_err(cur->err, cur->errlen, "float at offset %zu is not finite", at);
        return NULL;
    }
    json_t *value = json_real(d);
    if (value == NULL)
        set_err(cur->err, cur->errlen, "out of memory");
    return value;
}

static json_t *make_integer(cursor_t *cur, json_int_t n)
{
    json_t *value = json_integer(n);
    if (value == NULL)
        set_err(cur->err, cur->errlen, "out of memory");
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
        set_err(cur->err, cur->errlen, "nesting deeper than %d at offset %zu", SYN_MSG_MAX_DEPTH,
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
            set_err(cur->err, cur->errlen, "out of memory");
        return value;
    }
    const char *unsupported = unsupported_name(byte);
    if (unsupported != NULL) {
        set_err(cur->err, cur->errlen, "unsupported msgpack type %s at offset %zu", unsupported,
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
            set_err(cur->err, cur->errlen, "integer at offset %zu is above INT64_MAX", at);
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
    set_err(cur->err, cur->errlen, "unsupported msgpack byte 0x%02x at offset %zu", byte, at);
    return NULL;
}

static int type_from_name(const char *name, size_t len, syn_msg_type_t *type)
{
    for (size_t i = 0; i < TYPE_COUNT; i++) {
        const char *candidate = type_specs[i].name;
        if (candidate && strlen(candidate) == len && memcmp(candidate, name, len) == 0) {
            *type = (syn_msg_type_t) i;
            return 0;
        }
    }
    return -1;
}

/* Checks "v" and "t" (either may be NULL when absent) and the fields against
 * the type's schema; 0 with *type set, or -1 with the reason. */
static int check_envelope(const json_t *version, const json_t *type_name, const json_t *fields,
                          syn_msg_type_t *type, char *err, size_t errlen)
{
    if (version == NULL) {
        set_err(err, errlen, "missing protocol version 'v'");
    } else if (!json_is_integer(version) ||
               json_integer_value(version) != SYN_PROTOCOL_VERSION) {
        if (json_is_integer(version))
            set_err(err, errlen, "unsupported protocol version %lld (expected %d)",
                    (long long) json_integer_value(version), SYN_PROTOCOL_VERSION);
        else
            set_err(err, errlen, "protocol version 'v' must be an integer, got %s",
                    json_kind_name(version));
    } else if (type_name == NULL) {
        set_err(err, errlen, "missing message type 't'");
    } else if (!json_is_string(type_name)) {
        set_err(err, errlen, "message type 't' must be a string, got %s",
                json_kind_name(type_name));
    } else if (type_from_name(json_string_value(type_name), json_string_length(type_name),
                              type) != 0) {
        set_err(err, errlen, "unknown message type '%.64s'", json_string_value(type_name));
    } else if (check_schema(*type, fields, err, errlen) == 0) {
        return 0;
    }
    return -1;
}

syn_msg_t *syn_msg_decode(const void *data, size_t size, char *err, size_t errlen)
{
    /* Empty until a reason is set: formatting "no error" for every message cost
     * more than some of them take to decode. */
    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if (size == 0 || data == NULL) {
        set_err(err, errlen, "empty message");
        return NULL;
    }
    if (size > SYN_MSG_MAX_SIZE) {
        set_err(err, errlen, "message of %zu bytes exceeds the limit of %u", size,
                SYN_MSG_MAX_SIZE);
        return NULL;
    }
    cursor_t cur = {.data = data, .size = size, .err = err, .errlen = errlen};
    const char *top = msgpack_kind_at(cur.data[0]);
    if (strcmp(top, "map") != 0) {
        if (unsupported_name(cur.data[0]))
            set_err(err, errlen, "unsupported msgpack type %s at offset 0",
                    unsupported_name(cur.data[0]));
        else
            set_err(err, errlen, "top level is %s, not a map", top);
        return NULL;
    }
    syn_msg_t *msg = NULL;
    syn_msg_type_t type;
    json_t *fields = read_value(&cur, 1);
    if (fields != NULL && cur.pos != size) {
        set_err(err, errlen, "trailing bytes after message (%zu bytes at offset %zu)",
                size - cur.pos, cur.pos);
        json_decref(fields);
    } else if (fields != NULL) {
        if (check_envelope(cur.version, cur.type_name, fields, &type, err, errlen) == 0) {
            msg = syn_msg_new_with(type, fields);
            if (msg == NULL)
                set_err(err, errlen, "out of memory");
        } else
            json_decref(fields);
    }
    json_decref(cur.version);
    json_decref(cur.type_name);
    return msg;
}
