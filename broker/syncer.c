/* syncer: the WAL's fdatasync on a thread of its own (see syncer.h). */
#include "broker/syncer.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

struct broker_syncer_t {
    int fd;       /* the file synced */
    int event_fd; /* written (under lock) when a sync ends */
    broker_sync_fn sync;
    void *sync_arg;
    pthread_t thread;
    bool thread_started;
    pthread_mutex_t lock;
    pthread_cond_t wake;  /* the thread waits here for a request or stop */
    pthread_cond_t ended; /* sync_now/destroy wait here for the end of a sync */
    bool requested, finished, stop;
    int result_errno; /* of the finished sync: 0 = it succeeded */
    bool busy;        /* the loop's view: started and not yet collected */
};

static int sync_with_fdatasync(int fd, void *arg)
{
    (void)arg;
    return fdatasync(fd);
}

static void *sync_thread(void *arg)
{
    broker_syncer_t *self = arg;
    pthread_mutex_lock(&self->lock);
    for (;;) {
        while (!self->requested && !self->stop)
            pthread_cond_wait(&self->wake, &self->lock);
        if (!self->requested)
            break;
        self->requested = false;
        pthread_mutex_unlock(&self->lock);
        int rc = self->sync(self->fd, self->sync_arg);
        int e = rc == 0 ? 0 : errno ? errno : EIO;
        pthread_mutex_lock(&self->lock);
        self->result_errno = e;
        self->finished = true;
        /* Under the lock, so whoever sees `finished` can also read the event. */
        uint64_t one = 1;
        while (write(self->event_fd, &one, sizeof one) < 0 && errno == EINTR)
            ;
        pthread_cond_broadcast(&self->ended);
    }
    pthread_mutex_unlock(&self->lock);
    return NULL;
}

/* The directory holding path: a new file's name is durable only once its
 * directory is synced (SQLite does this on its first sync of a new WAL). */
static int sync_directory_of(const char *path, char *err, size_t errlen)
{
    char dir[PATH_MAX];
    const char *slash = strrchr(path, '/');
    size_t len = slash ? (size_t)(slash - path) : 0;
    if (len >= sizeof dir) {
        snprintf(err, errlen, "path too long: %s", path);
        return -1;
    }
    memcpy(dir, path, len);
    dir[len] = '\0';
    if (!slash)
        snprintf(dir, sizeof dir, ".");
    else if (len == 0)
        snprintf(dir, sizeof dir, "/");
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 || fsync(fd) != 0) {
        snprintf(err, errlen, "cannot sync directory %s: %s", dir, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    close(fd);
    return 0;
}

broker_syncer_t *broker_syncer_new(const char *path, broker_sync_fn sync, void *sync_arg,
                                   char *err, size_t errlen)
{
    broker_syncer_t *self = calloc(1, sizeof *self);
    if (!self) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    self->event_fd = -1;
    self->sync = sync ? sync : sync_with_fdatasync;
    self->sync_arg = sync_arg;
    pthread_mutex_init(&self->lock, NULL);
    pthread_cond_init(&self->wake, NULL);
    pthread_cond_init(&self->ended, NULL);
    self->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (self->fd < 0) {
        snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
        goto fail;
    }
    if (sync_directory_of(path, err, errlen) < 0)
        goto fail;
    self->event_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (self->event_fd < 0) {
        snprintf(err, errlen, "cannot create an eventfd: %s", strerror(errno));
        goto fail;
    }
    int rc = pthread_create(&self->thread, NULL, sync_thread, self);
    if (rc != 0) {
        snprintf(err, errlen, "cannot start the sync thread: %s", strerror(rc));
        goto fail;
    }
    self->thread_started = true;
    return self;
fail:
    broker_syncer_destroy(&self);
    return NULL;
}

/* Waits for the sync under way to end and takes its outcome (0 or an errno). */
static int wait_for_end(broker_syncer_t *self)
{
    pthread_mutex_lock(&self->lock);
    while (!self->finished)
        pthread_cond_wait(&self->ended, &self->lock);
    self->finished = false;
    int e = self->result_errno;
    uint64_t count;
    while (read(self->event_fd, &count, sizeof count) < 0 && errno == EINTR)
        ;
    pthread_mutex_unlock(&self->lock);
    self->busy = false;
    return e;
}

void broker_syncer_destroy(broker_syncer_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    broker_syncer_t *self = *self_p;
    if (self->busy)
        wait_for_end(self);
    if (self->thread_started) {
        pthread_mutex_lock(&self->lock);
        self->stop = true;
        pthread_cond_signal(&self->wake);
        pthread_mutex_unlock(&self->lock);
        pthread_join(self->thread, NULL);
    }
    if (self->fd >= 0)
        close(self->fd);
    if (self->event_fd >= 0)
        close(self->event_fd);
    pthread_cond_destroy(&self->ended);
    pthread_cond_destroy(&self->wake);
    pthread_mutex_destroy(&self->lock);
    free(self);
    *self_p = NULL;
}

int broker_syncer_start(broker_syncer_t *self)
{
    if (self->busy)
        return -1;
    pthread_mutex_lock(&self->lock);
    self->requested = true;
    pthread_cond_signal(&self->wake);
    pthread_mutex_unlock(&self->lock);
    self->busy = true;
    return 0;
}

bool broker_syncer_busy(const broker_syncer_t *self)
{
    return self->busy;
}

int broker_syncer_fd(const broker_syncer_t *self)
{
    return self->event_fd;
}

int broker_syncer_collect(broker_syncer_t *self, char *err, size_t errlen)
{
    if (!self->busy)
        return 0;
    pthread_mutex_lock(&self->lock);
    bool finished = self->finished;
    pthread_mutex_unlock(&self->lock);
    if (!finished)
        return 0;
    int e = wait_for_end(self);
    if (e == 0)
        return 1;
    snprintf(err, errlen, "fdatasync failed: %s", strerror(e));
    return -1;
}

int broker_syncer_sync_now(broker_syncer_t *self, char *err, size_t errlen)
{
    int e = self->busy ? wait_for_end(self) : 0;
    if (e == 0 && self->sync(self->fd, self->sync_arg) != 0)
        e = errno ? errno : EIO;
    if (e == 0)
        return 0;
    snprintf(err, errlen, "fdatasync failed: %s", strerror(e));
    return -1;
}
