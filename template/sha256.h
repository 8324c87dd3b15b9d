/* sha256: FIPS 180-4 SHA-256, for content hashes of loaded templates (no crypto
 * library is linked for this alone). */
#ifndef SYN_TEMPLATE_SHA256_H
#define SYN_TEMPLATE_SHA256_H

#include <stddef.h>

#define TEMPLATE_SHA256_HEX 65 /* 64 lowercase hex digits and a NUL */

/* Writes the hex digest of data[0..len) into hex. */
void template_sha256_hex(const void *data, size_t len, char hex[TEMPLATE_SHA256_HEX]);

#endif
