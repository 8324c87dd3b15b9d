#include "tests/support/fake_broker.h"
#include "proto/curve.h"

#include <czmq.h>
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

struct fake_broker_t {
    fake_broker_config_t config;
    zsock_t *router, *pub;
    char endpoint[128], events_endpoint[128];
    pthread_t thread;
    atomic_int stop;
    atomic_int close_events;
    zsock_t *pub_monitor;       /* the PUB's handshakes, read by the thread */
    zactor_t *auth;             /* with curve_secret: admits every client key, as a
                                 * broker's ZAP handler must answer (ZAP is enforced) */
    atomic_int pub_handshakes; /* counted from pub_monitor */
    atomic_int published;      /* events handed to the PUB (sent or dropped by its queue) */
    pthread_mutex_t lock; /* guards everything below */
    json_t *canned;       /* op -> {"status", "body"} */
    json_t *counts;       /* op -> requests received */
    int total;            /* requests received, every op */
    json_t *outbox;       /* events to publish */
};

void fake_broker_send(fake_broker_t *self, const unsigned char *identity, size_t identity_len,
                      syn_msg_t *msg)
{
    if (syn_msg_send(zsock_resolve(self->router), identity, identity_len, msg) != 0)
        fprintf(stderr, "fake broker: send failed: %s\n", strerror(errno));
}

void fake_broker_reply(fake_broker_t *self, const unsigned char *identity, size_t identity_len,
                       json_int_t id, int status, json_t *body)
{
    syn_msg_t *reply = syn_msg_new_with(
        SYN_MSG_REPLY, json_pack("{s:I, s:i, s:o}", "id", id, "status", status, "body", body));
    fake_broker_send(self, identity, identity_len, reply);
    syn_msg_destroy(&reply);
}

void fake_broker_answer(fake_broker_t *self, const fake_request_t *request, int status,
                        json_t *body)
{
    fake_broker_reply(self, request->identity, request->identity_len, request->id, status, body);
}

void fake_broker_set_reply(fake_broker_t *self, const char *op, int status, json_t *body)
{
    pthread_mutex_lock(&self->lock);
    json_object_set_new(self->canned, op, json_pack("{s:i, s:o}", "status", status, "body", body));
    pthread_mutex_unlock(&self->lock);
}

void fake_broker_set_healthy(fake_broker_t *self, int workers)
{
    fake_broker_set_reply(self, "health", 200,
                          json_pack("{s:s, s:s, s:i}", "status", "ok", "broker", "up",
                                    "workers", workers));
}

void fake_broker_publish(fake_broker_t *self, json_t *event)
{
    pthread_mutex_lock(&self->lock);
    json_array_append(self->outbox, event);
    pthread_mutex_unlock(&self->lock);
}

void fake_broker_close_events(fake_broker_t *self)
{
    atomic_store(&self->close_events, 1);
}

int fake_broker_published(fake_broker_t *self)
{
    return atomic_load(&self->published);
}

int fake_broker_events_handshakes(fake_broker_t *self)
{
    return atomic_load(&self->pub_handshakes);
}

int fake_broker_requests(fake_broker_t *self, const char *op)
{
    pthread_mutex_lock(&self->lock);
    int n = op ? (int)json_integer_value(json_object_get(self->counts, op)) : self->total;
    pthread_mutex_unlock(&self->lock);
    return n;
}

void fake_broker_reset_requests(fake_broker_t *self)
{
    pthread_mutex_lock(&self->lock);
    json_object_clear(self->counts);
    self->total = 0;
    pthread_mutex_unlock(&self->lock);
}

/* Counts the request, then answers it from the canned replies or the handler. */
static void handle(fake_broker_t *self, const fake_request_t *request)
{
    pthread_mutex_lock(&self->lock);
    self->total++;
    json_int_t seen = json_integer_value(json_object_get(self->counts, request->op));
    json_object_set_new(self->counts, request->op, json_integer(seen + 1));
    json_t *canned = json_incref(json_object_get(self->canned, request->op));
    pthread_mutex_unlock(&self->lock);
    if (canned) {
        fake_broker_answer(self, request,
                           (int)json_integer_value(json_object_get(canned, "status")),
                           json_deep_copy(json_object_get(canned, "body")));
        json_decref(canned);
    } else if (self->config.handler) {
        self->config.handler(self, request, self->config.user);
    }
}

static void receive_requests(fake_broker_t *self)
{
    void *router = zsock_resolve(self->router);
    for (;;) {
        fake_request_t request = {.identity_len = sizeof request.identity};
        syn_msg_t *msg = NULL;
        char err[256];
        int rc = syn_msg_recv(router, &msg, request.identity, &request.identity_len, err,
                              sizeof err);
        if (rc == -1)
            break;
        if (rc == -2) {
            fprintf(stderr, "fake broker: bad message: %s\n", err);
            continue;
        }
        json_t *fields = syn_msg_fields(msg);
        request.id = json_integer_value(json_object_get(fields, "id"));
        request.op = json_string_value(json_object_get(fields, "op"));
        request.args = json_object_get(fields, "args");
        if (request.op)
            handle(self, &request);
        syn_msg_destroy(&msg);
    }
}

/* Counts the PUB's successful handshakes (a monitor event is two frames: the event
 * id with its value, then the endpoint). */
