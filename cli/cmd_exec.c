/* syn run|ls|show|output|logs: starting executions and reading what they did.
 * `run` checks the workflow's required inputs before sending anything, so a
 * missing one is a usage error (exit 2) naming the flag that gives it, not a
 * round trip to a 422. */
#include "cli/cli.h"
#include "cli/table.h"
#include "cli/watch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *text_of(const json_t *obj, const char *key, const char *fallback)
{
    const char *s = json_string_value(json_object_get(obj, key));
    return s ? s : fallback;
}

static const char *status_color(const char *status)
{
    if (!strcmp(status, "completed"))
        return TABLE_GREEN;
    if (!strcmp(status, "failed") || !strcmp(status, "cancelled"))
        return TABLE_RED;
    if (!strcmp(status, "paused") || !strcmp(status, "skipped"))
        return TABLE_DIM;
    return TABLE_YELLOW;
}

/* A number option in [min, max]; -1 (message printed) when it is not one. */
static int number_option(const char *name, const char *text, long min, long max, long *out)
{
    char *end;
    long value = strtol(text, &end, 10);
    if (!*text || *end || value < min || value > max) {
        fprintf(stderr, "error: %s must be a number from %ld to %ld (got '%s')\n", name, min, max,
                text);
        return -1;
    }
    *out = value;
    return 0;
}

/* ---- run ---- */

/* The inputs object from -i key=value (and the task), checked against the
 * workflow's declarations: the exit code (2 with the missing ones named). */
static int build_inputs(const json_t *workflow, const args_list_t *pairs, const char *task,
                        json_t *inputs)
{
    for (int i = 0; i < pairs->count; i++) {
        const char *eq = strchr(pairs->items[i], '=');
        if (!eq || eq == pairs->items[i]) {
            fprintf(stderr, "error: -i takes key=value (got '%s')\n", pairs->items[i]);
            return CLI_EXIT_USAGE;
        }
        char key[256];
        snprintf(key, sizeof key, "%.*s", (int)(eq - pairs->items[i]), pairs->items[i]);
        json_object_set_new(inputs, key, json_string(eq + 1));
    }
    char missing[1024] = "";
    size_t i;
    const json_t *decl;
    json_array_foreach(json_object_get(workflow, "input_declarations"), i, decl)
    {
        const char *name = text_of(decl, "name", "");
        bool required = !json_is_false(json_object_get(decl, "required"));
        bool has_default = json_is_string(json_object_get(decl, "default"));
        bool given = json_object_get(inputs, name) || (task && !strcmp(name, "task"));
        if (required && !has_default && !given) {
            size_t used = strlen(missing);
            if (!strcmp(name, "task"))
                snprintf(missing + used, sizeof missing - used, "%s-t TASK", used ? ", " : "");
            else
                snprintf(missing + used, sizeof missing - used, "%s-i %s=VALUE",
                         used ? ", " : "", name);
        }
    }
    if (missing[0]) {
        fprintf(stderr,
                "error: workflow %s has required inputs without a value: give %s (`syn "
                "workflow show %s` describes them)\n",
                text_of(workflow, "id", "?"), missing, text_of(workflow, "id", "?"));
        return CLI_EXIT_USAGE;
    }
    return CLI_EXIT_OK;
}

