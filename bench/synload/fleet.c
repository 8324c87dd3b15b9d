/* fleet: the `fleet` workload of issue 24 — N simulated workers (fleet_sim.c)
 * against one real broker and gateway, measured the way an operator of a large
 * fleet would ask: how fast a ready phase reaches a worker with the fleet ~80 %
 * busy (the broker's own syn_dispatch_seconds histogram, read from /metrics
 * before and after the window), what the fleet costs the broker while idle
 * (CPU from /proc, heartbeats and liveness only), memory per connected worker
 * (broker and gateway, RSS beside PSS and USS), and how long a broker restart
 * takes to re-register every worker and re-adopt their running attempts.
 * Every execution is checked (status and outputs from the broker's SQLite), as
 * in the other workloads. Its own file: it is the only workload that plays the
 * workers itself rather than starting syn-worker processes. */
#include "bench/synload/batch.h"
#include "bench/synload/fleet_sim.h"
#include "bench/synload/hclient.h"
#include "bench/synload/localproc.h"
#include "bench/synload/stack.h"
#include "bench/synload/verify.h"
#include "bench/synload/workloads.h"

#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"

#define HEALTH_TIMEOUT_MS 120000
/* The restart's phases: longer than any restart; finished on demand. */
#define RESTART_PHASE_MS 3600000
#define HIST_MAX 32

/* --- the broker's figures, from the gateway's GET /metrics ------------------ */

typedef struct {
    double bounds[HIST_MAX];
    double cumulative[HIST_MAX + 1]; /* per bound, then +Inf */
    size_t n;                        /* bounds */
} hist_t;

typedef struct {
    hist_t dispatch; /* syn_dispatch_seconds */
    hist_t commit;   /* syn_broker_commit_seconds: how much of it is the commit */
    double count;
    double workers_connected, slots_busy, slots_free, attempts_lost, ready_depth;
    bool ok;
} scrape_t;

/* The value of an unlabelled sample `name` in the exposition text, or -1. */
static double sample(const char *text, const char *name)
{
    size_t len = strlen(name);
    for (const char *p = text; (p = strstr(p, name)); p += len)
        if ((p == text || p[-1] == '\n') && p[len] == ' ')
            return strtod(p + len + 1, NULL);
    return -1;
}

/* The buckets of histogram `name` in the exposition text. */
static hist_t buckets(const char *text, const char *name)
{
    hist_t h;
    memset(&h, 0, sizeof h);
    char bucket[128];
    snprintf(bucket, sizeof bucket, "%s_bucket{le=\"", name);
    for (const char *p = text; (p = strstr(p, bucket)) && h.n <= HIST_MAX; p++) {
        const char *le = p + strlen(bucket);
        char *end;
        double bound = strncmp(le, "+Inf", 4) == 0 ? INFINITY : strtod(le, &end);
        const char *value = strstr(le, "} ");
        if (!value)
            break;
        if (isinf(bound)) {
            h.cumulative[h.n] = strtod(value + 2, NULL);
            break;
        }
        if (h.n == HIST_MAX)
            break;
        h.bounds[h.n] = bound;
        h.cumulative[h.n++] = strtod(value + 2, NULL);
    }
    return h;
}

static scrape_t scrape(hclient_t *hc)
{
    scrape_t s;
    memset(&s, 0, sizeof s);
    if (hclient_request(hc, "GET", "/metrics", NULL, 10000) != 200)
        return s;
    const char *text = hclient_body(hc, NULL);
    s.dispatch = buckets(text, "syn_dispatch_seconds");
    s.commit = buckets(text, "syn_broker_commit_seconds");
    s.count = sample(text, "syn_dispatch_seconds_count");
    s.workers_connected = sample(text, "syn_workers_connected");
    s.slots_busy = sample(text, "syn_worker_slots_busy");
    s.slots_free = sample(text, "syn_worker_slots_free");
    s.attempts_lost = sample(text, "syn_attempts_lost_total");
    s.ready_depth = sample(text, "syn_ready_queue_depth");
    s.ok = s.dispatch.n > 0 && s.workers_connected >= 0;
    return s;
}

/* The q-quantile (ms) of what the histogram counted between a and b, linear
 * within a bucket as Prometheus' histogram_quantile does; -1 when nothing. */
