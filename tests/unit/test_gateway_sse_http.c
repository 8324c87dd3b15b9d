/* The gateway's SSE streams over real HTTP, in-process, against a fake broker that
 * keeps an event log, answers events.replay from it and publishes on PUB (or, to make
 * gaps, does not): connected frame first, replay then live without repeats,
 * Last-Event-ID, prefixes, terminal frames that close, gap fill, keepalive, slow
 * clients cut without hurting others, 1,000 concurrent clients, and the phase output
 * as text/plain. */
#include "gateway/gateway.h"
#include "proto/msg.h"
#include "tests/support/fake_broker.h"
#include "tests/support/gateway_harness.h"
#include "tests/support/http.h"
#include "tests/support/sse.h"
#include "tests/support/wait.h"

#include <czmq.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cmocka.h>

#define REQUEST_TIMEOUT_MS 1000

/* ---- fake broker (tests/support/fake_broker.h) with an event log ---- */

/* An events.replay request waiting to be answered. */
typedef struct {
    fake_request_t request; /* its op and args are not kept: see args */
    json_t *args;
    int64_t due_ms;
} job_t;

/* The fake broker, the event log it answers events.replay from, and the replays
 * still to answer. */
typedef struct {
    fake_broker_t *fake;
    pthread_mutex_t lock; /* guards everything below */
    json_t *log;          /* every event, in seq order */
    int replay_delay_ms;  /* events.replay answered this late (computed when sent) */
    job_t jobs[256];
    size_t job_count;
} logging_broker_t;

static bool is_terminal(const char *type)
{
    return !strcmp(type, "ExecutionCompleted") || !strcmp(type, "ExecutionFailed") ||
           !strcmp(type, "ExecutionCancelled");
}

/* events.replay from the log, as docs/protocol.md says (caller holds the lock). */
static void answer_replay(logging_broker_t *lb, const job_t *job)
{
    const char *given = json_string_value(json_object_get(job->args, "execution_id"));
    json_int_t after = json_integer_value(json_object_get(job->args, "after_seq"));
    json_int_t limit = json_integer_value(json_object_get(job->args, "limit"));
    const char *resolved = NULL;
    size_t i;
    json_t *event;
    if (given) {
        int matches = 0;
        json_t *seen = json_object();
        json_array_foreach(lb->log, i, event) {
            const char *id = json_string_value(json_object_get(event, "execution_id"));
            if (id && strncmp(id, given, strlen(given)) == 0 && !json_object_get(seen, id)) {
                json_object_set_new(seen, id, json_true());
                matches++;
                resolved = id;
            }
        }
        json_decref(seen);
        char detail[256];
        if (matches != 1) {
            snprintf(detail, sizeof detail, matches ? "Ambiguous execution id %s" :
                     "Execution not found: %s", given);
            fake_broker_answer(lb->fake, &job->request, matches ? 409 : 404,
                               json_pack("{s:s}", "detail", detail));
            return;
        }
    }
    json_t *events = json_array();
    bool more = false, terminal = false;
    json_int_t last = after;
    json_array_foreach(lb->log, i, event) {
        const char *id = json_string_value(json_object_get(event, "execution_id"));
        if (resolved && (!id || strcmp(id, resolved) != 0))
            continue;
        if (is_terminal(json_string_value(json_object_get(event, "type"))))
            terminal = true;
        json_int_t seq = json_integer_value(json_object_get(event, "seq"));
        if (seq <= after)
            continue;
        if ((json_int_t)json_array_size(events) == limit) {
            more = true;
            continue;
        }
        json_array_append(events, event);
        last = seq;
    }
    fake_broker_answer(lb->fake, &job->request, 200,
                       json_pack("{s:o, s:I, s:b, s:b, s:s?}", "events", events, "last_seq",
                                 last, "more", more, "terminal", resolved && terminal,
                                 "execution_id", resolved));
}

/* health → 200 (a canned reply); events.replay → from the log (exec-silent: never);
 * execution.output → {"output"} (phase "missing": 404); anything else → 200
 * {"op","args"}. */
