/* lease: which of several brokers on one PostgreSQL is active (issue 21), and
 * when a standby takes over. It decides the timing and the identity; the SQL is
 * the store's (broker/store_lease.c, schema version 11).
 *
 * Why a lease row with a fencing token rather than a session advisory lock:
 * a broker that is stopped (SIGSTOP, a VM paused, a host whose network is cut
 * but whose TCP session the server has not yet dropped) keeps its session and
 * its lock, and the standby would never take over. A lease lapses by the
 * server's clock unless renewed, so a standby takes it within lease_ms of the
 * active's last renewal; and because every takeover raises the token, a
 * broker that comes back cannot commit (each of its write transactions opens
 * with syn_fence(token), in the same pipeline, so the check costs no round
 * trip) nor renew: it learns it was deposed and stops.
 *
 * The active renews every lease_ms / 3; a standby tries every lease_ms / 6. With
 * the default 3 s lease a kill -9 of the active is followed by a takeover
 * within 3.5 s, then the standby loads the state as a restart does and only
 * then binds its sockets (gateways and workers find it by their endpoint
 * lists, or by the same address moved to it).
 *
 * SQLite has no lease: one broker, always active (broker_lease_t's token 0). */
#ifndef SYN_BROKER_LEASE_H
#define SYN_BROKER_LEASE_H

#include "broker/store.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define BROKER_LEASE_MS 3000

typedef struct {
    int64_t lease_ms;
    char host[128];
    pid_t pid;
    char clients[200];      /* the endpoint gateways reach it at, as configured */
    char holder[400];       /* "HOST pid=N clients=EP": its name in the lease row */
    int64_t token;          /* > 0 while active on PostgreSQL; 0 SQLite or standby */
    int64_t active_since_us;
    int64_t next_try_ms;    /* standby: the next attempt; active: the next renewal */
    int64_t renewed_ms;     /* the last renewal that the database confirmed */
    int64_t seen_token;     /* standby: the holder last logged, to log each once */
} broker_lease_t;

/* Names this broker (its host, pid and clients endpoint). */
void broker_lease_init(broker_lease_t *self, const char *clients, int64_t lease_ms);
/* A standby's turn: when it is time, tries to take the lease (logging the
 * holder it waits for, once per holder). 1 taken (now active), 0 not yet, -1
 * the database failed. */
int broker_lease_try(broker_lease_t *self, broker_store_t *store, int64_t now_ms);
/* The active's turn (outside a transaction): renews the lease when due. 0, or
 * -1 when this broker is no longer active (deposed, or unable to renew for a
 * whole lease): logged, and the caller stops. */
int broker_lease_keep(broker_lease_t *self, broker_store_t *store, int64_t now_ms);
/* Milliseconds until the next try or renewal (0: due). */
int64_t broker_lease_wait_ms(const broker_lease_t *self, int64_t now_ms);
/* {"host", "pid", "clients", "token", "since"}: which broker answers, for
 * /health and GET /workers; NULL without a lease (SQLite). */
json_t *broker_lease_json(const broker_lease_t *self);

#endif
