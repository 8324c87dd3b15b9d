/* wait: the one way tests wait — for observable state (a counter, an event, a
 * status, a log line, a file), polled with a short back-off until a deadline.
 * Never a fixed sleep: on a loaded 2-core machine a sleep that is "long enough"
 * on a quiet one is not, and on a quiet one it wastes time.
 *
 * Every timeout given here is multiplied by SYN_TEST_TIMEOUT_MULTIPLIER from the
 * environment (a positive number, default 1; as libuv's
 * UV_TEST_TIMEOUT_MULTIPLIER), so a slow machine (valgrind, a loaded CI runner)
 * gets more time without a test changing. Timeouts that are part of what a test
 * checks (the product's own timeouts) are not given here and do not scale. */
#ifndef SYN_TEST_WAIT_H
#define SYN_TEST_WAIT_H

#include <stdbool.h>
#include <sys/types.h>

/* timeout_ms times SYN_TEST_TIMEOUT_MULTIPLIER. */
int wait_scaled_ms(int timeout_ms);

/* A deadline being waited for, and the next pause. */
typedef struct {
    long long deadline_ms;
    int pause_ms;
} wait_t;

/* Starts a wait of timeout_ms (scaled). */
wait_t wait_begin(int timeout_ms);
/* Pauses a little (1 ms, doubling up to 20 ms): true, or false without pausing
 * once the deadline has passed. For loops with a body: while (!done) { …;
 * if (!wait_next(&w)) fail; } */
bool wait_next(wait_t *self);

typedef bool (*wait_predicate_fn)(void *arg);
/* Calls predicate(arg) until it returns true (then true) or timeout_ms (scaled)
 * has passed (then false). */
bool wait_until(wait_predicate_fn predicate, void *arg, int timeout_ms);

/* Evaluates cond until it holds or timeout_ms (scaled) has passed; a statement:
 *     WAIT_FOR(fake_broker_requests(fb) >= 2, 5000);
 *     assert_true(fake_broker_requests(fb) >= 2);
 * cond is evaluated once more by the assert, which is what reports a timeout. */
#define WAIT_FOR(cond, timeout_ms) \
    for (wait_t wait_for_ = wait_begin(timeout_ms); !(cond) && wait_next(&wait_for_);)

/* Waits until process pid has taken signal sig: it is no longer pending (its
 * handler has run or is running; /proc/PID/status), or the process is gone. For
 * a test that sends a second signal that means something only after the first. */
bool wait_signal_taken(pid_t pid, int sig, int timeout_ms);

/* A stretch of time that is itself what a test checks: "nothing happens for X"
 * (no second run, no answer before the timeout), or a phase that must be under
 * way for a while. Not a wait for state: each caller says why. Scaled, so a slow
 * machine looks longer for the thing that must not happen. */
void wait_quiet_ms(int ms);

/* A pause of exactly ms, unscaled: for timing that is part of what is tested
 * (a product timeout and a reply just before or after it). Each caller says why. */
void wait_exactly_ms(int ms);

/* Milliseconds since some fixed point (monotonic). */
long long wait_now_ms(void);

#endif
