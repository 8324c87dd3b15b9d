/* artifact_pull: earlier phases' files into a workspace (artifact_pull.h). */
#include "worker/artifact_pull.h"

#include "common/artifact_path.h"
#include "common/base64.h"
#include "common/sha256.h"
#include "worker/workspace.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct {
    const char *phase_id; /* borrowed from the list */
    const char *path;
    uint64_t size;
    const char *sha256;
    size_t dir;           /* index into dirs */
} file_t;

struct worker_pull_t {
    json_t *list;         /* the ASSIGN's list (a reference): what file_t borrows */
    char *input_dir;
    file_t *files;
    size_t count;
    char **dirs;          /* folder name under artifacts/input per distinct phase */
    char **dir_phases;    /* the phase id each is for */
    size_t dir_count;
    size_t index;         /* the file being fetched */
    uint64_t offset;      /* its bytes written so far */
    int fd;               /* open while it is being written; -1 otherwise */
    syn_sha256_t hash;
    char *error;
};

static void fail(worker_pull_t *self, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail(worker_pull_t *self, const char *fmt, ...)
{
    if (self->error)
        return;
    va_list args;
    va_start(args, fmt);
    if (vasprintf(&self->error, fmt, args) < 0)
        self->error = NULL;
    va_end(args);
    if (!self->error)
        self->error = strdup("cannot pull the artifacts of earlier phases");
    if (self->fd >= 0) {
        close(self->fd);
        self->fd = -1;
    }
}

/* The folder for phase_id: the one it already has, or a new one named like its
 * <phase>.md (another phase's id that makes the same name gets "-2", "-3"...). */
static int dir_for(worker_pull_t *self, const char *phase_id, size_t *index)
{
    for (size_t i = 0; i < self->dir_count; i++)
        if (strcmp(self->dir_phases[i], phase_id) == 0) {
            *index = i;
            return 0;
        }
    char base[WORKER_WORKSPACE_NAME_MAX + 1], name[WORKER_WORKSPACE_NAME_MAX + 16];
    worker_workspace_safe_name(phase_id, WORKER_WORKSPACE_NAME_MAX, base);
    snprintf(name, sizeof name, "%s", base);
    for (int n = 2;; n++) {
        bool taken = false;
        for (size_t i = 0; i < self->dir_count && !taken; i++)
            taken = strcmp(self->dirs[i], name) == 0;
        if (!taken)
            break;
        snprintf(name, sizeof name, "%s-%d", base, n);
    }
    self->dirs[self->dir_count] = strdup(name);
    self->dir_phases[self->dir_count] = strdup(phase_id);
    if (!self->dirs[self->dir_count] || !self->dir_phases[self->dir_count]) {
        free(self->dirs[self->dir_count]);
        free(self->dir_phases[self->dir_count]);
        return -1;
    }
    *index = self->dir_count++;
    return 0;
}

static int take_list(worker_pull_t *self, const json_t *list, char *err, size_t errlen)
{
    size_t n = json_array_size(list);
    self->files = calloc(n ? n : 1, sizeof *self->files);
    self->dirs = calloc(n ? n : 1, sizeof *self->dirs);
    self->dir_phases = calloc(n ? n : 1, sizeof *self->dir_phases);
    if (!self->files || !self->dirs || !self->dir_phases) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    size_t i;
    json_t *entry;
    json_array_foreach(list, i, entry) {
        file_t *f = &self->files[i];
        f->phase_id = json_string_value(json_object_get(entry, "phase_id"));
        f->path = json_string_value(json_object_get(entry, "path"));
        f->sha256 = json_string_value(json_object_get(entry, "sha256"));
        json_int_t size = json_integer_value(json_object_get(entry, "size"));
        if (!f->phase_id || !f->path || !f->sha256 || size < 0) {
            snprintf(err, errlen, "artifacts[%zu] is not {phase_id, path, size, sha256}", i);
            return -1;
        }
        if (!syn_artifact_path_ok(f->path)) {
            snprintf(err, errlen, "artifact path \"%.200s\" of phase %.100s is not a plain "
                     "relative path", f->path, f->phase_id);
            return -1;
        }
        if (!syn_sha256_hex_ok(f->sha256)) {
            snprintf(err, errlen, "artifact %.200s of phase %.100s: sha256 is not 64 lowercase "
                     "hex digits", f->path, f->phase_id);
            return -1;
        }
        f->size = (uint64_t)size;
        if (dir_for(self, f->phase_id, &f->dir) != 0) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        self->count++;
    }
    return 0;
}

/* Makes every folder on the way to the file's path under its phase's folder. */
static int make_dirs(const worker_pull_t *self, const file_t *f, char *path, size_t len)
{
    int n = snprintf(path, len, "%s/%s/%s", self->input_dir, self->dirs[f->dir], f->path);
    if (n < 0 || (size_t)n >= len) {
        errno = ENAMETOOLONG;
        return -1;
    }
    char *start = path + strlen(self->input_dir) + 1;
    for (char *slash = strchr(start, '/'); slash; slash = strchr(slash + 1, '/')) {
        *slash = '\0';
        int rc = mkdir(path, 0755);
        *slash = '/';
        if (rc != 0 && errno != EEXIST)
            return -1;
    }
    return 0;
}

/* Opens the next files, finishing the empty ones at once (nothing to ask for). */
static void open_next(worker_pull_t *self)
{
    while (!self->error && self->fd < 0 && self->index < self->count) {
        const file_t *f = &self->files[self->index];
        char path[8192];
        if (make_dirs(self, f, path, sizeof path) != 0) {
            fail(self, "cannot make the folders of artifacts/input/%s/%s: %s",
                 self->dirs[f->dir], f->path, strerror(errno));
            return;
        }
        self->fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
        if (self->fd < 0) {
            fail(self, "cannot write artifacts/input/%s/%s: %s", self->dirs[f->dir], f->path,
                 strerror(errno));
            return;
        }
        self->offset = 0;
        syn_sha256_init(&self->hash);
        if (f->size > 0)
            return;
        /* An empty file: its hash is checked like any other's. */
        char hex[SYN_SHA256_HEX_SIZE];
        syn_sha256_hex(&self->hash, hex);
        close(self->fd);
        self->fd = -1;
        if (strcmp(hex, f->sha256) != 0) {
            fail(self, "artifact %s of phase %s does not match its SHA-256", f->path, f->phase_id);
            return;
        }
        self->index++;
    }
}

worker_pull_t *worker_pull_new(const json_t *list, const char *input_dir, char *err,
                               size_t errlen)
{
    worker_pull_t *self = calloc(1, sizeof *self);
    if (!self) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    self->fd = -1;
    self->list = json_incref((json_t *)list);
    self->input_dir = strdup(input_dir);
    if (!self->input_dir) {
        snprintf(err, errlen, "out of memory");
        worker_pull_destroy(&self);
        return NULL;
    }
    /* A list it cannot take fails the attempt (the broker's word, not this
     * worker's fault): the pull is made, failed. */
    if (take_list(self, list, err, errlen) != 0)
        fail(self, "%s", err);
    open_next(self);
    return self;
}

void worker_pull_destroy(worker_pull_t **self_p)
{
    worker_pull_t *self = *self_p;
    if (!self)
        return;
    if (self->fd >= 0)
        close(self->fd);
    for (size_t i = 0; i < self->dir_count; i++) {
        free(self->dirs[i]);
        free(self->dir_phases[i]);
    }
    free(self->dirs);
    free(self->dir_phases);
    free(self->files);
    free(self->input_dir);
    free(self->error);
    json_decref(self->list);
    free(self);
    *self_p = NULL;
}

bool worker_pull_done(const worker_pull_t *self)
{
    return !self->error && self->index >= self->count;
}

const char *worker_pull_error(const worker_pull_t *self)
{
    return self->error;
}

json_t *worker_pull_request(const worker_pull_t *self)
{
    if (self->error || self->index >= self->count)
        return NULL;
    const file_t *f = &self->files[self->index];
    return json_pack("{s:s, s:s, s:I}", "from_phase", f->phase_id, "path", f->path, "offset",
                     (json_int_t)self->offset);
}

static bool write_all(int fd, const unsigned char *data, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, data, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        data += n;
        len -= (size_t)n;
    }
    return true;
}

