/* log: one line per event on stderr —
 *   2026-11-28T14:56:19.123456Z INFO  broker dispatched execution=exec-1 phase=plan
 * time (UTC, microseconds), level, component, message with key=value details. */
#ifndef SYN_LOG_H
#define SYN_LOG_H

typedef enum { SYN_LOG_DEBUG, SYN_LOG_INFO, SYN_LOG_WARN, SYN_LOG_ERROR } syn_log_level_t;

/* The threshold is process-wide (set once by main from --log-level or SYN_LOG_LEVEL). */
void syn_log_set_level(syn_log_level_t level);
/* Parses "debug|info|warn|error"; returns -1 for anything else. */
int syn_log_parse_level(const char *text, syn_log_level_t *level);

void syn_log(syn_log_level_t level, const char *component, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define syn_debug(comp, ...) syn_log(SYN_LOG_DEBUG, comp, __VA_ARGS__)
#define syn_info(comp, ...)  syn_log(SYN_LOG_INFO, comp, __VA_ARGS__)
#define syn_warn(comp, ...)  syn_log(SYN_LOG_WARN, comp, __VA_ARGS__)
#define syn_error(comp, ...) syn_log(SYN_LOG_ERROR, comp, __VA_ARGS__)

#endif