int cmd_run(cli_t *cli, int argc, char **argv)
{
    const char *task = NULL, *key = NULL;
    args_list_t pairs = {0}, repos = {0};
    bool watch = false, detach = false;
    const args_option_t options[] = {
        {'t', "task", ARGS_VALUE, "TASK", "the task: $ARGUMENTS in prompts, and the input task",
         &task},
        {'i', "input", ARGS_LIST, "KEY=VALUE", "an input (repeatable)", &pairs},
        {'R', "repo", ARGS_LIST, "OWNER/REPO", "a repository the agents work on (repeatable)",
         &repos},
        {0, "idempotency-key", ARGS_VALUE, "KEY",
         "the same KEY and request again answer the first execution (a retry starts "
         "nothing new)",
         &key},
        {0, "watch", ARGS_FLAG, NULL, "watch it to its end, even without a terminal", &watch},
        {'d', "detach", ARGS_FLAG, NULL, "print the id and return at once", &detach},
        {0, NULL, 0, NULL, NULL, NULL},
    };
    const args_command_t command = {
        "syn run WORKFLOW [-t TASK] [-i KEY=VALUE]... [-R OWNER/REPO]... [--idempotency-key K]\n"
        "        [--watch|--detach]",
        "Starts an execution of WORKFLOW and prints its id. On a terminal it then watches it\n"
        "(as `syn watch`) unless --detach; the exit code is then the execution's (0\n"
        "completed, 1 failed, 3 cancelled). Required inputs are checked before sending.",
        options, 1, 1};
    const char *pos[ARGS_MAX_POSITIONAL];
    int npos, code;
    if (cli_begin(cli, &command, argc, argv, pos, &npos, &code) != 0)
        return code;
    if (watch && detach) {
        fprintf(stderr, "error: --watch and --detach contradict each other\n");
        return CLI_EXIT_USAGE;
    }
    char id[256], path[512];
    if ((code = cli_resolve_workflow(cli, pos[0], id, sizeof id)) != CLI_EXIT_OK)
        return code;
    json_t *workflow = NULL;
    cli_path(path, sizeof path, "/workflows/%s", id);
    if ((code = client_call(cli->client, "GET", path, NULL, &workflow)) != CLI_EXIT_OK)
        return code;
    json_t *inputs = json_object();
    code = build_inputs(workflow, &pairs, task, inputs);
    json_decref(workflow);
    if (code != CLI_EXIT_OK) {
        json_decref(inputs);
        return code;
    }
    json_t *body = json_pack("{s:o}", "inputs", inputs);
    if (task)
        json_object_set_new(body, "task", json_string(task));
    if (repos.count) {
        json_t *list = json_array();
        for (int i = 0; i < repos.count; i++)
            json_array_append_new(list, json_string(repos.items[i]));
        json_object_set_new(body, "repos", list);
    }
    json_t *answer = NULL;
    cli_path(path, sizeof path, "/workflows/%s/execute", id);
    char key_line[300];
    snprintf(key_line, sizeof key_line, "Idempotency-Key: %s", key ? key : "");
    if (key && client_set_header(cli->client, key_line) != 0) {
        json_decref(body);
        return CLI_EXIT_FAILED;
    }
    code = client_call(cli->client, "POST", path, body, &answer);
    client_set_header(cli->client, NULL);
    json_decref(body);
    if (code != CLI_EXIT_OK)
        return code;
    char execution[64];
    snprintf(execution, sizeof execution, "%s", text_of(answer, "execution_id", "?"));
    if (cli->json)
        cli_print_json(answer);
    else
        printf("%s\n", execution);
    fflush(stdout);
    json_decref(answer);
    bool terminal = isatty(STDOUT_FILENO) && !cli->json && !cli->quiet;
    if (watch || (terminal && !detach))
        return cli_watch(cli, execution);
    return CLI_EXIT_OK;
}

/* ---- ls ---- */

