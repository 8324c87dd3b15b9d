/* render: turns a phase's prompt template into the prompt a worker runs.
 *
 * Plain substitution, one left-to-right pass over the template:
 *   {{execution_id}}, {{workflow_id}}       the builtins
 *   {{<input name>}}                       every merged input
 *   {{repository}}, {{repo_url}}, …         the run's variables (prompt.c: the
 *                                          execution's repository), below inputs
 *   {{<phase_id>}}                         the output of each earlier phase
 *   $ARGUMENTS                             the task, or "" when there is none
 * A placeholder whose name matches nothing stays verbatim.
 *
 * The order of the rules decides who wins when names collide: a builtin beats an
 * input called "execution_id", an input beats an earlier phase with the same id.
 * Substituted text is inserted literally and never scanned again, so an input
 * value, a task or an agent's output containing "{{other}}" or "$ARGUMENTS" comes
 * out unchanged: user and agent text cannot inject template syntax, and the
 * result grows at most linearly. The output is bounded by max_size: a render
 * that would exceed it fails with a clear reason instead of allocating more.
 *
 * Cost: linear in the template plus the output (one lookup per closing "}}"). */
#ifndef SYN_BROKER_RENDER_H
#define SYN_BROKER_RENDER_H

#include <stddef.h>

#define BROKER_RENDER_MAX_SIZE (8u * 1024 * 1024)

typedef struct {
    const char *name;
    const char *value;
} broker_render_var_t;

typedef struct {
    const char *execution_id;
    const char *workflow_id;
    const broker_render_var_t *inputs; /* merged inputs, in any order */
    size_t input_count;
    const broker_render_var_t *run_vars; /* beaten by inputs of the same name */
    size_t run_var_count;
    const broker_render_var_t *outputs; /* earlier phases: name = phase_id */
    size_t output_count;
    const char *task;                   /* NULL: $ARGUMENTS becomes "" */
    size_t max_size;                    /* 0: BROKER_RENDER_MAX_SIZE */
} broker_render_ctx_t;

/* Returns the rendered prompt (malloc'd, NUL-terminated, length in *len when len
 * is not NULL), or NULL with the reason in err (too large, out of memory). */
char *broker_render(const char *template_text, const broker_render_ctx_t *ctx, size_t *len,
                    char *err, size_t errlen);

#endif
