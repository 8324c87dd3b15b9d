/* artifacts: ARTIFACT chunks received, limits, whole sets (artifacts.h). */
#include "broker/artifacts.h"

#include "common/artifact_path.h"
#include "common/base64.h"
#include "common/log.h"
#include "common/sha256.h"

#include <czmq.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* One attempt's set while its chunks arrive. */
typedef struct {
    char *execution_id;
    char *phase_id;
    int64_t attempt;
    size_t index;        /* files stored whole so far: the next one expected */
    int64_t offset;      /* bytes of file `index` stored so far */
    int64_t count;       /* files the worker says it sends */
    int64_t total;       /* bytes of all files begun so far */
    int64_t artifact_id; /* the row of file `index` while it arrives */
    syn_sha256_t hash;   /* of file `index` so far */
    char *error;         /* why the set is refused; nothing more is taken */
    int64_t last_ms;
} receiving_t;

struct broker_artifacts_t {
    broker_store_t *store;
    broker_artifact_limits_t limits;
    zhashx_t *sets; /* "execution\x1fphase\x1fattempt" → receiving_t */
    size_t turn_bytes;
};

static void receiving_destroy(void **item)
{
    receiving_t *r = *item;
    if (!r)
        return;
    free(r->execution_id);
    free(r->phase_id);
    free(r->error);
    free(r);
    *item = NULL;
}

broker_artifacts_t *broker_artifacts_new(broker_store_t *store,
                                         const broker_artifact_limits_t *limits)
{
    broker_artifacts_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->store = store;
    self->limits = *limits;
    self->sets = zhashx_new();
    if (!self->sets) {
        free(self);
        return NULL;
    }
    zhashx_set_destructor(self->sets, receiving_destroy);
    return self;
}

void broker_artifacts_destroy(broker_artifacts_t **self_p)
{
    broker_artifacts_t *self = *self_p;
    if (!self)
        return;
    zhashx_destroy(&self->sets);
    free(self);
    *self_p = NULL;
}

bool broker_artifacts_turn_full(const broker_artifacts_t *self)
{
    return self->turn_bytes >= BROKER_ARTIFACT_TURN_BYTES;
}

void broker_artifacts_turn_add(broker_artifacts_t *self, size_t bytes)
{
    self->turn_bytes += bytes;
}

void broker_artifacts_new_turn(broker_artifacts_t *self)
{
    self->turn_bytes = 0;
}

size_t broker_artifacts_receiving(const broker_artifacts_t *self)
{
    return zhashx_size(self->sets);
}

static void key_of(char *key, size_t len, const char *execution_id, const char *phase_id,
                   int64_t attempt)
{
    snprintf(key, len, "%s\x1f%s\x1f%" PRId64, execution_id, phase_id, attempt);
}

static json_t *ack(const char *execution_id, const char *phase_id, int64_t attempt,
                   size_t index, int64_t offset, const char *error)
{
    json_t *fields = json_pack("{s:s, s:s, s:I, s:I, s:I}", "execution_id", execution_id,
                               "phase_id", phase_id, "attempt", (json_int_t)attempt, "index",
                               (json_int_t)index, "offset", (json_int_t)offset);
    if (fields && error)
        json_object_set_new(fields, "error", json_string(error));
    return fields;
}

static json_t *ack_of(const receiving_t *r)
{
    return ack(r->execution_id, r->phase_id, r->attempt, r->index, r->offset, r->error);
}

/* The set is refused: its rows go, the reason stays for the RESULT. */
static void refuse(broker_artifacts_t *self, receiving_t *r, char *why)
{
    if (!r->error)
        r->error = why ? why : strdup("artifacts refused");
    else
        free(why);
    syn_warn("broker", "artifacts refused execution=%s phase=%s attempt=%" PRId64 ": %s",
             r->execution_id, r->phase_id, r->attempt, r->error ? r->error : "?");
    broker_store_artifacts_discard(self->store, r->execution_id, r->phase_id, r->attempt);
}

static char *strdupf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *strdupf(const char *fmt, ...)
{
    va_list args;
    va_start(args, fmt);
    char *text = NULL;
    if (vasprintf(&text, fmt, args) < 0)
        text = NULL;
    va_end(args);
    return text;
}

