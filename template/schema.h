/* schema: the typed fields of a template (a table per object: workflow, input,
 * phase, front matter) and the conversion of one YAML node to the JSON value the
 * HTTP API takes, with an error naming file, line and field when it does not fit. */
#ifndef SYN_TEMPLATE_SCHEMA_H
#define SYN_TEMPLATE_SCHEMA_H

#include "template/errors.h"
#include "template/yamltree.h"

#include <jansson.h>
#include <stdbool.h>

/* Bounds of phase settings, the same as POST /workflows (gateway/validate.c,
 * broker/api.c). */
#define TEMPLATE_TIMEOUT_MIN 1
#define TEMPLATE_TIMEOUT_MAX 86400
#define TEMPLATE_MAX_ATTEMPTS_MAX 10
#define TEMPLATE_RETRIES_MAX 10
#define TEMPLATE_MAX_TOKENS_MAX 10000000
#define TEMPLATE_BACKOFF_MAX 86400 /* as the broker (broker/api.c) */

typedef enum {
    TEMPLATE_VALUE_STRING,  /* text; a plain number is taken as written ("5") */
    TEMPLATE_VALUE_TEXT,    /* non-empty text */
    TEMPLATE_VALUE_ID,      /* text matching SYN_ID_PATTERN (common/ids.h) */
    TEMPLATE_VALUE_INT,     /* integer within [min, max] */
    TEMPLATE_VALUE_NUMBER,  /* integer or finite float within [min, max] */
    TEMPLATE_VALUE_BOOL,    /* true / false */
    TEMPLATE_VALUE_CHOICE,  /* one of choices */
    TEMPLATE_VALUE_TOOLS,   /* list of non-empty text ("A, B" too when comma_list) */
    TEMPLATE_VALUE_HINT,    /* text; a flow list is kept as written ("[message]") */
    TEMPLATE_VALUE_SPECIAL, /* handled by the caller (inputs, phases, prompt_file) */
} template_value_kind_t;

typedef struct {
    const char *key;  /* as written in YAML */
    const char *json; /* the HTTP API's name */
    template_value_kind_t kind;
    long long min, max;
    const char *const *choices; /* NULL-terminated, for TEMPLATE_VALUE_CHOICE */
    bool comma_list;            /* TEMPLATE_VALUE_TOOLS: also accept "A, B" */
} template_field_t;

/* Where conversions report errors and which source text nodes come from. */
typedef struct {
    const char *file;
    const char *text; /* the source, for values kept as written */
    size_t len;
    template_errors_t *errors;
} template_origin_t;

/* The field named key in a table that ends with a NULL key, or NULL. */
const template_field_t *template_schema_find(const template_field_t *fields, const char *key);

/* Converts node to the field's value. 1: *out set (new reference); 0: the value is
 * null, which counts as absent; -1: an error naming path was added. */
int template_schema_value(const template_field_t *field, const template_node_t *node,
                          const char *path, const template_origin_t *origin, json_t **out);

/* Adds "unknown key 'k' in <where> (known: a, b, …)", with "; did you mean 'x'?"
 * when a known key (or the HTTP API's name of one) is close; returns that field (so
 * the caller need not also report it missing), or NULL. where NULL = top level. */
const template_field_t *template_schema_unknown_key(const template_field_t *fields,
                                                    const template_node_t *key, const char *where,
                                                    const char *path,
                                                    const template_origin_t *origin);

/* "a, b, c" of the table's keys into buf. */
void template_schema_key_list(const template_field_t *fields, char *buf, size_t size);

#endif
