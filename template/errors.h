/* errors: what is wrong with a workflow template, as a list of {file, line, field,
 * message}, so an editor (or POST /workflows/validate) can show every problem at
 * once, and as a one-line summary for logs and HTTP details.
 *
 * The list keeps at most TEMPLATE_MAX_ERRORS entries (garbage input can produce
 * thousands); the rest are only counted, and the summary says how many. */
#ifndef SYN_TEMPLATE_ERRORS_H
#define SYN_TEMPLATE_ERRORS_H

#include <jansson.h>
#include <stddef.h>

#define TEMPLATE_MAX_ERRORS 100

/* Why the template was refused; the gateway maps it to an HTTP status. */
typedef enum {
    TEMPLATE_ERROR_INVALID = 0, /* well-formed YAML, wrong content (422) */
    TEMPLATE_ERROR_IO,          /* a file cannot be read (CLI / broker preload only) */
    TEMPLATE_ERROR_UNSUPPORTED, /* prompt_file in a document without a directory (400) */
    TEMPLATE_ERROR_SYNTAX,      /* not UTF-8, not YAML (400) */
    TEMPLATE_ERROR_TOO_LARGE,   /* over a size limit (413) */
} template_error_kind_t;

typedef struct {
    template_error_kind_t kind;
    char *file;    /* where it is; NULL when not known */
    int line;      /* 1-based; 0 when the error is not tied to a line */
    int column;    /* 1-based; 0 when not known */
    char *field;   /* "phases[1].model"; NULL for the document as a whole */
    char *message; /* readable on its own */
} template_error_t;

typedef struct template_errors_t template_errors_t;

template_errors_t *template_errors_new(void);
void template_errors_destroy(template_errors_t **self_p);

/* Appends one error (file and field may be NULL). Never fails: out of memory, the
 * error is counted as omitted. */
void template_errors_add(template_errors_t *self, template_error_kind_t kind, const char *file,
                         int line, int column, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 7, 8)));

/* Errors kept, and all errors (kept + omitted). */
size_t template_errors_count(const template_errors_t *self);
size_t template_errors_total(const template_errors_t *self);
const template_error_t *template_errors_get(const template_errors_t *self, size_t index);

/* The most serious kind present (TOO_LARGE > SYNTAX > UNSUPPORTED > IO > INVALID);
 * TEMPLATE_ERROR_INVALID when the list is empty. */
template_error_kind_t template_errors_worst(const template_errors_t *self);

/* [{line, column, field, message}] (what POST /workflows/validate answers; column
 * is an addition to the issue's {line, field, message}), null for an unknown line
 * or column and for a document-level field, plus a last item {"line":null,
 * "column":null,"field":null,"message":"N more errors not shown"} when some were
 * omitted. Files are left out: an upload has none. A new reference. */
json_t *template_errors_json(const template_errors_t *self);

/* "file:line:column: field: message (and N more errors)" for the first error,
 * leaving out the parts that are unknown; "" when empty. Caller frees. */
char *template_errors_summary(const template_errors_t *self);

/* Moves every error of other to the end of self (other is left empty). */
void template_errors_take(template_errors_t *self, template_errors_t *other);

void template_errors_clear(template_errors_t *self);

#endif
