/* lifecycle: transition tables. Each row lists the states a state may move to;
 * everything else is forbidden, including staying put (a no-op "transition"
 * usually hides a bug in the caller). */
#include "broker/lifecycle.h"

#include <string.h>

static const char *const exec_names[BROKER_EXEC_STATUS_COUNT] = {
    "pending", "running", "paused", "completed", "failed", "cancelled",
};
static const char *const phase_names[BROKER_PHASE_STATUS_COUNT] = {
    "pending", "queued", "running", "completed", "failed", "cancelled", "skipped",
};
static const char *const attempt_names[BROKER_ATTEMPT_STATUS_COUNT] = {
    "running", "completed", "failed", "cancelled", "lost", "timeout",
};

#define BIT(s) (1u << (s))

static const unsigned exec_moves[BROKER_EXEC_STATUS_COUNT] = {
    [BROKER_EXEC_PENDING] = BIT(BROKER_EXEC_RUNNING) | BIT(BROKER_EXEC_PAUSED) |
                            BIT(BROKER_EXEC_FAILED) | BIT(BROKER_EXEC_CANCELLED),
    [BROKER_EXEC_RUNNING] = BIT(BROKER_EXEC_PAUSED) | BIT(BROKER_EXEC_COMPLETED) |
                            BIT(BROKER_EXEC_FAILED) | BIT(BROKER_EXEC_CANCELLED),
    [BROKER_EXEC_PAUSED] = BIT(BROKER_EXEC_PENDING) | BIT(BROKER_EXEC_RUNNING) |
                           BIT(BROKER_EXEC_COMPLETED) | BIT(BROKER_EXEC_FAILED) |
                           BIT(BROKER_EXEC_CANCELLED),
};

static const unsigned phase_moves[BROKER_PHASE_STATUS_COUNT] = {
    [BROKER_PHASE_PENDING] = BIT(BROKER_PHASE_QUEUED) | BIT(BROKER_PHASE_SKIPPED) |
                             BIT(BROKER_PHASE_CANCELLED),
    [BROKER_PHASE_QUEUED] = BIT(BROKER_PHASE_RUNNING) | BIT(BROKER_PHASE_FAILED) |
                            BIT(BROKER_PHASE_SKIPPED) | BIT(BROKER_PHASE_CANCELLED),
    [BROKER_PHASE_RUNNING] = BIT(BROKER_PHASE_COMPLETED) | BIT(BROKER_PHASE_FAILED) |
                             BIT(BROKER_PHASE_CANCELLED) | BIT(BROKER_PHASE_QUEUED),
};

static const unsigned attempt_moves[BROKER_ATTEMPT_STATUS_COUNT] = {
    [BROKER_ATTEMPT_RUNNING] = BIT(BROKER_ATTEMPT_COMPLETED) | BIT(BROKER_ATTEMPT_FAILED) |
                               BIT(BROKER_ATTEMPT_CANCELLED) | BIT(BROKER_ATTEMPT_LOST) |
                               BIT(BROKER_ATTEMPT_TIMEOUT),
};

static const char *name_of(const char *const *names, int count, int value)
{
    return value >= 0 && value < count ? names[value] : NULL;
}

static int parse_name(const char *const *names, int count, const char *name, int *value)
{
    if (!name)
        return -1;
    for (int i = 0; i < count; i++)
        if (strcmp(names[i], name) == 0) {
            *value = i;
            return 0;
        }
    return -1;
}

static bool allowed(const unsigned *moves, int count, int from, int to)
{
    if (from < 0 || from >= count || to < 0 || to >= count)
        return false;
    return (moves[from] & BIT(to)) != 0;
}

const char *broker_exec_status_name(broker_exec_status_t status)
{
    return name_of(exec_names, BROKER_EXEC_STATUS_COUNT, (int)status);
}

const char *broker_phase_status_name(broker_phase_status_t status)
{
    return name_of(phase_names, BROKER_PHASE_STATUS_COUNT, (int)status);
}

const char *broker_attempt_status_name(broker_attempt_status_t status)
{
    return name_of(attempt_names, BROKER_ATTEMPT_STATUS_COUNT, (int)status);
}

int broker_exec_status_parse(const char *name, broker_exec_status_t *status)
{
    int v;
    if (parse_name(exec_names, BROKER_EXEC_STATUS_COUNT, name, &v) < 0)
        return -1;
    *status = (broker_exec_status_t)v;
    return 0;
}

int broker_phase_status_parse(const char *name, broker_phase_status_t *status)
{
    int v;
    if (parse_name(phase_names, BROKER_PHASE_STATUS_COUNT, name, &v) < 0)
        return -1;
    *status = (broker_phase_status_t)v;
    return 0;
}

int broker_attempt_status_parse(const char *name, broker_attempt_status_t *status)
{
    int v;
    if (parse_name(attempt_names, BROKER_ATTEMPT_STATUS_COUNT, name, &v) < 0)
        return -1;
    *status = (broker_attempt_status_t)v;
    return 0;
}

bool broker_exec_can_transition(broker_exec_status_t from, broker_exec_status_t to)
{
    return allowed(exec_moves, BROKER_EXEC_STATUS_COUNT, (int)from, (int)to);
}

bool broker_phase_can_transition(broker_phase_status_t from, broker_phase_status_t to)
{
    return allowed(phase_moves, BROKER_PHASE_STATUS_COUNT, (int)from, (int)to);
}

bool broker_attempt_can_transition(broker_attempt_status_t from, broker_attempt_status_t to)
{
    return allowed(attempt_moves, BROKER_ATTEMPT_STATUS_COUNT, (int)from, (int)to);
}

bool broker_exec_is_terminal(broker_exec_status_t status)
{
    return (int)status >= 0 && status < BROKER_EXEC_STATUS_COUNT && exec_moves[status] == 0;
}

bool broker_phase_is_terminal(broker_phase_status_t status)
{
    return (int)status >= 0 && status < BROKER_PHASE_STATUS_COUNT && phase_moves[status] == 0;
}

bool broker_attempt_is_terminal(broker_attempt_status_t status)
{
    return (int)status >= 0 && status < BROKER_ATTEMPT_STATUS_COUNT &&
           attempt_moves[status] == 0;
}
