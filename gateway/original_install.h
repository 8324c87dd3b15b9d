/* original_install: what the original's CLI uploads to POST /workflows/from-yaml
 * (`workflow create --from FILE` and `workflow install DIR`, issue 17) and the
 * CreateWorkflowResponse fields it reads back.
 *
 * `workflow install` resolves a package on the user's machine and uploads each workflow
 * as JSON (Content-Type application/json, "a YAML subset") with its stable id in
 * ?workflow_id= and install provenance in ?version=, ?source_digest= and ?force=; `create
 * --from` uploads the file as YAML with ?name=. syn's from-yaml took only YAML media types
 * and ?id=, so install was refused with 415. This stands alone beside
 * gateway/original_compat.c (which routes to it) so the upload's translation is one
 * file, and syn's own from-yaml (gateway/yaml.c) keeps its rules for its own callers. */
#ifndef SYN_GATEWAY_ORIGINAL_INSTALL_H
#define SYN_GATEWAY_ORIGINAL_INSTALL_H

#include "gateway/api.h"
#include "proto/ops.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* POST /workflows/from-yaml as the original sends it: through /api/v1 (original), as
 * JSON, or with one of its query keys. Returns -1 when it is syn's own request (the
 * caller goes on with gateway/yaml.c); otherwise 0 with *op and *args, or the status
 * to answer with *error. *keep holds the CreateWorkflowResponse fields
 * (repository_url, requires_repos, warnings) the answer adds. */
int gateway_install_request(bool original, const char *content_type, const char *body,
                            size_t len, gateway_query_fn query, void *cls, syn_op_t *op,
                            json_t **args, json_t **error, json_t **keep);

#endif
