/* retry: the retry policy of retry.h. It stands alone so the rules (three
 * budgets, the back-off) can be read and tested without an engine, a database
 * or a clock. */
#include "broker/retry.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int64_t broker_retry_delay_ms(double backoff_seconds, int64_t n)
{
    double seconds = backoff_seconds;
    for (int64_t i = 1; i < n && seconds < BROKER_RETRY_BACKOFF_CAP_SECONDS; i++)
        seconds *= 2;
    if (seconds > BROKER_RETRY_BACKOFF_CAP_SECONDS)
        seconds = BROKER_RETRY_BACKOFF_CAP_SECONDS;
    return (int64_t)(seconds * 1000.0 + 0.5);
}

broker_retry_t broker_retry_decide(broker_retry_cause_t cause, const broker_retry_counts_t *counts)
{
    broker_retry_t verdict = {false, 0};
    switch (cause) {
    case BROKER_RETRY_NOT_RUN:
    case BROKER_RETRY_WORKER_FAULT:
        verdict.again = true;
        break;
    case BROKER_RETRY_WORKER_LOST:
    case BROKER_RETRY_GIVEN_BACK:
        verdict.again = counts->attempt - counts->undelivered - counts->failures <
                        counts->max_attempts;
        break;
    case BROKER_RETRY_AGENT_FAILED:
        verdict.again = counts->failures <= counts->retries;
        if (verdict.again)
            verdict.delay_ms = broker_retry_delay_ms(counts->backoff_seconds, counts->failures);
        break;
    }
    return verdict;
}

/* Never cut: a cut could split a UTF-8 character of the agent's reason. */
char *broker_retry_give_up_reason(broker_retry_cause_t cause,
                                  const broker_retry_counts_t *counts, const char *reason)
{
    char *out = NULL;
    int rc = 0;
    switch (cause) {
    case BROKER_RETRY_WORKER_LOST:
        rc = asprintf(&out, "worker lost %lld time%s (max_attempts %lld); last: %s",
                      (long long)counts->lost, counts->lost == 1 ? "" : "s",
                      (long long)counts->max_attempts, reason);
        break;
    case BROKER_RETRY_GIVEN_BACK:
        rc = asprintf(&out, "%s (attempt %lld of max_attempts %lld)", reason,
                      (long long)counts->attempt, (long long)counts->max_attempts);
        break;
    case BROKER_RETRY_AGENT_FAILED:
        if (counts->retries == 0)
            return strdup(reason);
        rc = asprintf(&out, "%s (failed %lld times; retries %lld)", reason,
                      (long long)counts->failures, (long long)counts->retries);
        break;
    case BROKER_RETRY_NOT_RUN:
    case BROKER_RETRY_WORKER_FAULT:
        return strdup(reason);
    }
    return rc < 0 ? NULL : out;
}
