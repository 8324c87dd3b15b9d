/* The broker on a full disk (issue 23; broker/storage_full.h): it stays up,
 * answers 503 "storage full" for new work while reads go on, takes no result it
 * cannot store (its worker keeps it), and resumes when space returns, with
 * nothing acknowledged lost and no phase run twice.
 *
 * The broker's data directory is a small tmpfs mounted for the test (root, as in
 * CI, or CAP_SYS_ADMIN), filled with a file and freed by removing it: the disk
 * really is full. Where mounting is not allowed, the broker's file-size limit
 * (RLIMIT_FSIZE, set from outside with prlimit(2)) drops to 0 instead: every
 * write the kernel gets fails, which the broker meets the same way. */
#include "bench/synload/localproc.h"
#include "tests/support/execution.h"
#include "tests/support/http.h"
#include "tests/support/teststack.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#define TMPFS_SIZE "8m"
#define HELD 3           /* executions running when the disk fills */
#define SUBMITS_MAX 2000 /* submits tried before the disk must have refused one */

static teststack_t *stack;
static char data_dir[PATH_MAX];
static bool mounted;  /* data_dir is our tmpfs; else the file-size limit is the fault */

static char *strdup_printf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *out = NULL;
    if (vasprintf(&out, fmt, ap) < 0)
        out = NULL;
    va_end(ap);
    return out;
}

/* Lines of dir/<log> holding needle. */
static int log_lines(const char *log, const char *needle)
{
    char path[PATH_MAX], line[8192];
    snprintf(path, sizeof path, "%s/%s", teststack_dir(stack), log);
    FILE *f = fopen(path, "r");
    int n = 0;
    while (f && fgets(line, sizeof line, f))
        n += strstr(line, needle) != NULL;
    if (f)
        fclose(f);
    return n;
}

/* --- the fault ------------------------------------------------------------- */

