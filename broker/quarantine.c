/* quarantine: the black-hole rule of quarantine.h. It stands alone so the rule
 * (a streak, a window, others succeeding, a doubling length) reads and tests
 * without an engine or a clock. */
#include "broker/quarantine.h"

#include <stdio.h>
#include <string.h>

bool broker_quarantine_failed(broker_quarantine_t *self, const broker_quarantine_config_t *config,
                              const char *execution_id, int64_t others_succeeded_ms,
                              int64_t now_ms)
{
    if (config->after <= 0 || self->until_ms > 0)
        return false;
    bool same_execution = self->streak > 0 && strcmp(self->last_execution, execution_id) == 0;
    if (self->streak == 0 || now_ms - self->streak_started_ms > config->window_ms) {
        self->streak = 1;
        self->streak_started_ms = now_ms;
    } else if (!same_execution) {
        self->streak++;
    }
    snprintf(self->last_execution, sizeof self->last_execution, "%s", execution_id);
    /* Everyone failing is the work's fault (or the world's), not this worker's. */
    bool others_succeed =
        others_succeeded_ms > 0 && now_ms - others_succeeded_ms <= config->window_ms;
    if (self->streak < config->after || !others_succeed)
        return false;
    int64_t length = self->next_length_ms > 0 ? self->next_length_ms : config->window_ms;
    self->until_ms = now_ms + length;
    self->next_length_ms =
        length * 2 > BROKER_QUARANTINE_MAX_MS ? BROKER_QUARANTINE_MAX_MS : length * 2;
    return true;
}

void broker_quarantine_completed(broker_quarantine_t *self)
{
    self->streak = 0;
    self->next_length_ms = 0;
}

bool broker_quarantine_over(broker_quarantine_t *self, int64_t now_ms)
{
    if (self->until_ms == 0 || now_ms < self->until_ms)
        return false;
    self->until_ms = 0;
    self->streak = 0;
    return true;
}
