#include "gateway/sse.h"
#include "gateway/original_compat.h"
#include "common/clock.h"
#include "common/json_text.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KEEPALIVE_TEXT ": keepalive\n\n"

/* A frame's texts: syn's, and the original's for the clients that came in through its
 * paths (gateway_sse_client_set_original). */
#define SYN 0
#define ORIGINAL 1

/* An event frame keeps its event's type and data (references, never changed) until its
 * texts are first needed: the gateway sees every event, but most concern no stream, and
 * formatting one costs more than everything else the gateway does with it. Each text
 * is made once, by the first client that reads it, so the original's is never made
 * while no client of the original's is there; and the data (the costly part: outputs,
 * tool calls) is formatted only for the first text, the second copies its bytes. */
struct gateway_sse_frame_t {
    unsigned refs;
    uint64_t seq;
    bool terminal;
    bool has_id;
    char *execution_id;
    int64_t time_us;
    json_t *type;        /* NULL: not an event's frame */
    json_t *data;        /* until the first text is made */
    char *text[2];       /* [SYN], [ORIGINAL]: NULL until made */
    size_t len[2];
    size_t data_off, data_len; /* the data's text inside the first text made */
};

static gateway_sse_frame_t *frame_alloc(uint64_t seq, bool terminal, const char *execution_id)
{
    gateway_sse_frame_t *frame = calloc(1, sizeof *frame);
    if (!frame)
        return NULL;
    frame->refs = 1;
    frame->seq = seq;
    frame->terminal = terminal;
    frame->has_id = true;
    frame->execution_id = execution_id ? strdup(execution_id) : NULL;
    if (execution_id && !frame->execution_id) {
        free(frame);
        return NULL;
    }
    return frame;
}

/* "id: <seq>\ndata: <json>\n\n" (no id line without has_id) as the frame's text v. */
static int frame_set_text(gateway_sse_frame_t *frame, int v, json_t *payload)
{
    if (!payload)
        return -1;
    char *json = syn_json_text(payload);
    if (!json)
        json = json_dumps(payload, JSON_COMPACT); /* whatever it says, as before */
    if (!json)
        return -1;
    size_t json_len = strlen(json);
    char head[48];
    int head_len = frame->has_id ? snprintf(head, sizeof head, "id: %llu\ndata: ",
                                            (unsigned long long)frame->seq)
                                 : snprintf(head, sizeof head, "data: ");
    char *text = malloc((size_t)head_len + json_len + 3);
    if (text) {
        memcpy(text, head, (size_t)head_len);
        memcpy(text + head_len, json, json_len);
        memcpy(text + (size_t)head_len + json_len, "\n\n", 3);
        frame->text[v] = text;
        frame->len[v] = (size_t)head_len + json_len + 2;
    }
    free(json);
    return text ? 0 : -1;
}

/* s as a JSON string ("..." with its escapes), malloc'd; NULL when out of memory.
 * Names and ids are plain ASCII: those are only put in quotes, the rest goes through
 * jansson. */
static char *quoted(const char *s)
{
    size_t len = strlen(s);
    bool plain = true;
    for (size_t i = 0; plain && i < len; i++)
        plain = s[i] >= 0x20 && s[i] < 0x7f && s[i] != '"' && s[i] != '\\';
    if (plain) {
        char *text = malloc(len + 3);
        if (text) {
            text[0] = '"';
            memcpy(text + 1, s, len);
            memcpy(text + 1 + len, "\"", 2);
        }
        return text;
    }
    json_t *string = json_string(s);
    char *text = string ? json_dumps(string, JSON_ENCODE_ANY | JSON_COMPACT) : NULL;
    json_decref(string);
    return text;
}

/* The JSON text of the event's data with the original's additions (execution_id,
 * phase_name, error_message: gateway/original_compat.h) beside syn's keys. */
