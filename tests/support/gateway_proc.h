/* gateway_proc: the real syn-gateway program in a process of its own, its output in
 * a log file, for what an in-process gateway cannot show: exit codes and the refusal
 * line, signals (SIGHUP), its raised descriptor limit, and every line it logs. */
#ifndef SYN_TEST_GATEWAY_PROC_H
#define SYN_TEST_GATEWAY_PROC_H

#include <stdbool.h>
#include <sys/types.h>

typedef struct gateway_proc_t gateway_proc_t;

/* Starts syn-gateway with args (NULL-terminated, after the program name; give
 * "--http 127.0.0.1:0" to let it pick a port), its stdout and stderr appended to
 * log_path, and waits until it logs "listening" with its port. NULL when it exits
 * or does not listen within 10 s (its log is printed). */
gateway_proc_t *gateway_proc_start(const char *log_path, const char *const *args);
/* SIGTERM, then SIGKILL after 10 s; reaps; safe on NULL. */
void gateway_proc_stop(gateway_proc_t **self_p);

pid_t gateway_proc_pid(const gateway_proc_t *self);
int gateway_proc_port(const gateway_proc_t *self);
/* "http://127.0.0.1:PORT" */
const char *gateway_proc_url(const gateway_proc_t *self);

/* Asks GET /health (open whatever the authentication) until it answers 200: until the
 * gateway's connection to the broker is up, every request is answered 503. */
bool gateway_proc_wait_healthy(const gateway_proc_t *self, int timeout_ms);

/* Runs syn-gateway with args and waits for it to exit: its exit code, or -1 when it
 * was still running after timeout_ms (it is then killed). */
int gateway_proc_run(const char *log_path, const char *const *args, int timeout_ms);

/* The whole file (malloc'd, "" when missing). */
char *gateway_proc_read_file(const char *path);
/* Waits up to timeout_ms until the file holds text at least `count` times. */
bool gateway_proc_wait_text(const char *path, const char *text, int count, int timeout_ms);
/* Lines in the file. */
int gateway_proc_count_lines(const char *path);

#endif
