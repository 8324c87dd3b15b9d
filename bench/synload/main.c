/* synload: the load generator of issue 7. Starts its own syn stack per run
 * (broker, gateway, workers from the directory it lives in) or drives an
 * existing gateway, runs the workloads W1/W2/W3 and the extras, checks every
 * result and prints medians [min-max], or one JSON object per run (--json). */
#include "bench/synload/stack.h"
#include "bench/synload/stats.h"
#include "bench/synload/workloads.h"

#include <curl/curl.h>
#include <jansson.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/flags.h"

static volatile sig_atomic_t stop_requested = 0;

static void on_stop_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

/* Parses "4,8,16" into values (at most max); returns the count, -1 if malformed. */
static int parse_list(const char *text, int *values, int max)
{
    int n = 0;
    const char *p = text;
    while (*p && n < max) {
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p || v < 1 || v > 4096)
            return -1;
        values[n++] = (int)v;
        p = *end == ',' ? end + 1 : end;
        if (*end && *end != ',')
            return -1;
    }
    return n;
}

static bool has_word(const char *list, const char *word)
{
    size_t len = strlen(word);
    for (const char *p = list; (p = strstr(p, word)); p += len)
        if ((p == list || p[-1] == ',') && (p[len] == '\0' || p[len] == ','))
            return true;
    return false;
}

/* Prints the objects appended since `from` (one per line) when --json. */
static void emit(json_t *results, size_t from, bool as_json)
{
    if (!as_json)
        return;
    for (size_t i = from; i < json_array_size(results); i++) {
        char *line = json_dumps(json_array_get(results, i), JSON_COMPACT | JSON_REAL_PRECISION(6));
        if (line) {
            puts(line);
            free(line);
        }
    }
    fflush(stdout);
}

/* The group a run belongs to in the summary: its workload and what varies. */
static void group_of(json_t *o, char *buf, size_t size)
{
    const char *w = json_string_value(json_object_get(o, "workload"));
    if (!strcmp(w, "w2"))
        snprintf(buf, size, "w2 slots=%lld", json_integer_value(json_object_get(o, "slots")));
    else if (!strcmp(w, "scaling"))
        snprintf(buf, size, "scaling workers=%lld",
                 json_integer_value(json_object_get(o, "workers")));
    else if (!strcmp(w, "fleet"))
        snprintf(buf, size, "fleet workers=%lld",
                 json_integer_value(json_object_get(o, "workers")));
    else if (!strcmp(w, "w3"))
        snprintf(buf, size, "w3 client=%s", json_string_value(json_object_get(o, "client")));
    else
        snprintf(buf, size, "%s", w);
}

static const char *const SUMMARY_KEYS[] = {
    "exec_per_s",     "phases_per_s",       "pct_of_ideal",     "max_pct_possible",
    "p50_ms",         "p99_ms",             "p50_seen_ms",      "p99_seen_ms",
    "wall_s",         "wall_seen_s",         "submit_s",           "lookups_per_s",    "lookup_p50_us",
    "lookup_p99_us",  "rss_broker_mib",     "rss_gateway_mib",  "rss_worker_mib",
    "peak_rss_broker_mib", "peak_rss_gateway_mib",
    "pss_broker_mib", "uss_broker_mib",     "pss_gateway_mib",  "uss_gateway_mib",
    "pss_worker_mib", "uss_worker_mib",
    "cpu_broker_s",   "cpu_gateway_s",      "cpu_workers_s",    "cpu_client_s",
    "broker_cpu_pct", "gateway_cpu_pct",    "workers_cpu_pct",  "client_cpu_pct",
    "pct_of_achievable", "detect_ms",        "seen_ms",
    "wrk_status_rps", "wrk_status_p99_ms",  "wrk_hello_rps",    "wrk_hello_p99_ms",
    "pct_of_hello",   "seq_status_rps",     "seq_status_curl_rps", "seq_hello_rps",
    "seq_hello_curl_rps",
    "register_ms",    "idle_broker_cpu_pct", "idle_gateway_cpu_pct", "busy_broker_cpu_pct",
    "rss_broker_per_worker_kib", "pss_broker_per_worker_kib", "uss_broker_per_worker_kib",
    "rss_gateway_per_worker_kib", "uss_gateway_per_worker_kib", "busy_pct", "dispatches",
    "dispatch_p50_ms", "dispatch_p99_ms", "ready_depth_mean", "restart_running", "restart_registered_ms",
    "restart_adopted_ms", "restart_attempts_lost", NULL,
};

