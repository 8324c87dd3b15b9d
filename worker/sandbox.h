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
    WORKER_NETWORK_PROXY = 0, /* only the worker's credential proxy (not there yet:
                               * nothing is reachable; issue 22) */
    WORKER_NETWORK_NONE,      /* an empty network namespace (loopback only) */
    WORKER_NETWORK_HOST,      /* the host's network, as without a sandbox; the
                               * default until the credential proxy lands */
} worker_network_t;

/* "none", "proxy", "host"; 0, or -1 for any other name (NULL or "" is host, the default). */
int worker_network_parse(const char *name, worker_network_t *out);
const char *worker_network_name(worker_network_t network);

typedef struct {
    const char *bwrap;       /* the bwrap program; NULL = "bwrap" in PATH */
    const char *workspace;   /* bound read-write at the same path; the cwd */
    const char *ro_paths;    /* more read-only paths, comma-separated (or NULL) */
    const char *program;     /* the agent's program, bound read-only when it is a
                              * file outside the system directories (or NULL) */
    worker_network_t network;
    /* Whether path exists on the host: optional binds are left out when not
     * (NULL = stat). A test gives its own to check the argv without the host. */
    bool (*exists)(const char *path);
} worker_sandbox_policy_t;

/* The bwrap argv that runs inner (NULL-terminated) under policy, inner's
 * strings borrowed: free the vector alone with free(). NULL with the reason in
 * err when a path is not absolute or memory ran out. */
char **worker_sandbox_argv(const worker_sandbox_policy_t *policy, char *const *inner, char *err,
                           size_t errlen);

/* Whether bwrap can make a sandbox on this host, with the read-only paths
 * ro_paths (or NULL), by running `bwrap ... true`: 0, or -1 with one line
 * saying why in err ("bwrap: setting up uid map: Permission denied", "cannot
 * run bwrap: No such file or directory", "bwrap: Can't find source path
 * /opt/x: No such file or directory"). */
int worker_sandbox_probe(const char *bwrap, const char *ro_paths, char *err, size_t errlen);

#endif
