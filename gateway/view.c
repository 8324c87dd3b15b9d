#include "gateway/view.h"
#include "common/json_text.h"

#include <czmq.h>
#include <stdlib.h>
#include <string.h>

/* Longest execution status name ("completed", "cancelled") plus room. */
#define STATUS_MAX 16
/* What the id index spends per entry besides its copy of the id (zhashx's item). */
#define INDEX_ITEM_BYTES (6 * sizeof(void *))

/* One execution. An entry without text is a tombstone: a control op's reply named the
 * execution before any event did, and older events must not make it look fresh. */
typedef struct entry_t {
    char *id;
    char *workflow_id;
    char *text; /* the status object as the reply body */
    size_t text_len;
    char status[STATUS_MAX];
    uint64_t seq; /* of the event the text came from */
    size_t bytes; /* its footprint (entry_footprint) */
    bool terminal;
    bool held;         /* a control op may have changed it: not served */
    uint64_t hold_seq; /* only events after this one can release it */
    char want[STATUS_MAX]; /* ... and only one showing this status ("" → any) */
    struct entry_t *prev, *next; /* in its list, oldest update first */
} entry_t;

typedef struct {
    entry_t *head, *tail;
} list_t;

struct gateway_view_t {
    size_t capacity;
    size_t max_bytes;
    size_t bytes; /* the entries' footprints summed */
    zhashx_t *by_id; /* id → entry_t * */
    list_t active;   /* pending, running, paused, and tombstones */
    list_t finished; /* completed, failed, cancelled: forgotten first */
    bool connected;
    bool ever_connected; /* a connect after this is a reconnect */
    bool known;    /* a seq was seen since the last start: last is meaningful */
    uint64_t last; /* last seq seen */
    gateway_view_stats_t stats;
};

static bool is_terminal(const char *status)
{
    return !strcmp(status, "completed") || !strcmp(status, "failed") ||
           !strcmp(status, "cancelled");
}

static list_t *list_of(gateway_view_t *self, const entry_t *entry)
{
    return entry->terminal ? &self->finished : &self->active;
}

static void list_unlink(list_t *list, entry_t *entry)
{
    if (entry->prev)
        entry->prev->next = entry->next;
    else
        list->head = entry->next;
    if (entry->next)
        entry->next->prev = entry->prev;
    else
        list->tail = entry->prev;
    entry->prev = entry->next = NULL;
}

static void list_append(list_t *list, entry_t *entry)
{
    entry->prev = list->tail;
    entry->next = NULL;
    if (list->tail)
        list->tail->next = entry;
    else
        list->head = entry;
    list->tail = entry;
}

/* What an entry costs: itself, its strings, and its place in the index (which keeps a
 * copy of the id). The allocator's own overhead is left out: a budget, not a census. */
static size_t entry_footprint(const char *id, const char *workflow_id, size_t text_len)
{
    size_t id_bytes = strlen(id) + 1;
    return sizeof(entry_t) + 2 * id_bytes + INDEX_ITEM_BYTES +
           (workflow_id ? strlen(workflow_id) + 1 : 0) + text_len + 1;
}

static void entry_free(entry_t *entry)
{
    free(entry->id);
    free(entry->workflow_id);
    free(entry->text);
    free(entry);
}

static void entry_remove(gateway_view_t *self, entry_t *entry)
{
    self->bytes -= entry->bytes;
    list_unlink(list_of(self, entry), entry);
    zhashx_delete(self->by_id, entry->id);
    entry_free(entry);
}

gateway_view_t *gateway_view_new(size_t capacity, size_t max_bytes)
{
    gateway_view_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->capacity = capacity ? capacity : GATEWAY_VIEW_CAPACITY;
    self->max_bytes = max_bytes ? max_bytes : GATEWAY_VIEW_MAX_BYTES;
    self->by_id = zhashx_new();
    if (!self->by_id) {
        free(self);
        return NULL;
    }
    return self;
}

static void remove_all(gateway_view_t *self, bool keep_held)
{
    list_t *lists[] = {&self->active, &self->finished};
    for (size_t i = 0; i < 2; i++) {
        entry_t *entry = lists[i]->head;
        while (entry) {
            entry_t *next = entry->next;
            if (!keep_held || !entry->held)
                entry_remove(self, entry);
            entry = next;
        }
    }
}

