/* utf8: what templates need of text: validity (common/utf8.c) and positions. */
#include "template/utf8.h"

#include "common/utf8.h"

#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

bool template_utf8_valid(const char *text, size_t len, size_t *bad_offset)
{
    size_t valid = syn_utf8_valid_prefix((const uint8_t *)text, len);
    if (valid == len)
        return true;
    if (bad_offset)
        *bad_offset = valid;
    return false;
}

const char *template_utf8_problem(const char *text, size_t bad, char buf[32])
{
    if (text[bad] == '\0')
        return "not text: a NUL byte";
    snprintf(buf, 32, "not valid UTF-8 (byte 0x%02X)", (unsigned char)text[bad]);
    return buf;
}

size_t template_utf8_bom_length(const char *text, size_t len)
{
    return len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0 ? 3 : 0;
}

void template_utf8_position(const char *text, size_t len, size_t offset, int *line, int *column)
{
    long l = 1, c = 1;
    if (offset > len)
        offset = len;
    for (size_t i = 0; i < offset; i++) {
        unsigned char ch = (unsigned char)text[i];
        if (ch == '\n') {
            l++;
            c = 1;
        } else if ((ch & 0xC0) != 0x80) {
            c++;
        }
    }
    *line = l > INT_MAX ? INT_MAX : (int)l;
    *column = c > INT_MAX ? INT_MAX : (int)c;
}

size_t template_utf8_byte_offset(const char *text, size_t len, size_t chars)
{
    size_t i = 0;
    while (i < len && chars > 0) {
        i++;
        while (i < len && ((unsigned char)text[i] & 0xC0) == 0x80)
            i++;
        chars--;
    }
    return i;
}