static void print_summary(json_t *results, FILE *out)
{
    size_t n = json_array_size(results);
    char *done = calloc(n ? n : 1, 1);
    double *values = malloc((n ? n : 1) * sizeof *values);
    if (!done || !values) {
        free(done);
        free(values);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        if (done[i])
            continue;
        char group[96], other[96];
        group_of(json_array_get(results, i), group, sizeof group);
        size_t runs = 0;
        for (size_t j = i; j < n; j++) {
            group_of(json_array_get(results, j), other, sizeof other);
            if (!strcmp(group, other))
                runs++;
        }
        json_t *first = json_array_get(results, i);
        const char *tracking = json_string_value(json_object_get(first, "tracking"));
        fprintf(out, "\n%s: %zu run%s, median [min-max]%s%s\n", group, runs, runs == 1 ? "" : "s",
                tracking ? "; completion tracking: " : "", tracking ? tracking : "");
        const char *latency = json_string_value(json_object_get(first, "latency"));
        const char *checked = json_string_value(json_object_get(first, "checked"));
        if (latency)
            fprintf(out, "  latency: %s; checked: %s\n", latency, checked ? checked : "-");
        for (const char *const *key = SUMMARY_KEYS; *key; key++) {
            size_t k = 0;
            for (size_t j = i; j < n; j++) {
                json_t *o = json_array_get(results, j);
                group_of(o, other, sizeof other);
                json_t *v = json_object_get(o, *key);
                if (!strcmp(group, other) && v && json_is_number(v))
                    values[k++] = json_number_value(v);
            }
            if (!k)
                continue;
            stats_summary_t s = stats_summarize(values, k);
            fprintf(out, "  %-20s %12.2f  [%.2f-%.2f]\n", *key, s.median, s.min, s.max);
        }
        for (size_t j = i; j < n; j++) {
            group_of(json_array_get(results, j), other, sizeof other);
            if (!strcmp(group, other))
                done[j] = 1;
        }
    }
    free(done);
    free(values);
}

