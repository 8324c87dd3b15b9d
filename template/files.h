/* files: reading template files safely — bounded sizes, regular files only, and
 * prompt files that must stay inside the workflow's directory. */
#ifndef SYN_TEMPLATE_FILES_H
#define SYN_TEMPLATE_FILES_H

#include "template/errors.h"

#include <stddef.h>

/* Reads the regular file at path (at most limit bytes) into a NUL-terminated buffer
 * the caller frees. 0, or -1 with the reason in why and its kind in *kind
 * (TEMPLATE_ERROR_IO or TEMPLATE_ERROR_TOO_LARGE). Never blocks on a FIFO or device. */
int template_file_read(const char *path, size_t limit, char **text, size_t *len, char *why,
                       size_t why_size, template_error_kind_t *kind);

/* Resolves relative inside dir: refuses an empty or absolute path, any '..'
 * component, and a path whose real location (symlinks followed) is outside dir's.
 * 0 with *resolved (the real path, caller frees), or -1 with the reason in why and
 * its kind in *kind (TEMPLATE_ERROR_INVALID for an escape, IO when missing). */
int template_path_inside(const char *dir, const char *relative, char **resolved, char *why,
                         size_t why_size, template_error_kind_t *kind);

#endif
