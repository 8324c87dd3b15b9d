/* frontmatter: a Markdown prompt file that may start with a '---' block of
 * settings, as Claude Code commands do:
 *
 *   ---
 *   model: sonnet
 *   allowed-tools: Read, Grep        (or a list)
 *   max-tokens: 4000
 *   timeout-seconds: 600
 *   argument-hint: [issue text]
 *   description: Plan the fix
 *   ---
 *   The prompt text…
 *
 * Unknown keys are errors (typos must not pass silently). */
#ifndef SYN_TEMPLATE_FRONTMATTER_H
#define SYN_TEMPLATE_FRONTMATTER_H

#include "template/errors.h"

#include <jansson.h>
#include <stddef.h>

/* Splits text (already known to be UTF-8) into its settings, an object keyed by the
 * HTTP API's names (model, allowed_tools, max_tokens, timeout_seconds,
 * argument_hint, description), and the prompt body after the closing line. file
 * names the Markdown file in errors; path prefixes field names ("phases[1]"). 0
 * with both set (new references), or -1 with errors added. */
int template_frontmatter_parse(const char *text, size_t len, const char *file, const char *path,
                               template_errors_t *errors, json_t **settings, json_t **body);

#endif
