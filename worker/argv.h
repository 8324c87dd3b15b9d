/* argv: splitting a --command string into an argument vector without a shell, so
 * an agent command can be configured as one flag but is never shell-interpreted. */
#ifndef SYN_WORKER_ARGV_H
#define SYN_WORKER_ARGV_H

#include <stddef.h>

/* Splits line into words separated by blanks (space, tab, newline, CR). Quoting as
 * in the POSIX shell, without expansions:
 *   'single quotes' keep everything literally;
 *   "double quotes" keep everything, except that a backslash escapes " \ $ ` and
 *   newline (before any other character it stays a backslash);
 *   outside quotes a backslash makes the next character literal.
 * Adjacent parts join into one word ('a'"b"c is abc); "" and '' make empty words.
 * Returns a NULL-terminated malloc'd vector (free it with worker_argv_free) and
 * its length in *argc_p, or NULL with the reason in err (unbalanced quote,
 * trailing backslash, no words at all, out of memory). */
char **worker_argv_split(const char *line, int *argc_p, char *err, size_t errlen);

void worker_argv_free(char **argv);

#endif