static double quantile_ms(const hist_t *a, const hist_t *b, double q)
{
    double total = b->cumulative[b->n] - a->cumulative[a->n];
    if (total <= 0 || a->n != b->n)
        return -1;
    double rank = q * total, below = 0, lower = 0;
    for (size_t i = 0; i < b->n; i++) {
        double cum = b->cumulative[i] - a->cumulative[i];
        if (cum >= rank) {
            double in = cum - below;
            return 1000 * (lower + (b->bounds[i] - lower) * (in > 0 ? (rank - below) / in : 1));
        }
        below = cum;
        lower = b->bounds[i];
    }
    return 1000 * b->bounds[b->n - 1]; /* beyond the last bound: at least that */
}

/* --- submitting at a pace, and waiting for the end --------------------------- */

/* Submits go over SUBMITTERS keep-alive connections, each a thread of its own
 * pacing its share: one blocking connection does not reach the rate a
 * thousand workers need on a loaded machine. */
#define SUBMITTERS 4

typedef struct {
    char host[64];
    int port;
    hclient_t *probe;
    const char *workflow;
    batch_t batch;
    int submitted;
} submitter_t;

typedef struct {
    submitter_t *s;
    const char *prefix;
    int first, count, lane;
    double rate;
    int64_t start_us;
    char err[512];
    int rc;
} lane_t;

static void *lane_run(void *arg)
{
    lane_t *l = arg;
    submitter_t *s = l->s;
    char path[160], body[160];
    snprintf(path, sizeof path, "/workflows/%s/execute", s->workflow);
    hclient_t *hc = hclient_new(s->host, s->port);
    l->rc = hc ? 0 : -1;
    for (int k = l->lane; l->rc == 0 && k < l->count; k += SUBMITTERS) {
        int i = l->first + k;
        int64_t due = l->start_us + (l->rate > 0 ? (int64_t)(k * 1e6 / l->rate) : 0);
        int64_t now = syn_mono_us();
        if (due > now)
            localproc_sleep_ms((int)((due - now) / 1000));
        snprintf(s->batch.tasks[i], sizeof s->batch.tasks[i], "%s-%d", l->prefix, i);
        snprintf(body, sizeof body, "{\"task\":\"%s\"}", s->batch.tasks[i]);
        s->batch.submit_us[i] = syn_now_us();
        int code = hclient_request(hc, "POST", path, body, 30000);
        if (code != 200 || batch_json_string(hclient_body(hc, NULL), "execution_id",
                                             s->batch.ids[i], sizeof s->batch.ids[i]) != 0) {
            snprintf(l->err, sizeof l->err, "POST %s answered %d: %.300s", path, code,
                     code > 0 ? hclient_body(hc, NULL) : hclient_error(hc));
            l->rc = -1;
        }
        s->batch.accepted_us[i] = syn_now_us();
    }
    hclient_destroy(&hc);
    return NULL;
}

/* Submits count executions at rate per second (0: as fast as the connections
 * go); meanwhile, when samples is not NULL, the broker's gauges every second. */
static int submit_paced(submitter_t *s, const char *prefix, int count, double rate,
                        scrape_t *samples, int *nsamples, int max_samples, char *err,
                        size_t errlen)
{
    if (s->submitted + count > s->batch.n) {
        snprintf(err, errlen, "more executions than planned");
        return -1;
    }
    lane_t lanes[SUBMITTERS];
    pthread_t threads[SUBMITTERS];
    int64_t start = syn_mono_us();
    int started = 0;
    for (int t = 0; t < SUBMITTERS; t++) {
        lanes[t] = (lane_t){.s = s, .prefix = prefix, .first = s->submitted, .count = count,
                            .lane = t, .rate = rate, .start_us = start};
        if (pthread_create(&threads[t], NULL, lane_run, &lanes[t]) != 0)
            break;
        started++;
    }
    int64_t end = start + (rate > 0 ? (int64_t)(count * 1e6 / rate) : 0);
    for (int64_t next = start + 1000000; samples && next < end; next += 1000000) {
        int64_t now = syn_mono_us();
        if (next > now)
            localproc_sleep_ms((int)((next - now) / 1000));
        if (*nsamples < max_samples)
            samples[(*nsamples)++] = scrape(s->probe);
    }
    int rc = started == SUBMITTERS ? 0 : -1;
    if (rc != 0)
        snprintf(err, errlen, "cannot start the submitting threads");
    for (int t = 0; t < started; t++) {
        pthread_join(threads[t], NULL);
        if (lanes[t].rc != 0 && rc == 0) {
            snprintf(err, errlen, "%s", lanes[t].err);
            rc = -1;
        }
    }
    s->submitted += count;
    return rc;
}

