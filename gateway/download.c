/* download: artifact answers streamed a range at a time (download.h). */
#include "gateway/download.h"
#include "gateway/zip.h"

#include "common/base64.h"
#include "common/log.h"
#include "proto/ops.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define BLOCK_SIZE (64 * 1024)
#define TAR_BLOCK 512
/* A pax header and its record for a path of up to 1024 bytes, and the ustar header;
 * or one ZIP record. */
#define HEADER_MAX (4 * TAR_BLOCK)

typedef enum { FORMAT_ONE, FORMAT_TAR, FORMAT_ZIP } format_t;

/* An entry is its header, its data and its trailer (tar's padding, ZIP's data
 * descriptor); the archive ends with END's pieces (tar's two zero blocks; ZIP's
 * central records, then its end records). Headers, trailers and end pieces are
 * made in self->header one at a time. */
typedef enum { STAGE_HEADER, STAGE_DATA, STAGE_TRAILER, STAGE_END, STAGE_DONE } stage_t;

typedef struct {
    char *phase_id;
    char *path;
    uint64_t size;
    /* ZIP: where its local header is, its CRC-32 once sent, its time */
    uint64_t offset;
    uint32_t crc;
    uint16_t dos_time, dos_date;
} file_t;

struct gateway_download_t {
    format_t format;
    char *execution_id;
    file_t *files;
    size_t count;
    uint64_t total;
    char media_type[128];
    char sha256[65];
    /* where the reader is */
    size_t index;
    stage_t stage;
    uint64_t at; /* within the stage */
    char header[HEADER_MAX];
    size_t header_len;
    size_t end_index;                      /* END's piece */
    uLong crc;                             /* ZIP: of the entry's data so far */
    uint64_t central_offset, central_size; /* ZIP */
    /* the range held: bytes [piece_offset, piece_offset + piece_len) of file piece_index */
    unsigned char *piece;
    size_t piece_index, piece_len;
    uint64_t piece_offset;
    bool pending, suspended, failed;
    gateway_broker_link_t *link;
    long timeout_ms;
    gateway_turn_t *turn;
};

void gateway_download_destroy(gateway_download_t **self_p)
{
    gateway_download_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < self->count; i++) {
        free(self->files[i].phase_id);
        free(self->files[i].path);
    }
    free(self->files);
    free(self->execution_id);
    free(self->piece);
    free(self);
    *self_p = NULL;
}

/* --- tar ---------------------------------------------------------------------- */

static void octal(char *field, size_t width, uint64_t value)
{
    snprintf(field, width, "%0*" PRIo64, (int)width - 1, value);
}

static void checksum(char *block)
{
    memset(block + 148, ' ', 8);
    unsigned sum = 0;
    for (int i = 0; i < TAR_BLOCK; i++)
        sum += (unsigned char)block[i];
    snprintf(block + 148, 8, "%06o", sum);
    block[155] = ' ';
}

static void ustar_block(char *block, const char *name, size_t name_len, const char *prefix,
                        size_t prefix_len, uint64_t size, char type)
{
    memset(block, 0, TAR_BLOCK);
    memcpy(block, name, name_len);
    octal(block + 100, 8, 0644);
    octal(block + 108, 8, 0);
    octal(block + 116, 8, 0);
    octal(block + 124, 12, size);
    octal(block + 136, 12, 0);
    block[156] = type;
    memcpy(block + 257, "ustar", 6);
    memcpy(block + 263, "00", 2);
    memcpy(block + 345, prefix, prefix_len);
    checksum(block);
}

/* An entry's name in an archive, "<phase_id>/<path>", into name
 * (GATEWAY_ZIP_NAME_MAX bytes); its length. */
static size_t entry_name(const file_t *f, char *name)
{
    int len = snprintf(name, GATEWAY_ZIP_NAME_MAX, "%s/%s", f->phase_id, f->path);
    if (len < 0 || (size_t)len >= GATEWAY_ZIP_NAME_MAX)
        len = GATEWAY_ZIP_NAME_MAX - 1;
    return (size_t)len;
}

