/* tally: changes to the execution counts, summed while a transaction is open.
 *
 * execution_counts and execution_pages (see store.h) move by one row per
 * execution inserted and two per status change. Written as they happen, that was
 * eight statements per status change and five per insert, which cost more than
 * the rows they counted. Within one transaction most changes hit the same few
 * (workflow, status, block) keys, so the store adds them up here and writes each
 * key's net change once, just before it commits or reads the counts. */
#ifndef SYN_BROKER_TALLY_H
#define SYN_BROKER_TALLY_H

#include <stddef.h>
#include <stdint.h>

/* Executions per block of insertion numbers in execution_pages. */
#define BROKER_TALLY_BLOCK_SHIFT 10

typedef struct broker_tally_t broker_tally_t;

/* One key's net change. status "" stands for "any status" (the page rows that
 * move only when executions are added or removed). */
typedef struct {
    const char *workflow_id;
    const char *status;
    int64_t block; /* num >> BROKER_TALLY_BLOCK_SHIFT */
    int64_t delta;
} broker_tally_entry_t;

typedef int (*broker_tally_fn)(const broker_tally_entry_t *entry, void *arg);

broker_tally_t *broker_tally_new(void);
void broker_tally_destroy(broker_tally_t **self_p);

/* Adds delta to the key of (workflow_id, status, the block of num). 0, or -1
 * when out of memory (nothing is added then). */
int broker_tally_add(broker_tally_t *self, const char *workflow_id, const char *status,
                     int64_t num, int64_t delta);

/* Keys held, including those whose changes cancelled out. */
size_t broker_tally_size(const broker_tally_t *self);

/* Calls fn for every key whose net change is not zero, in the order the keys
 * were first added; stops at and returns the first nonzero result of fn. */
int broker_tally_each(const broker_tally_t *self, broker_tally_fn fn, void *arg);

/* Forgets everything (after a flush, or when the transaction rolled back). */
void broker_tally_clear(broker_tally_t *self);

#endif
