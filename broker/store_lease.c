/* store_lease: the lease's SQL on PostgreSQL (schema version 11, see
 * store_pg_sql.c's pg_v11_sql) — taking, renewing and releasing the one row
 * that says which broker is active, and the fence each write transaction of
 * that broker opens with. It stands alone because it is the only part of the
 * store that is about several brokers; the rest of the store only carries the
 * token into store_begin_write. When each is called is broker/lease.c's
 * decision. */
#include "broker/store_internal.h"

#include "common/log.h"

#include <stdio.h>
#include <string.h>

/* clock_timestamp(), not now(): now() is the start of the transaction. */
#define UNTIL "clock_timestamp() + $2::double precision * interval '1 millisecond'"

static const char *const lease_sql[STORE_LEASE_COUNT] = {
    [STORE_LEASE_TAKE] = "UPDATE broker_lease SET holder = $1, token = token + 1, expires_at = "
                         UNTIL " WHERE id = 1 AND expires_at <= clock_timestamp()"
                         " RETURNING token",
    [STORE_LEASE_HOLDER] = "SELECT holder, token, CASE WHEN expires_at > clock_timestamp()"
                           " THEN (extract(epoch FROM expires_at - clock_timestamp()) * 1000)"
                           "::bigint ELSE 0 END FROM broker_lease WHERE id = 1",
    /* the token alone decides: a lapsed lease nobody took is still ours */
    [STORE_LEASE_RENEW] = "UPDATE broker_lease SET expires_at = " UNTIL
                          " WHERE id = 1 AND token = $1 RETURNING token",
    [STORE_LEASE_RELEASE] = "UPDATE broker_lease SET expires_at = '-infinity'"
                            " WHERE id = 1 AND token = $1 RETURNING token",
    [STORE_LEASE_FENCE] = "SELECT syn_fence($1)",
};

/* The statement, prepared on first use; NULL without PostgreSQL. */
static store_q_t *lease_stmt(broker_store_t *self, store_lease_id_t id)
{
    if (!self->pg)
        return NULL;
    store_q_t *q = &self->lease[id];
    /* the fence's answer is read with the turn's other writes, at the commit */
    int flags = id == STORE_LEASE_FENCE ? 0 : STORE_PG_READ;
    if (!q->pg && !(q->pg = store_pg_q_new(self->pg, lease_sql[id], flags)))
        return NULL;
    store_reset(q);
    return q;
}

int store_lease_fence(broker_store_t *self)
{
    store_q_t *q = lease_stmt(self, STORE_LEASE_FENCE);
    if (!q)
        return -1;
    store_bind_int(q, 1, self->fence_token);
    return store_run(self, q, "fence") == STORE_DONE ? 0 : -1;
}

/* Runs an UPDATE ... RETURNING token: 1 a row changed (*token set), 0 none,
 * -1 an error (logged). */
static int update_lease(broker_store_t *self, store_q_t *q, const char *what, int64_t *token)
{
    int rc = store_step(q);
    int result = rc == STORE_ROW ? 1 : rc == STORE_DONE ? 0 : -1;
    if (result == 1 && token)
        *token = store_col_int(q, 0);
    store_reset(q);
    if (result < 0)
        syn_error("broker", "postgresql lease %s failed: %s", what, store_pg_error(self->pg));
    return result;
}

int broker_store_lease_take(broker_store_t *self, const char *holder, int64_t lease_ms,
                            broker_store_holder_t *seen)
{
    store_q_t *q = lease_stmt(self, STORE_LEASE_TAKE);
    if (!q || self->in_transaction)
        return -1;
    store_bind_text(q, 1, holder);
    store_bind_int(q, 2, lease_ms);
    int64_t token = 0;
    int taken = update_lease(self, q, "take", &token);
    if (taken == 1) {
        self->fence_token = token;
        /* A holder stopped inside a transaction keeps the row locked (the fence's
         * FOR SHARE) and would hold the next takeover up: the server ends such a
         * session once it has been idle in a transaction for two leases (not
         * less: a loaded active may pause between a turn's writes, and losing
         * its session stops it). Every session after a lost connection too. */
        int64_t idle_ms = 2 * lease_ms > 2000 ? 2 * lease_ms : 2000;
        char sql[96], err[256];
        snprintf(sql, sizeof sql, "SET idle_in_transaction_session_timeout = %lld",
                 (long long)idle_ms);
        if (store_pg_session_set(self->pg, sql, err, sizeof err) < 0)
            syn_warn("broker", "postgresql: cannot bound idle transactions: %s", err);
    }
    if (taken != 0)
        return taken;
    if (!seen)
        return 0;
    q = lease_stmt(self, STORE_LEASE_HOLDER);
    if (!q || store_step(q) != STORE_ROW) {
        if (q)
            store_reset(q);
        syn_error("broker", "postgresql lease read failed: %s", store_pg_error(self->pg));
        return -1;
    }
    const char *name = store_col_text(q, 0);
    snprintf(seen->name, sizeof seen->name, "%s", name ? name : "");
    seen->token = store_col_int(q, 1);
    seen->left_ms = store_col_int(q, 2);
    store_reset(q);
    return 0;
}

int broker_store_lease_renew(broker_store_t *self, int64_t lease_ms)
{
    store_q_t *q = lease_stmt(self, STORE_LEASE_RENEW);
    if (!q || self->in_transaction || self->fence_token <= 0)
        return -1;
    store_bind_int(q, 1, self->fence_token);
    store_bind_int(q, 2, lease_ms);
    int renewed = update_lease(self, q, "renewal", NULL);
    return renewed < 0 ? -1 : renewed == 1 ? 0 : 1;
}

void broker_store_lease_release(broker_store_t *self)
{
    store_q_t *q = lease_stmt(self, STORE_LEASE_RELEASE);
    if (!q || self->in_transaction || self->fence_token <= 0)
        return;
    store_bind_int(q, 1, self->fence_token);
    update_lease(self, q, "release", NULL);
    self->fence_token = 0;
}

int64_t broker_store_lease_token(const broker_store_t *self)
{
    return self->fence_token;
}

bool broker_store_deposed(const broker_store_t *self)
{
    return self->pg && store_pg_deposed(self->pg);
}
