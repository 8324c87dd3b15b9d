/* syn workflow list|show|create|validate|export|archive: workflow templates.
 *
 * create -f and validate send a YAML file as the server takes it. A document that
 * uses prompt_file cannot be uploaded as it is (the server cannot read the user's
 * files), so its prompt files are resolved here, from the file's folder, by the
 * same template code the broker uses for `--workflows DIR` (template/workflow.h):
 * errors then name the user's files (file:line:column), and what is sent is the
 * workflow with its prompts inline. A document without prompt_file goes to the
 * server byte for byte, so the server's line and column numbers are the file's. */
#include "cli/cli.h"
#include "cli/table.h"
#include "template/errors.h"
#include "template/export.h"
#include "template/files.h"
#include "template/workflow.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

static int workflow_list(cli_t *cli, int argc, char **argv)
{
    bool all = false;
    const char *type = NULL;
    const args_option_t options[] = {
        {'a', "all", ARGS_FLAG, NULL, "archived workflows too", &all},
        {0, "type", ARGS_VALUE, "TYPE", "only workflows of this type", &type},
        {0, NULL, 0, NULL, NULL, NULL},
    };
    const args_command_t command = {"syn workflow list [options]",
                                    "Lists the workflows, newest first.", options, 0, 0};
    const char *pos[ARGS_MAX_POSITIONAL];
    int npos, code;
    if (cli_begin(cli, &command, argc, argv, pos, &npos, &code) != 0)
        return code;
    char path[256], escaped[128] = "";
    if (type && client_escape(type, escaped, sizeof escaped) != 0)
        return CLI_EXIT_USAGE;
    snprintf(path, sizeof path, "/workflows?page_size=100&include_archived=%s%s%s",
             all ? "true" : "false", type ? "&workflow_type=" : "", escaped);
    json_t *answer = NULL;
    if ((code = client_call(cli->client, "GET", path, NULL, &answer)) != CLI_EXIT_OK)
        return code;
    const json_t *list = json_object_get(answer, "workflows");
    size_t i;
    const json_t *w;
    if (cli->json)
        cli_print_json(answer);
    else if (cli->quiet)
        json_array_foreach(list, i, w) printf("%s\n", json_string_value(json_object_get(w, "id")));
    else {
        const char *headers[] = {"ID", "NAME", "TYPE", "PHASES", "VERSION", "CREATED"};
        table_t *t = table_new(6, headers);
        table_set_flexible(t, 1);
        table_set_right(t, 3);
        table_set_right(t, 4);
        int64_t now = (int64_t)time(NULL) * 1000000;
        json_array_foreach(list, i, w)
        {
            char phases[16], version[16], ago[32];
            snprintf(phases, sizeof phases, "%lld",
                     (long long)json_integer_value(json_object_get(w, "phase_count")));
            snprintf(version, sizeof version, "%lld%s",
                     (long long)json_integer_value(json_object_get(w, "version")),
                     json_is_true(json_object_get(w, "archived")) ? " (archived)" : "");
            const char *cells[] = {
                json_string_value(json_object_get(w, "id")),
                json_string_value(json_object_get(w, "name")),
                json_string_value(json_object_get(w, "workflow_type")), phases, version,
                table_ago(table_parse_time(json_string_value(json_object_get(w, "created_at"))),
                          now, ago, sizeof ago)};
            table_add(t, cells, NULL);
        }
        cli_print_table(cli, &t);
    }
    json_decref(answer);
    return CLI_EXIT_OK;
}

static const char *text_or(const json_t *obj, const char *key, const char *fallback)
{
    const char *s = json_string_value(json_object_get(obj, key));
    return s ? s : fallback;
}

static void print_workflow(cli_t *cli, const json_t *w)
{
    printf("%s  %s\n", text_or(w, "id", "?"), text_or(w, "name", ""));
    const char *description = text_or(w, "description", NULL);
    if (description)
        printf("%s\n", description);
    printf("type %s, %s, version %lld%s\n", text_or(w, "workflow_type", "-"),
           text_or(w, "classification", "-"),
           (long long)json_integer_value(json_object_get(w, "version")),
           json_is_true(json_object_get(w, "archived")) ? ", archived" : "");
    const json_t *inputs = json_object_get(w, "input_declarations");
    size_t i;
    const json_t *item;
    if (json_array_size(inputs)) {
        printf("\ninputs:\n");
        json_array_foreach(inputs, i, item)
        {
            const char *def = text_or(item, "default", NULL);
            printf("  %s%s%s%s%s  %s\n", text_or(item, "name", "?"),
                   json_is_false(json_object_get(item, "required")) ? " (optional)" : "",
                   def ? " [default: " : "", def ? def : "", def ? "]" : "",
                   text_or(item, "description", ""));
        }
    }
    printf("\n");
    const char *headers[] = {"ORDER", "PHASE", "NAME", "MODEL", "TIMEOUT", "ATTEMPTS"};
    table_t *t = table_new(6, headers);
    table_set_flexible(t, 2);
    table_set_right(t, 0);
    table_set_right(t, 4);
    table_set_right(t, 5);
    json_array_foreach(json_object_get(w, "phases"), i, item)
    {
        char order[16], timeout[32], attempts[16];
        snprintf(order, sizeof order, "%lld",
                 (long long)json_integer_value(json_object_get(item, "order")));
        table_duration((double)json_integer_value(json_object_get(item, "timeout_seconds")),
                       timeout, sizeof timeout);
        snprintf(attempts, sizeof attempts, "%lld",
                 (long long)json_integer_value(json_object_get(item, "max_attempts")));
        const char *cells[] = {order, text_or(item, "phase_id", "?"), text_or(item, "name", ""),
                               text_or(item, "model", "-"), timeout, attempts};
        table_add(t, cells, NULL);
    }
    cli_print_table(cli, &t);
}