/* The headers of file f (ustar, after a pax record when its name does not fit)
 * into out; their length. */
static size_t tar_header(const file_t *f, char *out)
{
    char name[GATEWAY_ZIP_NAME_MAX];
    size_t n = entry_name(f, name);
    if (n <= 100) {
        ustar_block(out, name, n, "", 0, f->size, '0');
        return TAR_BLOCK;
    }
    /* prefix/name split at a slash, when both parts fit */
    for (size_t cut = n > 156 ? 155 : n - 1; cut > 0; cut--)
        if (name[cut] == '/' && n - cut - 1 <= 100 && n - cut - 1 > 0) {
            ustar_block(out, name + cut + 1, n - cut - 1, name, cut, f->size, '0');
            return TAR_BLOCK;
        }
    /* A pax record "LEN path=NAME\n", LEN counting itself. */
    char record[1300];
    size_t body = n + sizeof " path=\n" - 1;
    size_t digits = 1;
    while (snprintf(NULL, 0, "%zu", body + digits) > (int)digits)
        digits++;
    int rlen = snprintf(record, sizeof record, "%zu path=%s\n", body + digits, name);
    size_t padded = ((size_t)rlen + TAR_BLOCK - 1) / TAR_BLOCK * TAR_BLOCK;
    ustar_block(out, "PaxHeader", 9, "", 0, (uint64_t)rlen, 'x');
    memset(out + TAR_BLOCK, 0, padded);
    memcpy(out + TAR_BLOCK, record, (size_t)rlen);
    ustar_block(out + TAR_BLOCK + padded, name, 100, "", 0, f->size, '0');
    return 2 * TAR_BLOCK + padded;
}

static uint64_t pad_of(uint64_t size)
{
    return (TAR_BLOCK - size % TAR_BLOCK) % TAR_BLOCK;
}

/* --- zip (gateway/zip.h) ------------------------------------------------------- */

typedef size_t (*zip_record_fn)(const gateway_zip_entry_t *, uint64_t, unsigned char *);

/* File i's record of the kind write makes, into out; its length. */
static size_t zip_record(const file_t *f, zip_record_fn write, char *out)
{
    char name[GATEWAY_ZIP_NAME_MAX];
    gateway_zip_entry_t e = {.name = name,
                             .size = f->size,
                             .offset = f->offset,
                             .crc = f->crc,
                             .dos_time = f->dos_time,
                             .dos_date = f->dos_date};
    e.name_len = entry_name(f, name);
    return write(&e, GATEWAY_ZIP_LIMIT, (unsigned char *)out);
}

/* Places every entry and the central directory; the archive's length. */
static uint64_t zip_layout(gateway_download_t *self)
{
    uint64_t at = 0;
    self->central_size = 0;
    for (size_t i = 0; i < self->count; i++) {
        file_t *f = &self->files[i];
        f->offset = at;
        at += zip_record(f, gateway_zip_local, self->header) + f->size +
              zip_record(f, gateway_zip_descriptor, self->header);
        self->central_size += zip_record(f, gateway_zip_central, self->header);
    }
    self->central_offset = at;
    return at + self->central_size +
           gateway_zip_end(self->count, at, self->central_size, GATEWAY_ZIP_LIMIT,
                           (unsigned char *)self->header);
}

/* --- the stream ------------------------------------------------------------------ */

/* END's next piece into self->header; false when there is none left. */
static bool end_piece(gateway_download_t *self)
{
    size_t i = self->end_index++;
    if (self->format == FORMAT_TAR && i == 0) {
        memset(self->header, 0, 2 * TAR_BLOCK);
        self->header_len = 2 * TAR_BLOCK;
    } else if (self->format == FORMAT_ZIP && i < self->count) {
        self->header_len = zip_record(&self->files[i], gateway_zip_central, self->header);
    } else if (self->format == FORMAT_ZIP && i == self->count) {
        self->header_len = gateway_zip_end(self->count, self->central_offset,
                                           self->central_size, GATEWAY_ZIP_LIMIT,
                                           (unsigned char *)self->header);
    } else {
        return false;
    }
    return true;
}

