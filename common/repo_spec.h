/* repo_spec: what a repository string of an execution means, for the broker (the
 * {{repository}} and {{repo_url}} builtins) and the worker (what git clones) alike.
 *
 * A repository is "owner/repo" (GitHub), a URL (https, http, ssh, git, file), an
 * scp-like "git@host:path" or an absolute path, optionally followed by "#ref": a
 * branch or tag to clone instead of the default branch (the original's
 * repository {url, ref}). It stands alone so the two programs cannot disagree. */
#ifndef SYN_COMMON_REPO_SPEC_H
#define SYN_COMMON_REPO_SPEC_H

#include <stddef.h>

typedef struct {
    char *base; /* the repository without "#ref" */
    char *url;  /* what git clones: owner/repo → https://github.com/owner/repo */
    char *ref;  /* the part after '#', or NULL */
} syn_repo_spec_t;

/* Parses spec into out (three malloc'd strings, see syn_repo_spec_clear): 0, or -1
 * with the reason in err when it is none of the accepted forms or its ref is not a
 * plain name (empty, a leading '-', white space). */
int syn_repo_spec_parse(const char *spec, syn_repo_spec_t *out, char *err, size_t errlen);
void syn_repo_spec_clear(syn_repo_spec_t *spec);

#endif
