/* cli/supervisor: restarts a child that dies, stops every child on request. */
#include "cli/supervisor.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

static volatile sig_atomic_t stop_flag;

static void on_alarm(int sig)
{
    (void)sig;
    stop_flag = 1;
}

static int count_lines(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    int n = 0, c;
    while ((c = fgetc(f)) != EOF)
        n += c == '\n';
    fclose(f);
    return n;
}

static void test_restarts_dying_child_and_stops_all(void **state)
{
    (void)state;
    char dir[] = "/tmp/syn-sup-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char starts[128], cmd[256], steady_cmd[256];
    snprintf(starts, sizeof starts, "%s/starts", dir);
    /* One child records each start and dies at once; the other runs until told. */
    snprintf(cmd, sizeof cmd, "echo started >> %s; exit 3", starts);
    snprintf(steady_cmd, sizeof steady_cmd, "trap 'echo stopped > %s/steady; exit 0' TERM; "
             "while :; do sleep 0.05; done", dir);
    char *dying[] = {"/bin/sh", "-c", cmd, NULL};
    char *steady[] = {"/bin/sh", "-c", steady_cmd, NULL};

    supervisor_t *sup = supervisor_new();
    assert_non_null(sup);
    assert_int_equal(supervisor_add(sup, "dying", dying), 0);
    assert_int_equal(supervisor_add(sup, "steady", steady), 0);
    stop_flag = 0;
    signal(SIGALRM, on_alarm);
    alarm(2); /* back-off 0.5 s then 1 s: about three starts in 2 s */
    assert_int_equal(supervisor_run(sup, &stop_flag, 3000), 0);
    supervisor_destroy(&sup);
    supervisor_destroy(&sup); /* safe twice */
    assert_null(sup);

    int n = count_lines(starts);
    assert_true(n >= 2 && n <= 4);
    char path[160];
    snprintf(path, sizeof path, "%s/steady", dir);
    assert_int_equal(count_lines(path), 1); /* got SIGTERM and left cleanly */
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_restarts_dying_child_and_stops_all),
    };
    return cmocka_run_group_tests_name("supervisor", tests, NULL, NULL);
}
