/* fuzz_claude_stream: what Claude Code writes on stdout, read line by line
 * (worker/claude_stream.c: claude_stream_line, split by worker/lines.c's
 * worker_lines_feed/worker_lines_flush as provider_claude.c does).
 *
 * The bytes are read twice: at once, and in two chunks cut where the first byte
 * says (a pipe hands them over in any pieces). Beyond "no crash": both runs end
 * with the same output, usage, tool events and result; the output is valid
 * UTF-8 without NUL and the counts are not negative. */
#include "tests/fuzz/fuzz_run.h"
#include "worker/claude_stream.h"
#include "worker/lines.h"

typedef struct {
    claude_stream_t stream;
    worker_run_t *run;
    worker_lines_t lines;
} reader_t;

static void on_line(void *arg, char *line, size_t len)
{
    reader_t *reader = arg;
    claude_line_t kind = claude_stream_line(&reader->stream, reader->run, line, len);
    FUZZ_CHECK(kind == CLAUDE_LINE_EMPTY || kind == CLAUDE_LINE_OTHER ||
               kind == CLAUDE_LINE_RESULT);
}

static void read_all(reader_t *reader, const char *data, size_t size, size_t cut)
{
    memset(reader, 0, sizeof *reader);
    reader->run = fuzz_run_new();
    reader->lines.max = 64 * 1024; /* small, so the fuzzer reaches the dropping of lines */
    worker_lines_feed(&reader->lines, data, cut, on_line, reader);
    worker_lines_feed(&reader->lines, data + cut, size - cut, on_line, reader);
    worker_lines_flush(&reader->lines, on_line, reader);
    fuzz_run_check(reader->run);
}

static void free_reader(reader_t *reader)
{
    claude_stream_free(&reader->stream);
    worker_lines_free(&reader->lines);
    worker_run_destroy(&reader->run);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    reader_t whole, pieces;
    read_all(&whole, (const char *)data, size, 0);
    read_all(&pieces, (const char *)data, size, fuzz_cut(data, size));
    fuzz_run_same(whole.run, pieces.run);
    const claude_stream_t *a = &whole.stream, *b = &pieces.stream;
    FUZZ_CHECK(a->results_seen == b->results_seen && a->result_is_error == b->result_is_error);
    fuzz_same_text(a->result_subtype, b->result_subtype);
    fuzz_same_text(a->result_text, b->result_text);
    free_reader(&whole);
    free_reader(&pieces);
    return 0;
}
