/* client: the syn command line's only way to the service, the HTTP API through
 * libcurl. It decides three things every command shares, so no command decides them
 * again: who the caller is (a bearer token, or basic auth, from flags or the same
 * environment variables the original CLI reads), what an answer means for the exit
 * code (client_exit_code), and how an event stream survives a dropped connection
 * (client_stream resumes with Last-Event-ID, so no event is missed or repeated).
 *
 * Nothing here prints to stdout: commands decide what a person or a script sees;
 * errors are returned as one line for stderr. */
#ifndef SYN_CLI_CLIENT_H
#define SYN_CLI_CLIENT_H

#include <jansson.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* The exit codes of every client command (the contract). */
enum {
    CLI_EXIT_OK = 0,          /* success; for watching: the execution completed */
    CLI_EXIT_FAILED = 1,      /* the execution failed, or the server refused the request */
    CLI_EXIT_USAGE = 2,       /* bad flags or arguments, an ambiguous id prefix */
    CLI_EXIT_CANCELLED = 3,   /* the watched execution was cancelled */
    CLI_EXIT_NOT_FOUND = 4,   /* unknown workflow, execution or phase */
    CLI_EXIT_UNREACHABLE = 5, /* server unreachable, unavailable or unauthorized */
    CLI_EXIT_INTERRUPTED = 130, /* Ctrl-C while watching (the execution goes on) */
};

#define CLI_DEFAULT_URL "http://127.0.0.1:8137"

typedef struct {
    const char *url;      /* base URL, no trailing slash needed */
    const char *token;    /* bearer token, or NULL */
    const char *user;     /* basic auth (with password) when there is no token */
    const char *password;
    long connect_timeout_ms; /* 0: 1500, so a server that is down is reported within 2 s */
} client_config_t;

typedef struct client_t client_t;

/* An answer: status 0 means no answer at all (the reason is in error). */
typedef struct {
    long status;
    char *body;          /* NUL-terminated (malloc'd), "" when empty */
    size_t len;
    json_t *json;        /* the body parsed, NULL when it is not JSON */
    char error[512];     /* one line for stderr when status is not 2xx */
} client_response_t;

/* curl_global_init must have been called (main does, once). */
client_t *client_new(const client_config_t *config);
void client_destroy(client_t **self_p);

/* While *flag is set, transfers stop at the next progress check (Ctrl-C). */
void client_set_interrupt(client_t *self, volatile sig_atomic_t *flag);
/* One more header line ("Name: value", copied) on every request until changed;
 * NULL: none. 0, or -1 when out of memory. */
int client_set_header(client_t *self, const char *line);
const char *client_url(const client_t *self);

/* Sends one request. path starts with '/'; body may be NULL (no body) and
 * content_type NULL (JSON). 0 when an answer came (any status), -1 when none did;
 * either way resp is filled (clear it with client_response_clear). */
int client_request(client_t *self, const char *method, const char *path, const char *content_type,
                   const char *body, size_t len, client_response_t *resp);
void client_response_clear(client_response_t *resp);

/* GET path with its body written to file as it arrives when the answer is a 2xx
 * (resp->len then counts the bytes written; resp->body stays ""), so a download
 * of any size costs no memory; an error answer is read into resp as by
 * client_request. 0 when an answer came and was written whole, -1 otherwise (the
 * reason in resp->error: no answer, or the file refused a write). */
int client_download(client_t *self, const char *path, FILE *file, client_response_t *resp);
/* The usual case: method path with an optional JSON body. On a 2xx answer *out
 * is the parsed body (a new reference; a non-JSON body becomes a JSON string) and
 * the result is CLI_EXIT_OK; otherwise the error line goes to stderr and the
 * result is the exit code for it. */
int client_call(client_t *self, const char *method, const char *path, const json_t *body,
                json_t **out);

/* The exit code an answer means: 0 for no answer (transport failure); detail is
 * the server's text (NULL when there is none). Pure, for unit tests. */
int client_exit_code(long status, const char *detail);

/* The one-line reason of an error answer: the server's detail (a list of
 * request-shape errors becomes "loc: msg; loc: msg"), else "HTTP <status>". Writes
 * into out and returns it. Pure. */
char *client_error_text(long status, const json_t *body, char *out, size_t size);

/* Percent-encodes text for a URL path segment or query value into out; -1 when it
 * does not fit. */
int client_escape(const char *text, char *out, size_t size);

/* An event stream: calls on_frame for every frame with its id (-1 when it has
 * none) and its JSON; on_frame returns 0 to go on and 1 to stop (it saw the
 * terminal frame, or enough). on_tick (may be NULL) is called about once a second
 * while the stream is quiet. A stream that ends without a stop, or whose
 * connection drops, is resumed with Last-Event-ID: the last id on_frame was given,
 * kept in *last_id (-1: from the start); the gateway's own reconnection rules then
 * guarantee nothing is missed or repeated. Gives up after give_up_ms without an
 * answer. Returns CLI_EXIT_OK when on_frame stopped the stream, CLI_EXIT_INTERRUPTED
 * when the interrupt flag was raised, or the exit code of the error (printed). */
typedef int (*client_frame_fn)(void *arg, long long id, const json_t *frame);
typedef void (*client_tick_fn)(void *arg);
int client_stream(client_t *self, const char *path, long long *last_id, client_frame_fn on_frame,
                  client_tick_fn on_tick, void *arg, long give_up_ms);

/* Quiet mode for client_stream: stops (returning CLI_EXIT_OK) once no frame came
 * for idle_ms after the first one (a replay of what is already in the log). 0: off. */
void client_stream_idle_stop(client_t *self, long idle_ms);

#endif
