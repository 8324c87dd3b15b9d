/* utf8: the text checks every template input goes through before YAML sees it. */
#ifndef SYN_TEMPLATE_UTF8_H
#define SYN_TEMPLATE_UTF8_H

#include <stdbool.h>
#include <stddef.h>

/* True when text[0..len) is well-formed UTF-8 (no overlong forms, no surrogates,
 * nothing above U+10FFFF) without NUL bytes: a template's texts become C strings,
 * where a NUL would silently cut them short. Otherwise *bad_offset is the first
 * bad byte. The check is common/utf8.h's, shared with the codec. */
bool template_utf8_valid(const char *text, size_t len, size_t *bad_offset);

/* What is wrong with the byte at text[bad] that template_utf8_valid named, for an
 * error message: "not valid UTF-8 (byte 0xC3)" or "not text: a NUL byte". */
const char *template_utf8_problem(const char *text, size_t bad, char buf[32]);

/* 3 when text starts with the UTF-8 byte order mark some editors write, else 0. A
 * document's parser skips it: libyaml, told the text is UTF-8, would take it for a
 * character of the first line and misjudge that line's indentation. */
size_t template_utf8_bom_length(const char *text, size_t len);

/* The 1-based line and column (in characters) of byte offset in text. */
void template_utf8_position(const char *text, size_t len, size_t offset, int *line, int *column);

/* The byte offset of the character with index chars in text (valid UTF-8), or len
 * when the text is shorter (libyaml's marks count characters). */
size_t template_utf8_byte_offset(const char *text, size_t len, size_t chars);

#endif
