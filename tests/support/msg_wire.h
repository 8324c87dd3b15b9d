/* msg_wire: helpers for the tests of proto/msg — messages from JSON, round trips,
 * an unchecked msgpack writer for malformed inputs, expectations on what the decoder
 * accepts or refuses, and one valid sample of every message type. Each fails the
 * running cmocka test on a mismatch. */
#ifndef SYN_TEST_MSG_WIRE_H
#define SYN_TEST_MSG_WIRE_H

#include "proto/msg.h"

#include <jansson.h>
#include <msgpack.h>
#include <stddef.h>

/* The JSON text as a value (any type); fails the test on bad JSON. */
json_t *parse(const char *text);
/* A message of this type with these fields (JSON text); never NULL. */
syn_msg_t *make(syn_msg_type_t type, const char *fields_json);
/* Encodes, decodes and checks the result equals the original; returns the size. */
size_t round_trip(const syn_msg_t *msg);

/* A small msgpack writer that does no checking, to build the malformed inputs
 * our encoder refuses to produce. */
typedef struct {
    msgpack_sbuffer buf;
    msgpack_packer pk;
} raw_t;

void raw_init(raw_t *raw);
void raw_str(raw_t *raw, const char *text);
void raw_strn(raw_t *raw, const char *text, size_t len);
/* Packs any jansson value as msgpack, in the object's insertion order. */
void raw_json(raw_t *raw, const json_t *value);

/* Bytes the decoder must refuse, and what its reason must say. */
typedef struct {
    const char *bytes;
    size_t size;
    const char *expect;
} rejected_bytes_t;

/* Decodes the bytes and checks they are rejected with a reason containing expect. */
void expect_reject_bytes(const void *data, size_t size, const char *expect);
/* As expect_reject_bytes on what raw holds; frees raw's buffer. */
void expect_reject_raw(raw_t *raw, const char *expect);
/* The whole wire map given as JSON (including "v" and "t") must be rejected. */
void expect_reject_json(const char *wire_json, const char *expect);
void expect_accept_bytes(const void *data, size_t size);
void expect_accept_json(const char *wire_json);
/* Both sides must refuse a schema violation: encode (sender) and decode (receiver). */
void expect_schema_error(syn_msg_type_t type, const char *fields_json, const char *expect);

/* A malloc'd string of at least min_bytes mixing ASCII and multi-byte UTF-8. */
char *big_unicode_string(size_t min_bytes);

/* One valid message of every type, realistic fields. */
typedef struct {
    syn_msg_type_t type;
    const char *fields;
} msg_sample_t;
extern const msg_sample_t samples[];
extern const size_t sample_count;
#define SAMPLE_COUNT sample_count

/* Encodes sample i (malloc'd bytes into *data); fails the test if it cannot. */
void encode_sample(size_t i, char **data, size_t *size);

#endif