static void logging_broker_handle(fake_broker_t *fb, const fake_request_t *request, void *user)
{
    logging_broker_t *lb = user;
    const char *op = request->op;
    json_t *args = request->args;
    if (!strcmp(op, "events.replay")) {
        const char *execution_id = json_string_value(json_object_get(args, "execution_id"));
        pthread_mutex_lock(&lb->lock);
        if (!(execution_id && !strcmp(execution_id, "exec-silent")) && lb->job_count < 256) {
            job_t *job = &lb->jobs[lb->job_count++];
            job->request = *request;
            job->request.op = NULL;
            job->request.args = NULL;
            job->args = json_incref(args);
            job->due_ms = zclock_mono() + lb->replay_delay_ms;
        }
        pthread_mutex_unlock(&lb->lock);
    } else if (!strcmp(op, "execution.output")) {
        const char *phase = json_string_value(json_object_get(args, "phase_id"));
        if (!strcmp(phase, "missing"))
            fake_broker_answer(fb, request, 404,
                               json_pack("{s:s}", "detail", "Phase missing not found in execution x"));
        else
            fake_broker_answer(fb, request, 200,
                               json_pack("{s:s}", "output", "line one\nline two \xc3\xa9\n"));
    } else {
        fake_broker_answer(fb, request, 200, json_pack("{s:s, s:O}", "op", op, "args", args));
    }
}

/* Every turn: the replays that are due. */
static void logging_broker_tick(fake_broker_t *fb, void *user)
{
    (void)fb;
    logging_broker_t *lb = user;
    pthread_mutex_lock(&lb->lock);
    int64_t now = zclock_mono();
    for (size_t i = 0; i < lb->job_count;) {
        if (lb->jobs[i].due_ms <= now) {
            answer_replay(lb, &lb->jobs[i]);
            json_decref(lb->jobs[i].args);
            lb->jobs[i] = lb->jobs[--lb->job_count];
        } else {
            i++;
        }
    }
    pthread_mutex_unlock(&lb->lock);
}

static logging_broker_t *logging_broker_start(void)
{
    logging_broker_t *lb = calloc(1, sizeof *lb);
    pthread_mutex_init(&lb->lock, NULL);
    lb->log = json_array();
    lb->fake = fake_broker_start(&(fake_broker_config_t){.handler = logging_broker_handle,
                                                         .tick = logging_broker_tick,
                                                         .user = lb,
                                                         .poll_ms = 1,
                                                         .events_sndhwm = 100000});
    fake_broker_set_healthy(lb->fake, 1);
    return lb;
}

static void logging_broker_stop(logging_broker_t **lb_p)
{
    logging_broker_t *lb = *lb_p;
    fake_broker_stop(&lb->fake);
    for (size_t i = 0; i < lb->job_count; i++)
        json_decref(lb->jobs[i].args);
    json_decref(lb->log);
    pthread_mutex_destroy(&lb->lock);
    free(lb);
    *lb_p = NULL;
}

/* events.replay answered this late from now on; REPLAY_HELD_MS: held until
 * release_replays. */
#define REPLAY_HELD_MS (3600 * 1000)
static void set_replay_delay(logging_broker_t *lb, int delay_ms)
{
    pthread_mutex_lock(&lb->lock);
    lb->replay_delay_ms = delay_ms;
    pthread_mutex_unlock(&lb->lock);
}

/* Every replay waiting is answered on the broker's next turn. */
static void release_replays(logging_broker_t *lb)
{
    pthread_mutex_lock(&lb->lock);
    for (size_t i = 0; i < lb->job_count; i++)
        lb->jobs[i].due_ms = 0;
    pthread_mutex_unlock(&lb->lock);
}

/* Appends an event to the log (and publishes it unless publish is false, which makes
 * a gap for the gateway); data is stolen (NULL: {}). Returns its seq. */
static long long emit_data(logging_broker_t *lb, const char *execution_id, const char *type,
                           json_t *data, bool publish)
{
    pthread_mutex_lock(&lb->lock);
    long long seq = (long long)json_array_size(lb->log) + 1;
    json_t *event = json_pack("{s:I, s:I, s:s?, s:s, s:o}", "seq", (json_int_t)seq, "time",
                              (json_int_t)zclock_time() * 1000, "execution_id", execution_id,
                              "type", type, "data", data ? data : json_object());
    json_array_append(lb->log, event);
    if (publish)
        fake_broker_publish(lb->fake, event);
    json_decref(event);
    pthread_mutex_unlock(&lb->lock);
    return seq;
}

static long long emit(logging_broker_t *lb, const char *execution_id, const char *type)
{
    return emit_data(lb, execution_id, type, NULL, true);
}

/* ---- the gateway under test (tests/support/gateway_harness.h) ---- */

typedef struct {
    logging_broker_t *broker;
    gateway_harness_t *gw;
    long long warmup_seq; /* events in the log before the test starts */
} fixture_t;

/* Until the DEALER and the SUB are connected, requests get 503 and events are lost:
 * wait for both (warm-up events go to the log like any other, execution_id null). */
