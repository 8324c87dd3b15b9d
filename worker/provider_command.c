/* provider_command: runs an agent as a child process (see proc.h for how the
 * child is run): the prompt on stdin, stdout as the output, exit code 0 as
 * success, the tail of stderr as the reason otherwise. */
#include "worker/provider.h"
#include "worker/agent_proc.h"
#include "worker/argv.h"
#include "worker/env.h"
#include "worker/proc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"

typedef struct {
    char **argv;
    int64_t kill_grace_ms;
} command_config_t;

typedef struct {
    worker_agent_proc_t child; /* child.proc is NULL when the command could not be started */
} command_run_t;

static void on_stdout(void *arg, const char *data, size_t len, int64_t now_ms)
{
    (void)now_ms;
    worker_run_append(arg, data, len);
}

/* "more than 8 MiB" for an output limit. */
void worker_format_output_limit(uint64_t bytes, char *buf, size_t buflen)
{
    if (bytes % (1024 * 1024) == 0)
        snprintf(buf, buflen, "output limit exceeded: more than %llu MiB",
                 (unsigned long long)(bytes / (1024 * 1024)));
    else
        snprintf(buf, buflen, "output limit exceeded: more than %llu bytes",
                 (unsigned long long)bytes);
}

static void *command_start(void *config, worker_run_t *run, const worker_job_t *job, char *err,
                           size_t errlen)
{
    const command_config_t *cfg = config;
    const worker_options_t *options = worker_run_options(run);
    command_run_t *self = calloc(1, sizeof *self);
    char **env = worker_agent_proc_env(options, job, NULL, NULL);
    if (!self || !env) {
        free(self);
        worker_env_free(env);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    worker_agent_proc_init(&self->child, job, options);
    worker_proc_spec_t spec = {
        .argv = cfg->argv,
        .env = env,
        .want_stdin = true,
        .want_stdout = true,
        .kill_grace_ms = cfg->kill_grace_ms,
    };
    char reason[512];
    worker_agent_proc_start(&self->child, job, options, &spec, on_stdout, run, reason,
                            sizeof reason);
    worker_env_free(env);
    if (!self->child.proc) {
        worker_run_finish(run, WORKER_RUN_FAULT, reason, false, 0);
        return self;
    }
    if (worker_proc_write(self->child.proc, job->prompt, strlen(job->prompt)) != 0) {
        snprintf(err, errlen, "out of memory");
        worker_agent_proc_destroy(&self->child);
        free(self);
        return NULL;
    }
    worker_proc_close_stdin(self->child.proc);
    return self;
}

static int command_pollfds(void *state, struct pollfd *fds, int max)
{
    command_run_t *self = state;
    return worker_agent_proc_pollfds(&self->child, fds, max);
}

static int64_t command_deadline(void *state)
{
    command_run_t *self = state;
    return worker_agent_proc_deadline(&self->child);
}

static void complete(command_run_t *self, worker_run_t *run)
{
    if (worker_agent_proc_finish_stopped(&self->child, run))
        return;
    char reason[WORKER_STDERR_TAIL + 128];
    int code = 0;
    bool has_code = worker_proc_exit_code(self->child.proc, &code);
    if (worker_proc_succeeded(self->child.proc, reason, sizeof reason))
        worker_run_finish(run, WORKER_RUN_COMPLETED, NULL, true, 0);
    else
        worker_run_finish(run, WORKER_RUN_FAILED, reason, has_code, code);
}

static void command_step(void *state, worker_run_t *run, const struct pollfd *fds, int nfds,
                         int64_t now)
{
    command_run_t *self = state;
    if (!self->child.proc)
        return;
    worker_agent_proc_step(&self->child, fds, nfds, now);
    worker_agent_proc_check_timeout(&self->child, now);
    if (worker_proc_done(self->child.proc))
        complete(self, run);
}

static void command_cancel(void *state, worker_run_t *run, int64_t now)
{
    (void)run;
    command_run_t *self = state;
    worker_agent_proc_cancel(&self->child, now);
}

static void command_destroy(void *state)
{
    command_run_t *self = state;
    worker_agent_proc_destroy(&self->child);
    free(self);
}

static void command_config_destroy(void *config)
{
    command_config_t *cfg = config;
    if (!cfg)
        return;
    worker_argv_free(cfg->argv);
    free(cfg);
}

static int command_check(void *config, char *err, size_t errlen)
{
    const command_config_t *cfg = config;
    return worker_proc_check_program(cfg->argv[0], err, errlen);
}

static const worker_provider_ops_t command_ops = {
    .name = "command",
    .start = command_start,
    .pollfds = command_pollfds,
    .deadline = command_deadline,
    .step = command_step,
    .cancel = command_cancel,
    .destroy = command_destroy,
    .config_destroy = command_config_destroy,
    .uses_workspace = true,
    .check = command_check,
};

worker_provider_t *worker_provider_command_new(const char *command, int64_t kill_grace_ms,
                                               char *err, size_t errlen)
{
    char why[128];
    char **argv = worker_argv_split(command, NULL, why, sizeof why);
    if (!argv) {
        snprintf(err, errlen, "bad --command: %s", why);
        return NULL;
    }
    command_config_t *cfg = calloc(1, sizeof *cfg);
    if (!cfg) {
        worker_argv_free(argv);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    cfg->argv = argv;
    cfg->kill_grace_ms = kill_grace_ms < 0 ? 0 : kill_grace_ms;
    worker_provider_t *self = worker_provider_new(&command_ops, cfg);
    if (!self)
        snprintf(err, errlen, "out of memory");
    return self;
}
