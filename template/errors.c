/* errors: a bounded list of template problems. */
#include "template/errors.h"

#include "common/utf8.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct template_errors_t {
    template_error_t items[TEMPLATE_MAX_ERRORS];
    size_t count;
    size_t omitted;
};

template_errors_t *template_errors_new(void)
{
    return calloc(1, sizeof(template_errors_t));
}

static void error_free(template_error_t *error)
{
    free(error->file);
    free(error->field);
    free(error->message);
    memset(error, 0, sizeof *error);
}

void template_errors_clear(template_errors_t *self)
{
    for (size_t i = 0; i < self->count; i++)
        error_free(&self->items[i]);
    self->count = 0;
    self->omitted = 0;
}

void template_errors_destroy(template_errors_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    template_errors_clear(*self_p);
    free(*self_p);
    *self_p = NULL;
}

/* Texts quote user input (keys, file names) and may cut it short: bytes that are
 * not UTF-8 become '?', so every error stays valid JSON text. */
static void make_utf8(char *text)
{
    size_t len = strlen(text), at = 0, bad;
    while (!syn_utf8_valid(text + at, len - at, &bad)) {
        text[at + bad] = '?';
        at += bad + 1;
    }
}

static char *copy_or_null(const char *text)
{
    char *copy = text ? strdup(text) : NULL;
    if (copy)
        make_utf8(copy);
    return copy;
}

void template_errors_add(template_errors_t *self, template_error_kind_t kind, const char *file,
                         int line, int column, const char *field, const char *fmt, ...)
{
    if (self->count == TEMPLATE_MAX_ERRORS) {
        self->omitted++;
        return;
    }
    template_error_t *error = &self->items[self->count];
    va_list ap;
    va_start(ap, fmt);
    if (vasprintf(&error->message, fmt, ap) < 0)
        error->message = NULL;
    va_end(ap);
    error->file = copy_or_null(file);
    error->field = copy_or_null(field);
    if (!error->message || (file && !error->file) || (field && !error->field)) {
        error_free(error);
        self->omitted++;
        return;
    }
    make_utf8(error->message);
    error->kind = kind;
    error->line = line > 0 ? line : 0;
    error->column = column > 0 ? column : 0;
    self->count++;
}

size_t template_errors_count(const template_errors_t *self)
{
    return self->count;
}

size_t template_errors_total(const template_errors_t *self)
{
    return self->count + self->omitted;
}

const template_error_t *template_errors_get(const template_errors_t *self, size_t index)
{
    return index < self->count ? &self->items[index] : NULL;
}

template_error_kind_t template_errors_worst(const template_errors_t *self)
{
    template_error_kind_t worst = TEMPLATE_ERROR_INVALID;
    for (size_t i = 0; i < self->count; i++)
        if (self->items[i].kind > worst)
            worst = self->items[i].kind;
    return worst;
}

json_t *template_errors_json(const template_errors_t *self)
{
    json_t *list = json_array();
    for (size_t i = 0; list && i < self->count; i++) {
        const template_error_t *e = &self->items[i];
        json_t *item = json_pack("{s:o, s:o, s:o, s:s}", "line",
                                 e->line ? json_integer(e->line) : json_null(), "column",
                                 e->column ? json_integer(e->column) : json_null(), "field",
                                 e->field ? json_string(e->field) : json_null(), "message",
                                 e->message);
        if (item)
            json_array_append_new(list, item);
    }
    if (list && self->omitted) {
        char text[64];
        snprintf(text, sizeof text, "%zu more error%s not shown", self->omitted,
                 self->omitted == 1 ? "" : "s");
        json_array_append_new(list, json_pack("{s:n, s:n, s:n, s:s}", "line", "column", "field",
                                              "message", text));
    }
    return list;
}

/* "file:3:5: " with a file, "line 3, column 5: " without one. */
static void format_where(const template_error_t *e, char *buf, size_t size)
{
    if (e->file && e->line && e->column)
        snprintf(buf, size, "%s:%d:%d: ", e->file, e->line, e->column);
    else if (e->file && e->line)
        snprintf(buf, size, "%s:%d: ", e->file, e->line);
    else if (e->file)
        snprintf(buf, size, "%s: ", e->file);
    else if (e->line && e->column)
        snprintf(buf, size, "line %d, column %d: ", e->line, e->column);
    else if (e->line)
        snprintf(buf, size, "line %d: ", e->line);
    else
        buf[0] = '\0';
}

char *template_errors_summary(const template_errors_t *self)
{
    if (self->count == 0)
        return strdup("");
    const template_error_t *e = &self->items[0];
    char where[4200]; /* a path (PATH_MAX) and two numbers */
    format_where(e, where, sizeof where);
    char more[64] = "";
    size_t rest = template_errors_total(self) - 1;
    if (rest)
        snprintf(more, sizeof more, " (and %zu more error%s)", rest, rest == 1 ? "" : "s");
    char *text = NULL;
    if (asprintf(&text, "%s%s%s%s%s", where, e->field ? e->field : "", e->field ? ": " : "",
                 e->message, more) < 0)
        return NULL;
    return text;
}

void template_errors_take(template_errors_t *self, template_errors_t *other)
{
    for (size_t i = 0; i < other->count; i++) {
        if (self->count == TEMPLATE_MAX_ERRORS) {
            self->omitted++;
            error_free(&other->items[i]);
            continue;
        }
        self->items[self->count++] = other->items[i];
        memset(&other->items[i], 0, sizeof other->items[i]);
    }
    self->omitted += other->omitted;
    other->count = 0;
    other->omitted = 0;
}
