/* artifact_inputs: what a later phase gets of its execution's earlier artifacts.
 *
 * Its ASSIGN lists the files the earlier, completed phases left (phase, path,
 * size, SHA-256), and the worker pulls each with ARTIFACT_GET before the agent
 * starts, one chunk in flight: the broker answers each with one ARTIFACT_DATA of
 * at most BROKER_ARTIFACT_CHUNK_MAX bytes read from the store, so it holds one
 * chunk per pulling attempt at a time whatever the files' sizes, and the bytes
 * it serves count against the loop turn like the bytes it takes. Only the
 * current attempt's holder may pull, and only files of its own execution
 * (fence.h): an attempt's ids are no secret among workers. It stands alone
 * because it is the one place stored artifacts leave the broker for a worker
 * (artifacts.c takes them in, api_artifacts.c hands them to clients). */
#ifndef SYN_BROKER_ARTIFACT_INPUTS_H
#define SYN_BROKER_ARTIFACT_INPUTS_H

#include "broker/engine.h"

#include <jansson.h>
#include <stdint.h>

/* An ASSIGN lists at most this many files; more are left out, and a
 * PhaseWarning says how many. */
#define BROKER_ASSIGN_ARTIFACTS_MAX 4096

/* [{phase_id, path, size, sha256}] of the complete artifacts of exec's phases
 * before phase that completed, in phase order then path; NULL when there are
 * none (or they cannot be listed: logged). */
json_t *broker_artifact_inputs_list(broker_engine_t *engine, broker_execution_t *exec,
                                    broker_phase_t *phase);

/* An ARTIFACT_GET from worker: answered with one ARTIFACT_DATA, the chunk asked
 * for, or an `error` (not the current attempt, no such file, a read failing). */
void broker_artifact_inputs_get(broker_engine_t *engine, broker_worker_t *worker,
                                const json_t *fields, int64_t now_ms);

#endif
