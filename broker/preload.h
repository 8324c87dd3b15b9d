/* preload: `syn-broker --workflows DIR` — installs the workflow files of a directory
 * (template/library.h: DIR/NAME.yaml files and DIR/NAME/workflow.yaml packages)
 * when the broker starts, through the workflow.install operation:
 *   - a new id is created (version 1);
 *   - a known id whose content hash is unchanged is left as it is (nothing is
 *     written, so restarting with the same files changes nothing);
 *   - a changed file becomes a new version (running executions keep theirs);
 *   - an archived workflow is left archived (logged);
 *   - a file that fails to load or install is logged with every error and skipped;
 *     the others still load. */
#ifndef SYN_BROKER_PRELOAD_H
#define SYN_BROKER_PRELOAD_H

#include "broker/api.h"

#include <stddef.h>

typedef struct {
    size_t created, updated, unchanged, archived, failed;
} broker_preload_stats_t;

/* Installs every workflow of dir (the caller commits). 0, or -1 when dir itself
 * cannot be read (reason in why). */
int broker_preload(broker_api_t *api, const char *dir, broker_preload_stats_t *stats,
                   char *why, size_t why_size);

#endif