/* Writes the chunk's bytes at the file's position; the file is done at its size. */
static void take_bytes(worker_pull_t *self, const file_t *f, const json_t *data)
{
    size_t text_len = json_string_length(data);
    if (text_len > (WORKER_PULL_CHUNK_MAX / 3 + 1) * 4) {
        fail(self, "artifact %s of phase %s: a chunk is over %u bytes", f->path, f->phase_id,
             WORKER_PULL_CHUNK_MAX);
        return;
    }
    unsigned char *bytes = malloc(text_len / 4 * 3 + 1);
    long len = bytes ? syn_base64_decode(json_string_value(data), text_len, bytes) : -1;
    if (len <= 0 || self->offset + (uint64_t)len > f->size) {
        free(bytes);
        fail(self, "artifact %s of phase %s: the broker sent %s", f->path, f->phase_id,
             len < 0 ? "a chunk that is not base64" : "no bytes or too many");
        return;
    }
    bool written = write_all(self->fd, bytes, (size_t)len);
    syn_sha256_update(&self->hash, bytes, (size_t)len);
    free(bytes);
    if (!written) {
        fail(self, "cannot write artifacts/input/%s/%s: %s", self->dirs[f->dir], f->path,
             strerror(errno));
        return;
    }
    self->offset += (uint64_t)len;
    if (self->offset < f->size)
        return;
    char hex[SYN_SHA256_HEX_SIZE];
    syn_sha256_hex(&self->hash, hex);
    int closed = close(self->fd);
    self->fd = -1;
    if (closed != 0) {
        fail(self, "cannot write artifacts/input/%s/%s: %s", self->dirs[f->dir], f->path,
             strerror(errno));
        return;
    }
    if (strcmp(hex, f->sha256) != 0) {
        fail(self, "artifact %s of phase %s does not match its SHA-256", f->path, f->phase_id);
        return;
    }
    self->index++;
    open_next(self);
}

