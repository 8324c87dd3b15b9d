#include "bench/synload/workloads.h"
#include "bench/synload/batch.h"
#include "bench/synload/hclient.h"
#include "bench/synload/hello.h"
#include "bench/synload/lookup.h"
#include "bench/synload/stack.h"
#include "bench/synload/stats.h"
#include "bench/synload/verify.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"

#define W1_EXECUTIONS 2000
#define W1_WARMUP 200
#define W2_EXECUTIONS 200
#define W2_WARMUP 20
#define W3_LOOKUPS 20000
#define FILL_EXECUTIONS 100000
#define CHAIN_PHASES 3
#define HEALTH_TIMEOUT_MS 120000 /* a broker under valgrind on a loaded machine starts slowly */

/* Where a run sends its requests: a stack of its own or the user's gateway. */
typedef struct {
    synstack_t *stack;
    char url[128];
    char db[PATH_MAX + 16]; /* "" = outputs cannot be checked */
} target_t;

typedef struct {
    double broker, gateway, workers, client;
} cpu_snapshot_t;

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
        ;
}

void workload_progress(const workload_config_t *cfg, const char *fmt, ...)
{
    if (cfg->quiet)
        return;
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "synload: ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static int target_open(const workload_config_t *cfg, int workers, int slots, int mock_delay_ms,
                       target_t *t, char *err, size_t errlen)
{
    memset(t, 0, sizeof *t);
    if (cfg->gateway) {
        snprintf(t->url, sizeof t->url, "%s", cfg->gateway);
        if (cfg->data)
            snprintf(t->db, sizeof t->db, "%s/syn.db", cfg->data);
        return 0;
    }
    synstack_options_t opts = {
        .bin_dir = cfg->bin_dir,
        .workers = workers,
        .slots = slots,
        .prefetch = cfg->prefetch < 0 ? slots : (int)cfg->prefetch,
        .mock_delay_ms = mock_delay_ms,
        .log_level = cfg->log_level,
        .broker_prefix = cfg->broker_prefix,
        .broker_args = cfg->broker_args,
        .gateway_prefix = cfg->gateway_prefix,
        .gateway_args = cfg->gateway_args,
        .worker_args = cfg->worker_args,
        .keep = cfg->keep,
        .postgresql = cfg->postgresql,
    };
    t->stack = stack_start(&opts, HEALTH_TIMEOUT_MS);
    if (!t->stack) {
        snprintf(err, errlen, "the stack did not start (programs in %s)", cfg->bin_dir);
        return -1;
    }
    snprintf(t->url, sizeof t->url, "%s", stack_url(t->stack));
    snprintf(t->db, sizeof t->db, "%s", stack_db_path(t->stack));
    return 0;
}

static void target_close(target_t *t) { stack_destroy(&t->stack); }

int workload_create_workflow(const char *url, const char *id, int phases, int sleep_ms,
                             int max_attempts, char *err, size_t errlen)
{
    char host[64];
    int port;
    if (hclient_parse_url(url, host, sizeof host, &port) != 0) {
        snprintf(err, errlen, "bad URL %s", url);
        return -1;
    }
    char *body = verify_workflow_json(id, phases, sleep_ms, max_attempts);
    hclient_t *hc = hclient_new(host, port);
    int status = body && hc ? hclient_request(hc, "POST", "/workflows", body, 10000) : -1;
    int rc = status == 201 || status == 409 ? 0 : -1;
    if (rc != 0)
        snprintf(err, errlen, "POST /workflows answered %d: %.300s", status,
                 status > 0 ? hclient_body(hc, NULL) : hc ? hclient_error(hc) : "out of memory");
    hclient_destroy(&hc);
    free(body);
    return rc;
}

static bool tracks_active(const workload_config_t *cfg)
{
    if (!strcmp(cfg->track, "auto"))
        return !cfg->gateway;
    return !strcmp(cfg->track, "active");
}

/* Without the database, every execution's status is read through the API once
 * the batch is over (not timed). */
static int api_check_batch(const target_t *t, const char *workflow, const batch_t *b, char *err,
                           size_t errlen)
{
    char host[64], path[256], status[32];
    int port;
    if (hclient_parse_url(t->url, host, sizeof host, &port) != 0)
        return -1;
    hclient_t *hc = hclient_new(host, port);
    int rc = hc ? 0 : -1;
    for (int i = 0; i < b->n && rc == 0; i++) {
        snprintf(path, sizeof path, "/workflows/%s/executions/%s", workflow, b->ids[i]);
        int code = hclient_request(hc, "GET", path, NULL, 10000);
        if (code != 200 || batch_json_string(hclient_body(hc, NULL), "status", status,
                                             sizeof status) != 0 ||
            strcmp(status, "completed") != 0) {
            snprintf(err, errlen, "WRONG RESULT: execution %s: %d %.300s", b->ids[i], code,
                     code > 0 ? hclient_body(hc, NULL) : hclient_error(hc));
            rc = -1;
        }
    }
    hclient_destroy(&hc);
    return rc;
}

/* Runs a batch and checks it: every execution completed and, when the database
 * is at hand, every phase's output is exactly the expected one. */
