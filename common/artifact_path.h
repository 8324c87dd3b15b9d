/* artifact_path: which paths an artifact may have. The broker checks every path a
 * worker sends (artifacts.c) and a worker every path it is told to pull into its
 * workspace (worker/artifact_pull.c): the same rule on both sides, so nothing
 * stored can name a place outside artifacts/ when it is written out again. */
#ifndef SYN_COMMON_ARTIFACT_PATH_H
#define SYN_COMMON_ARTIFACT_PATH_H

#include <stdbool.h>

/* A path under artifacts/output, at most this long. */
#define SYN_ARTIFACT_PATH_MAX 1024

/* Whether path is a relative path of plain components (no "", ".", ".." or
 * leading "/", no control characters or backslashes), at most
 * SYN_ARTIFACT_PATH_MAX bytes. */
bool syn_artifact_path_ok(const char *path);

#endif