static void wait_until_connected(fixture_t *f)
{
    (void)gateway_harness_wait_healthy(f->gw, 3000);
    for (wait_t w = wait_begin(3000);;) {
        f->warmup_seq = emit(f->broker, NULL, "Warmup");
        if (!wait_next(&w))
            fail_msg("gateway never connected to the fake broker");
        if (gateway_harness_stats(f->gw).events > 0)
            return;
    }
}

static fixture_t *fixture_start(long keepalive_ms, long buffer_bytes)
{
    fixture_t *f = calloc(1, sizeof *f);
    f->broker = logging_broker_start();
    gateway_config_t config = {
        .http = "127.0.0.1:0",
        .broker = fake_broker_endpoint(f->broker->fake),
        .events = fake_broker_events_endpoint(f->broker->fake),
        .request_timeout_ms = REQUEST_TIMEOUT_MS,
        .health_timeout_ms = 500,
        .max_connections = 2048,
        .sse_keepalive_ms = keepalive_ms,
        .sse_buffer_bytes = buffer_bytes,
    };
    f->gw = gateway_harness_start(&config);
    wait_until_connected(f);
    return f;
}

static int setup(void **state)
{
    *state = fixture_start(0, 0);
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    gateway_harness_stop(&f->gw);
    logging_broker_stop(&f->broker);
    free(f);
    return 0;
}

/* ---- SSE helpers (the client itself is tests/support/sse.h) ---- */

static sse_client_t *open_stream(int port, const char *path, const char *last_event_id,
                                 int rcvbuf)
{
    sse_client_t *r = sse_client_new(port, path, last_event_id, rcvbuf);
    assert_non_null(r);
    return r;
}

static const sse_frame_t *frame_at(const sse_client_t *r, size_t index)
{
    const sse_frame_t *frame = sse_client_frame(r, index);
    if (!frame)
        fail_msg("no frame %zu (of %zu): %s", index, sse_client_frame_count(r),
                 sse_client_body(r));
    return frame;
}

static void wait_frames(sse_client_t *r, long want)
{
    if (!sse_client_wait(r, sse_client_has_frames, want, 5000))
        fail_msg("wanted %ld frames, got %zu: %s", want, sse_client_frame_count(r),
                 sse_client_body(r));
}

/* The frames' ids and event types as "id:type,..." (keepalives skipped; the
 * connected frame as "id:connected"). */
static void summary(const sse_client_t *r, char *out, size_t len)
{
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; i < sse_client_frame_count(r) && used < len; i++) {
        const sse_frame_t *frame = sse_client_frame(r, i);
        if (frame->keepalive)
            continue;
        const char *type = sse_frame_str(frame, "type");
        used += (size_t)snprintf(out + used, len - used, "%s%lld:%s", used ? "," : "",
                                 frame->id, strcmp(type, "connected") == 0
                                                ? "connected"
                                                : sse_frame_str(frame, "event_type"));
    }
}

static void expect_summary(const sse_client_t *r, const char *want)
{
    char got[8192];
    summary(r, got, sizeof got);
    if (strcmp(got, want) != 0)
        print_error("got:  %s\nwant: %s\n", got, want);
    assert_string_equal(got, want);
}

/* Waits until the gateway's live feed has brought seq, so that a plain activity stream
 * opened now starts there (it starts after the last event the feed brought). An
 * execution stream may already show that event before the feed brings it: its replay
 * reads the broker's log, which can be ahead of the feed on a loaded machine. The
 * probe is an activity stream of its own, closed again (the gateway lets it go at
 * its next write). */
static void wait_feed_reaches(fixture_t *f, long long seq)
{
    for (wait_t w = wait_begin(5000);;) {
        sse_client_t *probe = open_stream(gateway_harness_port(f->gw), "/sse/activity", NULL, 0);
        wait_frames(probe, 1);
        long long at = frame_at(probe, 0)->id;
        sse_client_destroy(&probe);
        if (at >= seq)
            return;
        if (!wait_next(&w))
            fail_msg("the gateway's feed is at seq %lld, never at %lld", at, seq);
    }
}

/* ---- tests ---- */

