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

/* The first port of the kernel's ephemeral range (outgoing connections take their
 * source port from it), 32768 when it cannot be read. */
static inline int localproc_ephemeral_low(void)
{
    int low = 32768, high = 0;
    FILE *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "r");
    if (f) {
        if (fscanf(f, "%d %d", &low, &high) != 2)
            low = 32768;
        fclose(f);
    }
    return low;
}

/* n loopback ports free right now and distinct from each other, all below the
 * ephemeral range: a ZeroMQ client reconnecting to a port of that range while
 * nothing listens there can be given that very port as its source and connect
 * to itself (TCP simultaneous open), and then holds it, so the broker it waits
 * for can never bind (seen in CI: "cannot bind ...: Address already in use" at
 * every restart). Every port stays bound until all are picked, since a port
 * closed again could be picked twice (a stack whose broker got one port for two
 * endpoints could not start). The search starts at a place that differs per
 * process so parallel tests rarely meet. 0, or -1 when no ports could be had. */
static inline int localproc_free_ports(int *ports, int n)
{
    enum { LOWEST = 10000 };
    int fds[8];
    int top = localproc_ephemeral_low(); /* exclusive */
    if (n < 1 || n > 8 || top - LOWEST < 1000)
        return -1;
    int span = top - LOWEST;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    unsigned start = ((unsigned)getpid() * 2654435761u) ^ (unsigned)now.tv_nsec;
    int opened = 0;
    for (int tried = 0; tried < span && opened < n; tried++) {
        int port = LOWEST + (int)((start + (unsigned)tried) % (unsigned)span);
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        if (fd < 0)
            break;
        struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (bind(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
            close(fd);
            continue;
        }
        fds[opened] = fd;
        ports[opened++] = port;
    }
    for (int i = 0; i < opened; i++)
        close(fds[i]);
    return opened == n ? 0 : -1;
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

/* Writes path until its file system is full (a full-disk fault: the chaos soak and
 * test_storage_full): 0 when it is, -1 when path cannot be opened. Smaller writes
 * after ENOSPC take the last blocks too. */
static inline int localproc_fill_disk(const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0)
        return -1;
    static char block[1 << 16];
    for (size_t size = sizeof block; size >= 512;) {
        ssize_t w = write(fd, block, size);
        if (w < 0 && errno == ENOSPC)
            size /= 2;
        else if (w <= 0)
            break;
    }
    close(fd);
    return 0;
}

#endif
