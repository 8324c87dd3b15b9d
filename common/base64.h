/* base64: the standard alphabet with padding (RFC 4648 §4). msgpack's bin type is
 * refused by syn's decoder (docs/protocol.md §2), so bytes that are not text (an
 * artifact's content) cross the wire as base64 strings; the worker also uses it for
 * git's basic-auth header. The decoder is strict: any other character, a bad
 * length or bad padding is an error. */
#ifndef SYN_COMMON_BASE64_H
#define SYN_COMMON_BASE64_H

#include <stddef.h>

/* The length of the encoding of len bytes, without the NUL. */
size_t syn_base64_encoded_len(size_t len);
/* Writes the encoding of in[0..len) and a NUL into out (encoded_len + 1 bytes). */
void syn_base64_encode(const unsigned char *in, size_t len, char *out);
/* Decodes text[0..len) into out (room for len / 4 * 3 bytes); the decoded length,
 * or -1 when text is not strict base64. */
long syn_base64_decode(const char *text, size_t len, unsigned char *out);

#endif
