/* sandbox_start: what bwrap adds to the start of an attempt (issue 22).
 *
 * Runs `true` as the command provider's agent --attempts times without the
 * sandbox, as many with it under `network: none` (bwrap's own empty network
 * namespace) and as many under `network: proxy` (a namespace made before bwrap,
 * its listener handed back, a credential proxy started), interleaved so the
 * host's load falls on all alike, and prints each one's wall time per attempt
 * (from worker_run_start to the run's end: workspace made, process started and
 * reaped, workspace removed) as median and p99, and the differences of the
 * medians. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/flags.h"
#include "worker/provider.h"

static int compare(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double percentile(double *v, long n, double p)
{
    long i = (long)(p * (double)(n - 1) + 0.5);
    return v[i < n ? i : n - 1];
}

/* One attempt's wall time in ms, or -1 when it did not complete. */
static double one_attempt(worker_provider_t *p, worker_network_t network)
{
    worker_job_t job = {.execution_id = "exec-00000000b0b0", .workflow_id = "bench",
                        .phase_id = "start", .attempt = 1, .prompt = "", .timeout_ms = 10000,
                        .network = network};
    char err[256];
    int64_t began = syn_mono_us();
    worker_run_t *run = worker_run_start(p, &job, err, sizeof err);
    if (!run || worker_run_drive(run, 10000) != 0 ||
        worker_run_status(run) != WORKER_RUN_COMPLETED) {
        fprintf(stderr, "sandbox_start: attempt failed: %s\n",
                run ? worker_run_error(run) : err);
        worker_run_destroy(&run);
        return -1;
    }
    worker_run_destroy(&run);
    return (double)(syn_mono_us() - began) / 1000.0;
}

int main(int argc, char **argv)
{
    long attempts = 200;
    syn_flag_t flags[] = {
        {"attempts", SYN_FLAG_INT, "N", "attempts of each kind", &attempts, 2, 100000},
        {NULL, 0, NULL, NULL, NULL, 0, 0},
    };
    syn_flags_result_t parsed = syn_flags_parse("sandbox_start", "Sandbox start overhead.",
                                                flags, argc, argv);
    if (parsed != SYN_FLAGS_OK)
        return parsed == SYN_FLAGS_EXIT ? 0 : 2;
    char err[256];
    worker_provider_t *plain = worker_provider_command_new("true", 500, err, sizeof err);
    worker_provider_t *boxed = worker_provider_command_new("true", 500, err, sizeof err);
    worker_options_t options = {0};
    if (!plain || !boxed || worker_provider_set_options(plain, &options) != 0)
        return 1;
    options.sandbox = true;
    if (worker_provider_set_options(boxed, &options) != 0)
        return 1;
    double *t_plain = calloc((size_t)attempts, sizeof(double));
    double *t_boxed = calloc((size_t)attempts, sizeof(double));
    double *t_proxy = calloc((size_t)attempts, sizeof(double));
    if (!t_plain || !t_boxed || !t_proxy)
        return 1;
    for (long i = 0; i < attempts; i++) {
        t_plain[i] = one_attempt(plain, WORKER_NETWORK_HOST);
        t_boxed[i] = one_attempt(boxed, WORKER_NETWORK_NONE);
        t_proxy[i] = one_attempt(boxed, WORKER_NETWORK_PROXY);
        if (t_plain[i] < 0 || t_boxed[i] < 0 || t_proxy[i] < 0)
            return 1;
    }
    qsort(t_plain, (size_t)attempts, sizeof(double), compare);
    qsort(t_boxed, (size_t)attempts, sizeof(double), compare);
    qsort(t_proxy, (size_t)attempts, sizeof(double), compare);
    double mp = percentile(t_plain, attempts, 0.5), mb = percentile(t_boxed, attempts, 0.5);
    double mx = percentile(t_proxy, attempts, 0.5);
    printf("{\"attempts\":%ld,\"plain_median_ms\":%.2f,\"plain_p99_ms\":%.2f,"
           "\"sandbox_median_ms\":%.2f,\"sandbox_p99_ms\":%.2f,\"overhead_median_ms\":%.2f,"
           "\"proxy_median_ms\":%.2f,\"proxy_p99_ms\":%.2f,\"proxy_overhead_median_ms\":%.2f}\n",
           attempts, mp, percentile(t_plain, attempts, 0.99), mb,
           percentile(t_boxed, attempts, 0.99), mb - mp, mx, percentile(t_proxy, attempts, 0.99),
           mx - mp);
    free(t_plain);
    free(t_boxed);
    free(t_proxy);
    worker_provider_destroy(&plain);
    worker_provider_destroy(&boxed);
    return 0;
}
