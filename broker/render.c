/* render: single-pass substitution with a sorted table of names.
 *
 * The table holds every name with its rank (0 builtin, 1 input, 2 run variable,
 * 3 output); after
 * sorting by (length, bytes, rank, position) the first entry of each name is the winner.
 * The scanner remembers the next "}}" so finding it costs O(n) over the whole
 * template, and only a key without '{' is looked up (unless some name contains
 * '{'), which bounds lookups to two per "}}" (the second for `{{ name }}` without its
 * spaces). The original's oldest prompts' `{% if name %}` blocks are decided first, in
 * one pass over the text, only when it holds "{%". */
#include "broker/render.h"

#include "common/buffer.h"

#include <ctype.h>
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

static const entry_t *lookup(const entry_t *table, size_t entries, const char *key,
                             size_t key_len)
{
    entry_t probe = {key, key_len, NULL, 0, 0, 0};
    return entries ? bsearch(&probe, table, entries, sizeof *table, key_cmp) : NULL;
}

/* Jinja's `{{ name }}` (the original's oldest prompts): the name without the spaces. */
static void trim_spaces(const char **key, size_t *key_len)
{
    while (*key_len && (**key == ' ' || **key == '\t')) {
        (*key)++;
        (*key_len)--;
    }
    while (*key_len && ((*key)[*key_len - 1] == ' ' || (*key)[*key_len - 1] == '\t'))
        (*key_len)--;
}

/* --- {% if name %} … {% else %} … {% endif %} (the original's oldest prompts) ---- */

#define BLOCK_DEPTH 32

typedef enum { TAG_NONE, TAG_IF, TAG_ELSE, TAG_ENDIF } tag_t;

/* The tag at t[i] ("{% if name %}", "{% else %}", "{% endif %}"), its length in *len
 * and an if's name; TAG_NONE for anything else, which stays text. */
static tag_t block_tag(const char *t, size_t n, size_t i, size_t *len, const char **name,
                       size_t *name_len)
{
    const char *end = n - i > 4 ? memmem(t + i + 2, n - i - 2, "%}", 2) : NULL;
    if (!end)
        return TAG_NONE;
    const char *body = t + i + 2;
    size_t body_len = (size_t)(end - body);
    trim_spaces(&body, &body_len);
    *len = (size_t)(end + 2 - (t + i));
    if (body_len == 4 && memcmp(body, "else", 4) == 0)
        return TAG_ELSE;
    if (body_len == 5 && memcmp(body, "endif", 5) == 0)
        return TAG_ENDIF;
    if (body_len > 3 && memcmp(body, "if", 2) == 0 && (body[2] == ' ' || body[2] == '\t')) {
        *name = body + 3;
        *name_len = body_len - 3;
        trim_spaces(name, name_len);
        for (size_t k = 0; k < *name_len; k++)
            if (!(isalnum((unsigned char)(*name)[k]) || (*name)[k] == '_' || (*name)[k] == '-'))
                return TAG_NONE;
        return *name_len ? TAG_IF : TAG_NONE;
    }
    return TAG_NONE;
}

/* The template with its if-blocks decided: a block is kept when its name has a
 * non-empty value (an input, builtin or earlier output), as Jinja tests it; an
 * unknown name is false. NULL when the text has none (or on no memory: *failed). */
static char *expand_blocks(const char *t, size_t n, const entry_t *table, size_t entries,
                           bool *failed)
{
    *failed = false;
    if (!memmem(t, n, "{%", 2))
        return NULL;
    char *out = malloc(n + 1);
    if (!out) {
        *failed = true;
        return NULL;
    }
    bool keep[BLOCK_DEPTH + 1] = {true}; /* keep[d]: text at depth d is kept */
    bool taken[BLOCK_DEPTH + 1] = {false};
    size_t depth = 0, used = 0;
    for (size_t i = 0; i < n;) {
        size_t len = 0, name_len = 0;
        const char *name = NULL;
        tag_t tag = t[i] == '{' && i + 1 < n && t[i + 1] == '%'
                        ? block_tag(t, n, i, &len, &name, &name_len)
                        : TAG_NONE;
        if (tag == TAG_IF && depth < BLOCK_DEPTH) {
            const entry_t *hit = lookup(table, entries, name, name_len);
            taken[depth + 1] = hit && hit->value_len > 0;
            keep[depth + 1] = keep[depth] && taken[depth + 1];
            depth++;
        } else if (tag == TAG_ELSE && depth > 0) {
            keep[depth] = keep[depth - 1] && !taken[depth];
        } else if (tag == TAG_ENDIF && depth > 0) {
            depth--;
        } else {
            if (keep[depth])
                out[used++] = t[i];
            i++;
            continue;
        }
        i += len;
    }
    out[used] = '\0';
    return out;
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
    bool no_memory;
    char *expanded = expand_blocks(template_text, strlen(template_text), table, entries,
                                   &no_memory);
    if (no_memory) {
        free(table);
        snprintf(err, errlen, "out of memory rendering the prompt");
        return NULL;
    }
    const char *t = expanded ? expanded : template_text;
    size_t n = strlen(t);
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
                bool candidate = brace_names || !memchr(key, '{', key_len);
                const entry_t *hit =
                    candidate && key_len <= max_key ? lookup(table, entries, key, key_len) : NULL;
                if (!hit && candidate && key_len > 0 && (key[0] == ' ' || key[key_len - 1] == ' ')) {
                    trim_spaces(&key, &key_len); /* {{ name }} */
                    hit = key_len <= max_key ? lookup(table, entries, key, key_len) : NULL;
                }
                {
                    if (hit) {
                        value = hit->value;
                        value_len = hit->value_len;
                        skip = close - i + 2;
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
    free(expanded);
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
    free(expanded);
    return NULL;
}
