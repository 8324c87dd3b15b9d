#include "common/clock.h"

#include <time.h>

int64_t syn_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t syn_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t syn_mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* value as exactly width decimal digits (value < 10^width), zero-padded. */
static char *put_digits(char *p, unsigned value, int width)
{
    for (int i = width - 1; i >= 0; i--) {
        p[i] = (char)('0' + value % 10u);
        value /= 10u;
    }
    return p + width;
}

char *syn_time_format(int64_t epoch_us, char buf[SYN_TIME_BUFSIZE])
{
    time_t secs = (time_t)(epoch_us / 1000000);
    int micros = (int)(epoch_us % 1000000);
    if (micros < 0) {
        micros += 1000000;
        secs -= 1;
    }
    struct tm tm;
    gmtime_r(&secs, &tm);
    /* Digits by hand: every event and status carries two of these, and snprintf
     * cost ten times the rest. Each field is reduced to its width. */
    char *p = buf;
    p = put_digits(p, (unsigned)(tm.tm_year + 1900) % 10000u, 4);
    *p++ = '-';
    p = put_digits(p, (unsigned)(tm.tm_mon + 1) % 100u, 2);
    *p++ = '-';
    p = put_digits(p, (unsigned)tm.tm_mday % 100u, 2);
    *p++ = 'T';
    p = put_digits(p, (unsigned)tm.tm_hour % 100u, 2);
    *p++ = ':';
    p = put_digits(p, (unsigned)tm.tm_min % 100u, 2);
    *p++ = ':';
    p = put_digits(p, (unsigned)tm.tm_sec % 100u, 2);
    *p++ = '.';
    p = put_digits(p, (unsigned)micros % 1000000u, 6);
    *p++ = 'Z';
    *p = '\0';
    return buf;
}
