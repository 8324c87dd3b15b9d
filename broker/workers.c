/* workers: the registry, built for fleets of a thousand workers (issue 24):
 * nothing that runs per message, per dispatch or per tick walks every worker.
 *   - by key: a hash from the identity's hex to the worker (every message
 *     looks its sender up);
 *   - by silence: a list in the order of their last messages, oldest first
 *     (the liveness check reads its head);
 *   - by room: for each count of attempts held, a list of the healthy,
 *     not draining workers holding that many with a slot free, and one of
 *     those holding that many with only a prefetch place left (pick walks the
 *     counts upward and takes the first worker offering the provider).
 * The array stays for what walks every worker anyway (GET /workers, the
 * heartbeats, the gauges). */
#include "broker/workers.h"

#include "common/clock.h"

#include <czmq.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    unsigned char identity[BROKER_IDENTITY_MAX];
    size_t len; /* 0: empty */
} refused_t;

typedef struct {
    json_t *description; /* broker_worker_describe's, with lost_at and lost_reason */
    int64_t lost_at;     /* wall-clock µs since the epoch */
} lost_t;

typedef struct {
    broker_worker_t *head, *tail;
} room_list_t;

typedef struct {
    broker_worker_t *head, *tail;
} time_order_t;

struct broker_workers_t {
    broker_worker_t **items;
    size_t count, cap;
    zhashx_t *by_key;                    /* key → worker (not owned) */
    zhashx_t *by_name;                   /* name → first worker of that name (not owned) */
    time_order_t seen;                   /* oldest last message first */
    time_order_t sent;                   /* oldest last message sent to it first */
    room_list_t *rooms;                  /* [2 * held + (only prefetch room)] */
    size_t room_lists;
    size_t refused_count;                /* entries of refused[] in use */
    lost_t lost[BROKER_WORKERS_LOST_MAX]; /* a ring: the oldest is overwritten */
    size_t lost_next;
    refused_t refused[BROKER_REFUSED_MAX]; /* a ring: the oldest is overwritten */
    size_t refused_next;
};

static void held_clear(broker_held_t *held)
{
    free(held->execution_id);
    free(held->phase_id);
}

static void worker_free(broker_worker_t *worker)
{
    for (size_t i = 0; i < worker->held_count; i++)
        held_clear(&worker->held[i]);
    free(worker->held);
    free(worker->key);
    free(worker->name);
    free(worker->peer_key);
    free(worker->host);
    free(worker->version);
    free(worker->address);
    free(worker->unhealthy);
    json_decref(worker->providers);
    free(worker);
}

broker_workers_t *broker_workers_new(void)
{
    broker_workers_t *self = calloc(1, sizeof *self);
    if (self && (!(self->by_key = zhashx_new()) || !(self->by_name = zhashx_new()))) {
        zhashx_destroy(&self->by_key);
        free(self);
        return NULL;
    }
    return self;
}

void broker_workers_destroy(broker_workers_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    broker_workers_t *self = *self_p;
    for (size_t i = 0; i < self->count; i++)
        worker_free(self->items[i]);
    for (size_t i = 0; i < BROKER_WORKERS_LOST_MAX; i++)
        json_decref(self->lost[i].description);
    free(self->items);
    free(self->rooms);
    zhashx_destroy(&self->by_key);
    zhashx_destroy(&self->by_name);
    free(self);
    *self_p = NULL;
}

/* out: 2 * len + 1 bytes. */
static void hex_into(const unsigned char *data, size_t len, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = digits[data[i] >> 4];
        out[2 * i + 1] = digits[data[i] & 0xf];
    }
    out[2 * len] = '\0';
}

broker_worker_t *broker_workers_lookup(broker_workers_t *self, const void *identity,
                                       size_t identity_len)
{
    if (identity_len > BROKER_IDENTITY_MAX)
        return NULL;
    char key[2 * BROKER_IDENTITY_MAX + 1];
    hex_into(identity, identity_len, key);
    return zhashx_lookup(self->by_key, key);
}

broker_worker_t *broker_workers_lookup_key(broker_workers_t *self, const char *key)
{
    return key ? zhashx_lookup(self->by_key, key) : NULL;
}

/* --- the orders of last messages, received and sent -------------------------- */

