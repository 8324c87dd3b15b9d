/* control: what an operator does to an execution while it runs.
 *
 * cancel (pending, running, paused → cancelled at once; CANCEL to the worker;
 * the phase being worked on is cancelled, later ones skipped), pause (pending,
 * running → paused: a running phase finishes and keeps its result, nothing new
 * starts), resume (paused → running, or pending when nothing ran yet), inject
 * (operator messages for the next phase's prompt, and live to the worker of a
 * running phase). The entry points are broker_engine_cancel, _pause, _resume and
 * _inject (engine.h). */
#ifndef SYN_BROKER_CONTROL_H
#define SYN_BROKER_CONTROL_H

#include "broker/engine.h"

/* Asks the worker holding phase's running attempt to stop it. Its slot stays
 * taken (the held entry turns stale) until the worker's RESULT for it arrives. */
void broker_control_cancel_holder(broker_engine_t *engine, broker_execution_t *exec,
                                  broker_phase_t *phase);

#endif
