/* cli: the client commands' shared options, connection, JSON printing and id
 * prefixes (see cli.h). */
#include "cli/cli.h"

#include "cli/table.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void cli_init(cli_t *cli, volatile sig_atomic_t *interrupt)
{
    memset(cli, 0, sizeof *cli);
    cli->interrupt = interrupt;
    const args_option_t global[] = {
        {0, "url", ARGS_VALUE, "URL",
         "the gateway (default $SYN_API_URL, else " CLI_DEFAULT_URL ")", &cli->url},
        {0, "token", ARGS_VALUE, "TOKEN",
         "API token (default $SYN_API_TOKEN; or basic auth from $SYN_API_USER and "
         "$SYN_API_PASSWORD)",
         &cli->token},
        {0, "json", ARGS_FLAG, NULL, "print the API's JSON answer as one document", &cli->json},
        {'q', "quiet", ARGS_FLAG, NULL, "print ids only", &cli->quiet},
        {0, "no-color", ARGS_FLAG, NULL, "no colours (also when NO_COLOR is set)", &cli->no_color},
        {0, NULL, 0, NULL, NULL, NULL},
    };
    memcpy(cli->global, global, sizeof global);
}

void cli_end(cli_t *cli)
{
    client_destroy(&cli->client);
}

static const char *env(const char *name)
{
    const char *value = getenv(name);
    return value && *value ? value : NULL;
}

int cli_begin(cli_t *cli, const args_command_t *command, int argc, char **argv,
              const char **positional, int *npositional, int *code)
{
    args_result_t parsed = args_parse(command, cli->global, argc, argv, positional, npositional);
    if (parsed != ARGS_OK) {
        *code = parsed == ARGS_HELP ? CLI_EXIT_OK : CLI_EXIT_USAGE;
        return -1;
    }
    client_config_t config = {
        .url = cli->url ? cli->url : env("SYN_API_URL"),
        .token = cli->token ? cli->token : env("SYN_API_TOKEN"),
        .user = env("SYN_API_USER"),
        .password = getenv("SYN_API_PASSWORD"),
    };
    if (config.url && strncmp(config.url, "http://", 7) != 0 &&
        strncmp(config.url, "https://", 8) != 0) {
        fprintf(stderr, "error: --url must start with http:// or https:// (got '%s')\n",
                config.url);
        *code = CLI_EXIT_USAGE;
        return -1;
    }
    cli->client = client_new(&config);
    if (!cli->client) {
        fprintf(stderr, "error: out of memory\n");
        *code = CLI_EXIT_FAILED;
        return -1;
    }
    client_set_interrupt(cli->client, cli->interrupt);
    cli->color = table_use_color(STDOUT_FILENO, cli->no_color);
    cli->width = table_terminal_width(STDOUT_FILENO, 0);
    return 0;
}

void cli_print_table(cli_t *cli, table_t **table_p)
{
    if (!*table_p)
        return;
    char *text = table_render(*table_p, cli->width, cli->color);
    fputs(text ? text : "", stdout);
    free(text);
    table_destroy(table_p);
}

int cli_print_json(const json_t *value)
{
    char *text = json_dumps(value, JSON_INDENT(2) | JSON_ENCODE_ANY);
    if (text) {
        printf("%s\n", text);
        free(text);
    }
    return 0;
}

int cli_match_prefix(const char *prefix, const char *const *candidates, size_t n, size_t *index)
{
    size_t matches = 0, len = strlen(prefix);
    for (size_t i = 0; i < n; i++) {
        if (!strcmp(candidates[i], prefix)) {
            *index = i;
            return 0;
        }
        if (len && !strncmp(candidates[i], prefix, len)) {
            if (!matches)
                *index = i;
            matches++;
        }
    }
    return matches == 1 ? 0 : matches == 0 ? -1 : -2;
}

int cli_path(char *out, size_t size, const char *fmt, const char *segment)
{
    char escaped[512];
    if (client_escape(segment, escaped, sizeof escaped) != 0)
        return -1;
    int n = snprintf(out, size, fmt, escaped);
    return n > 0 && (size_t)n < size ? 0 : -1;
}

/* Every workflow id (archived too), page by page. */
static int all_workflow_ids(cli_t *cli, json_t *ids)
{
    for (int page = 1; page <= 1000; page++) {
        char path[128];
        snprintf(path, sizeof path, "/workflows?include_archived=true&page_size=100&page=%d",
                 page);
        json_t *answer = NULL;
        int code = client_call(cli->client, "GET", path, NULL, &answer);
        if (code != CLI_EXIT_OK)
            return code;
        const json_t *list = json_object_get(answer, "workflows");
        size_t i;
        const json_t *w;
        json_array_foreach(list, i, w) json_array_append(ids, json_object_get(w, "id"));
        size_t total = (size_t)json_integer_value(json_object_get(answer, "total"));
        size_t got = json_array_size(list);
        json_decref(answer);
        if (got == 0 || json_array_size(ids) >= total)
            break;
    }
    return CLI_EXIT_OK;
}

int cli_resolve_workflow(cli_t *cli, const char *prefix, char *out, size_t size)
{
    json_t *ids = json_array();
    int code = ids ? all_workflow_ids(cli, ids) : CLI_EXIT_FAILED;
    if (code != CLI_EXIT_OK) {
        json_decref(ids);
        return code;
    }
    size_t n = json_array_size(ids), index = 0;
    const char **names = calloc(n ? n : 1, sizeof *names);
    if (!names) {
        json_decref(ids);
        return CLI_EXIT_FAILED;
    }
    for (size_t i = 0; i < n; i++)
        names[i] = json_string_value(json_array_get(ids, i)) ? json_string_value(json_array_get(ids, i)) : "";
    int match = cli_match_prefix(prefix, names, n, &index);
    if (match == 0) {
        snprintf(out, size, "%s", names[index]);
        code = CLI_EXIT_OK;
    } else if (match == -1) {
        fprintf(stderr, "error: Workflow %s not found\n", prefix);
        code = CLI_EXIT_NOT_FOUND;
    } else {
        fprintf(stderr, "error: ambiguous workflow id %s: matches", prefix);
        size_t shown = 0;
        for (size_t i = 0; i < n; i++)
            if (!strncmp(names[i], prefix, strlen(prefix)) && shown++ < 10)
                fprintf(stderr, "%s %s", shown > 1 ? "," : "", names[i]);
        fprintf(stderr, "%s\n", shown > 10 ? ", …" : "");
        code = CLI_EXIT_USAGE;
    }
    free(names);
    json_decref(ids);
    return code;
}
