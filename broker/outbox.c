/* outbox: a FIFO in a growable array (head index + compaction). */
#include "broker/outbox.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    broker_dest_t dest;
    unsigned char identity[BROKER_IDENTITY_MAX];
    size_t identity_len;
    syn_msg_t *msg;
} item_t;

struct broker_outbox_t {
    item_t *items;
    size_t head, tail, cap;
};

broker_outbox_t *broker_outbox_new(void)
{
    return calloc(1, sizeof(broker_outbox_t));
}

void broker_outbox_destroy(broker_outbox_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    broker_outbox_clear(*self_p);
    free((*self_p)->items);
    free(*self_p);
    *self_p = NULL;
}

int broker_outbox_push(broker_outbox_t *self, broker_dest_t dest, const void *identity,
                       size_t identity_len, syn_msg_t *msg)
{
    if (!msg)
        return -1;
    if (identity_len > BROKER_IDENTITY_MAX) {
        syn_msg_destroy(&msg);
        return -1;
    }
    if (self->tail == self->cap) {
        if (self->head > 0) {
            memmove(self->items, self->items + self->head,
                    (self->tail - self->head) * sizeof *self->items);
            self->tail -= self->head;
            self->head = 0;
        }
        if (self->tail == self->cap) {
            size_t cap = self->cap ? self->cap * 2 : 64;
            item_t *grown = realloc(self->items, cap * sizeof *grown);
            if (!grown) {
                syn_msg_destroy(&msg);
                return -1;
            }
            self->items = grown;
            self->cap = cap;
        }
    }
    item_t *item = &self->items[self->tail++];
    item->dest = dest;
    item->identity_len = identity_len;
    if (identity_len)
        memcpy(item->identity, identity, identity_len);
    item->msg = msg;
    return 0;
}

size_t broker_outbox_size(const broker_outbox_t *self)
{
    return self->tail - self->head;
}

syn_msg_t *broker_outbox_pop(broker_outbox_t *self, broker_dest_t *dest, void *identity,
                             size_t *identity_len)
{
    if (self->head == self->tail)
        return NULL;
    item_t *item = &self->items[self->head++];
    *dest = item->dest;
    *identity_len = item->identity_len;
    memcpy(identity, item->identity, item->identity_len);
    if (self->head == self->tail)
        self->head = self->tail = 0;
    return item->msg;
}

void broker_outbox_clear(broker_outbox_t *self)
{
    for (size_t i = self->head; i < self->tail; i++)
        syn_msg_destroy(&self->items[i].msg);
    self->head = self->tail = 0;
}
