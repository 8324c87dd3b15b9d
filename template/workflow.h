/* workflow: a workflow template written in YAML → the JSON object POST /workflows
 * takes (docs/templates.md describes the format):
 *
 *   YAML                      JSON
 *   id, name, description     id, name, description
 *   type                      workflow_type   research|planning|implementation|review|
 *                                             deployment|custom
 *   classification            classification  simple|standard|complex|epic
 *   inputs: [{name, description, required, default}]      input_declarations
 *   phases: [{id, name, order, prompt_template | prompt_file, model, provider,
 *             timeout_seconds, max_attempts, retries, retry_backoff_seconds,
 *             max_tokens, description, argument_hint, allowed_tools}]
 *                             phases[].phase_id for id, the rest by the same name
 *
 * Only keys the document gives are in the result (the broker fills defaults). Every
 * problem is reported, each with file, line and field; unknown keys are errors that
 * list the known ones. prompt_file (never with prompt_template) reads a Markdown
 * file inside the workflow's directory whose front matter fills the settings the
 * YAML leaves out. */
#ifndef SYN_TEMPLATE_WORKFLOW_H
#define SYN_TEMPLATE_WORKFLOW_H

#include "template/errors.h"

#include <jansson.h>
#include <stddef.h>

#define TEMPLATE_MAX_DOCUMENT (1024 * 1024)     /* a workflow YAML file or upload */
#define TEMPLATE_MAX_PROMPT_FILE (1024 * 1024)  /* one prompt file */
#define TEMPLATE_MAX_PROMPT_FILES (8 * 1024 * 1024) /* all prompt files of a workflow */

/* Parses text[0..len). file names the source in errors (NULL for an upload); dir is
 * the directory prompt_file paths are relative to, or NULL when there is none (an
 * HTTP upload), where prompt_file is a TEMPLATE_ERROR_UNSUPPORTED error. Returns the
 * workflow (new reference), or NULL with at least one error added. */
json_t *template_workflow_parse(const char *text, size_t len, const char *file, const char *dir,
                                template_errors_t *errors);

/* Reads path (at most TEMPLATE_MAX_DOCUMENT bytes) and parses it with its own
 * directory for prompt files. */
json_t *template_workflow_parse_file(const char *path, template_errors_t *errors);

#endif