int cmd_ls(cli_t *cli, int argc, char **argv)
{
    const char *status = NULL, *workflow = NULL, *limit_text = "20", *page_text = "1";
    const args_option_t options[] = {
        {'s', "status", ARGS_VALUE, "STATUS",
         "pending|running|paused|completed|failed|cancelled", &status},
        {'w', "workflow", ARGS_VALUE, "WORKFLOW", "only this workflow's executions", &workflow},
        {0, "limit", ARGS_VALUE, "N", "executions per page, 1..100 (default 20)", &limit_text},
        {0, "page", ARGS_VALUE, "N", "which page (default 1)", &page_text},
        {0, NULL, 0, NULL, NULL, NULL},
    };
    const args_command_t command = {"syn ls [-s STATUS] [-w WORKFLOW] [--limit N] [--page N]",
                                    "Lists executions, newest first.", options, 0, 0};
    const char *pos[ARGS_MAX_POSITIONAL];
    int npos, code;
    if (cli_begin(cli, &command, argc, argv, pos, &npos, &code) != 0)
        return code;
    long limit, page;
    if (number_option("--limit", limit_text, 1, 100, &limit) != 0 ||
        number_option("--page", page_text, 1, 1000000000, &page) != 0)
        return CLI_EXIT_USAGE;
    static const char *const statuses[] = {"pending",   "running", "paused",
                                           "completed", "failed",  "cancelled"};
    size_t which;
    if (status && (cli_match_prefix(status, statuses, 6, &which) != 0)) {
        fprintf(stderr, "error: --status must be one of pending, running, paused, completed, "
                        "failed, cancelled (got '%s')\n",
                status);
        return CLI_EXIT_USAGE;
    }
    char path[768], wf[256] = "", escaped[512] = "";
    if (workflow) {
        if ((code = cli_resolve_workflow(cli, workflow, wf, sizeof wf)) != CLI_EXIT_OK)
            return code;
        client_escape(wf, escaped, sizeof escaped);
    }
    snprintf(path, sizeof path, "/executions?page_size=%ld&page=%ld%s%s%s%s", limit, page,
             status ? "&status=" : "", status ? statuses[which] : "", wf[0] ? "&workflow_id=" : "",
             escaped);
    json_t *answer = NULL;
    if ((code = client_call(cli->client, "GET", path, NULL, &answer)) != CLI_EXIT_OK)
        return code;
    const json_t *list = json_object_get(answer, "executions");
    size_t i;
    const json_t *e;
    if (cli->json)
        cli_print_json(answer);
    else if (cli->quiet)
        json_array_foreach(list, i, e) printf("%s\n", text_of(e, "execution_id", ""));
    else {
        const char *headers[] = {"ID",     "WORKFLOW", "STATUS", "PHASES", "STARTED",
                                 "DURATION", "TOKENS", "COST",   "ERROR"};
        table_t *t = table_new(9, headers);
        table_set_flexible(t, 8);
        table_set_right(t, 5);
        table_set_right(t, 6);
        table_set_right(t, 7);
        int64_t now = (int64_t)time(NULL) * 1000000;
        json_array_foreach(list, i, e)
        {
            char phases[32], ago[32], duration[32], tokens[32], cost[32];
            snprintf(phases, sizeof phases, "%lld/%lld",
                     (long long)json_integer_value(json_object_get(e, "completed_phases")),
                     (long long)json_integer_value(json_object_get(e, "total_phases")));
            table_ago(table_parse_time(text_of(e, "started_at", NULL)), now, ago, sizeof ago);
            const json_t *d = json_object_get(e, "duration_seconds");
            if (json_is_number(d))
                table_duration(json_number_value(d), duration, sizeof duration);
            else
                snprintf(duration, sizeof duration, "-");
            table_count(json_integer_value(json_object_get(e, "total_input_tokens")) +
                            json_integer_value(json_object_get(e, "total_output_tokens")),
                        tokens, sizeof tokens);
            table_cost(json_number_value(json_object_get(e, "total_cost_usd")), cost,
                       sizeof cost);
            const char *st = text_of(e, "status", "?");
            const char *cells[] = {text_of(e, "execution_id", "?"), text_of(e, "workflow_id", ""),
                                   st, phases, ago, duration, tokens, cost,
                                   text_of(e, "error", "")};
            const char *colors[] = {NULL, NULL, status_color(st), NULL, NULL, NULL, NULL, NULL,
                                    TABLE_RED};
            table_add(t, cells, colors);
        }
        cli_print_table(cli, &t);
        long long total = json_integer_value(json_object_get(answer, "total"));
        if (total > (long long)(page * limit))
            fprintf(stderr, "(%lld executions; --page %ld for more)\n", total, page + 1);
    }
    json_decref(answer);
    return CLI_EXIT_OK;
}

/* ---- show ---- */

/* The commands that read one execution: parses, then GET /executions/{id} (a
 * prefix is resolved by the server); the exit code, with the execution in *out
 * (left NULL after --help, whose exit code is 0 too). */
static int begin_with_execution(cli_t *cli, const args_command_t *command, int argc, char **argv,
                                const char **pos, int *npos, json_t **out)
{
    int code;
    char path[512];
    if (cli_begin(cli, command, argc, argv, pos, npos, &code) != 0)
        return code;
    if (cli_path(path, sizeof path, "/executions/%s", pos[0]) != 0) {
        fprintf(stderr, "error: id too long\n");
        return CLI_EXIT_USAGE;
    }
    return client_call(cli->client, "GET", path, NULL, out);
}