void gateway_view_destroy(gateway_view_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    gateway_view_t *self = *self_p;
    remove_all(self, false);
    zhashx_destroy(&self->by_id);
    free(self);
    *self_p = NULL;
}

void gateway_view_forget(gateway_view_t *self, const char *execution_id)
{
    /* Held or not: no event will ever come for it again. */
    entry_t *entry = execution_id ? zhashx_lookup(self->by_id, execution_id) : NULL;
    if (entry)
        entry_remove(self, entry);
}

void gateway_view_clear(gateway_view_t *self)
{
    remove_all(self, true);
    self->stats.clears++;
}

/* A disconnect forgets everything, and so does a reconnect (what arrived in between
 * may be stale). The first connect clears nothing: there is nothing from before it,
 * and the monitor may report it after the first events were already applied. */
void gateway_view_set_connected(gateway_view_t *self, bool connected)
{
    self->connected = connected;
    bool first_connect = connected && !self->ever_connected;
    self->ever_connected |= connected;
    if (first_connect)
        return;
    self->known = false;
    gateway_view_clear(self);
}

/* Makes room for `adding` more entries (0 or 1) and for the footprint to go from
 * `freeing` to `needing` bytes: finished executions go first, oldest update first. An
 * entry being updated is out of the lists meanwhile, so it is never the one forgotten. */
static void make_room(gateway_view_t *self, size_t adding, size_t freeing, size_t needing)
{
    while (zhashx_size(self->by_id) + adding > self->capacity ||
           self->bytes - freeing + needing > self->max_bytes) {
        entry_t *victim = self->finished.head ? self->finished.head : self->active.head;
        if (!victim)
            return;
        entry_remove(self, victim);
        self->stats.evictions++;
    }
}

/* A new entry without text, after making room for it, or for `room` bytes when it is
 * about to take more. */
static entry_t *entry_add(gateway_view_t *self, const char *id, size_t room)
{
    size_t bytes = entry_footprint(id, NULL, 0);
    make_room(self, 1, 0, room > bytes ? room : bytes);
    entry_t *entry = calloc(1, sizeof *entry);
    if (!entry || !(entry->id = strdup(id)) || zhashx_insert(self->by_id, id, entry) != 0) {
        if (entry)
            free(entry->id);
        free(entry);
        return NULL;
    }
    list_append(&self->active, entry);
    entry->bytes = bytes;
    self->bytes += bytes;
    return entry;
}

static bool releases(const entry_t *entry)
{
    return entry->text && entry->seq > entry->hold_seq &&
           (!entry->want[0] || !strcmp(entry->status, entry->want) || entry->terminal);
}

/* The status as a reply through the broker would carry it (syn_json_text, as
 * request_set_json writes every reply body: this runs for every event), sized to fit
 * since the view keeps it. */
static char *status_text(const json_t *status, size_t *len)
{
    char *text = syn_json_text(status);
    if (!text)
        text = json_dumps(status, JSON_COMPACT); /* whatever it says, as before */
    if (!text)
        return NULL;
    *len = strlen(text);
    char *fitted = realloc(text, *len + 1);
    return fitted ? fitted : text;
}

