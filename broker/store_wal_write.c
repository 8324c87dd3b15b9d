/* store_wal_write: a commit's WAL frames reach the kernel in a few large writes.
 *
 * SQLite writes each frame of a commit with two pwrite calls (its 24-byte
 * header, then the page), so a W1 commit of ~45 pages costs ~90 system calls
 * before its fdatasync: 7 per execution, the broker's largest count of system
 * calls after getpid (docs/benchmarks.md, W1). This file registers a VFS that
 * wraps the default one and, for the WAL file only, gathers contiguous writes
 * in memory and hands them to the real file in a few large writes when SQLite next
 * syncs, reads, sizes, truncates or closes it (or when the buffer is full, or a
 * write does not continue it). It stands alone because it is a file-system
 * concern, beneath every statement of the store.
 *
 * Why nothing is less durable: SQLite counts a commit only after xSync of the
 * WAL returns (synchronous=FULL, which configure() in store.c always sets), and
 * the sync writes the buffer first; the WAL index that lets other connections
 * and processes see the frames is updated after that sync. A crash before it
 * loses frames that were never committed, as without the buffer. A failed
 * write is reported by the sync (or read) that made it, and fails the commit. */
#include "broker/store_internal.h"

#include <stdbool.h>
#include <string.h>

#define WAL_WRITE_VFS "syn-wal-write"
/* Enough for a few hundred frames (a W1 commit is ~45, 185 KiB): a longer run
 * of writes is handed on when the buffer is full. */
#define WAL_BUFFER_MAX (1 << 20)

typedef struct {
    sqlite3_file base;   /* pMethods: wal_methods */
    sqlite3_file *real;  /* the default VFS's file, right after this struct */
    unsigned char *buf;  /* writes not yet handed on, from buf_off */
    sqlite3_int64 buf_off;
    int buf_len;
} wal_file_t;

static sqlite3_vfs *real_vfs;

/* SQLite's unix VFS takes at most 128 KiB - 1 bytes per write (it masks the
 * length with 0x1ffff: more is cut short and reported as a full disk). */
#define WAL_WRITE_PIECE (31 * 4096)

/* Hands the gathered writes to the real file. */
static int flush(wal_file_t *w)
{
    int rc = SQLITE_OK;
    for (int done = 0; rc == SQLITE_OK && done < w->buf_len; done += WAL_WRITE_PIECE) {
        int n = w->buf_len - done < WAL_WRITE_PIECE ? w->buf_len - done : WAL_WRITE_PIECE;
        rc = w->real->pMethods->xWrite(w->real, w->buf + done, n, w->buf_off + done);
    }
    w->buf_len = 0;
    return rc;
}

static int wal_write(sqlite3_file *f, const void *data, int n, sqlite3_int64 off)
{
    wal_file_t *w = (wal_file_t *)f;
    if (n > WAL_WRITE_PIECE) {
        int rc = flush(w);
        return rc != SQLITE_OK ? rc : w->real->pMethods->xWrite(w->real, data, n, off);
    }
    /* A frame SQLite rewrites in place within the same transaction. */
    if (w->buf_len > 0 && off >= w->buf_off && off + n <= w->buf_off + w->buf_len) {
        memcpy(w->buf + (off - w->buf_off), data, (size_t)n);
        return SQLITE_OK;
    }
    if (w->buf_len > 0 && (off != w->buf_off + w->buf_len || w->buf_len + n > WAL_BUFFER_MAX)) {
        int rc = flush(w);
        if (rc != SQLITE_OK)
            return rc;
    }
    if (!w->buf) {
        w->buf = sqlite3_malloc(WAL_BUFFER_MAX);
        if (!w->buf)
            return w->real->pMethods->xWrite(w->real, data, n, off);
    }
    if (w->buf_len == 0)
        w->buf_off = off;
    memcpy(w->buf + w->buf_len, data, (size_t)n);
    w->buf_len += n;
    return SQLITE_OK;
}

static int wal_close(sqlite3_file *f)
{
    wal_file_t *w = (wal_file_t *)f;
    int rc = flush(w);
    sqlite3_free(w->buf);
    w->buf = NULL;
    int rc2 = w->real->pMethods->xClose(w->real);
    return rc != SQLITE_OK ? rc : rc2;
}