static char *data_text(const gateway_sse_frame_t *frame)
{
    json_t *data = gateway_compat_event_data(json_string_value(frame->type),
                                             frame->execution_id, frame->data);
    if (!data)
        return NULL;
    char *text = syn_json_text(data);
    if (!text)
        text = json_dumps(data, JSON_COMPACT); /* whatever it says, as before */
    json_decref(data);
    return text;
}

/* Text v of an event around its data's text: syn's has syn's event_type and the
 * original's name in original_event_type; the original's has its name in event_type
 * (its CLI prints that) and syn's in syn_event_type. *data_off: where data begins. */
static char *event_text(const gateway_sse_frame_t *frame, int v, const char *data,
                        size_t data_len, size_t *data_off, size_t *len)
{
    const char *theirs = gateway_compat_event_type(json_string_value(frame->type));
    char *type_q = quoted(json_string_value(frame->type));
    char *theirs_q = theirs ? quoted(theirs) : NULL;
    char *id_q = frame->execution_id ? quoted(frame->execution_id) : strdup("null");
    char head[96], stamp[SYN_TIME_BUFSIZE], when[SYN_TIME_BUFSIZE + 32];
    snprintf(head, sizeof head, "id: %llu\ndata: {\"type\":\"%s\",\"event_type\":",
             (unsigned long long)frame->seq, frame->terminal ? "terminal" : "event");
    syn_time_format(frame->time_us, stamp);
    snprintf(when, sizeof when, ",\"timestamp\":\"%s\",", stamp);
    char *text = NULL;
    const char *name_q = theirs_q ? theirs_q : type_q; /* the original's name */
    if (type_q && (theirs_q || !theirs) && id_q) {
        /* the pieces in order; the data's place is marked by NULL */
        const char *pieces[] = {head, v == SYN ? type_q : name_q, ",\"execution_id\":", id_q,
                                ",\"data\":", NULL, when,
                                v == SYN ? "" : "\"syn_event_type\":", v == SYN ? "" : type_q,
                                v == SYN ? "" : ",", "\"original_event_type\":", name_q,
                                "}\n\n"};
        size_t n = sizeof pieces / sizeof pieces[0], total = 0;
        for (size_t i = 0; i < n; i++)
            total += pieces[i] ? strlen(pieces[i]) : data_len;
        if ((text = malloc(total + 1))) {
            size_t at = 0;
            for (size_t i = 0; i < n; i++) {
                size_t piece_len = pieces[i] ? strlen(pieces[i]) : data_len;
                if (!pieces[i])
                    *data_off = at;
                memcpy(text + at, pieces[i] ? pieces[i] : data, piece_len);
                at += piece_len;
            }
            text[at] = '\0';
            *len = at;
        }
    }
    free(type_q);
    free(theirs_q);
    free(id_q);
    return text;
}

/* Makes an event frame's text v on first use; 0, or -1 when out of memory (or, for a
 * frame that is not an event's, when it was not made with that text). The data (the
 * costly part: outputs, tool calls) is written once, by the first text made, which
 * keeps its place; the other text copies it from there. */
static int frame_ready(gateway_sse_frame_t *frame, int v)
{
    if (frame->text[v])
        return 0;
    if (!frame->type)
        return -1;
    bool first = !frame->text[!v];
    char *own = NULL;
    const char *data;
    size_t data_len;
    if (first) {
        if (!(own = data_text(frame)))
            return -1;
        data = own;
        data_len = strlen(own);
    } else {
        data = frame->text[!v] + frame->data_off;
        data_len = frame->data_len;
    }
    size_t data_off = 0;
    frame->text[v] = event_text(frame, v, data, data_len, &data_off, &frame->len[v]);
    free(own);
    if (!frame->text[v])
        return -1;
    if (first) {
        frame->data_off = data_off;
        frame->data_len = data_len;
        json_decref(frame->data); /* its text is kept in text[v] */
        frame->data = NULL;
    }
    return 0;
}

