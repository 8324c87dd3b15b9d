/* utf8: everything syn knows about UTF-8, in one place: what counts as text (the
 * codec, the JSON writer, templates, agent output all ask the same question), where
 * a character starts (so no cut splits one), and how bytes that are not text become
 * text. Kept apart from every caller because the rule must be the same for all of
 * them: what one side accepts as text, the other side's decoder must accept too. */
#ifndef SYN_COMMON_UTF8_H
#define SYN_COMMON_UTF8_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The UTF-8 encoding of U+FFFD, which replaces every invalid byte sequence and NUL. */
#define SYN_UTF8_REPLACEMENT "\xEF\xBF\xBD"

/* Length of the valid, NUL-free prefix of s (== len when all of it is valid):
 * well-formed UTF-8 per Unicode table 3-7, which excludes overlong forms,
 * surrogates and code points above U+10FFFF. */
size_t syn_utf8_valid_prefix(const uint8_t *s, size_t len);

/* True when text[0..len) is valid UTF-8 without NUL bytes (syn_utf8_valid_prefix
 * covers all of it); otherwise, when bad_offset is not NULL, *bad_offset is the
 * first bad byte. */
bool syn_utf8_valid(const char *text, size_t len, size_t *bad_offset);

/* What is wrong with the byte at text[bad] that syn_utf8_valid named, for an error
 * message: "not valid UTF-8 (byte 0xC3)" or "not text: a NUL byte". */
const char *syn_utf8_problem(const char *text, size_t bad, char buf[32]);

/* 3 when text starts with the UTF-8 byte order mark some editors write, else 0. */
size_t syn_utf8_bom_length(const char *text, size_t len);

/* The 1-based line and column (in characters) of byte offset in text. */
void syn_utf8_position(const char *text, size_t len, size_t offset, int *line, int *column);

/* The byte offset of the character with index chars in text (valid UTF-8), or len
 * when the text is shorter: text[0..result) is its first chars characters. */
size_t syn_utf8_byte_offset(const char *text, size_t len, size_t chars);

/* The largest n <= max such that text[0..n) ends on a character boundary, for valid
 * UTF-8 text of length len: the one way syn cuts text to a byte limit (a chunk, a
 * name, a reason), so a cut never splits a character. */
size_t syn_utf8_cut(const char *text, size_t len, size_t max);

/* The first character boundary at or after from in text[0..len): where text that
 * was cut at its start (a ring buffer's tail) begins with a whole character. */
size_t syn_utf8_boundary_after(const char *text, size_t len, size_t from);

/* How many trailing bytes of data (0..3) are the start of a character that more
 * input could still complete: a stream keeps them for the next chunk, and text cut
 * short by a bounded snprintf drops them. */
size_t syn_utf8_incomplete_tail(const char *data, size_t len);

/* Copies data into out, replacing NUL and each maximal invalid subpart (Unicode's
 * "substitution of maximal subparts") with U+FFFD. out needs room for 3 * len bytes.
 * Returns the number of bytes written (no terminator is added). */
size_t syn_utf8_sanitize(const char *data, size_t len, char *out);

#endif
