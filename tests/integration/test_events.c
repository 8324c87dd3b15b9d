/* Server-Sent Events end to end (issue 4): the frames of /sse/executions/{id} follow the
 * execution's history in the broker's log, Last-Event-ID resumes without gaps or
 * repeats, every terminal state ends the stream with a terminal frame, and 1,000
 * concurrent clients (one poll() loop, no thread each) all get every event. */
#include "tests/support/execution.h"
#include "tests/support/expect.h"
#include "tests/support/http.h"
#include "tests/support/sse.h"
#include "tests/support/teststack.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <cmocka.h>

static teststack_t *stack;
static int http_port;

static int setup(void **state)
{
    (void)state;
    /* The thousand streams come from one address, standing in for a thousand
     * clients: no per-address limit here (gateway/listen.h). */
    teststack_options_t opts = {.workers = 2, .slots = 8, .gateway_args = "--max-per-ip 0"};
    stack = teststack_start(&opts);
    if (!stack)
        return -1;
    http_port = atoi(strrchr(teststack_url(stack), ':') + 1);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    teststack_destroy(&stack);
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

/* ---- helpers ---- */

/* "seq:type,..." of the execution's events in the broker's log. */
static char *log_history(const char *execution_id)
{
    return teststack_db_text(stack,
                             "SELECT group_concat(seq || ':' || type, ',') FROM "
                             "(SELECT seq, type FROM events WHERE execution_id = ?1"
                             " ORDER BY seq) AS history",
                             execution_id, NULL);
}

/* "seq:event_type,..." of the event frames (connected and keepalives left out). */
static void frame_history(const sse_client_t *r, size_t from, char *out, size_t len)
{
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = from; i < sse_client_frame_count(r) && used < len; i++) {
        const sse_frame_t *frame = frame_at(r, i);
        if (frame->keepalive || !strcmp(sse_frame_str(frame, "type"), "connected"))
            continue;
        used += (size_t)snprintf(out + used, len - used, "%s%lld:%s", used ? "," : "",
                                 frame->id, sse_frame_str(frame, "event_type"));
    }
}

static char *sse_path(const char *execution_id)
{
    static char path[128];
    snprintf(path, sizeof path, "/sse/executions/%s", execution_id);
    return path;
}

/* Opens the execution's stream and reads it until the gateway closes it. */
static sse_client_t *read_whole_stream(const char *execution_id, const char *last_event_id)
{
    sse_client_t *r = open_stream(http_port, sse_path(execution_id), last_event_id, 0);
    if (!sse_client_wait(r, sse_client_has_closed, 0, 30000))
        fail_msg("stream of %s did not end: %s", execution_id, sse_client_body(r));
    assert_int_equal(sse_client_status(r), 200);
    assert_true(sse_client_ended(r));
    return r;
}

/* ---- tests ---- */

