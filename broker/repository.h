/* repository: which repositories an execution clones.
 *
 * The request's repos when it gives any; else the workflow's default `repository`
 * (the original's key: {url, ref}), its url and ref rendered through the merged
 * inputs like a prompt (so `url: "https://github.com/{{repo}}"` takes the input
 * repo), as one "url#ref" string (common/repo_spec.h). A default whose placeholders
 * name inputs nobody gave is no repository. A workflow with requires_repos: true
 * that ends with none is refused (422) with the inputs it waited for named, so the
 * caller knows what to pass. It stands alone because it is the one place the
 * original's repository keys turn into syn's repos. */
#ifndef SYN_BROKER_REPOSITORY_H
#define SYN_BROKER_REPOSITORY_H

#include <jansson.h>

/* 0 with *repos (a new array of strings) or 422 with *body (a new {"detail"}). */
int broker_repository_choose(const char *workflow_id, const json_t *workflow,
                             const json_t *inputs, const json_t *given, json_t **repos,
                             json_t **body);

#endif