bool gateway_sse_is_terminal_type(const char *type)
{
    return strcmp(type, "ExecutionCompleted") == 0 || strcmp(type, "ExecutionFailed") == 0 ||
           strcmp(type, "ExecutionCancelled") == 0;
}

gateway_sse_frame_t *gateway_sse_frame_event(const json_t *event, char *err, size_t errlen)
{
    json_t *seq = json_object_get(event, "seq");
    json_t *time = json_object_get(event, "time");
    json_t *execution_id = json_object_get(event, "execution_id");
    json_t *type = json_object_get(event, "type");
    json_t *data = json_object_get(event, "data");
    const char *problem = NULL;
    if (!json_is_object(event))
        problem = "event is not an object";
    else if (!json_is_integer(seq) || json_integer_value(seq) < 1)
        problem = "seq must be an integer >= 1";
    else if (!json_is_integer(time))
        problem = "time must be an integer";
    else if (execution_id && !json_is_null(execution_id) && !json_is_string(execution_id))
        problem = "execution_id must be a string or null";
    else if (!json_is_string(type) || json_string_length(type) == 0)
        problem = "type must be a non-empty string";
    else if (data && !json_is_object(data))
        problem = "data must be an object";
    if (problem) {
        snprintf(err, errlen, "%s", problem);
        return NULL;
    }
    const char *id = json_is_string(execution_id) ? json_string_value(execution_id) : NULL;
    gateway_sse_frame_t *frame =
        frame_alloc((uint64_t)json_integer_value(seq),
                    gateway_sse_is_terminal_type(json_string_value(type)), id);
    if (frame) {
        frame->time_us = (int64_t)json_integer_value(time);
        frame->type = json_incref(type);
        frame->data = data ? json_incref(data) : json_object();
        if (!frame->data)
            gateway_sse_frame_unref(&frame);
    }
    if (!frame)
        snprintf(err, errlen, "out of memory");
    return frame;
}

/* The first frame of a stream in text v: the original's has event_type "connected"
 * (syn's null) and, for its activity stream, data {"channel":"activity"}, as its API. */
static gateway_sse_frame_t *connected_frame(const char *execution_id, bool has_id,
                                            uint64_t seq, int64_t now_us, int v)
{
    gateway_sse_frame_t *frame = frame_alloc(seq, false, execution_id);
    if (!frame)
        return NULL;
    frame->has_id = has_id;
    char stamp[SYN_TIME_BUFSIZE];
    syn_time_format(now_us, stamp);
    json_t *payload =
        v == SYN ? json_pack("{s:s, s:n, s:s?, s:{}, s:s}", "type", "connected", "event_type",
                             "execution_id", execution_id, "data", "timestamp", stamp)
                 : json_pack("{s:s, s:s, s:s?, s:o, s:s}", "type", "connected", "event_type",
                             "connected", "execution_id", execution_id, "data",
                             execution_id ? json_object()
                                          : json_pack("{s:s}", "channel", "activity"),
                             "timestamp", stamp);
    if (frame_set_text(frame, v, payload) != 0)
        gateway_sse_frame_unref(&frame);
    json_decref(payload);
    return frame;
}

gateway_sse_frame_t *gateway_sse_frame_connected(const char *execution_id, bool has_id,
                                                 uint64_t seq, int64_t now_us)
{
    return connected_frame(execution_id, has_id, seq, now_us, SYN);
}

gateway_sse_frame_t *gateway_sse_frame_keepalive(void)
{
    gateway_sse_frame_t *frame = frame_alloc(0, false, NULL);
    for (int v = SYN; frame && v <= ORIGINAL; v++) {
        if (!(frame->text[v] = strdup(KEEPALIVE_TEXT)))
            gateway_sse_frame_unref(&frame);
        else
            frame->len[v] = strlen(KEEPALIVE_TEXT);
    }
    return frame;
}

