#include "worker/utf8.h"

#include "common/utf8.h"

#include <string.h>

/* Looks at the sequence starting at s (avail >= 1 bytes). Returns its length and
 * sets *valid when it is one well-formed character other than NUL; otherwise
 * returns the length of its maximal subpart (>= 1). *truncated tells that the
 * subpart ran into the end of the input, so more bytes might have completed it. */
static size_t scan(const unsigned char *s, size_t avail, bool *valid, bool *truncated)
{
    unsigned char b = s[0];
    unsigned char lo = 0x80, hi = 0xBF;
    size_t need;
    *truncated = false;
    *valid = false;
    if (b < 0x80) {
        *valid = b != 0;
        return 1;
    }
    if (b >= 0xC2 && b <= 0xDF)
        need = 1;
    else if (b == 0xE0) {
        need = 2;
        lo = 0xA0; /* no overlong forms */
    } else if ((b >= 0xE1 && b <= 0xEC) || b == 0xEE || b == 0xEF)
        need = 2;
    else if (b == 0xED) {
        need = 2;
        hi = 0x9F; /* no surrogates */
    } else if (b == 0xF0) {
        need = 3;
        lo = 0x90;
    } else if (b >= 0xF1 && b <= 0xF3)
        need = 3;
    else if (b == 0xF4) {
        need = 3;
        hi = 0x8F; /* nothing above U+10FFFF */
    } else
        return 1;
    for (size_t i = 1; i <= need; i++) {
        if (i >= avail) {
            *truncated = true;
            return i;
        }
        if (s[i] < lo || s[i] > hi)
            return i;
        lo = 0x80;
        hi = 0xBF;
    }
    *valid = true;
    return need + 1;
}

size_t worker_utf8_sanitize(const char *data, size_t len, char *out)
{
    const unsigned char *s = (const unsigned char *)data;
    size_t in = 0, written = 0;
    while (in < len) {
        bool valid, truncated;
        size_t n = scan(s + in, len - in, &valid, &truncated);
        if (valid) {
            memcpy(out + written, s + in, n);
            written += n;
        } else {
            memcpy(out + written, WORKER_UTF8_REPLACEMENT, 3);
            written += 3;
        }
        in += n;
    }
    return written;
}

size_t worker_utf8_incomplete_tail(const char *data, size_t len)
{
    const unsigned char *s = (const unsigned char *)data;
    /* A character is at most 4 bytes, so only a lead byte among the last 3 can
     * start an unfinished one. */
    size_t first = len > 3 ? len - 3 : 0;
    for (size_t i = first; i < len; i++) {
        bool valid, truncated;
        size_t n = scan(s + i, len - i, &valid, &truncated);
        if (truncated && i + n == len)
            return len - i;
    }
    return 0;
}

size_t worker_utf8_floor(const char *text, size_t len, size_t max)
{
    if (max >= len)
        return len;
    size_t n = max;
    while (n > 0 && ((unsigned char)text[n] & 0xC0) == 0x80)
        n--;
    return n;
}

/* The codec's own check, so that what passes here is what a decoder accepts. */
bool worker_utf8_valid(const char *data, size_t len)
{
    return syn_utf8_valid_prefix((const uint8_t *)data, len) == len;
}
