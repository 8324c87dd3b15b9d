/* localproc: the process plumbing synload's stack and the integration tests'
 * teststack share for running a syn stack on loopback. Header-only (static
 * inline) so that tests/support can use it without linking synload, and
 * synload without linking the test support library (cmocka). */
#ifndef SYNLOAD_LOCALPROC_H
#define SYNLOAD_LOCALPROC_H

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* A free TCP port on 127.0.0.1 (bound then released), or -1. */
/* n loopback ports free right now and distinct from each other: every one stays
 * bound until all are picked, since a port closed again may be handed out by the
 * very next call (a stack whose broker got one port for two endpoints could not
 * start). 0, or -1 when the system would not give them. */
static inline int localproc_free_ports(int *ports, int n)
{
    int fds[8];
    if (n < 1 || n > 8)
        return -1;
    int opened = 0, rc = 0;
    for (; opened < n && rc == 0; opened++) {
        fds[opened] = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = 0};
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t len = sizeof addr;
        if (fds[opened] < 0 || bind(fds[opened], (struct sockaddr *)&addr, sizeof addr) != 0 ||
            getsockname(fds[opened], (struct sockaddr *)&addr, &len) != 0)
            rc = -1;
        else
            ports[opened] = ntohs(addr.sin_port);
    }
    for (int i = 0; i < opened; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    return rc;
}

/* A local stack's addresses on distinct free loopback ports: the gateway's HTTP
 * address and its URL, and the broker's three endpoints (each buffer
 * LOCALPROC_ADDR_SIZE bytes). 0, or -1 when no ports could be had. */
#define LOCALPROC_ADDR_SIZE 64
static inline int localproc_stack_addresses(char *http_addr, char *url, char *clients_ep,
                                            char *workers_ep, char *events_ep)
{
    int ports[4];
    if (localproc_free_ports(ports, 4) != 0)
        return -1;
    snprintf(http_addr, LOCALPROC_ADDR_SIZE, "127.0.0.1:%d", ports[0]);
    snprintf(url, LOCALPROC_ADDR_SIZE, "http://127.0.0.1:%d", ports[0]);
    snprintf(clients_ep, LOCALPROC_ADDR_SIZE, "tcp://127.0.0.1:%d", ports[1]);
    snprintf(workers_ep, LOCALPROC_ADDR_SIZE, "tcp://127.0.0.1:%d", ports[2]);
    snprintf(events_ep, LOCALPROC_ADDR_SIZE, "tcp://127.0.0.1:%d", ports[3]);
    return 0;
}

static inline int localproc_free_port(void)
{
    int port;
    return localproc_free_ports(&port, 1) == 0 ? port : -1;
}

/* Sleeps ms milliseconds, resuming after signals. */
static inline void localproc_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
        ;
}

/* In a forked child before exec: stdout and stderr appended to log_path (left
 * alone when it cannot be opened), stdin from /dev/null, so a stack's programs
 * never read the terminal and their logs survive for a failing run. */
static inline void localproc_redirect_child(const char *log_path)
{
    int fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
        dup2(fd, 1);
        dup2(fd, 2);
        close(fd);
    }
    int devnull = open("/dev/null", O_RDONLY);
    if (devnull >= 0)
        dup2(devnull, 0);
}

#endif
