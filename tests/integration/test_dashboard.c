/* The dashboard (issue 16) in a real browser against real stacks: Debian's chromium
 * driven by playwright-core (tests/browser/dashboard.mjs, the checks themselves).
 * This program makes what the script needs and answers what only it can do:
 *   - tests/browser/setup.sh installs chromium, node and npm when missing and
 *     playwright-core (pinned by its package-lock.json) under the build tree;
 *   - two stacks: an open one (two mock workers) and one with API tokens (CURVE and
 *     an admin token, as teststack makes them) plus a read token made here with
 *     `syn token new` and loaded by the gateway's SIGHUP;
 *   - the script asks on its stdout, one line each, for what a browser cannot do
 *     ("@@ kill-worker w0": SIGKILL a worker; "@@ restart-gateway"), and gets "ok"
 *     or "error …" on its stdin.
 * Screenshots of each page go to build/browser/screenshots, or with
 * SYN_UPDATE_SCREENSHOTS=1 to docs/img (the README's pictures).
 * One browser and two stacks for every page, so the whole run takes seconds. Runs
 * in the plain build only (tests/CMakeLists.txt: BROWSER): the browser does not
 * exercise the C code any differently under the sanitizers. */
#include "tests/support/http.h"
#include "tests/support/teststack.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define BROWSER_DIR SYN_BIN_DIR "/../browser"

static int run_setup(void)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "sh '%s/tests/browser/setup.sh' '%s'", SYN_SOURCE_DIR, BROWSER_DIR);
    int rc = system(cmd);
    if (rc != 0)
        fprintf(stderr, "test_dashboard: %s failed (%d)\n", cmd, rc);
    return rc == 0 ? 0 : -1;
}

/* A read token in the secured stack's tokens file, and the gateway told to read it
 * again: the token (malloc'd), or NULL. */
static char *make_read_token(teststack_t *stack)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "'%s/syn' token new viewer --scope read --file '%s/api-tokens' -q",
             SYN_BIN_DIR, teststack_dir(stack));
    FILE *out = popen(cmd, "r");
    char token[128] = "";
    if (!out)
        return NULL;
    bool got = fgets(token, sizeof token, out) != NULL;
    if (pclose(out) != 0 || !got)
        return NULL;
    token[strcspn(token, "\r\n")] = '\0';
    if (kill(teststack_gateway_pid(stack), SIGHUP) != 0)
        return NULL;
    return strdup(token);
}

/* Does what one "@@ …" line asks: 0, or -1 with the reason in err. */
static int command(teststack_t *stack, const char *line, char *err, size_t errlen)
{
    int index;
    if (sscanf(line, "@@ kill-worker w%d", &index) == 1) {
        if (index < 0 || index >= TESTSTACK_MAX_WORKERS || teststack_worker_pid(stack, index) <= 0) {
            snprintf(err, errlen, "no worker w%d", index);
            return -1;
        }
        teststack_kill_worker(stack, index, SIGKILL);
        return 0;
    }
    if (strncmp(line, "@@ restart-gateway", 18) == 0) {
        teststack_kill_gateway(stack, SIGTERM);
        if (teststack_start_gateway(stack) != 0) {
            snprintf(err, errlen, "the gateway did not start again");
            return -1;
        }
        return 0;
    }
    snprintf(err, errlen, "unknown command");
    return -1;
}

int main(void)
{
    if (run_setup() != 0)
        return 1;
    teststack_options_t open_opts = {.workers = 2, .slots = 2};
    teststack_options_t secured_opts = {.workers = 1, .slots = 2, .secure = true};
    teststack_t *open_stack = teststack_start(&open_opts);
    teststack_t *secured = open_stack ? teststack_start(&secured_opts) : NULL;
    char *read_token = secured ? make_read_token(secured) : NULL;
    int status = 1;
    if (!read_token) {
        fprintf(stderr, "test_dashboard: cannot start the stacks or make a read token\n");
        goto done;
    }
    int to_node[2], from_node[2];
    if (pipe(to_node) != 0 || pipe(from_node) != 0) {
        perror("pipe");
        goto done;
    }
    char multiplier[32];
    snprintf(multiplier, sizeof multiplier, "%d", wait_scaled_ms(1000));
    pid_t pid = fork();
    if (pid == 0) {
        dup2(to_node[0], 0);
        dup2(from_node[1], 1);
        close(to_node[1]);
        close(from_node[0]);
        setenv("SYN_OPEN_URL", teststack_url(open_stack), 1);
        setenv("SYN_SECURED_URL", teststack_url(secured), 1);
        setenv("SYN_ADMIN_TOKEN", http_bearer(), 1);
        setenv("SYN_READ_TOKEN", read_token, 1);
        setenv("SYN_SCALE_MS", multiplier, 1); /* what 1000 ms is on this machine */
        /* docs/img's pictures change only when asked: a test run leaves the tree clean. */
        const char *update = getenv("SYN_UPDATE_SCREENSHOTS");
        setenv("SYN_SCREENSHOTS",
               update && strcmp(update, "1") == 0 ? SYN_SOURCE_DIR "/docs/img"
                                                  : BROWSER_DIR "/screenshots",
               1);
        setenv("NODE_PATH", BROWSER_DIR "/node_modules", 1);
        execlp("node", "node", SYN_SOURCE_DIR "/tests/browser/dashboard.mjs", (char *)NULL);
        perror("exec node");
        _exit(127);
    }
    close(to_node[0]);
    close(from_node[1]);
    FILE *in = fdopen(from_node[0], "r");
    FILE *out = fdopen(to_node[1], "w");
    char line[4096];
    while (in && out && fgets(line, sizeof line, in)) {
        if (strncmp(line, "@@ ", 3) != 0) {
            fputs(line, stderr);
            continue;
        }
        char err[256];
        fprintf(stderr, "test_dashboard: %s", line);
        if (command(open_stack, line, err, sizeof err) == 0)
            fputs("ok\n", out);
        else
            fprintf(out, "error %s\n", err);
        fflush(out);
    }
    if (in)
        fclose(in);
    if (out)
        fclose(out);
    int wstatus = 0;
    while (waitpid(pid, &wstatus, 0) < 0 && errno == EINTR) {
    }
    status = WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : 1;
    if (status != 0) {
        fprintf(stderr, "test_dashboard: the browser checks failed (exit %d): the stacks' logs follow\n",
                status);
        teststack_dump_logs(open_stack);
        teststack_dump_logs(secured);
    }
done:
    free(read_token);
    teststack_destroy(&secured);
    teststack_destroy(&open_stack);
    return status;
}