/* Both orders are the same list over different fields of the worker: off is
 * where its link is, time_off where its time is. */
#define LINK(w, off) ((broker_worker_link_t *)((char *)(w) + (off)))
#define TIME(w, off) (*(int64_t *)((char *)(w) + (off)))
#define SEEN offsetof(broker_worker_t, seen_link), offsetof(broker_worker_t, last_seen_ms)
#define SENT offsetof(broker_worker_t, sent_link), offsetof(broker_worker_t, last_sent_ms)

static void order_unlink(time_order_t *order, broker_worker_t *w, size_t off, size_t time_off)
{
    (void)time_off;
    broker_worker_link_t *link = LINK(w, off);
    if (link->prev)
        LINK(link->prev, off)->next = link->next;
    else if (order->head == w)
        order->head = link->next;
    if (link->next)
        LINK(link->next, off)->prev = link->prev;
    else if (order->tail == w)
        order->tail = link->prev;
    link->prev = link->next = NULL;
}

/* The loop's clock only goes forward, so a worker just heard (or written to)
 * goes to the tail; a time from before the tail's (a caller with its own clock)
 * walks back to its place, so the head is always the one of the oldest time. */
static void order_place(time_order_t *order, broker_worker_t *w, int64_t now_ms, size_t off,
                        size_t time_off)
{
    TIME(w, time_off) = now_ms;
    order_unlink(order, w, off, time_off);
    broker_worker_t *after = order->tail;
    while (after && TIME(after, time_off) > now_ms)
        after = LINK(after, off)->prev;
    broker_worker_link_t *link = LINK(w, off);
    link->prev = after;
    link->next = after ? LINK(after, off)->next : order->head;
    if (link->next)
        LINK(link->next, off)->prev = w;
    else
        order->tail = w;
    if (after)
        LINK(after, off)->next = w;
    else
        order->head = w;
}

void broker_workers_seen(broker_workers_t *self, broker_worker_t *worker, int64_t now_ms)
{
    order_place(&self->seen, worker, now_ms, SEEN);
}

/* Heartbeats go to the workers the broker wrote nothing to for an interval, in
 * the order they fell due, rather than to every worker at once: a turn that
 * wrote a thousand of them held the ASSIGNs of its dispatch behind them (the
 * p99 of dispatch at 1,000 workers, docs/benchmarks.md), and a worker that got
 * an ASSIGN or an acknowledgement needs none (docs/protocol.md, Liveness). */
void broker_workers_sent(broker_workers_t *self, broker_worker_t *worker, int64_t now_ms)
{
    order_place(&self->sent, worker, now_ms, SENT);
}

broker_worker_t *broker_workers_quiet(broker_workers_t *self, int64_t now_ms,
                                      int64_t interval_ms)
{
    broker_worker_t *oldest = self->sent.head;
    return oldest && now_ms - oldest->last_sent_ms >= interval_ms ? oldest : NULL;
}

int64_t broker_workers_next_quiet_ms(const broker_workers_t *self, int64_t now_ms,
                                     int64_t interval_ms)
{
    return self->sent.head ? self->sent.head->last_sent_ms + interval_ms : now_ms + interval_ms;
}

/* --- workers by name ------------------------------------------------------------------ */

/* A READY's name check (broker_workers_name_holder) reads the few workers of
 * that name, not every worker: a thousand READYs after a restart would
 * otherwise compare a thousand names each. Names repeat (a worker back on a new
 * socket before its old one is forgotten), so each entry heads a chain. */
static void name_unlink(broker_workers_t *self, broker_worker_t *w)
{
    if (!w->name)
        return;
    if (w->name_prev)
        w->name_prev->name_next = w->name_next;
    else if (w->name_next)
        zhashx_update(self->by_name, w->name, w->name_next);
    else if (zhashx_lookup(self->by_name, w->name) == w)
        zhashx_delete(self->by_name, w->name);
    if (w->name_next)
        w->name_next->name_prev = w->name_prev;
    w->name_prev = w->name_next = NULL;
}

/* Out of memory: not in the index, so not found as a holder (an identity check
 * missed, never a worker refused wrongly). */