gateway_sse_frame_t *gateway_sse_frame_ref(gateway_sse_frame_t *frame)
{
    frame->refs++;
    return frame;
}

void gateway_sse_frame_unref(gateway_sse_frame_t **frame_p)
{
    if (!frame_p || !*frame_p)
        return;
    gateway_sse_frame_t *frame = *frame_p;
    *frame_p = NULL;
    if (--frame->refs > 0)
        return;
    json_decref(frame->type);
    json_decref(frame->data);
    free(frame->execution_id);
    free(frame->text[SYN]);
    free(frame->text[ORIGINAL]);
    free(frame);
}

uint64_t gateway_sse_frame_seq(const gateway_sse_frame_t *frame)
{
    return frame->seq;
}

bool gateway_sse_frame_terminal(const gateway_sse_frame_t *frame)
{
    return frame->terminal;
}

const char *gateway_sse_frame_execution_id(const gateway_sse_frame_t *frame)
{
    return frame->execution_id;
}

const char *gateway_sse_frame_text(gateway_sse_frame_t *frame)
{
    return frame_ready(frame, SYN) == 0 ? frame->text[SYN] : NULL;
}

size_t gateway_sse_frame_len(gateway_sse_frame_t *frame)
{
    return frame_ready(frame, SYN) == 0 ? frame->len[SYN] : 0;
}

const char *gateway_sse_frame_text_original(gateway_sse_frame_t *frame)
{
    return frame_ready(frame, ORIGINAL) == 0 ? frame->text[ORIGINAL] : NULL;
}

/* ---- frame queue: a ring of shared frames, read byte by byte ---- */

typedef struct {
    gateway_sse_frame_t **ring;
    size_t cap, head, count;
    size_t offset; /* bytes of the head frame already read */
    size_t bytes;  /* unread bytes in all */
    int v;         /* the text its frames are read in: SYN or ORIGINAL */
} queue_t;

static int queue_push(queue_t *q, gateway_sse_frame_t *frame)
{
    if (frame_ready(frame, q->v) != 0)
        return -1;
    if (q->count == q->cap) {
        size_t cap = q->cap ? q->cap * 2 : 16;
        gateway_sse_frame_t **ring = malloc(cap * sizeof *ring);
        if (!ring)
            return -1;
        for (size_t i = 0; i < q->count; i++)
            ring[i] = q->ring[(q->head + i) % q->cap];
        free(q->ring);
        q->ring = ring;
        q->cap = cap;
        q->head = 0;
    }
    q->ring[(q->head + q->count) % q->cap] = gateway_sse_frame_ref(frame);
    q->count++;
    q->bytes += frame->len[q->v];
    return 0;
}

static gateway_sse_frame_t *queue_pop(queue_t *q)
{
    if (q->count == 0)
        return NULL;
    gateway_sse_frame_t *frame = q->ring[q->head];
    q->head = (q->head + 1) % q->cap;
    q->count--;
    q->bytes -= frame->len[q->v] - q->offset;
    q->offset = 0;
    return frame; /* the queue's reference passes to the caller */
}

static size_t queue_read(queue_t *q, char *buf, size_t max)
{
    size_t copied = 0;
    while (copied < max && q->count > 0) {
        gateway_sse_frame_t *frame = q->ring[q->head];
        size_t left = frame->len[q->v] - q->offset;
        size_t n = left < max - copied ? left : max - copied;
        memcpy(buf + copied, frame->text[q->v] + q->offset, n);
        copied += n;
        q->offset += n;
        q->bytes -= n;
        if (q->offset == frame->len[q->v]) {
            gateway_sse_frame_t *done = queue_pop(q);
            gateway_sse_frame_unref(&done);
        }
    }
    return copied;
}

static void queue_clear(queue_t *q)
{
    gateway_sse_frame_t *frame;
    while ((frame = queue_pop(q)))
        gateway_sse_frame_unref(&frame);
    free(q->ring);
    *q = (queue_t){.v = q->v};
}

