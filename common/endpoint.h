/* endpoint: whether an address stays on this host. Without keys, syn programs
 * bind and connect only to such addresses unless told --insecure by name
 * (docs/operations.md, "Secure"): an open port on a network is a decision a
 * person takes, never a default. */
#ifndef SYN_ENDPOINT_H
#define SYN_ENDPOINT_H

#include <stdbool.h>
#include <stddef.h>

/* A ZeroMQ endpoint that cannot be reached from another host: ipc://, inproc://,
 * or tcp:// to 127.0.0.0/8, ::1 or "localhost" (a connect's "source;" part is
 * ignored). tcp:// to any address (*), 0.0.0.0, interface names and every other address are
 * not local. */
bool syn_endpoint_is_local(const char *endpoint);

/* The same for an HTTP "HOST:PORT" listening address ("[::1]:8137" for IPv6). */
bool syn_http_address_is_local(const char *address);

struct sockaddr_storage;
/* Splits an HTTP listening address "HOST:PORT" ("[v6]:PORT", ":PORT" for all
 * interfaces) into a socket address; -1 with "bad <flag> address ..." in err. */
int syn_http_address_parse(const char *flag, const char *text, struct sockaddr_storage *addr,
                           char *err, size_t errlen);

/* 0 when endpoint is local or allowed; otherwise -1 and one line in err:
 * "<what> tcp://0.0.0.0:5556 is not a loopback address and <why>: <remedy>". */
int syn_endpoint_check(const char *what, const char *endpoint, bool is_http, bool allowed,
                       const char *why, const char *remedy, char *err, size_t errlen);

/* Whether a tcp:// endpoint names a port of the kernel's ephemeral range (the
 * range then in low..high). A client reconnecting to such a port while nothing
 * listens on it may be given that very port as its own source and connect to
 * itself; it then holds the port and the listener cannot bind it again. Ports
 * chosen by the system ("*") are not named, so they are never reported. */
bool syn_endpoint_port_is_ephemeral(const char *endpoint, int *low, int *high);

#endif
