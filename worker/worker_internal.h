/* worker_internal: what the worker's files share (worker.c the loop and the
 * messages, attempts.c the attempts it holds, broker_conn.c its DEALER to the
 * broker, poll_set.c what one zmq_poll waits on, pulling.c and uploading.c the
 * artifacts in and out); nobody outside worker/ includes it. */
#ifndef SYN_WORKER_INTERNAL_H
#define SYN_WORKER_INTERNAL_H

#include "common/endpoint_list.h"
#include "common/log.h"
#include "common/ratelog.h"
#include "proto/curve.h"
#include "proto/msg.h"
#include "worker/prefetch.h"
#include "worker/provider.h"
#include "worker/worker.h"

#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <zmq.h>

#define BACKOFF_FIRST_MS 250
#define BACKOFF_MAX_MS 8000

/* One attempt the worker is responsible for: waiting for a slot (assign set,
 * only with --prefetch), running (run set), or finished with its result
 * waiting for the broker's acknowledgement (result set). */
typedef struct {
    char *execution_id;
    char *workflow_id;
    char *phase_id;
    uint64_t attempt;
    int64_t started_us;      /* when it began (syn_mono_us); 0 when it never ran */
    worker_run_t *run;
    struct pollfd fds[WORKER_RUN_MAX_FDS];
    int nfds;
    size_t streamed;         /* output bytes already sent as PROGRESS */
    int64_t output_sent_ms;  /* when the last output chunk went out, -1 never */
    syn_msg_t *result;
    int64_t result_sent_ms;  /* -1 when it could not be sent yet */
    int64_t result_at_us;    /* when the result was made: its round trip counts from there */
    syn_msg_t *assign;       /* the ASSIGN it will start from, while it waits */
    json_t *injects;         /* INJECTs that came while it waited: [{role, message}] */
    bool started_unsent;     /* its "started" progress could not be sent yet */
    double cost_sent;        /* the cost its last "cost" progress said */
    int64_t cost_sent_ms;    /* when that went out */
    bool cost_unsent;        /* a higher cost waits for COST_EVERY_MS to pass */
    /* Its artifacts (worker/artifacts.h), sent before the result as ARTIFACT chunks:
     * everything before (art_index, art_offset) is stored by the broker. */
    struct worker_artifacts_t *artifacts;
    size_t art_index;
    uint64_t art_offset;
    /* The result's fields while its artifacts are hashed, a slice per loop turn
     * (worker_artifacts_hash); the result is made of them once they are. */
    json_t *pending;
    /* The chunk in flight: sent at art_sent_ms on connection art_sent_conn
     * (worker_t.conn_gen; 0 none) from (art_sent_index, art_sent_offset). */
    uint64_t art_sent_conn;
    size_t art_sent_index;
    uint64_t art_sent_offset;
    int64_t art_sent_ms;
    /* When the last ARTIFACT_GET of its pull went out (pulling.c); -1 none. */
    int64_t pull_sent_ms;
} attempt_t;

struct worker_t {
    /* The brokers it may talk to (one, or the active and its standbys): it follows
     * the current one and moves on after its silence (broker_conn.c). */
    syn_endpoint_list_t *brokers;
    int heard_index;         /* the endpoint last heard from, -1 none yet */
    bool answered;           /* the broker spoke since this socket was made */
    /* Several brokers: the DEALER's connect/disconnect events (a zmq monitor), so an
     * endpoint nobody listens on (a standby, a dead broker) is left in half a second. */
    void *monitor;
    unsigned monitor_seq;
    bool linked;             /* a TCP connection to the broker is up */
    int64_t unlinked_since;
    char *name;
    int slots;
    int prefetch;            /* held beyond the slots now: --prefetch, or what adapt says */
    worker_prefetch_t adapt; /* what phases and round trips took (prefetch.h) */
    int64_t heartbeat_ms;
    int liveness;
    int64_t drain_ms;
    worker_provider_t *provider;

    const syn_curve_t *curve; /* borrowed; NULL: no CURVE */
    void *ctx;               /* the worker's own ZeroMQ context */
    void *conn;              /* the DEALER to the broker; NULL while waiting to reconnect */
    uint64_t conn_gen;       /* how many DEALERs were made: which one a chunk went on */
    int64_t last_recv_ms;
    int64_t started_ms;      /* worker_run began */
    bool ever_heard;         /* a broker has spoken since the start */
    int64_t last_send_ms;
    bool registered;         /* the broker has spoken since our last READY */
    int64_t reconnect_at;
    int64_t backoff_ms;
    int64_t patience_extra_ms; /* the current socket waits this beyond liveness (back-off) */
    int64_t ready_sent_ms;   /* our last READY (-1: none yet) */