/* ---- client ---- */

struct gateway_sse_client_t {
    char *execution_id; /* NULL: activity */
    bool resolved;      /* execution_id is a full id, not the prefix the client gave */
    gateway_sse_limits_t limits;
    gateway_sse_state_t state;
    uint64_t last_seq; /* highest seq queued (or already known to the client) */
    queue_t queue;
    queue_t holds;       /* live frames offered while replaying */
    bool page_in_flight;
    bool replay_more;    /* the log has more for us: ask for another page */
    bool holds_dropped;  /* holds outgrew their budget: one more round is needed */
    int64_t last_push_ms;
    void *user, *slot;
};

gateway_sse_client_t *gateway_sse_client_new(const char *execution_id, uint64_t after_seq,
                                             bool replay, const gateway_sse_limits_t *limits)
{
    gateway_sse_client_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    if (execution_id && !(self->execution_id = strdup(execution_id))) {
        free(self);
        return NULL;
    }
    self->limits = *limits;
    if (self->limits.low_bytes > self->limits.max_bytes)
        self->limits.low_bytes = self->limits.max_bytes;
    self->state = replay ? GATEWAY_SSE_REPLAYING : GATEWAY_SSE_LIVE;
    self->replay_more = replay;
    self->last_seq = after_seq;
    self->last_push_ms = syn_mono_ms();
    return self;
}

void gateway_sse_client_destroy(gateway_sse_client_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    gateway_sse_client_t *self = *self_p;
    queue_clear(&self->queue);
    queue_clear(&self->holds);
    free(self->execution_id);
    free(self);
    *self_p = NULL;
}

const char *gateway_sse_client_execution_id(const gateway_sse_client_t *self)
{
    return self->execution_id;
}

int gateway_sse_client_resolve(gateway_sse_client_t *self, const char *execution_id)
{
    char *copy = strdup(execution_id);
    if (!copy)
        return -1;
    free(self->execution_id);
    self->execution_id = copy;
    self->resolved = true;
    return 0;
}

bool gateway_sse_client_resolved(const gateway_sse_client_t *self)
{
    return self->resolved;
}

bool gateway_sse_client_matches(const gateway_sse_client_t *self,
                                const gateway_sse_frame_t *frame)
{
    if (!self->execution_id)
        return true;
    if (!frame->execution_id)
        return false;
    if (self->resolved)
        return strcmp(frame->execution_id, self->execution_id) == 0;
    return strncmp(frame->execution_id, self->execution_id, strlen(self->execution_id)) == 0;
}

gateway_sse_state_t gateway_sse_client_state(const gateway_sse_client_t *self)
{
    return self->state;
}

uint64_t gateway_sse_client_last_seq(const gateway_sse_client_t *self)
{
    return self->last_seq;
}

size_t gateway_sse_client_queued(const gateway_sse_client_t *self)
{
    return self->queue.bytes;
}

bool gateway_sse_client_readable(const gateway_sse_client_t *self)
{
    return self->queue.count > 0 || self->state == GATEWAY_SSE_ENDING ||
           self->state == GATEWAY_SSE_FAILED;
}

void gateway_sse_client_set_original(gateway_sse_client_t *self)
{
    assert(self->queue.count == 0 && self->holds.count == 0);
    self->queue.v = self->holds.v = ORIGINAL;
}

bool gateway_sse_client_original(const gateway_sse_client_t *self)
{
    return self->queue.v == ORIGINAL;
}

void gateway_sse_client_set_user(gateway_sse_client_t *self, void *user)
{
    self->user = user;
}

void *gateway_sse_client_user(const gateway_sse_client_t *self)
{
    return self->user;
}

void gateway_sse_client_set_slot(gateway_sse_client_t *self, void *slot)
{
    self->slot = slot;
}

