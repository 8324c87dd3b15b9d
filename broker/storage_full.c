/* storage_full: the broker's mode while its commits fail (storage_full.h). */
#include "broker/storage_full.h"
#include "broker/store.h"

#include "common/log.h"

#include <stdio.h>
#include <string.h>

void broker_storage_fail(broker_storage_t *self, const char *why, int64_t now_ms)
{
    /* a lost PostgreSQL connection says so itself (BROKER_STORE_LOST) */
    bool lost = why && strncmp(why, BROKER_STORE_LOST, strlen(BROKER_STORE_LOST)) == 0;
    snprintf(self->reason, sizeof self->reason, "%s%s", lost ? "" : "storage full: ",
             why && *why ? why : "a commit failed");
    self->next_try_ms = now_ms + BROKER_STORAGE_RETRY_MS;
    if (self->full)
        return;
    self->full = true;
    self->since_ms = now_ms;
    self->episodes++;
    syn_error("broker", "%s: the last turn is rolled back and was not acknowledged; new work "
                        "is refused (503), reads are served, workers keep their results; "
                        "trying to write every %d ms",
              self->reason, BROKER_STORAGE_RETRY_MS);
}

void broker_storage_resume(broker_storage_t *self, int64_t now_ms)
{
    if (!self->full)
        return;
    self->full = false;
    syn_warn("broker", "storage writable again after %.1f s: resuming (refused=%llu "
                       "worker_messages_held=%llu); workers re-register",
             (double)(now_ms - self->since_ms) / 1000.0, (unsigned long long)self->refused,
             (unsigned long long)self->held);
    self->refused = 0;
    self->held = 0;
}

bool broker_storage_allows(syn_op_t op)
{
    /* The reads. An op not listed (a new one, too) is refused while full: a
     * write refused is a 503, a write let through would be lost. */
    switch (op) {
    case SYN_OP_HEALTH:
    case SYN_OP_READY:
    case SYN_OP_METRICS_GET:
    case SYN_OP_WORKERS_LIST:
    case SYN_OP_WORKFLOW_LIST:
    case SYN_OP_WORKFLOW_GET:
    case SYN_OP_WORKFLOW_RUNS:
    case SYN_OP_EXECUTION_STATUS:
    case SYN_OP_EXECUTION_ACTIVE:
    case SYN_OP_EXECUTION_STATE:
    case SYN_OP_EXECUTION_LIST:
    case SYN_OP_EXECUTION_GET:
    case SYN_OP_EXECUTION_OUTPUT:
    case SYN_OP_EVENTS_REPLAY:
    case SYN_OP_COSTS_REPORT:
    case SYN_OP_EXECUTION_ARTIFACTS:
    case SYN_OP_EXECUTION_ARTIFACT:
        return true;
    default:
        return false;
    }
}

json_t *broker_storage_refusal(const broker_storage_t *self)
{
    char detail[400];
    snprintf(detail, sizeof detail,
             "%s: the broker takes no new work until it can write again (reads still work)",
             self->reason);
    return json_pack("{s:s}", "detail", detail);
}

/* The 503 in place of a reply the failed commit took back. */
static syn_msg_t *refusal_for(const broker_storage_t *self, const syn_msg_t *reply)
{
    json_t *id = json_object_get(syn_msg_fields(reply), "id");
    json_t *fields = json_pack("{s:O, s:i, s:o}", "id", id ? id : json_null(), "status", 503,
                               "body", broker_storage_refusal(self));
    return fields ? syn_msg_new_with(SYN_MSG_REPLY, fields) : NULL;
}

void broker_storage_refuse_outbox(broker_storage_t *self, broker_outbox_t *outbox)
{
    size_t pending = broker_outbox_size(outbox);
    unsigned char identity[BROKER_IDENTITY_MAX];
    for (size_t i = 0; i < pending; i++) {
        broker_dest_t dest;
        size_t identity_len;
        syn_msg_t *msg = broker_outbox_pop(outbox, &dest, identity, &identity_len);
        if (!msg)
            break;
        if (dest == BROKER_TO_CLIENT && syn_msg_type(msg) == SYN_MSG_REPLY) {
            self->refused++;
            if (broker_outbox_push(outbox, dest, identity, identity_len,
                                   refusal_for(self, msg)) < 0)
                syn_error("broker", "cannot queue a storage-full refusal");
        }
        syn_msg_destroy(&msg);
    }
}
