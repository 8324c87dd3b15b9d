#include "tests/support/rawconn.h"
#include "tests/support/teststack.h"
#include "tests/support/wait.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

int rawconn_open(const char *source, int port, const char *text)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in addr = {.sin_family = AF_INET};
    if (source) {
        inet_pton(AF_INET, source, &addr.sin_addr);
        if (bind(fd, (struct sockaddr *)&addr, sizeof addr) != 0)
            goto fail;
    }
    addr.sin_port = htons((uint16_t)port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0)
        goto fail;
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    /* The server may already have closed it (over a limit): the send may fail, the
     * connection is still the caller's to look at. */
    if (text)
        (void)send(fd, text, strlen(text), MSG_NOSIGNAL);
    return fd;
fail:
    close(fd);
    return -1;
}

bool rawconn_closed(int fd)
{
    char buf[4096];
    for (;;) {
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n == 0)
            return true;
        if (n < 0)
            return errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR;
    }
}

bool rawconn_wait_closed(int fd, int timeout_ms)
{
    wait_t w = wait_begin(timeout_ms);
    for (;;) {
        if (rawconn_closed(fd))
            return true;
        long long left = w.deadline_ms - wait_now_ms();
        if (left <= 0)
            return false;
        struct pollfd p = {fd, POLLIN, 0};
        poll(&p, 1, left > 100 ? 100 : (int)left);
    }
}

int rawconn_request(int fd, const char *request, int timeout_ms)
{
    if (send(fd, request, strlen(request), MSG_NOSIGNAL) != (ssize_t)strlen(request))
        return -1;
    char buf[8192];
    size_t used = 0;
    wait_t w = wait_begin(timeout_ms);
    while (wait_now_ms() < w.deadline_ms && used < sizeof buf - 1) {
        struct pollfd p = {fd, POLLIN, 0};
        poll(&p, 1, 50);
        ssize_t n = recv(fd, buf + used, sizeof buf - 1 - used, 0);
        if (n == 0)
            return -1;
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
                continue;
            return -1;
        }
        used += (size_t)n;
        buf[used] = '\0';
        char *end = strstr(buf, "\r\n\r\n");
        const char *length = strcasestr(buf, "\r\nContent-Length:");
        if (end && length && used >= (size_t)(end + 4 - buf) + strtoul(length + 17, NULL, 10)) {
            int status = 0;
            sscanf(buf, "HTTP/1.%*d %d", &status);
            return status;
        }
    }
    return -1;
}

long rawconn_raise_fd_limit(long want)
{
    struct rlimit lim;
    if (getrlimit(RLIMIT_NOFILE, &lim) != 0)
        return -1;
    if ((long)lim.rlim_cur < want) {
        lim.rlim_cur = lim.rlim_max == RLIM_INFINITY || (long)lim.rlim_max > want
                           ? (rlim_t)want
                           : lim.rlim_max;
        setrlimit(RLIMIT_NOFILE, &lim);
        getrlimit(RLIMIT_NOFILE, &lim);
    }
    return (long)lim.rlim_cur;
}
