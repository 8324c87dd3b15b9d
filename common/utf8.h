/* utf8: the one check of "is this text" that the codec, the JSON writer and
 * anything else that hands bytes to a peer share. */
#ifndef SYN_COMMON_UTF8_H
#define SYN_COMMON_UTF8_H

#include <stddef.h>
#include <stdint.h>

/* Length of the valid, NUL-free prefix of s (== len when all of it is valid):
 * well-formed UTF-8 per Unicode table 3-7, which excludes overlong forms,
 * surrogates and code points above U+10FFFF. */
size_t syn_utf8_valid_prefix(const uint8_t *s, size_t len);

#endif
