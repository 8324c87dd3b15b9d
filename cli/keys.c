#include "cli/keys.h"

#include "auth/token.h"

#include <czmq.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The token names' rule (auth/token.h), and as a file name never hidden (".") nor
 * read as an option ("-"). */
bool keys_name_is_valid(const char *name)
{
    return syn_token_name_is_valid(name) && name[0] != '.' && name[0] != '-';
}

static bool exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

/* Both files' paths, or -1 when they do not fit. */
static int pair_paths(const char *dir, const char *name, char pub[PATH_MAX],
                      char sec[PATH_MAX], char *err, size_t errlen)
{
    int a = snprintf(pub, PATH_MAX, "%s/%s.key", dir, name);
    int b = snprintf(sec, PATH_MAX, "%s/%s.key_secret", dir, name);
    if (a < 0 || a >= PATH_MAX || b < 0 || b >= PATH_MAX) {
        snprintf(err, errlen, "path too long: %s/%s.key_secret", dir, name);
        return -1;
    }
    return 0;
}

/* czmq's zcert_save_secret writes with umask 077 (so 0600), zcert_save_public with
 * whatever umask czmq last set (it resets the process's umask to 022 afterwards,
 * whatever it was). Neither refuses to overwrite or opens the file exclusively,
 * so they write into a fresh private directory, the modes are set exactly here,
 * and the files are linked into place. */
static int save_pair(zcert_t *cert, const char *tmp, const char *name, char *err, size_t errlen)
{
    char pub[PATH_MAX], sec[PATH_MAX];
    if (pair_paths(tmp, name, pub, sec, err, errlen) != 0)
        return -1;
    mode_t old = umask(077);
    int rc = zcert_save_public(cert, pub) == 0 && zcert_save_secret(cert, sec) == 0 ? 0 : -1;
    int saved = errno;
    umask(old);
    if (rc != 0 || chmod(pub, 0644) != 0 || chmod(sec, 0600) != 0) {
        snprintf(err, errlen, "cannot write key files in %s: %s", tmp,
                 strerror(rc != 0 ? saved : errno));
        return -1;
    }
    return 0;
}

/* Links tmp/name.* to dir/name.*: the secret first, so a public certificate never
 * appears without its secret; either link failing undoes the other. */
static int link_pair(const char *tmp, const char *dir, const char *name, char *err,
                     size_t errlen)
{
    char tpub[PATH_MAX], tsec[PATH_MAX], pub[PATH_MAX], sec[PATH_MAX];
    if (pair_paths(tmp, name, tpub, tsec, err, errlen) != 0 ||
        pair_paths(dir, name, pub, sec, err, errlen) != 0)
        return -1;
    if (link(tsec, sec) != 0) {
        snprintf(err, errlen, errno == EEXIST ? "%s already exists: not overwritten"
                                              : "cannot write %s: %s",
                 sec, strerror(errno));
        return -1;
    }
    if (link(tpub, pub) != 0) {
        snprintf(err, errlen, errno == EEXIST ? "%s already exists: not overwritten"
                                              : "cannot write %s: %s",
                 pub, strerror(errno));
        unlink(sec);
        return -1;
    }
    return 0;
}

int keys_generate(const char *dir, const char *name, const char *role, char *public_txt,
                  char *err, size_t errlen)
{
    if (!keys_name_is_valid(name)) {
        snprintf(err, errlen, "invalid key name '%s': " KEYS_NAME_RULE, name ? name : "");
        return -1;
    }
    char pub[PATH_MAX], sec[PATH_MAX], tmp[PATH_MAX];
    if (pair_paths(dir, name, pub, sec, err, errlen) != 0)
        return -1;
    /* Checked first for a clear answer before any work; link_pair is what
     * guarantees it. */
    for (const char *path = pub; path; path = path == pub ? sec : NULL)
        if (exists(path)) {
            snprintf(err, errlen, "%s already exists: not overwritten", path);
            return -1;
        }
    int n = snprintf(tmp, sizeof tmp, "%s/.%s.keygen-XXXXXX", dir, name);
    if (n < 0 || (size_t)n >= sizeof tmp) {
        snprintf(err, errlen, "path too long: %s", dir);
        return -1;
    }
    if (!mkdtemp(tmp)) { /* mode 0700 */
        snprintf(err, errlen, "cannot write in %s: %s", dir, strerror(errno));
        return -1;
    }
    zcert_t *cert = zcert_new();
    int rc = -1;
    if (!cert)
        snprintf(err, errlen, "cannot make a key pair");
    else {
        zcert_set_meta(cert, "name", "%s", name);
        if (role)
            zcert_set_meta(cert, "role", "%s", role);
        rc = save_pair(cert, tmp, name, err, errlen) == 0 &&
                     link_pair(tmp, dir, name, err, errlen) == 0
                 ? 0
                 : -1;
        if (rc == 0 && public_txt)
            snprintf(public_txt, KEYS_PUBLIC_TXT, "%s", zcert_public_txt(cert));
    }
    zcert_destroy(&cert);
    char tpub[PATH_MAX], tsec[PATH_MAX];
    char ignored[64];
    if (pair_paths(tmp, name, tpub, tsec, ignored, sizeof ignored) == 0) {
        unlink(tpub);
        unlink(tsec);
    }
    rmdir(tmp);
    return rc;
}

