#include "auth/token.h"

#include <errno.h>
#include <fcntl.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct {
    char name[SYN_TOKEN_NAME_MAX + 1];
    syn_scope_t scope;
    unsigned char hash[32];
} entry_t;

struct syn_tokens_t {
    entry_t *entries;
    size_t count;
};

static const char *scope_names[] = {NULL, "read", "run", "admin"};

int syn_scope_parse(const char *text, syn_scope_t *scope)
{
    for (int s = SYN_SCOPE_READ; s <= SYN_SCOPE_ADMIN; s++)
        if (text && strcmp(text, scope_names[s]) == 0) {
            *scope = (syn_scope_t)s;
            return 0;
        }
    return -1;
}

const char *syn_scope_name(syn_scope_t scope)
{
    return scope >= SYN_SCOPE_READ && scope <= SYN_SCOPE_ADMIN ? scope_names[scope] : "?";
}

int syn_token_generate(char out[SYN_TOKEN_TEXT])
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    unsigned char raw[33] = {0}; /* 32 random bytes, padded to a multiple of 3 */
    if (gnutls_rnd(GNUTLS_RND_KEY, raw, 32) != 0)
        return -1;
    size_t n = 0;
    for (size_t i = 0; i < sizeof raw; i += 3) {
        unsigned v = (unsigned)raw[i] << 16 | (unsigned)raw[i + 1] << 8 | raw[i + 2];
        for (int k = 18; k >= 0 && n < SYN_TOKEN_TEXT - 1; k -= 6)
            out[n++] = alphabet[(v >> k) & 63];
    }
    out[n] = '\0';
    gnutls_memset(raw, 0, sizeof raw);
    return 0;
}

static void to_hex(const unsigned char *bytes, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[bytes[i] >> 4];
        out[2 * i + 1] = digits[bytes[i] & 15];
    }
    out[2 * n] = '\0';
}

static void hash_raw(const char *text, size_t len, unsigned char out[32])
{
    if (gnutls_hash_fast(GNUTLS_DIG_SHA256, text, len, out) != 0)
        memset(out, 0, 32); /* never matches a stored hash: the all-zero one is refused */
}

void syn_token_hash(const char *text, size_t len, char out[SYN_TOKEN_HASH_HEX])
{
    unsigned char raw[32];
    hash_raw(text, len, raw);
    to_hex(raw, sizeof raw, out);
}

bool syn_token_name_is_valid(const char *name)
{
    size_t len = name ? strlen(name) : 0;
    if (len == 0 || len > SYN_TOKEN_NAME_MAX)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-", name[i]))
            return false;
    return true;
}

bool syn_token_equal(const void *a, const void *b, size_t n)
{
    const volatile unsigned char *x = a, *y = b;
    unsigned char diff = 0;
    for (size_t i = 0; i < n; i++)
        diff |= x[i] ^ y[i];
    return diff == 0;
}

