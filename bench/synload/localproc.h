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
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* A free TCP port on 127.0.0.1 (bound then released), or -1. */
static inline int localproc_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = 0};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    int port = -1;
    if (bind(fd, (struct sockaddr *)&addr, sizeof addr) == 0 &&
        getsockname(fd, (struct sockaddr *)&addr, &len) == 0)
        port = ntohs(addr.sin_port);
    close(fd);
    return port;
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
