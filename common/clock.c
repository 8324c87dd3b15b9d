#include "common/clock.h"

#include <stdio.h>
#include <string.h>
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

int syn_time_parse(const char *text, int64_t *epoch_us)
{
    if (!text)
        return -1;
    int y, mo, d, h, mi, s, consumed = 0;
    if (sscanf(text, "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &s, &consumed) != 6 ||
        consumed != 19 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 60)
        return -1;
    const char *p = text + consumed;
    int64_t micros = 0;
    if (*p == '.') {
        int digits = 0;
        for (p++; *p >= '0' && *p <= '9'; p++, digits++)
            if (digits < 6)
                micros = micros * 10 + (*p - '0');
        if (digits == 0)
            return -1;
        for (; digits < 6; digits++)
            micros *= 10;
    }
    if (strcmp(p, "Z") != 0)
        return -1;
    struct tm tm = {.tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d,
                    .tm_hour = h, .tm_min = mi, .tm_sec = s};
    *epoch_us = (int64_t)timegm(&tm) * 1000000 + micros;
    return 0;
}
