/* proxy: a TCP forwarder on loopback between the second gateway and the broker,
 * so the soak can cut that link without stopping either process: SIGUSR1 closes
 * every forwarded connection and the listeners (the gateway's ZeroMQ sockets see
 * their peer vanish and reconnect into refusals), SIGUSR2 listens again. A
 * forked child with one poll loop; it dies with the soak (PR_SET_PDEATHSIG). */
#include "bench/chaos/chaos.h"
#include "bench/synload/localproc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#define PROXY_MAX_LISTEN 4
#define PROXY_MAX_PAIRS 64

static volatile sig_atomic_t cut_requested, restore_requested;

static void on_usr1(int sig)
{
    (void)sig;
    cut_requested = 1;
}

static void on_usr2(int sig)
{
    (void)sig;
    restore_requested = 1;
}

static int listen_on(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || bind(fd, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(fd, 64) != 0) {
        fprintf(stderr, "proxy: listen on %d: %s\n", port, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

static int connect_to(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

/* Copies what one side has to the other: -1 when either side is done. Blocking
 * writes are fine: both ends are local programs that read what they are sent. */
static int pump(int from, int to)
{
    char buf[65536];
    ssize_t n = read(from, buf, sizeof buf);
    if (n <= 0)
        return -1;
    for (ssize_t off = 0; off < n;) {
        ssize_t w = write(to, buf + off, (size_t)(n - off));
        if (w <= 0)
            return -1;
        off += w;
    }
    return 0;
}

static void proxy_loop(const int *listen_ports, const int *target_ports, int n)
{
    int lfd[PROXY_MAX_LISTEN];
    int pairs[PROXY_MAX_PAIRS][2];
    int npairs = 0;
    for (int i = 0; i < n; i++)
        lfd[i] = listen_on(listen_ports[i]);
    for (;;) {
        if (cut_requested) {
            cut_requested = 0;
            for (int i = 0; i < npairs; i++) {
                close(pairs[i][0]);
                close(pairs[i][1]);
            }
            npairs = 0;
            for (int i = 0; i < n; i++)
                if (lfd[i] >= 0) {
                    close(lfd[i]);
                    lfd[i] = -1;
                }
            fprintf(stderr, "proxy: cut\n");
        }
        if (restore_requested) {
            restore_requested = 0;
            for (int i = 0; i < n; i++)
                if (lfd[i] < 0)
                    lfd[i] = listen_on(listen_ports[i]);
            fprintf(stderr, "proxy: restored\n");
        }
        struct pollfd p[PROXY_MAX_LISTEN + 2 * PROXY_MAX_PAIRS];
        int np = 0;
        for (int i = 0; i < n; i++)
            p[np++] = (struct pollfd){.fd = lfd[i], .events = POLLIN};
        for (int i = 0; i < npairs; i++) {
            p[np++] = (struct pollfd){.fd = pairs[i][0], .events = POLLIN};
            p[np++] = (struct pollfd){.fd = pairs[i][1], .events = POLLIN};
        }
        if (poll(p, (nfds_t)np, 200) < 0) {
            if (errno == EINTR)
                continue;
            return;
        }
        for (int i = 0; i < n; i++) {
            if (lfd[i] < 0 || !(p[i].revents & POLLIN))
                continue;
            int in = accept(lfd[i], NULL, NULL);
            if (in < 0)
                continue;
            int out = connect_to(target_ports[i]);
            if (out < 0 || npairs == PROXY_MAX_PAIRS) {
                close(in);
                if (out >= 0)
                    close(out);
                continue;
            }
            pairs[npairs][0] = in;
            pairs[npairs][1] = out;
            npairs++;
        }
        /* Pairs accepted in this round have no poll entry yet: only the old ones. */
        int old = (np - n) / 2;
        for (int i = old - 1; i >= 0; i--) {
            short a = p[n + 2 * i].revents, b = p[n + 2 * i + 1].revents;
            int dead = 0;
            if (a & (POLLIN | POLLHUP | POLLERR))
                dead |= pump(pairs[i][0], pairs[i][1]) != 0;
            if (!dead && (b & (POLLIN | POLLHUP | POLLERR)))
                dead |= pump(pairs[i][1], pairs[i][0]) != 0;
            if (dead) {
                close(pairs[i][0]);
                close(pairs[i][1]);
                /* Keep the order of the pairs polled after i: move the tail down. */
                memmove(&pairs[i], &pairs[i + 1], (size_t)(npairs - i - 1) * sizeof pairs[0]);
                npairs--;
            }
        }
    }
}

pid_t chaos_proxy_start(const int *listen_ports, const int *target_ports, int n,
                        const char *log_path)
{
    if (n < 1 || n > PROXY_MAX_LISTEN)
        return -1;
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
        _exit(1);
    localproc_redirect_child(log_path);
    struct sigaction sa = {.sa_handler = on_usr1};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGUSR1, &sa, NULL);
    sa.sa_handler = on_usr2;
    sigaction(SIGUSR2, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGINT, SIG_IGN);
    proxy_loop(listen_ports, target_ports, n);
    _exit(0);
}
