/* original_install: the original CLI's workflow upload (gateway/original_install.h). */
#include "gateway/original_install.h"
#include "gateway/yaml.h"

#include "common/sha256.h"

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

/* workflow/install.ts names the workflow (?workflow_id=): installing it again
 * replaces it, as its original does, through the broker's workflow.install (what
 * --workflows DIR uses): a new version when the upload changed (its
 * ?source_digest=, else the body, is the source hash kept with the version),
 * "unchanged" when not. The answer carries the create's fields from keep. */
static int install_op(json_t *keep, const char *body, size_t len, const char *digest,
                      const char *force, syn_op_t *op, json_t **args, json_t **error)
{
    syn_sha256_t sha;
    char hash[SYN_SHA256_HEX_SIZE];
    syn_sha256_init(&sha);
    if (digest)
        syn_sha256_update(&sha, digest, strlen(digest));
    else
        syn_sha256_update(&sha, body, len);
    syn_sha256_hex(&sha, hash);
    static const char *const carried[] = {"name", "workflow_type", "classification"};
    for (size_t i = 0; i < sizeof carried / sizeof *carried; i++)
        json_object_set(keep, carried[i], json_object_get(*args, carried[i]));
    if (force && strcmp(force, "true") == 0)
        warn(keep, "force is not needed: a changed workflow is installed as a new version");
    json_t *install = json_pack("{s:o, s:s}", "workflow", *args, "source_hash", hash);
    *args = install;
    *op = SYN_OP_WORKFLOW_INSTALL;
    if (install)
        return 0;
    *error = json_pack("{s:s}", "detail", "cannot build the install request (out of memory)");
    return 500;
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
    if (version)
        warn(*keep, "version is not recorded: syn numbers a workflow's versions itself");
    if (workflow_id)
        return install_op(*keep, body, len, digest, force, op, args, error);
    if (force && strcmp(force, "true") == 0)
        warn(*keep, "force is ignored: a create never replaces a workflow");
    return 0;
}
