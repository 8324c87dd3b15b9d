/* schema: the YAML wording of the workflow specification (template/spec.h): the
 * conversion of one YAML node to the JSON value a field of the specification takes,
 * with an error naming file, line and field when it does not fit, and the unknown
 * key errors with their suggestions. */
#ifndef SYN_TEMPLATE_SCHEMA_H
#define SYN_TEMPLATE_SCHEMA_H

#include "template/errors.h"
#include "template/spec.h"
#include "template/yamltree.h"

#include <jansson.h>
#include <stdbool.h>

/* How a YAML node may spell a field's value beyond the specification's own types
 * (front matter habits of Claude Code's prompt files). */
typedef enum {
    TEMPLATE_FORM_PLAIN,
    TEMPLATE_FORM_COMMA_LIST, /* a list of strings may also be "A, B" */
    TEMPLATE_FORM_HINT,       /* text; a flow list is kept as written ("[message]") */
} template_form_t;

/* Where conversions report errors and which source text nodes come from. */
typedef struct {
    const char *file;
    const char *text; /* the source, for values kept as written */
    size_t len;
    template_errors_t *errors;
} template_origin_t;

/* Converts node to the value of field (template/spec.h), spelt as form allows. 1:
 * *out set (new reference); 0: the value is null, which counts as absent; -1: an
 * error naming path was added. Where text is expected a plain number is taken as
 * written ("5"); object lists and prompt files are the caller's. */
int template_schema_value(const spec_field_t *field, template_form_t form,
                          const template_node_t *node, const char *path,
                          const template_origin_t *origin, json_t **out);

/* Adds "unknown key 'k' in <where> (known: a, b, …)" for a mapping whose known keys
 * are keys[0..count) (api_names[i] the HTTP API's name of keys[i]), with "; did you
 * mean 'x'?" when a known key (or the HTTP API's name of one) is close; returns the
 * index of that key (so the caller need not also report it missing), or -1. where
 * NULL = top level. */
int template_schema_unknown_key(const char *const *keys, const char *const *api_names,
                                size_t count, const template_node_t *key, const char *where,
                                const char *path, const template_origin_t *origin);

/* The closest of candidates[0..count) to word within a third of its length (at least
 * 1, at most 3 edits), or NULL: the "did you mean" of unknown keys and choices. */
const char *template_schema_closest(const char *word, const char *const *candidates,
                                    size_t count);

#endif