static int checked_batch(const workload_config_t *cfg, const target_t *t, const char *workflow,
                         const char *prefix, int n, int inflight, int sleep_ms, const char *label,
                         batch_t *batch, verify_result_t *vr, char *err, size_t errlen)
{
    batch_options_t opts = {
        .url = t->url,
        .workflow_id = workflow,
        .task_prefix = prefix,
        .executions = n,
        .inflight = inflight,
        .poll_ms = (int)cfg->poll_ms,
        .track_active = tracks_active(cfg),
        .timeout_s = (int)cfg->timeout_s,
        .label = cfg->quiet ? NULL : label,
        .stop = cfg->stop,
    };
    memset(vr, 0, sizeof *vr);
    if (batch_run(&opts, batch, err, errlen) != 0)
        return -1;
    for (int i = 0; i < n; i++)
        if (batch->final_status[i] != 'c' && batch->final_status[i] != '?') {
            snprintf(err, errlen, "WRONG RESULT: execution %s (task %s) ended %s", batch->ids[i],
                     batch->tasks[i], batch->final_status[i] == 'f' ? "failed" : "cancelled");
            return -1;
        }
    if (!t->db[0])
        return api_check_batch(t, workflow, batch, err, errlen);
    if (verify_batch_db(t->db, batch, CHAIN_PHASES, sleep_ms, vr, err, errlen) != 0)
        return -1;
    if (vr->bad) {
        snprintf(err, errlen, "WRONG RESULT: %d of %d executions: %s", vr->bad, vr->checked,
                 vr->first_problem);
        return -1;
    }
    return 0;
}

