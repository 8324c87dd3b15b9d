/* json_text: compact JSON text of a jansson value, fast.
 *
 * The same bytes as json_dumps(value, JSON_COMPACT) — the tests compare the
 * two on random values — without its per-number snprintf and per-character
 * UTF-8 decoding, which made it the broker's most expensive call per event.
 * Reals (costs, durations) are the one difference: they get the fewest digits
 * that read back as the same double (0.1, where json_dumps writes
 * 0.10000000000000001), formatted by jansson otherwise. */
#ifndef SYN_COMMON_JSON_TEXT_H
#define SYN_COMMON_JSON_TEXT_H

#include <jansson.h>

/* malloc'd text (free() it), or NULL where json_dumps gives NULL: value is not
 * an object or array, holds a string that is not UTF-8, nests deeper than
 * SYN_JSON_TEXT_MAX_DEPTH (a cycle, which json_dumps also refuses), or memory
 * ran out. */
char *syn_json_text(const json_t *value);

#define SYN_JSON_TEXT_MAX_DEPTH 512

#endif
