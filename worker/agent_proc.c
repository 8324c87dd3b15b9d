/* agent_proc: see agent_proc.h. A `proxy` attempt's pieces meet here: the
 * network namespace its process makes before exec (sandbox.h), the listening
 * socket it sends back, and the credential proxy serving it (cred_proxy.h),
 * whose one descriptor joins the process's in the loop's poll. */
#include "worker/agent_proc.h"
#include "worker/cred_proxy.h"
#include "worker/env.h"

#include "common/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static bool uses_proxy(const worker_options_t *options, const worker_job_t *job)
{
    return options->sandbox && job->network == WORKER_NETWORK_PROXY;
}

/* The proxy, once the process has sent its listening socket on netns_fd (or
 * closed it, failing: the agent then reaches nothing, and its own stderr says
 * why). */
static void start_proxy(worker_agent_proc_t *self)
{
    const worker_options_t *options = self->options;
    char err[256];
    int listen_fd = -1;
    int recv_fd = self->netns_fd;
    self->netns_fd = -1;
    if (worker_sandbox_netns_take(recv_fd, &listen_fd, err, sizeof err) != 0) {
        syn_warn("worker", "no credential proxy for this attempt: %s", err);
        return;
    }
    worker_cred_proxy_config_t config = {
        .upstream = options->proxy_upstream,
        .api_key = getenv("ANTHROPIC_API_KEY"),
        .oauth_token = getenv("CLAUDE_CODE_OAUTH_TOKEN"),
        .models = options->models,
    };
    self->proxy = worker_cred_proxy_new(listen_fd, &config, err, sizeof err);
    if (!self->proxy)
        syn_warn("worker", "no credential proxy for this attempt: %s", err);
}

int worker_agent_proc_start(worker_agent_proc_t *self, const worker_job_t *job,
                            const worker_options_t *options, worker_proc_spec_t *spec,
                            worker_proc_stdout_fn *on_stdout, void *arg, char *err,
                            size_t errlen)
{
    spec->cwd = job->cwd;
    spec->max_stdout = options->max_output_bytes;
    spec->rlimit_as_mb = options->rlimit_as_mb;
    spec->nice = options->nice;
    char **wrapped = NULL;
    worker_sandbox_netns_t netns;
    int recv_fd = -1;
    if (options->sandbox) {
        /* Inside bwrap a missing program is bwrap's own failed exit, which reads as the
         * agent failing; found out here it is what it is: no agent ran, the worker's
         * fault (the caller reports WORKER_RUN_FAULT), as without the sandbox. */
        if (worker_proc_check_program(spec->argv[0], err, errlen) != 0)
            return -1;
        worker_sandbox_policy_t policy = {
            .workspace = job->cwd,
            .ro_paths = options->sandbox_ro,
            .program = spec->argv[0],
            .network = job->network,
            .netns_ready = uses_proxy(options, job),
        };
        if (policy.netns_ready &&
            worker_sandbox_netns_prepare(&netns, &recv_fd, err, errlen) != 0)
            return -1;
        wrapped = worker_sandbox_argv(&policy, spec->argv, err, errlen);
        if (!wrapped) {
            if (recv_fd >= 0) {
                close(recv_fd);
                close(netns.send_fd);
            }
            return -1;
        }
        spec->argv = wrapped;
        if (recv_fd >= 0) {
            spec->before_exec = worker_sandbox_netns_enter;
            spec->before_exec_arg = &netns;
            spec->before_exec_what = "the network of its sandbox";
        }
    }
    self->proc = worker_proc_start(spec, on_stdout, arg, err, errlen);
    free(wrapped);
    if (recv_fd < 0)
        return self->proc ? 0 : -1;
    close(netns.send_fd);
    if (!self->proc) {
        close(recv_fd);
        return -1;
    }
    /* The socket comes once the process has made its namespace: watched, not
     * waited for. */
    self->netns_fd = recv_fd;
    self->options = options;
    return 0;
}

char **worker_agent_proc_env(const worker_options_t *options, const worker_job_t *job,
                             const char *const *wanted, const char *const *extra)
{
    static const char *const none[] = {NULL};
    const char *const *secrets =
        options->sandbox && job->network != WORKER_NETWORK_HOST ? none : wanted;
    /* Last, so they win over a key passed with --pass-env; Claude Code then
     * sends nothing past the proxy (no telemetry, no update checks). */
    char base_url[64];
    snprintf(base_url, sizeof base_url, "ANTHROPIC_BASE_URL=http://127.0.0.1:%d",
             WORKER_SANDBOX_PROXY_PORT);
    const char *added[8] = {NULL};
    size_t n = 0;
    for (size_t i = 0; extra && extra[i] && n < 4; i++)
        added[n++] = extra[i];
    if (uses_proxy(options, job)) {
        added[n++] = base_url;
        added[n++] = "ANTHROPIC_API_KEY=" WORKER_CRED_PROXY_DUMMY_KEY;
        added[n++] = "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1";
    }
    return worker_env_build(job, job->cwd, secrets, options->pass_env, n ? added : NULL);
}

