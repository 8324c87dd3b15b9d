/* broker: the sockets and the event loop around store, engine and api.
 *
 * One thread, three sockets: clients (ROUTER, gateways' DEALERs), workers
 * (ROUTER, workers' DEALERs) and events (PUB). Each turn of the loop:
 *   1. wait for traffic or the next timer (zmq_poll);
 *   2. handle a bounded batch of ready messages from both ROUTERs;
 *   3. timers: heartbeats to workers, silent workers, deadlines;
 *   4. dispatch queued phases to free slots;
 *   5. commit the turn's single transaction (group commit);
 *   6. send what the turn produced — replies, ASSIGNs, acks, events — which all
 *      waited in the outbox for that commit.
 * A commit that fails is rolled back, nothing of its turn is said, the memory is
 * rebuilt from the database and the broker waits for storage to come back
 * (broker/storage_full.h), refusing new work meanwhile. */
#ifndef SYN_BROKER_BROKER_H
#define SYN_BROKER_BROKER_H

#include "broker/artifacts.h"
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    const char *data_dir;       /* created if missing; holds syn.db */
    const char *postgresql;     /* NULL: SQLite in data_dir; else the store's URI (issue 21) */
    const char *clients;        /* ROUTER endpoint for gateways */
    const char *workers;        /* ROUTER endpoint for workers */
    const char *events;         /* PUB endpoint */
    int64_t heartbeat_ms;       /* 1000 */
    int64_t liveness;           /* 3 */
    int64_t kill_grace_ms;      /* 5000 */
    int64_t quarantine_after;   /* 3 (broker/quarantine.h); 0: no quarantine */
    int64_t quarantine_window_ms; /* 60000 */
    broker_artifact_limits_t artifacts; /* broker/artifacts.h; 0: the default */
    const char *workflows_dir;  /* installed at start (broker/preload.h); NULL or "": none */
    /* CURVE (docs/protocol.md, "Security"): with its secret certificate the broker
     * is a CURVE server on all three sockets and lets in only the keys of the
     * authorized directory (broker/zap.h); NULL: no CURVE. */
    const char *curve_secret;
    const char *authorized_keys;
    bool insecure;              /* without curve_secret, bind non-loopback endpoints too */
    /* Retention: finished executions older than retain_seconds (0: kept by age) and
     * beyond the newest retain_max_executions finished ones (0: no limit) are
     * deleted a batch at a time from the loop (broker_store_retention_batch). */
    int64_t retain_seconds;
    int64_t retain_max_executions;
    /* "HOST:PORT" of the broker's own GET /metrics (broker/metrics_http.h); NULL or
     * "": none. No authentication, so loopback unless insecure. */
    const char *metrics;
    /* How long an Idempotency-Key answers the same execution (seconds; 0: 24 h). */
    int64_t idempotency_window_s;
    /* Executions running at once across workflows (0: no limit; broker/limits.h). */
    int64_t max_running;
    /* PostgreSQL: the lease's length (broker/lease.h; 0: BROKER_LEASE_MS). Without
     * the lease the broker is a standby: it binds nothing until it takes it. */
    int64_t lease_ms;
} broker_config_t;

typedef struct {
    uint64_t requests, replies, worker_messages, invalid_messages, send_failures, commits;
    uint64_t budget_turns; /* turns that reached their time budget (messages may wait for the next) */
} broker_stats_t;

typedef struct broker_t broker_t;

/* Whether the configuration may start: --authorized-keys goes with
 * --curve-secret, and without a secret every endpoint is local unless insecure.
 * 0, or -1 with one line in err naming the flag and the remedy. */
int broker_config_check(const broker_config_t *config, char *err, size_t errlen);

/* Opens the database, reloads active executions, installs the workflows of
 * workflows_dir, and binds the sockets. On PostgreSQL only when it takes the
 * lease: otherwise it returns a standby, which broker_poll keeps trying until
 * the lease lapses, and then does all that (broker/lease.h).
 * NULL with the reason in err. */
broker_t *broker_new(const broker_config_t *config, char *err, size_t errlen);
/* Commits what is pending and closes everything. */
void broker_destroy(broker_t **self_p);

/* One turn of the loop, waiting at most max_wait_ms for traffic. 0, or -1 when
 * the database cannot even be read back after a failed commit, or when this
 * broker was deposed (another took the lease; logged): the caller should exit.
 * A failed commit alone is the storage-full mode. */
int broker_poll(broker_t *self, int64_t max_wait_ms);
/* How long a turn reads its sockets before it commits (broker.c's TURN_BUDGET_MS,
 * 50 ms); a test's 0 makes each turn read one message of each socket. */
void broker_set_turn_budget(broker_t *self, int64_t ms);

/* The endpoints actually bound (a "*" port resolved); NULL while standby. */
const char *broker_clients_endpoint(broker_t *self);
const char *broker_workers_endpoint(broker_t *self);
const char *broker_events_endpoint(broker_t *self);

broker_stats_t broker_stats(const broker_t *self);

/* Reads the authorized keys directory again (SIGHUP) and logs how many keys it
 * holds: a removed key is refused from its next connection. The number of keys,
 * or -1 (logged; the keys loaded before stay in force, or no CURVE). */
int broker_reload_keys(broker_t *self);

#endif
