/* common/endpoint and common/ratelog: which addresses count as this host, and
 * one log line per cause per interval. */
#include "common/endpoint.h"
#include "common/endpoint_list.h"
#include "common/ratelog.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

static void test_zmq_endpoints(void **state)
{
    (void)state;
    const char *local[] = {"tcp://127.0.0.1:5555", "tcp://127.9.8.7:1", "tcp://localhost:5555",
                           "tcp://LOCALHOST:1",    "tcp://[::1]:5556",  "ipc:///tmp/syn.sock",
                           "inproc://x",           "tcp://10.0.0.1:1;127.0.0.1:5555",
                           "tcp://[::ffff:127.0.0.1]:5"};
    const char *remote[] = {"tcp://*:5555",        "tcp://0.0.0.0:5555",   "tcp://10.1.2.3:5555",
                            "tcp://broker:5555",    "tcp://[::]:5555",      "tcp://::1:5555",
                            "tcp://eth0:5555",      "tcp://128.0.0.1:1",    "tcp://127.0.0.1.evil:1",
                            "tcp://localhost.evil:1", "udp://127.0.0.1:1",  "tcp://127.0.0.1",
                            "tcp://127.0.0.1:1;10.0.0.1:5555", "",          "tcp://[::1:5"};
    for (size_t i = 0; i < sizeof local / sizeof *local; i++)
        assert_true(syn_endpoint_is_local(local[i]));
    for (size_t i = 0; i < sizeof remote / sizeof *remote; i++) {
        if (syn_endpoint_is_local(remote[i]))
            fail_msg("%s counted as local", remote[i]);
    }
    assert_false(syn_endpoint_is_local(NULL));
}

static void test_http_addresses(void **state)
{
    (void)state;
    assert_true(syn_http_address_is_local("127.0.0.1:8137"));
    assert_true(syn_http_address_is_local("localhost:0"));
    assert_true(syn_http_address_is_local("[::1]:8137"));
    assert_false(syn_http_address_is_local("0.0.0.0:8137"));
    assert_false(syn_http_address_is_local("192.168.1.5:8137"));
    assert_false(syn_http_address_is_local(":8137"));
    assert_false(syn_http_address_is_local("8137"));
    assert_false(syn_http_address_is_local(NULL));
}

static void test_check_says_what_and_how(void **state)
{
    (void)state;
    char err[256] = "";
    assert_int_equal(syn_endpoint_check("--workers", "tcp://127.0.0.1:1", false, false, "x", "y",
                                        err, sizeof err),
                     0);
    assert_int_equal(syn_endpoint_check("--workers", "tcp://*:5556", false, true, "x", "y", err,
                                        sizeof err),
                     0);
    assert_int_equal(syn_endpoint_check("--workers", "tcp://*:5556", false, false,
                                        "no CURVE key is given", "give --curve-secret FILE",
                                        err, sizeof err),
                     -1);
    assert_string_equal(err, "--workers tcp://*:5556 is not a loopback address and no CURVE key "
                             "is given: give --curve-secret FILE");
    assert_int_equal(syn_endpoint_check("--http", "0.0.0.0:80", true, false, "a", "b", err,
                                        sizeof err),
                     -1);
}

static void test_ratelog_one_line_per_cause_per_interval(void **state)
{
    (void)state;
    syn_ratelog_t *log = syn_ratelog_new(60000, 2);
    assert_non_null(log);
    uint64_t held = 99;
    assert_true(syn_ratelog_allow(log, "key-a 127.0.0.1", 1000, &held));
    assert_int_equal(held, 0);
    for (int i = 0; i < 5; i++)
        assert_false(syn_ratelog_allow(log, "key-a 127.0.0.1", 1000 + i * 1000, &held));
    /* Another cause has its own allowance. */
    assert_true(syn_ratelog_allow(log, "key-b 127.0.0.1", 2000, &held));
    assert_int_equal(held, 0);
    /* After the interval, one line with the count held back. */
    assert_true(syn_ratelog_allow(log, "key-a 127.0.0.1", 61000, &held));
    assert_int_equal(held, 5);
    assert_false(syn_ratelog_allow(log, "key-a 127.0.0.1", 61001, &held));
    /* Bounded: a third cause replaces the least recently logged one (key-b). */
    assert_true(syn_ratelog_allow(log, "key-c", 62000, &held));
    assert_true(syn_ratelog_allow(log, "key-b 127.0.0.1", 62001, &held));
    assert_false(syn_ratelog_allow(log, "key-b 127.0.0.1", 62002, &held));
    /* Long causes count by their first 255 bytes. */
    char long_a[400], long_b[400];
    memset(long_a, 'x', sizeof long_a - 1);
    long_a[sizeof long_a - 1] = '\0';
    memcpy(long_b, long_a, sizeof long_b);
    long_b[300] = 'y';
    assert_true(syn_ratelog_allow(log, long_a, 70000, &held));
    assert_false(syn_ratelog_allow(log, long_b, 70001, &held));
    syn_ratelog_destroy(&log);
    syn_ratelog_destroy(&log);
    assert_null(log);
}

