/* Server-Sent Events end to end (issue 4): the frames of /sse/executions/{id} follow the
 * execution's history in the broker's log, Last-Event-ID resumes without gaps or
 * repeats, every terminal state ends the stream with a terminal frame, and 1,000
 * concurrent clients (one poll() loop, no thread each) all get every event. */
#include "tests/support/expect.h"
#include "tests/support/http.h"
#include "tests/support/teststack.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

static teststack_t *stack;
static int http_port;

static int setup(void **state)
{
    (void)state;
    teststack_options_t opts = {.workers = 2, .slots = 8};
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

/* ---- a small SSE client: raw socket, HTTP/1.1 chunked decoding, frame parsing ----
 * (the same as tests/unit/test_gateway_sse_http.c; a candidate for tests/support) */

typedef struct {
    long long id; /* -1 when the frame has no id line */
    bool keepalive;
    json_t *data; /* the data line, parsed; NULL for comments */
} frame_t;

typedef struct {
    char *data;
    size_t len, cap;
} buf_t;

typedef struct {
    int fd;
    int status;  /* 0 until the headers are in */
    buf_t head;  /* status line and headers */
    buf_t raw;   /* bytes after the headers, not yet decoded */
    buf_t body;  /* decoded body: the event stream */
    size_t parsed;
    bool chunked;
    bool ended;  /* the final chunk came: the stream ended cleanly */
    bool closed; /* the server closed (or reset) the connection */
    frame_t *frames;
    size_t count, cap;
} reader_t;

static void buf_add(buf_t *b, const char *data, size_t len)
{
    if (b->len + len + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 1024;
        while (cap < b->len + len + 1)
            cap *= 2;
        b->data = realloc(b->data, cap);
        b->cap = cap;
    }
    memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = '\0';
}

static void buf_drop(buf_t *b, size_t len)
{
    memmove(b->data, b->data + len, b->len - len);
    b->len -= len;
    b->data[b->len] = '\0';
}

static void reader_frames(reader_t *r)
{
    const char *end;
    while (r->body.data && (end = strstr(r->body.data + r->parsed, "\n\n"))) {
        const char *start = r->body.data + r->parsed;
        size_t block_len = (size_t)(end - start);
        char *block = strndup(start, block_len);
        frame_t frame = {.id = -1};
        char *save = NULL;
        for (char *line = strtok_r(block, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
            if (!strncmp(line, "id: ", 4))
                frame.id = atoll(line + 4);
            else if (!strncmp(line, "data: ", 6))
                frame.data = json_loads(line + 6, 0, NULL);
            else if (!strcmp(line, ": keepalive"))
                frame.keepalive = true;
        }
        free(block);
        r->parsed += block_len + 2;
        if (r->count == r->cap) {
            r->cap = r->cap ? r->cap * 2 : 16;
            r->frames = realloc(r->frames, r->cap * sizeof *r->frames);
        }
        r->frames[r->count++] = frame;
    }
}

static void reader_decode(reader_t *r)
{
    if (!r->status) {
        char *end = strstr(r->head.data ? r->head.data : "", "\r\n\r\n");
        if (!end)
            return;
        size_t head_len = (size_t)(end + 4 - r->head.data);
        buf_add(&r->raw, r->head.data + head_len, r->head.len - head_len);
        r->head.len = head_len;
        r->head.data[head_len] = '\0';
        r->status = atoi(r->head.data + 9);
        r->chunked = strcasestr(r->head.data, "\r\nTransfer-Encoding: chunked\r\n") != NULL;
    }
    if (!r->chunked) {
        buf_add(&r->body, r->raw.data ? r->raw.data : "", r->raw.len);
        buf_drop(&r->raw, r->raw.len);
    }
    while (r->chunked && !r->ended && r->raw.len > 0) {
        char *line_end = strstr(r->raw.data, "\r\n");
        if (!line_end)
            break;
        size_t size = strtoul(r->raw.data, NULL, 16);
        size_t line_len = (size_t)(line_end + 2 - r->raw.data);
        if (size == 0) {
            r->ended = true;
            break;
        }
        if (r->raw.len < line_len + size + 2)
            break;
        buf_add(&r->body, r->raw.data + line_len, size);
        buf_drop(&r->raw, line_len + size + 2);
    }
    reader_frames(r);
}

/* Reads whatever is waiting, without blocking. */
static void reader_pump(reader_t *r)
{
    char buf[65536];
    while (!r->closed) {
        ssize_t n = recv(r->fd, buf, sizeof buf, MSG_DONTWAIT);
        if (n > 0) {
            buf_add(r->status ? &r->raw : &r->head, buf, (size_t)n);
            reader_decode(r);
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        r->closed = true;
    }
}

/* Opens GET path; last_event_id NULL for none; rcvbuf > 0 shrinks the socket's
 * receive buffer (a client that reads slowly fills up sooner). */
static reader_t *reader_open(int port, const char *path, const char *last_event_id, int rcvbuf)
{
    reader_t *r = calloc(1, sizeof *r);
    r->fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(r->fd >= 0);
    if (rcvbuf > 0)
        setsockopt(r->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(r->fd, (struct sockaddr *)&addr, sizeof addr), 0);
    char request[512];
    int len = snprintf(request, sizeof request,
                       "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n"
                       "%s%s%sConnection: close\r\n\r\n",
                       path, last_event_id ? "Last-Event-ID: " : "",
                       last_event_id ? last_event_id : "", last_event_id ? "\r\n" : "");
    assert_int_equal(send(r->fd, request, (size_t)len, MSG_NOSIGNAL), len);
    return r;
}

static void reader_close(reader_t **r_p)
{
    reader_t *r = *r_p;
    if (!r)
        return;
    close(r->fd);
    for (size_t i = 0; i < r->count; i++)
        json_decref(r->frames[i].data);
    free(r->frames);
    free(r->head.data);
    free(r->raw.data);
    free(r->body.data);
    free(r);
    *r_p = NULL;
}

typedef bool (*reader_done_fn)(const reader_t *r, long want);

/* Pumps all readers with poll() until done(r, want) holds for each, or timeout_ms. */
static bool readers_wait(reader_t **rs, size_t n, reader_done_fn done, long want,
                         int timeout_ms)
{
    struct pollfd *fds = calloc(n, sizeof *fds);
    long long deadline = teststack_now_ms() + timeout_ms;
    bool all = false;
    while (!all && teststack_now_ms() < deadline) {
        size_t active = 0;
        all = true;
        for (size_t i = 0; i < n; i++) {
            if (done(rs[i], want))
                continue;
            all = false;
            if (!rs[i]->closed)
                fds[active++] = (struct pollfd){.fd = rs[i]->fd, .events = POLLIN};
        }
        if (all || active == 0)
            break;
        poll(fds, active, 50);
        for (size_t i = 0; i < n; i++)
            if (!done(rs[i], want))
                reader_pump(rs[i]);
    }
    free(fds);
    for (size_t i = 0; i < n; i++)
        if (!done(rs[i], want))
            return false;
    return true;
}

static bool has_frames(const reader_t *r, long want)
{
    return r->count >= (size_t)want;
}

static bool has_ended(const reader_t *r, long want)
{
    (void)want;
    return r->closed;
}

static const char *frame_str(const frame_t *frame, const char *key)
{
    const char *text = json_string_value(json_object_get(frame->data, key));
    return text ? text : "";
}
/* ---- helpers ---- */

/* "seq:type,..." of the execution's events in the broker's log. */
static char *log_history(const char *execution_id)
{
    return teststack_db_text(stack,
                             "SELECT group_concat(seq || ':' || type, ',') FROM "
                             "(SELECT seq, type FROM events WHERE execution_id = ?1 ORDER BY seq)",
                             execution_id, NULL);
}

/* "seq:event_type,..." of the event frames (connected and keepalives left out). */
static void frame_history(const reader_t *r, size_t from, char *out, size_t len)
{
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = from; i < r->count && used < len; i++) {
        const frame_t *frame = &r->frames[i];
        if (frame->keepalive || !strcmp(frame_str(frame, "type"), "connected"))
            continue;
        used += (size_t)snprintf(out + used, len - used, "%s%lld:%s", used ? "," : "",
                                 frame->id, frame_str(frame, "event_type"));
    }
}

static void create_workflow(const char *json)
{
    json_t *wf = teststack_create_workflow(stack, json);
    assert_non_null(wf);
    json_decref(wf);
}

static char *sse_path(const char *execution_id)
{
    static char path[128];
    snprintf(path, sizeof path, "/sse/executions/%s", execution_id);
    return path;
}

/* Opens the execution's stream and reads it until the gateway closes it. */
static reader_t *read_whole_stream(const char *execution_id, const char *last_event_id)
{
    reader_t *r = reader_open(http_port, sse_path(execution_id), last_event_id, 0);
    if (!readers_wait(&r, 1, has_ended, 0, 30000))
        fail_msg("stream of %s did not end: %s", execution_id, r->body.data ? r->body.data : "");
    assert_int_equal(r->status, 200);
    assert_true(r->ended);
    return r;
}

/* ---- tests ---- */

static void test_frames_follow_the_history(void **state)
{
    (void)state;
    create_workflow("{\"id\":\"story\",\"name\":\"Story\",\"phases\":["
                    "{\"phase_id\":\"a\",\"name\":\"A\",\"order\":1,"
                    " \"prompt_template\":\"#mock sleep 300\\nfirst\"},"
                    "{\"phase_id\":\"b\",\"name\":\"B\",\"order\":2,\"prompt_template\":\"{{a}}\"},"
                    "{\"phase_id\":\"c\",\"name\":\"C\",\"order\":3,\"prompt_template\":\"{{b}}\"}]}");
    char *id = teststack_execute(stack, "story", "{}");
    assert_non_null(id);
    /* Live: subscribed while it runs. */
    reader_t *live = read_whole_stream(id, NULL);
    char *history = log_history(id);
    assert_non_null(history);
    char frames[8192];
    frame_history(live, 0, frames, sizeof frames);
    if (strcmp(frames, history) != 0)
        print_error("frames:  %s\nhistory: %s\n", frames, history);
    assert_string_equal(frames, history);
    /* The connected frame first, the terminal frame last. */
    assert_string_equal(frame_str(&live->frames[0], "type"), "connected");
    assert_int_equal(live->frames[0].id, 0);
    assert_string_equal(frame_str(&live->frames[0], "execution_id"), id);
    const frame_t *last = &live->frames[live->count - 1];
    assert_string_equal(frame_str(last, "type"), "terminal");
    assert_string_equal(frame_str(last, "event_type"), "ExecutionCompleted");
    assert_non_null(strstr(history, "ExecutionStarted"));
    assert_non_null(strstr(history, "PhaseStarted"));
    assert_non_null(strstr(history, "PhaseCompleted"));
    for (size_t i = 1; i < live->count; i++) {
        assert_string_equal(frame_str(&live->frames[i], "execution_id"), id);
        expect_timestamp(live->frames[i].data, "timestamp");
        assert_true(json_is_object(json_object_get(live->frames[i].data, "data")));
    }

    /* Replayed: subscribed after it finished, by a prefix of its id. */
    char prefix[16];
    snprintf(prefix, sizeof prefix, "%.12s", id);
    reader_t *replayed = read_whole_stream(prefix, NULL);
    frame_history(replayed, 0, frames, sizeof frames);
    assert_string_equal(frames, history);
    reader_close(&live);
    reader_close(&replayed);
    free(history);
    free(id);
}

/* A client that drops off and comes back with Last-Event-ID gets the rest, exactly. */
static void test_last_event_id_resume(void **state)
{
    (void)state;
    create_workflow("{\"id\":\"resume\",\"name\":\"Resume\",\"phases\":["
                    "{\"phase_id\":\"a\",\"name\":\"A\",\"order\":1,"
                    " \"prompt_template\":\"#mock sleep 800\\none\"},"
                    "{\"phase_id\":\"b\",\"name\":\"B\",\"order\":2,"
                    " \"prompt_template\":\"#mock sleep 800\\ntwo\"}]}");
    char *id = teststack_execute(stack, "resume", "{}");
    assert_non_null(id);
    /* First connection: read a few frames while it runs, then hang up. */
    reader_t *first = reader_open(http_port, sse_path(id), NULL, 0);
    assert_true(readers_wait(&first, 1, has_frames, 3, 10000));
    long long last_id = first->frames[first->count - 1].id;
    char seen[8192];
    frame_history(first, 0, seen, sizeof seen);
    reader_close(&first);

    char header[32];
    snprintf(header, sizeof header, "%lld", last_id);
    reader_t *second = read_whole_stream(id, header);
    assert_int_equal(second->frames[0].id, last_id); /* connected: where it resumes */
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
    reader_t *third = read_whole_stream(id, middle);
    frame_history(third, 0, rest, sizeof rest);
    const char *after = history;
    for (int i = 0; i < 3; i++)
        after = strchr(after, ',') + 1;
    assert_string_equal(rest, after);
    char *end = teststack_db_text(stack, "SELECT max(seq) FROM events WHERE execution_id = ?1",
                                  id, NULL);
    reader_t *fourth = read_whole_stream(id, end);
    assert_int_equal(fourth->count, 1); /* connected, then the end */
    reader_close(&second);
    reader_close(&third);
    reader_close(&fourth);
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
    reader_t *r = reader_open(http_port, sse_path(id), NULL, 0);
    assert_true(readers_wait(&r, 1, has_frames, 2, 10000));
    if (cancel) {
        http_response_t resp;
        http_post(&resp, "{}", "%s/executions/%s/cancel", teststack_url(stack), id);
        assert_int_equal(resp.status, 200);
        http_response_clear(&resp);
    }
    if (!readers_wait(&r, 1, has_ended, 0, 20000))
        fail_msg("%s: stream did not end: %s", event_type, r->body.data);
    assert_true(r->ended);
    const frame_t *last = &r->frames[r->count - 1];
    assert_string_equal(frame_str(last, "type"), "terminal");
    assert_string_equal(frame_str(last, "event_type"), event_type);
    for (size_t i = 0; i + 1 < r->count; i++)
        assert_string_not_equal(frame_str(&r->frames[i], "type"), "terminal");
    reader_close(&r);
    free(id);
}

static void test_terminal_frame_for_every_end(void **state)
{
    (void)state;
    create_workflow("{\"id\":\"ends-ok\",\"name\":\"Ok\",\"phases\":["
                    "{\"phase_id\":\"a\",\"name\":\"A\",\"order\":1,"
                    " \"prompt_template\":\"#mock sleep 300\\nfine\"}]}");
    create_workflow("{\"id\":\"ends-bad\",\"name\":\"Bad\",\"phases\":["
                    "{\"phase_id\":\"a\",\"name\":\"A\",\"order\":1,\"max_attempts\":1,"
                    " \"prompt_template\":\"#mock sleep 300\\n#mock fail no luck\"}]}");
    create_workflow("{\"id\":\"ends-stop\",\"name\":\"Stop\",\"phases\":["
                    "{\"phase_id\":\"a\",\"name\":\"A\",\"order\":1,"
                    " \"prompt_template\":\"#mock sleep 10000\\nlong\"}]}");
    expect_terminal("ends-ok", "{}", "ExecutionCompleted", false);
    expect_terminal("ends-bad", "{}", "ExecutionFailed", false);
    expect_terminal("ends-stop", "{}", "ExecutionCancelled", true);
}

static bool is_connected(const reader_t *r, long want)
{
    (void)want;
    return r->count >= 1 || r->closed;
}

/* 1,000 clients on one running execution, read by one poll() loop: each gets every
 * event of its history, in order, and the terminal frame. */
static void test_thousand_concurrent_clients(void **state)
{
    (void)state;
    enum { CLIENTS = 1000 };
    create_workflow("{\"id\":\"crowd\",\"name\":\"Crowd\",\"phases\":["
                    "{\"phase_id\":\"a\",\"name\":\"A\",\"order\":1,"
                    " \"prompt_template\":\"#mock sleep 3000\\none\"},"
                    "{\"phase_id\":\"b\",\"name\":\"B\",\"order\":2,\"prompt_template\":\"two\"},"
                    "{\"phase_id\":\"c\",\"name\":\"C\",\"order\":3,\"prompt_template\":\"three\"}]}");
    char *id = teststack_execute(stack, "crowd", "{}");
    assert_non_null(id);
    reader_t **rs = calloc(CLIENTS, sizeof *rs);
    long long start = teststack_now_ms();
    for (int i = 0; i < CLIENTS; i++)
        rs[i] = reader_open(http_port, sse_path(id), NULL, 0);
    assert_true(readers_wait(rs, CLIENTS, is_connected, 0, 20000));
    long long connected_ms = teststack_now_ms() - start;
    /* Most joined while phase a ran: they get the rest live. */
    json_t *status = NULL;
    http_response_t resp;
    http_get(&resp, "%s/executions/%s/state", teststack_url(stack), id);
    status = json_incref(resp.json);
    http_response_clear(&resp);
    assert_true(readers_wait(rs, CLIENTS, has_ended, 0, 60000));
    char *history = log_history(id);
    int exact = 0;
    for (int i = 0; i < CLIENTS; i++) {
        char frames[8192];
        frame_history(rs[i], 0, frames, sizeof frames);
        if (rs[i]->ended && !strcmp(frames, history))
            exact++;
        else if (exact == i)
            print_error("client %d: ended=%d\n frames:  %s\n history: %s\n", i, rs[i]->ended,
                        frames, history);
    }
    print_message("1000 SSE clients: connected in %lld ms (state then: %s), %d got the exact "
                  "history\n",
                  connected_ms, json_string_value(json_object_get(status, "state")), exact);
    assert_int_equal(exact, CLIENTS);
    json_decref(status);
    for (int i = 0; i < CLIENTS; i++)
        reader_close(&rs[i]);
    free(rs);
    free(history);
    free(id);
}

/* The activity stream carries every execution's events, terminal frames included,
 * and stays open. */
static void test_activity_stream(void **state)
{
    (void)state;
    create_workflow("{\"id\":\"busy\",\"name\":\"Busy\",\"phases\":["
                    "{\"phase_id\":\"a\",\"name\":\"A\",\"order\":1,\"prompt_template\":\"x\"}]}");
    reader_t *r = reader_open(http_port, "/sse/activity", NULL, 0);
    assert_true(readers_wait(&r, 1, has_frames, 1, 10000));
    assert_string_equal(frame_str(&r->frames[0], "type"), "connected");
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
    assert_true(readers_wait(&r, 1, has_frames, want, 10000));
    int terminals = 0;
    long long previous = r->frames[0].id;
    for (size_t i = 1; i < r->count; i++) {
        assert_true(r->frames[i].id > previous); /* in seq order */
        previous = r->frames[i].id;
        terminals += !strcmp(frame_str(&r->frames[i], "type"), "terminal");
    }
    assert_int_equal(terminals, 2);
    assert_false(r->closed);
    reader_close(&r);
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
