/* files: bounded reads and the directory fence for prompt files. */
#include "template/files.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int failure(char *why, size_t why_size, template_error_kind_t *kind,
                   template_error_kind_t what, const char *fmt, const char *arg, int err)
{
    char reason[256];
    snprintf(reason, sizeof reason, fmt, arg);
    if (err)
        snprintf(why, why_size, "%s: %s", reason, strerror(err));
    else
        snprintf(why, why_size, "%s", reason);
    *kind = what;
    return -1;
}

int template_file_read(const char *path, size_t limit, char **text, size_t *len, char *why,
                       size_t why_size, template_error_kind_t *kind)
{
    *text = NULL;
    *len = 0;
    /* O_NONBLOCK: opening a FIFO must not wait for a writer; fstat then refuses it */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return failure(why, why_size, kind, TEMPLATE_ERROR_IO, "cannot open %s", "file", errno);
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return failure(why, why_size, kind, TEMPLATE_ERROR_IO, "%s", "not a regular file", 0);
    }
    if ((unsigned long long)st.st_size > limit) {
        close(fd);
        char size[64];
        snprintf(size, sizeof size, "%zu", limit);
        return failure(why, why_size, kind, TEMPLATE_ERROR_TOO_LARGE,
                       "file larger than the limit of %s bytes", size, 0);
    }
    char *buf = malloc(limit + 1);
    if (!buf) {
        close(fd);
        return failure(why, why_size, kind, TEMPLATE_ERROR_IO, "%s", "out of memory", 0);
    }
    /* read up to one byte past the limit: the file may have grown since fstat */
    size_t used = 0;
    for (;;) {
        ssize_t n = read(fd, buf + used, limit + 1 - used);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int err = errno;
            close(fd);
            free(buf);
            return failure(why, why_size, kind, TEMPLATE_ERROR_IO, "cannot read %s", "file",
                           err);
        }
        if (n == 0)
            break;
        used += (size_t)n;
        if (used > limit) {
            close(fd);
            free(buf);
            char size[64];
            snprintf(size, sizeof size, "%zu", limit);
            return failure(why, why_size, kind, TEMPLATE_ERROR_TOO_LARGE,
                           "file larger than the limit of %s bytes", size, 0);
        }
    }
    close(fd);
    buf[used] = '\0';
    *text = buf;
    *len = used;
    return 0;
}

static bool has_dot_dot(const char *path)
{
    for (const char *p = path; *p;) {
        const char *slash = strchr(p, '/');
        size_t n = slash ? (size_t)(slash - p) : strlen(p);
        if (n == 2 && p[0] == '.' && p[1] == '.')
            return true;
        p += n;
        while (*p == '/')
            p++;
    }
    return false;
}

int template_path_inside(const char *dir, const char *relative, char **resolved, char *why,
                         size_t why_size, template_error_kind_t *kind)
{
    *resolved = NULL;
    if (!relative[0])
        return failure(why, why_size, kind, TEMPLATE_ERROR_INVALID, "%s", "the path is empty",
                       0);
    if (relative[0] == '/')
        return failure(why, why_size, kind, TEMPLATE_ERROR_INVALID, "%s",
                       "absolute paths are not allowed: give a path relative to the workflow "
                       "file",
                       0);
    if (has_dot_dot(relative))
        return failure(why, why_size, kind, TEMPLATE_ERROR_INVALID, "%s",
                       "'..' is not allowed: prompt files must be inside the workflow's "
                       "directory",
                       0);
    char *dir_real = realpath(dir, NULL);
    if (!dir_real)
        return failure(why, why_size, kind, TEMPLATE_ERROR_IO, "cannot resolve %s",
                       "the workflow's directory", errno);
    char *joined = NULL;
    if (asprintf(&joined, "%s/%s", dir_real, relative) < 0) {
        free(dir_real);
        return failure(why, why_size, kind, TEMPLATE_ERROR_IO, "%s", "out of memory", 0);
    }
    char *real = realpath(joined, NULL);
    int err = errno;
    free(joined);
    if (!real) {
        free(dir_real);
        return failure(why, why_size, kind, TEMPLATE_ERROR_IO, "cannot open %s", "the file",
                       err);
    }
    size_t n = strlen(dir_real);
    bool inside = strncmp(real, dir_real, n) == 0 && (real[n] == '/' || strcmp(dir_real, "/") == 0);
    free(dir_real);
    if (!inside) {
        free(real);
        return failure(why, why_size, kind, TEMPLATE_ERROR_INVALID, "%s",
                       "the path leads outside the workflow's directory (through a symlink)",
                       0);
    }
    *resolved = real;
    return 0;
}
