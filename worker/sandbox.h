/* sandbox: what an agent process may see of the host, as a bubblewrap command.
 *
 * An agent reads untrusted text and then runs commands, so it runs inside
 * bwrap: its own user, mount, PID, IPC, UTS (and cgroup where the kernel has
 * it) namespaces; the system directories read-only with /etc's secrets hidden;
 * its workspace read-write (at the same path, so HOME, SYN_WORKSPACE and the
 * cwd need no translation); a private /tmp and /dev; /proc of its own PID
 * namespace; nothing else of the host. The network is the phase's choice
 * (worker_network_t).
 *
 * Building the command is pure (a policy in, an argv out) so it can be tested
 * without bwrap; only worker_sandbox_probe runs anything. */
#ifndef SYN_WORKER_SANDBOX_H
#define SYN_WORKER_SANDBOX_H

#include <stdbool.h>
#include <stddef.h>

/* A phase's network (the workflow field "network"). */
typedef enum {
    WORKER_NETWORK_PROXY = 0, /* the default: a network namespace of its own whose
                               * only listener is the worker's credential proxy
                               * (cred_proxy.h) at 127.0.0.1:WORKER_SANDBOX_PROXY_PORT */
    WORKER_NETWORK_NONE,      /* an empty network namespace (loopback only) */
    WORKER_NETWORK_HOST,      /* the host's network, as without a sandbox, asked
                               * for by name */
} worker_network_t;

/* The port of the credential proxy inside an attempt's network namespace: the
 * namespace is the attempt's alone, so one fixed port serves every attempt. */
#define WORKER_SANDBOX_PROXY_PORT 8177

/* "none", "proxy", "host"; 0, or -1 for any other name (NULL or "" is proxy, the default). */
int worker_network_parse(const char *name, worker_network_t *out);
const char *worker_network_name(worker_network_t network);

typedef struct {
    const char *bwrap;       /* the bwrap program; NULL = "bwrap" in PATH */
    const char *workspace;   /* bound read-write at the same path; the cwd */
    const char *ro_paths;    /* more read-only paths, comma-separated (or NULL) */
    const char *program;     /* the agent's program, bound read-only when it is a
                              * file outside the system directories (or NULL) */
    worker_network_t network;
    /* The process running bwrap already sits in a network namespace of its own
     * (worker_sandbox_netns_enter ran): bwrap keeps it rather than making an
     * empty one. Without it, none and proxy both get an empty namespace. */
    bool netns_ready;
    /* Whether path exists on the host: optional binds are left out when not
     * (NULL = stat). A test gives its own to check the argv without the host. */
    bool (*exists)(const char *path);
} worker_sandbox_policy_t;

/* The bwrap argv that runs inner (NULL-terminated) under policy, inner's
 * strings borrowed: free the vector alone with free(). NULL with the reason in
 * err when a path is not absolute or memory ran out. */
char **worker_sandbox_argv(const worker_sandbox_policy_t *policy, char *const *inner, char *err,
                           size_t errlen);

/* The network namespace of a `proxy` attempt, made by the agent's own process
 * between fork and exec (worker_proc_spec_t.before_exec), so that bwrap, which
 * that process then becomes, keeps it for the agent: a new user namespace (the
 * worker's uid and gid mapped to themselves, so bwrap can nest its own) and a
 * new network namespace with loopback up and one TCP socket listening on
 * 127.0.0.1:WORKER_SANDBOX_PROXY_PORT, sent back to the worker over a socket
 * pair (SCM_RIGHTS) and closed in the child, so the agent never holds it. */
typedef struct {
    int send_fd;             /* the child's end of the pair */
    char uid_map[32], gid_map[32]; /* formatted before fork (no snprintf after it) */
} worker_sandbox_netns_t;

/* Makes the pair and the maps: 0 with the worker's end in *recv_fd, or -1
 * with the reason in err. Close ns->send_fd once the child has started. */
int worker_sandbox_netns_prepare(worker_sandbox_netns_t *ns, int *recv_fd, char *err,
                                 size_t errlen);
/* The before_exec hook (arg: the worker_sandbox_netns_t): 0, or an errno value. */
int worker_sandbox_netns_enter(void *arg);
/* The listening socket the child sent (non-blocking, close-on-exec), once
 * recv_fd is readable (the child makes the namespace after the start has
 * returned: see worker_proc_spec_t.before_exec): 0 with it in *listen_fd, or
 * -1 with the reason in err. Closes recv_fd either way. */
int worker_sandbox_netns_take(int recv_fd, int *listen_fd, char *err, size_t errlen);

/* Whether bwrap can make a sandbox on this host, with the read-only paths
 * ro_paths (or NULL), by running `bwrap ... true` in a network namespace made
 * as for a `proxy` attempt: 0, or -1 with one line
 * saying why in err ("bwrap: setting up uid map: Permission denied", "cannot
 * run bwrap: No such file or directory", "bwrap: Can't find source path
 * /opt/x: No such file or directory"). */
int worker_sandbox_probe(const char *bwrap, const char *ro_paths, char *err, size_t errlen);

#endif
