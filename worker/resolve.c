#include "worker/resolve.h"

#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* glibc's lookups (NSS modules, the DNS client) want more than a few pages of stack
 * but nothing like the default 8 MiB of address space. */
#define LOOKUP_STACK_SIZE (512u * 1024u)

/* The thread's answer: one record on a SOCK_SEQPACKET pair, so it arrives whole. */
typedef struct {
    int rc;  /* getaddrinfo's */
    int err; /* errno, for EAI_SYSTEM */
    socklen_t len;
    struct sockaddr_storage sa;
} answer_t;

/* Owned by the thread, so the caller can go away while a lookup is under way. */
typedef struct {
    int fd; /* the thread's end of the pair */
    char name[];
} job_t;

struct worker_resolve_t {
    int fd; /* the caller's end */
};

static void pick(const struct addrinfo *found, struct sockaddr_storage *sa, socklen_t *sa_len)
{
    const struct addrinfo *chosen = found;
    for (const struct addrinfo *a = found; a; a = a->ai_next)
        if (a->ai_family == AF_INET) {
            chosen = a;
            break;
        }
    memcpy(sa, chosen->ai_addr, chosen->ai_addrlen);
    *sa_len = chosen->ai_addrlen;
}

static int lookup(const char *text, int family, int flags, struct sockaddr_storage *sa,
                  socklen_t *sa_len)
{
    struct addrinfo hints = {.ai_family = family, .ai_socktype = SOCK_STREAM, .ai_flags = flags};
    struct addrinfo *found = NULL;
    int rc = getaddrinfo(text, NULL, &hints, &found);
    if (rc == 0) {
        pick(found, sa, sa_len);
        freeaddrinfo(found);
    }
    return rc;
}

int worker_resolve_numeric(const char *text, bool ipv6, struct sockaddr_storage *sa,
                           socklen_t *sa_len)
{
    return lookup(text, ipv6 ? AF_INET6 : AF_UNSPEC, AI_NUMERICHOST, sa, sa_len);
}

static void *lookup_thread(void *arg)
{
    job_t *job = arg;
    answer_t answer;
    memset(&answer, 0, sizeof answer);
    answer.rc = lookup(job->name, AF_UNSPEC, 0, &answer.sa, &answer.len);
    answer.err = errno;
    /* Fails harmlessly when the caller has gone (its end is closed). */
    (void)send(job->fd, &answer, sizeof answer, MSG_NOSIGNAL);
    close(job->fd);
    free(job);
    return NULL;
}

worker_resolve_t *worker_resolve_start(const char *name, char *err, size_t errlen)
{
    size_t name_len = strlen(name);
    worker_resolve_t *self = malloc(sizeof *self);
    job_t *job = malloc(sizeof *job + name_len + 1);
    int pair[2] = {-1, -1};
    if (!self || !job) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    memcpy(job->name, name, name_len + 1);
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) != 0) {
        snprintf(err, errlen, "cannot make a socket pair: %s", strerror(errno));
        goto fail;
    }
    self->fd = pair[0];
    job->fd = pair[1];
    /* The thread takes no signal: they are the loop's, which waits for them in poll. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pthread_attr_t attr;
    pthread_t thread;
    int rc = pthread_attr_init(&attr);
    if (rc == 0) {
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        pthread_attr_setstacksize(&attr, LOOKUP_STACK_SIZE);
        rc = pthread_create(&thread, &attr, lookup_thread, job);
        pthread_attr_destroy(&attr);
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        snprintf(err, errlen, "cannot start a lookup: %s", strerror(rc));
        goto fail;
    }
    return self;
fail:
    if (pair[0] >= 0) {
        close(pair[0]);
        close(pair[1]);
    }
    free(job);
    free(self);
    return NULL;
}

int worker_resolve_fd(const worker_resolve_t *self)
{
    return self->fd;
}

int worker_resolve_collect(worker_resolve_t *self, struct sockaddr_storage *sa,
                           socklen_t *sa_len, char *err, size_t errlen)
{
    answer_t answer;
    ssize_t got;
    do
        got = recv(self->fd, &answer, sizeof answer, MSG_DONTWAIT);
    while (got < 0 && errno == EINTR);
    if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        return 0;
    if (got != (ssize_t)sizeof answer) {
        snprintf(err, errlen, "the lookup ended without an answer");
        return -1;
    }
    if (answer.rc != 0) {
        snprintf(err, errlen, "%s",
                 answer.rc == EAI_SYSTEM ? strerror(answer.err) : gai_strerror(answer.rc));
        return -1;
    }
    *sa = answer.sa;
    *sa_len = answer.len;
    return 1;
}

void worker_resolve_destroy(worker_resolve_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    close((*self_p)->fd);
    free(*self_p);
    *self_p = NULL;
}
