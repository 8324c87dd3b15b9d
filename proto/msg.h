/* msg: the messages that cross ZeroMQ between gateway, broker and workers.
 *
 * On the wire every message is one ZeroMQ frame holding one msgpack map:
 *   {"v": 1, "t": "<type name>", ...the type's fields}
 * behind the routing envelope (a ROUTER sees [identity][payload]; DEALERs send
 * [payload] alone). Events on the PUB socket are two frames: [topic][payload], the
 * topic being the execution id (or "-" for events about no execution), so a SUB
 * can filter by execution with a prefix subscription.
 *
 * In memory a message is its type plus a jansson object holding its fields
 * (without "v" and "t"). Both encode and decode check the fields against the
 * type's schema below, so a malformed message is caught where it is made and
 * where it arrives. docs/protocol.md is the normative description.
 *
 * Schemas (uint = non-negative integer; usd = finite number >= 0, integer or
 * float; ref = execution_id, phase_id, attempt):
 *   request     id:uint op:str args:map                       gateway → broker
 *   reply       id:uint status:uint(100..599) body:any        broker → gateway
 *   ready       worker:str slots:uint(1..1024) providers:[str] running:[ref map]
 *               [draining:bool prefetch:uint(0..1024) waiting:[ref map]]
 *                                                             worker → broker
 *   heartbeat   (no fields)                                   both ways
 *   assign      execution_id:str workflow_id:str phase_id:str attempt:uint
 *               prompt:str model:str|nil timeout_ms:uint provider:str|nil
 *               [inputs:map repos:[str] allowed_tools:[str] max_tokens:uint
 *               network:str (none | proxy | host) max_budget_usd:usd spent_usd:usd
 *               artifacts:[{phase_id:str path:str size:uint sha256:str}]
 *               input_artifacts:[str] output_artifacts:[str]]
 *                                                             broker → worker
 *   cancel      execution_id:str phase_id:str attempt:uint    broker → worker
 *   progress    execution_id:str phase_id:str attempt:uint kind:str data:str
 *               [detail:map cost_usd:usd]
 *               (kind: started | output | tool | cost)        worker → broker
 *   inject      execution_id:str phase_id:str attempt:uint role:str message:str
 *                                                             broker → worker
 *   result      execution_id:str phase_id:str attempt:uint status:str
 *               output:str error:str|nil exit_code:int|nil [usage:map]
 *                                                             worker → broker
 *   result_ack  execution_id:str phase_id:str attempt:uint    broker → worker
 *   disconnect  [reason:str]                                  both ways
 *               (reason: broker → worker, why it is refused, e.g. its name
 *               is held by another key)
 *   artifact_get  execution_id:str phase_id:str attempt:uint from_phase:str
 *               path:str offset:uint                          worker → broker
 *   artifact_data execution_id:str phase_id:str attempt:uint from_phase:str
 *               path:str offset:uint size:uint sha256:str data:str [error:str]
 *                                                             broker → worker
 *               (artifact, artifact_ack: docs/protocol.md)
 *   event       seq:uint time:int execution_id:str|nil type:str data:map
 *               [status:map]                                  broker PUB
 * Fields in [brackets] are optional. Unknown fields, a missing field, a wrong
 * type, an unknown "t", a "v" other than
 * SYN_PROTOCOL_VERSION, or any msgpack the decoder does not accept (bin, ext,
 * non-string map keys, invalid UTF-8, nesting deeper than SYN_MSG_MAX_DEPTH,
 * trailing bytes, lengths beyond the buffer) make the message invalid. */
#ifndef SYN_PROTO_MSG_H
#define SYN_PROTO_MSG_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#define SYN_PROTOCOL_VERSION 1
#define SYN_MSG_MAX_SIZE (16u * 1024 * 1024) /* also set as ZMQ_MAXMSGSIZE */
#define SYN_MSG_MAX_DEPTH 32

typedef enum {
    SYN_MSG_REQUEST = 1,
    SYN_MSG_REPLY,
    SYN_MSG_READY,
    SYN_MSG_HEARTBEAT,
    SYN_MSG_ASSIGN,
    SYN_MSG_CANCEL,
    SYN_MSG_PROGRESS,
    SYN_MSG_RESULT,
    SYN_MSG_RESULT_ACK,
    SYN_MSG_DISCONNECT,
    SYN_MSG_EVENT,
    SYN_MSG_INJECT,
    SYN_MSG_ARTIFACT,
    SYN_MSG_ARTIFACT_ACK,
    SYN_MSG_ARTIFACT_GET,
    SYN_MSG_ARTIFACT_DATA,
} syn_msg_type_t;

