/* sandbox: see sandbox.h. The argv is built from fixed tables so what an agent
 * sees is read in one place; the order of bwrap's options matters (a mount
 * point made on an earlier mount), so the tables are in mount order. */
#include "worker/sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
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
        *out = WORKER_NETWORK_PROXY;
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
    if (policy->network == WORKER_NETWORK_NONE ||
        (policy->network == WORKER_NETWORK_PROXY && !policy->netns_ready))
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

int worker_sandbox_netns_prepare(worker_sandbox_netns_t *ns, int *recv_fd, char *err,
                                 size_t errlen)
{
    int pair[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) != 0) {
        snprintf(err, errlen, "cannot make a socket pair: %s", strerror(errno));
        return -1;
    }
    ns->send_fd = pair[1];
    *recv_fd = pair[0];
    snprintf(ns->uid_map, sizeof ns->uid_map, "%lu %lu 1\n", (unsigned long)getuid(),
             (unsigned long)getuid());
    snprintf(ns->gid_map, sizeof ns->gid_map, "%lu %lu 1\n", (unsigned long)getgid(),
             (unsigned long)getgid());
    return 0;
}

/* Writes text to a /proc file; 0 or an errno value (async-signal-safe). */
static int write_proc(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return errno;
    ssize_t n = write(fd, text, strlen(text));
    int error = n == (ssize_t)strlen(text) ? 0 : n < 0 ? errno : EIO;
    close(fd);
    return error;
}

/* In the forked child, before exec: only system calls, nothing that allocates. */
int worker_sandbox_netns_enter(void *arg)
{
    const worker_sandbox_netns_t *ns = arg;
    if (unshare(CLONE_NEWUSER | CLONE_NEWNET) != 0)
        return errno;
    int error = write_proc("/proc/self/setgroups", "deny");
    if (!error)
        error = write_proc("/proc/self/uid_map", ns->uid_map);
    if (!error)
        error = write_proc("/proc/self/gid_map", ns->gid_map);
    if (error)
        return error;
    /* Loopback starts down in a new namespace. */
    int ctl = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (ctl < 0)
        return errno;
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    memcpy(ifr.ifr_name, "lo", 3);
    if (ioctl(ctl, SIOCGIFFLAGS, &ifr) != 0 ||
        (ifr.ifr_flags |= IFF_UP | IFF_RUNNING, ioctl(ctl, SIOCSIFFLAGS, &ifr) != 0)) {
        error = errno;
        close(ctl);
        return error;
    }
    close(ctl);
    int listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (listener < 0)
        return errno;
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons(WORKER_SANDBOX_PROXY_PORT);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(listener, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(listener, 64) != 0) {
        error = errno;
        close(listener);
        return error;
    }
    char byte = 'L';
    struct iovec iov = {.iov_base = &byte, .iov_len = 1};
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } control;
    memset(&control, 0, sizeof control);
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf,
                         .msg_controllen = sizeof control.buf};
    struct cmsghdr *cmsg = CMSG_FIRSTHDR(&msg);
    cmsg->cmsg_level = SOL_SOCKET;
    cmsg->cmsg_type = SCM_RIGHTS;
    cmsg->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(cmsg), &listener, sizeof listener);
    ssize_t sent;
    do
        sent = sendmsg(ns->send_fd, &msg, MSG_NOSIGNAL);
    while (sent < 0 && errno == EINTR);
    error = sent == 1 ? 0 : errno ? errno : EIO;
    close(listener);
    return error;
}

int worker_sandbox_netns_take(int recv_fd, int *listen_fd, char *err, size_t errlen)
{
    char byte;
    struct iovec iov = {.iov_base = &byte, .iov_len = 1};
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } control;
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf,
                         .msg_controllen = sizeof control.buf};
    /* Called once recv_fd is readable: the socket is there, or the child
     * closed its end without sending it (end of file), so this never waits. */
    ssize_t n;
    do
        n = recvmsg(recv_fd, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    while (n < 0 && errno == EINTR);
    int saved = errno;
    close(recv_fd);
    struct cmsghdr *cmsg = n == 1 ? CMSG_FIRSTHDR(&msg) : NULL;
    if (!cmsg || cmsg->cmsg_level != SOL_SOCKET || cmsg->cmsg_type != SCM_RIGHTS ||
        cmsg->cmsg_len != CMSG_LEN(sizeof(int))) {
        snprintf(err, errlen, "the sandbox sent no proxy socket%s%s", n < 0 ? ": " : "",
                 n < 0 ? strerror(saved) : "");
        return -1;
    }
    memcpy(listen_fd, CMSG_DATA(cmsg), sizeof *listen_fd);
    return 0;
}

int worker_sandbox_probe(const char *bwrap, const char *ro_paths, char *err, size_t errlen)
{
    char *inner[] = {"true", NULL};
    worker_sandbox_policy_t policy = {.bwrap = bwrap, .workspace = "/tmp", .ro_paths = ro_paths,
                                      .network = WORKER_NETWORK_PROXY, .netns_ready = true};
    char **argv = worker_sandbox_argv(&policy, inner, err, errlen);
    if (!argv)
        return -1;
    worker_sandbox_netns_t ns;
    int recv_fd = -1;
    if (worker_sandbox_netns_prepare(&ns, &recv_fd, err, errlen) != 0) {
        free(argv);
        return -1;
    }
    int errpipe[2];
    if (pipe2(errpipe, O_CLOEXEC) != 0) {
        free(argv);
        close(ns.send_fd);
        close(recv_fd);
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
        int error = worker_sandbox_netns_enter(&ns);
        if (error) {
            dprintf(STDERR_FILENO, "cannot make a network namespace for the proxy: %s\n",
                    strerror(error));
            _exit(126);
        }
        execvp(argv[0], argv);
        dprintf(STDERR_FILENO, "cannot run %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    free(argv);
    close(ns.send_fd);
    close(recv_fd);
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
