/* gateway_harness: the gateway under test, in-process, its loop in a thread of its
 * own, with its counters readable from the test's thread. */
#ifndef SYN_TEST_GATEWAY_HARNESS_H
#define SYN_TEST_GATEWAY_HARNESS_H

#include "gateway/gateway.h"

#include <stdbool.h>

typedef struct gateway_harness_t gateway_harness_t;

/* Creates the gateway from config and starts its loop; fails the test when the
 * gateway cannot be created. */
gateway_harness_t *gateway_harness_start(const gateway_config_t *config);
/* Stops the loop thread; the gateway stays alive so its counters can be read. */
void gateway_harness_halt(gateway_harness_t *self);
/* Halts, destroys the gateway and frees; safe on NULL. */
void gateway_harness_stop(gateway_harness_t **self_p);

/* The counters as of a loop turn that began after this call (so whatever the test
 * just saw happen is counted); the last ones when halted. */
gateway_stats_t gateway_harness_stats(gateway_harness_t *self);
/* The gateway itself: touch it only once halted (its loop thread owns it). */
gateway_t *gateway_harness_gateway(gateway_harness_t *self);
/* "http://127.0.0.1:<port>" */
const char *gateway_harness_url(gateway_harness_t *self);
int gateway_harness_port(gateway_harness_t *self);

/* Asks GET /health until it answers 200, for at most timeout_ms (scaled, wait.h):
 * until the gateway's DEALER is connected every request is answered 503. */
bool gateway_harness_wait_healthy(gateway_harness_t *self, int timeout_ms);

#endif
