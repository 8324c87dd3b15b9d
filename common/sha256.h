/* sha256: SHA-256 (FIPS 180-4), incrementally, for artifacts: the worker hashes
 * what it sends, the broker what it receives, and both must agree. It stands alone
 * (rather than GnuTLS's, which auth/ uses) because the worker links no crypto
 * library and must not start to for a hash. */
#ifndef SYN_COMMON_SHA256_H
#define SYN_COMMON_SHA256_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SYN_SHA256_HEX_SIZE 65 /* 64 lowercase hex digits and the NUL */

typedef struct {
    uint32_t state[8];
    uint64_t bytes;
    unsigned char block[64];
    size_t used;
} syn_sha256_t;

void syn_sha256_init(syn_sha256_t *self);
void syn_sha256_update(syn_sha256_t *self, const void *data, size_t len);
/* Writes the digest as 64 lowercase hex digits and a NUL; self must be
 * initialised again before another use. */
void syn_sha256_hex(syn_sha256_t *self, char hex[SYN_SHA256_HEX_SIZE]);
/* Whether text is a digest as syn_sha256_hex writes it (64 lowercase hex digits). */
bool syn_sha256_hex_ok(const char *text);

#endif
