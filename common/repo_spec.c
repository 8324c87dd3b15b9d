/* repo_spec: parsing a repository string (repo_spec.h). */
#include "common/repo_spec.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool is_owner_repo(const char *spec)
{
    const char *slash = strchr(spec, '/');
    if (!slash || slash == spec || !slash[1] || strchr(slash + 1, '/'))
        return false;
    for (const char *p = spec; *p; p++) {
        char c = *p;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.' || c == '/'))
            return false;
    }
    return true;
}

static bool has_prefix(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

void syn_repo_spec_clear(syn_repo_spec_t *spec)
{
    free(spec->base);
    free(spec->url);
    free(spec->ref);
    *spec = (syn_repo_spec_t){0};
}

int syn_repo_spec_parse(const char *spec, syn_repo_spec_t *out, char *err, size_t errlen)
{
    *out = (syn_repo_spec_t){0};
    const char *hash = strchr(spec, '#');
    size_t base_len = hash ? (size_t)(hash - spec) : strlen(spec);
    out->base = strndup(spec, base_len);
    if (hash)
        out->ref = strdup(hash + 1);
    if (!out->base || (hash && !out->ref)) {
        snprintf(err, errlen, "out of memory");
        syn_repo_spec_clear(out);
        return -1;
    }
    const char *base = out->base;
    if (!*base || base[0] == '-' || strpbrk(base, "\n\r\t ")) {
        snprintf(err, errlen, "repo '%.200s' is not owner/repo, a URL or an absolute path", spec);
        syn_repo_spec_clear(out);
        return -1;
    }
    if (out->ref && (!*out->ref || out->ref[0] == '-' || strpbrk(out->ref, "\n\r\t #~^:?*[\\"))) {
        snprintf(err, errlen, "repo '%.200s': '#%.100s' is not a branch or tag name", spec,
                 out->ref);
        syn_repo_spec_clear(out);
        return -1;
    }
    if (is_owner_repo(base)) {
        if (asprintf(&out->url, "https://github.com/%s", base) < 0)
            out->url = NULL;
    } else if (has_prefix(base, "https://") || has_prefix(base, "http://") ||
               has_prefix(base, "ssh://") || has_prefix(base, "git://") ||
               has_prefix(base, "file://") || base[0] == '/' ||
               (has_prefix(base, "git@") && strchr(base, ':'))) {
        out->url = strdup(base);
    } else {
        snprintf(err, errlen, "repo '%.200s' is not owner/repo, a URL or an absolute path", spec);
        syn_repo_spec_clear(out);
        return -1;
    }
    if (!out->url) {
        snprintf(err, errlen, "out of memory");
        syn_repo_spec_clear(out);
        return -1;
    }
    return 0;
}
