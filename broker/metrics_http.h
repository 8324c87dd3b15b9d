/* metrics_http: the broker's own GET /metrics (syn-broker --metrics HOST:PORT), for
 * a Prometheus that scrapes the broker rather than a gateway, GET /health (200
 * while the loop turns, with the broker's role: active or standby) for a
 * container's health check, and GET /ready (503 while standby). A small
 * libmicrohttpd daemon run from the broker's loop (its epoll descriptor polled with
 * the sockets, MHD run when it is ready), so the text is made in the loop's thread
 * from the same state as metrics.get, never concurrently with it. No
 * authentication: loopback unless --insecure (broker_config_check). */
#ifndef SYN_BROKER_METRICS_HTTP_H
#define SYN_BROKER_METRICS_HTTP_H

#include <stdbool.h>
#include <stddef.h>

typedef struct broker_metrics_http_t broker_metrics_http_t;

/* The exposition text (malloc'd), or NULL (answered 500). */
typedef char *(*broker_metrics_text_fn)(void *arg);

/* Listens on address ("HOST:PORT"; port 0 picks one); NULL with the reason in err. */
broker_metrics_http_t *broker_metrics_http_new(const char *address, broker_metrics_text_fn text,
                                               void *arg, char *err, size_t errlen);
void broker_metrics_http_destroy(broker_metrics_http_t **self_p);
/* The descriptor to poll for input. */
int broker_metrics_http_fd(const broker_metrics_http_t *self);
/* The port it listens on (the one picked for port 0). */
unsigned broker_metrics_http_port(const broker_metrics_http_t *self);
/* The broker's role (borrowed; true while it waits for the lease): /health
 * says "role": "standby" or "active", and /ready answers 503 while standby, so
 * a container's health check shows which broker serves. Without it: active. */
void broker_metrics_http_watch_standby(broker_metrics_http_t *self, const bool *standby);
/* Lets libmicrohttpd do what is ready: accept, read, answer. */
void broker_metrics_http_run(broker_metrics_http_t *self);

#endif
