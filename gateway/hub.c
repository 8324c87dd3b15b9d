#include "gateway/hub.h"
#include "common/log.h"

#include <czmq.h>
#include <stdlib.h>
#include <string.h>

typedef enum { LIST_ACTIVITY, LIST_PREFIXED, LIST_EXECUTION } list_kind_t;

/* One registered client: in one list (activity, prefixed, or its execution's) and in
 * the list of all clients. */
typedef struct entry_t {
    gateway_sse_client_t *client;
    list_kind_t kind;
    char *key; /* execution id for LIST_EXECUTION */
    struct entry_t *prev, *next;
    struct entry_t *all_prev, *all_next;
} entry_t;

struct gateway_hub_t {
    gateway_hub_wake_fn wake;
    void *wake_cls;
    zhashx_t *by_execution; /* key → entry_t * (head of its list) */
    entry_t *activity;
    entry_t *prefixed; /* execution streams whose id the broker has not resolved yet */
    entry_t *all;
    gateway_hub_stats_t stats;
    bool known;    /* a seq was seen: last is meaningful */
    uint64_t last; /* last seq dispatched */
    bool filling;
    bool holds_dropped;
    size_t hold_limit;
    size_t hold_bytes; /* 0: no bound */
    gateway_sse_frame_t **holds; /* live frames waiting for the fill, in seq order */
    size_t hold_count;
};

gateway_hub_t *gateway_hub_new(size_t hold_limit, size_t hold_bytes, gateway_hub_wake_fn wake,
                               void *cls)
{
    gateway_hub_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->wake = wake;
    self->wake_cls = cls;
    self->hold_limit = hold_limit ? hold_limit : 1;
    self->hold_bytes = hold_bytes;
    self->holds = calloc(self->hold_limit, sizeof *self->holds);
    self->by_execution = zhashx_new();
    if (!self->holds || !self->by_execution) {
        gateway_hub_destroy(&self);
        return NULL;
    }
    return self;
}

static void drop_holds(gateway_hub_t *self)
{
    for (size_t i = 0; i < self->hold_count; i++)
        gateway_sse_frame_unref(&self->holds[i]);
    self->hold_count = 0;
    self->stats.held_bytes = 0;
}

void gateway_hub_destroy(gateway_hub_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    gateway_hub_t *self = *self_p;
    while (self->all)
        gateway_hub_remove(self, self->all->client);
    if (self->holds)
        drop_holds(self);
    free(self->holds);
    zhashx_destroy(&self->by_execution);
    free(self);
    *self_p = NULL;
}

static entry_t **plain_list(gateway_hub_t *self, list_kind_t kind)
{
    return kind == LIST_ACTIVITY ? &self->activity : &self->prefixed;
}

/* Links entry at the front of its list. */
static int link_entry(gateway_hub_t *self, entry_t *entry)
{
    if (entry->kind != LIST_EXECUTION) {
        entry_t **head = plain_list(self, entry->kind);
        entry->next = *head;
        if (*head)
            (*head)->prev = entry;
        *head = entry;
        return 0;
    }
    entry_t *head = zhashx_lookup(self->by_execution, entry->key);
    entry->next = head;
    if (head)
        head->prev = entry;
    if (head)
        zhashx_update(self->by_execution, entry->key, entry);
    else if (zhashx_insert(self->by_execution, entry->key, entry) != 0)
        return -1;
    return 0;
}

static void unlink_entry(gateway_hub_t *self, entry_t *entry)
{
    if (entry->next)
        entry->next->prev = entry->prev;
    if (entry->prev) {
        entry->prev->next = entry->next;
    } else if (entry->kind != LIST_EXECUTION) {
        *plain_list(self, entry->kind) = entry->next;
    } else if (entry->next) {
        zhashx_update(self->by_execution, entry->key, entry->next);
    } else {
        zhashx_delete(self->by_execution, entry->key);
    }
    entry->prev = entry->next = NULL;
}

