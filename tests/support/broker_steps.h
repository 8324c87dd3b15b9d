/* broker_steps: the steps the broker's scenario tests take over broker_fixture —
 * workflows made and executions started through the API, worker W1 answering, what
 * the broker sent, control ops with their expected replies, events and details read
 * back, workers with CURVE keys. Each fails the running cmocka test on a mismatch. */
#ifndef SYN_TEST_BROKER_STEPS_H
#define SYN_TEST_BROKER_STEPS_H

#include "tests/support/broker_fixture.h"

#include "proto/msg.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* A 3-phase workflow (p1, p2, p3) whose prompts use every rendering rule. */
void create_workflow(fx_t *f, const char *id, int max_attempts);

/* execution.start of workflow_id: the new execution's id in id. */
void start(fx_t *f, const char *workflow_id, char id[BROKER_EXEC_ID_SIZE]);

/* execution.status of one execution: the reply body. */
json_t *status_of(fx_t *f, const char *workflow_id, const char *id);

/* Fails unless the execution's status is want. */
void expect_status(fx_t *f, const char *workflow_id, const char *id, const char *want);

/* Starts an execution with a worker W1 of `slots` slots registered: the ASSIGN of
 * its first phase. */
json_t *start_on_w1(fx_t *f, const char *workflow_id, int slots,
                    char id[BROKER_EXEC_ID_SIZE]);

/* Takes the next ASSIGN W1 was given and answers it with a RESULT. */
void answer_on_w1(fx_t *f, const char *status, const char *output, const char *error);

/* Completes the next `phases` phases W1 is given, each with output. */
void complete_on_w1(fx_t *f, int phases, const char *output);

/* Takes a message that must have been sent out of the log; fails unless its
 * string field key is want (when key is not NULL). */
void expect_sent(fx_t *f, const char *type, const char *identity, const char *key,
                 const char *want);

/* events.replay of one execution (NULL: all of them). */
int replay(fx_t *f, const char *id, json_int_t after_seq, int limit, json_t **body);

/* READY from identity with slots free, offering providers (stolen; NULL: mock). */
void ready_with(fx_t *f, const char *identity, int slots, json_t *providers);

/* PROGRESS of the attempt assign names, of this kind and data. */
void progress(fx_t *f, const char *identity, const json_t *assign, const char *kind,
              const char *data);

/* The arguments of a control op on an execution: its id and extra (stolen). */
json_t *control_args(const char *id, json_t *extra);

/* A control op on an execution: the status, with the body in *body. */
int control(fx_t *f, const char *op, const char *id, json_t *extra, json_t **body);

/* A control op that must answer status (and detail, when not NULL). */
void expect_control(fx_t *f, const char *op, const char *id, json_t *extra, int status,
                    const char *detail);

/* A control op that must be refused with 400 and exactly this text. */
void expect_400(fx_t *f, const char *op, const char *id, json_t *extra, const char *text);

/* A control op that must succeed, leaving the execution in state. */
void expect_control_state(fx_t *f, const char *op, const char *id, json_t *extra,
                          const char *state);

/* A control op that must succeed with exactly this reply. */
void expect_control_reply(fx_t *f, const char *op, const char *id, json_t *extra,
                          const char *message, const char *state);

/* The types of the events sent so far for one execution (taken out of the log). */
json_t *event_types(fx_t *f, const char *id);

/* Whether types (from event_types) holds type. */
bool has_type(const json_t *types, const char *type);

/* execution.get of one execution: the reply body (the caller owns it). */
json_t *detail_of(fx_t *f, const char *id);

/* The phase phase_id of a detail (borrowed), or NULL. */
json_t *phase_in(json_t *detail, const char *phase_id);

/* A workflow with one phase that may be retried. */
void create_retry_workflow(fx_t *f, const char *id, int retries, double backoff,
                           int max_attempts);

/* Takes the execution's next PhaseRetrying event; fails unless it waits seconds. */
void expect_retry_in(fx_t *f, const char *id, double seconds);

/* A message from a worker whose connection carries a CURVE key (its User-Id). */
void keyed_send(fx_t *f, const char *identity, const char *key, syn_msg_type_t type,
                json_t *fields);

/* READY from identity, named name, over a connection with CURVE key key. */
void keyed_ready(fx_t *f, const char *identity, const char *name, const char *key);

/* How many messages of type were sent to identity (taken out of the log). */
size_t sent_to(fx_t *f, const char *type, const char *identity);

/* Two CURVE keys (Z85 text) for workers that connect with one. */
#define KEY_A "AAAAAAAAaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define KEY_B "BBBBBBBBbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"

#endif
