#include "common/flags.h"
#include "common/log.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int parse_long(const char *text, long min, long max, long *out)
{
    if (!text || !*text)
        return -1;
    char *end;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (errno || *end || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

static int parse_bool(const char *text, bool *out)
{
    if (!strcmp(text, "1") || !strcasecmp(text, "true") || !strcasecmp(text, "yes")) {
        *out = true;
        return 0;
    }
    if (!strcmp(text, "0") || !strcasecmp(text, "false") || !strcasecmp(text, "no") ||
        !*text) {
        *out = false;
        return 0;
    }
    return -1;
}

static int assign(syn_flag_t *flag, const char *value, const char *origin)
{
    switch (flag->kind) {
    case SYN_FLAG_STRING:
    case SYN_FLAG_SECRET:
        *(const char **)flag->target = value;
        return 0;
    case SYN_FLAG_LOG_LEVEL: {
        syn_log_level_t level;
        if (syn_log_parse_level(value, &level) == 0) {
            *(const char **)flag->target = value;
            return 0;
        }
        fprintf(stderr, "error: %s --%s wants debug, info, warn or error, got '%s'\n", origin,
                flag->name, value);
        return -1;
    }
    case SYN_FLAG_INT:
        if (parse_long(value, flag->min, flag->max, (long *)flag->target) == 0)
            return 0;
        fprintf(stderr, "error: %s --%s wants an integer from %ld to %ld, got '%s'\n", origin,
                flag->name, flag->min, flag->max, value);
        return -1;
    case SYN_FLAG_BOOL:
        if (parse_bool(value, (bool *)flag->target) == 0)
            return 0;
        fprintf(stderr, "error: %s --%s wants true or false, got '%s'\n", origin, flag->name,
                value);
        return -1;
    }
    return -1;
}

static syn_flag_t *find(syn_flag_t *flags, const char *name, size_t len)
{
    for (syn_flag_t *f = flags; f->name; f++)
        if (strlen(f->name) == len && strncmp(f->name, name, len) == 0)
            return f;
    return NULL;
}

static int read_environment(syn_flag_t *flags)
{
    for (syn_flag_t *f = flags; f->name; f++) {
        char var[128] = "SYN_";
        size_t n = 4;
        for (const char *c = f->name; *c && n < sizeof var - 1; c++)
            var[n++] = *c == '-' ? '_' : (char)toupper((unsigned char)*c);
        var[n] = '\0';
        const char *value = getenv(var);
        if (value && assign(f, value, "environment variable for") != 0)
            return -1;
    }
    return 0;
}

/* --log-format is every program's flag, handled here rather than in each main.c:
 * read from SYN_LOG_FORMAT, then the command line, and applied once parsing
 * succeeds. Given on the command line it is also put in the environment, so the
 * programs `syn up` starts log the same way. */
static int take_log_format(const char *value, const char *origin, syn_log_format_t *format)
{
    if (syn_log_parse_format(value, format) == 0)
        return 0;
    fprintf(stderr, "error: %s --log-format wants text or json, got '%s'\n", origin, value);
    return -1;
}

static void apply_log_format(const char *program, syn_log_format_t format)
{
    /* "syn up" → "syn": the program, not its subcommand. */
    static char name[64];
    snprintf(name, sizeof name, "%.*s", (int)strcspn(program, " "), program);
    syn_log_set_format(format, name);
}

void syn_flags_usage(const char *program, const char *summary, const syn_flag_t *flags,
                     void *stream)
{
    FILE *out = stream;
    fprintf(out, "usage: %s [options]\n%s\n\noptions (each also as env SYN_<NAME>):\n", program,
            summary);
    for (const syn_flag_t *f = flags; f->name; f++) {
        char left[64];
        snprintf(left, sizeof left, "--%s%s%s", f->name, f->kind == SYN_FLAG_BOOL ? "" : " ",
                 f->kind == SYN_FLAG_BOOL ? "" : (f->metavar ? f->metavar : "VALUE"));
        fprintf(out, "  %-26s %s", left, f->help);
        if ((f->kind == SYN_FLAG_STRING || f->kind == SYN_FLAG_LOG_LEVEL) &&
            *(const char **)f->target)
            fprintf(out, " (default %s)", *(const char **)f->target);
        else if (f->kind == SYN_FLAG_INT)
            fprintf(out, " (default %ld)", *(long *)f->target);
        fputc('\n', out);
    }
    fprintf(out, "  %-26s %s\n", "--log-format text|json",
            "log lines as text or one JSON object a line (default text)");
    fprintf(out, "  %-26s %s\n  %-26s %s\n", "--help", "show this help",
            "--version", "show the version");
}

syn_flags_result_t syn_flags_parse(const char *program, const char *summary, syn_flag_t *flags,
                                   int argc, char **argv)
{
    syn_log_format_t format = SYN_LOG_TEXT;
    const char *format_env = getenv("SYN_LOG_FORMAT");
    if (read_environment(flags) != 0 ||
        (format_env && take_log_format(format_env, "environment variable for", &format) != 0))
        goto fail;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) {
            syn_flags_usage(program, summary, flags, stdout);
            return SYN_FLAGS_EXIT;
        }
        if (!strcmp(arg, "--version")) {
            printf("%s %s\n", program, SYN_VERSION);
            return SYN_FLAGS_EXIT;
        }
        if (strncmp(arg, "--", 2) != 0) {
            fprintf(stderr, "error: unexpected argument '%s'\n", arg);
            goto fail;
        }
        const char *name = arg + 2;
        const char *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        if (len == 10 && !strncmp(name, "log-format", 10)) {
            const char *value = eq ? eq + 1 : (i + 1 < argc ? argv[++i] : "");
            if (take_log_format(value, "option", &format) != 0)
                goto fail;
            setenv("SYN_LOG_FORMAT", value, 1);
            continue;
        }
        syn_flag_t *flag = find(flags, name, len);
        if (!flag) {
            fprintf(stderr, "error: unknown option '%.*s'\n", (int)(len + 2), arg);
            goto fail;
        }
        const char *value = eq ? eq + 1 : NULL;
        if (!value && flag->kind == SYN_FLAG_BOOL)
            value = "true";
        if (!value) {
            if (i + 1 >= argc) {
                fprintf(stderr, "error: option --%s needs a value\n", flag->name);
                goto fail;
            }
            value = argv[++i];
        }
        if (assign(flag, value, "option") != 0)
            goto fail;
    }
    for (syn_flag_t *f = flags; f->name; f++) {
        syn_log_level_t level;
        if (f->kind == SYN_FLAG_LOG_LEVEL &&
            syn_log_parse_level(*(const char **)f->target, &level) == 0)
            syn_log_set_level(level);
    }
    apply_log_format(program, format);
    return SYN_FLAGS_OK;
fail:
    syn_flags_usage(program, summary, flags, stderr);
    return SYN_FLAGS_ERROR;
}