/* Until the active list is empty (every execution submitted so far finished). */
static int wait_idle(submitter_t *s, int timeout_s, volatile sig_atomic_t *stop, char *err,
                     size_t errlen)
{
    int64_t deadline = syn_mono_ms() + (int64_t)timeout_s * 1000;
    for (;;) {
        int code =
            hclient_request(s->probe, "GET", "/workflows/executions/active?limit=1", NULL, 10000);
        if (code == 200 && !strcmp(hclient_body(s->probe, NULL), "[]"))
            break;
        if (syn_mono_ms() > deadline || (stop && *stop)) {
            snprintf(err, errlen, "executions still active after %d s", timeout_s);
            return -1;
        }
        localproc_sleep_ms(50);
    }
    for (int i = 0; i < s->submitted; i++)
        s->batch.final_status[i] = '?';
    return 0;
}

/* Executions from..submitted-1 completed with the mock agent's exact outputs. */
static int check_from(const submitter_t *s, int from, const char *db, int sleep_ms, char *err,
                      size_t errlen)
{
    batch_t view = s->batch; /* the same arrays, from `from` on */
    view.n = s->submitted - from;
    view.ids += from;
    view.tasks += from;
    view.submit_us += from;
    view.accepted_us += from;
    view.seen_us += from;
    view.final_status += from;
    verify_result_t vr = {0};
    int rc = verify_batch_db(db, &view, 1, sleep_ms, &vr, err, errlen);
    if (rc == 0 && vr.bad) {
        snprintf(err, errlen, "WRONG RESULT: %d of %d executions: %s", vr.bad, vr.checked,
                 vr.first_problem);
        rc = -1;
    }
    verify_result_clear(&vr);
    return rc;
}

/* --- memory ------------------------------------------------------------------ */

typedef struct {
    long rss, pss, uss; /* KiB */
} mem_t;

static mem_t mem_of(pid_t pid)
{
    mem_t m = {proc_rss_kib(pid), -1, -1};
    proc_pss_uss_kib(pid, &m.pss, &m.uss);
    return m;
}

/* <what>_per_worker_kib for rss, pss and uss: (with the fleet − without) / N. */
static void add_per_worker(json_t *o, const char *who, mem_t before, mem_t after, int n)
{
    const char *kinds[] = {"rss", "pss", "uss"};
    long b[] = {before.rss, before.pss, before.uss}, a[] = {after.rss, after.pss, after.uss};
    for (int k = 0; k < 3; k++) {
        char key[64];
        snprintf(key, sizeof key, "%s_%s_per_worker_kib", kinds[k], who);
        if (a[k] >= 0 && b[k] >= 0)
            json_object_set_new(o, key, json_real((double)(a[k] - b[k]) / n));
    }
}

/* "--curve-secret F --broker-key F" among the worker flags: the fleet's keys. */
static const char *word_after(const char *words, const char *flag, char *buf, size_t size)
{
    const char *p = words ? strstr(words, flag) : NULL;
    if (!p)
        return NULL;
    p += strlen(flag);
    while (*p == ' ' || *p == '=')
        p++;
    size_t len = strcspn(p, " ");
    if (!len || len >= size)
        return NULL;
    memcpy(buf, p, len);
    buf[len] = '\0';
    return buf;
}

/* Whether "tcp://HOST:PORT" accepts a connection now (the broker bound it). */
static bool accepts(const char *endpoint)
{
    char host[64];
    int port = 0;
    if (sscanf(endpoint, "tcp://%63[^:]:%d", host, &port) != 2)
        return false;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0 || inet_pton(AF_INET, host, &a.sin_addr) != 1) {
        if (fd >= 0)
            close(fd);
        return false;
    }
    bool ok = connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
    close(fd);
    return ok;
}

/* --- the run ----------------------------------------------------------------- */