int gateway_hub_add(gateway_hub_t *self, gateway_sse_client_t *client)
{
    entry_t *entry = calloc(1, sizeof *entry);
    if (!entry)
        return -1;
    entry->client = client;
    const char *key = gateway_sse_client_execution_id(client);
    entry->kind = !key                                  ? LIST_ACTIVITY
                  : gateway_sse_client_resolved(client) ? LIST_EXECUTION
                                                        : LIST_PREFIXED;
    if ((entry->kind == LIST_EXECUTION && !(entry->key = strdup(key))) ||
        link_entry(self, entry) != 0) {
        free(entry->key);
        free(entry);
        return -1;
    }
    entry->all_next = self->all;
    if (self->all)
        self->all->all_prev = entry;
    self->all = entry;
    gateway_sse_client_set_slot(client, entry);
    self->stats.clients++;
    return 0;
}

void gateway_hub_remove(gateway_hub_t *self, gateway_sse_client_t *client)
{
    entry_t *entry = gateway_sse_client_slot(client);
    if (!entry)
        return;
    unlink_entry(self, entry);
    if (entry->all_next)
        entry->all_next->all_prev = entry->all_prev;
    if (entry->all_prev)
        entry->all_prev->all_next = entry->all_next;
    else
        self->all = entry->all_next;
    gateway_sse_client_set_slot(client, NULL);
    free(entry->key);
    free(entry);
    self->stats.clients--;
}

int gateway_hub_resolve(gateway_hub_t *self, gateway_sse_client_t *client,
                        const char *execution_id)
{
    entry_t *entry = gateway_sse_client_slot(client);
    if (!entry || entry->kind != LIST_PREFIXED)
        return gateway_sse_client_resolve(client, execution_id);
    char *key = strdup(execution_id);
    if (!key || gateway_sse_client_resolve(client, execution_id) != 0) {
        free(key);
        return -1;
    }
    unlink_entry(self, entry);
    entry->kind = LIST_EXECUTION;
    entry->key = key;
    if (link_entry(self, entry) == 0)
        return 0;
    /* Out of memory: it still sees its events from the prefixed list. */
    free(entry->key);
    entry->key = NULL;
    entry->kind = LIST_PREFIXED;
    link_entry(self, entry);
    return 0;
}

bool gateway_hub_last_seq(const gateway_hub_t *self, uint64_t *seq)
{
    *seq = self->known ? self->last : 0;
    return self->known;
}

bool gateway_hub_filling(const gateway_hub_t *self)
{
    return self->filling;
}

static void offer(gateway_hub_t *self, entry_t *entry, gateway_sse_frame_t *frame)
{
    for (; entry; entry = entry->next) {
        gateway_sse_offer_t result = gateway_sse_client_offer(entry->client, frame);
        if (result == GATEWAY_SSE_OVERFLOW)
            self->stats.overflows++;
        if ((result == GATEWAY_SSE_QUEUED || result == GATEWAY_SSE_OVERFLOW) && self->wake)
            self->wake(entry->client, self->wake_cls);
    }
}

/* Hands the next event (seq above last) to its clients. */
static void dispatch(gateway_hub_t *self, gateway_sse_frame_t *frame)
{
    self->known = true;
    self->last = gateway_sse_frame_seq(frame);
    self->stats.dispatched++;
    const char *execution_id = gateway_sse_frame_execution_id(frame);
    if (execution_id) {
        offer(self, zhashx_lookup(self->by_execution, execution_id), frame);
        offer(self, self->prefixed, frame);
    }
    offer(self, self->activity, frame);
}

/* Events' data may be large (output, tool calls): the holds are bounded in bytes as
 * well as in number. The text is what a held frame keeps once it is made. */
static void hold(gateway_hub_t *self, gateway_sse_frame_t *frame)
{
    size_t len = gateway_sse_frame_len(frame);
    if (self->hold_count == self->hold_limit ||
        (self->hold_bytes && self->stats.held_bytes + len > self->hold_bytes)) {
        drop_holds(self);
        self->holds_dropped = true;
        return;
    }
    self->holds[self->hold_count++] = gateway_sse_frame_ref(frame);
    self->stats.held_bytes += len;
}