static void name_link(broker_workers_t *self, broker_worker_t *w)
{
    broker_worker_t *first = zhashx_lookup(self->by_name, w->name);
    if (first) {
        w->name_next = first->name_next;
        w->name_prev = first;
        if (first->name_next)
            first->name_next->name_prev = w;
        first->name_next = w;
    } else {
        zhashx_insert(self->by_name, w->name, w);
    }
}

/* --- the lists of workers with room ---------------------------------------------- */

/* Which list the worker belongs in now, -1 for none. */
static long room_list_of(const broker_worker_t *w)
{
    int64_t held = (int64_t)w->held_count;
    if (w->draining || w->unreachable || w->unhealthy || held >= w->slots + w->prefetch)
        return -1;
    return 2 * (long)held + (held >= w->slots);
}

static void room_unlink(broker_workers_t *self, broker_worker_t *w)
{
    if (w->room_list < 0)
        return;
    room_list_t *list = &self->rooms[w->room_list];
    if (w->room_prev)
        w->room_prev->room_next = w->room_next;
    else
        list->head = w->room_next;
    if (w->room_next)
        w->room_next->room_prev = w->room_prev;
    else
        list->tail = w->room_prev;
    w->room_prev = w->room_next = NULL;
    w->room_list = -1;
}

/* Moves the worker to the tail of the list it belongs in now (or out of all):
 * called whenever what it holds, its slots, prefetch, health, reachability or draining
 * change. */
void broker_workers_reindex(broker_workers_t *self, broker_worker_t *worker)
{
    long list = room_list_of(worker);
    if (list == worker->room_list)
        return;
    room_unlink(self, worker);
    if (list < 0)
        return;
    if ((size_t)list >= self->room_lists) {
        size_t n = self->room_lists ? self->room_lists : 16;
        while (n <= (size_t)list)
            n *= 2;
        room_list_t *grown = realloc(self->rooms, n * sizeof *grown);
        if (!grown)
            return; /* out of memory: picked for nothing until it changes again */
        memset(grown + self->room_lists, 0, (n - self->room_lists) * sizeof *grown);
        self->rooms = grown;
        self->room_lists = n;
    }
    room_list_t *l = &self->rooms[list];
    worker->room_prev = l->tail;
    if (l->tail)
        l->tail->room_next = worker;
    else
        l->head = worker;
    l->tail = worker;
    worker->room_list = list;
}

static void reindex(broker_worker_t *worker)
{
    if (worker->registry)
        broker_workers_reindex(worker->registry, worker);
}

broker_worker_t *broker_workers_register(broker_workers_t *self, const void *identity,
                                         size_t identity_len, const char *name, int64_t slots,
                                         const json_t *providers, int64_t now_ms)
{
    if (identity_len > BROKER_IDENTITY_MAX)
        return NULL;
    broker_worker_t *worker = broker_workers_lookup(self, identity, identity_len);
    if (!worker) {
        if (self->count == self->cap) {
            size_t cap = self->cap ? self->cap * 2 : 8;
            broker_worker_t **grown = realloc(self->items, cap * sizeof *grown);
            if (!grown)
                return NULL;
            self->items = grown;
            self->cap = cap;
        }
        worker = calloc(1, sizeof *worker);
        if (!worker)
            return NULL;
        memcpy(worker->identity, identity, identity_len);
        worker->identity_len = identity_len;
        worker->key = malloc(2 * identity_len + 1);
        if (!worker->key) {
            free(worker);
            return NULL;
        }
        hex_into(identity, identity_len, worker->key);
        if (zhashx_insert(self->by_key, worker->key, worker) != 0) {
            free(worker->key);
            free(worker);
            return NULL;
        }
        worker->connected_at = syn_now_us();
        worker->registry = self;
        worker->room_list = -1;
        self->items[self->count++] = worker;
    }
    char *copy = strdup(name ? name : "");
    if (!copy)
        return NULL;
    name_unlink(self, worker);
    free(worker->name);
    worker->name = copy;
    name_link(self, worker);
    worker->slots = slots;
    worker->unreachable = false; /* a READY: its connection is back */
    json_decref(worker->providers);
    worker->providers = providers ? json_deep_copy(providers) : json_array();
    broker_workers_seen(self, worker, now_ms);
    if (!worker->sent_link.prev && self->sent.head != worker)
        broker_workers_sent(self, worker, now_ms); /* new: its first heartbeat an interval on */
    broker_workers_reindex(self, worker);
    return worker;
}

