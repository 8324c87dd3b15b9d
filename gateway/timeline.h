/* timeline: an execution drawn as a picture — one row per phase, one bar per
 * attempt on a shared time axis, coloured by how the attempt ended — rendered as
 * SVG from the execution detail the broker answers (GET /executions/{id}). */
#ifndef SYN_GATEWAY_TIMELINE_H
#define SYN_GATEWAY_TIMELINE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>


/* Renders the execution detail as an SVG document (malloc'd, NUL-terminated;
 * caller frees). now_us stands for the end of bars still running. NULL with the
 * reason in err when the detail lacks what a timeline needs. */
char *timeline_render_svg(const json_t *detail, int64_t now_us, char *err, size_t errlen);

#endif
