/* poll_set: what one zmq_poll of the worker waits on — the broker socket, the
 * deadline timer and every run's descriptors — and the results handed back to the
 * runs (worker_internal.h). */
#include "worker/worker_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/timerfd.h>
#include <unistd.h>

/* zmq_poll waits in whole milliseconds, and a wait rounded down wakes early
 * while one rounded up wakes up to 1 ms late: across a 50 ms phase that is 2 %
 * of a slot. So the timerfd, set to the deadline itself, is one more poll item
 * (the kernel fires it on time, without the poll timeout's slack); the poll's
 * own timeout, rounded up, stays as the fallback that is never early. Returns
 * that timeout. */
long worker_poll_arm_timer(worker_t *self, int64_t wake_us, int64_t now_us)
{
    if (wake_us <= now_us)
        return 0;
    if (self->timer_fd >= 0 && wake_us != self->timer_armed_us) {
        struct itimerspec at = {.it_value = {.tv_sec = (time_t)(wake_us / 1000000),
                                             .tv_nsec = (long)(wake_us % 1000000) * 1000}};
        self->timer_armed_us =
            timerfd_settime(self->timer_fd, TFD_TIMER_ABSTIME, &at, NULL) == 0 ? wake_us : -1;
    }
    return (long)((wake_us - now_us + 999) / 1000);
}

/* Clears a fired timer, so the next poll does not return at once for it. */
void worker_poll_disarm_fired_timer(worker_t *self, const zmq_pollitem_t *item)
{
    if (!item || !(item->revents & ZMQ_POLLIN))
        return;
    uint64_t expirations;
    if (read(self->timer_fd, &expirations, sizeof expirations) < 0 && errno != EAGAIN)
        syn_warn("worker", "cannot read the timer: %s", strerror(errno));
    self->timer_armed_us = -1;
}

/* The broker socket first (when there is one), then the timer (when there is
 * one), then every run's descriptors. */
int worker_poll_build(worker_t *self)
{
    size_t need = 2 + (size_t)self->running * WORKER_RUN_MAX_FDS;
    if (need > self->items_cap) {
        zmq_pollitem_t *grown = realloc(self->items, need * sizeof *grown);
        if (!grown)
            return -1;
        self->items = grown;
        self->items_cap = need;
    }
    int n = 0;
    if (self->conn)
        self->items[n++] = (zmq_pollitem_t){.socket = self->conn, .events = ZMQ_POLLIN};
    if (self->timer_fd >= 0)
        self->items[n++] = (zmq_pollitem_t){.fd = self->timer_fd, .events = ZMQ_POLLIN};
    for (size_t i = 0; i < self->count; i++) {
        attempt_t *a = self->attempts[i];
        if (!a->run)
            continue;
        a->nfds = worker_run_pollfds(a->run, a->fds, WORKER_RUN_MAX_FDS);
        for (int f = 0; f < a->nfds; f++) {
            short events = 0;
            if (a->fds[f].events & POLLIN)
                events |= ZMQ_POLLIN;
            if (a->fds[f].events & POLLOUT)
                events |= ZMQ_POLLOUT;
            self->items[n++] = (zmq_pollitem_t){.fd = a->fds[f].fd, .events = events};
        }
    }
    return n;
}

/* Copies poll results back into each run's pollfds (zmq_poll reports hang-up
 * and errors as ZMQ_POLLERR; the providers read them as POLLHUP/POLLERR). */
void worker_poll_scatter(worker_t *self, int first)
{
    int n = first;
    for (size_t i = 0; i < self->count; i++) {
        attempt_t *a = self->attempts[i];
        if (!a->run)
            continue;
        for (int f = 0; f < a->nfds; f++, n++) {
            short z = self->items[n].revents, r = 0;
            if (z & ZMQ_POLLIN)
                r |= POLLIN;
            if (z & ZMQ_POLLOUT)
                r |= POLLOUT;
            if (z & ZMQ_POLLERR)
                r |= POLLERR | POLLHUP;
            a->fds[f].revents = r;
        }
    }
}
