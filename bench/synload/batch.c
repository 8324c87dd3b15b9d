#include "bench/synload/batch.h"
#include "bench/synload/hclient.h"

#include <errno.h>
#include <stdbool.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"

int batch_json_string(const char *body, const char *key, char *buf, size_t bufsize)
{
    char pattern[64];
    snprintf(pattern, sizeof pattern, "\"%s\":\"", key);
    const char *p = strstr(body, pattern);
    if (!p)
        return -1;
    p += strlen(pattern);
    const char *end = strchr(p, '"');
    if (!end || (size_t)(end - p) >= bufsize)
        return -1;
    memcpy(buf, p, (size_t)(end - p));
    buf[end - p] = '\0';
    return 0;
}

void batch_clear(batch_t *batch)
{
    free(batch->ids);
    free(batch->tasks);
    free(batch->submit_us);
    free(batch->accepted_us);
    free(batch->seen_us);
    free(batch->final_status);
    memset(batch, 0, sizeof *batch);
}

int batch_alloc(batch_t *b, int n)
{
    memset(b, 0, sizeof *b);
    b->n = n;
    b->ids = calloc((size_t)n, sizeof *b->ids);
    b->tasks = calloc((size_t)n, sizeof *b->tasks);
    b->submit_us = calloc((size_t)n, sizeof *b->submit_us);
    b->accepted_us = calloc((size_t)n, sizeof *b->accepted_us);
    b->seen_us = calloc((size_t)n, sizeof *b->seen_us);
    b->final_status = calloc((size_t)n, 1);
    return b->ids && b->tasks && b->submit_us && b->accepted_us && b->seen_us && b->final_status
               ? 0
               : -1;
}

typedef struct {
    hclient_t **submit;   /* inflight connections */
    int *submit_index;    /* execution each connection is submitting */
    hclient_t *poller;
    int poll_index;
    int *order;           /* execution indices in the order they were accepted */
    int accepted, seen, next_submit;
    int accepted_at_poll;  /* accepted when the active-list poll was sent */
    int64_t next_poll_ms;
} run_state_t;

static int on_submitted(const batch_options_t *opts, batch_t *b, run_state_t *st, hclient_t *hc,
                        int i, char *err, size_t errlen)
{
    size_t len;
    const char *body = hclient_body(hc, &len);
    if (hclient_status(hc) != 200 ||
        batch_json_string(body, "execution_id", b->ids[i], sizeof b->ids[i]) != 0) {
        snprintf(err, errlen, "POST /workflows/%s/execute (task %s) answered %d: %.300s",
                 opts->workflow_id, b->tasks[i], hclient_status(hc), body);
        return -1;
    }
    b->accepted_us[i] = syn_now_us();
    b->last_accepted_us = b->accepted_us[i];
    st->order[st->accepted++] = i;
    return 0;
}

/* An empty active list means every execution accepted before the poll was
 * sent has finished. */
static int on_active_polled(const batch_options_t *opts, batch_t *b, run_state_t *st, char *err,
                            size_t errlen)
{
    const char *body = hclient_body(st->poller, NULL);
    if (hclient_status(st->poller) != 200 || body[0] != '[') {
        snprintf(err, errlen, "GET /workflows/executions/active answered %d: %.300s",
                 hclient_status(st->poller), body);
        return -1;
    }
    if (strcmp(body, "[]") != 0) {
        st->next_poll_ms = syn_mono_ms() + opts->poll_ms;
        return 0;
    }
    int64_t now = syn_now_us();
    for (; st->seen < st->accepted_at_poll; st->seen++) {
        int i = st->order[st->seen];
        b->final_status[i] = '?';
        b->seen_us[i] = now;
    }
    b->last_seen_us = now;
    st->next_poll_ms = syn_mono_ms() + opts->poll_ms;
    return 0;
}

static int on_polled(const batch_options_t *opts, batch_t *b, run_state_t *st, char *err,
                     size_t errlen)
{
    if (opts->track_active)
        return on_active_polled(opts, b, st, err, errlen);
    int i = st->poll_index;
    const char *body = hclient_body(st->poller, NULL);
    char status[32];
    if (hclient_status(st->poller) != 200 ||
        batch_json_string(body, "status", status, sizeof status) != 0) {
        snprintf(err, errlen, "GET status of %s answered %d: %.300s", b->ids[i],
                 hclient_status(st->poller), body);
        return -1;
    }
    char code = !strcmp(status, "completed") ? 'c'
                : !strcmp(status, "failed")  ? 'f'
                : !strcmp(status, "cancelled") ? 'x'
                                               : 0;
    if (code) {
        b->final_status[i] = code;
        b->seen_us[i] = syn_now_us();
        b->last_seen_us = b->seen_us[i];
        st->seen++;
        st->next_poll_ms = 0;
    } else {
        st->next_poll_ms = syn_mono_ms() + opts->poll_ms;
    }
    return 0;
}

