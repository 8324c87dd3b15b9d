/* syn-broker: owns the state, dispatches phases (see broker/broker.h). */
#include "broker/broker.h"
#include "broker/quarantine.h"
#include "broker/store.h"
#include "common/flags.h"
#include "common/log.h"
#include "common/signals.h"

#include <czmq.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* --migrate-from sqlite:DIR: the whole run of the broker when given. */
static int migrate(const char *from, const char *postgresql)
{
    if (strncmp(from, "sqlite:", 7) != 0 || !from[7]) {
        fprintf(stderr, "error: --migrate-from: expected sqlite:DIR, got %s\n", from);
        return 2;
    }
    if (!postgresql) {
        fprintf(stderr, "error: --migrate-from needs --store postgresql://... (the target)\n");
        return 2;
    }
    char path[4096], err[1024];
    if (snprintf(path, sizeof path, "%s/syn.db", from + 7) >= (int)sizeof path) {
        fprintf(stderr, "error: --migrate-from: the path is too long\n");
        return 2;
    }
    if (broker_store_migrate_from(path, postgresql, stderr, err, sizeof err) < 0) {
        fprintf(stderr, "error: migration failed: %s\n", err);
        return 1;
    }
    fprintf(stderr, "migrate: done: the broker can now start with --store on that database\n");
    return 0;
}

