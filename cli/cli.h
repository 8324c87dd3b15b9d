/* cli: what every client command of `syn` shares — the global options (--url,
 * --token, --json, -q, --no-color) and the environment they fall back to
 * (SYN_API_URL, SYN_API_TOKEN, SYN_API_USER + SYN_API_PASSWORD, NO_COLOR), the
 * connection made from them, how a JSON answer is printed for scripts, and how an
 * id prefix becomes one id. The commands themselves live one concern per file
 * (cmd_workflow.c, cmd_exec.c, cmd_watch.c, cmd_control.c, cmd_status.c); main.c
 * only dispatches to them. */
#ifndef SYN_CLI_CLI_H
#define SYN_CLI_CLI_H

#include "cli/args.h"
#include "cli/client.h"
#include "cli/table.h"

#include <jansson.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct {
    /* global options */
    const char *url, *token;
    bool json, quiet, no_color;
    args_option_t global[6];
    /* made by cli_begin */
    client_t *client;
    bool color;  /* stdout gets colours */
    int width;   /* stdout's width (a large default when it is not a terminal) */
    volatile sig_atomic_t *interrupt; /* raised by SIGINT (main.c) */
} cli_t;

/* Fills the global options' table (cli->global). */
void cli_init(cli_t *cli, volatile sig_atomic_t *interrupt);
void cli_end(cli_t *cli);

/* Parses a command's arguments and connects. 0 to go on; otherwise the process's
 * exit code is in *code (0 after --help, 2 after a usage error). */
int cli_begin(cli_t *cli, const args_command_t *command, int argc, char **argv,
              const char **positional, int *npositional, int *code);

/* Prints a table for people (fitted to stdout's width, coloured when it is a
 * terminal) and destroys it. */
void cli_print_table(cli_t *cli, table_t **table_p);

/* Prints value for scripts: one JSON document and a newline. Returns 0. */
int cli_print_json(const json_t *value);

/* Which of candidates prefix names: an exact match, else the one candidate it
 * starts. 0 with *index set; -1 none; -2 several (ambiguous). Pure. */
int cli_match_prefix(const char *prefix, const char *const *candidates, size_t n, size_t *index);

/* The workflow id a prefix names, through GET /workflows (archived included): the
 * exit code (0, 4 when none, 2 with the candidates on stderr when several). */
int cli_resolve_workflow(cli_t *cli, const char *prefix, char *out, size_t size);

/* A path with one escaped segment: fmt holds one %s ("/workflows/%s"). -1 when it
 * does not fit. */
int cli_path(char *out, size_t size, const char *fmt, const char *segment);

/* The command entry points: argv[0] is the command's name. Each returns the exit
 * code. */
int cmd_workflow(cli_t *cli, int argc, char **argv);
int cmd_run(cli_t *cli, int argc, char **argv);
int cmd_ls(cli_t *cli, int argc, char **argv);
int cmd_show(cli_t *cli, int argc, char **argv);
int cmd_output(cli_t *cli, int argc, char **argv);
int cmd_logs(cli_t *cli, int argc, char **argv);
int cmd_watch(cli_t *cli, int argc, char **argv);
int cmd_pause(cli_t *cli, int argc, char **argv);
int cmd_resume(cli_t *cli, int argc, char **argv);
int cmd_cancel(cli_t *cli, int argc, char **argv);
int cmd_inject(cli_t *cli, int argc, char **argv);
int cmd_rerun(cli_t *cli, int argc, char **argv);
int cmd_approve(cli_t *cli, int argc, char **argv);
int cmd_reject(cli_t *cli, int argc, char **argv);
int cmd_exec_group(cli_t *cli, int argc, char **argv); /* syn exec approve|reject|artifacts */
int cmd_artifacts(cli_t *cli, int argc, char **argv);  /* cmd_artifacts.c */
int cmd_status(cli_t *cli, int argc, char **argv);
int cmd_health(cli_t *cli, int argc, char **argv);

/* Watches an execution to its end (cmd_watch.c): the live screen on a terminal,
 * plain lines otherwise. The exit code: 0 completed, 1 failed, 3 cancelled, 130
 * after Ctrl-C (with the commands to watch again or cancel), or an error's. */
int cli_watch(cli_t *cli, const char *execution_id);

#endif