static void read_pub_monitor(fake_broker_t *self)
{
    void *socket = zsock_resolve(self->pub_monitor);
    zmq_msg_t frame;
    zmq_msg_init(&frame);
    while (zmq_msg_recv(&frame, socket, ZMQ_DONTWAIT) >= 0) {
        uint16_t id = 0;
        bool first = zmq_msg_size(&frame) >= sizeof id;
        if (first)
            memcpy(&id, zmq_msg_data(&frame), sizeof id);
        if (first && id == ZMQ_EVENT_HANDSHAKE_SUCCEEDED)
            atomic_fetch_add(&self->pub_handshakes, 1);
        while (zmq_msg_more(&frame) && zmq_msg_recv(&frame, socket, ZMQ_DONTWAIT) >= 0)
            ; /* the endpoint */
    }
    zmq_msg_close(&frame);
}

static void publish_outbox(fake_broker_t *self)
{
    if (atomic_load(&self->close_events))
        zsock_destroy(&self->pub);
    pthread_mutex_lock(&self->lock);
    size_t i;
    json_t *event;
    json_array_foreach(self->outbox, i, event) {
        if (!self->pub)
            break;
        const char *topic = json_string_value(json_object_get(event, "execution_id"));
        syn_msg_t *msg = syn_msg_new_with(SYN_MSG_EVENT, json_incref(event));
        if (syn_msg_send(zsock_resolve(self->pub), topic ? topic : "-",
                         topic ? strlen(topic) : 1, msg) != 0)
            fprintf(stderr, "fake broker: publish failed: %s\n", strerror(errno));
        syn_msg_destroy(&msg);
        atomic_fetch_add(&self->published, 1);
    }
    json_array_clear(self->outbox);
    pthread_mutex_unlock(&self->lock);
}

static void *run(void *arg)
{
    fake_broker_t *self = arg;
    while (!atomic_load(&self->stop)) {
        zmq_pollitem_t item = {zsock_resolve(self->router), 0, ZMQ_POLLIN, 0};
        zmq_poll(&item, 1, self->config.poll_ms);
        receive_requests(self);
        read_pub_monitor(self);
        if (self->config.tick)
            self->config.tick(self, self->config.user);
        publish_outbox(self);
    }
    return NULL;
}

/* sndhwm 0 keeps zmq's default; curve NULL: plain text. */
static zsock_t *bind_random(int type, int sndhwm, const syn_curve_t *curve, char *endpoint,
                            size_t endpoint_size)
{
    zsock_t *sock = zsock_new(type);
    assert_non_null(sock);
    if (curve)
        syn_curve_apply(curve, sock);
    zsock_set_linger(sock, 0);
    if (type == ZMQ_ROUTER)
        zsock_set_router_mandatory(sock, 1);
    if (sndhwm > 0)
        zsock_set_sndhwm(sock, sndhwm);
    assert_true(zsock_bind(sock, "tcp://127.0.0.1:*") > 0);
    snprintf(endpoint, endpoint_size, "%s", zsock_endpoint(sock));
    return sock;
}

fake_broker_t *fake_broker_start(const fake_broker_config_t *config)
{
    fake_broker_t *self = calloc(1, sizeof *self);
    assert_non_null(self);
    if (config)
        self->config = *config;
    if (self->config.poll_ms <= 0)
        self->config.poll_ms = 5;
    pthread_mutex_init(&self->lock, NULL);
    self->canned = json_object();
    self->counts = json_object();
    self->outbox = json_array();
    syn_curve_t *curve = NULL;
    if (self->config.curve_secret) {
        self->auth = zactor_new(zauth, NULL);
        zstr_sendx(self->auth, "CURVE", CURVE_ALLOW_ANY, NULL);
        zsock_wait(self->auth);
        char err[512];
        curve = syn_curve_new_server(self->config.curve_secret, err, sizeof err);
        if (!curve)
            fail_msg("fake broker: %s", err);
    }
    self->router = bind_random(ZMQ_ROUTER, 0, curve, self->endpoint, sizeof self->endpoint);
    self->pub = bind_random(ZMQ_PUB, self->config.events_sndhwm, curve, self->events_endpoint,
                            sizeof self->events_endpoint);
    syn_curve_destroy(&curve);
    /* A number, not the address: a freed broker's PUB lets go of its monitor's
     * endpoint only when zmq gets round to closing it, and the next broker may get
     * the same address. */
    static atomic_uint monitors;
    char monitor[96];
    snprintf(monitor, sizeof monitor, "inproc://fake-broker-pub-monitor-%u",
             atomic_fetch_add(&monitors, 1));
    assert_int_equal(zmq_socket_monitor(zsock_resolve(self->pub), monitor,
                                        ZMQ_EVENT_HANDSHAKE_SUCCEEDED),
                     0);
    self->pub_monitor = zsock_new_pair(monitor); /* connects */
    assert_non_null(self->pub_monitor);
    assert_int_equal(pthread_create(&self->thread, NULL, run, self), 0);
    return self;
}

void fake_broker_stop(fake_broker_t **self_p)
{
    fake_broker_t *self = *self_p;
    if (!self)
        return;
    atomic_store(&self->stop, 1);
    pthread_join(self->thread, NULL);
    zsock_destroy(&self->router);
    zsock_destroy(&self->pub);
    zsock_destroy(&self->pub_monitor);
    zactor_destroy(&self->auth);
    json_decref(self->canned);
    json_decref(self->counts);
    json_decref(self->outbox);
    pthread_mutex_destroy(&self->lock);
    free(self);
    *self_p = NULL;
}

const char *fake_broker_endpoint(fake_broker_t *self)
{
    return self->endpoint;
}

const char *fake_broker_events_endpoint(fake_broker_t *self)
{
    return self->events_endpoint;
}