static cpu_snapshot_t cpu_snapshot(const target_t *t)
{
    cpu_snapshot_t s = {0, 0, 0, 0};
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    s.client = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
               (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
    if (!t->stack)
        return s;
    s.broker = proc_cpu_s(stack_broker_pid(t->stack));
    s.gateway = proc_cpu_s(stack_gateway_pid(t->stack));
    for (int i = 0; i < stack_worker_count(t->stack); i++)
        if (stack_worker_pid(t->stack, i) > 0)
            s.workers += proc_cpu_s(stack_worker_pid(t->stack, i));
    return s;
}

static void add_cpu(json_t *o, const target_t *t, cpu_snapshot_t a, cpu_snapshot_t b, double wall)
{
    json_object_set_new(o, "cpu_client_s", json_real(b.client - a.client));
    if (!t->stack)
        return;
    json_object_set_new(o, "cpu_broker_s", json_real(b.broker - a.broker));
    json_object_set_new(o, "cpu_gateway_s", json_real(b.gateway - a.gateway));
    json_object_set_new(o, "cpu_workers_s", json_real(b.workers - a.workers));
    if (wall > 0) {
        json_object_set_new(o, "broker_cpu_pct", json_real(100 * (b.broker - a.broker) / wall));
        json_object_set_new(o, "gateway_cpu_pct", json_real(100 * (b.gateway - a.gateway) / wall));
        json_object_set_new(o, "workers_cpu_pct", json_real(100 * (b.workers - a.workers) / wall));
        json_object_set_new(o, "client_cpu_pct", json_real(100 * (b.client - a.client) / wall));
    }
}

json_t *workload_loadavg_json(void)
{
    double l[3] = {0, 0, 0};
    FILE *f = fopen("/proc/loadavg", "r");
    if (f) {
        if (fscanf(f, "%lf %lf %lf", &l[0], &l[1], &l[2]) != 3)
            l[0] = l[1] = l[2] = 0;
        fclose(f);
    }
    return json_pack("[fff]", l[0], l[1], l[2]);
}

/* RSS (what the peers report), its peak over the run, and, from smaps_rollup, PSS
 * and USS (private memory) of one process, as rss_<name>_mib, peak_rss_<name>_mib,
 * pss_<name>_mib, uss_<name>_mib. */
void workload_add_memory(json_t *o, const char *name, pid_t pid)
{
    char key[64];
    snprintf(key, sizeof key, "rss_%s_mib", name);
    json_object_set_new(o, key, json_real((double)proc_rss_kib(pid) / 1024.0));
    snprintf(key, sizeof key, "peak_rss_%s_mib", name);
    json_object_set_new(o, key, json_real((double)proc_peak_rss_kib(pid) / 1024.0));
    long pss, uss;
    if (proc_pss_uss_kib(pid, &pss, &uss) == 0) {
        snprintf(key, sizeof key, "pss_%s_mib", name);
        json_object_set_new(o, key, json_real((double)pss / 1024.0));
        snprintf(key, sizeof key, "uss_%s_mib", name);
        json_object_set_new(o, key, json_real((double)uss / 1024.0));
    }
}

static void add_rss(json_t *o, const target_t *t)
{
    if (!t->stack)
        return;
    workload_add_memory(o, "broker", stack_broker_pid(t->stack));
    workload_add_memory(o, "gateway", stack_gateway_pid(t->stack));
    /* The largest worker stands for all of them. */
    pid_t worst = 0;
    long worst_kib = -1;
    for (int i = 0; i < stack_worker_count(t->stack); i++) {
        long kib = proc_rss_kib(stack_worker_pid(t->stack, i));
        if (kib > worst_kib) {
            worst_kib = kib;
            worst = stack_worker_pid(t->stack, i);
        }
    }
    if (worst > 0)
        workload_add_memory(o, "worker", worst);
}

/* Latency and throughput of a checked batch. Latency runs from the client's
 * submit to the broker's completed_at (same host clock) when the database was
 * read, else to the poll that saw the execution finished. */
static void add_batch_metrics(json_t *o, const workload_config_t *cfg, const target_t *t,
                              const batch_t *b, const verify_result_t *vr, const char *latency_name)
{
    int n = b->n;
    bool from_db = t->db[0] && vr->completed_us;
    double *lat = malloc((size_t)(n > 0 ? n : 1) * sizeof *lat);
    double *seen = malloc((size_t)(n > 0 ? n : 1) * sizeof *seen);
    if (!lat || !seen) {
        free(lat);
        free(seen);
        return;
    }
    for (int i = 0; i < n; i++) {
        seen[i] = (double)(b->seen_us[i] - b->submit_us[i]) / 1000.0;
        lat[i] = from_db ? (double)(vr->completed_us[i] - b->submit_us[i]) / 1000.0 : seen[i];
    }
    int64_t last = from_db ? vr->last_completed_us : b->last_seen_us;
    double wall = (double)(last - b->first_submit_us) / 1e6;
    json_object_set_new(o, "executions", json_integer(n));
    json_object_set_new(o, "phases", json_integer((json_int_t)n * CHAIN_PHASES));
    json_object_set_new(o, "wall_s", json_real(wall));
    json_object_set_new(o, "submit_s",
                        json_real((double)(b->last_accepted_us - b->first_submit_us) / 1e6));
    json_object_set_new(o, "exec_per_s", json_real(wall > 0 ? n / wall : 0));
    json_object_set_new(o, "phases_per_s", json_real(wall > 0 ? CHAIN_PHASES * n / wall : 0));
    json_object_set_new(o, "p50_ms", json_real(stats_percentile(lat, (size_t)n, 50)));
    json_object_set_new(o, "p99_ms", json_real(stats_percentile(lat, (size_t)n, 99)));
    bool active = tracks_active(cfg);
    if (!active) {
        json_object_set_new(o, "p50_seen_ms", json_real(stats_percentile(seen, (size_t)n, 50)));
        json_object_set_new(o, "p99_seen_ms", json_real(stats_percentile(seen, (size_t)n, 99)));
    }
    json_object_set_new(o, "wall_seen_s",
                        json_real((double)(b->last_seen_us - b->first_submit_us) / 1e6));
    json_object_set_new(o, "polls", json_integer(b->polls));
    char tracking[160];
    snprintf(tracking, sizeof tracking,
             active ? "status polling (no event stream yet): GET /workflows/executions/active"
                      " every %ld ms until empty"
                    : "status polling (no event stream yet): GET of each execution, re-polled"
                      " after %ld ms",
             cfg->poll_ms);
    json_object_set_new(o, "tracking", json_string(tracking));
    json_object_set_new(o, "latency", json_string(from_db ? "submit -> broker completed_at"
                                                          : "submit -> poll saw it finished"));
    json_object_set_new(o, "checked", json_string(from_db ? "status and every phase output (SQLite)"
                                                          : "status only (no --data)"));
    if (cfg->latency_dir && latency_name) {
        char path[PATH_MAX];
        mkdir(cfg->latency_dir, 0755);
        snprintf(path, sizeof path, "%s/%s.txt", cfg->latency_dir, latency_name);
        FILE *f = fopen(path, "w");
        if (f) {
            /* stats_percentile sorted lat above. */
            for (int i = 0; i < n; i++)
                fprintf(f, "%.3f\n", lat[i]);
            fclose(f);
        }
    }
    free(lat);
    free(seen);
}

pid_t workload_profiler_start(const workload_config_t *cfg, pid_t broker)
{
    if (!cfg->profile_cmd || broker <= 0)
        return -1;
    char cmd[2048], pid[16];
    snprintf(pid, sizeof pid, "%d", (int)broker);
    size_t len = 0;
    for (const char *p = cfg->profile_cmd; *p && len < sizeof cmd - 16;) {
        if (!strncmp(p, "{pid}", 5)) {
            len += (size_t)snprintf(cmd + len, sizeof cmd - len, "%s", pid);
            p += 5;
        } else {
            cmd[len++] = *p++;
        }
    }
    cmd[len] = '\0';
    pid_t child = fork();
    if (child == 0) {
        setpgid(0, 0);
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    /* Let it attach before the batch starts. */
    sleep_ms(500);
    return child;
}

void workload_profiler_stop(pid_t child)
{
    if (child <= 0)
        return;
    kill(-child, SIGINT);
    waitpid(child, NULL, 0);
}

/* ---------------------------------------------------------------- W3 */

typedef struct {
    const batch_t *batch;
    const char *workflow;
    int *picks;
} w3_arg_t;

static void w3_path(void *arg, int k, char *buf, size_t size)
{
    w3_arg_t *a = arg;
    snprintf(buf, size, "/workflows/%s/executions/%s", a->workflow, a->batch->ids[a->picks[k]]);
}

static int w3_check(void *arg, int k, int status, const char *body, char *why, size_t whysize)
{
    w3_arg_t *a = arg;
    const char *id = a->batch->ids[a->picks[k]];
    if (status != 200 || !strstr(body, id) || !strstr(body, "\"status\":\"completed\"")) {
        snprintf(why, whysize, "answered %d: %.200s", status, body);
        return -1;
    }
    return 0;
}

/* Deterministic picks (the same sequence every run, like the peers' mulberry32). */
static uint32_t next_random(uint32_t *state)
{
    uint32_t x = *state;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return *state = x;
}

static int run_w3(const workload_config_t *cfg, const target_t *t, const char *workflow,
                  const batch_t *b, int run, json_t *results, char *err, size_t errlen)
{
    int count = (int)(cfg->lookups > 0 ? cfg->lookups : W3_LOOKUPS);
    w3_arg_t arg = {.batch = b, .workflow = workflow, .picks = malloc((size_t)count * sizeof(int))};
    if (!arg.picks) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    uint32_t seed = 12345;
    for (int k = 0; k < count; k++)
        arg.picks[k] = (int)(next_random(&seed) % (uint32_t)b->n);
    workload_progress(cfg, "W3 run %d: %d sequential look-ups (%s)", run, count,
             cfg->use_curl ? "libcurl" : "synload's HTTP client");
    cpu_snapshot_t c0 = cpu_snapshot(t);
    lookup_result_t lr;
    int rc = lookup_run(t->url, cfg->use_curl, count, w3_path, w3_check, &arg, &lr, err, errlen);
    cpu_snapshot_t c1 = cpu_snapshot(t);
    free(arg.picks);
    if (rc != 0)
        return -1;
    if (lr.bad) {
        snprintf(err, errlen, "WRONG RESULT: %d of %d look-ups: %s", lr.bad, count,
                 lr.first_problem);
        return -1;
    }
    json_t *o = json_object();
    json_object_set_new(o, "workload", json_string("w3"));
    json_object_set_new(o, "run", json_integer(run));
    json_object_set_new(o, "lookups", json_integer(count));
    json_object_set_new(o, "pool", json_integer(b->n));
    json_object_set_new(o, "client", json_string(cfg->use_curl ? "libcurl" : "synload"));
    json_object_set_new(o, "lookups_per_s", json_real(lr.per_s));
    json_object_set_new(o, "lookup_p50_us", json_real(lr.p50_us));
    json_object_set_new(o, "lookup_p99_us", json_real(lr.p99_us));
    json_object_set_new(o, "secs", json_real(lr.secs));
    add_cpu(o, t, c0, c1, lr.secs);
    json_array_append_new(results, o);
    workload_progress(cfg, "W3 run %d: %.0f look-ups/s", run, lr.per_s);
    return 0;
}

/* ---------------------------------------------------------------- W1 family */

typedef enum { KIND_W1, KIND_SCALING, KIND_FILL } w1_kind_t;

static int w1_family(const workload_config_t *cfg, w1_kind_t kind, int workers, bool with_w1,
                     bool with_w3, int run, json_t *results)
{
    char err[1024] = "";
    const char *name = kind == KIND_W1 ? "w1" : kind == KIND_SCALING ? "scaling" : "fill";
    int n = (int)(cfg->executions > 0 ? cfg->executions
                  : kind == KIND_FILL    ? FILL_EXECUTIONS
                                         : W1_EXECUTIONS);
    int warm = (int)(cfg->warmup >= 0 ? cfg->warmup : kind == KIND_FILL ? 0 : W1_WARMUP);
    target_t t;
    if (cfg->gateway)
        workload_progress(cfg, "%s run %d: using the stack at %s", name, run, cfg->gateway);
    else
        workload_progress(cfg, "%s run %d: starting a stack (%d workers x %ld slots)", name, run, workers,
                 cfg->slots);
    if (target_open(cfg, workers, (int)cfg->slots, 0, &t, err, sizeof err) != 0) {
        fprintf(stderr, "synload: %s run %d FAILED: %s\n", name, run, err);
        return -1;
    }
    int rc = -1;
    batch_t warmb = {0}, b = {0};
    verify_result_t warmv = {0}, v = {0};
    const char *wf = "bench-w1";
    char prefix[64], label[64];
    if (workload_create_workflow(t.url, wf, CHAIN_PHASES, 0, 0, err, sizeof err) != 0)
        goto done;
    if (warm > 0) {
        snprintf(prefix, sizeof prefix, "warm%d", run);
        snprintf(label, sizeof label, "%s warm-up", name);
        if (checked_batch(cfg, &t, wf, prefix, warm, (int)cfg->inflight, 0, label, &warmb, &warmv,
                          err, sizeof err) != 0)
            goto done;
        sleep_ms(1000);
    }
    json_t *load = workload_loadavg_json();
    snprintf(prefix, sizeof prefix, "%s-r%d", name, run);
    workload_progress(cfg, "%s run %d: %d executions, %ld submits in flight", name, run, n, cfg->inflight);
    pid_t profiler = workload_profiler_start(cfg, t.stack ? stack_broker_pid(t.stack) : 0);
    cpu_snapshot_t c0 = cpu_snapshot(&t);
    int brc = checked_batch(cfg, &t, wf, prefix, n, (int)cfg->inflight, 0, name, &b, &v, err,
                            sizeof err);
    cpu_snapshot_t c1 = cpu_snapshot(&t);
    workload_profiler_stop(profiler);
    if (brc != 0) {
        json_decref(load);
        goto done;
    }
    json_t *o = json_object();
    json_object_set_new(o, "workload", json_string(name));
    json_object_set_new(o, "store", json_string(cfg->postgresql ? "postgresql" : "sqlite"));
    json_object_set_new(o, "run", json_integer(run));
    json_object_set_new(o, "inflight", json_integer(cfg->inflight));
    json_object_set_new(o, "workers", json_integer(workers));
    json_object_set_new(o, "slots_per_worker", json_integer(cfg->slots));
    json_object_set_new(o, "prefetch", json_integer(cfg->prefetch));
    json_object_set_new(o, "warmup", json_integer(warm));
    json_object_set_new(o, "loadavg_before", load);
    char latname[64];
    snprintf(latname, sizeof latname, "%s-w%d-run%d", name, workers, run);
    add_batch_metrics(o, cfg, &t, &b, &v, latname);
    add_cpu(o, &t, c0, c1, json_real_value(json_object_get(o, "wall_s")));
    if (kind != KIND_SCALING && t.stack) {
        sleep_ms(cfg->idle_ms);
        add_rss(o, &t);
    }
    if (kind == KIND_FILL && t.stack) {
        /* Whether the gateway's event feed had gaps (it fell behind the broker) or its
         * view started over, which explains a memory number out of line. */
        json_t *gw = stack_stop_gateway(t.stack);
        workload_progress(cfg, "%s run %d: gateway event_gaps=%lld view_entries=%lld view_clears=%lld",
                 name, run, json_integer_value(json_object_get(gw, "event_gaps")),
                 json_integer_value(json_object_get(gw, "view_entries")),
                 json_integer_value(json_object_get(gw, "view_clears")));
        json_object_set_new(o, "gateway_stats", gw);
    }
    workload_progress(cfg, "%s run %d: %.0f executions/s, p50 %.1f ms, p99 %.1f ms", name, run,
             json_real_value(json_object_get(o, "exec_per_s")),
             json_real_value(json_object_get(o, "p50_ms")),
             json_real_value(json_object_get(o, "p99_ms")));
    if (with_w1)
        json_array_append_new(results, o);
    else
        json_decref(o);
    if (with_w3 && run_w3(cfg, &t, wf, &b, run, results, err, sizeof err) != 0)
        goto done;
    rc = 0;
done:
    if (rc != 0)
        fprintf(stderr, "synload: %s run %d FAILED: %s\n", name, run, err);
    batch_clear(&warmb);
    batch_clear(&b);
    verify_result_clear(&warmv);
    verify_result_clear(&v);
    target_close(&t);
    return rc;
}

int workload_w1(const workload_config_t *cfg, bool with_w1, bool with_w3, int run,
                json_t *results)
{
    return w1_family(cfg, KIND_W1, (int)cfg->workers, with_w1, with_w3, run, results);
}

int workload_scaling(const workload_config_t *cfg, int workers, int run, json_t *results)
{
    return w1_family(cfg, KIND_SCALING, workers, true, false, run, results);
}

int workload_fill(const workload_config_t *cfg, int run, json_t *results)
{
    return w1_family(cfg, KIND_FILL, (int)cfg->workers, true, false, run, results);
}

/* ---------------------------------------------------------------- W2 */

int workload_w2(const workload_config_t *cfg, int slots, int run, json_t *results)
{
    char err[1024] = "";
    int n = (int)(cfg->executions > 0 ? cfg->executions : W2_EXECUTIONS);
    int warm = (int)(cfg->warmup >= 0 ? cfg->warmup : W2_WARMUP);
    int workers = (int)cfg->w2_workers;
    int phase_ms = (int)cfg->phase_ms;
    if (slots % workers) {
        fprintf(stderr, "synload: w2: %d slots do not split over %d workers\n", slots, workers);
        return -1;
    }
    target_t t;
    if (cfg->gateway)
        workload_progress(cfg, "w2 run %d: %d slots assumed at %s, phases of %d ms", run, slots,
                 cfg->gateway, phase_ms);
    else
        workload_progress(cfg, "w2 run %d: %d slots (%d worker%s), phases of %d ms", run, slots, workers,
                 workers == 1 ? "" : "s", phase_ms);
    if (target_open(cfg, workers, slots / workers, 0, &t, err, sizeof err) != 0) {
        fprintf(stderr, "synload: w2 run %d FAILED: %s\n", run, err);
        return -1;
    }
    int rc = -1;
    batch_t warmb = {0}, b = {0};
    verify_result_t warmv = {0}, v = {0};
    char wf[64], prefix[64];
    snprintf(wf, sizeof wf, "bench-w2-%dms", phase_ms);
    if (workload_create_workflow(t.url, wf, CHAIN_PHASES, phase_ms, 0, err, sizeof err) != 0)
        goto done;
    if (warm > 0) {
        snprintf(prefix, sizeof prefix, "warm%d", run);
        if (checked_batch(cfg, &t, wf, prefix, warm, (int)cfg->inflight, phase_ms, "w2 warm-up",
                          &warmb, &warmv, err, sizeof err) != 0)
            goto done;
        sleep_ms(1000);
    }
    json_t *load = workload_loadavg_json();
    snprintf(prefix, sizeof prefix, "w2-s%d-r%d", slots, run);
    cpu_snapshot_t c0 = cpu_snapshot(&t);
    int brc = checked_batch(cfg, &t, wf, prefix, n, (int)cfg->inflight, phase_ms, "w2", &b, &v,
                            err, sizeof err);
    cpu_snapshot_t c1 = cpu_snapshot(&t);
    if (brc != 0) {
        json_decref(load);
        goto done;
    }
    json_t *o = json_object();
    json_object_set_new(o, "workload", json_string("w2"));
    json_object_set_new(o, "run", json_integer(run));
    json_object_set_new(o, "slots", json_integer(slots));
    json_object_set_new(o, "prefetch", json_integer(cfg->prefetch));
    json_object_set_new(o, "workers", json_integer(workers));
    json_object_set_new(o, "phase_ms", json_integer(phase_ms));
    json_object_set_new(o, "inflight", json_integer(cfg->inflight));
    json_object_set_new(o, "loadavg_before", load);
    char latname[64];
    snprintf(latname, sizeof latname, "w2-s%d-run%d", slots, run);
    add_batch_metrics(o, cfg, &t, &b, &v, latname);
    double wall = json_real_value(json_object_get(o, "wall_s"));
    add_cpu(o, &t, c0, c1, wall);
    double ideal = slots / (CHAIN_PHASES * phase_ms / 1000.0);
    double rate = json_real_value(json_object_get(o, "exec_per_s"));
    /* Equal phases on `slots` slots need at least ceil(phases/slots) rounds, so
     * some targets are out of reach for a given batch size. */
    double rounds = ceil((double)CHAIN_PHASES * n / slots);
    if (rounds < CHAIN_PHASES)
        rounds = CHAIN_PHASES;
    json_object_set_new(o, "ideal_exec_per_s", json_real(ideal));
    json_object_set_new(o, "pct_of_ideal", json_real(100 * rate / ideal));
    double reachable = 100 * ((double)CHAIN_PHASES * n / slots) / rounds;
    json_object_set_new(o, "max_pct_possible", json_real(reachable));
    json_object_set_new(o, "pct_of_achievable", json_real(100 * (100 * rate / ideal) / reachable));
    json_array_append_new(results, o);
    workload_progress(cfg, "w2 run %d: %d slots: %.1f executions/s = %.1f%% of ideal %.1f", run, slots, rate,
             100 * rate / ideal, ideal);
    rc = 0;
done:
    if (rc != 0)
        fprintf(stderr, "synload: w2 run %d FAILED: %s\n", run, err);
    batch_clear(&warmb);
    batch_clear(&b);
    verify_result_clear(&warmv);
    verify_result_clear(&v);
    target_close(&t);
    return rc;
}

/* ---------------------------------------------------------------- wrk */

typedef struct {
    double rps, p50_ms, p99_ms;
    long non2xx, socket_errors;
} wrk_result_t;

static double wrk_time_ms(const char *text)
{
    char *end;
    double v = strtod(text, &end);
    if (!strncmp(end, "us", 2))
        return v / 1000;
    if (!strncmp(end, "ms", 2))
        return v;
    if (*end == 's')
        return v * 1000;
    if (*end == 'm')
        return v * 60000;
    return v;
}

static int run_wrk(const workload_config_t *cfg, const char *url, wrk_result_t *r, char *err,
                   size_t errlen)
{
    memset(r, 0, sizeof *r);
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "wrk -t2 -c%ld -d%lds --latency '%s' 2>&1", cfg->wrk_connections,
             cfg->wrk_seconds, url);
    FILE *p = popen(cmd, "r");
    if (!p) {
        snprintf(err, errlen, "cannot run wrk: %s", strerror(errno));
        return -1;
    }
    char line[512];
    bool got = false;
    while (fgets(line, sizeof line, p)) {
        char *s = line + strspn(line, " \t");
        long a, b, c, d;
        if (!strncmp(s, "Requests/sec:", 13)) {
            r->rps = strtod(s + 13, NULL);
            got = true;
        } else if (!strncmp(s, "50%", 3)) {
            r->p50_ms = wrk_time_ms(s + 3 + strspn(s + 3, " \t"));
        } else if (!strncmp(s, "99%", 3)) {
            r->p99_ms = wrk_time_ms(s + 3 + strspn(s + 3, " \t"));
        } else if (!strncmp(s, "Non-2xx or 3xx responses:", 25)) {
            r->non2xx = strtol(s + 25, NULL, 10);
        } else if (sscanf(s, "Socket errors: connect %ld, read %ld, write %ld, timeout %ld", &a,
                          &b, &c, &d) == 4) {
            r->socket_errors = a + b + c + d;
        }
    }
    int status = pclose(p);
    if (!got || status != 0) {
        snprintf(err, errlen, "wrk failed or is not installed (apt-get install wrk): %.900s", cmd);
        return -1;
    }
    return 0;
}

static void hello_path(void *arg, int k, char *buf, size_t size)
{
    (void)k;
    snprintf(buf, size, "%s", (const char *)arg);
}

static int hello_check(void *arg, int k, int status, const char *body, char *why, size_t whysize)
{
    (void)arg;
    (void)k;
    if (status != 200 || !strstr(body, "\"status\":\"completed\"")) {
        snprintf(why, whysize, "answered %d: %.200s", status, body);
        return -1;
    }
    return 0;
}

static pid_t start_hello(const char *address)
{
    char self[PATH_MAX];
    ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
    if (len <= 0)
        return -1;
    self[len] = '\0';
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(1);
        execl(self, "synload", "--hello", address, (char *)NULL);
        _exit(127);
    }
    return pid;
}

