/* zip: the records of a streamed ZIP archive (zip.h). */
#include "gateway/zip.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#define SIG_LOCAL 0x04034b50u
#define SIG_DESCRIPTOR 0x08074b50u
#define SIG_CENTRAL 0x02014b50u
#define SIG_END64 0x06064b50u
#define SIG_LOCATOR64 0x07064b50u
#define SIG_END 0x06054b50u
/* bit 3: CRC and sizes in a descriptor after the data; bit 11: UTF-8 names */
#define FLAGS 0x0808u
#define VERSION 20u
#define VERSION64 45u
/* made by: Unix (3), so the external attributes carry the mode */
#define MADE_BY (0x0300u | VERSION64)
#define MODE 0100644u
#define ZIP64_EXTRA 0x0001u

static unsigned char *put16(unsigned char *p, unsigned v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
    return p + 2;
}

static unsigned char *put32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
    return p + 4;
}

static unsigned char *put64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
    return p + 8;
}

/* A 32-bit field's value: itself, or 0xFFFFFFFF when it is in the ZIP64 extra. */
static uint32_t field32(uint64_t v, uint64_t limit)
{
    return v >= limit ? 0xFFFFFFFFu : (uint32_t)v;
}

static size_t name_len(const gateway_zip_entry_t *e)
{
    return e->name_len < GATEWAY_ZIP_NAME_MAX ? e->name_len : GATEWAY_ZIP_NAME_MAX;
}

/* The local header's sizes are zero (they follow in the descriptor); a large
 * entry says so with 0xFFFFFFFF and a ZIP64 extra of zeros, as APPNOTE 4.5.3
 * asks, so its descriptor carries 8-byte sizes. */
size_t gateway_zip_local(const gateway_zip_entry_t *e, uint64_t limit, unsigned char *out)
{
    bool big = e->size >= limit;
    size_t n = name_len(e);
    unsigned char *p = put32(out, SIG_LOCAL);
    p = put16(p, big ? VERSION64 : VERSION);
    p = put16(p, FLAGS);
    p = put16(p, 0); /* stored */
    p = put16(p, e->dos_time);
    p = put16(p, e->dos_date);
    p = put32(p, 0);
    p = put32(p, big ? 0xFFFFFFFFu : 0);
    p = put32(p, big ? 0xFFFFFFFFu : 0);
    p = put16(p, (unsigned)n);
    p = put16(p, big ? 20 : 0);
    memcpy(p, e->name, n);
    p += n;
    if (big) {
        p = put16(p, ZIP64_EXTRA);
        p = put16(p, 16);
        p = put64(p, 0);
        p = put64(p, 0);
    }
    return (size_t)(p - out);
}

size_t gateway_zip_descriptor(const gateway_zip_entry_t *e, uint64_t limit, unsigned char *out)
{
    unsigned char *p = put32(out, SIG_DESCRIPTOR);
    p = put32(p, e->crc);
    if (e->size >= limit) {
        p = put64(p, e->size);
        p = put64(p, e->size);
    } else {
        p = put32(p, (uint32_t)e->size);
        p = put32(p, (uint32_t)e->size);
    }
    return (size_t)(p - out);
}

size_t gateway_zip_central(const gateway_zip_entry_t *e, uint64_t limit, unsigned char *out)
{
    bool big = e->size >= limit, far = e->offset >= limit;
    size_t n = name_len(e);
    unsigned extra = (big ? 16u : 0u) + (far ? 8u : 0u);
    unsigned char *p = put32(out, SIG_CENTRAL);
    p = put16(p, MADE_BY);
    p = put16(p, extra ? VERSION64 : VERSION);
    p = put16(p, FLAGS);
    p = put16(p, 0);
    p = put16(p, e->dos_time);
    p = put16(p, e->dos_date);
    p = put32(p, e->crc);
    p = put32(p, field32(e->size, limit));
    p = put32(p, field32(e->size, limit));
    p = put16(p, (unsigned)n);
    p = put16(p, extra ? extra + 4 : 0);
    p = put16(p, 0); /* comment */
    p = put16(p, 0); /* disk */
    p = put16(p, 0); /* internal attributes */
    p = put32(p, (uint32_t)MODE << 16);
    p = put32(p, field32(e->offset, limit));
    memcpy(p, e->name, n);
    p += n;
    if (extra) {
        /* in APPNOTE 4.5.3's order, only the fields that overflowed */
        p = put16(p, ZIP64_EXTRA);
        p = put16(p, extra);
        if (big) {
            p = put64(p, e->size);
            p = put64(p, e->size);
        }
        if (far)
            p = put64(p, e->offset);
    }
    return (size_t)(p - out);
}

size_t gateway_zip_end(uint64_t entries, uint64_t central_offset, uint64_t central_size,
                       uint64_t limit, unsigned char *out)
{
    uint64_t most = limit < 0xFFFFu ? limit : 0xFFFFu;
    bool zip64 = entries >= most || central_offset >= limit || central_size >= limit;
    unsigned char *p = out;
    if (zip64) {
        uint64_t end64_offset = central_offset + central_size;
        p = put32(p, SIG_END64);
        p = put64(p, 44); /* the record's size after this field */
        p = put16(p, MADE_BY);
        p = put16(p, VERSION64);
        p = put32(p, 0); /* this disk */
        p = put32(p, 0); /* the central directory's disk */
        p = put64(p, entries);
        p = put64(p, entries);
        p = put64(p, central_size);
        p = put64(p, central_offset);
        p = put32(p, SIG_LOCATOR64);
        p = put32(p, 0);
        p = put64(p, end64_offset);
        p = put32(p, 1); /* disks */
    }
    p = put32(p, SIG_END);
    p = put16(p, 0);
    p = put16(p, 0);
    p = put16(p, entries >= most ? 0xFFFFu : (unsigned)entries);
    p = put16(p, entries >= most ? 0xFFFFu : (unsigned)entries);
    p = put32(p, field32(central_size, limit));
    p = put32(p, field32(central_offset, limit));
    p = put16(p, 0); /* comment */
    return (size_t)(p - out);
}

void gateway_zip_dos_time(const char *iso, uint16_t *dos_time, uint16_t *dos_date)
{
    int y, mo, d, h, mi, s;
    char t;
    *dos_time = 0;
    *dos_date = (0 << 9) | (1 << 5) | 1; /* 1980-01-01 */
    if (!iso || sscanf(iso, "%4d-%2d-%2d%c%2d:%2d:%2d", &y, &mo, &d, &t, &h, &mi, &s) != 7 ||
        (t != 'T' && t != ' ') || y < 1980 || y > 2107 || mo < 1 || mo > 12 || d < 1 ||
        d > 31 || h < 0 || h > 23 || mi < 0 || mi > 59 || s < 0 || s > 60)
        return;
    *dos_time = (uint16_t)((h << 11) | (mi << 5) | (s > 59 ? 59 : s) / 2);
    *dos_date = (uint16_t)(((y - 1980) << 9) | (mo << 5) | d);
}
