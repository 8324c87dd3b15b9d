/* args: the client commands' options, GNU style (-t TASK, --task TASK,
 * --task=TASK, -tTASK, repeatable -i key=value, positional arguments anywhere,
 * "--" ending options), and the --help text made from the same table, so an
 * option cannot exist without being documented. The server commands keep
 * common/flags.h, whose options are also read from SYN_<NAME> variables; the
 * client's few variables (SYN_API_URL, SYN_API_TOKEN, …) are the original CLI's
 * names and are read by the commands themselves. */
#ifndef SYN_CLI_ARGS_H
#define SYN_CLI_ARGS_H

#include <stdbool.h>
#include <stdio.h>

#define ARGS_MAX_LIST 64
#define ARGS_MAX_POSITIONAL 8

typedef enum {
    ARGS_FLAG,  /* bool *target */
    ARGS_VALUE, /* const char **target (the last one given wins) */
    ARGS_LIST,  /* args_list_t *target (every one given, in order) */
} args_kind_t;

typedef struct {
    const char *items[ARGS_MAX_LIST];
    int count;
} args_list_t;

typedef struct {
    char short_name;       /* 0: none */
    const char *long_name; /* NULL ends a table */
    args_kind_t kind;
    const char *metavar;
    const char *help;
    void *target;
} args_option_t;

/* The table of a command without options of its own. */
extern const args_option_t args_no_options[];

typedef struct {
    const char *usage;   /* "syn run WORKFLOW [options]" */
    const char *summary; /* a paragraph */
    const args_option_t *options;
    int min_args, max_args; /* positional arguments */
} args_command_t;

typedef enum {
    ARGS_OK = 0,
    ARGS_HELP = 1,   /* --help was printed to stdout: exit 0 */
    ARGS_ERROR = -1, /* one line and the usage went to stderr: exit 2 */
} args_result_t;

/* Parses argv[1..argc-1] (argv[0] is the command's name) against the command's
 * options and then the global ones; positional arguments go to positional (at most
 * ARGS_MAX_POSITIONAL), their count to *npositional. */
args_result_t args_parse(const args_command_t *command, const args_option_t *global, int argc,
                         char **argv, const char **positional, int *npositional);

/* The command's help: usage, summary, its options, then the global ones. */
void args_usage(const args_command_t *command, const args_option_t *global, FILE *out);

#endif