bool broker_artifact_path_ok(const char *path)
{
    return syn_artifact_path_ok(path);
}

/* Checks the file a chunk at offset 0 begins; a reason, or NULL when it may. */
static char *check_file(const broker_artifacts_t *self, const receiving_t *r, const char *path,
                        int64_t size, const char *sha256)
{
    const broker_artifact_limits_t *l = &self->limits;
    if (!broker_artifact_path_ok(path))
        return strdupf("artifact path \"%.200s\" is not a plain relative path", path);
    if (!syn_sha256_hex_ok(sha256))
        return strdupf("artifact %s: sha256 is not 64 lowercase hex digits", path);
    if (size > l->max_file_bytes)
        return strdupf("artifact %s is %" PRId64 " bytes, over the limit of %" PRId64
                       " bytes per file (--artifact-max-file-bytes)",
                       path, size, l->max_file_bytes);
    if (r->total + size > l->max_phase_bytes)
        return strdupf("artifacts of phase %s exceed the limit of %" PRId64
                       " bytes per phase at %s (--artifact-max-phase-bytes)",
                       r->phase_id, l->max_phase_bytes, path);
    return NULL;
}

/* The set the chunk belongs to: the one receiving, or a new one when the chunk is
 * the very first (a worker starting over also starts from there). NULL: not now. */
static receiving_t *set_for(broker_artifacts_t *self, const char *key, const char *execution_id,
                            const char *phase_id, int64_t attempt, uint64_t index,
                            uint64_t offset, int64_t now_ms)
{
    receiving_t *r = zhashx_lookup(self->sets, key);
    bool first = index == 0 && offset == 0;
    if (r && first && (r->index != 0 || r->offset != 0) && !r->error) {
        broker_store_artifacts_discard(self->store, execution_id, phase_id, attempt);
        zhashx_delete(self->sets, key);
        r = NULL;
    }
    if (r || !first)
        return r;
    r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->execution_id = strdup(execution_id);
    r->phase_id = strdup(phase_id);
    r->attempt = attempt;
    r->last_ms = now_ms;
    r->artifact_id = -1;
    if (!r->execution_id || !r->phase_id || zhashx_insert(self->sets, key, r) != 0) {
        void *item = r;
        receiving_destroy(&item);
        return NULL;
    }
    /* Rows of an earlier try of this attempt (before a restart of either side). */
    broker_store_artifacts_discard(self->store, execution_id, phase_id, attempt);
    return r;
}

