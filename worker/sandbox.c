/* sandbox: see sandbox.h. The argv is built from fixed tables so what an agent
 * sees is read in one place; the order of bwrap's options matters (a mount
 * point made on an earlier mount), so the tables are in mount order. */
#include "worker/sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *const network_names[] = {
    [WORKER_NETWORK_PROXY] = "proxy",
    [WORKER_NETWORK_NONE] = "none",
    [WORKER_NETWORK_HOST] = "host",
};

int worker_network_parse(const char *name, worker_network_t *out)
{
    if (!name || !*name) {
        *out = WORKER_NETWORK_HOST;
        return 0;
    }
    for (size_t i = 0; i < sizeof network_names / sizeof network_names[0]; i++)
        if (strcmp(name, network_names[i]) == 0) {
            *out = (worker_network_t)i;
            return 0;
        }
    return -1;
}

const char *worker_network_name(worker_network_t network)
{
    return (unsigned)network < sizeof network_names / sizeof network_names[0]
               ? network_names[network]
               : "proxy";
}

/* Namespaces: everything bwrap can make, the network apart (the phase decides).
 * --die-with-parent: an agent never outlives its worker. No --new-session: the
 * worker stops an agent by signalling its process group, which must reach
 * every process inside (stdio are pipes, never a terminal, so the TIOCSTI
 * escape --new-session guards against has no terminal to use). */
static const char *const isolation[] = {
    "--die-with-parent", "--unshare-user", "--unshare-pid", "--unshare-ipc",
    "--unshare-uts",     "--unshare-cgroup-try", "--hostname", "syn-agent",
};

/* What a program needs of the system, read-only; the -try ones may be missing
 * (and on a merged-/usr host /bin and /lib are links into /usr: binding them
 * follows the link, which gives the same files). */
static const char *const system_dirs[] = {"/usr", "/bin", "/sbin", "/lib", "/lib64", "/lib32",
                                          "/libx32", "/etc", "/opt"};

/* Secrets under /etc: files are covered by an empty one, directories by an
 * empty tmpfs; only those that exist (a mount point cannot be made in the
 * read-only /etc). */
static const char *const secret_files[] = {"/etc/shadow", "/etc/shadow-", "/etc/gshadow",
                                           "/etc/gshadow-", "/etc/ssh/ssh_host_rsa_key",
                                           "/etc/ssh/ssh_host_ecdsa_key",
                                           "/etc/ssh/ssh_host_ed25519_key"};
static const char *const secret_dirs[] = {"/etc/ssl/private", "/etc/syn", "/etc/sudoers.d"};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

typedef struct {
    char **items;
    size_t count, cap;
    bool failed;
} argv_t;

static void add(argv_t *v, const char *arg)
{
    if (v->failed)
        return;
    if (v->count + 2 > v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 64;
        char **grown = realloc(v->items, cap * sizeof *grown);
        if (!grown) {
            v->failed = true;
            return;
        }
        v->items = grown;
        v->cap = cap;
    }
    v->items[v->count++] = (char *)arg;
    v->items[v->count] = NULL;
}

static void add3(argv_t *v, const char *opt, const char *a, const char *b)
{
    add(v, opt);
    add(v, a);
    if (b)
        add(v, b);
}

static bool stat_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

static bool is_system_path(const char *path)
{
    for (size_t i = 0; i < COUNT(system_dirs); i++) {
        size_t len = strlen(system_dirs[i]);
        if (strncmp(path, system_dirs[i], len) == 0 && (path[len] == '/' || path[len] == '\0'))
            return true;
    }
    return false;
}

/* The --sandbox-ro list holds pointers into a copy: split in place. */
static int add_ro_paths(argv_t *v, char *list, char *err, size_t errlen)
{
    for (char *save = NULL, *path = strtok_r(list, ", \t", &save); path;
         path = strtok_r(NULL, ", \t", &save)) {
        if (path[0] != '/') {
            snprintf(err, errlen, "sandbox: read-only path '%s' is not absolute", path);
            return -1;
        }
        add3(v, "--ro-bind", path, path);
    }
    return 0;
}