static void enter_file(gateway_download_t *self)
{
    self->at = 0;
    if (self->index >= self->count) {
        self->end_index = 0;
        self->stage = end_piece(self) ? STAGE_END : STAGE_DONE;
        return;
    }
    const file_t *f = &self->files[self->index];
    self->stage = STAGE_HEADER;
    if (self->format == FORMAT_TAR) {
        self->header_len = tar_header(f, self->header);
    } else if (self->format == FORMAT_ZIP) {
        self->header_len = zip_record(f, gateway_zip_local, self->header);
        self->crc = crc32(0, Z_NULL, 0);
    } else {
        self->stage = STAGE_DATA;
    }
}

/* The entry's data is all sent: its trailer (or, alone, the end). */
static void leave_data(gateway_download_t *self)
{
    file_t *f = &self->files[self->index];
    self->at = 0;
    self->stage = STAGE_TRAILER;
    if (self->format == FORMAT_TAR) {
        self->header_len = (size_t)pad_of(f->size);
        memset(self->header, 0, self->header_len);
    } else if (self->format == FORMAT_ZIP) {
        f->crc = (uint32_t)self->crc;
        self->header_len = zip_record(f, gateway_zip_descriptor, self->header);
    } else {
        self->index++;
        enter_file(self);
    }
}

/* Copies what is left of self->header into buf (room bytes); how many. At its
 * end, the stage after it. */
static size_t copy_piece(gateway_download_t *self, char *buf, size_t room)
{
    size_t left = self->header_len - (size_t)self->at;
    size_t take = left < room ? left : room;
    memcpy(buf, self->header + self->at, take);
    self->at += take;
    if (self->at < self->header_len)
        return take;
    self->at = 0;
    if (self->stage == STAGE_HEADER) {
        self->stage = STAGE_DATA;
    } else if (self->stage == STAGE_TRAILER) {
        self->index++;
        enter_file(self);
    } else if (!end_piece(self)) {
        self->stage = STAGE_DONE;
    }
    return take;
}

static bool fetch(gateway_request_t *req)
{
    gateway_download_t *self = req->download;
    const file_t *f = &self->files[self->index];
    json_t *args = json_pack("{s:s, s:s, s:s, s:I, s:i}", "execution_id", self->execution_id,
                             "phase_id", f->phase_id, "path", f->path, "offset",
                             (json_int_t)self->at, "length", SYN_OP_ARTIFACT_READ_MAX);
    gateway_send_result_t rc = args ? gateway_broker_link_send(self->link,
                                                               SYN_OP_EXECUTION_ARTIFACT, args,
                                                               self->timeout_ms, req, &req->corr)
                                    : GATEWAY_SEND_NO_MEMORY;
    json_decref(args);
    if (rc != GATEWAY_SENT) {
        syn_warn("gateway", "artifact download cut: the broker cannot be asked path=%s",
                 req->path);
        self->failed = true;
        return false;
    }
    self->pending = true;
    return true;
}

