/* store_events: the event log — events wait for the commit and go in as
 * multi-row inserts, and are read back in seq order for replay. It stands alone
 * because it is written on every change and read by every reconnecting client,
 * and decides how both stay cheap. */
#include "broker/store_internal.h"

#include "common/buffer.h"
#include "common/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The insert of 2^shift events: "VALUES (...), (...)" with six parameters a row. */
static store_q_t *event_batch_stmt(broker_store_t *self, unsigned shift)
{
    store_q_t *s = &self->event_batch[shift];
    if (s->lite || s->pg)
        return s;
    static const char head[] =
        "INSERT INTO events(seq, time, execution_id, type, data, exec_num) VALUES ";
    enum { ROW_MAX = 128 };
    char sql[sizeof head + EVENT_BATCH_MAX * ROW_MAX];
    size_t len = snprintf(sql, sizeof sql, "%s", head);
    for (size_t i = 0; i < (1u << shift) && len < sizeof sql; i++) {
        int b = (int)(6 * i);
        len += snprintf(sql + len, sizeof sql - len,
                        "%s(?%d, ?%d, ?%d, ?%d, ?%d,"
                        " coalesce(?%d, (SELECT num FROM executions WHERE id = ?%d)))",
                        i ? ", " : "", b + 1, b + 2, b + 3, b + 4, b + 5, b + 6, b + 3);
    }
    if (len >= sizeof sql) { /* cannot happen: ROW_MAX is above a row's length */
        syn_error("broker", "the insert of %u events does not fit its buffer", 1u << shift);
        return NULL;
    }
    if (store_prepare(self, s, sql, -1) < 0) {
        store_log_error(self, "prepare event insert");
        return NULL;
    }
    return s;
}

static void bind_pending_text(store_q_t *s, int index, const pending_events_t *events,
                              size_t offset)
{
    store_bind_text(s, index, offset == NO_TEXT ? NULL : events->text + offset);
}

/* Inserts the 2^shift waiting events from rows[first]. */
static int insert_events(broker_store_t *self, size_t first, unsigned shift)
{
    const pending_events_t *events = &self->events;
    store_q_t *s = event_batch_stmt(self, shift);
    if (!s)
        return -1;
    for (size_t i = 0; i < (1u << shift); i++) {
        const pending_event_t *row = &events->rows[first + i];
        int b = (int)(6 * i);
        store_bind_int(s, b + 1, row->seq);
        store_bind_int(s, b + 2, row->time);
        bind_pending_text(s, b + 3, events, row->execution_id);
        bind_pending_text(s, b + 4, events, row->type);
        bind_pending_text(s, b + 5, events, row->data);
        if (row->exec_num > 0)
            store_bind_int(s, b + 6, row->exec_num);
        else
            store_bind_null(s, b + 6);
    }
    return store_run(self, s, "insert events") == STORE_DONE ? 0 : -1;
}

/* Writes the waiting events, largest batches first (whatever the outcome, none
 * wait afterwards). */
int store_flush_events(broker_store_t *self)
{
    pending_events_t *events = &self->events;
    size_t n = events->count, first = 0;
    int rc = n > 0 && (self->failed || !self->in_transaction) ? -1 : 0;
    for (unsigned shift = EVENT_BATCH_SHIFT + 1; rc == 0 && shift-- > 0;)
        if (n - first >= (1u << shift)) {
            rc = insert_events(self, first, shift);
            first += 1u << shift;
        }
    events->count = 0;
    events->len = 0;
    if (rc < 0)
        self->failed = true; /* a seq taken twice is a bug, not a retry */
    return rc;
}

/* Copies text (NULL allowed) into the pending buffer: its offset, or NO_TEXT. */
static int keep_text(pending_events_t *events, const char *text, size_t *offset)
{
    *offset = NO_TEXT;
    if (!text)
        return 0;
    size_t len = strlen(text) + 1;
    if (!syn_buffer_reserve(&events->text, &events->cap, events->len + len, 4096))
        return -1;
    memcpy(events->text + events->len, text, len);
    *offset = events->len;
    events->len += len;
    return 0;
}

int broker_store_event_insert(broker_store_t *self, int64_t seq, int64_t time,
                              const char *execution_id, int64_t exec_num, const char *type,
                              const char *data)
{
    if (store_begin_write(self) < 0)
        return -1;
    if (self->events.count == EVENT_BATCH_MAX && store_flush_events(self) < 0)
        return -1;
    pending_events_t *events = &self->events;
    pending_event_t *row = &events->rows[events->count];
    row->seq = seq;
    row->time = time;
    row->exec_num = exec_num;
    if (keep_text(events, execution_id, &row->execution_id) < 0 ||
        keep_text(events, type, &row->type) < 0 || keep_text(events, data, &row->data) < 0) {
        syn_error("broker", "out of memory keeping event seq=%lld", (long long)seq);
        self->failed = true;
        return -1;
    }
    events->count++;
    return 0;
}

int64_t broker_store_last_event_seq(broker_store_t *self)
{
    if (self->events.count > 0)
        return self->events.rows[self->events.count - 1].seq;
    store_q_t *s = store_stmt(self, SQL_EVENT_LAST);
    if (!s)
        return -1;
    return store_step_int(self, s, "last event");
}

int broker_store_events_after(broker_store_t *self, const char *execution_id,
                              int64_t after_seq, int64_t limit, size_t max_bytes,
                              json_t **events_out, bool *more)
{
    *more = false;
    if (store_flush_events(self) < 0)
        return -1;
    store_q_t *s = store_stmt(self, execution_id ? SQL_EVENTS_EXECUTION : SQL_EVENTS_ALL);
    if (!s)
        return -1;
    store_bind_int(s, 1, after_seq);
    store_bind_int(s, 2, limit + 1);
    if (execution_id)
        store_bind_text(s, 3, execution_id);
    json_t *events = json_array();
    size_t bytes = 0;
    int rc = STORE_ERROR;
    while (events && (rc = store_step(s)) == STORE_ROW) {
        size_t size = (size_t)store_col_bytes(s, 4);
        if ((int64_t)json_array_size(events) == limit ||
            (json_array_size(events) > 0 && bytes + size > max_bytes)) {
            *more = true;
            break;
        }
        bytes += size;
        json_t *data = store_column_json(s, 4);
        json_array_append_new(
            events, json_pack("{s:I, s:I, s:o, s:o, s:o}", "seq",
                              (json_int_t)store_col_int(s, 0), "time",
                              (json_int_t)store_col_int(s, 1), "execution_id",
                              store_column_string_or_null(s, 2), "type",
                              store_column_string_or_null(s, 3),
                              "data", json_is_object(data) ? data : json_object()));
        if (!json_is_object(data))
            json_decref(data);
    }
    store_reset(s);
    if (!events || (rc != STORE_DONE && rc != STORE_ROW)) {
        store_log_error(self, "replay events");
        json_decref(events);
        return -1;
    }
    *events_out = events;
    return 0;
}
