/* base64: RFC 4648 §4, strict (base64.h). */
#include "common/base64.h"

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t syn_base64_encoded_len(size_t len)
{
    return (len + 2) / 3 * 4;
}

void syn_base64_encode(const unsigned char *in, size_t len, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i += 3) {
        unsigned v = (unsigned)in[i] << 16;
        if (i + 1 < len)
            v |= (unsigned)in[i + 1] << 8;
        if (i + 2 < len)
            v |= in[i + 2];
        out[o++] = alphabet[(v >> 18) & 63];
        out[o++] = alphabet[(v >> 12) & 63];
        out[o++] = i + 1 < len ? alphabet[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < len ? alphabet[v & 63] : '=';
    }
    out[o] = '\0';
}

static int value_of(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

long syn_base64_decode(const char *text, size_t len, unsigned char *out)
{
    if (len % 4 != 0)
        return -1;
    long o = 0;
    for (size_t i = 0; i < len; i += 4) {
        int pads = 0;
        if (text[i + 3] == '=')
            pads = text[i + 2] == '=' ? 2 : 1;
        if (pads > 0 && i + 4 != len)
            return -1;
        int v[4];
        for (int k = 0; k < 4 - pads; k++)
            if ((v[k] = value_of(text[i + k])) < 0)
                return -1;
        for (int k = 4 - pads; k < 4; k++)
            v[k] = 0;
        unsigned n = (unsigned)v[0] << 18 | (unsigned)v[1] << 12 | (unsigned)v[2] << 6 |
                     (unsigned)v[3];
        /* The bits a padded quantum leaves unused must be zero (one encoding only). */
        if ((pads == 1 && (n & 0xff)) || (pads == 2 && (n & 0xffff)))
            return -1;
        out[o++] = (unsigned char)(n >> 16);
        if (pads < 2)
            out[o++] = (unsigned char)(n >> 8);
        if (pads < 1)
            out[o++] = (unsigned char)n;
    }
    return o;
}
