/* syn-gateway: HTTP in front of the broker (see gateway/gateway.h). */
#include "common/flags.h"
#include "common/log.h"
#include "common/signals.h"
#include "gateway/gateway.h"

#include <czmq.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

/* Every HTTP connection is a descriptor: raise the soft limit towards the hard one so
 * --max-connections is not cut short by a default of 1024. The 256 spare cover the
 * connections accepted past the limit to be answered 503 (gateway/listen.h). */
static void raise_fd_limit(long max_connections)
{
    struct rlimit lim;
    if (getrlimit(RLIMIT_NOFILE, &lim) != 0)
        return;
    rlim_t want = (rlim_t)max_connections + 256;
    if (lim.rlim_cur >= want)
        return;
    lim.rlim_cur = lim.rlim_max == RLIM_INFINITY || lim.rlim_max > want ? want : lim.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &lim) != 0 || lim.rlim_cur < want)
        syn_warn("gateway", "open file limit is %llu, below max-connections=%ld + 256",
                 (unsigned long long)lim.rlim_cur, max_connections);
}

/* A password given as --api-password is in /proc/PID/cmdline for anyone on the
 * host to read: the gateway keeps its own copy and overwrites the argument (the
 * docs advise SYN_API_PASSWORD instead). Returns the copy, to free at exit. */
static char *hide_password(const char **password, int argc, char **argv)
{
    if (!*password)
        return NULL;
    char *copy = strdup(*password);
    for (int i = 1; i < argc; i++) {
        char *value = argv[i] == *password ? argv[i] : NULL;
        if (!value && strncmp(argv[i], "--api-password=", 15) == 0 && argv[i] + 15 == *password)
            value = argv[i] + 15;
        if (value)
            memset(value, 'x', strlen(value));
    }
    *password = copy;
    return copy;
}