int batch_run(const batch_options_t *opts, batch_t *b, char *err, size_t errlen)
{
    char host[64];
    int port;
    if (hclient_parse_url(opts->url, host, sizeof host, &port) != 0) {
        snprintf(err, errlen, "bad gateway URL %s", opts->url);
        return -1;
    }
    int n = opts->executions, window = opts->inflight < 1 ? 1 : opts->inflight;
    if (window > n)
        window = n > 0 ? n : 1;
    if (batch_alloc(b, n) != 0) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (int i = 0; i < n; i++)
        snprintf(b->tasks[i], sizeof b->tasks[i], "%s-%d", opts->task_prefix, i);
    run_state_t st = {0};
    st.submit = calloc((size_t)window, sizeof *st.submit);
    st.submit_index = calloc((size_t)window, sizeof *st.submit_index);
    st.order = calloc((size_t)(n > 0 ? n : 1), sizeof *st.order);
    struct pollfd *fds = calloc((size_t)window + 1, sizeof *fds);
    hclient_t **fd_owner = calloc((size_t)window + 1, sizeof *fd_owner);
    int rc = -1;
    if (!st.submit || !st.submit_index || !st.order || !fds || !fd_owner) {
        snprintf(err, errlen, "out of memory");
        goto done;
    }
    for (int c = 0; c < window; c++)
        if (!(st.submit[c] = hclient_new(host, port))) {
            snprintf(err, errlen, "out of memory");
            goto done;
        }
    if (!(st.poller = hclient_new(host, port))) {
        snprintf(err, errlen, "out of memory");
        goto done;
    }

    int64_t deadline = syn_mono_ms() + (int64_t)opts->timeout_s * 1000;
    int64_t next_progress = syn_mono_ms() + 1000;
    char path[256], body[160];
    while (st.seen < n) {
        if (opts->stop && *opts->stop) {
            snprintf(err, errlen, "interrupted");
            goto done;
        }
        int64_t now = syn_mono_ms();
        if (now > deadline) {
            snprintf(err, errlen, "timed out after %d s: %d submitted, %d accepted, %d finished",
                     opts->timeout_s, st.next_submit, st.accepted, st.seen);
            goto done;
        }
        if (opts->label && now >= next_progress) {
            fprintf(stderr, "  %s: %d/%d accepted, %d finished\n", opts->label, st.accepted, n,
                    st.seen);
            next_progress = now + 1000;
        }
        for (int c = 0; c < window && st.next_submit < n; c++) {
            if (hclient_busy(st.submit[c]))
                continue;
            int i = st.next_submit++;
            snprintf(path, sizeof path, "/workflows/%s/execute", opts->workflow_id);
            snprintf(body, sizeof body, "{\"task\":\"%s\"}", b->tasks[i]);
            b->submit_us[i] = syn_now_us();
            if (i == 0)
                b->first_submit_us = b->submit_us[i];
            if (hclient_start(st.submit[c], "POST", path, body) != 0) {
                snprintf(err, errlen, "submit: %s", hclient_error(st.submit[c]));
                goto done;
            }
            st.submit_index[c] = i;
        }
        if (!hclient_busy(st.poller) && st.seen < st.accepted && now >= st.next_poll_ms) {
            if (opts->track_active) {
                st.accepted_at_poll = st.accepted;
                snprintf(path, sizeof path, "/workflows/executions/active?limit=1");
            } else {
                st.poll_index = st.order[st.seen];
                snprintf(path, sizeof path, "/workflows/%s/executions/%s", opts->workflow_id,
                         b->ids[st.poll_index]);
            }
            if (hclient_start(st.poller, "GET", path, NULL) != 0) {
                snprintf(err, errlen, "poll: %s", hclient_error(st.poller));
                goto done;
            }
            b->polls++;
        }
        int nfds = 0;
        for (int c = 0; c < window; c++)
            if (hclient_busy(st.submit[c])) {
                fds[nfds] = (struct pollfd){hclient_fd(st.submit[c]), hclient_events(st.submit[c]), 0};
                fd_owner[nfds++] = st.submit[c];
            }
        if (hclient_busy(st.poller)) {
            fds[nfds] = (struct pollfd){hclient_fd(st.poller), hclient_events(st.poller), 0};
            fd_owner[nfds++] = st.poller;
        }
        int timeout = 100;
        if (!hclient_busy(st.poller) && st.seen < st.accepted) {
            int64_t wait = st.next_poll_ms - syn_mono_ms();
            timeout = wait < 0 ? 0 : wait < 100 ? (int)wait : 100;
        }
        if (poll(fds, (nfds_t)nfds, timeout) < 0 && errno != EINTR) {
            snprintf(err, errlen, "poll: %s", strerror(errno));
            goto done;
        }
        for (int k = 0; k < nfds; k++) {
            if (!fds[k].revents)
                continue;
            hclient_t *hc = fd_owner[k];
            int r = hclient_step(hc);
            if (r < 0) {
                snprintf(err, errlen, "HTTP: %s", hclient_error(hc));
                goto done;
            }
            if (r == 0)
                continue;
            if (hc == st.poller) {
                if (on_polled(opts, b, &st, err, errlen) != 0)
                    goto done;
                continue;
            }
            for (int c = 0; c < window; c++)
                if (st.submit[c] == hc && on_submitted(opts, b, &st, hc, st.submit_index[c], err,
                                                       errlen) != 0)
                    goto done;
        }
    }
    rc = 0;
done:
    if (st.submit)
        for (int c = 0; c < window; c++)
            hclient_destroy(&st.submit[c]);
    hclient_destroy(&st.poller);
    free(st.submit);
    free(st.submit_index);
    free(st.order);
    free(fds);
    free(fd_owner);
    return rc;
}