static void test_frames_follow_the_history(void **state)
{
    (void)state;
    execution_create_workflow(stack, "{\"id\":\"story\",\"name\":\"Story\",\"phases\":["
                    "{\"phase_id\":\"a\",\"name\":\"A\",\"order\":1,"
                    " \"prompt_template\":\"#mock sleep 300\\nfirst\"},"
                    "{\"phase_id\":\"b\",\"name\":\"B\",\"order\":2,\"prompt_template\":\"{{a}}\"},"
                    "{\"phase_id\":\"c\",\"name\":\"C\",\"order\":3,\"prompt_template\":\"{{b}}\"}]}");
    char *id = teststack_execute(stack, "story", "{}");
    assert_non_null(id);
    /* Live: subscribed while it runs. */
    sse_client_t *live = read_whole_stream(id, NULL);
    char *history = log_history(id);
    assert_non_null(history);
    char frames[8192];
    frame_history(live, 0, frames, sizeof frames);
    if (strcmp(frames, history) != 0)
        print_error("frames:  %s\nhistory: %s\n", frames, history);
    assert_string_equal(frames, history);
    /* The connected frame first, the terminal frame last. */
    assert_string_equal(sse_frame_str(frame_at(live, 0), "type"), "connected");
    assert_int_equal(frame_at(live, 0)->id, 0);
    assert_string_equal(sse_frame_str(frame_at(live, 0), "execution_id"), id);
    const sse_frame_t *last = frame_at(live, sse_client_frame_count(live) - 1);
    assert_string_equal(sse_frame_str(last, "type"), "terminal");
    assert_string_equal(sse_frame_str(last, "event_type"), "ExecutionCompleted");
    assert_non_null(strstr(history, "ExecutionStarted"));
    assert_non_null(strstr(history, "PhaseStarted"));
    assert_non_null(strstr(history, "PhaseCompleted"));
    for (size_t i = 1; i < sse_client_frame_count(live); i++) {
        assert_string_equal(sse_frame_str(frame_at(live, i), "execution_id"), id);
        expect_timestamp(frame_at(live, i)->data, "timestamp");
        assert_true(json_is_object(json_object_get(frame_at(live, i)->data, "data")));
    }

    /* Replayed: subscribed after it finished, by a prefix of its id. */
    char prefix[16];
    snprintf(prefix, sizeof prefix, "%.12s", id);
    sse_client_t *replayed = read_whole_stream(prefix, NULL);
    frame_history(replayed, 0, frames, sizeof frames);
    assert_string_equal(frames, history);
    sse_client_destroy(&live);
    sse_client_destroy(&replayed);
    free(history);
    free(id);
}

/* A client that drops off and comes back with Last-Event-ID gets the rest, exactly. */
static void test_last_event_id_resume(void **state)
{
    (void)state;
    execution_create_workflow(stack, "{\"id\":\"resume\",\"name\":\"Resume\",\"phases\":["
                    "{\"phase_id\":\"a\",\"name\":\"A\",\"order\":1,"
                    " \"prompt_template\":\"#mock sleep 800\\none\"},"
                    "{\"phase_id\":\"b\",\"name\":\"B\",\"order\":2,"
                    " \"prompt_template\":\"#mock sleep 800\\ntwo\"}]}");
    char *id = teststack_execute(stack, "resume", "{}");
    assert_non_null(id);
    /* First connection: read a few frames while it runs, then hang up. */
    sse_client_t *first = open_stream(http_port, sse_path(id), NULL, 0);
    assert_true(sse_client_wait(first, sse_client_has_frames, 3, 10000));
    long long last_id = frame_at(first, sse_client_frame_count(first) - 1)->id;
    char seen[8192];
    frame_history(first, 0, seen, sizeof seen);
    sse_client_destroy(&first);

    char header[32];
    snprintf(header, sizeof header, "%lld", last_id);
    sse_client_t *second = read_whole_stream(id, header);
    assert_int_equal(frame_at(second, 0)->id, last_id); /* connected: where it resumes */
    char rest[8192];
    frame_history(second, 0, rest, sizeof rest);
    char joined[16384];
    snprintf(joined, sizeof joined, "%s,%s", seen, rest);
    char *history = log_history(id);
    if (strcmp(joined, history) != 0)
        print_error("joined:  %s\nhistory: %s\n", joined, history);
    assert_string_equal(joined, history);

    /* Resuming from the middle of a finished execution's history, and from its end. */
    char *middle = teststack_db_text(stack,
                                     "SELECT seq FROM events WHERE execution_id = ?1 "
                                     "ORDER BY seq LIMIT 1 OFFSET 2",
                                     id, NULL);
    sse_client_t *third = read_whole_stream(id, middle);
    frame_history(third, 0, rest, sizeof rest);
    const char *after = history;
    for (int i = 0; i < 3; i++)
        after = strchr(after, ',') + 1;
    assert_string_equal(rest, after);
    char *end = teststack_db_text(stack, "SELECT max(seq) FROM events WHERE execution_id = ?1",
                                  id, NULL);
    sse_client_t *fourth = read_whole_stream(id, end);
    assert_int_equal(sse_client_frame_count(fourth), 1); /* connected, then the end */
    sse_client_destroy(&second);
    sse_client_destroy(&third);
    sse_client_destroy(&fourth);
    free(middle);
    free(end);
    free(history);
    free(id);
}

