/* validate: the shape checks of HTTP input, in FastAPI/pydantic's words.
 *
 * Request-shape errors become 422 {"detail":[{"loc":[...],"msg":"...","type":"..."}]}
 * listing every error of the input, not only the first, with the same loc/msg/type
 * pydantic would give (declared fields in declaration order, then unknown keys in the
 * order they appear). Types are strict: no string → int coercion in bodies, no
 * number → string. An optional key given as null counts as absent.
 *
 * Everything here is pure (no I/O, no state), so every rule is unit-tested as a matrix
 * in tests/unit/test_gateway_validate.c. */
#ifndef SYN_GATEWAY_VALIDATE_H
#define SYN_GATEWAY_VALIDATE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* Body checks. Each returns 0 with *args set to the broker operation's arguments (a new
 * reference), or the HTTP status to answer (422) with *error set to the whole response
 * body (a new reference). */

/* POST /workflows → args of workflow.create: the workflow object as given, without
 * its null-valued optional keys, checked against the workflow specification
 * (template/spec.h). Duplicate phase ids or orders (checked only when
 * the shape is otherwise valid) answer {"detail":"Duplicate phase_id 'x' in
 * phases[0] and phases[2]"}. */
int gateway_validate_workflow(const char *body, size_t len, json_t **args, json_t **error);

/* PUT /workflows/{id}/phases/{phase_id} → args of workflow.phase_update:
 * {workflow_id, phase_id, prompt_template (non-empty), model?, timeout_seconds? (1..86400),
 * allowed_tools?}; keys left out (or null) keep the phase's current value. */
int gateway_validate_phase_update(const char *body, size_t len, const char *workflow_id,
                                  const char *phase_id, json_t **args, json_t **error);

/* POST /workflows/validate: the body {content: string} → *content (new reference). */
int gateway_validate_content(const char *body, size_t len, json_t **content, json_t **error);

/* POST /workflows/{id}/execute → args of execution.start:
 * {workflow_id, inputs:{str:str}, task:str|null, repos:[str]}. */
int gateway_validate_execute(const char *body, size_t len, const char *workflow_id,
                             json_t **args, json_t **error);

typedef enum {
    GATEWAY_CONTROL_CANCEL, /* body {reason?}, may be empty → {execution_id, reason|null} */
    GATEWAY_CONTROL_PAUSE,  /* same */
    GATEWAY_CONTROL_RESUME, /* body {} or empty → {execution_id} */
    GATEWAY_CONTROL_RERUN,  /* body {from_phase?, inputs?, task?} or empty → those and
                               execution_id */
    GATEWAY_CONTROL_INJECT, /* body {message (non-empty), role?: "user"|"system"} required
                             * → {execution_id, message, role (default "user")} */
    GATEWAY_CONTROL_APPROVE, /* body {comment?}, may be empty → {execution_id, comment|null} */
    GATEWAY_CONTROL_REJECT,  /* body {reason?}, may be empty → {execution_id, reason|null} */
} gateway_control_t;

/* POST /executions/{id}/cancel|pause|resume|inject → args of execution.<control>. */
int gateway_validate_control(gateway_control_t control, const char *body, size_t len,
                             const char *execution_id, json_t **args, json_t **error);

/* Reads one query parameter that must be one of choices (NULL-terminated): text NULL
 * (absent) stores NULL; a match stores the matching choice (static); anything else
 * appends the pydantic "enum" error and returns -1. */
int gateway_validate_query_choice(const char *name, const char *text,
                                  const char *const *choices, const char **out, json_t *errors);

/* A boolean query parameter as pydantic reads one (true/false, 1/0, yes/no, on/off,
 * t/f, y/n, any case): absent stores def; anything else appends "bool_parsing". */
int gateway_validate_query_bool(const char *name, const char *text, bool def, bool *out,
                                json_t *errors);

/* A free-text query parameter: absent or valid UTF-8 without control characters is
 * 0; anything else appends a "string_unicode" error and returns -1 (it could not be
 * passed on: broker messages hold UTF-8 only). */
int gateway_validate_query_text(const char *name, const char *text, json_t *errors);

/* Reads one integer query parameter: text NULL (absent) gives def. On a bad value
 * appends the pydantic error item (loc ["query", name]) to errors, a JSON array,
 * and returns -1; otherwise stores the value in *out and returns 0. */
int gateway_validate_query_int(const char *name, const char *text, long min, long max,
                               long def, long *out, json_t *errors);

/* {"detail": errors} (steals the reference to errors). */
json_t *gateway_validate_error_body(json_t *errors);

/* True when text[0..len) is well-formed UTF-8 without control characters (what a path
 * parameter or query string may hold). */
bool gateway_validate_text(const char *text, size_t len);

#endif
