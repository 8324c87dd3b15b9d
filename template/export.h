/* export: a stored workflow (the JSON of GET /workflows/{id}, defaults filled) →
 * YAML text that template_workflow_parse turns back into the same workflow: keys in
 * the YAML names (workflow_type → type, phase_id → id, …), multi-line text as
 * literal blocks (|), strings quoted whenever YAML would read them as something
 * else ("true", "0123", ": x"). Null values and empty lists are left out (the broker
 * fills the same defaults back), as are keys that are not part of a template
 * (created_at and other server fields). */
#ifndef SYN_TEMPLATE_EXPORT_H
#define SYN_TEMPLATE_EXPORT_H

#include <jansson.h>
#include <stddef.h>

/* The YAML text (NUL-terminated, caller frees; *len without the NUL when len is
 * not NULL), or NULL with the reason in why when workflow is not a workflow object
 * (not an object, no phases list, a phase that is not an object). */
char *template_export_yaml(const json_t *workflow, size_t *len, char *why, size_t why_size);

#endif
