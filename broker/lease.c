/* lease: when a broker takes, keeps or loses the lease (broker/lease.h). */
#include "broker/lease.h"

#include "common/clock.h"
#include "common/log.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

void broker_lease_init(broker_lease_t *self, const char *clients, int64_t lease_ms)
{
    memset(self, 0, sizeof *self);
    self->lease_ms = lease_ms > 0 ? lease_ms : BROKER_LEASE_MS;
    if (gethostname(self->host, sizeof self->host) != 0)
        snprintf(self->host, sizeof self->host, "unknown");
    self->host[sizeof self->host - 1] = '\0';
    self->pid = getpid();
    snprintf(self->clients, sizeof self->clients, "%s", clients ? clients : "");
    snprintf(self->holder, sizeof self->holder, "%s pid=%ld clients=%s", self->host,
             (long)self->pid, self->clients);
    self->seen_token = -1;
}

int broker_lease_try(broker_lease_t *self, broker_store_t *store, int64_t now_ms)
{
    if (now_ms < self->next_try_ms)
        return 0;
    self->next_try_ms = now_ms + self->lease_ms / 6;
    broker_store_holder_t seen = {0};
    int taken = broker_store_lease_take(store, self->holder, self->lease_ms, &seen);
    if (taken < 0)
        return -1;
    if (taken == 0) {
        if (seen.token != self->seen_token)
            syn_info("broker", "standby: the lease is held by %s token=%lld (lapses in %lld ms "
                               "unless renewed)",
                     seen.name[0] ? seen.name : "?", (long long)seen.token,
                     (long long)seen.left_ms);
        self->seen_token = seen.token;
        return 0;
    }
    self->token = broker_store_lease_token(store);
    self->active_since_us = syn_now_us();
    self->renewed_ms = now_ms;
    self->next_try_ms = now_ms + self->lease_ms / 3;
    syn_info("broker", "active: took the lease token=%lld as %s", (long long)self->token,
             self->holder);
    return 1;
}

int broker_lease_keep(broker_lease_t *self, broker_store_t *store, int64_t now_ms)
{
    if (self->token <= 0 || now_ms < self->next_try_ms)
        return 0;
    int rc = broker_store_lease_renew(store, self->lease_ms);
    if (rc == 0) {
        self->renewed_ms = now_ms;
        self->next_try_ms = now_ms + self->lease_ms / 3;
        return 0;
    }
    if (rc > 0) {
        syn_error("broker", "deposed: another broker took the lease (this broker's token=%lld "
                            "is no longer the lease's): stopping",
                  (long long)self->token);
        return -1;
    }
    /* The database did not answer: try again soon; past a whole lease a standby
     * may have taken over, and nothing this broker commits could land anyway. */
    if (now_ms - self->renewed_ms >= self->lease_ms) {
        syn_error("broker", "deposed: the lease could not be renewed for %lld ms (token=%lld): "
                            "stopping",
                  (long long)(now_ms - self->renewed_ms), (long long)self->token);
        return -1;
    }
    self->next_try_ms = now_ms + self->lease_ms / 10;
    return 0;
}

int64_t broker_lease_wait_ms(const broker_lease_t *self, int64_t now_ms)
{
    return self->next_try_ms > now_ms ? self->next_try_ms - now_ms : 0;
}

json_t *broker_lease_json(const broker_lease_t *self)
{
    if (self->token <= 0)
        return NULL;
    return json_pack("{s:s, s:I, s:s, s:I, s:I}", "host", self->host, "pid",
                     (json_int_t)self->pid, "clients", self->clients, "token",
                     (json_int_t)self->token, "since", (json_int_t)self->active_since_us);
}
