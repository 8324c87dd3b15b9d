/* utf8: the text checks every template input goes through before YAML sees it. */
#ifndef SYN_TEMPLATE_UTF8_H
#define SYN_TEMPLATE_UTF8_H

#include <stdbool.h>
#include <stddef.h>

/* True when text[0..len) is well-formed UTF-8 (no overlong forms, no surrogates,
 * nothing above U+10FFFF). Otherwise *bad_offset is the first bad byte. */
bool template_utf8_valid(const char *text, size_t len, size_t *bad_offset);

/* The 1-based line and column (in characters) of byte offset in text. */
void template_utf8_position(const char *text, size_t len, size_t offset, int *line, int *column);

/* The byte offset of the character with index chars in text (valid UTF-8), or len
 * when the text is shorter (libyaml's marks count characters). */
size_t template_utf8_byte_offset(const char *text, size_t len, size_t chars);

#endif