/* The warning for ports a reconnecting client can self-connect to: against the
 * range this machine's kernel really has. */
static void test_ephemeral_ports_are_named(void **state)
{
    (void)state;
    int low = 0, high = 0;
    FILE *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "r");
    assert_non_null(f);
    assert_int_equal(fscanf(f, "%d %d", &low, &high), 2);
    fclose(f);
    char inside[64], below[64], above[64];
    snprintf(inside, sizeof inside, "tcp://127.0.0.1:%d", low);
    snprintf(below, sizeof below, "tcp://127.0.0.1:%d", low - 1);
    snprintf(above, sizeof above, "tcp://[::1]:%d", high < 65535 ? high + 1 : 0);
    int got_low = 0, got_high = 0;
    assert_true(syn_endpoint_port_is_ephemeral(inside, &got_low, &got_high));
    assert_int_equal(got_low, low);
    assert_int_equal(got_high, high);
    assert_false(syn_endpoint_port_is_ephemeral(below, &got_low, &got_high));
    assert_false(syn_endpoint_port_is_ephemeral(above, &got_low, &got_high));
    assert_false(syn_endpoint_port_is_ephemeral("tcp://127.0.0.1:*", &got_low, &got_high));
    assert_false(syn_endpoint_port_is_ephemeral("ipc:///tmp/x:40000", &got_low, &got_high));
    assert_false(syn_endpoint_port_is_ephemeral("tcp://127.0.0.1:40000x", &got_low, &got_high));
}

/* A list of brokers: parsed strictly, followed round robin, every endpoint checked. */
static void test_endpoint_lists(void **state)
{
    (void)state;
    char err[256];
    syn_endpoint_list_t *one = syn_endpoint_list_new("--broker", "tcp://127.0.0.1:5555", err,
                                                     sizeof err);
    assert_non_null(one);
    assert_int_equal(syn_endpoint_list_size(one), 1);
    assert_string_equal(syn_endpoint_list_current(one), "tcp://127.0.0.1:5555");
    assert_string_equal(syn_endpoint_list_next(one), "tcp://127.0.0.1:5555");
    syn_endpoint_list_destroy(&one);
    syn_endpoint_list_destroy(&one);

    syn_endpoint_list_t *list = syn_endpoint_list_new(
        "--broker", "tcp://127.0.0.1:1, tcp://127.0.0.1:2 ,tcp://127.0.0.1:3", err, sizeof err);
    assert_non_null(list);
    assert_int_equal(syn_endpoint_list_size(list), 3);
    assert_string_equal(syn_endpoint_list_at(list, 1), "tcp://127.0.0.1:2");
    assert_null(syn_endpoint_list_at(list, 3));
    assert_int_equal(syn_endpoint_list_index(list), 0);
    assert_string_equal(syn_endpoint_list_next(list), "tcp://127.0.0.1:2");
    assert_string_equal(syn_endpoint_list_next(list), "tcp://127.0.0.1:3");
    assert_string_equal(syn_endpoint_list_next(list), "tcp://127.0.0.1:1");
    assert_int_equal(syn_endpoint_list_find(list, "tcp://127.0.0.1:3"), 2);
    assert_int_equal(syn_endpoint_list_find(list, "tcp://127.0.0.1:4"), -1);
    syn_endpoint_list_destroy(&list);

    const char *bad[] = {"", "tcp://127.0.0.1:1,", ",tcp://127.0.0.1:1", "a,,b", " , ",
                         "tcp://127.0.0.1:1,tcp://127.0.0.1:1"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        err[0] = '\0';
        assert_null(syn_endpoint_list_new("--events", bad[i], err, sizeof err));
        assert_non_null(strstr(err, "--events"));
    }
    assert_null(syn_endpoint_list_new("--broker", "a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p,q", err,
                                      sizeof err));
    assert_non_null(strstr(err, "more than 16"));
    assert_null(syn_endpoint_list_new("--broker", "tcp://127.0.0.1:1,tcp://127.0.0.1:1", err,
                                      sizeof err));
    assert_non_null(strstr(err, "tcp://127.0.0.1:1 is listed twice"));

    assert_int_equal(syn_endpoint_list_check("--broker", "tcp://127.0.0.1:1,ipc:///tmp/b", false,
                                             "why", "remedy", err, sizeof err), 0);
    assert_int_equal(syn_endpoint_list_check("--broker", "tcp://127.0.0.1:1,tcp://10.0.0.2:1",
                                             false, "no key", "give one", err, sizeof err), -1);
    assert_non_null(strstr(err, "--broker tcp://10.0.0.2:1 is not a loopback address"));
    assert_int_equal(syn_endpoint_list_check("--broker", "tcp://10.0.0.1:1,tcp://10.0.0.2:1",
                                             true, "no key", "give one", err, sizeof err), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_zmq_endpoints),
        cmocka_unit_test(test_http_addresses),
        cmocka_unit_test(test_check_says_what_and_how),
        cmocka_unit_test(test_ratelog_one_line_per_cause_per_interval),
        cmocka_unit_test(test_ephemeral_ports_are_named),
        cmocka_unit_test(test_endpoint_lists),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
