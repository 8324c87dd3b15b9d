#include "broker/tally.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    char *workflow_id;
    char *status;
    int64_t block;
    int64_t delta;
} tally_key_t;

/* A transaction touches a handful of keys (a few workflows, statuses and
 * blocks), and the store flushes when there are more: a linear scan of a small
 * array beats hashing here. */
struct broker_tally_t {
    tally_key_t *keys;
    size_t count;
    size_t capacity;
};

broker_tally_t *broker_tally_new(void)
{
    return calloc(1, sizeof(broker_tally_t));
}

void broker_tally_destroy(broker_tally_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    broker_tally_t *self = *self_p;
    broker_tally_clear(self);
    free(self->keys);
    free(self);
    *self_p = NULL;
}

static tally_key_t *find(broker_tally_t *self, const char *workflow_id, const char *status,
                         int64_t block)
{
    for (size_t i = 0; i < self->count; i++) {
        tally_key_t *key = &self->keys[i];
        if (key->block == block && strcmp(key->status, status) == 0 &&
            strcmp(key->workflow_id, workflow_id) == 0)
            return key;
    }
    return NULL;
}

static tally_key_t *append(broker_tally_t *self, const char *workflow_id, const char *status,
                           int64_t block)
{
    if (self->count == self->capacity) {
        size_t capacity = self->capacity ? self->capacity * 2 : 16;
        tally_key_t *grown = realloc(self->keys, capacity * sizeof *grown);
        if (!grown)
            return NULL;
        self->keys = grown;
        self->capacity = capacity;
    }
    char *workflow_copy = strdup(workflow_id);
    char *status_copy = strdup(status);
    if (!workflow_copy || !status_copy) {
        free(workflow_copy);
        free(status_copy);
        return NULL;
    }
    tally_key_t *key = &self->keys[self->count++];
    *key = (tally_key_t){workflow_copy, status_copy, block, 0};
    return key;
}

int broker_tally_add(broker_tally_t *self, const char *workflow_id, const char *status,
                     int64_t num, int64_t delta)
{
    int64_t block = num >> BROKER_TALLY_BLOCK_SHIFT;
    tally_key_t *key = find(self, workflow_id, status, block);
    if (!key)
        key = append(self, workflow_id, status, block);
    if (!key)
        return -1;
    key->delta += delta;
    return 0;
}

size_t broker_tally_size(const broker_tally_t *self)
{
    return self->count;
}

int broker_tally_each(const broker_tally_t *self, broker_tally_fn fn, void *arg)
{
    for (size_t i = 0; i < self->count; i++) {
        const tally_key_t *key = &self->keys[i];
        if (key->delta == 0)
            continue;
        broker_tally_entry_t entry = {key->workflow_id, key->status, key->block, key->delta};
        int rc = fn(&entry, arg);
        if (rc != 0)
            return rc;
    }
    return 0;
}

void broker_tally_clear(broker_tally_t *self)
{
    for (size_t i = 0; i < self->count; i++) {
        free(self->keys[i].workflow_id);
        free(self->keys[i].status);
    }
    self->count = 0;
}
