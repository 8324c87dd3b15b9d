/* worker_fake: the broker's side of the worker protocol, by hand, for tests of the
 * built syn-worker program — a ROUTER in the test's process (plaintext, or CURVE
 * through zauth as the broker does), the worker started as a child against it, and
 * the expectations on what it sends. Each fails the running cmocka test on a
 * mismatch. */
#ifndef SYN_TEST_WORKER_FAKE_H
#define SYN_TEST_WORKER_FAKE_H

#include "proto/msg.h"

#include <czmq.h>
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define WORKER_BIN SYN_BIN_DIR "/syn-worker"
#define HEARTBEAT_MS 100 /* liveness 3: the worker gives up on us after 300 ms */

typedef struct {
    void *ctx;
    void *router;
    zsock_t *curve_router;   /* setup_curve: the router, in czmq's context (zauth's) */
    zactor_t *auth;
    char dir[64];            /* setup_curve: the certificates */
    int port;
    pid_t pid;               /* the worker process */
    unsigned char id[256];   /* the worker's current identity */
    size_t id_len;
    int heartbeats_seen;
    int64_t last_heartbeat_sent;
    char log_path[64];       /* when set, the worker's stderr goes there */
} fake_t;

/* cmocka setup: a plaintext fake broker (a ROUTER on a random loopback port). */
int worker_fake_setup(void **state);

/* cmocka teardown: stops the worker if it still runs, closes the fake broker. */
int worker_fake_teardown(void **state);

/* The fake broker as a CURVE server (its secret in dir/broker.key_secret, public
 * dir/broker.key) admitting only the keys in dir/authorized through zauth, as
 * the broker does; dir/worker.key_secret is allowed in, dir/stranger.key_secret
 * is not. */
int worker_fake_setup_curve(void **state);

/* A cmocka test run against the plaintext fake broker, or the CURVE one. */
#define worker_test(fn) cmocka_unit_test_setup_teardown(fn, worker_fake_setup, worker_fake_teardown)
#define worker_curve_test(fn) \
    cmocka_unit_test_setup_teardown(fn, worker_fake_setup_curve, worker_fake_teardown)

/* Starts syn-worker against the fake broker with the mock provider (unless
 * extra, more flags, says otherwise). */
void start_worker(fake_t *fake, const char *const *extra);

/* Sends a message of this type to the worker last heard from; takes fields. */
void send_to_worker(fake_t *fake, syn_msg_type_t type, json_t *fields);

/* Receives the next message from any worker within timeout_ms (NULL if none),
 * remembering its identity. With keepalive, heartbeats the worker meanwhile
 * so it keeps counting us alive. Heartbeats it sends are counted, not returned. */
syn_msg_t *next_msg(fake_t *fake, int64_t timeout_ms, bool keepalive);

/* The next message of the given type (others are skipped), or a failure. */
syn_msg_t *expect(fake_t *fake, syn_msg_type_t type, int64_t timeout_ms, bool keepalive);

/* The string field name of msg, or NULL. */
const char *str_of(const syn_msg_t *msg, const char *name);

/* The integer field name of msg (fails the test if it is not one). */
json_int_t int_of(const syn_msg_t *msg, const char *name);

/* Fails unless msg names this attempt. */
void assert_ref(const syn_msg_t *msg, const char *execution_id, const char *phase_id,
                json_int_t attempt);

/* The fields naming an attempt (execution_id, phase_id, attempt). */
json_t *ref(const char *execution_id, const char *phase_id, json_int_t attempt);

/* Sends ASSIGN of this attempt with this prompt (provider NULL: the default). */
void assign(fake_t *fake, const char *execution_id, const char *phase_id,
            json_int_t attempt, const char *prompt, const char *provider);

/* Sends RESULT_ACK for this attempt. */
void ack(fake_t *fake, const char *execution_id, const char *phase_id, json_int_t attempt);

/* Waits for READY and checks what it announces. */
syn_msg_t *expect_ready(fake_t *fake, json_int_t slots, size_t running);

/* Starts the worker and takes its first READY (slots free, nothing running). */
void start_registered(fake_t *fake, const char *const *extra, json_int_t slots);

/* Waits for the next message of this type and drops it. */
void discard_next(fake_t *fake, syn_msg_type_t type, int64_t timeout_ms);

/* Waits for a leaving worker's DISCONNECT without heartbeating it: once it
 * has gone, a heartbeat to it fails (the ROUTER is mandatory). */
void expect_goodbye(fake_t *fake, int64_t timeout_ms);

/* The next RESULT, for this attempt, with this status (for the caller to destroy). */
syn_msg_t *expect_result(fake_t *fake, const char *execution_id, const char *phase_id,
                         json_int_t attempt, const char *status);

/* Waits for the worker process to exit; its exit status, or -1 on timeout. */
int wait_exit(fake_t *fake, int64_t timeout_ms);

#endif
