/* fuzz_anthropic_sse: the Messages API's answer stream (worker/anthropic_sse.c:
 * anthropic_sse_feed, anthropic_sse_end).
 *
 * The bytes are read twice: at once, and in two chunks cut where the first byte
 * says (curl hands them over in any pieces). Beyond "no crash": both runs end
 * with the same output, usage, stop and error; the output is valid UTF-8
 * without NUL and the counts are not negative. */
#include "tests/fuzz/fuzz_run.h"
#include "worker/anthropic_sse.h"

typedef struct {
    anthropic_sse_t sse;
    worker_run_t *run;
} reader_t;

static void read_all(reader_t *reader, const char *data, size_t size, size_t cut)
{
    reader->run = fuzz_run_new();
    anthropic_sse_init(&reader->sse);
    anthropic_sse_feed(&reader->sse, reader->run, data, cut);
    anthropic_sse_feed(&reader->sse, reader->run, data + cut, size - cut);
    anthropic_sse_end(&reader->sse, reader->run);
    fuzz_run_check(reader->run);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    reader_t whole, pieces;
    read_all(&whole, (const char *)data, size, 0);
    read_all(&pieces, (const char *)data, size, fuzz_cut(data, size));
    fuzz_run_same(whole.run, pieces.run);
    const anthropic_sse_t *a = &whole.sse, *b = &pieces.sse;
    FUZZ_CHECK(a->message_stopped == b->message_stopped && a->shown_text == b->shown_text);
    FUZZ_CHECK(a->stream_error_retryable == b->stream_error_retryable);
    fuzz_same_text(a->stream_error, b->stream_error);
    /* The same stream again, after a reset, reads the same (a retried try). */
    anthropic_sse_reset(&whole.sse);
    FUZZ_CHECK(!whole.sse.message_stopped && !whole.sse.stream_error);
    for (reader_t *r = &whole; r; r = r == &whole ? &pieces : NULL) {
        anthropic_sse_free(&r->sse);
        worker_run_destroy(&r->run);
    }
    return 0;
}