int broker_worker_set_peer_key(broker_worker_t *worker, const char *peer_key)
{
    char *copy = NULL;
    if (peer_key && peer_key[0] && !(copy = strdup(peer_key)))
        return -1;
    free(worker->peer_key);
    worker->peer_key = copy;
    return 0;
}

broker_worker_t *broker_workers_name_holder(broker_workers_t *self, const char *name,
                                            const char *peer_key, const void *identity,
                                            size_t identity_len)
{
    if (!name || !peer_key || !peer_key[0])
        return NULL;
    for (broker_worker_t *w = zhashx_lookup(self->by_name, name); w; w = w->name_next) {
        bool same = w->identity_len == identity_len &&
                    memcmp(w->identity, identity, identity_len) == 0;
        if (!same && w->peer_key && strcmp(w->name, name) == 0 &&
            strcmp(w->peer_key, peer_key) != 0)
            return w;
    }
    return NULL;
}

static refused_t *find_refused(const broker_workers_t *self, const void *identity,
                               size_t identity_len)
{
    for (size_t i = 0; self->refused_count && identity_len > 0 && i < BROKER_REFUSED_MAX; i++) {
        const refused_t *r = &self->refused[i];
        if (r->len == identity_len && memcmp(r->identity, identity, identity_len) == 0)
            return (refused_t *)r;
    }
    return NULL;
}

void broker_workers_refuse(broker_workers_t *self, const void *identity, size_t identity_len)
{
    if (identity_len == 0 || identity_len > BROKER_IDENTITY_MAX ||
        find_refused(self, identity, identity_len))
        return;
    refused_t *r = &self->refused[self->refused_next];
    self->refused_next = (self->refused_next + 1) % BROKER_REFUSED_MAX;
    if (r->len == 0)
        self->refused_count++;
    memcpy(r->identity, identity, identity_len);
    r->len = identity_len;
}

void broker_workers_unrefuse(broker_workers_t *self, const void *identity, size_t identity_len)
{
    refused_t *r = find_refused(self, identity, identity_len);
    if (r) {
        r->len = 0;
        self->refused_count--;
    }
}

bool broker_workers_refused(const broker_workers_t *self, const void *identity,
                            size_t identity_len)
{
    return find_refused(self, identity, identity_len) != NULL;
}

void broker_workers_remove(broker_workers_t *self, broker_worker_t *worker)
{
    order_unlink(&self->seen, worker, SEEN);
    order_unlink(&self->sent, worker, SENT);
    room_unlink(self, worker);
    name_unlink(self, worker);
    if (zhashx_lookup(self->by_key, worker->key) == worker)
        zhashx_delete(self->by_key, worker->key);
    for (size_t i = 0; i < self->count; i++)
        if (self->items[i] == worker) {
            memmove(&self->items[i], &self->items[i + 1],
                    (self->count - i - 1) * sizeof *self->items);
            self->count--;
            worker_free(worker);
            return;
        }
}

static json_t *text_or_null(const char *text)
{
    return text ? json_string(text) : json_null();
}

static json_t *time_text(int64_t epoch_us)
{
    char buf[SYN_TIME_BUFSIZE];
    return epoch_us > 0 ? json_string(syn_time_format(epoch_us, buf)) : json_null();
}

void broker_workers_remove_lost(broker_workers_t *self, broker_worker_t *worker, const char *why,
                                int64_t now_us)
{
    json_t *description = broker_worker_describe(worker);
    if (description) {
        json_object_set_new(description, "lost_at", time_text(now_us));
        json_object_set_new(description, "lost_reason", json_string(why ? why : "lost"));
        lost_t *slot = &self->lost[self->lost_next];
        self->lost_next = (self->lost_next + 1) % BROKER_WORKERS_LOST_MAX;
        json_decref(slot->description);
        slot->description = description;
        slot->lost_at = now_us;
    }
    broker_workers_remove(self, worker);
}

static int replace_text(char **field, const char *text)
{
    char *copy = NULL;
    if (text && !(copy = strdup(text)))
        return -1;
    free(*field);
    *field = copy;
    return 0;
}

