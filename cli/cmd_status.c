/* syn status: is the service up? The gateway's /health (broker up or down, how
 * many workers), and each worker's busy and free slots from GET /workers where the
 * gateway has that route; a gateway without it answers 404, and the status then
 * shows /health's count alone, so the command works against both. */
#include "cli/cli.h"
#include "cli/table.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static long long first_int(const json_t *obj, const char *const *keys)
{
    for (; *keys; keys++)
        if (json_is_integer(json_object_get(obj, *keys)))
            return (long long)json_integer_value(json_object_get(obj, *keys));
    return -1;
}

static const char *first_text(const json_t *obj, const char *const *keys)
{
    for (; *keys; keys++)
        if (json_is_string(json_object_get(obj, *keys)))
            return json_string_value(json_object_get(obj, *keys));
    return "?";
}

/* One row per worker, from whichever names the route uses for them. */
static void print_workers(cli_t *cli, const json_t *workers)
{
    static const char *const names[] = {"worker_id", "name", "id", NULL};
    static const char *const slots_keys[] = {"slots", "capacity", NULL};
    static const char *const busy_keys[] = {"busy", "busy_slots", "active", "running", NULL};
    const char *headers[] = {"WORKER", "SLOTS", "BUSY", "FREE", "PROVIDERS"};
    table_t *t = table_new(5, headers);
    table_set_right(t, 1);
    table_set_right(t, 2);
    table_set_right(t, 3);
    size_t i;
    const json_t *w;
    json_array_foreach(workers, i, w)
    {
        long long slots = first_int(w, slots_keys), busy = first_int(w, busy_keys);
        char s[24] = "?", b[24] = "?", f[24] = "?", providers[256] = "";
        if (slots >= 0)
            snprintf(s, sizeof s, "%lld", slots);
        if (busy >= 0)
            snprintf(b, sizeof b, "%lld", busy);
        if (slots >= 0 && busy >= 0)
            snprintf(f, sizeof f, "%lld", slots - busy > 0 ? slots - busy : 0);
        size_t j;
        const json_t *p;
        json_array_foreach(json_object_get(w, "providers"), j, p)
        {
            size_t used = strlen(providers);
            snprintf(providers + used, sizeof providers - used, "%s%s", j ? "," : "",
                     json_string_value(p) ? json_string_value(p) : "?");
        }
        const char *cells[] = {first_text(w, names), s, b, f, providers};
        table_add(t, cells, NULL);
    }
    cli_print_table(cli, &t);
}

int cmd_status(cli_t *cli, int argc, char **argv)
{
    const args_command_t command = {
        "syn status",
        "Shows the gateway's health, the broker's, and the workers (with their busy and\n"
        "free slots where the gateway serves GET /workers). Exit 0 when all is up, 5 when\n"
        "the gateway cannot be reached or the broker is down.",
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
        bool ok = status && !strcmp(status, "ok");
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