typedef struct syn_msg_t syn_msg_t;

/* A new message of the given type with an empty field object. */
syn_msg_t *syn_msg_new(syn_msg_type_t type);
/* A message taking ownership of fields (a reference is stolen, as json_object_set_new). */
syn_msg_t *syn_msg_new_with(syn_msg_type_t type, json_t *fields);
void syn_msg_destroy(syn_msg_t **self_p);

syn_msg_type_t syn_msg_type(const syn_msg_t *self);
/* The field object (borrowed; callers may add fields before encoding). */
json_t *syn_msg_fields(const syn_msg_t *self);
/* "request", "reply", ... or NULL for an unknown type. */
const char *syn_msg_type_name(syn_msg_type_t type);

/* Checks the fields against the type's schema; 0, or -1 with the reason in err. */
int syn_msg_validate(const syn_msg_t *self, char *err, size_t errlen);

/* Encodes into a malloc'd buffer (*data, *size; caller frees). Validates first:
 * -1 with the reason in err when the message breaks its schema. */
int syn_msg_encode(const syn_msg_t *self, char **data, size_t *size, char *err, size_t errlen);
/* Decodes any byte string: a valid message, or NULL with the reason in err.
 * Never reads outside [data, data+size) and never allocates more than a small
 * multiple of size. */
syn_msg_t *syn_msg_decode(const void *data, size_t size, char *err, size_t errlen);

/* syn_pack: a message written straight to msgpack, for hot paths where building
 * a field object only to walk it again costs more than the rest of the work.
 * syn_pack_new(type, n) opens the message with n fields; each call adds one
 * entry (key and value) to the innermost open map; syn_pack_map opens a nested
 * map of the given number of entries, which the next calls fill. Strings are
 * checked as the encoder checks them (UTF-8, no NUL; value NULL packs nil); the
 * first mistake sticks and syn_pack_finish reports it (NULL, reason in err),
 * as it does a wrong number of entries. Builds with assertions also check the
 * finished message against the type's schema. */
typedef struct syn_pack_t syn_pack_t;
syn_pack_t *syn_pack_new(syn_msg_type_t type, size_t fields);
void syn_pack_str(syn_pack_t *self, const char *key, const char *value);
void syn_pack_int(syn_pack_t *self, const char *key, int64_t value);
void syn_pack_json(syn_pack_t *self, const char *key, const json_t *value);
void syn_pack_map(syn_pack_t *self, const char *key, size_t entries);
/* The message (it keeps the packed bytes until someone asks for its fields),
 * or NULL with the reason in err. Frees the packer either way. */
syn_msg_t *syn_pack_finish(syn_pack_t **self_p, char *err, size_t errlen);

/* Sending and receiving on libzmq sockets (pass zsock_resolve(zsock) for czmq).
 * These two live in proto/zmq_io.c, the syn_zmq_io target, so that linking proto
 * (the codec) does not bring in libzmq.
 * send: identity/identity_len name the peer on a ROUTER (NULL/0 on a DEALER); for
 * SYN_MSG_EVENT on a PUB, pass the topic as identity. Never blocks (ZMQ_DONTWAIT);
 * returns 0, or -1 with errno set (EAGAIN: peer's pipe full; EHOSTUNREACH: unknown
 * peer on a ROUTER_MANDATORY socket; EINVAL: message breaks its schema). */
int syn_msg_send(void *socket, const void *identity, size_t identity_len, const syn_msg_t *self);
/* recv: reads one whole multipart message without blocking. On a ROUTER (or SUB,
 * for the topic) the first frame is copied into identity (up to *identity_len
 * bytes, which is updated; pass NULL for a DEALER). Returns 0 with *msg_p set;
 * -1 when nothing was waiting or the socket failed (errno); -2 when a message was
 * read but is invalid (reason in err; identity is still filled so it can be logged). */
int syn_msg_recv(void *socket, syn_msg_t **msg_p, void *identity, size_t *identity_len,
                 char *err, size_t errlen);
/* What libzmq says about the connection a message came over. */
typedef struct {
    /* User-Id: what the ZAP handler answered (on the broker's CURVE sockets, the
     * client's public key in Z85 text), "" when the connection has none (no CURVE). */
    char user_id[64];
    /* Peer-Address: the remote IP of a TCP connection (e.g. "127.0.0.1"), ""
     * for other transports. */
    char address[64];
} syn_msg_peer_t;
/* recv, and what libzmq says about the connection into *peer (NULL: not wanted). */
int syn_msg_recv_peer(void *socket, syn_msg_t **msg_p, void *identity, size_t *identity_len,
                      syn_msg_peer_t *peer, char *err, size_t errlen);

#endif