static void test_replay_then_live_then_terminal(void **state)
{
    fixture_t *f = *state;
    long long s1 = emit(f->broker, "exec-aaa111", "ExecutionStarted");
    emit(f->broker, "exec-bbb222", "ExecutionStarted");
    long long s3 = emit(f->broker, "exec-aaa111", "PhaseQueued");
    sse_client_t *r = open_stream(gateway_harness_port(f->gw), "/sse/executions/exec-aaa111", NULL, 0);
    wait_frames(r, 3);
    assert_int_equal(sse_client_status(r), 200);
    assert_non_null(strcasestr(sse_client_headers(r), "\r\nContent-Type: text/event-stream\r\n"));
    assert_non_null(strcasestr(sse_client_headers(r), "\r\nCache-Control: no-cache\r\n"));
    assert_true(sse_client_chunked(r));
    assert_string_equal(sse_frame_str(frame_at(r, 0), "type"), "connected");
    assert_string_equal(sse_frame_str(frame_at(r, 0), "execution_id"), "exec-aaa111");
    assert_string_equal(sse_frame_str(frame_at(r, 1), "type"), "event");

    long long s4 = emit(f->broker, "exec-aaa111", "PhaseStarted");
    emit(f->broker, "exec-bbb222", "PhaseStarted");
    long long s6 = emit(f->broker, "exec-aaa111", "ExecutionCompleted");
    assert_true(sse_client_wait(r, sse_client_has_closed, 0, 5000));
    assert_true(sse_client_ended(r)); /* the final chunk: a clean end, not a cut */
    char want[256];
    snprintf(want, sizeof want,
             "0:connected,%lld:ExecutionStarted,%lld:PhaseQueued,%lld:PhaseStarted,"
             "%lld:ExecutionCompleted",
             s1, s3, s4, s6);
    expect_summary(r, want);
    assert_string_equal(sse_frame_str(frame_at(r, 4), "type"), "terminal");
    assert_non_null(json_object_get(frame_at(r, 4)->data, "data"));
    assert_int_equal(strlen(sse_frame_str(frame_at(r, 4), "timestamp")), 27);
    sse_client_destroy(&r);
}

/* Live events published while the replay reply is on its way are in the reply too:
 * each is sent once, in order. */
static void test_replay_and_live_overlap_without_repeats(void **state)
{
    fixture_t *f = *state;
    long long first = emit(f->broker, "exec-ccc", "ExecutionStarted");
    set_replay_delay(f->broker, REPLAY_HELD_MS);
    int replays = fake_broker_requests(f->broker->fake, "events.replay");
    uint64_t events = gateway_harness_stats(f->gw).events;
    sse_client_t *r = open_stream(gateway_harness_port(f->gw), "/sse/executions/exec-ccc", NULL, 0);
    /* The replay request is in, its answer held back; the live events reach the
     * gateway before it. */
    WAIT_FOR(fake_broker_requests(f->broker->fake, "events.replay") > replays, 5000);
    assert_int_equal(fake_broker_requests(f->broker->fake, "events.replay"), replays + 1);
    long long seqs[5];
    for (int i = 0; i < 5; i++)
        seqs[i] = emit(f->broker, "exec-ccc", "PhaseOutput");
    WAIT_FOR(gateway_harness_stats(f->gw).events >= events + 5, 5000);
    assert_true(gateway_harness_stats(f->gw).events >= events + 5);
    set_replay_delay(f->broker, 0);
    release_replays(f->broker);
    wait_frames(r, 7);
    long long more = emit(f->broker, "exec-ccc", "PhaseCompleted");
    wait_frames(r, 8);
    /* Nothing more may come (no event twice): a quiet stretch, not a wait. */
    wait_quiet_ms(100);
    sse_client_pump(r);
    char want[512];
    int used = snprintf(want, sizeof want, "0:connected,%lld:ExecutionStarted", first);
    for (int i = 0; i < 5; i++)
        used += snprintf(want + used, sizeof want - (size_t)used, ",%lld:PhaseOutput", seqs[i]);
    snprintf(want + used, sizeof want - (size_t)used, ",%lld:PhaseCompleted", more);
    expect_summary(r, want);
    sse_client_destroy(&r);
}

static void test_last_event_id_resumes_after_it(void **state)
{
    fixture_t *f = *state;
    long long seqs[4];
    for (int i = 0; i < 4; i++)
        seqs[i] = emit(f->broker, "exec-ddd", i == 0 ? "ExecutionStarted" : "PhaseOutput");
    char last[32];
    snprintf(last, sizeof last, "%lld", seqs[1]);
    sse_client_t *r = open_stream(gateway_harness_port(f->gw), "/sse/executions/exec-ddd", last, 0);
    wait_frames(r, 3);
    char want[256];
    snprintf(want, sizeof want, "%lld:connected,%lld:PhaseOutput,%lld:PhaseOutput", seqs[1],
             seqs[2], seqs[3]);
    expect_summary(r, want);
    sse_client_destroy(&r);

    /* A bad header is a 422, as any bad input. */
    r = open_stream(gateway_harness_port(f->gw), "/sse/executions/exec-ddd", "abc", 0);
    sse_client_wait(r, sse_client_has_closed, 0, 5000);
    assert_int_equal(sse_client_status(r), 422);
    assert_non_null(strstr(sse_client_body(r), "last-event-id"));
    sse_client_destroy(&r);
}