int main(int argc, char **argv)
{
    const char *workload = "w1", *gateway = NULL, *data = NULL, *bin_dir = NULL;
    const char *log_level = "info", *broker_prefix = NULL, *broker_args = NULL;
    const char *gateway_prefix = NULL, *gateway_args = NULL, *worker_args = NULL;
    const char *profile_cmd = NULL, *store = "sqlite";
    const char *w2_slots = "4,8,16,64", *scale_workers = "1,2,4,8", *latency_dir = NULL;
    const char *fleet_workers = "10,100,300,1000";
    long fleet_slots = 4, fleet_phase_ms = 10000, fleet_seconds = 20, fleet_idle_s = 10;
    bool fleet_no_restart = false;
    const char *client = "synload", *hello = NULL, *track = "auto";
    bool json = false, smoke = false, keep = false;
    long runs = 3, executions = 0, warmup = -1, inflight = 16, workers = 2, slots = 16;
    long prefetch = 0, w2_workers = 1, lookups = 20000, poll_ms = 2, phase_ms = 50, timeout_s = 600;
    long wrk_seconds = 10, wrk_connections = 64, idle_ms = 2000;
    syn_flag_t flags[] = {
        {"workload", SYN_FLAG_STRING, "LIST",
         "comma list of w1,w2,w3,wrk,deadworker,scaling,fill,fleet (w1,w3 share a stack)",
         &workload,
         0, 0},
        {"json", SYN_FLAG_BOOL, NULL, "print one JSON object per run on stdout", &json, 0, 0},
        {"smoke", SYN_FLAG_BOOL, NULL, "a few seconds of W1, W3 and W2; exit 1 on any wrong result",
         &smoke, 0, 0},
        {"runs", SYN_FLAG_INT, "N", "runs of each workload (medians, min-max)", &runs, 1, 100},
        {"gateway", SYN_FLAG_STRING, "URL", "use this running stack instead of starting one",
         &gateway, 0, 0},
        {"data", SYN_FLAG_STRING, "DIR", "with --gateway: its data dir, to check outputs", &data,
         0, 0},
        {"executions", SYN_FLAG_INT, "N", "executions per run (0 = workload default)",
         &executions, 0, 10000000},
        {"warmup", SYN_FLAG_INT, "N", "unmeasured executions first (-1 = workload default)",
         &warmup, -1, 1000000},
        {"inflight", SYN_FLAG_INT, "N", "submits in flight (keep-alive connections)", &inflight,
         1, 1024},
        {"workers", SYN_FLAG_INT, "N", "worker processes (W1, W3, wrk, fill)", &workers, 1,
         STACK_MAX_WORKERS},
        {"slots", SYN_FLAG_INT, "N", "slots per worker (W1, W3, wrk, fill, scaling)", &slots, 1,
         1024},
        {"prefetch", SYN_FLAG_INT, "N",
         "each worker's --prefetch (-1 = as many as its slots; 0 = not passed)", &prefetch, -1,
         1024},
        {"w2-slots", SYN_FLAG_STRING, "LIST", "W2: total slots to measure", &w2_slots, 0, 0},
        {"w2-workers", SYN_FLAG_INT, "N", "W2: worker processes sharing the slots", &w2_workers,
         1, STACK_MAX_WORKERS},
        {"phase-ms", SYN_FLAG_INT, "MS", "W2: length of each phase", &phase_ms, 1, 60000},
        {"lookups", SYN_FLAG_INT, "N", "W3: status look-ups", &lookups, 1, 100000000},
        {"client", SYN_FLAG_STRING, "synload|curl", "W3: HTTP client", &client, 0, 0},
        {"track", SYN_FLAG_STRING, "auto|active|each",
         "poll the active list (auto: on our own stack) or each execution", &track, 0, 0},
        {"poll-ms", SYN_FLAG_INT, "MS", "re-poll an unfinished execution after", &poll_ms, 0,
         10000},
        {"scale-workers", SYN_FLAG_STRING, "LIST", "scaling: worker counts", &scale_workers, 0,
         0},
        {"fleet-workers", SYN_FLAG_STRING, "LIST", "fleet: simulated worker counts",
         &fleet_workers, 0, 0},
        {"fleet-slots", SYN_FLAG_INT, "N", "fleet: slots of each simulated worker", &fleet_slots,
         1, 1024},
        {"fleet-phase-ms", SYN_FLAG_INT, "MS",
         "fleet: length of a phase; phases come at the rate that keeps 80 % of the slots busy",
         &fleet_phase_ms, 1, 3600000},
        {"fleet-seconds", SYN_FLAG_INT, "S", "fleet: the measured busy window", &fleet_seconds, 1,
         3600},
        {"fleet-idle-s", SYN_FLAG_INT, "S", "fleet: the idle window (broker CPU)", &fleet_idle_s,
         1, 3600},
        {"fleet-no-restart", SYN_FLAG_BOOL, NULL, "fleet: leave the broker restart out",
         &fleet_no_restart, 0, 0},
        {"wrk-seconds", SYN_FLAG_INT, "S", "wrk: duration of each run", &wrk_seconds, 1, 600},
        {"wrk-connections", SYN_FLAG_INT, "N", "wrk: connections", &wrk_connections, 1, 10000},
        {"idle-ms", SYN_FLAG_INT, "MS", "idle time before reading RSS", &idle_ms, 0, 600000},
        {"timeout-s", SYN_FLAG_INT, "S", "give up on a batch after", &timeout_s, 1, 86400},
        {"latency-dir", SYN_FLAG_STRING, "DIR", "write each run's latencies (ms) there",
         &latency_dir, 0, 0},
        {"bin-dir", SYN_FLAG_STRING, "DIR", "where syn-broker etc. are (default: next to synload)",
         &bin_dir, 0, 0},
        {"log-level", SYN_FLAG_STRING, "LEVEL", "log level of the started programs", &log_level,
         0, 0},
        {"broker-prefix", SYN_FLAG_STRING, "WORDS",
         "run the broker under this (e.g. \"valgrind --tool=callgrind\")", &broker_prefix, 0, 0},
        {"broker-args", SYN_FLAG_STRING, "WORDS", "extra broker flags", &broker_args, 0, 0},
        {"gateway-prefix", SYN_FLAG_STRING, "WORDS",
         "run the gateway under this (e.g. \"valgrind --tool=callgrind\")", &gateway_prefix, 0,
         0},
        {"gateway-args", SYN_FLAG_STRING, "WORDS", "extra gateway flags", &gateway_args, 0, 0},
        {"worker-args", SYN_FLAG_STRING, "WORDS",
         "extra flags of every worker (e.g. \"--curve-secret F --broker-key F\")", &worker_args, 0,
         0},
        {"profile-cmd", SYN_FLAG_STRING, "CMD",
         "shell command run during W1's measured batch, {pid} = broker pid, stopped by SIGINT "
         "(e.g. \"exec perf record -g -p {pid} -o perf.data\")",
         &profile_cmd, 0, 0},
        {"store", SYN_FLAG_STRING, "sqlite|postgresql",
         "the broker's store: its SQLite file, or a database of synload's own durable "
         "PostgreSQL cluster (initdb on a Unix socket; needs Debian's postgresql)",
         &store, 0, 0},
        {"keep", SYN_FLAG_BOOL, NULL, "keep each stack's temp dir (logs, database)", &keep, 0, 0},
        {"hello", SYN_FLAG_STRING, "HOST:PORT",
         "only serve the bare libmicrohttpd handler (used by the wrk workload)", &hello, 0, 0},
        {NULL, 0, NULL, NULL, NULL, 0, 0},
    };
    syn_flags_result_t parsed = syn_flags_parse(
        "synload", "Load generator for syn: workloads W1/W2/W3 of issue 7 and extras.", flags,
        argc, argv);
    if (parsed != SYN_FLAGS_OK)
        return parsed == SYN_FLAGS_EXIT ? 0 : 2;

    struct sigaction sa = {.sa_handler = on_stop_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    if (hello)
        return workload_hello_main(hello, &stop_requested);

    char self[PATH_MAX];
    if (!bin_dir) {
        if (self_dir(self, sizeof self) != 0) {
            fprintf(stderr, "synload: cannot find my own directory\n");
            return 1;
        }
        bin_dir = self;
    }
    if (strcmp(track, "auto") && strcmp(track, "active") && strcmp(track, "each")) {
        fprintf(stderr, "synload: --track wants auto, active or each\n");
        return 2;
    }
    if (strcmp(store, "sqlite") && strcmp(store, "postgresql")) {
        fprintf(stderr, "synload: --store wants sqlite or postgresql\n");
        return 2;
    }
    if (strcmp(client, "synload") && strcmp(client, "curl")) {
        fprintf(stderr, "synload: --client wants synload or curl\n");
        return 2;
    }
    int w2_list[16], scale_list[16], fleet_list[16];
    int w2_count = parse_list(w2_slots, w2_list, 16);
    int scale_count = parse_list(scale_workers, scale_list, 16);
    int fleet_count = parse_list(fleet_workers, fleet_list, 16);
    if (w2_count <= 0 || scale_count <= 0 || fleet_count <= 0) {
        fprintf(stderr, "synload: --w2-slots, --scale-workers and --fleet-workers want lists "
                        "like 4,8,16\n");
        return 2;
    }
    const char *known[] = {"w1", "w2", "w3", "wrk", "deadworker", "scaling", "fill", "fleet"};
    for (const char *p = workload; *p;) {
        size_t len = strcspn(p, ",");
        bool ok = false;
        for (size_t k = 0; k < sizeof known / sizeof *known; k++)
            ok |= strlen(known[k]) == len && !strncmp(p, known[k], len);
        if (!ok) {
            fprintf(stderr, "synload: unknown workload '%.*s'\n", (int)len, p);
            return 2;
        }
        p += len + (p[len] == ',');
    }
    if (smoke) {
        workload = "w1,w3,w2";
        runs = 1;
        if (!executions)
            executions = 50;
        if (warmup < 0)
            warmup = 10;
        lookups = 200;
        w2_list[0] = 4;
        w2_count = 1;
        phase_ms = 20;
    }

    workload_config_t cfg = {
        .gateway = gateway,
        .data = data,
        .bin_dir = bin_dir,
        .log_level = log_level,
        .broker_prefix = broker_prefix,
        .broker_args = broker_args,
        .gateway_prefix = gateway_prefix,
        .gateway_args = gateway_args,
        .worker_args = worker_args,
        .profile_cmd = profile_cmd,
        .latency_dir = latency_dir,
        .keep = keep,
        .postgresql = !strcmp(store, "postgresql"),
        .use_curl = !strcmp(client, "curl"),
        .track = track,
        .executions = executions,
        .warmup = warmup,
        .inflight = inflight,
        .workers = workers,
        .slots = slots,
        .prefetch = prefetch,
        .w2_workers = w2_workers,
        .lookups = lookups,
        .poll_ms = poll_ms,
        .phase_ms = phase_ms,
        .timeout_s = timeout_s,
        .wrk_seconds = wrk_seconds,
        .wrk_connections = wrk_connections,
        .idle_ms = idle_ms,
        .fleet_slots = fleet_slots,
        .fleet_phase_ms = fleet_phase_ms,
        .fleet_seconds = fleet_seconds,
        .fleet_idle_s = fleet_idle_s,
        .fleet_restart = !fleet_no_restart,
        .stop = &stop_requested,
    };
    curl_global_init(CURL_GLOBAL_DEFAULT);
    json_t *results = json_array();
    int failures = 0;
    bool w1 = has_word(workload, "w1"), w3 = has_word(workload, "w3");
    for (int run = 1; run <= runs && !stop_requested && (w1 || w3); run++) {
        size_t from = json_array_size(results);
        failures += workload_w1(&cfg, w1, w3, run, results) != 0;
        emit(results, from, json);
    }
    if (has_word(workload, "w2")) {
        workload_config_t c2 = cfg;
        if (smoke)
            c2.executions = 12, c2.warmup = 0;
        for (int run = 1; run <= runs && !stop_requested; run++)
            for (int k = 0; k < w2_count && !stop_requested; k++) {
                size_t from = json_array_size(results);
                failures += workload_w2(&c2, w2_list[k], run, results) != 0;
                emit(results, from, json);
            }
    }
    struct {
        const char *name;
        int (*fn)(const workload_config_t *, int, json_t *);
    } singles[] = {{"wrk", workload_wrk}, {"deadworker", workload_deadworker},
                   {"fill", workload_fill}};
    for (size_t s = 0; s < sizeof singles / sizeof *singles; s++)
        for (int run = 1; run <= runs && !stop_requested && has_word(workload, singles[s].name);
             run++) {
            size_t from = json_array_size(results);
            failures += singles[s].fn(&cfg, run, results) != 0;
            emit(results, from, json);
        }
    if (has_word(workload, "scaling"))
        for (int run = 1; run <= runs && !stop_requested; run++)
            for (int k = 0; k < scale_count && !stop_requested; k++) {
                size_t from = json_array_size(results);
                failures += workload_scaling(&cfg, scale_list[k], run, results) != 0;
                emit(results, from, json);
            }
    if (has_word(workload, "fleet"))
        for (int run = 1; run <= runs && !stop_requested; run++)
            for (int k = 0; k < fleet_count && !stop_requested; k++) {
                size_t from = json_array_size(results);
                failures += workload_fleet(&cfg, fleet_list[k], run, results) != 0;
                emit(results, from, json);
            }
    print_summary(results, json ? stderr : stdout);
    json_decref(results);
    curl_global_cleanup();
    if (stop_requested) {
        fprintf(stderr, "synload: interrupted\n");
        return 1;
    }
    if (failures) {
        fprintf(stderr, "synload: FAILED: %d run%s had wrong or missing results (see above)\n",
                failures, failures == 1 ? "" : "s");
        return 1;
    }
    return 0;
}