int main(int argc, char **argv)
{
    static const char summary[] =
        "Owns workflows and executions (SQLite), dispatches phases to workers.";
    broker_config_t config = {
        .data_dir = "./var",
        .clients = "tcp://127.0.0.1:5555",
        .workers = "tcp://127.0.0.1:5556",
        .events = "tcp://127.0.0.1:5557",
    };
    long heartbeat_ms = 1000, liveness = 3, kill_grace_ms = 5000;
    long idempotency_window = 0, max_running = 0, lease_ms = 3000;
    long retain_days = 30, retain_seconds = 0, retain_max_executions = 0;
    long quarantine_after = BROKER_QUARANTINE_AFTER,
         quarantine_window_ms = BROKER_QUARANTINE_WINDOW_MS;
    long artifact_max_file = 16l << 20, artifact_max_phase = 64l << 20, artifact_max_files = 256;
    const char *log_level = "info";
    const char *store = NULL, *migrate_from = NULL;
    syn_flag_t flags[] = {
        {"data", SYN_FLAG_STRING, "DIR", "data directory (SQLite file syn.db inside)",
         &config.data_dir, 0, 0},
        {"store", SYN_FLAG_STRING, "WHERE",
         "the store: sqlite:DIR (as --data DIR) or postgresql://... (a libpq URI); "
         "default $SYN_STORE, else --data",
         &store, 0, 0},
        {"migrate-from", SYN_FLAG_STRING, "sqlite:DIR",
         "copy the SQLite store of DIR into the empty PostgreSQL database of --store, "
         "verify it table by table, and exit (docs/operations.md)",
         &migrate_from, 0, 0},
        {"clients", SYN_FLAG_STRING, "EP", "endpoint for gateways (ROUTER)", &config.clients, 0,
         0},
        {"workers", SYN_FLAG_STRING, "EP", "endpoint for workers (ROUTER)", &config.workers, 0,
         0},
        {"events", SYN_FLAG_STRING, "EP", "endpoint publishing committed events (PUB)",
         &config.events, 0, 0},
        {"heartbeat-ms", SYN_FLAG_INT, "MS", "heartbeat interval to and from workers",
         &heartbeat_ms, 10, 600000},
        {"liveness", SYN_FLAG_INT, "N", "silent intervals before a worker counts as dead",
         &liveness, 1, 1000},
        {"kill-grace-ms", SYN_FLAG_INT, "MS",
         "workers' SIGTERM-to-SIGKILL grace, added to the timeout backstop", &kill_grace_ms, 0,
         3600000},
        {"quarantine-after", SYN_FLAG_INT, "N",
         "a worker failing N attempts in a row (of different executions) while others "
         "succeed takes no work for a while (0: never)",
         &quarantine_after, 0, 1000},
        {"quarantine-window-ms", SYN_FLAG_INT, "MS",
         "the window those failures fall in, and the first quarantine's length",
         &quarantine_window_ms, 1, 86400000},
        {"artifact-max-file-bytes", SYN_FLAG_INT, "N",
         "the largest artifact file a phase may leave in artifacts/output", &artifact_max_file,
         1, 1l << 40},
        {"artifact-max-phase-bytes", SYN_FLAG_INT, "N",
         "the most artifact bytes one phase may leave", &artifact_max_phase, 1, 1l << 40},
        {"artifact-max-files", SYN_FLAG_INT, "N", "the most artifact files one phase may leave",
         &artifact_max_files, 1, 1000000},
        {"workflows", SYN_FLAG_STRING, "DIR",
         "install the workflows of DIR at start (*.yaml and */workflow.yaml packages)",
         &config.workflows_dir, 0, 0},
        {"curve-secret", SYN_FLAG_STRING, "FILE",
         "the broker's secret certificate (NAME.key_secret): CURVE on all three sockets",
         &config.curve_secret, 0, 0},
        {"authorized-keys", SYN_FLAG_STRING, "DIR",
         "public certificates of the gateways and workers allowed in (reloaded on SIGHUP)",
         &config.authorized_keys, 0, 0},
        {"insecure", SYN_FLAG_BOOL, NULL,
         "without --curve-secret, bind non-loopback endpoints anyway (open links)",
         &config.insecure, 0, 0},
        {"metrics", SYN_FLAG_STRING, "HOST:PORT",
         "serve GET /metrics (Prometheus text) there; loopback unless --insecure",
         &config.metrics, 0, 0},
        {"retain-days", SYN_FLAG_INT, "N",
         "delete finished executions N days after they finished (0: keep them)", &retain_days,
         0, 100000},
        {"retain-seconds", SYN_FLAG_INT, "N",
         "the same in seconds, for tests and benchmarks (overrides --retain-days)",
         &retain_seconds, 0, 1000000000},
        {"retain-max-executions", SYN_FLAG_INT, "N",
         "keep at most the N newest finished executions (0: no limit)",
         &retain_max_executions, 0, 1000000000},
        {"idempotency-window", SYN_FLAG_INT, "SECONDS",
         "how long an Idempotency-Key answers the same execution (default 86400)",
         &idempotency_window, 1, 1000000000},
        {"max-running", SYN_FLAG_INT, "N",
         "at most N executions run at once, all workflows together; the others wait as "
         "pending, in priority and submission order (0: no limit)",
         &max_running, 0, 100000000},
        {"lease-ms", SYN_FLAG_INT, "MS",
         "PostgreSQL: the active broker's lease; a standby takes over once it lapses "
         "(renewed every third of it)",
         &lease_ms, 300, 600000},
        {"log-level", SYN_FLAG_LOG_LEVEL, "LEVEL", "debug|info|warn|error", &log_level, 0, 0},
        {NULL, 0, NULL, NULL, NULL, 0, 0},
    };
    syn_flags_result_t parsed = syn_flags_parse("syn-broker", summary, flags, argc, argv);
    if (parsed == SYN_FLAGS_EXIT)
        return 0;
    if (parsed == SYN_FLAGS_ERROR)
        return 2;
    config.heartbeat_ms = heartbeat_ms;
    config.liveness = liveness;
    config.kill_grace_ms = kill_grace_ms;
    config.retain_seconds = retain_seconds > 0 ? retain_seconds : retain_days * 86400;
    config.retain_max_executions = retain_max_executions;
    config.idempotency_window_s = idempotency_window;
    config.max_running = max_running;
    config.lease_ms = lease_ms;
    config.quarantine_after = quarantine_after;
    config.quarantine_window_ms = quarantine_window_ms;
    config.artifacts = (broker_artifact_limits_t){artifact_max_file, artifact_max_phase,
                                                  artifact_max_files};
    char err[512];
    if (!store)
        store = getenv("SYN_STORE");
    if (store && *store) {
        if (broker_store_is_postgresql(store)) {
            config.postgresql = store;
        } else if (strncmp(store, "sqlite:", 7) == 0 && store[7]) {
            config.data_dir = store + 7;
        } else {
            fprintf(stderr, "error: --store: expected sqlite:DIR or postgresql://..., got %s\n",
                    store);
            return 2;
        }
    }
    if (migrate_from)
        return migrate(migrate_from, config.postgresql);
    if (broker_config_check(&config, err, sizeof err) < 0) {
        fprintf(stderr, "error: %s\n", err);
        return 2;
    }
    if (config.insecure && !(config.curve_secret && config.curve_secret[0]))
        syn_warn("broker", "--insecure: no CURVE, the clients, workers and events links are "
                           "open to anyone who can reach them, unencrypted");

    zsys_handler_set(NULL);
    zsys_init();
    syn_signals_install(true); /* SIGHUP: read the authorized keys again */
    /* A file-size limit (ulimit -f) met by the database is a write that fails,
     * met like a full disk (broker/storage_full.h), not a reason to die. */
    signal(SIGXFSZ, SIG_IGN);

    broker_t *broker = broker_new(&config, err, sizeof err);
    if (!broker) {
        syn_error("broker", "%s", err);
        return 1;
    }
    int rc = 0; /* ("listening ..." is logged once the broker is active) */
    while (!syn_signals_stop_requested()) {
        if (syn_signals_take_reload()) {
            broker_reload_keys(broker);
        }
        if (broker_poll(broker, 1000) != 0) {
            rc = 1;
            break;
        }
    }
    broker_stats_t stats = broker_stats(broker);
    syn_info("broker", "stopping requests=%llu worker_messages=%llu invalid=%llu "
             "send_failures=%llu commits=%llu",
             (unsigned long long)stats.requests, (unsigned long long)stats.worker_messages,
             (unsigned long long)stats.invalid_messages,
             (unsigned long long)stats.send_failures, (unsigned long long)stats.commits);
    broker_destroy(&broker);
    return rc;
}
