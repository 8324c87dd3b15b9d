/* log: one line per event on stderr, in one of two formats chosen once per process —
 *   text (the default):
 *   2026-11-28T14:56:19.123456Z INFO  broker dispatched execution=exec-1 phase=plan
 *   time (UTC, microseconds), level, component, message with key=value details;
 *   json (--log-format json, for log shippers), one object a line:
 *   {"ts":"2026-11-28T14:56:19.123456Z","level":"info","program":"syn-broker",
 *    "component":"broker","msg":"dispatched","execution":"exec-1","phase":"plan"}
 *   the message's key=value pairs (value bare or "double quoted") become fields. */
#ifndef SYN_LOG_H
#define SYN_LOG_H

#include <stddef.h>
#include <stdint.h>

typedef enum { SYN_LOG_DEBUG, SYN_LOG_INFO, SYN_LOG_WARN, SYN_LOG_ERROR } syn_log_level_t;

/* The threshold is process-wide (set once by main from --log-level or SYN_LOG_LEVEL). */
void syn_log_set_level(syn_log_level_t level);
/* Parses "debug|info|warn|error"; returns -1 for anything else. */
int syn_log_parse_level(const char *text, syn_log_level_t *level);

typedef enum { SYN_LOG_TEXT, SYN_LOG_JSON } syn_log_format_t;

/* Parses "text|json"; returns -1 for anything else. */
int syn_log_parse_format(const char *text, syn_log_format_t *format);
/* Process-wide, set once at start-up (syn_flags_parse does it from --log-format or
 * SYN_LOG_FORMAT for every program); program names the JSON lines' "program". */
void syn_log_set_format(syn_log_format_t format, const char *program);

/* Writes one line (with its '\n', NUL-terminated, cut to fit) of the given message
 * into out, as syn_log would print it; returns its length. Exposed for the tests. */
size_t syn_log_render(char *out, size_t size, syn_log_format_t format, int64_t epoch_us,
                      syn_log_level_t level, const char *program, const char *component,
                      const char *message);

void syn_log(syn_log_level_t level, const char *component, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define syn_debug(comp, ...) syn_log(SYN_LOG_DEBUG, comp, __VA_ARGS__)
#define syn_info(comp, ...)  syn_log(SYN_LOG_INFO, comp, __VA_ARGS__)
#define syn_warn(comp, ...)  syn_log(SYN_LOG_WARN, comp, __VA_ARGS__)
#define syn_error(comp, ...) syn_log(SYN_LOG_ERROR, comp, __VA_ARGS__)

#endif
