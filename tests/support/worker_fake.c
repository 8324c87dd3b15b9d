/* worker_fake: a fake broker for tests of the built syn-worker program
 * (worker_fake.h). Apart so that the test files of the worker loop's concerns share
 * one definition of each. */
#include "tests/support/worker_fake.h"

#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <czmq.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zmq.h>

#include "common/clock.h"
#include "proto/curve.h"
#include "tests/support/wait.h"

int worker_fake_setup(void **state)
{
    fake_t *fake = calloc(1, sizeof *fake);
    assert_non_null(fake);
    fake->ctx = zmq_ctx_new();
    assert_non_null(fake->ctx);
    fake->router = zmq_socket(fake->ctx, ZMQ_ROUTER);
    assert_non_null(fake->router);
    int linger = 0, mandatory = 1;
    int64_t max_size = (int64_t)SYN_MSG_MAX_SIZE;
    assert_int_equal(zmq_setsockopt(fake->router, ZMQ_LINGER, &linger, sizeof linger), 0);
    assert_int_equal(
        zmq_setsockopt(fake->router, ZMQ_ROUTER_MANDATORY, &mandatory, sizeof mandatory), 0);
    assert_int_equal(zmq_setsockopt(fake->router, ZMQ_MAXMSGSIZE, &max_size, sizeof max_size),
                     0);
    assert_int_equal(zmq_bind(fake->router, "tcp://127.0.0.1:*"), 0);
    char endpoint[256];
    size_t endpoint_len = sizeof endpoint;
    assert_int_equal(zmq_getsockopt(fake->router, ZMQ_LAST_ENDPOINT, endpoint, &endpoint_len), 0);
    const char *colon = strrchr(endpoint, ':');
    assert_non_null(colon);
    fake->port = atoi(colon + 1);
    assert_true(fake->port > 0);
    fake->pid = -1;
    *state = fake;
    return 0;
}

int worker_fake_teardown(void **state)
{
    fake_t *fake = *state;
    if (fake->pid > 0) {
        /* Two stop signals: the worker leaves at once and kills its agents
         * (SIGKILL would leave them behind). */
        kill(fake->pid, SIGTERM);
        wait_signal_taken(fake->pid, SIGTERM, 1000);
        kill(fake->pid, SIGTERM);
        if (wait_exit(fake, 3000) < 0) {
            kill(fake->pid, SIGKILL);
            waitpid(fake->pid, NULL, 0);
        }
    }
    if (fake->curve_router) {
        zsock_destroy(&fake->curve_router);
        zactor_destroy(&fake->auth);
        char cmd[128];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", fake->dir);
        assert_int_equal(system(cmd), 0);
    } else {
        zmq_close(fake->router);
        zmq_ctx_term(fake->ctx);
    }
    free(fake);
    return 0;
}

/* The fake broker as a CURVE server (its secret in dir/broker.key_secret, public
 * dir/broker.key) admitting only the keys in dir/authorized through zauth, as
 * the broker does; dir/worker.key_secret is allowed in, dir/stranger.key_secret
 * is not. */
int worker_fake_setup_curve(void **state)
{
    fake_t *fake = calloc(1, sizeof *fake);
    assert_non_null(fake);
    snprintf(fake->dir, sizeof fake->dir, "/tmp/syn-test-worker-curve-XXXXXX");
    assert_non_null(mkdtemp(fake->dir));
    char path[128];
    const char *names[] = {"broker", "worker", "stranger"};
    for (int i = 0; i < 3; i++) {
        zcert_t *cert = zcert_new();
        assert_non_null(cert);
        snprintf(path, sizeof path, "%s/%s.key", fake->dir, names[i]);
        assert_int_equal(zcert_save(cert, path), 0);
        if (i == 1) {
            snprintf(path, sizeof path, "%s/authorized", fake->dir);
            assert_int_equal(mkdir(path, 0700), 0);
            snprintf(path, sizeof path, "%s/authorized/worker.key", fake->dir);
            assert_int_equal(zcert_save_public(cert, path), 0);
        }
        zcert_destroy(&cert);
    }
    fake->auth = zactor_new(zauth, NULL);
    assert_non_null(fake->auth);
    snprintf(path, sizeof path, "%s/authorized", fake->dir);
    assert_int_equal(zstr_sendx(fake->auth, "CURVE", path, NULL), 0);
    assert_int_equal(zsock_wait(fake->auth), 0);

    char err[512];
    snprintf(path, sizeof path, "%s/broker.key_secret", fake->dir);
    syn_curve_t *keys = syn_curve_new_server(path, err, sizeof err);
    if (!keys)
        fail_msg("%s", err);
    fake->curve_router = zsock_new(ZMQ_ROUTER);
    assert_non_null(fake->curve_router);
    zsock_set_linger(fake->curve_router, 0);
    zsock_set_router_mandatory(fake->curve_router, 1);
    zsock_set_maxmsgsize(fake->curve_router, (int)SYN_MSG_MAX_SIZE);
    syn_curve_apply(keys, fake->curve_router);
    syn_curve_destroy(&keys);
    fake->port = zsock_bind(fake->curve_router, "tcp://127.0.0.1:*");
    assert_true(fake->port > 0);
    fake->router = zsock_resolve(fake->curve_router);
    fake->pid = -1;
    *state = fake;
    return 0;
}

