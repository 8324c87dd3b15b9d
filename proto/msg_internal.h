/* msg_internal: what proto/msg.c, msg_encode.c and msg_decode.c share; nobody
 * outside proto/msg*.c includes it. */
#ifndef SYN_MSG_INTERNAL_H
#define SYN_MSG_INTERNAL_H

#include "proto/msg.h"

#include <jansson.h>
#include <stddef.h>

/* Bounds the memory one message can make us allocate: a jansson value costs
 * tens to hundreds of bytes however few bytes it took on the wire. Real
 * messages hold a few thousand elements at most. */
#define MSG_MAX_ELEMENTS (1u << 18)

/* A message is its field object, or (made by syn_pack) its encoding until
 * someone asks for the fields: then they are decoded once and the encoding is
 * dropped, since the caller may change them. */
struct syn_msg_t {
    syn_msg_type_t type;
    json_t *fields;
    char *raw;
    size_t raw_size;
};

/* Writes the reason into err (may be NULL). */
void msg_set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* 0 when fields satisfy the schema of type, or -1 with the reason. */
int msg_check_schema(syn_msg_type_t type, const json_t *fields, char *err, size_t errlen);

/* Checks "v" and "t" (either may be NULL when absent) and the fields against the
 * type's schema; 0 with *type set, or -1 with the reason. */
int msg_check_envelope(const json_t *version, const json_t *type_name, const json_t *fields,
                       syn_msg_type_t *type, char *err, size_t errlen);

#endif
