/* syncer: the WAL's fdatasync on a thread of its own.
 *
 * With SQLite syncing inside COMMIT the broker's loop sat idle for every
 * fdatasync (~a fifth of a W1 run). The store now leaves the sync to the broker
 * (broker_store_defer_sync), and the loop hands it to this thread: while the disk
 * confirms one commit, the loop reads and handles the next messages in a new
 * transaction, which it commits once that sync is done (so at most one sync runs
 * and the next commit groups everything that arrived meanwhile). What a commit
 * covers stays in the outbox until its sync succeeded: a client or worker never
 * hears of anything the disk does not hold, as with synchronous=FULL.
 *
 * The loop learns that a sync finished from broker_syncer_fd, an eventfd it polls
 * beside its sockets. A failed sync is final (the kernel may have dropped the
 * pages it could not write): the broker stops and a restart reloads the file. */
#ifndef SYN_BROKER_SYNCER_H
#define SYN_BROKER_SYNCER_H

#include <stdbool.h>
#include <stddef.h>

/* Makes fd's data durable: 0, or -1 with errno. fdatasync unless a test holds
 * or fails it. */
typedef int (*broker_sync_fn)(int fd, void *arg);

typedef struct broker_syncer_t broker_syncer_t;

/* Opens path (the WAL, which must exist), syncs its directory once (the file's
 * name must survive a crash too) and starts the thread. sync NULL: fdatasync.
 * NULL with the reason in err. */
broker_syncer_t *broker_syncer_new(const char *path, broker_sync_fn sync, void *sync_arg,
                                   char *err, size_t errlen);
/* Waits for a sync under way, then stops the thread and closes the file. */
void broker_syncer_destroy(broker_syncer_t **self_p);

/* Starts a sync of everything written to the file so far. Only while idle:
 * 0, or -1 when one is already under way. */
int broker_syncer_start(broker_syncer_t *self);
/* True from broker_syncer_start until broker_syncer_collect has seen it end. */
bool broker_syncer_busy(const broker_syncer_t *self);
/* Readable once the sync under way has ended. */
int broker_syncer_fd(const broker_syncer_t *self);
/* Without waiting: 1 when the sync under way ended well (the syncer is idle
 * again), 0 when it still runs or none was started, -1 when it failed (reason
 * in err; the syncer is idle, but nothing it covered may be said). */
int broker_syncer_collect(broker_syncer_t *self, char *err, size_t errlen);
/* Syncs now and waits for it (start-up, shutdown): after any sync under way,
 * one more. 0, or -1 with the reason in err. */
int broker_syncer_sync_now(broker_syncer_t *self, char *err, size_t errlen);

#endif
