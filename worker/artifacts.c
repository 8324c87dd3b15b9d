/* artifacts: collecting artifacts/output and reading it back (artifacts.h). */
#include "worker/artifacts.h"

#include "common/clock.h"
#include "common/log.h"
#include "common/sha256.h"
#include "worker/workspace.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* A tree deeper or wider than this is not a set of deliverables; the broker's
 * limits (256 files by default) are far below. */
#define MAX_FILES 100000
#define MAX_DEPTH 32
/* What opening a file counts as against worker_artifacts_hash's byte budget. */
#define OPEN_COST 4096

typedef struct {
    char *path; /* relative to artifacts/output */
    uint64_t size;
    char sha256[SYN_SHA256_HEX_SIZE];
} entry_t;

struct worker_artifacts_t {
    char *dir;  /* the moved copy: <dir>/output */
    char *root; /* <dir>/output */
    entry_t *entries;
    size_t count, cap;
    /* Hashing (worker_artifacts_hash): file `hashed` is open on hash_fd (-1
     * between files) with hash_bytes of it in hash so far. */
    size_t hashed;
    int hash_fd;
    uint64_t hash_bytes;
    syn_sha256_t hash;
};

typedef struct {
    worker_artifacts_t *set;
    json_t *warnings;
    char *err;
    size_t errlen;
} walk_t;

static void warn(walk_t *w, const char *rel, const char *what)
{
    if (!w->warnings)
        w->warnings = json_array();
    char line[PATH_MAX + 128];
    snprintf(line, sizeof line, "artifact artifacts/output/%s skipped: %s", rel, what);
    if (w->warnings)
        json_array_append_new(w->warnings, json_string(line));
    syn_warn("worker", "%s", line);
}

static int add_file(walk_t *w, const char *rel)
{
    worker_artifacts_t *set = w->set;
    if (set->count >= MAX_FILES) {
        warn(w, rel, "too many files");
        return 0;
    }
    if (set->count == set->cap) {
        size_t cap = set->cap ? set->cap * 2 : 16;
        entry_t *grown = realloc(set->entries, cap * sizeof *grown);
        if (!grown) {
            snprintf(w->err, w->errlen, "out of memory listing artifacts");
            return -1;
        }
        set->entries = grown;
        set->cap = cap;
    }
    entry_t *e = &set->entries[set->count];
    memset(e, 0, sizeof *e);
    e->path = strdup(rel);
    if (!e->path) {
        snprintf(w->err, w->errlen, "out of memory listing artifacts");
        return -1;
    }
    set->count++;
    return 0;
}

