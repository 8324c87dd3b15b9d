/* yamltree: one YAML document (libyaml's event API) as a small tree whose every node
 * keeps its line and column, so later checks can say where a problem is.
 *
 * Strict and total: any byte string gives a tree or errors, never a crash. Refused:
 * text that is not UTF-8 or holds NUL characters, aliases (no billion laughs: a
 * document is at most as big as its text), more than one document, tags other than
 * the YAML core ones, non-scalar or repeated mapping keys, nesting deeper than
 * TEMPLATE_YAML_MAX_DEPTH, more than TEMPLATE_YAML_MAX_NODES nodes or
 * TEMPLATE_YAML_MAX_KEYS keys in one mapping. Callers bound the text's size.
 *
 * Plain scalars are typed by the YAML 1.2 core schema (null, true/false, integers,
 * floats; everything else is a string); quoted and block scalars are strings. */
#ifndef SYN_TEMPLATE_YAMLTREE_H
#define SYN_TEMPLATE_YAMLTREE_H

#include "template/errors.h"

#include <stdbool.h>
#include <stddef.h>

#define TEMPLATE_YAML_MAX_DEPTH 32
#define TEMPLATE_YAML_MAX_NODES 100000
#define TEMPLATE_YAML_MAX_KEYS 256

typedef enum {
    TEMPLATE_NODE_SCALAR,
    TEMPLATE_NODE_SEQUENCE,
    TEMPLATE_NODE_MAPPING,
} template_node_kind_t;

typedef enum {
    TEMPLATE_SCALAR_STRING,
    TEMPLATE_SCALAR_NULL,
    TEMPLATE_SCALAR_BOOL,
    TEMPLATE_SCALAR_INT,
    TEMPLATE_SCALAR_FLOAT,
} template_scalar_type_t;

typedef struct template_node_t template_node_t;
struct template_node_t {
    template_node_kind_t kind;
    int line, column;    /* 1-based, of the node's first character */
    size_t start, end;   /* character (not byte) offsets of the node's text in the source */
    bool flow;           /* a [..] or {..} collection */
    char *text;          /* scalar value, NUL-terminated */
    size_t len;
    template_scalar_type_t type;
    template_node_t **children; /* sequence items; mappings: key, value, key, value… */
    size_t count, cap;
};

/* Parses text[0..len) (one document). file names the source in errors; line_offset
 * is added to every line (a front matter block that starts on line 2 passes 1).
 * Returns the root (NULL for an empty document, with no error added) or NULL with
 * errors added; *failed tells the two apart. */
template_node_t *template_yaml_parse(const char *text, size_t len, const char *file,
                                     int line_offset, template_errors_t *errors, bool *failed);

void template_node_destroy(template_node_t **node_p);

/* The value of key in a mapping, or NULL. */
const template_node_t *template_node_get(const template_node_t *mapping, const char *key);

/* "a string", "an integer", "a list", "a mapping", … for messages. */
const char *template_node_describe(const template_node_t *node);

/* The core-schema type of a plain scalar. */
template_scalar_type_t template_yaml_resolve(const char *text, size_t len);

#endif
