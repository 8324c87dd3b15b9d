/* endpoint_list: parsing a list of broker endpoints and following it round robin
 * (common/endpoint_list.h says why it stands alone). */
#include "common/endpoint_list.h"
#include "common/endpoint.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct syn_endpoint_list_t {
    char *items[SYN_ENDPOINT_LIST_MAX];
    size_t count;
    size_t current;
};

static bool is_space(char c)
{
    return c == ' ' || c == '\t';
}

/* Adds text[0..len) with the spaces around it taken off; -1 with err set. */
static int add_item(syn_endpoint_list_t *self, const char *flag, const char *all,
                    const char *text, size_t len, char *err, size_t errlen)
{
    while (len > 0 && is_space(*text)) {
        text++;
        len--;
    }
    while (len > 0 && is_space(text[len - 1]))
        len--;
    if (len == 0) {
        snprintf(err, errlen, "%s '%s': an empty endpoint (want EP or EP,EP,... separated by "
                 "commas)", flag, all);
        return -1;
    }
    if (self->count == SYN_ENDPOINT_LIST_MAX) {
        snprintf(err, errlen, "%s '%s': more than %d endpoints", flag, all,
                 SYN_ENDPOINT_LIST_MAX);
        return -1;
    }
    char *item = strndup(text, len);
    if (!item) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (syn_endpoint_list_find(self, item) >= 0) {
        snprintf(err, errlen, "%s '%s': %s is listed twice", flag, all, item);
        free(item);
        return -1;
    }
    self->items[self->count++] = item;
    return 0;
}

syn_endpoint_list_t *syn_endpoint_list_new(const char *flag, const char *text, char *err,
                                           size_t errlen)
{
    syn_endpoint_list_t *self = calloc(1, sizeof *self);
    if (!self) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    const char *all = text ? text : "";
    for (const char *start = all;;) {
        const char *comma = strchr(start, ',');
        size_t len = comma ? (size_t)(comma - start) : strlen(start);
        if (add_item(self, flag, all, start, len, err, errlen) != 0) {
            syn_endpoint_list_destroy(&self);
            return NULL;
        }
        if (!comma)
            break;
        start = comma + 1;
    }
    return self;
}

void syn_endpoint_list_destroy(syn_endpoint_list_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    syn_endpoint_list_t *self = *self_p;
    for (size_t i = 0; i < self->count; i++)
        free(self->items[i]);
    free(self);
    *self_p = NULL;
}

size_t syn_endpoint_list_size(const syn_endpoint_list_t *self)
{
    return self->count;
}

const char *syn_endpoint_list_at(const syn_endpoint_list_t *self, size_t index)
{
    return index < self->count ? self->items[index] : NULL;
}

const char *syn_endpoint_list_current(const syn_endpoint_list_t *self)
{
    return self->items[self->current];
}

size_t syn_endpoint_list_index(const syn_endpoint_list_t *self)
{
    return self->current;
}

const char *syn_endpoint_list_next(syn_endpoint_list_t *self)
{
    self->current = (self->current + 1) % self->count;
    return self->items[self->current];
}

int syn_endpoint_list_find(const syn_endpoint_list_t *self, const char *endpoint)
{
    for (size_t i = 0; endpoint && i < self->count; i++)
        if (strcmp(self->items[i], endpoint) == 0)
            return (int)i;
    return -1;
}

int syn_endpoint_list_check(const char *what, const char *text, bool allowed, const char *why,
                            const char *remedy, char *err, size_t errlen)
{
    syn_endpoint_list_t *list = syn_endpoint_list_new(what, text, err, errlen);
    if (!list)
        return -1;
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < list->count; i++)
        rc = syn_endpoint_check(what, list->items[i], false, allowed, why, remedy, err, errlen);
    syn_endpoint_list_destroy(&list);
    return rc;
}
