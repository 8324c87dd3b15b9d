/* cred_proxy: the credential proxy of one sandboxed attempt (network `proxy`).
 *
 * The agent runs in a network namespace of its own whose only listener is
 * this proxy (sandbox.h, worker_sandbox_netns_enter); it is given
 * ANTHROPIC_BASE_URL=http://127.0.0.1:WORKER_SANDBOX_PROXY_PORT and a
 * placeholder key, never the real one. The proxy takes HTTP/1.1 requests from
 * it and forwards only POST /v1/messages and POST /v1/messages/count_tokens
 * (any query string kept) to the worker's Messages API (--anthropic-url) with
 * the worker's own key added; the answer streams back unchanged (status,
 * headers but hop-by-hop ones, body re-framed as chunks). Anything else gets a
 * 403 permission_error saying what is forwarded, and no byte leaves the host.
 *
 * It counts what it forwards: every 200 answer of /v1/messages, streamed or
 * not, adds its tokens, and their cost at the model's price, so an attempt's
 * usage is known even when its agent reports none, and cannot be understated
 * by an agent that lies about it.
 *
 * It runs in the worker's loop, never blocking it: the listener, the agent's
 * connections and libcurl's sockets (a multi handle, as the anthropic provider
 * uses) sit in one epoll instance of the proxy's, and that one descriptor is
 * what the attempt asks the loop to watch (a run has room for few), with
 * curl's timer as a deadline. A slow or silent upstream only leaves a socket
 * unready. No thread: the loop already wakes for every descriptor, and the
 * proxy's state is then touched by one thread only. */
#ifndef SYN_WORKER_CRED_PROXY_H
#define SYN_WORKER_CRED_PROXY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "worker/models.h"
#include "worker/provider.h"

/* The placeholder key the agent is given (the proxy ignores any key it is
 * sent: only the attempt's own processes can reach it). */
#define WORKER_CRED_PROXY_DUMMY_KEY "sk-ant-syn-proxy-placeholder"
/* Connections one attempt may hold open at once; more are refused (503). */
#define WORKER_CRED_PROXY_MAX_CONNS 16
/* A request's head, and its body (the API's own limit is 32 MB). */
#define WORKER_CRED_PROXY_HEAD_MAX (64u * 1024u)
#define WORKER_CRED_PROXY_BODY_MAX (32u * 1024u * 1024u)
/* Request bytes held at once across the attempt's connections. */
#define WORKER_CRED_PROXY_BUFFER_MAX (64u * 1024u * 1024u)

typedef struct {
    const char *upstream;    /* base URL ("https://api.anthropic.com"); requests go to
                              * upstream + the request's path and query */
    const char *api_key;     /* sent as x-api-key; or NULL */
    const char *oauth_token; /* without api_key: Authorization: Bearer; or NULL */
    const worker_models_t *models; /* prices, for the cost; borrowed (NULL = the
                                    * compiled-in table) */
} worker_cred_proxy_config_t;

typedef struct worker_cred_proxy_t worker_cred_proxy_t;

/* Loads and initialises libcurl for the proxies to come: a worker that
 * sandboxes calls it at start, so that no attempt's start pauses its loop for
 * the dlopen (tens of milliseconds, more on a loaded host: longer than a tight
 * heartbeat allows). 0, or -1 with the reason in err. */
int worker_cred_proxy_prepare(char *err, size_t errlen);

/* A proxy serving listen_fd (taken: closed by destroy, or here on failure).
 * Loads libcurl. NULL with the reason in err. The config's strings are copied. */
worker_cred_proxy_t *worker_cred_proxy_new(int listen_fd, const worker_cred_proxy_config_t *config,
                                           char *err, size_t errlen);
/* Ends every transfer, closes every connection. Safe with NULL and twice. */
void worker_cred_proxy_destroy(worker_cred_proxy_t **self_p);

/* The one descriptor to watch for POLLIN. */
int worker_cred_proxy_fd(const worker_cred_proxy_t *self);
/* When worker_cred_proxy_step must run even if the descriptor stays quiet
 * (libcurl's timer), monotonic ms; -1 for none. */
int64_t worker_cred_proxy_deadline(const worker_cred_proxy_t *self);
/* Does whatever is ready, without waiting. */
void worker_cred_proxy_step(worker_cred_proxy_t *self, int64_t now_ms);

/* Messages counted so far (answers of /v1/messages that carried usage). */
int64_t worker_cred_proxy_messages(const worker_cred_proxy_t *self);
/* Requests refused so far. */
int64_t worker_cred_proxy_refused(const worker_cred_proxy_t *self);
/* When it counted any message, puts its counts in usage (tokens, cost,
 * cost_source "proxy", or "unknown" when a model had no price; the model and
 * turns when the agent reported none) and marks it reported. */
void worker_cred_proxy_account(const worker_cred_proxy_t *self, worker_usage_t *usage);

#endif
