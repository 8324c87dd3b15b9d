/* repository: an execution's repositories from the request or the workflow's
 * default (repository.h). */
#include "broker/repository.h"

#include "broker/render.h"
#include "common/repo_spec.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Renders text through inputs; NULL when a placeholder stays (its name appended to
 * missing, comma separated) or on failure. */
static char *render_default(const char *text, const json_t *inputs, char *missing, size_t size)
{
    size_t count = json_object_size(inputs), n = 0;
    broker_render_var_t *vars = calloc(count + 1, sizeof *vars);
    if (!vars)
        return NULL;
    const char *key;
    json_t *value;
    json_object_foreach((json_t *)inputs, key, value)
        if (json_is_string(value))
            vars[n++] = (broker_render_var_t){key, json_string_value(value)};
    broker_render_ctx_t ctx = {.inputs = vars, .input_count = n};
    char err[128];
    char *out = broker_render(text, &ctx, NULL, err, sizeof err);
    free(vars);
    const char *open = out ? strstr(out, "{{") : NULL;
    const char *close = open ? strstr(open + 2, "}}") : NULL;
    if (close) {
        size_t used = strlen(missing);
        snprintf(missing + used, size - used, "%s'%.*s'", used ? ", " : "",
                 (int)(close - open - 2), open + 2);
        free(out);
        return NULL;
    }
    return out;
}

int broker_repository_choose(const char *workflow_id, const json_t *workflow,
                             const json_t *inputs, const json_t *given, json_t **repos,
                             json_t **body)
{
    *body = NULL;
    if (json_array_size(given) > 0) {
        *repos = json_deep_copy(given);
        return 0;
    }
    *repos = json_array();
    const json_t *repository = json_object_get(workflow, "repository");
    const char *url = json_string_value(json_object_get(repository, "url"));
    const char *ref = json_string_value(json_object_get(repository, "ref"));
    char missing[256] = "";
    char *rendered = url ? render_default(url, inputs, missing, sizeof missing) : NULL;
    char *rendered_ref = ref ? render_default(ref, inputs, missing, sizeof missing) : NULL;
    if (rendered && *rendered && (!ref || rendered_ref)) {
        char *spec = NULL, why[256];
        bool with_ref = rendered_ref && *rendered_ref;
        if (asprintf(&spec, "%s%s%s", rendered, with_ref ? "#" : "", with_ref ? rendered_ref : "") <
            0)
            spec = NULL;
        syn_repo_spec_t parsed;
        if (spec && syn_repo_spec_parse(spec, &parsed, why, sizeof why) == 0) {
            syn_repo_spec_clear(&parsed);
            json_array_append_new(*repos, json_string(spec));
        } else if (spec) {
            *body = json_pack("{s:o}", "detail",
                              json_sprintf("Workflow %s's default repository: %s", workflow_id,
                                           why));
        }
        free(spec);
    }
    free(rendered);
    free(rendered_ref);
    if (!*body && json_array_size(*repos) == 0 &&
        json_is_true(json_object_get(workflow, "requires_repos"))) {
        if (missing[0])
            *body = json_pack("{s:o}", "detail",
                              json_sprintf("Workflow %s requires a repository: give the input "
                                           "%s (its repository is '%s'), or repos in the "
                                           "request (syn run --repo)",
                                           workflow_id, missing, url));
        else
            *body = json_pack("{s:o}", "detail",
                              json_sprintf("Workflow %s requires a repository: give repos in "
                                           "the request (syn run --repo OWNER/REPO)",
                                           workflow_id));
    }
    if (*body) {
        json_decref(*repos);
        *repos = NULL;
        return 422;
    }
    return 0;
}
