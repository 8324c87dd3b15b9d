/* yaml: the YAML side of the HTTP API (docs/api.md, docs/templates.md).
 *
 *   POST /workflows/from-yaml   a raw YAML body → the args of workflow.create, checked
 *                               against the same specification as POST /workflows
 *                               (template/spec.h), once, by the template library
 *   POST /workflows/validate    {content} → {valid, errors:[{line, column, field, message}],
 *                               name, workflow_type, phase_count, warnings}, answered by
 *                               the gateway alone
 *   GET /workflows/{id}/export  the reply of workflow.get → YAML text
 *
 * Pure (no I/O, no state): the HTTP server hands in what it received and sends what
 * comes out, so every answer is unit-tested in tests/unit/test_gateway_yaml.c. */
#ifndef SYN_GATEWAY_YAML_H
#define SYN_GATEWAY_YAML_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#define GATEWAY_YAML_CONTENT_TYPE "application/yaml; charset=utf-8"

/* True for application/yaml, application/x-yaml, text/yaml and text/x-yaml, in any
 * case, with or without parameters ("; charset=utf-8"). NULL (no header) is false. */
bool gateway_yaml_media_type(const char *content_type);

/* A from-yaml upload: 0 with *args (new reference) for workflow.create, or the status
 * to answer with *error (new reference) its body:
 *   415 {"detail":"Unsupported Media Type: <given> (...)"}
 *   422 pydantic list for a bad ?id= / ?name= (loc ["query", ...])
 *   413 / 400 / 422 {"detail": "<first error, with line and column>", "errors": [...]}
 *       when the template library refuses the text (too large; not UTF-8, not YAML or
 *       prompt_file; invalid content: the workflow specification's rules in YAML words)
 * id and name (NULL when absent) replace the document's own. */
int gateway_yaml_from_upload(const char *content_type, const char *body, size_t len,
                             const char *id, const char *name, json_t **args, json_t **error);

/* POST /workflows/validate: the status (200, or 422 for a JSON body that is not
 * {content}) and its body in *answer (new reference). A body sent with a YAML media
 * type is the YAML text itself, as from-yaml takes it. */
int gateway_yaml_validate(const char *content_type, const char *body, size_t len,
                          json_t **answer);

/* GET /workflows/{id}/export: turns workflow.get's reply body into YAML. 200 with *text
 * (malloc'd, NUL-terminated), or 502 with *error when the reply is not a workflow. */
int gateway_yaml_export(const json_t *workflow, char **text, json_t **error);

#endif