int workload_wrk(const workload_config_t *cfg, int run, json_t *results)
{
    char err[1024] = "";
    target_t t;
    workload_progress(cfg, "wrk run %d: %s", run, cfg->gateway ? cfg->gateway : "starting a stack");
    if (target_open(cfg, (int)cfg->workers, (int)cfg->slots, 0, &t, err, sizeof err) != 0) {
        fprintf(stderr, "synload: wrk run %d FAILED: %s\n", run, err);
        return -1;
    }
    int rc = -1;
    pid_t hello = -1;
    batch_t b = {0};
    verify_result_t v = {0};
    const char *wf = "bench-w1";
    if (workload_create_workflow(t.url, wf, CHAIN_PHASES, 0, 0, err, sizeof err) != 0 ||
        checked_batch(cfg, &t, wf, "wrk", 200, (int)cfg->inflight, 0, "wrk setup", &b, &v, err,
                      sizeof err) != 0)
        goto done;
    char hello_addr[64], hello_url[96], status_path[256], status_url[512];
    snprintf(hello_addr, sizeof hello_addr, "127.0.0.1:%d", stack_free_port());
    snprintf(hello_url, sizeof hello_url, "http://%s", hello_addr);
    snprintf(status_path, sizeof status_path, "/workflows/%s/executions/%s", wf, b.ids[0]);
    snprintf(status_url, sizeof status_url, "%s%s", t.url, status_path);
    hello = start_hello(hello_addr);
    lookup_result_t lr;
    int64_t deadline = syn_mono_ms() + 5000;
    while (lookup_run(hello_url, false, 1, hello_path, hello_check, "/", &lr, err, sizeof err) != 0)
        if (syn_mono_ms() > deadline) {
            snprintf(err, sizeof err, "the bare libmicrohttpd server did not answer on %s",
                     hello_addr);
            goto done;
        } else {
            sleep_ms(20);
        }
    json_t *o = json_object();
    json_object_set_new(o, "workload", json_string("wrk"));
    json_object_set_new(o, "run", json_integer(run));
    json_object_set_new(o, "connections", json_integer(cfg->wrk_connections));
    json_object_set_new(o, "seconds", json_integer(cfg->wrk_seconds));
    json_object_set_new(o, "loadavg_before", workload_loadavg_json());
    /* One connection, one request at a time: both clients on both servers. */
    struct {
        const char *key;
        const char *url;
        const char *path;
        bool curl;
    } seq[] = {
        {"seq_hello_rps", hello_url, "/", false},
        {"seq_hello_curl_rps", hello_url, "/", true},
        {"seq_status_rps", t.url, status_path, false},
        {"seq_status_curl_rps", t.url, status_path, true},
    };
    for (size_t k = 0; k < sizeof seq / sizeof *seq; k++) {
        if (lookup_run(seq[k].url, seq[k].curl, 10000, hello_path, hello_check,
                       (void *)seq[k].path, &lr, err, sizeof err) != 0 ||
            lr.bad) {
            if (lr.bad)
                snprintf(err, sizeof err, "WRONG RESULT: %s", lr.first_problem);
            json_decref(o);
            goto done;
        }
        json_object_set_new(o, seq[k].key, json_real(lr.per_s));
    }
    wrk_result_t ws, wh;
    workload_progress(cfg, "wrk run %d: %ld connections, %ld s on the status endpoint", run,
             cfg->wrk_connections, cfg->wrk_seconds);
    cpu_snapshot_t c0 = cpu_snapshot(&t);
    if (run_wrk(cfg, status_url, &ws, err, sizeof err) != 0) {
        json_decref(o);
        goto done;
    }
    cpu_snapshot_t c1 = cpu_snapshot(&t);
    workload_progress(cfg, "wrk run %d: same on the bare libmicrohttpd handler", run);
    if (run_wrk(cfg, hello_url, &wh, err, sizeof err) != 0) {
        json_decref(o);
        goto done;
    }
    if (ws.non2xx || ws.socket_errors || wh.non2xx || wh.socket_errors) {
        snprintf(err, sizeof err,
                 "WRONG RESULT: wrk saw errors (status: %ld non-2xx, %ld socket errors; hello: "
                 "%ld, %ld)",
                 ws.non2xx, ws.socket_errors, wh.non2xx, wh.socket_errors);
        json_decref(o);
        goto done;
    }
    json_object_set_new(o, "wrk_status_rps", json_real(ws.rps));
    json_object_set_new(o, "wrk_status_p50_ms", json_real(ws.p50_ms));
    json_object_set_new(o, "wrk_status_p99_ms", json_real(ws.p99_ms));
    json_object_set_new(o, "wrk_hello_rps", json_real(wh.rps));
    json_object_set_new(o, "wrk_hello_p50_ms", json_real(wh.p50_ms));
    json_object_set_new(o, "wrk_hello_p99_ms", json_real(wh.p99_ms));
    json_object_set_new(o, "pct_of_hello", json_real(wh.rps > 0 ? 100 * ws.rps / wh.rps : 0));
    add_cpu(o, &t, c0, c1, (double)cfg->wrk_seconds);
    json_array_append_new(results, o);
    workload_progress(cfg, "wrk run %d: status %.0f req/s, bare handler %.0f req/s (%.0f%%)", run, ws.rps,
             wh.rps, wh.rps > 0 ? 100 * ws.rps / wh.rps : 0);
    rc = 0;
done:
    if (rc != 0)
        fprintf(stderr, "synload: wrk run %d FAILED: %s\n", run, err);
    if (hello > 0) {
        kill(hello, SIGTERM);
        waitpid(hello, NULL, 0);
    }
    batch_clear(&b);
    verify_result_clear(&v);
    target_close(&t);
    return rc;
}

