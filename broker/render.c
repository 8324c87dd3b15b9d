/* render: single-pass substitution with a sorted table of names.
 *
 * The table holds every name with its rank (0 builtin, 1 input, 2 run variable,
 * 3 output); after
 * sorting by (length, bytes, rank, position) the first entry of each name is the winner.
 * The scanner remembers the next "}}" so finding it costs O(n) over the whole
 * template, and only a key without '{' is looked up (unless some name contains
 * '{'), which bounds lookups to one per "}}". */
#include "broker/render.h"

#include "common/buffer.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ARGUMENTS_TOKEN "$ARGUMENTS"
#define ARGUMENTS_LEN (sizeof(ARGUMENTS_TOKEN) - 1)

typedef struct {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
    int rank;
    size_t seq; /* position given: the first of two equal names in one rule wins */
} entry_t;

typedef struct {
    char *data;
    size_t len;
    size_t cap;
    size_t max;
    bool too_large;
} buffer_t;

static int entry_cmp(const void *a, const void *b)
{
    const entry_t *x = a, *y = b;
    if (x->name_len != y->name_len)
        return x->name_len < y->name_len ? -1 : 1;
    int c = memcmp(x->name, y->name, x->name_len);
    if (c)
        return c;
    if (x->rank != y->rank)
        return x->rank - y->rank;
    return (x->seq > y->seq) - (x->seq < y->seq);
}

static int key_cmp(const void *key, const void *elem)
{
    const entry_t *k = key, *e = elem;
    if (k->name_len != e->name_len)
        return k->name_len < e->name_len ? -1 : 1;
    return memcmp(k->name, e->name, k->name_len);
}

static int buffer_append(buffer_t *buf, const char *data, size_t len)
{
    if (len > buf->max - buf->len) {
        buf->too_large = true;
        return -1;
    }
    if (!syn_buffer_reserve(&buf->data, &buf->cap, buf->len + len + 1, 256))
        return -1;
    memcpy(buf->data + buf->len, data, len);
    buf->len += len;
    buf->data[buf->len] = '\0';
    return 0;
}

static void add_entry(entry_t *table, size_t *count, const char *name, const char *value,
                      int rank)
{
    if (!name || !value)
        return;
    table[*count] = (entry_t){name, strlen(name), value, strlen(value), rank, *count};
    (*count)++;
}

/* The winner for each name: sorted so equal names sit together, lowest rank first;
 * later duplicates are squeezed out. */
static size_t build_table(entry_t *table, const broker_render_ctx_t *ctx)
{
    size_t n = 0;
    add_entry(table, &n, "execution_id", ctx->execution_id, 0);
    add_entry(table, &n, "workflow_id", ctx->workflow_id, 0);
    for (size_t i = 0; i < ctx->input_count; i++)
        add_entry(table, &n, ctx->inputs[i].name, ctx->inputs[i].value, 1);
    for (size_t i = 0; i < ctx->run_var_count; i++)
        add_entry(table, &n, ctx->run_vars[i].name, ctx->run_vars[i].value, 2);
    for (size_t i = 0; i < ctx->output_count; i++)
        add_entry(table, &n, ctx->outputs[i].name, ctx->outputs[i].value, 3);
    if (n == 0)
        return 0;
    qsort(table, n, sizeof *table, entry_cmp);
    size_t kept = 1;
    for (size_t i = 1; i < n; i++)
        if (key_cmp(&table[i], &table[kept - 1]) != 0)
            table[kept++] = table[i];
    return kept;
}

/* Finds the first "}}" at or after from; len when there is none. */
static size_t find_close(const char *text, size_t len, size_t from)
{
    while (from + 1 < len) {
        const char *p = memchr(text + from, '}', len - from - 1);
        if (!p)
            break;
        size_t at = (size_t)(p - text);
        if (text[at + 1] == '}')
            return at;
        from = at + 1;
    }
    return len;
}

char *broker_render(const char *template_text, const broker_render_ctx_t *ctx, size_t *len,
                    char *err, size_t errlen)
{
    size_t max = ctx->max_size ? ctx->max_size : BROKER_RENDER_MAX_SIZE;
    size_t slots = 2 + ctx->input_count + ctx->run_var_count + ctx->output_count;
    entry_t *table = calloc(slots, sizeof *table);
    if (!table) {
        snprintf(err, errlen, "out of memory rendering the prompt");
        return NULL;
    }
    size_t entries = build_table(table, ctx);
    size_t max_key = 0;
    bool brace_names = false;
    for (size_t i = 0; i < entries; i++) {
        if (table[i].name_len > max_key)
            max_key = table[i].name_len;
        if (memchr(table[i].name, '{', table[i].name_len))
            brace_names = true;
    }

    const char *task = ctx->task ? ctx->task : "";
    size_t task_len = strlen(task);
    size_t n = strlen(template_text);
    const char *t = template_text;
    buffer_t out = {.max = max};
    if (buffer_append(&out, "", 0) < 0)
        goto fail;

    size_t close = find_close(t, n, 0); /* next "}}" at or after the scan position */
    size_t run = 0;                     /* start of literal text not yet copied */
    size_t i = 0;
    while (i < n) {
        const char *value = NULL;
        size_t value_len = 0, skip = 0;
        if (t[i] == '{' && i + 1 < n && t[i + 1] == '{') {
            if (close < i + 2)
                close = find_close(t, n, i + 2);
            if (close < n) {
                size_t key_len = close - (i + 2);
                const char *key = t + i + 2;
                bool candidate = key_len <= max_key &&
                                 (brace_names || !memchr(key, '{', key_len));
                if (candidate) {
                    entry_t probe = {key, key_len, NULL, 0, 0, 0};
                    const entry_t *hit = bsearch(&probe, table, entries, sizeof *table, key_cmp);
                    if (hit) {
                        value = hit->value;
                        value_len = hit->value_len;
                        skip = key_len + 4;
                    }
                }
            }
        } else if (t[i] == '$' && n - i >= ARGUMENTS_LEN &&
                   memcmp(t + i, ARGUMENTS_TOKEN, ARGUMENTS_LEN) == 0) {
            value = task;
            value_len = task_len;
            skip = ARGUMENTS_LEN;
        }
        if (!value) {
            i++;
            continue;
        }
        if (buffer_append(&out, t + run, i - run) < 0 ||
            buffer_append(&out, value, value_len) < 0)
            goto fail;
        i += skip;
        run = i;
    }
    if (buffer_append(&out, t + run, n - run) < 0)
        goto fail;
    free(table);
    if (len)
        *len = out.len;
    return out.data;

fail:
    if (out.too_large)
        snprintf(err, errlen, "rendered prompt exceeds %zu bytes", max);
    else
        snprintf(err, errlen, "out of memory rendering the prompt");
    free(out.data);
    free(table);
    return NULL;
}
