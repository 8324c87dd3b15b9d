/* curve: the CURVE keys of one end of a ZeroMQ link, read from czmq certificate
 * files (the text format `syn keygen` writes: NAME.key holds the public key,
 * NAME.key_secret both). The broker is the CURVE server on all three of its
 * sockets; gateways and workers are clients that hold their own key pair and
 * the broker's public key (docs/operations.md, "Secure").
 *
 * Part of syn_zmq_io (with proto/zmq_io.c): the programs that speak ZeroMQ link it. */
#ifndef SYN_PROTO_CURVE_H
#define SYN_PROTO_CURVE_H

#include <stdbool.h>
#include <stddef.h>

/* A Z85 public key is 40 characters. */
#define SYN_CURVE_KEY_TXT 41

typedef struct syn_curve_t syn_curve_t;

/* A server's keys: its secret certificate. NULL with the reason in err (missing
 * or unreadable file, no secret key in it). The secret itself never appears in
 * err or a log line. */
syn_curve_t *syn_curve_new_server(const char *secret_file, char *err, size_t errlen);
/* A client's keys: its own secret certificate and the server's public one. */
syn_curve_t *syn_curve_new_client(const char *secret_file, const char *server_public_file,
                                  char *err, size_t errlen);
void syn_curve_destroy(syn_curve_t **self_p);

/* Makes socket (a libzmq socket or a zsock_t) use these keys; call before bind
 * or connect. A server socket asks ZAP (domain "syn") about every client key. */
void syn_curve_apply(const syn_curve_t *self, void *socket);
/* The same for a server socket, with the ZAP domain its requests carry: the
 * broker names each socket ("clients", "workers", "events") so that its ZAP
 * handler can say which one a refused key knocked on. ZAP is enforced: with no
 * handler answering, every key is refused rather than every key admitted.
 * 0, or -1 with zmq_errno(). */
int syn_curve_apply_server(const syn_curve_t *self, void *socket, const char *zap_domain);

/* What a key may do at the broker, from its certificate's metadata
 * (`role = "gateway"` or `"worker"`, written by `syn keygen --role`): a gateway key
 * may use the clients and events sockets, a worker key only the workers socket, so a
 * stolen worker key cannot send requests or read the events. A certificate without a
 * role may use all three (keys made by other tools). */
typedef enum {
    SYN_CURVE_ROLE_ANY = 0,
    SYN_CURVE_ROLE_GATEWAY,
    SYN_CURVE_ROLE_WORKER,
} syn_curve_role_t;

/* The ZAP domain of the broker's workers socket (the others: "clients", "events"). */
#define SYN_CURVE_DOMAIN_WORKERS "workers"

/* "gateway" | "worker" | "any" → 0, else -1. */
int syn_curve_role_parse(const char *text, syn_curve_role_t *role);
const char *syn_curve_role_name(syn_curve_role_t role);
/* May a key of this role connect to the broker socket of that ZAP domain? */
bool syn_curve_role_allows(syn_curve_role_t role, const char *zap_domain);

/* The public key and role of the certificate file at path (public or secret, czmq's
 * format, read as strictly as the keys above; an unknown role is an error): 0, or
 * -1 with the reason in err. */
int syn_curve_read_public(const char *path, unsigned char public_key[32],
                          syn_curve_role_t *role, char *err, size_t errlen);

/* This end's public key, Z85 text (safe to log). */
const char *syn_curve_public_txt(const syn_curve_t *self);

/* The ZAP domain the broker's sockets use. */
#define SYN_CURVE_ZAP_DOMAIN "syn"

#endif
