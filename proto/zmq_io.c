/* zmq_io: syn messages over libzmq sockets, one frame each behind the routing
 * envelope (proto/msg.h says how). A target of its own (syn_zmq_io, with
 * proto/curve.c), apart from the rest of proto: the programs and the tests that
 * speak ZeroMQ link it; the codec alone brings in no libzmq. */
#include "proto/msg.h"

#include "common/log.h"

#include <assert.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

static void free_payload(void *data, void *hint)
{
    (void) hint;
    free(data);
}

int syn_msg_send(void *socket, const void *identity, size_t identity_len, const syn_msg_t *self)
{
    char err[256];
    char *data;
    size_t size;
    if (syn_msg_encode(self, &data, &size, err, sizeof err) != 0) {
        syn_warn("proto", "refusing to send an invalid message: %s", err);
        errno = EINVAL;
        return -1;
    }
    /* Hand the encoded buffer to libzmq instead of copying it. */
    zmq_msg_t frame;
    if (zmq_msg_init_data(&frame, data, size, free_payload, NULL) != 0) {
        int saved = errno;
        free(data);
        errno = saved;
        return -1;
    }
    if (identity != NULL &&
        zmq_send(socket, identity, identity_len, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0) {
        int saved = errno;
        zmq_msg_close(&frame);
        errno = saved;
        return -1;
    }
    if (zmq_msg_send(&frame, socket, ZMQ_DONTWAIT) < 0) {
        int saved = errno;
        zmq_msg_close(&frame);
        errno = saved;
        return -1;
    }
    return 0;
}

/* A property libzmq attached to a received frame (User-Id: ZAP's answer for
 * the connection it came over; Peer-Address: the connection's remote IP), or ""
 * when there is none. */
static void copy_property(zmq_msg_t *frame, const char *property, char *out, size_t out_size)
{
    if (out == NULL || out_size == 0)
        return;
    const char *value = zmq_msg_gets(frame, property);
    snprintf(out, out_size, "%s", value ? value : "");
}

int syn_msg_recv(void *socket, syn_msg_t **msg_p, void *identity, size_t *identity_len,
                 char *err, size_t errlen)
{
    return syn_msg_recv_peer(socket, msg_p, identity, identity_len, NULL, err, errlen);
}

int syn_msg_recv_peer(void *socket, syn_msg_t **msg_p, void *identity, size_t *identity_len,
                      syn_msg_peer_t *peer, char *err, size_t errlen)
{
    assert(identity == NULL || identity_len != NULL);
    *msg_p = NULL;
    if (err != NULL && errlen > 0) /* most calls find nothing waiting: no formatting */
        err[0] = '\0';
    size_t expected = identity != NULL ? 2 : 1;
    size_t capacity = identity_len ? *identity_len : 0;
    if (identity_len)
        *identity_len = 0;
    if (peer != NULL)
        peer->user_id[0] = peer->address[0] = '\0';

    zmq_msg_t first, payload, extra;
    zmq_msg_init(&first);
    if (zmq_msg_recv(&first, socket, ZMQ_DONTWAIT) < 0) {
        int saved = errno;
        zmq_msg_close(&first);
        errno = saved;
        return -1;
    }
    size_t frames = 1;
    zmq_msg_init(&payload);
    bool more = zmq_msg_more(&first);
    /* The rest of a multipart message is already here (delivery is atomic);
     * read all of it so the next call starts on a message boundary. */
    while (more) {
        zmq_msg_t *target = frames == 1 ? &payload : &extra;
        if (frames >= 2)
            zmq_msg_init(&extra);
        if (zmq_msg_recv(target, socket, ZMQ_DONTWAIT) < 0) {
            int saved = errno;
            if (target == &extra)
                zmq_msg_close(&extra);
            zmq_msg_close(&payload);
            zmq_msg_close(&first);
            errno = saved;
            return -1;
        }
        more = zmq_msg_more(target);
        if (target == &extra)
            zmq_msg_close(&extra);
        frames++;
    }

    int rc = -2;
    /* A ROUTER makes the identity frame itself: only the payload came over the
     * connection and carries its properties. */
    if (peer != NULL) {
        zmq_msg_t *carrier = identity != NULL && frames >= 2 ? &payload : &first;
        copy_property(carrier, "User-Id", peer->user_id, sizeof peer->user_id);
        copy_property(carrier, "Peer-Address", peer->address, sizeof peer->address);
    }
    size_t id_size = zmq_msg_size(&first);
    if (identity != NULL) {
        size_t copy = id_size < capacity ? id_size : capacity;
        memcpy(identity, zmq_msg_data(&first), copy);
        *identity_len = copy;
    }
    if (frames != expected)
        snprintf(err, err ? errlen : 0, "expected %zu frame%s, got %zu", expected,
                 expected == 1 ? "" : "s", frames);
    else if (identity != NULL && id_size > capacity)
        snprintf(err, err ? errlen : 0, "identity of %zu bytes does not fit in %zu", id_size,
                 capacity);
    else {
        zmq_msg_t *body = identity != NULL ? &payload : &first;
        *msg_p = syn_msg_decode(zmq_msg_data(body), zmq_msg_size(body), err, errlen);
        if (*msg_p != NULL)
            rc = 0;
    }
    zmq_msg_close(&payload);
    zmq_msg_close(&first);
    return rc;
}