static void expect_terminal(const char *workflow_id, const char *body, const char *event_type,
                            bool cancel)
{
    char *id = teststack_execute(stack, workflow_id, body);
    assert_non_null(id);
    sse_client_t *r = open_stream(http_port, sse_path(id), NULL, 0);
    assert_true(sse_client_wait(r, sse_client_has_frames, 2, 10000));
    if (cancel) {
        http_response_t resp;
        http_post(&resp, "{}", "%s/executions/%s/cancel", teststack_url(stack), id);
        assert_int_equal(resp.status, 200);
        http_response_clear(&resp);
    }
    if (!sse_client_wait(r, sse_client_has_closed, 0, 20000))
        fail_msg("%s: stream did not end: %s", event_type, sse_client_body(r));
    assert_true(sse_client_ended(r));
    const sse_frame_t *last = frame_at(r, sse_client_frame_count(r) - 1);
    assert_string_equal(sse_frame_str(last, "type"), "terminal");
    assert_string_equal(sse_frame_str(last, "event_type"), event_type);
    for (size_t i = 0; i + 1 < sse_client_frame_count(r); i++)
        assert_string_not_equal(sse_frame_str(frame_at(r, i), "type"), "terminal");
    sse_client_destroy(&r);
    free(id);
}

static void test_terminal_frame_for_every_end(void **state)
{
    (void)state;
    execution_create_workflow(stack, "{\"id\":\"ends-ok\",\"name\":\"Ok\",\"phases\":["
                    "{\"phase_id\":\"a\",\"name\":\"A\",\"order\":1,"
                    " \"prompt_template\":\"#mock sleep 300\\nfine\"}]}");
    execution_create_workflow(stack, "{\"id\":\"ends-bad\",\"name\":\"Bad\",\"phases\":["
                    "{\"phase_id\":\"a\",\"name\":\"A\",\"order\":1,\"max_attempts\":1,"
                    " \"prompt_template\":\"#mock sleep 300\\n#mock fail no luck\"}]}");
    execution_create_workflow(stack, "{\"id\":\"ends-stop\",\"name\":\"Stop\",\"phases\":["
                    "{\"phase_id\":\"a\",\"name\":\"A\",\"order\":1,"
                    " \"prompt_template\":\"#mock sleep 10000\\nlong\"}]}");
    expect_terminal("ends-ok", "{}", "ExecutionCompleted", false);
    expect_terminal("ends-bad", "{}", "ExecutionFailed", false);
    expect_terminal("ends-stop", "{}", "ExecutionCancelled", true);
}

static bool is_connected(const sse_client_t *r, long want)
{
    (void)want;
    return sse_client_frame_count(r) >= 1 || sse_client_closed(r);
}

/* 1,000 clients on one running execution, read by one poll() loop: each gets every
 * event of its history, in order, and the terminal frame. */
