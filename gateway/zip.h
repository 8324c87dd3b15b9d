/* zip: the records of a ZIP archive written as a stream (APPNOTE 6.3.10), for
 * GET /executions/{id}/artifacts.zip (gateway/download.c).
 *
 * Written by hand: none of syn's libraries (libmicrohttpd, jansson, czmq, SQLite,
 * libcurl, GnuTLS) writes ZIP, and libzip or minizip would want the whole archive
 * or a seekable file, where the gateway must answer a range at a time while its
 * client reads. Entries are stored (no compression: artifacts are often already
 * compressed, and a stored entry's length is known before its first byte, so the
 * archive's Content-Length is too). The CRC-32 a ZIP needs is not stored by the
 * broker (it keeps the SHA-256): the gateway computes it (zlib's crc32) as the
 * bytes pass and writes it in a data descriptor after each entry's data (flag
 * bit 3) and in the central directory. Readers that work from the central
 * directory take that (unzip and Python's zipfile, which the tests use, as most
 * do); a reader that only streams local headers and refuses stored entries with
 * a descriptor (Java's ZipInputStream) does not. The alternative, a CRC-32 kept
 * with each artifact, would need a schema change and a backfill of stored sets
 * for no reader that matters more.
 *
 * ZIP64 where a value does not fit: an entry of `limit` bytes or more, a local
 * header at or past `limit`, `limit` or more entries (or 65535), a central
 * directory past or as long as `limit`. `limit` is GATEWAY_ZIP_LIMIT in the
 * gateway; a test lowers it to write ZIP64 records without 4 GiB of data. Each
 * record's length depends only on the name, size and offset, never on the CRC,
 * so the archive's length is known before its first byte. */
#ifndef SYN_GATEWAY_ZIP_H
#define SYN_GATEWAY_ZIP_H

#include <stddef.h>
#include <stdint.h>

#define GATEWAY_ZIP_LIMIT 0xFFFFFFFFu
/* The longest name an entry takes, and the longest record for it. */
#define GATEWAY_ZIP_NAME_MAX 1200
#define GATEWAY_ZIP_RECORD_MAX (46 + GATEWAY_ZIP_NAME_MAX + 32)

typedef struct {
    const char *name; /* "<phase_id>/<path>", UTF-8 */
    size_t name_len;
    uint64_t size;
    uint64_t offset; /* of its local header in the archive */
    uint32_t crc;
    uint16_t dos_time, dos_date;
} gateway_zip_entry_t;

/* Each writes one record into out (GATEWAY_ZIP_RECORD_MAX bytes) and returns its
 * length. The local header comes before the entry's data, the descriptor after;
 * the central directory is one central record per entry, then the end records. */
size_t gateway_zip_local(const gateway_zip_entry_t *e, uint64_t limit, unsigned char *out);
size_t gateway_zip_descriptor(const gateway_zip_entry_t *e, uint64_t limit, unsigned char *out);
size_t gateway_zip_central(const gateway_zip_entry_t *e, uint64_t limit, unsigned char *out);
size_t gateway_zip_end(uint64_t entries, uint64_t central_offset, uint64_t central_size,
                       uint64_t limit, unsigned char *out);
/* MS-DOS time and date of an ISO 8601 UTC time ("2026-12-07T15:48:31..."); 1980-01-01
 * for anything else or earlier. */
void gateway_zip_dos_time(const char *iso, uint16_t *dos_time, uint16_t *dos_date);

#endif