static ssize_t read_download(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    gateway_request_t *req = cls;
    gateway_download_t *self = req->download;
    size_t n = 0;
    while (n < max && !self->failed && self->stage != STAGE_DONE) {
        size_t room = max - n;
        if (self->stage != STAGE_DATA) {
            n += copy_piece(self, buf + n, room);
            continue;
        }
        const file_t *f = &self->files[self->index];
        if (self->at >= f->size) {
            leave_data(self);
            continue;
        }
        if (self->piece && self->piece_index == self->index && self->at >= self->piece_offset &&
            self->at < self->piece_offset + self->piece_len) {
            size_t from = (size_t)(self->at - self->piece_offset);
            size_t take = self->piece_len - from < room ? self->piece_len - from : room;
            memcpy(buf + n, self->piece + from, take);
            if (self->format == FORMAT_ZIP)
                self->crc = crc32(self->crc, self->piece + from, (uInt)take);
            n += take;
            self->at += take;
            continue;
        }
        if (!self->pending)
            fetch(req);
        break;
    }
    if (n > 0)
        return (ssize_t)n;
    if (self->failed)
        return MHD_CONTENT_READER_END_WITH_ERROR;
    if (self->stage == STAGE_DONE)
        return MHD_CONTENT_READER_END_OF_STREAM;
    if (self->turn->stopping)
        return MHD_CONTENT_READER_END_WITH_ERROR;
    self->suspended = true;
    MHD_suspend_connection(req->connection);
    return 0;
}

/* Takes a range reply's bytes as the piece held; false when they are not the
 * range asked for. */
static bool take_range(gateway_download_t *self, size_t index, const json_t *body)
{
    const json_t *data = json_object_get(body, "data");
    json_int_t offset = json_integer_value(json_object_get(body, "offset"));
    json_int_t size = json_integer_value(json_object_get(body, "size"));
    if (!json_is_string(data) || index >= self->count || size < 0 ||
        (uint64_t)size != self->files[index].size)
        return false;
    size_t text_len = json_string_length(data);
    unsigned char *bytes = malloc(text_len / 4 * 3 + 1);
    long len = bytes ? syn_base64_decode(json_string_value(data), text_len, bytes) : -1;
    if (len < 0 || (len == 0 && (uint64_t)offset < self->files[index].size)) {
        free(bytes);
        return false;
    }
    free(self->piece);
    self->piece = bytes;
    self->piece_index = index;
    self->piece_offset = (uint64_t)offset;
    self->piece_len = (size_t)len;
    return true;
}

static bool add_file(gateway_download_t *self, const json_t *entry)
{
    const char *phase_id = json_string_value(json_object_get(entry, "phase_id"));
    const char *path = json_string_value(json_object_get(entry, "path"));
    json_int_t size = json_integer_value(json_object_get(entry, "size"));
    if (!phase_id || !path || size < 0)
        return false;
    file_t *f = &self->files[self->count];
    f->phase_id = strdup(phase_id);
    f->path = strdup(path);
    f->size = (uint64_t)size;
    gateway_zip_dos_time(json_string_value(json_object_get(entry, "created_at")), &f->dos_time,
                         &f->dos_date);
    if (!f->phase_id || !f->path) {
        free(f->phase_id);
        free(f->path);
        return false;
    }
    self->count++;
    return true;
}

void gateway_download_begin(gateway_request_t *req, const json_t *body,
                            gateway_broker_link_t *link, long timeout_ms, gateway_turn_t *turn)
{
    gateway_download_t *self = calloc(1, sizeof *self);
    format_t format = req->route.id == GATEWAY_ROUTE_ARTIFACT_TAR   ? FORMAT_TAR
                      : req->route.id == GATEWAY_ROUTE_ARTIFACT_ZIP ? FORMAT_ZIP
                                                                    : FORMAT_ONE;
    bool archive = format != FORMAT_ONE; /* of the execution's list */
    const json_t *list = archive ? json_object_get(body, "artifacts") : NULL;
    size_t count = archive ? json_array_size(list) : 1;
    const char *execution_id = json_string_value(json_object_get(body, "execution_id"));
    bool ok = self && execution_id && (!archive || json_is_array(list));
    if (ok) {
        self->format = format;
        self->link = link;
        self->timeout_ms = timeout_ms;
        self->turn = turn;
        self->execution_id = strdup(execution_id);
        self->files = calloc(count ? count : 1, sizeof *self->files);
        ok = self->execution_id && self->files;
    }
    for (size_t i = 0; ok && i < count; i++)
        ok = add_file(self, archive ? json_array_get(list, i) : body);
    if (ok && !archive) {
        snprintf(self->media_type, sizeof self->media_type, "%s",
                 json_string_value(json_object_get(body, "media_type")) ?: "application/octet-stream");
        snprintf(self->sha256, sizeof self->sha256, "%s",
                 json_string_value(json_object_get(body, "sha256")) ?: "");
        ok = take_range(self, 0, body);
    }
    if (!ok) {
        gateway_download_destroy(&self);
        gateway_request_set_literal(req, 502, GATEWAY_BAD_REPLY);
        return;
    }
    if (format == FORMAT_ZIP) {
        self->total = zip_layout(self);
    } else {
        for (size_t i = 0; i < self->count; i++) {
            self->total += self->files[i].size;
            if (format == FORMAT_TAR)
                self->total += tar_header(&self->files[i], self->header) +
                               pad_of(self->files[i].size);
        }
        if (format == FORMAT_TAR)
            self->total += 2 * TAR_BLOCK;
    }
    enter_file(self);
    req->download = self;
    req->status = 200;
    req->state = REQUEST_DOWNLOAD;
}

