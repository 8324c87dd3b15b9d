/* args: GNU-style options for the client commands and their help (see args.h). */
#include "cli/args.h"

#include <string.h>

const args_option_t args_no_options[] = {{0, NULL, 0, NULL, NULL, NULL}};

static const args_option_t *find_long(const args_option_t *table, const char *name, size_t len)
{
    for (const args_option_t *o = table; o && o->long_name; o++)
        if (strlen(o->long_name) == len && !strncmp(o->long_name, name, len))
            return o;
    return NULL;
}

static const args_option_t *find_short(const args_option_t *table, char c)
{
    for (const args_option_t *o = table; o && o->long_name; o++)
        if (o->short_name == c)
            return o;
    return NULL;
}

static int store(const args_option_t *o, const char *value)
{
    switch (o->kind) {
    case ARGS_FLAG:
        *(bool *)o->target = true;
        return 0;
    case ARGS_VALUE:
        *(const char **)o->target = value;
        return 0;
    case ARGS_LIST: {
        args_list_t *list = o->target;
        if (list->count >= ARGS_MAX_LIST)
            return -1;
        list->items[list->count++] = value;
        return 0;
    }
    }
    return -1;
}

static args_result_t fail(const args_command_t *command, const char *what, const char *arg)
{
    fprintf(stderr, "error: %s '%s'\n", what, arg);
    fprintf(stderr, "usage: %s\n(%.*s --help shows every option)\n", command->usage,
            (int)strcspn(command->usage, "[ABCDEFGHIJKLMNOPQRSTUVWXYZ"), command->usage);
    return ARGS_ERROR;
}

args_result_t args_parse(const args_command_t *command, const args_option_t *global, int argc,
                         char **argv, const char **positional, int *npositional)
{
    const args_option_t *tables[2] = {command->options, global};
    *npositional = 0;
    bool options_done = false;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (options_done || arg[0] != '-' || !arg[1]) {
            if (*npositional >= ARGS_MAX_POSITIONAL || *npositional >= command->max_args)
                return fail(command, "unexpected argument", arg);
            positional[(*npositional)++] = arg;
            continue;
        }
        if (!strcmp(arg, "--")) {
            options_done = true;
            continue;
        }
        if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) {
            args_usage(command, global, stdout);
            return ARGS_HELP;
        }
        const args_option_t *o = NULL;
        const char *value = NULL;
        if (arg[1] == '-') {
            size_t len = strcspn(arg + 2, "=");
            for (int t = 0; t < 2 && !o; t++)
                o = find_long(tables[t], arg + 2, len);
            if (!o)
                return fail(command, "unknown option", arg);
            if (arg[2 + len] == '=') {
                if (o->kind == ARGS_FLAG)
                    return fail(command, "option takes no value", arg);
                value = arg + 3 + len;
            }
        } else {
            for (int t = 0; t < 2 && !o; t++)
                o = find_short(tables[t], arg[1]);
            if (!o)
                return fail(command, "unknown option", arg);
            if (arg[2]) {
                if (o->kind == ARGS_FLAG)
                    return fail(command, "unknown option", arg);
                value = arg + 2;
            }
        }
        if (o->kind != ARGS_FLAG && !value) {
            if (i + 1 >= argc)
                return fail(command, "option needs a value", arg);
            value = argv[++i];
        }
        if (store(o, value) != 0)
            return fail(command, "option given too many times", arg);
    }
    if (*npositional < command->min_args) {
        fprintf(stderr, "error: %s needs more arguments\nusage: %s\n", argv[0], command->usage);
        return ARGS_ERROR;
    }
    return ARGS_OK;
}

static void print_options(const args_option_t *table, FILE *out)
{
    for (const args_option_t *o = table; o && o->long_name; o++) {
        char left[64];
        int n = 0;
        if (o->short_name)
            n = snprintf(left, sizeof left, "-%c, ", o->short_name);
        else
            n = snprintf(left, sizeof left, "    ");
        snprintf(left + n, sizeof left - (size_t)n, "--%s%s%s", o->long_name,
                 o->kind == ARGS_FLAG ? "" : " ", o->kind == ARGS_FLAG ? "" : o->metavar);
        if (strlen(left) > 24)
            fprintf(out, "  %s\n  %-24s  %s\n", left, "", o->help);
        else
            fprintf(out, "  %-24s  %s\n", left, o->help);
    }
}

void args_usage(const args_command_t *command, const args_option_t *global, FILE *out)
{
    fprintf(out, "usage: %s\n\n%s\n", command->usage, command->summary);
    if (command->options && command->options->long_name) {
        fprintf(out, "\noptions:\n");
        print_options(command->options, out);
    }
    if (global && global->long_name) {
        fprintf(out, "\nglobal options:\n");
        print_options(global, out);
    }
}