/* The commands that take one workflow id (prefixes allowed): parses, resolves the
 * id (into id) and sends method to the path fmt makes of it; the exit code, with
 * the answer in *answer (left NULL after --help, whose exit code is 0 too). */
static int workflow_call(cli_t *cli, int argc, char **argv, const args_command_t *command,
                         const char *method, const char *fmt, char *id, size_t size,
                         json_t **answer)
{
    const char *pos[ARGS_MAX_POSITIONAL];
    int npos, code;
    char path[512];
    if (cli_begin(cli, command, argc, argv, pos, &npos, &code) != 0)
        return code;
    if ((code = cli_resolve_workflow(cli, pos[0], id, size)) != CLI_EXIT_OK)
        return code;
    if (cli_path(path, sizeof path, fmt, id) != 0)
        return CLI_EXIT_USAGE;
    return client_call(cli->client, method, path, NULL, answer);
}

static int workflow_show(cli_t *cli, int argc, char **argv)
{
    const args_command_t command = {"syn workflow show ID",
                                    "Shows a workflow: its inputs and phases.", args_no_options, 1, 1};
    char id[256];
    json_t *w = NULL;
    int code = workflow_call(cli, argc, argv, &command, "GET", "/workflows/%s", id, sizeof id, &w);
    if (code != CLI_EXIT_OK || !w)
        return code;
    if (cli->json)
        cli_print_json(w);
    else if (cli->quiet)
        printf("%s\n", text_or(w, "id", ""));
    else
        print_workflow(cli, w);
    json_decref(w);
    return CLI_EXIT_OK;
}

static int workflow_export(cli_t *cli, int argc, char **argv)
{
    const char *file = NULL;
    const args_option_t options[] = {
        {'o', "output", ARGS_VALUE, "FILE", "write the YAML to FILE (default: stdout)", &file},
        {0, NULL, 0, NULL, NULL, NULL},
    };
    const args_command_t command = {
        "syn workflow export ID [-o FILE]",
        "Prints a workflow as YAML that `syn workflow create -f` turns back into it.", options,
        1, 1};
    char id[256];
    json_t *yaml = NULL;
    int code = workflow_call(cli, argc, argv, &command, "GET", "/workflows/%s/export", id,
                             sizeof id, &yaml);
    if (code != CLI_EXIT_OK || !yaml)
        return code;
    const char *text = json_string_value(yaml);
    FILE *out = file ? fopen(file, "w") : stdout;
    if (!out) {
        fprintf(stderr, "error: cannot write %s: %m\n", file);
        json_decref(yaml);
        return CLI_EXIT_FAILED;
    }
    fputs(text ? text : "", out);
    if (file && fclose(out) != 0) {
        fprintf(stderr, "error: cannot write %s: %m\n", file);
        code = CLI_EXIT_FAILED;
    }
    json_decref(yaml);
    return code;
}

static int workflow_archive(cli_t *cli, int argc, char **argv)
{
    const args_command_t command = {
        "syn workflow archive ID",
        "Archives a workflow: it can no longer run; its executions and history stay.", args_no_options,
        1, 1};
    char id[256];
    json_t *answer = NULL;
    int code = workflow_call(cli, argc, argv, &command, "DELETE", "/workflows/%s", id, sizeof id,
                             &answer);
    if (code != CLI_EXIT_OK || !answer)
        return code;
    if (cli->json)
        cli_print_json(answer);
    else
        printf(cli->quiet ? "%s\n" : "archived workflow %s\n", id);
    json_decref(answer);
    return CLI_EXIT_OK;
}

/* ---- create and validate: a file or a package folder ---- */

typedef struct {
    char path[PATH_MAX]; /* the YAML file */
    char *text;
    size_t len;
    json_t *resolved; /* the workflow with its prompt files inline, when it has any */
} document_t;

