/* signals: see signals.h. */
#include "common/signals.h"

#include <string.h>

static volatile sig_atomic_t stop_requests = 0;
static volatile sig_atomic_t reload_requested = 0;

static void on_stop_signal(int sig)
{
    (void)sig;
    if (stop_requests < 2)
        stop_requests = stop_requests + 1;
}

static void on_reload_signal(int sig)
{
    (void)sig;
    reload_requested = 1;
}

static void handle(int sig, void (*handler)(int))
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = handler;
    sigemptyset(&sa.sa_mask);
    sigaction(sig, &sa, NULL);
}

void syn_signals_install(bool with_reload)
{
    handle(SIGINT, on_stop_signal);
    handle(SIGTERM, on_stop_signal);
    if (with_reload)
        handle(SIGHUP, on_reload_signal);
    signal(SIGPIPE, SIG_IGN);
}

volatile sig_atomic_t *syn_signals_stop_requests(void)
{
    return &stop_requests;
}

bool syn_signals_stop_requested(void)
{
    return stop_requests > 0;
}

bool syn_signals_take_reload(void)
{
    if (!reload_requested)
        return false;
    reload_requested = 0;
    return true;
}
