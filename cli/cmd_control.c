/* syn pause|resume|cancel|inject|approve|reject: steering a running execution;
 * syn rerun: a finished one again from a phase. `cancel` asks first when a person
 * is at the terminal (stdin a TTY), since it cannot be undone; -y, or a script's
 * stdin, skips the question. approve and reject answer an approval gate; they are
 * also `syn exec approve|reject`. */
#include "cli/cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The longest message the broker takes (64 KiB), plus one byte to notice more. */
#define INJECT_MAX (64 * 1024)

/* POST /executions/{id}/{verb} with body (may be NULL): prints the new state. */
static int control(cli_t *cli, const char *id, const char *verb, json_t *body)
{
    char path[512], escaped[256];
    if (client_escape(id, escaped, sizeof escaped) != 0) {
        json_decref(body);
        return CLI_EXIT_USAGE;
    }
    snprintf(path, sizeof path, "/executions/%s/%s", escaped, verb);
    json_t *answer = NULL;
    int code = client_call(cli->client, "POST", path, body, &answer);
    json_decref(body);
    if (code != CLI_EXIT_OK)
        return code;
    const char *full = json_string_value(json_object_get(answer, "execution_id"));
    const char *state = json_string_value(json_object_get(answer, "state"));
    const char *message = json_string_value(json_object_get(answer, "message"));
    if (cli->json)
        cli_print_json(answer);
    else if (cli->quiet)
        printf("%s\n", full ? full : id);
    else
        printf("%s %s (%s)\n", full ? full : id, state ? state : "?", message ? message : verb);
    json_decref(answer);
    return CLI_EXIT_OK;
}

static json_t *reason_body(const char *reason)
{
    return reason ? json_pack("{s:s}", "reason", reason) : json_object();
}

static int pause_or_cancel(cli_t *cli, int argc, char **argv, bool cancel)
{
    const char *reason = NULL;
    bool yes = false;
    const args_option_t options[] = {
        {'r', "reason", ARGS_VALUE, "REASON", "why (kept with the execution)", &reason},
        {'y', "yes", ARGS_FLAG, NULL, "do not ask for confirmation", &yes},
        {0, NULL, 0, NULL, NULL, NULL},
    };
    const args_option_t pause_table[] = {options[0], {0, NULL, 0, NULL, NULL, NULL}}; /* no -y */
    const args_command_t command =
        cancel ? (args_command_t){"syn cancel ID [--reason R] [-y]",
                                  "Cancels an execution: its running agent is stopped, later "
                                  "phases never start.\nAsks for confirmation on a terminal.",
                                  options, 1, 1}
               : (args_command_t){"syn pause ID [--reason R]",
                                  "Pauses an execution: the running phase finishes, the next "
                                  "waits for `syn resume`.",
                                  pause_table, 1, 1};
    const char *pos[ARGS_MAX_POSITIONAL];
    int npos, code;
    if (cli_begin(cli, &command, argc, argv, pos, &npos, &code) != 0)
        return code;
    if (cancel && !yes && isatty(STDIN_FILENO)) {
        fprintf(stderr, "Cancel execution %s? Its running agent is stopped. [y/N] ", pos[0]);
        char answer[16] = "";
        if (!fgets(answer, sizeof answer, stdin) || (answer[0] != 'y' && answer[0] != 'Y')) {
            fprintf(stderr, "not cancelled\n");
            return CLI_EXIT_FAILED;
        }
    }
    return control(cli, pos[0], cancel ? "cancel" : "pause", reason_body(reason));
}

int cmd_pause(cli_t *cli, int argc, char **argv)
{
    return pause_or_cancel(cli, argc, argv, false);
}

int cmd_cancel(cli_t *cli, int argc, char **argv)
{
    return pause_or_cancel(cli, argc, argv, true);
}

int cmd_resume(cli_t *cli, int argc, char **argv)
{
    const args_command_t command = {"syn resume ID",
                                    "Resumes a paused execution with its next phase.", args_no_options,
                                    1, 1};
    const char *pos[ARGS_MAX_POSITIONAL];
    int npos, code;
    if (cli_begin(cli, &command, argc, argv, pos, &npos, &code) != 0)
        return code;
    return control(cli, pos[0], "resume", NULL);
}

/* stdin, whole, up to INJECT_MAX bytes; NULL when there is more or none. */
static char *read_stdin_message(void)
{
    char *text = malloc(INJECT_MAX + 2);
    if (!text)
        return NULL;
    size_t len = fread(text, 1, INJECT_MAX + 1, stdin);
    if (len == 0 || len > INJECT_MAX) {
        free(text);
        return NULL;
    }
    while (len && text[len - 1] == '\n')
        len--;
    text[len] = '\0';
    return text;
}

