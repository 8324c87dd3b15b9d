/* syn watch: an execution followed to its end over its event stream. The state
 * and its drawings are cli/watch.c's; this file decides only how they reach the
 * terminal: the screen redrawn in place on a TTY (at most ten times a second, and
 * each second for the running phase's clock), one plain line per event anywhere
 * else, and what Ctrl-C prints (it stops the watching, never the execution). */
#include "cli/cli.h"
#include "cli/table.h"
#include "cli/watch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef struct {
    cli_t *cli;
    watch_t *state;
    bool live;       /* redraw in place */
    int drawn_lines; /* lines of the last screen, to move back over */
    int64_t last_draw_ms;
} watching_t;

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void draw(watching_t *w)
{
    int width = table_terminal_width(STDOUT_FILENO, 80);
    char *screen = watch_render(w->state, width, w->cli->color, now_us());
    if (!screen)
        return;
    if (w->drawn_lines > 0)
        printf("\033[%dA\r", w->drawn_lines);
    printf("\033[J%s", screen);
    fflush(stdout);
    w->drawn_lines = 0;
    for (const char *p = screen; *p; p++)
        w->drawn_lines += *p == '\n';
    w->last_draw_ms = mono_ms();
    free(screen);
}

static int on_frame(void *arg, long long id, const json_t *frame)
{
    watching_t *w = arg;
    if (watch_apply(w->state, id, frame) <= 0)
        return watch_done(w->state);
    if (w->live) {
        if (watch_done(w->state) || mono_ms() - w->last_draw_ms >= 100)
            draw(w);
    } else {
        char *line = watch_event_line(id, frame);
        if (line) {
            fputs(line, stdout);
            fflush(stdout);
        }
        free(line);
    }
    return watch_done(w->state);
}

static void on_tick(void *arg)
{
    watching_t *w = arg;
    if (w->live)
        draw(w);
}

int cli_watch(cli_t *cli, const char *execution_id)
{
    char path[512];
    if (cli_path(path, sizeof path, "/executions/%s", execution_id) != 0)
        return CLI_EXIT_USAGE;
    json_t *execution = NULL;
    int code = client_call(cli->client, "GET", path, NULL, &execution);
    if (code != CLI_EXIT_OK)
        return code;
    watching_t w = {.cli = cli, .state = watch_new(), .live = isatty(STDOUT_FILENO)};
    if (!w.state || watch_load(w.state, execution) != 0) {
        fprintf(stderr, "error: the server's answer is not an execution\n");
        json_decref(execution);
        watch_destroy(&w.state);
        return CLI_EXIT_FAILED;
    }
    json_decref(execution);
    const char *id = watch_execution_id(w.state);
    cli_path(path, sizeof path, "/sse/executions/%s", id);
    if (w.live) {
        printf("\033[?25l"); /* no cursor blinking over the bar */
        draw(&w);
    }
    long long last_id = -1;
    /* A gateway restarting, or a broker unavailable for a while: keep trying for
     * a minute from the last answer before giving up. */
    code = client_stream(cli->client, path, &last_id, on_frame, on_tick, &w, 60000);
    if (w.live) {
        draw(&w);
        printf("\033[?25h");
        fflush(stdout);
    }
    if (code == CLI_EXIT_INTERRUPTED)
        fprintf(stderr,
                "\nstopped watching; %s goes on.\n"
                "  watch it again:  syn watch %s\n"
                "  cancel it:       syn cancel %s\n",
                id, id, id);
    else if (code == CLI_EXIT_OK)
        code = watch_exit_code(w.state) >= 0 ? watch_exit_code(w.state) : CLI_EXIT_FAILED;
    watch_destroy(&w.state);
    return code;
}

int cmd_watch(cli_t *cli, int argc, char **argv)
{
    const args_command_t command = {
        "syn watch ID",
        "Follows an execution to its end: on a terminal a live view (a line per phase, a\n"
        "progress bar, elapsed time, tokens, cost and the agent's last output lines),\n"
        "elsewhere one line per event. It resumes by itself when the stream drops. Exit\n"
        "code: 0 completed, 1 failed, 3 cancelled. Ctrl-C stops watching, not the\n"
        "execution.",
        args_no_options, 1, 1};
    const char *pos[ARGS_MAX_POSITIONAL];
    int npos, code;
    if (cli_begin(cli, &command, argc, argv, pos, &npos, &code) != 0)
        return code;
    return cli_watch(cli, pos[0]);
}