static void test_finished_execution_replays_and_closes(void **state)
{
    fixture_t *f = *state;
    long long a = emit(f->broker, "exec-eee", "ExecutionStarted");
    long long b = emit(f->broker, "exec-eee", "ExecutionFailed");
    sse_client_t *r = open_stream(gateway_harness_port(f->gw), "/sse/executions/exec-e", NULL, 0); /* a prefix */
    assert_true(sse_client_wait(r, sse_client_has_closed, 0, 5000));
    assert_true(sse_client_ended(r));
    char want[128];
    snprintf(want, sizeof want, "0:connected,%lld:ExecutionStarted,%lld:ExecutionFailed", a, b);
    expect_summary(r, want);
    assert_string_equal(sse_frame_str(frame_at(r, 0), "execution_id"), "exec-eee");
    sse_client_destroy(&r);

    /* Resuming past its terminal frame: connected, then the end. */
    char last[32];
    snprintf(last, sizeof last, "%lld", b);
    r = open_stream(gateway_harness_port(f->gw), "/sse/executions/exec-eee", last, 0);
    assert_true(sse_client_wait(r, sse_client_has_closed, 0, 5000));
    snprintf(want, sizeof want, "%lld:connected", b);
    expect_summary(r, want);
    assert_true(sse_client_ended(r));
    sse_client_destroy(&r);
}

static void test_unknown_ambiguous_and_silent(void **state)
{
    fixture_t *f = *state;
    emit(f->broker, "exec-f01", "ExecutionStarted");
    emit(f->broker, "exec-f02", "ExecutionStarted");
    http_response_t resp;
    assert_int_equal(http_get(&resp, "%s/sse/executions/exec-zzz", gateway_harness_url(f->gw)), 0);
    assert_int_equal(resp.status, 404);
    assert_string_equal(resp.content_type, "application/json");
    assert_string_equal(json_string_value(json_object_get(resp.json, "detail")),
                        "Execution not found: exec-zzz");
    http_response_clear(&resp);
    assert_int_equal(http_get(&resp, "%s/sse/executions/exec-f0", gateway_harness_url(f->gw)), 0);
    assert_int_equal(resp.status, 409);
    http_response_clear(&resp);
    assert_int_equal(http_get(&resp, "%s/sse/executions/exec-silent", gateway_harness_url(f->gw)), 0);
    assert_int_equal(resp.status, 503);
    assert_string_equal(resp.retry_after, "1");
    http_response_clear(&resp);
    gateway_stats_t stats = gateway_harness_stats(f->gw);
    assert_int_equal(stats.sse_clients, 0);
}

static void test_activity_stream(void **state)
{
    fixture_t *f = *state;
    wait_feed_reaches(f, f->warmup_seq);
    sse_client_t *r = open_stream(gateway_harness_port(f->gw), "/sse/activity", NULL, 0);
    wait_frames(r, 1);
    /* It starts live, after the last event the gateway saw. */
    assert_int_equal(frame_at(r, 0)->id, f->warmup_seq);
    assert_string_equal(sse_frame_str(frame_at(r, 0), "type"), "connected");
    assert_true(json_is_null(json_object_get(frame_at(r, 0)->data, "execution_id")));
    long long a = emit(f->broker, "exec-g1", "ExecutionStarted");
    long long b = emit(f->broker, "exec-g2", "ExecutionStarted");
    long long c = emit(f->broker, "exec-g1", "ExecutionCancelled");
    long long d = emit(f->broker, "exec-g2", "PhaseQueued");
    wait_frames(r, 5);
    char want[256];
    snprintf(want, sizeof want,
             "%lld:connected,%lld:ExecutionStarted,%lld:ExecutionStarted,"
             "%lld:ExecutionCancelled,%lld:PhaseQueued",
             f->warmup_seq, a, b, c, d);
    expect_summary(r, want);
    assert_string_equal(sse_frame_str(frame_at(r, 3), "type"), "terminal");
    assert_false(sse_client_closed(r)); /* terminal frames do not end the activity stream */
    sse_client_destroy(&r);

    /* With Last-Event-ID it replays every execution's events after it first. */
    char last[32];
    snprintf(last, sizeof last, "%lld", b);
    r = open_stream(gateway_harness_port(f->gw), "/sse/activity", last, 0);
    wait_frames(r, 3);
    long long e = emit(f->broker, NULL, "WorkerJoined");
    wait_frames(r, 4);
    snprintf(want, sizeof want,
             "%lld:connected,%lld:ExecutionCancelled,%lld:PhaseQueued,%lld:WorkerJoined", b, c,
             d, e);
    expect_summary(r, want);
    sse_client_destroy(&r);
}

