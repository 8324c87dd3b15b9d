#include "tests/support/gateway_harness.h"
#include "tests/support/http.h"
#include "tests/support/wait.h"

#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <cmocka.h>

struct gateway_harness_t {
    gateway_t *gateway;
    pthread_t thread;
    atomic_int stop;
    pthread_mutex_t lock;
    gateway_stats_t stats; /* copied after every turn, under lock */
    atomic_long turns;
    bool running;
    int port;
    char url[64];
};

static void *loop(void *arg)
{
    gateway_harness_t *self = arg;
    while (!atomic_load(&self->stop)) {
        if (gateway_poll(self->gateway, 10) != 0)
            break;
        pthread_mutex_lock(&self->lock);
        gateway_stats(self->gateway, &self->stats);
        pthread_mutex_unlock(&self->lock);
        atomic_fetch_add(&self->turns, 1);
    }
    return NULL;
}

gateway_harness_t *gateway_harness_start(const gateway_config_t *config)
{
    gateway_harness_t *self = calloc(1, sizeof *self);
    assert_non_null(self);
    pthread_mutex_init(&self->lock, NULL);
    char err[256];
    self->gateway = gateway_new(config, err, sizeof err);
    if (!self->gateway)
        fail_msg("gateway_new: %s", err);
    self->port = gateway_port(self->gateway);
    snprintf(self->url, sizeof self->url, "http://127.0.0.1:%d", self->port);
    assert_int_equal(pthread_create(&self->thread, NULL, loop, self), 0);
    self->running = true;
    return self;
}

void gateway_harness_halt(gateway_harness_t *self)
{
    if (!self->running)
        return;
    atomic_store(&self->stop, 1);
    pthread_join(self->thread, NULL);
    self->running = false;
}

void gateway_harness_stop(gateway_harness_t **self_p)
{
    gateway_harness_t *self = *self_p;
    if (!self)
        return;
    gateway_harness_halt(self);
    gateway_destroy(&self->gateway);
    pthread_mutex_destroy(&self->lock);
    free(self);
    *self_p = NULL;
}

gateway_stats_t gateway_harness_stats(gateway_harness_t *self)
{
    long seen = atomic_load(&self->turns);
    WAIT_FOR(!self->running || atomic_load(&self->turns) >= seen + 2, 1000);
    gateway_stats_t stats;
    pthread_mutex_lock(&self->lock);
    stats = self->stats;
    pthread_mutex_unlock(&self->lock);
    return stats;
}

gateway_t *gateway_harness_gateway(gateway_harness_t *self)
{
    return self->gateway;
}

const char *gateway_harness_url(gateway_harness_t *self)
{
    return self->url;
}

int gateway_harness_port(gateway_harness_t *self)
{
    return self->port;
}

bool gateway_harness_wait_healthy(gateway_harness_t *self, int timeout_ms)
{
    for (wait_t w = wait_begin(timeout_ms);;) {
        http_response_t r;
        int rc = http_get(&r, "%s/health", self->url);
        long status = r.status;
        http_response_clear(&r);
        if (rc == 0 && status == 200)
            return true;
        if (!wait_next(&w))
            return false;
    }
}
