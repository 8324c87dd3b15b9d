#include "gateway/pending.h"

#include <stdlib.h>

typedef struct node_t {
    uint64_t id;
    int64_t deadline_ms;
    void *item;
    size_t heap_index;   /* position in heap, kept current by every heap move */
    struct node_t *next; /* hash bucket chain */
} node_t;

struct gateway_pending_t {
    node_t **buckets;
    size_t bucket_count; /* power of two */
    node_t **heap;       /* min-heap on deadline_ms */
    size_t size;
    size_t heap_capacity;
};

#define INITIAL_BUCKETS 64

gateway_pending_t *gateway_pending_new(void)
{
    gateway_pending_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->bucket_count = INITIAL_BUCKETS;
    self->buckets = calloc(self->bucket_count, sizeof *self->buckets);
    if (!self->buckets) {
        free(self);
        return NULL;
    }
    return self;
}

void gateway_pending_destroy(gateway_pending_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    gateway_pending_t *self = *self_p;
    for (size_t i = 0; i < self->size; i++)
        free(self->heap[i]);
    free(self->heap);
    free(self->buckets);
    free(self);
    *self_p = NULL;
}

/* Correlation ids are sequential, so a multiplicative mix spreads them well. */
static size_t bucket_of(const gateway_pending_t *self, uint64_t id)
{
    return (size_t)((id * 0x9E3779B97F4A7C15ull) >> 32) & (self->bucket_count - 1);
}

static int grow_buckets(gateway_pending_t *self)
{
    size_t count = self->bucket_count * 2;
    node_t **buckets = calloc(count, sizeof *buckets);
    if (!buckets)
        return -1;
    node_t **old = self->buckets;
    size_t old_count = self->bucket_count;
    self->buckets = buckets;
    self->bucket_count = count;
    for (size_t i = 0; i < old_count; i++) {
        node_t *node = old[i];
        while (node) {
            node_t *next = node->next;
            size_t b = bucket_of(self, node->id);
            node->next = buckets[b];
            buckets[b] = node;
            node = next;
        }
    }
    free(old);
    return 0;
}

static void heap_place(gateway_pending_t *self, size_t index, node_t *node)
{
    self->heap[index] = node;
    node->heap_index = index;
}

static void sift_up(gateway_pending_t *self, size_t index)
{
    node_t *node = self->heap[index];
    while (index > 0) {
        size_t parent = (index - 1) / 2;
        if (self->heap[parent]->deadline_ms <= node->deadline_ms)
            break;
        heap_place(self, index, self->heap[parent]);
        index = parent;
    }
    heap_place(self, index, node);
}

static void sift_down(gateway_pending_t *self, size_t index)
{
    node_t *node = self->heap[index];
    for (;;) {
        size_t child = 2 * index + 1;
        if (child >= self->size)
            break;
        if (child + 1 < self->size &&
            self->heap[child + 1]->deadline_ms < self->heap[child]->deadline_ms)
            child++;
        if (node->deadline_ms <= self->heap[child]->deadline_ms)
            break;
        heap_place(self, index, self->heap[child]);
        index = child;
    }
    heap_place(self, index, node);
}

int gateway_pending_add(gateway_pending_t *self, uint64_t id, int64_t deadline_ms, void *item)
{
    if (self->size == self->heap_capacity) {
        size_t capacity = self->heap_capacity ? self->heap_capacity * 2 : 64;
        node_t **heap = realloc(self->heap, capacity * sizeof *heap);
        if (!heap)
            return -1;
        self->heap = heap;
        self->heap_capacity = capacity;
    }
    if (self->size >= self->bucket_count && grow_buckets(self) != 0)
        return -1;
    node_t *node = malloc(sizeof *node);
    if (!node)
        return -1;
    *node = (node_t){.id = id, .deadline_ms = deadline_ms, .item = item};
    size_t b = bucket_of(self, id);
    node->next = self->buckets[b];
    self->buckets[b] = node;
    self->heap[self->size] = node;
    node->heap_index = self->size++;
    sift_up(self, node->heap_index);
    return 0;
}

/* Unlinks node from its bucket and the heap, frees it and returns its item. */
static void *remove_node(gateway_pending_t *self, node_t *node)
{
    node_t **link = &self->buckets[bucket_of(self, node->id)];
    while (*link != node)
        link = &(*link)->next;
    *link = node->next;

    size_t index = node->heap_index;
    node_t *last = self->heap[--self->size];
    if (last != node) {
        heap_place(self, index, last);
        if (index > 0 && self->heap[(index - 1) / 2]->deadline_ms > last->deadline_ms)
            sift_up(self, index);
        else
            sift_down(self, index);
    }
    void *item = node->item;
    free(node);
    return item;
}

void *gateway_pending_take(gateway_pending_t *self, uint64_t id)
{
    for (node_t *node = self->buckets[bucket_of(self, id)]; node; node = node->next)
        if (node->id == id)
            return remove_node(self, node);
    return NULL;
}

void *gateway_pending_expire(gateway_pending_t *self, int64_t now_ms)
{
    if (self->size == 0 || self->heap[0]->deadline_ms > now_ms)
        return NULL;
    return remove_node(self, self->heap[0]);
}

int64_t gateway_pending_next_deadline(gateway_pending_t *self)
{
    return self->size ? self->heap[0]->deadline_ms : -1;
}

size_t gateway_pending_size(gateway_pending_t *self)
{
    return self->size;
}
