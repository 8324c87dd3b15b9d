#include "tests/support/gateway_proc.h"
#include "bench/synload/localproc.h"
#include "tests/support/http.h"
#include "tests/support/teststack.h"
#include "tests/support/wait.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#define MAX_ARGS 48

struct gateway_proc_t {
    pid_t pid;
    int port;
    char url[64];
    char log[512];
};

static pid_t spawn(const char *log_path, const char *const *args)
{
    char *argv[MAX_ARGS] = {SYN_BIN_DIR "/syn-gateway"};
    int argc = 1;
    for (int i = 0; args && args[i] && argc < MAX_ARGS - 1; i++)
        argv[argc++] = (char *)args[i];
    argv[argc] = NULL;
    pid_t pid = fork();
    if (pid == 0) {
        localproc_redirect_child(log_path);
        execv(argv[0], argv);
        fprintf(stderr, "exec %s failed\n", argv[0]);
        _exit(127);
    }
    return pid;
}

char *gateway_proc_read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    if (f) {
        char buf[65536];
        size_t n;
        while ((n = fread(buf, 1, sizeof buf, f)) > 0)
            fwrite(buf, 1, n, out);
        fclose(f);
    }
    fclose(out);
    return text;
}

static int count_text(const char *haystack, const char *needle)
{
    int n = 0;
    for (const char *p = haystack; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

bool gateway_proc_wait_text(const char *path, const char *text, int count, int timeout_ms)
{
    for (wait_t w = wait_begin(timeout_ms);;) {
        char *log = gateway_proc_read_file(path);
        int n = count_text(log, text);
        free(log);
        if (n >= count)
            return true;
        if (!wait_next(&w))
            return false;
    }
}

int gateway_proc_count_lines(const char *path)
{
    char *log = gateway_proc_read_file(path);
    int n = count_text(log, "\n");
    free(log);
    return n;
}

gateway_proc_t *gateway_proc_start(const char *log_path, const char *const *args)
{
    gateway_proc_t *self = calloc(1, sizeof *self);
    snprintf(self->log, sizeof self->log, "%s", log_path);
    self->pid = spawn(log_path, args);
    wait_t w = wait_begin(10000);
    while (self->pid > 0) {
        char *log = gateway_proc_read_file(log_path);
        const char *line = strstr(log, " listening ");
        const char *port = line ? strstr(line, " port=") : NULL;
        if (port)
            self->port = atoi(port + 6);
        free(log);
        if (self->port > 0) {
            snprintf(self->url, sizeof self->url, "http://127.0.0.1:%d", self->port);
            return self;
        }
        if (waitpid(self->pid, NULL, WNOHANG) == self->pid) {
            self->pid = 0;
            break;
        }
        if (!wait_next(&w))
            break;
    }
    char *log = gateway_proc_read_file(log_path);
    fprintf(stderr, "syn-gateway did not start; its log:\n%s\n", log);
    free(log);
    gateway_proc_stop(&self);
    return NULL;
}

static int wait_exit(pid_t pid, int timeout_ms)
{
    for (wait_t w = wait_begin(timeout_ms);;) {
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid)
            return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        if (!wait_next(&w)) {
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
            return -1;
        }
    }
}

void gateway_proc_stop(gateway_proc_t **self_p)
{
    gateway_proc_t *self = *self_p;
    if (!self)
        return;
    if (self->pid > 0) {
        kill(self->pid, SIGTERM);
        wait_exit(self->pid, 10000);
    }
    free(self);
    *self_p = NULL;
}

pid_t gateway_proc_pid(const gateway_proc_t *self)
{
    return self->pid;
}

int gateway_proc_port(const gateway_proc_t *self)
{
    return self->port;
}

const char *gateway_proc_url(const gateway_proc_t *self)
{
    return self->url;
}

int gateway_proc_run(const char *log_path, const char *const *args, int timeout_ms)
{
    pid_t pid = spawn(log_path, args);
    return pid > 0 ? wait_exit(pid, timeout_ms) : -1;
}

bool gateway_proc_wait_healthy(const gateway_proc_t *self, int timeout_ms)
{
    for (wait_t w = wait_begin(timeout_ms);;) {
        http_response_t r;
        int rc = http_get(&r, "%s/health", self->url);
        long status = r.status;
        http_response_clear(&r);
        if (rc == 0 && status == 200)
            return true;
        if (!wait_next(&w))
            return false;
    }
}
