/* watch: what `syn watch` (and `syn run` when watching) shows of an execution, as
 * a state built only from its event frames (the SSE stream of
 * GET /sse/executions/{id}) plus two ways to show it: one plain line per event
 * (pipes, logs, `syn logs`) and a screen redrawn in place on a terminal (a line
 * per phase with a status symbol, a progress bar, the running phase's elapsed
 * time, tokens and cost so far, and the last lines of the agent's output).
 *
 * It stands alone because it is pure: frames in, text out, the clock passed in,
 * so the state machine and both renderings are unit-tested without a terminal or
 * a server. The state also decides the watch's end and its exit code, and ignores
 * a frame it has already applied (ids at or below the last one), which is what
 * makes a resumed stream show each event exactly once. */
#ifndef SYN_CLI_WATCH_H
#define SYN_CLI_WATCH_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#define WATCH_TAIL_LINES 6

typedef struct watch_t watch_t;

watch_t *watch_new(void);
void watch_destroy(watch_t **self_p);

/* Takes the execution's id, workflow and phases (ids and names, in order) from the
 * body of GET /executions/{id}, so phases not started yet are shown too. The
 * statuses come from the events. 0, or -1 when it is not an execution. */
int watch_load(watch_t *self, const json_t *execution);

/* Applies one frame: 1 when it changed the state, 0 when it was ignored (the
 * `connected` frame, an id already seen, an unknown type). */
int watch_apply(watch_t *self, long long id, const json_t *frame);

/* The terminal frame has come. */
bool watch_done(const watch_t *self);
/* 0 completed, 1 failed, 3 cancelled (the CLI's exit codes); -1 before the end. */
int watch_exit_code(const watch_t *self);
const char *watch_execution_id(const watch_t *self);

/* The plain line(s) for a frame (each ending in '\n'; output chunks add their
 * text indented under the line), or NULL for a frame that has none (`connected`).
 * Times are shown in UTC. Caller frees. */
char *watch_event_line(long long id, const json_t *frame);

/* The live screen: lines no wider than width, colour codes when color. now_us
 * (epoch microseconds) ticks the running phase's clock. Caller frees. */
char *watch_render(const watch_t *self, int width, bool color, int64_t now_us);

#endif