/* Stores the chunk's bytes at the set's position; false when it refused the set. */
static bool store_chunk(broker_artifacts_t *self, receiving_t *r, const json_t *fields)
{
    const char *path = json_string_value(json_object_get(fields, "path"));
    const char *sha256 = json_string_value(json_object_get(fields, "sha256"));
    int64_t size = (int64_t)json_integer_value(json_object_get(fields, "size"));
    int64_t count = (int64_t)json_integer_value(json_object_get(fields, "count"));
    const json_t *data = json_object_get(fields, "data");
    size_t text_len = json_string_length(data);
    if (r->offset == 0) {
        if (count > self->limits.max_files) {
            refuse(self, r,
                   strdupf("phase %s left %" PRId64 " artifacts, over the limit of %" PRId64
                           " files per phase (--artifact-max-files)",
                           r->phase_id, count, self->limits.max_files));
            return false;
        }
        char *why = check_file(self, r, path, size, sha256);
        if (why) {
            refuse(self, r, why);
            return false;
        }
        r->count = count;
        r->artifact_id = broker_store_artifact_begin(self->store, r->execution_id, r->phase_id,
                                                     r->attempt, path, size, sha256,
                                                     broker_artifact_media_type(path));
        if (r->artifact_id < 0) {
            refuse(self, r, strdupf("artifact %s could not be stored (duplicate path?)", path));
            return false;
        }
        r->total += size;
        syn_sha256_init(&r->hash);
    }
    const char *text = json_string_value(data);
    size_t decoded = text_len / 4 * 3;
    for (size_t i = text_len; i > 0 && decoded > 0 && text[i - 1] == '=' && i + 2 > text_len; i--)
        decoded--;
    if (decoded > BROKER_ARTIFACT_CHUNK_MAX) {
        refuse(self, r, strdupf("artifact %s: a chunk is over %u bytes", path,
                                BROKER_ARTIFACT_CHUNK_MAX));
        return false;
    }
    unsigned char *bytes = malloc(text_len / 4 * 3 + 1);
    long len = bytes ? syn_base64_decode(text, text_len, bytes) : -1;
    if (len < 0 || r->offset + len > size || (len == 0 && size > 0)) {
        free(bytes);
        refuse(self, r, strdupf("artifact %s: a chunk is not base64 of the next bytes", path));
        return false;
    }
    int rc = broker_store_artifact_chunk(self->store, r->artifact_id, r->offset, bytes,
                                         (size_t)len);
    syn_sha256_update(&r->hash, bytes, (size_t)len);
    free(bytes);
    if (rc < 0) {
        refuse(self, r, strdupf("artifact %s could not be stored", path));
        return false;
    }
    r->offset += len;
    self->turn_bytes += (size_t)len;
    if (r->offset == size) {
        char hex[SYN_SHA256_HEX_SIZE];
        syn_sha256_hex(&r->hash, hex);
        if (strcmp(hex, sha256) != 0) {
            refuse(self, r,
                   strdupf("artifact %s does not match its SHA-256 (changed while sent?)", path));
            return false;
        }
        r->index++;
        r->offset = 0;
        r->artifact_id = -1;
    }
    return true;
}

json_t *broker_artifacts_chunk(broker_artifacts_t *self, const json_t *fields, int64_t now_ms)
{
    const char *execution_id = json_string_value(json_object_get(fields, "execution_id"));
    const char *phase_id = json_string_value(json_object_get(fields, "phase_id"));
    int64_t attempt = (int64_t)json_integer_value(json_object_get(fields, "attempt"));
    uint64_t index = (uint64_t)json_integer_value(json_object_get(fields, "index"));
    uint64_t offset = (uint64_t)json_integer_value(json_object_get(fields, "offset"));
    char key[512];
    key_of(key, sizeof key, execution_id, phase_id, attempt);
    receiving_t *r = set_for(self, key, execution_id, phase_id, attempt, index, offset, now_ms);
    if (!r) /* from the start, please */
        return ack(execution_id, phase_id, attempt, 0, 0, NULL);
    r->last_ms = now_ms;
    if (!r->error && index == r->index && (int64_t)offset == r->offset)
        store_chunk(self, r, fields);
    return ack_of(r);
}

json_t *broker_artifacts_refuse(broker_artifacts_t *self, const json_t *fields, const char *why)
{
    const char *execution_id = json_string_value(json_object_get(fields, "execution_id"));
    const char *phase_id = json_string_value(json_object_get(fields, "phase_id"));
    int64_t attempt = (int64_t)json_integer_value(json_object_get(fields, "attempt"));
    broker_artifacts_drop(self, execution_id, phase_id, attempt);
    return ack(execution_id, phase_id, attempt, 0, 0, why);
}

broker_artifacts_outcome_t broker_artifacts_settle(broker_artifacts_t *self,
                                                   const char *execution_id,
                                                   const char *phase_id, int64_t attempt,
                                                   const json_t *manifest, json_t **ack_out,
                                                   char *why, size_t whylen)
{
    *ack_out = NULL;
    char key[512];
    key_of(key, sizeof key, execution_id, phase_id, attempt);
    receiving_t *r = zhashx_lookup(self->sets, key);
    size_t expected = json_array_size(manifest);
    if (expected == 0) {
        broker_artifacts_drop(self, execution_id, phase_id, attempt);
        return BROKER_ARTIFACTS_WHOLE;
    }
    if (r && r->error) {
        snprintf(why, whylen, "%s", r->error);
        broker_artifacts_drop(self, execution_id, phase_id, attempt);
        return BROKER_ARTIFACTS_REFUSED;
    }
    if (!r || r->index < expected || (int64_t)expected != r->count) {
        *ack_out = r ? ack_of(r) : ack(execution_id, phase_id, attempt, 0, 0, NULL);
        return BROKER_ARTIFACTS_MISSING;
    }
    if (broker_store_artifacts_complete(self->store, execution_id, phase_id, attempt) < 0) {
        snprintf(why, whylen, "the artifacts could not be stored");
        broker_artifacts_drop(self, execution_id, phase_id, attempt);
        return BROKER_ARTIFACTS_REFUSED;
    }
    zhashx_delete(self->sets, key);
    return BROKER_ARTIFACTS_WHOLE;
}

