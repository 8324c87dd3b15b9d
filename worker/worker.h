/* worker: the event loop of a syn-worker process.
 *
 * One thread (and libzmq's I/O thread): a libzmq DEALER connected out to the
 * broker's workers ROUTER, CURVE when given keys, plus every running attempt's
 * descriptors and timers, in one zmq_poll. The worker
 * announces itself with READY (name, slots, provider, attempts still running),
 * heartbeats when it has nothing else to say, runs each ASSIGN with its
 * provider while a slot is free (with a prefetch, holds up to that many more,
 * each started the moment a slot frees: short phases then follow each other
 * without waiting for a broker round trip; by default it prefetches only while
 * its phases are short, worker/prefetch.h), streams PROGRESS (started, output chunks,
 * tool calls with their details) and sends a RESULT (with the attempt's usage
 * when its provider accounts one) that it keeps, and resends, until the
 * broker's RESULT_ACK. An INJECT for a running attempt is handed to its agent
 * (the claude provider writes it to the agent's stdin); one that cannot be
 * delivered is logged and dropped.
 *
 * A broken connection (a broker restarting) is made again by libzmq itself,
 * after 100 ms and then up to every second; the broker, not knowing the worker,
 * answers its next message with DISCONNECT and the worker registers again. A
 * broker silent for liveness heartbeat intervals is gone (dead, a link broken
 * without a word, our key refused): the socket is dropped and a fresh one made
 * after a back-off (250 ms doubling to 8 s, the Paranoid Pirate pattern),
 * announcing the attempts that kept running in the meantime and resending
 * unacknowledged results. A DISCONNECT with a reason (the broker refused this
 * worker) is logged as an error and answered the same way, after the back-off.
 * Given several brokers (the active one and its standbys, common/endpoint_list.h),
 * the worker talks to one at a time and, after its silence, moves to the next at
 * once rather than after the back-off, registering there the same way. */
#ifndef SYN_WORKER_WORKER_H
#define SYN_WORKER_WORKER_H

#include <signal.h>
#include <stdint.h>

#include "proto/curve.h"
#include "worker/provider.h"

typedef struct {
    const char *broker;           /* endpoint(s), e.g. tcp://127.0.0.1:5556 or tcp://a:5556,tcp://b:5556 */
    const char *name;             /* announced in READY */
    int slots;                    /* 1..1024 attempts at once */
    int prefetch;                 /* 0..1024 more it holds, each started as a slot frees;
                                   * PREFETCH_AUTO (-1): as phases call for (prefetch.h) */
    int64_t heartbeat_ms;         /* > 0 */
    int liveness;                 /* silent intervals before the broker counts as gone */
    int64_t drain_ms;             /* how long a stop waits for running attempts */
    worker_provider_t *provider;  /* borrowed; outlives the worker */
    /* Why it starts unhealthy (its provider's check failed, --allow-unavailable),
     * or NULL: it takes no work until the check passes. */
    const char *unhealthy;
    const syn_curve_t *curve;     /* borrowed, outlives the worker; NULL: no CURVE */
} worker_config_t;

typedef struct worker_t worker_t;

/* Copies what it needs from config; connects only when worker_run starts. */
worker_t *worker_new(const worker_config_t *config);
/* Stops (SIGKILL to their groups) and reaps whatever still runs. */
void worker_destroy(worker_t **self_p);

/* Runs the loop until *stop_requests (incremented by a signal handler) says
 * to stop: at 1 the worker takes no more work, lets running attempts finish
 * for up to drain_ms (then kills the rest), waits briefly for its results to
 * be acknowledged, says DISCONNECT and returns; at 2 it returns at once. The
 * caller then destroys the worker, which kills anything left. Returns 0. */
int worker_run(worker_t *self, volatile sig_atomic_t *stop_requests);

#endif