char **worker_sandbox_argv(const worker_sandbox_policy_t *policy, char *const *inner, char *err,
                           size_t errlen)
{
    bool (*exists)(const char *) = policy->exists ? policy->exists : stat_exists;
    if (!policy->workspace || policy->workspace[0] != '/') {
        snprintf(err, errlen, "sandbox: the workspace must be an absolute path");
        return NULL;
    }
    /* The ro list is split into a buffer kept at the vector's tail, so one
     * free() releases both. */
    size_t ro_len = policy->ro_paths ? strlen(policy->ro_paths) + 1 : 0;
    argv_t v = {0};
    add(&v, policy->bwrap ? policy->bwrap : "bwrap");
    for (size_t i = 0; i < COUNT(isolation); i++)
        add(&v, isolation[i]);
    if (policy->network != WORKER_NETWORK_HOST)
        add(&v, "--unshare-net");
    for (size_t i = 0; i < COUNT(system_dirs); i++)
        add3(&v, "--ro-bind-try", system_dirs[i], system_dirs[i]);
    for (size_t i = 0; i < COUNT(secret_files); i++) /* bwrap cannot make them in /etc */
        if (exists(secret_files[i]))
            add3(&v, "--ro-bind", "/dev/null", secret_files[i]);
    for (size_t i = 0; i < COUNT(secret_dirs); i++)
        if (exists(secret_dirs[i]))
            add3(&v, "--tmpfs", secret_dirs[i], NULL);
    add3(&v, "--proc", "/proc", NULL);
    add3(&v, "--dev", "/dev", NULL);
    add3(&v, "--tmpfs", "/tmp", NULL);
    add3(&v, "--tmpfs", "/run", NULL);
    add3(&v, "--bind", policy->workspace, policy->workspace);
    if (policy->program && policy->program[0] == '/' && !is_system_path(policy->program))
        add3(&v, "--ro-bind", policy->program, policy->program);
    if (v.failed) {
        free(v.items);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    char *ro = NULL;
    if (ro_len) {
        ro = malloc(ro_len);
        if (!ro) {
            free(v.items);
            snprintf(err, errlen, "out of memory");
            return NULL;
        }
        memcpy(ro, policy->ro_paths, ro_len);
        if (add_ro_paths(&v, ro, err, errlen) != 0) {
            free(v.items);
            free(ro);
            return NULL;
        }
    }
    add3(&v, "--chdir", policy->workspace, NULL);
    add(&v, "--");
    for (size_t i = 0; inner && inner[i]; i++)
        add(&v, inner[i]);
    if (v.failed) {
        free(v.items);
        free(ro);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (!ro)
        return v.items;
    /* Move the split list behind the vector so one free() owns both. */
    size_t head = (v.count + 1) * sizeof(char *);
    char **joined = malloc(head + ro_len);
    if (!joined) {
        free(v.items);
        free(ro);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    char *tail = (char *)joined + head;
    memcpy(tail, ro, ro_len);
    for (size_t i = 0; i <= v.count; i++)
        joined[i] = v.items[i] && v.items[i] >= ro && v.items[i] < ro + ro_len
                        ? tail + (v.items[i] - ro)
                        : v.items[i];
    free(v.items);
    free(ro);
    return joined;
}

int worker_sandbox_probe(const char *bwrap, const char *ro_paths, char *err, size_t errlen)
{
    char *inner[] = {"true", NULL};
    worker_sandbox_policy_t policy = {.bwrap = bwrap, .workspace = "/tmp", .ro_paths = ro_paths};
    char **argv = worker_sandbox_argv(&policy, inner, err, errlen);
    if (!argv)
        return -1;
    int errpipe[2];
    if (pipe2(errpipe, O_CLOEXEC) != 0) {
        free(argv);
        snprintf(err, errlen, "cannot make a pipe: %s", strerror(errno));
        return -1;
    }
    pid_t pid = fork();
    if (pid == 0) {
        int null_fd = open("/dev/null", O_RDWR);
        if (null_fd >= 0) {
            dup2(null_fd, STDIN_FILENO);
            dup2(null_fd, STDOUT_FILENO);
        }
        dup2(errpipe[1], STDERR_FILENO);
        execvp(argv[0], argv);
        dprintf(STDERR_FILENO, "cannot run %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    free(argv);
    close(errpipe[1]);
    if (pid < 0) {
        close(errpipe[0]);
        snprintf(err, errlen, "cannot fork: %s", strerror(errno));
        return -1;
    }
    char said[512];
    size_t len = 0;
    ssize_t n;
    while (len < sizeof said - 1 &&
           ((n = read(errpipe[0], said + len, sizeof said - 1 - len)) > 0 ||
            (n < 0 && errno == EINTR)))
        if (n > 0)
            len += (size_t)n;
    close(errpipe[0]);
    said[len] = '\0';
    said[strcspn(said, "\n")] = '\0';
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return 0;
    snprintf(err, errlen, "%s", *said ? said : "bwrap failed without saying why");
    return -1;
}
