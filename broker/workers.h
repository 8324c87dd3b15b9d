/* workers: the registry of connected workers and the attempts each one holds.
 *
 * A worker is known by its ROUTER identity from its READY until it says
 * DISCONNECT or stays silent too long. It holds attempts: the current ones the
 * broker assigned or adopted, and stale ones it reported (or still streams) that
 * the broker has asked it to cancel. Both occupy a slot until the worker's RESULT
 * for them arrives, so the broker never sends more work than a worker can take:
 * its slots plus the prefetch it announced (attempts it keeps until a slot frees).
 *
 * Over CURVE a worker's name is bound to its key (the User-Id its messages carry)
 * while the broker knows that worker: a READY claiming the name with another key
 * is refused, and the claimant's identity is remembered (the last
 * BROKER_REFUSED_MAX of them) so that its messages are ignored. */
#ifndef SYN_BROKER_WORKERS_H
#define SYN_BROKER_WORKERS_H

#include "broker/outbox.h"
#include "broker/quarantine.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    char *execution_id;
    char *phase_id;
    int64_t attempt;
    bool current;                 /* false: stale, cancel requested */
    bool claimed;                 /* its worker's draining READY listed it: it may have run
                                   * (ready.c; one it did not list never will, lost.h) */
} broker_held_t;

/* A place in one of the registry's time orders (workers.c only). */
typedef struct {
    struct broker_worker_t *prev, *next;
} broker_worker_link_t;

typedef struct broker_worker_t {
    unsigned char identity[BROKER_IDENTITY_MAX];
    size_t identity_len;
    char *key;                    /* identity in hex: a printable, comparable handle */
    char *name;
    char *peer_key;               /* its CURVE public key (Z85), NULL without CURVE */
    int64_t slots;
    int64_t prefetch;             /* attempts it takes beyond its slots (READY; default 0) */
    json_t *providers;            /* array of strings */
    int64_t last_seen_ms;         /* monotonic time of its last message */
    int64_t last_sent_ms;         /* monotonic time the broker last queued a message for it */
    bool draining;                /* stopping: finishes what it holds, gets nothing new */
    bool unreachable;             /* a send found its connection gone: gets nothing new, and
                                   * is lost once what it sent before has been read (lost.h) */
    char *host, *version;         /* as its READY says (NULL: not said) */
    char *address;                /* the remote IP its READY came from (NULL: unknown) */
    int64_t connected_at;         /* wall-clock µs since the epoch of its first READY */
    int64_t last_heartbeat_at;    /* wall-clock µs since the epoch of its last message */
    int64_t attempts_completed;   /* RESULTs completed / failed since it joined */
    int64_t attempts_failed;
    char *unhealthy;              /* why it takes no work, or NULL: healthy */
    int64_t last_completed_ms;    /* monotonic time of its last completed attempt (0: none) */
    broker_quarantine_t quarantine;
    broker_held_t *held;
    size_t held_count, held_cap;
    /* The registry's indexes (workers.c only): the order of last messages, the
     * order of last messages sent to it, and the list of workers with room it is
     * in (-1: none). */
    struct broker_workers_t *registry;
    broker_worker_link_t seen_link, sent_link;
    struct broker_worker_t *room_prev, *room_next;
    long room_list;
    struct broker_worker_t *name_prev, *name_next; /* the others of its name */
} broker_worker_t;

typedef struct broker_workers_t broker_workers_t;

broker_workers_t *broker_workers_new(void);
void broker_workers_destroy(broker_workers_t **self_p);

/* The worker with this identity, or NULL. */
broker_worker_t *broker_workers_lookup(broker_workers_t *self, const void *identity,
                                       size_t identity_len);
broker_worker_t *broker_workers_lookup_key(broker_workers_t *self, const char *key);
/* Adds the worker, or updates name, slots and providers of a known identity
 * (what it holds is kept). NULL when out of memory. */
broker_worker_t *broker_workers_register(broker_workers_t *self, const void *identity,
                                         size_t identity_len, const char *name, int64_t slots,
                                         const json_t *providers, int64_t now_ms);
/* A message from the worker at now_ms (monotonic, never going back): it is alive. */
void broker_workers_seen(broker_workers_t *self, broker_worker_t *worker, int64_t now_ms);
/* A message for the worker was queued at now_ms (monotonic): it needs no
 * heartbeat for an interval. */
void broker_workers_sent(broker_workers_t *self, broker_worker_t *worker, int64_t now_ms);
/* The worker the broker has sent nothing to for the longest time, when that is
 * at least interval_ms (it is due a heartbeat), or NULL. */
broker_worker_t *broker_workers_quiet(broker_workers_t *self, int64_t now_ms,
                                      int64_t interval_ms);
/* When the next worker falls due a heartbeat of interval_ms (monotonic ms), or
 * now_ms + interval_ms when no worker is connected. */
