/* broker/storage_full.c: which ops a broker whose commits fail still serves, and
 * what is left of the failed turn's outbox (only 503s, with their request ids). */
#include "broker/storage_full.h"
#include "proto/msg.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>

static void test_only_reads_are_served(void **state)
{
    (void)state;
    const syn_op_t reads[] = {SYN_OP_HEALTH,         SYN_OP_READY,
                              SYN_OP_WORKFLOW_GET,   SYN_OP_EXECUTION_GET,
                              SYN_OP_EVENTS_REPLAY,  SYN_OP_EXECUTION_ARTIFACT};
    const syn_op_t writes[] = {SYN_OP_EXECUTION_START,  SYN_OP_WORKFLOW_CREATE,
                               SYN_OP_WORKFLOW_INSTALL, SYN_OP_WORKFLOW_ARCHIVE,
                               SYN_OP_WORKFLOW_PHASE_UPDATE, SYN_OP_EXECUTION_CANCEL,
                               SYN_OP_EXECUTION_PAUSE,  SYN_OP_EXECUTION_RESUME,
                               SYN_OP_EXECUTION_INJECT, SYN_OP_EXECUTION_RERUN,
                               SYN_OP_EXECUTION_APPROVE, SYN_OP_EXECUTION_REJECT};
    for (size_t i = 0; i < sizeof reads / sizeof reads[0]; i++)
        assert_true(broker_storage_allows(reads[i]));
    for (size_t i = 0; i < sizeof writes / sizeof writes[0]; i++)
        assert_false(broker_storage_allows(writes[i]));
}

static void test_failed_turn_leaves_only_refusals(void **state)
{
    (void)state;
    broker_storage_t storage = {0};
    broker_storage_fail(&storage, "database or disk is full", 1000);
    assert_true(storage.full);
    assert_string_equal(storage.reason, "storage full: database or disk is full");
    assert_int_equal(storage.next_try_ms, 1000 + BROKER_STORAGE_RETRY_MS);
    broker_storage_fail(&storage, "disk I/O error", 2000); /* the same episode */
    assert_int_equal(storage.episodes, 1);
    assert_int_equal(storage.since_ms, 1000);

    broker_outbox_t *outbox = broker_outbox_new();
    assert_int_equal(broker_outbox_push(outbox, BROKER_TO_CLIENT, "gw", 2,
                                        syn_msg_new_with(SYN_MSG_REPLY,
                                                         json_pack("{s:i, s:i, s:{}}", "id", 7,
                                                                   "status", 200, "body"))),
                     0);
    assert_int_equal(broker_outbox_push(outbox, BROKER_TO_WORKER, "w0", 2,
                                        syn_msg_new_with(SYN_MSG_RESULT_ACK, json_object())),
                     0);
    assert_int_equal(broker_outbox_push(outbox, BROKER_TO_EVENTS, "exec", 4,
                                        syn_msg_new_with(SYN_MSG_EVENT, json_object())),
                     0);
    broker_storage_refuse_outbox(&storage, outbox);
    assert_int_equal(broker_outbox_size(outbox), 1);
    broker_dest_t dest;
    unsigned char identity[BROKER_IDENTITY_MAX];
    size_t identity_len;
    syn_msg_t *msg = broker_outbox_pop(outbox, &dest, identity, &identity_len);
    assert_int_equal(dest, BROKER_TO_CLIENT);
    assert_int_equal(identity_len, 2);
    assert_memory_equal(identity, "gw", 2);
    json_t *fields = syn_msg_fields(msg);
    assert_int_equal(json_integer_value(json_object_get(fields, "id")), 7);
    assert_int_equal(json_integer_value(json_object_get(fields, "status")), 503);
    const char *detail =
        json_string_value(json_object_get(json_object_get(fields, "body"), "detail"));
    assert_non_null(strstr(detail, "storage full: disk I/O error: "));
    syn_msg_destroy(&msg);
    assert_int_equal(storage.refused, 1);

    broker_storage_resume(&storage, 5000);
    assert_false(storage.full);
    broker_outbox_destroy(&outbox);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_only_reads_are_served),
        cmocka_unit_test(test_failed_turn_leaves_only_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
