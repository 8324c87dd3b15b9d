/* budget_usd: whether an execution's spending has reached its max_budget_usd, and
 * the words its failure carries (issue 19).
 *
 * The rule is one comparison, but two programs apply it to the same numbers: the
 * worker, which stops its agent the moment a cost report crosses the budget it
 * was given in the ASSIGN (no round trip, so the stop is prompt even when the
 * broker is slow or away), and the broker, which owns the execution's fate and
 * fails it on the same crossing (from the worker's cost report or the result).
 * Kept here so both decide and word it identically.
 *
 * Amounts are printed in dollars with two to four decimals ($0.50, $0.5123,
 * $12.00): cents as people write them, and a tenth of a cent more when a phase's
 * token cost needs it. */
#ifndef SYN_COMMON_BUDGET_USD_H
#define SYN_COMMON_BUDGET_USD_H

#include <stdbool.h>
#include <stddef.h>

/* The most a budget may be (a typo guard for both JSON and YAML). */
#define SYN_BUDGET_USD_MAX 1000000

/* Whether spent (what was spent before, plus what the running attempt reported)
 * reaches budget. A budget of 0 or less (or not a number) is no budget. */
bool syn_budget_reached(double budget, double spent);

/* "$0.50", "$0.5123": two to four decimals, trailing zeros past the second cut. */
void syn_budget_format_usd(double amount, char *buf, size_t buflen);

/* "Budget of $0.50 exceeded ($0.5123 spent)": the execution's error. */
void syn_budget_message(double budget, double spent, char *buf, size_t buflen);

#endif