int64_t broker_workers_next_quiet_ms(const broker_workers_t *self, int64_t now_ms,
                                     int64_t interval_ms);
/* Its draining, reachability or prefetch changed (ready.c sets them): where pick finds it. */
void broker_workers_reindex(broker_workers_t *self, broker_worker_t *worker);
/* Records the worker's CURVE key (NULL or "": none); 0, or -1 (out of memory). */
int broker_worker_set_peer_key(broker_worker_t *worker, const char *peer_key);
/* A known worker other than the one with this identity that holds name with a
 * key other than peer_key, or NULL (also when peer_key is NULL or ""). */
broker_worker_t *broker_workers_name_holder(broker_workers_t *self, const char *name,
                                            const char *peer_key, const void *identity,
                                            size_t identity_len);
/* Remembers an identity whose messages are to be ignored; forgets it again. */
#define BROKER_REFUSED_MAX 256
void broker_workers_refuse(broker_workers_t *self, const void *identity, size_t identity_len);
void broker_workers_unrefuse(broker_workers_t *self, const void *identity, size_t identity_len);
bool broker_workers_refused(const broker_workers_t *self, const void *identity,
                            size_t identity_len);
/* Forgets a worker (pointer invalid afterwards); its description stays in the
 * list of lost workers for BROKER_WORKERS_LOST_KEEP_US, with lost_at = now_us
 * and why. */
#define BROKER_WORKERS_LOST_KEEP_US (10LL * 60 * 1000 * 1000)
#define BROKER_WORKERS_LOST_MAX 256
void broker_workers_remove(broker_workers_t *self, broker_worker_t *worker);
void broker_workers_remove_lost(broker_workers_t *self, broker_worker_t *worker, const char *why,
                                int64_t now_us);

/* Records host and version (NULL: not said) and the remote address (NULL or
 * "": unknown); 0, or -1 (out of memory). */
int broker_worker_set_about(broker_worker_t *worker, const char *host, const char *version,
                            const char *address);
/* Marks it unhealthy for why (it takes no work), or healthy again (why NULL);
 * true when that changed its health. */
bool broker_worker_set_unhealthy(broker_worker_t *worker, const char *why);
/* Connected workers that are healthy (whether draining or not). */
size_t broker_workers_count_healthy(const broker_workers_t *self);
/* The worker as GET /workers shows it (docs/api.md), or NULL (out of memory). */
json_t *broker_worker_describe(const broker_worker_t *worker);
/* Every connected worker, then those lost in the last BROKER_WORKERS_LOST_KEEP_US
 * (older ones are forgotten now): a new array, or NULL (out of memory). */
json_t *broker_workers_list(broker_workers_t *self, int64_t now_us);

size_t broker_workers_count(const broker_workers_t *self);
/* The last time (monotonic ms, 0: never) another worker offering one of this
 * worker's providers completed an attempt: whether phases like the ones this
 * worker fails succeed elsewhere (quarantine.h). A worker of other providers
 * runs other phases, so its successes say nothing about this one. */
int64_t broker_workers_peer_completed_ms(broker_workers_t *self, const broker_worker_t *worker);
/* Slots running an attempt, and slots free, over all workers (prefetch aside). */
void broker_workers_slots(const broker_workers_t *self, int64_t *busy, int64_t *free_slots);
/* i-th worker, 0 ≤ i < count (order changes when one is removed). */
broker_worker_t *broker_workers_at(broker_workers_t *self, size_t i);
/* A worker silent for longer than max_silence_ms (the longest silent), or NULL. */
broker_worker_t *broker_workers_expired(broker_workers_t *self, int64_t now_ms,
                                        int64_t max_silence_ms);
/* A worker offering provider (NULL: any) that is healthy and not draining: the least busy one
 * with a free slot, else the least busy one with a prefetch place left, else NULL.
 * Ties go to the one that has held that many attempts longest (at the start, the
 * one registered first). */
broker_worker_t *broker_workers_pick(broker_workers_t *self, const char *provider);
/* Whether it holds fewer attempts than its slots (a new one would start at once). */
bool broker_worker_slot_free(const broker_worker_t *worker);

size_t broker_worker_busy(const broker_worker_t *worker);
/* The held entry for this attempt, or NULL. */
broker_held_t *broker_worker_find(broker_worker_t *worker, const char *execution_id,
                                  const char *phase_id, int64_t attempt);
/* Records (or re-marks) an attempt the worker holds; 0 or -1 (out of memory). */
int broker_worker_hold(broker_worker_t *worker, const char *execution_id, const char *phase_id,
                       int64_t attempt, bool current);
/* Drops it; true when it was held. */
bool broker_worker_release(broker_worker_t *worker, const char *execution_id,
                           const char *phase_id, int64_t attempt);

#endif
