/* utf8: validation, boundaries and sanitizing of UTF-8 text. */
#include "common/utf8.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>

static bool is_continuation(unsigned char c)
{
    return (c & 0xC0) == 0x80;
}

size_t syn_utf8_valid_prefix(const uint8_t *s, size_t len)
{
    const uint64_t high = 0x8080808080808080ull, low = 0x0101010101010101ull;
    size_t i = 0;
    while (i < len) {
        /* ASCII fast path, 8 bytes at a time: no high bit set and no zero byte. */
        if (len - i >= 8) {
            uint64_t word;
            memcpy(&word, s + i, 8);
            if (((word | ((word - low) & ~word)) & high) == 0) {
                i += 8;
                continue;
            }
        }
        uint8_t c = s[i];
        if (c == 0)
            return i;
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t need;
        uint8_t lo = 0x80, hi = 0xbf;
        if (c >= 0xc2 && c <= 0xdf)
            need = 1;
        else if (c >= 0xe0 && c <= 0xef) {
            need = 2;
            if (c == 0xe0)
                lo = 0xa0;
            else if (c == 0xed)
                hi = 0x9f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            need = 3;
            if (c == 0xf0)
                lo = 0x90;
            else if (c == 0xf4)
                hi = 0x8f;
        } else
            return i;
        if (len - i <= need)
            return i;
        if (s[i + 1] < lo || s[i + 1] > hi)
            return i;
        for (size_t k = 2; k <= need; k++)
            if (s[i + k] < 0x80 || s[i + k] > 0xbf)
                return i;
        i += need + 1;
    }
    return len;
}

bool syn_utf8_valid(const char *text, size_t len, size_t *bad_offset)
{
    size_t valid = syn_utf8_valid_prefix((const uint8_t *)text, len);
    if (valid == len)
        return true;
    if (bad_offset)
        *bad_offset = valid;
    return false;
}

const char *syn_utf8_problem(const char *text, size_t bad, char buf[32])
{
    if (text[bad] == '\0')
        return "not text: a NUL byte";
    snprintf(buf, 32, "not valid UTF-8 (byte 0x%02X)", (unsigned char)text[bad]);
    return buf;
}

size_t syn_utf8_bom_length(const char *text, size_t len)
{
    return len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0 ? 3 : 0;
}

void syn_utf8_position(const char *text, size_t len, size_t offset, int *line, int *column)
{
    long l = 1, c = 1;
    if (offset > len)
        offset = len;
    for (size_t i = 0; i < offset; i++) {
        unsigned char ch = (unsigned char)text[i];
        if (ch == '\n') {
            l++;
            c = 1;
        } else if (!is_continuation(ch)) {
            c++;
        }
    }
    *line = l > INT_MAX ? INT_MAX : (int)l;
    *column = c > INT_MAX ? INT_MAX : (int)c;
}

size_t syn_utf8_byte_offset(const char *text, size_t len, size_t chars)
{
    size_t i = 0;
    while (i < len && chars > 0) {
        i++;
        while (i < len && is_continuation((unsigned char)text[i]))
            i++;
        chars--;
    }
    return i;
}

size_t syn_utf8_cut(const char *text, size_t len, size_t max)
{
    if (max >= len)
        return len;
    size_t n = max;
    while (n > 0 && is_continuation((unsigned char)text[n]))
        n--;
    return n;
}

size_t syn_utf8_boundary_after(const char *text, size_t len, size_t from)
{
    while (from < len && is_continuation((unsigned char)text[from]))
        from++;
    return from;
}

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

size_t syn_utf8_incomplete_tail(const char *data, size_t len)
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

size_t syn_utf8_sanitize(const char *data, size_t len, char *out)
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
            memcpy(out + written, SYN_UTF8_REPLACEMENT, 3);
            written += 3;
        }
        in += n;
    }
    return written;
}