int main(int argc, char **argv)
{
    gateway_config_t config = {
        .http = "127.0.0.1:8137",
        .broker = "tcp://127.0.0.1:5555",
        .events = "tcp://127.0.0.1:5557",
        .request_timeout_ms = 2000,
        .health_timeout_ms = 1000,
        .max_connections = 4096,
        .sse_keepalive_ms = GATEWAY_SSE_KEEPALIVE_MS,
        .sse_buffer_bytes = GATEWAY_SSE_BUFFER_BYTES,
        /* A browser opens at most 6 connections to a host, a CLI watching streams a
         * few each: 128 leaves room for a dozen people behind one NAT address, while
         * one client can take no more than 3% of the default 4096. */
        .max_per_ip = 128,
        /* Long enough for a client on a slow link to send its headers, short enough
         * that a client holding half-sent requests frees them soon. */
        .header_timeout_ms = 10000,
    };
    const char *log_level = "info";
    syn_flag_t flags[] = {
        {"http", SYN_FLAG_STRING, "HOST:PORT", "HTTP address to listen on", &config.http, 0, 0},
        {"broker", SYN_FLAG_STRING, "EP[,EP...]",
         "broker clients endpoint; several: the active broker and its standbys, followed in "
         "turn (one --broker-key for all)",
         &config.broker, 0, 0},
        {"events", SYN_FLAG_STRING, "EP[,EP...]",
         "broker events endpoint; several: one per --broker endpoint, in the same order",
         &config.events, 0, 0},
        {"request-timeout-ms", SYN_FLAG_INT, "MS", "answer 503 when the broker is silent this long",
         &config.request_timeout_ms, 1, 3600000},
        {"health-timeout-ms", SYN_FLAG_INT, "MS", "GET /health reports the broker down after",
         &config.health_timeout_ms, 1, 3600000},
        {"max-connections", SYN_FLAG_INT, "N", "concurrent HTTP connections",
         &config.max_connections, 1, 1000000},
        {"sse-keepalive-ms", SYN_FLAG_INT, "MS", "send ': keepalive' on an SSE stream silent this long",
         &config.sse_keepalive_ms, 10, 3600000},
        {"sse-buffer-bytes", SYN_FLAG_INT, "BYTES",
         "SSE bytes queued for a client before it is cut as too slow", &config.sse_buffer_bytes,
         4096, 1073741824},
        {"max-per-ip", SYN_FLAG_INT, "N",
         "HTTP connections one client address may hold (0: no limit)", &config.max_per_ip, 0,
         1000000},
        {"header-timeout-ms", SYN_FLAG_INT, "MS",
         "close a connection whose request is incomplete and silent this long (whole seconds)",
         &config.header_timeout_ms, 1, 3600000},
        {"api-tokens", SYN_FLAG_STRING, "FILE",
         "API tokens file (syn token new); callers need a token; reloaded on SIGHUP",
         &config.api_tokens, 0, 0},
        {"api-user", SYN_FLAG_STRING, "USER", "HTTP basic auth user (admin scope)",
         &config.api_user, 0, 0},
        {"api-password", SYN_FLAG_SECRET, "PASS", "HTTP basic auth password",
         &config.api_password, 0, 0},
        {"tls-cert", SYN_FLAG_STRING, "FILE", "serve HTTPS with this PEM certificate (chain)",
         &config.tls_cert, 0, 0},
        {"tls-key", SYN_FLAG_STRING, "FILE", "the PEM private key of --tls-cert",
         &config.tls_key, 0, 0},
        {"curve-secret", SYN_FLAG_STRING, "FILE",
         "this gateway's secret CURVE certificate (syn keygen): encrypt the broker link",
         &config.curve_secret, 0, 0},
        {"broker-key", SYN_FLAG_STRING, "FILE", "the broker's public CURVE certificate",
         &config.broker_key, 0, 0},
        {"insecure", SYN_FLAG_BOOL, NULL,
         "allow non-loopback --http without tokens, and --broker/--events without keys",
         &config.insecure, 0, 0},
        {"log-level", SYN_FLAG_LOG_LEVEL, "LEVEL", "debug|info|warn|error", &log_level, 0, 0},
        {NULL, 0, NULL, NULL, NULL, 0, 0},
    };
    syn_flags_result_t parsed = syn_flags_parse(
        "syn-gateway", "Serves the syn HTTP API by asking the broker.", flags, argc, argv);
    if (parsed == SYN_FLAGS_EXIT)
        return 0;
    if (parsed == SYN_FLAGS_ERROR)
        return 2;
    char *password = hide_password(&config.api_password, argc, argv);
    char err[512];
    if (gateway_config_check(&config, err, sizeof err) != 0) {
        syn_error("gateway", "%s", err);
        free(password);
        return 2;
    }

    zsys_handler_set(NULL);
    zsys_init();
    syn_signals_install(true); /* SIGHUP: read the API tokens again */
    raise_fd_limit(config.max_connections);

    gateway_t *gateway = gateway_new(&config, err, sizeof err);
    if (!gateway) {
        syn_error("gateway", "%s", err);
        free(password);
        return 1;
    }
    syn_info("gateway",
             "listening http=%s port=%d tls=%s auth=%s broker=%s events=%s curve=%s "
             "max_per_ip=%ld header_timeout_ms=%ld",
             config.http, gateway_port(gateway), config.tls_cert ? "on" : "off",
             config.api_tokens && config.api_user ? "tokens+basic"
             : config.api_tokens                  ? "tokens"
             : config.api_user                    ? "basic"
                                                  : "off",
             config.broker, config.events, config.curve_secret ? "on" : "off",
             config.max_per_ip, config.header_timeout_ms);
    int rc = 0;
    while (!syn_signals_stop_requested()) {
        if (syn_signals_take_reload()) {
            gateway_reload(gateway);
        }
        if (gateway_poll(gateway, 1000) != 0) {
            rc = 1;
            break;
        }
    }
    gateway_stats_t stats;
    gateway_stats(gateway, &stats);
    syn_info("gateway",
             "stopping requests=%llu timeouts=%llu late_replies=%llu events=%llu event_gaps=%llu "
             "sse_overflows=%llu view_entries=%zu view_bytes=%zu view_clears=%llu "
             "view_evictions=%llu",
             (unsigned long long)stats.requests_sent, (unsigned long long)stats.timeouts,
             (unsigned long long)stats.late_replies, (unsigned long long)stats.events,
             (unsigned long long)stats.event_gaps, (unsigned long long)stats.sse_overflows,
             stats.view_entries, stats.view_bytes, (unsigned long long)stats.view_clears,
             (unsigned long long)stats.view_evictions);
    gateway_destroy(&gateway);
    free(password);
    return rc;
}
