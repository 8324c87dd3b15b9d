/* lines: splits a byte stream into lines, for the providers that read one
 * (claude's JSONL on stdout, the Anthropic API's server-sent events).
 *
 * A line longer than the splitter's limit is dropped whole, and so is one that
 * memory cannot hold: a peer never makes the worker buffer without bound. The
 * splitter is a plain struct so a run can embed it in its own state (zeroed,
 * with max set) and nothing is allocated until the first line arrives. */
#ifndef SYN_WORKER_LINES_H
#define SYN_WORKER_LINES_H

#include <stdbool.h>
#include <stddef.h>

typedef struct {
    size_t max;      /* longest line kept, in bytes: set before the first feed */
    char *buf;       /* the unfinished line */
    size_t len, cap;
    bool skipping;   /* inside a line being dropped */
} worker_lines_t;

/* Called with each complete line, without its '\n' (a '\r' before it stays). */
typedef void worker_line_fn(void *arg, char *line, size_t len);

/* Adds len bytes of data, calling on_line for every line they complete.
 * Returns how many lines started being dropped for exceeding max. */
size_t worker_lines_feed(worker_lines_t *self, const char *data, size_t len,
                         worker_line_fn *on_line, void *arg);
/* Passes on the unfinished last line (unless it is being dropped) and starts
 * afresh: for a stream that ended without a final newline. */
void worker_lines_flush(worker_lines_t *self, worker_line_fn *on_line, void *arg);
/* Forgets the unfinished line (for a new stream), keeping the buffer. */
void worker_lines_reset(worker_lines_t *self);
/* Frees the buffer; the splitter may be fed again afterwards. */
void worker_lines_free(worker_lines_t *self);

#endif
