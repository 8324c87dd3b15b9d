/* wait: deadlines scaled by SYN_TEST_TIMEOUT_MULTIPLIER and polling with a short
 * back-off, for every test and support helper that waits (wait.h). */
#include "tests/support/wait.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

/* The first pause and the longest: state that changes within a millisecond is
 * seen within one, and a slow one is polled 50 times a second, not hammered. */
#define WAIT_FIRST_PAUSE_MS 1
#define WAIT_LONGEST_PAUSE_MS 20

long long wait_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void pause_ms(int ms)
{
    if (ms <= 0)
        return;
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static double multiplier(void)
{
    const char *text = getenv("SYN_TEST_TIMEOUT_MULTIPLIER");
    if (!text || !*text)
        return 1.0;
    char *end;
    double value = strtod(text, &end);
    return *end == '\0' && value > 0 && value <= 1000 ? value : 1.0;
}

int wait_scaled_ms(int timeout_ms)
{
    return (int)((double)timeout_ms * multiplier());
}

wait_t wait_begin(int timeout_ms)
{
    return (wait_t){.deadline_ms = wait_now_ms() + wait_scaled_ms(timeout_ms),
                    .pause_ms = WAIT_FIRST_PAUSE_MS};
}

bool wait_next(wait_t *self)
{
    long long left = self->deadline_ms - wait_now_ms();
    if (left <= 0)
        return false;
    pause_ms(self->pause_ms < left ? self->pause_ms : (int)left);
    if (self->pause_ms < WAIT_LONGEST_PAUSE_MS)
        self->pause_ms = self->pause_ms * 2 < WAIT_LONGEST_PAUSE_MS ? self->pause_ms * 2
                                                                    : WAIT_LONGEST_PAUSE_MS;
    return true;
}

bool wait_until(wait_predicate_fn predicate, void *arg, int timeout_ms)
{
    for (wait_t w = wait_begin(timeout_ms);;) {
        if (predicate(arg))
            return true;
        if (!wait_next(&w))
            return false;
    }
}

/* Whether sig is in the shared or the thread's pending set of pid; false when
 * the process is gone. */
static bool signal_pending(pid_t pid, int sig)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    bool pending = false;
    while (fgets(line, sizeof line, f)) {
        unsigned long long mask;
        if ((sscanf(line, "ShdPnd: %llx", &mask) == 1 || sscanf(line, "SigPnd: %llx", &mask) == 1) &&
            (mask & (1ULL << (sig - 1))))
            pending = true;
    }
    fclose(f);
    return pending;
}

bool wait_signal_taken(pid_t pid, int sig, int timeout_ms)
{
    WAIT_FOR(!signal_pending(pid, sig), timeout_ms);
    return !signal_pending(pid, sig);
}

void wait_quiet_ms(int ms)
{
    pause_ms(wait_scaled_ms(ms));
}

void wait_exactly_ms(int ms)
{
    pause_ms(ms);
}