static void document_clear(document_t *doc)
{
    free(doc->text);
    json_decref(doc->resolved);
}

/* "file:line:column: field: message" for each error, to stderr. */
static void print_local_errors(const template_errors_t *errors)
{
    for (size_t i = 0; i < template_errors_count(errors); i++) {
        const template_error_t *e = template_errors_get(errors, i);
        fprintf(stderr, "%s:%d:%d: %s%s%s\n", e->file ? e->file : "-", e->line, e->column,
                e->field ? e->field : "", e->field ? ": " : "", e->message);
    }
    size_t more = template_errors_total(errors) - template_errors_count(errors);
    if (more)
        fprintf(stderr, "(and %zu more errors)\n", more);
}

/* Reads the document (FILE, or DIR/workflow.yaml for a package folder) and
 * resolves its prompt files when it has any. The exit code (errors printed). */
static int document_load(document_t *doc, const char *arg)
{
    memset(doc, 0, sizeof *doc);
    struct stat st;
    if (stat(arg, &st) == 0 && S_ISDIR(st.st_mode))
        snprintf(doc->path, sizeof doc->path, "%s/workflow.yaml", arg);
    else
        snprintf(doc->path, sizeof doc->path, "%s", arg);
    char why[PATH_MAX + 128];
    template_error_kind_t kind;
    if (template_file_read(doc->path, TEMPLATE_MAX_DOCUMENT, &doc->text, &doc->len, why,
                           sizeof why, &kind) != 0) {
        fprintf(stderr, "error: %s: %s\n", doc->path, why);
        return kind == TEMPLATE_ERROR_IO ? CLI_EXIT_NOT_FOUND : CLI_EXIT_FAILED;
    }
    /* Parsed as an upload: does it need its folder? */
    template_errors_t *errors = template_errors_new();
    json_t *as_upload = template_workflow_parse(doc->text, doc->len, NULL, NULL, errors);
    bool needs_files = false;
    for (size_t i = 0; !as_upload && i < template_errors_count(errors); i++)
        needs_files = needs_files ||
                      template_errors_get(errors, i)->kind == TEMPLATE_ERROR_UNSUPPORTED;
    json_decref(as_upload);
    template_errors_clear(errors);
    int code = CLI_EXIT_OK;
    if (needs_files) {
        doc->resolved = template_workflow_parse_file(doc->path, errors);
        if (!doc->resolved) {
            print_local_errors(errors);
            code = CLI_EXIT_FAILED;
        }
    }
    template_errors_destroy(&errors);
    return code;
}

/* The server's YAML errors as "file:line:column: field: message", or its detail. */
static void print_server_errors(const char *file, const json_t *errors, const char *fallback)
{
    size_t i;
    const json_t *e;
    if (!json_array_size(errors)) {
        fprintf(stderr, "%s: %s\n", file, fallback);
        return;
    }
    json_array_foreach(errors, i, e)
    {
        const json_t *line = json_object_get(e, "line"), *column = json_object_get(e, "column");
        const char *field = json_string_value(json_object_get(e, "field"));
        fprintf(stderr, "%s", file);
        if (json_is_integer(line))
            fprintf(stderr, ":%lld", (long long)json_integer_value(line));
        if (json_is_integer(line) && json_is_integer(column))
            fprintf(stderr, ":%lld", (long long)json_integer_value(column));
        fprintf(stderr, ": %s%s%s\n", field ? field : "", field ? ": " : "",
                text_or(e, "message", "invalid"));
    }
}

