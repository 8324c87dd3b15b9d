/* fuzz_check: what every fuzz target shares: a check that, failing, aborts with
 * its text (libFuzzer then saves the input as a crash), and the input as a
 * NUL-terminated copy for the decoders that take C strings. Header only, so
 * each target stays one program of one file. */
#ifndef SYN_TESTS_FUZZ_CHECK_H
#define SYN_TESTS_FUZZ_CHECK_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ_CHECK(cond)                                                                     \
    do {                                                                                     \
        if (!(cond)) {                                                                       \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);         \
            abort();                                                                         \
        }                                                                                    \
    } while (0)

/* data[0..size) and a NUL (the text stops at an embedded NUL, as a C string
 * handed on by libmicrohttpd would). Caller frees. */
static inline char *fuzz_text(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    FUZZ_CHECK(text != NULL);
    memcpy(text, data, size);
    text[size] = '\0';
    return text;
}

#endif