int keys_ensure(const char *dir, const char *name, const char *role, bool *made, char *err,
                size_t errlen)
{
    char pub[PATH_MAX], sec[PATH_MAX];
    if (pair_paths(dir, name, pub, sec, err, errlen) != 0)
        return -1;
    bool has_pub = exists(pub), has_sec = exists(sec);
    *made = false;
    if (has_pub && has_sec)
        return 0;
    if (has_pub != has_sec) {
        snprintf(err, errlen, "%s exists without %s: restore it, or remove both to make a new pair",
                 has_pub ? pub : sec, has_pub ? sec : pub);
        return -1;
    }
    if (keys_generate(dir, name, role, NULL, err, errlen) != 0)
        return -1;
    *made = true;
    return 0;
}

/* The whole of a small file, NUL-terminated (malloc'd), or NULL. */
static char *read_small(const char *path, size_t *len)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    char *text = malloc(65536);
    size_t n = text ? fread(text, 1, 65535, f) : 0;
    bool whole = text && !ferror(f) && feof(f);
    fclose(f);
    if (!whole) {
        free(text);
        return NULL;
    }
    text[n] = '\0';
    *len = n;
    return text;
}

int keys_authorize(const char *dir, const char *name, const char *authorized_dir, char *err,
                   size_t errlen)
{
    char pub[PATH_MAX], sec[PATH_MAX], dst[PATH_MAX], tmp[PATH_MAX];
    if (pair_paths(dir, name, pub, sec, err, errlen) != 0 ||
        pair_paths(authorized_dir, name, dst, sec, err, errlen) != 0)
        return -1;
    size_t len = 0, old_len = 0;
    char *text = read_small(pub, &len);
    if (!text) {
        snprintf(err, errlen, "cannot read %s: %s", pub, strerror(errno));
        return -1;
    }
    char *old = read_small(dst, &old_len);
    bool same = old && old_len == len && memcmp(old, text, len) == 0;
    free(old);
    if (same) {
        free(text);
        return 0;
    }
    /* Written beside and renamed over, so the broker's reload never reads half a
     * certificate. */
    snprintf(tmp, sizeof tmp, "%s/.%s.key-XXXXXX", authorized_dir, name);
    int fd = mkstemp(tmp);
    bool ok = fd >= 0 && write(fd, text, len) == (ssize_t)len && fchmod(fd, 0644) == 0;
    int saved = errno;
    if (fd >= 0)
        close(fd);
    free(text);
    if (ok && rename(tmp, dst) == 0)
        return 0;
    saved = ok ? errno : saved;
    if (fd >= 0)
        unlink(tmp);
    snprintf(err, errlen, "cannot write %s: %s", dst, strerror(saved));
    return -1;
}

int keys_mkdir(const char *path, unsigned mode, char *err, size_t errlen)
{
    char buf[PATH_MAX];
    int n = snprintf(buf, sizeof buf, "%s", path);
    if (n <= 0 || (size_t)n >= sizeof buf) {
        snprintf(err, errlen, "path too long: %s", path);
        return -1;
    }
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0755) != 0 && errno != EEXIST) {
            snprintf(err, errlen, "cannot make directory %s: %s", buf, strerror(errno));
            return -1;
        }
        *p = '/';
    }
    if (mkdir(buf, (mode_t)mode) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "cannot make directory %s: %s", buf, strerror(errno));
        return -1;
    }
    return 0;
}