int workload_hello_main(const char *address, volatile sig_atomic_t *stop)
{
    return hello_serve(address, stop) == 0 ? 0 : 1;
}

/* ---------------------------------------------------------------- dead worker */

/* The first column of the first row of sql with ?1 = arg, into buf; 1 when a
 * row came, 0 when none, -1 on error. */
static int db_row(sqlite3 *db, const char *sql, const char *arg, char *buf, size_t size,
                  int64_t *second)
{
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK)
        return -1;
    sqlite3_bind_text(s, 1, arg, -1, SQLITE_STATIC);
    int step = sqlite3_step(s), rc = step == SQLITE_ROW ? 1 : step == SQLITE_DONE ? 0 : -1;
    if (rc == 1) {
        const char *text = (const char *)sqlite3_column_text(s, 0);
        snprintf(buf, size, "%s", text ? text : "");
        if (second)
            *second = sqlite3_column_int64(s, 1);
    }
    sqlite3_finalize(s);
    return rc;
}

int workload_deadworker(const workload_config_t *cfg, int run, json_t *results)
{
    char err[1024] = "";
    if (cfg->gateway) {
        fprintf(stderr, "synload: deadworker needs its own stack (no --gateway)\n");
        return -1;
    }
    target_t t;
    workload_progress(cfg, "deadworker run %d: starting a stack (2 workers x 1 slot)", run);
    if (target_open(cfg, 2, 1, 0, &t, err, sizeof err) != 0) {
        fprintf(stderr, "synload: deadworker run %d FAILED: %s\n", run, err);
        return -1;
    }
    int rc = -1;
    sqlite3 *db = NULL;
    hclient_t *hc = NULL;
    char host[64], id[BATCH_ID_SIZE] = "", worker[64] = "";
    int port;
    const char *wf = "bench-dead";
    /* One phase long enough to be killed in the middle of. */
    if (workload_create_workflow(t.url, wf, 1, 600000, 3, err, sizeof err) != 0)
        goto done;
    hclient_parse_url(t.url, host, sizeof host, &port);
    hc = hclient_new(host, port);
    char path[128];
    snprintf(path, sizeof path, "/workflows/%s/execute", wf);
    if (!hc || hclient_request(hc, "POST", path, "{\"task\":\"dead\"}", 10000) != 200 ||
        batch_json_string(hclient_body(hc, NULL), "execution_id", id, sizeof id) != 0) {
        snprintf(err, sizeof err, "could not start the execution");
        goto done;
    }
    if (sqlite3_open_v2(t.db, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        snprintf(err, sizeof err, "open %.900s failed", t.db);
        goto done;
    }
    sqlite3_busy_timeout(db, 5000);
    int64_t deadline = syn_mono_ms() + 10000;
    while (db_row(db,
                  "SELECT worker FROM attempts"
                  " WHERE exec_num = (SELECT num FROM executions WHERE id = ?1) AND attempt = 1"
                  " AND status = 'running'",
                  id, worker, sizeof worker, NULL) != 1) {
        if (syn_mono_ms() > deadline) {
            snprintf(err, sizeof err, "the phase of %s never started", id);
            goto done;
        }
        sleep_ms(5);
    }
    int victim = -1;
    for (int i = 0; i < stack_worker_count(t.stack); i++)
        if (!strcmp(stack_worker_name(t.stack, i), worker))
            victim = i;
    if (victim < 0) {
        snprintf(err, sizeof err, "the phase runs on unknown worker '%s'", worker);
        goto done;
    }
    /* A moment into the phase, so the kill lands mid-phase and mid-heartbeat. */
    sleep_ms(200 + (300 * run) % 1000);
    int64_t killed_us = syn_now_us();
    stack_kill_worker(t.stack, victim);
    char again[64] = "";
    int64_t started_us = 0;
    deadline = syn_mono_ms() + 60000;
    while (db_row(db,
                  "SELECT worker, started_at FROM attempts"
                  " WHERE exec_num = (SELECT num FROM executions WHERE id = ?1) AND attempt = 2",
                  id, again, sizeof again, &started_us) != 1) {
        if (syn_mono_ms() > deadline) {
            snprintf(err, sizeof err, "the phase of %s was not reassigned within 60 s", id);
            goto done;
        }
        sleep_ms(5);
    }
    int64_t seen_us = syn_now_us();
    if (!strcmp(again, worker)) {
        snprintf(err, sizeof err, "WRONG RESULT: attempt 2 went to the dead worker %s", worker);
        goto done;
    }
    json_t *o = json_object();
    json_object_set_new(o, "workload", json_string("deadworker"));
    json_object_set_new(o, "run", json_integer(run));
    json_object_set_new(o, "killed_worker", json_string(worker));
    json_object_set_new(o, "reassigned_to", json_string(again));
    json_object_set_new(o, "detect_ms", json_real((double)(started_us - killed_us) / 1000.0));
    json_object_set_new(o, "seen_ms", json_real((double)(seen_us - killed_us) / 1000.0));
    json_array_append_new(results, o);
    workload_progress(cfg, "deadworker run %d: phase running again on %s %.0f ms after kill -9 of %s", run,
             again, (double)(started_us - killed_us) / 1000.0, worker);
    rc = 0;
done:
    if (rc != 0)
        fprintf(stderr, "synload: deadworker run %d FAILED: %s\n", run, err);
    sqlite3_close(db);
    hclient_destroy(&hc);
    target_close(&t);
    return rc;
}