/* Starts syn-worker against the fake broker with the mock provider (unless
 * extra, more flags, says otherwise). */
void start_worker(fake_t *fake, const char *const *extra)
{
    if (access(WORKER_BIN, X_OK) != 0)
        fail_msg("%s is not built (build the syn-worker target first)", WORKER_BIN);
    char endpoint[64], heartbeat[16];
    snprintf(endpoint, sizeof endpoint, "tcp://127.0.0.1:%d", fake->port);
    snprintf(heartbeat, sizeof heartbeat, "%d", HEARTBEAT_MS);
    /* --prefetch 0: these tests script every message, and an adaptive prefetch
     * would add a READY of its own after a few short phases (extra may still
     * give one: the last --prefetch counts; test_worker_prefetch tests auto). */
    const char *argv[32] = {WORKER_BIN,     "--broker",    endpoint,    "--heartbeat-ms",
                            heartbeat,      "--liveness",  "3",         "--name",
                            "test-worker",  "--log-level", "warn",      "--prefetch",
                            "0"};
    int argc = 13;
    for (int i = 0; extra && extra[i] && argc < 31; i++)
        argv[argc++] = extra[i];
    argv[argc] = NULL;
    fake->pid = fork();
    assert_true(fake->pid >= 0);
    if (fake->pid == 0) {
        int fd = fake->log_path[0] ? open(fake->log_path, O_WRONLY | O_CREAT | O_APPEND, 0600)
                                   : -1;
        if (fd >= 0)
            dup2(fd, 2);
        execv(WORKER_BIN, (char **)argv);
        _exit(127);
    }
}

void send_to_worker(fake_t *fake, syn_msg_type_t type, json_t *fields)
{
    syn_msg_t *msg = syn_msg_new_with(type, fields ? fields : json_object());
    assert_non_null(msg);
    if (syn_msg_send(fake->router, fake->id, fake->id_len, msg) != 0)
        fail_msg("send %s: %s", syn_msg_type_name(type), strerror(errno));
    syn_msg_destroy(&msg);
}

/* Receives the next message from any worker within timeout_ms (NULL if none),
 * remembering its identity. With keepalive, heartbeats the worker meanwhile
 * so it keeps counting us alive. Heartbeats it sends are counted, not returned. */
syn_msg_t *next_msg(fake_t *fake, int64_t timeout_ms, bool keepalive)
{
    int64_t give_up = syn_mono_ms() + timeout_ms;
    for (;;) {
        int64_t now = syn_mono_ms();
        if (keepalive && fake->id_len > 0 && now - fake->last_heartbeat_sent >= HEARTBEAT_MS / 2) {
            send_to_worker(fake, SYN_MSG_HEARTBEAT, NULL);
            fake->last_heartbeat_sent = now;
        }
        if (now >= give_up)
            return NULL;
        zmq_pollitem_t item = {.socket = fake->router, .events = ZMQ_POLLIN};
        long wait = give_up - now < 20 ? give_up - now : 20;
        if (zmq_poll(&item, 1, wait) <= 0)
            continue;
        syn_msg_t *msg = NULL;
        unsigned char id[256];
        size_t id_len = sizeof id;
        char err[256];
        int rc = syn_msg_recv(fake->router, &msg, id, &id_len, err, sizeof err);
        if (rc == -2)
            fail_msg("the worker sent an invalid message: %s", err);
        if (rc != 0)
            continue;
        memcpy(fake->id, id, id_len);
        fake->id_len = id_len;
        if (syn_msg_type(msg) == SYN_MSG_HEARTBEAT) {
            fake->heartbeats_seen++;
            syn_msg_destroy(&msg);
            continue;
        }
        return msg;
    }
}

/* The next message of the given type (others are skipped), or a failure. */
syn_msg_t *expect(fake_t *fake, syn_msg_type_t type, int64_t timeout_ms, bool keepalive)
{
    int64_t give_up = syn_mono_ms() + wait_scaled_ms((int)timeout_ms);
    for (;;) {
        int64_t left = give_up - syn_mono_ms();
        syn_msg_t *msg = left > 0 ? next_msg(fake, left, keepalive) : NULL;
        if (!msg)
            fail_msg("no %s from the worker within %lld ms", syn_msg_type_name(type),
                     (long long)timeout_ms);
        if (syn_msg_type(msg) == type)
            return msg;
        syn_msg_destroy(&msg);
    }
}