static void print_execution(cli_t *cli, const json_t *e)
{
    char a[32], b[32], c[32], d[32], f[32];
    const char *st = text_of(e, "status", "?");
    int64_t now = (int64_t)time(NULL) * 1000000;
    if (cli->color)
        printf("%s  %s  \033[%sm%s\033[0m\n", text_of(e, "execution_id", "?"),
               text_of(e, "workflow_id", ""), status_color(st), st);
    else
        printf("%s  %s  %s\n", text_of(e, "execution_id", "?"), text_of(e, "workflow_id", ""), st);
    const json_t *dur = json_object_get(e, "duration_seconds");
    printf("started %s, %s, %lld/%lld phases, tokens %s in / %s out, %s\n",
           table_ago(table_parse_time(text_of(e, "started_at", NULL)), now, a, sizeof a),
           json_is_number(dur) ? table_duration(json_number_value(dur), b, sizeof b) : "-",
           (long long)json_integer_value(json_object_get(e, "completed_phases")),
           (long long)json_integer_value(json_object_get(e, "total_phases")),
           table_count(json_integer_value(json_object_get(e, "total_input_tokens")), c, sizeof c),
           table_count(json_integer_value(json_object_get(e, "total_output_tokens")), d,
                       sizeof d),
           table_cost(json_number_value(json_object_get(e, "total_cost_usd")), f, sizeof f));
    if (text_of(e, "task", NULL))
        printf("task: %s\n", text_of(e, "task", ""));
    if (text_of(e, "error", NULL))
        printf("error: %s\n", text_of(e, "error", ""));
    printf("\n");
    const char *headers[] = {"PHASE", "NAME", "STATUS", "ATTEMPTS", "WORKER",
                             "DURATION", "TOKENS", "COST", "ERROR"};
    table_t *t = table_new(9, headers);
    table_set_flexible(t, 8);
    table_set_right(t, 3);
    table_set_right(t, 5);
    table_set_right(t, 7);
    size_t i;
    const json_t *p;
    json_array_foreach(json_object_get(e, "phases"), i, p)
    {
        const json_t *attempts = json_object_get(p, "attempts");
        const json_t *last = json_array_get(attempts, json_array_size(attempts) - 1);
        char count[16], duration[32] = "-", tokens[64], cost[32];
        snprintf(count, sizeof count, "%zu", json_array_size(attempts));
        const json_t *pd = json_object_get(p, "duration_seconds");
        if (json_is_number(pd))
            table_duration(json_number_value(pd), duration, sizeof duration);
        snprintf(tokens, sizeof tokens, "%s/%s",
                 table_count(json_integer_value(json_object_get(p, "input_tokens")), a, sizeof a),
                 table_count(json_integer_value(json_object_get(p, "output_tokens")), b,
                             sizeof b));
        table_cost(json_number_value(json_object_get(p, "cost_usd")), cost, sizeof cost);
        const char *st_p = text_of(p, "status", "?");
        const char *cells[] = {text_of(p, "phase_id", "?"), text_of(p, "name", ""), st_p, count,
                               text_of(last, "worker", "-"), duration, tokens, cost,
                               text_of(p, "error", "")};
        const char *colors[] = {NULL, NULL, status_color(st_p), NULL, NULL, NULL, NULL, NULL,
                                TABLE_RED};
        table_add(t, cells, colors);
    }
    cli_print_table(cli, &t);
}

int cmd_show(cli_t *cli, int argc, char **argv)
{
    const args_command_t command = {
        "syn show ID",
        "Shows an execution: its phases with status, attempts, worker, duration, tokens\n"
        "and cost.",
        args_no_options, 1, 1};
    const char *pos[ARGS_MAX_POSITIONAL];
    int npos;
    json_t *e = NULL;
    int code = begin_with_execution(cli, &command, argc, argv, pos, &npos, &e);
    if (code != CLI_EXIT_OK || !e)
        return code;
    if (cli->json)
        cli_print_json(e);
    else if (cli->quiet)
        printf("%s\n", text_of(e, "execution_id", ""));
    else
        print_execution(cli, e);
    json_decref(e);
    return CLI_EXIT_OK;
}

/* ---- output ---- */

