/* worker_runs: driving one worker run by hand in a provider's tests. */
#ifndef SYN_TESTS_SUPPORT_WORKER_RUNS_H
#define SYN_TESTS_SUPPORT_WORKER_RUNS_H

#include <stdbool.h>
#include <stdint.h>

#include "worker/provider.h"

/* Steps the run until its output contains needle: false when it finished
 * first, or max_ms (scaled: tests/support/wait.h) passed. */
bool worker_runs_drive_until_output(worker_run_t *run, const char *needle, int64_t max_ms);

/* worker_run_start, with the reason on stderr when it gives NULL. */
worker_run_t *worker_runs_start(worker_provider_t *provider, const worker_job_t *job);

/* Why bwrap cannot make a sandbox on this host (worker_sandbox_probe, run
 * once), or NULL when it can. */
const char *worker_runs_sandbox_unavailable(void);

/* Skips the calling cmocka test, saying why, where there is no sandbox. */
#define WORKER_RUNS_SKIP_WITHOUT_BWRAP()                                                       \
    do {                                                                                       \
        const char *why_ = worker_runs_sandbox_unavailable();                                  \
        if (why_) {                                                                            \
            print_message("skipped: cannot sandbox here: %s\n", why_);                         \
            skip();                                                                            \
        }                                                                                      \
    } while (0)

#endif
