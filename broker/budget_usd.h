/* budget_usd (broker): an execution's max_budget_usd enforced (issue 19).
 *
 * An execution may have a budget in dollars (its execute's max_budget_usd, else
 * its workflow's). What it spent is the cost of its attempts' results
 * (exec->spent_usd, the store's total_cost_usd less reused phases) plus what its
 * running attempt last reported (progress kind "cost": phase->cost_usd). When that
 * reaches the budget (common/budget_usd.h) the running attempt is stopped as a
 * cancel stops it, the phase and the execution fail with "Budget of $X exceeded
 * ($Y spent)", and no later phase starts.
 *
 * Where it is decided, and why twice: the worker gets the budget and what was spent
 * before in the ASSIGN and stops its agent itself the moment a cost crosses it
 * (worker/provider.c), in the loop turn that read the cost, with no round trip: the
 * stop is prompt even when cost reports are coalesced or the broker is busy. The
 * worker sends the crossing report before its result, and the broker, which owns
 * the execution's fate, fails it here on that report, or on a result whose cost
 * crosses (a provider that reports cost only at the end), or before a next phase
 * would start. Both sides apply one rule to the same numbers. */
#ifndef SYN_BROKER_BUDGET_USD_H
#define SYN_BROKER_BUDGET_USD_H

#include "broker/engine.h"
#include "proto/msg.h"

#include <jansson.h>
#include <stdbool.h>

/* What exec has spent so far: its results' cost and its running attempt's report. */
double broker_budget_spent(const broker_execution_t *exec);

/* Adds max_budget_usd and spent_usd to an ASSIGN being packed (two entries). */
void broker_budget_pack(syn_pack_t *pack, const broker_execution_t *exec);

/* A progress "cost" of phase's current attempt: its cost so far becomes
 * fields.cost_usd (a report never lowers it); a PhaseCost event says it; the
 * budget is enforced. */
void broker_budget_progress(broker_engine_t *engine, broker_execution_t *exec,
                            broker_phase_t *phase, const json_t *fields);

/* A result's cost, recorded once (reports.c): it joins what exec spent; when the
 * result is phase's current attempt's (phase not NULL), its running report is
 * replaced by it. */
void broker_budget_result(broker_execution_t *exec, broker_phase_t *phase, double cost_usd);

/* When exec has spent its budget: stops its running attempt (unless its result
 * just came: result_in), fails it (and the phase being worked on) with the
 * budget's message, skips later phases; true. */
bool broker_budget_enforce(broker_engine_t *engine, broker_execution_t *exec, bool result_in);

/* Adds max_budget_usd (or null) and cost_usd (what it spent so far) to a detail. */
void broker_budget_detail(const broker_execution_t *exec, json_t *detail);

#endif