static int workflow_create(cli_t *cli, int argc, char **argv)
{
    const char *file = NULL, *id = NULL;
    const args_option_t options[] = {
        {'f', "file", ARGS_VALUE, "FILE",
         "the workflow: a YAML file, or a package folder (DIR/workflow.yaml and its prompt "
         "files)",
         &file},
        {0, "id", ARGS_VALUE, "ID", "install it under this id instead of the document's", &id},
        {0, NULL, 0, NULL, NULL, NULL},
    };
    const args_command_t command = {
        "syn workflow create -f FILE|DIR [--id ID]",
        "Installs a workflow written in YAML (docs/templates.md). Prompt files are read\n"
        "from the file's folder. Errors are printed as file:line:column: message; exit 1.",
        options, 0, 0};
    const char *pos[ARGS_MAX_POSITIONAL];
    int npos, code;
    if (cli_begin(cli, &command, argc, argv, pos, &npos, &code) != 0)
        return code;
    if (!file) {
        fprintf(stderr, "error: syn workflow create needs -f FILE\n");
        return CLI_EXIT_USAGE;
    }
    document_t doc;
    if ((code = document_load(&doc, file)) != CLI_EXIT_OK) {
        document_clear(&doc);
        return code;
    }
    client_response_t resp;
    char path[512] = "/workflows/from-yaml";
    if (id && cli_path(path, sizeof path, "/workflows/from-yaml?id=%s", id) != 0) {
        document_clear(&doc);
        return CLI_EXIT_USAGE;
    }
    if (doc.resolved) {
        if (id)
            json_object_set_new(doc.resolved, "id", json_string(id));
        char *body = json_dumps(doc.resolved, JSON_COMPACT);
        client_request(cli->client, "POST", "/workflows", NULL, body, body ? strlen(body) : 0,
                       &resp);
        free(body);
    } else {
        client_request(cli->client, "POST", path, "application/yaml", doc.text, doc.len, &resp);
    }
    code = client_exit_code(resp.status, text_or(resp.json, "detail", NULL));
    if (code == CLI_EXIT_OK) {
        if (cli->json)
            cli_print_json(resp.json);
        else
            printf(cli->quiet ? "%s\n" : "created workflow %s\n", text_or(resp.json, "id", "?"));
    } else if (json_object_get(resp.json, "errors")) {
        print_server_errors(doc.path, json_object_get(resp.json, "errors"), resp.error);
    } else {
        fprintf(stderr, "error: %s\n", resp.error);
    }
    client_response_clear(&resp);
    document_clear(&doc);
    return code;
}

static int workflow_validate(cli_t *cli, int argc, char **argv)
{
    const args_command_t command = {
        "syn workflow validate FILE|DIR",
        "Checks a YAML workflow without installing it (the server's checks, prompt files\n"
        "read from the file's folder). Prints every error as file:line:column: message\n"
        "and exits 1, or says it is valid.",
        args_no_options, 1, 1};
    const char *pos[ARGS_MAX_POSITIONAL];
    int npos, code;
    if (cli_begin(cli, &command, argc, argv, pos, &npos, &code) != 0)
        return code;
    document_t doc;
    if ((code = document_load(&doc, pos[0])) != CLI_EXIT_OK) {
        document_clear(&doc);
        return code;
    }
    char *yaml = doc.text;
    size_t len = doc.len;
    char why[256];
    if (doc.resolved && !(yaml = template_export_yaml(doc.resolved, &len, why, sizeof why))) {
        fprintf(stderr, "error: %s\n", why);
        document_clear(&doc);
        return CLI_EXIT_FAILED;
    }
    client_response_t resp;
    client_request(cli->client, "POST", "/workflows/validate", "application/yaml", yaml, len,
                   &resp);
    if (yaml != doc.text)
        free(yaml);
    code = client_exit_code(resp.status, text_or(resp.json, "detail", NULL));
    if (code != CLI_EXIT_OK)
        fprintf(stderr, "error: %s\n", resp.error);
    else if (cli->json) {
        cli_print_json(resp.json);
        code = json_is_true(json_object_get(resp.json, "valid")) ? CLI_EXIT_OK : CLI_EXIT_FAILED;
    } else if (json_is_true(json_object_get(resp.json, "valid"))) {
        if (!cli->quiet)
            printf("%s: valid\n", doc.path);
    } else {
        print_server_errors(doc.path, json_object_get(resp.json, "errors"), "invalid");
        code = CLI_EXIT_FAILED;
    }
    client_response_clear(&resp);
    document_clear(&doc);
    return code;
}

int cmd_workflow(cli_t *cli, int argc, char **argv)
{
    static const struct {
        const char *name;
        int (*run)(cli_t *, int, char **);
    } subs[] = {
        {"list", workflow_list},         {"ls", workflow_list},
        {"show", workflow_show},         {"create", workflow_create},
        {"validate", workflow_validate}, {"export", workflow_export},
        {"archive", workflow_archive},
    };
    if (argc >= 2)
        for (size_t i = 0; i < sizeof subs / sizeof subs[0]; i++)
            if (!strcmp(argv[1], subs[i].name))
                return subs[i].run(cli, argc - 1, argv + 1);
    bool help = argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"));
    FILE *out = help ? stdout : stderr;
    if (argc >= 2 && !help)
        fprintf(stderr, "error: unknown workflow command '%s'\n", argv[1]);
    fprintf(out, "usage: syn workflow COMMAND\n\n"
                 "  list                  the workflows (--all: archived too)\n"
                 "  show ID               a workflow's inputs and phases\n"
                 "  create -f FILE|DIR    install a YAML workflow (or a package folder)\n"
                 "  validate FILE|DIR     check a YAML workflow\n"
                 "  export ID [-o FILE]   a workflow as YAML\n"
                 "  archive ID            archive a workflow\n\n"
                 "`syn workflow COMMAND --help` shows a command's options.\n");
    return help ? CLI_EXIT_OK : CLI_EXIT_USAGE;
}