int cmd_output(cli_t *cli, int argc, char **argv)
{
    const args_command_t command = {
        "syn output ID [PHASE]",
        "Prints a phase's whole output, as the agent wrote it; without PHASE, the last\n"
        "phase that finished.",
        args_no_options, 1, 2};
    const char *pos[ARGS_MAX_POSITIONAL];
    int npos;
    json_t *e = NULL;
    int code = begin_with_execution(cli, &command, argc, argv, pos, &npos, &e);
    if (code != CLI_EXIT_OK || !e)
        return code;
    const char *phase = npos > 1 ? pos[1] : NULL;
    size_t i;
    const json_t *p;
    if (!phase)
        json_array_foreach(json_object_get(e, "phases"), i, p)
        {
            const char *st = text_of(p, "status", "");
            if (!strcmp(st, "completed") || !strcmp(st, "failed"))
                phase = text_of(p, "phase_id", NULL);
        }
    if (!phase) {
        fprintf(stderr, "error: no phase of %s has finished yet (give a PHASE)\n",
                text_of(e, "execution_id", pos[0]));
        json_decref(e);
        return CLI_EXIT_NOT_FOUND;
    }
    char id_escaped[256], phase_escaped[512], path[1024];
    client_escape(text_of(e, "execution_id", ""), id_escaped, sizeof id_escaped);
    if (client_escape(phase, phase_escaped, sizeof phase_escaped) != 0) {
        json_decref(e);
        return CLI_EXIT_USAGE;
    }
    snprintf(path, sizeof path, "/executions/%s/phases/%s/output", id_escaped, phase_escaped);
    json_t *phase_name = json_string(phase);
    json_decref(e);
    client_response_t resp;
    client_request(cli->client, "GET", path, NULL, NULL, 0, &resp);
    code = client_exit_code(resp.status, json_string_value(json_object_get(resp.json, "detail")));
    if (code != CLI_EXIT_OK)
        fprintf(stderr, "error: %s\n", resp.error);
    else if (cli->json) {
        json_t *doc = json_pack("{s:O,s:s%}", "phase_id", phase_name, "output", resp.body,
                                resp.len);
        cli_print_json(doc);
        json_decref(doc);
    } else {
        fwrite(resp.body, 1, resp.len, stdout);
        if (resp.len && resp.body[resp.len - 1] != '\n' && isatty(STDOUT_FILENO))
            putchar('\n');
    }
    json_decref(phase_name);
    client_response_clear(&resp);
    return code;
}

/* ---- logs ---- */

typedef struct {
    json_t *frames; /* --json: every frame */
    watch_t *state; /* drops repeats after a resume, and knows the end */
} logs_t;

static int log_frame(void *arg, long long id, const json_t *frame)
{
    logs_t *logs = arg;
    if (watch_apply(logs->state, id, frame) <= 0)
        return watch_done(logs->state);
    if (logs->frames)
        json_array_append(logs->frames, (json_t *)frame);
    else {
        char *line = watch_event_line(id, frame);
        if (line) {
            fputs(line, stdout);
            fflush(stdout);
        }
        free(line);
    }
    return watch_done(logs->state);
}

int cmd_logs(cli_t *cli, int argc, char **argv)
{
    bool follow = false;
    const args_option_t options[] = {
        {'f', "follow", ARGS_FLAG, NULL, "keep printing new events until the execution ends",
         &follow},
        {0, NULL, 0, NULL, NULL, NULL},
    };
    const args_command_t command = {
        "syn logs ID [-f]",
        "Prints an execution's event log, one line per event (output chunks indented\n"
        "under theirs). Without -f it stops at the last event so far.",
        options, 1, 1};
    const char *pos[ARGS_MAX_POSITIONAL];
    int npos, code;
    if (cli_begin(cli, &command, argc, argv, pos, &npos, &code) != 0)
        return code;
    char path[512];
    if (cli_path(path, sizeof path, "/sse/executions/%s", pos[0]) != 0)
        return CLI_EXIT_USAGE;
    logs_t logs = {.frames = cli->json ? json_array() : NULL, .state = watch_new()};
    /* The API has no plain read of the event log: the stream replays it from the
     * log at once, so a second of quiet after the first frame is its end. */
    if (!follow)
        client_stream_idle_stop(cli->client, 1000);
    long long last_id = -1;
    code = client_stream(cli->client, path, &last_id, log_frame, NULL, &logs, 30000);
    if (code == CLI_EXIT_OK && logs.frames)
        cli_print_json(logs.frames);
    json_decref(logs.frames);
    watch_destroy(&logs.state);
    return code == CLI_EXIT_INTERRUPTED ? CLI_EXIT_OK : code;
}