int workload_fleet(const workload_config_t *cfg, int workers, int run, json_t *results)
{
    char err[1024] = "";
    if (cfg->gateway) {
        fprintf(stderr, "synload: fleet needs its own stack (no --gateway)\n");
        return -1;
    }
    int slots = (int)cfg->fleet_slots;
    int total = workers * slots;
    /* The rate of phases that keeps 80 % of the slots busy. */
    int phase_ms = (int)cfg->fleet_phase_ms;
    double rate = 0.8 * total / (phase_ms / 1000.0);
    workload_progress(cfg, "fleet: run %d: %d workers x %d slots, phases of %d ms at %.1f/s",
                      run, workers, slots,
        phase_ms, rate);
    synstack_options_t opts = {
        .bin_dir = cfg->bin_dir,
        .workers = 0,
        .slots = slots,
        .log_level = cfg->log_level,
        .broker_prefix = cfg->broker_prefix,
        .broker_args = cfg->broker_args,
        .gateway_prefix = cfg->gateway_prefix,
        .gateway_args = cfg->gateway_args,
        .keep = cfg->keep,
    };
    synstack_t *stack = stack_start(&opts, HEALTH_TIMEOUT_MS);
    if (!stack) {
        fprintf(stderr, "synload: fleet run %d FAILED: the stack did not start\n", run);
        return -1;
    }
    int rc = -1;
    fleet_sim_t *fleet = NULL;
    submitter_t s = {0};
    json_t *o = json_object();
    hclient_parse_url(stack_url(stack), s.host, sizeof s.host, &s.port);
    s.probe = hclient_new(s.host, s.port);
    json_object_set_new(o, "workload", json_string("fleet"));
    json_object_set_new(o, "run", json_integer(run));
    json_object_set_new(o, "workers", json_integer(workers));
    json_object_set_new(o, "slots", json_integer(slots));
    json_object_set_new(o, "loadavg_before", workload_loadavg_json());

    /* Memory without workers, then with them. */
    localproc_sleep_ms(500);
    pid_t broker = stack_broker_pid(stack), gateway = stack_gateway_pid(stack);
    mem_t broker0 = mem_of(broker), gateway0 = mem_of(gateway);
    char secret[512], key[512];
    fleet_sim_options_t fo = {
        .endpoint = stack_workers_endpoint(stack),
        .workers = workers,
        .slots = slots,
        .heartbeat_ms = 1000,
        .delay_ms = phase_ms,
        .name_prefix = "fleet",
        .curve_secret = word_after(cfg->worker_args, "--curve-secret", secret, sizeof secret),
        .broker_key = word_after(cfg->worker_args, "--broker-key", key, sizeof key),
    };
    int64_t t0 = syn_mono_us();
    fleet = fleet_sim_start(&fo, err, sizeof err);
    if (!fleet || stack_wait_health(stack_url(stack), workers, HEALTH_TIMEOUT_MS) != 0) {
        if (!err[0])
            snprintf(err, sizeof err, "the broker did not report %d workers", workers);
        goto done;
    }
    json_object_set_new(o, "register_ms", json_real((double)(syn_mono_us() - t0) / 1e3));

    /* Idle: heartbeats both ways and the liveness checks, nothing else. */
    localproc_sleep_ms(2000);
    double idle_s = (double)cfg->fleet_idle_s;
    pid_t profiler = workload_profiler_start(cfg, broker);
    double b0 = proc_cpu_s(broker), g0 = proc_cpu_s(gateway);
    int64_t w0 = syn_mono_us();
    localproc_sleep_ms((int)(idle_s * 1000));
    double wall = (double)(syn_mono_us() - w0) / 1e6;
    workload_profiler_stop(profiler);
    json_object_set_new(o, "idle_broker_cpu_pct",
                        json_real(100 * (proc_cpu_s(broker) - b0) / wall));
    json_object_set_new(o, "idle_gateway_cpu_pct",
                        json_real(100 * (proc_cpu_s(gateway) - g0) / wall));
    mem_t broker1 = mem_of(broker), gateway1 = mem_of(gateway);
    workload_add_memory(o, "broker", broker);
    workload_add_memory(o, "gateway", gateway);
    add_per_worker(o, "broker", broker0, broker1, workers);
    add_per_worker(o, "gateway", gateway0, gateway1, workers);
    workload_progress(cfg, "fleet: idle: broker %.1f %% of a core; %.1f KiB RSS per worker",
        json_real_value(json_object_get(o, "idle_broker_cpu_pct")),
        (double)(broker1.rss - broker0.rss) / workers);

    /* Busy: phases submitted at the rate for a warm-up of one phase length and
     * two seconds, then the measured window. */
    char wf[64];
    snprintf(wf, sizeof wf, "fleet-%dms", phase_ms);
    s.workflow = wf;
    int warm = (int)lround(rate * (phase_ms / 1000.0 + 2));
    int measured = (int)lround(rate * (double)cfg->fleet_seconds);
    int restart_n = cfg->fleet_restart ? (int)lround(0.8 * total) : 0;
    if (batch_alloc(&s.batch, warm + measured + restart_n) != 0 ||
        workload_create_workflow(stack_url(stack), wf, 1, phase_ms, 0, err, sizeof err) != 0)
        goto done;
    char prefix[64];
    snprintf(prefix, sizeof prefix, "fleet%d-r%d", workers, run);
    scrape_t samples[600];
    int nsamples = 0;
    if (submit_paced(&s, prefix, warm, rate, NULL, NULL, 0, err, sizeof err) != 0)
        goto done;
    scrape_t h0 = scrape(s.probe);
    double bb0 = proc_cpu_s(broker);
    w0 = syn_mono_us();
    if (submit_paced(&s, prefix, measured, rate, samples, &nsamples,
                     (int)(sizeof samples / sizeof *samples), err, sizeof err) != 0)
        goto done;
    scrape_t h1 = scrape(s.probe);
    wall = (double)(syn_mono_us() - w0) / 1e6;
    json_object_set_new(o, "busy_broker_cpu_pct",
                        json_real(100 * (proc_cpu_s(broker) - bb0) / wall));
    if (!h0.ok || !h1.ok) {
        snprintf(err, sizeof err, "the gateway's /metrics has no syn_dispatch_seconds");
        goto done;
    }
    double busy = 0, depth = 0;
    for (int i = 0; i < nsamples; i++) {
        busy += samples[i].slots_busy / total;
        depth += samples[i].ready_depth;
    }
    json_object_set_new(o, "ready_depth_mean", json_real(nsamples ? depth / nsamples : -1));
    json_object_set_new(o, "phase_ms", json_integer(phase_ms));
    json_object_set_new(o, "rate_per_s", json_real(rate));
    json_object_set_new(o, "submitted_per_s", json_real(measured / wall));
    json_object_set_new(o, "busy_pct", json_real(nsamples ? 100 * busy / nsamples : -1));
    json_object_set_new(o, "dispatches", json_real(h1.count - h0.count));
    json_object_set_new(o, "dispatch_p50_ms", json_real(quantile_ms(&h0.dispatch, &h1.dispatch, 0.50)));
    json_object_set_new(o, "dispatch_p99_ms", json_real(quantile_ms(&h0.dispatch, &h1.dispatch, 0.99)));
    json_object_set_new(o, "commit_p50_ms", json_real(quantile_ms(&h0.commit, &h1.commit, 0.50)));
    json_object_set_new(o, "commit_p99_ms", json_real(quantile_ms(&h0.commit, &h1.commit, 0.99)));
    workload_progress(cfg,
                      "fleet: busy %.0f %%: dispatch p50 %.3f ms p99 %.3f ms over %.0f dispatches",
        nsamples ? 100 * busy / nsamples : -1.0, quantile_ms(&h0.dispatch, &h1.dispatch, 0.50),
        quantile_ms(&h0.dispatch, &h1.dispatch, 0.99), h1.count - h0.count);
    if (wait_idle(&s, (int)cfg->timeout_s, cfg->stop, err, sizeof err) != 0 ||
        check_from(&s, 0, stack_db_path(stack), phase_ms, err, sizeof err) != 0)
        goto done;

    /* Restart: 80 % of the slots run phases that last until the fleet is told
     * to finish them (after the adoption is measured); the broker is killed
     * (-9) and started again; the workers' next heartbeats get DISCONNECT,
     * they say READY with what they run and the broker adopts it. */
    if (restart_n > 0) {
        int rphase = RESTART_PHASE_MS;
        char rwf[64], rprefix[64];
        snprintf(rwf, sizeof rwf, "fleet-restart-%dms", rphase);
        snprintf(rprefix, sizeof rprefix, "fleet%d-r%d-restart", workers, run);
        if (workload_create_workflow(stack_url(stack), rwf, 1, rphase, 0, err, sizeof err) != 0)
            goto done;
        s.workflow = rwf;
        int first = s.submitted;
        if (submit_paced(&s, rprefix, restart_n, 0, NULL, NULL, 0, err, sizeof err) != 0)
            goto done;
        int64_t until = syn_mono_ms() + 120000;
        scrape_t before;
        do {
            before = scrape(s.probe);
            localproc_sleep_ms(50);
        } while (before.slots_busy < restart_n && syn_mono_ms() < until);
        fleet_sim_stats_t st0 = fleet_sim_stats(fleet);
        int64_t killed = syn_mono_us();
        workload_progress(cfg, "fleet: restart: broker killed at %.3f (wall clock)",
                          (double)syn_now_us() / 1e6);
        if (stack_restart(stack, STACK_BROKER, 0) != 0) {
            snprintf(err, sizeof err, "the broker did not start again");
            goto done;
        }
        broker = stack_broker_pid(stack);
        /* When its workers socket is bound: what comes before is its start and
         * reload, what comes after the workers' return. */
        double bound_ms = -1, registered_ms = -1, adopted_ms = -1;
        until = syn_mono_ms() + 120000;
        while (!accepts(stack_workers_endpoint(stack)) && syn_mono_ms() < until)
            localproc_sleep_ms(5);
        bound_ms = (double)(syn_mono_us() - killed) / 1e3;
        scrape_t after = {0};
        while (adopted_ms < 0 && syn_mono_ms() < until) {
            after = scrape(s.probe);
            double t = (double)(syn_mono_us() - killed) / 1e3;
            if (registered_ms < 0 && after.ok && after.workers_connected >= workers)
                registered_ms = t;
            if (registered_ms >= 0 && after.slots_busy >= before.slots_busy)
                adopted_ms = t;
            localproc_sleep_ms(20);
        }
        fleet_sim_stats_t st1 = fleet_sim_stats(fleet);
        fleet_sim_finish_all(fleet);
        json_object_set_new(o, "restart_running", json_real(before.slots_busy));
        json_object_set_new(o, "restart_bound_ms", json_real(bound_ms));
        json_object_set_new(o, "restart_registered_ms", json_real(registered_ms));
        json_object_set_new(o, "restart_adopted_ms", json_real(adopted_ms));
        /* Lost by then: taken from their workers and run again instead of adopted. */
        json_object_set_new(o, "restart_lost_by_adoption", json_real(after.attempts_lost));
        /* The restarted broker's commits until then (its histogram starts empty). */
        hist_t none = after.commit;
        memset(none.cumulative, 0, sizeof none.cumulative);
        json_object_set_new(o, "restart_commits", json_real(after.commit.cumulative[after.commit.n]));
        json_object_set_new(o, "restart_commit_p50_ms",
                            json_real(quantile_ms(&none, &after.commit, 0.50)));
        json_object_set_new(o, "restart_commit_max_bucket_ms",
                            json_real(quantile_ms(&none, &after.commit, 1.0)));
        json_object_set_new(o, "restart_readys",
                            json_integer((json_int_t)(st1.readys - st0.readys)));
        workload_progress(cfg,
                          "fleet: restart: bound after %.0f ms, %d workers registered after "
                          "%.0f ms, %.0f running attempts held again after %.0f ms (%.0f of "
                          "them lost and run again)",
                          bound_ms, workers, registered_ms, before.slots_busy, adopted_ms,
                          after.attempts_lost);
        if (adopted_ms < 0) {
            snprintf(err, sizeof err, "the restarted broker did not adopt the %.0f running "
                     "attempts within 120 s (it shows %.0f workers, %.0f busy)",
                     before.slots_busy, after.workers_connected, after.slots_busy);
            goto done;
        }
        if (wait_idle(&s, (int)cfg->timeout_s, cfg->stop, err, sizeof err) != 0)
            goto done;
        scrape_t end = scrape(s.probe);
        json_object_set_new(o, "restart_attempts_lost", json_real(end.attempts_lost));
        /* Only the restart's executions: the busy ones were checked above. */
        if (check_from(&s, first, stack_db_path(stack), rphase, err, sizeof err) != 0)
            goto done;
    }
    fleet_sim_stats_t st = fleet_sim_stats(fleet);
    json_object_set_new(o, "fleet_send_failures", json_integer((json_int_t)st.send_failures));
    json_object_set_new(o, "fleet_reconnects", json_integer((json_int_t)st.reconnects));
    json_object_set_new(o, "loadavg_after", workload_loadavg_json());
    json_object_set_new(o, "checked", json_integer(s.submitted));
    json_array_append(results, o);
    rc = 0;
done:
    if (rc != 0)
        fprintf(stderr, "synload: fleet run %d (%d workers) FAILED: %s\n", run, workers, err);
    fleet_sim_stop(&fleet);
    hclient_destroy(&s.probe);
    batch_clear(&s.batch);
    json_decref(o);
    stack_destroy(&stack);
    return rc;
}