const char *str_of(const syn_msg_t *msg, const char *name)
{
    const char *s = json_string_value(json_object_get(syn_msg_fields(msg), name));
    if (!s)
        fail_msg("%s has no string field %s", syn_msg_type_name(syn_msg_type(msg)), name);
    return s;
}

json_int_t int_of(const syn_msg_t *msg, const char *name)
{
    json_t *v = json_object_get(syn_msg_fields(msg), name);
    assert_true(json_is_integer(v));
    return json_integer_value(v);
}

void assert_ref(const syn_msg_t *msg, const char *execution_id, const char *phase_id,
                json_int_t attempt)
{
    assert_string_equal(str_of(msg, "execution_id"), execution_id);
    assert_string_equal(str_of(msg, "phase_id"), phase_id);
    assert_int_equal(int_of(msg, "attempt"), attempt);
}

json_t *ref(const char *execution_id, const char *phase_id, json_int_t attempt)
{
    return json_pack("{s:s, s:s, s:I}", "execution_id", execution_id, "phase_id", phase_id,
                     "attempt", attempt);
}

void assign(fake_t *fake, const char *execution_id, const char *phase_id,
            json_int_t attempt, const char *prompt, const char *provider)
{
    json_t *fields = json_pack("{s:s, s:s, s:s, s:I, s:s, s:n, s:I, s:s?}", "execution_id",
                               execution_id, "workflow_id", "wf-test", "phase_id", phase_id,
                               "attempt", attempt, "prompt", prompt, "model", "timeout_ms",
                               (json_int_t)60000, "provider", provider);
    assert_non_null(fields);
    if (!provider)
        json_object_set_new(fields, "provider", json_null());
    send_to_worker(fake, SYN_MSG_ASSIGN, fields);
}

void ack(fake_t *fake, const char *execution_id, const char *phase_id, json_int_t attempt)
{
    send_to_worker(fake, SYN_MSG_RESULT_ACK, ref(execution_id, phase_id, attempt));
}

/* Waits for READY and checks what it announces. */
syn_msg_t *expect_ready(fake_t *fake, json_int_t slots, size_t running)
{
    syn_msg_t *ready = expect(fake, SYN_MSG_READY, 5000, false);
    assert_string_equal(str_of(ready, "worker"), "test-worker");
    assert_int_equal(int_of(ready, "slots"), slots);
    json_t *providers = json_object_get(syn_msg_fields(ready), "providers");
    assert_int_equal(json_array_size(providers), 1);
    assert_int_equal(json_array_size(json_object_get(syn_msg_fields(ready), "running")),
                     running);
    return ready;
}

/* Starts the worker and takes its first READY (slots free, nothing running). */
void start_registered(fake_t *fake, const char *const *extra, json_int_t slots)
{
    start_worker(fake, extra);
    syn_msg_t *ready = expect_ready(fake, slots, 0);
    syn_msg_destroy(&ready);
}

/* Waits for the next message of this type and drops it. */
void discard_next(fake_t *fake, syn_msg_type_t type, int64_t timeout_ms)
{
    syn_msg_t *msg = expect(fake, type, timeout_ms, true);
    syn_msg_destroy(&msg);
}

/* Waits for a leaving worker's DISCONNECT without heartbeating it: once it
 * has gone, a heartbeat to it fails (the ROUTER is mandatory). */
void expect_goodbye(fake_t *fake, int64_t timeout_ms)
{
    syn_msg_t *msg = expect(fake, SYN_MSG_DISCONNECT, timeout_ms, false);
    syn_msg_destroy(&msg);
}

/* The next RESULT, for this attempt, with this status (for the caller to destroy). */
syn_msg_t *expect_result(fake_t *fake, const char *execution_id, const char *phase_id,
                         json_int_t attempt, const char *status)
{
    syn_msg_t *msg = expect(fake, SYN_MSG_RESULT, 2000, true);
    assert_ref(msg, execution_id, phase_id, attempt);
    assert_string_equal(str_of(msg, "status"), status);
    return msg;
}

/* Waits for the worker process to exit; its exit status, or -1 on timeout. */
int wait_exit(fake_t *fake, int64_t timeout_ms)
{
    for (wait_t w = wait_begin(timeout_ms); wait_next(&w);) {
        int status;
        if (waitpid(fake->pid, &status, WNOHANG) == fake->pid) {
            fake->pid = -1;
            return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        }
    }
    return -1;
}
