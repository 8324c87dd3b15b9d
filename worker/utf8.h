/* utf8: turning arbitrary bytes (an agent's stdout, stderr) into text the protocol
 * accepts — valid UTF-8 without NUL bytes — so a decoder never rejects a result
 * because a child printed binary. */
#ifndef SYN_WORKER_UTF8_H
#define SYN_WORKER_UTF8_H

#include <stdbool.h>
#include <stddef.h>

/* The UTF-8 encoding of U+FFFD, which replaces every invalid byte sequence and NUL. */
#define WORKER_UTF8_REPLACEMENT "\xEF\xBF\xBD"

/* Copies data into out, replacing NUL and each maximal invalid subpart (Unicode's
 * "substitution of maximal subparts") with U+FFFD. out needs room for 3 * len bytes.
 * Returns the number of bytes written (no terminator is added). */
size_t worker_utf8_sanitize(const char *data, size_t len, char *out);

/* How many trailing bytes of data (0..3) are the start of a character that more
 * input could still complete; a stream sanitizes everything before them and keeps
 * them for the next chunk. */
size_t worker_utf8_incomplete_tail(const char *data, size_t len);

/* The largest n <= max such that text[0..n) ends on a character boundary, for
 * valid UTF-8 text of length len (so a chunk never splits a character). */
size_t worker_utf8_floor(const char *text, size_t len, size_t max);

/* True when data is valid UTF-8 without NUL bytes. */
bool worker_utf8_valid(const char *data, size_t len);

#endif
