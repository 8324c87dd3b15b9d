/* claude_stream: what each line of Claude Code's stream-json output tells a run.
 * It stands alone, apart from the process that writes the lines
 * (provider_claude.c), so that the reading of bytes from outside can be tested
 * and fuzzed without a child process (tests/fuzz/fuzz_claude_stream.c).
 *
 *   system/init   the model actually used;
 *   assistant     message.usage counted once per message.id (Claude Code repeats
 *                 a message once per content block); text blocks become live
 *                 output; tool_use blocks become "tool" progress events;
 *   user          tool_result blocks: the tool call's success (is_error);
 *   result        authoritative totals: usage, total_cost_usd, duration_ms,
 *                 num_turns, is_error, and the result text.
 * A line that is not JSON is kept as output, never fatal. */
#ifndef SYN_WORKER_CLAUDE_STREAM_H
#define SYN_WORKER_CLAUDE_STREAM_H

#include "worker/provider.h"

#include <stdbool.h>
#include <stddef.h>

/* Message ids remembered for counting usage once (oldest forgotten first). */
#define CLAUDE_SEEN_IDS_MAX 4096

/* What the lines so far said; zeroed before the first line. */
typedef struct {
    char *seen_ids[CLAUDE_SEEN_IDS_MAX];
    size_t seen_next;
    bool shown_text;      /* assistant text was shown (separate the next with a newline) */
    bool result_seen;
    bool result_is_error;
    char result_subtype[64];
    char *result_text;    /* the last result's text, or NULL */
    int results_seen;
} claude_stream_t;

typedef enum {
    CLAUDE_LINE_EMPTY,  /* nothing (a blank line) */
    CLAUDE_LINE_OTHER,  /* output, usage, a tool event, or something not ours */
    CLAUDE_LINE_RESULT, /* a result: the end of a turn */
} claude_line_t;

/* Reads one line (without its '\n'; a '\r' before it is dropped) into run's
 * output, usage and events. */
claude_line_t claude_stream_line(claude_stream_t *self, worker_run_t *run, const char *line,
                                 size_t len);

/* Frees what the stream holds (it may be zeroed and used again). */
void claude_stream_free(claude_stream_t *self);

#endif
