/* common/signals: stop requests counted and capped, SIGHUP a reload request only
 * where asked for, SIGPIPE harmless. Signals are raised in this process. */
#include "common/signals.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

static void test_sighup_keeps_its_default_unless_asked(void **state)
{
    (void)state;
    syn_signals_install(false);
    struct sigaction current;
    assert_int_equal(sigaction(SIGHUP, NULL, &current), 0);
    assert_true(current.sa_handler == SIG_DFL);
    assert_int_equal(sigaction(SIGPIPE, NULL, &current), 0);
    assert_true(current.sa_handler == SIG_IGN);
}

static void test_reload_requested_once_per_sighup(void **state)
{
    (void)state;
    syn_signals_install(true);
    assert_false(syn_signals_take_reload());
    raise(SIGHUP);
    raise(SIGHUP);
    assert_true(syn_signals_take_reload());
    assert_false(syn_signals_take_reload());
    raise(SIGPIPE); /* ignored: the test goes on */
    assert_false(syn_signals_stop_requested());
}

static void test_stops_counted_up_to_two(void **state)
{
    (void)state;
    syn_signals_install(true);
    assert_int_equal(*syn_signals_stop_requests(), 0);
    raise(SIGTERM);
    assert_true(syn_signals_stop_requested());
    assert_int_equal(*syn_signals_stop_requests(), 1);
    raise(SIGINT);
    raise(SIGTERM);
    assert_int_equal(*syn_signals_stop_requests(), 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sighup_keeps_its_default_unless_asked),
        cmocka_unit_test(test_reload_requested_once_per_sighup),
        cmocka_unit_test(test_stops_counted_up_to_two),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
