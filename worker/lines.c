#include "worker/lines.h"

#include "common/buffer.h"

#include <stdlib.h>
#include <string.h>

/* Appends take bytes to the unfinished line, or starts dropping it when it
 * would exceed max (too_long set) or cannot grow. */
static void keep(worker_lines_t *self, const char *data, size_t take, bool *too_long)
{
    if (self->len + take > self->max) {
        *too_long = true;
        self->skipping = true;
        self->len = 0;
        return;
    }
    if (!syn_buffer_reserve(&self->buf, &self->cap, self->len + take + 1, 4096)) {
        self->skipping = true;
        self->len = 0;
        return;
    }
    memcpy(self->buf + self->len, data, take);
    self->len += take;
}

size_t worker_lines_feed(worker_lines_t *self, const char *data, size_t len,
                         worker_line_fn *on_line, void *arg)
{
    size_t dropped = 0;
    while (len > 0) {
        const char *newline = memchr(data, '\n', len);
        size_t take = newline ? (size_t)(newline - data) : len;
        if (!self->skipping) {
            bool too_long = false;
            keep(self, data, take, &too_long);
            if (too_long)
                dropped++;
        }
        if (!newline)
            break;
        if (!self->skipping)
            on_line(arg, self->buf, self->len);
        self->skipping = false;
        self->len = 0;
        data += take + 1;
        len -= take + 1;
    }
    return dropped;
}

void worker_lines_flush(worker_lines_t *self, worker_line_fn *on_line, void *arg)
{
    if (self->len > 0 && !self->skipping)
        on_line(arg, self->buf, self->len);
    worker_lines_reset(self);
}

void worker_lines_reset(worker_lines_t *self)
{
    self->len = 0;
    self->skipping = false;
}

void worker_lines_free(worker_lines_t *self)
{
    free(self->buf);
    self->buf = NULL;
    self->len = self->cap = 0;
    self->skipping = false;
}