/* Events the PUB dropped are fetched from the log: the stream has no hole. */
static void test_gap_is_replayed(void **state)
{
    fixture_t *f = *state;
    long long a = emit(f->broker, "exec-hhh", "ExecutionStarted");
    sse_client_t *exec = open_stream(gateway_harness_port(f->gw), "/sse/executions/exec-hhh", NULL, 0);
    wait_frames(exec, 2);
    wait_feed_reaches(f, a);
    sse_client_t *all = open_stream(gateway_harness_port(f->gw), "/sse/activity", NULL, 0);
    wait_frames(all, 1);
    long long lost1 = emit_data(f->broker, "exec-hhh", "PhaseQueued", NULL, false);
    long long lost2 = emit_data(f->broker, "exec-iii", "PhaseQueued", NULL, false);
    long long b = emit(f->broker, "exec-hhh", "PhaseStarted");
    long long c = emit(f->broker, "exec-hhh", "ExecutionCompleted");
    assert_true(sse_client_wait(exec, sse_client_has_closed, 0, 5000));
    wait_frames(all, 5);
    char want[256];
    snprintf(want, sizeof want,
             "0:connected,%lld:ExecutionStarted,%lld:PhaseQueued,%lld:PhaseStarted,"
             "%lld:ExecutionCompleted",
             a, lost1, b, c);
    expect_summary(exec, want);
    snprintf(want, sizeof want,
             "%lld:connected,%lld:PhaseQueued,%lld:PhaseQueued,%lld:PhaseStarted,"
             "%lld:ExecutionCompleted",
             a, lost1, lost2, b, c);
    expect_summary(all, want);
    gateway_stats_t stats = gateway_harness_stats(f->gw);
    assert_int_equal(stats.event_gaps, 1);
    sse_client_destroy(&exec);
    sse_client_destroy(&all);
}

/* The last events lost with nothing after them to show a gap (published before the
 * SUB connected, or dropped): once the feed has been quiet a moment, the gateway asks
 * the broker how far its log goes and the streams read the rest from the log, so an
 * execution stream still gets its terminal frame and closes. */
static void test_lost_last_event_is_caught_up(void **state)
{
    fixture_t *f = *state;
    long long a = emit(f->broker, "exec-kkk", "ExecutionStarted");
    sse_client_t *exec = open_stream(gateway_harness_port(f->gw), "/sse/executions/exec-kkk", NULL, 0);
    wait_frames(exec, 2);
    wait_feed_reaches(f, a);
    sse_client_t *all = open_stream(gateway_harness_port(f->gw), "/sse/activity", NULL, 0);
    wait_frames(all, 1);
    long long lost = emit_data(f->broker, "exec-kkk", "ExecutionCancelled", NULL, false);
    assert_true(sse_client_wait(exec, sse_client_has_closed, 0, 5000));
    wait_frames(all, 2);
    char want[128];
    snprintf(want, sizeof want, "0:connected,%lld:ExecutionStarted,%lld:ExecutionCancelled", a,
             lost);
    expect_summary(exec, want);
    snprintf(want, sizeof want, "%lld:connected,%lld:ExecutionCancelled", a, lost);
    expect_summary(all, want);
    sse_client_destroy(&exec);
    sse_client_destroy(&all);
}

static void test_keepalive_after_silence(void **state)
{
    (void)state;
    fixture_t *f = fixture_start(100, 0);
    sse_client_t *r = open_stream(gateway_harness_port(f->gw), "/sse/activity", NULL, 0);
    wait_frames(r, 1);
    int64_t start = zclock_mono();
    assert_true(sse_client_wait(r, sse_client_has_keepalives, 3, 5000));
    int64_t took = zclock_mono() - start;
    assert_true(took >= 250);  /* about one per 100 ms of silence, not more */
    assert_true(took < 2000);
    if (!strstr(sse_client_body(r), "\n\n: keepalive\n\n"))
        fail_msg("body: [%s]", sse_client_body(r));
    /* An event resets the silence. */
    emit(f->broker, "exec-k", "ExecutionStarted");
    assert_true(
        sse_client_wait(r, sse_client_has_frames, (long)sse_client_frame_count(r) + 1, 5000));
    sse_client_destroy(&r);
    teardown((void **)&f);
}

