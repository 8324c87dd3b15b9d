/* fleet_sim: many simulated workers in one process, for the `fleet` workload
 * (issue 24). Each is a libzmq DEALER of its own with its own name and slots,
 * speaking the worker protocol through proto/ (the same codec and schemas as
 * syn-worker, so the broker cannot tell them apart): READY, PROGRESS started,
 * RESULT with exactly the mock agent's output after the phase's "#mock sleep
 * MS" (else the configured delay), heartbeats at the real interval when
 * nothing else was sent, READY again (with what it runs) when the broker says
 * DISCONNECT after a restart, results sent again until acknowledged. It stands
 * alone because it is the one part of synload that plays the worker's side.
 *
 * The workers run on a thread of their own; the caller reads counters. */
#ifndef SYNLOAD_FLEET_SIM_H
#define SYNLOAD_FLEET_SIM_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    const char *endpoint;      /* the broker's workers endpoint */
    int workers;
    int slots;                 /* per worker */
    int heartbeat_ms;          /* the broker's interval (1000 as shipped) */
    int delay_ms;              /* a phase's length when its prompt names none */
    const char *name_prefix;   /* worker i is "<prefix>-<i>" */
    const char *curve_secret;  /* CURVE: the workers' secret key file and the */
    const char *broker_key;    /* broker's public one (both NULL: no CURVE) */
} fleet_sim_options_t;

typedef struct {
    uint64_t assigns, results_sent, acks, readys, disconnects, cancels, heartbeats_sent;
    uint64_t send_failures, reconnects; /* reconnects: fresh sockets after silence */
    int64_t held;              /* attempts held now (running or result not yet acked) */
} fleet_sim_stats_t;

typedef struct fleet_sim_t fleet_sim_t;

/* Raises RLIMIT_NOFILE, makes the context (ZMQ_MAX_SOCKETS above the fleet),
 * connects every worker and starts the thread. NULL with the reason in err. */
fleet_sim_t *fleet_sim_start(const fleet_sim_options_t *opts, char *err, size_t errlen);
/* Stops the thread, closes every socket (no DISCONNECT: as if killed). */
void fleet_sim_stop(fleet_sim_t **self_p);
fleet_sim_stats_t fleet_sim_stats(fleet_sim_t *self);
/* Every attempt held now, and every one assigned later, finishes at once (its
 * result sent on the next turn), whatever its phase's length: the restart's
 * phases run until this (and any the broker requeued after losing it). */
void fleet_sim_finish_all(fleet_sim_t *self);

#endif
