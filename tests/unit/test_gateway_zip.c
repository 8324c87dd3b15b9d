/* The ZIP records of gateway/zip.c, put together the way gateway/download.c
 * streams them, read back by real readers (python3's zipfile and unzip -t):
 * names with sub-folders, binary and empty entries, an empty archive, ZIP64
 * records for large entries, far offsets and a long central directory (the limit
 * lowered so that no 4 GiB are written), and 65536 entries (ZIP64 by count; read
 * by unzip alone, Python's zipfile takes seconds over so many). */
#include "gateway/zip.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include <cmocka.h>

typedef struct {
    char name[64];
    size_t size;
} file_t;

/* The bytes of file i: binary, NULs and 0xFF included. */
static unsigned char byte_of(size_t i, size_t at)
{
    return (unsigned char)((at * 131 + i * 7) ^ (at >> 8));
}

/* Writes files as one archive to path, as the gateway streams it. */
static void write_zip(const char *path, const file_t *files, size_t count, uint64_t limit)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    gateway_zip_entry_t *e = calloc(count ? count : 1, sizeof *e);
    assert_non_null(e);
    unsigned char record[GATEWAY_ZIP_RECORD_MAX];
    unsigned char *data = malloc(65536);
    assert_non_null(data);
    uint64_t at = 0;
    for (size_t i = 0; i < count; i++) {
        e[i] = (gateway_zip_entry_t){.name = files[i].name,
                                     .name_len = strlen(files[i].name),
                                     .size = files[i].size,
                                     .offset = at};
        gateway_zip_dos_time("2026-12-07T15:48:31.250Z", &e[i].dos_time, &e[i].dos_date);
        size_t n = gateway_zip_local(&e[i], limit, record);
        assert_int_equal(fwrite(record, 1, n, f), n);
        at += n;
        uLong crc = crc32(0, Z_NULL, 0);
        for (size_t done = 0; done < files[i].size;) {
            size_t take = files[i].size - done < 65536 ? files[i].size - done : 65536;
            for (size_t k = 0; k < take; k++)
                data[k] = byte_of(i, done + k);
            crc = crc32(crc, data, (uInt)take);
            assert_int_equal(fwrite(data, 1, take, f), take);
            done += take;
        }
        at += files[i].size;
        e[i].crc = (uint32_t)crc;
        n = gateway_zip_descriptor(&e[i], limit, record);
        assert_int_equal(fwrite(record, 1, n, f), n);
        at += n;
    }
    uint64_t central = at;
    for (size_t i = 0; i < count; i++) {
        size_t n = gateway_zip_central(&e[i], limit, record);
        assert_int_equal(fwrite(record, 1, n, f), n);
        at += n;
    }
    size_t n = gateway_zip_end(count, central, at - central, limit, record);
    assert_int_equal(fwrite(record, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
    free(data);
    free(e);
}

/* Python's zipfile checks every CRC and prints each entry "name size sum"; the
 * listing must be the one expected from files. */
static void assert_python_reads(const char *path, const file_t *files, size_t count)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd,
             "python3 -c 'import sys, zipfile\n"
             "z = zipfile.ZipFile(sys.argv[1])\n"
             "assert z.testzip() is None\n"
             "for i in z.infolist():\n"
             "    d = z.read(i)\n"
             "    print(i.filename, len(d), sum(d) %% 65521, i.date_time[:3])\n' %s",
             path);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    char line[256];
    size_t i = 0;
    while (fgets(line, sizeof line, p)) {
        assert_true(i < count);
        unsigned long sum = 0;
        for (size_t at = 0; at < files[i].size; at++)
            sum += byte_of(i, at);
        char want[256];
        snprintf(want, sizeof want, "%s %zu %lu (2026, 12, 7)\n", files[i].name, files[i].size,
                 sum % 65521);
        assert_string_equal(line, want);
        i++;
    }
    assert_int_equal(pclose(p), 0);
    assert_int_equal(i, count);
}

static void assert_unzip_tests(const char *path)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "unzip -tqq %s", path);
    assert_int_equal(system(cmd), 0);
}

static char *temp_path(void)
{
    static char path[64];
    snprintf(path, sizeof path, "/tmp/syn-zip-%ld.zip", (long)getpid());
    return path;
}

static const file_t some[] = {
    {"make/report.md", 24},
    {"make/sub/dir/data.bin", 300000},
    {"make/empty.txt", 0},
    {"use/notes/\xc3\xa9t\xc3\xa9.txt", 1000}, /* UTF-8 */
};

static void test_entries_read_back(void **state)
{
    (void)state;
    write_zip(temp_path(), some, 4, GATEWAY_ZIP_LIMIT);
    assert_python_reads(temp_path(), some, 4);
    assert_unzip_tests(temp_path());
    unlink(temp_path());
}

static void test_an_empty_archive_is_one(void **state)
{
    (void)state;
    write_zip(temp_path(), NULL, 0, GATEWAY_ZIP_LIMIT);
    assert_python_reads(temp_path(), NULL, 0);
    FILE *f = fopen(temp_path(), "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    assert_int_equal(ftell(f), 22); /* the end record alone */
    fclose(f);
    unlink(temp_path());
}

/* With the limit at 1000 bytes, the 300000-byte entry is a ZIP64 entry, the
 * later ones lie past the limit and the central directory does too: every
 * ZIP64 record is written, and read. */
static void test_zip64_records_read_back(void **state)
{
    (void)state;
    write_zip(temp_path(), some, 4, 1000);
    assert_python_reads(temp_path(), some, 4);
    assert_unzip_tests(temp_path());
    unlink(temp_path());
}

static void test_more_than_65535_entries(void **state)
{
    (void)state;
    size_t count = 65536 + 3;
    file_t *many = calloc(count, sizeof *many);
    assert_non_null(many);
    for (size_t i = 0; i < count; i++) {
        snprintf(many[i].name, sizeof many[i].name, "p%zu/f%zu", i / 256, i);
        many[i].size = i % 3;
    }
    write_zip(temp_path(), many, count, GATEWAY_ZIP_LIMIT);
    assert_unzip_tests(temp_path());
    char cmd[256];
    snprintf(cmd, sizeof cmd, "unzip -Z1 %s | sed -n '1p;$p;$='", temp_path());
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    char listed[256] = "";
    size_t n = fread(listed, 1, sizeof listed - 1, p);
    listed[n] = '\0';
    assert_int_equal(pclose(p), 0);
    assert_string_equal(listed, "p0/f0\np256/f65538\n65539\n");
    unlink(temp_path());
    free(many);
}

static void test_dos_time(void **state)
{
    (void)state;
    uint16_t t, d;
    gateway_zip_dos_time("2026-12-07T15:48:31Z", &t, &d);
    assert_int_equal(d, ((2026 - 1980) << 9) | (12 << 5) | 7);
    assert_int_equal(t, (15 << 11) | (48 << 5) | 15);
    gateway_zip_dos_time("1970-01-01T00:00:00Z", &t, &d);
    assert_int_equal(d, (1 << 5) | 1);
    assert_int_equal(t, 0);
    gateway_zip_dos_time("not a time", &t, &d);
    assert_int_equal(d, (1 << 5) | 1);
    gateway_zip_dos_time(NULL, &t, &d);
    assert_int_equal(d, (1 << 5) | 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_entries_read_back),
        cmocka_unit_test(test_an_empty_archive_is_one),
        cmocka_unit_test(test_zip64_records_read_back),
        cmocka_unit_test(test_more_than_65535_entries),
        cmocka_unit_test(test_dos_time),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
