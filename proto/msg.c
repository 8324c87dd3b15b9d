/* msg: what a message is — the schema of each type, the checks of its fields and
 * envelope, the message object. The bytes: proto/msg_encode.c (msgpack-c's packer)
 * and proto/msg_decode.c (our strict reader); the ZeroMQ framing: proto/zmq_io.c.
 * docs/protocol.md is the normative description of what is accepted. */
#include "proto/msg.h"
#include "proto/msg_internal.h"


#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    KIND_USD,       /* a finite number >= 0 (an amount of dollars; an integer too) */
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

/* "cost": cost_usd is what the attempt has spent so far (its budget: issue 19). */
static const char *const progress_kinds[] = {"started", "output", "tool", "cost", NULL};
/* What a sandboxed agent may reach (worker/sandbox.h). */
static const char *const networks[] = {"none", "proxy", "host", NULL};
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
/* One file of an earlier phase, as an ASSIGN lists it for the worker to pull. */
static const field_spec_t input_artifact_fields[] = {
    {"phase_id", KIND_STR, REQ, 0, 0, NULL, NULL},
    {"path", KIND_STR, REQ, 0, 0, NULL, NULL},
    {"size", KIND_UINT, REQ, 0, 0, NULL, NULL},
    {"sha256", KIND_STR, REQ, 0, 0, NULL, NULL},
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
    /* Optional: the phase's network (absent: proxy, the default). */
    {"network", KIND_STR, 0, 0, 0, networks, NULL},
    /* Optional: the execution's max_budget_usd and what it spent before this
     * attempt; the worker stops its agent when spent_usd plus its cost reaches it. */
    {"max_budget_usd", KIND_USD, 0, 0, 0, NULL, NULL},
    {"spent_usd", KIND_USD, 0, 0, 0, NULL, NULL},
    /* Optional: the files earlier phases left, for the worker to pull with
     * ARTIFACT_GET into artifacts/input/<phase_id>/<path> before the agent starts. */
    {"artifacts", KIND_MAP_ARRAY, 0, 0, 0, NULL, input_artifact_fields},
    /* Optional: the artifact names the phase declares it reads and writes. */
    {"input_artifacts", KIND_STR_ARRAY, 0, 0, 0, NULL, NULL},
    {"output_artifacts", KIND_STR_ARRAY, 0, 0, 0, NULL, NULL},
    END,
};
static const field_spec_t progress_fields[] = {
    {"execution_id", KIND_STR, REQ, 0, 0, NULL, NULL},
    {"phase_id", KIND_STR, REQ, 0, 0, NULL, NULL},
    {"attempt", KIND_UINT, REQ, 0, 0, NULL, NULL},
    {"kind", KIND_STR, REQ, 0, 0, progress_kinds, NULL},
    {"data", KIND_STR, REQ, 0, 0, NULL, NULL},
    {"detail", KIND_MAP, 0, 0, 0, NULL, NULL}, /* kind "tool": name, input_preview, ... */
    {"cost_usd", KIND_USD, 0, 0, 0, NULL, NULL}, /* kind "cost": the attempt's so far */
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
/* One file of an attempt's artifacts, as the result lists them (and the chunks
 * repeat): its path under artifacts/output, size and SHA-256 (64 hex digits). */
static const field_spec_t artifact_entry_fields[] = {
    {"path", KIND_STR, REQ, 0, 0, NULL, NULL},
    {"size", KIND_UINT, REQ, 0, 0, NULL, NULL},
    {"sha256", KIND_STR, REQ, 0, 0, NULL, NULL},
    END,
};
/* A chunk of an artifact, worker → broker (chunks in order: file index, offset). */
static const field_spec_t artifact_fields[] = {
    {"execution_id", KIND_STR, REQ, 0, 0, NULL, NULL},
    {"phase_id", KIND_STR, REQ, 0, 0, NULL, NULL},
    {"attempt", KIND_UINT, REQ, 0, 0, NULL, NULL},
    {"index", KIND_UINT, REQ, 0, 0, NULL, NULL},
    {"count", KIND_UINT, REQ, 0, 0, NULL, NULL},
    {"path", KIND_STR, REQ, 0, 0, NULL, NULL},
    {"size", KIND_UINT, REQ, 0, 0, NULL, NULL},
    {"sha256", KIND_STR, REQ, 0, 0, NULL, NULL},
    {"offset", KIND_UINT, REQ, 0, 0, NULL, NULL},
    {"data", KIND_STR, REQ, 0, 0, NULL, NULL}, /* base64 */
    END,
};
/* broker → worker: everything before (index, offset) is stored; send from there. */
static const field_spec_t artifact_ack_fields[] = {
    {"execution_id", KIND_STR, REQ, 0, 0, NULL, NULL},
    {"phase_id", KIND_STR, REQ, 0, 0, NULL, NULL},
    {"attempt", KIND_UINT, REQ, 0, 0, NULL, NULL},
    {"index", KIND_UINT, REQ, 0, 0, NULL, NULL},
    {"offset", KIND_UINT, REQ, 0, 0, NULL, NULL},
    /* why the broker takes no more of them (a limit, a stale attempt) */
    {"error", KIND_STR, 0, 0, 0, NULL, NULL},
    END,
};
/* worker → broker: the bytes of an earlier phase's file from offset, for the
 * attempt named (which must be current and this worker's). */
static const field_spec_t artifact_get_fields[] = {
    {"execution_id", KIND_STR, REQ, 0, 0, NULL, NULL},
    {"phase_id", KIND_STR, REQ, 0, 0, NULL, NULL},
    {"attempt", KIND_UINT, REQ, 0, 0, NULL, NULL},
    {"from_phase", KIND_STR, REQ, 0, 0, NULL, NULL},
    {"path", KIND_STR, REQ, 0, 0, NULL, NULL},
    {"offset", KIND_UINT, REQ, 0, 0, NULL, NULL},
    END,
};
/* broker → worker: one chunk of it (base64, at most 1 MiB decoded; empty at the
 * end), or why there is none. */
static const field_spec_t artifact_data_fields[] = {
    {"execution_id", KIND_STR, REQ, 0, 0, NULL, NULL},
    {"phase_id", KIND_STR, REQ, 0, 0, NULL, NULL},
    {"attempt", KIND_UINT, REQ, 0, 0, NULL, NULL},
    {"from_phase", KIND_STR, REQ, 0, 0, NULL, NULL},
    {"path", KIND_STR, REQ, 0, 0, NULL, NULL},
    {"offset", KIND_UINT, REQ, 0, 0, NULL, NULL},
    {"size", KIND_UINT, REQ, 0, 0, NULL, NULL},
    {"sha256", KIND_STR, REQ, 0, 0, NULL, NULL},
    {"data", KIND_STR, REQ, 0, 0, NULL, NULL}, /* base64 */
    {"error", KIND_STR, 0, 0, 0, NULL, NULL},
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
    /* Optional: the files the worker sent as ARTIFACT chunks before this result. */
    {"artifacts", KIND_MAP_ARRAY, 0, 0, 0, NULL, artifact_entry_fields},
    /* Optional: what the broker should record as warnings (files skipped). */
    {"warnings", KIND_STR_ARRAY, 0, 0, 0, NULL, NULL},
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
    [SYN_MSG_ARTIFACT] = {"artifact", artifact_fields},
    [SYN_MSG_ARTIFACT_ACK] = {"artifact_ack", artifact_ack_fields},
    [SYN_MSG_ARTIFACT_GET] = {"artifact_get", artifact_get_fields},
    [SYN_MSG_ARTIFACT_DATA] = {"artifact_data", artifact_data_fields},
};
#define TYPE_COUNT (sizeof type_specs / sizeof type_specs[0])

static const type_spec_t *type_spec(syn_msg_type_t type)
{
    if ((unsigned) type >= TYPE_COUNT || type_specs[type].name == NULL)
        return NULL;
    return &type_specs[type];
}

void msg_set_err(char *err, size_t errlen, const char *fmt, ...)
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
    case KIND_USD: return "a number >= 0";
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
    case KIND_USD:
        ok = json_is_number(value) && isfinite(json_number_value(value)) &&
             json_number_value(value) >= 0;
        break;
    }
    if (!ok) {
        msg_set_err(err, errlen, "%s: field '%s' must be %s, got %s", where, spec->name,
                kind_name(spec->kind, nullable), json_kind_name(value));
        return -1;
    }
    if (spec->kind == KIND_UINT && spec->max > 0) {
        json_int_t n = json_integer_value(value);
        if (n < spec->min || n > spec->max) {
            msg_set_err(err, errlen, "%s: field '%s' must be within %lld..%lld, got %lld", where,
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
        msg_set_err(err, errlen, "%s: field '%s' has unknown value '%.64s'", where, spec->name,
                text);
        return -1;
    }
    if (spec->kind == KIND_STR_ARRAY || spec->kind == KIND_MAP_ARRAY) {
        size_t index;
        json_t *item;
        json_array_foreach(value, index, item) {
            if (spec->kind == KIND_STR_ARRAY && !json_is_string(item)) {
                msg_set_err(err, errlen, "%s: field '%s'[%zu] must be a string, got %s", where,
                        spec->name, index, json_kind_name(item));
                return -1;
            }
            if (spec->kind == KIND_MAP_ARRAY) {
                char inner[96];
                snprintf(inner, sizeof inner, "%s: field '%s'[%zu]", where, spec->name, index);
                if (!json_is_object(item)) {
                    msg_set_err(err, errlen, "%s must be a map, got %s", inner, json_kind_name(item));
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
                msg_set_err(err, errlen, "%s: missing field '%s'", where, spec->name);
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
            msg_set_err(err, errlen, "%s: unknown field '%.64s'", where, key);
            return -1;
        }
    }
    return 0;
}

int msg_check_schema(syn_msg_type_t type, const json_t *fields, char *err, size_t errlen)
{
    const type_spec_t *spec = type_spec(type);
    if (spec == NULL) {
        msg_set_err(err, errlen, "unknown message type %d", (int) type);
        return -1;
    }
    if (!json_is_object(fields)) {
        msg_set_err(err, errlen, "%s: fields must be a map", spec->name);
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

/* --- envelope ----------------------------------------------------------- */

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

int msg_check_envelope(const json_t *version, const json_t *type_name, const json_t *fields,
                          syn_msg_type_t *type, char *err, size_t errlen)
{
    if (version == NULL) {
        msg_set_err(err, errlen, "missing protocol version 'v'");
    } else if (!json_is_integer(version) ||
               json_integer_value(version) != SYN_PROTOCOL_VERSION) {
        if (json_is_integer(version))
            msg_set_err(err, errlen, "unsupported protocol version %lld (expected %d)",
                    (long long) json_integer_value(version), SYN_PROTOCOL_VERSION);
        else
            msg_set_err(err, errlen, "protocol version 'v' must be an integer, got %s",
                    json_kind_name(version));
    } else if (type_name == NULL) {
        msg_set_err(err, errlen, "missing message type 't'");
    } else if (!json_is_string(type_name)) {
        msg_set_err(err, errlen, "message type 't' must be a string, got %s",
                json_kind_name(type_name));
    } else if (type_from_name(json_string_value(type_name), json_string_length(type_name),
                              type) != 0) {
        msg_set_err(err, errlen, "unknown message type '%.64s'", json_string_value(type_name));
    } else if (msg_check_schema(*type, fields, err, errlen) == 0) {
        return 0;
    }
    return -1;
}