/* Stores the status object the event at seq carried, when newer than what is held. */
static void apply(gateway_view_t *self, uint64_t seq, const json_t *status)
{
    const char *id = json_string_value(json_object_get(status, "execution_id"));
    const char *workflow_id = json_string_value(json_object_get(status, "workflow_id"));
    const char *state = json_string_value(json_object_get(status, "status"));
    /* started_at is always a timestamp (docs/api.md); an object without one is not
     * what the broker answers, so it is not served (the broker is asked instead). */
    if (!json_is_object(status) || !id || !id[0] || !workflow_id || !state ||
        strlen(state) >= STATUS_MAX || !json_is_string(json_object_get(status, "started_at"))) {
        self->stats.rejected++;
        return;
    }
    entry_t *entry = zhashx_lookup(self->by_id, id);
    if (entry && entry->text && seq <= entry->seq)
        return;
    size_t text_len = 0;
    char *text = status_text(status, &text_len);
    size_t footprint = entry_footprint(id, workflow_id, text_len);
    if (text && footprint > self->max_bytes) {
        /* Kept, it would push out everything else: reads of it go to the broker. */
        free(text);
        if (entry)
            entry_remove(self, entry);
        self->stats.evictions++;
        return;
    }
    bool same_workflow = entry && entry->workflow_id && !strcmp(entry->workflow_id, workflow_id);
    char *workflow_copy = same_workflow ? NULL : strdup(workflow_id);
    if (entry) {
        list_t *list = list_of(self, entry);
        list_unlink(list, entry);
        make_room(self, 0, entry->bytes, footprint);
        list_append(list, entry);
    } else {
        entry = entry_add(self, id, footprint);
    }
    if (!text || (!same_workflow && !workflow_copy) || !entry) {
        /* Out of memory: better no entry than an old one. */
        free(text);
        free(workflow_copy);
        if (entry)
            entry_remove(self, entry);
        return;
    }
    self->bytes = self->bytes - entry->bytes + footprint;
    entry->bytes = footprint;
    list_unlink(list_of(self, entry), entry);
    free(entry->text);
    entry->text = text;
    entry->text_len = text_len;
    if (!same_workflow) {
        free(entry->workflow_id);
        entry->workflow_id = workflow_copy;
    }
    memcpy(entry->status, state, strlen(state) + 1);
    entry->terminal = is_terminal(state);
    entry->seq = seq;
    list_append(list_of(self, entry), entry);
    if (entry->held && releases(entry))
        entry->held = false;
    self->stats.updates++;
}

void gateway_view_event(gateway_view_t *self, uint64_t seq, const json_t *status)
{
    if (self->known && seq != self->last + 1) {
        if (seq <= self->last)
            return; /* a repeat: what it says is already applied */
        gateway_view_clear(self);
    }
    self->known = true;
    self->last = seq;
    if (status)
        apply(self, seq, status);
}

bool gateway_view_get(gateway_view_t *self, const char *workflow_id, const char *execution_id,
                      const char **text, size_t *len)
{
    entry_t *entry = self->connected ? zhashx_lookup(self->by_id, execution_id) : NULL;
    /* A pending execution's queue_position moves without events of its own
     * (broker/limits.h): only the broker can say it. */
    if (!entry || entry->held || !entry->text || strcmp(entry->workflow_id, workflow_id) != 0 ||
        !strcmp(entry->status, "pending")) {
        self->stats.misses++;
        return false;
    }
    self->stats.hits++;
    *text = entry->text;
    *len = entry->text_len;
    return true;
}

static void hold_entry(entry_t *entry, uint64_t token)
{
    entry->held = true;
    entry->hold_seq = token;
    entry->want[0] = '\0';
}

uint64_t gateway_view_hold(gateway_view_t *self, const char *given)
{
    uint64_t token = self->known ? self->last : 0;
    entry_t *exact = zhashx_lookup(self->by_id, given);
    if (exact) {
        hold_entry(exact, token);
        return token;
    }
    /* A prefix: every execution it may resolve to. */
    size_t len = strlen(given);
    list_t *lists[] = {&self->active, &self->finished};
    for (size_t i = 0; i < 2; i++)
        for (entry_t *entry = lists[i]->head; entry; entry = entry->next)
            if (strncmp(entry->id, given, len) == 0)
                hold_entry(entry, token);
    return token;
}

void gateway_view_release(gateway_view_t *self, uint64_t token, const char *execution_id,
                          const char *state)
{
    /* A failed op changed nothing: its entries come back with the next newer event. */
    if (!execution_id || !state || !execution_id[0] || strlen(state) >= STATUS_MAX)
        return;
    entry_t *entry = zhashx_lookup(self->by_id, execution_id);
    if (!entry)
        entry = entry_add(self, execution_id, 0); /* a tombstone until an event comes */
    if (!entry)
        return;
    entry->hold_seq = token;
    snprintf(entry->want, sizeof entry->want, "%s", state);
    entry->held = !releases(entry);
}

bool gateway_view_last_seq(const gateway_view_t *self, uint64_t *seq)
{
    *seq = self->known ? self->last : 0;
    return self->known;
}

void gateway_view_stats(const gateway_view_t *self, gateway_view_stats_t *stats)
{
    *stats = self->stats;
    stats->entries = zhashx_size(self->by_id);
    stats->bytes = self->bytes;
}
