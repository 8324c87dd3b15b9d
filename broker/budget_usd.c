/* budget_usd (broker): the execution's side of max_budget_usd (budget_usd.h). It
 * stands alone because it is one decision (has this execution spent its budget,
 * and what follows) fed from three places: cost reports, results, the next phase. */
#include "broker/budget_usd.h"

#include "broker/control.h"
#include "broker/engine_internal.h"
#include "common/budget_usd.h"
#include "common/log.h"

#include <math.h>

double broker_budget_spent(const broker_execution_t *exec)
{
    const broker_phase_t *phase =
        exec->current < exec->phase_count ? &exec->phases[exec->current] : NULL;
    double running = phase && phase->status == BROKER_PHASE_RUNNING ? phase->cost_usd : 0;
    return exec->spent_usd + running;
}

void broker_budget_pack(syn_pack_t *pack, const broker_execution_t *exec)
{
    json_t *budget = json_real(exec->max_budget_usd);
    json_t *spent = json_real(exec->spent_usd);
    syn_pack_json(pack, "max_budget_usd", budget);
    syn_pack_json(pack, "spent_usd", spent);
    json_decref(budget);
    json_decref(spent);
}

void broker_budget_progress(broker_engine_t *self, broker_execution_t *exec,
                            broker_phase_t *phase, const json_t *fields)
{
    const json_t *cost = json_object_get(fields, "cost_usd");
    if (!json_is_number(cost) || phase->status != BROKER_PHASE_RUNNING)
        return;
    double value = json_number_value(cost);
    if (!(value > phase->cost_usd)) /* not more than known (or not a number) */
        return;
    phase->cost_usd = value;
    json_t *data = engine_phase_event(phase);
    json_object_set_new(data, "cost_usd", json_real(value));
    json_object_set_new(data, "execution_cost_usd", json_real(broker_budget_spent(exec)));
    json_object_set_new(data, "max_budget_usd", exec->max_budget_usd > 0
                                                    ? json_real(exec->max_budget_usd)
                                                    : json_null());
    engine_emit(self, exec, "PhaseCost", data);
    broker_budget_enforce(self, exec, false);
}

void broker_budget_result(broker_execution_t *exec, broker_phase_t *phase, double cost_usd)
{
    if (isfinite(cost_usd) && cost_usd > 0)
        exec->spent_usd += cost_usd;
    if (phase)
        phase->cost_usd = 0; /* now in spent_usd */
}

bool broker_budget_enforce(broker_engine_t *self, broker_execution_t *exec, bool result_in)
{
    double spent = broker_budget_spent(exec);
    if (!syn_budget_reached(exec->max_budget_usd, spent) ||
        !broker_exec_can_transition(exec->status, BROKER_EXEC_FAILED))
        return false;
    char why[160];
    syn_budget_message(exec->max_budget_usd, spent, why, sizeof why);
    broker_phase_t *phase = broker_execution_active_phase(exec);
    if (phase && phase->status == BROKER_PHASE_RUNNING) {
        if (!result_in)
            broker_control_cancel_holder(self, exec, phase);
        engine_finish_attempt(self, exec, phase, BROKER_ATTEMPT_FAILED, NULL, why);
    }
    syn_info("broker", "budget spent execution=%s budget_usd=%.6f spent_usd=%.6f", exec->id,
             exec->max_budget_usd, spent);
    engine_fail_execution(self, exec, phase, why, why, NULL);
    return true;
}

void broker_budget_detail(const broker_execution_t *exec, json_t *detail)
{
    json_object_set_new(detail, "max_budget_usd",
                        exec->max_budget_usd > 0 ? json_real(exec->max_budget_usd) : json_null());
    json_object_set_new(detail, "cost_usd", json_real(broker_budget_spent(exec)));
}
