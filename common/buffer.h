/* buffer: the one way a growing byte buffer grows.
 *
 * Text and message builders all over the code append to a malloc'd buffer and
 * double it when it is full; each wrote that loop itself. */
#ifndef SYN_COMMON_BUFFER_H
#define SYN_COMMON_BUFFER_H

#include <stdbool.h>
#include <stddef.h>

/* Makes *data (capacity *cap) hold at least need bytes: doubling the capacity,
 * starting from first when there is none yet. True, or false when out of memory
 * or need cannot be met (then *data and *cap are unchanged). */
bool syn_buffer_reserve(char **data, size_t *cap, size_t need, size_t first);

#endif