static int hex_value(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* "NAME SCOPE sha256:HEX" (fields separated by spaces or tabs) into e. */
static int parse_line(char *line, entry_t *e, const char **why)
{
    char *save = NULL;
    char *name = strtok_r(line, " \t", &save);
    char *scope = strtok_r(NULL, " \t", &save);
    char *hash = strtok_r(NULL, " \t", &save);
    if (!name || !scope || !hash || strtok_r(NULL, " \t", &save)) {
        *why = "expected NAME SCOPE sha256:HEX";
        return -1;
    }
    if (!syn_token_name_is_valid(name)) {
        *why = "invalid name (1-64 of A-Z a-z 0-9 . _ -)";
        return -1;
    }
    if (syn_scope_parse(scope, &e->scope) != 0) {
        *why = "scope must be read, run or admin";
        return -1;
    }
    if (strncmp(hash, "sha256:", 7) != 0 || strlen(hash + 7) != 64) {
        *why = "hash must be sha256: and 64 hex digits";
        return -1;
    }
    unsigned char zero = 0;
    for (int i = 0; i < 32; i++) {
        int hi = hex_value(hash[7 + 2 * i]), lo = hex_value(hash[8 + 2 * i]);
        if (hi < 0 || lo < 0) {
            *why = "hash must be sha256: and 64 lowercase hex digits";
            return -1;
        }
        e->hash[i] = (unsigned char)(hi << 4 | lo);
        zero |= e->hash[i];
    }
    if (zero == 0) {
        *why = "an all-zero hash is not a token's";
        return -1;
    }
    snprintf(e->name, sizeof e->name, "%s", name);
    return 0;
}

static bool has_name(const syn_tokens_t *self, const char *name)
{
    for (size_t i = 0; i < self->count; i++)
        if (strcmp(self->entries[i].name, name) == 0)
            return true;
    return false;
}

syn_tokens_t *syn_tokens_load(const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "cannot read tokens file %s: %s", path, strerror(errno));
        return NULL;
    }
    syn_tokens_t *self = calloc(1, sizeof *self);
    char line[1024];
    size_t cap = 0;
    int lineno = 0;
    while (self && fgets(line, sizeof line, f)) {
        lineno++;
        size_t len = strlen(line);
        if (len == sizeof line - 1 && line[len - 1] != '\n') {
            snprintf(err, errlen, "%s:%d: line too long", path, lineno);
            goto fail;
        }
        line[strcspn(line, "\r\n")] = '\0';
        char *p = line + strspn(line, " \t");
        if (*p == '\0' || *p == '#')
            continue;
        if (self->count == cap) {
            cap = cap ? cap * 2 : 8;
            entry_t *grown = realloc(self->entries, cap * sizeof *grown);
            if (!grown) {
                snprintf(err, errlen, "out of memory");
                goto fail;
            }
            self->entries = grown;
        }
        entry_t *e = &self->entries[self->count];
        const char *why = NULL;
        if (parse_line(p, e, &why) != 0) {
            snprintf(err, errlen, "%s:%d: %s", path, lineno, why);
            goto fail;
        }
        if (has_name(self, e->name)) {
            snprintf(err, errlen, "%s:%d: name %s is used twice", path, lineno, e->name);
            goto fail;
        }
        self->count++;
    }
    if (!self)
        snprintf(err, errlen, "out of memory");
    else if (ferror(f)) {
        snprintf(err, errlen, "cannot read tokens file %s: %s", path, strerror(errno));
        goto fail;
    }
    fclose(f);
    return self;
fail:
    fclose(f);
    syn_tokens_destroy(&self);
    return NULL;
}

void syn_tokens_destroy(syn_tokens_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    free((*self_p)->entries);
    free(*self_p);
    *self_p = NULL;
}

size_t syn_tokens_count(const syn_tokens_t *self)
{
    return self->count;
}

bool syn_tokens_check(const syn_tokens_t *self, const char *token, size_t len,
                      const char **name, syn_scope_t *scope)
{
    unsigned char hash[32];
    hash_raw(token, len, hash);
    const entry_t *found = NULL;
    for (size_t i = 0; i < self->count; i++)
        if (syn_token_equal(hash, self->entries[i].hash, sizeof hash) && !found)
            found = &self->entries[i];
    if (!found)
        return false;
    if (name)
        *name = found->name;
    if (scope)
        *scope = found->scope;
    return true;
}

int syn_tokens_append(const char *path, const char *name, syn_scope_t scope,
                      const char hash[SYN_TOKEN_HASH_HEX], char *err, size_t errlen)
{
    if (!syn_token_name_is_valid(name)) {
        snprintf(err, errlen, "invalid token name '%s' (1-64 of A-Z a-z 0-9 . _ -)",
                 name ? name : "");
        return -1;
    }
    if (access(path, F_OK) == 0) {
        syn_tokens_t *existing = syn_tokens_load(path, err, errlen);
        if (!existing)
            return -1;
        bool taken = has_name(existing, name);
        syn_tokens_destroy(&existing);
        if (taken) {
            snprintf(err, errlen, "%s already has a token named %s", path, name);
            return -1;
        }
    }
    int fd = open(path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
        return -1;
    }
    /* A file edited by hand may lack its last newline: the new line must not be
     * glued to it (the whole file would then be refused on the next reload). */
    struct stat st;
    char last = '\n';
    if (fstat(fd, &st) == 0 && st.st_size > 0 && pread(fd, &last, 1, st.st_size - 1) != 1)
        last = '\n';
    char line[256];
    int n = snprintf(line, sizeof line, "%s%s %s sha256:%s\n", last == '\n' ? "" : "\n", name,
                     syn_scope_name(scope), hash);
    bool ok = n > 0 && write(fd, line, (size_t)n) == n && fsync(fd) == 0;
    int saved = errno;
    close(fd);
    if (!ok) {
        snprintf(err, errlen, "cannot write %s: %s", path, strerror(saved));
        return -1;
    }
    return 0;
}