int broker_worker_set_about(broker_worker_t *worker, const char *host, const char *version,
                            const char *address)
{
    /* "" is what libzmq gives for a transport without an IP (IPC): unknown. */
    return replace_text(&worker->host, host) < 0 ||
                   replace_text(&worker->version, version) < 0 ||
                   replace_text(&worker->address, address && *address ? address : NULL) < 0
               ? -1
               : 0;
}

bool broker_worker_set_unhealthy(broker_worker_t *worker, const char *why)
{
    bool was_healthy = worker->unhealthy == NULL;
    if (why && worker->unhealthy && strcmp(why, worker->unhealthy) == 0)
        return false;
    /* Out of memory keeps a fixed reason: it must still take no work. */
    if (replace_text(&worker->unhealthy, why) < 0)
        replace_text(&worker->unhealthy, "unhealthy");
    reindex(worker);
    return was_healthy != (worker->unhealthy == NULL);
}

size_t broker_workers_count_healthy(const broker_workers_t *self)
{
    size_t healthy = 0;
    for (size_t i = 0; i < self->count; i++)
        if (!self->items[i]->unhealthy)
            healthy++;
    return healthy;
}

json_t *broker_worker_describe(const broker_worker_t *worker)
{
    size_t running = 0;
    for (size_t i = 0; i < worker->held_count; i++)
        if (worker->held[i].current)
            running++;
    /* Attempts beyond its slots wait there for one to free. */
    size_t prefetched = (int64_t)running > worker->slots ? running - (size_t)worker->slots : 0;
    return json_pack("{s:s, s:s, s:o, s:o, s:O, s:o, s:I, s:I, s:I, s:I, s:b, s:b, s:o, "
                     "s:o, s:o, s:I, s:I, s:b}",
                     "name", worker->name, "id", worker->key, "host", text_or_null(worker->host),
                     "address", text_or_null(worker->address), "providers", worker->providers, "version",
                     text_or_null(worker->version), "slots", (json_int_t)worker->slots,
                     "prefetch", (json_int_t)worker->prefetch, "running",
                     (json_int_t)(running - prefetched), "prefetched", (json_int_t)prefetched,
                     "draining", worker->draining, "healthy", worker->unhealthy == NULL,
                     "unhealthy_reason", text_or_null(worker->unhealthy), "connected_at",
                     time_text(worker->connected_at), "last_heartbeat_at",
                     time_text(worker->last_heartbeat_at), "attempts_completed",
                     (json_int_t)worker->attempts_completed, "attempts_failed",
                     (json_int_t)worker->attempts_failed, "connected", true);
}

json_t *broker_workers_list(broker_workers_t *self, int64_t now_us)
{
    json_t *list = json_array();
    for (size_t i = 0; list && i < self->count; i++)
        if (json_array_append_new(list, broker_worker_describe(self->items[i])) < 0)
            json_decref(list), list = NULL;
    /* Lost ones, most recent first. */
    for (size_t n = 1; list && n <= BROKER_WORKERS_LOST_MAX; n++) {
        lost_t *slot = &self->lost[(self->lost_next + BROKER_WORKERS_LOST_MAX - n) %
                                   BROKER_WORKERS_LOST_MAX];
        if (!slot->description)
            continue;
        if (now_us - slot->lost_at > BROKER_WORKERS_LOST_KEEP_US) {
            json_decref(slot->description);
            slot->description = NULL;
            continue;
        }
        json_t *copy = json_deep_copy(slot->description);
        json_object_set_new(copy, "connected", json_false());
        if (json_array_append_new(list, copy) < 0)
            json_decref(list), list = NULL;
    }
    return list;
}

size_t broker_workers_count(const broker_workers_t *self)
{
    return self->count;
}

/* Healthy: taking work. Until workers report their health this is "not draining";
 * the one place to switch to the worker's healthy flag. */
void broker_workers_slots(const broker_workers_t *self, int64_t *busy, int64_t *free_slots)
{
    *busy = *free_slots = 0;
    for (size_t i = 0; i < self->count; i++) {
        int64_t held = (int64_t)broker_worker_busy(self->items[i]);
        int64_t slots = self->items[i]->slots;
        *busy += held < slots ? held : slots;
        *free_slots += held < slots ? slots - held : 0;
    }
}

broker_worker_t *broker_workers_at(broker_workers_t *self, size_t i)
{
    return i < self->count ? self->items[i] : NULL;
}

