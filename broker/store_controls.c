/* store_controls: what the team controls (issue 19) keep in SQLite — the first
 * answer to an execute that carried an Idempotency-Key, and its expiry. It
 * stands alone because these rows belong to no execution's life: they outlive
 * a restart so a client retrying after a lost answer gets the same execution,
 * and they go when the broker's window has passed, not with the execution. */
#include "broker/store_internal.h"

#include <stdlib.h>

int broker_store_idempotency_find(broker_store_t *self, const char *key, int64_t since_us,
                                  char **fingerprint, char **answer)
{
    *fingerprint = *answer = NULL;
    sqlite3_stmt *s = store_stmt(self, SQL_IDEMPOTENCY_FIND);
    if (!s)
        return -1;
    store_bind_text(s, 1, key);
    sqlite3_bind_int64(s, 2, since_us);
    int found = store_step_one(self, s, "find an idempotency key");
    if (found != 1)
        return found;
    *fingerprint = store_column_strdup(s, 0);
    *answer = store_column_strdup(s, 1);
    sqlite3_reset(s);
    if (!*fingerprint || !*answer) {
        free(*fingerprint);
        free(*answer);
        *fingerprint = *answer = NULL;
        return -1;
    }
    return 1;
}

/* The expired keys go first, in the same transaction: the index on created_at
 * makes that a seek when there are none, so expiry needs no timer of its own. */
int broker_store_idempotency_put(broker_store_t *self, const char *key, const char *fingerprint,
                                 const char *execution_id, const char *answer,
                                 int64_t created_at, int64_t expire_before_us)
{
    sqlite3_stmt *s = store_write_stmt(self, SQL_IDEMPOTENCY_EXPIRE);
    if (!s)
        return -1;
    sqlite3_bind_int64(s, 1, expire_before_us);
    if (store_run(self, s, "expire idempotency keys") != SQLITE_DONE)
        return -1;
    s = store_stmt(self, SQL_IDEMPOTENCY_PUT);
    if (!s)
        return -1;
    store_bind_text(s, 1, key);
    store_bind_text(s, 2, fingerprint);
    store_bind_text(s, 3, execution_id);
    store_bind_text(s, 4, answer);
    sqlite3_bind_int64(s, 5, created_at);
    return store_run(self, s, "store an idempotency key") == SQLITE_DONE ? 0 : -1;
}