bool worker_pull_take(worker_pull_t *self, const json_t *fields)
{
    if (self->error || self->index >= self->count)
        return false;
    const file_t *f = &self->files[self->index];
    const char *from = json_string_value(json_object_get(fields, "from_phase"));
    const char *path = json_string_value(json_object_get(fields, "path"));
    json_int_t offset = json_integer_value(json_object_get(fields, "offset"));
    if (!from || !path || strcmp(from, f->phase_id) != 0 || strcmp(path, f->path) != 0 ||
        offset < 0 || (uint64_t)offset != self->offset)
        return false;
    const char *error = json_string_value(json_object_get(fields, "error"));
    const char *sha256 = json_string_value(json_object_get(fields, "sha256"));
    json_int_t size = json_integer_value(json_object_get(fields, "size"));
    if (error)
        fail(self, "cannot get artifact %s of phase %s: %s", f->path, f->phase_id, error);
    else if (!sha256 || strcmp(sha256, f->sha256) != 0 || size < 0 || (uint64_t)size != f->size)
        fail(self, "artifact %s of phase %s is not the one listed (size or SHA-256 differ)",
             f->path, f->phase_id);
    else
        take_bytes(self, f, json_object_get(fields, "data"));
    return true;
}

size_t worker_pull_file_count(const worker_pull_t *self)
{
    return self->count;
}

size_t worker_pull_dir_count(const worker_pull_t *self)
{
    return self->dir_count;
}

const char *worker_pull_dir_name(const worker_pull_t *self, size_t i)
{
    return i < self->dir_count ? self->dirs[i] : NULL;
}