/* Walks dirfd (whose path relative to the root is prefix, "" at the top). */
static int walk(walk_t *w, int dirfd, const char *prefix, int depth)
{
    DIR *d = fdopendir(dirfd);
    if (!d) {
        close(dirfd);
        snprintf(w->err, w->errlen, "cannot read artifacts/output/%s: %s", prefix,
                 strerror(errno));
        return -1;
    }
    int rc = 0;
    struct dirent *de;
    while (rc == 0 && (de = readdir(d)) != NULL) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        char rel[PATH_MAX];
        if ((size_t)snprintf(rel, sizeof rel, "%s%s%s", prefix, *prefix ? "/" : "",
                             de->d_name) >= sizeof rel) {
            warn(w, de->d_name, "path too long");
            continue;
        }
        struct stat st;
        if (fstatat(dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
            warn(w, rel, strerror(errno));
            continue;
        }
        if (S_ISREG(st.st_mode)) {
            rc = add_file(w, rel);
        } else if (S_ISDIR(st.st_mode)) {
            if (depth >= MAX_DEPTH) {
                warn(w, rel, "folders nested too deep");
                continue;
            }
            int sub = openat(dirfd, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (sub < 0)
                warn(w, rel, strerror(errno));
            else
                rc = walk(w, sub, rel, depth + 1);
        } else {
            warn(w, rel,
                 S_ISLNK(st.st_mode) ? "a symbolic link (only regular files are kept)"
                                     : "not a regular file (a device, FIFO or socket)");
        }
    }
    closedir(d);
    return rc;
}

static int by_path(const void *a, const void *b)
{
    return strcmp(((const entry_t *)a)->path, ((const entry_t *)b)->path);
}

worker_artifacts_t *worker_artifacts_collect(const char *workspace, json_t **warnings, char *err,
                                             size_t errlen)
{
    *warnings = NULL;
    err[0] = '\0';
    char output[PATH_MAX];
    snprintf(output, sizeof output, "%s/artifacts/output", workspace);
    struct stat st;
    if (lstat(output, &st) != 0 || !S_ISDIR(st.st_mode))
        return NULL;
    worker_artifacts_t *self = calloc(1, sizeof *self);
    if (!self) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    self->hash_fd = -1;
    /* Beside the workspace, so the rename stays on its file system. */
    size_t len = strlen(workspace) + sizeof "-artifacts";
    self->dir = malloc(len);
    self->root = malloc(len + sizeof "/output");
    if (!self->dir || !self->root) {
        snprintf(err, errlen, "out of memory");
        worker_artifacts_destroy(&self);
        return NULL;
    }
    snprintf(self->dir, len, "%s-artifacts", workspace);
    snprintf(self->root, len + sizeof "/output", "%s/output", self->dir);
    if (mkdir(self->dir, 0700) != 0 || rename(output, self->root) != 0) {
        snprintf(err, errlen, "cannot keep artifacts/output: %s", strerror(errno));
        rmdir(self->dir);
        free(self->dir);
        self->dir = NULL;
        worker_artifacts_destroy(&self);
        return NULL;
    }
    walk_t w = {self, NULL, err, errlen};
    int fd = open(self->root, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    int rc = fd < 0 ? -1 : walk(&w, fd, "", 0);
    if (fd < 0)
        snprintf(err, errlen, "cannot read artifacts/output: %s", strerror(errno));
    *warnings = w.warnings;
    if (rc < 0 || self->count == 0) {
        worker_artifacts_destroy(&self);
        return NULL;
    }
    qsort(self->entries, self->count, sizeof *self->entries, by_path);
    return self;
}

void worker_artifacts_destroy(worker_artifacts_t **self_p)
{
    worker_artifacts_t *self = *self_p;
    if (!self)
        return;
    if (self->hash_fd >= 0)
        close(self->hash_fd);
    if (self->dir && worker_workspace_remove_tree(self->dir) != 0)
        syn_warn("worker", "cannot remove %s: %s", self->dir, strerror(errno));
    for (size_t i = 0; i < self->count; i++)
        free(self->entries[i].path);
    free(self->entries);
    free(self->dir);
    free(self->root);
    free(self);
    *self_p = NULL;
}

/* Drops file self->hashed (unreadable, or changed into something else). */
static void drop_unreadable(worker_artifacts_t *self, const char *what, json_t **warnings)
{
    entry_t *e = &self->entries[self->hashed];
    char line[PATH_MAX + 128];
    snprintf(line, sizeof line, "artifact artifacts/output/%s skipped: %s", e->path, what);
    syn_warn("worker", "%s", line);
    if (!*warnings)
        *warnings = json_array();
    if (*warnings)
        json_array_append_new(*warnings, json_string(line));
    free(e->path);
    memmove(e, e + 1, (self->count - self->hashed - 1) * sizeof *e);
    self->count--;
}

/* Opens file self->hashed for hashing; 0, or -1 (dropped: the next is current). */
static int open_next(worker_artifacts_t *self, json_t **warnings)
{
    char path[PATH_MAX];
    struct stat st;
    int fd = -1;
    if ((size_t)snprintf(path, sizeof path, "%s/%s", self->root,
                         self->entries[self->hashed].path) < sizeof path)
        fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    /* O_NONBLOCK: a FIFO put there since the listing must not stall the loop. */
    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        if (fd >= 0)
            close(fd);
        drop_unreadable(self, fd < 0 ? strerror(errno) : "not a regular file", warnings);
        return -1;
    }
    self->hash_fd = fd;
    self->hash_bytes = 0;
    syn_sha256_init(&self->hash);
    return 0;
}

bool worker_artifacts_hash(worker_artifacts_t *self, size_t max_bytes, int64_t until_us,
                           json_t **warnings)
{
    unsigned char buf[65536];
    size_t read_bytes = 0;
    bool first = true;
    while (self->hashed < self->count &&
           (first || (read_bytes < max_bytes && syn_mono_us() < until_us))) {
        first = false;
        if (self->hash_fd < 0) {
            read_bytes += OPEN_COST; /* a tree of empty files is a budget too */
            if (open_next(self, warnings) != 0)
                continue;
        }
        ssize_t n = read(self->hash_fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            close(self->hash_fd);
            self->hash_fd = -1;
            drop_unreadable(self, "cannot be read", warnings);
            continue;
        }
        read_bytes += (size_t)n;
        if (n > 0) {
            syn_sha256_update(&self->hash, buf, (size_t)n);
            self->hash_bytes += (uint64_t)n;
            continue;
        }
        entry_t *e = &self->entries[self->hashed++];
        e->size = self->hash_bytes;
        syn_sha256_hex(&self->hash, e->sha256);
        close(self->hash_fd);
        self->hash_fd = -1;
    }
    return self->hashed == self->count;
}

size_t worker_artifacts_count(const worker_artifacts_t *self)
{
    return self ? self->count : 0;
}

const char *worker_artifacts_path(const worker_artifacts_t *self, size_t i)
{
    return self->entries[i].path;
}

uint64_t worker_artifacts_size(const worker_artifacts_t *self, size_t i)
{
    return self->entries[i].size;
}

const char *worker_artifacts_sha256(const worker_artifacts_t *self, size_t i)
{
    return self->entries[i].sha256;
}

json_t *worker_artifacts_manifest(const worker_artifacts_t *self)
{
    json_t *list = json_array();
    for (size_t i = 0; list && self && i < self->count; i++)
        json_array_append_new(list, json_pack("{s:s, s:I, s:s}", "path", self->entries[i].path,
                                              "size", (json_int_t)self->entries[i].size,
                                              "sha256", self->entries[i].sha256));
    return list;
}

long worker_artifacts_read(const worker_artifacts_t *self, size_t i, uint64_t offset,
                           unsigned char *buf, size_t max)
{
    char path[PATH_MAX];
    if ((size_t)snprintf(path, sizeof path, "%s/%s", self->root, self->entries[i].path) >=
        sizeof path)
        return -1;
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return -1;
    size_t got = 0;
    while (got < max) {
        ssize_t n = pread(fd, buf + got, max - got, (off_t)(offset + got));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(fd);
    return (long)got;
}

/* Whether a file at path answers to the declared name: its whole path or its
 * file name, with or without its extension (after the first or the last dot,
 * so "report" is report.tar.gz too). */
static bool answers_to(const char *path, const char *name)
{
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    size_t len = strlen(name);
    if (strcmp(path, name) == 0 || strcmp(base, name) == 0)
        return true;
    const char *first = strchr(base + 1, '.'), *last = strrchr(base + 1, '.');
    const char *stems[2] = {first, last};
    for (int i = 0; i < 2; i++) {
        if (!stems[i])
            continue;
        size_t stem = (size_t)(stems[i] - base), whole = (size_t)(stems[i] - path);
        if ((stem == len && strncmp(base, name, len) == 0) ||
            (whole == len && strncmp(path, name, len) == 0))
            return true;
    }
    return false;
}

void worker_artifacts_check_declared(const worker_artifacts_t *self, const json_t *declared,
                                     json_t **warnings)
{
    size_t i;
    json_t *value;
    json_array_foreach(declared, i, value) {
        const char *name = json_string_value(value);
        bool found = false;
        for (size_t f = 0; name && self && f < self->count && !found; f++)
            found = answers_to(self->entries[f].path, name);
        if (!name || found)
            continue;
        if (!*warnings)
            *warnings = json_array();
        char line[512];
        snprintf(line, sizeof line,
                 "declared output artifact '%.200s' was not produced: no file named %.200s.* in "
                 "artifacts/output",
                 name, name);
        syn_warn("worker", "%s", line);
        if (*warnings)
            json_array_append_new(*warnings, json_string(line));
    }
}
