#include "common/log.h"
#include "common/clock.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* The one piece of process-wide mutable state outside main.c: a logger that every
 * module would otherwise need passed down. Written once at start-up. */
static syn_log_level_t log_threshold = SYN_LOG_INFO;

void syn_log_set_level(syn_log_level_t level) { log_threshold = level; }

int syn_log_parse_level(const char *text, syn_log_level_t *level)
{
    static const char *names[] = {"debug", "info", "warn", "error"};
    for (int i = 0; i < 4; i++)
        if (strcmp(text, names[i]) == 0) {
            *level = (syn_log_level_t)i;
            return 0;
        }
    return -1;
}

void syn_log(syn_log_level_t level, const char *component, const char *fmt, ...)
{
    if (level < log_threshold)
        return;
    static const char *labels[] = {"DEBUG", "INFO ", "WARN ", "ERROR"};
    char stamp[SYN_TIME_BUFSIZE];
    syn_time_format(syn_now_us(), stamp);

    /* One write per line so lines from concurrent processes do not interleave. */
    char line[4096];
    int n = snprintf(line, sizeof line, "%s %s %-7s ", stamp, labels[level], component);
    va_list ap;
    va_start(ap, fmt);
    if (n > 0 && (size_t)n < sizeof line)
        n += vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n >= sizeof line - 1)
        n = (int)sizeof line - 2;
    line[n++] = '\n';
    fwrite(line, 1, (size_t)n, stderr);
}
