/* oldest_format: the original's oldest example workflows in syn's terms
 * (template/oldest_format.c says why it stands alone). */
#ifndef SYN_TEMPLATE_OLDEST_FORMAT_H
#define SYN_TEMPLATE_OLDEST_FORMAT_H

#include <jansson.h>
#include <stdbool.h>

/* Derives syn's keys from the oldest format's in a parsed workflow: each phase's
 * string inputs become the workflow's input declarations (unless declared), and its
 * outputs' names its output_artifacts (unless given). A no-op on a workflow without
 * them, and on its own result. */
void template_oldest_format(json_t *workflow);

/* The id of a phase that gives none (the oldest format names phases by id-like names):
 * its name, or NULL. Points into phase. */
const char *template_oldest_phase_id(const json_t *phase);

#endif