static void test_thousand_concurrent_clients(void **state)
{
    (void)state;
    enum { CLIENTS = 1000 };
    execution_create_workflow(stack, "{\"id\":\"crowd\",\"name\":\"Crowd\",\"phases\":["
                    "{\"phase_id\":\"a\",\"name\":\"A\",\"order\":1,"
                    " \"prompt_template\":\"#mock sleep 3000\\none\"},"
                    "{\"phase_id\":\"b\",\"name\":\"B\",\"order\":2,\"prompt_template\":\"two\"},"
                    "{\"phase_id\":\"c\",\"name\":\"C\",\"order\":3,\"prompt_template\":\"three\"}]}");
    char *id = teststack_execute(stack, "crowd", "{}");
    assert_non_null(id);
    sse_client_t **rs = calloc(CLIENTS, sizeof *rs);
    long long start = teststack_now_ms();
    for (int i = 0; i < CLIENTS; i++)
        rs[i] = open_stream(http_port, sse_path(id), NULL, 0);
    assert_true(sse_clients_wait(rs, CLIENTS, is_connected, 0, 20000));
    long long connected_ms = teststack_now_ms() - start;
    /* Most joined while phase a ran: they get the rest live. */
    json_t *status = NULL;
    http_response_t resp;
    http_get(&resp, "%s/executions/%s/state", teststack_url(stack), id);
    status = json_incref(resp.json);
    http_response_clear(&resp);
    assert_true(sse_clients_wait(rs, CLIENTS, sse_client_has_closed, 0, 60000));
    char *history = log_history(id);
    int exact = 0;
    for (int i = 0; i < CLIENTS; i++) {
        char frames[8192];
        frame_history(rs[i], 0, frames, sizeof frames);
        if (sse_client_ended(rs[i]) && !strcmp(frames, history))
            exact++;
        else if (exact == i)
            print_error("client %d: ended=%d\n frames:  %s\n history: %s\n", i,
                        sse_client_ended(rs[i]), frames, history);
    }
    print_message("1000 SSE clients: connected in %lld ms (state then: %s), %d got the exact "
                  "history\n",
                  connected_ms, json_string_value(json_object_get(status, "state")), exact);
    assert_int_equal(exact, CLIENTS);
    json_decref(status);
    for (int i = 0; i < CLIENTS; i++)
        sse_client_destroy(&rs[i]);
    free(rs);
    free(history);
    free(id);
}

/* The activity stream carries every execution's events, terminal frames included,
 * and stays open. */
static void test_activity_stream(void **state)
{
    (void)state;
    execution_create_workflow(stack, "{\"id\":\"busy\",\"name\":\"Busy\",\"phases\":["
                    "{\"phase_id\":\"a\",\"name\":\"A\",\"order\":1,\"prompt_template\":\"x\"}]}");
    sse_client_t *r = open_stream(http_port, "/sse/activity", NULL, 0);
    assert_true(sse_client_wait(r, sse_client_has_frames, 1, 10000));
    assert_string_equal(sse_frame_str(frame_at(r, 0), "type"), "connected");
    char *one = teststack_execute(stack, "busy", "{}");
    char *two = teststack_execute(stack, "busy", "{}");
    json_t *done = teststack_wait_terminal(stack, "busy", one, 20000);
    json_decref(done);
    done = teststack_wait_terminal(stack, "busy", two, 20000);
    json_decref(done);
    char *h1 = log_history(one), *h2 = log_history(two);
    long want = 1;
    for (const char *p = h1; p; p = strchr(p + 1, ','))
        want++;
    for (const char *p = h2; p; p = strchr(p + 1, ','))
        want++;
    assert_true(sse_client_wait(r, sse_client_has_frames, want, 10000));
    int terminals = 0;
    long long previous = frame_at(r, 0)->id;
    for (size_t i = 1; i < sse_client_frame_count(r); i++) {
        assert_true(frame_at(r, i)->id > previous); /* in seq order */
        previous = frame_at(r, i)->id;
        terminals += !strcmp(sse_frame_str(frame_at(r, i), "type"), "terminal");
    }
    assert_int_equal(terminals, 2);
    assert_false(sse_client_closed(r));
    sse_client_destroy(&r);
    free(h1);
    free(h2);
    free(one);
    free(two);
}

int main(void)
{
    /* 1,000 client sockets in this process. */
    struct rlimit lim;
    if (getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < 4096) {
        lim.rlim_cur = lim.rlim_max < 4096 ? lim.rlim_max : 4096;
        setrlimit(RLIMIT_NOFILE, &lim);
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_frames_follow_the_history),
        cmocka_unit_test(test_last_event_id_resume),
        cmocka_unit_test(test_terminal_frame_for_every_end),
        cmocka_unit_test(test_activity_stream),
        cmocka_unit_test(test_thousand_concurrent_clients),
    };
    return cmocka_run_group_tests_name("events", tests, setup, teardown);
}