void *gateway_sse_client_slot(const gateway_sse_client_t *self)
{
    return self->slot;
}

void gateway_sse_client_fail(gateway_sse_client_t *self)
{
    self->state = GATEWAY_SSE_FAILED;
    queue_clear(&self->queue);
    queue_clear(&self->holds);
}

void gateway_sse_client_finish(gateway_sse_client_t *self)
{
    if (self->state == GATEWAY_SSE_FAILED)
        return;
    self->state = GATEWAY_SSE_ENDING;
    queue_clear(&self->queue);
    queue_clear(&self->holds);
}

static bool push(gateway_sse_client_t *self, gateway_sse_frame_t *frame)
{
    if (queue_push(&self->queue, frame) != 0) {
        gateway_sse_client_fail(self);
        return false;
    }
    self->last_push_ms = syn_mono_ms();
    return true;
}

/* Queues an event frame above last_seq; an execution stream ends on its terminal. */
static void push_event(gateway_sse_client_t *self, gateway_sse_frame_t *frame)
{
    if (!push(self, frame))
        return;
    self->last_seq = frame->seq;
    if (frame->terminal && self->execution_id)
        self->state = GATEWAY_SSE_ENDING;
}

void gateway_sse_client_connect(gateway_sse_client_t *self, bool has_id, int64_t now_us)
{
    assert(self->queue.count == 0);
    gateway_sse_frame_t *frame =
        connected_frame(self->execution_id, has_id, self->last_seq, now_us, self->queue.v);
    if (!frame) {
        gateway_sse_client_fail(self);
        return;
    }
    push(self, frame);
    gateway_sse_frame_unref(&frame);
}

/* The budget of holds: what the queue may still take once it is below low_bytes. */
static size_t hold_budget(const gateway_sse_client_t *self)
{
    return self->limits.max_bytes - self->limits.low_bytes;
}

/* A replay that has nothing left to fetch goes live once its queue is short, so the
 * released holds fit in the budget. */
static void settle(gateway_sse_client_t *self)
{
    if (self->state != GATEWAY_SSE_REPLAYING || self->page_in_flight || self->replay_more ||
        self->queue.bytes >= self->limits.low_bytes)
        return;
    self->state = GATEWAY_SSE_LIVE;
    gateway_sse_frame_t *frame;
    while ((frame = queue_pop(&self->holds))) {
        if (self->state == GATEWAY_SSE_LIVE && frame->seq > self->last_seq &&
            gateway_sse_client_matches(self, frame))
            push_event(self, frame);
        gateway_sse_frame_unref(&frame);
    }
}

bool gateway_sse_client_rewind(gateway_sse_client_t *self)
{
    if (self->state != GATEWAY_SSE_LIVE)
        return false;
    self->state = GATEWAY_SSE_REPLAYING;
    self->replay_more = true;
    return true;
}

bool gateway_sse_client_next_page(gateway_sse_client_t *self, uint64_t *after_seq)
{
    settle(self);
    if (self->state != GATEWAY_SSE_REPLAYING || self->page_in_flight || !self->replay_more ||
        self->queue.bytes >= self->limits.low_bytes)
        return false;
    self->page_in_flight = true;
    *after_seq = self->last_seq;
    return true;
}

