/* bare_run: a worker run with no agent behind it, for tests and fuzz targets of
 * what a provider reads (worker/claude_stream.h, worker/anthropic_sse.h): the
 * run gathers output, usage and events exactly as in the worker, and the caller
 * feeds it the bytes an agent or an API would have sent. */
#ifndef SYN_TESTS_SUPPORT_BARE_RUN_H
#define SYN_TESTS_SUPPORT_BARE_RUN_H

#include "worker/provider.h"

/* A new running run that accounts usage (its provider is made once and kept for
 * the process), or NULL when memory ran out. Free with worker_run_destroy. */
worker_run_t *bare_run_new(void);

#endif
