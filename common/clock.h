/* clock: wall time for records, monotonic time for deadlines, RFC 3339 formatting. */
#ifndef SYN_CLOCK_H
#define SYN_CLOCK_H

#include <stdint.h>

/* "2026-11-28T14:56:19.123456Z" plus NUL */
#define SYN_TIME_BUFSIZE 28

/* Microseconds since the Unix epoch (wall clock: stored and shown to users). */
int64_t syn_now_us(void);
/* Milliseconds of a monotonic clock (timeouts, heartbeats: never jumps). */
int64_t syn_mono_ms(void);
/* Microseconds of the same monotonic clock, for deadlines finer than a
 * millisecond; syn_mono_us() / 1000 == syn_mono_ms() at the same instant. */
int64_t syn_mono_us(void);
/* Formats epoch microseconds as RFC 3339 UTC with microseconds; returns buf. */
char *syn_time_format(int64_t epoch_us, char buf[SYN_TIME_BUFSIZE]);
/* Parses an RFC 3339 UTC timestamp with optional fraction ("…T14:56:19.123456Z",
 * as syn_time_format writes and the API answers) into microseconds since the
 * epoch; 0, or -1 when it is not one. */
int syn_time_parse(const char *text, int64_t *epoch_us);

#endif
