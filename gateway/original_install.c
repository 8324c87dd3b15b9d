/* original_install: the original CLI's workflow upload (gateway/original_install.h). */
#include "gateway/original_install.h"
#include "gateway/yaml.h"

#include <string.h>
#include <strings.h>

/* "application/json" (parameters after ';' allowed), as install.ts sends it. */
static bool json_media_type(const char *content_type)
{
    static const char json_type[] = "application/json";
    size_t n = sizeof json_type - 1;
    if (!content_type)
        return false;
    while (*content_type == ' ' || *content_type == '\t')
        content_type++;
    return strncasecmp(content_type, json_type, n) == 0 &&
           (!content_type[n] || content_type[n] == ';' || content_type[n] == ' ');
}

static void warn(json_t *keep, const char *text)
{
    json_array_append_new(json_object_get(keep, "warnings"), json_string(text));
}

/* What the original answers from the uploaded definition: its repository's url ("" when
 * none) and requires_repos (given, else whether a repository is declared: resolver.ts's
 * inferRequiresRepos). */
static json_t *response_fields(const json_t *workflow)
{
    const json_t *repository = json_object_get(workflow, "repository");
    const char *url = json_string_value(repository);
    if (!url)
        url = json_string_value(json_object_get(repository, "url"));
    const json_t *requires_repos = json_object_get(workflow, "requires_repos");
    bool requires = json_is_boolean(requires_repos) ? json_is_true(requires_repos)
                                                    : repository && !json_is_null(repository);
    return json_pack("{s:s, s:b, s:[]}", "repository_url", url ? url : "", "requires_repos",
                     requires, "warnings");
}

int gateway_install_request(bool original, const char *content_type, const char *body,
                            size_t len, gateway_query_fn query, void *cls, syn_op_t *op,
                            json_t **args, json_t **error, json_t **keep)
{
    const char *workflow_id = query(cls, "workflow_id");
    const char *version = query(cls, "version");
    const char *digest = query(cls, "source_digest");
    const char *force = query(cls, "force");
    /* syn's own upload at the root (no original query key) keeps its answers,
     * its 415 for JSON included (docs/api.md). */
    if (!original && !workflow_id && !version && !digest && !force)
        return -1;
    bool as_json = json_media_type(content_type);
    /* JSON is YAML: the template library reads it as the YAML it is */
    const char *id = workflow_id ? workflow_id : query(cls, "id");
    *op = SYN_OP_WORKFLOW_CREATE;
    int status = gateway_yaml_from_upload(as_json ? "application/yaml" : content_type, body, len,
                                          id, query(cls, "name"), args, error);
    if (status != 0)
        return status;
    *keep = response_fields(*args);
    if (version || digest)
        warn(*keep, "version and source_digest are not recorded: syn numbers a workflow's "
                    "versions itself");
    if (force && strcmp(force, "true") == 0)
        warn(*keep, "force is ignored: an id that exists is refused (409), never overwritten");
    return 0;
}