broker_worker_t *broker_workers_expired(broker_workers_t *self, int64_t now_ms,
                                        int64_t max_silence_ms)
{
    broker_worker_t *oldest = self->seen.head;
    return oldest && now_ms - oldest->last_seen_ms > max_silence_ms ? oldest : NULL;
}

static bool offers(const broker_worker_t *worker, const char *provider)
{
    if (!provider)
        return true;
    size_t i;
    json_t *p;
    json_array_foreach(worker->providers, i, p)
        if (json_is_string(p) && strcmp(json_string_value(p), provider) == 0)
            return true;
    return false;
}

/* Whether the two workers offer a provider in common. */
static bool share_a_provider(const broker_worker_t *a, const broker_worker_t *b)
{
    size_t i;
    json_t *p;
    json_array_foreach(a->providers, i, p)
        if (json_is_string(p) && offers(b, json_string_value(p)))
            return true;
    return false;
}

int64_t broker_workers_peer_completed_ms(broker_workers_t *self, const broker_worker_t *worker)
{
    int64_t last = 0;
    for (size_t i = 0; i < self->count; i++) {
        const broker_worker_t *w = self->items[i];
        if (w != worker && w->last_completed_ms > last && share_a_provider(worker, w))
            last = w->last_completed_ms;
    }
    return last;
}

/* The first worker offering provider in the lists of one kind (0: a slot free,
 * 1: only a prefetch place), fewest attempts held first. */
static broker_worker_t *least_busy(broker_workers_t *self, const char *provider, size_t kind)
{
    for (size_t list = kind; list < self->room_lists; list += 2)
        for (broker_worker_t *w = self->rooms[list].head; w; w = w->room_next)
            if (offers(w, provider))
                return w;
    return NULL;
}

/* A free slot anywhere comes before a prefetch place: a phase handed to a busy
 * worker waits there for one of its slots. */
broker_worker_t *broker_workers_pick(broker_workers_t *self, const char *provider)
{
    broker_worker_t *free_slot = least_busy(self, provider, 0);
    return free_slot ? free_slot : least_busy(self, provider, 1);
}

bool broker_worker_slot_free(const broker_worker_t *worker)
{
    return (int64_t)worker->held_count < worker->slots;
}

size_t broker_worker_busy(const broker_worker_t *worker)
{
    return worker->held_count;
}

broker_held_t *broker_worker_find(broker_worker_t *worker, const char *execution_id,
                                  const char *phase_id, int64_t attempt)
{
    for (size_t i = 0; i < worker->held_count; i++) {
        broker_held_t *h = &worker->held[i];
        if (h->attempt == attempt && strcmp(h->execution_id, execution_id) == 0 &&
            strcmp(h->phase_id, phase_id) == 0)
            return h;
    }
    return NULL;
}

int broker_worker_hold(broker_worker_t *worker, const char *execution_id, const char *phase_id,
                       int64_t attempt, bool current)
{
    broker_held_t *existing = broker_worker_find(worker, execution_id, phase_id, attempt);
    if (existing) {
        existing->current = current;
        return 0;
    }
    if (worker->held_count == worker->held_cap) {
        size_t cap = worker->held_cap ? worker->held_cap * 2 : 4;
        broker_held_t *grown = realloc(worker->held, cap * sizeof *grown);
        if (!grown)
            return -1;
        worker->held = grown;
        worker->held_cap = cap;
    }
    broker_held_t held = {strdup(execution_id), strdup(phase_id), attempt, current, false};
    if (!held.execution_id || !held.phase_id) {
        held_clear(&held);
        return -1;
    }
    worker->held[worker->held_count++] = held;
    reindex(worker);
    return 0;
}

bool broker_worker_release(broker_worker_t *worker, const char *execution_id,
                           const char *phase_id, int64_t attempt)
{
    broker_held_t *h = broker_worker_find(worker, execution_id, phase_id, attempt);
    if (!h)
        return false;
    held_clear(h);
    size_t i = (size_t)(h - worker->held);
    memmove(&worker->held[i], &worker->held[i + 1],
            (worker->held_count - i - 1) * sizeof *worker->held);
    worker->held_count--;
    reindex(worker);
    return true;
}