static int fill_tmpfs(void)
{
    char path[PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/filler", data_dir);
    return localproc_fill_disk(path);
}

static int set_fsize_limit(rlim_t limit)
{
    struct rlimit old, now;
    if (prlimit(teststack_broker_pid(stack), RLIMIT_FSIZE, NULL, &old) != 0)
        return -1;
    now.rlim_cur = limit;
    now.rlim_max = old.rlim_max;
    return prlimit(teststack_broker_pid(stack), RLIMIT_FSIZE, &now, NULL);
}

static void fill_disk(void)
{
    assert_int_equal(mounted ? fill_tmpfs() : set_fsize_limit(0), 0);
}

static void free_disk(void)
{
    char path[PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/filler", data_dir);
    assert_int_equal(mounted ? unlink(path) : set_fsize_limit(RLIM_INFINITY), 0);
}

/* The broker again, its data on a fresh tmpfs when one can be mounted. */
static int setup(void **state)
{
    (void)state;
    teststack_options_t opts = {.workers = 2, .slots = 4};
    stack = teststack_start(&opts);
    if (!stack)
        return -1;
    snprintf(data_dir, sizeof data_dir, "%s/var", teststack_dir(stack));
    if (teststack_stop_broker(stack, SIGTERM, 10000) != 0)
        return -1;
    mounted = mount("tmpfs", data_dir, "tmpfs", 0, "size=" TMPFS_SIZE ",mode=0700") == 0;
    if (!mounted)
        printf("note: cannot mount a tmpfs on %s (%s): the broker's file-size limit is the "
               "full disk\n",
               data_dir, strerror(errno));
    if (teststack_start_broker(stack) != 0 || teststack_wait_health(stack, 2, 20000) != 0)
        return -1;
    execution_create_workflow(stack, "{\"id\":\"held\",\"name\":\"Held\",\"phases\":["
                                     "{\"phase_id\":\"work\",\"name\":\"Work\",\"order\":1,"
                                     "\"prompt_template\":\"#mock sleep 1500\"}]}");
    execution_create_workflow(stack, "{\"id\":\"quick\",\"name\":\"Quick\",\"phases\":["
                                     "{\"phase_id\":\"work\",\"name\":\"Work\",\"order\":1,"
                                     "\"prompt_template\":\"#mock sleep 10\"}]}");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    if (stack && !mounted)
        set_fsize_limit(RLIM_INFINITY);
    /* The processes go first: the mount is busy while the broker has it open. */
    if (stack)
        teststack_stop_broker(stack, SIGTERM, 10000);
    if (mounted)
        umount2(data_dir, MNT_DETACH);
    teststack_destroy(&stack);
    return 0;
}

/* --- the test -------------------------------------------------------------- */

/* POST …/execute: the execution id on 200 (*status 200), else NULL with the
 * status and the body's detail in detail. */
static char *submit(const char *workflow_id, long *status, char *detail, size_t detail_len,
                    char *retry_after, size_t retry_after_len)
{
    http_response_t r;
    char *id = NULL;
    *status = 0;
    if (http_post(&r, "{}", "%s/workflows/%s/execute", teststack_url(stack), workflow_id) == 0) {
        *status = r.status;
        const char *eid = json_string_value(json_object_get(r.json, "execution_id"));
        const char *d = json_string_value(json_object_get(r.json, "detail"));
        if (r.status == 200 && eid)
            id = strdup(eid);
        snprintf(detail, detail_len, "%s", d ? d : "");
        snprintf(retry_after, retry_after_len, "%s", r.retry_after);
    }
    http_response_clear(&r);
    return id;
}

static const char *exec_status(const char *workflow_id, const char *id, char *out, size_t len)
{
    http_response_t r;
    out[0] = '\0';
    if (http_get(&r, "%s/workflows/%s/executions/%s", teststack_url(stack), workflow_id, id) ==
            0 &&
        r.status == 200)
        snprintf(out, len, "%s", json_string_value(json_object_get(r.json, "status")));
    http_response_clear(&r);
    return out;
}

static void test_full_disk_refuses_new_work_keeps_results_and_resumes(void **state)
{
    (void)state;
    pid_t broker = teststack_broker_pid(stack);
    char *held[HELD];
    long status;
    char detail[512], retry_after[32], buf[64];
    for (int i = 0; i < HELD; i++) {
        held[i] = submit("held", &status, detail, sizeof detail, retry_after,
                         sizeof retry_after);
        assert_non_null(held[i]);
        execution_wait_phase(stack, held[i], "work", "running", 10000);
    }

    fill_disk();
    /* SQLite may still find room (a page its WAL already holds): submits go on
     * until the first commit that needs the disk fails. */
    char *accepted[SUBMITS_MAX];
    int naccepted = 0;
    for (int i = 0; i < SUBMITS_MAX; i++) {
        char *id = submit("quick", &status, detail, sizeof detail, retry_after,
                          sizeof retry_after);
        if (!id)
            break;
        accepted[naccepted++] = id;
    }
    printf("measure: %d submits accepted on the full disk before the first 503\n", naccepted);
    assert_int_equal(status, 503);
    assert_true(strncmp(detail, "storage full: ", 14) == 0);
    assert_string_equal(retry_after, "1");

    /* Full: new work refused, reads served, health and readiness say why. */
    free(submit("quick", &status, detail, sizeof detail, retry_after, sizeof retry_after));
    assert_int_equal(status, 503);
    assert_true(strncmp(detail, "storage full: ", 14) == 0);
    http_response_t r;
    assert_int_equal(http_get(&r, "%s/health", teststack_url(stack)), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(json_string_value(json_object_get(r.json, "status")), "degraded");
    assert_true(strncmp(json_string_value(json_array_get(
                            json_object_get(r.json, "degraded_reasons"), 0)),
                        "storage full: ", 14) == 0);
    http_response_clear(&r);
    assert_int_equal(http_get(&r, "%s/ready", teststack_url(stack)), 0);
    assert_int_equal(r.status, 503);
    assert_true(strncmp(json_string_value(json_object_get(r.json, "reason")), "storage full: ",
                        14) == 0);
    http_response_clear(&r);
    assert_int_equal(http_get(&r, "%s/metrics", teststack_url(stack)), 0);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "\nsyn_broker_storage_full 1\n"));
    http_response_clear(&r);

    /* The held phases end on their workers while the broker cannot store their
     * results: it does not take them, so they are still running here. */
    for (int i = 0; i < HELD; i++) {
        char *line = strdup_printf("result execution=%s ", held[i]);
        int seen = 0;
        WAIT_FOR((seen = log_lines("worker0.log", line) + log_lines("worker1.log", line)) > 0,
                 10000);
        assert_int_equal(seen, 1);
        free(line);
    }
    for (int i = 0; i < HELD; i++)
        assert_string_equal(exec_status("held", held[i], buf, sizeof buf), "running");
    /* Logged once, not per turn (under the file-size limit the log cannot be
     * written either). */
    if (mounted)
        assert_int_equal(log_lines("broker.log", "storage full: "), 1);

    free_disk();
    /* Everything acknowledged completes, the held phases with their one attempt
     * (the results resent, not run again), in the same broker process. */
    for (int i = 0; i < HELD; i++) {
        json_t *done = teststack_wait_terminal(stack, "held", held[i], 20000);
        assert_non_null(done);
        assert_string_equal(json_string_value(json_object_get(done, "status")), "completed");
        json_decref(done);
        assert_int_equal(teststack_db_count(stack, "SELECT 1 FROM attempts WHERE "
                                                   "execution_id=?1",
                                            held[i], NULL),
                         1);
    }
    for (int i = 0; i < naccepted; i++) {
        json_t *done = teststack_wait_terminal(stack, "quick", accepted[i], 20000);
        assert_non_null(done);
        assert_string_equal(json_string_value(json_object_get(done, "status")), "completed");
        json_decref(done);
    }
    /* A 503 is a no: none of the refused submits was stored. */
    assert_int_equal(teststack_db_count(stack, "SELECT 1 FROM executions", NULL),
                     HELD + naccepted);
    assert_int_equal(teststack_broker_pid(stack), broker);
    assert_int_equal(kill(broker, 0), 0);
    assert_int_equal(log_lines("broker.log", "storage writable again"), 1);

    /* And it takes new work again. */
    char *after = submit("quick", &status, detail, sizeof detail, retry_after,
                         sizeof retry_after);
    assert_non_null(after);
    json_t *done = teststack_wait_terminal(stack, "quick", after, 20000);
    assert_non_null(done);
    assert_string_equal(json_string_value(json_object_get(done, "status")), "completed");
    json_decref(done);
    assert_int_equal(teststack_db_count(stack, "SELECT 1 FROM executions WHERE status<>"
                                               "'completed'",
                                        NULL),
                     0);
    free(after);
    for (int i = 0; i < HELD; i++)
        free(held[i]);
    for (int i = 0; i < naccepted; i++)
        free(accepted[i]);
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full_disk_refuses_new_work_keeps_results_and_resumes),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
