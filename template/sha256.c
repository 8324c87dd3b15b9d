/* sha256: a template's content hash, through common/sha256.h (the incremental
 * SHA-256 the artifacts share). */
#include "template/sha256.h"

#include "common/sha256.h"

void template_sha256_hex(const void *data, size_t len, char hex[TEMPLATE_SHA256_HEX])
{
    syn_sha256_t h;
    syn_sha256_init(&h);
    syn_sha256_update(&h, data, len);
    syn_sha256_hex(&h, hex);
}
