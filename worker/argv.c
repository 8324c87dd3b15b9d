#include "worker/argv.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

void worker_argv_free(char **argv)
{
    if (!argv)
        return;
    for (char **a = argv; *a; a++)
        free(*a);
    free(argv);
}

/* Appends the word in buf (len bytes) to the vector; -1 when memory runs out. */
static int push_word(char ***argv_p, int *argc_p, const char *buf, size_t len)
{
    char *word = malloc(len + 1);
    char **grown = realloc(*argv_p, sizeof(char *) * (size_t)(*argc_p + 2));
    if (!word || !grown) {
        free(word);
        if (grown)
            *argv_p = grown;
        return -1;
    }
    memcpy(word, buf, len);
    word[len] = '\0';
    grown[(*argc_p)++] = word;
    grown[*argc_p] = NULL;
    *argv_p = grown;
    return 0;
}

char **worker_argv_split(const char *line, int *argc_p, char *err, size_t errlen)
{
    /* A word is never longer than the line, so one buffer of that size holds any. */
    size_t linelen = strlen(line);
    char *buf = malloc(linelen + 1);
    char **argv = calloc(1, sizeof(char *));
    int argc = 0;
    const char *problem = NULL;
    if (!buf || !argv) {
        problem = "out of memory";
        goto done;
    }
    const char *p = line;
    for (;;) {
        while (is_blank(*p))
            p++;
        if (!*p)
            break;
        size_t len = 0;
        while (*p && !is_blank(*p) && !problem) {
            if (*p == '\'') {
                const char *close = strchr(p + 1, '\'');
                if (!close) {
                    problem = "unbalanced single quote";
                    break;
                }
                memcpy(buf + len, p + 1, (size_t)(close - p - 1));
                len += (size_t)(close - p - 1);
                p = close + 1;
            } else if (*p == '"') {
                p++;
                while (*p && *p != '"') {
                    if (*p == '\\' && p[1] && strchr("\"\\$`\n", p[1]))
                        p++;
                    buf[len++] = *p++;
                }
                if (*p != '"')
                    problem = "unbalanced double quote";
                else
                    p++;
            } else if (*p == '\\') {
                if (!p[1])
                    problem = "trailing backslash";
                else {
                    buf[len++] = p[1];
                    p += 2;
                }
            } else
                buf[len++] = *p++;
        }
        if (problem)
            break;
        if (push_word(&argv, &argc, buf, len) != 0) {
            problem = "out of memory";
            break;
        }
    }
    if (!problem && argc == 0)
        problem = "empty command";
done:
    free(buf);
    if (problem) {
        snprintf(err, errlen, "%s", problem);
        worker_argv_free(argv);
        return NULL;
    }
    if (argc_p)
        *argc_p = argc;
    return argv;
}
