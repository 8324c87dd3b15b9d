/* syn status: is the service up? The gateway's /health (broker up or down, how
 * many workers), and each worker from GET /workers (docs/api.md): its slots, what
 * it runs, its results, whether it is healthy, and the workers lost lately. A
 * gateway older than that route answers 404, and the status then shows /health's
 * count alone, so the command works against both. */
#include "cli/cli.h"
#include "cli/table.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *text_or(const json_t *obj, const char *key, const char *fallback)
{
    const char *text = json_string_value(json_object_get(obj, key));
    return text ? text : fallback;
}

static void format_int(char *buf, size_t len, const json_t *obj, const char *key)
{
    const json_t *v = json_object_get(obj, key);
    if (json_is_integer(v))
        snprintf(buf, len, "%lld", (long long)json_integer_value(v));
    else
        snprintf(buf, len, "?");
}

/* ok, draining, unhealthy: why, or lost: why (GET /workers' fields, docs/api.md). */
static void format_state(char *buf, size_t len, const json_t *w)
{
    if (json_is_false(json_object_get(w, "connected")))
        snprintf(buf, len, "lost: %s", text_or(w, "lost_reason", "?"));
    else if (json_is_false(json_object_get(w, "healthy")))
        snprintf(buf, len, "unhealthy: %s", text_or(w, "unhealthy_reason", "?"));
    else if (json_is_true(json_object_get(w, "draining")))
        snprintf(buf, len, "draining");
    else
        snprintf(buf, len, "ok");
}

/* One row per worker, connected ones first, then those lost lately. */
static void print_workers(cli_t *cli, const json_t *workers)
{
    const char *headers[] = {"WORKER", "HOST",   "PROVIDERS", "SLOTS",
                             "RUNNING", "QUEUED", "DONE",      "FAILED", "STATE"};
    table_t *t = table_new(9, headers);
    for (int column = 3; column <= 7; column++)
        table_set_right(t, column);
    size_t i;
    const json_t *w;
    json_array_foreach(workers, i, w)
    {
        char slots[24], running[24], queued[24], done[24], failed[24], providers[256] = "",
                                                                        state[320];
        format_int(slots, sizeof slots, w, "slots");
        format_int(running, sizeof running, w, "running");
        format_int(queued, sizeof queued, w, "prefetched");
        format_int(done, sizeof done, w, "attempts_completed");
        format_int(failed, sizeof failed, w, "attempts_failed");
        format_state(state, sizeof state, w);
        size_t j;
        const json_t *p;
        json_array_foreach(json_object_get(w, "providers"), j, p)
        {
            size_t used = strlen(providers);
            snprintf(providers + used, sizeof providers - used, "%s%s", j ? "," : "",
                     json_string_value(p) ? json_string_value(p) : "?");
        }
        const char *cells[] = {text_or(w, "name", "?"), text_or(w, "host", "-"), providers,
                               slots, running, queued, done, failed, state};
        table_add(t, cells, NULL);
    }
    cli_print_table(cli, &t);
}

