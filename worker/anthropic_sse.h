/* anthropic_sse: the Messages API's answer stream (server-sent events) read into
 * a run. It stands alone, apart from the HTTP transfer that brings the bytes
 * (provider_anthropic.c), so that the reading of bytes from outside can be
 * tested and fuzzed without a server (tests/fuzz/fuzz_anthropic_sse.c).
 *
 * Lines are "field: value", comments (":") and the blank line that ends an
 * event; the data lines of an event are joined with '\n' and read as JSON:
 *   message_start        model, input and cache token counts;
 *   content_block_delta  text_delta text, shown as output while it comes;
 *   message_delta        stop reason and token totals so far;
 *   message_stop         the message is whole;
 *   error                the stream failed (overloaded_error and api_error may
 *                        be tried again).
 * An event whose data is not a JSON object is skipped; a line longer than
 * ANTHROPIC_SSE_LINE_MAX, or data beyond ANTHROPIC_SSE_DATA_MAX, is dropped. */
#ifndef SYN_WORKER_ANTHROPIC_SSE_H
#define SYN_WORKER_ANTHROPIC_SSE_H

#include "worker/lines.h"
#include "worker/provider.h"

#include <stdbool.h>
#include <stddef.h>

/* Longest SSE line and event data kept; the API's are far smaller. */
#define ANTHROPIC_SSE_LINE_MAX (1024u * 1024u)
#define ANTHROPIC_SSE_DATA_MAX (4u * 1024u * 1024u)

typedef struct {
    worker_lines_t lines; /* the bytes, split */
    char event[64];       /* the event's "event:" name */
    char *data;           /* the event's data lines so far */
    size_t data_len, data_cap;
    /* What the stream said: */
    bool message_stopped;
    char *stream_error;   /* "type: message" of an error event, or NULL */
    bool stream_error_retryable;
    bool shown_text;      /* some text was shown (kept across tries) */
    /* The counts, when the stream is fed without a run (the credential proxy
     * counts what it forwards and shows nothing). */
    worker_usage_t usage;
} anthropic_sse_t;

/* Ready for a first stream; nothing is allocated until bytes come. */
void anthropic_sse_init(anthropic_sse_t *self);
/* Reads len bytes of the answer into run (output, usage); with run NULL,
 * only the counts, into self->usage. */
void anthropic_sse_feed(anthropic_sse_t *self, worker_run_t *run, const char *data, size_t len);
/* The answer ended: its last line and event, if unterminated, are read too. */
void anthropic_sse_end(anthropic_sse_t *self, worker_run_t *run);
/* Forgets the stream for a new try (shown_text stays: what was shown, was). */
void anthropic_sse_reset(anthropic_sse_t *self);
void anthropic_sse_free(anthropic_sse_t *self);

#endif
