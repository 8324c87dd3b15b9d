/* synrun: the built `syn` run from a test (see synrun.h). */
#include "tests/support/synrun.h"

#include "tests/support/http.h"
#include "tests/support/teststack.h"
#include "tests/support/wait.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

char *synrun_slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    if (f && out) {
        char buf[4096];
        size_t n;
        while ((n = fread(buf, 1, sizeof buf, f)) > 0)
            fwrite(buf, 1, n, out);
    }
    if (f)
        fclose(f);
    if (out)
        fclose(out);
    return text ? text : strdup("");
}

/* In the child: the environment and argv of syn, then exec. */
static void exec_syn(const char *url, const char *const *env, const char *const *argv)
{
    if (url)
        setenv("SYN_API_URL", url, 1);
    if (http_bearer())
        setenv("SYN_API_TOKEN", http_bearer(), 1);
    unsetenv("NO_COLOR");
    for (int i = 0; env && env[i]; i++)
        putenv((char *)env[i]);
    char *args[64] = {SYN_BIN_DIR "/syn"};
    int n = 1;
    for (int i = 0; argv[i] && n < 63; i++)
        args[n++] = (char *)argv[i];
    args[n] = NULL;
    execv(args[0], args);
    _exit(127);
}

synrun_t synrun(const char *url, const char *const *env, const char *stdin_text,
                const char *const *argv)
{
    char out_path[] = "/tmp/syn-run-out-XXXXXX", err_path[] = "/tmp/syn-run-err-XXXXXX",
         in_path[] = "/tmp/syn-run-in-XXXXXX";
    int out = mkstemp(out_path), err = mkstemp(err_path), in = mkstemp(in_path);
    if (stdin_text && in >= 0 && write(in, stdin_text, strlen(stdin_text)) < 0)
        perror("synrun: stdin");
    long long start = teststack_now_ms();
    pid_t pid = fork();
    if (pid == 0) {
        int null_in = open("/dev/null", O_RDONLY);
        if (stdin_text)
            lseek(in, 0, SEEK_SET);
        dup2(stdin_text ? in : null_in, STDIN_FILENO);
        dup2(out, STDOUT_FILENO);
        dup2(err, STDERR_FILENO);
        exec_syn(url, env, argv);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    synrun_t r = {.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1,
                  .out = synrun_slurp(out_path),
                  .err = synrun_slurp(err_path),
                  .ms = teststack_now_ms() - start};
    close(out);
    close(err);
    close(in);
    unlink(out_path);
    unlink(err_path);
    unlink(in_path);
    return r;
}

void synrun_clear(synrun_t *r)
{
    free(r->out);
    free(r->err);
    r->out = r->err = NULL;
}

pid_t synrun_spawn(const char *url, const char *const *argv, const char *out_path)
{
    pid_t pid = fork();
    if (pid == 0) {
        int out = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        int null_in = open("/dev/null", O_RDONLY);
        dup2(null_in, STDIN_FILENO);
        dup2(out, STDOUT_FILENO);
        dup2(out, STDERR_FILENO);
        exec_syn(url, NULL, argv);
    }
    return pid;
}

int synrun_wait(pid_t pid, int timeout_ms)
{
    int status = 0;
    wait_t w = wait_begin(timeout_ms);
    do {
        pid_t done = waitpid(pid, &status, WNOHANG);
        if (done == pid)
            return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    } while (wait_next(&w));
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    return -1;
}