    attempt_t **attempts;
    size_t count;
    size_t cap;
    int running;
    int waiting;             /* attempts holding an ASSIGN until a slot frees */

    zmq_pollitem_t *items;
    size_t items_cap;
    int timer_fd;            /* wakes the poll at a deadline; -1 when none could be made */
    int64_t timer_armed_us;  /* the deadline it is set to; -1 when unset or fired */

    bool draining;
    int64_t drain_deadline;
    int64_t leave_deadline;  /* -1 until nothing runs any more */
    uint64_t send_failures;
    syn_ratelog_t *send_log; /* one line per cause of failed sends per interval */

    /* After a worker fault (an agent that could not be started) the worker is
     * unhealthy: it says so in READY, the broker sends it nothing, and it runs
     * its provider's check again after a back-off that doubles while faults
     * recur, until the check passes. */
    char *unhealthy;         /* why, or NULL */
    int64_t recheck_at;
    int64_t recheck_backoff_ms;
};

/* attempts.c: the attempts the worker holds, in arrival order. */
attempt_t *worker_attempt_new(const char *execution_id, const char *workflow_id,
                              const char *phase_id, uint64_t attempt);
void worker_attempt_destroy(attempt_t **a_p);
/* The attempt with this reference (its index in *index when not NULL), or NULL. */
attempt_t *worker_attempt_find(worker_t *self, const char *execution_id, const char *phase_id,
                               uint64_t attempt, size_t *index);
int worker_attempt_add(worker_t *self, attempt_t *a);
void worker_attempt_remove(worker_t *self, size_t index);
void worker_attempts_bound_unacked(worker_t *self);

/* broker_conn.c: the DEALER to the broker, its back-off and its silence. */
void worker_conn_open(worker_t *self, int64_t now);
void worker_conn_close(worker_t *self, int linger_ms);
void worker_conn_check(worker_t *self, int64_t now);
int64_t worker_conn_patience(const worker_t *self);
/* The broker spoke (any message): it is alive, and the one the worker follows. */
void worker_conn_heard(worker_t *self, int64_t now);
void worker_conn_back_off(worker_t *self, int64_t now);
syn_log_level_t worker_conn_trouble_level(const worker_t *self, int64_t now,
                                          syn_log_level_t otherwise);

/* poll_set.c: the items of one zmq_poll and the deadline timer. */
int worker_poll_build(worker_t *self);
void worker_poll_scatter(worker_t *self, int first);
long worker_poll_arm_timer(worker_t *self, int64_t wake_us, int64_t now_us);
void worker_poll_disarm_fired_timer(worker_t *self, const zmq_pollitem_t *item);

/* attempts.c: {execution_id, phase_id, attempt} of a, to build a message on. */
json_t *worker_attempt_ref(const attempt_t *a);

/* broker_conn.c: READY (with what it runs). */
void worker_send_ready(worker_t *self, int64_t now);
/* broker_conn.c: READY again on the same connection, to tell a new prefetch. */
void worker_send_prefetch(worker_t *self, int64_t now);
/* worker.c: every unacknowledged result again. */
void worker_resend_results(worker_t *self, int64_t now);
/* worker.c: sends a message made of fields (stolen; NULL is logged), or msg
 * (kept); 0 when sent. */
int worker_send(worker_t *self, syn_msg_type_t type, json_t *fields, int64_t now);
int worker_send_msg(worker_t *self, const syn_msg_t *msg, int64_t now);

/* uploading.c: a's result (set), or before it the chunk of its artifacts the
 * broker waits for; a's artifacts hashed a slice, its result made and sent
 * once they all are (a->pending set); an ARTIFACT_ACK. */
void worker_send_result(worker_t *self, attempt_t *a, int64_t now);
void worker_uploading_hash(worker_t *self, attempt_t *a, int64_t now_us);
void worker_uploading_ack(worker_t *self, const syn_msg_t *msg, int64_t now);

/* pulling.c: the chunks of earlier phases' files a starting attempt pulls. */
void worker_pulling_step(worker_t *self, attempt_t *a, int64_t now);
/* When a's pull must be asked again (ms), or -1. */
int64_t worker_pulling_wakeup(worker_t *self, attempt_t *a);
void worker_pulling_data(worker_t *self, const syn_msg_t *msg, int64_t now);

#endif
