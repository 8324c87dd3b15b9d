/* signals: how every long-running syn program answers signals, written once.
 * SIGINT and SIGTERM count stop requests (capped at 2: the worker drains on the
 * first and leaves on the second; the others stop on the first). SIGHUP, where a
 * program asks for it, requests a reload (keys, tokens) without a restart; where
 * it does not, SIGHUP keeps its default. SIGPIPE is ignored: a peer or a child
 * that closes its end early must give EPIPE, not kill the program. */
#ifndef SYN_SIGNALS_H
#define SYN_SIGNALS_H

#include <signal.h>
#include <stdbool.h>

/* Installs the handlers; with_reload makes SIGHUP a reload request. */
void syn_signals_install(bool with_reload);

/* The stop requests so far (0, 1 or 2), for loops that take the flag itself. */
volatile sig_atomic_t *syn_signals_stop_requests(void);

bool syn_signals_stop_requested(void);

/* true once for each SIGHUP (or burst of them) since the last call. */
bool syn_signals_take_reload(void);

#endif