int gateway_sse_client_page(gateway_sse_client_t *self, const json_t *events, bool more,
                            bool terminal)
{
    self->page_in_flight = false;
    if (self->state != GATEWAY_SSE_REPLAYING)
        return 0;
    if (!json_is_array(events)) {
        gateway_sse_client_fail(self);
        return -1;
    }
    size_t i, added = 0;
    json_t *event;
    json_array_foreach(events, i, event) {
        char err[128];
        gateway_sse_frame_t *frame = gateway_sse_frame_event(event, err, sizeof err);
        if (!frame) {
            gateway_sse_client_fail(self);
            return -1;
        }
        if (frame->seq > self->last_seq && gateway_sse_client_matches(self, frame)) {
            push_event(self, frame);
            added++;
        }
        gateway_sse_frame_unref(&frame);
        if (self->state != GATEWAY_SSE_REPLAYING)
            return self->state == GATEWAY_SSE_FAILED ? -1 : 0;
    }
    /* An empty page that claims more would make us ask forever: the log is done. */
    self->replay_more = more && added > 0;
    if (!self->replay_more) {
        if (terminal && self->execution_id) {
            /* Finished, and its terminal frame was sent before (Last-Event-ID past it). */
            self->state = GATEWAY_SSE_ENDING;
            queue_clear(&self->holds);
            return 0;
        }
        if (self->holds_dropped) {
            self->holds_dropped = false;
            self->replay_more = true;
        }
    }
    settle(self);
    return 0;
}

gateway_sse_offer_t gateway_sse_client_offer(gateway_sse_client_t *self,
                                             gateway_sse_frame_t *frame)
{
    if (frame->seq <= self->last_seq || !gateway_sse_client_matches(self, frame))
        return GATEWAY_SSE_IGNORED;
    int v = self->queue.v;
    if ((self->state == GATEWAY_SSE_REPLAYING || self->state == GATEWAY_SSE_LIVE) &&
        frame_ready(frame, v) != 0) {
        /* Out of memory: as when the frame cannot be queued. */
        if (self->state == GATEWAY_SSE_REPLAYING) {
            self->holds_dropped = true;
            return GATEWAY_SSE_IGNORED;
        }
        gateway_sse_client_fail(self);
        return GATEWAY_SSE_OVERFLOW;
    }
    switch (self->state) {
    case GATEWAY_SSE_REPLAYING:
        if (self->holds.bytes + frame->len[v] > hold_budget(self)) {
            /* The log has them all: drop, and read them back in one more round. */
            gateway_sse_frame_t *old;
            while ((old = queue_pop(&self->holds)))
                gateway_sse_frame_unref(&old);
            self->holds_dropped = true;
            return GATEWAY_SSE_IGNORED;
        }
        if (queue_push(&self->holds, frame) != 0) {
            self->holds_dropped = true;
            return GATEWAY_SSE_IGNORED;
        }
        return GATEWAY_SSE_HELD;
    case GATEWAY_SSE_LIVE:
        if (self->queue.bytes + frame->len[v] > self->limits.max_bytes) {
            gateway_sse_client_fail(self);
            return GATEWAY_SSE_OVERFLOW;
        }
        push_event(self, frame);
        return self->state == GATEWAY_SSE_FAILED ? GATEWAY_SSE_OVERFLOW : GATEWAY_SSE_QUEUED;
    case GATEWAY_SSE_ENDING:
    case GATEWAY_SSE_FAILED:
        break;
    }
    return GATEWAY_SSE_IGNORED;
}

bool gateway_sse_client_keepalive(gateway_sse_client_t *self, int64_t now_ms,
                                  int64_t interval_ms)
{
    if (self->state == GATEWAY_SSE_FAILED || self->queue.count > 0 ||
        now_ms - self->last_push_ms < interval_ms)
        return false;
    gateway_sse_frame_t *frame = gateway_sse_frame_keepalive();
    if (!frame) {
        gateway_sse_client_fail(self);
        return true;
    }
    push(self, frame);
    gateway_sse_frame_unref(&frame);
    return true;
}

ssize_t gateway_sse_client_read(gateway_sse_client_t *self, char *buf, size_t max)
{
    if (self->state == GATEWAY_SSE_FAILED)
        return GATEWAY_SSE_ERROR;
    size_t copied = queue_read(&self->queue, buf, max);
    if (copied > 0) {
        settle(self);
        return (ssize_t)copied;
    }
    if (self->state == GATEWAY_SSE_ENDING)
        return GATEWAY_SSE_END;
    return 0;
}