int worker_agent_proc_pollfds(worker_agent_proc_t *self, struct pollfd *fds, int max)
{
    int n = self->proc ? worker_proc_pollfds(self->proc, fds, max) : 0;
    if (self->proxy && n < max)
        fds[n++] = (struct pollfd){.fd = worker_cred_proxy_fd(self->proxy), .events = POLLIN};
    else if (self->netns_fd >= 0 && n < max)
        fds[n++] = (struct pollfd){.fd = self->netns_fd, .events = POLLIN};
    return n;
}

void worker_agent_proc_step(worker_agent_proc_t *self, const struct pollfd *fds, int nfds,
                            int64_t now_ms)
{
    if (self->netns_fd >= 0 && nfds > 0 && fds[nfds - 1].fd == self->netns_fd) {
        nfds--;
        if (fds[nfds].revents)
            start_proxy(self);
    } else if (self->proxy) {
        /* The proxy's descriptor is the last one given (see pollfds). */
        int64_t due = worker_cred_proxy_deadline(self->proxy);
        bool ready = nfds > 0 && fds[nfds - 1].fd == worker_cred_proxy_fd(self->proxy) &&
                     fds[nfds - 1].revents;
        if (ready || (due >= 0 && now_ms >= due))
            worker_cred_proxy_step(self->proxy, now_ms);
        if (nfds > 0 && fds[nfds - 1].fd == worker_cred_proxy_fd(self->proxy))
            nfds--;
    }
    if (self->proc)
        worker_proc_step(self->proc, fds, nfds, now_ms);
}

void worker_agent_proc_destroy(worker_agent_proc_t *self)
{
    worker_proc_destroy(&self->proc);
    worker_cred_proxy_destroy(&self->proxy);
    if (self->netns_fd >= 0) {
        close(self->netns_fd);
        self->netns_fd = -1;
    }
}

void worker_agent_proc_init(worker_agent_proc_t *self, const worker_job_t *job,
                            const worker_options_t *options)
{
    self->proc = NULL;
    self->proxy = NULL;
    self->netns_fd = -1;
    self->options = options;
    self->timed_out = self->cancelled = false;
    self->timeout_ms = job->timeout_ms;
    self->timeout_at = job->timeout_ms > 0 ? job->started_us / 1000 + job->timeout_ms : -1;
    self->max_output = options->max_output_bytes;
}

int64_t worker_agent_proc_deadline(const worker_agent_proc_t *self)
{
    if (!self->proc)
        return -1;
    int64_t best = worker_proc_deadline(self->proc);
    if (self->timeout_at >= 0 && (best < 0 || self->timeout_at < best))
        best = self->timeout_at;
    int64_t due = self->proxy ? worker_cred_proxy_deadline(self->proxy) : -1;
    if (due >= 0 && (best < 0 || due < best))
        best = due;
    return best;
}

void worker_agent_proc_check_timeout(worker_agent_proc_t *self, int64_t now_ms)
{
    if (self->timeout_at >= 0 && now_ms >= self->timeout_at && !self->cancelled) {
        self->timed_out = true;
        self->timeout_at = -1;
        worker_proc_terminate(self->proc, now_ms);
    }
}

void worker_agent_proc_cancel(worker_agent_proc_t *self, int64_t now_ms)
{
    if (!self->proc || self->cancelled)
        return;
    self->cancelled = true;
    self->timeout_at = -1;
    worker_proc_terminate(self->proc, now_ms);
}

bool worker_agent_proc_finish_stopped(worker_agent_proc_t *self, worker_run_t *run)
{
    worker_cred_proxy_account(self->proxy, worker_run_usage(run));
    char reason[128];
    int code = 0;
    bool has_code = worker_proc_exit_code(self->proc, &code);
    if (self->cancelled) {
        worker_run_finish(run, WORKER_RUN_CANCELLED, "cancelled", false, 0);
    } else if (self->timed_out) {
        worker_format_timeout(self->timeout_ms, reason, sizeof reason);
        worker_run_finish(run, WORKER_RUN_FAILED, reason, false, 0);
    } else if (worker_proc_overflowed(self->proc)) {
        worker_format_output_limit(self->max_output, reason, sizeof reason);
        worker_run_finish(run, WORKER_RUN_FAILED, reason, has_code, code);
    } else {
        return false;
    }
    return true;
}