/* A client that stops reading is cut once its buffer is full; the others get every
 * event, and the gateway keeps answering. */
static void test_slow_client_is_cut_without_hurting_others(void **state)
{
    (void)state;
    fixture_t *f = fixture_start(0, 256 * 1024);
    sse_client_t *slow = open_stream(gateway_harness_port(f->gw), "/sse/activity", NULL, 4096);
    sse_client_t *fast = open_stream(gateway_harness_port(f->gw), "/sse/activity", NULL, 0);
    wait_frames(fast, 1);
    /* 8 MB in all, at a pace a reading client keeps up with. */
    enum { EVENTS = 8000 };
    char chunk[1024];
    memset(chunk, 'x', sizeof chunk - 1);
    chunk[sizeof chunk - 1] = '\0';
    for (int i = 0; i < EVENTS; i++) {
        emit_data(f->broker, "exec-slow", "PhaseOutput", json_pack("{s:s}", "chunk", chunk),
                  true);
        sse_client_pump(fast);
        /* The publisher's pace (part of the load under test), not a wait. */
        if (i % 20 == 0)
            wait_exactly_ms(1);
    }
    if (!sse_client_wait(fast, sse_client_has_frames, 1 + EVENTS, 20000)) {
        gateway_stats_t st = gateway_harness_stats(f->gw);
        fail_msg("fast client got %zu frames (closed %d); gateway: events %llu dispatched %llu "
                 "overflows %llu clients %zu gaps %llu bad %llu",
                 sse_client_frame_count(fast), sse_client_closed(fast),
                 (unsigned long long)st.events,
                 (unsigned long long)st.events_dispatched, (unsigned long long)st.sse_overflows,
                 st.sse_clients, (unsigned long long)st.event_gaps,
                 (unsigned long long)st.bad_messages);
    }
    gateway_stats_t stats = {0};
    WAIT_FOR((stats = gateway_harness_stats(f->gw)).sse_clients == 1, 5000);
    assert_int_equal(stats.sse_clients, 1);
    assert_int_equal(stats.sse_overflows, 1);
    /* The slow one finds its stream cut: no clean end. */
    assert_true(sse_client_wait(slow, sse_client_has_closed, 0, 5000));
    assert_false(sse_client_ended(slow));
    http_response_t resp;
    assert_int_equal(http_get(&resp, "%s/health", gateway_harness_url(f->gw)), 0);
    assert_int_equal(resp.status, 200);
    http_response_clear(&resp);
    sse_client_destroy(&slow);
    sse_client_destroy(&fast);
    teardown((void **)&f);
}

static void test_thousand_clients(void **state)
{
    fixture_t *f = *state;
    enum { CLIENTS = 1000, EVENTS = 5 };
    uint64_t seen = gateway_harness_stats(f->gw).events;
    long long first = emit(f->broker, "exec-many", "ExecutionStarted");
    WAIT_FOR(gateway_harness_stats(f->gw).events != seen, 1000);
    sse_client_t **rs = calloc(CLIENTS, sizeof *rs);
    for (int i = 0; i < CLIENTS; i++)
        rs[i] = open_stream(gateway_harness_port(f->gw), i % 2 ? "/sse/activity" : "/sse/executions/exec-many",
                            NULL, 0);
    /* Everyone is connected; execution streams also have their replayed start. */
    for (int i = 0; i < CLIENTS; i++)
        if (!sse_client_wait(rs[i], sse_client_has_frames, i % 2 ? 1 : 2, 20000))
            fail_msg("client %d not connected: %zu frames", i, sse_client_frame_count(rs[i]));
    assert_int_equal(gateway_harness_stats(f->gw).sse_clients, CLIENTS);
    int64_t start = zclock_mono();
    for (int i = 0; i < EVENTS; i++)
        emit(f->broker, "exec-many", i + 1 == EVENTS ? "ExecutionCompleted" : "PhaseOutput");
    sse_clients_wait(rs, CLIENTS, sse_client_has_frames, 1 + EVENTS, 20000);
    print_message("1000 SSE clients got %d events each in %lld ms\n", EVENTS,
                  (long long)(zclock_mono() - start));
    for (int i = 0; i < CLIENTS; i++) {
        size_t want = (i % 2 ? 1 : 2) + EVENTS;
        if (sse_client_frame_count(rs[i]) != want)
            fail_msg("client %d got %zu frames, want %zu", i, sse_client_frame_count(rs[i]), want);
        for (int k = 0; k < EVENTS; k++)
            assert_int_equal(frame_at(rs[i], want - EVENTS + (size_t)k)->id, first + 1 + k);
        assert_string_equal(sse_frame_str(frame_at(rs[i], want - 1), "type"), "terminal");
    }
    /* The execution streams end with their terminal frame; activity ones stay open. */
    for (int i = 0; i < CLIENTS; i += 2) {
        sse_client_wait(rs[i], sse_client_has_closed, 0, 5000);
        assert_true(sse_client_ended(rs[i]));
    }
    assert_false(sse_client_closed(rs[1]));
    for (int i = 0; i < CLIENTS; i++)
        sse_client_destroy(&rs[i]);
    free(rs);
}

