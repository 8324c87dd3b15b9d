#include "common/utf8.h"

#include <string.h>

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
