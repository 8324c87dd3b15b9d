/* flags: command-line options, each also read from the environment as SYN_<NAME>
 * (upper case, '-' → '_'); the command line wins over the environment. */
#ifndef SYN_FLAGS_H
#define SYN_FLAGS_H

#include <stdbool.h>

typedef enum {
    SYN_FLAG_STRING,
    SYN_FLAG_INT,
    SYN_FLAG_BOOL,
    SYN_FLAG_LOG_LEVEL, /* a string, checked as debug|info|warn|error and applied to the
                         * process's log threshold once parsing succeeds */
    SYN_FLAG_SECRET,    /* a string (a password) the usage never shows, wherever it came
                         * from: SYN_<NAME> in the environment is read before --help */
} syn_flag_kind_t;

typedef struct {
    const char *name;    /* "http" → --http, SYN_HTTP */
    syn_flag_kind_t kind;
    const char *metavar; /* shown in usage: "HOST:PORT" */
    const char *help;
    void *target;        /* const char ** (STRING, SECRET, LOG_LEVEL) | long * | bool *; holds the
                          * default on entry */
    long min, max;       /* bounds for SYN_FLAG_INT */
} syn_flag_t;

typedef enum {
    SYN_FLAGS_OK = 0,
    SYN_FLAGS_EXIT = 1,   /* --help or --version was printed: exit 0 */
    SYN_FLAGS_ERROR = -1, /* the error and the usage went to stderr: exit 2 */
} syn_flags_result_t;

/* Parses the environment, then argv[1..argc-1], into the flags' targets.
 * flags ends with an entry whose name is NULL. Strings point into argv or environ
 * (which live as long as the process), so nothing needs freeing. */
syn_flags_result_t syn_flags_parse(const char *program, const char *summary, syn_flag_t *flags,
                                   int argc, char **argv);

/* Prints "usage: program [options]" and one line per flag with its default. */
void syn_flags_usage(const char *program, const char *summary, const syn_flag_t *flags,
                     void *stream);

#endif