/* A file name for Content-Disposition's quoted form: printable ASCII only, no
 * quote or backslash (the filename* parameter carries the exact name). */
static void disposition(const char *path, char *out, size_t outlen)
{
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    char plain[256];
    size_t p = 0;
    for (const char *c = base; *c && p + 1 < sizeof plain; c++)
        plain[p++] = (*c < 0x20 || *c > 0x7e || *c == '"' || *c == '\\') ? '_' : *c;
    plain[p] = '\0';
    size_t o = (size_t)snprintf(out, outlen, "attachment; filename=\"%s\"; filename*=UTF-8''",
                                plain);
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *c = (const unsigned char *)base; *c && o + 4 < outlen; c++) {
        if ((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
            strchr("-._~", *c)) {
            out[o++] = (char)*c;
        } else {
            out[o++] = '%';
            out[o++] = hex[*c >> 4];
            out[o++] = hex[*c & 15];
        }
    }
    out[o] = '\0';
}

enum MHD_Result gateway_download_respond(gateway_request_t *req)
{
    gateway_download_t *self = req->download;
    struct MHD_Response *response =
        MHD_create_response_from_callback(self->total, BLOCK_SIZE, read_download, req, NULL);
    if (!response)
        return MHD_NO;
    char header[1400];
    if (self->format != FORMAT_ONE) {
        bool zip = self->format == FORMAT_ZIP;
        MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE,
                                zip ? "application/zip" : "application/x-tar");
        snprintf(header, sizeof header, "attachment; filename=\"%s-artifacts.%s\"",
                 self->execution_id, zip ? "zip" : "tar");
    } else {
        MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE, self->media_type);
        char etag[80];
        snprintf(etag, sizeof etag, "\"%s\"", self->sha256);
        MHD_add_response_header(response, MHD_HTTP_HEADER_ETAG, etag);
        disposition(self->files[0].path, header, sizeof header);
    }
    MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_DISPOSITION, header);
    MHD_add_response_header(response, "X-Content-Type-Options", "nosniff");
    enum MHD_Result rc = MHD_queue_response(req->connection, MHD_HTTP_OK, response);
    MHD_destroy_response(response);
    req->state = REQUEST_DOWNLOADING;
    return rc;
}

void gateway_download_range(gateway_request_t *req, json_int_t status, const json_t *body)
{
    gateway_download_t *self = req->download;
    self->pending = false;
    if (status != 200 || !take_range(self, self->index, body) ||
        self->piece_offset != self->at) {
        if (status)
            syn_warn("gateway", "artifact download cut: the broker answered %lld path=%s",
                     (long long)status, req->path);
        self->failed = true;
    }
    if (self->suspended) {
        self->suspended = false;
        MHD_resume_connection(req->connection);
        self->turn->resumed = true;
    }
}

bool gateway_download_pending(const gateway_request_t *req)
{
    return req->download && req->download->pending;
}
