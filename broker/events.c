/* events: seq allocation, the log row and the PUB message for one event. */
#include "broker/events.h"
#include "broker/counters.h"

#include "common/clock.h"
#include "common/json_text.h"
#include "common/log.h"
#include "proto/msg.h"

#include <stdlib.h>
#include <string.h>

struct broker_events_t {
    broker_store_t *store;
    broker_outbox_t *outbox;
    int64_t last_seq;
    broker_counters_t *counters; /* borrowed, may be NULL */
};

void broker_events_count_into(broker_events_t *self, broker_counters_t *counters)
{
    self->counters = counters;
}

broker_events_t *broker_events_new(broker_store_t *store, broker_outbox_t *outbox)
{
    broker_events_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->store = store;
    self->outbox = outbox;
    if (broker_events_resync(self) < 0) {
        free(self);
        return NULL;
    }
    return self;
}

void broker_events_destroy(broker_events_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    free(*self_p);
    *self_p = NULL;
}

int broker_events_resync(broker_events_t *self)
{
    int64_t last = broker_store_last_event_seq(self->store);
    if (last < 0)
        return -1;
    self->last_seq = last;
    return 0;
}

/* The PUB message is packed straight from the event's parts: a field object
 * built only to be walked by the encoder cost more than the rest of an event. */
int64_t broker_events_emit_with_status(broker_events_t *self, const char *execution_id,
                                       int64_t exec_num, const char *type, json_t *data,
                                       const broker_status_view_t *status)
{
    if (!data)
        data = json_object();
    int64_t seq = self->last_seq + 1;
    int64_t now = syn_now_us();
    char *text = syn_json_text(data);
    if (!text ||
        broker_store_event_insert(self->store, seq, now, execution_id, exec_num, type, text) < 0) {
        syn_error("broker", "cannot record event %s execution=%s", type,
                  execution_id ? execution_id : "-");
        free(text);
        json_decref(data);
        return -1;
    }
    free(text);
    self->last_seq = seq;
    broker_counters_event(self->counters, execution_id, type, data, status, now);
    syn_pack_t *pack = syn_pack_new(SYN_MSG_EVENT, status ? 6 : 5);
    syn_msg_t *msg = NULL;
    char err[256] = "out of memory";
    if (pack) {
        syn_pack_int(pack, "seq", seq);
        syn_pack_int(pack, "time", now);
        syn_pack_str(pack, "execution_id", execution_id);
        syn_pack_str(pack, "type", type);
        syn_pack_json(pack, "data", data);
        if (status)
            broker_status_pack(pack, "status", status);
        msg = syn_pack_finish(&pack, err, sizeof err);
    }
    json_decref(data);
    const char *topic = execution_id ? execution_id : "-";
    if (!msg || broker_outbox_push(self->outbox, BROKER_TO_EVENTS, topic, strlen(topic), msg) < 0)
        syn_warn("broker", "cannot queue event seq=%lld for publishing: %s", (long long)seq,
                 msg ? "out of memory" : err);
    return seq;
}

int64_t broker_events_last_seq(const broker_events_t *self)
{
    return self->last_seq;
}
