/* budget_usd: the spending rule and its words (budget_usd.h). */
#include "common/budget_usd.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

bool syn_budget_reached(double budget, double spent)
{
    return isfinite(budget) && budget > 0 && isfinite(spent) && spent >= budget;
}

void syn_budget_format_usd(double amount, char *buf, size_t buflen)
{
    if (buflen == 0)
        return;
    if (!isfinite(amount) || amount < 0)
        amount = 0;
    char digits[64];
    int n = snprintf(digits, sizeof digits, "%.4f", amount);
    if (n < 0 || (size_t)n >= sizeof digits) {
        snprintf(buf, buflen, "$%.2e", amount);
        return;
    }
    /* "0.5000" → "0.50": zeros after the second decimal go. */
    const char *dot = strchr(digits, '.');
    size_t keep = (size_t)n;
    while (dot && keep > (size_t)(dot - digits) + 3 && digits[keep - 1] == '0')
        keep--;
    digits[keep] = '\0';
    snprintf(buf, buflen, "$%s", digits);
}

void syn_budget_message(double budget, double spent, char *buf, size_t buflen)
{
    char limit[48], used[48];
    syn_budget_format_usd(budget, limit, sizeof limit);
    syn_budget_format_usd(spent, used, sizeof used);
    snprintf(buf, buflen, "Budget of %s exceeded (%s spent)", limit, used);
}