/* Dispatches the held frames that now follow last; drops those already covered. */
static void release_holds(gateway_hub_t *self)
{
    size_t i = 0;
    for (; i < self->hold_count; i++) {
        uint64_t seq = gateway_sse_frame_seq(self->holds[i]);
        if (seq > self->last + 1)
            break;
        if (seq == self->last + 1)
            dispatch(self, self->holds[i]);
        self->stats.held_bytes -= gateway_sse_frame_len(self->holds[i]);
        gateway_sse_frame_unref(&self->holds[i]);
    }
    memmove(self->holds, self->holds + i, (self->hold_count - i) * sizeof *self->holds);
    self->hold_count -= i;
}

bool gateway_hub_live(gateway_hub_t *self, gateway_sse_frame_t *frame, uint64_t *fill_after)
{
    uint64_t seq = gateway_sse_frame_seq(frame);
    if (!self->known) {
        self->known = true;
        self->last = seq - 1;
    }
    if (seq <= self->last) {
        self->stats.duplicates++;
        return false;
    }
    if (self->filling) {
        if (self->hold_count == 0 ||
            seq > gateway_sse_frame_seq(self->holds[self->hold_count - 1]))
            hold(self, frame);
        return false;
    }
    if (seq == self->last + 1) {
        dispatch(self, frame);
        return false;
    }
    self->stats.gaps++;
    if (self->stats.clients == 0) {
        /* Nobody to tell: nothing to fetch. */
        dispatch(self, frame);
        return false;
    }
    syn_info("gateway", "event gap after seq=%llu up to seq=%llu: replaying it",
             (unsigned long long)self->last, (unsigned long long)seq);
    self->filling = true;
    self->holds_dropped = false;
    hold(self, frame);
    *fill_after = self->last;
    return true;
}

bool gateway_hub_fill(gateway_hub_t *self, const json_t *events, bool more,
                      uint64_t *fill_after)
{
    if (!self->filling)
        return false;
    bool progress = false;
    size_t i;
    json_t *event;
    json_array_foreach(events, i, event) {
        char err[128];
        gateway_sse_frame_t *frame = gateway_sse_frame_event(event, err, sizeof err);
        if (!frame) {
            syn_warn("gateway", "bad event in replay page: %s", err);
            continue;
        }
        if (gateway_sse_frame_seq(frame) > self->last) {
            dispatch(self, frame);
            self->stats.filled++;
            progress = true;
        }
        gateway_sse_frame_unref(&frame);
    }
    release_holds(self);
    if (self->hold_count > 0 && !progress) {
        /* The log does not have what lies before the held events: go on without. */
        syn_warn("gateway", "events after seq=%llu are not in the broker's log: skipped to "
                 "seq=%llu", (unsigned long long)self->last,
                 (unsigned long long)gateway_sse_frame_seq(self->holds[0]));
        self->last = gateway_sse_frame_seq(self->holds[0]) - 1;
        release_holds(self);
    }
    if (self->hold_count > 0 || (self->holds_dropped && more && progress)) {
        *fill_after = self->last;
        return true;
    }
    self->filling = false;
    self->holds_dropped = false;
    return false;
}

void gateway_hub_fill_failed(gateway_hub_t *self)
{
    drop_holds(self);
    self->filling = false;
    self->holds_dropped = false;
    self->known = false;
    for (entry_t *entry = self->all; entry; entry = entry->all_next) {
        gateway_sse_client_fail(entry->client);
        if (self->wake)
            self->wake(entry->client, self->wake_cls);
    }
}

void gateway_hub_foreach(gateway_hub_t *self, void (*fn)(gateway_sse_client_t *, void *),
                         void *cls)
{
    for (entry_t *entry = self->all; entry; entry = entry->all_next)
        fn(entry->client, cls);
}

void gateway_hub_stats(const gateway_hub_t *self, gateway_hub_stats_t *stats)
{
    *stats = self->stats;
}
