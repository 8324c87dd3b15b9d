#include "common/log.h"
#include "common/clock.h"
#include "common/utf8.h"

#include <ctype.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The one piece of process-wide mutable state outside main.c: a logger that every
 * module would otherwise need passed down. Written once at start-up. */
static syn_log_level_t log_threshold = SYN_LOG_INFO;
static syn_log_format_t log_format = SYN_LOG_TEXT;
static const char *log_program = "";

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

int syn_log_parse_format(const char *text, syn_log_format_t *format)
{
    if (!strcmp(text, "text"))
        *format = SYN_LOG_TEXT;
    else if (!strcmp(text, "json"))
        *format = SYN_LOG_JSON;
    else
        return -1;
    return 0;
}

void syn_log_set_format(syn_log_format_t format, const char *program)
{
    log_format = format;
    log_program = program ? program : "";
}

/* A key of a key=value pair: a letter or '_', then letters, digits, '_', '.', '-'. */
static size_t key_length(const char *s)
{
    if (!isalpha((unsigned char)*s) && *s != '_')
        return 0;
    size_t n = 1;
    while (isalnum((unsigned char)s[n]) || s[n] == '_' || s[n] == '.' || s[n] == '-')
        n++;
    return s[n] == '=' ? n : 0;
}

/* Adds text[0..len) to object[key] as a JSON string, replacing bytes that are not
 * UTF-8 (a path, an agent's words) so the line always serialises. */
static void set_text(json_t *object, const char *key, const char *text, size_t len)
{
    char *clean = malloc(3 * len + 1);
    if (!clean)
        return;
    size_t n = syn_utf8_sanitize(text, len, clean);
    json_object_set_new(object, key, json_stringn(clean, n));
    free(clean);
}

/* Splits "msg words key=value key2=\"quoted value\" more words" into fields: each
 * key=value token becomes a field (a trailing ':' or ',' on a bare value is
 * punctuation of the sentence, not the value); every other word stays in msg. */
static void add_message_fields(json_t *line, const char *message)
{
    char *msg = malloc(strlen(message) + 1);
    if (!msg)
        return;
    size_t msg_len = 0;
    const char *p = message;
    while (*p) {
        while (*p == ' ')
            p++;
        if (!*p)
            break;
        const char *word_start = p;
        size_t klen = key_length(p);
        if (klen && klen < 64) {
            char key[64];
            memcpy(key, p, klen);
            key[klen] = '\0';
            /* A detail named like one of the line's own fields stays in msg. */
            if (!json_object_get(line, key)) {
                const char *v = p + klen + 1;
                const char *close = *v == '"' ? strchr(v + 1, '"') : NULL;
                if (close) {
                    set_text(line, key, v + 1, (size_t)(close - v - 1));
                    p = close + 1;
                } else {
                    size_t vlen = strcspn(v, " ");
                    p = v + vlen;
                    while (vlen && (v[vlen - 1] == ':' || v[vlen - 1] == ','))
                        vlen--;
                    set_text(line, key, v, vlen);
                }
                continue;
            }
        }
        p += strcspn(p, " ");
        if (msg_len)
            msg[msg_len++] = ' ';
        memcpy(msg + msg_len, word_start, (size_t)(p - word_start));
        msg_len += (size_t)(p - word_start);
    }
    set_text(line, "msg", msg, msg_len);
    free(msg);
}

static size_t render_json(char *out, size_t size, const char *stamp, syn_log_level_t level,
                          const char *program, const char *component, const char *message)
{
    static const char *names[] = {"debug", "info", "warn", "error"};
    json_t *line = json_object();
    if (!line)
        return 0;
    json_object_set_new(line, "ts", json_string(stamp));
    json_object_set_new(line, "level", json_string(names[level]));
    json_object_set_new(line, "program", json_string(program));
    json_object_set_new(line, "component", json_string(component));
    json_object_set_new(line, "msg", json_string(""));
    add_message_fields(line, message);
    char *text = json_dumps(line, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(line);
    if (!text)
        return 0;
    size_t n = strlen(text);
    if (n > size - 2) /* too long: still one line, though no longer JSON */
        n = size - 2;
    memcpy(out, text, n);
    free(text);
    out[n++] = '\n';
    out[n] = '\0';
    return n;
}

size_t syn_log_render(char *out, size_t size, syn_log_format_t format, int64_t epoch_us,
                      syn_log_level_t level, const char *program, const char *component,
                      const char *message)
{
    static const char *labels[] = {"DEBUG", "INFO ", "WARN ", "ERROR"};
    char stamp[SYN_TIME_BUFSIZE];
    syn_time_format(epoch_us, stamp);
    if (size < 2)
        return 0;
    if (format == SYN_LOG_JSON)
        return render_json(out, size, stamp, level, program, component, message);
    int n = snprintf(out, size, "%s %s %-7s %s", stamp, labels[level], component, message);
    if (n < 0)
        return 0;
    if ((size_t)n >= size - 1)
        n = (int)size - 2;
    out[n++] = '\n';
    out[n] = '\0';
    return (size_t)n;
}

void syn_log(syn_log_level_t level, const char *component, const char *fmt, ...)
{
    if (level < log_threshold)
        return;
    char message[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    /* One write per line so lines from concurrent processes do not interleave. */
    char line[8192];
    size_t n = syn_log_render(line, sizeof line, log_format, syn_now_us(), level, log_program,
                              component, message);
    if (n)
        fwrite(line, 1, n, stderr);
}