void broker_artifacts_drop(broker_artifacts_t *self, const char *execution_id,
                           const char *phase_id, int64_t attempt)
{
    char key[512];
    key_of(key, sizeof key, execution_id, phase_id, attempt);
    /* Only a set being received has rows to discard (those of an earlier broker
     * run went at its start): most results come without one and cost nothing. */
    if (!zhashx_lookup(self->sets, key))
        return;
    zhashx_delete(self->sets, key);
    broker_store_artifacts_discard(self->store, execution_id, phase_id, attempt);
}

size_t broker_artifacts_sweep(broker_artifacts_t *self, broker_artifacts_current_fn is_current,
                              void *arg, int64_t now_ms, int64_t idle_ms)
{
    zlistx_t *gone = zlistx_new();
    if (!gone)
        return 0;
    zlistx_set_destructor(gone, (zlistx_destructor_fn *)zstr_free);
    for (receiving_t *r = zhashx_first(self->sets); r; r = zhashx_next(self->sets))
        if (!is_current(arg, r->execution_id, r->phase_id, r->attempt) ||
            now_ms - r->last_ms > idle_ms)
            zlistx_add_end(gone, strdup(zhashx_cursor(self->sets)));
    size_t n = zlistx_size(gone);
    for (char *key = zlistx_first(gone); key; key = zlistx_next(gone)) {
        receiving_t *r = zhashx_lookup(self->sets, key);
        if (!r)
            continue;
        syn_info("broker", "discarded unfinished artifacts execution=%s phase=%s attempt=%" PRId64,
                 r->execution_id, r->phase_id, r->attempt);
        broker_store_artifacts_discard(self->store, r->execution_id, r->phase_id, r->attempt);
        zhashx_delete(self->sets, key);
    }
    zlistx_destroy(&gone);
    return n;
}

const char *broker_artifact_media_type(const char *path)
{
    static const struct {
        const char *ext, *type;
    } types[] = {
        {"txt", "text/plain; charset=utf-8"}, {"md", "text/markdown; charset=utf-8"},
        {"html", "text/html; charset=utf-8"}, {"htm", "text/html; charset=utf-8"},
        {"css", "text/css; charset=utf-8"}, {"csv", "text/csv; charset=utf-8"},
        {"log", "text/plain; charset=utf-8"}, {"diff", "text/x-diff; charset=utf-8"},
        {"patch", "text/x-diff; charset=utf-8"}, {"js", "text/javascript; charset=utf-8"},
        {"json", "application/json"}, {"yaml", "application/yaml"}, {"yml", "application/yaml"},
        {"xml", "application/xml"}, {"pdf", "application/pdf"}, {"zip", "application/zip"},
        {"gz", "application/gzip"}, {"tar", "application/x-tar"}, {"png", "image/png"},
        {"jpg", "image/jpeg"}, {"jpeg", "image/jpeg"}, {"gif", "image/gif"},
        {"svg", "image/svg+xml"}, {"webp", "image/webp"}, {"wasm", "application/wasm"},
        {"py", "text/x-python; charset=utf-8"}, {"c", "text/x-c; charset=utf-8"},
        {"h", "text/x-c; charset=utf-8"}, {"sh", "text/x-shellscript; charset=utf-8"},
    };
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    const char *dot = strrchr(base, '.');
    if (dot && dot != base)
        for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
            if (strcasecmp(dot + 1, types[i].ext) == 0)
                return types[i].type;
    return "application/octet-stream";
}