int cmd_inject(cli_t *cli, int argc, char **argv)
{
    const char *message = NULL;
    bool system_role = false;
    const args_option_t options[] = {
        {'m', "message", ARGS_VALUE, "MESSAGE", "the message (default: read from stdin)",
         &message},
        {0, "system", ARGS_FLAG, NULL, "send it with role system instead of user", &system_role},
        {0, NULL, 0, NULL, NULL, NULL},
    };
    const args_command_t command = {
        "syn inject ID [-m MESSAGE]",
        "Gives the execution's agents a message: added to the next phase's prompt, and to\n"
        "the running agent live where its worker can. Without -m the message is read from\n"
        "stdin.",
        options, 1, 1};
    const char *pos[ARGS_MAX_POSITIONAL];
    int npos, code;
    if (cli_begin(cli, &command, argc, argv, pos, &npos, &code) != 0)
        return code;
    char *read = NULL;
    if (!message) {
        if (isatty(STDIN_FILENO))
            fprintf(stderr, "message (end with Ctrl-D):\n");
        message = read = read_stdin_message();
    }
    if (!message || !*message) {
        fprintf(stderr, "error: syn inject needs a message (-m MESSAGE or on stdin, at most "
                        "64 KiB)\n");
        free(read);
        return CLI_EXIT_USAGE;
    }
    json_t *body = json_pack("{s:s,s:s}", "message", message, "role",
                             system_role ? "system" : "user");
    free(read);
    return control(cli, pos[0], "inject", body);
}

int cmd_rerun(cli_t *cli, int argc, char **argv)
{
    const char *from = NULL, *task = NULL;
    const args_option_t options[] = {
        {'f', "from", ARGS_VALUE, "PHASE",
         "the first phase to run again (default: the first that did not complete)", &from},
        {'t', "task", ARGS_VALUE, "TASK", "a new task (else the execution's own)", &task},
        {0, NULL, 0, NULL, NULL, NULL},
    };
    const args_command_t command = {
        "syn rerun ID [--from PHASE] [-t TASK]",
        "Starts a new execution of a finished one's workflow version, inputs and repos:\n"
        "the phases before PHASE are reused (their outputs, tokens and cost, not run\n"
        "again), PHASE and the later ones run. Prints the new execution's id.",
        options, 1, 1};
    const char *pos[ARGS_MAX_POSITIONAL];
    int npos, code;
    if (cli_begin(cli, &command, argc, argv, pos, &npos, &code) != 0)
        return code;
    char path[512], escaped[256];
    if (client_escape(pos[0], escaped, sizeof escaped) != 0)
        return CLI_EXIT_USAGE;
    snprintf(path, sizeof path, "/executions/%s/rerun", escaped);
    json_t *body = json_object();
    if (from)
        json_object_set_new(body, "from_phase", json_string(from));
    if (task)
        json_object_set_new(body, "task", json_string(task));
    json_t *answer = NULL;
    code = client_call(cli->client, "POST", path, body, &answer);
    json_decref(body);
    if (code != CLI_EXIT_OK)
        return code;
    if (cli->json)
        cli_print_json(answer);
    else
        printf("%s\n", json_string_value(json_object_get(answer, "execution_id")));
    json_decref(answer);
    return CLI_EXIT_OK;
}

static int approve_or_reject(cli_t *cli, int argc, char **argv, bool approve)
{
    const char *text = NULL;
    const args_option_t approve_options[] = {
        {'m', "comment", ARGS_VALUE, "COMMENT",
         "a note for the phase (in its prompt, as an operator message)", &text},
        {0, NULL, 0, NULL, NULL, NULL},
    };
    const args_option_t reject_options[] = {
        {'r', "reason", ARGS_VALUE, "REASON", "why (the execution's error)", &text},
        {0, NULL, 0, NULL, NULL, NULL},
    };
    const args_command_t command =
        approve ? (args_command_t){"syn approve ID [-m COMMENT]",
                                   "Approves the gate an execution waits at (a phase with "
                                   "execution_type: human_in_loop):\nthe phase runs, with the "
                                   "comment among its operator messages.",
                                   approve_options, 1, 1}
                : (args_command_t){"syn reject ID [--reason R]",
                                   "Rejects the gate an execution waits at: the execution "
                                   "ends cancelled with the reason.",
                                   reject_options, 1, 1};
    const char *pos[ARGS_MAX_POSITIONAL];
    int npos, code;
    if (cli_begin(cli, &command, argc, argv, pos, &npos, &code) != 0)
        return code;
    json_t *body = text ? json_pack("{s:s}", approve ? "comment" : "reason", text) : json_object();
    return control(cli, pos[0], approve ? "approve" : "reject", body);
}

int cmd_approve(cli_t *cli, int argc, char **argv)
{
    return approve_or_reject(cli, argc, argv, true);
}

int cmd_reject(cli_t *cli, int argc, char **argv)
{
    return approve_or_reject(cli, argc, argv, false);
}

/* syn exec approve|reject ID: the same commands, grouped as the original's CLI
 * groups execution commands; syn exec artifacts ID (cmd_artifacts.c). */
int cmd_exec_group(cli_t *cli, int argc, char **argv)
{
    if (argc >= 2 && !strcmp(argv[1], "approve"))
        return cmd_approve(cli, argc - 1, argv + 1);
    if (argc >= 2 && !strcmp(argv[1], "reject"))
        return cmd_reject(cli, argc - 1, argv + 1);
    if (argc >= 2 && !strcmp(argv[1], "artifacts"))
        return cmd_artifacts(cli, argc - 1, argv + 1);
    bool help = argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"));
    if (argc >= 2 && !help)
        fprintf(stderr, "error: unknown exec command '%s'\n", argv[1]);
    fprintf(help ? stdout : stderr,
            "usage: syn exec COMMAND\n\n"
            "  approve ID [-m COMMENT]   approve the gate an execution waits at\n"
            "  reject ID [--reason R]    reject it: the execution ends cancelled\n"
            "  artifacts ID [--get PHASE/PATH | --all] [-o FILE]\n"
            "                            list an execution's artifacts, or save them\n");
    return help ? CLI_EXIT_OK : CLI_EXIT_USAGE;
}
