/* worker_runs: see worker_runs.h. */
#include "tests/support/worker_runs.h"

#include <poll.h>
#include <stdio.h>
#include <string.h>

#include "common/clock.h"
#include "tests/support/wait.h"
#include "worker/sandbox.h"

worker_run_t *worker_runs_start(worker_provider_t *provider, const worker_job_t *job)
{
    char err[256] = "";
    worker_run_t *run = worker_run_start(provider, job, err, sizeof err);
    if (!run)
        fprintf(stderr, "cannot start the run: %s\n", err);
    return run;
}

const char *worker_runs_sandbox_unavailable(void)
{
    static int probed = 0; /* 1 = works, -1 = does not */
    static char why[256];
    if (!probed)
        probed = worker_sandbox_probe(NULL, NULL, why, sizeof why) == 0 ? 1 : -1;
    return probed < 0 ? why : NULL;
}

bool worker_runs_drive_until_output(worker_run_t *run, const char *needle, int64_t max_ms)
{
    int64_t give_up = syn_mono_ms() + wait_scaled_ms((int)max_ms);
    while (!strstr(worker_run_output(run, NULL), needle)) {
        if (worker_run_finished(run) || syn_mono_ms() >= give_up)
            return false;
        struct pollfd fds[WORKER_RUN_MAX_FDS];
        int n = worker_run_pollfds(run, fds, WORKER_RUN_MAX_FDS);
        poll(fds, (nfds_t)n, 20);
        worker_run_step(run, fds, n, syn_mono_ms());
    }
    return true;
}
