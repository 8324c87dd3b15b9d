/* artifact_path: see artifact_path.h. */
#include "common/artifact_path.h"

#include <stddef.h>
#include <string.h>

bool syn_artifact_path_ok(const char *path)
{
    size_t len = strlen(path);
    if (len == 0 || len > SYN_ARTIFACT_PATH_MAX || path[0] == '/')
        return false;
    for (const char *p = path; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f || *p == '\\')
            return false;
    for (const char *part = path; part;) {
        const char *slash = strchr(part, '/');
        size_t n = slash ? (size_t)(slash - part) : strlen(part);
        if (n == 0 || (n == 1 && part[0] == '.') || (n == 2 && !strncmp(part, "..", 2)))
            return false;
        part = slash ? slash + 1 : NULL;
    }
    return true;
}