static void test_phase_output_is_plain_text(void **state)
{
    fixture_t *f = *state;
    http_response_t resp;
    assert_int_equal(http_get(&resp, "%s/executions/exec-1/phases/plan/output", gateway_harness_url(f->gw)), 0);
    assert_int_equal(resp.status, 200);
    assert_string_equal(resp.content_type, "text/plain; charset=utf-8");
    assert_string_equal(resp.body, "line one\nline two \xc3\xa9\n");
    http_response_clear(&resp);
    assert_int_equal(
        http_get(&resp, "%s/executions/exec-1/phases/missing/output", gateway_harness_url(f->gw)), 0);
    assert_int_equal(resp.status, 404);
    assert_string_equal(resp.content_type, "application/json");
    http_response_clear(&resp);
    /* The control routes reach the broker with their checked arguments. */
    assert_int_equal(http_post(&resp, "{\"message\":\"hi\",\"role\":\"system\"}",
                               "%s/executions/exec-1/inject", gateway_harness_url(f->gw)),
                     0);
    assert_int_equal(resp.status, 200);
    assert_string_equal(json_string_value(json_object_get(resp.json, "op")), "execution.inject");
    http_response_clear(&resp);
    char url[128];
    snprintf(url, sizeof url, "%s/executions/exec-1/cancel", gateway_harness_url(f->gw));
    assert_int_equal(http_request("POST", url, NULL, NULL, &resp), 0);
    assert_int_equal(resp.status, 200);
    assert_true(json_is_null(json_object_get(json_object_get(resp.json, "args"), "reason")));
    http_response_clear(&resp);
}

/* Streams still open when the gateway stops end without leaks (ASan watches). */
static void test_shutdown_with_open_streams(void **state)
{
    fixture_t *f = *state;
    emit(f->broker, "exec-s", "ExecutionStarted");
    sse_client_t *a = open_stream(gateway_harness_port(f->gw), "/sse/executions/exec-s", NULL, 0);
    sse_client_t *b = open_stream(gateway_harness_port(f->gw), "/sse/activity", NULL, 0);
    sse_client_t *c = open_stream(gateway_harness_port(f->gw), "/sse/executions/exec-silent", NULL, 0);
    wait_frames(a, 2);
    wait_frames(b, 1);
    gateway_harness_stop(&f->gw);
    sse_client_t *rs[] = {a, b, c};
    assert_true(sse_clients_wait(rs, 3, sse_client_has_closed, 0, 5000));
    for (int i = 0; i < 3; i++)
        sse_client_destroy(&rs[i]);
}

int main(void)
{
    zsys_handler_set(NULL);
    zsys_init();
    curl_global_init(CURL_GLOBAL_DEFAULT);
    /* 1,000 clients and their server side live in this one process. */
    struct rlimit lim;
    if (getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < 4096) {
        lim.rlim_cur = lim.rlim_max < 4096 ? lim.rlim_max : 4096;
        setrlimit(RLIMIT_NOFILE, &lim);
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_replay_then_live_then_terminal, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replay_and_live_overlap_without_repeats, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_last_event_id_resumes_after_it, setup, teardown),
        cmocka_unit_test_setup_teardown(test_finished_execution_replays_and_closes, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_unknown_ambiguous_and_silent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_activity_stream, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gap_is_replayed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lost_last_event_is_caught_up, setup, teardown),
        cmocka_unit_test(test_keepalive_after_silence),
        cmocka_unit_test(test_slow_client_is_cut_without_hurting_others),
        cmocka_unit_test_setup_teardown(test_thousand_clients, setup, teardown),
        cmocka_unit_test_setup_teardown(test_phase_output_is_plain_text, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shutdown_with_open_streams, setup, teardown),
    };
    int failed = cmocka_run_group_tests_name("gateway_sse_http", tests, NULL, NULL);
    curl_global_cleanup();
    return failed;
}
