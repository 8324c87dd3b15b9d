/* fake_anthropic: a stand-in for the Anthropic Messages API, for tests.
 *
 * A libmicrohttpd server on a random loopback port, in this process (its own
 * threads, one per connection), that answers each POST /v1/messages with the
 * next planned answer, in the order the requests arrive: a 200 whose body is
 * streamed as Server-Sent Events a few bytes at a time (so events arrive cut
 * anywhere), or an error status with a JSON body. A request with no plan left
 * gets a 404 not_found_error ("no plan"). Every request is recorded (body,
 * x-api-key, anthropic-version, content-type, arrival time) for the test to
 * look at. Plans may be added while requests are being served. */
#ifndef SYN_TEST_FAKE_ANTHROPIC_H
#define SYN_TEST_FAKE_ANTHROPIC_H

#include <stdint.h>

#define FAKE_ANTHROPIC_MAX_PLANS 16
#define FAKE_ANTHROPIC_MAX_REQUESTS 16

/* A recorded request (strings NULL when the header was absent). */
typedef struct {
    char *body;
    char *api_key;
    char *version;
    char *content_type;
    int64_t at_ms; /* monotonic milliseconds when it arrived */
    /* A held stream (fake_anthropic_plan_held): when everything before the hold
     * had been sent, and when the client hung up during it (0: not / never). */
    int64_t held_ms;
    int64_t hangup_ms;
} fake_anthropic_request_t;

typedef struct fake_anthropic_t fake_anthropic_t;

/* Starts the server; NULL when it cannot. */
fake_anthropic_t *fake_anthropic_new(void);
/* Stops the server (ends streams still being sent) and frees everything. */
void fake_anthropic_destroy(fake_anthropic_t **self_p);

int fake_anthropic_port(fake_anthropic_t *self);
/* "http://127.0.0.1:PORT" (the base URL: requests go to <URL>/v1/messages). */
const char *fake_anthropic_url(fake_anthropic_t *self);

/* Queues the answer to the next unanswered request: status 200 streams body as
 * text/event-stream, any other status sends it as application/json.
 * retry_after (a retry-after header) may be NULL; delay_ms holds back the first
 * byte of a stream. body and retry_after must outlive the server (string
 * literals). -1 when FAKE_ANTHROPIC_MAX_PLANS are queued already. */
int fake_anthropic_plan(fake_anthropic_t *self, unsigned status, const char *retry_after,
                        const char *body, int delay_ms);

/* Queues a 200 stream of body that stops right after the text hold_after for
 * hold_ms (a model still generating), then goes on; a client that hangs up during
 * the hold is noticed at once (within a few ms) and its time recorded. */
int fake_anthropic_plan_held(fake_anthropic_t *self, const char *body, const char *hold_after,
                             int hold_ms);

/* Requests received so far (at most FAKE_ANTHROPIC_MAX_REQUESTS are kept). */
int fake_anthropic_request_count(fake_anthropic_t *self);
/* The index-th request, NULL past the ones received; valid until destroy. */
const fake_anthropic_request_t *fake_anthropic_request(fake_anthropic_t *self, int index);

/* Canned answers, shaped like the real API's. */

/* A whole streamed message: model claude-haiku-4-5-20251001, text
 * "Hello, w\xC3\xB6rld!" (in two deltas, one of them with CRLF line ends),
 * usage 1500 input, 350 output, 200 cache creation, 1000 cache read tokens,
 * stop_reason end_turn; with a ping and a comment line in between. */
extern const char fake_anthropic_sse_answer[];
/* A stream that shows the text "Partial", then fails with overloaded_error. */
extern const char fake_anthropic_sse_overloaded[];
/* Error bodies: 529 overloaded_error "Overloaded", 500 api_error "Internal
 * server error", 400 invalid_request_error "max_tokens: 999999 > 64000, which
 * is the maximum allowed". */
extern const char fake_anthropic_overloaded_body[];
extern const char fake_anthropic_server_error_body[];
extern const char fake_anthropic_bad_request_body[];

#endif
