/* ratelog: one log line per cause per interval, with the count of the ones held
 * back. A peer that fails the same way thousands of times (a refused key that
 * reconnects, a flood of connections) must not fill the log: the first line says
 * what happened, the next one after the interval how often since. */
#ifndef SYN_RATELOG_H
#define SYN_RATELOG_H

#include "common/log.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct syn_ratelog_t syn_ratelog_t;

/* Remembers up to max_causes causes (the least recently logged is forgotten
 * first, so memory stays bounded whatever a peer sends). */
syn_ratelog_t *syn_ratelog_new(int64_t interval_ms, size_t max_causes);
void syn_ratelog_destroy(syn_ratelog_t **self_p);

/* true when a line for cause should be written at now_ms; then *held_back is the
 * number of lines for it not written since the last one (0 the first time).
 * false counts one more held back. A cause is any text (a key and an address,
 * say); longer than 255 bytes only its first 255 count. */
bool syn_ratelog_allow(syn_ratelog_t *self, const char *cause, int64_t now_ms,
                       uint64_t *held_back);

/* Writes one log line (common/log.h) when cause is allowed at now_ms, ending it
 * with " (N more since the last line)" when lines were held back. */
void syn_ratelog_log(syn_ratelog_t *self, const char *cause, int64_t now_ms,
                     syn_log_level_t level, const char *component, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

#endif