int cmd_status(cli_t *cli, int argc, char **argv)
{
    const args_command_t command = {
        "syn status",
        "Shows the gateway's health, the broker's, and the workers: slots, attempts\n"
        "running and queued, results, healthy or why not, and those lost in the last\n"
        "10 minutes. Exit 0 when all is up, 5 when the gateway cannot be reached or the\n"
        "broker is down.",
        args_no_options, 0, 0};
    const char *pos[ARGS_MAX_POSITIONAL];
    int npos, code;
    if (cli_begin(cli, &command, argc, argv, pos, &npos, &code) != 0)
        return code;
    client_response_t health;
    client_request(cli->client, "GET", "/health", NULL, NULL, 0, &health);
    if (health.status == 0 || !json_is_object(health.json)) {
        fprintf(stderr, "error: %s\n", health.status ? "no health answer" : health.error);
        client_response_clear(&health);
        return CLI_EXIT_UNREACHABLE;
    }
    code = client_exit_code(health.status, NULL);
    json_t *workers = NULL;
    client_response_t listed;
    client_request(cli->client, "GET", "/workers", NULL, NULL, 0, &listed);
    if (listed.status == 200 && listed.json) {
        workers = json_is_array(listed.json) ? json_incref(listed.json)
                                             : json_incref(json_object_get(listed.json, "workers"));
    } else if (listed.status != 404 && code == CLI_EXIT_OK) {
        /* /workers exists and failed: say so, the health answer still stands */
        fprintf(stderr, "warning: GET /workers: %s\n", listed.error);
    }
    client_response_clear(&listed);
    const char *status = json_string_value(json_object_get(health.json, "status"));
    const char *broker = json_string_value(json_object_get(health.json, "broker"));
    long long count = (long long)json_integer_value(json_object_get(health.json, "workers"));
    if (cli->json) {
        json_t *doc = json_pack("{s:O,s:O?}", "health", health.json, "workers", workers);
        cli_print_json(doc);
        json_decref(doc);
    } else if (!cli->quiet) {
        bool ok = status && (!strcmp(status, "healthy") || !strcmp(status, "ok"));
        const char *on = cli->color ? (ok ? "\033[32m" : "\033[31m") : "", *off =
                                                                              cli->color ? "\033[0m"
                                                                                         : "";
        printf("gateway  %s  %s%s%s\n", client_url(cli->client), on, status ? status : "?", off);
        printf("broker   %s\n", broker ? broker : "?");
        printf("workers  %lld\n", count);
        if (workers) {
            printf("\n");
            print_workers(cli, workers);
        }
    }
    if (code != CLI_EXIT_OK)
        fprintf(stderr, "error: the service is %s: broker %s\n", status ? status : "down",
                broker ? broker : "unknown");
    json_decref(workers);
    client_response_clear(&health);
    return code;
}

/* syn health: one yes or no for health checks (compose, systemd, a load
 * balancer's script), where a curl may not be installed: GET /ready (or /health
 * with --live), exit 0 on 200 and 5 otherwise, one line saying why. A gateway
 * older than /ready answers 404 there, and /health stands in for it. */
int cmd_health(cli_t *cli, int argc, char **argv)
{
    bool live = false;
    const args_option_t options[] = {
        {0, "live", ARGS_FLAG, NULL,
         "liveness only: GET /health (the gateway and the broker answer) instead of /ready "
         "(and a healthy worker is connected)",
         &live},
        {0, NULL, 0, NULL, NULL, NULL},
    };
    const args_command_t command = {
        "syn health [--live]",
        "Exit 0 when the service is ready to run work (GET /ready: the broker answers and a\n"
        "healthy worker is connected), 5 when it is not or cannot be reached, with one line\n"
        "saying why. --live asks only whether the gateway and the broker answer (GET /health).",
        options, 0, 0};
    const char *pos[ARGS_MAX_POSITIONAL];
    int npos, code;
    if (cli_begin(cli, &command, argc, argv, pos, &npos, &code) != 0)
        return code;
    const char *path = live ? "/health" : "/ready";
    client_response_t resp;
    client_request(cli->client, "GET", path, NULL, NULL, 0, &resp);
    if (!live && resp.status == 404) {
        client_response_clear(&resp);
        path = "/health";
        client_request(cli->client, "GET", path, NULL, NULL, 0, &resp);
    }
    if (resp.status == 0) {
        fprintf(stderr, "error: %s\n", resp.error);
        client_response_clear(&resp);
        return CLI_EXIT_UNREACHABLE;
    }
    code = resp.status == 200 ? CLI_EXIT_OK
                              : (resp.status == 404 ? CLI_EXIT_FAILED : CLI_EXIT_UNREACHABLE);
    const json_t *body = resp.json;
    if (cli->json && body) {
        cli_print_json(body);
    } else if (!cli->quiet) {
        const char *status = text_or(body, "status", code == CLI_EXIT_OK ? "ok" : "unavailable");
        const char *reason = json_string_value(json_object_get(body, "reason"));
        if (!reason)
            reason = json_string_value(json_object_get(body, "detail"));
        char workers[24];
        format_int(workers, sizeof workers, body, "workers");
        FILE *out = code == CLI_EXIT_OK ? stdout : stderr;
        fprintf(out, "%s (%s %s): broker %s, %s workers%s%s\n", status, path,
                code == CLI_EXIT_OK ? "200" : "failed", text_or(body, "broker", "?"), workers,
                reason ? ", " : "", reason ? reason : "");
    }
    client_response_clear(&resp);
    return code;
}
