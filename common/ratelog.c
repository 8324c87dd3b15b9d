#include "common/ratelog.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CAUSE_MAX 255

typedef struct {
    char cause[CAUSE_MAX + 1];
    int64_t logged_ms;  /* when its last line was written */
    uint64_t held_back; /* lines not written since */
} entry_t;

struct syn_ratelog_t {
    int64_t interval_ms;
    entry_t *entries;
    size_t count, cap;
};

syn_ratelog_t *syn_ratelog_new(int64_t interval_ms, size_t max_causes)
{
    syn_ratelog_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->interval_ms = interval_ms;
    self->cap = max_causes > 0 ? max_causes : 1;
    self->entries = calloc(self->cap, sizeof *self->entries);
    if (!self->entries) {
        free(self);
        return NULL;
    }
    return self;
}

void syn_ratelog_destroy(syn_ratelog_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    free((*self_p)->entries);
    free(*self_p);
    *self_p = NULL;
}

/* Causes are few (a handful of keys and addresses misbehaving at once): a
 * linear search over a small array beats a hash table here. */
static entry_t *find(syn_ratelog_t *self, const char *cause)
{
    for (size_t i = 0; i < self->count; i++)
        if (strncmp(self->entries[i].cause, cause, CAUSE_MAX) == 0)
            return &self->entries[i];
    return NULL;
}

static entry_t *least_recent(syn_ratelog_t *self)
{
    entry_t *oldest = &self->entries[0];
    for (size_t i = 1; i < self->count; i++)
        if (self->entries[i].logged_ms < oldest->logged_ms)
            oldest = &self->entries[i];
    return oldest;
}

bool syn_ratelog_allow(syn_ratelog_t *self, const char *cause, int64_t now_ms,
                       uint64_t *held_back)
{
    entry_t *e = find(self, cause);
    if (e && now_ms - e->logged_ms < self->interval_ms) {
        e->held_back++;
        return false;
    }
    if (!e) {
        e = self->count < self->cap ? &self->entries[self->count++] : least_recent(self);
        strncpy(e->cause, cause, CAUSE_MAX);
        e->cause[CAUSE_MAX] = '\0';
        e->held_back = 0;
    }
    if (held_back)
        *held_back = e->held_back;
    e->held_back = 0;
    e->logged_ms = now_ms;
    return true;
}

void syn_ratelog_log(syn_ratelog_t *self, const char *cause, int64_t now_ms,
                     syn_log_level_t level, const char *component, const char *fmt, ...)
{
    uint64_t held = 0;
    if (!syn_ratelog_allow(self, cause, now_ms, &held))
        return;
    char text[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    if (held)
        syn_log(level, component, "%s (%llu more since the last line)", text,
                (unsigned long long)held);
    else
        syn_log(level, component, "%s", text);
}