static int wal_read(sqlite3_file *f, void *data, int n, sqlite3_int64 off)
{
    wal_file_t *w = (wal_file_t *)f;
    int rc = flush(w);
    return rc != SQLITE_OK ? rc : w->real->pMethods->xRead(w->real, data, n, off);
}

static int wal_truncate(sqlite3_file *f, sqlite3_int64 size)
{
    wal_file_t *w = (wal_file_t *)f;
    int rc = flush(w);
    return rc != SQLITE_OK ? rc : w->real->pMethods->xTruncate(w->real, size);
}

static int wal_sync(sqlite3_file *f, int flags)
{
    wal_file_t *w = (wal_file_t *)f;
    int rc = flush(w);
    return rc != SQLITE_OK ? rc : w->real->pMethods->xSync(w->real, flags);
}

static int wal_file_size(sqlite3_file *f, sqlite3_int64 *size)
{
    wal_file_t *w = (wal_file_t *)f;
    int rc = flush(w);
    return rc != SQLITE_OK ? rc : w->real->pMethods->xFileSize(w->real, size);
}

static int wal_lock(sqlite3_file *f, int level)
{
    wal_file_t *w = (wal_file_t *)f;
    return w->real->pMethods->xLock(w->real, level);
}

static int wal_unlock(sqlite3_file *f, int level)
{
    wal_file_t *w = (wal_file_t *)f;
    return w->real->pMethods->xUnlock(w->real, level);
}

static int wal_check_reserved(sqlite3_file *f, int *out)
{
    wal_file_t *w = (wal_file_t *)f;
    return w->real->pMethods->xCheckReservedLock(w->real, out);
}

static int wal_file_control(sqlite3_file *f, int op, void *arg)
{
    wal_file_t *w = (wal_file_t *)f;
    int rc = flush(w);
    return rc != SQLITE_OK ? rc : w->real->pMethods->xFileControl(w->real, op, arg);
}

static int wal_sector_size(sqlite3_file *f)
{
    wal_file_t *w = (wal_file_t *)f;
    return w->real->pMethods->xSectorSize(w->real);
}

static int wal_device_characteristics(sqlite3_file *f)
{
    wal_file_t *w = (wal_file_t *)f;
    return w->real->pMethods->xDeviceCharacteristics(w->real);
}

/* Version 1: SQLite maps shared memory and pages of the database file only,
 * never of its WAL. */
static const sqlite3_io_methods wal_methods = {
    .iVersion = 1,
    .xClose = wal_close,
    .xRead = wal_read,
    .xWrite = wal_write,
    .xTruncate = wal_truncate,
    .xSync = wal_sync,
    .xFileSize = wal_file_size,
    .xLock = wal_lock,
    .xUnlock = wal_unlock,
    .xCheckReservedLock = wal_check_reserved,
    .xFileControl = wal_file_control,
    .xSectorSize = wal_sector_size,
    .xDeviceCharacteristics = wal_device_characteristics,
};

/* Every file but the WAL is the real VFS's own, methods and all: it is opened
 * in the space SQLite gave, which is larger than the real VFS asked for. */
static int wal_write_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *f, int flags,
                          int *out_flags)
{
    (void)vfs;
    if (!(flags & SQLITE_OPEN_WAL))
        return real_vfs->xOpen(real_vfs, name, f, flags, out_flags);
    wal_file_t *w = (wal_file_t *)f;
    memset(w, 0, sizeof *w);
    w->real = (sqlite3_file *)(w + 1);
    int rc = real_vfs->xOpen(real_vfs, name, w->real, flags, out_flags);
    w->base.pMethods = rc == SQLITE_OK ? &wal_methods : NULL;
    return rc;
}

const char *store_wal_write_vfs(void)
{
    static sqlite3_vfs vfs;
    if (sqlite3_vfs_find(WAL_WRITE_VFS))
        return WAL_WRITE_VFS;
    real_vfs = sqlite3_vfs_find(NULL);
    if (!real_vfs)
        return NULL;
    vfs = *real_vfs;
    vfs.pNext = NULL;
    vfs.zName = WAL_WRITE_VFS;
    vfs.szOsFile = (int)sizeof(wal_file_t) + real_vfs->szOsFile;
    vfs.xOpen = wal_write_open;
    return sqlite3_vfs_register(&vfs, 0) == SQLITE_OK ? WAL_WRITE_VFS : NULL;
}
