#include "common/ids.h"

#include <ctype.h>
#include <string.h>
#include <sys/random.h>

int syn_id_make(const char *prefix, size_t nhex, char *buf, size_t bufsize)
{
    size_t plen = strlen(prefix);
    if (plen + nhex + 1 > bufsize || nhex > 64)
        return -1;
    unsigned char raw[32];
    size_t nraw = (nhex + 1) / 2;
    if (getrandom(raw, nraw, 0) != (ssize_t)nraw)
        return -1;
    static const char hex[] = "0123456789abcdef";
    memcpy(buf, prefix, plen);
    for (size_t i = 0; i < nhex; i++)
        buf[plen + i] = hex[(raw[i / 2] >> ((i % 2) ? 0 : 4)) & 0xf];
    buf[plen + nhex] = '\0';
    return 0;
}

bool syn_id_is_valid(const char *text)
{
    size_t len = strlen(text);
    if (len < 1 || len > 100 || !isalnum((unsigned char)text[0]))
        return false;
    for (size_t i = 1; i < len; i++) {
        unsigned char c = (unsigned char)text[i];
        if (!isalnum(c) && c != '.' && c != '_' && c != '-')
            return false;
    }
    return true;
}
