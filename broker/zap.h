/* zap: who may connect to the broker's CURVE sockets (ZeroMQ RFC 27, ZAP).
 *
 * A handler of its own thread bound to inproc://zeromq.zap.01 in czmq's context
 * (the one every zsock of the process uses): libzmq asks it about each CURVE
 * handshake on the clients, workers and events sockets, so a handshake never
 * waits for the broker's loop. A client key found among the public certificates
 * of the authorized directory is allowed, with User-Id = that key in Z85 text
 * (which the broker reads from each worker message to bind a worker's name to
 * its key); any other is refused, and the refusal is logged at WARN with the
 * key, the peer's address and the socket, once per (key, address, socket) per
 * log interval. Handshakes that fail before ZAP is asked (a plaintext client on
 * a CURVE socket) are seen through a socket monitor and logged the same way.
 *
 * The directory is read once at start and again on broker_zap_reload (SIGHUP),
 * never behind the operator's back: a removed key is refused from its next
 * connection after the reload; connections already up stay up. */
#ifndef SYN_BROKER_ZAP_H
#define SYN_BROKER_ZAP_H

#include <stddef.h>
#include <stdint.h>

/* How often one refusal cause is logged at most. */
#define BROKER_ZAP_LOG_INTERVAL_MS 60000

typedef struct broker_zap_t broker_zap_t;

/* Loads the public certificates of keys_dir and starts the handler. NULL with
 * the reason in err (no such directory, or another ZAP handler is already bound
 * in this process). log_interval_ms: BROKER_ZAP_LOG_INTERVAL_MS but in tests. */
broker_zap_t *broker_zap_new(const char *keys_dir, int64_t log_interval_ms, char *err,
                             size_t errlen);
/* Stops the handler. */
void broker_zap_destroy(broker_zap_t **self_p);

/* The number of keys loaded at start or by the last reload. */
size_t broker_zap_key_count(broker_zap_t *self);

/* Reads the directory again (waits for the handler to have done it): the number
 * of keys now allowed, or -1 with the reason in err, the keys loaded before
 * staying in force. */
int broker_zap_reload(broker_zap_t *self, char *err, size_t errlen);

/* Watches socket (a zsock_t or a libzmq socket of czmq's context, a CURVE server)
 * for handshakes that fail before ZAP decides, logging them under socket_name.
 * 0, or -1 when libzmq cannot monitor it. */
int broker_zap_watch(broker_zap_t *self, void *socket, const char *socket_name);

#endif
