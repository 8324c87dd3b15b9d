/* token: the API tokens HTTP callers hold, and the file the gateway checks them
 * against. A token is 32 random bytes in base64url (43 characters), shown once
 * by `syn token new`; the file keeps only its SHA-256, one line per token:
 *
 *   # comments and blank lines are ignored
 *   NAME SCOPE sha256:<64 lowercase hex digits>
 *
 * NAME is 1-64 of [A-Za-z0-9._-] and unique in the file; SCOPE is read, run or
 * admin, each including the ones before it (docs/operations.md, "Secure").
 * A token is checked by hashing it and comparing with every line's hash in
 * constant time, so neither the time taken nor a log line tells anything about
 * the tokens. SHA-256 and the random bytes come from GnuTLS, which
 * libmicrohttpd's TLS already brings into the gateway. */
#ifndef SYN_AUTH_TOKEN_H
#define SYN_AUTH_TOKEN_H

#include <stdbool.h>
#include <stddef.h>

#define SYN_TOKEN_TEXT 44      /* 43 characters and NUL */
#define SYN_TOKEN_HASH_HEX 65  /* 64 hex digits and NUL */
#define SYN_TOKEN_NAME_MAX 64

typedef enum { SYN_SCOPE_READ = 1, SYN_SCOPE_RUN = 2, SYN_SCOPE_ADMIN = 3 } syn_scope_t;

/* "read" | "run" | "admin" → 0, else -1. */
int syn_scope_parse(const char *text, syn_scope_t *scope);
const char *syn_scope_name(syn_scope_t scope);

/* A fresh random token; 0, or -1 when no randomness could be had. */
int syn_token_generate(char out[SYN_TOKEN_TEXT]);
/* SHA-256 of text (len bytes) as lowercase hex. */
void syn_token_hash(const char *text, size_t len, char out[SYN_TOKEN_HASH_HEX]);
bool syn_token_name_is_valid(const char *name);

typedef struct syn_tokens_t syn_tokens_t;

/* Reads a tokens file; NULL with "file:line: reason" in err. A missing file is
 * an error too (a gateway told to check tokens must have some). */
syn_tokens_t *syn_tokens_load(const char *path, char *err, size_t errlen);
void syn_tokens_destroy(syn_tokens_t **self_p);
size_t syn_tokens_count(const syn_tokens_t *self);

/* The entry whose hash matches token (len bytes): its name and scope, true; or
 * false. Every entry is compared, whether or not an earlier one matched. */
bool syn_tokens_check(const syn_tokens_t *self, const char *token, size_t len,
                      const char **name, syn_scope_t *scope);

/* Appends "NAME SCOPE sha256:HASH" to path (made with mode 0600 when missing);
 * refuses a name already in the file or an invalid one. 0, or -1 with err. */
int syn_tokens_append(const char *path, const char *name, syn_scope_t scope,
                      const char hash[SYN_TOKEN_HASH_HEX], char *err, size_t errlen);

/* Compares a and b (n bytes each) in time that depends on n only. */
bool syn_token_equal(const void *a, const void *b, size_t n);

#endif
